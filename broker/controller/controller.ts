// The controller: the leader-only reconcile loop that drives the pure core (broker/core/).
//
// Level-triggered. A pass runs when an agent report arrives (hello, inventory, status), when a
// cluster's health or record changes, when an RPC changed a record, when a command (describe-vm,
// preflight) answered, and on a timer (back-off ends, stalls, plan windows, command retries).
// Each pass:
//
//   1. cluster facts from the registry (records, health, latest hello/inventory/status);
//   2. the scheduler over every unfinished migration (who starts now, why the others wait);
//   3. step() for every migration that is not finished (or has a retry asked for); a changed
//      record is written with compare-and-set on the revision it was read at (on a conflict:
//      read again, step again); its events go to FERRY_EVENTS with the new revision as generation;
//      its commands are sent (at most one in flight per id) and their replies feed the next pass;
//   4. the whole desired task set of every enrolled cluster, published when it changed, when the
//      agent says it has seen a newer generation (or said hello), and every `republishMs`;
//   5. each plan's phase, counters and waiting reason (planStatus), written the same way.
//
// Memory holds only what a restart rebuilds: a cache of KV records (reloaded each term and
// periodically), command replies not yet consumed (a lost one is asked for again), and the last
// task set per cluster (a new leader publishes again with a higher generation).
import type { Logger } from "pino";
import { BusRequestError, publishTasks, requestRpc } from "../../bus/index.js";
import { BUS_API_VERSION, type Event, type TaskStatus, type TrustStatus } from "../../proto/bus/index.js";
import type { BrokerRuntime } from "../broker.js";
import {
  composeTaskSets,
  isInFlight,
  isTerminal,
  jsonEqual,
  planStatus,
  sameTaskSet,
  schedule,
  step,
  toTaskSet,
  transportFailure,
  type Command,
  type CommandResult,
  type EventDraft,
  type MigrationRecord,
  type PlanRecord,
  type StepResult,
  type TaskSetBody,
} from "../core/index.js";
import type { LeaderTerm } from "../leader.js";
import { eventMsgId } from "../state/events.js";
import { ControllerMetrics } from "./metrics.js";
import { RecordStore, type Cached } from "./store.js";
import { ClusterViews, type ClusterFacts } from "./views.js";

export interface ControllerOptions {
  /** The controller's clock (tests move it forward to reach stall and back-off deadlines). */
  now?: () => Date;
  /** Timer pass interval; default 2000 ms. */
  tickMs?: number;
  /** Re-publish unchanged task sets this often; default 30 s. */
  republishMs?: number;
  /** Re-read every record from KV this often; default 60 s. */
  reloadMs?: number;
  /** Broker-wide cap on migrations in flight; default 100. */
  maxInFlight?: number;
  /** Agent RPC timeout (describe-vm, preflight); default 15 s. */
  rpcTimeoutMs?: number;
  /** Migrations whose plan record does not exist are deleted after this long (a create cut short); default 10 min. */
  orphanGraceMs?: number;
}

interface Published {
  body: TaskSetBody;
  generation: number;
  atMs: number;
}

const WAKE_KINDS = new Set(["hello", "inventory", "status"]);
/** A task set the agent has not acknowledged (status.taskSetGeneration) this long after it was sent is sent again. */
const LOST_SET_MS = 3000;
/** Migrations stepped and written at once within a pass. */
const PASS_CONCURRENCY = 16;

export class Controller {
  readonly store: RecordStore;
  readonly views: ClusterViews;
  readonly metrics: ControllerMetrics;
  readonly log: Logger;
  private readonly opts: Required<ControllerOptions>;
  /** Command replies per migration uid, consumed by the next steps. */
  private readonly results = new Map<string, CommandResult[]>();
  private readonly inflight = new Set<string>();
  private readonly published = new Map<string, Published>();
  /** Clusters whose agent said hello since the last pass (publish their set again at once). */
  private readonly greeted = new Set<string>();
  private term: LeaderTerm | undefined;
  private dirty = false;
  private wakeUp: (() => void) | undefined;
  private running: Promise<void> | undefined;
  private lastReloadMs = 0;
  /** Resolvers of `reconciled()` waiting for the next complete pass. */
  private waiters: (() => void)[] = [];
  private readonly unsubscribe: () => void;

  private constructor(
    private readonly rt: BrokerRuntime,
    store: RecordStore,
    opts: ControllerOptions,
  ) {
    this.store = store;
    this.log = rt.log.child({ component: "controller" });
    this.opts = {
      now: opts.now ?? (() => new Date()),
      tickMs: opts.tickMs ?? 2000,
      republishMs: opts.republishMs ?? 30_000,
      reloadMs: opts.reloadMs ?? 60_000,
      maxInFlight: opts.maxInFlight ?? 100,
      rpcTimeoutMs: opts.rpcTimeoutMs ?? 15_000,
      orphanGraceMs: opts.orphanGraceMs ?? 600_000,
    };
    this.views = new ClusterViews(rt.registry, this.log);
    this.metrics = new ControllerMetrics(rt.metrics.registry, () => [...this.store.migrations.values()].map((c) => c.value));
    this.unsubscribe = rt.registry.onChange((c) => {
      if (c.type === "report" && !WAKE_KINDS.has(c.kind)) return;
      if (c.type === "report" && c.kind === "hello") this.greeted.add(c.cluster);
      this.wake();
    });
  }

  static async create(rt: BrokerRuntime, opts: ControllerOptions = {}): Promise<Controller> {
    const store = await RecordStore.open(rt.state, rt.log.child({ component: "records" }));
    const c = new Controller(rt, store, opts);
    rt.leader.onElected((term) => c.startTerm(term));
    return c;
  }

  now(): Date {
    return this.opts.now();
  }

  get leading(): boolean {
    return this.term !== undefined && !this.term.signal.aborted;
  }

  /** Ask for a pass as soon as possible (coalesced). */
  wake(): void {
    this.dirty = true;
    this.wakeUp?.();
  }

  /** Resolves after the next pass that starts after this call has completed (RPC handlers use it to answer with fresh state). */
  reconciled(timeoutMs = 10_000): Promise<void> {
    if (!this.leading) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      t.unref();
      this.waiters.push(() => {
        clearTimeout(t);
        resolve();
      });
      this.wake();
    });
  }

  private startTerm(term: LeaderTerm): void {
    this.term = term;
    this.published.clear();
    this.results.clear();
    this.lastReloadMs = 0;
    const loop = async () => {
      while (!term.signal.aborted) {
        this.dirty = false;
        const waiting = this.waiters;
        this.waiters = [];
        const started = process.hrtime.bigint();
        try {
          await this.pass(term.signal);
          this.metrics.passes.inc({ result: "ok" });
        } catch (e) {
          this.metrics.passes.inc({ result: "error" });
          this.log.warn({ err: e instanceof Error ? e.message : String(e) }, "reconcile pass failed; retrying on the next tick");
        }
        this.metrics.passDuration.observe(Number(process.hrtime.bigint() - started) / 1e9);
        for (const w of waiting) w();
        if (term.signal.aborted || this.dirty) continue;
        await new Promise<void>((resolve) => {
          const done = () => {
            clearTimeout(t);
            term.signal.removeEventListener("abort", done);
            resolve();
          };
          const t = setTimeout(done, this.opts.tickMs);
          this.wakeUp = done;
          term.signal.addEventListener("abort", done, { once: true });
        });
        this.wakeUp = undefined;
      }
      for (const w of this.waiters.splice(0)) w();
    };
    this.log.info("elected: the reconcile loop starts");
    this.running = loop().finally(() => this.log.info("reconcile loop stopped (no longer leader)"));
  }

  async stop(): Promise<void> {
    this.unsubscribe();
    this.wakeUp?.();
    await this.running?.catch(() => undefined);
  }

  // --------------------------------------------------------------------------------------------
  // One pass

  private async pass(signal: AbortSignal): Promise<void> {
    const now = this.now();
    if (Date.now() - this.lastReloadMs >= this.opts.reloadMs) {
      await this.store.reload();
      this.lastReloadMs = Date.now();
    }
    const facts = await this.views.facts(now);
    const plans = new Map([...this.store.plans.values()].map((c) => [c.value.name, c]));
    const planValues: Record<string, PlanRecord> = {};
    for (const [name, c] of plans) planValues[name] = c.value;

    const live: Cached<MigrationRecord>[] = [];
    for (const c of [...this.store.migrations.values()]) {
      if (plans.has(c.value.plan)) live.push(c);
      else if (now.getTime() - new Date(c.value.createdAt).getTime() > this.opts.orphanGraceMs) {
        this.log.warn({ key: c.key }, "deleting a migration record without a plan (a plan creation was cut short)");
        await this.store.deleteMigration(c.key, c.revision).catch((e: unknown) => this.log.warn({ key: c.key, err: String(e) }, "could not delete the orphan"));
      }
    }

    const sched = schedule({ now, migrations: live.map((c) => c.value).filter((m) => !isTerminal(m.state)), plans: planValues, clusters: facts.clusters, maxInFlight: this.opts.maxInFlight });
    const admitted = new Set(sched.start);
    const tasksByUid = new Map<string, { cluster: string; status: TaskStatus }[]>();
    const trust: Record<string, TrustStatus[] | undefined> = {};
    for (const [cluster, status] of Object.entries(facts.statuses)) {
      if (!status) continue;
      trust[cluster] = status.trust;
      for (const t of status.tasks) {
        let list = tasksByUid.get(t.migrationUid);
        if (!list) tasksByUid.set(t.migrationUid, (list = []));
        list.push({ cluster, status: t });
      }
    }

    const outputs: StepResult[] = [];
    let complete = true;
    // Migrations are independent records: step and write them concurrently (events of one
    // migration stay in order). Task sets are composed from all outputs, in a stable order.
    const work = live.filter((c) => !isTerminal(c.value.state) || c.value.retryRequested || c.value.cancelRequested);
    const worker = async () => {
      for (let c = work.shift(); c && !signal.aborted; c = work.shift()) {
        const m = c.value;
        try {
          const r = await this.stepOne(c, now, planValues[m.plan]!, facts, trust, tasksByUid, admitted.has(m.uid), sched.waiting.get(m.uid));
          if (r) outputs.push(r);
        } catch (e) {
          complete = false;
          this.log.warn({ migration: m.uid, err: e instanceof Error ? e.message : String(e) }, "could not advance the migration; retrying on the next pass");
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(PASS_CONCURRENCY, Math.max(1, work.length)) }, worker));
    if (signal.aborted) return;
    // A task set must list every task: skip publishing rather than drop the tasks of a migration whose step failed.
    // A deposed leader must not publish (its view may be older than the new leader's).
    if (complete && !signal.aborted && this.rt.leader.isLeader) this.publishTaskSets(facts, outputs, now);

    const byPlan = new Map<string, MigrationRecord[]>();
    for (const x of this.store.migrations.values()) {
      const list = byPlan.get(x.value.plan);
      if (list) list.push(x.value);
      else byPlan.set(x.value.plan, [x.value]);
    }
    await Promise.all(
      [...plans].map(([name, c]) =>
        signal.aborted ? Promise.resolve(undefined) : this.updatePlanStatus(c, byPlan.get(name) ?? [], now).catch((e: unknown) => this.log.warn({ plan: name, err: String(e) }, "could not update the plan status")),
      ),
    );
    // Replies are needed only while their migration validates (read its state as written in this
    // pass: a reply may have arrived for a migration this pass admitted).
    const validating = new Set([...this.store.migrations.values()].filter((c) => c.value.state === "Validating").map((c) => c.value.uid));
    for (const uid of this.results.keys()) if (!validating.has(uid)) this.results.delete(uid);
    this.metrics.queued.set(sched.waiting.size);
  }

  private async stepOne(
    c: Cached<MigrationRecord>,
    now: Date,
    plan: PlanRecord,
    facts: ClusterFacts,
    trust: Record<string, TrustStatus[] | undefined>,
    tasksByUid: Map<string, { cluster: string; status: TaskStatus }[]>,
    admitted: boolean,
    queueReason: string | undefined,
  ): Promise<StepResult | undefined> {
    let result: StepResult | undefined;
    const before = c.value;
    const written = await this.store.updateMigration(c, (current) => {
      result = step(
        current,
        { clusters: facts.clusters, trust, tasks: tasksByUid.get(current.uid) ?? [], results: this.results.get(current.uid) ?? [] },
        { now, plan, admitted, ...(queueReason !== undefined ? { queueReason } : {}) },
      );
      return jsonEqual(result.migration, current) ? undefined : result.migration;
    });
    if (!written || !result) return undefined;
    if (written.revision !== c.revision) {
      // A slot freed: schedule again at once rather than on the next report or tick.
      if (isInFlight(before.state) && !isInFlight(written.value.state)) this.dirty = true;
      this.metrics.observeTransition(before, written.value, result.events);
      await this.publishEvents(result.events, written.revision);
    }
    for (const cmd of result.commands) this.runCommand(cmd, written.value.uid);
    return result;
  }

  // --------------------------------------------------------------------------------------------
  // Events, commands, task sets

  async publishEvents(drafts: readonly EventDraft[], generation: number): Promise<void> {
    for (const [i, d] of drafts.entries()) {
      const event: Event = { apiVersion: BUS_API_VERSION, kind: "Event", ...d, generation };
      try {
        await this.rt.events.publish(event, { msgId: `${eventMsgId(event)}/${i}` });
      } catch (e) {
        this.log.warn({ plan: d.plan, migration: d.migrationUid, reason: d.reason, err: String(e) }, "could not publish an event");
      }
    }
  }

  /** Send a describe-vm/preflight command unless the same id is in flight or answered; the reply wakes the loop. */
  private runCommand(cmd: Command, uid: string): void {
    if (this.inflight.has(cmd.id) || this.results.get(uid)?.some((r) => r.id === cmd.id)) return;
    this.inflight.add(cmd.id);
    void this.perform(cmd).then((result) => {
      this.inflight.delete(cmd.id);
      let list = this.results.get(uid);
      if (!list) this.results.set(uid, (list = []));
      list.push(result);
      if (list.length > 16) list.splice(0, list.length - 16);
      this.wake();
    });
  }

  /** Perform a command; transport failures come back as an RpcError result (never throws). */
  async perform(cmd: Command): Promise<CommandResult> {
    const timeoutMs = this.opts.rpcTimeoutMs;
    const deadline = new Date(Date.now() + timeoutMs).toISOString();
    const head = { apiVersion: BUS_API_VERSION as typeof BUS_API_VERSION, cluster: cmd.cluster, deadline };
    try {
      if (cmd.type === "describe-vm") {
        const reply = await requestRpc(this.rt.bus, cmd.cluster, "describe-vm", { ...head, kind: "DescribeVmRequest", vm: cmd.vm }, { timeoutMs });
        this.metrics.commands.inc({ type: cmd.type, result: reply.kind === "RpcError" ? reply.code : "ok" });
        return { id: cmd.id, type: "describe-vm", reply };
      }
      const reply = await requestRpc(this.rt.bus, cmd.cluster, "preflight", { ...cmd.request, ...head, kind: "PreflightRequest" }, { timeoutMs });
      this.metrics.commands.inc({ type: cmd.type, result: reply.kind === "RpcError" ? reply.code : "ok" });
      return { id: cmd.id, type: "preflight", reply };
    } catch (e) {
      const timeout = e instanceof BusRequestError && e.reason === "timeout";
      const why =
        e instanceof BusRequestError && e.reason === "no-responders"
          ? `the agent of cluster ${cmd.cluster} is not connected (no responder on the bus)`
          : timeout
            ? `the agent of cluster ${cmd.cluster} did not answer within ${Math.round(timeoutMs / 1000)} s`
            : `${cmd.type} to cluster ${cmd.cluster} failed: ${e instanceof Error ? e.message : String(e)}`;
      this.metrics.commands.inc({ type: cmd.type, result: timeout ? "DeadlineExceeded" : "Unavailable" });
      return transportFailure(cmd, timeout ? "DeadlineExceeded" : "Unavailable", why);
    }
  }

  private publishTaskSets(facts: ClusterFacts, outputs: readonly StepResult[], now: Date): void {
    const bodies = composeTaskSets(facts.enrolled, outputs);
    const nowMs = Date.now();
    for (const [cluster, body] of bodies) {
      if (!facts.enrolled.includes(cluster)) {
        if (body.tasks.length > 0) this.log.warn({ cluster, tasks: body.tasks.length }, "tasks for a cluster that is not enrolled are not published");
        continue;
      }
      const last = this.published.get(cluster);
      const agentGen = facts.agentGenerations[cluster] ?? 0;
      const changed = !last || !sameTaskSet(body, last.body) || agentGen > last.generation;
      // The agent still reports an older set a while after this one went out: it was lost (a
      // reconnect, a dropped message); send it again now rather than at the periodic re-send.
      const lost = last !== undefined && agentGen < last.generation && nowMs - last.atMs >= LOST_SET_MS;
      const due = changed || lost || this.greeted.has(cluster) || nowMs - last.atMs >= this.opts.republishMs;
      if (!due) continue;
      // Generations only grow, across leaders too: above what this replica sent, above what the
      // agent reports having seen, and at least the wall clock in ms (a new leader that has not
      // heard the agent yet still outbids the old one).
      const generation = changed ? Math.max((last?.generation ?? 0) + 1, agentGen + 1, nowMs) : last.generation;
      try {
        publishTasks(this.rt.bus, cluster, toTaskSet(body, generation, now));
        this.published.set(cluster, { body, generation, atMs: nowMs });
        this.greeted.delete(cluster);
        this.metrics.taskSets.inc({ reason: changed ? "changed" : lost ? "lost" : "periodic" });
      } catch (e) {
        this.log.warn({ cluster, err: String(e) }, "could not publish the task set");
      }
    }
  }

  async updatePlanStatus(c: Cached<PlanRecord>, migrations: readonly MigrationRecord[], now: Date): Promise<Cached<PlanRecord> | undefined> {
    let events: EventDraft[] = [];
    const written = await this.store.updatePlan(c, (current) => {
      const r = planStatus(current, migrations, now);
      events = r.events;
      return jsonEqual(r.plan, current) ? undefined : r.plan;
    });
    if (written && written.revision !== c.revision) await this.publishEvents(events, written.revision);
    return written;
  }

  /** Unfinished migrations whose source or target is `cluster` (RemoveCluster asks). */
  async activeMigrationsFor(cluster: string): Promise<{ uid: string; name: string; state: string }[]> {
    const all = await this.store.allMigrations();
    return all
      .filter((m) => !isTerminal(m.state) && (m.source.cluster === cluster || m.target.cluster === cluster))
      .map((m) => ({ uid: m.uid, name: `${m.plan}/${m.source.namespace}/${m.source.name}`, state: m.state }));
  }
}
