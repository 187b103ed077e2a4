// Plan and migration messages for the unit tests of the pure formatting and watch code.
import { MigrationKind, MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan } from "../proto/gen/ferry/v1/plans.js";

export const now = new Date("2025-06-01T12:00:00Z");
export const ago = (s: number) => new Date(now.getTime() - s * 1000);

export function migration(over: Partial<Migration> = {}): Migration {
  return {
    uid: "m-1",
    name: "move-db/db/pg-0",
    plan: "move-db",
    source: { cluster: "east", namespace: "db", name: "pg-0" },
    target: { cluster: "west", namespace: "db", name: "pg-0" },
    kind: MigrationKind.DECENTRALIZED_LIVE,
    state: MigrationState.MIGRATING,
    attempt: 1,
    migrationId: "m-1-1",
    waitingReason: "",
    lastError: undefined,
    progress: undefined,
    attempts: [],
    manualRecovery: "",
    createTime: ago(90),
    startTime: undefined,
    finishTime: undefined,
    updateTime: undefined,
    placement: "",
    ...over,
  };
}

export function plan(over: Partial<Plan> = {}): Plan {
  return {
    name: "move-db",
    document: { spec: { source: { cluster: "east" }, target: { cluster: "west" } } },
    phase: PlanPhase.RUNNING,
    counters: { total: 3, queued: 1, running: 1, succeeded: 1, failed: 0, cancelled: 0 },
    createTime: ago(3 * 3600),
    startTime: undefined,
    finishTime: undefined,
    migrations: [],
    validation: [],
    waitingReason: "",
    ...over,
  };
}

