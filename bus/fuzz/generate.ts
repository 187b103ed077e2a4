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
  /** Replies only: sent with this `Ferry-Error-Code` header (an agent's error reply). */
  errorCode?: string;
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

/**
 * Limits up to this get oversized messages as one arm of the random mix; larger limits (hello 2 MiB,
 * status and VM descriptions 4 MiB, inventory and task sets 8 MiB) get OVERSIZED_LARGE of them each,
 * at fixed places, so the run does not ship gigabytes.
 */
const OVERSIZE_MIX_UP_TO = 256 * 1024;
const OVERSIZED_LARGE = 3;

// Shared by every channel: fast-check builds a reverse map of the whole Unicode range once per
// "binary" string arbitrary (~2 s), so there must be only one.
const randomBytes: fc.Arbitrary<Payload> = fc.uint8Array({ maxLength: 256 }).map((b) => ({ how: "random bytes", bytes: b }));
const randomString: fc.Arbitrary<Payload> = fc.string({ unit: "binary", maxLength: 200 }).map((s) => ({ how: "random string", bytes: enc.encode(s) }));

/** A valid message padded beyond the channel's limit (the unknown key is otherwise stripped). */
function oversized(ch: Channel, s: Json, extra: number): Payload {
  return { how: "oversized", bytes: json({ ...(s as { [k: string]: Json }), pad: "p".repeat(ch.maxBytes + extra) }) };
}

/** Payload generator for one channel, over a pool of valid messages. */
export function payloadArbitrary(ch: Channel, pool: unknown[]): fc.Arbitrary<Payload> {
  const index = fc.nat(pool.length - 1);
  const sample = index.map((i) => structuredClone(pool[i]) as Json);
  // Sites of each pool message, found once; bad values are computed for the chosen site only.
  const sites = pool.map((s) => sitesOf(ch.schema, s));
  const arbs: { weight: number; arbitrary: fc.Arbitrary<Payload> }[] = [
    // untouched valid messages
    { weight: 3, arbitrary: sample.map((s) => ({ how: "valid", bytes: json(s) })) },
    // targeted: a wrong type, bad name, oversize value, over-long array or bad record key at a real
    // field, or a required field removed
    {
      weight: 3,
      arbitrary: index.chain((i) => {
        const s = pool[i] as Json;
        if (sites[i]!.length === 0) return fc.constant({ how: "valid (no sites)", bytes: json(s) });
        return fc.constantFrom(...sites[i]!).chain((site) => {
          const bads: unknown[] = [...badValuesFor(site, { maxArrayBytes: 64 * 1024 }), ...(site.required ? [DELETE] : [])];
          if (bads.length === 0) return fc.constant({ how: "valid (no bad value)", bytes: json(s) });
          return fc.constantFrom(...bads).map((bad) => ({
            how: `targeted ${site.path.join(".")}=${bad === DELETE ? "(deleted)" : JSON.stringify(bad)?.slice(0, 20)}`,
            bytes: json(mutate(s, site.path, bad)),
          }));
        });
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
    { weight: 1, arbitrary: randomBytes },
    { weight: 1, arbitrary: randomString },
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
  if (ch.maxBytes <= OVERSIZE_MIX_UP_TO) {
    arbs.push({ weight: 1, arbitrary: fc.tuple(sample, fc.integer({ min: 1, max: 4 * 1024 })).map(([s, extra]) => oversized(ch, s, extra)) });
  }
  const payload = fc.oneof(...arbs);
  if (ch.kind !== "reply") return payload;
  // An agent's reply may come as an error reply (header Ferry-Error-Code) with any of these bodies.
  return fc
    .tuple(payload, fc.oneof({ weight: 5, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: fc.constantFrom("NotFound", "Internal", "bad-request", "x") }))
    .map(([p, code]) => (code === null ? p : { ...p, how: `${p.how} (error header)`, errorCode: code }));
}

/** `count` payloads for `ch` (seeded); large channels get their few oversized ones in place of random ones. */
export function generatePayloads(ch: Channel, pool: unknown[], count: number, seed: number): Payload[] {
  const out = fc.sample(payloadArbitrary(ch, pool), { numRuns: count, seed });
  if (ch.maxBytes > OVERSIZE_MIX_UP_TO) {
    for (let k = 0; k < OVERSIZED_LARGE; k++) {
      const at = Math.floor(((k + 1) * count) / (OVERSIZED_LARGE + 1));
      out[at] = oversized(ch, pool[k % pool.length] as Json, k + 1);
    }
  }
  return out;
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
