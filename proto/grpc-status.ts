// Rich gRPC errors: google.rpc.Status with BadRequest / PreconditionFailure details in the
// "grpc-status-details-bin" trailer, the convention gRPC clients in every language read. The
// broker returns these; ferryctl prints each violation with its field and fix.
import { Metadata, status, type ServerErrorResponse } from "@grpc/grpc-js";
import { Any } from "./gen/google/protobuf/any.js";
import { BadRequest, ErrorInfo, PreconditionFailure, ResourceInfo, type BadRequest_FieldViolation } from "./gen/google/rpc/error_details.js";
import { Status } from "./gen/google/rpc/status.js";
import type { FieldError } from "./issues.js";

export const STATUS_DETAILS_KEY = "grpc-status-details-bin";

const TYPE_URL_PREFIX = "type.googleapis.com/";

export type Detail =
  | { $case: "badRequest"; value: BadRequest }
  | { $case: "preconditionFailure"; value: PreconditionFailure }
  | { $case: "errorInfo"; value: ErrorInfo }
  | { $case: "resourceInfo"; value: ResourceInfo };

const CODECS = {
  badRequest: { name: "google.rpc.BadRequest", fns: BadRequest },
  preconditionFailure: { name: "google.rpc.PreconditionFailure", fns: PreconditionFailure },
  errorInfo: { name: "google.rpc.ErrorInfo", fns: ErrorInfo },
  resourceInfo: { name: "google.rpc.ResourceInfo", fns: ResourceInfo },
} as const;

function pack(detail: Detail): Any {
  const codec = CODECS[detail.$case];
  // The union's value matches the codec of its $case; TS can't correlate the two.
  const bytes = (codec.fns as { encode(m: unknown): { finish(): Uint8Array } }).encode(detail.value).finish();
  return { typeUrl: TYPE_URL_PREFIX + codec.name, value: Buffer.from(bytes) };
}

/** An error for a grpc-js handler callback (or `call.destroy`), with structured details. */
export function richError(code: status, message: string, details: Detail[]): ServerErrorResponse {
  const metadata = new Metadata();
  const encoded = Status.encode({ code, message, details: details.map(pack) }).finish();
  metadata.set(STATUS_DETAILS_KEY, Buffer.from(encoded));
  return Object.assign(new Error(message), { code, details: message, metadata });
}

/** INVALID_ARGUMENT naming each bad field, e.g. from parsePlan's errors (field = document path). */
export function invalidArgument(message: string, errors: readonly FieldError[], reason = "INVALID_FIELD"): ServerErrorResponse {
  const fieldViolations: BadRequest_FieldViolation[] = errors.map((e) => ({
    field: e.path,
    description: e.line ? `${e.message} (line ${e.line})` : e.message,
    reason,
  }));
  return richError(status.INVALID_ARGUMENT, message, [{ $case: "badRequest", value: { fieldViolations } }]);
}

/** FAILED_PRECONDITION listing what in the clusters blocks the request (type = issue code, subject = the VM or cluster). */
export function failedPrecondition(message: string, violations: { type: string; subject: string; description: string }[]): ServerErrorResponse {
  return richError(status.FAILED_PRECONDITION, message, [{ $case: "preconditionFailure", value: { violations } }]);
}

/** Decodes the details a server attached to an error; details of unknown types are skipped. */
export function readStatusDetails(metadata: Metadata | undefined): Detail[] {
  const raw = metadata?.get(STATUS_DETAILS_KEY)[0];
  if (!(raw instanceof Buffer)) return [];
  try {
    return Status.decode(raw).details.flatMap((any): Detail[] => {
      for (const [key, codec] of Object.entries(CODECS)) {
        if (any.typeUrl === TYPE_URL_PREFIX + codec.name) {
          return [{ $case: key, value: codec.fns.decode(any.value) } as Detail];
        }
      }
      return [];
    });
  } catch {
    return [];
  }
}
