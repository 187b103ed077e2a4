// A decentralized live migration between two simulated clusters, driven only by the executors.
import { afterEach, describe, expect, it } from "vitest";
import { TaskStatus, type Task } from "../../proto/bus/index.js";
import type { World } from "../../sim/world.js";
import type { TaskExecutor } from "../executor.js";
import type { DataVolume, VirtualMachine, VirtualMachineInstance } from "../core/kube.js";
import { MIGRATION_LABEL } from "../core/names.js";
import { base, caBundle, describeRequest, executor, kube, preflightRequest, until, waitFor, world } from "./testing.js";

let w: World | undefined;
afterEach(async () => {
  await w?.stop();
  w = undefined;
});

async function trust(ea: TaskExecutor, eb: TaskExecutor) {
  const [pa, pb] = [await caBundle(w!, "a"), await caBundle(w!, "b")];
  return waitFor("trust both ways", async () => {
    const [ta, tb] = await Promise.all([ea.reconcileTrust([{ peer: "b", caBundle: pb }]), eb.reconcileTrust([{ peer: "a", caBundle: pa }])]);
    return ta[0]?.present && tb[0]?.present ? { ta, tb } : undefined;
  });
}

async function prepareTask(ea: TaskExecutor, uid: string, attempt = 1, name = "web-1"): Promise<Extract<Task, { action: "prepare" }>> {
  const d = await ea.describeVm(describeRequest("a", "vms", name));
  return {
    ...base(uid, attempt, { cluster: "a", namespace: "vms", name }, { cluster: "b", namespace: "vms", name }),
    role: "target",
    action: "prepare",
    storageMap: [{ source: "standard", target: "fast" }],
    networkMap: [],
    sourceVm: { manifest: d.vm, dependencies: d.dependencies, volumes: d.sourceFacts.volumes },
  };
}

const vmRunning = async (cluster: string, name: string) => {
  const vmi = await kube(w!, cluster).get<VirtualMachineInstance>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", namespace: "vms", name });
  return vmi?.status?.phase === "Running";
};

async function ferryObjects(cluster: string, uid: string) {
  const k = kube(w!, cluster);
  const sel = `${MIGRATION_LABEL}=${uid}`;
  const lists = await Promise.all([
    k.list("kubevirt.io/v1", "VirtualMachineInstanceMigration", "vms", sel),
    k.list("kubevirt.io/v1", "VirtualMachine", "vms", sel),
    k.list("cdi.kubevirt.io/v1beta1", "DataVolume", "vms", sel),
    k.list("v1", "Secret", "vms", sel),
    k.list("v1", "ConfigMap", "vms", sel),
  ]);
  return lists.flat().map((o) => o.metadata.name);
}

describe("decentralized live migration driven by the executors", () => {
  it("prepares, sends, completes and finalizes; every status parses; prepare stays idempotent after success", async () => {
    w = await world();
    const ea = executor(w, "a");
    const eb = executor(w, "b");
    await waitFor("source running", () => vmRunning("a", "web-1"));
    const t = await trust(ea, eb);
    expect(t.ta[0]!.fingerprints.length).toBeGreaterThan(0);

    const src = await ea.preflight(preflightRequest({ cluster: "a", side: "source", storageMap: [{ source: "standard", target: "fast" }] }));
    expect(src.issues.filter((i) => i.severity === "error")).toEqual([]);
    const d = await ea.describeVm(describeRequest("a", "vms", "web-1"));
    const tgt = await eb.preflight(preflightRequest({ cluster: "b", side: "target", storageMap: [{ source: "standard", target: "fast" }], sourceFacts: d.sourceFacts }));
    expect(tgt.issues.filter((i) => i.severity === "error")).toEqual([]);

    const prepare = await prepareTask(ea, "m1");
    const ready = await until(eb, prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed");
    expect(ready.step).toBe("ReceiverReady");
    expect(ready.syncAddress).toMatch(/:\d+$/);
    const dv = await kube(w, "b").get<DataVolume>({ apiVersion: "cdi.kubevirt.io/v1beta1", kind: "DataVolume", namespace: "vms", name: "web-1-rootdisk" });
    expect(dv?.spec.storage?.storageClassName).toBe("fast");

    const send: Task = { ...base("m1"), role: "source", action: "send", connectUrl: ready.syncAddress! };
    const statuses: TaskStatus[] = [];
    const targetDone = await until(eb, prepare, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000, async () => {
      statuses.push(await ea.reconcile(send));
    });
    expect(targetDone.step).toBe("Succeeded");
    const running = await until(eb, prepare, (s) => s.vm?.vmiPhase === "Running" && s.vm.runStrategy === "Always");
    expect(running.vm).toMatchObject({ exists: true, runStrategy: "Always", vmiPhase: "Running" });
    const sourceDone = await until(ea, send, (s) => s.step === "Succeeded" || s.step === "Failed");
    expect(sourceDone.step).toBe("Succeeded");
    expect(statuses.map((s) => s.step)).toContain("Sending");
    for (const s of [...statuses, ready, targetDone, sourceDone]) expect(() => TaskStatus.parse(s)).not.toThrow();

    const fin: Task = { ...base("m1"), role: "source", action: "finalize", sourcePolicy: "halt" };
    expect((await until(ea, fin, (s) => s.step === "Finalized" || s.step === "Failed")).step).toBe("Finalized");
    const srcVm = await kube(w, "a").get<VirtualMachine>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", namespace: "vms", name: "web-1" });
    expect(srcVm?.spec.runStrategy).toBe("Halted");

    // prepare after success (and from a fresh executor, as after a restart): Succeeded, nothing created.
    const ctl = w.controlClient();
    const mark = (await ctl.requests("b", { limit: 1 })).last;
    const again = await executor(w, "b").reconcile(prepare);
    expect(again.step).toBe("Succeeded");
    const after = await ctl.requests("b", { since: mark });
    expect(after.requests.filter((q) => ["create", "update", "patch", "delete"].includes(q.verb))).toEqual([]);
    // abort after success keeps the VM and says Succeeded
    const abort: Task = { ...base("m1"), role: "target", action: "abort" };
    expect((await eb.reconcile(abort)).step).toBe("Succeeded");
    expect(await vmRunning("b", "web-1")).toBe(true);
  }, 120_000);

  it("abort mid-flight leaves no ferry object on either cluster; the source keeps running", async () => {
    w = await world({ kubevirt: { migrations: { bandwidthPerMigration: "1Mi" } } });
    const ea = executor(w, "a");
    const eb = executor(w, "b");
    await waitFor("source running", () => vmRunning("a", "web-1"));
    await trust(ea, eb);
    const prepare = await prepareTask(ea, "m2");
    const ready = await until(eb, prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed");
    const send: Task = { ...base("m2"), role: "source", action: "send", connectUrl: ready.syncAddress! };
    expect((await until(ea, send, (s) => s.step === "Migrating" || s.step === "Failed")).step).toBe("Migrating");
    // a restarted agent (new executor) continues: no second sendTo VMIM, no write at all
    const ctl = w.controlClient();
    const mark = (await ctl.requests("a", { limit: 1 })).last;
    expect((await executor(w, "a").reconcile(send)).step).toBe("Migrating");
    expect((await ctl.requests("a", { since: mark })).requests.filter((q) => !["get", "list", "watch"].includes(q.verb))).toEqual([]);
    const abortT: Task = { ...base("m2"), role: "target", action: "abort" };
    const abortS: Task = { ...base("m2"), role: "source", action: "abort" };
    expect((await until(ea, abortS, (s) => s.step === "Aborted")).step).toBe("Aborted");
    expect((await until(eb, abortT, (s) => s.step === "Aborted")).step).toBe("Aborted");
    expect(await ferryObjects("a", "m2")).toEqual([]);
    expect(await ferryObjects("b", "m2")).toEqual([]);
    expect(await vmRunning("a", "web-1")).toBe(true);
  }, 120_000);

  it("is idempotent: reconciling twice and from a new executor creates nothing twice", async () => {
    w = await world();
    const ea = executor(w, "a");
    await waitFor("source running", () => vmRunning("a", "web-1"));
    const prepare = await prepareTask(ea, "m3");
    await until(executor(w, "b"), prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed");
    const ctl = w.controlClient();
    const mark = (await ctl.requests("b", { limit: 1 })).last;
    const first = await executor(w, "b").reconcile(prepare);
    const second = await executor(w, "b").reconcile(prepare);
    expect([first.step, second.step]).toEqual(["ReceiverReady", "ReceiverReady"]);
    const writes = (await ctl.requests("b", { since: mark })).requests.filter((q) => q.verb !== "get" && q.verb !== "list" && q.verb !== "watch");
    expect(writes).toEqual([]);
    expect((await ferryObjects("b", "m3")).sort()).toEqual(["ferry-receive-m3-1", "web-1", "web-1-rootdisk"]);
    // the receive VMIM deleted under ferry (a cancel from the source side, or by hand): Failed, never re-created
    await kube(w, "b").delete({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstanceMigration", namespace: "vms", name: "ferry-receive-m3-1" });
    const gone = await until(executor(w, "b"), prepare, (s) => s.step === "Failed");
    expect(gone.error?.code).toBe("ReceiveVmimDeleted");
    expect(await kube(w, "b").get({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstanceMigration", namespace: "vms", name: "ferry-receive-m3-1" })).toBeUndefined();
  }, 120_000);
});

describe("decentralized live migration within one cluster", () => {
  it("moves a VM to another namespace of the same cluster (preflight counts no MAC collision with the source itself)", async () => {
    w = await world();
    const ea = executor(w, "a");
    await waitFor("source running", () => vmRunning("a", "web-1"));
    const d = await ea.describeVm(describeRequest("a", "vms", "web-1"));
    const target = { cluster: "a", namespace: "moved", name: "web-1" };
    const tgt = await ea.preflight(preflightRequest({ cluster: "a", side: "target", target, sourceFacts: d.sourceFacts }));
    expect(tgt.issues.map((i) => i.code)).toEqual(["TargetNamespaceMissing"]);
    const prepare: Task = { ...base("x1", 1, { cluster: "a", namespace: "vms", name: "web-1" }, target), role: "target", action: "prepare", storageMap: [], networkMap: [], sourceVm: { manifest: d.vm, dependencies: d.dependencies, volumes: d.sourceFacts.volumes } };
    const ready = await until(ea, prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed");
    expect(ready.step).toBe("ReceiverReady");
    const send: Task = { ...base("x1", 1, { cluster: "a", namespace: "vms", name: "web-1" }, target), role: "source", action: "send", connectUrl: ready.syncAddress! };
    const done = await until(ea, prepare, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000, () => ea.reconcile(send));
    expect(done.step).toBe("Succeeded");
    await waitFor("moved VMI running", async () => (await kube(w!, "a").get<VirtualMachineInstance>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", namespace: "moved", name: "web-1" }))?.status?.phase === "Running");
    expect((await until(ea, send, (s) => s.step === "Succeeded" || s.step === "Failed")).step).toBe("Succeeded");
  }, 120_000);
});
