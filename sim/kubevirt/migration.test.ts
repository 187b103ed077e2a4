/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "../apiserver/errors.js";
import { R } from "../apiserver/resources.js";
import type { SimCluster } from "../cluster.js";
import { type TestCluster, get, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: TestCluster | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

/** A running VM on a ReadWriteMany block DataVolume (live-migratable). */
async function runningVM(c: SimCluster, name: string, memory = "2Gi", storageClass?: string) {
  const spec = vmSpec(name, {
    memory,
    volumes: [{ name: "root", dataVolume: { name: `${name}-root` } }],
    dataVolumeTemplates: [
      { metadata: { name: `${name}-root` }, spec: { source: { blank: {} }, storage: { ...(storageClass ? { storageClassName: storageClass } : {}), resources: { requests: { storage: "4Gi" } } } } },
    ],
  });
  c.store.create(R.VirtualMachine, { ...spec, metadata: { name, namespace: "default" } });
  await waitFor(`${name} running`, () => get(c, "VirtualMachine", "default", name)?.status?.printableStatus === "Running", 15_000);
}

function migrate(c: SimCluster, vmi: string, name = `mig-${vmi}`) {
  return c.store.create(R.VirtualMachineInstanceMigration, { metadata: { name, namespace: "default" }, spec: { vmiName: vmi } });
}

function track(c: SimCluster, name: string): string[] {
  const phases: string[] = [];
  c.store.subscribe((e) => {
    if (e.rt.kind !== "VirtualMachineInstanceMigration" || e.object.metadata.name !== name) return;
    const p = e.object.status?.phase ?? "";
    if (phases[phases.length - 1] !== p) phases.push(p);
  });
  return phases;
}

describe("local live migration", () => {
  it("moves a VMI to another node through the local phase sequence", async () => {
    tc = await startTestCluster();
    const c = tc.cluster;
    await runningVM(c, "vm1");
    const from = get(c, "VirtualMachineInstance", "default", "vm1")!.status.nodeName;
    const phases = track(c, "mig-vm1");
    const m = migrate(c, "vm1");
    expect(m.metadata.labels?.["kubevirt.io/vmi-name"]).toBe("vm1");
    expect(m.metadata.finalizers).toEqual(["kubevirt.io/migrationJobFinalize"]);
    await waitFor("Succeeded", () => get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1")?.status?.phase === "Succeeded");
    expect(phases).toEqual(["", "Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]);
    const vmi = get(c, "VirtualMachineInstance", "default", "vm1")!;
    expect(vmi.status.nodeName).not.toBe(from);
    expect(vmi.status.migrationState).toMatchObject({ completed: true, sourceNode: from, targetNode: vmi.status.nodeName });
    expect(vmi.status.migrationState.failed).toBeUndefined();
    // while Pending only sourcePod is there; the VMI's final state is copied once the VMIM is final
    const fin = await waitFor("migrationState stored", () => get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1")?.status?.migrationState?.endTimestamp && get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1")!.status.migrationState);
    expect(fin).toMatchObject({ completed: true, targetNode: vmi.status.nodeName });
    expect(get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1")!.metadata.finalizers).toBeUndefined();
  });

  it("refuses what KubeVirt's migration admission refuses", async () => {
    tc = await startTestCluster();
    const c = tc.cluster;
    const missing = apiError(() => migrate(c, "nope"));
    expect([missing.code, missing.message]).toEqual([400, 'admission webhook "migration-create-validator.kubevirt.io" denied the request: the VMI "default/nope" does not exist']);
    await runningVM(c, "vm1");
    expect(apiError(() => c.store.create(R.VirtualMachineInstanceMigration, { metadata: { name: "p", namespace: "default" }, spec: { vmiName: "vm1", priority: "system-critical" } })).message).toContain(
      "Migration priority queue, only virt-controller is allowed to set priority field",
    );
    const first = migrate(c, "vm1", "first");
    const dup = apiError(() => migrate(c, "vm1", "second"));
    expect(dup.message).toContain(`in-flight migration detected. Active migration job (${first.metadata.uid}) is currently already in progress for VMI vm1.`);
    const cur = get(c, "VirtualMachineInstanceMigration", "default", "first")!;
    expect(apiError(() => c.store.update(R.VirtualMachineInstanceMigration, { ...cur, spec: { vmiName: "other" } })).message).toContain(
      "update of Migration object's spec is restricted",
    );
    const dlm = apiError(() =>
      c.store.create(R.VirtualMachineInstanceMigration, { metadata: { name: "d", namespace: "default" }, spec: { vmiName: "vm1", sendTo: { migrationID: "x" } } }),
    );
    expect(dlm.message).toContain("spec.sendTo.connectURL: Required value");
  });

  it("reports non-migratable disks in LiveMigratable and refuses a local migration", async () => {
    tc = await startTestCluster({ storageClasses: [{ name: "rwo", provisioner: "hostpath.csi.kubevirt.io", default: true }] });
    const c = tc.cluster;
    await runningVM(c, "vm1");
    const cond = get(c, "VirtualMachineInstance", "default", "vm1")!.status.conditions.find((x: any) => x.type === "LiveMigratable");
    expect(cond).toMatchObject({ status: "False", reason: "DisksNotLiveMigratable" });
    expect(apiError(() => migrate(c, "vm1")).message).toContain("Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: cannot migrate VMI: PVC vm1-root is not shared");
  });

  it("queues migrations in Pending beyond parallelMigrationsPerCluster", async () => {
    tc = await startTestCluster({ nodes: 3, kubevirt: { migrations: { parallelMigrationsPerCluster: 1, bandwidthPerMigration: "64Mi" } } });
    const c = tc.cluster;
    await Promise.all(["a", "b", "c"].map((n) => runningVM(c, n, "4Gi")));
    for (const n of ["a", "b", "c"]) migrate(c, n);
    await waitFor("one running", () => ["a", "b", "c"].some((n) => get(c, "VirtualMachineInstanceMigration", "default", `mig-${n}`)?.status?.phase === "Running"));
    const phases = ["a", "b", "c"].map((n) => get(c, "VirtualMachineInstanceMigration", "default", `mig-${n}`)!.status.phase);
    expect(phases.filter((p) => p === "Pending")).toHaveLength(2);
    await waitFor("all done", () => ["a", "b", "c"].every((n) => get(c, "VirtualMachineInstanceMigration", "default", `mig-${n}`)?.status?.phase === "Succeeded"), 20_000);
  });

  it("limits outbound migrations per node to parallelOutboundMigrationsPerNode", async () => {
    tc = await startTestCluster({
      nodes: [{ name: "n1", labels: { pool: "a" } }, { name: "n2" }, { name: "n3" }],
      kubevirt: { migrations: { bandwidthPerMigration: "64Mi" } },
    });
    const c = tc.cluster;
    for (const n of ["a", "b", "c"]) {
      const spec = vmSpec(n, { memory: "4Gi" }) as any;
      spec.spec.template.spec.nodeSelector = { pool: "a" };
      c.store.create(R.VirtualMachine, { ...spec, metadata: { name: n, namespace: "default" } });
    }
    await waitFor("running on n1", () => ["a", "b", "c"].every((n) => get(c, "VirtualMachineInstance", "default", n)?.status?.phase === "Running"));
    // the migrations may leave n1 (the target pod's selector comes from addedNodeSelector + the VMI's)
    for (const n of ["a", "b", "c"]) c.store.modify(R.VirtualMachineInstance, "default", n, (o) => delete o.spec.nodeSelector);
    for (const n of ["a", "b", "c"]) migrate(c, n);
    await waitFor("two running", () => ["a", "b", "c"].filter((n) => get(c, "VirtualMachineInstanceMigration", "default", `mig-${n}`)?.status?.phase === "Running").length === 2);
    expect(["a", "b", "c"].map((n) => get(c, "VirtualMachineInstanceMigration", "default", `mig-${n}`)!.status.phase)).toContain("Pending");
    await waitFor("all done", () => ["a", "b", "c"].every((n) => get(c, "VirtualMachineInstanceMigration", "default", `mig-${n}`)?.status?.phase === "Succeeded"), 20_000);
  });

  it("fails a non-converging migration after progressTimeout", async () => {
    tc = await startTestCluster({ kubevirt: { migrations: { progressTimeout: 30 } } });
    const c = tc.cluster;
    await runningVM(c, "vm1", "8Gi");
    tc.kv.setDirtyRate("default", "vm1", "no-converge");
    migrate(c, "vm1");
    await waitFor("Failed", () => get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1")?.status?.phase === "Failed", 15_000);
    const ms = get(c, "VirtualMachineInstance", "default", "vm1")!.status.migrationState;
    expect(ms).toMatchObject({ failed: true, completed: true, abortStatus: "Succeeded", failureReason: "Live migration has been aborted" });
    expect(tc.kv.migrationMetrics()[0]?.abortCause).toBe("progressTimeout");
    expect(get(c, "VirtualMachineInstance", "default", "vm1")!.status.phase).toBe("Running");
  });

  it("fails a migration that exceeds completionTimeoutPerGiB", async () => {
    tc = await startTestCluster({ kubevirt: { migrations: { completionTimeoutPerGiB: 2, bandwidthPerMigration: "64Mi" } } });
    const c = tc.cluster;
    await runningVM(c, "vm1", "4Gi"); // 4.3 GB → 5 × 2 s allowed, the copy needs ~64 s
    migrate(c, "vm1");
    await waitFor("Failed", () => get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1")?.status?.phase === "Failed");
    expect(tc.kv.migrationMetrics()[0]?.abortCause).toBe("completionTimeout");
  });

  it("aborts an in-flight migration when its VMIM is deleted", async () => {
    tc = await startTestCluster({ kubevirt: { migrations: { bandwidthPerMigration: "16Mi" } } });
    const c = tc.cluster;
    await runningVM(c, "vm1", "8Gi");
    migrate(c, "vm1");
    await waitFor("Running", () => get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1")?.status?.phase === "Running");
    c.store.delete(R.VirtualMachineInstanceMigration, "default", "mig-vm1");
    await waitFor("gone", () => !get(c, "VirtualMachineInstanceMigration", "default", "mig-vm1"));
    const ms = get(c, "VirtualMachineInstance", "default", "vm1")!.status.migrationState;
    expect(ms).toMatchObject({ abortRequested: true, failed: true, abortStatus: "Succeeded" });
  });

  it("garbage-collects finalized migrations beyond five per VMI", async () => {
    tc = await startTestCluster();
    const c = tc.cluster;
    await runningVM(c, "vm1", "256Mi");
    for (let i = 0; i < 7; i++) {
      migrate(c, "vm1", `m${i}`);
      await waitFor(`m${i}`, () => get(c, "VirtualMachineInstanceMigration", "default", `m${i}`)?.status?.phase === "Succeeded");
    }
    await waitFor("gc", () => c.store.list(R.VirtualMachineInstanceMigration, { namespace: "default" }).items.length === 5);
    expect(get(c, "VirtualMachineInstanceMigration", "default", "m0")).toBeUndefined();
  });
});
