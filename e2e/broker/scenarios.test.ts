// The broker issue's end-to-end scenarios over the real system: nats-server, two broker processes
// (active/standby), one agent process per cluster, simulated Kubernetes + KubeVirt clusters (the
// sync controllers handshake over real TLS). After each scenario DESIGN.md §8 is checked on every
// cluster (e2e/invariants.ts); invariants 1 and 2 are also sampled while everything runs.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CoreV1Api } from "@kubernetes/client-node";
import { call } from "../../broker/testing.js";
import { MigrationState } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase } from "../../proto/gen/ferry/v1/plans.js";
import { kubeConfig } from "../../sim/testing.js";
import { baseScenario } from "../../stack/scenarios.js";
import { startStack, type Stack } from "../../stack/stack.js";
import { monitorInvariants, snapshotWorld } from "../invariants.js";
import { planDriver, suiteDir, type PlanDriver } from "../plans.js";

let stack: Stack;
const dir = suiteDir("broker");
let plans: PlanDriver;
let monitor: ReturnType<typeof monitorInvariants>;

const vm = (name: string, memory = "512Mi", disk = "2Gi") => ({ name, namespace: "vms", memory, cpu: 1, labels: { app: name.replace(/-\d+$/, "") }, disks: [{ name: "rootdisk", size: disk }] });

/** Bulk VMs of mixed sizes (the scheduler orders largest first). */
const bulk = (i: number) => vm(`bulk-${i}`, ["512Mi", "1Gi", "2Gi"][i % 3], ["2Gi", "4Gi", "8Gi"][i % 3]);
const ref = (name: string) => ({ namespace: "vms", name });
const vmiPhase = async (cluster: string, name: string) => (await snapshotWorld(stack.world)).get(cluster)!.vmis.find((v) => v.metadata?.namespace === "vms" && v.metadata.name === name)?.status?.["phase"];

beforeAll(async () => {
  const base = baseScenario();
  stack = await startStack({
    clusters: ["east", "west", "north"],
    dir: dir.path,
    brokers: 2,
    timeScale: 20,
    scenario: {
      ...base,
      clusters: {
        east: { vms: [...Array.from({ length: 26 }, (_, i) => bulk(i + 1)), vm("web-1", "2Gi", "10Gi"), vm("web-2", "2Gi", "10Gi"), vm("web-3", "1Gi", "4Gi"), vm("web-4", "1Gi", "4Gi"), vm("web-5", "1Gi", "4Gi")] },
        west: { vms: [] },
        north: { vms: [vm("north-app-1", "1Gi", "4Gi"), vm("north-app-2", "1Gi", "4Gi")] },
      },
    },
  });
  await stack.waitClustersAvailable(120_000);
  plans = planDriver(stack);
  await plans.leader();
  monitor = monitorInvariants(stack.world, () => plans.seen(), { intervalMs: 250 });
}, 240_000);

afterAll(async () => {
  const seen = monitor ? await monitor.stop() : [];
  const samples = monitor?.samples() ?? 0;
  await stack?.stop();
  dir.cleanup();
  expect(seen).toEqual([]);
  expect(samples).toBeGreaterThan(0);
});

async function expectInvariants(): Promise<void> {
  expect(await plans.violations()).toEqual([]);
}

/** Most VMIMs not yet final at once on any cluster, sampled until `stop()`. */
function sampleActiveVmims(): { stop(): Promise<Map<string, number>> } {
  const most = new Map<string, number>();
  let stopped = false;
  const run = (async () => {
    while (!stopped) {
      for (const [cluster, snap] of await snapshotWorld(stack.world)) {
        const active = snap.vmims.filter((v) => !["Succeeded", "Failed"].includes((v.status?.["phase"] as string | undefined) ?? "")).length;
        most.set(cluster, Math.max(most.get(cluster) ?? 0, active));
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await run;
      return most;
    },
  };
}

describe("broker end to end", () => {
  it("cross-cluster plan: the VM runs on west, the source is halted", async () => {
    await plans.create("cross", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [ref("web-1")] });
    const plan = await plans.finished("cross");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    expect(plan.migrations.map((m) => [m.name, m.attempt])).toEqual([["cross/vms/web-1", 1]]);
    const snap = await snapshotWorld(stack.world);
    const vmOf = (c: string) => snap.get(c)!.vms.find((v) => v.metadata?.namespace === "vms" && v.metadata.name === "web-1");
    expect(vmOf("east")?.spec?.["runStrategy"]).toBe("Halted");
    expect(snap.get("west")!.vmis.find((v) => v.metadata?.name === "web-1")?.status?.["phase"]).toBe("Running");
    expect(vmOf("west")?.spec?.["runStrategy"]).not.toBe("WaitAsReceiver");
    await expectInvariants();
  });

  it("a plan of 20 VMs of mixed sizes across clusters while 6 storage moves run within east: within KubeVirt's limits", async () => {
    const cross = Array.from({ length: 20 }, (_, i) => ref(`bulk-${i + 1}`));
    const local = Array.from({ length: 6 }, (_, i) => ref(`bulk-${i + 21}`));
    const sampler = sampleActiveVmims();
    await plans.create("bulk-cross", { source: { cluster: "east" }, target: { cluster: "west" }, vms: cross, limits: { maxInFlight: 10 } });
    await plans.create("bulk-local", { source: { cluster: "east" }, target: { cluster: "east" }, vms: local, storageMap: [{ source: "standard", target: "fast" }] });
    const [a, b] = await Promise.all([plans.finished("bulk-cross", 240_000), plans.finished("bulk-local", 240_000)]);
    const most = await sampler.stop();
    expect([a.phase, b.phase]).toEqual([PlanPhase.SUCCEEDED, PlanPhase.SUCCEEDED]);
    expect(a.counters?.succeeded).toBe(20);
    expect(b.counters?.succeeded).toBe(6);
    // ferry never asks a cluster for more migrations than parallelMigrationsPerCluster (5 in the scenario).
    expect(Math.max(...most.values())).toBeGreaterThan(1);
    for (const [cluster, n] of most) expect([cluster, n <= 5]).toEqual([cluster, true]);
    // The storage moves put every disk on the mapped class.
    const claims = (await snapshotWorld(stack.world)).get("east")!.vms.filter((v) => local.some((l) => l.name === v.metadata?.name));
    expect(claims).toHaveLength(6);
    const pvcs = (await kubeConfig(stack.world.cluster("east").kubeconfig).makeApiClient(CoreV1Api).listNamespacedPersistentVolumeClaim({ namespace: "vms" })).items;
    for (const v of claims) {
      const volumes = ((v.spec?.["template"] as { spec?: { volumes?: { dataVolume?: { name: string } }[] } }).spec?.volumes ?? []).flatMap((x) => (x.dataVolume ? [x.dataVolume.name] : []));
      expect(volumes.length).toBeGreaterThan(0);
      for (const name of volumes) expect([name, pvcs.find((p) => p.metadata?.name === name)?.spec?.storageClassName]).toEqual([name, "fast"]);
    }
    await expectInvariants();
  }, 300_000);

  it("evacuation: north's VMs are placed elsewhere with a reason and moved", async () => {
    await plans.create("evacuate-north", { source: { cluster: "north" }, selector: { allVMs: true }, target: { evacuate: true } });
    const plan = await plans.finished("evacuate-north");
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
    await plans.create("cancel", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [ref("web-2")] });
    await plans.migrationIn("cancel/vms/web-2", [MigrationState.MIGRATING]);
    const admin = await plans.leader();
    await call(admin.plans, "cancelPlan", { name: "cancel" });
    const plan = await plans.finished("cancel");
    expect(plan.phase).toBe(PlanPhase.CANCELLED);
    expect(plan.migrations[0]!.state).toBe(MigrationState.CANCELLED);
    await plans.waitFor("cleanup on both clusters", async () => ((await plans.violations()).length === 0 ? true : undefined), 60_000);
    expect(await vmiPhase("east", "web-2")).toBe("Running");
    expect(await vmiPhase("west", "web-2")).toBeUndefined();
    await expectInvariants();
  });

  it("a failure injected in the target cluster fails the attempt; the retry (new migrationID) succeeds", async () => {
    const kv = stack.world.controlClient();
    await kv.kubevirt("east").setDirtyRate("vms", "web-5", "no-converge");
    await plans.create("retry", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [ref("web-5")], retry: { maxAttempts: 3, backoff: { initialSeconds: 1 } } });
    await plans.migrationIn("retry/vms/web-5", [MigrationState.MIGRATING]);
    // The receiver VMI dies mid-copy (node failure on west); the next attempt may converge.
    await kv.kubevirt("west").killVMI("vms", "web-5");
    await kv.kubevirt("east").setDirtyRate("vms", "web-5", 0);
    const plan = await plans.finished("retry");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    const m = plan.migrations[0]!;
    expect(m.attempt).toBeGreaterThanOrEqual(2);
    expect(m.migrationId).toBe(`${m.uid}-${m.attempt}`);
    expect(m.attempts[0]!.outcome).toBe(MigrationState.FAILED);
    expect(m.attempts[0]!.error?.message).not.toBe("");
    await expectInvariants();
  });

  it("kill -9 of the active broker mid-plan: the standby finishes it, one attempt per migration", async () => {
    // web-3 cannot converge until released, so the plan is surely in flight when the leader dies.
    const kv = stack.world.controlClient().kubevirt("east");
    await kv.setDirtyRate("vms", "web-3", "no-converge");
    await plans.create("failover", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [ref("web-3"), ref("web-4")] });
    await plans.migrationIn("failover/vms/web-3", [MigrationState.MIGRATING]);
    const killed = await stack.killBroker();
    await kv.setDirtyRate("vms", "web-3", 0);
    const plan = await plans.finished("failover");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    expect(plan.migrations.map((m) => m.attempt)).toEqual([1, 1]);
    await stack.restartBroker(stack.brokers.indexOf(killed));
    await expectInvariants();
  });
});
