// A plan keeps going when a NATS node dies: a broker process on a 3-node NATS cluster (KV and
// FERRY_EVENTS with 3 replicas), scripted bus-level agents, six VMs with two in flight; SIGKILL of
// a NATS node mid-plan. Broker and agents reconnect to the survivors, lost task sets are sent
// again, and every migration succeeds in its first attempt.
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../bus/test-support.js";
import { call, startBrokerEnv, type BrokerEnv } from "../../broker/testing.js";
import { ScriptedWorld, testVm } from "../../broker/controller/testing.js";
import { MigrationState } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan } from "../../proto/gen/ferry/v1/plans.js";

let env: BrokerEnv;
const world = new ScriptedWorld({ migrationMs: 30 });

beforeAll(async () => {
  env = await startBrokerEnv({ nats: { nodes: 3 } });
});

afterAll(async () => {
  await world.stop();
  await env?.stop();
});

/** Retry a call while the broker reconnects and JetStream elects new leaders. */
async function retrying<T>(op: () => Promise<T>): Promise<T> {
  let result: T | undefined;
  await waitFor(
    async () => {
      try {
        result = await op();
        return true;
      } catch (e) {
        if ([status.UNAVAILABLE, status.ABORTED, status.DEADLINE_EXCEEDED, status.INTERNAL].includes((e as ServiceError).code)) return false;
        throw e;
      }
    },
    "a call that succeeds",
    60_000,
  );
  return result!;
}

describe("controller on NATS node loss", () => {
  it("SIGKILL of a NATS node mid-plan: the plan finishes, nothing runs twice", async () => {
    const b = await env.startProcess("broker-0");
    await waitFor(async () => (await fetch(`http://127.0.0.1:${b.httpPort}/leaderz`)).status === 200, "leader", 30_000);
    const [e, w] = await Promise.all([env.enrollAgent(b.grpcAddress, "east"), env.enrollAgent(b.grpcAddress, "west")]);
    const names = ["vm-0", "vm-1", "vm-2", "vm-3", "vm-4", "vm-5"];
    const east = await world.agent({ cluster: "east", bus: e.bus, vms: names.map((n) => testVm("apps", n)) });
    await world.agent({ cluster: "west", bus: w.bus, vms: [] });
    for (const n of names) world.script(`apps/${n}`, { hold: true });
    const admin = await env.adminClients(b.grpcAddress);
    const doc = {
      apiVersion: "ferry.dev/v1alpha1",
      kind: "MigrationPlan",
      metadata: { name: "nodeloss" },
      spec: { source: { cluster: "east" }, target: { cluster: "west" }, vms: names.map((name) => ({ namespace: "apps", name })), limits: { maxInFlight: 2 } },
    };
    await waitFor(async () => call(admin.plans, "createPlan", { document: { $case: "object", value: doc }, dryRun: false }).then(() => true, () => false), "plan created", 30_000);
    await waitFor(async () => {
      const { migrations } = await call(admin.migrations, "listMigrations", { plan: "nodeloss", states: [MigrationState.MIGRATING], pageSize: 0, pageToken: "" });
      return migrations.length === 2;
    }, "two migrations in flight", 60_000).catch(async (e: unknown) => {
      // Say where each migration waits.
      const { plan } = await call(admin.plans, "getPlan", { name: "nodeloss" });
      throw new Error(`${String(e)}: ${plan!.migrations.map((m) => `${m.name} ${MigrationState[m.state]}: ${m.waitingReason}`).join("; ")}`);
    });

    await env.nats.nodes[0]!.kill();
    world.release();

    let plan: Plan | undefined;
    await waitFor(async () => {
      plan = (await retrying(() => call(admin.plans, "getPlan", { name: "nodeloss" }, { deadlineMs: 5000 }))).plan!;
      return plan.phase === PlanPhase.SUCCEEDED || plan.phase === PlanPhase.FAILED || plan.phase === PlanPhase.PARTIALLY_FAILED;
    }, "plan finished", 150_000);
    admin.close();
    expect(plan!.phase).toBe(PlanPhase.SUCCEEDED);
    expect(plan!.migrations.map((m) => [m.name, m.state, m.attempt])).toEqual(names.map((n) => [`nodeloss/apps/${n}`, MigrationState.SUCCEEDED, 1]));
    expect(east.actions.filter((a) => a.endsWith("/source/send"))).toHaveLength(6);
    expect(east.actions.filter((a) => a.endsWith("/abort"))).toEqual([]);
  });
});
