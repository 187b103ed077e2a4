/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterEach, describe, expect, it } from "vitest";
import { R } from "../apiserver/resources.js";
import type { SimCluster } from "../cluster.js";
import { type TestCluster, get, startTestCluster, vmSpec, waitFor } from "../kubevirt/testing.js";

let tc: TestCluster | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

function dv(c: SimCluster, name: string, spec: object, annotations?: Record<string, string>) {
  c.store.create(R.DataVolume, { metadata: { name, namespace: "default", ...(annotations ? { annotations } : {}) }, spec });
}

function track(c: SimCluster, name: string): string[] {
  const phases: string[] = [];
  c.store.subscribe((e) => {
    if (e.rt.kind !== "DataVolume" || e.object.metadata.name !== name) return;
    const p = e.object.status?.phase ?? "";
    if (phases[phases.length - 1] !== p) phases.push(p);
  });
  return phases;
}

describe("simulated CDI", () => {
  it("imports a blank DataVolume: PVC from StorageProfile defaults with filesystem overhead, phases, progress, conditions", async () => {
    tc = await startTestCluster({ storageClasses: [{ name: "hostpath", provisioner: "hostpath.csi.kubevirt.io", default: true }] });
    const c = tc.cluster;
    const phases = track(c, "blank");
    dv(c, "blank", { source: { blank: {} }, storage: { resources: { requests: { storage: "10Gi" } } } });
    const done = await waitFor("Succeeded", () => {
      const o = get(c, "DataVolume", "default", "blank");
      return o?.status?.phase === "Succeeded" ? o : undefined;
    });
    expect(phases.slice(0, 2)).toEqual(["", "Pending"]);
    // ImportInProgress (with a percentage) follows while the import runs; a busy machine may skip it
    expect(phases).toContain("ImportScheduled");
    expect(phases[phases.length - 1]).toBe("Succeeded");
    expect(done.status.progress).toBe("100.0%");
    const byType = Object.fromEntries(done.status.conditions.map((x: any) => [x.type, x]));
    expect(byType.Bound).toMatchObject({ status: "True", reason: "Bound", message: "PVC blank Bound" });
    expect(byType.Ready.status).toBe("True");
    expect(byType.Running).toMatchObject({ status: "False", reason: "Completed" });
    const pvc = get(c, "PersistentVolumeClaim", "default", "blank")!;
    expect(pvc.spec).toMatchObject({ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem", storageClassName: "hostpath" });
    // ceil(10Gi aligned to 1MiB * 1.06): CDI's filesystem overhead
    expect(pvc.spec.resources.requests.storage).toBe(String(Math.ceil(10 * 2 ** 30 * 1.06)));
    expect(pvc.status.capacity.storage).toBe(pvc.spec.resources.requests.storage);
    expect(pvc.metadata.ownerReferences?.[0]).toMatchObject({ kind: "DataVolume", name: "blank", controller: true });
  });

  it("waits for the first consumer on WaitForFirstConsumer classes", async () => {
    tc = await startTestCluster();
    const c = tc.cluster;
    dv(c, "w", { source: { blank: {} }, storage: { storageClassName: "local-wffc", resources: { requests: { storage: "1Gi" } } } });
    await waitFor("WFFC", () => get(c, "DataVolume", "default", "w")?.status?.phase === "WaitForFirstConsumer");
    const spec = vmSpec("consumer", { volumes: [{ name: "d", dataVolume: { name: "w" } }] });
    c.store.create(R.VirtualMachine, { ...spec, metadata: { name: "consumer", namespace: "default" } });
    await waitFor("DV Succeeded", () => get(c, "DataVolume", "default", "w")?.status?.phase === "Succeeded");
    await waitFor("VM running", () => get(c, "VirtualMachine", "default", "consumer")?.status?.printableStatus === "Running");
    const pvc = get(c, "PersistentVolumeClaim", "default", "w")!;
    expect(pvc.metadata.annotations?.["volume.kubernetes.io/selected-node"]).toBe(get(c, "VirtualMachineInstance", "default", "consumer")!.status.nodeName);
  });

  it("clones a PVC in time proportional to its size", async () => {
    tc = await startTestCluster({ scale: 100 });
    const c = tc.cluster;
    dv(c, "src", { source: { blank: {} }, storage: { resources: { requests: { storage: "50Gi" } } } });
    await waitFor("src", () => get(c, "DataVolume", "default", "src")?.status?.phase === "Succeeded");
    const phases = track(c, "copy");
    dv(c, "copy", { source: { pvc: { namespace: "default", name: "src" } }, storage: { resources: { requests: { storage: "50Gi" } } } });
    await waitFor("clone in progress", () => get(c, "DataVolume", "default", "copy")?.status?.phase === "CloneInProgress");
    const p = get(c, "DataVolume", "default", "copy")!.status.progress as string;
    expect(p).toMatch(/^\d+\.\d\d%$/);
    await waitFor("cloned", () => get(c, "DataVolume", "default", "copy")?.status?.phase === "Succeeded", 15_000);
    expect(phases).toEqual(expect.arrayContaining(["Pending", "CloneInProgress", "Succeeded"]));
    expect(get(c, "PersistentVolumeClaim", "default", "copy")!.spec.dataSourceRef.kind).toBe("VolumeCloneSource");
  });

  it("reports a missing storage class on the DataVolume's conditions", async () => {
    tc = await startTestCluster();
    const c = tc.cluster;
    dv(c, "nosc", { source: { blank: {} }, storage: { storageClassName: "gold", resources: { requests: { storage: "1Gi" } } } });
    const cond = await waitFor("Bound condition", () => get(c, "DataVolume", "default", "nosc")?.status?.conditions?.find((x: any) => x.type === "Bound"));
    expect(cond).toMatchObject({ status: "False", reason: "ErrClaimNotValid", message: "PVC spec is missing accessMode and no storageClass to choose profile" });
    expect(get(c, "PersistentVolumeClaim", "default", "nosc")).toBeUndefined();
    // with explicit access modes the claim is created and stays Pending
    dv(c, "nosc2", { source: { blank: {} }, storage: { storageClassName: "gold", accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "1Gi" } } } });
    await waitFor("Pending", () => get(c, "DataVolume", "default", "nosc2")?.status?.phase === "Pending");
    await new Promise((r) => setTimeout(r, 100));
    expect(get(c, "PersistentVolumeClaim", "default", "nosc2")!.status.phase).toBe("Pending");
    const ev = c.store.list(R.Event, { namespace: "default" }).items.find((e) => e.involvedObject.name === "nosc2" && e.reason === "ProvisioningFailed");
    expect(ev?.message).toBe('storageclass.storage.k8s.io "gold" not found');
    // the class appears: the claim binds and the import finishes
    c.store.create(R.StorageClass, { metadata: { name: "gold" }, provisioner: "hostpath.csi.kubevirt.io", volumeBindingMode: "Immediate" });
    await waitFor("Succeeded", () => get(c, "DataVolume", "default", "nosc2")?.status?.phase === "Succeeded");
  });
});
