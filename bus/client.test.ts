// The typed bus client against a real nats-server: validation on send, drop-and-log on receipt,
// request/reply with error replies, counters, reconnect after a server restart, credential renewal.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { headers } from "@nats-io/transport-node";
import { X509Certificate } from "node:crypto";
import { z } from "zod";
import {
  BusHandlerError,
  BusRequestError,
  BusValidationError,
  connectBus,
  startNats,
  type Bus,
  type BusCredentials,
  type NatsHarness,
} from "./index.js";
import { captureLogs, waitFor } from "./test-support.js";
import { issueClientCertificate } from "../pki/index.js";

const Status = z.object({
  cluster: z.string().min(1),
  generation: z.number().int().nonnegative(),
  vms: z.array(z.object({ name: z.string(), phase: z.enum(["Running", "Stopped"]) })),
});
type Status = z.infer<typeof Status>;
const Stamp = z.object({ at: z.codec(z.iso.datetime(), z.date(), { decode: (s) => new Date(s), encode: (d) => d.toISOString() }) });
const Req = z.object({ vm: z.string() });
const Rep = z.object({ ok: z.boolean() });

const logs = captureLogs();
let h: NatsHarness;
let broker: Bus;
let agent: Bus;
let agentCreds: BusCredentials & { user: { publicKey: string } };
const valid: Status = { cluster: "a", generation: 1, vms: [{ name: "vm1", phase: "Running" }] };

beforeAll(async () => {
  h = await startNats();
  agentCreds = await h.agentCredentials("a");
  [broker, agent] = await Promise.all([
    h.brokerCredentials().then((c) => connectBus({ ...c, logger: logs.logger, maxMessageBytes: 4096 })),
    connectBus({ ...agentCreds, logger: logs.logger, reconnect: { initialMs: 50, maxMs: 500 } }),
  ]);
});

afterAll(async () => {
  await Promise.all([broker?.close(), agent?.close()]);
  await h?.stop();
});

describe("publish", () => {
  it("refuses a value that does not match its schema, naming the path", () => {
    const bad = { ...valid, vms: [{ name: "vm1", phase: "Paused" }] } as unknown as Status;
    let err: unknown;
    try {
      agent.publish("ferry.v1.broker.a.status", Status, bad);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(BusValidationError);
    expect((err as BusValidationError).issues[0]?.path).toBe("vms.0.phase");
    expect((err as Error).message).toMatch(/refusing to send an invalid message on ferry\.v1\.broker\.a\.status: vms\.0\.phase/);
  });

  it("refuses a message above the size limit", () => {
    const big = { ...valid, vms: Array.from({ length: 200 }, (_, i) => ({ name: `vm-${i}-${"x".repeat(20)}`, phase: "Running" as const })) };
    expect(() => broker.publish("ferry.v1.agent.a.tasks", Status, big)).toThrow(/bytes, above the limit of 4096/);
  });

  it("encodes codecs (Date ↔ ISO string) and strips unknown keys", async () => {
    const got: unknown[] = [];
    const raw: string[] = [];
    broker.subscribe("ferry.v1.broker.a.stamp", Stamp, (m) => void got.push(m.data.at));
    broker.nc.subscribe("ferry.v1.broker.a.stamp", { callback: (_e, m) => void raw.push(m.string()) });
    await broker.flush();
    agent.publish("ferry.v1.broker.a.stamp", Stamp, { at: new Date(0), extra: 1 } as { at: Date });
    await waitFor(() => got.length === 1 && raw.length === 1, "stamp");
    expect(got[0]).toEqual(new Date(0));
    expect(raw[0]).toBe('{"at":"1970-01-01T00:00:00.000Z"}');
  });
});

describe("subscribe", () => {
  it("delivers valid messages and drops oversized, non-JSON, non-UTF-8 and invalid ones with a log line", async () => {
    const got: Status[] = [];
    const sub = broker.subscribe("ferry.v1.broker.*.status", Status, (m) => void got.push(m.data));
    await broker.flush();
    const before = logs.count("bus dropped message");
    const subject = "ferry.v1.broker.a.status";
    agent.nc.publish(subject, "not json{");
    agent.nc.publish(subject, new Uint8Array([0x22, 0xff, 0xfe, 0x22])); // "\xff\xfe" is not UTF-8
    agent.nc.publish(subject, JSON.stringify({ ...valid, generation: -1 }));
    agent.nc.publish(subject, JSON.stringify({ ...valid, vms: [{ name: 1, phase: "Running" }] }));
    agent.nc.publish(subject, JSON.stringify({ ...valid, pad: "x".repeat(5000) })); // valid but above 4096 bytes
    agent.nc.publish(subject, "");
    agent.publish(subject, Status, valid);
    await waitFor(() => sub.counters.accepted + sub.counters.dropped === 7, "7 messages handled");
    expect(got).toEqual([valid]);
    expect(sub.counters).toMatchObject({ accepted: 1, dropped: 6, droppedBy: { "not-json": 3, invalid: 2, oversize: 1 } });
    const dropped = logs.lines.filter((l) => l["msg"] === "bus dropped message").slice(before);
    expect(dropped).toHaveLength(6);
    expect(dropped.every((l) => l["subject"] === subject)).toBe(true);
    expect(dropped.map((l) => l["reason"])).toEqual(["not-json", "not-json", "invalid", "invalid", "oversize", "not-json"]);
    expect((dropped[2]!["issues"] as { path: string }[])[0]!.path).toBe("generation");
    expect((dropped[3]!["issues"] as { path: string }[])[0]!.path).toBe("vms.0.name");
    sub.unsubscribe();
  });

  it("applies a per-subscription size limit and an extra check (payload cluster = subject cluster)", async () => {
    const got: string[] = [];
    const sub = broker.subscribe("ferry.v1.broker.*.hello", Status, (m) => void got.push(m.data.cluster), {
      maxBytes: 200,
      check: (v, subject) => (v.cluster === subject.split(".")[3] ? undefined : `payload claims cluster ${v.cluster}`),
    });
    await broker.flush();
    agent.publish("ferry.v1.broker.a.hello", Status, { ...valid, cluster: "b" }); // agent a pretending to be b
    agent.publish("ferry.v1.broker.a.hello", Status, { ...valid, vms: Array.from({ length: 5 }, () => valid.vms[0]!) }); // > 200 bytes
    agent.publish("ferry.v1.broker.a.hello", Status, valid);
    await waitFor(() => sub.counters.accepted + sub.counters.dropped === 3, "3 hellos");
    expect(got).toEqual(["a"]);
    expect(sub.counters.droppedBy).toMatchObject({ rejected: 1, oversize: 1 });
    expect(logs.lines.some((l) => l["reason"] === "rejected" && l["detail"] === "payload claims cluster b")).toBe(true);
    sub.unsubscribe();
  });

  it("keeps handling after a handler throws, and counts the failure", async () => {
    let n = 0;
    const sub = broker.subscribe("ferry.v1.broker.a.heartbeat", Status, (m) => {
      n++;
      if (m.data.generation === 1) throw new Error("boom");
    });
    await broker.flush();
    agent.publish("ferry.v1.broker.a.heartbeat", Status, valid);
    agent.publish("ferry.v1.broker.a.heartbeat", Status, { ...valid, generation: 2 });
    await waitFor(() => n === 2, "both handled");
    expect(sub.counters.handlerErrors).toBe(1);
    expect(logs.lines.some((l) => l["msg"] === "bus handler failed" && l["err"] === "boom")).toBe(true);
    sub.unsubscribe();
  });

  it("as an async iterator yields only valid messages", async () => {
    const sub = agent.subscribe("ferry.v1.agent.a.tasks", Status);
    await agent.flush();
    broker.nc.publish("ferry.v1.agent.a.tasks", "garbage");
    broker.publish("ferry.v1.agent.a.tasks", Status, { ...valid, generation: 5 });
    const seen: number[] = [];
    for await (const m of sub) {
      seen.push(m.data.generation);
      break;
    }
    expect(seen).toEqual([5]);
    expect(sub.counters.dropped).toBe(1);
  });
});

describe("request / serve", () => {
  beforeAll(async () => {
    agent.serve("ferry.v1.agent.a.rpc.check", Req, Rep, (req) => {
      if (req.vm === "missing") throw new BusHandlerError("not-found", `vm ${req.vm} not found`);
      if (req.vm === "crash") throw new Error("unexpected\nfailure");
      if (req.vm === "bad-reply") return { ok: "yes" } as unknown as { ok: boolean };
      return { ok: true };
    });
    await agent.flush();
  });

  async function failure(p: Promise<unknown>): Promise<BusRequestError> {
    const e = await p.then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toBeInstanceOf(BusRequestError);
    return e as BusRequestError;
  }

  it("returns the parsed reply", async () => {
    await expect(broker.request("ferry.v1.agent.a.rpc.check", Req, { vm: "vm1" }, Rep)).resolves.toEqual({ ok: true });
  });

  it("turns handler exceptions into error replies", async () => {
    const nf = await failure(broker.request("ferry.v1.agent.a.rpc.check", Req, { vm: "missing" }, Rep));
    expect(nf).toMatchObject({ reason: "remote-error", remoteCode: "not-found" });
    expect(nf.message).toContain("vm missing not found");
    const crash = await failure(broker.request("ferry.v1.agent.a.rpc.check", Req, { vm: "crash" }, Rep));
    expect(crash).toMatchObject({ reason: "remote-error", remoteCode: "internal" });
    expect(crash.message).toContain("unexpected failure");
    const bad = await failure(broker.request("ferry.v1.agent.a.rpc.check", Req, { vm: "bad-reply" }, Rep));
    expect(bad).toMatchObject({ reason: "remote-error", remoteCode: "internal" });
    expect(bad.message).toMatch(/invalid reply: .*ok/);
  });

  it("answers an invalid request with bad-request naming the path", async () => {
    const reply = await broker.nc.request("ferry.v1.agent.a.rpc.check", JSON.stringify({ vm: 42 }), { timeout: 2000 });
    expect(reply.headers?.get("Ferry-Error-Code")).toBe("bad-request");
    expect(reply.headers?.get("Ferry-Error")).toMatch(/^invalid: vm: /);
    const raw = await broker.nc.request("ferry.v1.agent.a.rpc.check", "{{", { timeout: 2000 });
    expect(raw.json()).toMatchObject({ error: { code: "bad-request" } });
  });

  it("drops a request without a reply subject", async () => {
    const before = agent.counters.droppedBy["no-reply-subject"];
    broker.nc.publish("ferry.v1.agent.a.rpc.check", JSON.stringify({ vm: "x" }));
    await broker.flush();
    await waitFor(() => agent.counters.droppedBy["no-reply-subject"] === before + 1, "no-reply drop");
  });

  it("reports no responders, timeouts and invalid replies as typed errors", async () => {
    expect(await failure(broker.request("ferry.v1.agent.a.rpc.nobody", Req, { vm: "x" }, Rep))).toMatchObject({ reason: "no-responders" });
    const silent = agent.nc.subscribe("ferry.v1.agent.a.rpc.silent", { callback: () => undefined });
    const liar = agent.nc.subscribe("ferry.v1.agent.a.rpc.liar", { callback: (_e, m) => void m.respond(JSON.stringify({ ok: "maybe" })) });
    await agent.flush();
    expect(await failure(broker.request("ferry.v1.agent.a.rpc.silent", Req, { vm: "x" }, Rep, { timeoutMs: 200 }))).toMatchObject({
      reason: "timeout",
    });
    const liarErr = await failure(broker.request("ferry.v1.agent.a.rpc.liar", Req, { vm: "x" }, Rep));
    expect(liarErr.reason).toBe("invalid-reply");
    expect(liarErr.message).toMatch(/ok:/);
    silent.unsubscribe();
    liar.unsubscribe();
  });

  it("passes headers through to the handler", async () => {
    let seen: string | undefined;
    agent.serve("ferry.v1.agent.a.rpc.hdr", Req, Rep, (_req, ctx) => {
      seen = ctx.headers?.get("Ferry-Trace");
      return { ok: true };
    });
    await agent.flush();
    const h1 = headers();
    h1.set("Ferry-Trace", "t-1");
    await broker.request("ferry.v1.agent.a.rpc.hdr", Req, { vm: "x" }, Rep, { headers: h1 });
    expect(seen).toBe("t-1");
  });
});

describe("connection", () => {
  it("reconnects after the server restarts and keeps its subscriptions", async () => {
    const got: number[] = [];
    broker.subscribe("ferry.v1.broker.a.inventory", Status, (m) => void got.push(m.data.generation));
    await broker.flush();
    const reconnectsBefore = logs.count("bus reconnected");
    await h.nodes[0]!.restart();
    await waitFor(() => logs.count("bus reconnected") >= reconnectsBefore + 2, "both clients reconnected", 20_000);
    expect(logs.count("bus disconnected")).toBeGreaterThanOrEqual(2);
    await broker.flush();
    agent.publish("ferry.v1.broker.a.inventory", Status, { ...valid, generation: 9 });
    await waitFor(() => got.includes(9), "message after reconnect");
  });

  it("renews its credentials (new certificate and JWT) and reconnects with them", async () => {
    const renewedCert = await issueClientCertificate(h.ca, { role: "agent", cluster: "a" });
    const renewedUser = await h.agentCredentials("a", { userPublicKey: agentCreds.user.publicKey, expiresAt: new Date(Date.now() + 7 * 864e5) });
    agent.updateCredentials({ jwt: renewedUser.jwt, cert: renewedCert.certPem, key: renewedCert.keyPem });
    const before = logs.count("bus reconnected");
    await agent.reconnect();
    await waitFor(() => logs.count("bus reconnected") > before, "agent reconnected");
    await expect(broker.request("ferry.v1.agent.a.rpc.check", Req, { vm: "vm1" }, Rep)).resolves.toEqual({ ok: true });
    // The server sees the new JWT and the new certificate on the agent's connection.
    const res = await fetch(`${h.nodes[0]!.monitorUrl}/connz?auth=true&limit=1000`);
    const conns = ((await res.json()) as { connections: { name?: string; jwt?: string; tls_peer_certs?: { cert_sha256?: string }[] }[] }).connections;
    const mine = conns.filter((c) => c.name === "agent-a");
    expect(mine).toHaveLength(1);
    expect(mine[0]!.jwt).toBe(renewedUser.jwt);
    const sha = new X509Certificate(renewedCert.certPem).fingerprint256.replace(/:/g, "").toLowerCase();
    expect(mine[0]!.tls_peer_certs?.[0]?.cert_sha256).toBe(sha);
  });
});
