// ferry's bus contract on top of the generic client: the subjects, schemas and size limits of
// proto/bus, so the broker and the agent never pick a schema or a limit by hand.
//
//   broker: subscribeReports(bus, "status", h)   publishTasks(bus, c, set)   requestRpc(bus, c, "preflight", req)
//   agent:  publishReport(bus, c, "status", v)    subscribeTasks(bus, c, h)   serveRpc(bus, c, "preflight", h)
//
// Every receiver also drops a message whose `cluster` field disagrees with the cluster in its subject
// (the same rule as proto's decode).
import {
  BUS_API_VERSION,
  MAX_MESSAGE_BYTES,
  MESSAGES,
  RPC_MESSAGES,
  RpcError,
  reportSubject,
  rpcSubject,
  SUBJECT_ROOT,
  tasksSubject,
  type AgentReport,
  type Message,
  type MessageKind,
  type RpcVerb,
} from "../proto/bus/index.js";
import type { z } from "zod";
import type { Bus, BusMessage, BusSubscription, ServeContext, SubscribeOptions } from "./client.js";

export type RequestKind<V extends RpcVerb> = (typeof RPC_MESSAGES)[V]["request"];
export type ReplyKind<V extends RpcVerb> = (typeof RPC_MESSAGES)[V]["reply"];

/** Drop a message whose `cluster` field names another cluster than its subject (`ferry.v1.<area>.<cluster>.…`). */
export function clusterClaimCheck(value: unknown, subject: string): string | undefined {
  const claimed = (value as { cluster?: unknown } | null)?.cluster;
  const fromSubject = subject.split(".")[3];
  if (claimed === undefined || claimed === fromSubject) return undefined;
  return `message claims cluster ${JSON.stringify(claimed)} but arrived on a subject of "${fromSubject}"`;
}

/** The kind's size limit and the cluster-claim check, plus the caller's own check. */
function receiveOptions<T>(kind: MessageKind, opts: SubscribeOptions<T>): SubscribeOptions<T> {
  const extra = opts.check;
  return {
    ...opts,
    maxBytes: opts.maxBytes ?? MAX_MESSAGE_BYTES[kind],
    check: (v, subject) => clusterClaimCheck(v, subject) ?? extra?.(v, subject),
  };
}

/** Agent → broker: publish a Hello / Heartbeat / Inventory / Status. */
export function publishReport<R extends AgentReport>(bus: Bus, cluster: string, report: R, value: Message<R>): void {
  bus.publish(reportSubject(cluster, report), MESSAGES[report], value, { maxBytes: MAX_MESSAGE_BYTES[report] });
}

export interface ReportMessage<T> extends BusMessage<T> {
  /** The sending cluster, from the subject (which NATS permissions vouch for). */
  cluster: string;
}

/** Broker: receive one kind of report from every cluster (`ferry.v1.broker.*.<report>`). */
export function subscribeReports<R extends AgentReport>(
  bus: Bus,
  report: R,
  handler: (msg: ReportMessage<Message<R>>) => void | Promise<void>,
  opts: SubscribeOptions<Message<R>> = {},
): BusSubscription<Message<R>> {
  const schema = MESSAGES[report] as unknown as z.ZodType<Message<R>>;
  return bus.subscribe(
    `${SUBJECT_ROOT}.broker.*.${report}`,
    schema,
    (msg) => handler({ ...msg, cluster: msg.subject.split(".")[3]! }),
    receiveOptions(report, opts),
  );
}

/** Broker → agent: the whole desired task set of a cluster. */
export function publishTasks(bus: Bus, cluster: string, value: Message<"tasks">): void {
  bus.publish(tasksSubject(cluster), MESSAGES.tasks, value, { maxBytes: MAX_MESSAGE_BYTES.tasks });
}

/** Agent: receive its task sets. */
export function subscribeTasks(
  bus: Bus,
  cluster: string,
  handler: (msg: BusMessage<Message<"tasks">>) => void | Promise<void>,
  opts: SubscribeOptions<Message<"tasks">> = {},
): BusSubscription<Message<"tasks">> {
  return bus.subscribe(tasksSubject(cluster), MESSAGES.tasks, handler, receiveOptions("tasks", opts));
}

const RPC_CODES = RpcError.shape.code.options;
type RpcCode = (typeof RPC_CODES)[number];

/** Bus error code (`bad-request`, `internal`, a `BusHandlerError` code) → proto RpcError code. */
export function toRpcCode(code: string): RpcCode {
  if ((RPC_CODES as readonly string[]).includes(code)) return code as RpcCode;
  switch (code) {
    case "bad-request":
      return "BadRequest";
    case "not-found":
      return "NotFound";
    case "unavailable":
      return "Unavailable";
    case "deadline-exceeded":
    case "timeout":
      return "DeadlineExceeded";
    default:
      return "Internal";
  }
}

/** The RpcError body of an error reply. */
export function rpcErrorReply(code: string, message: string): RpcError {
  return { apiVersion: BUS_API_VERSION, kind: "RpcError", code: toRpcCode(code), message: message.slice(0, 4096) };
}

/**
 * Agent: answer the broker's `verb` requests. Invalid requests and handler exceptions are answered
 * with an RpcError body (code from `BusHandlerError`, e.g. `new BusHandlerError("NotFound", …)`);
 * the handler may also return an RpcError itself.
 */
export function serveRpc<V extends RpcVerb>(
  bus: Bus,
  cluster: string,
  verb: V,
  handler: (request: Message<RequestKind<V>>, ctx: ServeContext) => Message<ReplyKind<V>> | Promise<Message<ReplyKind<V>>>,
  opts: SubscribeOptions<Message<RequestKind<V>>> = {},
): BusSubscription<never> {
  const { request, reply } = RPC_MESSAGES[verb];
  const reqSchema = MESSAGES[request] as unknown as z.ZodType<Message<RequestKind<V>>>;
  const replySchema = MESSAGES[reply] as unknown as z.ZodType<Message<ReplyKind<V>>>;
  return bus.serve(rpcSubject(cluster, verb), reqSchema, replySchema, handler, {
    ...receiveOptions(request, opts),
    maxReplyBytes: MAX_MESSAGE_BYTES[reply],
    // RpcError is a member of every reply union (proto/bus/rpc.ts).
    errorReply: (code, message) => rpcErrorReply(code, message) as Message<ReplyKind<V>>,
  });
}

/**
 * Broker: ask a cluster's agent. Resolves with the reply — which may be an RpcError (check
 * `reply.kind`); throws BusRequestError for timeouts, no responders and unreadable replies. A reply
 * is unreadable (logged, dropped, "invalid-reply") when it is over its kind's limit, not JSON, not
 * valid, or claims another cluster than the one asked (an Inventory names its cluster).
 */
export function requestRpc<V extends RpcVerb>(
  bus: Bus,
  cluster: string,
  verb: V,
  request: Message<RequestKind<V>>,
  opts: { timeoutMs?: number } = {},
): Promise<Message<ReplyKind<V>>> {
  const { request: reqKind, reply } = RPC_MESSAGES[verb];
  const reqSchema = MESSAGES[reqKind] as unknown as z.ZodType<Message<RequestKind<V>>>;
  const replySchema = MESSAGES[reply] as unknown as z.ZodType<Message<ReplyKind<V>>>;
  return bus.request(rpcSubject(cluster, verb), reqSchema, request, replySchema, {
    ...opts,
    maxBytes: MAX_MESSAGE_BYTES[reqKind],
    maxReplyBytes: MAX_MESSAGE_BYTES[reply],
    errorsAsReplies: true,
    check: clusterClaimCheck,
  });
}
