// Local (same-cluster) live migration, driven over HTTPS (client-node) with faults and migration
// metrics from the control API.
/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import { expectApiError } from "../testing.js";
import { type TestCluster, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: (TestCluster & { stop(): Promise<void> }) | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

const VMIM = "VirtualMachineInstanceMigration";
/** Timeouts out of reach: with a "no-converge" guest a copy stays in flight until the test lets it go. */
const HOLD = { progressTimeout: 100_000, completionTimeoutPerGiB: 100_000 };

/** A running VM on a ReadWriteMany block DataVolume (live-migratable). */
async function runningVM(c: TestCluster, name: string, memory = "2Gi", storageClass?: string) {
  const spec = vmSpec(name, {
    memory,
    volumes: [{ name: "root", dataVolume: { name: `${name}-root` } }],
    dataVolumeTemplates: [
      { metadata: { name: `${name}-root` }, spec: { source: { blank: {} }, storage: { ...(storageClass ? { storageClassName: storageClass } : {}), resources: { requests: { storage: "4Gi" } } } } },
    ],
  });
  await c.k.create("VirtualMachine", "default", spec);
  await waitFor(`${name} running`, async () => (await c.k.get("VirtualMachine", "default", name))?.status?.printableStatus === "Running", 15_000);
}

function migrate(c: TestCluster, vmi: string, name = `mig-${vmi}`) {
  return c.k.create(VMIM, "default", { metadata: { name }, spec: { vmiName: vmi } });
}

const phase = async (c: TestCluster, name: string): Promise<string | undefined> => (await c.k.get(VMIM, "default", name))?.status?.phase;
const vmi = (c: TestCluster, name: string) => c.k.must("VirtualMachineInstance", "default", name);

describe("local live migration", () => {
  it("moves a VMI to another node through the local phase sequence", async () => {
    const c = (tc = await startTestCluster());
    await runningVM(c, "vm1");
    const from = (await vmi(c, "vm1")).status.nodeName;
    const watched = await c.k.phases(VMIM, "default", "mig-vm1");
    const m = await migrate(c, "vm1");
    expect(m.metadata.labels?.["kubevirt.io/vmi-name"]).toBe("vm1");
    expect(m.metadata.finalizers).toEqual(["kubevirt.io/migrationJobFinalize"]);
    await waitFor("Succeeded", async () => (await phase(c, "mig-vm1")) === "Succeeded");
    await waitFor("watch saw Succeeded", () => watched.phases.includes("Succeeded"));
    watched.stop();
    expect(watched.phases).toEqual(["", "Pending", "Scheduling", "Scheduled", "PreparingTarget", "TargetReady", "Running", "Succeeded"]);
    const v = await vmi(c, "vm1");
    expect(v.status.nodeName).not.toBe(from);
    expect(v.status.migrationState).toMatchObject({ completed: true, sourceNode: from, targetNode: v.status.nodeName });
    expect(v.status.migrationState.failed).toBeUndefined();
    // while Pending only sourcePod is there; the VMI's final state is copied once the VMIM is final
    const fin = await waitFor("migrationState stored", async () => {
      const ms = (await c.k.get(VMIM, "default", "mig-vm1"))?.status?.migrationState;
      return ms?.endTimestamp ? ms : undefined;
    });
    expect(fin).toMatchObject({ completed: true, targetNode: v.status.nodeName });
    expect((await c.k.must(VMIM, "default", "mig-vm1")).metadata.finalizers).toBeUndefined();
  });

  it("refuses what KubeVirt's migration admission refuses", async () => {
    const c = (tc = await startTestCluster());
    const missing = await expectApiError(() => migrate(c, "nope"));
    expect([missing.code, missing.message]).toEqual([400, 'admission webhook "migration-create-validator.kubevirt.io" denied the request: the VMI "default/nope" does not exist']);
    await runningVM(c, "vm1");
    expect((await expectApiError(() => c.k.create(VMIM, "default", { metadata: { name: "p" }, spec: { vmiName: "vm1", priority: "system-critical" } }))).message).toContain(
      "Migration priority queue, only virt-controller is allowed to set priority field",
    );
    const first = await migrate(c, "vm1", "first");
    const dup = await expectApiError(() => migrate(c, "vm1", "second"));
    expect(dup.message).toContain(`in-flight migration detected. Active migration job (${first.metadata.uid}) is currently already in progress for VMI vm1.`);
    const changed = await expectApiError(() => c.k.modify(VMIM, "default", "first", (o) => (o.spec = { vmiName: "other" })));
    expect(changed.message).toContain("update of Migration object's spec is restricted");
    const dlm = await expectApiError(() => c.k.create(VMIM, "default", { metadata: { name: "d" }, spec: { vmiName: "vm1", sendTo: { migrationID: "x" } } }));
    expect(dlm.message).toContain("spec.sendTo.connectURL: Required value");
  });

  it("reports non-migratable disks in LiveMigratable and refuses a local migration", async () => {
    const c = (tc = await startTestCluster({ storageClasses: [{ name: "rwo", provisioner: "hostpath.csi.kubevirt.io", default: true }] }));
    await runningVM(c, "vm1");
    const cond = (await vmi(c, "vm1")).status.conditions.find((x: any) => x.type === "LiveMigratable");
    expect(cond).toMatchObject({ status: "False", reason: "DisksNotLiveMigratable" });
    expect((await expectApiError(() => migrate(c, "vm1"))).message).toContain("Cannot migrate VMI, Reason: DisksNotLiveMigratable, Message: cannot migrate VMI: PVC vm1-root is not shared");
  });

  it("queues migrations in Pending beyond parallelMigrationsPerCluster", async () => {
    const c = (tc = await startTestCluster({ nodes: 3, kubevirt: { migrations: { ...HOLD, parallelMigrationsPerCluster: 1, bandwidthPerMigration: "64Mi" } } }));
    const names = ["a", "b", "c"];
    await Promise.all(names.map((n) => runningVM(c, n, "4Gi")));
    // every guest holds its copy in flight: whichever runs first keeps the others queued
    for (const n of names) await c.kv.setDirtyRate("default", n, "no-converge");
    for (const n of names) await migrate(c, n);
    await waitFor("one running", async () => (await Promise.all(names.map((n) => phase(c, `mig-${n}`)))).includes("Running"));
    const phases = await Promise.all(names.map((n) => phase(c, `mig-${n}`)));
    expect(phases.filter((p) => p === "Pending")).toHaveLength(2);
    for (const n of names) await c.kv.setDirtyRate("default", n, 1024 * 1024);
    await waitFor("all done", async () => (await Promise.all(names.map((n) => phase(c, `mig-${n}`)))).every((p) => p === "Succeeded"), 20_000);
  });

  it("limits outbound migrations per node to parallelOutboundMigrationsPerNode", async () => {
    const c = (tc = await startTestCluster({
      nodes: [{ name: "n1", labels: { pool: "a" } }, { name: "n2" }, { name: "n3" }],
      kubevirt: { migrations: { ...HOLD, bandwidthPerMigration: "64Mi" } },
    }));
    const names = ["a", "b", "c"];
    for (const n of names) {
      const spec = vmSpec(n, { memory: "4Gi" }) as any;
      spec.spec.template.spec.nodeSelector = { pool: "a" };
      await c.k.create("VirtualMachine", "default", spec);
    }
    await waitFor("running on n1", async () => (await Promise.all(names.map((n) => c.k.get("VirtualMachineInstance", "default", n)))).every((o) => o?.status?.phase === "Running"));
    // the migrations may leave n1 (the target pod's selector comes from addedNodeSelector + the VMI's)
    for (const n of names) await c.k.modify("VirtualMachineInstance", "default", n, (o) => delete o.spec.nodeSelector);
    for (const n of names) await c.kv.setDirtyRate("default", n, "no-converge");
    for (const n of names) await migrate(c, n);
    await waitFor("two running", async () => (await Promise.all(names.map((n) => phase(c, `mig-${n}`)))).filter((p) => p === "Running").length === 2);
    expect(await Promise.all(names.map((n) => phase(c, `mig-${n}`)))).toContain("Pending");
    for (const n of names) await c.kv.setDirtyRate("default", n, 1024 * 1024);
    await waitFor("all done", async () => (await Promise.all(names.map((n) => phase(c, `mig-${n}`)))).every((p) => p === "Succeeded"), 20_000);
  });

  it("fails a non-converging migration after progressTimeout", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { migrations: { progressTimeout: 30 } } }));
    await runningVM(c, "vm1", "8Gi");
    await c.kv.setDirtyRate("default", "vm1", "no-converge");
    await migrate(c, "vm1");
    await waitFor("Failed", async () => (await phase(c, "mig-vm1")) === "Failed", 15_000);
    const v = await vmi(c, "vm1");
    expect(v.status.migrationState).toMatchObject({ failed: true, completed: true, abortStatus: "Succeeded", failureReason: "Live migration has been aborted" });
    expect((await c.kv.migrations())[0]?.abortCause).toBe("progressTimeout");
    expect(v.status.phase).toBe("Running");
  });

  it("fails a migration that exceeds completionTimeoutPerGiB", async () => {
    // 4.3 GB → 5 × 2 s allowed; the copy needs ~4100 s (4 s real here, longer than the 1 s real a copy
    // always gets). The guest dirties less than the link carries, so the copy keeps progressing and only
    // the completion timeout can end it.
    const c = (tc = await startTestCluster({ kubevirt: { migrations: { completionTimeoutPerGiB: 2, bandwidthPerMigration: "1Mi", progressTimeout: 100_000 } } }));
    await runningVM(c, "vm1", "4Gi");
    await c.kv.setDirtyRate("default", "vm1", 64 * 1024);
    await migrate(c, "vm1");
    await waitFor("Failed", async () => (await phase(c, "mig-vm1")) === "Failed");
    expect((await c.kv.migrations())[0]?.abortCause).toBe("completionTimeout");
  });

  it("aborts an in-flight migration when its VMIM is deleted", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { migrations: { ...HOLD, bandwidthPerMigration: "16Mi" } } }));
    await runningVM(c, "vm1", "8Gi");
    await c.kv.setDirtyRate("default", "vm1", "no-converge"); // in flight until deleted
    await migrate(c, "vm1");
    await waitFor("Running", async () => (await phase(c, "mig-vm1")) === "Running");
    await c.k.delete(VMIM, "default", "mig-vm1");
    await waitFor("gone", async () => !(await c.k.get(VMIM, "default", "mig-vm1")));
    expect((await vmi(c, "vm1")).status.migrationState).toMatchObject({ abortRequested: true, failed: true, abortStatus: "Succeeded" });
  });

  it("garbage-collects finalized migrations beyond five per VMI", async () => {
    const c = (tc = await startTestCluster());
    await runningVM(c, "vm1", "256Mi");
    for (let i = 0; i < 7; i++) {
      await migrate(c, "vm1", `m${i}`);
      await waitFor(`m${i}`, async () => (await phase(c, `m${i}`)) === "Succeeded");
    }
    await waitFor("gc", async () => (await c.k.list(VMIM, "default")).length === 5);
    expect(await c.k.get(VMIM, "default", "m0")).toBeUndefined();
  });
});
