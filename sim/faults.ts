// Per-cluster API fault injection and the request log. The API server asks `ClusterFaults.take` for
// every authenticated resource request; the control API adds and removes rules and reads the log.
import { ApiError, type StatusReason } from "./apiserver/errors.js";

export const VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"] as const;
export type Verb = (typeof VERBS)[number];

/** What a request is about, as kube-apiserver's RequestInfo. `resource` is "" for non-resource paths. */
export interface RequestInfo {
  verb: Verb;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  path: string;
}

/** Which requests a rule applies to. Every field that is set must match. */
export interface RequestMatch {
  verb?: Verb;
  /** Plural resource name, optionally group-qualified: "virtualmachines" or "virtualmachines.kubevirt.io".
   *  "" matches discovery and other non-resource requests, which no other rule matches. */
  resource?: string;
  /** "status"; "" matches only requests to the main resource. */
  subresource?: string;
  namespace?: string;
  name?: string;
}

/** Fail matching requests with a Status error. */
export interface ErrorFault extends RequestMatch {
  code: number;
  /** Status reason; defaults from the code (500 InternalError, 429 TooManyRequests, ...). */
  reason?: StatusReason;
  message?: string;
  /** Sent as the Retry-After header and details.retryAfterSeconds (useful with 429 and 503). */
  retryAfterSeconds?: number;
  /** How many matching requests fail; default 1. "unlimited" until removed. */
  count?: number | "unlimited";
}

/** Delay matching requests. */
export interface LatencyFault extends RequestMatch {
  ms: number;
  count?: number | "unlimited";
}

export type FaultRule =
  | (ErrorFault & { id: string; type: "error"; remaining: number | "unlimited" })
  | (LatencyFault & { id: string; type: "latency"; remaining: number | "unlimited" });

export interface RequestLogEntry {
  seq: number;
  time: string;
  verb: Verb;
  /** Plural resource, "" for discovery and other non-resource paths. */
  resource: string;
  group: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  path: string;
  /** HTTP status sent (watches: the status of the response head). */
  code: number;
  /** Set when the answer came from an injected fault. */
  injected?: boolean;
  userAgent?: string;
}

const DEFAULT_REASON: Record<number, StatusReason> = {
  400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
  406: "NotAcceptable", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType", 422: "Invalid",
  429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout",
};

export function defaultReason(code: number): StatusReason {
  return DEFAULT_REASON[code] ?? (code >= 500 ? "InternalError" : "BadRequest");
}

function matches(m: RequestMatch, info: RequestInfo): boolean {
  // Discovery and other non-resource requests match only rules that ask for them (resource: "").
  if (info.resource === "" && m.resource !== "") return false;
  if (m.verb !== undefined && m.verb !== info.verb) return false;
  if (m.resource !== undefined) {
    const qualified = info.group ? `${info.resource}.${info.group}` : info.resource;
    if (m.resource !== info.resource && m.resource !== qualified) return false;
  }
  if (m.subresource !== undefined && m.subresource !== (info.subresource ?? "")) return false;
  if (m.namespace !== undefined && m.namespace !== info.namespace) return false;
  if (m.name !== undefined && m.name !== info.name) return false;
  return true;
}

let nextId = 1;

export class ClusterFaults {
  private rules: FaultRule[] = [];

  addError(f: ErrorFault): FaultRule {
    if (!Number.isInteger(f.code) || f.code < 400 || f.code > 599) throw new Error(`code must be an HTTP error status 400-599, got ${f.code}`);
    const rule: FaultRule = { ...f, id: `f${nextId++}`, type: "error", remaining: f.count ?? 1 };
    this.rules.push(rule);
    return rule;
  }

  addLatency(f: LatencyFault): FaultRule {
    if (!(f.ms >= 0)) throw new Error(`ms must be >= 0, got ${f.ms}`);
    const rule: FaultRule = { ...f, id: `f${nextId++}`, type: "latency", remaining: f.count ?? "unlimited" };
    this.rules.push(rule);
    return rule;
  }

  list(): FaultRule[] {
    return this.rules.map((r) => ({ ...r }));
  }

  remove(id: string): boolean {
    const n = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== id);
    return this.rules.length !== n;
  }

  clear(): void {
    this.rules = [];
  }

  /** Consumes the rules matching a request: the total delay to add and the error to answer, if any. */
  take(info: RequestInfo): { delayMs: number; error?: ApiError; retryAfterSeconds?: number } {
    let delayMs = 0;
    let error: ApiError | undefined;
    let retryAfterSeconds: number | undefined;
    for (const r of this.rules) {
      if (!matches(r, info)) continue;
      if (r.type === "latency") delayMs += r.ms;
      else if (error) continue;
      else {
        retryAfterSeconds = r.retryAfterSeconds;
        const what = info.name ? `${info.resource} "${info.name}"` : info.resource || info.path;
        error = new ApiError(r.code, r.reason ?? defaultReason(r.code), r.message ?? `injected fault: ${r.code} on ${info.verb} ${what}`, {
          ...(info.name ? { name: info.name } : {}),
          group: info.group,
          kind: info.resource,
          ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
        });
      }
      if (r.remaining !== "unlimited") r.remaining--;
    }
    this.rules = this.rules.filter((r) => r.remaining === "unlimited" || r.remaining > 0);
    return { delayMs, ...(error ? { error } : {}), ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}) };
  }
}

export interface RequestCounts {
  /** verb → resource ("" for non-resource paths) → number of requests. */
  [verb: string]: Record<string, number>;
}

/** A bounded log of the requests one cluster's API server answered, plus counters that never reset. */
export class RequestLog {
  private seq = 0;
  private readonly entries: RequestLogEntry[] = [];
  private readonly counts: RequestCounts = {};

  constructor(private readonly capacity = 10_000) {}

  record(e: Omit<RequestLogEntry, "seq" | "time">): RequestLogEntry {
    const entry: RequestLogEntry = { seq: ++this.seq, time: new Date().toISOString(), ...e };
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
    const byResource = (this.counts[e.verb] ??= {});
    const key = e.subresource ? `${e.resource}/${e.subresource}` : e.resource;
    byResource[key] = (byResource[key] ?? 0) + 1;
    return entry;
  }

  /** The sequence number of the last request; pass it as `since` to see only later ones. */
  get last(): number {
    return this.seq;
  }

  query(opts: { since?: number; verb?: Verb; resource?: string; limit?: number } = {}): RequestLogEntry[] {
    const out = this.entries.filter(
      (e) =>
        (opts.since === undefined || e.seq > opts.since) &&
        (opts.verb === undefined || e.verb === opts.verb) &&
        (opts.resource === undefined || e.resource === opts.resource || `${e.resource}.${e.group}` === opts.resource),
    );
    return opts.limit !== undefined ? out.slice(-opts.limit) : out;
  }

  countsSnapshot(): RequestCounts {
    return structuredClone(this.counts);
  }
}
