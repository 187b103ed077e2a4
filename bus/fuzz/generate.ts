// Random and mutated payloads for a channel (fast-check, seeded), plus the verdict the receiver
// must reach for each: accepted (valid) or dropped (and why).
import fc from "fast-check";
import { badValuesFor, DELETE, mutate, sitesOf } from "../../proto/testing/zod-arbitrary.js";
import { clusterClaimCheck } from "../ferry.js";
import type { Channel } from "./contract.js";

export interface Payload {
  /** How it was made (for failure messages). */
  how: string;
  bytes: Uint8Array;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const enc = new TextEncoder();
const utf8 = new TextDecoder("utf-8", { fatal: true });
const json = (v: unknown) => enc.encode(JSON.stringify(v));

/** All (container, key) slots of a JSON value, depth-first. */
function slots(v: Json, out: { parent: Json[] | { [k: string]: Json }; key: string | number }[] = []) {
  if (Array.isArray(v)) {
    v.forEach((c, i) => {
      out.push({ parent: v, key: i });
      slots(c, out);
    });
  } else if (v !== null && typeof v === "object") {
    for (const [k, c] of Object.entries(v)) {
      out.push({ parent: v, key: k });
      slots(c, out);
    }
  }
  return out;
}

const MUTATIONS = ["set", "delete", "add", "string", "number", "dup", "wrap", "nullify", "swap-kind"] as const;
type Mutation = { op: (typeof MUTATIONS)[number]; at: number; value: Json; text: string };

const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom(...MUTATIONS),
  at: fc.nat(),
  value: fc.jsonValue({ maxDepth: 2 }) as fc.Arbitrary<Json>,
  text: fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom("", "A", "b", "prod", "Bad_Name", "-x", "10.0.0.1:99999", "1970-13-01T00:00:00Z", "💥", "a".repeat(300))),
});

const NUMBERS: Json[] = [-1, 0, 1.5, 1e308, 2 ** 53, -0, 101, 4096];

/** Blind structural mutation (may or may not keep the message valid). */
function apply(v: Json, m: Mutation): Json {
  const all = slots(v);
  if (all.length === 0) return m.value;
  const { parent, key } = all[m.at % all.length]!;
  const p = parent as Record<string | number, Json>;
  switch (m.op) {
    case "set":
      p[key] = m.value;
      break;
    case "delete":
      if (Array.isArray(parent)) parent.splice(key as number, 1);
      else delete p[key];
      break;
    case "add":
      if (Array.isArray(parent)) parent.push(m.value);
      else p[`x${m.at % 7}`] = m.value;
      break;
    case "string":
      p[key] = m.text;
      break;
    case "number":
      p[key] = NUMBERS[m.at % NUMBERS.length]!;
      break;
    case "dup":
      if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]!));
      else p[key] = [p[key]!, p[key]!];
      break;
    case "wrap":
      p[key] = [p[key]!];
      break;
    case "nullify":
      p[key] = null;
      break;
    case "swap-kind":
      if (v !== null && typeof v === "object" && !Array.isArray(v) && typeof v["kind"] === "string") v["kind"] = m.text || "Other";
      break;
  }
  return v;
}

/** Largest limit for which the fuzzer sends oversized messages (bigger ones would exceed the server's max_payload budget of the test). */
const OVERSIZE_UP_TO = 256 * 1024;

/** Payload generator for one channel, over a pool of valid messages. */
export function payloadArbitrary(ch: Channel, pool: unknown[]): fc.Arbitrary<Payload> {
  const sample = fc.constantFrom(...(pool as Json[])).map((s) => structuredClone(s));
  const arbs: { weight: number; arbitrary: fc.Arbitrary<Payload> }[] = [
    // untouched valid messages
    { weight: 3, arbitrary: sample.map((s) => ({ how: "valid", bytes: json(s) })) },
    // targeted: a wrong type, bad name or oversize value at a real field, or a required field removed
    {
      weight: 3,
      arbitrary: sample.chain((s) => {
        const sites = sitesOf(ch.schema, s).flatMap((site) => [
          ...badValuesFor(site).map((bad) => ({ path: site.path, bad })),
          ...(site.required ? [{ path: site.path, bad: DELETE as unknown }] : []),
        ]);
        if (sites.length === 0) return fc.constant({ how: "valid (no sites)", bytes: json(s) });
        return fc.constantFrom(...sites).map(({ path, bad }) => ({
          how: `targeted ${path.join(".")}=${bad === DELETE ? "(deleted)" : JSON.stringify(bad)?.slice(0, 20)}`,
          bytes: json(mutate(s, path, bad)),
        }));
      }),
    },
    // blind structural mutations (1–4)
    {
      weight: 6,
      arbitrary: fc
        .tuple(sample, fc.array(mutationArb, { minLength: 1, maxLength: 4 }))
        .map(([s, ms]) => ({ how: `mutated ${ms.map((m) => m.op).join(",")}`, bytes: json(ms.reduce(apply, s)) })),
    },
    // a valid message claiming another cluster than its subject
    {
      weight: 1,
      arbitrary: sample.map((s) => ({ how: "other cluster", bytes: json(s !== null && typeof s === "object" && "cluster" in s ? { ...s, cluster: "b" } : s) })),
    },
    // random JSON of any shape
    { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 4 }).map((v) => ({ how: "random json", bytes: json(v) })) },
    // random bytes and strings (mostly not JSON, sometimes not UTF-8)
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 256 }).map((b) => ({ how: "random bytes", bytes: b })) },
    { weight: 1, arbitrary: fc.string({ unit: "binary", maxLength: 200 }).map((s) => ({ how: "random string", bytes: enc.encode(s) })) },
    // byte-level damage to a valid message: truncation, flipped byte, invalid UTF-8
    {
      weight: 2,
      arbitrary: fc.tuple(sample, fc.nat(), fc.integer({ min: 1, max: 255 }), fc.constantFrom("truncate", "flip", "utf8")).map(([s, at, x, how]) => {
        const b = json(s);
        const i = at % b.length;
        if (how === "truncate") return { how, bytes: b.slice(0, i) };
        const c = b.slice();
        if (how === "flip") c[i] = c[i]! ^ x;
        else c[i] = 0xc0 | (x & 0x1f); // lone UTF-8 lead byte
        return { how, bytes: c };
      }),
    },
  ];
  if (ch.maxBytes <= OVERSIZE_UP_TO) {
    // a valid message padded beyond the channel's limit (the unknown key is otherwise stripped)
    arbs.push({
      weight: 1,
      arbitrary: fc.tuple(sample, fc.integer({ min: 1, max: 4 * 1024 })).map(([s, extra]) => ({
        how: "oversized",
        bytes: json({ ...(s as { [k: string]: Json }), pad: "p".repeat(ch.maxBytes + extra) }),
      })),
    });
  }
  return fc.oneof(...arbs);
}

export function generatePayloads(ch: Channel, pool: unknown[], count: number, seed: number): Payload[] {
  return fc.sample(payloadArbitrary(ch, pool), { numRuns: count, seed });
}

export type Verdict = "accepted" | "oversize" | "not-json" | "invalid" | "rejected";

/** What the receiver must decide for `bytes` on `ch` (the rules of Bus.decode + the cluster check). */
export function expectedVerdict(ch: Channel, bytes: Uint8Array): Verdict {
  if (bytes.length > ch.maxBytes) return "oversize";
  let v: unknown;
  try {
    v = JSON.parse(utf8.decode(bytes));
  } catch {
    return "not-json";
  }
  const parsed = ch.schema.safeParse(v);
  if (!parsed.success) return "invalid";
  return clusterClaimCheck(parsed.data, ch.subject) === undefined ? "accepted" : "rejected";
}
