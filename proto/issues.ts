// Turns zod issues into `{path, message}` errors that name the field (`spec.storageMap[0].target`)
// and, where zod's wording is vague, the fix. Shared by the bus decoder and the plan parser.
import { z } from "zod";

export interface FieldError {
  /** Dotted path with [index] for arrays; "(root)" for the whole document. */
  path: string;
  message: string;
  /** 1-based line in the source text, when the error came from a parsed document and the field is in it. */
  line?: number;
}

export type Result<T> =
  | { ok: true; value: T }
  | { ok: false; /** All errors in one line, for logs. */ error: string; issues: FieldError[] };

export function fail(issues: FieldError[]): { ok: false; error: string; issues: FieldError[] } {
  const line = (i: FieldError) => (i.line ? ` (line ${i.line})` : "");
  return { ok: false, error: issues.map((i) => `${i.path}${line(i)}: ${i.message}`).join("; "), issues };
}

const IDENT = /^[A-Za-z_$][\w$-]*$/;

export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else if (typeof key === "string" && IDENT.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out || "(root)";
}

/** Per-parse error map: zod's "expected string, received undefined" becomes "required". */
const errorMap: z.core.$ZodErrorMap = (issue) =>
  issue.code === "invalid_type" && issue.input === undefined ? `required field is missing (expected ${issue.expected})` : undefined;

/** Finds the line of a field in the source text, if the text has it. */
export type Locate = (path: (string | number)[]) => number | undefined;

/**
 * Parses with `schema` and reports every problem with its path. Unknown fields (strict objects)
 * get a "did you mean" from the object's own field names. With `locate`, each error also gets the
 * line of its field, or of the nearest enclosing field present (a missing field's parent).
 */
export function parseWith<S extends z.ZodType>(schema: S, data: unknown, prefix: readonly PropertyKey[] = [], locate?: Locate): Result<z.output<S>> {
  const parsed = schema.safeParse(data, { error: errorMap });
  if (parsed.success) return { ok: true, value: parsed.data };
  const seen = new Set<string>();
  const issues: FieldError[] = [];
  for (const { path, message } of flatten(schema, parsed.error.issues, prefix)) {
    const error: FieldError = { path: formatPath(path), message };
    const key = `${error.path}\u0000${message}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const keys = path.filter((k): k is string | number => typeof k !== "symbol");
    for (let n = keys.length; locate && n > 0 && error.line === undefined; n--) {
      const line = locate(keys.slice(0, n));
      if (line !== undefined) error.line = line;
    }
    issues.push(error);
  }
  return fail(issues);
}

interface RawIssue {
  path: PropertyKey[];
  message: string;
}

// Issue paths are relative to `schema` (a union's branch issues are relative to the union).
function flatten(schema: z.core.$ZodType, issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[]): RawIssue[] {
  return issues.flatMap((issue): RawIssue[] => {
    const path = [...prefix, ...issue.path];
    if (issue.code === "unrecognized_keys") {
      const known = fieldNames(schemaAt(schema, issue.path));
      return issue.keys.map((key) => ({ path: [...path, key], message: unknownField(key, known) }));
    }
    if (issue.code === "invalid_union" && issue.errors.length > 0) {
      // Report the alternative that came closest (fewest problems) instead of "invalid input".
      let best = 0;
      issue.errors.forEach((errs, i) => {
        if (errs.length < (issue.errors[best]?.length ?? Infinity)) best = i;
      });
      const union = schemaAt(schema, issue.path);
      const option = union?._zod.def.type === "union" ? (union._zod.def as z.core.$ZodUnionDef).options[best] : undefined;
      return flatten(option ?? union ?? schema, issue.errors[best] ?? [], path);
    }
    if (issue.code === "invalid_key" && issue.issues.length > 0) {
      // zod says only "Invalid key in record"; the key schema's own message says what is wrong.
      return [{ path, message: issue.issues.map((i) => i.message).join("; ") }];
    }
    return [{ path, message: issue.message }];
  });
}

function unknownField(key: string, known: readonly string[]): string {
  const near = known.filter((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= Math.max(1, Math.floor(k.length / 4)));
  const hint = near.length > 0 ? `did you mean ${near.map((k) => `"${k}"`).join(" or ")}?` : `allowed fields: ${known.join(", ")}`;
  return `unknown field ${JSON.stringify(key)}; ${hint}`;
}

function unwrap(schema: z.core.$ZodType): z.core.$ZodType {
  const def = schema._zod.def;
  if ("innerType" in def) return unwrap(def.innerType as z.core.$ZodType);
  if (def.type === "pipe") return unwrap((def as z.core.$ZodPipeDef).in);
  return schema;
}

/** The schema found by walking `path` through objects, arrays, records and wrappers. */
function schemaAt(schema: z.core.$ZodType, path: readonly PropertyKey[]): z.core.$ZodType | undefined {
  const s = unwrap(schema);
  if (path.length === 0) return s;
  const def = s._zod.def;
  const rest = path.slice(1);
  switch (def.type) {
    case "array":
      return schemaAt((def as z.core.$ZodArrayDef).element, rest);
    case "record":
      return schemaAt((def as z.core.$ZodRecordDef).valueType, rest);
    case "object": {
      const next = (def as z.core.$ZodObjectDef).shape[String(path[0])];
      return next && schemaAt(next, rest);
    }
    default:
      return undefined;
  }
}

function fieldNames(schema: z.core.$ZodType | undefined): string[] {
  if (!schema) return [];
  const def = schema._zod.def;
  if (def.type === "object") return Object.keys((def as z.core.$ZodObjectDef).shape);
  if (def.type === "union") return [...new Set((def as z.core.$ZodUnionDef).options.flatMap((o) => fieldNames(unwrap(o))))];
  return [];
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, (prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}
