// Worlds of many clusters, seeded from scenarios, observed over HTTPS only.
import { existsSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig, Watch } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { SimControlClient } from "./control-client.js";
import { eventually, kubeConfig } from "./testing.js";
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
