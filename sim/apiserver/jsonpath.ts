// The JSONPath subset CRD printer columns use: `.a.b`, `.a[0].b`, `.a[*].b` and filters
// `[?(@.k=='v')]` / `[?(@.k=="v")]`. Returns every match, as k8s.io/client-go/util/jsonpath does.

type Step =
  | { kind: "field"; name: string }
  | { kind: "index"; index: number }
  | { kind: "all" }
  | { kind: "filter"; path: string[]; op: "==" | "!="; value: string };

const cache = new Map<string, Step[]>();

function parse(expr: string): Step[] {
  const cached = cache.get(expr);
  if (cached) return cached;
  let s = expr.trim();
  if (s.startsWith("{") && s.endsWith("}")) s = s.slice(1, -1);
  if (s.startsWith("$")) s = s.slice(1);
  const steps: Step[] = [];
  let i = 0;
  while (i < s.length) {
    const ch = s[i]!;
    if (ch === ".") {
      i++;
      let j = i;
      while (j < s.length && s[j] !== "." && s[j] !== "[") j++;
      if (j > i) steps.push({ kind: "field", name: s.slice(i, j) });
      i = j;
    } else if (ch === "[") {
      const close = findClose(s, i);
      const inner = s.slice(i + 1, close).trim();
      i = close + 1;
      if (inner === "*") steps.push({ kind: "all" });
      else if (/^-?\d+$/.test(inner)) steps.push({ kind: "index", index: Number(inner) });
      else if (/^'.*'$|^".*"$/.test(inner)) steps.push({ kind: "field", name: inner.slice(1, -1) });
      else {
        const m = /^\?\(\s*@((?:\.[^.=!\s]+)+)\s*(==|!=)\s*(?:'([^']*)'|"([^"]*)"|(\S+))\s*\)$/.exec(inner);
        if (!m) throw new Error(`unsupported JSONPath expression ${expr}`);
        steps.push({ kind: "filter", path: m[1]!.slice(1).split("."), op: m[2] as "==" | "!=", value: m[3] ?? m[4] ?? m[5]! });
      }
    } else {
      // A leading bare field name: "metadata.name".
      let j = i;
      while (j < s.length && s[j] !== "." && s[j] !== "[") j++;
      steps.push({ kind: "field", name: s.slice(i, j) });
      i = j;
    }
  }
  cache.set(expr, steps);
  return steps;
}

function findClose(s: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < s.length; i++) {
    const ch = s[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
    } else if (ch === "'" || ch === '"') quote = ch;
    else if (ch === "[" || ch === "(") depth++;
    else if (ch === "]" || ch === ")") {
      depth--;
      if (depth === 0 && ch === "]") return i;
    }
  }
  throw new Error(`unbalanced brackets in JSONPath ${s}`);
}

function get(o: unknown, path: string[]): unknown {
  let cur = o;
  for (const p of path) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur;
}

/** Every value `expr` selects in `obj`. */
export function jsonPath(obj: unknown, expr: string): unknown[] {
  let cur: unknown[] = [obj];
  for (const step of parse(expr)) {
    const next: unknown[] = [];
    for (const v of cur) {
      if (v === null || v === undefined) continue;
      switch (step.kind) {
        case "field":
          if (typeof v === "object" && !Array.isArray(v) && step.name in v) next.push((v as Record<string, unknown>)[step.name]);
          break;
        case "index":
          if (Array.isArray(v)) {
            const i = step.index < 0 ? v.length + step.index : step.index;
            if (i >= 0 && i < v.length) next.push(v[i]);
          }
          break;
        case "all":
          if (Array.isArray(v)) next.push(...(v as unknown[]));
          else if (typeof v === "object") next.push(...Object.values(v));
          break;
        case "filter":
          if (Array.isArray(v)) {
            for (const el of v as unknown[]) {
              const got = get(el, step.path);
              const s = got === undefined ? undefined : typeof got === "string" ? got : JSON.stringify(got);
              if (step.op === "==" ? s === step.value : s !== step.value) next.push(el);
            }
          }
          break;
      }
    }
    cur = next;
  }
  return cur;
}
