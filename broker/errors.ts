// Errors the broker's shell raises for a caller to fix, with the gRPC status they map to
// (server/errors.ts does the mapping). Messages say what is wrong and what to do.
export type ErrorKind =
  | "invalid-argument"
  | "not-found"
  | "already-exists"
  | "failed-precondition"
  | "unauthenticated"
  | "permission-denied"
  | "unavailable"
  | "out-of-range"
  | "unimplemented"
  | "internal";

export interface BrokerErrorDetails {
  /** INVALID_ARGUMENT: the request field at fault (proto field name, e.g. "csr_pem"). */
  field?: string;
  /** INVALID_ARGUMENT with several bad fields (e.g. plan document paths such as "spec.storageMap[0].target"). */
  fields?: { field: string; description: string }[];
  /** Stable machine-readable reason (google.rpc.ErrorInfo.reason), e.g. "TOKEN_EXPIRED". */
  reason?: string;
  /** FAILED_PRECONDITION: what blocks the request (type, subject, description). */
  violations?: { type: string; subject: string; description: string }[];
  /** ErrorInfo metadata, e.g. {leader: "broker-1", leaderAddress: "broker-1.ferry:7443"}. */
  metadata?: Record<string, string>;
}

export class BrokerError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly details: BrokerErrorDetails = {},
  ) {
    super(message);
    this.name = "BrokerError";
  }
}
