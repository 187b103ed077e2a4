// Fuzz: ≥ 10,000 random and mutated messages on every subject a ferry receiver listens to, with the
// real proto/bus schemas and limits. The receiver is a separate process (bus/fuzz/receiver.ts) that
// listens through bus/ferry.ts exactly as the broker and agent do. It must stay up, and every
// message must be either accepted as valid or dropped with a log line: accepted + dropped == sent
// per channel, accepted == the number of valid messages sent, one "bus dropped message" log line per
// drop. RPC requests are answered with a valid reply, or (invalid ones) an RpcError BadRequest.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { MESSAGES } from "../proto/bus/index.js";
import { connectBus, ERROR_CODE_HEADER, startNats, type Bus, type BusCounters, type NatsHarness } from "./index.js";
import { CHANNELS, validPool } from "./fuzz/contract.js";
import { expectedVerdict, generatePayloads, type Verdict } from "./fuzz/generate.js";
import { captureLogs, waitFor } from "./test-support.js";

const PER_CHANNEL = 1300; // 8 channels (4 reports, tasks, 3 RPCs) → 10,400 messages
const SEED = 20261121;

let h: NatsHarness;
let broker: Bus;
let agent: Bus;
let child: ChildProcessWithoutNullStreams;
let lines: Interface;
let logPath: string;
const pending: ((line: string) => void)[] = [];

async function ask(cmd: string): Promise<Record<string, unknown>> {
  const reply = new Promise<string>((r) => pending.push(r));
  child.stdin.write(cmd + "\n");
  return JSON.parse(await reply) as Record<string, unknown>;
}

beforeAll(async () => {
  h = await startNats();
  const [brokerCreds, agentCreds] = await Promise.all([h.brokerCredentials(), h.agentCredentials("a")]);
  const quiet = captureLogs("warn").logger;
  // Senders: the fuzzer publishes raw bytes with the same users as the real parties.
  [broker, agent] = await Promise.all([
    connectBus({ ...brokerCreds, name: "fuzz-broker", logger: quiet }),
    connectBus({ ...agentCreds, name: "fuzz-agent", logger: quiet }),
  ]);
  logPath = join(h.tempDir, "receiver.log");
  const log = openSync(logPath, "w");
  const receiver = fileURLToPath(new URL("./fuzz/receiver.ts", import.meta.url));
  child = spawn(process.execPath, ["--import", "tsx", receiver], {
    env: { ...process.env, FUZZ_CREDS: JSON.stringify({ broker: brokerCreds, agent: agentCreds }) },
    stdio: ["pipe", "pipe", log],
  }) as unknown as ChildProcessWithoutNullStreams;
  closeSync(log);
  lines = createInterface({ input: child.stdout });
  let onExit: ((code: number | null) => void) | undefined;
  const ready = new Promise<void>((resolve, reject) => {
    onExit = (code) => reject(new Error(`receiver exited with ${code} before it was ready:\n${readFileSync(logPath, "utf8").slice(-2000)}`));
    child.once("exit", onExit);
    lines.on("line", (line) => {
      if (line.includes('"ready"')) resolve();
      else pending.shift()?.(line);
    });
  });
  await ready;
  child.off("exit", onExit!);
}, 60_000);

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.stdin.write("exit\n");
    await Promise.race([new Promise((r) => child.once("exit", r)), new Promise((r) => setTimeout(r, 3000))]);
    if (child.exitCode === null) child.kill("SIGKILL");
  }
  await Promise.all([broker?.close(), agent?.close()]);
  await h?.stop();
});

describe("fuzzing every subject a receiver listens to", () => {
  it("accepts exactly the valid messages, drops and logs every other one, and stays up", async () => {
    const sent: Record<string, number> = {};
    const expected: Record<string, Record<Verdict, number>> = {};
    const rpcMismatches: string[] = [];
    let total = 0;

    for (const [i, ch] of CHANNELS.entries()) {
      const pool = validPool(ch.messageKind, 40, SEED + i);
      expect(pool.length, `${ch.name} valid pool`).toBeGreaterThan(10);
      const payloads = generatePayloads(ch, pool, PER_CHANNEL, SEED + i);
      const tally: Record<Verdict, number> = { accepted: 0, oversize: 0, "not-json": 0, invalid: 0, rejected: 0 };
      for (const p of payloads) tally[expectedVerdict(ch, p.bytes)]++;
      expected[ch.name] = tally;
      sent[ch.name] = payloads.length;
      total += payloads.length;
      const sender = ch.from === "agent" ? agent : broker;

      if (ch.kind === "pub") {
        for (const [n, p] of payloads.entries()) {
          sender.nc.publish(ch.subject, p.bytes);
          if (n % 250 === 249) await sender.flush();
        }
        await sender.flush();
      } else {
        const replySchema = MESSAGES[ch.replyKind!];
        for (let start = 0; start < payloads.length; start += 100) {
          await Promise.all(
            payloads.slice(start, start + 100).map(async (p) => {
              const verdict = expectedVerdict(ch, p.bytes);
              const reply = await sender.nc.request(ch.subject, p.bytes, { timeout: 10_000 });
              const code = reply.headers?.get(ERROR_CODE_HEADER);
              const body = replySchema.safeParse(reply.json());
              const ok =
                verdict === "accepted"
                  ? !code && body.success && (body.data as { kind: string }).kind !== "RpcError"
                  : code === "bad-request" && body.success && (body.data as { kind: string; code?: string }).code === "BadRequest";
              if (!ok) rpcMismatches.push(`${ch.name} ${p.how} → verdict ${verdict}, reply code ${code ?? "(none)"}`);
            }),
          );
        }
      }
    }
    expect(total).toBeGreaterThanOrEqual(10_000);

    // Wait until the receiver has decided on every message.
    const report = await waitFor(
      async () => {
        const r = (await ask("report")) as { counters: Record<string, BusCounters> };
        return CHANNELS.every((ch) => r.counters[ch.name]!.accepted + r.counters[ch.name]!.dropped === sent[ch.name]) ? r : undefined;
      },
      "receiver to account for every message",
      60_000,
    );
    expect(child.exitCode).toBeNull();
    expect(rpcMismatches).toEqual([]);

    const logLines = readFileSync(logPath, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { msg?: string; subject?: string; reason?: string });
    const dropLines = logLines.filter((l) => l.msg === "bus dropped message");

    let accepted = 0;
    let dropped = 0;
    for (const ch of CHANNELS) {
      const c = report.counters[ch.name]!;
      const e = expected[ch.name]!;
      expect(c.accepted + c.dropped, ch.name).toBe(sent[ch.name]);
      expect(c.accepted, `${ch.name} accepted`).toBe(e.accepted);
      expect(c.droppedBy, `${ch.name} drop reasons`).toMatchObject({ oversize: e.oversize, "not-json": e["not-json"], invalid: e.invalid, rejected: e.rejected });
      expect(dropLines.filter((l) => l.subject === ch.subject).length, `${ch.name} drop log lines`).toBe(c.dropped);
      accepted += c.accepted;
      dropped += c.dropped;
    }
    expect(accepted + dropped).toBe(total);
    expect(dropLines).toHaveLength(dropped);
    // The mix really exercised both paths and every drop reason.
    expect(accepted).toBeGreaterThan(total * 0.1);
    const reasons = new Set(dropLines.map((l) => l.reason));
    expect([...reasons].sort()).toEqual(["invalid", "not-json", "oversize", "rejected"]);
    // Still alive and answering after all of it.
    expect(((await ask("report")) as { rssBytes: number }).rssBytes).toBeGreaterThan(0);
    console.log(`fuzz: sent ${total}, accepted ${accepted}, dropped ${dropped} (${JSON.stringify(Object.fromEntries(CHANNELS.map((ch) => [ch.name, expected[ch.name]])))})`);
  }, 180_000);
});
