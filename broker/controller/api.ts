// PlanService and MigrationService (proto/ferry/v1/plans.proto, migrations.proto) over the
// controller. Authentication, the leader check and error mapping are the shell's
// (server/service.ts); handlers throw BrokerError with the field, the reason and the fix.
import { randomBytes } from "node:crypto";
import { parsePlan, parsePlanObject, type MigrationPlan } from "../../proto/plan.js";
import type { FieldError } from "../../proto/issues.js";
import type { MigrationServiceService } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan, type PlanServiceService } from "../../proto/gen/ferry/v1/plans.js";
import { MIGRATION_STATE_TO_PROTO } from "../../proto/convert.js";
import type { MigrationState } from "../../proto/bus/index.js";
import { BrokerError } from "../errors.js";
import type { Handlers } from "../server/service.js";
import { isCasConflict } from "../state/kv.js";
import { streamPlanFeed, type PlanChange, type WatchPlanSource } from "../server/watch.js";
import type { EventFeed, FeedEntry } from "../state/events.js";
import { checkPlan, createPlanRecords, expandPlan, isTerminal, migrationName, promisedMemory, promisedStorage, type CommandResult, type MigrationRecord, type PlanRecord, type PlanReport } from "../core/index.js";
import type { Controller } from "./controller.js";
import { migrationToProto, plannedToProto, planToProto, findingToProto } from "./convert.js";
import type { Cached } from "./store.js";

const FINISHED_PHASES = new Set(["Succeeded", "Failed", "PartiallyFailed", "Cancelled"]);
const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

function pageSize(n: number, field: string): number {
  if (n < 0) throw new BrokerError("invalid-argument", `${field} must not be negative`, { field });
  return Math.min(n || DEFAULT_PAGE, MAX_PAGE);
}

function pageStart(token: string, field = "page_token"): number {
  if (!token) return 0;
  const n = Number(Buffer.from(token, "base64url").toString());
  if (!Number.isInteger(n) || n < 0) throw new BrokerError("invalid-argument", "page_token is not one this broker issued; pass next_page_token of the previous response", { field });
  return n;
}

const tokenFor = (n: number) => Buffer.from(String(n)).toString("base64url");

function required(value: string, field: string, what: string): string {
  if (!value) throw new BrokerError("invalid-argument", `${field} is required: ${what}`, { field });
  return value;
}

function planNotFound(name: string): BrokerError {
  return new BrokerError("not-found", `plan "${name}" does not exist; list plans with \`ferryctl plan list\``, { reason: "PLAN_NOT_FOUND" });
}

function migrationNotFound(what: string): BrokerError {
  return new BrokerError("not-found", `migration ${what} does not exist; list a plan's migrations with \`ferryctl migration list --plan <plan>\``, { reason: "MIGRATION_NOT_FOUND" });
}

/** A fresh plan uid: the name's start (readable in Kubernetes labels) and 8 random hex digits. */
export function newPlanUid(name: string): string {
  const head = name.slice(0, 30).replace(/-+$/, "");
  return `${head}-${randomBytes(4).toString("hex")}`;
}

function parseDocument(req: { document: { $case: "text"; value: string } | { $case: "object"; value: Record<string, unknown> | undefined } | undefined }): MigrationPlan {
  const doc = req.document;
  if (!doc) throw new BrokerError("invalid-argument", "document is required: the MigrationPlan as YAML/JSON text or as an object", { field: "document" });
  const r = doc.$case === "text" ? parsePlan(doc.value) : parsePlanObject(doc.value ?? {});
  if (r.ok) return r.value;
  const fields = r.issues.map((e: FieldError) => ({ field: e.path, description: e.line ? `${e.message} (line ${e.line})` : e.message }));
  throw new BrokerError("invalid-argument", `the plan document is invalid (${r.issues.length} problem${r.issues.length > 1 ? "s" : ""}): ${r.issues.map((e) => `${e.path}: ${e.message}`).join("; ")}`, {
    reason: "INVALID_PLAN",
    fields,
  });
}

export class ControllerApi {
  constructor(
    private readonly c: Controller,
    private readonly events: EventFeed,
  ) {}

  /** Expansion plus the agents' describe-vm and preflight answers: the dry-run report. */
  async validate(plan: MigrationPlan, signal?: AbortSignal): Promise<PlanReport> {
    const now = this.c.now();
    const facts = await this.c.views.facts(now);
    const others = (await this.c.store.allMigrations()).filter((m) => m.plan !== plan.metadata.name && !isTerminal(m.state));
    const specs = new Map((await this.c.store.allPlans()).map((p) => [p.value.name, p.value.document.spec]));
    const expansion = expandPlan({
      plan,
      clusters: facts.clusters,
      inventories: facts.inventories,
      busy: others.map((m) => {
        const spec = specs.get(m.plan);
        return { plan: m.plan, source: m.source, target: m.target, memoryBytes: promisedMemory(m, facts.inventories), ...(spec ? { storageBytes: promisedStorage(m, spec, facts.inventories) } : {}) };
      }),
      now,
    });
    const results: CommandResult[] = [];
    for (let round = 0; round < 8; round++) {
      const { commands, report } = checkPlan(expansion, results, facts.clusters);
      if (report) return report;
      if (signal?.aborted) throw new BrokerError("unavailable", "the request was cancelled during validation");
      // Bounded fan-out: at most 16 agent requests at once.
      const queue = [...commands];
      await Promise.all(
        Array.from({ length: Math.min(16, queue.length) }, async () => {
          for (let cmd = queue.shift(); cmd; cmd = queue.shift()) results.push(await this.c.perform(cmd));
        }),
      );
    }
    throw new BrokerError("internal", "validation did not converge (the agents' answers kept asking for more checks)");
  }

  private async planWithMigrations(c: Cached<PlanRecord>): Promise<Plan> {
    const migrations = (await this.c.store.planMigrations(c.value.name)).map((x) => x.value);
    return planToProto(c.value, migrations);
  }

  private async findMigration(sel: { $case: "uid"; value: string } | { $case: "name"; value: string } | undefined): Promise<Cached<MigrationRecord>> {
    if (!sel || !sel.value) throw new BrokerError("invalid-argument", "migration is required: its uid, or its name <plan>/<namespace>/<vm>", { field: "migration" });
    if (sel.$case === "uid") {
      const m = await this.c.store.findMigration(sel.value);
      if (!m) throw migrationNotFound(`with uid "${sel.value}"`);
      return m;
    }
    const [plan, namespace, name, ...rest] = sel.value.split("/");
    if (!plan || !namespace || !name || rest.length > 0) {
      throw new BrokerError("invalid-argument", `name "${sel.value}" must be <plan>/<namespace>/<vm>`, { field: "name" });
    }
    const found = (await this.c.store.planMigrations(plan)).find((m) => m.value.source.namespace === namespace && m.value.source.name === name);
    if (!found) throw migrationNotFound(`"${sel.value}"`);
    return found;
  }

  /** Planned migrations (dry run) or stored ones, by plan name. */
  planHandlers(): Partial<Handlers<typeof PlanServiceService>> {
    const c = this.c;
    return {
      createPlan: async (req, ctx) => {
        const plan = parseDocument(req);
        const name = plan.metadata.name;
        if (!req.dryRun && (await c.store.getPlan(name))) {
          throw new BrokerError("already-exists", `plan "${name}" already exists; pick another metadata.name, or delete the old plan once it finished (\`ferryctl plan delete ${name}\`)`, {
            reason: "PLAN_EXISTS",
          });
        }
        const report = await this.validate(plan, ctx.signal);
        if (req.dryRun) {
          const n = report.migrations.length;
          return {
            plan: {
              name,
              document: structuredClone(plan) as unknown as Record<string, unknown>,
              phase: PlanPhase.PENDING,
              counters: { total: n, queued: n, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
              createTime: undefined,
              startTime: undefined,
              finishTime: undefined,
              migrations: report.migrations.map((m) => plannedToProto(name, m)),
              validation: report.findings.map(findingToProto),
              waitingReason: report.ok ? "" : "dry run: validation found errors; fix them before creating the plan",
            },
          };
        }
        if (!report.ok) {
          const errors = report.findings.filter((f) => f.severity === "error");
          throw new BrokerError(
            "failed-precondition",
            `plan "${name}" was not created: validation found ${errors.length} error${errors.length > 1 ? "s" : ""}: ${errors
              .slice(0, 5)
              .map((f) => `${f.code}: ${f.message}${f.fix ? ` (fix: ${f.fix})` : ""}`)
              .join("; ")}${errors.length > 5 ? `; and ${errors.length - 5} more` : ""}. Run it with --dry-run for the full report`,
            {
              reason: "PLAN_INVALID",
              violations: errors.map((f) => ({
                type: f.code,
                subject: f.vm ? `${f.vm.cluster}/${f.vm.namespace}/${f.vm.name}` : `plan/${name}`,
                description: `${f.message}${f.field ? ` [${f.field}]` : ""}${f.fix ? ` — fix: ${f.fix}` : ""}`,
              })),
            },
          );
        }
        const now = c.now();
        const records = createPlanRecords(plan, report, newPlanUid(name), now);
        // Migrations first, then the plan: the loop ignores migrations without a plan, so it never
        // sees a plan with only some of its migrations.
        const created: string[] = [];
        try {
          for (const m of records.migrations) created.push((await c.store.createMigration(m)).key);
          const p = await c.store.createPlan(records.plan);
          await c.publishEvents(
            [{ plan: name, time: now.toISOString(), type: "Normal", reason: "PlanCreated", message: `plan created with ${records.migrations.length} migration(s)${records.plan.findings.length ? `, ${records.plan.findings.length} warning(s)` : ""}`, planPhase: p.value.phase }],
            p.revision,
          );
          c.wake();
          return { plan: planToProto(p.value, records.migrations) };
        } catch (e) {
          for (const key of created) await c.store.deleteMigration(key).catch(() => undefined);
          if (isCasConflict(e)) {
            throw new BrokerError("already-exists", `plan "${name}" already exists (created concurrently); pick another metadata.name`, { reason: "PLAN_EXISTS" });
          }
          throw e;
        }
      },

      getPlan: async (req) => {
        const name = required(req.name, "name", "the plan's name");
        const p = await c.store.getPlan(name);
        if (!p) throw planNotFound(name);
        return { plan: await this.planWithMigrations(p) };
      },

      listPlans: async (req) => {
        const size = pageSize(req.pageSize, "page_size");
        const start = pageStart(req.pageToken);
        const all = (await c.store.allPlans()).map((p) => p.value).sort((a, b) => b.createdAt.localeCompare(a.createdAt) || a.name.localeCompare(b.name));
        const page = all.slice(start, start + size);
        return { plans: page.map((p) => planToProto(p)), nextPageToken: start + size < all.length ? tokenFor(start + size) : "" };
      },

      cancelPlan: async (req) => {
        const name = required(req.name, "name", "the plan to cancel");
        const p = await c.store.getPlan(name);
        if (!p) throw planNotFound(name);
        const written = await c.store.updatePlan(p, (cur) => (cur.cancelRequested || FINISHED_PHASES.has(cur.phase) ? undefined : { ...cur, cancelRequested: true, updatedAt: c.now().toISOString() }));
        if (written && written.revision !== p.revision) {
          await c.publishEvents([{ plan: name, time: c.now().toISOString(), type: "Normal", reason: "CancelRequested", message: "cancel requested for every unfinished migration", planPhase: written.value.phase }], written.revision);
          await c.reconciled();
        }
        const fresh = await c.store.getPlan(name);
        if (!fresh) throw planNotFound(name);
        return { plan: await this.planWithMigrations(fresh) };
      },

      deletePlan: async (req) => {
        const name = required(req.name, "name", "the plan to delete");
        const p = await c.store.getPlan(name);
        if (!p) throw planNotFound(name);
        const migrations = await c.store.planMigrations(name);
        const unfinished = migrations.filter((m) => !isTerminal(m.value.state));
        if (!FINISHED_PHASES.has(p.value.phase) || unfinished.length > 0) {
          throw new BrokerError("failed-precondition", `plan "${name}" is ${p.value.phase}; cancel it first (\`ferryctl plan cancel ${name}\`) and delete it once it is Cancelled`, {
            reason: "PLAN_NOT_FINISHED",
            violations: unfinished.map((m) => ({ type: "MigrationUnfinished", subject: migrationName(m.value), description: `migration ${m.value.uid} is ${m.value.state}` })),
          });
        }
        for (const m of migrations) {
          try {
            await c.store.deleteMigration(m.key, m.revision);
          } catch (e) {
            if (!isCasConflict(e)) throw e;
            // Written since it was read (a retry asked for meanwhile): delete it only if still finished.
            const now = (await c.store.planMigrations(name)).find((x) => x.key === m.key);
            if (now && !isTerminal(now.value.state)) {
              throw new BrokerError("failed-precondition", `migration ${migrationName(now.value)} became ${now.value.state} while plan "${name}" was being deleted; cancel it, then delete the plan`, { reason: "PLAN_NOT_FINISHED" });
            }
            if (now) await c.store.deleteMigration(now.key, now.revision);
          }
        }
        // The loop may have just rewritten the plan's status: delete at the revision read last.
        for (let cur: Cached<PlanRecord> | undefined = p, i = 0; cur; i++) {
          try {
            await c.store.deletePlan(name, cur.revision);
            break;
          } catch (e) {
            if (!isCasConflict(e) || i >= 5) throw e;
            cur = await c.store.getPlan(name);
          }
        }
        await c.publishEvents([{ plan: name, time: c.now().toISOString(), type: "Normal", reason: "PlanDeleted", message: `plan deleted with its ${migrations.length} migration record(s)` }], p.revision + 1);
        return {};
      },

      watchPlan: (req, ctx) => streamPlanFeed(this.events, this.watchSource(), req, ctx),
    };
  }

  watchSource(): WatchPlanSource {
    const c = this.c;
    return {
      snapshot: async (plan: string): Promise<PlanChange[]> => {
        const p = await c.store.getPlan(plan);
        if (!p) return [];
        const migrations = (await c.store.planMigrations(plan)).map((m) => m.value);
        return [{ $case: "plan", value: planToProto(p.value) }, ...migrations.map((m): PlanChange => ({ $case: "migration", value: migrationToProto(m) }))];
      },
      changesFor: async (entry: FeedEntry): Promise<PlanChange[] | "end"> => {
        const e = entry.event;
        if (e.reason === "PlanDeleted") return "end";
        if (e.migrationUid) {
          const m = await c.store.getMigration(`${e.plan}.${e.migrationUid}`);
          return m ? [{ $case: "migration", value: migrationToProto(m.value) }] : [];
        }
        const p = await c.store.getPlan(e.plan);
        return p ? [{ $case: "plan", value: planToProto(p.value) }] : "end";
      },
    };
  }

  migrationHandlers(): Partial<Handlers<typeof MigrationServiceService>> {
    const c = this.c;
    const fresh = async (m: Cached<MigrationRecord>) => (await c.store.getMigration(m.key)) ?? m;
    return {
      getMigration: async (req) => ({ migration: migrationToProto((await this.findMigration(req.migration)).value) }),

      listMigrations: async (req) => {
        const plan = required(req.plan, "plan", "the plan whose migrations to list");
        if (!(await c.store.getPlan(plan))) throw planNotFound(plan);
        const size = pageSize(req.pageSize, "page_size");
        const start = pageStart(req.pageToken);
        const wanted = new Set(req.states);
        const all = (await c.store.planMigrations(plan))
          .map((m) => m.value)
          .filter((m) => wanted.size === 0 || wanted.has(MIGRATION_STATE_TO_PROTO[m.state]))
          .sort((a, b) => migrationName(a).localeCompare(migrationName(b)));
        return { migrations: all.slice(start, start + size).map(migrationToProto), nextPageToken: start + size < all.length ? tokenFor(start + size) : "", totalSize: all.length };
      },

      cancelMigration: async (req) => {
        const m = await this.findMigration(req.migration);
        const refuse = (state: MigrationState, why: string) =>
          new BrokerError("failed-precondition", `migration ${migrationName(m.value)} is ${state}: ${why}`, {
            reason: "MIGRATION_NOT_CANCELLABLE",
            violations: [{ type: "MigrationState", subject: migrationName(m.value), description: `state ${state}` }],
          });
        const moved = (x: MigrationRecord) => x.state === "Finalizing" || (x.attempts.at(-1)?.targetCompleted ?? false);
        const written = await c.store.updateMigration(m, (cur) => {
          if (cur.state === "Succeeded") throw refuse(cur.state, "it finished; nothing to cancel");
          if (cur.state === "Failed") throw refuse(cur.state, "it already failed and everything it created was cleaned up; nothing to cancel");
          if (cur.state === "Cancelled" || cur.state === "Cancelling" || cur.cancelRequested) return undefined;
          if (moved(cur)) throw refuse(cur.state, `the VM already runs on ${cur.target.cluster}; the migration completes (cancel too late)`);
          return { ...cur, cancelRequested: true, updatedAt: c.now().toISOString() };
        });
        if (written && written.revision !== m.revision) {
          await c.publishEvents([{ plan: m.value.plan, migrationUid: m.value.uid, time: c.now().toISOString(), type: "Normal", reason: "CancelRequested", message: "cancel requested", migrationState: written.value.state }], written.revision);
          await c.reconciled();
        }
        return { migration: migrationToProto((await fresh(m)).value) };
      },

      retryMigration: async (req) => {
        const m = await this.findMigration(req.migration);
        const plan = await c.store.getPlan(m.value.plan);
        if (!plan) throw planNotFound(m.value.plan);
        if (plan.value.cancelRequested) {
          throw new BrokerError("failed-precondition", `plan ${plan.value.name} was cancelled; create a new plan to move ${migrationName(m.value)}`, {
            reason: "PLAN_CANCELLED",
            violations: [{ type: "PlanCancelled", subject: `plan/${plan.value.name}`, description: `plan phase ${plan.value.phase}` }],
          });
        }
        const written = await c.store.updateMigration(m, (cur) => {
          if (cur.state !== "Failed" && cur.state !== "Cancelled") {
            throw new BrokerError("failed-precondition", `migration ${migrationName(cur)} is ${cur.state}; only a Failed or Cancelled migration can be retried`, {
              reason: "MIGRATION_NOT_RETRYABLE",
              violations: [{ type: "MigrationState", subject: migrationName(cur), description: `state ${cur.state}` }],
            });
          }
          if (cur.retryRequested) return undefined;
          return { ...cur, retryRequested: true, updatedAt: c.now().toISOString() };
        });
        if (written && written.revision !== m.revision) await c.reconciled();
        return { migration: migrationToProto((await fresh(m)).value) };
      },
    };
  }
}
