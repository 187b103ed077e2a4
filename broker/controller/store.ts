// The plan and migration records in JetStream KV (ferry_plans, ferry_migrations), with a cache the
// leader's loop reads each pass. The cache is rebuilt from KV at the start of every leader term
// and periodically, and updated by every write this process makes; every write is a
// compare-and-set on the revision the writer read, so a stale cache (or a deposed leader still
// writing) can only cause a conflict, which the writer resolves by reading the key again.
//
//   ferry_plans        <plan name>            PlanRecord
//   ferry_migrations   <plan name>.<uid>      MigrationRecord   (listing a plan = keys "<plan>.>")
import type { Logger } from "pino";
import type { TypedEntry, TypedKv } from "../../bus/index.js";
import { KV_BUCKETS } from "../../proto/bus/subjects.js";
import { MigrationRecord, PlanRecord } from "../core/index.js";
import { isCasConflict, listValues, type BrokerState } from "../state/kv.js";

export interface Cached<T> {
  key: string;
  value: T;
  revision: number;
}

export const migrationKey = (m: Pick<MigrationRecord, "plan" | "uid">): string => `${m.plan}.${m.uid}`;

export class RecordStore {
  readonly plans = new Map<string, Cached<PlanRecord>>();
  readonly migrations = new Map<string, Cached<MigrationRecord>>();

  private constructor(
    readonly planKv: TypedKv<typeof PlanRecord>,
    readonly migrationKv: TypedKv<typeof MigrationRecord>,
    private readonly log: Logger,
  ) {}

  static async open(state: BrokerState, log: Logger): Promise<RecordStore> {
    const planKv = await state.bucket(KV_BUCKETS.plans, PlanRecord);
    const migrationKv = await state.bucket(KV_BUCKETS.migrations, MigrationRecord);
    return new RecordStore(planKv, migrationKv, log);
  }

  /** Replace the cache with what KV holds now. */
  async reload(): Promise<void> {
    const invalid = (key: string, err: Error) => this.log.error({ key, err: err.message }, "skipping invalid record");
    const [plans, migrations] = await Promise.all([listValues(this.planKv, "", invalid), listValues(this.migrationKv, "", invalid)]);
    this.plans.clear();
    for (const e of plans) this.plans.set(e.key, { key: e.key, value: e.value, revision: e.revision });
    this.migrations.clear();
    for (const e of migrations) this.migrations.set(e.key, { key: e.key, value: e.value, revision: e.revision });
  }

  private remember<T>(cache: Map<string, Cached<T>>, key: string, entry: TypedEntry<T> | undefined): Cached<T> | undefined {
    if (!entry) {
      cache.delete(key);
      return undefined;
    }
    const c = { key, value: entry.value, revision: entry.revision };
    cache.set(key, c);
    return c;
  }

  async getPlan(name: string): Promise<Cached<PlanRecord> | undefined> {
    return this.remember(this.plans, name, await this.planKv.get(name));
  }

  async getMigration(key: string): Promise<Cached<MigrationRecord> | undefined> {
    return this.remember(this.migrations, key, await this.migrationKv.get(key));
  }

  /** The migration with this uid, from KV (key "<plan>.<uid>"). */
  async findMigration(uid: string): Promise<Cached<MigrationRecord> | undefined> {
    const keys = await this.migrationKv.keys(`*.${uid}`);
    const key = keys[0];
    return key ? this.getMigration(key) : undefined;
  }

  /** Every migration of a plan, from KV, ordered by key. */
  async planMigrations(plan: string): Promise<Cached<MigrationRecord>[]> {
    const entries = await listValues(this.migrationKv, `${plan}.`, (key, err) => this.log.error({ key, err: err.message }, "skipping invalid migration record"));
    return entries.map((e) => this.remember(this.migrations, e.key, e)!);
  }

  /** Every migration, from KV (the cache is left alone). */
  async allMigrations(): Promise<MigrationRecord[]> {
    const entries = await listValues(this.migrationKv, "", (key, err) => this.log.error({ key, err: err.message }, "skipping invalid migration record"));
    return entries.map((e) => e.value);
  }

  /** Every plan, from KV. */
  async allPlans(): Promise<Cached<PlanRecord>[]> {
    const entries = await listValues(this.planKv, "", (key, err) => this.log.error({ key, err: err.message }, "skipping invalid plan record"));
    return entries.map((e) => this.remember(this.plans, e.key, e)!);
  }

  async createPlan(p: PlanRecord): Promise<Cached<PlanRecord>> {
    const revision = await this.planKv.create(p.name, p);
    const c = { key: p.name, value: p, revision };
    this.plans.set(p.name, c);
    return c;
  }

  async createMigration(m: MigrationRecord): Promise<Cached<MigrationRecord>> {
    const key = migrationKey(m);
    const revision = await this.migrationKv.create(key, m);
    const c = { key, value: m, revision };
    this.migrations.set(key, c);
    return c;
  }

  /**
   * Compare-and-set write of a plan: `change(current)` gives the next value (or undefined: leave
   * it). On a conflict the record is read again and `change` runs again.
   */
  async updatePlan(start: Cached<PlanRecord>, change: (current: PlanRecord) => PlanRecord | undefined): Promise<Cached<PlanRecord> | undefined> {
    return this.cas(this.planKv, this.plans, start, change);
  }

  async updateMigration(start: Cached<MigrationRecord>, change: (current: MigrationRecord) => MigrationRecord | undefined): Promise<Cached<MigrationRecord> | undefined> {
    return this.cas(this.migrationKv, this.migrations, start, change);
  }

  private async cas<T>(kv: TypedKv<import("zod").ZodType<T>>, cache: Map<string, Cached<T>>, start: Cached<T>, change: (current: T) => T | undefined): Promise<Cached<T> | undefined> {
    let current: Cached<T> | undefined = start;
    for (let i = 0; i < 10 && current; i++) {
      const next = change(current.value);
      if (next === undefined) return current;
      try {
        const revision = await kv.update(current.key, next, current.revision);
        const c = { key: current.key, value: next, revision };
        cache.set(current.key, c);
        return c;
      } catch (e) {
        if (!isCasConflict(e)) throw e;
        current = this.remember(cache, current.key, await kv.get(current.key));
      }
    }
    if (!current) return undefined;
    throw new Error(`${kv.bucket}/${start.key}: gave up after 10 conflicting writes`);
  }

  /** Deletes a migration record; with `revision`, only if nobody wrote it since (compare-and-set). */
  async deleteMigration(key: string, revision?: number): Promise<void> {
    await this.migrationKv.delete(key, revision !== undefined ? { revision } : {});
    this.migrations.delete(key);
  }

  async deletePlan(name: string, revision: number): Promise<void> {
    await this.planKv.delete(name, { revision });
    this.plans.delete(name);
  }
}
