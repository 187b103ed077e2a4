// `ferryctl plan watch`: the pure part. WatchPlan messages fold into a view of the plan and its
// migrations; the view yields one progress row per VM (for the bars), plain lines for a log or a
// pipe, and the exit code once the plan has finished.
import { MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan, type WatchPlanResponse } from "../proto/gen/ferry/v1/plans.js";
import { bytes, clock, copyProgress, durationSeconds, migrationNote, migrationStateWord, planPhaseWord, vmRef } from "./format.js";

export interface WatchView {
  plan: Plan | undefined;
  /** By uid. */
  migrations: ReadonlyMap<string, Migration>;
  /** seq of the last message folded in; resume with it. */
  lastSeq: number;
  snapshotComplete: boolean;
}

export const emptyView = (): WatchView => ({ plan: undefined, migrations: new Map(), lastSeq: 0, snapshotComplete: false });

/** Folds one message in. Messages at or below lastSeq (a resumed stream's overlap) are ignored, except snapshot parts. */
export function applyWatchMessage(view: WatchView, m: WatchPlanResponse): WatchView {
  const inSnapshot = !view.snapshotComplete;
  if (!inSnapshot && m.seq !== 0 && m.seq <= view.lastSeq) return view;
  let { plan } = view;
  let migrations = view.migrations;
  if (m.change?.$case === "plan") plan = m.change.value;
  if (m.change?.$case === "migration") {
    const next = new Map(migrations);
    next.set(m.change.value.uid, m.change.value);
    migrations = next;
  }
  return { plan, migrations, lastSeq: Math.max(view.lastSeq, m.seq), snapshotComplete: view.snapshotComplete || m.snapshotComplete };
}

/** A view restarted from a fresh snapshot (after OUT_OF_RANGE) keeps nothing stale. */
export function resetForSnapshot(view: WatchView): WatchView {
  return { ...emptyView(), lastSeq: 0, plan: view.plan };
}

const TERMINAL_PHASES = new Set([PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED, PlanPhase.CANCELLED]);
const TERMINAL_STATES = new Set([MigrationState.SUCCEEDED, MigrationState.FAILED, MigrationState.CANCELLED]);

export function isTerminal(m: Migration): boolean {
  return TERMINAL_STATES.has(m.state);
}

/** The plan has finished: its phase is final (after the snapshot, so the view is whole). */
export function planFinished(view: WatchView): boolean {
  return view.snapshotComplete && view.plan !== undefined && TERMINAL_PHASES.has(view.plan.phase);
}

/** 0 when every VM succeeded; 1 otherwise (failed, cancelled, or the plan went away). */
export function watchExitCode(view: WatchView): number {
  if (!view.plan || view.plan.phase !== PlanPhase.SUCCEEDED) return 1;
  for (const m of view.migrations.values()) if (m.state !== MigrationState.SUCCEEDED) return 1;
  return 0;
}

/** Migrations in a stable order: by name (= <plan>/<ns>/<vm>). */
export function orderedMigrations(view: WatchView): Migration[] {
  return [...view.migrations.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

export interface ProgressRow {
  uid: string;
  /** "ns/vm". */
  vm: string;
  state: string;
  /** 0..1 for the bar. */
  fraction: number;
  /** "1.7 GiB/4.0 GiB" or "". */
  bytes: string;
  /** "110 MiB/s" or "". */
  rate: string;
  /** "0:12" or "". */
  eta: string;
  /** Where it goes ("→ west") plus why it waits / why it failed. */
  note: string;
  done: boolean;
}

export function progressRow(m: Migration): ProgressRow {
  const p = m.progress;
  const copy = copyProgress(m);
  const fraction = m.state === MigrationState.SUCCEEDED ? 1 : (copy?.fraction ?? 0);
  const moving = !isTerminal(m);
  const eta = moving ? durationSeconds(p?.eta) : undefined;
  const target = m.target?.cluster ? `→ ${vmRef(m.target)}` : "";
  const why = migrationNote(m);
  const attempt = m.attempt > 1 ? `attempt ${m.attempt}` : "";
  return {
    uid: m.uid,
    vm: vmRef(m.source, false) || m.name,
    state: migrationStateWord(m.state),
    fraction,
    bytes: copy ? `${bytes(copy.processed)}/${bytes(copy.total)}` : "",
    rate: moving && p?.dataRateBytesPerSecond ? `${bytes(p.dataRateBytesPerSecond)}/s` : "",
    eta: eta !== undefined ? clock(eta) : "",
    note: [target, attempt, why].filter(Boolean).join("  "),
    done: isTerminal(m),
  };
}

/** "move-db Running: 3/10 succeeded, 2 running, 5 queued, 0 failed, 0 cancelled". */
export function planSummary(plan: Plan | undefined, name: string): string {
  if (!plan) return `${name}: waiting for the plan`;
  const c = plan.counters;
  const counts = `${c?.succeeded ?? 0}/${c?.total ?? 0} succeeded, ${c?.running ?? 0} running, ${c?.queued ?? 0} queued, ${c?.failed ?? 0} failed, ${c?.cancelled ?? 0} cancelled`;
  return `${plan.name} ${planPhaseWord(plan.phase)}: ${counts}${plan.waitingReason ? ` (${plan.waitingReason})` : ""}`;
}

/** One plain line for a migration (non-TTY output). */
export function plainLine(r: ProgressRow): string {
  const pct = r.bytes ? `${Math.floor(r.fraction * 100)}% ${r.bytes}` : "";
  return [r.vm, r.state, pct, r.rate, r.eta ? `ETA ${r.eta}` : "", r.note].filter(Boolean).join("  ");
}

/**
 * What changed enough to be worth a line in plain output: state, attempt, note, and every 10% of
 * the bytes. Rate and ETA alone do not make a new line.
 */
export function plainKey(r: ProgressRow): string {
  return `${r.state}|${r.note}|${Math.floor(r.fraction * 10)}`;
}

/**
 * Plain output: the lines to print after folding `m` into the view, given the keys printed so far
 * (updated in place). Nothing during the snapshot; at its end every migration once; then a full
 * row when a VM's row changed (with the broker's audit message), else the audit message alone.
 */
export function plainUpdate(view: WatchView, m: WatchPlanResponse, printed: Map<string, string>, time: (d: Date | undefined) => string): string[] {
  if (!view.snapshotComplete) return [];
  const lines: string[] = [];
  const stamp = time(m.time);
  const changed = m.snapshotComplete ? orderedMigrations(view) : m.change?.$case === "migration" ? [view.migrations.get(m.change.value.uid)!] : [];
  for (const mig of changed) {
    const row = progressRow(mig);
    const key = plainKey(row);
    const message = m.snapshotComplete ? "" : m.message;
    if (printed.get(mig.uid) !== key) {
      printed.set(mig.uid, key);
      lines.push(`${stamp}${plainLine(row)}${message ? `  (${message})` : ""}`);
    } else if (message) {
      // Nothing new in the row: just the broker's audit line for this VM.
      lines.push(`${stamp}${row.vm}: ${message}`);
    }
  }
  // The plan line last: after the VM lines that changed its counters.
  const summary = planSummary(view.plan, view.plan?.name ?? "");
  if (printed.get("plan") !== summary) {
    printed.set("plan", summary);
    lines.push(`${stamp}${summary}`);
  }
  return lines;
}
