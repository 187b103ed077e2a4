// Sequence tests of the state machine: random observation sequences (noisy agents, stale and
// contradictory reports, flapping clusters, failing RPCs, cancels and retries at any moment, time
// jumps) interleaved with a cooperative world, checking after every step the rules the invariants
// rest on, then a cooperative suffix in which every migration must finish.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Task, TaskSet, TaskStep, type TaskStatus } from "../../proto/bus/index.js";
import { RUN_STRATEGIES, VMI_PHASES, VMIM_PHASES } from "../../proto/kube.js";
import type { CommandResult } from "./commands.js";
import { step, targetCompletedIn, targetRunningIn, type Observed, type StepResult } from "./machine.js";
import { isTerminal, MigrationRecord, type MigrationKind, type Side } from "./records.js";
import { composeTaskSets, toTaskSet } from "./tasksets.js";
import { ctx, describeReply, fingerprint, migration, plan, preflightOk, rpcError, T0, view } from "./test-fixtures.js";

type M = MigrationRecord;

/** Runs per property; raise it for a deep search (FERRY_PROPERTY_RUNS=6000 passed when this was written). */
const RUNS = Number(process.env.FERRY_PROPERTY_RUNS ?? 100);

const statusNoise = fc.record({
  attemptDelta: fc.constantFrom(0, 0, 0, 0, -1, 1),
  step: fc.constantFrom(...TaskStep.options),
  vmimPhase: fc.option(fc.constantFrom(...VMIM_PHASES), { nil: undefined }),
  completed: fc.boolean(),
  failed: fc.boolean(),
  vm: fc.option(fc.record({ exists: fc.boolean(), vmiPhase: fc.constantFrom(...VMI_PHASES), runStrategy: fc.constantFrom(...RUN_STRATEGIES) }), { nil: undefined }),
  bytes: fc.option(fc.nat({ max: 10_000 }), { nil: undefined }),
  manual: fc.nat({ max: 30 }),
  error: fc.boolean(),
  blocked: fc.nat({ max: 5 }),
});

const decision = fc.record({
  coop: fc.nat({ max: 9 }),
  dt: fc.constantFrom(0, 1, 5, 30, 120, 599, 600, 900, 3600),
  admitted: fc.boolean(),
  cancel: fc.nat({ max: 25 }),
  retry: fc.nat({ max: 10 }),
  planCancel: fc.nat({ max: 60 }),
  east: fc.constantFrom("available", "available", "available", "unreachable", "unknown"),
  west: fc.constantFrom("available", "available", "available", "unreachable", "unknown"),
  trustEast: fc.constantFrom("ok", "ok", "absent", "unconfirmed", "stale"),
  trustWest: fc.constantFrom("ok", "ok", "absent", "unconfirmed", "stale"),
  source: fc.option(statusNoise, { nil: undefined }),
  target: fc.option(statusNoise, { nil: undefined }),
  results: fc.array(fc.constantFrom("ok", "ok", "error", "warning", "notfound", "unavailable", "none"), { minLength: 3, maxLength: 3 }),
  kubevirtFails: fc.boolean(),
});
type Decision = typeof decision extends fc.Arbitrary<infer D> ? D : never;

const scenario = fc.record({
  kind: fc.constantFrom<MigrationKind>("decentralized-live", "decentralized-live", "storage-live", "offline"),
  sameClusterCross: fc.boolean(),
  maxAttempts: fc.integer({ min: 1, max: 4 }),
  prefix: fc.array(decision, { minLength: 1, maxLength: 60 }),
  failures: fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
});

/** What the harness has told the machine, per attempt: the facts the safety rules are judged by. */
class History {
  completed = new Set<number>();
  running = new Set<number>();
  ready = new Set<number>();
  localSucceeded = new Set<number>();
  aborted = new Map<number, Set<Side>>();
  sent = new Set<number>();
  migrated = new Set<number>();

  record(obs: Observed, m: M): void {
    for (const { cluster, status: s } of obs.tasks) {
      if (s.migrationUid !== m.uid) continue;
      const side: Side = s.role === "source" ? "source" : s.role === "target" ? "target" : "local";
      const expected = side === "target" ? m.target.cluster : m.source.cluster;
      if (cluster !== expected) continue;
      if (side === "target" && targetCompletedIn(s)) this.completed.add(s.attempt);
      if (side === "target" && targetRunningIn(s)) this.running.add(s.attempt);
      if (side === "target" && ["ReceiverReady", "Sending", "Migrating", "Succeeded"].includes(s.step)) this.ready.add(s.attempt);
      if (side === "local" && s.step === "Succeeded") this.localSucceeded.add(s.attempt);
      if (s.step === "Aborted" || s.step === "CleanedUp") {
        const set = this.aborted.get(s.attempt) ?? new Set<Side>();
        set.add(side);
        this.aborted.set(s.attempt, set);
      }
    }
  }
}

function trustOk(obs: Observed, cluster: string, peer: string): boolean {
  const e = obs.trust[cluster]?.find((t) => t.peer === peer);
  const fps = obs.clusters[peer]?.caFingerprints ?? [];
  return !!obs.clusters[peer]?.caBundle && !!e && e.present && fps.every((f) => e.fingerprints.includes(f));
}

function answer(cmd: StepResult["commands"][number], how: string, m: M): CommandResult | undefined {
  if (how === "none") return undefined;
  if (cmd.type === "describe-vm") {
    const reply = how === "notfound" ? rpcError("NotFound", "gone") : how === "unavailable" ? rpcError("Unavailable", "no responders") : describeReply(m);
    return { id: cmd.id, type: "describe-vm", reply };
  }
  const reply =
    how === "error"
      ? preflightOk([{ code: "MacAddressCollision", severity: "error", field: "", message: "MAC in use", fix: "change it" }])
      : how === "warning"
        ? preflightOk([{ code: "TargetNamespaceMissing", severity: "warning", field: "", message: "created", fix: "" }])
        : how === "unavailable" || how === "notfound"
          ? rpcError("DeadlineExceeded", "timeout")
          : preflightOk();
  return { id: cmd.id, type: "preflight", reply };
}

function noiseStatus(m: M, role: TaskStatus["role"], n: NonNullable<Decision["source"]>, now: Date): TaskStatus {
  const attempt = Math.max(1, m.attempt + n.attemptDelta);
  return {
    migrationUid: m.uid,
    attempt,
    role,
    step: n.step,
    ...(n.vmimPhase !== undefined
      ? {
          vmim: {
            name: `ferry-${m.uid}-${attempt}`,
            phase: n.vmimPhase,
            phaseTransitions: [],
            conditions: n.blocked === 0 ? [{ type: "decentralizedMigrationBlocked", status: "True" as const, reason: "SyncConnectionFailed", message: "x509: unknown authority" }] : [],
            migrationState: { completed: n.completed, failed: n.failed },
          },
        }
      : {}),
    ...(n.vm ? { vm: n.vm } : {}),
    ...(n.bytes !== undefined ? { progress: { processedBytes: n.bytes, totalBytes: 10_000 } } : {}),
    ...(n.manual === 0 ? { needsManualRecovery: "VMI was removed during the volume migration" } : {}),
    ...(n.error ? { error: { code: "AgentError", message: "something broke", fix: "" } } : {}),
    updatedAt: now.toISOString(),
  };
}

/** Agents and KubeVirt doing what they are told, promptly; `fails` makes this attempt's move fail. */
function cooperative(m: M, last: StepResult | undefined, world: { sent: Set<number> }, fails: boolean, now: Date): Observed {
  const statuses: Array<{ cluster: string; status: TaskStatus }> = [];
  const n = m.attempt;
  const completed = m.attempts.at(-1)?.targetCompleted ?? false;
  for (const t of last?.tasks ?? []) {
    if (t.attempt !== n) continue;
    const cluster = t.role === "target" ? t.target.cluster : t.source.cluster;
    const base = { migrationUid: m.uid, attempt: n, role: t.role, updatedAt: now.toISOString() };
    let s: TaskStatus;
    if (t.action === "abort" || t.action === "cleanup") s = { ...base, step: "Aborted" };
    else if (t.action === "finalize") s = { ...base, step: "Finalized" };
    else if (t.action === "migrate") s = fails ? { ...base, step: "Failed", error: { code: "VolumeMigrationFailed", message: "copy failed", fix: "" } } : { ...base, step: "Succeeded" };
    else if (t.action === "send") s = fails && !completed ? { ...base, step: "Failed", vmim: { name: "src", phase: "Failed", phaseTransitions: [], conditions: [] } } : { ...base, step: completed || world.sent.has(n) ? "Migrating" : "Sending" };
    else if (completed || (world.sent.has(n) && !fails)) s = { ...base, step: "Succeeded", vmim: { name: "tgt", phase: "Succeeded", phaseTransitions: [], conditions: [] }, vm: { exists: true, vmiPhase: "Running", runStrategy: "Always" } };
    else s = { ...base, step: "ReceiverReady", syncAddress: "10.0.0.5:9185" };
    statuses.push({ cluster, status: s });
  }
  const results = (last?.commands ?? []).map((c) => answer(c, "ok", m)).filter((r): r is CommandResult => !!r);
  return {
    clusters: { east: view("east"), west: view("west") },
    trust: { east: [{ peer: "west", fingerprints: [fingerprint("west")], present: true }], west: [{ peer: "east", fingerprints: [fingerprint("east")], present: true }] },
    tasks: statuses,
    results,
  };
}

function noisy(m: M, last: StepResult | undefined, d: Decision, now: Date): Observed {
  const trust = (how: string, peer: string) =>
    how === "absent" ? [] : [{ peer, fingerprints: [how === "stale" ? fingerprint("old") : fingerprint(peer)], present: how !== "unconfirmed" }];
  const tasks: Array<Observed["tasks"][number]> = [];
  const local = m.kind === "decentralized-live" ? undefined : m.kind === "offline" ? "offline" : "storage";
  if (d.source) tasks.push({ cluster: m.source.cluster, status: noiseStatus(m, local ?? "source", d.source, now) });
  if (d.target && !local) tasks.push({ cluster: m.target.cluster, status: noiseStatus(m, "target", d.target, now) });
  const results = (last?.commands ?? []).map((c, i) => answer(c, d.results[i % 3] ?? "ok", m)).filter((r): r is CommandResult => !!r);
  return {
    clusters: {
      east: view("east", { availability: d.east as "available" }),
      west: view("west", { availability: d.west as "available" }),
    },
    trust: { east: trust(d.trustEast, "west"), west: trust(d.trustWest, "east") },
    tasks,
    results,
  };
}

interface Checked {
  m: M;
  last: StepResult;
}

/** One step plus every rule checked on its output. */
function checkedStep(before: M, obs: Observed, now: Date, over: Partial<Parameters<typeof ctx>[1]>, doc: ReturnType<typeof plan>, h: History): Checked {
  h.record(obs, before);
  const c = ctx(now, over, doc);
  const r = step(before, obs, c);
  const m = r.migration;
  const ctxText = () => `state ${before.state}→${m.state}, attempt ${m.attempt}`;

  // Storable and publishable.
  expect(MigrationRecord.safeParse(JSON.parse(JSON.stringify(m))).success, ctxText()).toBe(true);
  expect(JSON.stringify(m).length).toBeLessThan(64 * 1024);
  for (const t of r.tasks) expect(Task.safeParse(t).success, ctxText()).toBe(true);
  for (const body of composeTaskSets([], [r]).values()) expect(TaskSet.safeParse(toTaskSet(body, 1, now)).success).toBe(true);

  // Level-triggered: the same inputs again change nothing.
  const again = step(m, obs, c);
  expect(again.migration, `idempotence after ${ctxText()}`).toEqual(m);
  expect(again.tasks).toEqual(r.tasks);

  // Only the current attempt's tasks; attempts advance one at a time.
  for (const t of r.tasks) expect(t.attempt).toBe(m.attempt);
  expect(m.attempt - before.attempt).toBeLessThanOrEqual(1);

  // Invariant 4: a migration is finished, or says what it waits for.
  if (isTerminal(m.state)) {
    expect(r.tasks).toEqual([]);
    expect(m.waitingReason).toBe("");
  } else expect(m.waitingReason, ctxText()).not.toBe("");

  const n = m.attempt;
  const cross = m.kind === "decentralized-live";
  const attempt = m.attempts.find((a) => a.attempt === n);
  const prevAttempt = before.attempts.find((a) => a.attempt === n);

  // Invariant 2: the source is finalized only once the target ran the VM (cross), or the volume copy succeeded (local).
  for (const t of r.tasks) {
    if (t.action !== "finalize") continue;
    if (cross) {
      expect(attempt?.targetCompleted, "finalize before the target completed").toBe(true);
      expect(h.running.has(n), "finalize before the target VM was seen running with its run strategy restored").toBe(true);
    } else expect(h.localSucceeded.has(n), "finalize before the volume migration succeeded").toBe(true);
  }
  // Once the VM lives on the target, it is never aborted there, no new attempt starts, and the migration cannot end Failed/Cancelled.
  if (prevAttempt?.targetCompleted) {
    expect(attempt?.targetCompleted).toBe(true);
    expect(r.tasks.some((t) => t.role === "target" && t.action === "abort")).toBe(false);
    expect(["Failed", "Cancelled", "RollingBack", "Cancelling"]).not.toContain(m.state);
  }
  if (attempt?.targetCompleted) expect(h.completed.has(n), "targetCompleted without a report saying so").toBe(true);

  // Invariant 1 (no second running copy): a new attempt starts only after every side that got a
  // task in the previous one confirmed the abort.
  // (Except after ManualRecoveryRequired: ferry deliberately undoes nothing then; the admin recovers and retries.)
  const prev = before.attempts.find((a) => a.attempt === before.attempt);
  if (n > before.attempt && before.attempt > 0 && prev?.error?.code !== "ManualRecoveryRequired") {
    for (const side of prev?.issued ?? []) expect(h.aborted.get(before.attempt)?.has(side), `attempt ${n} started before ${side} confirmed the abort of ${before.attempt}`).toBe(true);
    expect(prev?.targetCompleted ?? false).toBe(false);
  }
  // The first task of an attempt on each side (the moment the machine records the side as issued):
  // the target is prepared only after preflight passed and with trust confirmed on both sides; the
  // sendTo VMIM is asked for only towards a ready receiver, with trust confirmed.
  const newly = (side: Side) => cross && !!attempt?.issued.includes(side) && !(prevAttempt?.issued.includes(side) ?? false);
  const trusted = m.source.cluster === m.target.cluster || (trustOk(obs, m.source.cluster, m.target.cluster) && trustOk(obs, m.target.cluster, m.source.cluster));
  if (newly("target")) {
    expect(m.validation?.attempt).toBe(n);
    expect(m.validation?.source?.issues.some((i) => i.severity === "error")).toBe(false);
    expect(m.validation?.target?.issues.some((i) => i.severity === "error")).toBe(false);
    expect(trusted, "prepare without trust").toBe(true);
  }
  if (newly("source")) {
    expect(h.ready.has(n), "send before the receiver was ready").toBe(true);
    expect(trusted, "send without trust").toBe(true);
  }
  if (r.tasks.some((t) => t.action === "send")) h.sent.add(n);
  // No destructive action on a cluster that is merely unreachable: no stall verdict while one is away.
  const away = [m.source.cluster, m.target.cluster].some((cl) => obs.clusters[cl]?.availability !== "available");
  const stalled = r.events.some((e) => e.reason === "StallDetected");
  if (stalled) expect(away, "stall verdict while a cluster was unreachable").toBe(false);
  // Back-off is respected (a manual retry, from a terminal state, starts at once by design).
  if (n > before.attempt && before.backoffUntil && !isTerminal(before.state)) expect(now.getTime(), `${ctxText()} ${JSON.stringify(r.events.map((e) => e.reason))}`).toBeGreaterThanOrEqual(new Date(before.backoffUntil).getTime());
  return { m, last: r };
}

describe("state machine under random observation sequences", () => {
  it("keeps its safety rules at every step and finishes once the world cooperates", () => {
    fc.assert(
      fc.property(scenario, (sc) => {
        const cross = sc.kind === "decentralized-live";
        const target = cross ? (sc.sameClusterCross ? { cluster: "east", namespace: "db2", name: "pg-0" } : { cluster: "west", namespace: "db", name: "pg-0" }) : { cluster: "east", namespace: "db", name: "pg-0" };
        const doc = plan({ retry: { maxAttempts: sc.maxAttempts } });
        let m = migration({ kind: sc.kind, target });
        let last: StepResult | undefined;
        let now = T0;
        const h = new History();
        const world = { sent: h.sent };
        let planCancelled = false;
        for (const d of sc.prefix) {
          now = new Date(now.getTime() + d.dt * 1000);
          const fails = sc.failures[m.attempt % sc.failures.length] ?? false;
          const obs = d.coop < 6 ? cooperative(m, last, world, fails || d.kubevirtFails, now) : noisy(m, last, d, now);
          if (d.cancel === 0) m = { ...m, cancelRequested: true };
          if (d.retry === 0) m = { ...m, retryRequested: true };
          if (d.planCancel === 0) planCancelled = true;
          const plannedCancel = { ...ctx(now, {}, doc).plan, cancelRequested: planCancelled };
          ({ m, last } = checkedStep(m, obs, now, { admitted: d.admitted, plan: plannedCancel }, doc, h));
        }
        // The world cooperates from here on: every migration must finish.
        for (let i = 0; i < 400 && !isTerminal(m.state); i++) {
          now = new Date(now.getTime() + 60_000);
          const fails = sc.failures[m.attempt % sc.failures.length] ?? false;
          const plannedCancel = { ...ctx(now, {}, doc).plan, cancelRequested: planCancelled };
          ({ m, last } = checkedStep(m, cooperative(m, last, world, fails, now), now, { admitted: true, plan: plannedCancel }, doc, h));
        }
        expect(isTerminal(m.state), `still ${m.state}: ${m.waitingReason}`).toBe(true);
        if (m.state === "Failed") expect(m.lastError).toBeDefined();
      }),
      { numRuns: RUNS },
    );
  }, 30_000 + RUNS * 100);
});
