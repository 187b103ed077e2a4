// A plan's phase, counters and waiting reason, derived from its migrations.
//
//   unfinished migrations left:  Cancelling (cancel requested) · Running (any attempt started or
//                                any migration finished) · Pending
//   all finished:                Cancelled (cancel requested) · Succeeded (all succeeded; also an
//                                empty plan) · Failed (all failed) · PartiallyFailed (otherwise)
import type { PlanPhase } from "../../proto/bus/index.js";
import { sameJson } from "./json.js";
import type { EventDraft } from "./machine.js";
import { isInFlight, isTerminal, QUEUED_STATES, type MigrationRecord, type PlanCounters, type PlanRecord } from "./records.js";

export function planCounters(migrations: readonly MigrationRecord[]): PlanCounters {
  const c: PlanCounters = { total: migrations.length, queued: 0, running: 0, succeeded: 0, failed: 0, cancelled: 0 };
  for (const m of migrations) {
    if (QUEUED_STATES.has(m.state)) c.queued++;
    else if (isInFlight(m.state)) c.running++;
    else if (m.state === "Succeeded") c.succeeded++;
    else if (m.state === "Failed") c.failed++;
    else if (m.state === "Cancelled") c.cancelled++;
  }
  return c;
}

export function planPhase(plan: Pick<PlanRecord, "cancelRequested">, migrations: readonly MigrationRecord[]): PlanPhase {
  const c = planCounters(migrations);
  if (migrations.some((m) => !isTerminal(m.state))) {
    if (plan.cancelRequested) return "Cancelling";
    const started = c.running > 0 || c.succeeded + c.failed + c.cancelled > 0 || migrations.some((m) => m.attempt > 0);
    return started ? "Running" : "Pending";
  }
  if (plan.cancelRequested) return "Cancelled";
  if (c.succeeded === c.total) return "Succeeded";
  if (c.failed === c.total) return "Failed";
  return "PartiallyFailed";
}

/** Why the plan does not progress: with nothing in flight, the first queued migration's reason. */
export function planWaitingReason(migrations: readonly MigrationRecord[]): string {
  if (migrations.some((m) => isInFlight(m.state))) return "";
  const queued = migrations.filter((m) => QUEUED_STATES.has(m.state)).sort((a, b) => `${a.source.namespace}/${a.source.name}`.localeCompare(`${b.source.namespace}/${b.source.name}`));
  const first = queued[0];
  if (!first) return "";
  const same = queued.filter((m) => m.waitingReason === first.waitingReason).length;
  return same === queued.length || queued.length === 1 ? first.waitingReason : `${first.waitingReason} (and ${queued.length - 1} more queued)`;
}

/** The plan record with phase, counters, times and waiting reason brought up to date (updatedAt only on change), plus a phase-change event. */
export function planStatus(plan: PlanRecord, migrations: readonly MigrationRecord[], now: Date): { plan: PlanRecord; events: EventDraft[] } {
  const at = now.toISOString();
  const next: PlanRecord = { ...plan, counters: planCounters(migrations), phase: planPhase(plan, migrations), waitingReason: planWaitingReason(migrations) };
  if (next.phase !== "Pending") next.startedAt ??= at;
  const done = ["Succeeded", "Failed", "PartiallyFailed", "Cancelled"].includes(next.phase);
  if (done) next.finishedAt ??= at;
  else delete next.finishedAt;
  const events: EventDraft[] = [];
  if (next.phase !== plan.phase) {
    const c = next.counters;
    events.push({
      plan: plan.name,
      time: at,
      type: next.phase === "Failed" || next.phase === "PartiallyFailed" ? "Warning" : "Normal",
      reason: "PlanPhaseChanged",
      message: `plan ${plan.phase} → ${next.phase}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.cancelled} cancelled, ${c.running} running, ${c.queued} queued of ${c.total}`,
      planPhase: next.phase,
    });
  }
  if (!sameJson(next, plan, ["updatedAt"])) next.updatedAt = at;
  return { plan: next, events };
}
