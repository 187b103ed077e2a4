// The controller end to end inside one broker: real nats-server, real broker (in process, so the
// test can move the controller's clock), gRPC over TLS with an admin certificate, and scripted
// bus-level agents (./testing.ts) for two clusters.
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readStatusDetails } from "../../proto/grpc-status.js";
import { MigrationKind, MigrationState, type Migration } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type WatchPlanResponse } from "../../proto/gen/ferry/v1/plans.js";
import { call, startBrokerEnv, type BrokerClients, type BrokerEnv } from "../testing.js";
import type { Controller } from "./controller.js";
import { controllerFactory } from "./index.js";
import { ScriptedWorld, testVm, type ScriptedAgent } from "./testing.js";

let env: BrokerEnv;
let admin: BrokerClients;
let controller: Controller;
let world: ScriptedWorld;
let east: ScriptedAgent;
let west: ScriptedAgent;
let north: ScriptedAgent;
let httpPort: number;
let address: string;
/** Added to the wall clock: the controller's time. */
let offsetMs = 0;

async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: Error | undefined;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (e) {
      last = e instanceof Error ? e : new Error(String(e));
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ""}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function planDoc(name: string, vms: string[], extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "ferry.dev/v1alpha1",
    kind: "MigrationPlan",
    metadata: { name },
    spec: { source: { cluster: "east" }, target: { cluster: "west" }, vms: vms.map((n) => ({ namespace: "db", name: n })), retry: { maxAttempts: 1, backoff: { initialSeconds: 1 } }, ...extra },
  };
}

const create = (doc: object, dryRun = false) => call(admin.plans, "createPlan", { document: { $case: "object", value: doc }, dryRun });
const getPlan = async (name: string) => (await call(admin.plans, "getPlan", { name })).plan!;
const planIn = (name: string, ...phases: PlanPhase[]) => waitFor(`plan ${name} in ${phases.map((p) => PlanPhase[p]).join("/")}`, async () => {
  const p = await getPlan(name);
  return phases.includes(p.phase) ? p : undefined;
});
const migrationIn = (name: string, vm: string, state: MigrationState) =>
  waitFor(`migration ${name}/db/${vm} in ${MigrationState[state]}`, async () => {
    const m = (await call(admin.migrations, "getMigration", { migration: { $case: "name", value: `${name}/db/${vm}` } })).migration!;
    return m.state === state ? m : undefined;
  });

async function metric(name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name) && !l.startsWith("#"))
    .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
}

beforeAll(async () => {
  env = await startBrokerEnv();
  const broker = await env.startInProcess("broker-0", { agents: { heartbeatGraceSeconds: 2 } }, { controller: controllerFactory({ now: () => new Date(Date.now() + offsetMs), tickMs: 100 }, (c) => (controller = c)) });
  httpPort = broker.httpPort;
  address = broker.grpcAddress;
  await waitFor("leadership", () => broker.runtime.leader.isLeader);
  admin = await env.adminClients(broker.grpcAddress);
  world = new ScriptedWorld({ migrationMs: 30 });
  const [e, w, n] = await Promise.all(["east", "west", "north"].map((c) => env.enrollAgent(broker.grpcAddress, c)));
  const vms = Array.from({ length: 13 }, (_, i) => testVm("db", `pg-${i}`));
  vms.push(testVm("cap", "a"), testVm("cap", "b")); // 10 GiB each in class standard
  vms.push(testVm("db", "cold-0", { runStrategy: "Halted", printableStatus: "Stopped", vmiPhase: undefined, node: undefined }));
  // 24 VMs over two source nodes for the bulk plan.
  for (let i = 0; i < 24; i++) vms.push(testVm("bulk", `vm-${i}`, { node: i % 2 ? "node-b" : "node-a", memoryBytes: (1 + (i % 4)) * 2 ** 30 }));
  east = await world.agent({ cluster: "east", bus: e!.bus, vms });
  west = await world.agent({ cluster: "west", bus: w!.bus, vms: [] });
  north = await world.agent({ cluster: "north", bus: n!.bus, vms: [], nodeMemoryBytes: 8 * 2 ** 30 });
  await waitFor("every inventory", async () => {
    const { clusters } = await controller.views.facts(new Date());
    return ["east", "west", "north"].every((c) => clusters[c]?.availability === "available" && clusters[c]?.caBundle !== undefined);
  });
}, 60_000);

afterAll(async () => {
  admin?.close();
  await world?.stop();
  await env?.stop();
});

describe("PlanService.CreatePlan", () => {
  it("dry run returns the full report and the migrations it would create, and creates nothing", async () => {
    world.script("db/pg-9", { preflightIssues: [{ code: "TargetNameCollision", severity: "error", field: "metadata.name", message: "west already has a VM db/pg-9 that ferry did not create", fix: "rename or delete db/pg-9 on west" }] });
    const { plan } = await create(planDoc("dry", ["pg-0", "pg-9"]), true);
    expect(plan!.migrations.map((m) => m.name)).toEqual(["dry/db/pg-0", "dry/db/pg-9"]);
    expect(plan!.migrations.every((m) => m.uid === "" && m.target?.cluster === "west")).toBe(true);
    expect(plan!.validation.find((v) => v.code === "TargetNameCollision")).toMatchObject({ vm: { cluster: "east", namespace: "db", name: "pg-9" }, fix: "rename or delete db/pg-9 on west" });
    const err = await call(admin.plans, "getPlan", { name: "dry" }).catch((e: ServiceError) => e);
    expect((err as ServiceError).code).toBe(5); // NOT_FOUND
    expect((await call(admin.plans, "listPlans", { pageSize: 0, pageToken: "" })).plans.map((p) => p.name)).not.toContain("dry");

    // Without dry run: FAILED_PRECONDITION naming the VM and the fix; still nothing created.
    const refused = (await create(planDoc("dry", ["pg-0", "pg-9"])).catch((e: ServiceError) => e)) as ServiceError;
    expect(refused.code).toBe(9);
    const pf = readStatusDetails(refused.metadata).find((d) => d.$case === "preconditionFailure");
    expect(pf?.value).toMatchObject({ violations: [{ type: "TargetNameCollision", subject: "east/db/pg-9" }] });
    expect((pf!.value as { violations: { description: string }[] }).violations[0]!.description).toContain("rename or delete db/pg-9 on west");
    expect((await call(admin.plans, "getPlan", { name: "dry" }).catch((e: ServiceError) => e)) as ServiceError).toMatchObject({ code: 5 });
    world.script("db/pg-9", {});
  });

  it("an invalid document is INVALID_ARGUMENT with every bad field", async () => {
    const err = (await create({ ...planDoc("bad", ["pg-0"]), spec: { source: { cluster: "east" }, target: { cluster: "west" }, vms: [{ namespace: "db", name: "pg-0" }], sourcePolicy: "keep", limits: { maxInFlight: 0 } } }).catch((e: ServiceError) => e)) as ServiceError;
    expect(err.code).toBe(3);
    const fields = readStatusDetails(err.metadata).flatMap((d) => (d.$case === "badRequest" ? d.value.fieldViolations.map((v) => v.field) : []));
    expect(fields).toEqual(expect.arrayContaining(["spec.sourcePolicy", "spec.limits.maxInFlight"]));
  });
});

describe("the reconcile loop", () => {
  it("moves a plan's VMs to the target: Succeeded, source halted, plan SUCCEEDED", async () => {
    const { plan } = await create(planDoc("move", ["pg-0", "pg-1"]));
    expect(plan!.phase).toBe(PlanPhase.PENDING);
    const done = await planIn("move", PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED);
    expect(done.phase).toBe(PlanPhase.SUCCEEDED);
    expect(done.counters).toMatchObject({ total: 2, succeeded: 2 });
    for (const m of done.migrations) {
      expect(m.state).toBe(MigrationState.SUCCEEDED);
      expect(m.attempt).toBe(1);
      expect(m.migrationId).toBe(`${m.uid}-1`);
      expect(m.waitingReason).toBe("");
    }
    expect(west.vms.map((v) => v.name)).toEqual(expect.arrayContaining(["pg-0", "pg-1"]));
    expect(east.vms.find((v) => v.name === "pg-0")?.runStrategy).toBe("Halted");
    // Finished migrations leave the task sets.
    await waitFor("empty task set on west", () => west.taskSets.at(-1)?.tasks.length === 0);
    expect(await metric('ferry_migrations{state="Succeeded"')).toBeGreaterThanOrEqual(2);
    expect(await metric("ferry_migration_duration_seconds_count")).toBeGreaterThanOrEqual(2);
  });

  it("cancel mid-flight aborts on both sides; the source keeps running", async () => {
    world.script("db/pg-2", { hold: true });
    await create(planDoc("cancel", ["pg-2"]));
    const m = await migrationIn("cancel", "pg-2", MigrationState.MIGRATING);
    // A cluster in use cannot be removed: the controller names the migration.
    const inUse = (await call(admin.clusters, "removeCluster", { name: "west" }).catch((e: ServiceError) => e)) as ServiceError;
    expect(inUse.code).toBe(9);
    expect(readStatusDetails(inUse.metadata).find((d) => d.$case === "preconditionFailure")?.value).toMatchObject({ violations: [{ type: "MigrationInFlight", subject: "cancel/db/pg-2" }] });
    const { plan } = await call(admin.plans, "cancelPlan", { name: "cancel" });
    expect([PlanPhase.CANCELLING, PlanPhase.CANCELLED]).toContain(plan!.phase);
    const done = await planIn("cancel", PlanPhase.CANCELLED);
    expect(done.migrations[0]!.state).toBe(MigrationState.CANCELLED);
    expect(east.actions).toContain(`${m.uid}/1/source/abort`);
    expect(west.actions).toContain(`${m.uid}/1/target/abort`);
    expect(east.vms.find((v) => v.name === "pg-2")?.runStrategy).toBe("Always");
    expect(west.vms.find((v) => v.name === "pg-2")).toBeUndefined();
    world.release();
    // Cancelling a cancelled migration is idempotent; a finished one is FAILED_PRECONDITION.
    expect((await call(admin.migrations, "cancelMigration", { migration: { $case: "uid", value: m.uid } })).migration!.state).toBe(MigrationState.CANCELLED);
    const moved = (await call(admin.migrations, "cancelMigration", { migration: { $case: "name", value: "move/db/pg-0" } }).catch((e: ServiceError) => e)) as ServiceError;
    expect(moved.code).toBe(9);
    expect(moved.details).toContain("Succeeded");
  });

  it("a failed migration is retried on request with a new migrationID and succeeds", async () => {
    world.script("db/pg-3", { fail: 1 });
    await create(planDoc("retry", ["pg-3"]));
    const failed = await migrationIn("retry", "pg-3", MigrationState.FAILED);
    expect(failed.lastError?.message).toContain("scripted failure");
    expect((await getPlan("retry")).phase).toBe(PlanPhase.FAILED);
    expect(east.actions).toContain(`${failed.uid}/1/source/abort`);
    const { migration } = await call(admin.migrations, "retryMigration", { migration: { $case: "name", value: "retry/db/pg-3" } });
    expect(migration!.state).not.toBe(MigrationState.FAILED);
    const done = await migrationIn("retry", "pg-3", MigrationState.SUCCEEDED);
    expect(done.attempt).toBe(2);
    expect(done.migrationId).toBe(`${done.uid}-2`);
    expect(done.attempts.map((a) => [a.migrationId, a.outcome])).toEqual([
      [`${done.uid}-1`, MigrationState.FAILED],
      [`${done.uid}-2`, MigrationState.SUCCEEDED],
    ]);
    expect((await planIn("retry", PlanPhase.SUCCEEDED)).counters).toMatchObject({ succeeded: 1, failed: 0 });
    // Retrying a succeeded migration is refused.
    const again = (await call(admin.migrations, "retryMigration", { migration: { $case: "uid", value: done.uid } }).catch((e: ServiceError) => e)) as ServiceError;
    expect(again.code).toBe(9);
  });

  it("a stalled attempt is failed by the watchdog and retried after the back-off", async () => {
    world.script("db/pg-4", { stall: 1 });
    const stallsBefore = await metric("ferry_migration_stalls_total");
    await create(planDoc("stall", ["pg-4"], { stallTimeoutSeconds: 60, retry: { maxAttempts: 2, backoff: { initialSeconds: 5 } } }));
    const m = await migrationIn("stall", "pg-4", MigrationState.MIGRATING);
    expect(m.waitingReason).toContain("KubeVirt is migrating");
    offsetMs += 61_000; // the controller's clock passes the stall timeout
    await waitFor("stall detected", async () => {
      const x = (await call(admin.migrations, "getMigration", { migration: { $case: "uid", value: m.uid } })).migration!;
      return x.attempts[0]?.error?.code === "Stalled" ? x : undefined;
    });
    offsetMs += 6_000; // and the back-off
    const done = await migrationIn("stall", "pg-4", MigrationState.SUCCEEDED);
    expect(done.attempt).toBe(2);
    expect(done.attempts[0]!.error!.message).toContain("no progress for");
    expect(await metric("ferry_migration_stalls_total")).toBe(stallsBefore + 1);
    expect(await metric('ferry_migration_retries_total{kind="automatic"}')).toBeGreaterThanOrEqual(1);
  });
});

describe("plan window", () => {
  it("a plan outside its window waits and says which window; it starts once the window opens", async () => {
    const hh = (d: Date) => `${String(d.getUTCHours()).padStart(2, "0")}:00`;
    const now = new Date(Date.now() + offsetMs);
    const start = new Date(now.getTime() + 2 * 3_600_000);
    const end = new Date(now.getTime() + 4 * 3_600_000);
    await create(planDoc("window", ["pg-12"], { window: { start: hh(start), end: hh(end), timeZone: "UTC" } }));
    const waiting = await waitFor("the window reason", async () => {
      const p = await getPlan("window");
      return p.waitingReason.startsWith("outside the plan's window") ? p : undefined;
    });
    expect(waiting.waitingReason).toBe(`outside the plan's window ${hh(start)}–${hh(end)} UTC`);
    expect(waiting.phase).toBe(PlanPhase.PENDING);
    expect(waiting.migrations[0]!.state).toBe(MigrationState.QUEUED);
    offsetMs += 2.5 * 3_600_000; // the next pass (timer or report) sees the window open
    const done = await planIn("window", PlanPhase.SUCCEEDED, PlanPhase.FAILED);
    expect(done.phase).toBe(PlanPhase.SUCCEEDED);
  });
});

describe("same-cluster moves", () => {
  it("a running VM moves its volumes live (storage) and a stopped one offline, both on the one cluster", async () => {
    const doc = { ...planDoc("restore", ["pg-11", "cold-0"]), spec: { ...planDoc("restore", ["pg-11", "cold-0"]).spec, target: { cluster: "east" }, storageMap: [{ source: "standard", target: "fast" }] } };
    const dry = (await create(doc, true)).plan!;
    expect(dry.migrations.map((m) => [m.name, m.kind])).toEqual([
      ["restore/db/cold-0", MigrationKind.OFFLINE],
      ["restore/db/pg-11", MigrationKind.STORAGE_LIVE],
    ]);
    await create(doc);
    const done = await planIn("restore", PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED);
    expect(done.phase).toBe(PlanPhase.SUCCEEDED);
    for (const m of done.migrations) {
      const role = m.kind === MigrationKind.OFFLINE ? "offline" : "storage";
      expect(east.actions).toEqual(expect.arrayContaining([`${m.uid}/1/${role}/migrate`, `${m.uid}/1/${role}/finalize`]));
    }
    expect(west.actions.some((a) => done.migrations.some((m) => a.startsWith(m.uid)))).toBe(false);
  });
});

describe("an unreachable cluster", () => {
  it("pauses the migration and its watchdog, aborts nothing, and the migration completes when the cluster is back", async () => {
    world.script("db/pg-10", { hold: true });
    await create(planDoc("away", ["pg-10"], { stallTimeoutSeconds: 60 }));
    const m = await migrationIn("away", "pg-10", MigrationState.MIGRATING);
    west.pause();
    const waiting = await waitFor("the unreachable reason", async () => {
      const x = (await call(admin.migrations, "getMigration", { migration: { $case: "uid", value: m.uid } })).migration!;
      return x.waitingReason.startsWith("cluster west is unreachable") ? x : undefined;
    });
    expect(waiting.waitingReason).toContain("nothing is aborted meanwhile");
    offsetMs += 3_600_000; // an hour passes on the controller's clock: far past the stall timeout
    await controller.reconciled();
    await controller.reconciled();
    const still = (await call(admin.migrations, "getMigration", { migration: { $case: "uid", value: m.uid } })).migration!;
    expect(still.state).toBe(MigrationState.MIGRATING);
    expect(still.attempts.map((a) => a.outcome)).toEqual([MigrationState.UNSPECIFIED]);
    expect(east.actions.filter((a) => a.startsWith(`${m.uid}/`) && a.endsWith("/abort"))).toEqual([]);
    west.resume();
    world.release();
    const done = await migrationIn("away", "pg-10", MigrationState.SUCCEEDED);
    expect(done.attempt).toBe(1);
  });
});

describe("scheduling", () => {
  it("a plan of 24 VMs never exceeds the source nodes' slots, says why the others wait, and finishes", async () => {
    const names = Array.from({ length: 24 }, (_, i) => `vm-${i}`);
    for (const n of names) world.script(`bulk/${n}`, { hold: true });
    const doc = { ...planDoc("bulk", []), spec: { ...planDoc("bulk", []).spec, vms: names.map((name) => ({ namespace: "bulk", name })), limits: { maxInFlight: 20 } } };
    await create(doc);
    // Every send is held: the slots fill (2 per source node: parallelOutboundMigrationsPerNode) and stay full.
    const list = async () => (await call(admin.migrations, "listMigrations", { plan: "bulk", states: [], pageSize: 0, pageToken: "" })).migrations;
    const queued = await waitFor("4 migrating, 20 queued with a reason", async () => {
      const ms = await list();
      const migrating = ms.filter((m) => m.state === MigrationState.MIGRATING);
      const waiting = ms.filter((m) => m.state === MigrationState.QUEUED);
      return migrating.length === 4 && waiting.length === 20 ? waiting : undefined;
    });
    for (const m of queued) expect(m.waitingReason).toMatch(/^waiting for a migration slot on source node node-[ab] \(2\/2 in flight, parallelOutboundMigrationsPerNode of cluster east\)$/);
    const plan = await getPlan("bulk");
    expect(plan.counters).toMatchObject({ total: 24, running: 4, queued: 20 });
    expect(await metric("ferry_migrations_queue_length")).toBe(20);
    world.release();
    const done = await planIn("bulk", PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED);
    expect(done.phase).toBe(PlanPhase.SUCCEEDED);
    expect(world.maxActive.get("east/node-a")).toBeLessThanOrEqual(2);
    expect(world.maxActive.get("east/node-b")).toBeLessThanOrEqual(2);
    expect(world.maxActive.get("west")).toBeLessThanOrEqual(5);
    expect(done.migrations.every((m) => m.attempt === 1)).toBe(true);
  });
});

describe("evacuation", () => {
  it("places each VM with the reason in its migration; the plan runs to success", async () => {
    const doc = { ...planDoc("evacuate", ["pg-7", "pg-8"]), spec: { ...planDoc("evacuate", ["pg-7", "pg-8"]).spec, target: { evacuate: true, candidates: ["west", "north"] } } };
    const dry = (await create(doc, true)).plan!;
    expect(dry.migrations.map((m) => m.placement)).toEqual([expect.stringMatching(/^placed on (west|north)/), expect.stringMatching(/^placed on (west|north)/)]);
    await create(doc);
    const done = await planIn("evacuate", PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED);
    expect(done.phase).toBe(PlanPhase.SUCCEEDED);
    for (const m of done.migrations) {
      expect(m.placement).toMatch(new RegExp(`^placed on ${m.target!.cluster}`));
      const agent = m.target!.cluster === "north" ? north : west;
      expect(agent.vms.map((v) => v.name)).toContain(m.source!.name);
    }
  });
});

describe("evacuation and storage capacity", () => {
  it("refuses a candidate whose class lacks room once another plan's queued migration has promised it", async () => {
    const GiB = 2 ** 30;
    north.storageCapacity = { standard: 15 * GiB };
    north.publishInventory();
    await waitFor("north's capacity in the broker", async () => ((await controller.views.facts(new Date())).inventories["north"]?.storageClasses.find((c) => c.name === "standard")?.capacityBytes === 15 * GiB) || undefined);
    const evacuate = { apiVersion: "ferry.dev/v1alpha1", kind: "MigrationPlan", metadata: { name: "cap-evac" }, spec: { source: { cluster: "east" }, vms: [{ namespace: "cap", name: "a" }], target: { evacuate: true, candidates: ["north"] } } };
    const fits = (await create(evacuate, true)).plan!;
    expect(fits.migrations[0]?.placement).toMatch(/^placed on north: .*, class standard 33% \(5 GiB of the 15 GiB it reports free\)$/);

    // Another plan's migration to north waits outside its window: its 10 GiB are promised to north's standard.
    const hh = (d: Date) => `${String(d.getUTCHours()).padStart(2, "0")}:00`;
    const now = new Date(Date.now() + offsetMs);
    const window = { start: hh(new Date(now.getTime() + 2 * 3_600_000)), end: hh(new Date(now.getTime() + 4 * 3_600_000)), timeZone: "UTC" };
    await create({ ...evacuate, metadata: { name: "cap-later" }, spec: { source: { cluster: "east" }, vms: [{ namespace: "cap", name: "b" }], target: { cluster: "north" }, window } });
    await waitFor("cap-later queued", async () => (await call(admin.migrations, "getMigration", { migration: { $case: "name", value: "cap-later/cap/b" } })).migration?.state === MigrationState.QUEUED || undefined);
    const refused = (await create(evacuate, true)).plan!;
    expect(refused.migrations).toEqual([]);
    expect(refused.validation.find((v) => v.code === "NoPlacement")?.message).toBe("no candidate cluster can take VM cap/a (2 GiB): north: class standard has 5 GiB free, VM needs 10 GiB");

    await call(admin.plans, "cancelPlan", { name: "cap-later" });
    await planIn("cap-later", PlanPhase.CANCELLED);
    await call(admin.plans, "deletePlan", { name: "cap-later" });
    north.storageCapacity = {};
    north.publishInventory();
  });
});

describe("listing and access", () => {
  it("pages plans newest first and migrations by name; refuses a foreign page token and non-admin callers", async () => {
    const all = (await call(admin.plans, "listPlans", { pageSize: 0, pageToken: "" })).plans;
    expect(all.length).toBeGreaterThan(3);
    expect(all.map((p) => p.createTime!.getTime())).toEqual([...all.map((p) => p.createTime!.getTime())].sort((a, b) => b - a));
    const seen: string[] = [];
    let token = "";
    do {
      const page = await call(admin.plans, "listPlans", { pageSize: 2, pageToken: token });
      expect(page.plans.length).toBeLessThanOrEqual(2);
      expect(page.plans.every((p) => p.migrations.length === 0)).toBe(true);
      seen.push(...page.plans.map((p) => p.name));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual(all.map((p) => p.name));
    const bad = (await call(admin.plans, "listPlans", { pageSize: 2, pageToken: "nonsense!" }).catch((e: ServiceError) => e)) as ServiceError;
    expect(bad.code).toBe(3);
    expect(readStatusDetails(bad.metadata).find((d) => d.$case === "badRequest")?.value).toMatchObject({ fieldViolations: [{ field: "page_token" }] });

    const page = await call(admin.migrations, "listMigrations", { plan: "bulk", states: [MigrationState.SUCCEEDED], pageSize: 10, pageToken: "" });
    expect(page.totalSize).toBe(24);
    expect(page.migrations.map((m) => m.name)).toEqual([...page.migrations.map((m) => m.name)].sort());
    const none = await call(admin.migrations, "listMigrations", { plan: "bulk", states: [MigrationState.FAILED], pageSize: 0, pageToken: "" });
    expect(none).toMatchObject({ migrations: [], totalSize: 0, nextPageToken: "" });

    const asAgent = env.clients(address, await env.channelCredentials({ role: "agent", cluster: "east" }));
    const denied = (await call(asAgent.plans, "listPlans", { pageSize: 0, pageToken: "" }).catch((e: ServiceError) => e)) as ServiceError;
    asAgent.close();
    expect(denied.code).toBe(7); // PERMISSION_DENIED
    const anonymous = env.clients(address, await env.channelCredentials(null));
    const unauth = (await call(anonymous.migrations, "getMigration", { migration: { $case: "name", value: "bulk/bulk/vm-0" } }).catch((e: ServiceError) => e)) as ServiceError;
    anonymous.close();
    expect(unauth.code).toBe(16); // UNAUTHENTICATED
  });
});

describe("PlanService.WatchPlan", () => {
  function collect(name: string, afterSeq: number, until: (r: WatchPlanResponse) => boolean) {
    const stream = admin.plans.watchPlan({ name, afterSeq });
    const got: WatchPlanResponse[] = [];
    let snapshotDone!: () => void;
    const snapshot = new Promise<void>((r) => (snapshotDone = r));
    const done = new Promise<WatchPlanResponse[]>((resolve, reject) => {
      stream.on("data", (r: WatchPlanResponse) => {
        got.push(r);
        if (r.snapshotComplete) snapshotDone();
        if (until(r)) {
          stream.cancel();
          resolve(got);
        }
      });
      stream.on("error", (e: ServiceError) => (String(e.code) === String(status.CANCELLED) ? resolve(got) : reject(e)));
      stream.on("end", () => resolve(got));
    });
    return { done, snapshot };
  }
  const finished = (r: WatchPlanResponse) => r.change?.$case === "plan" && r.change.value.phase === PlanPhase.SUCCEEDED && r.message !== "";
  const live = (r: WatchPlanResponse) => r.message !== "";

  it("streams a snapshot then live changes; a client that resumes from its last seq misses nothing", async () => {
    world.script("db/pg-5", { hold: true });
    await create(planDoc("watch", ["pg-5"]));
    await migrationIn("watch", "pg-5", MigrationState.MIGRATING);
    const full = collect("watch", 0, finished);
    const first = collect("watch", 0, live);
    await Promise.all([full.snapshot, first.snapshot]);
    world.release(); // live changes start
    const part = await first.done;
    const snapshot = part.filter((r) => !live(r));
    expect(snapshot[0]!.change?.$case).toBe("plan");
    expect(snapshot.map((r) => r.change?.$case)).toEqual(["plan", "migration"]);
    expect(snapshot.at(-1)!.snapshotComplete).toBe(true);
    const lastSeen = part.at(-1)!.seq;
    // The client lost its stream after one live change; it resumes from the seq it processed.
    const rest = await collect("watch", lastSeen, finished).done;
    const all = await full.done;
    expect(rest.every((r) => r.seq > lastSeen && live(r))).toBe(true);
    const from = Math.max(all[0]!.seq, part[0]!.seq);
    const seqs = (list: WatchPlanResponse[]) => [...new Set(list.filter((r) => live(r) && r.seq > from).map((r) => r.seq))];
    expect(seqs(part).length).toBeGreaterThan(0);
    expect([...seqs(part), ...seqs(rest)]).toEqual(seqs(all));
    const migrationsSeen = all.filter((r) => live(r) && r.change?.$case === "migration").map((r) => (r.change!.value as Migration).state);
    expect(migrationsSeen).toContain(MigrationState.SUCCEEDED);
  });

  it("a deleted plan ends the stream; a running plan cannot be deleted", async () => {
    world.script("db/pg-6", { hold: true });
    await create(planDoc("gone", ["pg-6"]));
    const refused = (await call(admin.plans, "deletePlan", { name: "gone" }).catch((e: ServiceError) => e)) as ServiceError;
    expect(refused.code).toBe(9);
    world.release();
    await planIn("gone", PlanPhase.SUCCEEDED);
    const stream = collect("gone", 0, () => false);
    await call(admin.plans, "deletePlan", { name: "gone" });
    const got = await stream.done;
    expect(got[0]!.change?.$case).toBe("plan");
    expect((await call(admin.plans, "getPlan", { name: "gone" }).catch((e: ServiceError) => e)) as ServiceError).toMatchObject({ code: 5 });
    expect((await call(admin.migrations, "listMigrations", { plan: "gone", states: [], pageSize: 0, pageToken: "" }).catch((e: ServiceError) => e)) as ServiceError).toMatchObject({ code: 5 });
  });
});
