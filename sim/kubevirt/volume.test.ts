/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import { R } from "../apiserver/resources.js";
import type { SimCluster } from "../cluster.js";
import { DEFAULT_STORAGE_CLASSES, type TestCluster, get, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: TestCluster | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

const LIVE = { workloadUpdateMethods: ["LiveMigrate"] };

function blankDV(c: SimCluster, name: string, size = "4Gi", storageClassName?: string) {
  c.store.create(R.DataVolume, {
    metadata: { name, namespace: "default" },
    spec: { source: { blank: {} }, storage: { ...(storageClassName ? { storageClassName } : {}), resources: { requests: { storage: size } } } },
  });
}

async function vmWithDisks(c: SimCluster, name: string, disks: string[], memory = "2Gi") {
  for (const d of disks) blankDV(c, d);
  await waitFor("source DVs", () => disks.every((d) => get(c, "DataVolume", "default", d)?.status?.phase === "Succeeded"));
  const spec = vmSpec(name, { memory, volumes: disks.map((d, i) => ({ name: `disk${i}`, dataVolume: { name: d } })) });
  c.store.create(R.VirtualMachine, { ...spec, metadata: { name, namespace: "default" } });
  await waitFor(`${name} running`, () => get(c, "VirtualMachine", "default", name)?.status?.printableStatus === "Running");
}

function setVolumes(c: SimCluster, vm: string, claims: string[], strategy: string | undefined = "Migration") {
  c.store.modify(R.VirtualMachine, "default", vm, (o) => {
    if (strategy) o.spec.updateVolumesStrategy = strategy;
    else delete o.spec.updateVolumesStrategy;
    o.spec.template.spec.volumes = claims.map((d, i) => ({ name: `disk${i}`, dataVolume: { name: d } }));
  });
}

const vmims = (c: SimCluster) => c.store.list(R.VirtualMachineInstanceMigration, { namespace: "default", labelSelector: "kubevirt.io/volume-update-migration=vm1" }).items;

describe("volume (storage) live migration", () => {
  it("migrates a volume: workload-update VMIM, migratedVolumes, VolumesChange, VMI on the destination", async () => {
    tc = await startTestCluster({ kubevirt: LIVE, storageClasses: [...DEFAULT_STORAGE_CLASSES, { name: "csi-wffc", provisioner: "hostpath.csi.kubevirt.io", volumeBindingMode: "WaitForFirstConsumer" }] });
    const c = tc.cluster;
    await vmWithDisks(c, "vm1", ["src-dv"]);
    // a WaitForFirstConsumer CSI class: CDI uses a populator, the DV waits in PendingPopulation
    blankDV(c, "dst-dv", "5Gi", "csi-wffc");
    await waitFor("dst DV waits", () => get(c, "DataVolume", "default", "dst-dv")?.status?.phase === "PendingPopulation");
    setVolumes(c, "vm1", ["dst-dv"]);
    const vmi = await waitFor("VolumesChange", () => {
      const o = get(c, "VirtualMachineInstance", "default", "vm1");
      return o?.status?.conditions?.find((x: any) => x.type === "VolumesChange" && x.status === "True") ? o : undefined;
    });
    expect(vmi.status.migratedVolumes[0]).toMatchObject({ volumeName: "disk0", sourcePVCInfo: { claimName: "src-dv" }, destinationPVCInfo: { claimName: "dst-dv" } });
    expect(vmi.spec.volumes[0].dataVolume.name).toBe("dst-dv");
    const vm = get(c, "VirtualMachine", "default", "vm1")!;
    expect(vm.status.volumeUpdateState.volumeMigrationState.migratedVolumes[0].destinationPVCInfo.claimName).toBe("dst-dv");
    const m = await waitFor("workload VMIM", () => vmims(c)[0]);
    expect(m.metadata.name).toMatch(/^kubevirt-workload-update-/);
    expect(m.metadata.annotations?.["kubevirt.io/workloadUpdateMigration"]).toBe("");
    expect(m.spec.priority).toBe("user-triggered");
    await waitFor("Succeeded", () => vmims(c)[0]?.status?.migrationState?.completed);
    const done = await waitFor("migratedVolumes cleared", () => {
      const o = get(c, "VirtualMachineInstance", "default", "vm1");
      return o && !o.status.migratedVolumes && !o.status.conditions.some((x: any) => x.type === "VolumesChange") ? o : undefined;
    });
    expect(done.status.volumeStatus[0].persistentVolumeClaimInfo.claimName).toBe("dst-dv");
    expect(get(c, "PersistentVolumeClaim", "default", "dst-dv")!.status.phase).toBe("Bound");
    // KubeVirt keeps the VM's volumeMigrationState after success
    expect(get(c, "VirtualMachine", "default", "vm1")!.status.volumeUpdateState.volumeMigrationState).toBeDefined();
  });

  it("does not start without LiveMigrate in workloadUpdateMethods", async () => {
    tc = await startTestCluster();
    const c = tc.cluster;
    await vmWithDisks(c, "vm1", ["src-dv"]);
    blankDV(c, "dst-dv");
    await waitFor("dst", () => get(c, "DataVolume", "default", "dst-dv")?.status?.phase === "Succeeded");
    setVolumes(c, "vm1", ["dst-dv"]);
    await waitFor("VolumesChange", () => get(c, "VirtualMachineInstance", "default", "vm1")?.status?.conditions?.some((x: any) => x.type === "VolumesChange"));
    await new Promise((r) => setTimeout(r, 200));
    expect(vmims(c)).toHaveLength(0);
  });

  it("cancels on an exact revert and refuses a partial one with KubeVirt's message", async () => {
    tc = await startTestCluster({ kubevirt: { ...LIVE, migrations: { bandwidthPerMigration: "8Mi" } } });
    const c = tc.cluster;
    await vmWithDisks(c, "vm1", ["a-src", "b-src"]);
    for (const d of ["a-dst", "b-dst"]) blankDV(c, d);
    await waitFor("dst", () => ["a-dst", "b-dst"].every((d) => get(c, "DataVolume", "default", d)?.status?.phase === "Succeeded"));
    setVolumes(c, "vm1", ["a-dst", "b-dst"]);
    await waitFor("running migration", () => vmims(c)[0]?.status?.phase === "Running");
    setVolumes(c, "vm1", ["a-src", "b-dst"]);
    const fail = await waitFor("Failure condition", () => get(c, "VirtualMachine", "default", "vm1")?.status?.conditions?.find((x: any) => x.type === "Failure"));
    expect(fail.message).toContain("The volume can only be reverted to the previous version during the update");
    setVolumes(c, "vm1", ["a-src", "b-src"]);
    const vmi = await waitFor("cancelled", () => {
      const o = get(c, "VirtualMachineInstance", "default", "vm1");
      return o?.status?.conditions?.find((x: any) => x.type === "VolumesChange" && x.status === "False" && x.reason === "VolumesChangeCancellation") ? o : undefined;
    });
    expect(vmi.status.migratedVolumes).toBeUndefined();
    expect(vmi.spec.volumes.map((v: any) => v.dataVolume.name)).toEqual(["a-src", "b-src"]);
    await waitFor("VMIM deleted", () => vmims(c).length === 0);
    await waitFor("VM state cleared", () => !get(c, "VirtualMachine", "default", "vm1")?.status?.volumeUpdateState?.volumeMigrationState);
    expect(get(c, "VirtualMachineInstance", "default", "vm1")!.status.phase).toBe("Running");
  });

  it("reports a missing destination on the VMI and RestartRequired for unsupported disks", async () => {
    tc = await startTestCluster({ kubevirt: LIVE });
    const c = tc.cluster;
    await vmWithDisks(c, "vm1", ["src-dv"]);
    setVolumes(c, "vm1", ["nope"]);
    const cond = await waitFor("VolumesChange False", () => get(c, "VirtualMachineInstance", "default", "vm1")?.status?.conditions?.find((x: any) => x.type === "VolumesChange"));
    expect(cond).toMatchObject({ status: "False", message: "One of the destination volumes doesn't exist: the datavolume nope doesn't exist" });
    setVolumes(c, "vm1", ["src-dv"]);
    blankDV(c, "dst-dv");
    await waitFor("dst", () => get(c, "DataVolume", "default", "dst-dv")?.status?.phase === "Succeeded");
    c.store.modify(R.VirtualMachine, "default", "vm1", (o) => {
      o.spec.template.spec.domain.devices.disks[0].shareable = true;
      o.spec.updateVolumesStrategy = "Migration";
      o.spec.template.spec.volumes = [{ name: "disk0", dataVolume: { name: "dst-dv" } }];
    });
    // the VMI was started without `shareable`; the VM controller validates against the running VMI's disks
    c.store.modify(R.VirtualMachineInstance, "default", "vm1", (o) => (o.spec.domain.devices.disks[0].shareable = true));
    const rr = await waitFor("RestartRequired", () => get(c, "VirtualMachine", "default", "vm1")?.status?.conditions?.find((x: any) => x.type === "RestartRequired"));
    expect(rr.message).toBe("invalid volumes to update with migration: shareable: [disk0]");
  });

  it("sets ManualRecoveryRequired when the VMI vanishes mid-copy; the VM cannot start until the volumes are reverted", async () => {
    tc = await startTestCluster({ kubevirt: { ...LIVE, migrations: { bandwidthPerMigration: "4Mi" } } });
    const c = tc.cluster;
    await vmWithDisks(c, "vm1", ["src-dv"]);
    blankDV(c, "dst-dv");
    await waitFor("dst", () => get(c, "DataVolume", "default", "dst-dv")?.status?.phase === "Succeeded");
    // RerunOnFailure/Always would restart the VMI in the same pass that notices it is gone (vm.go);
    // Manual (like a VM stopped by its owner) shows the condition blocking the next start.
    c.store.modify(R.VirtualMachine, "default", "vm1", (o) => (o.spec.runStrategy = "Manual"));
    setVolumes(c, "vm1", ["dst-dv"]);
    await waitFor("copying", () => vmims(c)[0]?.status?.phase === "Running");
    tc.kv.killVMI("default", "vm1");
    const cond = await waitFor("ManualRecoveryRequired", () => get(c, "VirtualMachine", "default", "vm1")?.status?.conditions?.find((x: any) => x.type === "ManualRecoveryRequired"));
    expect(cond).toMatchObject({ status: "True", reason: "VMI was removed or was final during the volume migration" });
    await waitFor("VMI gone", () => !get(c, "VirtualMachineInstance", "default", "vm1"));
    await waitFor("VMIM failed or gone", () => vmims(c).every((m) => m.status?.phase === "Failed"));
    c.store.modify(R.VirtualMachine, "default", "vm1", (o) => (o.spec.runStrategy = "Always"));
    await new Promise((r) => setTimeout(r, 200));
    expect(get(c, "VirtualMachineInstance", "default", "vm1")).toBeUndefined();
    expect(get(c, "VirtualMachine", "default", "vm1")!.status.printableStatus).toBe("Stopped");
    // reverting the volumes clears it and the VM starts again
    setVolumes(c, "vm1", ["src-dv"]);
    await waitFor("restarted", () => get(c, "VirtualMachine", "default", "vm1")?.status?.printableStatus === "Running");
    expect(get(c, "VirtualMachine", "default", "vm1")!.status.conditions.some((x: any) => x.type === "ManualRecoveryRequired")).toBe(false);
  });

  it("retries a failed volume migration with back-off until it succeeds", async () => {
    tc = await startTestCluster({ kubevirt: { ...LIVE, migrations: { progressTimeout: 20 } } });
    const c = tc.cluster;
    await vmWithDisks(c, "vm1", ["src-dv"], "4Gi");
    blankDV(c, "dst-dv");
    await waitFor("dst", () => get(c, "DataVolume", "default", "dst-dv")?.status?.phase === "Succeeded");
    tc.kv.setDirtyRate("default", "vm1", "no-converge");
    setVolumes(c, "vm1", ["dst-dv"]);
    await waitFor("first failed", () => vmims(c).some((m) => m.status?.phase === "Failed"));
    await waitFor("a retry", () => vmims(c).length >= 2);
    tc.kv.setDirtyRate("default", "vm1", 1024 * 1024);
    await waitFor("a retry succeeded", () => vmims(c).some((m) => m.status?.phase === "Succeeded"), 20_000);
  });
});
