// Worlds of many clusters, seeded from scenarios, observed over HTTPS only.
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { SimControlClient } from "./control-client.js";
import { KubeClient, eventually, kubeConfig } from "./testing.js";
import { type SimManifest, clusterNames, startWorld } from "./world.js";

describe("world", () => {
  it("names clusters a..z, aa.. and refuses bad names", async () => {
    expect(clusterNames(3)).toEqual(["a", "b", "c"]);
    expect(clusterNames(28).slice(25)).toEqual(["z", "aa", "ab"]);
    await expect(startWorld({ clusters: ["Bad_Name"], scenario: "empty" })).rejects.toThrow(/not a valid cluster name/);
    await expect(startWorld({ clusters: ["x", "x"], scenario: "empty" })).rejects.toThrow(/duplicate/);
  });

  it("writes kubeconfigs and sim.json that clients load from disk, and seeds the default scenario", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "sim-world-")), "out");
    const world = await startWorld({ dir, simulateKubeVirt: false });
    try {
      const manifest = JSON.parse(readFileSync(join(dir, "sim.json"), "utf8")) as SimManifest;
      expect(Object.keys(manifest.clusters)).toEqual(["a", "b"]);
      expect(manifest.clusters.a?.kubeconfig).toBe(join(dir, "a", "kubeconfig"));
      expect(statSync(join(dir, "a", "kubeconfig")).mode & 0o777).toBe(0o600);
      expect(manifest.caPem).toContain("BEGIN CERTIFICATE");

      const kc = new KubeConfig();
      kc.loadFromFile(join(dir, "a", "kubeconfig"));
      expect(kc.getCurrentCluster()?.server).toBe(manifest.clusters.a?.server);
      const co = kc.makeApiClient(CustomObjectsApi);
      const vms = await co.listNamespacedCustomObject({ group: "kubevirt.io", version: "v1", plural: "virtualmachines", namespace: "vms" });
      expect(vms.items.map((v: { metadata: { name: string } }) => v.metadata.name)).toEqual(["db-1", "web-1", "web-2"]);
      const kv = await co.getNamespacedCustomObject({ group: "kubevirt.io", version: "v1", plural: "kubevirts", namespace: "kubevirt", name: "kubevirt" });
      expect(kv.spec.configuration.developerConfiguration.featureGates).toContain("DecentralizedLiveMigration");
      const bNodes = await kubeConfig(world.cluster("b").kubeconfig).makeApiClient(CoreV1Api).listNode();
      expect(bNodes.items.map((n) => n.metadata?.name)).toEqual(["b-node-1", "b-node-2", "b-node-3"]);
      expect(bNodes.items[0]?.status?.allocatable).toMatchObject({ cpu: "32", memory: "128Gi" });
      const bVms = await kubeConfig(world.cluster("b").kubeconfig).makeApiClient(CustomObjectsApi).listClusterCustomObject({ group: "kubevirt.io", version: "v1", plural: "virtualmachines" });
      expect(bVms.items).toEqual([]);

      const ctl = SimControlClient.fromDir(dir);
      expect((await ctl.clusters()).map((c) => c.name)).toEqual(["a", "b"]);
    } finally {
      await world.stop();
    }
    expect(existsSync(join(dir, "sim.json"))).toBe(true);
  });

  it("runs the default scenario's VMs with KubeVirt on: db-1 with its multus NIC and 50Gi data volume, web-1, web-2", async () => {
    const world = await startWorld({ timeScale: 1000 });
    try {
      const k = KubeClient.fromYaml(world.cluster("a").kubeconfig);
      const names = ["db-1", "web-1", "web-2"];
      await eventually(async () => (await k.list("VirtualMachine", "vms")).filter((v) => v.status?.printableStatus === "Running").length === names.length, 20_000, "all VMs Running");
      const vmis = await k.list("VirtualMachineInstance", "vms");
      expect(vmis.map((v) => [v.metadata.name, v.status.phase])).toEqual(names.map((n) => [n, "Running"]));
      const db = vmis.find((v) => v.metadata.name === "db-1")!;
      // the second NIC is a multus attachment to vms/vlan100 (bridge binding), with the scenario's MAC
      expect(db.spec.networks).toEqual([{ name: "default", pod: {} }, { name: "vlan100", multus: { networkName: "vlan100" } }]);
      const vmSpecIfaces = (await k.must("VirtualMachine", "vms", "db-1")).spec.template.spec.domain.devices.interfaces;
      expect(db.status.interfaces.map((i: { name: string; mac: string }) => [i.name, i.mac])).toEqual(vmSpecIfaces.map((i: { name: string; macAddress: string }) => [i.name, i.macAddress]));
      expect(await k.get("NetworkAttachmentDefinition", "vms", "vlan100")).toBeDefined();
      // its disks: the 20Gi root from a dataVolumeTemplate and the separate 50Gi data DataVolume, both bound
      const data = await k.must("DataVolume", "vms", "db-1-data");
      expect(data.status.phase).toBe("Succeeded");
      expect(data.metadata.ownerReferences ?? []).toEqual([]);
      const pvc = await k.must("PersistentVolumeClaim", "vms", "db-1-data");
      expect([pvc.status.phase, pvc.status.capacity.storage]).toEqual(["Bound", "50Gi"]);
      expect((await k.must("PersistentVolumeClaim", "vms", "db-1-rootdisk")).status.capacity.storage).toBe("20Gi");
      expect(db.status.volumeStatus.map((v: { name: string; persistentVolumeClaimInfo?: { claimName: string } }) => [v.name, v.persistentVolumeClaimInfo?.claimName])).toEqual(
        expect.arrayContaining([["rootdisk", "db-1-rootdisk"], ["data", "db-1-data"]]),
      );
      // cluster b has none
      expect(await KubeClient.fromYaml(world.cluster("b").kubeconfig).list("VirtualMachine")).toEqual([]);
    } finally {
      await world.stop();
    }
  });

  it("serves a dozen clusters of hundreds of VMs each, with watches kept per cluster", async () => {
    const world = await startWorld({
      clusters: 12,
      simulateKubeVirt: false,
      scenario: { defaults: { namespaces: ["vms"], nodes: [{ count: 5 }], vms: [{ name: "vm", namespace: "vms", count: 250, memory: "1Gi" }] } },
    });
    try {
      const seen: string[] = [];
      const kcC = kubeConfig(world.cluster("c").kubeconfig);
      const list = await kcC.makeApiClient(CustomObjectsApi).listNamespacedCustomObject({ group: "kubevirt.io", version: "v1", plural: "virtualmachines", namespace: "vms" });
      const ctrl = await new Watch(kcC).watch("/apis/kubevirt.io/v1/namespaces/vms/virtualmachines", { resourceVersion: list.metadata.resourceVersion }, (type, o: { metadata: { name: string } }) => seen.push(`${type} ${o.metadata.name}`), () => {});
      for (const c of world.clusters) {
        const co = kubeConfig(c.kubeconfig).makeApiClient(CustomObjectsApi);
        const vms = await co.listNamespacedCustomObject({ group: "kubevirt.io", version: "v1", plural: "virtualmachines", namespace: "vms", limit: 100 });
        expect(vms.items).toHaveLength(100);
        expect(vms.metadata.remainingItemCount).toBe(150);
        await co.deleteNamespacedCustomObject({ group: "kubevirt.io", version: "v1", plural: "virtualmachines", namespace: "vms", name: `vm-${c.name.length + 1}` });
      }
      await eventually(() => seen.length >= 1, 5000, "the watch event");
      await new Promise((r) => setTimeout(r, 100));
      ctrl.abort();
      expect(seen).toEqual(["DELETED vm-2"]);
    } finally {
      await world.stop();
    }
  });
});
