// The simulated CDI (DataVolumes, PVCs), driven over HTTPS (client-node).
/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import { type TestCluster, startTestCluster, vmSpec, waitFor } from "../kubevirt/testing.js";

let tc: (TestCluster & { stop(): Promise<void> }) | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

function dv(c: TestCluster, name: string, spec: object, annotations?: Record<string, string>) {
  return c.k.create("DataVolume", "default", { metadata: { name, ...(annotations ? { annotations } : {}) }, spec });
}

const dvOf = (c: TestCluster, name: string) => c.k.get("DataVolume", "default", name);

describe("simulated CDI", () => {
  it("imports a blank DataVolume: PVC from StorageProfile defaults with filesystem overhead, phases, progress, conditions", async () => {
    const c = (tc = await startTestCluster({ storageClasses: [{ name: "hostpath", provisioner: "hostpath.csi.kubevirt.io", default: true }] }));
    const watched = await c.k.phases("DataVolume", "default", "blank");
    await dv(c, "blank", { source: { blank: {} }, storage: { resources: { requests: { storage: "10Gi" } } } });
    const done = await waitFor("Succeeded", async () => {
      const o = await dvOf(c, "blank");
      return o?.status?.phase === "Succeeded" ? o : undefined;
    });
    await waitFor("watch saw Succeeded", () => watched.phases.includes("Succeeded"));
    watched.stop();
    const phases = watched.phases;
    expect(phases.slice(0, 2)).toEqual(["", "Pending"]);
    // ImportInProgress (with a percentage) follows while the import runs; a busy machine may skip it
    expect(phases).toContain("ImportScheduled");
    expect(phases[phases.length - 1]).toBe("Succeeded");
    expect(done.status.progress).toBe("100.0%");
    const byType = Object.fromEntries(done.status.conditions.map((x: any) => [x.type, x]));
    expect(byType.Bound).toMatchObject({ status: "True", reason: "Bound", message: "PVC blank Bound" });
    expect(byType.Ready.status).toBe("True");
    expect(byType.Running).toMatchObject({ status: "False", reason: "Completed" });
    const pvc = await c.k.must("PersistentVolumeClaim", "default", "blank");
    expect(pvc.spec).toMatchObject({ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem", storageClassName: "hostpath" });
    // ceil(10Gi aligned to 1MiB * 1.06): CDI's filesystem overhead
    expect(pvc.spec.resources.requests.storage).toBe(String(Math.ceil(10 * 2 ** 30 * 1.06)));
    expect(pvc.status.capacity.storage).toBe(pvc.spec.resources.requests.storage);
    expect(pvc.metadata.ownerReferences?.[0]).toMatchObject({ kind: "DataVolume", name: "blank", controller: true });
  });

  it("waits for the first consumer on WaitForFirstConsumer classes", async () => {
    const c = (tc = await startTestCluster());
    await dv(c, "w", { source: { blank: {} }, storage: { storageClassName: "local-wffc", resources: { requests: { storage: "1Gi" } } } });
    await waitFor("WFFC", async () => (await dvOf(c, "w"))?.status?.phase === "WaitForFirstConsumer");
    await c.k.create("VirtualMachine", "default", vmSpec("consumer", { volumes: [{ name: "d", dataVolume: { name: "w" } }] }));
    await waitFor("DV Succeeded", async () => (await dvOf(c, "w"))?.status?.phase === "Succeeded");
    await waitFor("VM running", async () => (await c.k.get("VirtualMachine", "default", "consumer"))?.status?.printableStatus === "Running");
    const pvc = await c.k.must("PersistentVolumeClaim", "default", "w");
    expect(pvc.metadata.annotations?.["volume.kubernetes.io/selected-node"]).toBe((await c.k.must("VirtualMachineInstance", "default", "consumer")).status.nodeName);
  });

  it("clones a PVC in time proportional to its size", async () => {
    const c = (tc = await startTestCluster({ scale: 100 }));
    await dv(c, "src", { source: { blank: {} }, storage: { resources: { requests: { storage: "50Gi" } } } });
    await waitFor("src", async () => (await dvOf(c, "src"))?.status?.phase === "Succeeded");
    const watched = await c.k.phases("DataVolume", "default", "copy");
    await dv(c, "copy", { source: { pvc: { namespace: "default", name: "src" } }, storage: { resources: { requests: { storage: "50Gi" } } } });
    const inProgress = await waitFor("clone in progress", async () => {
      const o = await dvOf(c, "copy");
      return o?.status?.phase === "CloneInProgress" ? o : undefined;
    });
    expect(inProgress.status.progress).toMatch(/^\d+\.\d\d%$/);
    await waitFor("cloned", async () => (await dvOf(c, "copy"))?.status?.phase === "Succeeded", 15_000);
    await waitFor("watch saw Succeeded", () => watched.phases.includes("Succeeded"));
    watched.stop();
    expect(watched.phases).toEqual(expect.arrayContaining(["Pending", "CloneInProgress", "Succeeded"]));
    expect((await c.k.must("PersistentVolumeClaim", "default", "copy")).spec.dataSourceRef.kind).toBe("VolumeCloneSource");
  });

  it("reports a missing storage class on the DataVolume's conditions", async () => {
    const c = (tc = await startTestCluster());
    await dv(c, "nosc", { source: { blank: {} }, storage: { storageClassName: "gold", resources: { requests: { storage: "1Gi" } } } });
    const cond = await waitFor("Bound condition", async () => (await dvOf(c, "nosc"))?.status?.conditions?.find((x: any) => x.type === "Bound"));
    expect(cond).toMatchObject({ status: "False", reason: "ErrClaimNotValid", message: "PVC spec is missing accessMode and no storageClass to choose profile" });
    expect(await c.k.get("PersistentVolumeClaim", "default", "nosc")).toBeUndefined();
    // with explicit access modes the claim is created and stays Pending
    await dv(c, "nosc2", { source: { blank: {} }, storage: { storageClassName: "gold", accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } });
    await waitFor("Pending", async () => (await dvOf(c, "nosc2"))?.status?.phase === "Pending");
    await new Promise((r) => setTimeout(r, 100));
    expect((await c.k.must("PersistentVolumeClaim", "default", "nosc2")).status.phase).toBe("Pending");
    const ev = (await c.k.list("Event", "default")).find((e) => e.involvedObject.name === "nosc2" && e.reason === "ProvisioningFailed");
    expect(ev?.message).toBe('storageclass.storage.k8s.io "gold" not found');
    // the class appears: the claim binds and the import finishes
    await c.k.create("StorageClass", undefined, { metadata: { name: "gold" }, provisioner: "hostpath.csi.kubevirt.io", volumeBindingMode: "Immediate" });
    await waitFor("Succeeded", async () => (await dvOf(c, "nosc2"))?.status?.phase === "Succeeded");
  });
});
