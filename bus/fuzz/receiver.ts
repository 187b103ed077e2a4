// Fuzz receiver: a separate process that listens on every subject like the real broker (agent
// reports) and agent (tasks, RPCs) do, through bus/ferry.ts — the same calls they use. It logs to
// stderr (pino JSON) and answers "report" lines on stdin with its counters as one JSON line.
// It installs no uncaughtException handler: if a message could crash it, it dies and the test sees it.
import { createInterface } from "node:readline";
import { pino } from "pino";
import { RPC_VERBS, type AgentReport } from "../../proto/bus/index.js";
import { connectBus, serveRpc, subscribeReports, subscribeTasks, type BusCounters, type BusCredentials } from "../index.js";
import { CHANNELS, CLUSTER, validPool } from "./contract.js";

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

for await (const line of createInterface({ input: process.stdin })) {
  if (line.trim() === "report") {
    process.stdout.write(JSON.stringify({ counters, rssBytes: process.memoryUsage().rss }) + "\n");
  } else if (line.trim() === "exit") {
    break;
  }
}
await Promise.all([broker.drain(), agent.drain()]);
logger.flush();
