// NATS subjects, stream and bucket names (DESIGN.md §4). Every subject carries the cluster so NATS
// permissions can confine an agent to its own: it may publish only ferry.v1.broker.<cluster>.> and
// subscribe only ferry.v1.agent.<cluster>.> and its inbox prefix.
import { DNS1123_LABEL_RULE, isDns1123Label, quote } from "../names.js";
import type { MessageKind } from "./codec.js";

export const SUBJECT_ROOT = "ferry.v1";

/** JetStream stream holding ferry.v1.events.> (audit trail, WatchPlan feed). */
export const EVENTS_STREAM = "FERRY_EVENTS";

/** JetStream KV buckets; only the broker's NATS user may touch them. */
export const KV_BUCKETS = {
  plans: "ferry_plans",
  migrations: "ferry_migrations",
  clusters: "ferry_clusters",
  tokens: "ferry_tokens",
  leader: "ferry_leader",
} as const;

export const RPC_VERBS = ["preflight", "inventory", "describe-vm"] as const;
export type RpcVerb = (typeof RPC_VERBS)[number];

export const AGENT_REPORTS = ["hello", "heartbeat", "inventory", "status"] as const;
export type AgentReport = (typeof AGENT_REPORTS)[number];

/** Request and reply message kinds of each RPC verb. */
export const RPC_MESSAGES = {
  preflight: { request: "preflightRequest", reply: "preflightReply" },
  inventory: { request: "inventoryRequest", reply: "inventoryReply" },
  "describe-vm": { request: "describeVmRequest", reply: "describeVmReply" },
} as const satisfies Record<RpcVerb, { request: MessageKind; reply: MessageKind }>;

/** Subject token of plan-level events; not a DNS-1123 label, so it cannot collide with a migration uid. */
export const PLAN_EVENT_TOKEN = "_plan";

function label(what: string, value: string): string {
  if (!isDns1123Label(value)) throw new Error(`invalid ${what} ${quote(value)}: ${DNS1123_LABEL_RULE}`);
  return value;
}

/** broker → agent: the whole desired task set (TaskSet). */
export function tasksSubject(cluster: string): string {
  return `${SUBJECT_ROOT}.agent.${label("cluster name", cluster)}.tasks`;
}

/** broker → agent request/reply. */
export function rpcSubject(cluster: string, verb: RpcVerb): string {
  return `${SUBJECT_ROOT}.agent.${label("cluster name", cluster)}.rpc.${verb}`;
}

/** agent → broker: Hello, Heartbeat, Inventory, Status. */
export function reportSubject(cluster: string, report: AgentReport): string {
  return `${SUBJECT_ROOT}.broker.${label("cluster name", cluster)}.${report}`;
}

/** broker → FERRY_EVENTS. Without a migration uid: a plan-level event. */
export function eventSubject(plan: string, migrationUid?: string): string {
  const migration = migrationUid === undefined ? PLAN_EVENT_TOKEN : label("migration uid", migrationUid);
  return `${SUBJECT_ROOT}.events.${label("plan name", plan)}.${migration}`;
}

/** Consumer filter for one plan's events (WatchPlan). */
export function planEventsFilter(plan: string): string {
  return `${SUBJECT_ROOT}.events.${label("plan name", plan)}.*`;
}

/** Subjects of the FERRY_EVENTS stream. */
export const EVENTS_SUBJECTS = `${SUBJECT_ROOT}.events.>`;

/** What the broker subscribes to for every agent's reports. */
export const ALL_REPORTS = `${SUBJECT_ROOT}.broker.*.*`;

/**
 * The agent's custom inbox prefix (connect option `inboxPrefix`), so its permissions can allow its
 * own inbox and nobody else's.
 */
export function agentInboxPrefix(cluster: string): string {
  return `_INBOX_${label("cluster name", cluster)}`;
}

/**
 * The agent's NATS permissions as subject patterns. It answers RPCs on the broker's reply inbox,
 * which the server allows through `allow_responses` (publish.allow does not list those).
 */
export function agentPermissions(cluster: string): { publish: string[]; subscribe: string[] } {
  const c = label("cluster name", cluster);
  return {
    publish: [`${SUBJECT_ROOT}.broker.${c}.>`],
    subscribe: [`${SUBJECT_ROOT}.agent.${c}.>`, `${agentInboxPrefix(c)}.>`],
  };
}

export type ParsedSubject =
  | { subject: "tasks"; cluster: string; message: "tasks" }
  | { subject: "rpc"; cluster: string; verb: RpcVerb; message: MessageKind }
  | { subject: "report"; cluster: string; report: AgentReport; message: AgentReport }
  | { subject: "event"; plan: string; migrationUid: string | undefined; message: "event" };

/**
 * Inverse of the builders, for wildcard subscribers: which message a subject carries and for whom.
 * Undefined for anything that is not a well-formed ferry subject.
 */
export function parseSubject(subject: string): ParsedSubject | undefined {
  const t = subject.split(".");
  if (t[0] !== "ferry" || t[1] !== "v1") return undefined;
  const [, , area, a, b, c, ...rest] = t;
  if (a === undefined || b === undefined || rest.length > 0) return undefined;
  if (area === "agent" && isDns1123Label(a)) {
    if (b === "tasks" && c === undefined) return { subject: "tasks", cluster: a, message: "tasks" };
    const verb = RPC_VERBS.find((v) => v === c);
    if (b === "rpc" && verb) return { subject: "rpc", cluster: a, verb, message: RPC_MESSAGES[verb].request };
  }
  if (area === "broker" && c === undefined && isDns1123Label(a)) {
    const report = AGENT_REPORTS.find((r) => r === b);
    if (report) return { subject: "report", cluster: a, report, message: report };
  }
  if (area === "events" && c === undefined && isDns1123Label(a) && (b === PLAN_EVENT_TOKEN || isDns1123Label(b))) {
    return { subject: "event", plan: a, migrationUid: b === PLAN_EVENT_TOKEN ? undefined : b, message: "event" };
  }
  return undefined;
}
