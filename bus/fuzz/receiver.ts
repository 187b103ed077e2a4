// Fuzz receiver: a separate process that listens on every channel of the contract like the real
// broker (agent reports) and agent (tasks, RPCs) do, through the typed bus client. It logs to
// stderr (pino JSON) and answers "report" lines on stdin with its counters as one JSON line.
// It installs no uncaughtException handler: if a message could crash it, it dies and the test sees it.
import { createInterface } from "node:readline";
import { pino } from "pino";
import { connectBus, type BusCounters, type BusCredentials } from "../index.js";
import { CHANNELS } from "./contract.js";

const creds = JSON.parse(process.env["FUZZ_CREDS"] ?? "{}") as { broker: BusCredentials; agent: BusCredentials };
const logger = pino({ level: "info" }, pino.destination(2));

const broker = await connectBus({ ...creds.broker, logger, waitOnFirstConnect: false });
const agent = await connectBus({ ...creds.agent, logger, waitOnFirstConnect: false });

const counters: Record<string, BusCounters> = {};
for (const ch of CHANNELS) {
  const bus = ch.from === "agent" ? broker : agent; // the receiving side
  if (ch.kind === "pub") {
    counters[ch.name] = bus.subscribe(ch.listen, ch.schema, () => undefined, { maxBytes: ch.maxBytes }).counters;
  } else {
    counters[ch.name] = bus.serve(ch.listen, ch.schema, ch.reply!, () => ch.replySample, { maxBytes: ch.maxBytes }).counters;
  }
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
