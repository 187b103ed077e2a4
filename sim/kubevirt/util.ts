// Small helpers shared by the simulated KubeVirt and CDI controllers: Kubernetes quantities,
// conditions, timestamps, Go-style durations, object keys.
import { ApiError } from "../apiserver/errors.js";
import type { KObject } from "../apiserver/store.js";
import { SimClock } from "../clock.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- conditions and specs are free-form JSON */

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { n: 1e-9, u: 1e-6, m: 1e-3, "": 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };

/** Parses a Kubernetes resource.Quantity ("10Gi", "512M", "1.5", "100m", "1e3") into a number. */
export function parseQuantity(q: unknown): number {
  if (typeof q === "number") return q;
  if (typeof q !== "string") return NaN;
  const m = /^([+-]?[0-9.]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$/.exec(q.trim());
  if (!m) return NaN;
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  const suffix = m[3] ?? "";
  return base * (BINARY[suffix] ?? DECIMAL[suffix] ?? NaN);
}

/** Bytes as a quantity string the way the API server canonicalises whole binary multiples. */
export function formatBytes(n: number): string {
  for (const [suffix, mult] of [["Ti", 2 ** 40], ["Gi", 2 ** 30], ["Mi", 2 ** 20], ["Ki", 2 ** 10]] as const) {
    if (n >= mult && n % mult === 0) return `${n / mult}${suffix}`;
  }
  return String(Math.round(n));
}

/** Go time.ParseDuration subset ("168h", "1h30m", "90s", "500ms"), in milliseconds. */
export function parseGoDuration(s: unknown): number | undefined {
  if (typeof s !== "string" || !s) return undefined;
  const re = /([0-9.]+)(ns|us|µs|ms|s|m|h)/g;
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let consumed = 0;
  for (const m of s.matchAll(re)) {
    total += Number(m[1]) * unit[m[2]!]!;
    consumed += m[0].length;
  }
  return consumed === s.length ? total : undefined;
}

export const now = (): string => SimClock.timestamp();

/** Timestamps with sub-second precision, as metav1.MicroTime / RFC3339 with nanos render. */
export const nowPrecise = (): string => new Date().toISOString();

export const key = (ns: string | undefined, name: string): string => `${ns ?? ""}/${name}`;
export function splitKey(k: string): [string, string] {
  const i = k.indexOf("/");
  return [k.slice(0, i), k.slice(i + 1)];
}

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.code === 404;
}
export function isConflict(e: unknown): boolean {
  return e instanceof ApiError && e.code === 409;
}

export interface Condition {
  type: string;
  status: "True" | "False" | "Unknown";
  reason?: string;
  message?: string;
  lastProbeTime?: string | null;
  lastTransitionTime?: string | null;
  [k: string]: unknown;
}

export function getCondition(obj: { status?: any } | undefined, type: string): Condition | undefined {
  return (obj?.status?.conditions as Condition[] | undefined)?.find((c) => c.type === type);
}

export function hasCondition(obj: { status?: any } | undefined, type: string, status?: string, reason?: string): boolean {
  const c = getCondition(obj, type);
  return !!c && (status === undefined || c.status === status) && (reason === undefined || c.reason === reason);
}

/**
 * Sets a condition in `conds` (in place). Keeps lastTransitionTime when the status does not change,
 * as KubeVirt's condition managers do.
 */
export function setCondition(conds: Condition[], c: Condition): Condition[] {
  const i = conds.findIndex((x) => x.type === c.type);
  if (i < 0) {
    conds.push({ ...c });
    return conds;
  }
  const old = conds[i]!;
  const keepTransition = old.status === c.status && old.lastTransitionTime !== undefined;
  conds[i] = { ...c, ...(keepTransition ? { lastTransitionTime: old.lastTransitionTime } : {}) };
  return conds;
}

export function removeCondition(conds: Condition[] | undefined, type: string): Condition[] {
  return (conds ?? []).filter((c) => c.type !== type);
}

export function addFinalizer(o: KObject, f: string): void {
  const fins = o.metadata.finalizers ?? [];
  if (!fins.includes(f)) o.metadata.finalizers = [...fins, f];
}

export function removeFinalizer(o: KObject, f: string): void {
  if (!o.metadata.finalizers) return;
  o.metadata.finalizers = o.metadata.finalizers.filter((x) => x !== f);
  if (!o.metadata.finalizers.length) delete o.metadata.finalizers;
}

export function hasFinalizer(o: KObject, f: string): boolean {
  return !!o.metadata.finalizers?.includes(f);
}

const ALPHABET = "bcdfghjklmnpqrstvwxz2456789";
export function randSuffix(n = 5): string {
  let s = "";
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(Math.random() * ALPHABET.length)];
  return s;
}

export function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Names the claim a VM/VMI volume uses (PVC claimName or DataVolume name), like PVCNameFromVirtVolume. */
export function claimOfVolume(v: any): string | undefined {
  if (v?.persistentVolumeClaim?.claimName) return v.persistentVolumeClaim.claimName as string;
  if (v?.dataVolume?.name) return v.dataVolume.name as string;
  return undefined;
}

export function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
