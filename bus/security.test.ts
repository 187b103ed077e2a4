// Security of the bus against a real nats-server: per-cluster isolation, no JetStream/KV for
// agents, mutual TLS, JWT expiry and revocation, adding clusters without a restart.
// Assertions are on what the server answers (permission violations, auth errors, TLS alerts,
// server log lines), not only on messages not arriving.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { connect, jwtAuthenticator, AuthorizationError, PermissionViolationError, UserAuthenticationExpiredError } from "@nats-io/transport-node";
import { jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { decode } from "@nats-io/jwt";
import { readFileSync } from "node:fs";
import { Socket } from "node:net";
import { z } from "zod";
import { KV_BUCKETS } from "../proto/bus/subjects.js";
import { certInfo, createCa, issueClientCertificate, verifyChain } from "../pki/index.js";
import {
  clusterOfAgentSubject,
  connectBus,
  createBusAuthority,
  encodeFerryAccount,
  ensureEventsStream,
  mintAgentUser,
  pushAccountJwt,
  revokeUsers,
  startNats,
  typedKv,
  BusRequestError,
  EVENTS_STREAM,
  type Bus,
  type BusCredentials,
  type NatsHarness,
  type TypedKv,
} from "./index.js";
import { captureLogs, serverErrors, waitFor } from "./test-support.js";

const Any = z.unknown();
const Status = z.object({ cluster: z.string(), generation: z.number().int() });
const Tasks = z.object({ generation: z.number().int(), tasks: z.array(z.string()) });
const Preflight = z.object({ vm: z.string() });
const PreflightReply = z.object({ ok: z.boolean(), problems: z.array(z.string()) });
const State = z.object({ v: z.number() });

const te = new TextEncoder();
const logs = captureLogs();
let h: NatsHarness;
let broker: Bus;
let agentA: Bus;
let credsA: BusCredentials & { user: { publicKey: string } };
const BUCKETS = Object.values(KV_BUCKETS);
const kvs = new Map<string, TypedKv<typeof State>>();
let serverPid: number | undefined;
const buses: Bus[] = [];

async function join(creds: BusCredentials): Promise<Bus> {
  const bus = await connectBus({ ...creds, logger: logs.logger, waitOnFirstConnect: false });
  buses.push(bus);
  return bus;
}

/** Raw connect (no reconnect) that returns the error instead of throwing. */
async function connectError(opts: Parameters<typeof connect>[0]): Promise<Error> {
  try {
    const nc = await connect({ servers: h.urls, reconnect: false, timeout: 5000, ...opts });
    await nc.close();
  } catch (e) {
    return e as Error;
  }
  throw new Error("connection unexpectedly succeeded");
}

/** Names of the connections the server currently has (monitoring /connz). */
async function connectionNames(): Promise<string[]> {
  const res = await fetch(`${h.nodes[0]!.monitorUrl}/connz?limit=1000`);
  const body = (await res.json()) as { connections?: { name?: string }[] };
  return (body.connections ?? []).map((c) => c.name ?? "");
}

function serverLog(): string {
  return readFileSync(h.nodes[0]!.logPath, "utf8");
}

beforeAll(async () => {
  h = await startNats();
  serverPid = h.nodes[0]!.pid;
  credsA = await h.agentCredentials("a");
  [broker, agentA] = await Promise.all([h.brokerCredentials().then(join), join(credsA)]);
  // The broker's real buckets (KV_BUCKETS), as it creates them; the values need not be its records.
  for (const bucket of BUCKETS) {
    const kv = await typedKv(broker, bucket, State);
    await kv.put("k.x", { v: 1 });
    kvs.set(bucket, kv);
  }
  await ensureEventsStream(broker);
});

afterAll(async () => {
  await Promise.all(buses.map((b) => b.close()));
  await h?.stop();
});

describe("agent A's legitimate traffic", () => {
  it("publishes its status; the broker reads the cluster from the subject", async () => {
    const got: { subject: string; cluster: string | undefined; generation: number }[] = [];
    const sub = broker.subscribe("ferry.v1.broker.*.status", Status, (m) => {
      got.push({ subject: m.subject, cluster: clusterOfAgentSubject(m.subject), generation: m.data.generation });
    });
    await broker.flush();
    agentA.publish("ferry.v1.broker.a.status", Status, { cluster: "a", generation: 7 });
    await waitFor(() => got.length === 1, "status at broker");
    expect(got).toEqual([{ subject: "ferry.v1.broker.a.status", cluster: "a", generation: 7 }]);
    sub.unsubscribe();
  });

  it("receives its tasks", async () => {
    const got: z.infer<typeof Tasks>[] = [];
    agentA.subscribe("ferry.v1.agent.a.tasks", Tasks, (m) => void got.push(m.data));
    await agentA.flush();
    broker.publish("ferry.v1.agent.a.tasks", Tasks, { generation: 3, tasks: ["vm-1"] });
    await waitFor(() => got.length === 1, "tasks at agent a");
    expect(got[0]).toEqual({ generation: 3, tasks: ["vm-1"] });
  });

  it("answers a broker request (reply permission) and makes its own requests through _INBOX_a", async () => {
    agentA.serve("ferry.v1.agent.a.rpc.preflight", Preflight, PreflightReply, (req) => ({ ok: req.vm !== "bad", problems: [] }));
    await agentA.flush();
    await expect(broker.request("ferry.v1.agent.a.rpc.preflight", Preflight, { vm: "vm-1" }, PreflightReply)).resolves.toEqual({
      ok: true,
      problems: [],
    });

    broker.serve("ferry.v1.broker.*.rpc.echo", Preflight, Preflight, (req, ctx) => ({ vm: `${clusterOfAgentSubject(ctx.subject)}:${req.vm}` }));
    await broker.flush();
    await expect(agentA.request("ferry.v1.broker.a.rpc.echo", Preflight, { vm: "x" }, Preflight)).resolves.toEqual({ vm: "a:x" });
  });

  it("cannot make requests without its inbox prefix (the default _INBOX is not its own)", async () => {
    const noPrefix = await join({ ...credsA, inboxPrefix: undefined, name: "agent-a-noprefix" });
    const errs = serverErrors(noPrefix.nc);
    const e = await noPrefix.request("ferry.v1.broker.a.rpc.echo", Preflight, { vm: "x" }, Preflight, { timeoutMs: 2000 }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BusRequestError);
    expect((e as BusRequestError).reason).toBe("permission-denied");
    const pv = await waitFor(() => errs.find((x) => x instanceof PermissionViolationError), "permission error");
    expect(pv.message).toMatch(/^Permissions Violation for Subscription to "_INBOX\.[^"]+\.\*"$/);
  });
});

describe("cluster isolation", () => {
  it("agent A cannot subscribe to cluster B's subjects, the broker's inbound subjects, other inboxes or events", async () => {
    for (const subject of ["ferry.v1.agent.b.>", "ferry.v1.agent.b.tasks", "ferry.v1.agent.*.tasks", "ferry.v1.broker.>", "ferry.v1.>", ">", "_INBOX.>", "_INBOX_b.>", "ferry.v1.events.>"]) {
      const sub = agentA.subscribe(subject, Any, () => undefined);
      const err = await sub.closed;
      expect(err, subject).toBeInstanceOf(PermissionViolationError);
      expect(err!.message).toBe(`Permissions Violation for Subscription to "${subject}"`);
    }
  });

  it("agent A cannot publish as cluster B, as the broker, on events or to the broker's inboxes", async () => {
    const errs = serverErrors(agentA.nc);
    const seen: string[] = [];
    const spy = broker.subscribe("ferry.v1.>", Any, (m) => void seen.push(m.subject));
    const inboxSpy = broker.nc.subscribe("_INBOX.spoof", { callback: (_e, m) => void seen.push(m.subject) });
    await broker.flush();
    const forbidden = ["ferry.v1.broker.b.status", "ferry.v1.agent.a.tasks", "ferry.v1.agent.b.tasks", "ferry.v1.events.p1.m1", "_INBOX.spoof"];
    for (const subject of forbidden) agentA.publish(subject, Any, { spoof: true });
    await agentA.flush();
    for (const subject of forbidden) {
      const e = await waitFor(
        () => errs.find((x) => x instanceof PermissionViolationError && x.operation === "publish" && x.subject === subject),
        `publish violation for ${subject}`,
      );
      expect(e.message).toBe(`Permissions Violation for Publish to "${subject}"`);
    }
    await broker.flush();
    expect(seen).toEqual([]);
    spy.unsubscribe();
    inboxSpy.unsubscribe();
  });

  it("agent A cannot read or write any of the broker's KV buckets or the events stream", async () => {
    const errs = serverErrors(agentA.nc);
    await expect(jetstreamManager(agentA.nc)).rejects.toThrow('Permissions Violation for Publish to "$JS.API.INFO"');
    await expect(jetstreamManager(agentA.nc, { checkAPI: false }).then((jsm) => jsm.streams.info(EVENTS_STREAM))).rejects.toThrow(
      `Permissions Violation for Publish to "$JS.API.STREAM.INFO.${EVENTS_STREAM}"`,
    );
    expect(BUCKETS).toContain("ferry_plans");
    for (const bucket of BUCKETS) {
      const stream = `KV_${bucket}`;
      // Kvm.open() does not call the server; every operation on the handle does, and is refused.
      const stolen = await new Kvm(agentA.nc).open(bucket);
      await expect(stolen.get("k.x"), bucket).rejects.toThrow(new RegExp(`Permissions Violation for Publish to "\\$JS\\.API\\.(DIRECT\\.GET|STREAM\\.MSG\\.GET)\\.${stream}`));
      await expect(stolen.put("k.x", JSON.stringify({ v: 666 }))).rejects.toThrow(`Permissions Violation for Publish to "$KV.${bucket}.k.x"`);
      await expect(stolen.status()).rejects.toThrow(`Permissions Violation for Publish to "$JS.API.STREAM.INFO.${stream}"`);
      await expect(agentA.nc.request(`$JS.API.DIRECT.GET.${stream}.$KV.${bucket}.k.x`, "", { timeout: 2000 })).rejects.toThrow(
        `Permissions Violation for Publish to "$JS.API.DIRECT.GET.${stream}.$KV.${bucket}.k.x"`,
      );
      // Direct writes into the bucket's subjects, and watching them
      agentA.nc.publish(`$KV.${bucket}.k.x`, JSON.stringify({ v: 666 }));
      const sub = agentA.nc.subscribe(`$KV.${bucket}.>`);
      await agentA.flush();
      await waitFor(() => errs.find((e) => e.message === `Permissions Violation for Publish to "$KV.${bucket}.k.x"`), `KV publish violation on ${bucket}`);
      expect(await sub.closed).toBeInstanceOf(PermissionViolationError);
    }
    const sub2 = agentA.nc.subscribe("$JS.>");
    expect(((await sub2.closed) as Error).message).toBe('Permissions Violation for Subscription to "$JS.>"');
    // and nothing changed
    for (const bucket of BUCKETS) expect((await kvs.get(bucket)!.get("k.x"))?.value, bucket).toEqual({ v: 1 });
    const jsm = await jetstreamManager(broker.nc);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(0);
  });
});

describe("mutual TLS", () => {
  it("refuses a client without a certificate", async () => {
    const e = await connectError({ tls: { ca: h.caPem }, authenticator: jwtAuthenticator(credsA.jwt, te.encode(credsA.seed)) });
    expect(e.message).toMatch(/ECONNRESET|certificate|alert/i);
    await waitFor(() => /TLS handshake error: .*client didn't provide a certificate/.test(serverLog()), "server log: no client certificate");
  });

  it("refuses a certificate from another CA, even with a valid JWT", async () => {
    const other = await createCa({ keyBits: 2048 });
    const cert = await issueClientCertificate(other, { role: "agent", cluster: "a" });
    const e = await connectError({
      tls: { ca: h.caPem, cert: cert.certPem, key: cert.keyPem },
      authenticator: jwtAuthenticator(credsA.jwt, te.encode(credsA.seed)),
    });
    expect(e.message).toMatch(/ECONNRESET|alert bad certificate/);
    await waitFor(() => /TLS handshake error: .*certificate signed by unknown authority/.test(serverLog()), "server log: unknown authority");
  });

  it("refuses an expired certificate from the ferry CA, even with a valid JWT", async () => {
    const tenDaysAgo = new Date(Date.now() - 10 * 24 * 3600 * 1000);
    const cert = await issueClientCertificate(h.ca, { role: "agent", cluster: "a" }, { now: tenDaysAgo, validityDays: 7 });
    expect(certInfo(cert.certPem).notAfter.getTime()).toBeLessThan(Date.now());
    expect(verifyChain(cert.certPem, h.caPem, tenDaysAgo)).toEqual({ ok: true }); // the ferry CA's, only too old
    const e = await connectError({
      tls: { ca: h.caPem, cert: cert.certPem, key: cert.keyPem },
      authenticator: jwtAuthenticator(credsA.jwt, te.encode(credsA.seed)),
    });
    expect(e.message).toMatch(/ECONNRESET|alert certificate expired|bad certificate/);
    await waitFor(() => /TLS handshake error: .*certificate has expired or is not yet valid/.test(serverLog()), "server log: expired certificate");
    // The same JWT with the agent's valid certificate is accepted: the certificate was the reason.
    const nc = await connect({ servers: h.urls, reconnect: false, tls: credsA.tls, authenticator: jwtAuthenticator(credsA.jwt, te.encode(credsA.seed)) });
    await nc.close();
  });

  it("refuses plain TCP (server requires TLS)", async () => {
    const port = Number(new URL(h.urls[0]!.replace("tls:", "http:")).port);
    const sock = new Socket();
    let data = "";
    sock.on("data", (d: Buffer) => {
      data += d.toString();
    });
    await new Promise<void>((r) => sock.connect(port, "127.0.0.1", r));
    await waitFor(() => data.includes("\r\n"), "INFO");
    expect(JSON.parse(data.slice(5, data.indexOf("\r\n")))).toMatchObject({ tls_required: true, tls_verify: true, auth_required: true });
    const closed = new Promise<void>((r) => sock.on("close", () => r()));
    sock.write('CONNECT {"verbose":false}\r\nPING\r\n');
    await closed; // the server hangs up: no PONG, nothing but INFO was ever sent
    expect(data).not.toContain("PONG");
    await waitFor(() => /TLS handshake error: tls: first record does not look like a TLS handshake/.test(serverLog()), "server log: not TLS");
  });
});

describe("JWT authentication", () => {
  it("refuses a valid certificate without a JWT", async () => {
    const e = await connectError({ tls: credsA.tls });
    expect(e).toBeInstanceOf(AuthorizationError);
    expect(e.message).toBe("Authorization Violation");
  });

  it("refuses a user JWT signed by someone else's account key, and a tampered JWT", async () => {
    const rogue = await createBusAuthority();
    const forged = await mintAgentUser(rogue.authority, "a");
    expect(await connectError({ tls: credsA.tls, authenticator: jwtAuthenticator(forged.jwt, te.encode(forged.seed)) })).toBeInstanceOf(
      AuthorizationError,
    );
    // Agent A widens its own permissions in the JWT body: the signature no longer matches.
    const [head, body, sig] = credsA.jwt.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(body, "base64url").toString());
    claims.nats.pub.allow = [">"];
    const tampered = `${head}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${sig}`;
    expect(await connectError({ tls: credsA.tls, authenticator: jwtAuthenticator(tampered, te.encode(credsA.seed)) })).toBeInstanceOf(
      AuthorizationError,
    );
  });

  it("refuses an expired user JWT", async () => {
    const expired = await h.agentCredentials("a", { expiresAt: new Date(Date.now() - 60_000) });
    expect(decode(expired.jwt).exp).toBeLessThan(Date.now() / 1000);
    const e = await connectError({ tls: expired.tls, authenticator: jwtAuthenticator(expired.jwt, te.encode(expired.seed)) });
    expect(e).toBeInstanceOf(AuthorizationError);
    expect(e.message).toBe("Authorization Violation");
  });

  it("disconnects a user whose JWT expires while connected", async () => {
    const soon = await h.agentCredentials("a", { expiresAt: new Date(Date.now() + 2000) });
    const bus = await join(soon);
    const errs = serverErrors(bus.nc);
    const e = await waitFor(() => errs.find((x) => x instanceof UserAuthenticationExpiredError), "User Authentication Expired", 8000);
    expect(e.message).toBe("User Authentication Expired");
  });

  it("revokes a user live (account JWT pushed through $SYS, no restart): its connection is cut and it cannot reconnect", async () => {
    const credsC = await h.agentCredentials("c");
    const c = await join(credsC);
    const errsC = serverErrors(c.nc);
    const sys = await join(await h.systemCredentials());
    const got: string[] = [];
    broker.subscribe("ferry.v1.broker.*.heartbeat", Status, (m) => void got.push(m.subject));
    await broker.flush();
    c.publish("ferry.v1.broker.c.heartbeat", Status, { cluster: "c", generation: 1 });
    await waitFor(() => got.includes("ferry.v1.broker.c.heartbeat"), "c heartbeat");

    const accountJwt = await encodeFerryAccount(h.authority, revokeUsers({}, [credsC.user.publicKey]));
    const result = await pushAccountJwt(sys.nc, accountJwt);
    expect(result).toMatchObject({ account: h.authority.account.publicKey, message: "jwt updated" });

    const e = await waitFor(() => errsC.find((x) => /User Authentication Revoked/i.test(x.message)), "revocation error on c");
    expect(e.message).toMatch(/User Authentication Revoked/i);
    const again = await connectError({ tls: credsC.tls, authenticator: jwtAuthenticator(credsC.jwt, te.encode(credsC.seed)) });
    expect(again).toBeInstanceOf(AuthorizationError);
    expect(again.message).toBe("Authorization Violation");
    await waitFor(async () => !(await connectionNames()).includes("agent-c"), "agent-c gone from the server's connection list");
    // Its own reconnect attempts are refused too, and after two refusals the bus gives up for good
    // (ignoreAuthErrorAbort: false; bus/README.md "Reconnect"): closed() resolves with the error.
    const closedWith = await c.closed();
    expect(closedWith).toBeInstanceOf(AuthorizationError);
    expect(c.nc.isClosed()).toBe(true);

    // The revocation is targeted: agent A keeps working on the same server process.
    expect(await connectionNames()).toContain("agent-a");
    agentA.publish("ferry.v1.broker.a.heartbeat", Status, { cluster: "a", generation: 2 });
    await waitFor(() => got.includes("ferry.v1.broker.a.heartbeat"), "a heartbeat after revocation");
    expect(h.nodes[0]!.pid).toBe(serverPid);
  });

  it("adds a new cluster's user without restarting the server", async () => {
    const credsD = await h.agentCredentials("d"); // minted now, long after the server started
    const d = await join(credsD);
    const tasks: number[] = [];
    d.subscribe("ferry.v1.agent.d.tasks", Tasks, (m) => void tasks.push(m.data.generation));
    d.serve("ferry.v1.agent.d.rpc.preflight", Preflight, PreflightReply, () => ({ ok: true, problems: [] }));
    await d.flush();
    broker.publish("ferry.v1.agent.d.tasks", Tasks, { generation: 1, tasks: [] });
    await waitFor(() => tasks.length === 1, "tasks at d");
    await expect(broker.request("ferry.v1.agent.d.rpc.preflight", Preflight, { vm: "v" }, PreflightReply)).resolves.toEqual({ ok: true, problems: [] });
    // and d is confined like everyone else
    const sub = d.subscribe("ferry.v1.agent.a.>", Any, () => undefined);
    expect((await sub.closed)?.message).toBe('Permissions Violation for Subscription to "ferry.v1.agent.a.>"');
    expect(h.nodes[0]!.pid).toBe(serverPid);
    expect(h.nodes[0]!.running).toBe(true);
  });
});
