import { describe, expect, it } from "vitest";
import { BUS_API_VERSION, type PreflightRequest } from "../../proto/bus/index.js";
import { dvFixture, kubevirtFixture, pvcFixture, vmFixture, vmiFixture } from "./fixtures.js";
import type { Node } from "./kube.js";
import { decentralizedGateOn, preflightIssues, preflightResult, type PreflightObserved } from "./preflight.js";

const node = (name: string, over: { unschedulable?: boolean; memory?: string; arch?: string } = {}): Node => ({
  metadata: { name, labels: { "kubernetes.io/arch": over.arch ?? "amd64" } },
  spec: over.unschedulable ? { unschedulable: true } : {},
  status: { allocatable: { memory: over.memory ?? "64Gi" }, conditions: [{ type: "Ready", status: "True" }] },
});

function observed(over: Partial<PreflightObserved> = {}): PreflightObserved {
  const vm = vmFixture();
  return {
    kubevirt: kubevirtFixture(),
    vm,
    vmi: vmiFixture(vm),
    namespaceExists: true,
    pvcs: [pvcFixture("db-1-data", { size: "50Gi" })],
    dataVolumes: [],
    secrets: [{ metadata: { name: "db-1-userdata" } }],
    configMaps: [],
    storageClasses: ["standard", "fast"],
    classCapacities: new Map(),
    networks: [{ namespace: "vms", name: "vlan100" }],
    nodes: [node("n1"), node("n2"), node("n3")],
    vms: [],
    vmis: [],
    ...over,
  };
}

function req(over: Partial<PreflightRequest> = {}): PreflightRequest {
  return {
    apiVersion: BUS_API_VERSION,
    kind: "PreflightRequest",
    cluster: "a",
    deadline: "2026-01-01T00:00:00Z",
    side: "source",
    migrationKind: "decentralized-live",
    source: { cluster: "a", namespace: "vms", name: "db-1" },
    target: { cluster: "b", namespace: "vms", name: "db-1" },
    storageMap: [{ source: "standard", target: "fast" }],
    networkMap: [{ source: "vms/vlan100", target: "vms/vlan100" }],
    ...over,
  };
}

const codes = (r: PreflightRequest, o: PreflightObserved) => preflightIssues(r, o).map((i) => i.code);

const facts = {
  architecture: "amd64",
  memoryBytes: 8 * 2 ** 30,
  volumes: [{ name: "rootdisk", claimName: "db-1-rootdisk", sizeBytes: 20 * 2 ** 30, storageClass: "standard" }],
  dependencies: [{ kind: "Secret" as const, name: "db-1-userdata" }],
  macAddresses: ["02:00:00:00:00:01"],
};

describe("preflight (pure)", () => {
  it("a running, migratable VM with every class mapped has no issue", () => {
    expect(preflightIssues(req(), observed())).toEqual([]);
    expect(preflightResult([]).ok).toBe(true);
  });
  it("every issue names a field and a fix", () => {
    const vm = vmFixture();
    vm.spec.template.spec.domain.devices!.disks![0]!.shareable = true;
    const issues = preflightIssues(req({ storageMap: [] }), observed({ vm, vmi: vmiFixture(vm), kubevirt: kubevirtFixture({ featureGates: [], addresses: [] }) }));
    expect(issues.map((i) => i.code)).toEqual(["DecentralizedLiveMigrationDisabled", "NoSynchronizationAddress", "VmNotLiveMigratable", "StorageClassUnmapped", "StorageClassUnmapped"]);
    for (const i of issues) expect(i.message).not.toBe("");
    expect(issues.find((i) => i.code === "DecentralizedLiveMigrationDisabled")).toMatchObject({ severity: "error", field: "spec.configuration.developerConfiguration.featureGates" });
    expect(issues.find((i) => i.code === "VmNotLiveMigratable")?.message).toContain("ShareableDisk");
    expect(preflightResult(issues).ok).toBe(false);
  });
  it("a referenced Secret that does not exist cannot be copied", () => {
    const issues = preflightIssues(req(), observed({ secrets: [] }));
    expect(issues.map((i) => [i.code, i.field])).toEqual([["DependencyMissing", "spec.template.spec.volumes[2].cloudInitNoCloud.userDataSecretRef.name"]]);
  });
  it("within one cluster the source VM's own MACs are no collision", () => {
    const same = req({ side: "target", target: { cluster: "a", namespace: "other", name: "db-1" }, sourceFacts: facts });
    const vm = vmFixture();
    expect(codes(same, observed({ vm: undefined, vmi: undefined, pvcs: [], secrets: [], vms: [vm], vmis: [vmiFixture(vm)] }))).toEqual([]);
  });
  it("a network is mapped whether the map says vlan100 or vms/vlan100; unmapped it is a warning", () => {
    expect(codes(req({ networkMap: [{ source: "vlan100", target: "vlan100" }] }), observed())).toEqual([]);
    expect(preflightIssues(req({ networkMap: [] }), observed()).map((i) => `${i.severity}:${i.code}`)).toEqual(["warning:NetworkUnmapped"]);
  });
  it("a stopped VM is pointed to the offline path; the offline path refuses a running one", () => {
    const issues = preflightIssues(req(), observed({ vmi: undefined }));
    expect(issues.map((i) => i.code)).toEqual(["VmNotRunning"]);
    expect(issues[0]?.fix).toContain("offline");
    expect(codes(req({ migrationKind: "offline", target: req().source }), observed())).toContain("VmRunning");
  });
  it("storage live migration needs LiveMigrate, LiveUpdate, two nodes with room, StorageLiveMigratable and an existing class", () => {
    const r = req({ migrationKind: "storage-live", target: req().source, storageMap: [{ source: "standard", target: "gold" }] });
    const vm = vmFixture();
    const vmi = vmiFixture(vm);
    vmi.status!.conditions!.push({ type: "StorageLiveMigratable", status: "False", reason: "NotMigratable", message: "PVC db-1-data is RWO" });
    const kv = kubevirtFixture({ methods: [] });
    kv.spec!.configuration!.vmRolloutStrategy = "Stage";
    expect(codes(r, observed({ vm, vmi, kubevirt: kv, nodes: [node("n1"), node("n2", { unschedulable: true }), node("n3", { memory: "1Gi" })] }))).toEqual([
      "StorageClassMissing",
      "LiveMigrateNotEnabled",
      "VmRolloutStrategyNotLiveUpdate",
      "StorageNotLiveMigratable",
      "NotEnoughNodes",
    ]);
    expect(codes({ ...r, storageMap: [] }, observed())).toEqual(["NoStorageChange"]);
  });
  it("target side: collisions, MACs, classes, networks, namespace, architecture, memory, size", () => {
    const t = (o: Partial<PreflightObserved>, r: Partial<PreflightRequest> = {}) => codes(req({ side: "target", cluster: "b", sourceFacts: facts, ...r }), observed({ vm: undefined, vmi: undefined, pvcs: [], secrets: [], ...o }));
    expect(t({})).toEqual([]);
    expect(t({ namespaceExists: false })).toEqual(["TargetNamespaceMissing"]);
    expect(t({ vm: vmFixture() })).toEqual(["TargetNameCollision"]);
    expect(t({ vms: [vmFixture({ name: "other" })] })).toEqual(["MacAddressCollision"]);
    expect(t({ dataVolumes: [dvFixture("db-1-rootdisk")] })).toEqual(["VolumeNameCollision"]);
    const small = dvFixture("db-1-rootdisk");
    small.metadata.labels = { "app.kubernetes.io/managed-by": "ferry", "ferry.dev/migration": "old" };
    small.spec.storage!.resources!.requests!.storage = "1Gi";
    expect(t({ dataVolumes: [small] })).toEqual(["DestinationTooSmall"]);
    expect(t({ secrets: [{ metadata: { name: "db-1-userdata" } }] })).toEqual(["DependencyCollision"]);
    expect(t({ secrets: [{ metadata: { name: "db-1-userdata", labels: { "app.kubernetes.io/managed-by": "ferry" } } }] })).toEqual([]);
    expect(t({ storageClasses: ["standard"] })).toEqual(["StorageClassMissingOnTarget"]);
    expect(t({}, { storageMap: [] })).toEqual([]);
    expect(t({ storageClasses: ["fast"] }, { storageMap: [] })).toEqual(["StorageClassUnmapped"]);
    expect(t({ networks: [] })).toEqual(["NetworkMissingOnTarget"]);
    expect(t({ nodes: [node("n1", { arch: "arm64" })] })).toEqual(["ArchitectureUnavailable"]);
    expect(t({ nodes: [node("n1", { memory: "4Gi" })] })).toEqual(["InsufficientMemory"]);
    expect(t({ classCapacities: new Map([["fast", 19 * 2 ** 30]]) })).toEqual(["StorageCapacityExceeded"]);
    expect(t({ classCapacities: new Map([["fast", 20 * 2 ** 30], ["standard", 0]]) })).toEqual([]);
    expect(t({ kubevirt: kubevirtFixture({ addresses: [] }) })).toEqual(["NoSynchronizationAddress"]);
    expect(codes(req({ side: "target" }), observed())).toEqual(["SourceFactsMissing"]);
  });
  it("checks the target classes' free space (CSIStorageCapacity) against the volumes the receiver still needs", () => {
    const two = { ...facts, volumes: [...facts.volumes, { name: "data", claimName: "db-1-data", sizeBytes: 30 * 2 ** 30, storageClass: "standard" }] };
    const target = (o: Partial<PreflightObserved>, r: Partial<PreflightRequest> = {}) =>
      preflightIssues(req({ side: "target", cluster: "b", sourceFacts: two, ...r }), observed({ vm: undefined, vmi: undefined, pvcs: [], secrets: [], ...o }));
    const [issue, ...rest] = target({ classCapacities: new Map([["fast", 40 * 2 ** 30]]) });
    expect(rest).toEqual([]);
    expect(issue).toEqual({
      code: "StorageCapacityExceeded",
      severity: "error",
      field: "storageMap[0].target",
      message: "storage class fast on cluster b reports 40 GiB free (CSIStorageCapacity); VM vms/db-1 needs 50 GiB there for volumes rootdisk, data",
      fix: "free space in fast on b, map the volumes to another class in storageMap, or choose another target cluster",
    });
    // A claim ferry made on an earlier try is already counted in the free space.
    const made = dvFixture("db-1-data");
    made.metadata.labels = { "app.kubernetes.io/managed-by": "ferry", "ferry.dev/migration": "old" };
    made.spec.storage!.resources!.requests!.storage = "30Gi";
    expect(target({ classCapacities: new Map([["fast", 40 * 2 ** 30]]), dataVolumes: [made] })).toEqual([]);
    // Unmapped volumes keep their class name on the target; the field then names the target cluster.
    expect(target({ classCapacities: new Map([["standard", 2 ** 30]]) }, { storageMap: [] }).map((i) => [i.code, i.field])).toEqual([["StorageCapacityExceeded", "target.cluster"]]);
    // A storage move within the cluster needs room only for the volumes whose class changes.
    const inPlace = { cluster: "a", namespace: "vms", name: "db-1" };
    const move = (free: number) => target({ classCapacities: new Map([["fast", free * 2 ** 30]]) }, { cluster: "a", migrationKind: "storage-live", source: inPlace, target: inPlace, storageMap: [{ source: "standard", target: "fast" }] });
    expect(move(50).map((i) => i.code)).toEqual([]);
    expect(move(49).map((i) => i.code)).toEqual(["StorageCapacityExceeded"]);
  });

  it("the gate is on when enabled, or Beta (v1.10+) and not disabled", () => {
    expect(decentralizedGateOn(kubevirtFixture())).toBe(true);
    expect(decentralizedGateOn(kubevirtFixture({ featureGates: [] }))).toBe(false);
    const beta = kubevirtFixture({ featureGates: [] });
    beta.status!.observedKubeVirtVersion = "v1.10.0";
    expect(decentralizedGateOn(beta)).toBe(true);
    beta.spec!.configuration!.developerConfiguration!.disabledFeatureGates = ["DecentralizedLiveMigration"];
    expect(decentralizedGateOn(beta)).toBe(false);
  });
  it("a KubeVirt-less cluster says so", () => {
    expect(codes(req(), observed({ kubevirt: undefined }))).toEqual(["KubeVirtMissing"]);
  });
});
