// Pure transitions of a cluster record (PendingEnrollment → Enrolled → Removed, cordon) and the
// health rule. Each returns the next record, UNCHANGED when the request is already satisfied
// (idempotent RPCs), or throws a BrokerError saying what blocks it. No I/O: the shell runs them
// inside a compare-and-set loop (state/kv.ts `mutate`).
import { BrokerError } from "../errors.js";
import { UNCHANGED } from "../state/kv.js";
import type { ClusterRecord, IssuedCertificate, IssuedNatsUser } from "../state/records.js";

const MAX_ISSUED = 8;

export function notFound(name: string): BrokerError {
  return new BrokerError("not-found", `cluster "${name}" does not exist; list clusters with \`ferryctl cluster list\`, add one with \`ferryctl cluster add ${name}\``, {
    reason: "CLUSTER_NOT_FOUND",
  });
}

/** Why no enrollment token may be issued for the cluster now (undefined: it may). */
export function tokenIssueRefusal(current: ClusterRecord | undefined, name: string): BrokerError | undefined {
  if (current?.state !== "Enrolled") return undefined;
  return new BrokerError("already-exists", `cluster "${name}" is already enrolled; remove it first (\`ferryctl cluster remove ${name}\`) to enroll it again`, {
    reason: "CLUSTER_ALREADY_ENROLLED",
  });
}

/** A new token for `name`: creates the record (PendingEnrollment), replaces a pending one's token, or re-adds a removed cluster. */
export function withPendingToken(current: ClusterRecord | undefined, name: string, token: { id: string; expiresAt: string }, now: Date): ClusterRecord {
  const refusal = tokenIssueRefusal(current, name);
  if (refusal) throw refusal;
  const at = now.toISOString();
  const base: ClusterRecord =
    current?.state === "PendingEnrollment"
      ? current
      : { name, state: "PendingEnrollment", createdAt: at, updatedAt: at, certificates: [], natsUsers: [], ...(current?.cordon ? { cordon: current.cordon } : {}) };
  return { ...base, updatedAt: at, pendingToken: { id: token.id, expiresAt: token.expiresAt } };
}

function pruned<T extends { notAfter?: string; expiresAt?: string }>(items: T[], now: Date): T[] {
  return items.filter((i) => Date.parse(i.notAfter ?? i.expiresAt ?? "") > now.getTime()).slice(-MAX_ISSUED);
}

/** Why token `tokenId` (verified) may not enroll the cluster (undefined: it may). */
export function enrollmentRefusal(current: ClusterRecord | undefined, cluster: string, tokenId: string): BrokerError | undefined {
  if (current?.state === "PendingEnrollment" && current.pendingToken?.id === tokenId) return undefined;
  const why =
    current === undefined
      ? "the cluster was deleted"
      : current.state === "Enrolled"
        ? "the cluster is already enrolled"
        : current.state === "Removed"
          ? "the cluster was removed"
          : "a newer token was issued for it";
  return new BrokerError("unauthenticated", `enrollment token is no longer valid for cluster "${cluster}": ${why}; ask the admin for a new one (\`ferryctl cluster add ${cluster}\`)`, {
    reason: "TOKEN_SUPERSEDED",
  });
}

/** The token `tokenId` enrolled the cluster's agent with this certificate and NATS user. */
export function enrolled(current: ClusterRecord | undefined, cluster: string, tokenId: string, cert: IssuedCertificate, user: IssuedNatsUser, now: Date): ClusterRecord {
  const refusal = enrollmentRefusal(current, cluster, tokenId);
  if (refusal || !current) throw refusal ?? notFound(cluster);
  const { pendingToken: _, removedAt: __, ...rest } = current;
  const at = now.toISOString();
  return { ...rest, state: "Enrolled", enrolledAt: at, updatedAt: at, certificates: [cert], natsUsers: [user] };
}

/** Whether `serialNumber` is a live certificate of the cluster's current enrollment. */
export function holdsCertificate(record: ClusterRecord | undefined, serialNumber: string, now: Date): boolean {
  if (record?.state !== "Enrolled") return false;
  return pruned(record.certificates, now).some((c) => c.serialNumber.toUpperCase() === serialNumber.toUpperCase());
}

/** Refusal of a renewal by a certificate that is not (or no longer) one of the cluster's. */
export function renewalRefusal(record: ClusterRecord | undefined, cluster: string, serialNumber: string): BrokerError {
  const fix = `enroll the agent again with a new token (\`ferryctl cluster add ${cluster}\`)`;
  if (!record) return new BrokerError("failed-precondition", `cluster "${cluster}" is not registered with this broker; ${fix}`, { reason: "CLUSTER_NOT_FOUND" });
  if (record.state === "Removed") return new BrokerError("failed-precondition", `cluster "${cluster}" was removed at ${record.removedAt ?? "?"}; ${fix}`, { reason: "CLUSTER_REMOVED" });
  if (record.state === "PendingEnrollment") return new BrokerError("failed-precondition", `cluster "${cluster}" is waiting for enrollment; ${fix}`, { reason: "CLUSTER_NOT_ENROLLED" });
  return new BrokerError("failed-precondition", `certificate ${serialNumber} is not a current certificate of cluster "${cluster}" (it was replaced by a re-enrollment); ${fix}`, {
    reason: "CERTIFICATE_SUPERSEDED",
  });
}

/** A renewal by certificate `serialNumber` issued `cert` and `user`. */
export function renewed(current: ClusterRecord | undefined, cluster: string, serialNumber: string, cert: IssuedCertificate, user: IssuedNatsUser, now: Date): ClusterRecord {
  if (!current || !holdsCertificate(current, serialNumber, now)) throw renewalRefusal(current, cluster, serialNumber);
  return {
    ...current,
    updatedAt: now.toISOString(),
    certificates: pruned([...current.certificates, cert], now),
    natsUsers: pruned([...current.natsUsers.filter((u) => u.publicKey !== user.publicKey), user], now),
  };
}

export const MAX_CORDON_REASON = 1024;

export function cordoned(current: ClusterRecord | undefined, name: string, reason: string, now: Date): ClusterRecord | typeof UNCHANGED {
  if (!current) throw notFound(name);
  if (current.state === "Removed") throw new BrokerError("failed-precondition", `cluster "${name}" was removed; there is nothing to cordon`, { reason: "CLUSTER_REMOVED" });
  if (current.cordon?.reason === reason) return UNCHANGED;
  return { ...current, updatedAt: now.toISOString(), cordon: { reason, at: current.cordon?.at ?? now.toISOString() } };
}

export function uncordoned(current: ClusterRecord | undefined, name: string, now: Date): ClusterRecord | typeof UNCHANGED {
  if (!current) throw notFound(name);
  if (!current.cordon) return UNCHANGED;
  const { cordon: _, ...rest } = current;
  return { ...rest, updatedAt: now.toISOString() };
}

/** Mark removed (idempotent). Keeps the NATS users so their revocation can be (re)applied. */
export function removed(current: ClusterRecord | undefined, name: string, now: Date): ClusterRecord | typeof UNCHANGED {
  if (!current) throw notFound(name);
  if (current.state === "Removed") return UNCHANGED;
  const { pendingToken: _, ...rest } = current;
  const at = now.toISOString();
  return { ...rest, state: "Removed", removedAt: at, updatedAt: at, certificates: [] };
}

/**
 * NATS users that must stay revoked: every agent user of every removed cluster whose JWT may still
 * be valid, revoked as of the removal (JWTs issued at or before it are refused).
 */
export function revocationsDue(records: readonly ClusterRecord[], now: Date): { publicKey: string; at: Date }[] {
  return records
    .filter((r) => r.state === "Removed")
    .flatMap((r) => pruned(r.natsUsers, now).map((u) => ({ publicKey: u.publicKey, at: new Date(r.removedAt ?? r.updatedAt) })));
}

export type Health = "Available" | "Unknown";

/** Available when the last heartbeat arrived within the grace period (receiver's clock). */
export function healthOf(lastHeartbeatMs: number | undefined, nowMs: number, graceMs: number): Health {
  return lastHeartbeatMs !== undefined && nowMs - lastHeartbeatMs <= graceMs ? "Available" : "Unknown";
}
