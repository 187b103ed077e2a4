// What the broker keeps in JetStream KV about clusters, enrollment tokens, revocations and the
// leader lease. Only the broker's NATS user may touch these buckets. Plan and migration records
// are the core's (broker/core/records.ts); the generic helpers in kv.ts work for them too.
import { z } from "zod";
import type { EnrollmentTokenRecord as PkiTokenRecord } from "../../pki/index.js";
import { Time } from "../../proto/bus/common.js";
import { ClusterName } from "../../proto/names.js";

export const ClusterLifecycle = z.enum(["PendingEnrollment", "Enrolled", "Removed"]);
export type ClusterLifecycle = z.infer<typeof ClusterLifecycle>;

const NatsUserKey = z.string().regex(/^U[A-Z2-7]{55}$/, { error: "must be a NATS user public key (U…)" });

/** A certificate issued to the cluster's agent in its current enrollment (renewal accepts only these). */
export const IssuedCertificate = z.object({
  serialNumber: z.string().regex(/^[0-9A-F]+$/i),
  fingerprint256: z.string().min(1),
  notAfter: Time,
  issuedAt: Time,
});
export type IssuedCertificate = z.infer<typeof IssuedCertificate>;

/** A NATS user (nkey) the agent was given a JWT for; revoked when the cluster is removed. */
export const IssuedNatsUser = z.object({ publicKey: NatsUserKey, expiresAt: Time, issuedAt: Time });
export type IssuedNatsUser = z.infer<typeof IssuedNatsUser>;

export const Cordon = z.object({ reason: z.string().max(1024), at: Time });
export type Cordon = z.infer<typeof Cordon>;

/** Key `cluster.<name>` in ferry_clusters. */
export const ClusterRecord = z.object({
  name: ClusterName,
  state: ClusterLifecycle,
  createdAt: Time,
  updatedAt: Time,
  /** PendingEnrollment: the one token that may enroll it (a newer token replaces it). */
  pendingToken: z.object({ id: z.string().regex(/^[0-9a-f]{16}$/), expiresAt: Time }).optional(),
  enrolledAt: Time.optional(),
  removedAt: Time.optional(),
  cordon: Cordon.optional(),
  /** Certificates of the current enrollment that have not expired; newest last. */
  certificates: z.array(IssuedCertificate).max(16),
  /** NATS users of the current enrollment whose JWTs have not expired; newest last. */
  natsUsers: z.array(IssuedNatsUser).max(16),
});
export type ClusterRecord = z.infer<typeof ClusterRecord>;

/** Key `<token id>` in ferry_tokens: pki's record (only the secret's hash). */
export const TokenRecord = z.object({
  id: z.string().regex(/^[0-9a-f]{16}$/),
  cluster: ClusterName,
  secretSha256: z.string().regex(/^[0-9a-f]{64}$/),
  createdAt: Time,
  expiresAt: Time,
  usedAt: Time.optional(),
});
export type TokenRecord = z.infer<typeof TokenRecord>;
/** Compile-time check that a zod schema and an interface written elsewhere agree both ways. */
export type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameToken: Same<TokenRecord, PkiTokenRecord> = true;
void _sameToken;

/** Key `revocations` in ferry_clusters: user public key → unix seconds (bus/auth.ts Revocations). */
export const RevocationList = z.object({
  revocations: z.record(NatsUserKey, z.int().min(0)),
  updatedAt: Time,
});
export type RevocationList = z.infer<typeof RevocationList>;

/** Key `leader` in ferry_leader. */
export const LeaderLease = z.object({
  /** Replica identity (config `identity`). */
  holder: z.string().min(1).max(128),
  /** Where the holder serves gRPC (config grpc.advertiseAddress, else its listen address). */
  address: z.string().max(253),
  /** Unique per process start: a restarted replica with the same identity can tell its old lease from a new one. */
  instance: z.string().min(1).max(64),
  acquiredAt: Time,
  renewedAt: Time,
  /** Lease duration in ms the holder promised to renew within. */
  leaseMs: z.int().min(1),
});
export type LeaderLease = z.infer<typeof LeaderLease>;

export const CLUSTER_KEY_PREFIX = "cluster.";
export const REVOCATIONS_KEY = "revocations";
export const LEADER_KEY = "leader";
export const clusterKey = (name: string) => `${CLUSTER_KEY_PREFIX}${name}`;
