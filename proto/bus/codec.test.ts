import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { arbitraryFor, badValuesFor, DELETE, mutate, pathCovers, RenameKey, sitesOf, type ArbitraryOptions } from "../testing/zod-arbitrary.js";
import { decode, encode, MAX_MESSAGE_BYTES, MESSAGES, NATS_MAX_PAYLOAD, type Message, type MessageKind } from "./codec.js";
import { formatPath } from "../issues.js";
import { repairTaskSet } from "../testing/task-set.js";
import { TaskSet } from "./tasks.js";
import { clipText, Text, TEXT_MAX } from "./common.js";

const KINDS = Object.keys(MESSAGES) as MessageKind[];
const bytesOf = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));

const options: ArbitraryOptions = { fixups: new Map([[TaskSet, (set: TaskSet) => repairTaskSet(set)]]) };

/** Over-long arrays no bigger than the room the message's byte limit leaves (else the size check answers first). */
const budget = (kind: MessageKind, value: unknown) => ({ maxArrayBytes: Math.min(256 * 1024, MAX_MESSAGE_BYTES[kind] - bytesOf(value).length - 1024) });

/** Mutations that break a count bound (`.max(n)` arrays) or a record key (labels). */
function countAndKeyMutations(kind: MessageKind, value: unknown) {
  return sitesOf(MESSAGES[kind], value).flatMap((site) =>
    badValuesFor(site, budget(kind, value))
      .filter((bad) => bad instanceof RenameKey || (Array.isArray(bad) && bad.length > 0))
      .map((bad) => ({ site, bad })),
  );
}

const arbitraries = Object.fromEntries(KINDS.map((k) => [k, arbitraryFor(MESSAGES[k], options)])) as {
  [K in MessageKind]: fc.Arbitrary<Message<K>>;
};

describe.each(KINDS)("bus message %s", (kind) => {
  const arb = arbitraries[kind] as fc.Arbitrary<Message<typeof kind>>;

  it("round-trips every valid value through encode and decode", () => {
    fc.assert(
      fc.property(arb, (value) => {
        const encoded = encode(kind, value);
        if (!encoded.ok) throw new Error(encoded.error);
        expect(decode(kind, encoded.value)).toEqual({ ok: true, value });
      }),
      { numRuns: 60 },
    );
  });

  it("rejects a wrong type, bad name or oversize value and names the field", () => {
    const mutated = arb.chain((value) => {
      const sites = sitesOf(MESSAGES[kind], value).flatMap((site) => badValuesFor(site, budget(kind, value)).map((bad) => ({ site, bad })));
      return fc.constantFrom(...sites).map(({ site, bad }) => ({ value, site, bad }));
    });
    fc.assert(
      fc.property(mutated, ({ value, site, bad }) => {
        const path = formatPath(site.path);
        const result = decode(kind, bytesOf(mutate(value, site.path, bad)));
        expect(result.ok).toBe(false);
        if (result.ok) return;
        expect(result.issues.some((i) => pathCovers(path, i.path)), `${result.error} should name ${path}`).toBe(true);
        expect(result.error).toContain(path);
      }),
      { numRuns: 100 },
    );
  });

  // Only kinds whose messages have bounded arrays or records (decided from samples, not by hand).
  const hasCountOrKeySites = fc.sample(arb, { numRuns: 30, seed: 9 }).some((v) => countAndKeyMutations(kind, v).length > 0);
  // (Kinds without any, e.g. heartbeat, get no such test rather than a skipped one.)
  if (hasCountOrKeySites) it("rejects an array one past its maximum or a bad record key, and names the field", () => {
    const mutated = arb
      .filter((value) => countAndKeyMutations(kind, value).length > 0)
      .chain((value) => fc.constantFrom(...countAndKeyMutations(kind, value)).map(({ site, bad }) => ({ value, site, bad })));
    fc.assert(
      fc.property(mutated, ({ value, site, bad }) => {
        const path = formatPath(site.path);
        const result = decode(kind, bytesOf(mutate(value, site.path, bad)));
        expect(result.ok).toBe(false);
        if (result.ok) return;
        const named = result.issues.filter((i) => pathCovers(path, i.path));
        expect(named.length, `${result.error} should name ${path}`).toBeGreaterThan(0);
        if (bad instanceof RenameKey) {
          expect(named).toContainEqual({ path: formatPath([...site.path, bad.to]), message: expect.stringMatching(/^label key .* must be \[prefix\/\]name/) });
        } else {
          const max = (bad as unknown[]).length - 1;
          expect(named).toContainEqual({ path, message: `Too big: expected array to have <=${max} items` });
        }
      }),
      { numRuns: 40 },
    );
  });

  it("rejects a message with a required field missing and names the field", () => {
    const mutated = arb.chain((value) => {
      const required = sitesOf(MESSAGES[kind], value).filter((s) => s.required);
      return fc.constantFrom(...required).map((site) => ({ value, site }));
    });
    fc.assert(
      fc.property(mutated, ({ value, site }) => {
        const result = decode(kind, bytesOf(mutate(value, site.path, DELETE)));
        expect(result.ok).toBe(false);
        if (!result.ok) expect(result.issues.map((i) => i.path)).toContain(formatPath(site.path));
      }),
      { numRuns: 60 },
    );
  });

  it("never throws on arbitrary bytes", () => {
    fc.assert(
      fc.property(fc.oneof(fc.uint8Array({ maxLength: 512 }), fc.jsonValue().map(bytesOf)), (bytes) => {
        expect(decode(kind, bytes).ok).toBe(false);
      }),
    );
  });

  it("rejects messages over its size limit before parsing", () => {
    const result = decode(kind, new Uint8Array(MAX_MESSAGE_BYTES[kind] + 1));
    expect(result).toMatchObject({ ok: false, issues: [{ path: "(message)" }] });
    expect(MAX_MESSAGE_BYTES[kind]).toBeLessThanOrEqual(NATS_MAX_PAYLOAD);
  });
});

describe("decode", () => {
  it("names a bad label key and an over-long array of a VM in an inventory", () => {
    const [inventory] = fc.sample(
      arbitraries.inventory.filter((i) => i.vms.length > 0),
      { numRuns: 1, seed: 6 },
    );
    let bad = mutate(inventory, ["vms", 0, "labels"], { app: "db", "Bad Key!": "x" });
    bad = mutate(bad, ["vms", 0, "interfaces"], Array.from({ length: 65 }, () => ({ name: "eth0", network: "pod" })));
    const result = decode("inventory", bytesOf(bad));
    expect(result).toMatchObject({
      ok: false,
      issues: [
        { path: 'vms[0].labels["Bad Key!"]', message: expect.stringMatching(/^label key "Bad Key!" must be \[prefix\/\]name/) },
        { path: "vms[0].interfaces", message: "Too big: expected array to have <=64 items" },
      ],
    });
  });

  it("rejects a message whose cluster differs from its subject's", () => {
    const [hello] = fc.sample(arbitraries.hello, { numRuns: 1, seed: 1 });
    const bytes = bytesOf({ ...hello, cluster: "east" });
    expect(decode("hello", bytes, { cluster: "east" }).ok).toBe(true);
    expect(decode("hello", bytes, { cluster: "west" })).toMatchObject({ ok: false, issues: [{ path: "cluster" }] });
  });

  it("rejects a payload of another kind (e.g. a Status on the hello subject)", () => {
    const [status] = fc.sample(arbitraries.status, { numRuns: 1, seed: 2 });
    expect(decode("hello", bytesOf(status))).toMatchObject({ ok: false, issues: expect.arrayContaining([{ path: "kind", message: expect.any(String) }]) });
  });

  it("drops unknown fields so a newer agent's additions don't get its reports rejected", () => {
    const [heartbeat] = fc.sample(arbitraries.heartbeat, { numRuns: 1, seed: 3 });
    const result = decode("heartbeat", bytesOf({ ...heartbeat, addedInV1_1: { x: 1 } }));
    expect(result).toEqual({ ok: true, value: heartbeat });
  });

  it("rejects a task whose local side names another cluster", () => {
    const [set] = fc.sample(
      arbitraries.tasks.filter((s) => s.tasks.some((t) => t.role === "source")),
      { numRuns: 1, seed: 4 },
    );
    const i = set!.tasks.findIndex((t) => t.role === "source");
    const bad = mutate(set, ["tasks", i, "source", "cluster"], "someone-else");
    expect(decode("tasks", bytesOf(bad))).toMatchObject({ ok: false, issues: [{ path: `tasks[${i}].source.cluster` }] });
  });

  it("rejects a send task without connectUrl", () => {
    const [set] = fc.sample(
      arbitraries.tasks.filter((s) => s.tasks.some((t) => t.action === "send")),
      { numRuns: 1, seed: 5 },
    );
    const i = set!.tasks.findIndex((t) => t.action === "send");
    const result = decode("tasks", bytesOf(mutate(set, ["tasks", i, "connectUrl"], DELETE)));
    expect(result).toMatchObject({ ok: false, issues: [{ path: `tasks[${i}].connectUrl`, message: expect.stringContaining("required") }] });
  });
});

describe("clipText", () => {
  it("leaves text within the bound alone", () => {
    expect(clipText("short")).toBe("short");
    expect(clipText("a".repeat(TEXT_MAX))).toBe("a".repeat(TEXT_MAX));
  });

  it("cuts longer text to a valid Text ending in …, never between the halves of a surrogate pair", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", minLength: TEXT_MAX + 1, maxLength: TEXT_MAX + 50 }), (text) => {
        const clipped = clipText(text);
        expect(Text.safeParse(clipped).success).toBe(true);
        expect(clipped.endsWith("…")).toBe(true);
        expect(text.startsWith(clipped.slice(0, -1))).toBe(true);
        expect(clipped).not.toMatch(/[\ud800-\udbff](?![\udc00-\udfff])/);
      }),
      { numRuns: 50 },
    );
    const pairAtCut = `${"a".repeat(TEXT_MAX - 2)}😀b`;
    expect(clipText(pairAtCut)).toBe(`${"a".repeat(TEXT_MAX - 2)}…`);
  });
});
