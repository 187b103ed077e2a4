// Canonical JSON: object keys sorted at every level, so equal values give equal strings whatever
// order their keys were written in (records read back from KV, rebuilt task sets).

export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === "object" && !Array.isArray(v) ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v,
  );
}

/** Equal as JSON, ignoring the keys listed (e.g. updatedAt). */
export function sameJson<T extends object>(a: T, b: T, ignore: ReadonlyArray<keyof T> = []): boolean {
  const strip = (v: T) => {
    const copy = { ...v } as Record<string, unknown>;
    for (const k of ignore) delete copy[k as string];
    return canonicalJson(copy);
  };
  return strip(a) === strip(b);
}
