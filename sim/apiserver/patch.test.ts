import { describe, expect, it } from "vitest";
import { ApiError } from "./errors.js";
import { jsonPath } from "./jsonpath.js";
import { cellOf, humanDuration, kindInfo } from "./kinds.js";
import { fromFieldsV1, jsonPatch, mergePatch, serverSideApply, strategicMergePatch, toFieldsV1, appliedPaths } from "./patch.js";
import { R } from "./resources.js";
import type { KObject } from "./store.js";

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

describe("patches", () => {
  it("merge patch follows RFC 7386 (null deletes, lists replace)", () => {
    const doc = { a: 1, b: { c: 2, d: 3 }, l: [1, 2] };
    expect(mergePatch(doc, { b: { c: null, e: 4 }, l: [3], z: "x" })).toEqual({ a: 1, b: { d: 3, e: 4 }, l: [3], z: "x" });
    expect(doc).toEqual({ a: 1, b: { c: 2, d: 3 }, l: [1, 2] });
  });

  it("json patch: malformed is 400, a failed test is 422", () => {
    expect(jsonPatch({ a: 1 }, [{ op: "replace", path: "/a", value: 2 }])).toEqual({ a: 2 });
    expect(apiError(() => jsonPatch({ a: 1 }, { op: "add" })).code).toBe(400);
    expect(apiError(() => jsonPatch({ a: 1 }, [{ op: "frobnicate", path: "/a" }])).code).toBe(400);
    expect(apiError(() => jsonPatch({ a: 1 }, [{ op: "test", path: "/a", value: 5 }])).code).toBe(422);
    expect(apiError(() => jsonPatch({ a: 1 }, [{ op: "remove", path: "/nope/x" }])).code).toBe(422);
  });

  it("strategic merge patch merges keyed and primitive lists and honours directives", () => {
    const keys = kindInfo(R.Node).mergeKeys;
    const node = {
      metadata: { finalizers: ["a"], labels: { x: "1", y: "2" } },
      status: { conditions: [{ type: "Ready", status: "True" }, { type: "DiskPressure", status: "False" }] },
      spec: { taints: [{ key: "k", effect: "NoSchedule" }] },
    };
    const out = strategicMergePatch(
      node,
      {
        metadata: { finalizers: ["b"], labels: { y: null, z: "3" } },
        status: { conditions: [{ type: "Ready", status: "False" }, { type: "DiskPressure", $patch: "delete" }], "$setElementOrder/conditions": [{ type: "Ready" }] },
        spec: { taints: [{ key: "other", effect: "NoExecute" }] },
      },
      keys,
    );
    expect(out).toEqual({
      metadata: { finalizers: ["a", "b"], labels: { x: "1", z: "3" } },
      status: { conditions: [{ type: "Ready", status: "False" }] },
      spec: { taints: [{ key: "other", effect: "NoExecute" }] },
    });
    expect(strategicMergePatch(node, { metadata: { "$deleteFromPrimitiveList/finalizers": ["a"] } }, keys)).toMatchObject({ metadata: { finalizers: [] } });
    expect(strategicMergePatch({ spec: { a: 1, b: 2 } }, { spec: { $patch: "replace", c: 3 } }, keys)).toEqual({ spec: { c: 3 } });
  });

  it("server-side apply removes fields its manager stopped applying, keeps others' fields", () => {
    const t = "2026-01-01T00:00:00Z";
    const v1 = serverSideApply(undefined, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c", labels: { a: "1" } }, data: { x: "1", y: "2" } }, "mgr", undefined, t);
    expect(v1).toMatchObject({ data: { x: "1", y: "2" }, metadata: { labels: { a: "1" } } });
    const withOther = { ...v1, data: { ...(v1.data as object), z: "other" } };
    const v2 = serverSideApply(withOther, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "c" }, data: { x: "9" } }, "mgr", undefined, t);
    expect(v2.data).toEqual({ x: "9", z: "other" });
    expect((v2.metadata as { labels?: unknown }).labels).toBeUndefined();
    const mf = (v2.metadata as { managedFields: { manager: string; fieldsV1: unknown }[] }).managedFields;
    expect(mf).toHaveLength(1);
    expect([...fromFieldsV1(mf[0]!.fieldsV1)]).toEqual([JSON.stringify(["data", "x"])]);
  });

  it("fieldsV1 round-trips paths with dots and slashes", () => {
    const paths = appliedPaths({ metadata: { name: "n", labels: { "app.kubernetes.io/name": "x" } }, spec: { l: [1] } });
    expect([...fromFieldsV1(toFieldsV1(paths))].sort()).toEqual([...paths].sort());
  });
});

describe("tables", () => {
  it("evaluates the JSONPath of KubeVirt printer columns", () => {
    const vmi = { status: { conditions: [{ type: "LiveMigratable", status: "False" }, { type: "Ready", status: "True" }], interfaces: [{ ipAddress: "10.0.0.5" }] } };
    expect(jsonPath(vmi, ".status.conditions[?(@.type=='Ready')].status")).toEqual(["True"]);
    expect(jsonPath(vmi, ".status.interfaces[0].ipAddress")).toEqual(["10.0.0.5"]);
    expect(jsonPath(vmi, ".status.nodeName")).toEqual([]);
    expect(jsonPath({ a: [{ b: 1 }, { b: 2 }] }, "{.a[*].b}")).toEqual([1, 2]);
  });

  it("formats ages as kubectl does and leaves missing cells null", () => {
    expect(["0s", "59s", "2m", "9m5s", "45m", "5h3m", "30h", "3d4h", "40d"]).toEqual(
      [0, 59, 120, 545, 2700, 5 * 3600 + 180, 30 * 3600, 76 * 3600, 40 * 86400].map((s) => humanDuration(s * 1000)),
    );
    const vm = { metadata: { name: "v", creationTimestamp: new Date(Date.now() - 90_000).toISOString() }, status: { printableStatus: "Running" } } as unknown as KObject;
    const cols = kindInfo(R.VirtualMachine).columns;
    expect(cols.map((c) => c.name)).toEqual(["Age", "Status", "Ready"]);
    expect(cols.map((c) => cellOf(c, vm, Date.now()))).toEqual(["90s", "Running", null]);
  });
});
