// JSON merge patches (RFC 7386) computed from a read object and the object wanted, so the agent
// needs only `patch` (not `update`) and sends only what it changes.
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function equal(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** The merge patch that turns `before` into `after` (undefined when they are equal). Arrays are replaced whole. */
export function mergePatchOf(before: unknown, after: unknown): Json | undefined {
  if (!isObject(before) || !isObject(after)) return equal(before, after) ? undefined : ((after ?? null) as Json);
  const out: Record<string, Json> = {};
  for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) {
    if (!(key in after) || after[key] === undefined) {
      if (key in before && before[key] !== undefined) out[key] = null;
      continue;
    }
    const sub = key in before ? mergePatchOf(before[key], after[key]) : (after[key] as Json);
    if (sub !== undefined) out[key] = sub;
  }
  return Object.keys(out).length === 0 ? undefined : out;
}

/** Applies a merge patch (RFC 7386), for tests and checks. */
export function applyMergePatch(target: unknown, patch: Json | undefined): unknown {
  if (patch === undefined) return target;
  if (!isObject(patch)) return patch;
  const out: Record<string, unknown> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = applyMergePatch(out[k], v);
  }
  return out;
}

/**
 * The merge patch for an object the agent read and changed: its identity (apiVersion, kind, name,
 * namespace) for the request, and `metadata.resourceVersion` so a concurrent change makes it a 409.
 */
export function objectPatch<T extends { apiVersion?: string; kind?: string; metadata: { name?: string; namespace?: string; resourceVersion?: string } }>(before: T, after: T) {
  const diff = mergePatchOf(before, after);
  if (diff === undefined) return undefined;
  const body = diff as Record<string, Json>;
  const metadata = (isObject(body.metadata) ? body.metadata : {}) as Record<string, Json>;
  return {
    ...body,
    apiVersion: before.apiVersion ?? "",
    kind: before.kind ?? "",
    metadata: { ...metadata, name: before.metadata.name ?? "", ...(before.metadata.namespace ? { namespace: before.metadata.namespace } : {}), ...(before.metadata.resourceVersion ? { resourceVersion: before.metadata.resourceVersion } : {}) },
  };
}
