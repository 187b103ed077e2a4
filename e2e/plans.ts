// Drives plans through the leader broker of a running stack (gRPC, admin certificate) for the
// end-to-end suites, and remembers every migration it saw so DESIGN.md §8 can be checked after
// each scenario, also for plans deleted since.
//
//   const plans = planDriver(stack);
//   await plans.create("cross", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [...] });
//   const plan = await plans.finished("cross");
//   expect(await plans.violations()).toEqual([]);
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { call, type BrokerClients } from "../broker/testing.js";
import { MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan } from "../proto/gen/ferry/v1/plans.js";
import type { ScenarioInput } from "../sim/scenario.js";
import { baseScenario } from "../stack/scenarios.js";
import type { Stack } from "../stack/stack.js";
import { checkInvariants, snapshotWorld, type Violation } from "./invariants.js";

export const FINISHED_PHASES = [PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED, PlanPhase.CANCELLED];

export interface PlanDriver {
  /** Admin clients of the leader now (waits through a failover). */
  leader(): Promise<BrokerClients>;
  /** Polls `fn` until it returns a value; on UNAVAILABLE (failover) it re-resolves the leader. */
  waitFor<T>(what: string, fn: (admin: BrokerClients) => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  /** Creates a plan; back-off starts at 1 s unless the spec says otherwise. */
  create(name: string, spec: Record<string, unknown>): Promise<Plan>;
  /** Waits until the plan is in a final phase; a timeout names each migration's state and reason. */
  finished(name: string, timeoutMs?: number): Promise<Plan>;
  /** Waits until `test` holds for the migration (`<plan>/<ns>/<vm>`); returns it. */
  migrationWhen(name: string, what: string, test: (m: Migration) => boolean, timeoutMs?: number): Promise<Migration>;
  /** Waits until the migration (`<plan>/<ns>/<vm>`) is in one of `states`. */
  migrationIn(name: string, states: MigrationState[], timeoutMs?: number): Promise<Migration>;
  /** Every migration seen so far, refreshed from the broker. */
  known(): Promise<Migration[]>;
  /** Every migration seen so far, without asking the broker (for samplers). */
  seen(): Migration[];
  /** DESIGN.md §8 on every cluster of the stack now. */
  violations(): Promise<Violation[]>;
}

export function planDriver(stack: Stack): PlanDriver {
  let admin: BrokerClients | undefined;
  const plans: string[] = [];
  const seen = new Map<string, Migration>();

  const leader = async () => (admin = await stack.leaderClients(60_000));
  const current = async () => admin ?? leader();

  const waitFor = async <T>(what: string, fn: (a: BrokerClients) => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> => {
    const deadline = Date.now() + timeoutMs;
    let last = "";
    for (;;) {
      try {
        const v = await fn(await current());
        if (v !== undefined) return v;
      } catch (e) {
        last = e instanceof Error ? e.message : String(e);
        if (/UNAVAILABLE|NOT_LEADER|^14 /.test(last)) await leader().catch(() => undefined);
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const getPlan = async (a: BrokerClients, name: string) => (await call(a.plans, "getPlan", { name })).plan!;

  const migrationWhen = async (name: string, what: string, test: (m: Migration) => boolean, timeoutMs?: number) => {
    let last: Migration | undefined;
    try {
      return await waitFor(`${name} ${what}`, async (a) => {
        last = (await call(a.migrations, "getMigration", { migration: { $case: "name", value: name } })).migration!;
        return test(last) ? last : undefined;
      }, timeoutMs);
    } catch (e) {
      const now = last ? ` (last seen ${MigrationState[last.state]}: ${last.waitingReason || last.lastError?.message || "no reason"})` : "";
      throw new Error(`${String(e)}${now}\nVMIMs now:\n${await describeVmims(stack)}`, { cause: e });
    }
  };

  const known = async () => {
    const a = await current();
    for (const plan of plans) {
      try {
        const { migrations } = await call(a.migrations, "listMigrations", { plan, states: [], pageSize: 1000, pageToken: "" });
        for (const m of migrations) seen.set(m.uid, m);
      } catch {
        // a deleted plan or a failover: keep what was seen
      }
    }
    return [...seen.values()];
  };

  return {
    leader,
    waitFor,
    async create(name, spec) {
      const doc = { apiVersion: "ferry.dev/v1alpha1", kind: "MigrationPlan", metadata: { name }, spec: { retry: { backoff: { initialSeconds: 1 } }, ...spec } };
      const plan = await waitFor(`plan ${name} created`, async (a) => (await call(a.plans, "createPlan", { document: { $case: "object", value: doc }, dryRun: false })).plan, 60_000);
      plans.push(name);
      return plan;
    },
    async finished(name, timeoutMs = 150_000) {
      try {
        return await waitFor(`plan ${name} to finish`, async (a) => {
          const plan = await getPlan(a, name);
          return FINISHED_PHASES.includes(plan.phase) ? plan : undefined;
        }, timeoutMs);
      } catch (e) {
        const plan = await getPlan(await current(), name);
        const migrations = plan.migrations.map((m) => `${m.name} ${MigrationState[m.state]}: ${m.waitingReason || m.lastError?.message}`).join("; ");
        throw new Error(`${String(e)}: ${migrations}\nVMIMs now:\n${await describeVmims(stack)}`, { cause: e });
      }
    },
    migrationWhen,
    migrationIn(name, states, timeoutMs) {
      return migrationWhen(name, `in ${states.map((s) => MigrationState[s]).join("/")}`, (m) => states.includes(m.state), timeoutMs);
    },
    known,
    seen: () => [...seen.values()],
    async violations() {
      return checkInvariants(stack.world, await known());
    },
  };
}

/**
 * A temporary directory for a suite's stack (kubeconfigs, logs). Call at the top level of a test
 * file: it is removed after the suite unless a test failed or FERRY_E2E_KEEP is set, in which case
 * its path is printed so the broker, agent and NATS logs can be read.
 */
export function suiteDir(prefix: string): { readonly path: string; cleanup(): void } {
  const path = mkdtempSync(join(tmpdir(), `ferry-e2e-${prefix}-`));
  let failed = false;
  afterEach((ctx) => {
    if (ctx.task.result?.state === "fail") failed = true;
  });
  return {
    path,
    cleanup() {
      if (failed || process.env["FERRY_E2E_KEEP"]) console.error(`e2e: kept ${path} (logs/ has every process's log)`);
      else rmSync(path, { recursive: true, force: true });
    },
  };
}

/** One line per VMIM on every cluster (phase, deletion, finalizers, conditions): what a stuck abort waits for. */
async function describeVmims(stack: Stack): Promise<string> {
  const lines: string[] = [];
  for (const [cluster, snap] of await snapshotWorld(stack.world)) {
    for (const v of snap.vmims) {
      const md = v.metadata;
      const conditions = ((v.status?.["conditions"] as { type: string; status: string; message?: string }[] | undefined) ?? []).map((c) => `${c.type}=${c.status}${c.message ? ` (${c.message})` : ""}`);
      lines.push(`  ${cluster} ${md?.namespace}/${md?.name} phase=${(v.status?.["phase"] as string | undefined) ?? ""}${md?.deletionTimestamp ? " deleting" : ""} finalizers=[${(md?.finalizers ?? []).join(",")}] ${conditions.join("; ")}`);
    }
  }
  return lines.join("\n") || "  (none)";
}

/**
 * The stack's base scenario with these VMs per cluster, and KubeVirt's migration timeouts beyond any
 * test: a copy the test holds in flight (a guest that never converges, agents that are dead) ends
 * when the test releases it, never because KubeVirt gave up.
 */
export function patientScenario(vms: Record<string, NonNullable<NonNullable<ScenarioInput["clusters"]>[string]>["vms"]>): ScenarioInput {
  const base = baseScenario();
  return {
    ...base,
    defaults: { ...base.defaults, kubevirt: { migrations: { progressTimeout: 86_400, completionTimeoutPerGiB: 86_400 } } },
    clusters: Object.fromEntries(Object.entries(vms).map(([c, v]) => [c, { vms: v }])),
  };
}
