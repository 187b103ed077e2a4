// The broker issue's end-to-end scenarios over the real system: nats-server, two broker processes
// (active/standby), one agent process per cluster, simulated Kubernetes + KubeVirt clusters (the
// sync controllers handshake over real TLS). After each scenario DESIGN.md §8 is checked on every
// cluster (e2e/invariants.ts); invariants 1 and 2 are also sampled while everything runs.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, type BrokerClients } from "../../broker/testing.js";
import { MigrationState, type Migration } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan } from "../../proto/gen/ferry/v1/plans.js";
import { baseScenario } from "../../stack/scenarios.js";
import { startStack, type Stack } from "../../stack/stack.js";
import { checkInvariants, monitorInvariants, snapshotWorld } from "../invariants.js";

let stack: Stack;
let dir: string;
let admin: BrokerClients;
let monitor: ReturnType<typeof monitorInvariants>;
const plans: string[] = [];
/** Every migration seen, also of deleted plans (invariant 3 holds for them too). */
const known = new Map<string, Migration>();

const vm = (name: string, memory = "512Mi", disk = "2Gi") => ({ name, namespace: "vms", memory, cpu: 1, labels: { app: name.replace(/-\d+$/, "") }, disks: [{ name: "rootdisk", size: disk }] });

async function leader(): Promise<BrokerClients> {
  admin = await stack.leaderClients(60_000);
  return admin;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
      if (/UNAVAILABLE|NOT_LEADER|14 /.test(last)) await leader().catch(() => undefined);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function refreshKnown(): Promise<Migration[]> {
  for (const plan of plans) {
    try {
      const { migrations } = await call(admin.migrations, "listMigrations", { plan, states: [], pageSize: 1000, pageToken: "" });
      for (const m of migrations) known.set(m.uid, m);
    } catch {
      // deleted plan or a broker failover: keep what was seen
    }
  }
  return [...known.values()];
}

async function createPlan(name: string, spec: Record<string, unknown>): Promise<Plan> {
  const doc = { apiVersion: "ferry.dev/v1alpha1", kind: "MigrationPlan", metadata: { name }, spec: { retry: { backoff: { initialSeconds: 1 } }, ...spec } };
  const { plan } = await call(admin.plans, "createPlan", { document: { $case: "object", value: doc }, dryRun: false });
  plans.push(name);
  return plan!;
}

const FINISHED = [PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED, PlanPhase.CANCELLED];

async function finished(name: string, timeoutMs = 150_000): Promise<Plan> {
  return waitFor(
    `plan ${name} to finish`,
    async () => {
      const { plan } = await call(admin.plans, "getPlan", { name });
      return FINISHED.includes(plan!.phase) ? plan! : undefined;
    },
    timeoutMs,
  ).catch(async (e: unknown) => {
    const { plan } = await call(admin.plans, "getPlan", { name });
    throw new Error(`${String(e)}: ${plan!.migrations.map((m) => `${m.name} ${MigrationState[m.state]}: ${m.waitingReason || m.lastError?.message}`).join("; ")}`);
  });
}

async function migrationIn(name: string, states: MigrationState[]): Promise<Migration> {
  return waitFor(`${name} in ${states.map((s) => MigrationState[s]).join("/")}`, async () => {
    const { migration } = await call(admin.migrations, "getMigration", { migration: { $case: "name", value: name } });
    return states.includes(migration!.state) ? migration! : undefined;
  });
}

async function expectInvariants(): Promise<void> {
  const violations = await checkInvariants(stack.world, await refreshKnown());
  expect(violations).toEqual([]);
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ferry-e2e-broker-"));
  const base = baseScenario();
  stack = await startStack({
    clusters: ["east", "west", "north"],
    dir,
    brokers: 2,
    timeScale: 20,
    scenario: {
      ...base,
      clusters: {
        east: { vms: [...Array.from({ length: 22 }, (_, i) => vm(`bulk-${i + 1}`)), vm("web-1", "2Gi", "10Gi"), vm("web-2", "2Gi", "10Gi"), vm("web-3", "1Gi", "4Gi"), vm("web-4", "1Gi", "4Gi"), vm("web-5", "1Gi", "4Gi")] },
        west: { vms: [] },
        north: { vms: [vm("north-app-1", "1Gi", "4Gi"), vm("north-app-2", "1Gi", "4Gi")] },
      },
    },
  });
  await stack.waitClustersAvailable(120_000);
  await leader();
  monitor = monitorInvariants(stack.world, () => [...known.values()], { intervalMs: 250 });
}, 240_000);

afterAll(async () => {
  const seen = monitor ? await monitor.stop() : [];
  const samples = monitor?.samples() ?? 0;
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
  expect(seen).toEqual([]);
  expect(samples).toBeGreaterThan(0);
});

describe("broker end to end", () => {
  it("cross-cluster plan: the VM runs on west, the source is halted", async () => {
    await createPlan("cross", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [{ namespace: "vms", name: "web-1" }] });
    const plan = await finished("cross");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    expect(plan.migrations.map((m) => [m.name, m.attempt])).toEqual([["cross/vms/web-1", 1]]);
    const snap = await snapshotWorld(stack.world);
    const vmOf = (c: string) => snap.get(c)!.vms.find((v) => v.metadata?.namespace === "vms" && v.metadata.name === "web-1");
    expect(vmOf("east")?.spec?.["runStrategy"]).toBe("Halted");
    expect(snap.get("west")!.vmis.find((v) => v.metadata?.name === "web-1")?.status?.["phase"]).toBe("Running");
    expect(vmOf("west")?.spec?.["runStrategy"]).not.toBe("WaitAsReceiver");
    await expectInvariants();
  });

  it("a mixed load of 22 VMs: 16 across clusters and 6 storage moves within east, at once", async () => {
    const cross = Array.from({ length: 16 }, (_, i) => ({ namespace: "vms", name: `bulk-${i + 1}` }));
    const local = Array.from({ length: 6 }, (_, i) => ({ namespace: "vms", name: `bulk-${i + 17}` }));
    await createPlan("bulk-cross", { source: { cluster: "east" }, target: { cluster: "west" }, vms: cross, limits: { maxInFlight: 10 } });
    await createPlan("bulk-local", { source: { cluster: "east" }, target: { cluster: "east" }, vms: local, storageMap: [{ source: "standard", target: "fast" }] });
    const [a, b] = await Promise.all([finished("bulk-cross", 240_000), finished("bulk-local", 240_000)]);
    expect([a.phase, b.phase]).toEqual([PlanPhase.SUCCEEDED, PlanPhase.SUCCEEDED]);
    expect(a.counters?.succeeded).toBe(16);
    expect(b.counters?.succeeded).toBe(6);
    await expectInvariants();
  }, 300_000);

  it("evacuation: north's VMs are placed elsewhere with a reason and moved", async () => {
    await createPlan("evacuate-north", { source: { cluster: "north" }, selector: { allVMs: true }, target: { evacuate: true } });
    const plan = await finished("evacuate-north");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    for (const m of plan.migrations) {
      expect(["east", "west"]).toContain(m.target!.cluster);
      expect(m.placement).toMatch(new RegExp(`^placed on ${m.target!.cluster}`));
    }
    await expectInvariants();
  });

  it("cancel mid-flight: both sides aborted, nothing left behind, the source keeps running", async () => {
    // The guest dirties memory faster than the link copies it: the migration cannot converge.
    await stack.world.controlClient().kubevirt("east").setDirtyRate("vms", "web-2", "no-converge");
    await createPlan("cancel", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [{ namespace: "vms", name: "web-2" }] });
    await migrationIn("cancel/vms/web-2", [MigrationState.MIGRATING]);
    await call(admin.plans, "cancelPlan", { name: "cancel" });
    const plan = await finished("cancel");
    expect(plan.phase).toBe(PlanPhase.CANCELLED);
    expect(plan.migrations[0]!.state).toBe(MigrationState.CANCELLED);
    await waitFor("cleanup on both clusters", async () => ((await checkInvariants(stack.world, await refreshKnown())).length === 0 ? true : undefined), 60_000);
    await expectInvariants();
  });

  it("a failure injected in the target cluster fails the attempt; the retry (new migrationID) succeeds", async () => {
    const kv = stack.world.controlClient();
    await kv.kubevirt("east").setDirtyRate("vms", "web-5", "no-converge");
    await createPlan("retry", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [{ namespace: "vms", name: "web-5" }], retry: { maxAttempts: 3, backoff: { initialSeconds: 1 } } });
    await migrationIn("retry/vms/web-5", [MigrationState.MIGRATING]);
    // The receiver VMI dies mid-copy (node failure on west); the next attempt may converge.
    await kv.kubevirt("west").killVMI("vms", "web-5");
    await kv.kubevirt("east").setDirtyRate("vms", "web-5", 0);
    const plan = await finished("retry");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    const m = plan.migrations[0]!;
    expect(m.attempt).toBeGreaterThanOrEqual(2);
    expect(m.migrationId).toBe(`${m.uid}-${m.attempt}`);
    expect(m.attempts[0]!.outcome).toBe(MigrationState.FAILED);
    expect(m.attempts[0]!.error?.message).not.toBe("");
    await expectInvariants();
  });

  it("kill -9 of the active broker mid-plan: the standby finishes it, one attempt per migration", async () => {
    await createPlan("failover", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [{ namespace: "vms", name: "web-3" }, { namespace: "vms", name: "web-4" }] });
    await migrationIn("failover/vms/web-3", [MigrationState.PREPARING_TARGET, MigrationState.TARGET_READY, MigrationState.MIGRATING, MigrationState.FINALIZING, MigrationState.SUCCEEDED]);
    const killed = await stack.killBroker();
    await leader();
    const plan = await finished("failover");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    expect(plan.migrations.map((m) => m.attempt)).toEqual([1, 1]);
    await stack.restartBroker(stack.brokers.indexOf(killed));
    await expectInvariants();
  });
});
