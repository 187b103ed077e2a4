// Test support: fast-check arbitraries derived from zod schemas, and mutations that make a valid
// value invalid at a known path. Deriving them from the schemas keeps the tests from restating every
// message by hand (and from drifting when a schema changes).
import fc from "fast-check";
import { z } from "zod";

type Schema = z.core.$ZodType;
type CheckDef = z.core.$ZodCheckDef & Record<string, unknown>;

export interface ArbitraryOptions {
  /** Hand-written arbitraries for schemas the derivation can't produce well. */
  overrides?: Map<Schema, fc.Arbitrary<unknown>>;
  /** Repairs applied before a node's refinements are checked, so refinements rarely reject. */
  fixups?: Map<Schema, (value: never) => unknown>;
}

/** Values that `schema` accepts, shaped like its output (defaults present, optional keys sometimes). */
export function arbitraryFor<S extends z.ZodType>(schema: S, options: ArbitraryOptions = {}): fc.Arbitrary<z.output<S>> {
  return derive(schema, options) as fc.Arbitrary<z.output<S>>;
}

function checksOf(schema: Schema): CheckDef[] {
  return (schema._zod.def.checks ?? []).map((c) => c._zod.def as CheckDef);
}

function derive(schema: Schema, options: ArbitraryOptions): fc.Arbitrary<unknown> {
  const override = options.overrides?.get(schema);
  if (override) return override;
  let arb = shape(schema, options);
  const fixup = options.fixups?.get(schema);
  if (fixup) arb = arb.map((v) => fixup(v as never));
  // Refinements (custom checks) are opaque: keep only values the node really accepts.
  if (checksOf(schema).some((c) => c.check === "custom")) arb = arb.filter((v) => isValid(schema, v));
  return arb;
}

function isValid(schema: Schema, value: unknown): boolean {
  return z.safeParse(schema, value).success;
}

function shape(schema: Schema, options: ArbitraryOptions): fc.Arbitrary<unknown> {
  const def = schema._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
  switch (def.type) {
    case "string":
      return stringArb(schema);
    case "number":
      return numberArb(schema);
    case "boolean":
      return fc.boolean();
    case "literal":
      return fc.constantFrom(...(def.values as unknown[]));
    case "enum":
      return fc.constantFrom(...Object.values(def.entries as Record<string, unknown>));
    case "optional":
      return fc.option(derive(def.innerType as Schema, options), { nil: undefined });
    case "nullable":
      return fc.option(derive(def.innerType as Schema, options), { nil: null });
    case "default":
    case "prefault":
    case "readonly":
      return derive(def.innerType as Schema, options);
    case "pipe":
      return derive(def.in as Schema, options);
    case "array": {
      const { min, max } = lengthBounds(schema);
      return fc.array(derive(def.element as Schema, options), { minLength: min, maxLength: Math.min(max, min + 3) });
    }
    case "record":
      return fc.dictionary(derive(def.keyType as Schema, options) as fc.Arbitrary<string>, derive(def.valueType as Schema, options), {
        maxKeys: 3,
      });
    case "object": {
      const fields = def.shape as Record<string, Schema>;
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      const requiredKeys: string[] = [];
      for (const [key, field] of Object.entries(fields)) {
        const optional = field._zod.def.type === "optional";
        model[key] = derive(optional ? (field._zod.def as z.core.$ZodOptionalDef).innerType : field, options);
        if (!optional) requiredKeys.push(key);
      }
      return fc.record(model, { requiredKeys });
    }
    case "union":
      return fc.oneof(...(def.options as Schema[]).map((o) => derive(o, options)));
    case "unknown":
    case "any":
      return fc.jsonValue();
    default:
      throw new Error(`arbitraryFor: no derivation for zod type "${def.type}"; pass an override`);
  }
}

function lengthBounds(schema: Schema): { min: number; max: number } {
  let min = 0;
  let max = Infinity;
  for (const c of checksOf(schema)) {
    if (c.check === "min_length") min = Math.max(min, c.minimum as number);
    if (c.check === "max_length") max = Math.min(max, c.maximum as number);
    if (c.check === "length_equals") min = max = c.length as number;
  }
  return { min, max };
}

function stringArb(schema: Schema): fc.Arbitrary<string> {
  const def = schema._zod.def as z.core.$ZodStringDef & { format?: string };
  if (def.format === "datetime") {
    return fc.date({ min: new Date("2000-01-01T00:00:00Z"), max: new Date("2099-12-31T23:59:59Z"), noInvalidDate: true }).map((d) => d.toISOString());
  }
  const { min, max } = lengthBounds(schema);
  const patterns = checksOf(schema).flatMap((c) => (c.check === "string_format" && c.pattern instanceof RegExp ? [c.pattern] : []));
  const [first, ...rest] = patterns;
  if (first) {
    return fc.stringMatching(first).filter((s) => s.length >= min && s.length <= max && rest.every((p) => p.test(s)));
  }
  // Long free-text limits (4096) need no long samples; the oversize mutation covers the bound.
  return fc.string({ unit: "grapheme", minLength: min, maxLength: Math.min(max, min + 24) });
}

function numberArb(schema: Schema): fc.Arbitrary<number> {
  const def = schema._zod.def as z.core.$ZodNumberDef & { format?: string };
  const formats: Record<string, [number, number]> = {
    safeint: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
    int32: [-(2 ** 31), 2 ** 31 - 1],
    uint32: [0, 2 ** 32 - 1],
  };
  const integer = def.format ? formats[def.format] : undefined;
  let [min, max] = integer ?? [-1e9, 1e9];
  for (const c of checksOf(schema)) {
    if (c.check === "greater_than") min = Math.max(min, (c.value as number) + (c.inclusive ? 0 : Number.EPSILON));
    if (c.check === "less_than") max = Math.min(max, (c.value as number) - (c.inclusive ? 0 : Number.EPSILON));
  }
  if (integer) return fc.integer({ min: Math.ceil(min), max: Math.floor(max) });
  // JSON has no -0: it would come back as 0.
  return fc.double({ min, max, noNaN: true, noDefaultInfinity: true }).map((x) => (x === 0 ? 0 : x));
}

/** A place in a valid value where a mutation can be made, with the schema that governs it. */
export interface Site {
  path: (string | number)[];
  schema: Schema;
  /** Removing the key makes the value invalid. */
  required: boolean;
  /** The value found there (over-long arrays are made from its elements). */
  value?: unknown;
  /** A record key: `path` is the record, `schema` the key schema; bad values rename the key. */
  key?: string;
}

function unwrap(schema: Schema): Schema {
  const def = schema._zod.def as z.core.$ZodTypeDef & { innerType?: Schema; in?: Schema };
  if (def.innerType) return unwrap(def.innerType);
  if (def.type === "pipe" && def.in) return unwrap(def.in);
  return schema;
}

/** Every field, array element and record key of `value`, walking `schema` alongside (unions: the branch that accepts it). */
export function sitesOf(schema: Schema, value: unknown, path: (string | number)[] = []): Site[] {
  const s = unwrap(schema);
  const def = s._zod.def as z.core.$ZodTypeDef & Record<string, unknown>;
  if (def.type === "union") {
    const option = (def.options as Schema[]).find((o) => isValid(o, value));
    return option ? sitesOf(option, value, path) : [];
  }
  if (def.type === "object" && value !== null && typeof value === "object") {
    return Object.entries(def.shape as Record<string, Schema>).flatMap(([key, field]) => {
      const v = (value as Record<string, unknown>)[key];
      if (v === undefined) return [];
      const kind = field._zod.def.type;
      const required = kind !== "optional" && kind !== "default" && kind !== "prefault";
      return [{ path: [...path, key], schema: field, required, value: v }, ...sitesOf(field, v, [...path, key])];
    });
  }
  if (def.type === "array" && Array.isArray(value)) {
    return value.flatMap((v: unknown, i) => [{ path: [...path, i], schema: def.element as Schema, required: false, value: v }, ...sitesOf(def.element as Schema, v, [...path, i])]);
  }
  if (def.type === "record" && value !== null && typeof value === "object") {
    return Object.entries(value).flatMap(([k, v]) => [
      { path, schema: def.keyType as Schema, required: false, key: k },
      { path: [...path, k], schema: def.valueType as Schema, required: false, value: v },
      ...sitesOf(def.valueType as Schema, v, [...path, k]),
    ]);
  }
  return [];
}

const WRONG_TYPES: unknown[] = [12345, -1, 1.5, "not-a-valid value!", "", true, null, [], {}];

/** A bad value that renames the record key `from` to `to` (see `mutate`). */
export class RenameKey {
  constructor(
    readonly from: string,
    readonly to: string,
  ) {}
  toJSON(): string {
    return `(key ${JSON.stringify(this.from)} → ${JSON.stringify(this.to)})`;
  }
}

export interface BadValueOptions {
  /** Largest over-long array to build, in JSON bytes (default 256 KiB); longer bounds are left to the message size limit. */
  maxArrayBytes?: number;
}

/**
 * Replacement values `site` rejects: wrong types, bad names, one past a length bound (strings and
 * arrays), and for record keys a rename to a bad key.
 */
export function badValuesFor(site: Site, options: BadValueOptions = {}): unknown[] {
  const inner = unwrap(site.schema);
  const { max } = lengthBounds(inner);
  if (site.key !== undefined) {
    const keys = ["not-a-valid key!", "", "-x", "a".repeat(Number.isFinite(max) ? max + 1 : 300)];
    return keys.filter((k) => !isValid(site.schema, k)).map((k) => new RenameKey(site.key!, k));
  }
  const type = inner._zod.def.type;
  const oversize = type === "string" ? ["a".repeat(Number.isFinite(max) ? max + 1 : 300)] : [];
  // Invalid by construction (one element too many); not parsed here, which would cost a full parse per sample.
  const overlong = type === "array" ? overlongArray(site.value, max, options) : [];
  return [...[...WRONG_TYPES, ...oversize].filter((v) => !isValid(site.schema, v)), ...overlong];
}

/** `max + 1` elements, repeating the valid ones the site holds (none for an empty array: nothing to repeat). */
function overlongArray(current: unknown, max: number, options: BadValueOptions): unknown[][] {
  if (!Number.isFinite(max) || !Array.isArray(current) || current.length === 0) return [];
  const elements: unknown[] = current;
  const perElement = Math.max(...elements.map((e) => JSON.stringify(e ?? null).length + 1));
  if (perElement * (max + 1) > (options.maxArrayBytes ?? 256 * 1024)) return [];
  // Shared references: `mutate` copies the whole value, and JSON does not care.
  return [Array.from({ length: max + 1 }, (_, i) => elements[i % elements.length])];
}

/**
 * Returns a copy of `value` with `path` set to `replacement`, or deleted (replacement `DELETE`), or,
 * for a `RenameKey`, with that key of the record at `path` renamed.
 */
export const DELETE = Symbol("delete");
export function mutate(value: unknown, path: (string | number)[], replacement: unknown): unknown {
  const copy = structuredClone(value);
  if (replacement instanceof RenameKey) {
    let record: unknown = copy;
    for (const key of path) record = (record as Record<string | number, unknown>)[key];
    const r = record as Record<string, unknown>;
    const v = r[replacement.from];
    delete r[replacement.from];
    r[replacement.to] = v;
    return copy;
  }
  let parent: unknown = copy;
  for (const key of path.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[key];
  const last = path[path.length - 1];
  if (last === undefined) return replacement;
  const target = parent as Record<string | number, unknown>;
  if (replacement === DELETE) delete target[last];
  else target[last] = replacement;
  return copy;
}

/** Whether `errorPath` is `path` or inside it. */
export function pathCovers(path: string, errorPath: string): boolean {
  return errorPath === path || errorPath.startsWith(`${path}.`) || errorPath.startsWith(`${path}[`);
}
