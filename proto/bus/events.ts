// Audit events: broker → JetStream stream FERRY_EVENTS on ferry.v1.events.<plan>.<migration>.
// The feed behind PlanService.WatchPlan: the stream sequence is the gRPC resume token.
import { z } from "zod";
import { MigrationUid, PlanName } from "../names.js";
import { Code, envelope, Text, Time } from "./common.js";

/** The broker's per-migration states (DESIGN.md §5); ferry.v1.MigrationState in the gRPC API. */
export const MigrationState = z.enum([
  "Pending",
  "Queued",
  "Validating",
  "Trusting",
  "PreparingTarget",
  "TargetReady",
  "Migrating",
  "Finalizing",
  "Succeeded",
  "Failed",
  "RollingBack",
  "Cancelling",
  "Cancelled",
]);
export type MigrationState = z.infer<typeof MigrationState>;

/** ferry.v1.PlanPhase in the gRPC API. */
export const PlanPhase = z.enum(["Pending", "Running", "Succeeded", "Failed", "PartiallyFailed", "Cancelling", "Cancelled"]);
export type PlanPhase = z.infer<typeof PlanPhase>;

export const Event = z.object({
  ...envelope("Event"),
  plan: PlanName,
  /** Absent for plan-level events. */
  migrationUid: MigrationUid.optional(),
  /** KV revision of the plan/migration record this event describes; readers skip records older than it. */
  generation: z.int().min(1),
  time: Time,
  type: z.enum(["Normal", "Warning"]),
  /** e.g. "StateChanged", "AttemptStarted", "StallDetected". */
  reason: Code,
  message: Text,
  planPhase: PlanPhase.optional(),
  migrationState: MigrationState.optional(),
  attempt: z.int().min(1).optional(),
});
export type Event = z.infer<typeof Event>;
