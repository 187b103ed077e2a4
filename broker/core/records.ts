// The broker's durable records: what the shell keeps in JetStream KV (ferry_plans, ferry_migrations)
// and writes with compare-and-set. Everything here is plain JSON (times are RFC 3339 strings) and
// bounded in size: lists are capped, free text is clipped, so a record always fits one KV value.
import { z } from "zod";
import {
  AgentError,
  Bytes,
  Condition,
  Count,
  Issue,
  MigrationId,
  MigrationState,
  PlanPhase,
  PreflightResult,
  SourceFacts,
  SyncAddress,
  Text,
  Time,
  VmRef,
} from "../../proto/bus/index.js";
import { KubeObject, KubeVirtString } from "../../proto/kube.js";
import { DNS1123_LABEL_RULE, MigrationUid, ObjectName, PlanName } from "../../proto/names.js";
import { MigrationPlan } from "../../proto/plan.js";

export const MigrationKind = z.enum(["decentralized-live", "storage-live", "offline"]);
export type MigrationKind = z.infer<typeof MigrationKind>;

/** An error with the fix a human can apply (ferry.v1.ErrorDetail). */
export const ErrorInfo = AgentError;
export type ErrorInfo = z.infer<typeof ErrorInfo>;

/** A validation finding, about one VM or (without `vm`) the whole plan (ferry.v1.ValidationIssue). */
export const Finding = Issue.extend({ vm: VmRef.optional() });
export type Finding = z.infer<typeof Finding>;

export const MAX_FINDINGS = 1000;
export const MAX_ATTEMPT_HISTORY = 100;
export const MAX_CONDITIONS = 16;

/**
 * Broker-assigned plan id. Migration uids are derived from it (`<plan uid>-<n>`) and must stay
 * DNS-1123 labels, hence the shorter bound.
 */
export const PlanUid = z
  .string()
  .max(48, { error: "plan uid must be at most 48 characters (migration uids append -<n>)" })
  .regex(/^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/, { error: `plan uid ${DNS1123_LABEL_RULE}` });

export function migrationUidFor(planUid: string, index: number): string {
  return `${planUid}-${index + 1}`;
}

export const PlanCounters = z.object({
  total: Count,
  /** Pending or Queued. */
  queued: Count,
  /** Validating … Finalizing, RollingBack, Cancelling. */
  running: Count,
  succeeded: Count,
  failed: Count,
  cancelled: Count,
});
export type PlanCounters = z.infer<typeof PlanCounters>;

export const PlanRecord = z.object({
  name: PlanName,
  uid: PlanUid,
  /** The parsed document, defaults filled in (proto/plan.ts). */
  document: MigrationPlan,
  phase: PlanPhase,
  counters: PlanCounters,
  /** Validation findings: warnings of a created plan (errors prevent creation). */
  findings: z.array(Finding).max(MAX_FINDINGS),
  cancelRequested: z.boolean(),
  /** Why the plan does not progress; "" when it does. */
  waitingReason: Text,
  createdAt: Time,
  startedAt: Time.optional(),
  finishedAt: Time.optional(),
  updatedAt: Time,
});
export type PlanRecord = z.infer<typeof PlanRecord>;

/** Where a migration's tasks went: source/target clusters, or the one cluster of a same-cluster move. */
export const Side = z.enum(["source", "target", "local"]);
export type Side = z.infer<typeof Side>;

export const AttemptOutcome = z.enum(["Succeeded", "Failed", "Cancelled"]);
export type AttemptOutcome = z.infer<typeof AttemptOutcome>;

export const Attempt = z.object({
  attempt: z.int().min(1),
  migrationId: MigrationId,
  startedAt: Time,
  finishedAt: Time.optional(),
  /** Unset while the attempt runs. */
  outcome: AttemptOutcome.optional(),
  error: ErrorInfo.optional(),
  sourceVmimPhase: KubeVirtString,
  targetVmimPhase: KubeVirtString,
  /** Sides that were sent a task in this attempt; each must confirm an abort before a retry. */
  issued: z.array(Side).max(3),
  /**
   * The target reported the VM migrated (receive VMIM Succeeded). From then on the VM lives on the
   * target: nothing there is aborted, whatever else is observed.
   */
  targetCompleted: z.boolean(),
});
export type Attempt = z.infer<typeof Attempt>;

/** The source VM as describe-vm returned it for one attempt: what the target `prepare` task needs. */
export const Snapshot = z.object({
  attempt: z.int().min(1),
  manifest: KubeObject,
  dependencies: z.array(KubeObject).max(64),
  sourceFacts: SourceFacts,
  describedAt: Time,
});
export type Snapshot = z.infer<typeof Snapshot>;

const PreflightOutcome = PreflightResult.pick({ ok: true, issues: true });

/** Preflight results of the current attempt, per side. */
export const Validation = z.object({
  attempt: z.int().min(1),
  source: PreflightOutcome.optional(),
  target: PreflightOutcome.optional(),
});
export type Validation = z.infer<typeof Validation>;

export const Progress = z.object({
  processedBytes: Bytes,
  totalBytes: Bytes.optional(),
  remainingBytes: Bytes.optional(),
  dataRateBytesPerSecond: Bytes.optional(),
  sourceVmimPhase: KubeVirtString,
  targetVmimPhase: KubeVirtString,
  /** "PreCopy", "PostCopy" or "Paused". */
  mode: KubeVirtString.optional(),
  /** VMIM conditions of both sides, e.g. decentralizedMigrationBlocked. */
  conditions: z.array(Condition).max(MAX_CONDITIONS),
  updatedAt: Time,
});
export type Progress = z.infer<typeof Progress>;

/** The stall watchdog's memory: the last observed position and since when it has not moved. */
export const Stall = z.object({
  mark: z.string().max(2048),
  processedBytes: Bytes,
  since: Time,
});
export type Stall = z.infer<typeof Stall>;

export const MigrationRecord = z.object({
  uid: MigrationUid,
  plan: PlanName,
  kind: MigrationKind,
  source: VmRef,
  target: VmRef,
  state: MigrationState,
  /** Current (or last) attempt, 1-based; 0 before the first starts. */
  attempt: Count,
  /** migrationIdFor(uid, attempt) of the current attempt. */
  migrationId: MigrationId.optional(),
  /** Oldest first, the current one last; at most MAX_ATTEMPT_HISTORY (the oldest are dropped). */
  attempts: z.array(Attempt).max(MAX_ATTEMPT_HISTORY),
  /** Attempts made before the last manual retry; the plan's maxAttempts counts from here. */
  retryBase: Count,
  backoffUntil: Time.optional(),
  lastError: ErrorInfo.optional(),
  /** What the migration waits for; "" only in a terminal state. */
  waitingReason: Text,
  cancelRequested: z.boolean(),
  retryRequested: z.boolean(),
  /** Scheduling weight: memory plus disks (offline moves copy only the disks). */
  size: z.object({ memoryBytes: Bytes, diskBytes: Bytes }),
  /** Node the source VMI runs on (per-node outbound limits); absent for a stopped VM. */
  sourceNode: ObjectName.optional(),
  /** Evacuation: why placement chose this target. */
  placement: Text.optional(),
  snapshot: Snapshot.optional(),
  validation: Validation.optional(),
  /**
   * Commands (describe-vm, preflight) of this attempt that failed in transport or with an agent
   * error, one per command; each is sent again under a new id (`<id>#<n>`) after a pause.
   */
  commandErrors: z.array(z.object({ id: z.string().max(512), message: Text, at: Time })).max(8),
  /** Target synchronization address of the current attempt (the sendTo VMIM's connectURL). */
  syncAddress: SyncAddress.optional(),
  progress: Progress.optional(),
  stall: Stall.optional(),
  /** Storage/offline moves: KubeVirt's ManualRecoveryRequired with the recovery rule. */
  manualRecovery: Text.optional(),
  createdAt: Time,
  startedAt: Time.optional(),
  finishedAt: Time.optional(),
  updatedAt: Time,
});
export type MigrationRecord = z.infer<typeof MigrationRecord>;

/** "<plan>/<source namespace>/<source VM>": unique, since a plan lists a VM once. */
export function migrationName(m: Pick<MigrationRecord, "plan" | "source">): string {
  return `${m.plan}/${m.source.namespace}/${m.source.name}`;
}

export const TERMINAL_STATES: ReadonlySet<MigrationState> = new Set(["Succeeded", "Failed", "Cancelled"]);
export const QUEUED_STATES: ReadonlySet<MigrationState> = new Set(["Pending", "Queued"]);
/** States that hold a scheduler slot (admitted, not yet released): every state neither queued nor terminal. */
export const IN_FLIGHT_STATES: ReadonlySet<MigrationState> = new Set(MigrationState.options.filter((s) => !TERMINAL_STATES.has(s) && !QUEUED_STATES.has(s)));

export function isTerminal(state: MigrationState): boolean {
  return TERMINAL_STATES.has(state);
}

export function isInFlight(state: MigrationState): boolean {
  return IN_FLIGHT_STATES.has(state);
}

export function totalBytes(m: Pick<MigrationRecord, "size" | "kind">): number {
  return (m.kind === "offline" ? 0 : m.size.memoryBytes) + m.size.diskBytes;
}
