// Records of the core (broker/core/records.ts) → the gRPC messages of proto/ferry/v1. Pure.
import { issueToProto, MIGRATION_STATE_TO_PROTO, PLAN_PHASE_TO_PROTO } from "../../proto/convert.js";
import type { Condition as BusCondition } from "../../proto/bus/index.js";
import { MigrationKind as ProtoKind, MigrationState as ProtoState, type Migration, type MigrationAttempt, type MigrationProgress } from "../../proto/gen/ferry/v1/migrations.js";
import type { Plan } from "../../proto/gen/ferry/v1/plans.js";
import type { Condition, ErrorDetail } from "../../proto/gen/ferry/v1/types.js";
import { migrationName, type Attempt, type ErrorInfo, type Finding, type MigrationKind, type MigrationRecord, type PlanRecord, type PlannedMigration } from "../core/index.js";

export const KIND_TO_PROTO: Record<MigrationKind, ProtoKind> = {
  "decentralized-live": ProtoKind.DECENTRALIZED_LIVE,
  "storage-live": ProtoKind.STORAGE_LIVE,
  offline: ProtoKind.OFFLINE,
};

const date = (t: string | undefined): Date | undefined => (t ? new Date(t) : undefined);

function errorToProto(e: ErrorInfo | undefined): ErrorDetail | undefined {
  return e ? { code: e.code, message: e.message, fix: e.fix } : undefined;
}

function conditionToProto(c: BusCondition): Condition {
  return { type: c.type, status: c.status, reason: c.reason ?? "", message: c.message ?? "", lastTransitionTime: date(c.lastTransitionTime) };
}

function progressToProto(m: MigrationRecord): MigrationProgress | undefined {
  const p = m.progress;
  if (!p) return undefined;
  const eta = p.remainingBytes !== undefined && p.dataRateBytesPerSecond ? Math.ceil(p.remainingBytes / p.dataRateBytesPerSecond) : undefined;
  return {
    dataProcessedBytes: p.processedBytes,
    dataTotalBytes: p.totalBytes ?? 0,
    dataRemainingBytes: p.remainingBytes ?? 0,
    dataRateBytesPerSecond: p.dataRateBytesPerSecond ?? 0,
    eta: eta !== undefined ? { seconds: eta, nanos: 0 } : undefined,
    sourceVmimPhase: p.sourceVmimPhase,
    targetVmimPhase: p.targetVmimPhase,
    conditions: p.conditions.map(conditionToProto),
    mode: p.mode ?? "",
    updateTime: date(p.updatedAt),
  };
}

function attemptToProto(a: Attempt): MigrationAttempt {
  return {
    attempt: a.attempt,
    migrationId: a.migrationId,
    outcome: a.outcome ? MIGRATION_STATE_TO_PROTO[a.outcome] : ProtoState.UNSPECIFIED,
    error: errorToProto(a.error),
    sourceVmimPhase: a.sourceVmimPhase,
    targetVmimPhase: a.targetVmimPhase,
    startTime: date(a.startedAt),
    finishTime: date(a.finishedAt),
  };
}

export function migrationToProto(m: MigrationRecord): Migration {
  return {
    uid: m.uid,
    name: migrationName(m),
    plan: m.plan,
    source: { ...m.source },
    target: { ...m.target },
    kind: KIND_TO_PROTO[m.kind],
    state: MIGRATION_STATE_TO_PROTO[m.state],
    attempt: m.attempt,
    migrationId: m.migrationId ?? "",
    waitingReason: m.waitingReason,
    lastError: errorToProto(m.lastError),
    progress: progressToProto(m),
    attempts: m.attempts.map(attemptToProto),
    manualRecovery: m.manualRecovery ?? "",
    createTime: date(m.createdAt),
    startTime: date(m.startedAt),
    finishTime: date(m.finishedAt),
    updateTime: date(m.updatedAt),
    placement: m.placement ?? "",
  };
}

/** A migration a dry run would create: no uid, no state beyond PENDING. */
export function plannedToProto(plan: string, m: PlannedMigration): Migration {
  return {
    uid: "",
    name: migrationName({ plan, source: m.source }),
    plan,
    source: { ...m.source },
    target: { ...m.target },
    kind: KIND_TO_PROTO[m.kind],
    state: ProtoState.PENDING,
    attempt: 0,
    migrationId: "",
    waitingReason: "",
    lastError: undefined,
    progress: undefined,
    attempts: [],
    manualRecovery: "",
    createTime: undefined,
    startTime: undefined,
    finishTime: undefined,
    updateTime: undefined,
    placement: m.placement ?? "",
  };
}

export function findingToProto(f: Finding) {
  return issueToProto(f, f.vm ? { ...f.vm } : undefined);
}

export function planToProto(p: PlanRecord, migrations: readonly MigrationRecord[] = []): Plan {
  return {
    name: p.name,
    document: structuredClone(p.document),
    phase: PLAN_PHASE_TO_PROTO[p.phase],
    counters: { ...p.counters },
    createTime: date(p.createdAt),
    startTime: date(p.startedAt),
    finishTime: date(p.finishedAt),
    migrations: migrations.map(migrationToProto),
    validation: p.findings.map(findingToProto),
    waitingReason: p.waitingReason,
  };
}
