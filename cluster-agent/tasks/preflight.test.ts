// Preflight and describe-vm against simulated clusters: the reads behind each issue.
import { afterEach, describe, expect, it } from "vitest";
import type { PreflightRequest, Task } from "../../proto/bus/index.js";
import { VmDescription } from "../../proto/bus/index.js";
import type { World } from "../../sim/world.js";
import type { KubeObj, VirtualMachine, VirtualMachineInstance } from "../core/kube.js";
import { ExecutorError } from "./index.js";
import { base, describeRequest, executor, kube, preflightRequest, until, waitFor, world } from "./testing.js";

let w: World | undefined;
afterEach(async () => {
  await w?.stop();
  w = undefined;
});

const codes = async (cluster: string, req: Partial<PreflightRequest> & Pick<PreflightRequest, "side">) =>
  (await executor(w!, cluster).preflight(preflightRequest({ cluster, ...req }))).issues.map((i) => `${i.severity}:${i.code}`);

const running = async (name: string) =>
  (await kube(w!, "a").get<VirtualMachineInstance>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", namespace: "vms", name }))?.status?.phase === "Running";

const ciVm = {
  apiVersion: "kubevirt.io/v1",
  kind: "VirtualMachine",
  metadata: { name: "ci-1", namespace: "vms", labels: { app: "ci" } },
  spec: {
    runStrategy: "Halted",
    template: {
      spec: {
        domain: { devices: { disks: [{ name: "cloudinit", disk: {} }, { name: "cfg", disk: {} }], interfaces: [{ name: "default", masquerade: {}, macAddress: "02:00:00:00:ee:01" }] }, resources: { requests: { memory: "1Gi" } } },
        networks: [{ name: "default", pod: {} }],
        volumes: [
          { name: "cloudinit", cloudInitNoCloud: { userDataSecretRef: { name: "ci-userdata" } } },
          { name: "cfg", configMap: { name: "ci-config" } },
        ],
      },
    },
  },
};
const objects = [
  { apiVersion: "v1", kind: "Secret", metadata: { name: "ci-userdata", namespace: "vms" }, type: "Opaque", stringData: { userdata: "#cloud-config\n" } },
  { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ci-config", namespace: "vms" }, data: { k: "v" } },
  ciVm,
];

describe("preflight and describe-vm on simulated clusters", () => {
  it("describe-vm returns the VM, its VMI, referenced Secrets/ConfigMaps and source facts; NotFound for a missing VM", async () => {
    w = await world({ objects });
    const ea = executor(w, "a");
    await waitFor("web-1 running", () => running("web-1"));
    const d = await ea.describeVm(describeRequest("a", "vms", "db-1"));
    expect(VmDescription.parse(d)).toBeTruthy();
    expect(d.vm.metadata.name).toBe("db-1");
    expect(d.vmi?.kind).toBe("VirtualMachineInstance");
    expect(d.sourceFacts).toMatchObject({ architecture: "amd64", memoryBytes: 2 ** 30 });
    expect(d.sourceFacts.volumes.map((v) => [v.name, v.claimName, v.sizeBytes, v.storageClass])).toEqual([
      ["rootdisk", "db-1-rootdisk", 2 * 2 ** 30, "standard"],
      ["data", "db-1-data", 2 ** 30, "standard"],
    ]);
    expect(d.sourceFacts.macAddresses).toHaveLength(2);
    expect((d.vm as unknown as VirtualMachine).spec.template.spec.domain.firmware?.uuid).toBeDefined();
    const ci = await ea.describeVm(describeRequest("a", "vms", "ci-1"));
    expect(ci.vmi).toBeUndefined();
    expect(ci.sourceFacts.dependencies).toEqual([
      { kind: "Secret", name: "ci-userdata" },
      { kind: "ConfigMap", name: "ci-config" },
    ]);
    expect(ci.dependencies.map((o) => [o.kind, o.metadata.name, o.metadata.namespace])).toEqual([
      ["Secret", "ci-userdata", "vms"],
      ["ConfigMap", "ci-config", "vms"],
    ]);
    expect(ci.dependencies.every((o) => o.metadata.uid === undefined && o.metadata.resourceVersion === undefined)).toBe(true);
    await expect(ea.describeVm(describeRequest("a", "vms", "nope"))).rejects.toBeInstanceOf(ExecutorError);

    // the target copies the dependencies under the same names, labelled, into a namespace it creates
    const prepare: Task = {
      ...base("d1", 1, { cluster: "a", namespace: "vms", name: "ci-1" }, { cluster: "b", namespace: "fresh", name: "ci-1" }),
      role: "target",
      action: "prepare",
      storageMap: [],
      networkMap: [],
      sourceVm: { manifest: ci.vm, dependencies: ci.dependencies, volumes: ci.sourceFacts.volumes },
    };
    await until(executor(w, "b"), prepare, (s) => s.step === "WaitingForReceiver" || s.step === "Failed");
    const copy = await kube(w, "b").get<KubeObj & { data?: Record<string, string> }>({ apiVersion: "v1", kind: "Secret", namespace: "fresh", name: "ci-userdata" });
    expect(copy?.metadata.labels).toMatchObject({ "app.kubernetes.io/managed-by": "ferry", "ferry.dev/migration": "d1", "ferry.dev/attempt": "1" });
    expect(Buffer.from(copy?.data?.userdata ?? "", "base64").toString()).toBe("#cloud-config\n");
    const receiver = await kube(w, "b").get<VirtualMachine>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", namespace: "fresh", name: "ci-1" });
    expect(receiver?.spec.runStrategy).toBe("WaitAsReceiver");
    expect(receiver?.metadata.annotations?.["kubevirt.io/restore-run-strategy"]).toBe("Halted");
    expect(receiver?.metadata.labels?.app).toBe("ci");
  }, 120_000);

  it("reports each source-side issue: VM missing, not running, gate off, no sync address, LiveMigrate missing, too few nodes, unknown class", async () => {
    w = await world({ objects });
    await waitFor("web-1 running", () => running("web-1"));
    expect(await codes("a", { side: "source" })).toEqual(["warning:StorageClassUnmapped"]);
    expect(await codes("a", { side: "source", source: { cluster: "a", namespace: "vms", name: "nope" } })).toEqual(["error:VmNotFound"]);
    expect(await codes("a", { side: "source", source: { cluster: "a", namespace: "vms", name: "ci-1" } })).toContain("error:VmNotRunning");
    expect(await codes("a", { side: "source", migrationKind: "offline", source: { cluster: "a", namespace: "vms", name: "web-1" }, storageMap: [{ source: "standard", target: "fast" }] })).toContain("error:VmRunning");
    const storage = { side: "source" as const, migrationKind: "storage-live" as const, target: { cluster: "a", namespace: "vms", name: "web-1" } };
    expect(await codes("a", { ...storage, storageMap: [{ source: "standard", target: "fast" }] })).toEqual([]);
    expect(await codes("a", { ...storage, storageMap: [{ source: "standard", target: "gold" }] })).toContain("error:StorageClassMissing");
    expect(await codes("a", { ...storage, storageMap: [] })).toContain("error:NoStorageChange");
    // The target side of an in-place move: the VM, its claims and its MACs are its own, not collisions.
    const facts = (await executor(w, "a").describeVm(describeRequest("a", "vms", "web-1"))).sourceFacts;
    expect(await codes("a", { ...storage, side: "target", sourceFacts: facts, storageMap: [{ source: "standard", target: "fast" }] })).toEqual([]);
    const k = kube(w, "a");
    for (const n of ["a-node-2", "a-node-3"]) await k.mergePatch({ apiVersion: "v1", kind: "Node", metadata: { name: n }, spec: { unschedulable: true } });
    await k.mergePatch({ apiVersion: "kubevirt.io/v1", kind: "KubeVirt", metadata: { name: "kubevirt", namespace: "kubevirt" }, spec: { workloadUpdateStrategy: { workloadUpdateMethods: [] } } });
    const blocked = await codes("a", { ...storage, storageMap: [{ source: "standard", target: "fast" }] });
    expect(blocked).toEqual(expect.arrayContaining(["error:LiveMigrateNotEnabled", "error:NotEnoughNodes"]));
    await k.mergePatch({ apiVersion: "kubevirt.io/v1", kind: "KubeVirt", metadata: { name: "kubevirt", namespace: "kubevirt" }, spec: { configuration: { developerConfiguration: { featureGates: [] } } } });
    const gateOff = await waitFor("sync address withdrawn", async () => {
      const c = await codes("a", { side: "source" });
      return c.includes("warning:NoSynchronizationAddress") ? c : undefined;
    });
    expect(gateOff).toContain("error:DecentralizedLiveMigrationDisabled");
  }, 120_000);

  it("reports each target-side issue: name, claim and dependency collisions, MAC in use, missing class/network, namespace to create, destination too small", async () => {
    w = await world({ objects });
    await waitFor("web-1 running", () => running("web-1"));
    const facts = (await executor(w, "a").describeVm(describeRequest("a", "vms", "db-1"))).sourceFacts;
    const target = { cluster: "b", namespace: "vms", name: "db-1" };
    const tgt = (over: Partial<PreflightRequest> = {}) => codes("b", { side: "target", source: { cluster: "a", namespace: "vms", name: "db-1" }, target, sourceFacts: facts, ...over });
    expect(await tgt()).toEqual([]);
    expect(await tgt({ sourceFacts: undefined })).toEqual(["error:SourceFactsMissing"]);
    expect(await tgt({ target: { ...target, namespace: "newns" } })).toEqual(["warning:TargetNamespaceMissing"]);
    expect(await tgt({ storageMap: [{ source: "standard", target: "gold" }] })).toEqual(["error:StorageClassMissingOnTarget", "error:StorageClassMissingOnTarget"]);
    expect(await tgt({ networkMap: [{ source: "vms/vlan100", target: "vms/vlan200" }] })).toEqual(["error:NetworkMissingOnTarget"]);
    expect(await tgt({ sourceFacts: { ...facts, architecture: "arm64" } })).toEqual(["error:ArchitectureUnavailable"]);
    const kb = kube(w, "b");
    // The simulated CSI driver publishes 2Gi free for "standard" (CSIStorageCapacity); db-1 needs 3Gi.
    await kb.mergePatch({ apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "standard", annotations: { "sim.kubevirt.io/storage-capacity": "2Gi" } } });
    await waitFor("standard too small", async () => ((await tgt()).includes("error:StorageCapacityExceeded") ? true : undefined));
    await kb.mergePatch({ apiVersion: "storage.k8s.io/v1", kind: "StorageClass", metadata: { name: "standard", annotations: { "sim.kubevirt.io/storage-capacity": "1Ti" } } });
    await waitFor("standard has room", async () => ((await tgt()).length === 0 ? true : undefined));
    const d = await executor(w, "a").describeVm(describeRequest("a", "vms", "db-1"));
    const clash = structuredClone(d.vm) as unknown as VirtualMachine;
    clash.metadata = { name: "other", namespace: "vms" };
    clash.spec.runStrategy = "Halted";
    delete clash.spec.dataVolumeTemplates;
    await kb.create(clash);
    await kb.create({ ...clash, metadata: { name: "db-1", namespace: "vms" } });
    await kb.create({ apiVersion: "cdi.kubevirt.io/v1beta1", kind: "DataVolume", metadata: { name: "db-1-data", namespace: "vms" }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "1Gi" } } } } });
    await kb.create({
      apiVersion: "cdi.kubevirt.io/v1beta1",
      kind: "DataVolume",
      metadata: { name: "db-1-rootdisk", namespace: "vms", labels: { "app.kubernetes.io/managed-by": "ferry", "ferry.dev/migration": "old", "ferry.dev/attempt": "1" } },
      spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "1Gi" } } } },
    });
    await kb.create({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "ci-config", namespace: "vms" }, data: {} });
    const issues = await tgt({ sourceFacts: { ...facts, dependencies: [{ kind: "ConfigMap", name: "ci-config" }] } });
    expect(issues.sort()).toEqual(["error:DependencyCollision", "error:DestinationTooSmall", "error:MacAddressCollision", "error:MacAddressCollision", "error:TargetNameCollision", "error:VolumeNameCollision"].sort());
  }, 120_000);
});
