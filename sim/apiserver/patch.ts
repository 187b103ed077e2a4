// PATCH bodies by content type: JSON patch (RFC 6902), JSON merge patch (RFC 7386), strategic merge
// patch (built-in kinds only, with the list keys kinds.ts names) and server-side apply (approximated
// as a merge that remembers which fields each manager applied, so omitted ones are removed).
import jsonpatch from "fast-json-patch";
import { ApiError } from "./errors.js";

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);
const clone = <T>(v: T): T => structuredClone(v);

export const badRequest = (message: string) => new ApiError(400, "BadRequest", message);

/** RFC 7386. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return clone(patch);
  const out: JsonObject = isObject(target) ? clone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v) as Json;
  }
  return out;
}

/** RFC 6902 via fast-json-patch. Malformed patches are 400, failed operations 422, as kube-apiserver. */
export function jsonPatch(target: unknown, ops: unknown): unknown {
  if (!Array.isArray(ops)) throw badRequest("json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  const err = jsonpatch.validate(ops as jsonpatch.Operation[]);
  if (err) throw badRequest(err.message.split("\n")[0] ?? err.name);
  try {
    return jsonpatch.applyPatch(clone(target), ops as jsonpatch.Operation[], true, true).newDocument;
  } catch (e) {
    const msg = e instanceof Error ? (e.message.split("\n")[0] ?? e.message) : String(e);
    throw new ApiError(422, "Invalid", msg);
  }
}

const DIRECTIVE = "$patch";
const RETAIN = "$retainKeys";
const SET_ORDER = "$setElementOrder/";
const DELETE_PRIMITIVE = "$deleteFromPrimitiveList/";

/**
 * Strategic merge patch for the fields kube's Go types give a patch strategy; every other list is
 * replaced, as for fields without `patchStrategy`. `mergeKeys` maps a dotted path to the list's
 * merge key, or "$primitive" for a merged list of scalars (metadata.finalizers).
 */
export function strategicMergePatch(target: unknown, patch: unknown, mergeKeys: Record<string, string>): unknown {
  if (!isObject(patch)) throw badRequest("strategic merge patch must be a JSON object");
  return smpMap(isObject(target) ? target : {}, patch, "", mergeKeys) ?? {};
}

function smpMap(target: JsonObject, patch: JsonObject, path: string, keys: Record<string, string>): JsonObject | undefined {
  const directive = patch[DIRECTIVE];
  if (directive === "delete") return undefined;
  if (directive === "replace") return stripDirectives(patch) as JsonObject;
  if (directive !== undefined && directive !== "merge") throw badRequest(`Unknown patch type: ${JSON.stringify(directive)}`);
  const out = clone(target);
  const retain = patch[RETAIN];
  for (const [k, v] of Object.entries(patch)) {
    if (k === DIRECTIVE || k === RETAIN || k.startsWith(SET_ORDER)) continue;
    if (k.startsWith(DELETE_PRIMITIVE)) {
      const field = k.slice(DELETE_PRIMITIVE.length);
      const cur = out[field];
      if (Array.isArray(cur) && Array.isArray(v)) out[field] = cur.filter((x) => !v.some((d) => JSON.stringify(d) === JSON.stringify(x)));
      continue;
    }
    const p = path ? `${path}.${k}` : k;
    if (v === null) {
      delete out[k];
    } else if (isObject(v)) {
      const merged = smpMap(isObject(out[k]) ? (out[k]) : {}, v, p, keys);
      if (merged === undefined) delete out[k];
      else out[k] = merged;
    } else if (Array.isArray(v)) {
      out[k] = smpList(Array.isArray(out[k]) ? (out[k]) : [], v, p, keys);
    } else {
      out[k] = v;
    }
  }
  if (Array.isArray(retain)) {
    for (const k of Object.keys(out)) if (!retain.includes(k)) delete out[k];
  }
  return out;
}

function smpList(target: Json[], patch: Json[], path: string, keys: Record<string, string>): Json[] {
  const key = keys[path];
  if (!key) return stripDirectives(patch) as Json[];
  if (patch.some((el) => isObject(el) && el[DIRECTIVE] === "replace")) {
    return stripDirectives(patch.filter((el) => !(isObject(el) && el[DIRECTIVE] === "replace"))) as Json[];
  }
  if (key === "$primitive") {
    const out = clone(target);
    for (const el of patch) if (!out.some((x) => JSON.stringify(x) === JSON.stringify(el))) out.push(el);
    return out;
  }
  const out = clone(target);
  for (const el of patch) {
    if (!isObject(el)) throw badRequest(`${path}: expected a list of objects with merge key ${key}`);
    const idx = out.findIndex((x) => isObject(x) && JSON.stringify(x[key]) === JSON.stringify(el[key]));
    if (el[DIRECTIVE] === "delete") {
      if (idx >= 0) out.splice(idx, 1);
    } else if (idx >= 0) {
      out[idx] = smpMap(out[idx] as JsonObject, el, path, keys) ?? {};
    } else {
      out.push(stripDirectives(el));
    }
  }
  return out;
}

function stripDirectives(v: Json): Json {
  if (Array.isArray(v)) return v.map(stripDirectives);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    if (k === DIRECTIVE || k === RETAIN || k.startsWith(SET_ORDER) || k.startsWith(DELETE_PRIMITIVE)) continue;
    out[k] = stripDirectives(x);
  }
  return out;
}

// ---- server-side apply ---------------------------------------------------------------------------

/** Field paths (JSON-encoded segment arrays) of every leaf an applied configuration sets. Lists are leaves. */
export function appliedPaths(obj: unknown, prefix: string[] = [], out = new Set<string>()): Set<string> {
  if (!isObject(obj) || (prefix.length > 0 && Object.keys(obj).length === 0)) {
    out.add(JSON.stringify(prefix));
    return out;
  }
  for (const [k, v] of Object.entries(obj)) {
    if (prefix.length === 0 && (k === "apiVersion" || k === "kind")) continue;
    if (prefix.length === 1 && prefix[0] === "metadata" && ["name", "namespace", "resourceVersion", "uid", "managedFields", "creationTimestamp", "generation"].includes(k)) continue;
    appliedPaths(v, [...prefix, k], out);
  }
  return out;
}

/** Encodes paths as `fieldsV1` (`{"f:spec":{"f:runStrategy":{}}}`). */
export function toFieldsV1(paths: Iterable<string>): JsonObject {
  const root: JsonObject = {};
  for (const p of paths) {
    let cur = root;
    for (const seg of JSON.parse(p) as string[]) {
      const k = `f:${seg}`;
      if (!isObject(cur[k])) cur[k] = {};
      cur = cur[k];
    }
  }
  return root;
}

/** Decodes `fieldsV1` back to leaf paths. Entries other than `f:` (list keys) end the path. */
export function fromFieldsV1(f: unknown, prefix: string[] = [], out = new Set<string>()): Set<string> {
  const entries = isObject(f) ? Object.entries(f).filter(([k]) => k.startsWith("f:")) : [];
  if (!entries.length) {
    if (prefix.length) out.add(JSON.stringify(prefix));
    return out;
  }
  for (const [k, v] of entries) fromFieldsV1(v, [...prefix, k.slice(2)], out);
  return out;
}

function deletePath(obj: JsonObject, path: string[]): void {
  const parents: JsonObject[] = [];
  let cur: Json = obj;
  for (const seg of path.slice(0, -1)) {
    if (!isObject(cur)) return;
    parents.push(cur);
    cur = cur[seg] ?? null;
  }
  if (!isObject(cur)) return;
  delete cur[path[path.length - 1]!];
  // Drop maps the removal left empty, as SSA does for fields nobody owns.
  for (let i = path.length - 2; i >= 0; i--) {
    const parent = parents[i]!;
    const child = parent[path[i]!];
    if (isObject(child) && Object.keys(child).length === 0) delete parent[path[i]!];
    else break;
  }
}

function deepMerge(target: Json, applied: Json): Json {
  if (!isObject(applied) || !isObject(target)) return clone(applied);
  const out = clone(target);
  for (const [k, v] of Object.entries(applied)) out[k] = k in out ? deepMerge(out[k]!, v) : clone(v);
  return out;
}

export interface ManagedFieldsEntry {
  manager: string;
  operation: "Apply" | "Update";
  apiVersion: string;
  time: string;
  fieldsType: "FieldsV1";
  fieldsV1: JsonObject;
  subresource?: string;
}

/**
 * Applies `applied` for `manager` onto `existing` (undefined: the object is new). Fields the same
 * manager applied before and omits now are removed unless another Apply manager also set them.
 * Conflicts with other managers are not detected (`force` is implied).
 */
export function serverSideApply(
  existing: Record<string, unknown> | undefined,
  applied: Record<string, unknown>,
  manager: string,
  subresource: "status" | undefined,
  now: string,
): Record<string, unknown> {
  const base = (existing ? clone(existing) : {}) as JsonObject;
  const managed = ((existing?.metadata as { managedFields?: ManagedFieldsEntry[] } | undefined)?.managedFields ?? []);
  const scopeOf = (e: ManagedFieldsEntry) => e.subresource ?? "";
  const scope = subresource ?? "";
  const mine = managed.find((e) => e.manager === manager && e.operation === "Apply" && scopeOf(e) === scope);
  const newPaths = appliedPaths(applied);
  if (mine) {
    const others = new Set<string>();
    for (const e of managed) if (e !== mine && e.operation === "Apply") for (const p of fromFieldsV1(e.fieldsV1)) others.add(p);
    for (const p of fromFieldsV1(mine.fieldsV1)) {
      if (!newPaths.has(p) && !others.has(p)) deletePath(base, JSON.parse(p) as string[]);
    }
  }
  const appliedClean = clone(applied) as JsonObject;
  if (isObject(appliedClean.metadata)) delete appliedClean.metadata.managedFields;
  const merged = deepMerge(base, appliedClean) as JsonObject;
  const entry: ManagedFieldsEntry = {
    manager,
    operation: "Apply",
    apiVersion: typeof applied.apiVersion === "string" ? applied.apiVersion : "",
    time: now,
    fieldsType: "FieldsV1",
    fieldsV1: toFieldsV1(newPaths),
    ...(subresource ? { subresource } : {}),
  };
  const rest = managed.filter((e) => e !== mine);
  const meta = (isObject(merged.metadata) ? merged.metadata : (merged.metadata = {}));
  meta.managedFields = [...rest, entry] as unknown as Json;
  return merged;
}
