// Two real broker processes on one nats-server: the standby refuses with the leader's identity;
// kill -9 the leader; the standby takes over, and nothing the leader wrote is lost (enrolled and
// pending clusters, a cordon, a token still usable); the agent keeps publishing to the new
// leader; the old leader, restarted, comes back as a standby.
import { status, type ServiceError } from "@grpc/grpc-js";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, publishReport, type Bus } from "../../bus/index.js";
import { waitFor } from "../../bus/test-support.js";
import { agentReports, call, startBrokerEnv, type BrokerEnv, type BrokerProcess } from "../../broker/testing.js";
import { ClusterState } from "../../proto/gen/ferry/v1/clusters.js";
import { readStatusDetails } from "../../proto/grpc-status.js";

let env: BrokerEnv;
let agent: Bus | undefined;

beforeAll(async () => {
  env = await startBrokerEnv();
});

afterAll(async () => {
  await agent?.close();
  await env?.stop();
});

async function isLeader(b: BrokerProcess): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${b.httpPort}/leaderz`)).status === 200;
  } catch {
    return false;
  }
}

describe("broker failover", () => {
  it("kill -9 of the leader: the standby takes over with every record intact", async () => {
    const b0 = await env.startProcess("broker-0");
    await waitFor(() => isLeader(b0), "broker-0 leader", 30_000);
    const b1 = await env.startProcess("broker-1");
    await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${b1.httpPort}/readyz`);
      const body = (await r.json()) as { checks?: { leader?: { detail?: string } } };
      return r.status === 200 && /standby; leader is broker-0/.test(body.checks?.leader?.detail ?? "");
    }, "broker-1 ready as standby");

    const admin0 = await env.adminClients(b0.grpcAddress);
    const admin1 = await env.adminClients(b1.grpcAddress);
    const refused = await call(admin1.clusters, "listClusters", { pageSize: 0, pageToken: "" }).then(
      () => undefined,
      (e: ServiceError) => e,
    );
    expect(refused?.code).toBe(status.UNAVAILABLE);
    const info = readStatusDetails(refused?.metadata).find((d) => d.$case === "errorInfo");
    expect(info?.$case === "errorInfo" && info.value).toMatchObject({ reason: "NOT_LEADER", metadata: { leader: "broker-0", leaderAddress: b0.grpcAddress } });

    // State written through the leader.
    const east = await env.enrollAgent(b0.grpcAddress, "east");
    await call(admin0.clusters, "cordonCluster", { name: "east", reason: "before failover" });
    const west = await call(admin0.clusters, "createEnrollmentToken", { clusterName: "west", ttl: undefined });
    agent = await connectBus({ ...east.bus, logger: pino({ level: "silent" }) });
    const reports = agentReports("east", { caPem: env.ca.certPem });
    publishReport(agent, "east", "hello", reports.hello());
    admin0.close();

    await b0.kill();
    expect((await b0.exited).signal).toBe("SIGKILL");
    await waitFor(() => isLeader(b1), "broker-1 takes over", 60_000);

    const list = await call(admin1.clusters, "listClusters", { pageSize: 0, pageToken: "" });
    expect(list.clusters.map((c) => [c.name, c.state, c.cordoned, c.cordonReason])).toEqual([
      ["east", ClusterState.UNREACHABLE, true, "before failover"],
      ["west", ClusterState.PENDING_ENROLLMENT, false, ""],
    ]);
    // The agent's reports reach the new leader; the token issued by the old leader still enrolls.
    await waitFor(async () => {
      publishReport(agent!, "east", "heartbeat", reports.heartbeat());
      return (await call(admin1.clusters, "getCluster", { name: "east" })).cluster?.state === ClusterState.AVAILABLE;
    }, "east AVAILABLE at broker-1");
    const w = await env.enrollWithToken(b1.grpcAddress, "west", west.token);
    expect(w.credentials.clusterName).toBe("west");

    // The old leader comes back as a standby.
    await b0.restart();
    await waitFor(async () => {
      const r = await fetch(`http://127.0.0.1:${b0.httpPort}/readyz`);
      const body = (await r.json()) as { checks?: { leader?: { detail?: string } } };
      return /standby; leader is broker-1/.test(body.checks?.leader?.detail ?? "");
    }, "broker-0 standby after restart");
    expect(await isLeader(b1)).toBe(true);
    admin1.close();

    // A clean shutdown exits 0 and hands over at once.
    expect(await b1.stop()).toEqual({ code: 0, signal: null });
    await waitFor(() => isLeader(b0), "broker-0 leader again after broker-1 stopped");
  });
});
