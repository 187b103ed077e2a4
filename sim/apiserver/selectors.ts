// Label and field selectors as kube-apiserver parses them.
import { ApiError } from "./errors.js";

type Requirement =
  | { key: string; op: "=" | "!="; values: [string] }
  | { key: string; op: "in" | "notin"; values: string[] }
  | { key: string; op: "exists" | "!exists"; values: [] };

export type Selector = (fields: (key: string) => string | undefined) => boolean;

const badSelector = (sel: string, why: string) =>
  new ApiError(400, "BadRequest", `unable to parse requirement: ${why} in selector "${sel}"`);

/** Splits on commas that are not inside a `(...)` value set. */
function splitTopLevel(sel: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let cur = "";
  for (const ch of sel) {
    if (ch === "(") depth++;
    if (ch === ")") depth--;
    if (ch === "," && depth === 0) {
      parts.push(cur);
      cur = "";
    } else cur += ch;
  }
  parts.push(cur);
  return parts.map((p) => p.trim()).filter((p) => p !== "");
}

function parseRequirement(sel: string, part: string): Requirement {
  let m = /^([^\s!=,()]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(part);
  if (m) {
    const values = m[3]!.split(",").map((v) => v.trim()).filter((v) => v !== "");
    return { key: m[1]!, op: m[2] as "in" | "notin", values };
  }
  m = /^([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)$/.exec(part);
  if (m) return { key: m[1]!, op: m[2] === "!=" ? "!=" : "=", values: [m[3]!] };
  m = /^!\s*([^\s!=,()]+)$/.exec(part);
  if (m) return { key: m[1]!, op: "!exists", values: [] };
  m = /^([^\s!=,()]+)$/.exec(part);
  if (m) return { key: m[1]!, op: "exists", values: [] };
  throw badSelector(sel, `cannot parse "${part}"`);
}

function matches(r: Requirement, value: string | undefined): boolean {
  switch (r.op) {
    case "=": return value === r.values[0];
    case "!=": return value !== r.values[0];
    case "in": return value !== undefined && r.values.includes(value);
    case "notin": return value === undefined || !r.values.includes(value);
    case "exists": return value !== undefined;
    case "!exists": return value === undefined;
  }
}

export function parseLabelSelector(sel: string | undefined): Selector {
  if (!sel) return () => true;
  const reqs = splitTopLevel(sel).map((p) => parseRequirement(sel, p));
  return (get) => reqs.every((r) => matches(r, get(r.key)));
}

/** Field selectors only allow `=`, `==` and `!=`. */
export function parseFieldSelector(sel: string | undefined): Selector {
  if (!sel) return () => true;
  const reqs = splitTopLevel(sel).map((p) => {
    const r = parseRequirement(sel, p);
    if (r.op !== "=" && r.op !== "!=") throw badSelector(sel, `field selectors support only =, == and != ("${p}")`);
    return r;
  });
  return (get) => reqs.every((r) => matches(r, get(r.key)));
}

/** Reads a dotted field path (`metadata.name`, `status.phase`) as a string, for field selectors. */
export function fieldValue(obj: unknown, path: string): string | undefined {
  let cur: unknown = obj;
  for (const seg of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  if (cur === undefined || cur === null) return undefined;
  return typeof cur === "string" ? cur : JSON.stringify(cur);
}
