// Live per-VM progress for the demo: pure formatting of the broker's Migration messages (phase,
// bytes, rate) into lines, plus a board that follows WatchPlan streams. The formatting is kept in
// these functions so ferryctl's watch rendering can replace them in one place.
import type { ClientReadableStream } from "@grpc/grpc-js";
import { plainLine, progressRow } from "../cli/watch.js";
import { MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan, type WatchPlanResponse } from "../proto/gen/ferry/v1/plans.js";
import type { PlanServiceClient } from "../proto/gen/ferry/v1/plans.js";

export const TERMINAL_PLAN: ReadonlySet<PlanPhase> = new Set([PlanPhase.SUCCEEDED, PlanPhase.FAILED, PlanPhase.PARTIALLY_FAILED, PlanPhase.CANCELLED]);

/** "PREPARING_TARGET" → "PreparingTarget" (the design's spelling). */
export function stateName(s: MigrationState): string {
  const name = MigrationState[s] ?? String(s);
  return name
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}

export function planPhaseName(p: PlanPhase): string {
  return (PlanPhase[p] ?? String(p))
    .toLowerCase()
    .split("_")
    .map((w) => w.charAt(0).toUpperCase() + w.slice(1))
    .join("");
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, "0")}s`;
}

/** One line per migration, in ferryctl's plain watch format, prefixed with the source cluster. */
export function migrationLine(m: Migration): string {
  return `${m.source?.cluster ?? "?"}/${plainLine(progressRow(m))}`;
}

export function durationOf(m: Pick<Migration, "startTime" | "finishTime" | "createTime">): number | undefined {
  const start = m.startTime ?? m.createTime;
  return start && m.finishTime ? m.finishTime.getTime() - start.getTime() : undefined;
}

/**
 * Follows WatchPlan streams and keeps the latest Migration and Plan of each. `onChange` fires on
 * every accepted message (with the audit line, if any).
 */
export class ProgressBoard {
  readonly migrations = new Map<string, Migration>();
  readonly plans = new Map<string, Plan>();
  private readonly streams: ClientReadableStream<WatchPlanResponse>[] = [];
  private readonly errors: Error[] = [];

  constructor(private readonly onChange: (change: { plan: string; message: string; migration?: Migration; plan_?: Plan }) => void = () => {}) {}

  follow(client: PlanServiceClient, plan: string): void {
    let afterSeq = 0;
    const open = () => {
      const s = client.watchPlan({ name: plan, afterSeq });
      this.streams.push(s);
      s.on("data", (r: WatchPlanResponse) => {
        afterSeq = Math.max(afterSeq, r.seq);
        if (r.change?.$case === "migration") {
          this.migrations.set(r.change.value.name, r.change.value);
          this.onChange({ plan, message: r.message, migration: r.change.value });
        } else if (r.change?.$case === "plan") {
          this.plans.set(plan, r.change.value);
          this.onChange({ plan, message: r.message, plan_: r.change.value });
        }
      });
      s.on("error", (e: Error & { code?: number }) => {
        // 1 = CANCELLED (we closed it). Others: the leader moved or the broker restarted; resume.
        if (e.code === 1) return;
        this.errors.push(e);
        setTimeout(open, 500).unref();
      });
    };
    open();
  }

  /** Lines of the migrations of `plans` (default: every followed plan), by name. */
  lines(plans?: readonly string[]): string[] {
    return [...this.migrations.values()]
      .filter((m) => !plans || plans.includes(m.plan))
      .sort((a, b) => a.name.localeCompare(b.name))
      .map(migrationLine);
  }

  /** Every followed plan reached a terminal phase. */
  done(names: readonly string[]): boolean {
    return names.every((n) => {
      const p = this.plans.get(n);
      return p !== undefined && TERMINAL_PLAN.has(p.phase);
    });
  }

  close(): void {
    for (const s of this.streams) s.cancel();
  }
}
