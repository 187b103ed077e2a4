import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { Inventory, InventoryVm, VmRef } from "../../proto/bus/index.js";
import { place, type PlacementCandidate, type PlacementInput } from "./placement.js";
import { GiB, inventory, T0, view, vm } from "./test-fixtures.js";

const node = (name: string, gib: number, architecture = "amd64", schedulable = true) => ({ name, architecture, schedulable, allocatableMemoryBytes: gib * GiB });

function candidate(name: string, over: Partial<Inventory> = {}, v: Parameters<typeof view>[1] = {}): PlacementCandidate {
  return { view: view(name, v), inventory: inventory(name, over) };
}

function input(vms: InventoryVm[], candidates: PlacementCandidate[], over: Partial<PlacementInput> = {}): PlacementInput {
  return {
    vms: vms.map((v) => ({ ref: { cluster: "east", namespace: v.namespace, name: v.name }, vm: v })),
    sourceInventory: inventory("east", { vms }),
    candidates,
    spec: { storageMap: [], networkMap: [] },
    now: T0,
    ...over,
  };
}

/** The fixture's classes (ceph-rbd default, lvm) with free capacities in GiB; a class not named reports none. */
const classes = (gib: Record<string, number>): Inventory["storageClasses"] =>
  inventory("x").storageClasses.map((c) => ({ ...c, ...(gib[c.name] !== undefined ? { capacityBytes: gib[c.name]! * GiB } : {}) }));
const disk = (name: string, gib: number, storageClass: string | undefined = "ceph-rbd"): InventoryVm["volumes"][number] => ({
  name,
  kind: "dataVolume",
  claimName: name,
  sizeBytes: gib * GiB,
  ...(storageClass ? { storageClass } : {}),
});

const targets = (ds: ReturnType<typeof place>) => Object.fromEntries(ds.map((d) => [d.source.name, d.target?.cluster ?? "-"]));

describe("evacuation placement", () => {
  it("spreads VMs over the candidates, largest first, onto the one left with the most free memory", () => {
    const vms = [vm("db", "a", { memoryBytes: 24 * GiB }), vm("db", "b", { memoryBytes: 16 * GiB }), vm("db", "c", { memoryBytes: 8 * GiB }), vm("db", "d", { memoryBytes: 8 * GiB })];
    const ds = place(input(vms, [candidate("west"), candidate("north")]));
    expect(targets(ds)).toEqual({ a: "north", b: "west", c: "west", d: "north" });
    expect(ds[0]?.reason).toBe("placed on north: 81% of its memory free afterwards (104 GiB of 128 GiB); also fit: west 81%");
  });

  it("compares free share, not absolute memory, and counts the VMs already running there", () => {
    const busy = candidate("west", { nodes: [node("w1", 256)], vms: [vm("x", "big", { node: "w1", memoryBytes: 200 * GiB })] });
    const small = candidate("north", { nodes: [node("n1", 64)] });
    expect(targets(place(input([vm("db", "a", { memoryBytes: 8 * GiB })], [busy, small])))).toEqual({ a: "north" });
  });

  it("fits each VM on one node of its architecture, not just in the cluster's total", () => {
    const fragmented = candidate("west", { nodes: [node("w1", 16), node("w2", 16), node("w3", 16)] });
    const arm = candidate("north", { nodes: [node("a1", 256, "arm64")] });
    const ds = place(input([vm("db", "a", { memoryBytes: 24 * GiB })], [fragmented, arm]));
    expect(ds[0]?.target).toBeUndefined();
    expect(ds[0]?.reason).toBe("no candidate cluster can take VM db/a (24 GiB): north: VM db/a runs on amd64; cluster north has no schedulable amd64 node; west: needs 24 GiB of memory, the most free on one amd64 node is 16 GiB");
    expect(ds[0]?.findings).toEqual([expect.objectContaining({ code: "NoPlacement", severity: "error", field: "spec.target", vm: { cluster: "east", namespace: "db", name: "a" } })]);
  });

  it("skips clusters that are unavailable, cordoned, without the gate or a sync address, or without an inventory", () => {
    const cs = [
      candidate("a", {}, { availability: "unreachable" }),
      candidate("b", {}, { cordon: { reason: "kernel upgrade" } }),
      candidate("c", {}, { decentralizedLiveMigration: false }),
      candidate("d", {}, { synchronizationAddresses: [] }),
      { view: view("e") },
    ];
    const [d] = place(input([vm("db", "x")], cs));
    expect(d?.target).toBeUndefined();
    expect(d?.reason).toContain("a: unreachable; b: cordoned (kernel upgrade); c: KubeVirt's DecentralizedLiveMigration feature gate is off on target cluster c; d: KubeVirt on target cluster d reports no status.synchronizationAddresses");
    expect(d?.reason).toContain("e: no inventory reported yet");
  });

  it("skips clusters where the VM's storage or network cannot be mapped, and says so", () => {
    const noCeph = candidate("west", { storageClasses: [{ name: "lvm", provisioner: "x", volumeBindingMode: "Immediate", isDefault: true }] });
    const ok = candidate("north", { nodes: [node("n1", 8)] });
    const ds = place(input([vm("db", "a", { memoryBytes: 2 * GiB })], [noCeph, ok]));
    expect(targets(ds)).toEqual({ a: "north" });
    expect(ds[0]?.reason).toContain('refused: west: volume root of VM db/a uses storage class "ceph-rbd", which is not in spec.storageMap and does not exist on cluster west');
  });

  it("honours memory already promised to a cluster by other plans", () => {
    const ds = place(input([vm("db", "a", { memoryBytes: 8 * GiB })], [candidate("west"), candidate("north")], { reservedBytes: { north: 100 * GiB } }));
    expect(targets(ds)).toEqual({ a: "west" });
  });

  it("refuses a cluster whose target class reports less free space than the VM's disks there, and says so", () => {
    const ds = place(input([vm("db", "a", { volumes: [disk("root", 50)] })], [candidate("west", { storageClasses: classes({ "ceph-rbd": 40 }) }), candidate("north")]));
    expect(targets(ds)).toEqual({ a: "north" });
    expect(ds[0]?.reason).toBe("placed on north: 97% of its memory free afterwards (124 GiB of 128 GiB); refused: west: class ceph-rbd has 40 GiB free, VM needs 50 GiB");

    // Memory and storage both short: both are named.
    const none = place(input([vm("db", "b", { memoryBytes: 100 * GiB, volumes: [disk("root", 50), disk("data", 30, "lvm")] })], [candidate("west", { storageClasses: classes({ "ceph-rbd": 40, lvm: 100 }) })]));
    expect(none[0]?.target).toBeUndefined();
    expect(none[0]?.reason).toBe("no candidate cluster can take VM db/b (100 GiB): west: needs 100 GiB of memory, the most free on one amd64 node is 64 GiB and class ceph-rbd has 40 GiB free, VM needs 50 GiB");
  });

  it("maps the VM's classes (spec.storageMap) and puts unclassed volumes in the target's default class", () => {
    const vms = [vm("db", "a", { volumes: [disk("root", 50, "old-fast"), disk("scratch", 30, undefined)] })];
    const spec = { storageMap: [{ source: "old-fast", target: "lvm" }], networkMap: [] };
    const tight = { storageClasses: classes({ "ceph-rbd": 20, lvm: 100 }) };
    expect(place(input(vms, [candidate("west", tight)], { spec }))[0]?.reason).toContain("west: class ceph-rbd has 20 GiB free, VM needs 30 GiB");
    const roomy = place(input(vms, [candidate("west", { storageClasses: classes({ "ceph-rbd": 40, lvm: 100 }) })], { spec }));
    expect(roomy[0]?.reason).toBe("placed on west: 97% of its memory free afterwards (124 GiB of 128 GiB), class ceph-rbd 25% (10 GiB of the 40 GiB it reports free), class lvm 50% (50 GiB of the 100 GiB it reports free)");
  });

  it("counts space promised by earlier VMs of the same pass and by other plans' migrations", () => {
    const vms = Array.from({ length: 5 }, (_, i) => vm("db", `v${i}`, { volumes: [disk("root", 40)] }));
    const cs = [candidate("west", { storageClasses: classes({ "ceph-rbd": 100 }) }), candidate("north", { storageClasses: classes({ "ceph-rbd": 100 }) })];
    const ds = place(input(vms, cs));
    // Two per cluster fit (80 of 100 GiB); the fifth finds 20 GiB left on each.
    expect(ds.filter((d) => d.target?.cluster === "west")).toHaveLength(2);
    expect(ds.filter((d) => d.target?.cluster === "north")).toHaveLength(2);
    expect(ds[4]?.reason).toBe("no candidate cluster can take VM db/v4 (4 GiB): north: class ceph-rbd has 20 GiB free, VM needs 40 GiB; west: class ceph-rbd has 20 GiB free, VM needs 40 GiB");

    expect(targets(place(input([vms[0]!], cs)))).toEqual({ v0: "north" });
    expect(targets(place(input([vms[0]!], cs, { reservedStorage: { north: { "ceph-rbd": 70 * GiB } } })))).toEqual({ v0: "west" });
    const both = place(input([vms[0]!], cs, { reservedStorage: { north: { "ceph-rbd": 70 * GiB }, west: { "ceph-rbd": 61 * GiB } } }));
    expect(both[0]?.reason).toContain("north: class ceph-rbd has 30 GiB free, VM needs 40 GiB; west: class ceph-rbd has 39 GiB free, VM needs 40 GiB");
  });

  it("does not check a class whose capacity is unknown (no CSIStorageCapacity published)", () => {
    const ds = place(input([vm("db", "a", { volumes: [disk("root", 10 * 1024)] })], [candidate("west", { storageClasses: classes({ lvm: 1 }) })]));
    expect(ds[0]?.target?.cluster).toBe("west");
    expect(ds[0]?.reason).toBe("placed on west: 97% of its memory free afterwards (124 GiB of 128 GiB)");
  });

  it("prefers the cluster with more room in the VM's class when memory is alike (the tighter share decides)", () => {
    const ds = place(input([vm("db", "a", { volumes: [disk("root", 50)] })], [candidate("west", { storageClasses: classes({ "ceph-rbd": 1024 }) }), candidate("north", { storageClasses: classes({ "ceph-rbd": 100 }) })]));
    expect(ds[0]?.reason).toBe("placed on west: 97% of its memory free afterwards (124 GiB of 128 GiB), class ceph-rbd 95% (974 GiB of the 1 TiB it reports free); also fit: north 50%");
  });

  it("never places more disk in a class than it reports free", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 20 }),
        fc.array(fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }), { minLength: 1, maxLength: 4 }),
        (disks, capacities) => {
          const vms = disks.map((g, i) => vm("db", `vm-${i}`, { memoryBytes: GiB, volumes: [disk("root", g)] }));
          const cs = capacities.map((cap, c) => candidate(`c${c}`, { storageClasses: cap === undefined ? classes({}) : classes({ "ceph-rbd": cap }) }));
          const ds = place(input(vms, cs));
          const placed = new Map<string, number>();
          ds.forEach((d, i) => {
            if (d.target) placed.set(d.target.cluster, (placed.get(d.target.cluster) ?? 0) + (disks[i] ?? 0));
            // A cluster of unknown capacity takes every VM its memory allows.
            else expect(capacities.some((cap) => cap === undefined)).toBe(false);
          });
          capacities.forEach((cap, c) => {
            if (cap !== undefined) expect(placed.get(`c${c}`) ?? 0).toBeLessThanOrEqual(cap);
          });
        },
      ),
      { numRuns: 200 },
    );
  });

  it("never places more memory on a cluster than its nodes have, and is deterministic", () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 1, max: 48 }), { minLength: 1, maxLength: 30 }),
        fc.array(fc.array(fc.integer({ min: 8, max: 96 }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
        (sizes, clusterNodes) => {
          const vms = sizes.map((g, i) => vm("db", `vm-${i}`, { memoryBytes: g * GiB }));
          const cs = clusterNodes.map((nodes, c) => candidate(`c${c}`, { nodes: nodes.map((g, n) => node(`c${c}-n${n}`, g)) }));
          const ds = place(input(vms, cs));
          expect(place(input(vms, cs))).toEqual(ds);
          const placed = new Map<string, number>();
          ds.forEach((d, i) => {
            if (d.target) placed.set(d.target.cluster, (placed.get(d.target.cluster) ?? 0) + (sizes[i] ?? 0));
            else expect(d.findings[0]?.code).toBe("NoPlacement");
          });
          clusterNodes.forEach((nodes, c) => expect(placed.get(`c${c}`) ?? 0).toBeLessThanOrEqual(nodes.reduce((s, g) => s + g, 0)));
        },
      ),
      { numRuns: 200 },
    );
  });

  it("returns decisions in the input order", () => {
    const refs: VmRef[] = place(input([vm("db", "small", { memoryBytes: GiB }), vm("db", "big", { memoryBytes: 32 * GiB })], [candidate("west")])).map((d) => d.source);
    expect(refs.map((r) => r.name)).toEqual(["small", "big"]);
  });
});
