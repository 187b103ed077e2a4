// Kubernetes API errors, serialised as `Status` objects exactly as kube-apiserver sends them.

export type StatusReason =
  | "NotFound" | "AlreadyExists" | "Conflict" | "Invalid" | "BadRequest" | "Unauthorized" | "Forbidden"
  | "Gone" | "Expired" | "MethodNotAllowed" | "UnsupportedMediaType" | "InternalError" | "ServiceUnavailable"
  | "TooManyRequests" | "Timeout" | "NotAcceptable";

export interface StatusCause { reason?: string; message: string; field?: string }

export class ApiError extends Error {
  constructor(
    readonly code: number,
    readonly reason: StatusReason,
    message: string,
    readonly details?: { name?: string; group?: string; kind?: string; causes?: StatusCause[]; retryAfterSeconds?: number },
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: this.message,
      reason: this.reason,
      ...(this.details ? { details: this.details } : {}),
      code: this.code,
    };
  }
}

/** `virtualmachines.kubevirt.io` — the qualified resource name kube-apiserver puts in messages. */
export function qualified(plural: string, group: string): string {
  return group ? `${plural}.${group}` : plural;
}

export const notFound = (plural: string, group: string, name: string) =>
  new ApiError(404, "NotFound", `${qualified(plural, group)} "${name}" not found`, { name, group, kind: plural });

export const alreadyExists = (plural: string, group: string, name: string) =>
  new ApiError(409, "AlreadyExists", `${qualified(plural, group)} "${name}" already exists`, { name, group, kind: plural });

export const conflict = (plural: string, group: string, name: string) =>
  new ApiError(
    409,
    "Conflict",
    `Operation cannot be fulfilled on ${qualified(plural, group)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group, kind: plural },
  );

export const invalid = (kind: string, group: string, name: string, causes: StatusCause[]) =>
  new ApiError(
    422,
    "Invalid",
    `${kind}.${group || "core"} "${name}" is invalid: ${causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message)).join(", ")}`,
    { name, group, kind, causes: causes.map((c) => ({ reason: c.reason ?? "FieldValueInvalid", message: c.message, field: c.field })) },
  );

export const gone = (message: string) => new ApiError(410, "Expired", message);

/** An admission webhook refusal, worded as kube-apiserver wraps webhook denials. */
export const admissionDenied = (webhook: string, message: string) =>
  new ApiError(422, "Invalid", `admission webhook "${webhook}" denied the request: ${message}`);
