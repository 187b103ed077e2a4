// Enrollment tokens: `ferryctl cluster add <name>` gets one; the agent presents it once with its CSR.
//
// Format `fet.<id>.<secret>`: `id` (64 random bits, hex) finds the record, `secret` (256 random bits,
// base64url) proves possession. Only SHA-256(secret) is stored. A plain hash (no salt, no slow KDF)
// is the right tool here: the secret is 256 bits from a CSPRNG, so neither dictionary nor brute
// force attacks apply; slow hashes protect low-entropy passwords. The comparison is constant-time.
//
// Pure functions over a record; where records live (the broker's KV) is not this module's business.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { assertClusterName } from "./names.js";

export const TOKEN_PREFIX = "fet";
const TOKEN_RE = /^fet\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})$/;
export const DEFAULT_TOKEN_TTL_MS = 60 * 60 * 1000; // one hour

export interface EnrollmentTokenRecord {
  /** Lookup key (public part of the token). */
  id: string;
  /** Cluster the token was issued for; the CSR subject must name it. */
  cluster: string;
  /** hex SHA-256 of the secret part. */
  secretSha256: string;
  createdAt: string;
  expiresAt: string;
  /** Set once the token has been used; a used token never works again. */
  usedAt?: string;
}

export type TokenRejection = "malformed" | "unknown" | "wrong-cluster" | "already-used" | "expired";

export type TokenVerdict = { ok: true; record: EnrollmentTokenRecord } | { ok: false; reason: TokenRejection; message: string };

function sha256Hex(s: string): string {
  return createHash("sha256").update(s, "utf8").digest("hex");
}

/** Issue a new token for `cluster`. Give `token` to the admin once; store only `record`. */
export function issueEnrollmentToken(
  cluster: string,
  opts: { now?: Date; ttlMs?: number } = {},
): { token: string; record: EnrollmentTokenRecord } {
  assertClusterName(cluster);
  const now = opts.now ?? new Date();
  const ttl = opts.ttlMs ?? DEFAULT_TOKEN_TTL_MS;
  if (!(ttl > 0)) throw new Error(`ttlMs must be positive, got ${ttl}`);
  const id = randomBytes(8).toString("hex");
  const secret = randomBytes(32).toString("base64url");
  return {
    token: `${TOKEN_PREFIX}.${id}.${secret}`,
    record: {
      id,
      cluster,
      secretSha256: sha256Hex(secret),
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + ttl).toISOString(),
    },
  };
}

/** The record id a token refers to, or undefined when the token is not shaped like one. */
export function enrollmentTokenId(token: string): string | undefined {
  return TOKEN_RE.exec(token)?.[1];
}

/**
 * Verify `token`, presented for `cluster`, against the stored record (undefined when the id is
 * unknown). Order: malformed → unknown (no record, or wrong secret) → wrong cluster → already used
 * → expired. On success, mark the record used with `markEnrollmentTokenUsed` before issuing anything.
 */
export function verifyEnrollmentToken(
  token: string,
  record: EnrollmentTokenRecord | undefined,
  presented: { cluster: string; now?: Date },
): TokenVerdict {
  const m = TOKEN_RE.exec(token);
  if (!m) return { ok: false, reason: "malformed", message: "enrollment token is malformed (expected fet.<id>.<secret>)" };
  const [, id, secret] = m as unknown as [string, string, string];
  if (!record || record.id !== id) return { ok: false, reason: "unknown", message: "enrollment token is unknown" };
  const got = Buffer.from(sha256Hex(secret), "hex");
  const want = Buffer.from(record.secretSha256, "hex");
  if (want.length !== got.length || !timingSafeEqual(got, want)) {
    return { ok: false, reason: "unknown", message: "enrollment token is unknown" };
  }
  if (record.cluster !== presented.cluster) {
    return {
      ok: false,
      reason: "wrong-cluster",
      message: `enrollment token was issued for cluster ${record.cluster}, not ${presented.cluster}`,
    };
  }
  if (record.usedAt !== undefined) {
    return { ok: false, reason: "already-used", message: `enrollment token was already used at ${record.usedAt}` };
  }
  const now = presented.now ?? new Date();
  if (now.getTime() >= Date.parse(record.expiresAt)) {
    return { ok: false, reason: "expired", message: `enrollment token expired at ${record.expiresAt}` };
  }
  return { ok: true, record };
}

export function markEnrollmentTokenUsed(record: EnrollmentTokenRecord, now: Date = new Date()): EnrollmentTokenRecord {
  return { ...record, usedAt: now.toISOString() };
}
