// ClusterService over real gRPC/TLS against an in-process broker on a real nats-server:
// enrollment end to end (an agent joins the bus with what it got), token refusals, single use
// under concurrency, renewal, removal (live NATS connection cut, renewal refused), authentication
// of every kind of caller, UNIMPLEMENTED plan/migration services, HTTP endpoints.
import { X509Certificate } from "node:crypto";
import { status, type ServiceError } from "@grpc/grpc-js";
import { decode as decodeJwt } from "@nats-io/jwt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, publishReport, subscribeTasks, type Bus } from "../../bus/index.js";
import { serverErrors, waitFor } from "../../bus/test-support.js";
import { createCa, createCsr, issueClientCertificate } from "../../pki/index.js";
import { pino } from "pino";
import { ClusterState } from "../../proto/gen/ferry/v1/clusters.js";
import { readStatusDetails } from "../../proto/grpc-status.js";
import { credentials as grpcCredentials } from "@grpc/grpc-js";
import { createUser } from "@nats-io/nkeys";
import type { RunningBroker } from "../broker.js";
import { agentReports, call, startBrokerEnv, type BrokerClients, type BrokerEnv } from "../testing.js";

let env: BrokerEnv;
let broker: RunningBroker & { grpcAddress: string };
let admin: BrokerClients;
const involved = new Map<string, { uid: string; name: string; state: string }[]>();
const buses: Bus[] = [];

beforeAll(async () => {
  env = await startBrokerEnv();
  broker = await env.startInProcess("broker-0", {}, { controller: () => ({ involvement: { activeMigrationsFor: (c) => Promise.resolve(involved.get(c) ?? []) } }) });
  admin = await env.adminClients(broker.grpcAddress);
  await waitFor(() => broker.runtime.leader.isLeader, "broker-0 elected");
});

afterAll(async () => {
  for (const b of buses) await b.close().catch(() => undefined);
  admin?.close();
  await env?.stop();
});

async function refusal(p: Promise<unknown>): Promise<ServiceError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err as ServiceError,
  );
  if (!e) throw new Error("expected the call to be refused");
  return e;
}

function reasonOf(e: ServiceError): string | undefined {
  const info = readStatusDetails(e.metadata).find((d) => d.$case === "errorInfo");
  return info?.$case === "errorInfo" ? info.value.reason : undefined;
}

async function newCsr(cluster: string) {
  const keyPem = await env.testKey();
  return { keyPem, csrPem: createCsr(keyPem, { role: "agent", cluster }), nkey: createUser() };
}

const quiet = pino({ level: "silent" });

describe("enrollment", () => {
  it("token → CSR → certificate + NATS JWT: the agent joins the bus and its reports reach the broker", async () => {
    const issued = await call(admin.clusters, "createEnrollmentToken", { clusterName: "east", ttl: undefined });
    expect(issued.token).toMatch(/^fet\.[0-9a-f]{16}\./);
    expect(issued.caPem).toBe(env.ca.certPem);
    expect(issued.caFingerprintSha256).toBe(new X509Certificate(env.ca.certPem).fingerprint256);
    expect(issued.brokerAddress).toBe(broker.grpcAddress);
    expect(issued.cluster).toMatchObject({ name: "east", state: ClusterState.PENDING_ENROLLMENT });
    expect(issued.expireTime!.getTime()).toBeGreaterThan(Date.now());

    const agent = await env.enrollWithToken(broker.grpcAddress, "east", issued.token);
    const cert = new X509Certificate(agent.credentials.certificateChainPem);
    expect(cert.subject).toContain("CN=east");
    expect(cert.subject).toContain("OU=ferry-agent");
    expect(cert.checkIssued(new X509Certificate(env.ca.certPem))).toBe(true);
    const claims = decodeJwt<{ pub: { allow: string[] } }>(agent.credentials.natsUserJwt);
    expect(claims.sub).toBe(agent.bus.jwt && decodeJwt(agent.bus.jwt).sub);
    expect(claims.nats.pub?.allow).toEqual(["ferry.v1.broker.east.>"]);
    expect(claims.exp).toBe(Math.floor(new Date(cert.validTo).getTime() / 1000));
    expect(agent.credentials.expireTime!.getTime()).toBe(new Date(cert.validTo).getTime());
    expect(agent.credentials.natsUrls).toEqual(env.nats.urls);

    const bus = await connectBus({ ...agent.bus, logger: quiet });
    buses.push(bus);
    const reports = agentReports("east", { caPem: env.ca.certPem });
    publishReport(bus, "east", "hello", reports.hello());
    publishReport(bus, "east", "heartbeat", reports.heartbeat());
    publishReport(bus, "east", "status", reports.status(7));
    await waitFor(() => broker.runtime.registry.softState("east")?.status?.taskSetGeneration === 7, "status of east at the broker");
    const { cluster } = await call(admin.clusters, "getCluster", { name: "east" });
    expect(cluster).toMatchObject({ name: "east", state: ClusterState.AVAILABLE, agentVersion: "0.1.0-test", cordoned: false });
    expect(cluster!.certificateExpireTime).toEqual(agent.credentials.expireTime);
    // It may receive its task sets too.
    const got: number[] = [];
    subscribeTasks(bus, "east", (m) => void got.push(m.data.generation));
    await bus.flush();

    const again = await refusal(env.enrollWithToken(broker.grpcAddress, "east", issued.token));
    expect(again.code).toBe(status.UNAUTHENTICATED);
    expect(reasonOf(again)).toBe("TOKEN_ALREADY_USED");
    expect(again.details).toMatch(/already used.*ask the admin for a new one/);

    const dup = await refusal(call(admin.clusters, "createEnrollmentToken", { clusterName: "east", ttl: undefined }));
    expect(dup.code).toBe(status.ALREADY_EXISTS);
    expect(dup.details).toMatch(/already enrolled; remove it first/);
  });

  it("refuses expired, unknown and malformed tokens, and a CSR for another cluster (without consuming the token)", async () => {
    const short = await call(admin.clusters, "createEnrollmentToken", { clusterName: "exp", ttl: { seconds: 1, nanos: 0 } });
    await new Promise((r) => setTimeout(r, Math.max(0, short.expireTime!.getTime() - Date.now()) + 50));
    const expired = await refusal(env.enrollWithToken(broker.grpcAddress, "exp", short.token));
    expect(expired.code).toBe(status.UNAUTHENTICATED);
    expect(reasonOf(expired)).toBe("TOKEN_EXPIRED");
    expect(expired.details).toMatch(/expired at/);

    const unknown = await refusal(env.enrollWithToken(broker.grpcAddress, "exp", "fet.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
    expect([unknown.code, reasonOf(unknown)]).toEqual([status.UNAUTHENTICATED, "TOKEN_UNKNOWN"]);
    const malformed = await refusal(env.enrollWithToken(broker.grpcAddress, "exp", "not-a-token"));
    expect([malformed.code, reasonOf(malformed)]).toEqual([status.UNAUTHENTICATED, "TOKEN_MALFORMED"]);

    // A token for "west" presented with a CSR for "north": the CSR names the wrong cluster.
    const west = await call(admin.clusters, "createEnrollmentToken", { clusterName: "west", ttl: undefined });
    const wrong = await refusal(env.enrollWithToken(broker.grpcAddress, "north", west.token));
    expect(wrong.code).toBe(status.INVALID_ARGUMENT);
    const bad = readStatusDetails(wrong.metadata).find((d) => d.$case === "badRequest");
    expect(bad?.$case === "badRequest" && bad.value.fieldViolations[0]?.field).toBe("csr_pem");
    expect(wrong.details).toMatch(/CN="north" does not match CN="west"/);
    // The token was not consumed: the right agent enrolls with it.
    const ok = await env.enrollWithToken(broker.grpcAddress, "west", west.token);
    expect(ok.credentials.clusterName).toBe("west");

    const badKey = await refusal(
      call(env.clients(broker.grpcAddress, await env.channelCredentials(null)).clusters, "enroll", {
        token: (await call(admin.clusters, "createEnrollmentToken", { clusterName: "south", ttl: undefined })).token,
        csrPem: (await newCsr("south")).csrPem,
        natsUserPublicKey: "SUAM-a-seed-not-a-key",
      }),
    );
    expect(badKey.code).toBe(status.INVALID_ARGUMENT);
    expect(badKey.details).toMatch(/nats_user_public_key .* is not a NATS user public key/);
  });

  it("a newer token replaces the pending one", async () => {
    const first = await call(admin.clusters, "createEnrollmentToken", { clusterName: "re", ttl: undefined });
    const second = await call(admin.clusters, "createEnrollmentToken", { clusterName: "re", ttl: undefined });
    const old = await refusal(env.enrollWithToken(broker.grpcAddress, "re", first.token));
    expect(old.code).toBe(status.UNAUTHENTICATED);
    expect(reasonOf(old)).toBe("TOKEN_UNKNOWN");
    await env.enrollWithToken(broker.grpcAddress, "re", second.token);
  });

  it("two concurrent enrollments with one token: exactly one gets credentials", async () => {
    const { token } = await call(admin.clusters, "createEnrollmentToken", { clusterName: "race", ttl: undefined });
    const results = await Promise.allSettled(Array.from({ length: 4 }, () => env.enrollWithToken(broker.grpcAddress, "race", token)));
    const won = results.filter((r) => r.status === "fulfilled");
    const lost = results.flatMap((r) => (r.status === "rejected" ? [r.reason as ServiceError] : []));
    expect(won).toHaveLength(1);
    expect(lost.map((e) => [e.code, reasonOf(e)])).toEqual(lost.map(() => [status.UNAUTHENTICATED, "TOKEN_ALREADY_USED"]));
    const record = await broker.runtime.state.clusters.get("cluster.race");
    expect(record?.value.certificates).toHaveLength(1);
    expect(record?.value.certificates[0]?.serialNumber).toBe(new X509Certificate(won[0]!.value.credentials.certificateChainPem).serialNumber);
  });
});

describe("renewal and removal", () => {
  it("renews with the current certificate, then removal cuts the live NATS connection and refuses renewal", async () => {
    const agent = await env.enrollAgent(broker.grpcAddress, "gone");
    const asAgent = env.clients(broker.grpcAddress, grpcCredentials.createSsl(Buffer.from(env.ca.certPem), Buffer.from(agent.keyPem), Buffer.from(agent.credentials.certificateChainPem)));
    const next = await newCsr("gone");
    const renewed = await call(asAgent.clusters, "renewCertificate", { csrPem: next.csrPem, natsUserPublicKey: next.nkey.getPublicKey() });
    const newCert = new X509Certificate(renewed.credentials!.certificateChainPem);
    expect(newCert.subject).toContain("CN=gone");
    expect(newCert.serialNumber).not.toBe(new X509Certificate(agent.credentials.certificateChainPem).serialNumber);
    expect(decodeJwt(renewed.credentials!.natsUserJwt).sub).toBe(next.nkey.getPublicKey());

    // The renewed credentials work on the bus.
    const seed = new TextDecoder().decode(next.nkey.getSeed());
    const bus = await connectBus({ ...agent.bus, tls: { ...agent.bus.tls, cert: renewed.credentials!.certificateChainPem, key: next.keyPem }, jwt: renewed.credentials!.natsUserJwt, seed, reconnect: { initialMs: 50, maxMs: 200 }, logger: quiet });
    buses.push(bus);
    const errors = serverErrors(bus.nc);
    const reports = agentReports("gone", { caPem: env.ca.certPem });
    publishReport(bus, "gone", "heartbeat", reports.heartbeat());
    await waitFor(() => broker.runtime.registry.healthOf("gone") === "Available", "gone available");

    // Removal is refused while a migration involves the cluster.
    involved.set("gone", [{ uid: "m-1", name: "p/default/vm-1", state: "Migrating" }]);
    const busy = await refusal(call(admin.clusters, "removeCluster", { name: "gone" }));
    expect(busy.code).toBe(status.FAILED_PRECONDITION);
    const pf = readStatusDetails(busy.metadata).find((d) => d.$case === "preconditionFailure");
    expect(pf?.$case === "preconditionFailure" && pf.value.violations).toEqual([{ type: "MigrationInFlight", subject: "p/default/vm-1", description: "migration m-1 is Migrating" }]);
    involved.delete("gone");

    const { cluster } = await call(admin.clusters, "removeCluster", { name: "gone" });
    expect(cluster?.state).toBe(ClusterState.REMOVED);
    await waitFor(() => errors.some((e) => /User Authentication Revoked/i.test(e.message)), "the agent's connection revoked");
    const closed = await bus.closed();
    expect(String(closed)).toMatch(/Authorization Violation|Authentication/i);

    for (const [key, cert] of [
      [agent.keyPem, agent.credentials.certificateChainPem],
      [next.keyPem, renewed.credentials!.certificateChainPem],
    ] as const) {
      const c = env.clients(broker.grpcAddress, grpcCredentials.createSsl(Buffer.from(env.ca.certPem), Buffer.from(key), Buffer.from(cert)));
      const again = await newCsr("gone");
      const refused = await refusal(call(c.clusters, "renewCertificate", { csrPem: again.csrPem, natsUserPublicKey: again.nkey.getPublicKey() }));
      expect(refused.code).toBe(status.FAILED_PRECONDITION);
      expect(refused.details).toMatch(/cluster "gone" was removed/);
      c.close();
    }
    // Removing again is idempotent; the cluster may be added again with a new token.
    expect((await call(admin.clusters, "removeCluster", { name: "gone" })).cluster?.state).toBe(ClusterState.REMOVED);
    const readd = await call(admin.clusters, "createEnrollmentToken", { clusterName: "gone", ttl: undefined });
    expect(readd.cluster?.state).toBe(ClusterState.PENDING_ENROLLMENT);
    const revocations = await broker.runtime.revoker.current();
    expect(Object.keys(revocations).sort()).toEqual([agent.credentials && decodeJwt(agent.credentials.natsUserJwt).sub, next.nkey.getPublicKey()].sort());
    asAgent.close();
  });

  it("cordons and uncordons (idempotent, persisted, listed)", async () => {
    await env.enrollAgent(broker.grpcAddress, "maint");
    const c1 = await call(admin.clusters, "cordonCluster", { name: "maint", reason: "kernel upgrade, OPS-123" });
    expect(c1.cluster).toMatchObject({ cordoned: true, cordonReason: "kernel upgrade, OPS-123" });
    await call(admin.clusters, "cordonCluster", { name: "maint", reason: "kernel upgrade, OPS-123" });
    expect((await broker.runtime.state.clusters.get("cluster.maint"))?.value.cordon?.reason).toBe("kernel upgrade, OPS-123");
    const list = await call(admin.clusters, "listClusters", { pageSize: 0, pageToken: "" });
    expect(list.clusters.find((c) => c.name === "maint")).toMatchObject({ cordoned: true });
    expect((await call(admin.clusters, "uncordonCluster", { name: "maint" })).cluster?.cordoned).toBe(false);
    const missing = await refusal(call(admin.clusters, "cordonCluster", { name: "nope", reason: "" }));
    expect(missing.code).toBe(status.NOT_FOUND);
    expect(missing.details).toMatch(/cluster "nope" does not exist/);
  });

  it("lists clusters by name in pages", async () => {
    const names = (await call(admin.clusters, "listClusters", { pageSize: 0, pageToken: "" })).clusters.map((c) => c.name);
    expect(names).toEqual([...names].sort());
    const seen: string[] = [];
    let pageToken = "";
    do {
      const page = await call(admin.clusters, "listClusters", { pageSize: 2, pageToken });
      expect(page.clusters.length).toBeLessThanOrEqual(2);
      seen.push(...page.clusters.map((c) => c.name));
      pageToken = page.nextPageToken;
    } while (pageToken);
    expect(seen).toEqual(names);
    const bad = await refusal(call(admin.clusters, "listClusters", { pageSize: 0, pageToken: "garbage" }));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("authentication", () => {
  it("admin RPCs need an admin certificate from the ferry CA", async () => {
    const none = env.clients(broker.grpcAddress, await env.channelCredentials(null));
    const asAgent = env.clients(broker.grpcAddress, await env.channelCredentials({ role: "agent", cluster: "east" }));
    const foreignCa = await createCa({ keyBits: 2048 });
    const foreign = await issueClientCertificate(foreignCa, { role: "admin", name: "admin" });
    const asForeign = env.clients(broker.grpcAddress, grpcCredentials.createSsl(Buffer.from(env.ca.certPem), Buffer.from(foreign.keyPem), Buffer.from(foreign.certPem)));
    try {
      const e1 = await refusal(call(none.clusters, "listClusters", { pageSize: 0, pageToken: "" }));
      expect(e1.code).toBe(status.UNAUTHENTICATED);
      expect(e1.details).toMatch(/needs an admin client certificate/);
      const e2 = await refusal(call(asAgent.clusters, "cordonCluster", { name: "east", reason: "x" }));
      expect(e2.code).toBe(status.PERMISSION_DENIED);
      expect(e2.details).toMatch(/agent certificate of cluster "east" may not call it/);
      // TLS does not accept a certificate from another CA: the caller is simply unauthenticated.
      const e3 = await refusal(call(asForeign.clusters, "removeCluster", { name: "east" }));
      expect([status.UNAUTHENTICATED, status.UNAVAILABLE]).toContain(e3.code);
      // RenewCertificate needs an agent certificate; an admin one is refused.
      const e4 = await refusal(call(admin.clusters, "renewCertificate", { csrPem: "", natsUserPublicKey: "" }));
      expect(e4.code).toBe(status.PERMISSION_DENIED);
      const e5 = await refusal(call(none.clusters, "renewCertificate", { csrPem: "", natsUserPublicKey: "" }));
      expect(e5.code).toBe(status.UNAUTHENTICATED);
      // Plan and migration services: authenticated like the rest, UNIMPLEMENTED until the controller is wired.
      expect((await refusal(call(none.plans, "listPlans", { pageSize: 0, pageToken: "" }))).code).toBe(status.UNAUTHENTICATED);
      const unimpl = await refusal(call(admin.plans, "listPlans", { pageSize: 0, pageToken: "" }));
      expect(unimpl.code).toBe(status.UNIMPLEMENTED);
      expect(unimpl.details).toMatch(/started without a controller/);
      expect((await refusal(call(admin.migrations, "getMigration", { migration: { $case: "uid", value: "x" } }))).code).toBe(status.UNIMPLEMENTED);
    } finally {
      none.close();
      asAgent.close();
      asForeign.close();
    }
  });
});

describe("HTTP endpoints", () => {
  it("serves /healthz, /readyz, /leaderz and /metrics", async () => {
    const base = `http://127.0.0.1:${broker.httpPort}`;
    expect((await fetch(`${base}/healthz`)).status).toBe(200);
    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ ready: true, checks: { nats: { ok: true }, kv: { ok: true }, leader: { ok: true, detail: "this replica is leader" } } });
    expect((await fetch(`${base}/leaderz`)).status).toBe(200);
    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain("ferry_broker_leader 1");
    expect(metrics).toMatch(/ferry_grpc_requests_total\{method="ferry.v1.ClusterService\/Enroll",code="OK"\} \d+/);
    expect(metrics).toMatch(/ferry_grpc_requests_total\{method="ferry.v1.ClusterService\/ListClusters",code="UNAUTHENTICATED"\} \d+/);
    expect(metrics).toMatch(/ferry_clusters\{state="Removed",cordoned="false"\} 0/); // "gone" was re-added
    expect(metrics).toMatch(/ferry_reports_received_total\{kind="heartbeat"\} \d+/);
    expect(metrics).toMatch(/ferry_enrollments_total\{operation="enroll",result="TOKEN_ALREADY_USED"\} \d+/);
    expect(metrics).toMatch(/ferry_revocation_pushes_total\{result="ok"\} [1-9]/); // on election and on removal
  });
});
