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

async function sourceVM(a: SimCluster, memory = "4Gi") {
  const spec = vmSpec("vm1", {
    memory,
    volumes: [{ name: "root", dataVolume: { name: "vm1-root" } }],
    dataVolumeTemplates: [{ metadata: { name: "vm1-root" }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "8Gi" } } } } }],
  });
  a.store.create(R.VirtualMachine, { ...spec, metadata: { name: "vm1", namespace: "src" } });
  await waitFor("source running", () => get(a, "VirtualMachine", "src", "vm1")?.status?.printableStatus === "Running", 15_000);
}

async function receiverVM(b: SimCluster, memory = "4Gi") {
  b.store.create(R.DataVolume, {
    metadata: { name: "vm1-root", namespace: "dst", annotations: { "cdi.kubevirt.io/storage.usePopulator": "true" } },
    spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "8Gi" } } } },
  });
  await waitFor("target DV", () => ["Succeeded", "WaitForFirstConsumer", "PendingPopulation"].includes(get(b, "DataVolume", "dst", "vm1-root")?.status?.phase));
  const spec = vmSpec("vm1", { runStrategy: "WaitAsReceiver", memory, volumes: [{ name: "root", dataVolume: { name: "vm1-root" } }] });
  b.store.create(R.VirtualMachine, { ...spec, metadata: { name: "vm1", namespace: "dst", annotations: { "kubevirt.io/restore-run-strategy": "Always" } } });
  await waitFor("receiver WaitingForSync", () => get(b, "VirtualMachineInstance", "dst", "vm1")?.status?.phase === "WaitingForSync");
}

function createPair(a: SimCluster, b: SimCluster, id = "mig-1") {
  b.store.create(R.VirtualMachineInstanceMigration, { metadata: { name: "tgt", namespace: "dst" }, spec: { vmiName: "vm1", receive: { migrationID: id } } });
  const addr = get(b, "KubeVirt", "kubevirt", "kubevirt")!.status.synchronizationAddresses[0];
  a.store.create(R.VirtualMachineInstanceMigration, { metadata: { name: "src", namespace: "src" }, spec: { vmiName: "vm1", sendTo: { migrationID: id, connectURL: addr } } });
  return addr as string;
}

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
});
