// A plan survives the death of the broker that runs it: two real broker processes, scripted
// bus-level agents for two clusters (broker/controller/testing.ts), a plan of six VMs with at most
// two in flight; kill -9 the leader while two migrations are mid-flight and four are queued. The
// standby takes over, finishes the running ones and starts the rest; every migration succeeds in
// its first attempt (one migrationID each: nothing was started twice) and the agents' task-set
// generations only grew.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../bus/test-support.js";
import { call, startBrokerEnv, type BrokerEnv, type BrokerProcess } from "../../broker/testing.js";
import { ScriptedWorld, testVm } from "../../broker/controller/testing.js";
import { MigrationState } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase } from "../../proto/gen/ferry/v1/plans.js";

let env: BrokerEnv;
const world = new ScriptedWorld({ migrationMs: 30 });

beforeAll(async () => {
  env = await startBrokerEnv();
});

afterAll(async () => {
  await world.stop();
  await env?.stop();
});

async function isLeader(b: BrokerProcess): Promise<boolean> {
  try {
    return (await fetch(`http://127.0.0.1:${b.httpPort}/leaderz`)).status === 200;
  } catch {
    return false;
  }
}

describe("controller failover", () => {
  it("kill -9 of the leader mid-plan: the standby finishes the plan, nothing runs twice", async () => {
    const b0 = await env.startProcess("broker-0");
    await waitFor(() => isLeader(b0), "broker-0 leader", 30_000);
    const b1 = await env.startProcess("broker-1");
    const [e, w] = await Promise.all([env.enrollAgent(b0.grpcAddress, "east"), env.enrollAgent(b0.grpcAddress, "west")]);
    const names = ["vm-0", "vm-1", "vm-2", "vm-3", "vm-4", "vm-5"];
    const east = await world.agent({ cluster: "east", bus: e.bus, vms: names.map((n) => testVm("apps", n)) });
    const west = await world.agent({ cluster: "west", bus: w.bus, vms: [] });
    for (const n of names) world.script(`apps/${n}`, { hold: true });

    const admin0 = await env.adminClients(b0.grpcAddress);
    const doc = {
      apiVersion: "ferry.dev/v1alpha1",
      kind: "MigrationPlan",
      metadata: { name: "failover" },
      spec: { source: { cluster: "east" }, target: { cluster: "west" }, vms: names.map((name) => ({ namespace: "apps", name })), limits: { maxInFlight: 2 } },
    };
    // The agents' inventories reach the leader a moment after they connect.
    await waitFor(async () => call(admin0.plans, "createPlan", { document: { $case: "object", value: doc }, dryRun: false }).then(() => true, () => false), "plan created", 30_000);
    await waitFor(async () => {
      const { migrations } = await call(admin0.migrations, "listMigrations", { plan: "failover", states: [MigrationState.MIGRATING], pageSize: 0, pageToken: "" });
      return migrations.length === 2;
    }, "two migrations in flight", 60_000).catch(async (e: unknown) => {
      // Say where each migration waits.
      const { plan } = await call(admin0.plans, "getPlan", { name: "failover" });
      throw new Error(`${String(e)}: ${plan!.migrations.map((m) => `${m.name} ${MigrationState[m.state]}: ${m.waitingReason}`).join("; ")}`);
    });
    admin0.close();

    await b0.kill();
    await waitFor(() => isLeader(b1), "broker-1 takes over", 30_000);
    world.release();

    const admin1 = await env.adminClients(b1.grpcAddress);
    const plan = await waitFor(async () => {
      const p = (await call(admin1.plans, "getPlan", { name: "failover" })).plan!;
      return p.phase === PlanPhase.SUCCEEDED || p.phase === PlanPhase.FAILED || p.phase === PlanPhase.PARTIALLY_FAILED ? p : undefined;
    }, "plan finished", 120_000);
    admin1.close();

    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    expect(plan.migrations.map((m) => [m.name, m.state, m.attempt])).toEqual(names.map((n) => [`failover/apps/${n}`, MigrationState.SUCCEEDED, 1]));
    expect(west.vms.map((v) => v.name).sort()).toEqual(names);
    // One migrationID per migration in every task either agent ever accepted.
    for (const agent of [east, west]) {
      const ids = new Map<string, Set<string>>();
      for (const set of agent.taskSets) for (const t of set.tasks) ids.set(t.migrationUid, (ids.get(t.migrationUid) ?? new Set()).add(t.migrationId));
      for (const [uid, set] of ids) expect([uid, [...set]]).toEqual([uid, [`${uid}-1`]]);
      const gens = agent.taskSets.map((s) => s.generation);
      expect(gens).toEqual([...gens].sort((a, b) => a - b));
      // Both leaders published to this agent.
      expect(agent.taskSets.length).toBeGreaterThan(1);
    }
    expect(east.actions.filter((a) => a.endsWith("/source/send"))).toHaveLength(6);
    expect(east.actions.filter((a) => a.endsWith("/abort"))).toEqual([]);
  });
});
