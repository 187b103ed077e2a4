import { describe, expect, it } from "vitest";
import { inventory, vm } from "../../broker/core/test-fixtures.js";
import { Inventory } from "../../proto/bus/index.js";
import { classCapacities, fitInventory, type InventoryBody, type Obj } from "./build.js";

const body = (over: Partial<InventoryBody> = {}): InventoryBody => {
  const { apiVersion: _a, kind: _k, cluster: _c, epoch: _e, seq: _s, ...rest } = inventory("east");
  return { ...rest, ...over };
};
const asMessage = (b: InventoryBody) => ({ ...inventory("east"), ...b });

describe("fitInventory", () => {
  it("keeps a valid inventory as it is", () => {
    const b = body({ vms: [vm("db", "pg-0"), vm("db", "pg-1")] });
    expect(fitInventory(b, 8 * 2 ** 20)).toEqual(b);
  });

  it("leaves out (and names) what the bus schema refuses, so the rest of the cluster stays visible", () => {
    const labels = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`l${i}`, "x"]));
    const b = body({ vms: [vm("db", "pg-0"), vm("db", "pg-1", { labels }), vm("db", "pg-2")], nodes: [...body().nodes, { name: "UPPER", architecture: "amd64", schedulable: true, allocatableMemoryBytes: 1 }] });
    const fitted = fitInventory(b, 8 * 2 ** 20);
    expect(fitted.vms.map((v) => v.name)).toEqual(["pg-0", "pg-2"]);
    expect(fitted.nodes.map((n) => n.name)).not.toContain("UPPER");
    expect(fitted.omitted?.total).toBe(2);
    expect(fitted.omitted?.items).toEqual([
      { kind: "Node", name: "UPPER", reason: expect.stringMatching(/^ferry cannot carry it: name: /) as string },
      { kind: "VirtualMachine", name: "db/pg-1", reason: expect.stringMatching(/^ferry cannot carry it: labels/) as string },
    ]);
    expect(Inventory.safeParse(asMessage(fitted)).success).toBe(true);
  });

  it("reports the VMs that fit the bus limit and names the others", () => {
    const vms = Array.from({ length: 400 }, (_, i) => vm("db", `pg-${String(i).padStart(3, "0")}`));
    const limit = 128 * 1024;
    const fitted = fitInventory(body({ vms }), limit);
    expect(fitted.vms.length).toBeGreaterThan(0);
    expect(fitted.vms.length).toBeLessThan(400);
    expect(fitted.vms).toEqual(vms.slice(0, fitted.vms.length));
    expect(fitted.omitted?.total).toBe(400 - fitted.vms.length);
    expect(fitted.omitted?.items[0]).toEqual({ kind: "VirtualMachine", name: `db/${vms[fitted.vms.length]!.name}`, reason: expect.stringContaining("exceed the bus limit") as string });
    expect(fitted.omitted?.items.length).toBeLessThanOrEqual(100);
    expect(Buffer.byteLength(JSON.stringify(asMessage(fitted)))).toBeLessThanOrEqual(limit);
  });
});

describe("classCapacities", () => {
  const csc = (cls: string, capacity: unknown, nodeTopology: unknown = {}): Obj => ({ metadata: { name: `csisc-${cls}` }, storageClassName: cls, capacity, nodeTopology });

  it("sums a class's CSIStorageCapacity objects (one per topology segment); unknown classes have no entry", () => {
    const segments = [
      csc("local", "100Gi", { matchLabels: { "kubernetes.io/hostname": "n1" } }),
      csc("local", "50Gi", { matchLabels: { "kubernetes.io/hostname": "n2" } }),
      csc("fast", "1Ti"),
      csc("fast", 0, { matchLabels: { "topology.kubernetes.io/zone": "b" } }),
    ];
    expect(Object.fromEntries(classCapacities(segments))).toEqual({ local: 150 * 2 ** 30, fast: 2 ** 40 });
  });

  it("counts neither an object without capacity (no figure yet) nor one without nodeTopology (serves no node)", () => {
    const m = classCapacities([csc("a", undefined), csc("b", "10Gi", null), { ...csc("c", "10Gi"), nodeTopology: undefined }, csc("d", "10Gi")]);
    expect(Object.fromEntries(m)).toEqual({ d: 10 * 2 ** 30 });
  });

  it("clamps an absurd figure to what the bus carries instead of losing the class", () => {
    const huge = classCapacities([csc("big", "8Ei"), csc("big", "8Ei")]).get("big")!;
    expect(huge).toBe(Number.MAX_SAFE_INTEGER);
    const b = body({ storageClasses: [{ name: "big", provisioner: "x", volumeBindingMode: "Immediate", isDefault: false, capacityBytes: huge }] });
    expect(fitInventory(b, 8 * 2 ** 20).storageClasses.map((c) => c.name)).toEqual(["big"]);
  });
});
