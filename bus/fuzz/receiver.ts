// Fuzz receiver: a separate process that listens on every subject like the real broker (agent
// reports) and agent (tasks, RPCs) do, through bus/ferry.ts — the same calls they use — and, for
// the reply path, asks like the broker does (requestRpc) while the fuzzer answers. It logs to
// stderr (pino JSON) and answers stdin commands with one JSON line each:
//   report                → {counters, rssBytes}
//   ask <verb> <count>    → {outcomes}: for request i (its deadline is REPLY_DEADLINE_BASE + i ms),
//                           "ok:<kind>" or "<BusRequestError reason>"
// It installs no uncaughtException handler: if a message could crash it, it dies and the test sees it.
import { createInterface } from "node:readline";
import { pino } from "pino";
import { RPC_MESSAGES, RPC_VERBS, type AgentReport, type Message, type RpcVerb } from "../../proto/bus/index.js";
import { BusRequestError, connectBus, requestRpc, serveRpc, subscribeReports, subscribeTasks, type BusCounters, type BusCredentials } from "../index.js";
import { CHANNELS, CLUSTER, REPLY_CLUSTER, REPLY_DEADLINE_BASE, validPool } from "./contract.js";

const creds = JSON.parse(process.env["FUZZ_CREDS"] ?? "{}") as { broker: BusCredentials; agent: BusCredentials };
// Synchronous so that every drop line is on disk before the counters that the test compares with it.
const logger = pino({ level: "info" }, pino.destination({ dest: 2, sync: true }));

const broker = await connectBus({ ...creds.broker, logger, waitOnFirstConnect: false });
const agent = await connectBus({ ...creds.agent, logger, waitOnFirstConnect: false });

const counters: Record<string, BusCounters> = {};
for (const ch of CHANNELS) {
  if (ch.kind === "pub" && ch.from === "agent") {
    counters[ch.name] = subscribeReports(broker, ch.messageKind as AgentReport, () => undefined).counters;
  } else if (ch.name === "tasks") {
    counters[ch.name] = subscribeTasks(agent, CLUSTER, () => undefined).counters;
  }
}
for (const verb of RPC_VERBS) {
  const ch = CHANNELS.find((c) => c.name === `rpc.${verb}`)!;
  // a real answer, not the RpcError member of the reply union
  const reply = validPool(ch.replyKind!, 20, 7).find((r) => (r as { kind: string }).kind !== "RpcError");
  if (!reply) throw new Error(`no valid ${ch.replyKind} sample`);
  counters[ch.name] = serveRpc(agent, CLUSTER, verb, () => reply as never).counters;
}
await Promise.all([broker.flush(), agent.flush()]);
process.stdout.write(JSON.stringify({ ready: true }) + "\n");

/** `count` requests to cluster REPLY_CLUSTER, 100 at a time; request i carries deadline BASE + i ms. */
async function ask(verb: RpcVerb, count: number): Promise<string[]> {
  const [template] = validPool(RPC_MESSAGES[verb].request, 1, 11, REPLY_CLUSTER) as Message<(typeof RPC_MESSAGES)[typeof verb]["request"]>[];
  const outcomes: string[] = [];
  for (let start = 0; start < count; start += 100) {
    const batch = Array.from({ length: Math.min(100, count - start) }, (_, k) => start + k);
    await Promise.all(
      batch.map(async (i) => {
        const request = { ...template!, deadline: new Date(REPLY_DEADLINE_BASE + i).toISOString() };
        try {
          const reply = await requestRpc(broker, REPLY_CLUSTER, verb, request as never, { timeoutMs: 20_000 });
          outcomes[i] = `ok:${(reply as { kind: string }).kind}`;
        } catch (e) {
          outcomes[i] = e instanceof BusRequestError ? e.reason : `thrown:${String(e)}`;
        }
      }),
    );
  }
  return outcomes;
}

for await (const line of createInterface({ input: process.stdin })) {
  const [cmd, verb, count] = line.trim().split(" ");
  if (cmd === "report") {
    process.stdout.write(JSON.stringify({ counters, rssBytes: process.memoryUsage().rss }) + "\n");
  } else if (cmd === "ask") {
    process.stdout.write(JSON.stringify({ outcomes: await ask(verb as RpcVerb, Number(count)) }) + "\n");
  } else if (cmd === "exit") {
    break;
  }
}
await Promise.all([broker.drain(), agent.drain()]);
logger.flush();
