// Pairings between the bus vocabulary (zod enums, camel-case strings) and the gRPC enums, written
// as exhaustive records so adding a state on one side without the other fails to compile.
import type { Issue, MigrationState as BusMigrationState, PlanPhase as BusPlanPhase } from "./bus/index.js";
import { MigrationState } from "./gen/ferry/v1/migrations.js";
import { PlanPhase } from "./gen/ferry/v1/plans.js";
import { Severity, type ValidationIssue, type VmRef } from "./gen/ferry/v1/types.js";

export const MIGRATION_STATE_TO_PROTO: Record<BusMigrationState, MigrationState> = {
  Pending: MigrationState.PENDING,
  Queued: MigrationState.QUEUED,
  Validating: MigrationState.VALIDATING,
  Trusting: MigrationState.TRUSTING,
  PreparingTarget: MigrationState.PREPARING_TARGET,
  TargetReady: MigrationState.TARGET_READY,
  Migrating: MigrationState.MIGRATING,
  Finalizing: MigrationState.FINALIZING,
  Succeeded: MigrationState.SUCCEEDED,
  Failed: MigrationState.FAILED,
  RollingBack: MigrationState.ROLLING_BACK,
  Cancelling: MigrationState.CANCELLING,
  Cancelled: MigrationState.CANCELLED,
};

export const PLAN_PHASE_TO_PROTO: Record<BusPlanPhase, PlanPhase> = {
  Pending: PlanPhase.PENDING,
  Running: PlanPhase.RUNNING,
  Succeeded: PlanPhase.SUCCEEDED,
  Failed: PlanPhase.FAILED,
  PartiallyFailed: PlanPhase.PARTIALLY_FAILED,
  Cancelling: PlanPhase.CANCELLING,
  Cancelled: PlanPhase.CANCELLED,
};

/** An agent's preflight finding as the API reports it. */
export function issueToProto(issue: Issue, vm?: VmRef): ValidationIssue {
  return {
    vm,
    severity: issue.severity === "error" ? Severity.ERROR : Severity.WARNING,
    code: issue.code,
    field: issue.field,
    message: issue.message,
    fix: issue.fix,
  };
}
