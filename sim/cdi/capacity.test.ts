// Storage capacity tracking (CSIStorageCapacity), driven over HTTPS (client-node): what a class's
// objects say and how they follow the claims that bind and go.
import { afterEach, describe, expect, it } from "vitest";
import { type TestCluster, startTestCluster, waitFor } from "../kubevirt/testing.js";

let tc: (TestCluster & { stop(): Promise<void> }) | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

const classes = [
  { name: "fast", provisioner: "rook-ceph.rbd.csi.ceph.com", default: true, capacity: "100Gi" },
  { name: "slow", provisioner: "nfs.csi.k8s.io" },
];

const capacities = (c: TestCluster) => c.k.list("CSIStorageCapacity");
const blockDv = (name: string, size: string) => ({
  metadata: { name },
  spec: { source: { blank: {} }, storage: { storageClassName: "fast", volumeMode: "Block", accessModes: ["ReadWriteMany"], resources: { requests: { storage: size } } } },
});

describe("simulated storage capacity (CSIStorageCapacity)", () => {
  it("publishes one object per class with a capacity, shrinking as claims bind and growing as they go", async () => {
    const c = (tc = await startTestCluster({ storageClasses: classes }));
    const initial = await waitFor("capacity object", async () => ((await capacities(c)).length ? capacities(c) : undefined));
    // Only the class with a capacity has one: drivers without capacity tracking publish none.
    expect(initial).toHaveLength(1);
    const obj = initial[0];
    expect(obj).toMatchObject({
      apiVersion: "storage.k8s.io/v1",
      kind: "CSIStorageCapacity",
      storageClassName: "fast",
      capacity: "100Gi",
      nodeTopology: {},
      metadata: { namespace: "kube-system", labels: { "csi.storage.k8s.io/drivername": "rook-ceph.rbd.csi.ceph.com", "csi.storage.k8s.io/managed-by": "external-provisioner" } },
    });
    expect(obj.metadata.name).toMatch(/^csisc-/);

    const seen: string[] = [];
    const stop = await c.k.watch("CSIStorageCapacity", undefined, { resourceVersion: obj.metadata.resourceVersion }, (e) => {
      if (e.type === "MODIFIED") seen.push(String(e.object.capacity));
    });
    await c.k.create("DataVolume", "default", blockDv("d1", "30Gi"));
    await waitFor("d1 bound", async () => (await c.k.get("PersistentVolumeClaim", "default", "d1"))?.status?.phase === "Bound");
    // A Block claim gets no filesystem overhead: it holds exactly 30Gi of the pool.
    expect((await c.k.must("PersistentVolumeClaim", "default", "d1")).status.capacity.storage).toBe("30Gi");
    await waitFor("70Gi left", async () => (await capacities(c))[0]?.capacity === "70Gi");
    expect(await waitFor("watch saw it", () => (seen.includes("70Gi") ? seen : undefined))).toEqual(["70Gi"]);

    // A second claim binds: less again; the object is updated in place, never duplicated.
    await c.k.create("DataVolume", "default", blockDv("d2", "50Gi"));
    await waitFor("20Gi left", async () => (await capacities(c))[0]?.capacity === "20Gi");
    expect((await capacities(c)).map((o) => o.metadata.name)).toEqual([obj.metadata.name]);

    // The claims go with their DataVolumes: the space comes back.
    await c.k.delete("DataVolume", "default", "d1");
    await c.k.delete("DataVolume", "default", "d2");
    await waitFor("100Gi again", async () => (await capacities(c))[0]?.capacity === "100Gi");
    stop();
  });

  it("follows the class: annotating it later publishes, deleting ours restores it, removing the class removes it", async () => {
    const c = (tc = await startTestCluster({ storageClasses: classes }));
    await waitFor("fast published", async () => (await capacities(c)).length === 1);
    // kubectl annotate sc slow sim.kubevirt.io/storage-capacity=1Ti
    await c.k.patch("StorageClass", undefined, "slow", { metadata: { annotations: { "sim.kubevirt.io/storage-capacity": "1Ti" } } });
    const both = await waitFor("slow published", async () => {
      const l = await capacities(c);
      return l.length === 2 ? l : undefined;
    });
    expect(Object.fromEntries(both.map((o) => [o.storageClassName, o.capacity]))).toEqual({ fast: "100Gi", slow: "1Ti" });

    const slow = both.find((o) => o.storageClassName === "slow");
    await c.k.delete("CSIStorageCapacity", "kube-system", slow.metadata.name);
    await waitFor("slow re-created", async () => (await capacities(c)).some((o) => o.storageClassName === "slow" && o.metadata.name !== slow.metadata.name));

    await c.k.delete("StorageClass", undefined, "slow");
    await waitFor("slow gone", async () => (await capacities(c)).every((o) => o.storageClassName !== "slow"));
    expect((await capacities(c)).map((o) => o.storageClassName)).toEqual(["fast"]);
  });
});
