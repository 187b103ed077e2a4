import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { formatPath } from "./issues.js";
import { MigrationPlan, parsePlan, parsePlanObject, TimeZone, windowContains } from "./plan.js";
import { arbitraryFor, badValuesFor, DELETE, mutate, pathCovers, RenameKey, sitesOf } from "./testing/zod-arbitrary.js";

// Random strings are almost never time zone names; pick real ones.
const plans = arbitraryFor(MigrationPlan, {
  overrides: new Map([[TimeZone, fc.constantFrom("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata")]]),
});

const minimal = `
apiVersion: ferry.dev/v1alpha1
kind: MigrationPlan
metadata:
  name: move-db
spec:
  source: {cluster: east}
  vms:
    - {namespace: db, name: pg-0}
  target: {cluster: west}
`;

describe("parsePlan", () => {
  it("fills in the documented defaults", () => {
    const result = parsePlan(minimal);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.value.spec).toEqual({
      source: { cluster: "east" },
      vms: [{ namespace: "db", name: "pg-0" }],
      target: { cluster: "west" },
      storageMap: [],
      networkMap: [],
      sourcePolicy: "halt",
      limits: { maxInFlight: 5 },
      retry: { maxAttempts: 3, backoff: { initialSeconds: 30, maxSeconds: 600, factor: 2 } },
      stallTimeoutSeconds: 600,
    });
  });

  it("round-trips every valid plan through YAML and JSON", () => {
    fc.assert(
      fc.property(plans, (plan) => {
        expect(parsePlan(stringify(plan))).toEqual({ ok: true, value: plan });
        expect(parsePlan(JSON.stringify(plan))).toEqual({ ok: true, value: plan });
      }),
      { numRuns: 150 },
    );
  });

  it("rejects a wrong type, bad name or oversize value and names the field", () => {
    const mutated = plans.chain((plan) => {
      const sites = sitesOf(MigrationPlan, plan).flatMap((site) => badValuesFor(site).map((bad) => ({ site, bad })));
      return fc.constantFrom(...sites).map(({ site, bad }) => ({ plan, site, bad }));
    });
    fc.assert(
      fc.property(mutated, ({ plan, site, bad }) => {
        const path = formatPath(site.path);
        const result = parsePlanObject(mutate(plan, site.path, bad));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.issues.some((i) => pathCovers(path, i.path)), `${result.error} should name ${path}`).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it("rejects a list one past its maximum or a bad matchLabels key, and names the field", () => {
    const countAndKey = (plan: unknown) =>
      sitesOf(MigrationPlan, plan).flatMap((site) =>
        badValuesFor(site)
          .filter((bad) => bad instanceof RenameKey || (Array.isArray(bad) && bad.length > 0))
          .map((bad) => ({ site, bad })),
      );
    const mutated = plans.filter((plan) => countAndKey(plan).length > 0).chain((plan) => fc.constantFrom(...countAndKey(plan)).map((m) => ({ plan, ...m })));
    const seen = { key: 0, list: 0 };
    fc.assert(
      fc.property(mutated, ({ plan, site, bad }) => {
        const path = formatPath(site.path);
        const result = parsePlanObject(mutate(plan, site.path, bad));
        expect(result.ok).toBe(false);
        if (result.ok) return;
        if (bad instanceof RenameKey) {
          seen.key++;
          expect(result.issues).toContainEqual({ path: formatPath([...site.path, bad.to]), message: expect.stringMatching(/^label key .* must be \[prefix\/\]name/) });
        } else {
          seen.list++;
          expect(result.issues).toContainEqual({ path, message: `Too big: expected array to have <=${(bad as unknown[]).length - 1} items` });
        }
      }),
      { numRuns: 150 },
    );
    expect(seen.key).toBeGreaterThan(0);
    expect(seen.list).toBeGreaterThan(0);
  });

  it("rejects a missing required field and names it", () => {
    const mutated = plans.chain((plan) =>
      fc.constantFrom(...sitesOf(MigrationPlan, plan).filter((s) => s.required)).map((site) => ({ plan, site })),
    );
    fc.assert(
      fc.property(mutated, ({ plan, site }) => {
        const result = parsePlanObject(mutate(plan, site.path, DELETE));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.issues.map((i) => i.path)).toContain(formatPath(site.path));
      }),
    );
  });

  it("rejects unknown fields anywhere, like kubectl --validate=strict", () => {
    const mutated = plans.chain((plan) => {
      const objects = [[], ...sitesOf(MigrationPlan, plan).map((s) => s.path)].filter((path) => {
        const v = path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], plan);
        return v !== null && typeof v === "object" && !Array.isArray(v) && !isLabelMap(path);
      });
      return fc.constantFrom(...objects).map((path) => ({ plan, path }));
    });
    fc.assert(
      fc.property(mutated, ({ plan, path }) => {
        const result = parsePlanObject(mutate(plan, [...path, "bogusField"], 1));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.issues).toContainEqual({ path: formatPath([...path, "bogusField"]), message: expect.stringMatching(/^unknown field "bogusField"; allowed fields: /) });
      }),
    );
  });

  it("suggests the field a typo meant and gives its line", () => {
    const result = parsePlan(minimal.replace("target: {cluster: west}", "target: {cluster: west}\n  storagemap: []"));
    expect(result).toMatchObject({ ok: false, issues: [{ path: "spec.storagemap", message: 'unknown field "storagemap"; did you mean "storageMap"?', line: 11 }] });
  });

  it("reports every problem in one pass, each with path, fix and line", () => {
    const text = `
apiVersion: ferry.dev/v1alpha1
kind: MigrationPlan
metadata: {name: Move_DB}
spec:
  source: {cluster: east}
  vms: [{namespace: db, name: pg-0}, {namespace: db, name: pg-0}]
  selector: {allVMs: true}
  target: {evacuate: true, candidates: [east]}
  storageMap: [{source: ceph, target: 5}]
`;
    const result = parsePlan(text);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.issues).toEqual([
      { path: "metadata.name", line: 4, message: expect.stringContaining('plan name "Move_DB" must be a DNS-1123 label') },
      { path: "spec.storageMap[0].target", line: 10, message: expect.stringContaining("expected string") },
      { path: "spec.selector", line: 8, message: "set either vms or selector, not both" },
      { path: "spec.vms[1]", line: 7, message: 'duplicate VM "db/pg-0" (first at spec.vms[0]); list each once' },
      { path: "spec.target.candidates", line: 9, message: 'the source cluster "east" cannot be an evacuation candidate' },
    ]);
  });

  it.each([
    ["target: {cluster: west}", "target: {}", "spec.target", "set target.cluster, or target.evacuate: true"],
    ["target: {cluster: west}", "target: {cluster: west, evacuate: true}", "spec.target.evacuate", "choose one"],
    ["target: {cluster: west}", "target: {cluster: west, candidates: [x]}", "spec.target.candidates", "only apply with evacuate"],
    ["    - {namespace: db, name: pg-0}", "    - {namespace: db}", "spec.vms[0].name", "required field is missing"],
    ["  vms:\n    - {namespace: db, name: pg-0}", "  selector: {}", "spec.selector", "selects nothing"],
    ["  vms:\n    - {namespace: db, name: pg-0}", "  selector: {namespaces: [db], allVMs: true}", "spec.selector.allVMs", "remove it"],
    ["  vms:\n    - {namespace: db, name: pg-0}", "  selector:\n    labelSelector:\n      matchExpressions: [{key: tier, operator: In}]", "spec.selector.labelSelector.matchExpressions[0].values", "needs a non-empty values list"],
    ["kind: MigrationPlan", "kind: Plan", "kind", 'kind must be "MigrationPlan"'],
    ["target: {cluster: west}", 'target: {cluster: west}\n  window: {start: "22:00", end: "22:00"}', "spec.window.end", "end must differ from start"],
    ["target: {cluster: west}", "target: {cluster: west}\n  window: {start: 22:00, end: 6am}", "spec.window.end", 'time "6am" must be HH:MM'],
    ["target: {cluster: west}", "target: {cluster: west}\n  retry: {maxAttempts: 0}", "spec.retry.maxAttempts", "expected number to be >=1"],
  ])("rejects %j → %j at %s", (from, to, path, message) => {
    const result = parsePlan(minimal.replace(from, to));
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.issues).toContainEqual(expect.objectContaining({ path, message: expect.stringContaining(message) }));
  });

  it("reports YAML syntax errors with their line", () => {
    expect(parsePlan("spec:\n  vms: [\n")).toMatchObject({ ok: false, issues: [{ path: "(document)", line: 3 }] });
    expect(parsePlan("a: 1\na: 2")).toMatchObject({ ok: false, issues: [{ message: "not valid YAML or JSON: Map keys must be unique", line: 2 }] });
    expect(parsePlan("")).toMatchObject({ ok: false, issues: [{ path: "(document)", message: expect.stringContaining("empty document") }] });
    expect(parsePlan("x".repeat(1024 * 1024 + 1))).toMatchObject({ ok: false, issues: [{ path: "(document)" }] });
  });

  it("never throws on arbitrary text", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: "binary" }), fc.jsonValue().map((v) => stringify(v))), (text) => {
        expect(typeof parsePlan(text).ok).toBe("boolean");
      }),
    );
  });
});

describe("windowContains", () => {
  const at = (iso: string) => new Date(iso);
  it("is always open without a window", () => {
    expect(windowContains(undefined, at("2026-01-01T12:00:00Z"))).toBe(true);
  });
  it("handles windows within a day", () => {
    const w = { start: "09:00", end: "17:00", timeZone: "UTC" };
    expect(windowContains(w, at("2026-01-01T08:59:00Z"))).toBe(false);
    expect(windowContains(w, at("2026-01-01T09:00:00Z"))).toBe(true);
    expect(windowContains(w, at("2026-01-01T17:00:00Z"))).toBe(false);
  });
  it("handles windows across midnight in the plan's time zone", () => {
    const w = { start: "22:00", end: "06:00", timeZone: "Europe/Berlin" };
    expect(windowContains(w, at("2026-01-01T21:30:00Z"))).toBe(true); // 22:30 CET
    expect(windowContains(w, at("2026-01-01T04:59:00Z"))).toBe(true); // 05:59 CET
    expect(windowContains(w, at("2026-01-01T05:00:00Z"))).toBe(false); // 06:00 CET
    expect(windowContains(w, at("2026-07-01T20:30:00Z"))).toBe(true); // 22:30 CEST
    expect(windowContains(w, at("2026-07-01T12:00:00Z"))).toBe(false);
  });
});

function isLabelMap(path: (string | number)[]): boolean {
  return path[path.length - 1] === "labels" || path[path.length - 1] === "matchLabels";
}
