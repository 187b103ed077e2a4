// Wording shared by every message the core writes for humans (why-waiting texts, errors, events).
// Times are printed in UTC: the broker, the agents and the admin may sit in different zones, and a
// plan window names its own zone explicitly.
import { clipText } from "../../proto/bus/common.js";
import { formatBytes } from "../../proto/units.js";

export { formatBytes };

/** Bytes per second as "150 MiB/s". */
export function formatRate(bytesPerSecond: number): string {
  return `${formatBytes(bytesPerSecond)}/s`;
}

/** "12:03:10 UTC" when `at` is on the same UTC day as `now`, else "2026-11-22 12:03:10 UTC". */
export function formatTime(at: Date | string, now: Date): string {
  const t = typeof at === "string" ? new Date(at) : at;
  const iso = t.toISOString();
  const day = iso.slice(0, 10);
  const clock = iso.slice(11, 19);
  return day === now.toISOString().slice(0, 10) ? `${clock} UTC` : `${day} ${clock} UTC`;
}

/** 600 → "600 s": the unit the plan's settings use, so a message quotes the setting it refers to. */
export function formatSeconds(seconds: number): string {
  return `${Math.round(seconds)} s`;
}

/** Cuts `text` to `max` characters (records and bus messages bound their free text); never splits a surrogate pair. */
export function clip(text: string, max = 4096): string {
  return clipText(text, max);
}

export function addSeconds(at: Date, seconds: number): Date {
  return new Date(at.getTime() + seconds * 1000);
}

/** `a` joined as "x", "x and y", "x, y and z". */
export function list(items: readonly string[]): string {
  if (items.length <= 1) return items.join("");
  return `${items.slice(0, -1).join(", ")} and ${items[items.length - 1]}`;
}

export function plural(n: number, one: string, many = `${one}s`): string {
  return `${n} ${n === 1 ? one : many}`;
}

/** "ns/name" of a VM, with the cluster when given: "east/db/pg-0". */
export function vmName(vm: { cluster?: string; namespace: string; name: string }, withCluster = false): string {
  return withCluster && vm.cluster ? `${vm.cluster}/${vm.namespace}/${vm.name}` : `${vm.namespace}/${vm.name}`;
}
