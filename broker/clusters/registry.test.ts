// The cluster registry against a real nats-server and an enrolled agent: stale reports dropped,
// health from heartbeats with a grace period, and what a broker restart keeps (records, cordon)
// and rebuilds (soft state: the inventory it asks every enrolled agent for on election).
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, publishReport, serveRpc, type Bus } from "../../bus/index.js";
import { waitFor } from "../../bus/test-support.js";
import { ClusterState } from "../../proto/gen/ferry/v1/clusters.js";
import type { RunningBroker } from "../broker.js";
import { agentReports, call, startBrokerEnv, type BrokerClients, type BrokerEnv } from "../testing.js";
import type { ClusterChange } from "./registry.js";

const GRACE = { agents: { heartbeatGraceSeconds: 0.5 } };
const quiet = pino({ level: "silent" });

let env: BrokerEnv;
let broker: RunningBroker & { grpcAddress: string };
let admin: BrokerClients;
let agent: Bus;
const changes: ClusterChange[] = [];

beforeAll(async () => {
  env = await startBrokerEnv();
  broker = await env.startInProcess("broker-0", GRACE);
  broker.runtime.registry.onChange((c) => void changes.push(c));
  await waitFor(() => broker.runtime.leader.isLeader, "broker-0 elected");
  admin = await env.adminClients(broker.grpcAddress);
  const enrolled = await env.enrollAgent(broker.grpcAddress, "s1");
  agent = await connectBus({ ...enrolled.bus, logger: quiet });
});

afterAll(async () => {
  await agent?.close();
  admin?.close();
  await env?.stop();
});

async function dropped(b: RunningBroker, kind: string, reason: string): Promise<number> {
  const m = await b.runtime.metrics.reportsDropped.get();
  return m.values.find((v) => v.labels["kind"] === kind && v.labels["reason"] === reason)?.value ?? 0;
}

describe("reports", () => {
  it("keeps the newest report per kind, drops stale and malformed ones; a hello resets the baseline", async () => {
    const registry = broker.runtime.registry;
    const r = agentReports("s1", { caPem: env.ca.certPem, epoch: 1000 });
    publishReport(agent, "s1", "hello", r.hello(1));
    publishReport(agent, "s1", "status", r.status(10, 10));
    await waitFor(() => registry.softState("s1")?.status?.taskSetGeneration === 10, "status 10");
    publishReport(agent, "s1", "status", r.status(9, 9)); // overtaken by seq 10
    await waitFor(async () => (await dropped(broker, "status", "stale")) === 1, "stale status dropped");
    expect(registry.softState("s1")?.status?.taskSetGeneration).toBe(10);

    agent.nc.publish("ferry.v1.broker.s1.status", "{not json");
    agent.nc.publish("ferry.v1.broker.s1.status", JSON.stringify({ ...r.status(11, 11), taskSetGeneration: -1 }));
    await waitFor(async () => (await dropped(broker, "status", "not-json")) === 1 && (await dropped(broker, "status", "invalid")) === 1, "malformed status dropped by the bus");

    // The agent restarts: a new epoch, seq from 1. Its hello resets the baseline.
    r.restart(2000);
    publishReport(agent, "s1", "hello", r.hello());
    await waitFor(() => registry.softState("s1")?.hello?.epoch === 2000, "hello of the new epoch");
    publishReport(agent, "s1", "status", r.status(3));
    await waitFor(() => registry.softState("s1")?.status?.epoch === 2000, "status of the new epoch");
    expect(registry.softState("s1")?.status?.taskSetGeneration).toBe(3);
    // A late message of the old process is stale.
    agent.publish("ferry.v1.broker.s1.status", (await import("../../proto/bus/index.js")).Status, { ...r.status(12), epoch: 1000, seq: 12 });
    await waitFor(async () => (await dropped(broker, "status", "stale")) === 2, "old-epoch status dropped");
    expect(registry.softState("s1")?.status?.taskSetGeneration).toBe(3);
    expect(changes.filter((c) => c.type === "report" && c.kind === "status").length).toBe(2);
  });
});

describe("health", () => {
  it("is Unknown (UNREACHABLE) after the grace period without heartbeats and Available again on the next one", async () => {
    const r = agentReports("s1", { caPem: env.ca.certPem });
    publishReport(agent, "s1", "hello", r.hello());
    publishReport(agent, "s1", "heartbeat", r.heartbeat());
    const state = async () => (await call(admin.clusters, "getCluster", { name: "s1" })).cluster?.state;
    await waitFor(async () => (await state()) === ClusterState.AVAILABLE, "s1 AVAILABLE");
    await waitFor(async () => (await state()) === ClusterState.UNREACHABLE, "s1 UNREACHABLE after the grace period");
    const metrics = await broker.runtime.metrics.registry.getSingleMetricAsString("ferry_clusters");
    expect(metrics).toContain('ferry_clusters{state="Unknown",cordoned="false"} 1');
    publishReport(agent, "s1", "heartbeat", r.heartbeat());
    await waitFor(async () => (await state()) === ClusterState.AVAILABLE, "s1 AVAILABLE again");
    const health = changes.flatMap((c) => (c.type === "health" && c.cluster === "s1" ? [c.health] : []));
    expect(health.slice(-3)).toEqual(["Available", "Unknown", "Available"]);
    // Unknown is only reported: the cluster record is untouched.
    expect((await broker.runtime.state.clusters.get("cluster.s1"))?.value.state).toBe("Enrolled");
  });
});

describe("broker restart", () => {
  it("keeps the cordon (KV) and rebuilds soft state: the new leader asks each enrolled agent for its inventory", async () => {
    const r = agentReports("s1", { caPem: env.ca.certPem });
    let asked = 0;
    serveRpc(agent, "s1", "inventory", () => {
      asked++;
      return r.inventory();
    });
    await agent.flush();
    await call(admin.clusters, "cordonCluster", { name: "s1", reason: "rack swap" });
    await broker.stop();
    admin.close();

    const next = await env.startInProcess("broker-1", GRACE);
    await waitFor(() => next.runtime.leader.isLeader, "broker-1 elected");
    admin = await env.adminClients(next.grpcAddress);
    await waitFor(() => next.runtime.registry.softState("s1")?.inventory !== undefined, "inventory requested by the new leader");
    expect(asked).toBe(1);
    const { cluster } = await call(admin.clusters, "getCluster", { name: "s1" });
    expect(cluster).toMatchObject({
      name: "s1",
      cordoned: true,
      cordonReason: "rack swap",
      // No heartbeat since the restart yet: reported, nothing else.
      state: ClusterState.UNREACHABLE,
      inventory: { kubevirtVersion: "v1.8.2", nodeCount: 2, architectures: ["amd64"], decentralizedMigrationEnabled: true, workloadUpdateLiveMigrate: true, migrationLimits: { parallelMigrationsPerCluster: 5, parallelOutboundMigrationsPerNode: 2 } },
    });
    publishReport(agent, "s1", "heartbeat", r.heartbeat());
    await waitFor(async () => (await call(admin.clusters, "getCluster", { name: "s1" })).cluster?.state === ClusterState.AVAILABLE, "s1 AVAILABLE at the new leader");
  });
});
