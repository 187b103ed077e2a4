// Test support: the LARGEST value a zod schema accepts, measured as JSON on the wire. Every string
// at its maximum length in the character JSON escapes most dearly, every array at its maximum
// count, every optional field present, the longest enum value, the widest number, the biggest
// union branch. Size limits are then checked against what a schema really admits, not against a
// typical sample.
import { z } from "zod";

type Schema = z.core.$ZodType;
type Def = z.core.$ZodTypeDef & Record<string, unknown>;
type CheckDef = z.core.$ZodCheckDef & Record<string, unknown>;

/**
 * The characters a string can be made of, dearest first on the wire: a control character is
 * escaped as `\u0001` (6 bytes for one UTF-16 unit, as is a lone surrogate), a 3-byte UTF-8
 * character, a 2-byte escape (`\n`, `"`, `\\`), plain ASCII. A schema that bounds bytes rather than
 * characters is filled greedily from the top of this list.
 */
const DEAR = ["\u0001", "€", "\n", "a"];

export interface LargestOptions {
  /**
   * The largest valid value of a string schema with a pattern (names, codes, addresses): the
   * builder cannot invent one, and refuses to guess. A function gets the entry's index, for record
   * keys that must differ.
   */
  patterned: Map<Schema, string | ((index: number) => string)>;
  /**
   * Arrays (by path, e.g. `vms` or `tasks`) held at one element: the collections of a kind whose
   * size grows with the fleet, bounded by the kind's byte limit rather than by the schema.
   */
  single?: ReadonlySet<string>;
  /** Build only the declared fields of open objects (`z.looseObject`) instead of refusing them. */
  allowOpen?: boolean;
}

export class UnboundedSchemaError extends Error {
  constructor(path: string, what: string) {
    super(`${path || "(root)"}: ${what}`);
    this.name = "UnboundedSchemaError";
  }
}

/** The largest value `schema` accepts (see LargestOptions). Throws UnboundedSchemaError where there is none. */
export function largestValue(schema: Schema, options: LargestOptions, path = ""): unknown {
  const def = schema._zod.def as Def;
  switch (def.type) {
    case "optional":
    case "nullable":
    case "default":
    case "prefault":
    case "readonly":
      return largestValue(def.innerType as Schema, options, path);
    case "pipe":
      return largestValue(def.in as Schema, options, path);
    case "string":
      return largestString(schema, options, path);
    case "number":
      return largestNumber(schema, path);
    case "boolean":
      return false;
    case "literal":
      return widest(def.values as unknown[]);
    case "enum":
      return widest(Object.values(def.entries as Record<string, unknown>));
    case "union":
      return widest((def.options as Schema[]).map((o) => largestValue(o, options, path)));
    case "object":
      return largestObject(schema, options, path);
    case "array":
      return largestArray(schema, options, path);
    case "record":
      return largestRecord(schema, options, path);
    default:
      throw new UnboundedSchemaError(path, `no largest value for zod type "${def.type}"`);
  }
}

export function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value), "utf8");
}

function widest(values: unknown[]): unknown {
  return values.reduce((a, b) => (jsonBytes(b) > jsonBytes(a) ? b : a));
}

function checksOf(schema: Schema): CheckDef[] {
  return (schema._zod.def.checks ?? []).map((c) => c._zod.def as CheckDef);
}

function maxLength(schema: Schema): number {
  let max = Infinity;
  for (const c of checksOf(schema)) {
    if (c.check === "max_length") max = Math.min(max, c.maximum as number);
    if (c.check === "length_equals") max = Math.min(max, c.length as number);
  }
  return max;
}

const valid = (schema: Schema, value: unknown) => z.safeParse(schema, value).success;

/** Largest n in [lo, hi] with ok(n), given ok(lo) and ok monotone (true up to some n, then false). */
function largestN(lo: number, hi: number, ok: (n: number) => boolean): number {
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (ok(mid)) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

function largestString(schema: Schema, options: LargestOptions, path: string): string {
  const given = options.patterned.get(schema);
  if (given !== undefined) return typeof given === "function" ? given(0) : given;
  const def = schema._zod.def as Def;
  if (def.format === "datetime") {
    // zod takes any number of fractional digits unless the schema bounds the length.
    if (valid(schema, `2099-12-31T23:59:59.${"9".repeat(64)}Z`)) throw new UnboundedSchemaError(path, "datetime without a maximum length");
    // Nine fractional digits (Go's RFC3339Nano) is what a bounded Time takes.
    return widest(["2099-12-31T23:59:59.999999999Z", "2099-12-31T23:59:59.999Z"].filter((t) => valid(schema, t))) as string;
  }
  if (checksOf(schema).some((c) => c.check === "string_format")) {
    throw new UnboundedSchemaError(path, `string with a pattern: give its largest valid value in options.patterned`);
  }
  if (!Number.isFinite(maxLength(schema))) throw new UnboundedSchemaError(path, "string without a maximum length");
  const s = fillDearest(schema, "");
  if (!valid(schema, s)) throw new UnboundedSchemaError(path, "no valid string found; give one in options.patterned");
  return s;
}

/**
 * `prefix` followed by as many of the dearest character as `schema` still accepts, then the next
 * dearest, and so on (a byte-bounded string takes fewer characters than its length bound; a
 * restricted alphabet skips what it refuses).
 */
export function fillDearest(schema: Schema, prefix: string): string {
  const max = maxLength(schema);
  if (!Number.isFinite(max)) throw new UnboundedSchemaError("", "string without a maximum length");
  let s = prefix;
  for (const ch of DEAR) {
    const room = max - s.length;
    if (valid(schema, s + ch.repeat(room))) s += ch.repeat(room);
    else if (valid(schema, s + ch)) s += ch.repeat(largestN(1, room, (k) => valid(schema, s + ch.repeat(k))));
  }
  return s;
}

function largestNumber(schema: Schema, path: string): number {
  const def = schema._zod.def as Def;
  let min = -Number.MAX_VALUE;
  let max = Number.MAX_VALUE;
  if (def.format === "safeint") [min, max] = [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER];
  for (const c of checksOf(schema)) {
    if (c.check === "greater_than") min = Math.max(min, c.value as number);
    if (c.check === "less_than") max = Math.min(max, c.value as number);
  }
  const integer = def.format === "safeint" || def.format === "int32" || def.format === "uint32";
  // Among the bounds and, for non-integers, a long mantissa inside them: the widest JSON.
  const candidates = [min, max, ...(integer ? [] : [min / 3, max / 3, -min / 3, (min + max) / 3])].filter((n) => valid(schema, n));
  if (candidates.length === 0) throw new UnboundedSchemaError(path, "no valid number found");
  return widest(candidates) as number;
}

function largestObject(schema: Schema, options: LargestOptions, path: string): Record<string, unknown> {
  const def = schema._zod.def as Def;
  const catchall = def.catchall as Schema | undefined;
  if (catchall && catchall._zod.def.type !== "never" && !options.allowOpen) {
    throw new UnboundedSchemaError(path, "open object (any extra field is kept): no largest value");
  }
  const out: Record<string, unknown> = {};
  for (const [key, field] of Object.entries(def.shape as Record<string, Schema>)) {
    out[key] = largestValue(field, options, path ? `${path}.${key}` : key);
  }
  return out;
}

function largestArray(schema: Schema, options: LargestOptions, path: string): unknown[] {
  const def = schema._zod.def as Def;
  const element = largestValue(def.element as Schema, options, `${path}[]`);
  const max = options.single?.has(path) ? 1 : maxLength(schema);
  if (!Number.isFinite(max)) throw new UnboundedSchemaError(path, "array without a maximum length");
  return Array.from({ length: max }, () => structuredClone(element));
}

/** Records have no count check in zod: the bound is whatever refinement the schema has, found by search. */
function largestRecord(schema: Schema, options: LargestOptions, path: string): Record<string, unknown> {
  const def = schema._zod.def as Def;
  const keySchema = def.keyType as Schema;
  const keyOf = options.patterned.get(keySchema);
  if (typeof keyOf !== "function") throw new UnboundedSchemaError(path, "record: give a key function (index → largest distinct key) in options.patterned");
  const value = largestValue(def.valueType as Schema, options, `${path}{}`);
  const build = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [keyOf(i), structuredClone(value)]));
  // Double until refused (or the cap says "unbounded"), then bisect.
  const CAP = 8192;
  let hi = 1;
  while (hi <= CAP && valid(schema, build(hi))) hi *= 2;
  if (hi > CAP) throw new UnboundedSchemaError(path, `record takes ${CAP} entries or more: bound it (a refinement on its size)`);
  return build(largestN(hi === 1 ? 0 : hi / 2, hi - 1, (n) => valid(schema, build(n))));
}
