// The channels the fuzz test attacks: every subject a ferry receiver listens to, with the real
// schemas and size limits from proto/bus, and pools of valid messages derived from those schemas
// (proto/testing/zod-arbitrary.ts).
import fc from "fast-check";
import type { z } from "zod";
import {
  AGENT_REPORTS,
  MAX_MESSAGE_BYTES,
  MESSAGES,
  RPC_MESSAGES,
  RPC_VERBS,
  reportSubject,
  rpcSubject,
  tasksSubject,
  TaskSet,
  type MessageKind,
} from "../../proto/bus/index.js";
import { repairTaskSet } from "../../proto/testing/task-set.js";
import { arbitraryFor, type ArbitraryOptions } from "../../proto/testing/zod-arbitrary.js";

/** The cluster every fuzzed message is addressed to / sent from. */
export const CLUSTER = "a";
/** The cluster whose "agent" (the fuzzer) answers the receiver's RPCs with fuzzed replies. */
export const REPLY_CLUSTER = "r";

export interface Channel {
  name: string;
  /** "pub": fire-and-forget; "rpc": the fuzzer requests; "reply": the receiver requests, the fuzzer replies. */
  kind: "pub" | "rpc" | "reply";
  /** Who sends on it (which credentials the fuzzer publishes with). */
  from: "agent" | "broker";
  /** The cluster of the subject (valid messages claim it). */
  cluster: string;
  /** The concrete subject the fuzzer publishes on (for replies: the request subject they answer). */
  subject: string;
  messageKind: MessageKind;
  replyKind?: MessageKind;
  schema: z.ZodType;
  maxBytes: number;
}

export const CHANNELS: Channel[] = [
  ...AGENT_REPORTS.map(
    (report): Channel => ({
      name: report,
      kind: "pub",
      from: "agent",
      cluster: CLUSTER,
      subject: reportSubject(CLUSTER, report),
      messageKind: report,
      schema: MESSAGES[report],
      maxBytes: MAX_MESSAGE_BYTES[report],
    }),
  ),
  { name: "tasks", kind: "pub", from: "broker", cluster: CLUSTER, subject: tasksSubject(CLUSTER), messageKind: "tasks", schema: MESSAGES.tasks, maxBytes: MAX_MESSAGE_BYTES.tasks },
  ...RPC_VERBS.map(
    (verb): Channel => ({
      name: `rpc.${verb}`,
      kind: "rpc",
      from: "broker",
      cluster: CLUSTER,
      subject: rpcSubject(CLUSTER, verb),
      messageKind: RPC_MESSAGES[verb].request,
      replyKind: RPC_MESSAGES[verb].reply,
      schema: MESSAGES[RPC_MESSAGES[verb].request],
      maxBytes: MAX_MESSAGE_BYTES[RPC_MESSAGES[verb].request],
    }),
  ),
];

/** Deadline of the receiver's request i on the reply path: this + i ms (how the fuzzer finds reply i). */
export const REPLY_DEADLINE_BASE = Date.parse("2100-01-01T00:00:00.000Z");

/** The reply path: the receiver (as the broker, through requestRpc) asks; the fuzzer (as agent "r") answers. */
export const REPLY_CHANNELS: Channel[] = RPC_VERBS.map(
  (verb): Channel => ({
    name: `reply.${verb}`,
    kind: "reply",
    from: "agent",
    cluster: REPLY_CLUSTER,
    subject: rpcSubject(REPLY_CLUSTER, verb),
    messageKind: RPC_MESSAGES[verb].reply,
    schema: MESSAGES[RPC_MESSAGES[verb].reply],
    maxBytes: MAX_MESSAGE_BYTES[RPC_MESSAGES[verb].reply],
  }),
);

// Task sets are repaired to satisfy their cross-field rules (proto/testing/task-set.ts); every
// message is addressed to / from the channel's cluster so the receivers' cluster check accepts the
// valid ones.
function options(cluster: string): ArbitraryOptions {
  return { fixups: new Map([[TaskSet, (set: TaskSet) => repairTaskSet(set, cluster)]]) };
}

/** `count` valid messages of `kind` (seeded) claiming `cluster`, each re-checked against its schema. */
export function validPool(kind: MessageKind, count: number, seed: number, cluster = CLUSTER): unknown[] {
  const schema = MESSAGES[kind] as z.ZodType;
  const addressed = (v: unknown) => (v !== null && typeof v === "object" && "cluster" in v ? { ...v, cluster } : v);
  return fc
    .sample(arbitraryFor(MESSAGES[kind], options(cluster)), { numRuns: count * 2, seed })
    .map(addressed)
    .map((v) => JSON.parse(JSON.stringify(v)) as unknown) // wire form (drops undefined)
    .filter((v) => schema.safeParse(v).success)
    .slice(0, count);
}
