// Volume (storage) live migration, driven over HTTPS (client-node) with faults from the control API.
/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import { DEFAULT_STORAGE_CLASSES, type TestCluster, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: (TestCluster & { stop(): Promise<void> }) | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

const LIVE = { workloadUpdateMethods: ["LiveMigrate" as const] };
/** Timeouts out of reach: with a "no-converge" guest a copy stays in flight until the test lets it go. */
const HOLD = { progressTimeout: 100_000, completionTimeoutPerGiB: 100_000 };

function blankDV(c: TestCluster, name: string, size = "4Gi", storageClassName?: string) {
  return c.k.create("DataVolume", "default", {
    metadata: { name },
    spec: { source: { blank: {} }, storage: { ...(storageClassName ? { storageClassName } : {}), resources: { requests: { storage: size } } } },
  });
}

const dvPhase = async (c: TestCluster, name: string) => (await c.k.get("DataVolume", "default", name))?.status?.phase;
const vm = (c: TestCluster) => c.k.get("VirtualMachine", "default", "vm1");
const vmi = (c: TestCluster) => c.k.get("VirtualMachineInstance", "default", "vm1");
const vmims = (c: TestCluster) => c.k.list("VirtualMachineInstanceMigration", "default", { labelSelector: "kubevirt.io/volume-update-migration=vm1" });

async function vmWithDisks(c: TestCluster, name: string, disks: string[], memory = "2Gi") {
  for (const d of disks) await blankDV(c, d);
  await waitFor("source DVs", async () => (await Promise.all(disks.map((d) => dvPhase(c, d)))).every((p) => p === "Succeeded"));
  const spec = vmSpec(name, { memory, volumes: disks.map((d, i) => ({ name: `disk${i}`, dataVolume: { name: d } })) });
  await c.k.create("VirtualMachine", "default", spec);
  await waitFor(`${name} running`, async () => (await c.k.get("VirtualMachine", "default", name))?.status?.printableStatus === "Running");
}

function setVolumes(c: TestCluster, name: string, claims: string[], strategy: string | undefined = "Migration") {
  return c.k.modify("VirtualMachine", "default", name, (o) => {
    if (strategy) o.spec.updateVolumesStrategy = strategy;
    else delete o.spec.updateVolumesStrategy;
    o.spec.template.spec.volumes = claims.map((d, i) => ({ name: `disk${i}`, dataVolume: { name: d } }));
  });
}

describe("volume (storage) live migration", () => {
  it("migrates a volume: workload-update VMIM, migratedVolumes, VolumesChange, VMI on the destination", async () => {
    const c = (tc = await startTestCluster({
      kubevirt: { ...LIVE, migrations: HOLD },
      storageClasses: [...DEFAULT_STORAGE_CLASSES, { name: "csi-wffc", provisioner: "hostpath.csi.kubevirt.io", volumeBindingMode: "WaitForFirstConsumer" }],
    }));
    await vmWithDisks(c, "vm1", ["src-dv"]);
    // a WaitForFirstConsumer CSI class: CDI uses a populator, the DV waits in PendingPopulation
    await blankDV(c, "dst-dv", "5Gi", "csi-wffc");
    await waitFor("dst DV waits", async () => (await dvPhase(c, "dst-dv")) === "PendingPopulation");
    // the guest holds the copy in flight while the in-progress state is read
    await c.kv.setDirtyRate("default", "vm1", "no-converge");
    await setVolumes(c, "vm1", ["dst-dv"]);
    const i = await waitFor("VolumesChange", async () => {
      const o = await vmi(c);
      return o?.status?.conditions?.find((x: any) => x.type === "VolumesChange" && x.status === "True") ? o : undefined;
    });
    expect(i.status.migratedVolumes[0]).toMatchObject({ volumeName: "disk0", sourcePVCInfo: { claimName: "src-dv" }, destinationPVCInfo: { claimName: "dst-dv" } });
    expect(i.spec.volumes[0].dataVolume.name).toBe("dst-dv");
    const v = await waitFor("VM volumeMigrationState", async () => {
      const o = await vm(c);
      return o?.status?.volumeUpdateState?.volumeMigrationState ? o : undefined;
    });
    expect(v.status.volumeUpdateState.volumeMigrationState.migratedVolumes[0].destinationPVCInfo.claimName).toBe("dst-dv");
    const m = await waitFor("workload VMIM", async () => (await vmims(c))[0]);
    expect(m.metadata.name).toMatch(/^kubevirt-workload-update-/);
    expect(m.metadata.annotations?.["kubevirt.io/workloadUpdateMigration"]).toBe("");
    expect(m.spec.priority).toBe("user-triggered");
    await c.kv.setDirtyRate("default", "vm1", 1024 * 1024);
    await waitFor("Succeeded", async () => (await vmims(c))[0]?.status?.migrationState?.completed);
    const done = await waitFor("migratedVolumes cleared", async () => {
      const o = await vmi(c);
      return o && !o.status.migratedVolumes && !o.status.conditions.some((x: any) => x.type === "VolumesChange") ? o : undefined;
    });
    expect(done.status.volumeStatus[0].persistentVolumeClaimInfo.claimName).toBe("dst-dv");
    expect((await c.k.must("PersistentVolumeClaim", "default", "dst-dv")).status.phase).toBe("Bound");
    // KubeVirt keeps the VM's volumeMigrationState after success
    expect((await vm(c)).status.volumeUpdateState.volumeMigrationState).toBeDefined();
  });

  it("does not start without LiveMigrate in workloadUpdateMethods", async () => {
    const c = (tc = await startTestCluster());
    await vmWithDisks(c, "vm1", ["src-dv"]);
    await blankDV(c, "dst-dv");
    await waitFor("dst", async () => (await dvPhase(c, "dst-dv")) === "Succeeded");
    await setVolumes(c, "vm1", ["dst-dv"]);
    await waitFor("VolumesChange", async () => (await vmi(c))?.status?.conditions?.some((x: any) => x.type === "VolumesChange"));
    await new Promise((r) => setTimeout(r, 200));
    expect(await vmims(c)).toHaveLength(0);
  });

  it("cancels on an exact revert and refuses a partial one with KubeVirt's message", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { ...LIVE, migrations: { ...HOLD, bandwidthPerMigration: "8Mi" } } }));
    await vmWithDisks(c, "vm1", ["a-src", "b-src"]);
    for (const d of ["a-dst", "b-dst"]) await blankDV(c, d);
    await waitFor("dst", async () => (await dvPhase(c, "a-dst")) === "Succeeded" && (await dvPhase(c, "b-dst")) === "Succeeded");
    await c.kv.setDirtyRate("default", "vm1", "no-converge"); // in flight until reverted
    await setVolumes(c, "vm1", ["a-dst", "b-dst"]);
    await waitFor("running migration", async () => (await vmims(c))[0]?.status?.phase === "Running");
    await setVolumes(c, "vm1", ["a-src", "b-dst"]);
    const fail = await waitFor("Failure condition", async () => (await vm(c))?.status?.conditions?.find((x: any) => x.type === "Failure"));
    expect(fail.message).toContain("The volume can only be reverted to the previous version during the update");
    await setVolumes(c, "vm1", ["a-src", "b-src"]);
    const i = await waitFor("cancelled", async () => {
      const o = await vmi(c);
      return o?.status?.conditions?.find((x: any) => x.type === "VolumesChange" && x.status === "False" && x.reason === "VolumesChangeCancellation") ? o : undefined;
    });
    expect(i.status.migratedVolumes).toBeUndefined();
    expect(i.spec.volumes.map((v: any) => v.dataVolume.name)).toEqual(["a-src", "b-src"]);
    await waitFor("VMIM deleted", async () => (await vmims(c)).length === 0);
    await waitFor("VM state cleared", async () => !(await vm(c))?.status?.volumeUpdateState?.volumeMigrationState);
    expect((await vmi(c)).status.phase).toBe("Running");
  });

  it("reports a missing destination on the VMI and RestartRequired for unsupported disks", async () => {
    const c = (tc = await startTestCluster({ kubevirt: LIVE }));
    await vmWithDisks(c, "vm1", ["src-dv"]);
    await setVolumes(c, "vm1", ["nope"]);
    const cond = await waitFor("VolumesChange False", async () => (await vmi(c))?.status?.conditions?.find((x: any) => x.type === "VolumesChange"));
    expect(cond).toMatchObject({ status: "False", message: "One of the destination volumes doesn't exist: the datavolume nope doesn't exist" });
    await setVolumes(c, "vm1", ["src-dv"]);
    await blankDV(c, "dst-dv");
    await waitFor("dst", async () => (await dvPhase(c, "dst-dv")) === "Succeeded");
    // the VMI was started without `shareable`; the VM controller validates against the running VMI's
    // disks, so the VMI gets it first (as if it had been started with it), then the VM asks for the update
    await c.k.modify("VirtualMachineInstance", "default", "vm1", (o) => (o.spec.domain.devices.disks[0].shareable = true));
    await c.k.modify("VirtualMachine", "default", "vm1", (o) => {
      o.spec.template.spec.domain.devices.disks[0].shareable = true;
      o.spec.updateVolumesStrategy = "Migration";
      o.spec.template.spec.volumes = [{ name: "disk0", dataVolume: { name: "dst-dv" } }];
    });
    const rr = await waitFor("RestartRequired", async () => (await vm(c))?.status?.conditions?.find((x: any) => x.type === "RestartRequired"));
    expect(rr.message).toBe("invalid volumes to update with migration: shareable: [disk0]");
  });

  it("sets ManualRecoveryRequired when the VMI vanishes mid-copy; the VM cannot start until the volumes are reverted", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { ...LIVE, migrations: { ...HOLD, bandwidthPerMigration: "4Mi" } } }));
    await vmWithDisks(c, "vm1", ["src-dv"]);
    await blankDV(c, "dst-dv");
    await waitFor("dst", async () => (await dvPhase(c, "dst-dv")) === "Succeeded");
    // RerunOnFailure/Always would restart the VMI in the same pass that notices it is gone (vm.go);
    // Manual (like a VM stopped by its owner) shows the condition blocking the next start.
    await c.k.patch("VirtualMachine", "default", "vm1", { spec: { runStrategy: "Manual" } });
    await c.kv.setDirtyRate("default", "vm1", "no-converge"); // in flight until killed
    await setVolumes(c, "vm1", ["dst-dv"]);
    await waitFor("copying", async () => (await vmims(c))[0]?.status?.phase === "Running");
    await c.kv.killVMI("default", "vm1");
    const cond = await waitFor("ManualRecoveryRequired", async () => (await vm(c))?.status?.conditions?.find((x: any) => x.type === "ManualRecoveryRequired"));
    expect(cond).toMatchObject({ status: "True", reason: "VMI was removed or was final during the volume migration" });
    await waitFor("VMI gone", async () => !(await vmi(c)));
    await waitFor("VMIM failed or gone", async () => (await vmims(c)).every((m) => m.status?.phase === "Failed"));
    await c.k.patch("VirtualMachine", "default", "vm1", { spec: { runStrategy: "Always" } });
    await new Promise((r) => setTimeout(r, 200));
    expect(await vmi(c)).toBeUndefined();
    expect((await vm(c)).status.printableStatus).toBe("Stopped");
    // reverting the volumes clears it and the VM starts again
    await setVolumes(c, "vm1", ["src-dv"]);
    await waitFor("restarted", async () => (await vm(c))?.status?.printableStatus === "Running");
    expect((await vm(c)).status.conditions.some((x: any) => x.type === "ManualRecoveryRequired")).toBe(false);
  });

  it("retries a failed volume migration with back-off until it succeeds", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { ...LIVE, migrations: { progressTimeout: 20 } } }));
    await vmWithDisks(c, "vm1", ["src-dv"], "4Gi");
    await blankDV(c, "dst-dv");
    await waitFor("dst", async () => (await dvPhase(c, "dst-dv")) === "Succeeded");
    await c.kv.setDirtyRate("default", "vm1", "no-converge");
    await setVolumes(c, "vm1", ["dst-dv"]);
    await waitFor("first failed", async () => (await vmims(c)).some((m) => m.status?.phase === "Failed"));
    await waitFor("a retry", async () => (await vmims(c)).length >= 2);
    await c.kv.setDirtyRate("default", "vm1", 1024 * 1024);
    await waitFor("a retry succeeded", async () => (await vmims(c)).some((m) => m.status?.phase === "Succeeded"), 20_000);
  });
});
