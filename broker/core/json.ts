// Canonical JSON and JSON equality: equal values compare equal whatever order their keys were
// written in (records read back from KV, rebuilt task sets). Undefined properties count as absent,
// as in JSON.

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** Deep equality of JSON values. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== "object" || typeof b !== "object" || a === null || b === null) return false;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => jsonEqual(x, b[i]));
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const ka = Object.keys(ra).filter((k) => ra[k] !== undefined);
  const kb = Object.keys(rb).filter((k) => rb[k] !== undefined);
  return ka.length === kb.length && ka.every((k) => jsonEqual(ra[k], rb[k]));
}

/** Equal as JSON, ignoring the keys listed (e.g. updatedAt). */
export function sameJson<T extends object>(a: T, b: T, ignore: ReadonlyArray<keyof T> = []): boolean {
  const strip = (v: T) => {
    const copy = { ...v } as Record<string, unknown>;
    for (const k of ignore) delete copy[k as string];
    return copy;
  };
  return jsonEqual(strip(a), strip(b));
}
