import { describe, expect, it } from "vitest";
import { forgetSwap, revertVolumes, swapVolumes, volumeMoves } from "./build.js";
import { vmFixture } from "./fixtures.js";
import { applyMergePatch, mergePatchOf, objectPatch } from "./patch.js";

describe("merge patches", () => {
  it("sets changed fields, nulls removed ones, replaces arrays whole, and is empty for equal objects", () => {
    expect(mergePatchOf({ a: 1, b: { c: 2, d: 3 }, e: [1, 2] }, { a: 1, b: { c: 5 }, e: [1], f: "x" })).toEqual({ b: { c: 5, d: null }, e: [1], f: "x" });
    expect(mergePatchOf({ a: { b: [1] } }, { a: { b: [1] } })).toBeUndefined();
  });
  it("the swap, the revert and the forget of a VM each round-trip through their patch", () => {
    const vm = vmFixture();
    const moves = volumeMoves({ migrationUid: "s1", storageMap: [{ source: "standard", target: "fast" }], sourceVolumes: [{ name: "rootdisk", claimName: "db-1-rootdisk", sizeBytes: 1, storageClass: "standard" }] });
    const steps = [vm];
    steps.push(swapVolumes(vm, moves, "s1", true));
    steps.push(revertVolumes(steps[1]!));
    steps.push(forgetSwap(steps[2]!));
    for (let i = 1; i < steps.length; i++) {
      const patch = objectPatch(steps[i - 1]!, steps[i]!);
      expect(patch?.metadata).toMatchObject({ name: "db-1", namespace: "vms", resourceVersion: "42" });
      const applied = applyMergePatch(steps[i - 1], patch) as typeof vm;
      expect({ ...applied, metadata: { ...applied.metadata, resourceVersion: "42" } }).toEqual(steps[i]);
    }
    expect(objectPatch(vm, structuredClone(vm))).toBeUndefined();
  });
});
