// Many clusters with KubeVirt running in one process: every seeded VM comes up (VMI, DataVolume,
// PVC), read back over HTTPS with client-node. The timing side is in bench/simkv.ts.
/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, eventually } from "../testing.js";
import { type World, startWorld } from "../world.js";

const CLUSTERS = 10;
const VMS = 30;
const names = Array.from({ length: CLUSTERS }, (_, i) => `k${i}`);

let world: World;
const clients = new Map<string, KubeClient>();

beforeAll(async () => {
  world = await startWorld({
    clusters: names,
    timeScale: 1000,
    scenario: {
      defaults: {
        namespaces: ["default", "vms"],
        nodes: [{ count: 4, memory: "128Gi" }],
        storageClasses: [{ name: "standard", default: true, provisioner: "rbd.csi.sim.ferry.dev" }],
        kubevirt: {},
        vms: [{ name: "vm", namespace: "vms", count: VMS, memory: "1Gi", disks: [{ name: "root", size: "2Gi" }] }],
      },
    },
  });
  for (const n of names) clients.set(n, KubeClient.fromYaml(world.cluster(n).kubeconfig));
});

afterAll(async () => {
  await world.stop();
});

const running = async (k: KubeClient) => (await k.list("VirtualMachine", "vms")).filter((v) => v.status?.printableStatus === "Running").length;

describe(`${CLUSTERS} clusters × ${VMS} VMs with KubeVirt running`, () => {
  it("brings every VM to Running with its VMI on a node of its cluster, its DataVolume Succeeded and its PVC Bound", async () => {
    await eventually(async () => (await Promise.all(names.map((n) => running(clients.get(n)!)))).every((c) => c === VMS), 60_000, "all VMs Running");
    for (const n of names) {
      const k = clients.get(n)!;
      const [vmis, dvs, pvcs, nodes] = await Promise.all([k.list("VirtualMachineInstance", "vms"), k.list("DataVolume", "vms"), k.list("PersistentVolumeClaim", "vms"), k.list("Node")]);
      const nodeNames = new Set(nodes.map((x) => x.metadata.name));
      expect(vmis).toHaveLength(VMS);
      expect(vmis.every((v: any) => v.status.phase === "Running" && nodeNames.has(v.status.nodeName))).toBe(true);
      expect(dvs.map((d: any) => d.status?.phase)).toEqual(Array(VMS).fill("Succeeded"));
      expect(pvcs.map((p: any) => p.status?.phase)).toEqual(Array(VMS).fill("Bound"));
    }
    // each cluster's VMs are its own: names repeat across clusters, UIDs do not
    const uids = (await Promise.all(names.map(async (n) => (await clients.get(n)!.list("VirtualMachine", "vms")).map((v) => v.metadata.uid as string)))).flat();
    expect(new Set(uids).size).toBe(CLUSTERS * VMS);
  });
});
