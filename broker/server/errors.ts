// Maps what the broker's handlers throw to gRPC statuses with google.rpc details (ErrorInfo,
// BadRequest, PreconditionFailure) so that ferryctl can print the field and the fix.
import { status, type ServerErrorResponse } from "@grpc/grpc-js";
import { richError, type Detail } from "../../proto/grpc-status.js";
import { BrokerError, type ErrorKind } from "../errors.js";
import { EventsOutOfRangeError } from "../state/events.js";
import { CasExhaustedError } from "../state/kv.js";

export const ERROR_DOMAIN = "ferry.dev";

const CODES: Record<ErrorKind, status> = {
  "invalid-argument": status.INVALID_ARGUMENT,
  "not-found": status.NOT_FOUND,
  "already-exists": status.ALREADY_EXISTS,
  "failed-precondition": status.FAILED_PRECONDITION,
  unauthenticated: status.UNAUTHENTICATED,
  "permission-denied": status.PERMISSION_DENIED,
  unavailable: status.UNAVAILABLE,
  "out-of-range": status.OUT_OF_RANGE,
  unimplemented: status.UNIMPLEMENTED,
  internal: status.INTERNAL,
};

/**
 * NATS/JetStream trouble the caller should retry (the broker cannot reach its state). While a
 * JetStream cluster re-elects its meta leader (a NATS node died), the API answers "jetstream is
 * not enabled" for a moment — found by e2e/broker/nats-node-loss.test.ts.
 */
const TRANSIENT = /CONNECTION_CLOSED|connection closed|disconnect|TIMEOUT|timed out|no responders|503|stream is offline|not currently available|jetstream (is )?not enabled|no suitable peers|insufficient resources|leader/i;

export function toGrpcError(e: unknown): { error: ServerErrorResponse; internal: boolean } {
  if (e instanceof EventsOutOfRangeError) return { error: brokerError(new BrokerError("out-of-range", e.message, { reason: "EVENTS_AGED_OUT" })), internal: false };
  if (e instanceof CasExhaustedError) return { error: richError(status.ABORTED, e.message, []), internal: false };
  if (e instanceof BrokerError) return { error: brokerError(e), internal: e.kind === "internal" };
  const message = e instanceof Error ? e.message : String(e);
  if (TRANSIENT.test(message)) {
    return { error: richError(status.UNAVAILABLE, `the broker cannot reach NATS/JetStream right now (${message}); retry`, []), internal: false };
  }
  return { error: richError(status.INTERNAL, `internal error: ${message}; see the broker log`, []), internal: true };
}

function brokerError(e: BrokerError): ServerErrorResponse {
  const details: Detail[] = [];
  if (e.details.reason || e.details.metadata) {
    details.push({ $case: "errorInfo", value: { reason: e.details.reason ?? e.kind.toUpperCase().replace(/-/g, "_"), domain: ERROR_DOMAIN, metadata: e.details.metadata ?? {} } });
  }
  const fieldViolations = [
    ...(e.details.field ? [{ field: e.details.field, description: e.message, reason: e.details.reason ?? "INVALID_FIELD" }] : []),
    ...(e.details.fields ?? []).map((f) => ({ field: f.field, description: f.description, reason: e.details.reason ?? "INVALID_FIELD" })),
  ];
  if (fieldViolations.length > 0) details.push({ $case: "badRequest", value: { fieldViolations } });
  if (e.details.violations?.length) details.push({ $case: "preconditionFailure", value: { violations: e.details.violations } });
  return richError(CODES[e.kind], e.message, details);
}
