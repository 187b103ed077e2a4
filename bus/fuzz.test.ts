// Fuzz: random and mutated messages on every subject a ferry receiver listens to, and as replies to
// the broker's RPCs, with the real proto/bus schemas and limits. The receiver is a separate process
// (bus/fuzz/receiver.ts) that listens and asks through bus/ferry.ts exactly as the broker and agent
// do. It must stay up, and every message must be either accepted as valid or dropped with a log
// line: accepted + dropped == sent per channel, accepted == the number of valid messages sent, one
// "bus dropped message" log line per drop. RPC requests are answered with a valid reply, or
// (invalid ones) an RpcError BadRequest. On the reply path each of the broker's requestRpc calls
// resolves with the reply exactly when it is valid (and names the cluster asked), else fails with
// invalid-reply (remote-error for error replies) after one drop line. Every channel also gets
// messages just over its limit, up to 8 MiB (the server allows 16 MiB here so they arrive).
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { createInterface, type Interface } from "node:readline";
import { fileURLToPath } from "node:url";
import { headers as natsHeaders, type Subscription } from "@nats-io/transport-node";
import { MESSAGES, NATS_MAX_PAYLOAD, RPC_VERBS } from "../proto/bus/index.js";
import { connectBus, ERROR_CODE_HEADER, startNats, type Bus, type BusCounters, type NatsHarness } from "./index.js";
import { CHANNELS, REPLY_CHANNELS, REPLY_CLUSTER, REPLY_DEADLINE_BASE, validPool } from "./fuzz/contract.js";
import { expectedVerdict, generatePayloads, type Payload, type Verdict } from "./fuzz/generate.js";
import { captureLogs, waitFor } from "./test-support.js";

const PER_CHANNEL = 1000; // 8 receiving channels (4 reports, tasks, 3 RPCs) + 3 reply paths → 11,000 messages
const SEED = 20261121;

let h: NatsHarness;
let broker: Bus;
let agent: Bus;
/** The fuzzer as cluster REPLY_CLUSTER's agent, answering the receiver's requests. */
let replier: Bus;
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
  // Twice ferry's largest limit, so that messages just over the 8 MiB limits reach the receiver.
  h = await startNats({ maxPayload: 2 * NATS_MAX_PAYLOAD });
  const [brokerCreds, agentCreds, replierCreds] = await Promise.all([h.brokerCredentials(), h.agentCredentials("a"), h.agentCredentials(REPLY_CLUSTER)]);
  const quiet = captureLogs("warn").logger;
  // Senders: the fuzzer publishes raw bytes with the same users as the real parties.
  [broker, agent, replier] = await Promise.all([
    connectBus({ ...brokerCreds, name: "fuzz-broker", logger: quiet }),
    connectBus({ ...agentCreds, name: "fuzz-agent", logger: quiet }),
    connectBus({ ...replierCreds, name: "fuzz-replier", logger: quiet }),
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
  await Promise.all([broker?.close(), agent?.close(), replier?.close()]);
  await h?.stop();
});

describe("fuzzing every subject a receiver listens to, and the replies to the broker's requests", () => {
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

    // The reply path: the receiver asks (requestRpc, as the broker); the fuzzer, as agent
    // REPLY_CLUSTER, answers request i (found by its deadline) with payload i.
    const replyMismatches: string[] = [];
    for (const [j, ch] of REPLY_CHANNELS.entries()) {
      const verb = RPC_VERBS[j]!;
      const pool = validPool(ch.messageKind, 40, SEED + 100 + j, REPLY_CLUSTER);
      expect(pool.length, `${ch.name} valid pool`).toBeGreaterThan(10);
      const payloads = generatePayloads(ch, pool, PER_CHANNEL, SEED + 100 + j);
      const tally: Record<Verdict, number> = { accepted: 0, oversize: 0, "not-json": 0, invalid: 0, rejected: 0 };
      const want = payloads.map((p) => {
        const verdict = expectedVerdict(ch, p.bytes);
        tally[verdict]++;
        if (verdict === "accepted") return `ok:${(JSON.parse(new TextDecoder().decode(p.bytes)) as { kind: string }).kind}`;
        return p.errorCode ? "remote-error" : "invalid-reply";
      });
      expected[ch.name] = tally;
      sent[ch.name] = payloads.length;
      total += payloads.length;
      const responder: Subscription = replier.nc.subscribe(ch.subject, {
        callback: (_e, m) => {
          const p: Payload = payloads[Date.parse(m.json<{ deadline: string }>().deadline) - REPLY_DEADLINE_BASE]!;
          const headers = p.errorCode ? natsHeaders() : undefined;
          headers?.set(ERROR_CODE_HEADER, p.errorCode!);
          m.respond(p.bytes, headers ? { headers } : undefined);
        },
      });
      await replier.flush();
      const { outcomes } = (await ask(`ask ${verb} ${payloads.length}`)) as { outcomes: string[] };
      responder.unsubscribe();
      payloads.forEach((p, i) => {
        if (outcomes[i] !== want[i]) replyMismatches.push(`${ch.name} #${i} ${p.how}: expected ${want[i]}, got ${outcomes[i]}`);
      });
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
    expect(replyMismatches.slice(0, 20)).toEqual([]);

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
    // Replies: one drop line per refused reply, with the reason the rules give.
    for (const ch of REPLY_CHANNELS) {
      const e = expected[ch.name]!;
      const lines = dropLines.filter((l) => l.subject === ch.subject);
      const byReason = (r: Verdict) => lines.filter((l) => l.reason === r).length;
      expect({ oversize: byReason("oversize"), "not-json": byReason("not-json"), invalid: byReason("invalid"), rejected: byReason("rejected") }, `${ch.name} drop lines`).toEqual({
        oversize: e.oversize,
        "not-json": e["not-json"],
        invalid: e.invalid,
        rejected: e.rejected,
      });
      accepted += e.accepted;
      dropped += lines.length;
    }
    expect(accepted + dropped).toBe(total);
    expect(dropLines).toHaveLength(dropped);
    // The mix really exercised both paths and every drop reason.
    expect(accepted).toBeGreaterThan(total * 0.1);
    const reasons = new Set(dropLines.map((l) => l.reason));
    expect([...reasons].sort()).toEqual(["invalid", "not-json", "oversize", "rejected"]);
    // Still alive and answering after all of it.
    expect(((await ask("report")) as { rssBytes: number }).rssBytes).toBeGreaterThan(0);
    console.log(`fuzz: sent ${total}, accepted ${accepted}, dropped ${dropped} (${JSON.stringify(Object.fromEntries([...CHANNELS, ...REPLY_CHANNELS].map((ch) => [ch.name, expected[ch.name]])))})`);
  }, 180_000);
});
