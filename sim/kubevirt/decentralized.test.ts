// Decentralized live migration between two simulated clusters, driven over HTTPS (client-node) with
// faults and migration metrics from the control API.
/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import type { KubeClient } from "../testing.js";
import { CABundleKey } from "./constants.js";
import { parseBundle } from "./pki.js";
import { type KubeVirtSeed, type TestCluster, type TestWorld, startTestWorld, vmSpec, waitFor } from "./testing.js";

let world: TestWorld | undefined;
afterEach(async () => {
  await world?.stop();
  world = undefined;
});

async function twoClusters(kubevirt: KubeVirtSeed = {}, scale = 1000) {
  world = await startTestWorld({ a: { namespaces: ["default", "src"], kubevirt }, b: { namespaces: ["default", "dst"], kubevirt } }, { scale });
  return { a: world.cluster("a"), b: world.cluster("b") };
}

const VMIM = "VirtualMachineInstanceMigration";
/** Timeouts out of reach (~100 s real at scale 1000): with a "no-converge" guest a copy stays in flight until the test lets it go. */
const HOLD = { bandwidthPerMigration: "32Mi", progressTimeout: 100_000, completionTimeoutPerGiB: 100_000 };
const GiB = 2 ** 30;

async function bundle(k: KubeClient): Promise<string> {
  return (await k.must("ConfigMap", "kubevirt", "kubevirt-ca")).data[CABundleKey];
}

/** The user-guide CA exchange: each cluster's kubevirt-ca bundle into the other's kubevirt-external-ca. */
async function exchangeCAs(a: TestCluster, b: TestCluster) {
  const aPem = await bundle(a.k);
  const bPem = await bundle(b.k);
  await a.k.patch("ConfigMap", "kubevirt", "kubevirt-external-ca", { data: { [CABundleKey]: bPem } });
  await b.k.patch("ConfigMap", "kubevirt", "kubevirt-external-ca", { data: { [CABundleKey]: aPem } });
  const has = async (c: TestCluster, pem: string) => {
    const want = parseBundle(pem).map((x) => x.fingerprint256);
    const got = new Set(parseBundle(await bundle(c.k)).map((x) => x.fingerprint256));
    return want.every((f) => got.has(f));
  };
  await waitFor("CA bundles merged", async () => (await has(a, bPem)) && (await has(b, aPem)));
}

async function sourceVM(a: TestCluster, memory = "4Gi", name = "vm1", disk = "8Gi") {
  const spec = vmSpec(name, {
    memory,
    volumes: [{ name: "root", dataVolume: { name: `${name}-root` } }],
    dataVolumeTemplates: [{ metadata: { name: `${name}-root` }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: disk } } } } }],
  });
  await a.k.create("VirtualMachine", "src", spec);
  await waitFor("source running", async () => (await a.k.get("VirtualMachine", "src", name))?.status?.printableStatus === "Running", 15_000);
}

async function receiverVM(b: TestCluster, memory = "4Gi", name = "vm1", disk = "8Gi") {
  await b.k.create("DataVolume", "dst", {
    metadata: { name: `${name}-root`, annotations: { "cdi.kubevirt.io/storage.usePopulator": "true" } },
    spec: { source: { blank: {} }, storage: { resources: { requests: { storage: disk } } } },
  });
  await waitFor("target DV", async () => ["Succeeded", "WaitForFirstConsumer", "PendingPopulation"].includes((await b.k.get("DataVolume", "dst", `${name}-root`))?.status?.phase));
  const spec = vmSpec(name, { runStrategy: "WaitAsReceiver", memory, volumes: [{ name: "root", dataVolume: { name: `${name}-root` } }] });
  await b.k.create("VirtualMachine", "dst", { ...spec, metadata: { name, annotations: { "kubevirt.io/restore-run-strategy": "Always" } } });
  await waitFor("receiver WaitingForSync", async () => (await b.k.get("VirtualMachineInstance", "dst", name))?.status?.phase === "WaitingForSync");
}

async function syncAddress(c: TestCluster): Promise<string> {
  return (await c.k.must("KubeVirt", "kubevirt", "kubevirt")).status.synchronizationAddresses[0];
}

async function createPair(a: TestCluster, b: TestCluster, id = "mig-1", vm = "vm1", names = { src: "src", tgt: "tgt" }) {
  await b.k.create(VMIM, "dst", { metadata: { name: names.tgt }, spec: { vmiName: vm, receive: { migrationID: id } } });
  const addr = await syncAddress(b);
  await a.k.create(VMIM, "src", { metadata: { name: names.src }, spec: { vmiName: vm, sendTo: { migrationID: id, connectURL: addr } } });
  return addr;
}

const phase = async (c: TestCluster, ns: string, name: string): Promise<string | undefined> => (await c.k.get(VMIM, ns, name))?.status?.phase;
const metric = async (c: TestCluster, role: "source" | "target") => (await c.kv.migrations()).find((m) => m.role === role);
const blocked = async (c: TestCluster, ns: string, name: string) => ((await c.k.get(VMIM, ns, name))?.status?.conditions ?? []).find((x: any) => x.type === "decentralizedMigrationBlocked");

describe("decentralized live migration between two simulated clusters", () => {
  it("completes after the CA exchange: target runs, run strategy restored, source Halted and its VMI gone", async () => {
    const { a, b } = await twoClusters();
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    const tgt = await b.k.phases(VMIM, "dst", "tgt");
    const src = await a.k.phases(VMIM, "src", "src");
    const addr = await createPair(a, b);
    expect(addr).toMatch(/^127\.0\.0\.1:\d+$/);
    await waitFor("target VMIM Succeeded", async () => (await phase(b, "dst", "tgt")) === "Succeeded", 20_000);
    const tvmi = await waitFor("target VMI running", async () => {
      const o = await b.k.get("VirtualMachineInstance", "dst", "vm1");
      return o?.status?.phase === "Running" ? o : undefined;
    });
    expect(tvmi.metadata.annotations?.["kubevirt.io/create-migration-target"]).toBeUndefined();
    await waitFor("target runStrategy restored", async () => (await b.k.get("VirtualMachine", "dst", "vm1"))?.spec?.runStrategy === "Always");
    await waitFor("source Halted", async () => (await a.k.get("VirtualMachine", "src", "vm1"))?.spec?.runStrategy === "Halted");
    await waitFor("source VMI gone", async () => !(await a.k.get("VirtualMachineInstance", "src", "vm1")));
    await waitFor("source VMIM gone (VMI deleted)", async () => !(await a.k.get(VMIM, "src", "src")) && src.deleted());
    await waitFor("source VM Stopped", async () => (await a.k.get("VirtualMachine", "src", "vm1"))?.status?.printableStatus === "Stopped");
    expect(src.phases).toEqual(["", "Synchronizing", "Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]);
    expect(tgt.phases).toEqual(["", "WaitingForSync", "Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]);
    src.stop();
    tgt.stop();
    const tm = await b.k.must(VMIM, "dst", "tgt");
    expect(tm.status.migrationState.completed).toBe(true);
    expect(tm.status.synchronizationAddresses).toEqual([addr]);
    expect(tm.status.phaseTransitionTimestamps.map((t: any) => t.phase)).toEqual(tgt.phases.slice(1));
    expect(tm.metadata.finalizers ?? []).toEqual([]);
    expect(tm.metadata.labels?.["kubevirt.io/vmi-name"]).toBe("vm1");
    // the bytes really crossed the TLS connection
    const recv = await metric(b, "target");
    expect(recv?.receivedBytes).toBeGreaterThanOrEqual(4 * GiB + 8 * GiB);
    expect(recv?.receivedWireBytes).toBeGreaterThan(0);
  });

  it("migrates a 16 GiB VM at time scale 10000: every byte of memory and disk crosses the TLS connection", async () => {
    // Default bandwidth (unlimited: the 1 Gbit/s link), so ~230 simulated seconds of copy. A one-year
    // CA: at this scale the default 7-day CA is older than its overlap after ~12 s real, and imported
    // CAs then drop out at the next reconcile.
    const { a, b } = await twoClusters({ selfSigned: { ca: { duration: "8760h" } } }, 10_000);
    await sourceVM(a, "16Gi", "big", "8Gi");
    await exchangeCAs(a, b);
    await receiverVM(b, "16Gi", "big", "8Gi");
    const src = await a.k.phases(VMIM, "src", "big-out");
    await createPair(a, b, "id-big", "big", { src: "big-out", tgt: "big-in" });
    await waitFor("target VMIM Succeeded", async () => (await phase(b, "dst", "big-in")) === "Succeeded", 30_000);
    await waitFor("source VMIM Succeeded (watched)", () => src.phases.includes("Succeeded"), 10_000);
    src.stop();
    expect(src.phases).not.toContain("Failed");
    await waitFor("target VMI running", async () => (await b.k.get("VirtualMachineInstance", "dst", "big"))?.status?.phase === "Running");
    // (the source's virt-handler forgot the copy with its collected VMIM; the target keeps its count)
    const received = (await metric(b, "target"))!;
    expect(received.state).toBe("completed");
    // 16 GiB of memory (one full pass, plus what the guest dirtied meanwhile) and the 8 GiB disk
    expect(received.receivedBytes).toBeGreaterThanOrEqual(16 * GiB + 8 * GiB);
    expect(received.receivedWireBytes).toBeGreaterThan(0);
  });

  it("stays blocked with the TLS reason without the CA exchange, and proceeds once it happens", async () => {
    const { a, b } = await twoClusters();
    await sourceVM(a);
    await receiverVM(b);
    const src = await a.k.phases(VMIM, "src", "src");
    await createPair(a, b);
    const cond = await waitFor("blocked condition", () => blocked(a, "src", "src"));
    expect(cond.reason).toBe("DecentralizedNotLiveMigratable");
    expect(cond.message).toContain("x509: certificate signed by unknown authority");
    const tcond = await waitFor("target waits", () => blocked(b, "dst", "tgt"));
    expect(tcond.message).toBe("waiting for incoming synchronization, unable to proceed");
    expect(await phase(a, "src", "src")).toBe("Synchronizing");
    // a watch from before its creation: the source never went past Synchronizing while blocked
    await new Promise((r) => setTimeout(r, 300));
    expect(await phase(a, "src", "src")).toBe("Synchronizing");
    expect(src.phases).toEqual(["", "Synchronizing"]);
    src.stop();
    await exchangeCAs(a, b);
    await waitFor("target VMIM Succeeded", async () => (await phase(b, "dst", "tgt")) === "Succeeded", 30_000);
  });

  it("one-way trust fails on the other side's handshake", async () => {
    const { a, b } = await twoClusters();
    await sourceVM(a);
    await receiverVM(b);
    // only the source trusts the target: the target rejects the source's client certificate
    await a.k.patch("ConfigMap", "kubevirt", "kubevirt-external-ca", { data: { [CABundleKey]: await bundle(b.k) } });
    await waitFor("a trusts b", async () => parseBundle(await bundle(a.k)).length === 2);
    await createPair(a, b);
    const cond = await waitFor("blocked condition", () => blocked(a, "src", "src"));
    expect(cond.message).toContain("remote error: tls: unknown certificate authority");
  });

  it("cancels by deleting both VMIMs: the source keeps running, the target waits again and can be removed", async () => {
    // a non-converging guest and timeouts out of reach hold the copy in flight until it is cancelled
    const { a, b } = await twoClusters({ migrations: HOLD });
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    await a.kv.setDirtyRate("src", "vm1", "no-converge");
    await createPair(a, b);
    await waitFor("copy running", async () => (await phase(a, "src", "src")) === "Running" && ((await metric(a, "source"))?.dataProcessedBytes ?? 0) > 0);
    await a.k.delete(VMIM, "src", "src");
    // the source's CancelMigration may have removed the target VMIM already
    await b.k.delete(VMIM, "dst", "tgt", { ignoreNotFound: true });
    await waitFor("both VMIMs gone", async () => !(await a.k.get(VMIM, "src", "src")) && !(await b.k.get(VMIM, "dst", "tgt")));
    const svmi = await a.k.must("VirtualMachineInstance", "src", "vm1");
    expect(svmi.status.phase).toBe("Running");
    expect(svmi.status.migrationState).toMatchObject({ abortRequested: true, failed: true, abortStatus: "Succeeded" });
    expect((await a.k.must("VirtualMachine", "src", "vm1")).spec.runStrategy).toBe("Always");
    await waitFor("target waits", async () => (await b.k.get("VirtualMachineInstance", "dst", "vm1"))?.status?.phase === "WaitingForSync");
    await waitFor("target VM WaitingForReceiver", async () => (await b.k.get("VirtualMachine", "dst", "vm1"))?.status?.printableStatus === "WaitingForReceiver");
    await b.k.delete("VirtualMachine", "dst", "vm1");
    await waitFor("target VM removed", async () => !(await b.k.get("VirtualMachine", "dst", "vm1")) && !(await b.k.get("VirtualMachineInstance", "dst", "vm1")));
  });

  it("deleting one VMIM cancels the pair: the peer is told over the sync connection", async () => {
    const { a, b } = await twoClusters({ migrations: HOLD });
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    await a.kv.setDirtyRate("src", "vm1", "no-converge");
    await createPair(a, b);
    await waitFor("copy running", async () => (await phase(b, "dst", "tgt")) === "Running");
    await b.k.delete(VMIM, "dst", "tgt");
    await waitFor("source VMIM deleted by CancelMigration", async () => !(await a.k.get(VMIM, "src", "src")));
    await waitFor("target VMIM gone", async () => !(await b.k.get(VMIM, "dst", "tgt")));
    expect((await a.k.must("VirtualMachineInstance", "src", "vm1")).status.phase).toBe("Running");
  });

  it("a non-converging guest fails both sides after progressTimeout, without retry; the source keeps running", async () => {
    const { a, b } = await twoClusters({ migrations: { progressTimeout: 30 } });
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    await a.kv.setDirtyRate("src", "vm1", "no-converge");
    await createPair(a, b);
    await waitFor("source Failed", async () => (await phase(a, "src", "src")) === "Failed", 15_000);
    await waitFor("target Failed", async () => (await phase(b, "dst", "tgt")) === "Failed", 15_000);
    expect((await a.k.must("VirtualMachineInstance", "src", "vm1")).status.migrationState.failureReason).toBe("Live migration has been aborted");
    expect((await metric(a, "source"))?.abortCause).toBe("progressTimeout");
    expect((await a.k.must("VirtualMachineInstance", "src", "vm1")).status.phase).toBe("Running");
    await waitFor("target VMI back to WaitingForSync", async () => (await b.k.get("VirtualMachineInstance", "dst", "vm1"))?.status?.phase === "WaitingForSync");
    expect((await b.k.must("VirtualMachineInstance", "dst", "vm1")).status.migrationState).toMatchObject({ failed: true, completed: true });
    await waitFor("target VM WaitingForReceiver", async () => (await b.k.get("VirtualMachine", "dst", "vm1"))?.status?.printableStatus === "WaitingForReceiver");
    await new Promise((r) => setTimeout(r, 200));
    expect(await a.k.list(VMIM)).toHaveLength(1);
    expect(await b.k.list(VMIM)).toHaveLength(1);
    // the user guide's retry: delete both VMIMs and the target VM, then start over
    await a.k.delete(VMIM, "src", "src");
    await b.k.delete(VMIM, "dst", "tgt");
    await b.k.delete("VirtualMachine", "dst", "vm1");
    await waitFor("target VM gone", async () => !(await b.k.get("VirtualMachine", "dst", "vm1")) && !(await b.k.get("VirtualMachineInstance", "dst", "vm1")));
    await a.kv.setDirtyRate("src", "vm1", 1024 * 1024);
    const spec = vmSpec("vm1", { runStrategy: "WaitAsReceiver", memory: "4Gi", volumes: [{ name: "root", dataVolume: { name: "vm1-root" } }] });
    await b.k.create("VirtualMachine", "dst", { ...spec, metadata: { name: "vm1", annotations: { "kubevirt.io/restore-run-strategy": "Always" } } });
    await waitFor("receiver again", async () => (await b.k.get("VirtualMachineInstance", "dst", "vm1"))?.status?.phase === "WaitingForSync");
    await createPair(a, b, "mig-2", "vm1", { src: "src2", tgt: "tgt2" });
    await waitFor("retry Succeeded", async () => (await phase(b, "dst", "tgt2")) === "Succeeded", 20_000);
    await waitFor("source Halted", async () => (await a.k.get("VirtualMachine", "src", "vm1"))?.spec?.runStrategy === "Halted");
  });

  it("a killed source VMI fails the migration; the source VM ends Halted as vm.go does for a completed-failed decentralized migration", async () => {
    const { a, b } = await twoClusters({ migrations: HOLD });
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    await a.kv.setDirtyRate("src", "vm1", "no-converge");
    await createPair(a, b);
    await waitFor("copy running", async () => (await phase(a, "src", "src")) === "Running");
    await a.kv.killVMI("src", "vm1");
    await waitFor("source VMIM failed or gone", async () => !(await a.k.get(VMIM, "src", "src")) || (await phase(a, "src", "src")) === "Failed");
    await waitFor("target VMIM failed", async () => (await phase(b, "dst", "tgt")) === "Failed", 15_000);
    await waitFor("target VM WaitingForReceiver", async () => (await b.k.get("VirtualMachine", "dst", "vm1"))?.status?.printableStatus === "WaitingForReceiver");
    await waitFor("source VM Halted", async () => (await a.k.get("VirtualMachine", "src", "vm1"))?.spec?.runStrategy === "Halted");
    await waitFor("source VM Stopped", async () => (await a.k.get("VirtualMachine", "src", "vm1"))?.status?.printableStatus === "Stopped");
  });

  it("a stalled sync connection holds the copy; it resumes when traffic flows again", async () => {
    const { a, b } = await twoClusters({ migrations: HOLD });
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    await a.kv.setDirtyRate("src", "vm1", "no-converge"); // in flight until released below
    await createPair(a, b);
    await waitFor("copy running", async () => ((await metric(b, "target"))?.receivedBytes ?? 0) > 0);
    await b.kv.stallSync(true);
    await new Promise((r) => setTimeout(r, 30));
    const before = (await metric(b, "target"))!.receivedBytes!;
    await new Promise((r) => setTimeout(r, 60));
    expect((await metric(b, "target"))!.receivedBytes).toBe(before);
    await b.kv.stallSync(false);
    await waitFor("flowing again", async () => (await metric(b, "target"))!.receivedBytes! > before);
    await a.kv.setDirtyRate("src", "vm1", 1024 * 1024);
    await waitFor("target VMIM Succeeded", async () => (await phase(b, "dst", "tgt")) === "Succeeded", 20_000);
  });

  it("broken sync connections are dialled again and the copy goes on over the new connection", async () => {
    const { a, b } = await twoClusters({ migrations: HOLD });
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    await a.kv.setDirtyRate("src", "vm1", "no-converge"); // in flight until released below
    const addr = await createPair(a, b);
    await waitFor("copy running", async () => ((await metric(b, "target"))?.receivedBytes ?? 0) > 0);
    const first = (await metric(a, "source"))!;
    expect(first).toMatchObject({ dataConnections: 1, dataAddress: addr });
    await a.kv.breakSyncConnections();
    const cutAt = (await metric(b, "target"))!.receivedBytes!;
    // the source dials the same address again and data arrives over the new connection
    await waitFor("reconnected", async () => ((await metric(a, "source"))?.dataConnections ?? 0) >= 2);
    await waitFor("data after the cut", async () => (await metric(b, "target"))!.receivedBytes! > cutAt);
    expect((await metric(a, "source"))!.dataAddress).toBe(addr);
    await a.kv.setDirtyRate("src", "vm1", 1024 * 1024);
    await waitFor("target VMIM Succeeded", async () => (await phase(b, "dst", "tgt")) === "Succeeded", 20_000);
    expect((await metric(b, "target"))!.receivedBytes).toBeGreaterThanOrEqual(4 * GiB + 8 * GiB);
  });

  it("a sync-controller leader change on the target mid-copy: the new address reaches the source and the copy follows it", async () => {
    const { a, b } = await twoClusters({ migrations: HOLD });
    await sourceVM(a);
    await exchangeCAs(a, b);
    await receiverVM(b);
    await a.kv.setDirtyRate("src", "vm1", "no-converge"); // in flight until released below
    const src = await a.k.phases(VMIM, "src", "src");
    const old = await createPair(a, b);
    await waitFor("copy running", async () => ((await metric(b, "target"))?.receivedBytes ?? 0) > 0);
    await b.kv.moveSyncAddress();
    const moved = await syncAddress(b);
    expect(moved).not.toBe(old);
    // the target's sync controller pushes its new address to the source, which records it on its VMI
    await waitFor("source VMI knows the new address", async () => (await a.k.get("VirtualMachineInstance", "src", "vm1"))?.status?.migrationState?.targetState?.syncAddress === moved);
    const at = (await metric(b, "target"))!.receivedBytes!;
    await waitFor("copy follows the new address", async () => (await metric(a, "source"))?.dataAddress === moved);
    await waitFor("data over the new address", async () => (await metric(b, "target"))!.receivedBytes! > at);
    expect((await metric(a, "source"))!.dataConnections).toBeGreaterThanOrEqual(2);
    await a.kv.setDirtyRate("src", "vm1", 1024 * 1024);
    await waitFor("target VMIM Succeeded", async () => (await phase(b, "dst", "tgt")) === "Succeeded", 20_000);
    await waitFor("source VMIM Succeeded", () => src.phases.includes("Succeeded"), 20_000);
    src.stop();
    expect(src.phases).not.toContain("Failed");
    expect((await metric(b, "target"))!.receivedBytes).toBeGreaterThanOrEqual(4 * GiB + 8 * GiB);
  });

  it("queues decentralized target migrations beyond parallelMigrationsPerCluster on the target", async () => {
    const { a, b } = await twoClusters({ migrations: { ...HOLD, parallelMigrationsPerCluster: 1, bandwidthPerMigration: "128Mi" } });
    await Promise.all([sourceVM(a, "2Gi", "x"), sourceVM(a, "2Gi", "y")]);
    await exchangeCAs(a, b);
    await Promise.all([receiverVM(b, "2Gi", "x"), receiverVM(b, "2Gi", "y")]);
    // both guests hold their copy in flight: whichever runs first keeps the other queued
    for (const vm of ["x", "y"]) await a.kv.setDirtyRate("src", vm, "no-converge");
    await createPair(a, b, "id-x", "x", { src: "sx", tgt: "tx" });
    await createPair(a, b, "id-y", "y", { src: "sy", tgt: "ty" });
    await waitFor("one target running", async () => [await phase(b, "dst", "tx"), await phase(b, "dst", "ty")].includes("Running"));
    expect([await phase(b, "dst", "tx"), await phase(b, "dst", "ty")]).toContain("Pending");
    for (const vm of ["x", "y"]) await a.kv.setDirtyRate("src", vm, 1024 * 1024);
    await waitFor("both done", async () => (await phase(b, "dst", "tx")) === "Succeeded" && (await phase(b, "dst", "ty")) === "Succeeded", 20_000);
  });
});
