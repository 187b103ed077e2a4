// The controller's Prometheus metrics, on the broker's registry (GET /metrics). Gauges are read
// from the record cache when scraped; counters and histograms count what this replica did while
// it led (a new leader starts from zero, as Prometheus counters do after a restart).
import { Counter, Gauge, Histogram, type Registry } from "prom-client";
import { MigrationState } from "../../proto/bus/index.js";
import { isTerminal, type EventDraft, type MigrationRecord } from "../core/index.js";

export class ControllerMetrics {
  readonly migrations: Gauge<"state" | "kind">;
  readonly queued: Gauge;
  readonly duration: Histogram<"kind" | "outcome">;
  readonly bytes: Counter<"kind">;
  readonly retries: Counter<"kind">;
  readonly stalls: Counter;
  readonly passes: Counter<"result">;
  readonly passDuration: Histogram;
  readonly commands: Counter<"type" | "result">;
  readonly taskSets: Counter<"reason">;

  constructor(registry: Registry, records: () => MigrationRecord[]) {
    const registers = [registry];
    this.migrations = new Gauge({
      name: "ferry_migrations",
      help: "Migrations by state (Pending … Succeeded, Failed, Cancelled) and kind (decentralized-live, storage-live, offline)",
      labelNames: ["state", "kind"] as const,
      registers,
      collect: () => {
        this.migrations.reset();
        for (const s of MigrationState.options) for (const k of ["decentralized-live", "storage-live", "offline"]) this.migrations.set({ state: s, kind: k }, 0);
        for (const m of records()) this.migrations.inc({ state: m.state, kind: m.kind });
      },
    });
    this.queued = new Gauge({ name: "ferry_migrations_queue_length", help: "Queued migrations the scheduler did not start in the last pass (each says why it waits)", registers });
    this.duration = new Histogram({
      name: "ferry_migration_duration_seconds",
      help: "From the first attempt's start to the end, by kind and outcome (Succeeded, Failed, Cancelled)",
      labelNames: ["kind", "outcome"] as const,
      buckets: [5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400],
      registers,
    });
    this.bytes = new Counter({ name: "ferry_migration_bytes_total", help: "Bytes KubeVirt reported transferred by migrations that succeeded, by kind", labelNames: ["kind"] as const, registers });
    this.retries = new Counter({ name: "ferry_migration_retries_total", help: "New attempts after a failure: automatic (back-off) or manual (RetryMigration)", labelNames: ["kind"] as const, registers });
    this.stalls = new Counter({ name: "ferry_migration_stalls_total", help: "Attempts failed by the stall watchdog (no progress for the plan's stallTimeoutSeconds)", registers });
    this.passes = new Counter({ name: "ferry_reconcile_passes_total", help: "Reconcile passes of the leader's loop, by result", labelNames: ["result"] as const, registers });
    this.passDuration = new Histogram({ name: "ferry_reconcile_pass_duration_seconds", help: "Time of one reconcile pass", buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5], registers });
    this.commands = new Counter({ name: "ferry_agent_commands_total", help: "describe-vm and preflight requests to agents, by result (ok or the RpcError code)", labelNames: ["type", "result"] as const, registers });
    this.taskSets = new Counter({ name: "ferry_task_sets_published_total", help: "Task sets published to agents: changed (new generation) or periodic", labelNames: ["reason"] as const, registers });
  }

  /** Count what a written step did. */
  observeTransition(before: MigrationRecord, after: MigrationRecord, events: readonly EventDraft[]): void {
    for (const e of events) {
      if (e.reason === "StallDetected") this.stalls.inc();
      if (e.reason === "RetryScheduled") this.retries.inc({ kind: "automatic" });
      if (e.reason === "RetryRequested") this.retries.inc({ kind: "manual" });
    }
    if (!isTerminal(before.state) && isTerminal(after.state)) {
      const start = after.startedAt ?? after.createdAt;
      const seconds = (new Date(after.finishedAt ?? after.updatedAt).getTime() - new Date(start).getTime()) / 1000;
      this.duration.observe({ kind: after.kind, outcome: after.state }, Math.max(0, seconds));
      if (after.state === "Succeeded") this.bytes.inc({ kind: after.kind }, after.progress?.processedBytes ?? 0);
    }
  }
}
