import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { buildObjects, clusterSpec, defaultScenario, loadScenarioFile, parseScenario } from "./scenario.js";

const kinds = (objs: ReturnType<typeof buildObjects>) => objs.map((o) => `${o.rt.kind} ${o.obj.metadata.namespace ? `${o.obj.metadata.namespace}/` : ""}${o.obj.metadata.name}`);

describe("scenario", () => {
  it("names every invalid field in its error", () => {
    const bad = {
      clusters: {
        a: {
          vms: [{ name: "vm", memory: "lots", disks: [{ name: "root" }] }],
          nodes: [{ count: 0 }],
          storageClasses: [{ name: "x", volumeBindingMode: "Sometimes" }, { name: "y", capacity: "plenty" }],
          surprise: 1,
        },
      },
    };
    let msg = "";
    try {
      parseScenario(bad, "test.yaml");
    } catch (e) {
      msg = (e as Error).message;
    }
    expect(msg).toContain("invalid scenario test.yaml");
    expect(msg).toContain("clusters.a.vms[0].memory:");
    expect(msg).toContain("clusters.a.vms[0].disks[0].size:");
    expect(msg).toContain("clusters.a.nodes[0].count:");
    expect(msg).toContain("clusters.a.storageClasses[0].volumeBindingMode:");
    expect(msg).toContain('clusters.a.storageClasses[1].capacity: expected a Kubernetes quantity such as "2Gi"');
    expect(msg).toMatch(/surprise/);
  });

  it("builds the default clusters: nodes, storage classes, NAD, KubeVirt CR, and VMs on a only", () => {
    const s = defaultScenario();
    const a = buildObjects("a", 0, clusterSpec(s, "a"));
    const b = buildObjects("b", 1, clusterSpec(s, "b"));
    expect(kinds(a)).toEqual(expect.arrayContaining([
      "Namespace kubevirt", "Namespace vms", "Node a-node-1", "Node a-node-3", "StorageClass standard", "StorageClass local-wffc",
      "NetworkAttachmentDefinition vms/vlan100", "KubeVirt kubevirt/kubevirt", "VirtualMachine vms/web-1", "VirtualMachine vms/db-1", "DataVolume vms/db-1-data",
    ]));
    expect(kinds(b).filter((k) => k.startsWith("VirtualMachine"))).toEqual([]);
    expect(kinds(b)).toContain("Node b-node-1");
    // Namespaces come first so everything else can be created.
    const firstOther = a.findIndex((o) => o.rt.kind !== "Namespace");
    expect(a.slice(firstOther).some((o) => o.rt.kind === "Namespace")).toBe(false);

    const kv = a.find((o) => o.rt.kind === "KubeVirt")!.obj;
    expect(kv.spec.configuration.developerConfiguration.featureGates).toEqual(["DecentralizedLiveMigration"]);
    expect(kv.spec.workloadUpdateStrategy.workloadUpdateMethods).toEqual(["LiveMigrate"]);
    expect(kv.spec.configuration.vmRolloutStrategy).toBe("LiveUpdate");
    expect(kv.spec.configuration.migrations.parallelMigrationsPerCluster).toBe(5);

    const db = a.find((o) => o.rt.kind === "VirtualMachine" && o.obj.metadata.name === "db-1")!.obj;
    expect(db.spec.runStrategy).toBe("Always");
    expect(db.spec.dataVolumeTemplates.map((t: { metadata: { name: string } }) => t.metadata.name)).toEqual(["db-1-rootdisk"]);
    expect(db.spec.dataVolumeTemplates[0].spec.storage).toMatchObject({ storageClassName: "standard", resources: { requests: { storage: "20Gi" } } });
    const tmpl = db.spec.template.spec;
    expect(tmpl.domain.memory.guest).toBe("8Gi");
    expect(tmpl.volumes).toEqual([{ name: "rootdisk", dataVolume: { name: "db-1-rootdisk" } }, { name: "data", dataVolume: { name: "db-1-data" } }]);
    expect(tmpl.networks).toEqual([{ name: "default", pod: {} }, { name: "vlan100", multus: { networkName: "vlan100" } }]);
    expect(tmpl.domain.devices.interfaces[0]).toMatchObject({ name: "default", masquerade: {} });
    expect(tmpl.domain.devices.interfaces[0].macAddress).toMatch(/^02(:[0-9a-f]{2}){5}$/);
    expect(tmpl.domain.devices.interfaces[1]).toMatchObject({ name: "vlan100", bridge: {} });

    const sc = a.find((o) => o.obj.metadata.name === "standard")!.obj;
    expect(sc.metadata.annotations).toEqual({ "storageclass.kubernetes.io/is-default-class": "true" });
    const node = a.find((o) => o.rt.kind === "Node")!.obj;
    expect(node.status.allocatable).toMatchObject({ cpu: "32", memory: "128Gi" });
    expect(node.metadata.labels?.["kubernetes.io/arch"]).toBe("amd64");
  });

  it("loads YAML files, replicates VMs by count, adds missing namespaces and checks raw kinds", () => {
    const dir = mkdtempSync(join(tmpdir(), "scenario-"));
    const file = join(dir, "s.yaml");
    writeFileSync(
      file,
      [
        "defaults:",
        "  nodes: [{count: 2, memory: 64Gi}]",
        "clusters:",
        "  east:",
        "    vms:",
        "      - {name: load, namespace: bulk, count: 3, memory: 512Mi, runStrategy: Halted}",
        "    objects:",
        "      - {apiVersion: v1, kind: ConfigMap, metadata: {name: cfg, namespace: extra}, data: {k: v}}",
        "  west: {}",
      ].join("\n"),
    );
    const s = loadScenarioFile(file);
    expect(Object.keys(s.clusters ?? {})).toEqual(["east", "west"]);
    const east = kinds(buildObjects("east", 0, clusterSpec(s, "east")));
    expect(east).toEqual(expect.arrayContaining(["Namespace bulk", "Namespace extra", "Node east-node-2", "VirtualMachine bulk/load-3", "ConfigMap extra/cfg"]));
    expect(east.filter((k) => k.startsWith("VirtualMachine"))).toHaveLength(3);
    expect(() => buildObjects("x", 0, parseScenario({ defaults: { objects: [{ apiVersion: "v1", kind: "Service", metadata: { name: "p" } }] } }).defaults!)).toThrow(
      /objects\[0\]: kind v1 Service is not served/,
    );
    expect(() => buildObjects("x", 0, parseScenario({ defaults: { objects: [{ apiVersion: "v1", kind: "Pod", metadata: { name: "p" } }] } }).defaults!)).toThrow(
      /objects\[0\]: kind v1 Pod is served read-only/,
    );
  });
});
