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
