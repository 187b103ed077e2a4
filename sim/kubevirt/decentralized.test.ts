/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import { R } from "../apiserver/resources.js";
import type { SimCluster } from "../cluster.js";
import { CABundleKey } from "./constants.js";
import { parseBundle } from "./pki.js";
import { type TestCluster, get, startTestCluster, vmSpec, waitFor } from "./testing.js";

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

async function twoClusters(scale = 1000, extra: Parameters<typeof startTestCluster>[0] = {}) {
  const a = await startTestCluster({ name: "a", scale, namespaces: ["default", "src"], ...extra });
  const b = await startTestCluster({ name: "b", scale, namespaces: ["default", "dst"], ...extra });
  clusters.push(a, b);
  return { a, b };
}

function bundle(c: SimCluster): string {
  return get(c, "ConfigMap", "kubevirt", "kubevirt-ca")!.data[CABundleKey];
}

/** The user-guide CA exchange: each cluster's kubevirt-ca bundle into the other's kubevirt-external-ca. */
async function exchangeCAs(a: SimCluster, b: SimCluster) {
  const aPem = bundle(a);
  const bPem = bundle(b);
  for (const [c, pem] of [[a, bPem], [b, aPem]] as const) {
    c.store.modify(R.ConfigMap, "kubevirt", "kubevirt-external-ca", (o) => (o.data = { [CABundleKey]: pem }));
  }
  const has = (c: SimCluster, pem: string) => {
    const want = parseBundle(pem).map((x) => x.fingerprint256);
    const got = new Set(parseBundle(bundle(c)).map((x) => x.fingerprint256));
    return want.every((f) => got.has(f));
  };
  await waitFor("CA bundles merged", () => has(a, bPem) && has(b, aPem));
}

function track(c: SimCluster, ns: string, name: string): string[] {
  const phases: string[] = [];
  c.store.subscribe((e) => {
    if (e.rt.kind !== "VirtualMachineInstanceMigration" || e.object.metadata.name !== name || e.object.metadata.namespace !== ns) return;
    const p = e.object.status?.phase ?? "";
    if (phases[phases.length - 1] !== p) phases.push(p);
  });
  return phases;
}

async function sourceVM(a: SimCluster, memory = "4Gi", name = "vm1") {
  const spec = vmSpec(name, {
    memory,
    volumes: [{ name: "root", dataVolume: { name: `${name}-root` } }],
    dataVolumeTemplates: [{ metadata: { name: `${name}-root` }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "8Gi" } } } } }],
  });
  a.store.create(R.VirtualMachine, { ...spec, metadata: { name, namespace: "src" } });
  await waitFor("source running", () => get(a, "VirtualMachine", "src", name)?.status?.printableStatus === "Running", 15_000);
}

async function receiverVM(b: SimCluster, memory = "4Gi", name = "vm1") {
  b.store.create(R.DataVolume, {
    metadata: { name: `${name}-root`, namespace: "dst", annotations: { "cdi.kubevirt.io/storage.usePopulator": "true" } },
    spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "8Gi" } } } },
  });
  await waitFor("target DV", () => ["Succeeded", "WaitForFirstConsumer", "PendingPopulation"].includes(get(b, "DataVolume", "dst", `${name}-root`)?.status?.phase));
  const spec = vmSpec(name, { runStrategy: "WaitAsReceiver", memory, volumes: [{ name: "root", dataVolume: { name: `${name}-root` } }] });
  b.store.create(R.VirtualMachine, { ...spec, metadata: { name, namespace: "dst", annotations: { "kubevirt.io/restore-run-strategy": "Always" } } });
  await waitFor("receiver WaitingForSync", () => get(b, "VirtualMachineInstance", "dst", name)?.status?.phase === "WaitingForSync");
}

function createPair(a: SimCluster, b: SimCluster, id = "mig-1", vm = "vm1", names = { src: "src", tgt: "tgt" }) {
  b.store.create(R.VirtualMachineInstanceMigration, { metadata: { name: names.tgt, namespace: "dst" }, spec: { vmiName: vm, receive: { migrationID: id } } });
  const addr = get(b, "KubeVirt", "kubevirt", "kubevirt")!.status.synchronizationAddresses[0];
  a.store.create(R.VirtualMachineInstanceMigration, { metadata: { name: names.src, namespace: "src" }, spec: { vmiName: vm, sendTo: { migrationID: id, connectURL: addr } } });
  return addr as string;
}

const phase = (c: SimCluster, ns: string, name: string): string | undefined => get(c, "VirtualMachineInstanceMigration", ns, name)?.status?.phase;

describe("decentralized live migration between two simulated clusters", () => {
  it("completes after the CA exchange: target runs, run strategy restored, source Halted and its VMI gone", async () => {
    const { a: ta, b: tb } = await twoClusters();
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    const tgtPhases = track(b, "dst", "tgt");
    const srcPhases = track(a, "src", "src");
    const addr = createPair(a, b);
    expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
    await waitFor("target VMIM Succeeded", () => get(b, "VirtualMachineInstanceMigration", "dst", "tgt")?.status?.phase === "Succeeded", 20_000);
    const tvmi = await waitFor("target VMI running", () => {
      const o = get(b, "VirtualMachineInstance", "dst", "vm1");
      return o?.status?.phase === "Running" ? o : undefined;
    });
    expect(tvmi.metadata.annotations?.["kubevirt.io/create-migration-target"]).toBeUndefined();
    await waitFor("target runStrategy restored", () => get(b, "VirtualMachine", "dst", "vm1")?.spec?.runStrategy === "Always");
    await waitFor("source Halted", () => get(a, "VirtualMachine", "src", "vm1")?.spec?.runStrategy === "Halted");
    await waitFor("source VMI gone", () => !get(a, "VirtualMachineInstance", "src", "vm1"));
    await waitFor("source VMIM gone (VMI deleted)", () => !get(a, "VirtualMachineInstanceMigration", "src", "src"));
    await waitFor("source VM Stopped", () => get(a, "VirtualMachine", "src", "vm1")?.status?.printableStatus === "Stopped");
    expect(srcPhases).toEqual(["", "Synchronizing", "Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]);
    expect(tgtPhases).toEqual(["", "WaitingForSync", "Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]);
    const tm = get(b, "VirtualMachineInstanceMigration", "dst", "tgt")!;
    expect(tm.status.migrationState.completed).toBe(true);
    expect(tm.status.synchronizationAddresses).toEqual([addr]);
    expect(tm.status.phaseTransitionTimestamps.map((t: any) => t.phase)).toEqual(tgtPhases.slice(1));
    expect(tm.metadata.finalizers ?? []).toEqual([]);
    expect(tm.metadata.labels?.["kubevirt.io/vmi-name"]).toBe("vm1");
    // the bytes really crossed the TLS connection
    const recv = tb.kv.migrationMetrics().find((m) => m.role === "target");
    expect(recv?.receivedBytes).toBeGreaterThanOrEqual(4 * 2 ** 30 + 8 * 2 ** 30);
    expect(recv?.receivedWireBytes).toBeGreaterThan(0);
  });

  it("stays blocked with the TLS reason without the CA exchange, and proceeds once it happens", async () => {
    const { a: ta, b: tb } = await twoClusters();
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await receiverVM(b);
    createPair(a, b);
    const cond = await waitFor("blocked condition", () =>
      (get(a, "VirtualMachineInstanceMigration", "src", "src")?.status?.conditions ?? []).find((c: any) => c.type === "decentralizedMigrationBlocked"),
    );
    expect(cond.reason).toBe("DecentralizedNotLiveMigratable");
    expect(cond.message).toContain("x509: certificate signed by unknown authority");
    const tcond = await waitFor("target waits", () =>
      (get(b, "VirtualMachineInstanceMigration", "dst", "tgt")?.status?.conditions ?? []).find((c: any) => c.type === "decentralizedMigrationBlocked"),
    );
    expect(tcond.message).toBe("waiting for incoming synchronization, unable to proceed");
    expect(get(a, "VirtualMachineInstanceMigration", "src", "src")!.status.phase).toBe("Synchronizing");
    await new Promise((r) => setTimeout(r, 300));
    expect(get(a, "VirtualMachineInstanceMigration", "src", "src")!.status.phase).toBe("Synchronizing");
    await exchangeCAs(a, b);
    await waitFor("target VMIM Succeeded", () => get(b, "VirtualMachineInstanceMigration", "dst", "tgt")?.status?.phase === "Succeeded", 30_000);
  });

  it("one-way trust fails on the other side's handshake", async () => {
    const { a: ta, b: tb } = await twoClusters();
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await receiverVM(b);
    // only the source trusts the target: the target rejects the source's client certificate
    a.store.modify(R.ConfigMap, "kubevirt", "kubevirt-external-ca", (o) => (o.data = { [CABundleKey]: bundle(b) }));
    await waitFor("a trusts b", () => parseBundle(bundle(a)).length === 2);
    createPair(a, b);
    const cond = await waitFor("blocked condition", () =>
      (get(a, "VirtualMachineInstanceMigration", "src", "src")?.status?.conditions ?? []).find((c: any) => c.type === "decentralizedMigrationBlocked"),
    );
    expect(cond.message).toContain("remote error: tls: unknown certificate authority");
  });

  it("cancels by deleting both VMIMs: the source keeps running, the target waits again and can be removed", async () => {
    const { a: ta, b: tb } = await twoClusters(1000, { kubevirt: { migrations: { bandwidthPerMigration: "32Mi" } } });
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    createPair(a, b);
    await waitFor("copy running", () => phase(a, "src", "src") === "Running" && (ta.kv.migrationMetrics()[0]?.dataProcessedBytes ?? 0) > 0);
    a.store.delete(R.VirtualMachineInstanceMigration, "src", "src");
    b.store.delete(R.VirtualMachineInstanceMigration, "dst", "tgt");
    await waitFor("both VMIMs gone", () => !get(a, "VirtualMachineInstanceMigration", "src", "src") && !get(b, "VirtualMachineInstanceMigration", "dst", "tgt"));
    const svmi = get(a, "VirtualMachineInstance", "src", "vm1")!;
    expect(svmi.status.phase).toBe("Running");
    expect(svmi.status.migrationState).toMatchObject({ abortRequested: true, failed: true, abortStatus: "Succeeded" });
    expect(get(a, "VirtualMachine", "src", "vm1")!.spec.runStrategy).toBe("Always");
    await waitFor("target waits", () => get(b, "VirtualMachineInstance", "dst", "vm1")?.status?.phase === "WaitingForSync");
    await waitFor("target VM WaitingForReceiver", () => get(b, "VirtualMachine", "dst", "vm1")?.status?.printableStatus === "WaitingForReceiver");
    b.store.delete(R.VirtualMachine, "dst", "vm1");
    await waitFor("target VM removed", () => !get(b, "VirtualMachine", "dst", "vm1") && !get(b, "VirtualMachineInstance", "dst", "vm1"));
  });

  it("deleting one VMIM cancels the pair: the peer is told over the sync connection", async () => {
    const { a: ta, b: tb } = await twoClusters(1000, { kubevirt: { migrations: { bandwidthPerMigration: "32Mi" } } });
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    createPair(a, b);
    await waitFor("copy running", () => phase(b, "dst", "tgt") === "Running");
    b.store.delete(R.VirtualMachineInstanceMigration, "dst", "tgt");
    await waitFor("source VMIM deleted by CancelMigration", () => !get(a, "VirtualMachineInstanceMigration", "src", "src"));
    await waitFor("target VMIM gone", () => !get(b, "VirtualMachineInstanceMigration", "dst", "tgt"));
    expect(get(a, "VirtualMachineInstance", "src", "vm1")!.status.phase).toBe("Running");
  });

  it("a non-converging guest fails both sides after progressTimeout, without retry; the source keeps running", async () => {
    const { a: ta, b: tb } = await twoClusters(1000, { kubevirt: { migrations: { progressTimeout: 30 } } });
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    ta.kv.setDirtyRate("src", "vm1", "no-converge");
    createPair(a, b);
    await waitFor("source Failed", () => phase(a, "src", "src") === "Failed", 15_000);
    await waitFor("target Failed", () => phase(b, "dst", "tgt") === "Failed", 15_000);
    expect(get(a, "VirtualMachineInstance", "src", "vm1")!.status.migrationState.failureReason).toBe("Live migration has been aborted");
    expect(ta.kv.migrationMetrics()[0]?.abortCause).toBe("progressTimeout");
    expect(get(a, "VirtualMachineInstance", "src", "vm1")!.status.phase).toBe("Running");
    await waitFor("target VMI back to WaitingForSync", () => get(b, "VirtualMachineInstance", "dst", "vm1")?.status?.phase === "WaitingForSync");
    expect(get(b, "VirtualMachineInstance", "dst", "vm1")!.status.migrationState).toMatchObject({ failed: true, completed: true });
    await waitFor("target VM WaitingForReceiver", () => get(b, "VirtualMachine", "dst", "vm1")?.status?.printableStatus === "WaitingForReceiver");
    await new Promise((r) => setTimeout(r, 200));
    expect(a.store.list(R.VirtualMachineInstanceMigration).items).toHaveLength(1);
    expect(b.store.list(R.VirtualMachineInstanceMigration).items).toHaveLength(1);
    // the user guide's retry: delete both VMIMs and the target VM, then start over
    a.store.delete(R.VirtualMachineInstanceMigration, "src", "src");
    b.store.delete(R.VirtualMachineInstanceMigration, "dst", "tgt");
    b.store.delete(R.VirtualMachine, "dst", "vm1");
    await waitFor("target VM gone", () => !get(b, "VirtualMachine", "dst", "vm1") && !get(b, "VirtualMachineInstance", "dst", "vm1"));
    ta.kv.setDirtyRate("src", "vm1", 1024 * 1024);
    const spec = vmSpec("vm1", { runStrategy: "WaitAsReceiver", memory: "4Gi", volumes: [{ name: "root", dataVolume: { name: "vm1-root" } }] });
    b.store.create(R.VirtualMachine, { ...spec, metadata: { name: "vm1", namespace: "dst", annotations: { "kubevirt.io/restore-run-strategy": "Always" } } });
    await waitFor("receiver again", () => get(b, "VirtualMachineInstance", "dst", "vm1")?.status?.phase === "WaitingForSync");
    createPair(a, b, "mig-2", "vm1", { src: "src2", tgt: "tgt2" });
    await waitFor("retry Succeeded", () => phase(b, "dst", "tgt2") === "Succeeded", 20_000);
    await waitFor("source Halted", () => get(a, "VirtualMachine", "src", "vm1")?.spec?.runStrategy === "Halted");
  });

  it("a killed source VMI fails the migration; the source VM ends Halted as vm.go does for a completed-failed decentralized migration", async () => {
    const { a: ta, b: tb } = await twoClusters(1000, { kubevirt: { migrations: { bandwidthPerMigration: "32Mi" } } });
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    createPair(a, b);
    await waitFor("copy running", () => phase(a, "src", "src") === "Running");
    ta.kv.killVMI("src", "vm1");
    await waitFor("source VMIM failed or gone", () => !get(a, "VirtualMachineInstanceMigration", "src", "src") || phase(a, "src", "src") === "Failed");
    await waitFor("target VMIM failed", () => phase(b, "dst", "tgt") === "Failed", 15_000);
    await waitFor("target VM WaitingForReceiver", () => get(b, "VirtualMachine", "dst", "vm1")?.status?.printableStatus === "WaitingForReceiver");
    await waitFor("source VM Halted", () => get(a, "VirtualMachine", "src", "vm1")?.spec?.runStrategy === "Halted");
    await waitFor("source VM Stopped", () => get(a, "VirtualMachine", "src", "vm1")?.status?.printableStatus === "Stopped");
  });

  it("stalled and broken sync connections stop the copy; it resumes when traffic flows again", async () => {
    const { a: ta, b: tb } = await twoClusters(1000, { kubevirt: { migrations: { bandwidthPerMigration: "64Mi" } } });
    const a = ta.cluster;
    const b = tb.cluster;
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    createPair(a, b);
    await waitFor("copy running", () => (tb.kv.migrationMetrics()[0]?.receivedBytes ?? 0) > 0);
    tb.kv.stallSync(true);
    await new Promise((r) => setTimeout(r, 30));
    const before = tb.kv.migrationMetrics()[0]!.receivedBytes!;
    await new Promise((r) => setTimeout(r, 60));
    expect(tb.kv.migrationMetrics()[0]!.receivedBytes).toBe(before);
    tb.kv.stallSync(false);
    await waitFor("flowing again", () => tb.kv.migrationMetrics()[0]!.receivedBytes! > before);
    ta.kv.breakSyncConnections();
    await waitFor("target VMIM Succeeded", () => phase(b, "dst", "tgt") === "Succeeded", 20_000);
  });

  it("queues decentralized target migrations beyond parallelMigrationsPerCluster on the target", async () => {
    const { a: ta, b: tb } = await twoClusters(1000, { kubevirt: { migrations: { parallelMigrationsPerCluster: 1, bandwidthPerMigration: "128Mi" } } });
    const a = ta.cluster;
    const b = tb.cluster;
    await Promise.all([sourceVM(a, "2Gi", "x"), sourceVM(a, "2Gi", "y")]);
    await exchangeCAs(a, b);
    await Promise.all([receiverVM(b, "2Gi", "x"), receiverVM(b, "2Gi", "y")]);
    createPair(a, b, "id-x", "x", { src: "sx", tgt: "tx" });
    createPair(a, b, "id-y", "y", { src: "sy", tgt: "ty" });
    await waitFor("one target running", () => [phase(b, "dst", "tx"), phase(b, "dst", "ty")].includes("Running"));
    expect([phase(b, "dst", "tx"), phase(b, "dst", "ty")]).toContain("Pending");
    await waitFor("both done", () => phase(b, "dst", "tx") === "Succeeded" && phase(b, "dst", "ty") === "Succeeded", 20_000);
  });
});
