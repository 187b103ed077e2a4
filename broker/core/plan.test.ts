import { describe, expect, it } from "vitest";
import type { Inventory } from "../../proto/bus/index.js";
import type { MigrationPlan } from "../../proto/plan.js";
import type { Clusters } from "./clusters.js";
import { transportFailure, type CommandResult } from "./commands.js";
import { boundFindings, checkPlan, createPlanRecords, expandPlan, matchesSelector, promisedMemory, promisedStorage, type Expansion } from "./plan.js";
import { MigrationRecord, PlanRecord, type Finding } from "./records.js";
import { describeReply, GiB, inventory, migration, plan, preflightOk, rpcError, stopped, T0, view, vm } from "./test-fixtures.js";

const clusters = (over: Record<string, Partial<Parameters<typeof view>[1]>> = {}): Clusters => ({
  east: view("east", over.east),
  west: view("west", over.west),
  north: view("north", over.north),
});

function expand(doc: MigrationPlan, invs: Record<string, Inventory>, cl: Clusters = clusters(), busy: Parameters<typeof expandPlan>[0]["busy"] = []): Expansion {
  return expandPlan({ plan: doc, clusters: cl, inventories: invs, busy, now: T0 });
}

const codes = (fs: readonly Finding[]) => fs.map((f) => `${f.severity}:${f.code}`).sort();
const east = (vms = [vm("db", "pg-0")], over: Partial<Inventory> = {}) => inventory("east", { vms, ...over });
const west = (over: Parameters<typeof inventory>[1] = {}) => inventory("west", over);

describe("label selectors", () => {
  const labels = { app: "pg", tier: "db" };
  it.each([
    [{ matchLabels: { app: "pg" } }, true],
    [{ matchLabels: { app: "redis" } }, false],
    [{ matchExpressions: [{ key: "tier", operator: "In" as const, values: ["db", "cache"] }] }, true],
    [{ matchExpressions: [{ key: "tier", operator: "NotIn" as const, values: ["db"] }] }, false],
    [{ matchExpressions: [{ key: "zone", operator: "NotIn" as const, values: ["a"] }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "Exists" as const }] }, true],
    [{ matchExpressions: [{ key: "app", operator: "DoesNotExist" as const }] }, false],
    [{ matchLabels: { app: "pg" }, matchExpressions: [{ key: "zone", operator: "Exists" as const }] }, false],
  ])("%j → %s", (selector, expected) => {
    expect(matchesSelector(selector, labels)).toBe(expected);
  });
});

describe("expansion: selection and kinds", () => {
  it("picks the kind: running across clusters → decentralized live; same cluster and namespace → storage live; stopped in its cluster → offline", () => {
    const src = east([vm("db", "pg-0"), stopped("db", "pg-1")]);
    const cross = expand(plan({ vms: [{ namespace: "db", name: "pg-0" }] }), { east: src, west: west() });
    expect(cross.migrations).toEqual([
      { source: { cluster: "east", namespace: "db", name: "pg-0" }, target: { cluster: "west", namespace: "db", name: "pg-0" }, kind: "decentralized-live", size: { memoryBytes: 4 * GiB, diskBytes: 20 * GiB }, sourceNode: "n1" },
    ]);
    expect(cross.findings).toEqual([]);

    const local = expand(plan({ vms: [{ namespace: "db", name: "pg-0" }, { namespace: "db", name: "pg-1" }], target: { cluster: "east" }, storageMap: [{ source: "ceph-rbd", target: "lvm" }] }), { east: src });
    expect(local.migrations.map((m) => [m.source.name, m.kind])).toEqual([
      ["pg-0", "storage-live"],
      ["pg-1", "offline"],
    ]);
    expect(local.migrations[1]?.sourceNode).toBeUndefined();
    expect(local.findings).toEqual([]);
  });

  it("refuses a stopped VM across clusters: an error when listed, a skip when a selector picked it", () => {
    const src = east([vm("db", "pg-0"), stopped("db", "pg-1")]);
    const listed = expand(plan({ vms: [{ namespace: "db", name: "pg-1" }] }), { east: src, west: west() });
    expect(listed.findings).toEqual([
      expect.objectContaining({ severity: "error", code: "VmStoppedCrossCluster", field: "spec.vms[0]", vm: { cluster: "east", namespace: "db", name: "pg-1" }, fix: "start the VM to move it live, or move it within cluster east" }),
    ]);
    const selected = expand(plan({ vms: undefined, selector: { namespaces: ["db"] } }), { east: src, west: west() });
    expect(selected.migrations.map((m) => m.source.name)).toEqual(["pg-0"]);
    expect(codes(selected.findings)).toEqual(["warning:VmStoppedCrossCluster"]);
    expect(selected.findings[0]?.message).toMatch(/; skipped$/);
  });

  it("refuses VMs in transition and offline moves across namespaces", () => {
    const src = east([vm("db", "pg-0", { vmiPhase: "Scheduling", printableStatus: "Starting" }), stopped("db", "pg-1")]);
    const r = expand(plan({ vms: [{ namespace: "db", name: "pg-0" }, { namespace: "db", name: "pg-1" }], target: { cluster: "east", namespace: "db2" } }), { east: src });
    expect(codes(r.findings)).toEqual(["error:OfflineAcrossNamespaces", "error:VmNotSettled"]);
  });

  it("selects by namespace and labels", () => {
    const src = east([vm("db", "pg-0", { labels: { app: "pg" } }), vm("db", "redis", { labels: { app: "redis" } }), vm("web", "pg-web", { labels: { app: "pg" } })]);
    const r = expand(plan({ vms: undefined, selector: { namespaces: ["db"], labelSelector: { matchLabels: { app: "pg" } } } }), { east: src, west: west() });
    expect(r.migrations.map((m) => `${m.source.namespace}/${m.source.name}`)).toEqual(["db/pg-0"]);
    const all = expand(plan({ vms: undefined, selector: { allVMs: true } }), { east: src, west: west() });
    expect(all.migrations).toHaveLength(3);
  });

  it("reports VMs not found, an empty selection and nothing movable", () => {
    expect(expand(plan({ vms: [{ namespace: "db", name: "nope" }] }), { east: east(), west: west() }).findings).toEqual([
      expect.objectContaining({ code: "VmNotFound", severity: "error", field: "spec.vms[0]", message: "VM db/nope does not exist on cluster east" }),
    ]);
    expect(codes(expand(plan({ vms: undefined, selector: { namespaces: ["empty"] } }), { east: east(), west: west() }).findings)).toEqual(["error:NothingSelected"]);
    expect(codes(expand(plan({ vms: undefined, selector: { allVMs: true } }), { east: east([stopped("db", "a")]), west: west() }).findings)).toEqual(["error:NothingToMove", "warning:VmStoppedCrossCluster"]);
  });

  it("says why a VM the agent left out of its inventory cannot be planned, and warns a selector about left-out VMs", () => {
    const omitted = { total: 3, items: [{ kind: "VirtualMachine" as const, name: "db/odd", reason: "ferry cannot carry it: labels: Too big" }] };
    const src = { ...east(), omitted };
    const listed = expand(plan({ vms: [{ namespace: "db", name: "odd" }] }), { east: src, west: west() });
    expect(listed.findings).toEqual([
      expect.objectContaining({ code: "VmNotReported", severity: "error", field: "spec.vms[0]", message: "cluster east's agent left VM db/odd out of its inventory: ferry cannot carry it: labels: Too big" }),
    ]);
    const selected = expand(plan({ vms: undefined, selector: { allVMs: true } }), { east: src, west: west() });
    expect(codes(selected.findings)).toContain("warning:VmsNotReported");
    expect(selected.migrations.map((m) => m.source.name)).toEqual(["pg-0"]);
  });

  it("refuses a VM another plan is moving, and two VMs that would land on the same name", () => {
    const busy = [{ plan: "earlier", source: { cluster: "east", namespace: "db", name: "pg-0" }, target: { cluster: "north", namespace: "db", name: "pg-0" }, memoryBytes: GiB }];
    const r = expand(plan(), { east: east(), west: west() }, clusters(), busy);
    expect(r.findings).toEqual([expect.objectContaining({ code: "VmAlreadyMigrating", message: "VM db/pg-0 is already being moved by plan earlier (to north/db/pg-0)" })]);
    expect(r.migrations).toEqual([]);

    const two = expand(plan({ vms: [{ namespace: "db", name: "pg-0" }, { namespace: "web", name: "pg-0" }], target: { cluster: "west", namespace: "prod" } }), { east: east([vm("db", "pg-0"), vm("web", "pg-0")]), west: west({ namespaces: ["prod"] }) });
    expect(codes(two.findings)).toEqual(["error:TargetNameCollision"]);
    expect(two.findings[0]?.message).toBe("VMs db/pg-0 and web/pg-0 would both become west/prod/pg-0");
  });

  it("without the source inventory, says why and plans nothing", () => {
    const r = expand(plan(), {}, clusters({ east: { availability: "unreachable", lastSeen: "2026-11-21T11:00:00.000Z" } }));
    expect(r.findings).toEqual([expect.objectContaining({ code: "ClusterUnreachable", severity: "error", message: "source cluster east is unreachable since 11:00:00 UTC and has never reported an inventory" })]);
    expect(codes(expand(plan(), {}).findings)).toEqual(["error:InventoryMissing"]);
    expect(codes(expand(plan(), {}, { west: view("west") }).findings)).toEqual(["error:ClusterUnknown"]);
  });
});

describe("expansion: cluster and VM checks", () => {
  it("reports feature gate, synchronization address, capability, availability and cordon problems", () => {
    const cl = clusters({
      east: { decentralizedLiveMigration: false, synchronizationAddresses: [] },
      west: { synchronizationAddresses: [], capabilities: ["storage-live-migration"], cordon: { reason: "maintenance" }, availability: "unreachable" },
    });
    const r = expand(plan(), { east: east(), west: west() }, cl);
    expect(codes(r.findings)).toEqual([
      "error:AgentLacksCapability",
      "error:DecentralizedLiveMigrationDisabled",
      "error:NoSynchronizationAddress",
      "warning:ClusterCordoned",
      "warning:ClusterUnreachable",
      "warning:NoSynchronizationAddress",
    ]);
    expect(r.findings.find((f) => f.code === "DecentralizedLiveMigrationDisabled")?.fix).toBe("add DecentralizedLiveMigration to spec.configuration.developerConfiguration.featureGates of the KubeVirt CR on east");
    expect(codes(expand(plan({ target: { cluster: "nowhere" } }), { east: east() }).findings)).toEqual(["error:ClusterUnknown"]);
  });

  it("checks the storage map against the target's classes, naming the field to fix", () => {
    const unmapped = expand(plan(), { east: east(), west: west({ storageClasses: [{ name: "lvm", provisioner: "x", volumeBindingMode: "Immediate", isDefault: true }] }) });
    expect(unmapped.findings).toEqual([
      expect.objectContaining({ code: "StorageClassUnmapped", field: "spec.storageMap", fix: "add a spec.storageMap entry {source: ceph-rbd, target: <a class of west>}" }),
    ]);
    const missing = expand(plan({ storageMap: [{ source: "ceph-rbd", target: "gold" }] }), { east: east(), west: west() });
    expect(missing.findings).toEqual([expect.objectContaining({ code: "StorageClassMissingOnTarget", field: "spec.storageMap[0].target", fix: "use one of west's storage classes: ceph-rbd, lvm" })]);
    expect(expand(plan({ storageMap: [{ source: "ceph-rbd", target: "lvm" }] }), { east: east(), west: west() }).findings).toEqual([]);
  });

  it("checks networks: unmapped, mapped to a missing one, and NADs that exist", () => {
    const nad = vm("db", "pg-0", { interfaces: [{ name: "data", network: "db/vlan10" }] });
    expect(codes(expand(plan(), { east: east([nad]), west: west() }).findings)).toEqual(["error:NetworkUnmapped"]);
    expect(expand(plan({ networkMap: [{ source: "db/vlan10", target: "db/vlan20" }] }), { east: east([nad]), west: west() }).findings).toEqual([
      expect.objectContaining({ code: "NetworkMissingOnTarget", field: "spec.networkMap[0].target" }),
    ]);
    expect(expand(plan({ networkMap: [{ source: "db/vlan10", target: "vlan20" }] }), { east: east([nad]), west: west({ networks: [{ namespace: "db", name: "vlan20" }] }) }).findings).toEqual([]);
  });

  it("checks blockers, hotplugged and unsupported volumes, architecture, name and MAC collisions, the namespace", () => {
    const bad = vm("db", "pg-0", {
      node: "arm-1",
      migrationBlockers: [{ reason: "DisksNotLiveMigratable", message: "disk lun0 is a LUN" }],
      volumes: [
        { name: "hot", kind: "persistentVolumeClaim", claimName: "hot", sizeBytes: GiB, storageClass: "ceph-rbd", hotpluggable: true },
        { name: "host", kind: "hostDisk" },
      ],
      interfaces: [{ name: "default", network: "pod", macAddress: "02:00:00:00:00:01" }],
    });
    const src = east([bad], { nodes: [{ name: "arm-1", architecture: "arm64", schedulable: true, allocatableMemoryBytes: 64 * GiB }] });
    const tgt = west({ namespaces: [], vms: [vm("db", "pg-0", { uid: "other", interfaces: [{ name: "eth0", network: "pod", macAddress: "02:00:00:00:00:01" }] })] });
    const r = expand(plan(), { east: src, west: tgt });
    expect(codes(r.findings)).toEqual([
      "error:ArchitectureUnavailable",
      "error:MacAddressCollision",
      "error:TargetNameCollision",
      "error:VmNotLiveMigratable",
      "error:VolumeHotplugged",
      "error:VolumeUnsupported",
      "warning:TargetNamespaceMissing",
    ]);
    expect(r.findings.find((f) => f.code === "VolumeUnsupported")?.field).toBe("spec.template.spec.volumes[1]");
    expect(r.findings.find((f) => f.code === "MacAddressCollision")?.message).toBe("MAC 02:00:00:00:00:01 of VM db/pg-0 is already used by VM db/pg-0 on cluster west");
  });

  it("checks storage live migration's KubeVirt prerequisites and warns when nothing changes class", () => {
    const src = east([vm("db", "pg-0")], { kubevirt: { ...inventory("east").kubevirt, workloadUpdateMethods: [], vmRolloutStrategy: "Stage" }, nodes: [{ name: "n1", architecture: "amd64", schedulable: true, allocatableMemoryBytes: GiB }] });
    const r = expand(plan({ target: { cluster: "east" } }), { east: src });
    expect(codes(r.findings)).toEqual(["error:LiveMigrateUpdatesDisabled", "error:TooFewNodes", "error:VmRolloutStrategyNotLiveUpdate", "warning:NoStorageChange"]);
  });

  it("warns when the target lacks memory for the plan", () => {
    const big = east(Array.from({ length: 5 }, (_, i) => vm("db", `pg-${i}`, { memoryBytes: 32 * GiB })));
    const r = expand(plan({ vms: undefined, selector: { namespaces: ["db"] } }), { east: big, west: west() });
    expect(r.findings).toEqual([expect.objectContaining({ code: "TargetCapacity", severity: "warning" })]);
    expect(r.findings[0]?.message).toMatch(/moves 160 GiB of VM memory to cluster west, which has about 128 GiB free/);
  });

  it("warns when a target class reports less free space than the plan puts in it (with other plans' promises); unknown capacity is not checked", () => {
    const withCapacity = (gib: Record<string, number>) => inventory("west").storageClasses.map((c) => ({ ...c, ...(gib[c.name] !== undefined ? { capacityBytes: gib[c.name]! * GiB } : {}) }));
    const three = east(["pg-0", "pg-1", "pg-2"].map((n) => vm("db", n))); // 20 GiB ceph-rbd each
    const all = plan({ vms: undefined, selector: { namespaces: ["db"] }, storageMap: [{ source: "ceph-rbd", target: "lvm" }] });
    const r = expand(all, { east: three, west: west({ storageClasses: withCapacity({ lvm: 50 }) }) });
    expect(r.findings).toEqual([
      expect.objectContaining({
        code: "TargetStorageCapacity",
        severity: "warning",
        field: "spec.storageMap[0].target",
        message: "the plan puts 60 GiB of volumes in storage class lvm on cluster west, which reports 50 GiB free; volumes that do not fit stay Pending and their migrations stall",
      }),
    ]);
    expect(codes(expand(all, { east: three, west: west({ storageClasses: withCapacity({ lvm: 60 }) }) }).findings)).toEqual([]);
    expect(codes(expand(all, { east: three, west: west({ storageClasses: withCapacity({ "ceph-rbd": 1 }) }) }).findings)).toEqual([]);

    // Another plan's queued migration to west promised 20 GiB of lvm: 60 + 20 > 70.
    const busy = [{ plan: "earlier", source: { cluster: "east", namespace: "web", name: "x" }, target: { cluster: "west", namespace: "web", name: "x" }, memoryBytes: GiB, storageBytes: { lvm: 20 * GiB } }];
    const promised = expand(all, { east: three, west: west({ storageClasses: withCapacity({ lvm: 70 }) }) }, clusters(), busy);
    expect(promised.findings[0]?.message).toBe("the plan puts 60 GiB of volumes in storage class lvm on cluster west, which reports 70 GiB free (20 GiB of it promised to other plans' migrations); volumes that do not fit stay Pending and their migrations stall");

    // Inside one cluster only the volumes the map moves count (storage live migration).
    const local = expand(plan({ target: { cluster: "east" }, storageMap: [{ source: "ceph-rbd", target: "lvm" }] }), { east: east([vm("db", "pg-0")], { storageClasses: withCapacity({ lvm: 10 }) }) });
    expect(codes(local.findings)).toEqual(["warning:TargetStorageCapacity"]);
    expect(codes(expand(plan({ target: { cluster: "east" } }), { east: east([vm("db", "pg-0")], { storageClasses: withCapacity({ "ceph-rbd": 10 }) }) }).findings)).toEqual(["warning:NoStorageChange"]);
  });

  it("promises another plan's disks to its target class only until it creates its volumes there", () => {
    const invs = { east: east([vm("db", "pg-0")]), west: west() };
    const spec = { storageMap: [{ source: "ceph-rbd", target: "lvm" }] };
    for (const state of ["Pending", "Queued", "Validating", "Trusting"] as const) expect(promisedStorage(migration({ state }), spec, invs)).toEqual({ lvm: 20 * GiB });
    for (const state of ["PreparingTarget", "Migrating", "Finalizing", "RollingBack"] as const) expect(promisedStorage(migration({ state }), spec, invs)).toEqual({});
    expect(promisedStorage(migration({ state: "Queued" }), spec, { west: west() })).toEqual({});
  });

  it("promises another plan's memory to its target only until the target VM has a live VMI there", () => {
    const m = migration(); // east vms/pg-0 → west, 4 GiB
    const target = (over: Parameters<typeof vm>[2]) => ({ west: west({ vms: [vm(m.target.namespace, m.target.name, over)] }) });
    expect(promisedMemory(m, { west: west() })).toBe(4 * GiB);
    expect(promisedMemory(m, target({ vmiPhase: undefined }))).toBe(4 * GiB); // receiver VM, no VMI yet
    expect(promisedMemory(m, target({ vmiPhase: "WaitingForSync" }))).toBe(0); // its node counts the receiver
    expect(promisedMemory(m, target({ vmiPhase: "Failed" }))).toBe(4 * GiB);
    // A storage move's VM already runs where it stays.
    const move = migration({ kind: "storage-live" });
    expect(promisedMemory(move, { east: east([vm(move.source.namespace, move.source.name)]) })).toBe(0);
  });

  it("warns about decentralized migration inside one cluster (kubevirt#18259)", () => {
    const r = expand(plan({ target: { cluster: "east", namespace: "db2" } }), { east: east([vm("db", "pg-0")], { namespaces: ["db", "db2"] }) });
    expect(r.migrations[0]?.kind).toBe("decentralized-live");
    expect(codes(r.findings)).toEqual(["warning:SameClusterDecentralized"]);
  });
});

describe("evacuation", () => {
  it("places every VM and records why; unknown candidates are errors", () => {
    const src = east([vm("db", "a", { memoryBytes: 16 * GiB }), vm("db", "b", { memoryBytes: 8 * GiB })]);
    const r = expand(plan({ vms: undefined, selector: { allVMs: true }, target: { evacuate: true } }), { east: src, west: west(), north: inventory("north") });
    expect(r.findings).toEqual([]);
    expect(r.migrations.map((m) => [m.source.name, m.target.cluster])).toEqual([
      ["a", "north"],
      ["b", "west"],
    ]);
    expect(r.migrations[0]?.placement).toMatch(/^placed on north: 88% of its memory free afterwards/);

    // Cordon, then evacuate: the drained source raises no cordon warning; a cordoned candidate is passed over.
    const drained = expand(plan({ vms: undefined, selector: { allVMs: true }, target: { evacuate: true } }), { east: src, west: west(), north: inventory("north") }, clusters({ east: { cordon: { reason: "decommission" } }, north: { cordon: { reason: "full" } } }));
    expect(drained.findings).toEqual([]);
    expect(drained.migrations.map((m) => m.target.cluster)).toEqual(["west", "west"]);
    const moved = expand(plan(), { east: src, west: west() }, clusters({ east: { cordon: { reason: "decommission" } } }));
    expect(codes(moved.findings)).toContain("warning:ClusterCordoned");

    const bad = expand(plan({ vms: undefined, selector: { allVMs: true }, target: { evacuate: true, candidates: ["west", "ghost"] } }), { east: src, west: west() });
    expect(bad.findings).toEqual([expect.objectContaining({ code: "ClusterUnknown", field: "spec.target.candidates[1]" })]);
  });

  it("counts other plans' promised disk bytes against a candidate's class capacity", () => {
    const roomy = (gib: number) => inventory("north", { storageClasses: inventory("north").storageClasses.map((c) => (c.name === "ceph-rbd" ? { ...c, capacityBytes: gib * GiB } : c)) });
    const evac = plan({ vms: undefined, selector: { allVMs: true }, target: { evacuate: true, candidates: ["north"] } });
    expect(expand(evac, { east: east(), north: roomy(30) }).migrations.map((m) => m.target.cluster)).toEqual(["north"]);
    const busy = [{ plan: "earlier", source: { cluster: "east", namespace: "web", name: "x" }, target: { cluster: "north", namespace: "web", name: "x" }, memoryBytes: GiB, storageBytes: { "ceph-rbd": 15 * GiB } }];
    const r = expand(evac, { east: east(), north: roomy(30) }, clusters(), busy);
    expect(r.migrations).toEqual([]);
    expect(r.findings).toEqual([expect.objectContaining({ code: "NoPlacement", message: "no candidate cluster can take VM db/pg-0 (4 GiB): north: class ceph-rbd has 15 GiB free, VM needs 20 GiB" })]);
  });

  it("a VM no candidate can take is an error with every candidate's reason", () => {
    const src = east([vm("db", "huge", { memoryBytes: 512 * GiB })]);
    const r = expand(plan({ vms: undefined, selector: { allVMs: true }, target: { evacuate: true } }), { east: src, west: west(), north: inventory("north") }, clusters({ north: { cordon: { reason: "maintenance" } } }));
    expect(r.migrations).toEqual([]);
    expect(r.findings).toEqual([
      expect.objectContaining({
        code: "NoPlacement",
        message: "no candidate cluster can take VM db/huge (512 GiB): north: cordoned (maintenance); west: needs 512 GiB of memory, the most free on one amd64 node is 64 GiB",
      }),
    ]);
  });
});

describe("agent checks and the report", () => {
  const exp = () => expand(plan({ vms: [{ namespace: "db", name: "pg-0" }, { namespace: "db", name: "pg-1" }] }), { east: east([vm("db", "pg-0"), vm("db", "pg-1")]), west: west() });

  it("describes, then preflights both sides, then reports with the agents' findings per VM", () => {
    const e = exp();
    const first = checkPlan(e, [], clusters());
    expect(first.report).toBeUndefined();
    expect(first.commands.map((c) => `${c.type}@${c.cluster}:${c.id}`)).toEqual(["describe-vm@east:plan/db/pg-0/describe-vm", "describe-vm@east:plan/db/pg-1/describe-vm"]);

    const described: CommandResult[] = e.migrations.map((m) => ({ id: `plan/db/${m.source.name}/describe-vm`, type: "describe-vm", reply: describeReply(m) }));
    const second = checkPlan(e, described, clusters());
    expect(second.commands.map((c) => c.id)).toEqual(["plan/db/pg-0/preflight-source", "plan/db/pg-0/preflight-target", "plan/db/pg-1/preflight-source", "plan/db/pg-1/preflight-target"]);
    const target = second.commands[1];
    expect(target?.type === "preflight" && target.request).toMatchObject({ side: "target", migrationKind: "decentralized-live", sourceFacts: { memoryBytes: 4 * GiB } });

    const answers: CommandResult[] = [
      ...described,
      ...second.commands.map((c): CommandResult => ({ id: c.id, type: "preflight", reply: c.id === "plan/db/pg-1/preflight-target" ? preflightOk([{ code: "DataVolumeNameTaken", severity: "error", field: "spec.dataVolumeTemplates[0]", message: "DataVolume pg-1-root exists on west", fix: "delete it" }]) : preflightOk() })),
    ];
    const done = checkPlan(e, answers, clusters());
    expect(done.commands).toEqual([]);
    expect(done.report).toMatchObject({ ok: false, findings: [expect.objectContaining({ code: "DataVolumeNameTaken", vm: { cluster: "east", namespace: "db", name: "pg-1" } })] });
    expect(done.report?.migrations).toHaveLength(2);
  });

  it("a VM gone at describe time is an error; an agent that cannot answer is a warning", () => {
    const e = exp();
    const results: CommandResult[] = [
      { id: "plan/db/pg-0/describe-vm", type: "describe-vm", reply: rpcError("NotFound", "gone") },
      transportFailure({ id: "plan/db/pg-1/describe-vm", type: "describe-vm" }, "DeadlineExceeded", "agent east did not answer within 10 s"),
    ];
    const r = checkPlan(e, results, clusters());
    expect(codes(r.report!.findings)).toEqual(["error:VmNotFound", "warning:PreflightUnavailable"]);
    expect(r.report!.findings[1]?.message).toBe("could not describe VM db/pg-1 on east: DeadlineExceeded: agent east did not answer within 10 s");
  });

  it("skips agent checks for clusters that are not available", () => {
    const r = checkPlan(exp(), [], clusters({ west: { availability: "unreachable" } }));
    expect(r.commands).toEqual([]);
    expect(r.report?.ok).toBe(true);
  });

  it("creates the records of a clean report, with derived uids", () => {
    const e = exp();
    const report = { ok: true, findings: [], migrations: e.migrations };
    const { plan: p, migrations } = createPlanRecords(e.plan, report, "f3c1", T0);
    expect(PlanRecord.safeParse(p).success).toBe(true);
    expect(p).toMatchObject({ name: "move-db", uid: "f3c1", phase: "Pending", counters: { total: 2, queued: 2 } });
    expect(migrations.map((m) => [m.uid, m.state, m.source.name])).toEqual([
      ["f3c1-1", "Pending", "pg-0"],
      ["f3c1-2", "Pending", "pg-1"],
    ]);
    for (const m of migrations) expect(MigrationRecord.safeParse(m).success).toBe(true);
    expect(() => createPlanRecords(e.plan, { ...report, ok: false }, "f3c1", T0)).toThrow(/validation errors/);
  });

  it("caps stored findings, errors first, and says how many were left out", () => {
    const many: Finding[] = Array.from({ length: 1500 }, (_, i) => ({ code: "X", severity: i === 1499 ? "error" : "warning", field: "", message: `${i}`, fix: "" }));
    const b = boundFindings(many);
    expect(b).toHaveLength(1000);
    expect(b[0]?.severity).toBe("error");
    expect(b.at(-1)).toMatchObject({ code: "FindingsTruncated", message: "501 more findings are not shown" });
  });
});
