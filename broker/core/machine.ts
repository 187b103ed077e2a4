// The per-migration state machine: a pure function
//
//   step(migration, observed, ctx) → { migration, tasks, trust, events, commands }
//
// `observed` is the latest of what the agents reported (task statuses for this migration, trust
// status, cluster views) plus the results of commands the shell ran for it; `ctx` carries the
// time, the plan and the scheduler's decision. The output is the next record, the tasks this
// migration wants in its clusters' task sets, the CA bundles each side must import, event drafts
// for FERRY_EVENTS, and the read-only RPCs the shell must perform and feed back.
//
// Level-triggered: calling step again with the same inputs changes nothing (the record comes back
// equal, with the same updatedAt), so the shell may call it as often as it likes and writes only
// when the record changed. States and rules: README.md in this folder.
import type { z } from "zod";
import type { Event, TaskStatus, TrustStatus as TrustStatusSchema, VmimStatus } from "../../proto/bus/index.js";
import { migrationIdFor, type Condition, type Task } from "../../proto/bus/index.js";
import type { PlanRecord } from "./records.js";
import { resultFor, rpcErrorText, type Command, type CommandResult } from "./commands.js";
import type { Clusters } from "./clusters.js";
import { addSeconds, clip, formatBytes, formatRate, formatSeconds, formatTime, list, vmName } from "./format.js";
import { sameJson } from "./json.js";
import { preflightBody } from "./plan.js";
import {
  MAX_ATTEMPT_HISTORY,
  MAX_CONDITIONS,
  isTerminal,
  type Attempt,
  type ErrorInfo,
  type MigrationRecord,
  type Progress,
  type Side,
} from "./records.js";

type TrustStatus = z.infer<typeof TrustStatusSchema>;

export interface Observed {
  /** Views of (at least) the migration's source and target clusters; a missing one counts as unknown. */
  clusters: Clusters;
  /** The latest Status.trust of each cluster. */
  trust: Readonly<Record<string, readonly TrustStatus[] | undefined>>;
  /** The latest TaskStatus entries about this migration, each with the cluster that reported it. */
  tasks: ReadonlyArray<{ cluster: string; status: TaskStatus }>;
  /** Results of commands this migration asked for (matched by id; stale ones are ignored). */
  results: readonly CommandResult[];
}

export interface StepContext {
  now: Date;
  plan: Pick<PlanRecord, "name" | "cancelRequested" | "document">;
  /** The scheduler admits this migration now (Pending/Queued only). */
  admitted?: boolean;
  /** The scheduler's why-waiting text for a queued migration it did not admit. */
  queueReason?: string;
}

/** A CA bundle `cluster` must import into kubevirt-external-ca so that it trusts `peer`. */
export interface TrustNeed {
  cluster: string;
  peer: string;
  caBundle: string;
}

/** An Event without the envelope and the generation (the KV revision the shell gets on write). */
export type EventDraft = Omit<Event, "apiVersion" | "kind" | "generation">;

export interface StepResult {
  migration: MigrationRecord;
  tasks: Task[];
  trust: TrustNeed[];
  events: EventDraft[];
  commands: Command[];
}

/** Pause before a failed describe-vm/preflight is sent again. */
/** A failed RPC (describe, preflight) is asked again after 1, 2, 4, … s, at most this often: API blips clear fast. */
export const COMMAND_RETRY_MAX_SECONDS = 30;
const commandRetrySeconds = (failures: number) => Math.min(COMMAND_RETRY_MAX_SECONDS, 2 ** Math.max(0, failures - 1));
/** How many times the command with this id (`<base>` or `<base>#<n>`) has been tried. */
const triesOf = (id: string) => (/#(\d+)$/.exec(id) ? Number(/#(\d+)$/.exec(id)![1]) + 1 : 1);
/** States watched by the stall watchdog. Finalizing, RollingBack and Cancelling are never abandoned. */
const WATCHED = new Set(["Validating", "Trusting", "PreparingTarget", "TargetReady", "Migrating"]);
const ABORT_DONE = new Set(["Aborted", "CleanedUp"]);
const SENDING = new Set(["Sending", "Migrating", "Succeeded"]);
const BLOCKED = "decentralizedMigrationBlocked";

export function step(migration: MigrationRecord, observed: Observed, ctx: StepContext): StepResult {
  return new Run(migration, observed, ctx).result();
}

/** Exponential back-off after the n-th failed attempt (n ≥ 1), capped by the plan. */
export function backoffSeconds(backoff: { initialSeconds: number; maxSeconds: number; factor: number }, n: number): number {
  return Math.min(backoff.maxSeconds, Math.round(backoff.initialSeconds * backoff.factor ** Math.max(0, n - 1)));
}

/** The target VMIM finished: the VM now lives on the target. */
export function targetCompletedIn(t: TaskStatus | undefined): boolean {
  if (!t) return false;
  const ms = t.vmim?.migrationState;
  return t.step === "Succeeded" || t.vmim?.phase === "Succeeded" || (ms !== undefined && ms.completed && !ms.failed);
}

/** Invariant 2's condition: the target VMI runs and its VM has its run strategy restored. */
export function targetRunningIn(t: TaskStatus | undefined): boolean {
  const vm = t?.vm;
  return !!vm && vm.exists && vm.vmiPhase === "Running" && vm.runStrategy !== undefined && vm.runStrategy !== "WaitAsReceiver";
}

function vmimFailure(s: TaskStatus | undefined, who: string): ErrorInfo | undefined {
  if (!s) return undefined;
  const ms = s.vmim?.migrationState;
  const vmimFailed = s.vmim?.phase === "Failed" || (ms?.failed ?? false);
  if (s.step !== "Failed" && !vmimFailed) return undefined;
  if (s.error) return { ...s.error, message: clip(`${who}: ${s.error.message}`) };
  const reason = ms?.failureReason ?? conditionText(s.vmim?.conditions ?? []) ?? "no reason reported";
  return { code: "MigrationFailed", message: clip(`${who}: VMIM ${s.vmim?.name ?? "(none)"} failed: ${reason}`), fix: "" };
}

function conditionText(conditions: readonly Condition[]): string | undefined {
  const c = conditions.find((c) => c.status === "True" && (c.reason || c.message));
  return c ? `${c.type}: ${[c.reason, c.message].filter(Boolean).join(": ")}` : undefined;
}

const blockedCondition = (conditions: readonly Condition[] | undefined) => conditions?.find((c) => c.type === BLOCKED && c.status === "True");

class Run {
  private readonly m: MigrationRecord;
  private readonly events: EventDraft[] = [];
  private readonly commands: Command[] = [];
  private readonly now: Date;
  private readonly at: string;
  private readonly cross: boolean;
  private readonly spec;
  /** Text for the waiting reason that the state's own text should carry. */
  private note: string | undefined;
  private admissionUsed = false;

  constructor(
    private readonly before: MigrationRecord,
    private readonly o: Observed,
    private readonly ctx: StepContext,
  ) {
    this.m = structuredClone(before);
    this.now = ctx.now;
    this.at = ctx.now.toISOString();
    this.cross = before.kind === "decentralized-live";
    this.spec = ctx.plan.document.spec;
  }

  result(): StepResult {
    const m = this.m;
    // A plan cancel reaches every migration that can still be cancelled (not one whose VM already
    // moved: Finalizing, or Migrating after the target completed).
    const moved = m.state === "Finalizing" || (this.current()?.targetCompleted ?? false);
    if (this.ctx.plan.cancelRequested && !isTerminal(m.state) && !moved && !m.cancelRequested) {
      m.cancelRequested = true;
      this.event("Normal", "CancelRequested", "the plan was cancelled");
    }
    if (m.retryRequested && m.state !== "Failed" && m.state !== "Cancelled") {
      m.retryRequested = false;
      this.event("Normal", "RetryIgnored", `retry ignored: the migration is ${m.state}, not Failed or Cancelled`);
    }
    // Run to a fixpoint, so that calling step again with the same inputs changes nothing. A side
    // counts as issued as soon as the state wants a task there (rules read it within the step).
    for (let i = 0; i < 32; i++) {
      const state = m.state;
      this.note = undefined;
      this.advance();
      const issued = this.markIssued(this.desiredTasks());
      if (m.state === state && !issued) break;
    }
    const tasks = this.desiredTasks();
    const trust = this.trustNeeds();
    m.waitingReason = isTerminal(m.state) ? "" : clip(this.waiting());
    if (!sameJson(m, this.before, ["updatedAt"])) m.updatedAt = this.at;
    return { migration: m, tasks, trust, events: this.events, commands: this.commands };
  }

  // --- observation helpers ----------------------------------------------------------------

  private up(cluster: string): boolean {
    return this.o.clusters[cluster]?.availability === "available";
  }

  private involved(): string[] {
    return [...new Set([this.m.source.cluster, this.m.target.cluster])];
  }

  private away(): string[] {
    return this.involved().filter((c) => !this.up(c));
  }

  private sides(): Side[] {
    return this.cross ? ["source", "target"] : ["local"];
  }

  private clusterOf(side: Side): string {
    return side === "target" ? this.m.target.cluster : this.m.source.cluster;
  }

  private roleOf(side: Side): TaskStatus["role"] {
    if (side !== "local") return side;
    return this.m.kind === "offline" ? "offline" : "storage";
  }

  /** The latest status of this attempt's task on `side`. */
  private status(side: Side): TaskStatus | undefined {
    const cluster = this.clusterOf(side);
    const role = this.roleOf(side);
    let best: TaskStatus | undefined;
    for (const { cluster: c, status: s } of this.o.tasks) {
      if (c !== cluster || s.migrationUid !== this.m.uid || s.role !== role || s.attempt !== this.m.attempt || this.m.attempt === 0) continue;
      if (!best || s.updatedAt >= best.updatedAt) best = s;
    }
    return best;
  }

  private current(): Attempt | undefined {
    const a = this.m.attempts[this.m.attempts.length - 1];
    return a && a.attempt === this.m.attempt ? a : undefined;
  }

  private trustConfirmed(cluster: string, peer: string): boolean {
    const peerView = this.o.clusters[peer];
    if (!peerView?.caBundle) return false;
    const entry = this.o.trust[cluster]?.find((t) => t.peer === peer);
    return !!entry && entry.present && peerView.caFingerprints.every((f) => entry.fingerprints.includes(f));
  }

  private needsTrust(): boolean {
    return this.cross && this.m.source.cluster !== this.m.target.cluster;
  }

  private trustReady(): boolean {
    const { source, target } = this.m;
    return !this.needsTrust() || (this.trustConfirmed(source.cluster, target.cluster) && this.trustConfirmed(target.cluster, source.cluster));
  }

  // --- output helpers ---------------------------------------------------------------------

  private event(type: "Normal" | "Warning", reason: string, message: string): void {
    this.events.push({
      plan: this.m.plan,
      migrationUid: this.m.uid,
      time: this.at,
      type,
      reason,
      message: clip(message),
      migrationState: this.m.state,
      ...(this.m.attempt > 0 ? { attempt: this.m.attempt } : {}),
    });
  }

  private go(state: MigrationRecord["state"], reason: string, message: string, type: "Normal" | "Warning" = "Normal"): void {
    this.m.state = state;
    this.event(type, reason, message);
  }

  private base() {
    const m = this.m;
    return { migrationUid: m.uid, plan: m.plan, attempt: m.attempt, migrationId: m.migrationId ?? migrationIdFor(m.uid, m.attempt), source: m.source, target: m.target };
  }

  // --- transitions ------------------------------------------------------------------------

  private advance(): void {
    const m = this.m;
    switch (m.state) {
      case "Pending":
        if (m.cancelRequested) return this.finishCancelled("cancelled before it started");
        return this.go("Queued", "Queued", "waiting for the scheduler");
      case "Queued":
        if (m.cancelRequested) return this.finishCancelled("cancelled while queued");
        // The scheduler's admission counts once per step (an attempt that fails within this step
        // does not restart at once) and never overrides a back-off.
        if (this.ctx.admitted && !this.admissionUsed && !(m.backoffUntil && new Date(m.backoffUntil) > this.now)) {
          this.admissionUsed = true;
          this.startAttempt();
        }
        return;
      case "Validating":
        if (m.cancelRequested) return this.finishCancelled("cancelled during validation; nothing had been created");
        return this.validate();
      case "Trusting":
        if (m.cancelRequested) return this.finishCancelled("cancelled while establishing trust; nothing had been created");
        if (this.trustReady()) return this.go("PreparingTarget", "TrustConfirmed", `${m.source.cluster} and ${m.target.cluster} trust each other's KubeVirt CA`);
        return this.watch();
      case "PreparingTarget":
        return this.preparing();
      case "TargetReady":
        return this.targetReady();
      case "Migrating":
        return this.cross ? this.migratingCross() : this.migratingLocal();
      case "Finalizing":
        return this.finalizing();
      case "RollingBack":
      case "Cancelling":
        return this.undoing();
      case "Failed":
      case "Cancelled":
        if (m.retryRequested) return this.manualRetry();
        m.cancelRequested = false;
        return;
      case "Succeeded":
        m.cancelRequested = false;
        m.retryRequested = false;
        return;
    }
  }

  private startAttempt(): void {
    const m = this.m;
    m.attempt += 1;
    m.migrationId = migrationIdFor(m.uid, m.attempt);
    m.attempts.push({ attempt: m.attempt, migrationId: m.migrationId, startedAt: this.at, sourceVmimPhase: "", targetVmimPhase: "", issued: [], targetCompleted: false });
    if (m.attempts.length > MAX_ATTEMPT_HISTORY) m.attempts.splice(0, m.attempts.length - MAX_ATTEMPT_HISTORY);
    m.startedAt ??= this.at;
    delete m.backoffUntil;
    delete m.syncAddress;
    delete m.progress;
    delete m.stall;
    m.validation = { attempt: m.attempt };
    m.commandErrors = [];
    this.go("Validating", "AttemptStarted", `attempt ${m.attempt} started (migrationID ${m.migrationId})`);
  }

  private manualRetry(): void {
    const m = this.m;
    m.retryRequested = false;
    if (this.ctx.plan.cancelRequested) {
      m.cancelRequested = false;
      return this.event("Normal", "RetryIgnored", "retry ignored: the plan was cancelled");
    }
    m.cancelRequested = false;
    m.retryBase = m.attempt;
    delete m.manualRecovery;
    delete m.backoffUntil;
    delete m.finishedAt;
    this.go("Queued", "RetryRequested", `retry requested after attempt ${m.attempt}; ${this.spec.retry.maxAttempts} more attempts allowed`);
  }

  private finishCancelled(message: string): void {
    this.endAttempt("Cancelled");
    this.m.cancelRequested = false;
    this.m.finishedAt = this.at;
    delete this.m.backoffUntil;
    this.go("Cancelled", "Cancelled", `${message}; the source VM keeps running`);
  }

  private endAttempt(outcome: NonNullable<Attempt["outcome"]>, error?: ErrorInfo): void {
    const a = this.current();
    if (!a || a.outcome) return;
    a.outcome = outcome;
    a.finishedAt = this.at;
    if (error) a.error = error;
  }

  /** The attempt failed: roll back (abort what was sent), then retry or fail. */
  private fail(error: ErrorInfo, reason = "AttemptFailed"): void {
    this.endAttempt("Failed", error);
    this.m.lastError = error;
    this.go("RollingBack", reason, `attempt ${this.m.attempt} failed: ${error.message}`, "Warning");
  }

  // Validating: describe the source VM for this attempt, then preflight on both sides.
  private validate(): void {
    const m = this.m;
    if (this.away().length > 0) return this.watch();
    if (m.snapshot?.attempt !== m.attempt) {
      const r = this.command("describe-vm", "describe-vm", (id) => ({ id, type: "describe-vm", cluster: m.source.cluster, vm: { namespace: m.source.namespace, name: m.source.name } }));
      if (!r) return this.watch();
      if (r.reply.kind === "RpcError") {
        if (r.reply.code === "NotFound") {
          return this.fail({ code: "VmNotFound", message: `VM ${vmName(m.source)} no longer exists on cluster ${m.source.cluster}`, fix: "restore the VM or cancel its migration" });
        }
        this.commandFailed(r.id, `describe-vm on ${m.source.cluster}: ${rpcErrorText(r.reply)}`);
        return this.watch();
      }
      const d = r.reply;
      m.snapshot = { attempt: m.attempt, manifest: d.vm, dependencies: d.dependencies, sourceFacts: d.sourceFacts, describedAt: this.at };
      m.size = { memoryBytes: d.sourceFacts.memoryBytes, diskBytes: d.sourceFacts.volumes.reduce((s, v) => s + v.sizeBytes, 0) };
      const node = (d.vmi?.status as { nodeName?: unknown } | undefined)?.nodeName;
      if (typeof node === "string" && node) m.sourceNode = node;
    }
    const validation = (m.validation = m.validation?.attempt === m.attempt ? m.validation : { attempt: m.attempt });
    for (const side of ["source", "target"] as const) {
      if (validation[side]) continue;
      const cluster = side === "source" ? m.source.cluster : m.target.cluster;
      const r = this.command(`preflight-${side}`, "preflight", (id) => ({ id, type: "preflight", cluster, request: preflightBody(m, this.spec, side, m.snapshot?.sourceFacts) }));
      if (!r) continue;
      if (r.reply.kind === "RpcError") {
        this.commandFailed(r.id, `${side} preflight on ${cluster}: ${rpcErrorText(r.reply)}`);
        continue;
      }
      validation[side] = { ok: r.reply.ok, issues: r.reply.issues.slice(0, 1000) };
      const warnings = r.reply.issues.filter((i) => i.severity === "warning");
      if (warnings.length > 0) this.event("Warning", "PreflightWarning", `${side} preflight on ${cluster}: ${warnings.map((w) => w.message).join("; ")}`);
    }
    if (!validation.source || !validation.target) return this.watch();
    const errors = [...validation.source.issues, ...validation.target.issues].filter((i) => i.severity === "error");
    if (errors.length > 0) {
      const [first] = errors;
      return this.fail({
        code: "PreflightFailed",
        message: `preflight found ${errors.length} problem${errors.length > 1 ? "s" : ""}: ${errors.map((e) => `${e.code}: ${e.message}`).join("; ")}`,
        fix: first?.fix ?? "",
      });
    }
    if (this.needsTrust()) return this.go("Trusting", "Validated", "preflight passed on both sides; exchanging KubeVirt CA bundles");
    if (this.cross) return this.go("PreparingTarget", "Validated", "preflight passed; preparing the target");
    return this.go("Migrating", "Validated", `preflight passed; starting the ${m.kind === "offline" ? "offline" : "storage live"} migration`);
  }

  /** The result of command `what` of this attempt, or undefined after (re)issuing it. */
  private command<T extends Command["type"]>(what: string, type: T, make: (id: string) => Extract<Command, { type: T }>): Extract<CommandResult, { type: T }> | undefined {
    const m = this.m;
    const base = `${m.migrationId}/${what}`;
    const err = m.commandErrors.find((e) => e.id === base || e.id.startsWith(`${base}#`));
    const tries = err ? (err.id === base ? 1 : Number(err.id.slice(base.length + 1)) + 1) : 0;
    const id = tries === 0 ? base : `${base}#${tries}`;
    const r = resultFor(this.o.results, id, type);
    if (r) return r;
    if (!err || this.now.getTime() >= new Date(err.at).getTime() + commandRetrySeconds(tries) * 1000) this.commands.push(make(id));
    return undefined;
  }

  private commandFailed(id: string, message: string): void {
    const m = this.m;
    const base = id.replace(/#\d+$/, "");
    m.commandErrors = m.commandErrors.filter((e) => e.id !== base && !e.id.startsWith(`${base}#`));
    m.commandErrors.push({ id, message: clip(message), at: this.at });
    if (m.commandErrors.length > 8) m.commandErrors.splice(0, m.commandErrors.length - 8);
    this.event("Warning", "CommandFailed", `${message}; asking again in ${formatSeconds(commandRetrySeconds(triesOf(id)))}`);
  }

  private preparing(): void {
    const m = this.m;
    if (m.cancelRequested) return this.go("Cancelling", "Cancelling", "cancel requested; aborting on both sides");
    this.updateProgress();
    const t = this.status("target");
    const failure = vmimFailure(t, `target ${m.target.cluster}`);
    if (failure) return this.fail(failure);
    if (t && (t.step === "ReceiverReady" || SENDING.has(t.step))) {
      const address = t.syncAddress ?? this.o.clusters[m.target.cluster]?.synchronizationAddresses[0];
      if (!address) {
        this.note = `the receiver is ready but ${m.target.cluster} reports no synchronization address (check virt-synchronization-controller on ${m.target.cluster})`;
        return this.watch();
      }
      m.syncAddress = address;
      return this.go("TargetReady", "TargetReady", `receiver VM ${vmName(m.target, true)} waits for sync at ${address}`);
    }
    return this.watch();
  }

  private targetReady(): void {
    const m = this.m;
    if (m.cancelRequested) return this.go("Cancelling", "Cancelling", "cancel requested; aborting on both sides");
    this.updateProgress();
    const t = this.status("target");
    const s = this.status("source");
    const failure = vmimFailure(t, `target ${m.target.cluster}`) ?? vmimFailure(s, `source ${m.source.cluster}`);
    if (failure) return this.fail(failure);
    // Migrating = the sendTo VMIM was asked for (in an earlier step) and the source reports it.
    const asked = this.current()?.issued.includes("source") ?? false;
    if (asked && s && (SENDING.has(s.step) || s.vmim)) return this.go("Migrating", "MigrationStarted", `${m.source.cluster} sends VM ${vmName(m.source)} to ${m.syncAddress ?? "?"}`);
    return this.watch();
  }

  private migratingCross(): void {
    const m = this.m;
    this.updateProgress();
    const t = this.status("target");
    const cur = this.current();
    if (cur && !cur.targetCompleted && targetCompletedIn(t)) {
      cur.targetCompleted = true;
      this.event("Normal", "TargetCompleted", `the target VMIM on ${m.target.cluster} succeeded; the VM now lives on ${m.target.cluster}`);
    }
    if (cur?.targetCompleted) {
      if (m.cancelRequested) this.ignoreCancel();
      if (targetRunningIn(t)) return this.go("Finalizing", "TargetRunning", `VM ${vmName(m.target, true)} runs (runStrategy ${t?.vm?.runStrategy}); applying source policy ${this.spec.sourcePolicy}`);
      return;
    }
    if (m.cancelRequested) return this.go("Cancelling", "Cancelling", "cancel requested; aborting on both sides");
    const failure = vmimFailure(this.status("source"), `source ${m.source.cluster}`) ?? vmimFailure(t, `target ${m.target.cluster}`);
    if (failure) return this.fail(failure);
    return this.watch();
  }

  private migratingLocal(): void {
    const m = this.m;
    this.updateProgress();
    const l = this.status("local");
    if (l?.needsManualRecovery) return this.manualRecovery(l.needsManualRecovery);
    if (l?.step === "Succeeded") return this.go("Finalizing", "VolumesMigrated", `the volumes of ${vmName(m.source)} were moved; applying source policy ${this.spec.sourcePolicy} to the old volumes`);
    if (m.cancelRequested) return this.go("Cancelling", "Cancelling", "cancel requested; restoring the original volumes");
    const failure = vmimFailure(l, `${m.kind} migration on ${m.source.cluster}`);
    if (failure) return this.fail(failure);
    return this.watch();
  }

  private manualRecovery(text: string): void {
    const m = this.m;
    const error = { code: "ManualRecoveryRequired", message: clip(`KubeVirt set ManualRecoveryRequired on VM ${vmName(m.source, true)}: ${text}`), fix: "follow the recovery rule in the message (keep the destination volumes only if the copy finished), then retry the migration" };
    m.manualRecovery = clip(text);
    m.lastError = error;
    this.endAttempt("Failed", error);
    const cur = this.current();
    if (cur) cur.error = error; // also when the attempt had already failed and was rolling back
    m.cancelRequested = false;
    m.finishedAt = this.at;
    this.go("Failed", "ManualRecoveryRequired", `${error.message}; ferry stops here: ${error.fix}`, "Warning");
  }

  private ignoreCancel(): void {
    this.m.cancelRequested = false;
    this.event("Warning", "CancelTooLate", "cancel ignored: the VM already runs on the target; the migration completes");
  }

  private finalizing(): void {
    const m = this.m;
    if (m.cancelRequested) this.ignoreCancel();
    const side: Side = this.cross ? "source" : "local";
    const s = this.status(side);
    if (s?.step === "Finalized") {
      this.endAttempt("Succeeded");
      delete m.lastError;
      m.finishedAt = this.at;
      return this.go("Succeeded", "Succeeded", this.cross ? `VM runs on ${vmName(m.target, true)}; source ${this.spec.sourcePolicy === "delete" ? "deleted" : "halted"}` : `VM ${vmName(m.source, true)} moved to its new volumes`);
    }
    if (s?.step === "Failed" && s.error) {
      this.note = `applying source policy ${this.spec.sourcePolicy} failed on ${this.clusterOf(side)} (the agent retries): ${s.error.message}${s.error.fix ? ` (fix: ${s.error.fix})` : ""}`;
    }
  }

  // RollingBack / Cancelling: abort tasks on every side that got a task, until each confirms.
  private undoing(): void {
    const m = this.m;
    const cur = this.current();
    if (this.cross) {
      const t = this.status("target");
      // Only a move whose sendTo VMIM was asked for can have completed.
      if (cur && (cur.targetCompleted || (cur.issued.includes("source") && targetCompletedIn(t)))) {
        // KubeVirt finished the move before the abort reached it: the VM lives on the target now.
        delete cur.outcome;
        delete cur.finishedAt;
        delete cur.error;
        cur.targetCompleted = true;
        m.cancelRequested = false;
        return this.go("Migrating", "CompletedDespiteAbort", `the target VMIM on ${m.target.cluster} succeeded before the abort took effect; the VM now lives on ${m.target.cluster}, so the migration completes instead`, "Warning");
      }
    } else {
      const l = this.status("local");
      if (l?.needsManualRecovery) return this.manualRecovery(l.needsManualRecovery);
    }
    if (this.pendingAborts().length > 0) return;
    if (m.state === "Cancelling" || m.cancelRequested) {
      this.endAttempt("Cancelled");
      return this.finishCancelled(`attempt ${m.attempt} aborted on ${this.confirmedText()}`);
    }
    const made = m.attempt - m.retryBase;
    const max = this.spec.retry.maxAttempts;
    if (made < max) {
      const delay = backoffSeconds(this.spec.retry.backoff, made);
      m.backoffUntil = addSeconds(this.now, delay).toISOString();
      return this.go("Queued", "RetryScheduled", `attempt ${m.attempt} rolled back; attempt ${m.attempt + 1} of ${m.retryBase + max} not before ${formatTime(m.backoffUntil, this.now)} (back-off ${formatSeconds(delay)})`);
    }
    m.finishedAt = this.at;
    const why = m.lastError ? `: ${m.lastError.message}` : "";
    return this.go("Failed", "Failed", `gave up after ${made} attempt${made > 1 ? "s" : ""}${why}`, "Warning");
  }

  private confirmedText(): string {
    const issued = this.current()?.issued ?? [];
    return issued.length === 0 ? "no cluster (nothing had been created)" : list(issued.map((s) => this.clusterOf(s)));
  }

  /** Sides that were sent a task this attempt and have not confirmed the abort. */
  private pendingAborts(): Side[] {
    const issued = this.current()?.issued ?? [];
    return issued.filter((side) => !ABORT_DONE.has(this.status(side)?.step ?? ""));
  }

  // --- progress and the stall watchdog ----------------------------------------------------

  private updateProgress(): void {
    const m = this.m;
    const src = this.cross ? this.status("source") : this.status("local");
    const tgt = this.cross ? this.status("target") : undefined;
    if (!src && !tgt && !m.progress) return;
    const prev = m.progress;
    const p = src?.progress ?? tgt?.progress;
    const vmimOf = (s: TaskStatus | undefined): VmimStatus | undefined => s?.vmim;
    const conditions: Condition[] = [];
    for (const c of [...(vmimOf(src)?.conditions ?? []), ...(vmimOf(tgt)?.conditions ?? [])]) {
      if (!conditions.some((x) => x.type === c.type && x.status === c.status && x.reason === c.reason)) conditions.push(c);
    }
    const mode = vmimOf(src)?.migrationState?.mode ?? vmimOf(tgt)?.migrationState?.mode ?? prev?.mode;
    const next: Progress = {
      processedBytes: Math.max(p?.processedBytes ?? 0, prev?.processedBytes ?? 0),
      ...(p?.totalBytes !== undefined ? { totalBytes: p.totalBytes } : prev?.totalBytes !== undefined ? { totalBytes: prev.totalBytes } : {}),
      ...(p?.remainingBytes !== undefined ? { remainingBytes: p.remainingBytes } : {}),
      ...(p?.dataRateBytesPerSecond !== undefined ? { dataRateBytesPerSecond: p.dataRateBytesPerSecond } : {}),
      sourceVmimPhase: vmimOf(src)?.phase ?? prev?.sourceVmimPhase ?? "",
      targetVmimPhase: vmimOf(tgt)?.phase ?? prev?.targetVmimPhase ?? "",
      ...(mode ? { mode } : {}),
      conditions: conditions.slice(0, MAX_CONDITIONS),
      updatedAt: prev?.updatedAt ?? this.at,
    };
    if (prev && sameJson(next, prev, ["updatedAt"])) return;
    next.updatedAt = this.at;
    m.progress = next;
    const cur = this.current();
    if (cur) {
      cur.sourceVmimPhase = next.sourceVmimPhase;
      cur.targetVmimPhase = next.targetVmimPhase;
    }
    for (const [side, was, is] of [
      ["source", prev?.sourceVmimPhase ?? "", next.sourceVmimPhase],
      ["target", prev?.targetVmimPhase ?? "", next.targetVmimPhase],
    ] as const) {
      if (was !== is && is !== "") this.event("Normal", "VmimPhaseChanged", `${this.cross ? `${side} ` : ""}VMIM phase ${was || "(none)"} → ${is}`);
    }
    const wasBlocked = blockedCondition(prev?.conditions);
    const blocked = blockedCondition(next.conditions);
    if (blocked && (!wasBlocked || wasBlocked.reason !== blocked.reason || wasBlocked.message !== blocked.message)) {
      m.lastError = {
        code: "DecentralizedMigrationBlocked",
        message: clip(`KubeVirt reports ${BLOCKED}: ${[blocked.reason, blocked.message].filter(Boolean).join(": ") || "no details"}`),
        fix: `check that the synchronization controllers of ${m.source.cluster} and ${m.target.cluster} reach each other on their synchronization addresses and trust each other's CA`,
      };
      this.event("Warning", "MigrationBlocked", m.lastError.message);
    }
    const total = next.totalBytes;
    if (total && total > 0) {
      const decile = (b: number) => Math.min(10, Math.floor((10 * b) / total));
      if (decile(next.processedBytes) > decile(prev?.processedBytes ?? 0)) {
        this.event("Normal", "Progress", `${formatBytes(next.processedBytes)} of ${formatBytes(total)} transferred${next.dataRateBytesPerSecond ? ` at ${formatRate(next.dataRateBytesPerSecond)}` : ""}`);
      }
    }
  }

  /** The stall watchdog: no change of state, steps or VMIM phases and no new bytes for stallTimeoutSeconds → fail the attempt. */
  private watch(): void {
    const m = this.m;
    if (!WATCHED.has(m.state)) return;
    const away = this.away();
    const s = this.cross ? this.status("source") : this.status("local");
    const t = this.cross ? this.status("target") : undefined;
    const v = m.validation;
    const mark = away.length > 0 ? "paused" : JSON.stringify([m.state, s?.step, s?.vmim?.phase, t?.step, t?.vmim?.phase, m.snapshot?.attempt, !!v?.source, !!v?.target]);
    const bytes = m.progress?.processedBytes ?? 0;
    if (!m.stall || m.stall.mark !== mark || bytes > m.stall.processedBytes) {
      m.stall = { mark, processedBytes: bytes, since: this.at };
      return;
    }
    if (away.length > 0) return;
    const limit = this.spec.stallTimeoutSeconds;
    const idle = (this.now.getTime() - new Date(m.stall.since).getTime()) / 1000;
    if (idle < limit) return;
    const phase = s?.vmim?.phase || t?.vmim?.phase;
    const where = phase ? `phase ${phase}` : `state ${m.state}`;
    const message = `no progress for ${formatSeconds(limit)} in ${where}: ${this.waiting()}`;
    this.fail({ code: "Stalled", message: clip(message), fix: "ferry aborts and retries the attempt; if it stalls again, check the synchronization addresses, the migration network and virt-handler on both clusters" }, "StallDetected");
  }

  // --- desired tasks and trust ------------------------------------------------------------

  private desiredTasks(): Task[] {
    const m = this.m;
    if (m.attempt === 0) return [];
    const b = this.base();
    const cur = this.current();
    switch (m.state) {
      case "PreparingTarget":
      case "TargetReady":
      case "Migrating": {
        if (!this.cross) {
          if (m.state !== "Migrating") return [];
          const role = this.roleOf("local") as "storage" | "offline";
          return [{ ...b, role, action: "migrate", storageMap: this.spec.storageMap, sourceVolumes: m.snapshot?.sourceFacts.volumes ?? [] }];
        }
        const snap = m.snapshot;
        if (!snap) return [];
        const tasks: Task[] = [
          {
            ...b,
            role: "target",
            action: "prepare",
            storageMap: this.spec.storageMap,
            networkMap: this.spec.networkMap,
            sourceVm: { manifest: snap.manifest, dependencies: snap.dependencies, volumes: snap.sourceFacts.volumes },
          },
        ];
        // send only towards a ready receiver, never again once the target has the VM, and (before
        // the sendTo VMIM exists) only with trust confirmed on both sides right now.
        const sendable = m.state === "Migrating" || (m.state === "TargetReady" && this.trustReady());
        if (sendable && m.syncAddress && !cur?.targetCompleted) {
          tasks.unshift({ ...b, role: "source", action: "send", connectUrl: m.syncAddress });
        }
        return tasks;
      }
      case "Finalizing":
        if (this.cross) return [{ ...b, role: "source", action: "finalize", sourcePolicy: this.spec.sourcePolicy }];
        return [{ ...b, role: this.roleOf("local") as "storage" | "offline", action: "finalize", sourcePolicy: this.spec.sourcePolicy }];
      case "RollingBack":
      case "Cancelling":
        return (cur?.issued ?? []).map((side): Task => ({ ...b, role: this.roleOf(side), action: "abort" }));
      default:
        return [];
    }
  }

  /** Records the sides `tasks` go to in the current attempt; true if one was new. */
  private markIssued(tasks: readonly Task[]): boolean {
    const cur = this.current();
    if (!cur) return false;
    let added = false;
    for (const t of tasks) {
      const side: Side = t.role === "source" ? "source" : t.role === "target" ? "target" : "local";
      if (!cur.issued.includes(side)) {
        cur.issued.push(side);
        added = true;
      }
    }
    return added;
  }

  private trustNeeds(): TrustNeed[] {
    const m = this.m;
    if (!this.needsTrust() || !["Trusting", "PreparingTarget", "TargetReady", "Migrating", "RollingBack", "Cancelling"].includes(m.state)) return [];
    const out: TrustNeed[] = [];
    for (const [cluster, peer] of [
      [m.source.cluster, m.target.cluster],
      [m.target.cluster, m.source.cluster],
    ] as const) {
      const bundle = this.o.clusters[peer]?.caBundle;
      if (bundle) out.push({ cluster, peer, caBundle: bundle });
    }
    return out;
  }

  // --- why-waiting --------------------------------------------------------------------------

  private waiting(): string {
    const m = this.m;
    const away = this.away().map((c) => {
      const v = this.o.clusters[c];
      if (!v || v.availability === "unknown") return `cluster ${c} is not registered`;
      return `cluster ${c} is unreachable${v.lastSeen ? ` (last seen ${formatTime(v.lastSeen, this.now)})` : ""}`;
    });
    const prefix = away.length > 0 && !["Pending", "Queued"].includes(m.state) ? `${away.join("; ")}; waiting for it to report (nothing is aborted meanwhile): ` : "";
    return prefix + (this.note ?? this.stateText());
  }

  private stepOf(side: Side): string {
    const s = this.status(side);
    return s ? `step ${s.step}${s.vmim?.phase ? `, VMIM ${s.vmim.phase}` : ""}${s.error && s.step !== "Failed" ? `: ${s.error.message}` : ""}` : "no report yet";
  }

  private stateText(): string {
    const m = this.m;
    const src = m.source.cluster;
    const tgt = m.target.cluster;
    switch (m.state) {
      case "Pending":
        return "accepted; waiting for the scheduler";
      case "Queued": {
        if (this.ctx.queueReason) return this.ctx.queueReason;
        if (m.backoffUntil && new Date(m.backoffUntil) > this.now) return `back-off until ${formatTime(m.backoffUntil, this.now)} after attempt ${m.attempt} failed${m.lastError ? `: ${m.lastError.message}` : ""}`;
        return "waiting for the scheduler";
      }
      case "Validating": {
        const errs = m.commandErrors.map((e) => e.message);
        const after = errs.length > 0 ? ` (last error: ${errs.join("; ")})` : "";
        if (m.snapshot?.attempt !== m.attempt) return `validating: waiting for ${src} to describe VM ${vmName(m.source)}${after}`;
        const missing = (["source", "target"] as const).filter((s) => !m.validation?.[s]).map((s) => (s === "source" ? `${src} (source)` : `${tgt} (target)`));
        return `validating: waiting for preflight results from ${list(missing)}${after}`;
      }
      case "Trusting": {
        const parts: string[] = [];
        for (const [cluster, peer] of [
          [src, tgt],
          [tgt, src],
        ] as const) {
          if (!this.o.clusters[peer]?.caBundle) parts.push(`${peer} to report its KubeVirt CA bundle`);
          else if (!this.trustConfirmed(cluster, peer)) {
            const e = this.o.trust[cluster]?.find((t) => t.peer === peer);
            parts.push(`${cluster} to confirm ${peer}'s CA in its kubevirt-ca${e?.lastPushAt ? ` (pushed ${formatTime(e.lastPushAt, this.now)})` : ""}`);
          }
        }
        return `establishing trust: waiting for ${list(parts)}`;
      }
      case "PreparingTarget":
        return `waiting for ${tgt} to prepare receiver VM ${vmName(m.target)} (${this.stepOf("target")})`;
      case "TargetReady":
        if (!this.trustReady()) return `receiver ready at ${m.syncAddress ?? "?"}; waiting for trust between ${src} and ${tgt} to be confirmed again before sending`;
        return `waiting for ${src} to start sending VM ${vmName(m.source)} to ${m.syncAddress ?? "?"} (${this.stepOf("source")})`;
      case "Migrating": {
        if (!this.cross) return `${m.kind === "offline" ? "offline" : "storage live"} migration on ${src}: ${this.stepOf("local")}${this.bytesText()}`;
        if (this.current()?.targetCompleted) {
          const vm = this.status("target")?.vm;
          return `the VM moved; waiting for ${tgt} to run it with its run strategy restored (VMI ${vm?.vmiPhase ?? "?"}, runStrategy ${vm?.runStrategy ?? "?"})`;
        }
        const blocked = blockedCondition(m.progress?.conditions);
        const b = blocked ? `; ${BLOCKED}: ${[blocked.reason, blocked.message].filter(Boolean).join(": ")}` : "";
        return `KubeVirt is migrating: source VMIM ${m.progress?.sourceVmimPhase || "?"}, target VMIM ${m.progress?.targetVmimPhase || "?"}${this.bytesText()}${b}`;
      }
      case "Finalizing":
        return `waiting for ${src} to apply source policy ${this.spec.sourcePolicy} to ${vmName(m.source)} (${this.stepOf(this.cross ? "source" : "local")})`;
      case "RollingBack":
      case "Cancelling": {
        const pending = this.pendingAborts().map((s) => `${this.clusterOf(s)} (${this.stepOf(s)})`);
        const what = m.state === "Cancelling" ? "cancelling" : `rolling back attempt ${m.attempt}`;
        return `${what}: waiting for ${list(pending)} to confirm the abort`;
      }
      default:
        return "";
    }
  }

  private bytesText(): string {
    const p = this.m.progress;
    if (!p || (p.processedBytes === 0 && !p.totalBytes)) return "";
    const rate = p.dataRateBytesPerSecond ? ` at ${formatRate(p.dataRateBytesPerSecond)}` : "";
    return `, ${formatBytes(p.processedBytes)}${p.totalBytes ? ` of ${formatBytes(p.totalBytes)}` : ""} transferred${rate}`;
  }
}
