// Same-cluster moves on a simulated cluster: storage live migration (to success, and cancelled by
// an exact revert) and the offline path (CDI clone, volumes swapped, old claims removed on finalize).
import { afterEach, describe, expect, it } from "vitest";
import type { Task } from "../../proto/bus/index.js";
import type { World } from "../../sim/world.js";
import type { DataVolume, VirtualMachine, VirtualMachineInstance } from "../core/kube.js";
import { movedClaimName, ORIGINAL_VOLUMES_ANNOTATION } from "../core/names.js";
import { base, describeRequest, executor, kube, until, waitFor, world } from "./testing.js";

let w: World | undefined;
afterEach(async () => {
  await w?.stop();
  w = undefined;
});

const here = (name: string) => ({ cluster: "a", namespace: "vms", name });
const getVm = (name: string) => kube(w!, "a").get<VirtualMachine>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", namespace: "vms", name });
const getVmi = (name: string) => kube(w!, "a").get<VirtualMachineInstance>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", namespace: "vms", name });
const getDv = (name: string) => kube(w!, "a").get<DataVolume>({ apiVersion: "cdi.kubevirt.io/v1beta1", kind: "DataVolume", namespace: "vms", name });
const claims = (vm: VirtualMachine | undefined) => (vm?.spec.template.spec.volumes ?? []).map((v) => v.dataVolume?.name);
const vmiClaims = (vmi: VirtualMachineInstance | undefined) => (vmi?.spec.volumes ?? []).map((v) => v.dataVolume?.name);

async function moveTask(role: "storage" | "offline", uid: string, name: string): Promise<Extract<Task, { action: "migrate" }>> {
  const d = await executor(w!, "a").describeVm(describeRequest("a", "vms", name));
  return { ...base(uid, 1, here(name), here(name)), role, action: "migrate", storageMap: [{ source: "standard", target: "fast" }], sourceVolumes: d.sourceFacts.volumes };
}

describe("same-cluster volume moves", () => {
  it("storage live migration: destinations created, volumes swapped, KubeVirt copies, finalize delete removes the old claim", async () => {
    w = await world();
    const ea = executor(w, "a");
    await waitFor("web-1 running", async () => (await getVmi("web-1"))?.status?.phase === "Running");
    const task = await moveTask("storage", "s1", "web-1");
    const dest = movedClaimName("web-1-rootdisk", "s1");
    const done = await until(ea, task, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000);
    expect(done.step).toBe("Succeeded");
    expect((await getDv(dest))?.spec.storage?.storageClassName).toBe("fast");
    const vmi = await getVmi("web-1");
    expect(vmi?.status?.phase).toBe("Running");
    expect(vmiClaims(vmi)).toEqual([dest]);
    const vm = await getVm("web-1");
    expect(vm?.spec.updateVolumesStrategy).toBe("Migration");
    expect(vm?.spec.dataVolumeTemplates?.map((t) => t.metadata.name)).toEqual([dest]);
    // reconcile again: nothing changes, still Succeeded
    expect((await ea.reconcile(task)).step).toBe("Succeeded");
    const fin: Task = { ...base("s1", 1, here("web-1"), here("web-1")), role: "storage", action: "finalize", sourcePolicy: "delete" };
    expect((await until(ea, fin, (s) => s.step === "Finalized" || s.step === "Failed")).step).toBe("Finalized");
    const after = await getVm("web-1");
    expect(after?.spec.updateVolumesStrategy).toBeUndefined();
    expect(after?.metadata.annotations?.[ORIGINAL_VOLUMES_ANNOTATION]).toBeUndefined();
    await waitFor("old DataVolume gone", async () => !(await getDv("web-1-rootdisk")));
    expect((await getVmi("web-1"))?.status?.phase).toBe("Running");
    // abort after success: keeps the moved volumes
    const abort: Task = { ...base("s1", 1, here("web-1"), here("web-1")), role: "storage", action: "abort" };
    expect((await ea.reconcile(abort)).step).not.toBe("Failed");
    expect(claims(await getVm("web-1"))).toEqual([dest]);
  }, 120_000);

  it("storage live migration cancelled by an exact revert: original volumes back, destinations deleted, VM running", async () => {
    w = await world({ kubevirt: { migrations: { bandwidthPerMigration: "1Mi" } } });
    const ea = executor(w, "a");
    await waitFor("web-1 running", async () => (await getVmi("web-1"))?.status?.phase === "Running");
    const original = claims(await getVm("web-1"));
    const task = await moveTask("storage", "s2", "web-1");
    expect((await until(ea, task, (s) => s.step === "Migrating" || s.step === "Failed")).step).toBe("Migrating");
    await waitFor("copy started", async () => ((await getVmi("web-1"))?.status?.migratedVolumes?.length ?? 0) > 0);
    const abort: Task = { ...base("s2", 1, here("web-1"), here("web-1")), role: "storage", action: "abort" };
    const aborted = await until(ea, abort, (s) => s.step === "Aborted" || s.step === "Failed" || s.step === "Succeeded", 60_000);
    expect(aborted.error).toBeUndefined();
    expect(aborted.step).toBe("Aborted");
    const vm = await getVm("web-1");
    expect(claims(vm)).toEqual(original);
    expect(vm?.spec.updateVolumesStrategy).toBeUndefined();
    expect(vm?.metadata.annotations?.[ORIGINAL_VOLUMES_ANNOTATION]).toBeUndefined();
    expect(await getDv(movedClaimName("web-1-rootdisk", "s2"))).toBeUndefined();
    const vmi = await getVmi("web-1");
    expect(vmi?.status?.phase).toBe("Running");
    expect(vmiClaims(vmi)).toEqual(original);
  }, 120_000);

  it("offline path: a stopped VM's disks are cloned into the new class and swapped in; finalize halt keeps the old claims", async () => {
    w = await world({
      vms: [{ name: "cold", namespace: "vms", memory: "1Gi", cpu: 1, runStrategy: "Halted", disks: [{ name: "rootdisk", size: "1Gi" }, { name: "data", size: "1Gi", template: false }] }],
    });
    const ea = executor(w, "a");
    await waitFor("disks ready", async () => (await getDv("cold-data"))?.status?.phase === "Succeeded");
    const running = await moveTask("storage", "o0", "cold");
    expect((await ea.reconcile(running)).error?.code).toBe("VmNotRunning");
    const task = await moveTask("offline", "o1", "cold");
    const done = await until(ea, task, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000);
    expect(done.step).toBe("Succeeded");
    const dests = ["cold-rootdisk", "cold-data"].map((c) => movedClaimName(c, "o1"));
    expect(claims(await getVm("cold"))).toEqual(dests);
    for (const d of dests) {
      const dv = await getDv(d);
      expect(dv?.spec.source?.pvc?.name).toMatch(/^cold-/);
      expect(dv?.status?.phase).toBe("Succeeded");
    }
    expect(await getVmi("cold")).toBeUndefined();
    const fin: Task = { ...base("o1", 1, here("cold"), here("cold")), role: "offline", action: "finalize", sourcePolicy: "halt" };
    expect((await until(ea, fin, (s) => s.step === "Finalized")).step).toBe("Finalized");
    expect(await getDv("cold-data")).toBeDefined();
    expect((await getVm("cold"))?.metadata.annotations?.[ORIGINAL_VOLUMES_ANNOTATION]).toBeUndefined();
  }, 120_000);

  it("offline abort before the swap removes the clones and leaves the VM as it was", async () => {
    w = await world({ vms: [{ name: "cold", namespace: "vms", memory: "1Gi", cpu: 1, runStrategy: "Halted", disks: [{ name: "rootdisk", size: "1Gi" }] }] });
    const ea = executor(w, "a");
    await waitFor("disk ready", async () => (await getDv("cold-rootdisk"))?.status?.phase === "Succeeded");
    const before = await getVm("cold");
    const task = await moveTask("offline", "o2", "cold");
    expect((await ea.reconcile(task)).step).toBe("CreatingVolumes");
    const abort: Task = { ...base("o2", 1, here("cold"), here("cold")), role: "offline", action: "abort" };
    expect((await until(ea, abort, (s) => s.step === "Aborted")).step).toBe("Aborted");
    expect(await getDv(movedClaimName("cold-rootdisk", "o2"))).toBeUndefined();
    expect((await getVm("cold"))?.spec).toEqual(before?.spec);
  }, 120_000);
});
