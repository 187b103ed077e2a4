// Enrollment of cluster agents: single-use expiring tokens (stored hashed), token + CSR + nkey →
// certificate + NATS user JWT, and renewal with the current certificate. The crypto and the
// token rules are pki's; this module adds the KV records and their compare-and-set, so that two
// concurrent enrollments with one token cannot both get a certificate.
import type { Logger } from "pino";
import { mintAgentUserForCertificate, type BusAuthority } from "../../bus/index.js";
import {
  certInfo,
  CsrRejectedError,
  enrollAgent,
  enrollmentTokenId,
  fingerprint256,
  issueEnrollmentToken,
  PkiError,
  renewAgentCertificate,
  roleOf,
  verifyEnrollmentToken,
  type CertificateAuthority,
  type CertInfo,
  type TokenRejection,
} from "../../pki/index.js";
import { ClusterName } from "../../proto/names.js";
import { enrolled, enrollmentRefusal, holdsCertificate, renewalRefusal, renewed, tokenIssueRefusal, withPendingToken } from "../clusters/lifecycle.js";
import { BrokerError } from "../errors.js";
import type { BrokerMetrics } from "../metrics.js";
import { isCasConflict, mutate, type BrokerState } from "../state/kv.js";
import { clusterKey, type ClusterRecord, type IssuedCertificate, type IssuedNatsUser } from "../state/records.js";

export interface EnrollmentOptions {
  state: BrokerState;
  ca: CertificateAuthority;
  authority: BusAuthority;
  /** NATS URLs handed to agents. */
  agentNatsUrls: string[];
  certificateValidityDays: number;
  defaultTokenTtlMs: number;
  maxTokenTtlMs: number;
  log: Logger;
  metrics: BrokerMetrics;
  now?: () => Date;
}

export interface IssuedToken {
  /** The secret; shown once. */
  token: string;
  expiresAt: Date;
  caPem: string;
  caFingerprint256: string;
  cluster: ClusterRecord;
}

/** What an agent gets from Enroll and RenewCertificate. */
export interface IssuedCredentials {
  cluster: string;
  certPem: string;
  caPem: string;
  natsUserJwt: string;
  natsUrls: string[];
  /** notAfter of the certificate = exp of the JWT. */
  expiresAt: Date;
}

const NKEY_USER = /^U[A-Z2-7]{55}$/;

const TOKEN_FIX: Record<TokenRejection, string> = {
  malformed: "pass the whole token `ferryctl cluster add` printed (fet.<id>.<secret>)",
  unknown: "check the token, or ask the admin for a new one (`ferryctl cluster add <cluster>`)",
  "wrong-cluster": "use the token issued for this cluster",
  "already-used": "tokens are single-use; ask the admin for a new one (`ferryctl cluster add <cluster>`)",
  expired: "ask the admin for a new one (`ferryctl cluster add <cluster>`), and enroll within its lifetime",
};

function tokenRefusal(reason: TokenRejection, message: string): BrokerError {
  return new BrokerError("unauthenticated", `${message}; ${TOKEN_FIX[reason]}`, { reason: `TOKEN_${reason.toUpperCase().replace(/-/g, "_")}` });
}

function checkNkey(key: string): void {
  if (!NKEY_USER.test(key)) {
    throw new BrokerError(
      "invalid-argument",
      `nats_user_public_key ${JSON.stringify(key.slice(0, 12))}${key.length > 12 ? "…" : ""} is not a NATS user public key: send the public key of a user nkey (56 characters starting with "U"), never its seed`,
      { field: "nats_user_public_key" },
    );
  }
}

function checkCsrPresent(csrPem: string): void {
  if (!csrPem.includes("-----BEGIN CERTIFICATE REQUEST-----")) {
    throw new BrokerError("invalid-argument", "csr_pem must be a PEM PKCS#10 certificate request (-----BEGIN CERTIFICATE REQUEST-----)", { field: "csr_pem" });
  }
}

export class Enrollment {
  private readonly now: () => Date;
  readonly caFingerprint256: string;

  constructor(private readonly o: EnrollmentOptions) {
    this.now = o.now ?? (() => new Date());
    this.caFingerprint256 = fingerprint256(o.ca.certPem);
  }

  /**
   * A single-use token for `cluster`: creates the record (PendingEnrollment), replaces the token of
   * a pending one (the old token stops working), or re-adds a removed cluster. Refused for an
   * enrolled cluster.
   */
  async createToken(cluster: string, ttlMs?: number): Promise<IssuedToken> {
    const name = ClusterName.safeParse(cluster);
    if (!name.success) throw new BrokerError("invalid-argument", name.error.issues[0]?.message ?? "invalid cluster name", { field: "cluster_name" });
    const ttl = ttlMs === undefined || ttlMs === 0 ? this.o.defaultTokenTtlMs : ttlMs;
    if (ttl < 1000 || ttl > this.o.maxTokenTtlMs) {
      throw new BrokerError("invalid-argument", `ttl must be between 1s and ${this.o.maxTokenTtlMs / 1000}s (omit it for ${this.o.defaultTokenTtlMs / 1000}s)`, { field: "ttl" });
    }
    const now = this.now();
    const existing = await this.o.state.clusters.get(clusterKey(cluster));
    const refusal = tokenIssueRefusal(existing?.value, cluster);
    if (refusal) throw refusal;
    const { token, record } = issueEnrollmentToken(cluster, { now, ttlMs: ttl });
    await this.o.state.tokens.create(record.id, record);
    let replaced: string | undefined;
    let result;
    try {
      result = await mutate(this.o.state.clusters, clusterKey(cluster), (cur) => {
        replaced = cur?.value.pendingToken?.id;
        return withPendingToken(cur?.value, cluster, { id: record.id, expiresAt: record.expiresAt }, now);
      });
    } catch (e) {
      await this.o.state.tokens.delete(record.id).catch(() => undefined);
      throw e;
    }
    if (replaced && replaced !== record.id) await this.o.state.tokens.delete(replaced).catch(() => undefined);
    this.o.log.info({ cluster, tokenId: record.id, expiresAt: record.expiresAt, replaced }, "enrollment token issued");
    return { token, expiresAt: new Date(record.expiresAt), caPem: this.o.ca.certPem, caFingerprint256: this.caFingerprint256, cluster: result.value! };
  }

  /** token + CSR + NATS user public key → certificate and JWT. Exactly one caller wins a token. */
  async enroll(req: { token: string; csrPem: string; natsUserPublicKey: string }): Promise<IssuedCredentials> {
    try {
      const creds = await this.enrollOnce(req);
      this.o.metrics.enrollments.inc({ operation: "enroll", result: "ok" });
      return creds;
    } catch (e) {
      this.o.metrics.enrollments.inc({ operation: "enroll", result: e instanceof BrokerError ? (e.details.reason ?? e.kind) : "error" });
      throw e;
    }
  }

  private async enrollOnce(req: { token: string; csrPem: string; natsUserPublicKey: string }): Promise<IssuedCredentials> {
    const id = enrollmentTokenId(req.token);
    if (!id) throw tokenRefusal("malformed", "enrollment token is malformed");
    checkNkey(req.natsUserPublicKey);
    checkCsrPresent(req.csrPem);
    const now = this.now();
    const stored = await this.o.state.tokens.get(id);
    const cluster = stored?.value.cluster ?? "";
    // Token first (so nothing is said about a cluster to someone without its token), then the record.
    const verdict = verifyEnrollmentToken(req.token, stored?.value, { cluster, now });
    if (!verdict.ok) throw tokenRefusal(verdict.reason, verdict.message);
    const record = await this.o.state.clusters.get(clusterKey(cluster));
    const refusal = enrollmentRefusal(record?.value, cluster, id); // a superseded token is refused before it is consumed
    if (refusal) throw refusal;
    const result = enrollAgent(this.o.ca, { token: req.token, cluster, csrPem: req.csrPem }, stored!.value, { now, validityDays: this.o.certificateValidityDays });
    if (!result.ok) {
      if (result.reason in TOKEN_FIX) throw tokenRefusal(result.reason as TokenRejection, result.message);
      throw new BrokerError("invalid-argument", `${result.message}; build the CSR for CN=${cluster} with an RSA key of at least 2048 bits`, { field: "csr_pem", reason: `CSR_${result.reason.toUpperCase().replace(/-/g, "_")}` });
    }
    const user = await mintAgentUserForCertificate(this.o.authority, result.certPem, { userPublicKey: req.natsUserPublicKey });
    // Consume the token: compare-and-set on the revision we verified. A concurrent enrollment
    // with the same token loses here and never sees a certificate.
    try {
      await this.o.state.tokens.update(id, result.record, stored!.revision);
    } catch (e) {
      if (!isCasConflict(e)) throw e;
      const again = await this.o.state.tokens.get(id);
      const v = verifyEnrollmentToken(req.token, again?.value, { cluster, now: this.now() });
      throw v.ok ? tokenRefusal("already-used", "enrollment token was used concurrently") : tokenRefusal(v.reason, v.message);
    }
    const { info, cert, natsUser } = issued(result.certPem, user.publicKey, now);
    await mutate(this.o.state.clusters, clusterKey(cluster), (cur) => enrolled(cur?.value, cluster, id, cert, natsUser, now));
    this.o.log.info({ cluster, serial: info.serialNumber, notAfter: info.notAfter.toISOString(), natsUser: user.publicKey }, "cluster enrolled");
    return this.credentials(cluster, result.certPem, user.jwt, info.notAfter);
  }

  /**
   * Renewal by an agent presenting its current certificate (already checked to be an agent
   * certificate from the ferry CA): refused for removed clusters and for certificates that are
   * not of the cluster's current enrollment.
   */
  async renew(peerCertPem: string, req: { csrPem: string; natsUserPublicKey: string }): Promise<IssuedCredentials> {
    try {
      const creds = await this.renewOnce(peerCertPem, req);
      this.o.metrics.enrollments.inc({ operation: "renew", result: "ok" });
      return creds;
    } catch (e) {
      this.o.metrics.enrollments.inc({ operation: "renew", result: e instanceof BrokerError ? (e.details.reason ?? e.kind) : "error" });
      throw e;
    }
  }

  private async renewOnce(peerCertPem: string, req: { csrPem: string; natsUserPublicKey: string }): Promise<IssuedCredentials> {
    const identity = roleOf(peerCertPem);
    if (identity.role !== "agent") throw new BrokerError("permission-denied", "only a cluster agent's certificate can renew", { reason: "NOT_AN_AGENT" });
    const cluster = identity.cluster;
    checkNkey(req.natsUserPublicKey);
    checkCsrPresent(req.csrPem);
    const now = this.now();
    const serial = certInfo(peerCertPem).serialNumber;
    const record = (await this.o.state.clusters.get(clusterKey(cluster)))?.value;
    if (!holdsCertificate(record, serial, now)) throw renewalRefusal(record, cluster, serial);
    let certPem: string;
    try {
      certPem = renewAgentCertificate(this.o.ca, peerCertPem, req.csrPem, {
        now,
        validityDays: this.o.certificateValidityDays,
        isRevoked: (c) => !holdsCertificate(record, c.serialNumber, now),
      });
    } catch (e) {
      if (e instanceof CsrRejectedError) {
        throw new BrokerError("invalid-argument", `${e.message}; build the CSR for CN=${cluster} with an RSA key of at least 2048 bits`, { field: "csr_pem", reason: `CSR_${e.reason.toUpperCase().replace(/-/g, "_")}` });
      }
      if (e instanceof PkiError) throw new BrokerError("failed-precondition", `${e.message}; enroll again with a new token`, { reason: "RENEWAL_REFUSED" });
      throw e;
    }
    const user = await mintAgentUserForCertificate(this.o.authority, certPem, { userPublicKey: req.natsUserPublicKey });
    const { info, cert, natsUser } = issued(certPem, user.publicKey, now);
    // Re-checked under compare-and-set: a removal that lands meanwhile wins.
    await mutate(this.o.state.clusters, clusterKey(cluster), (cur) => renewed(cur?.value, cluster, serial, cert, natsUser, now));
    this.o.log.info({ cluster, oldSerial: serial, serial: info.serialNumber, notAfter: info.notAfter.toISOString() }, "agent certificate renewed");
    return this.credentials(cluster, certPem, user.jwt, info.notAfter);
  }

  private credentials(cluster: string, certPem: string, natsUserJwt: string, expiresAt: Date): IssuedCredentials {
    return { cluster, certPem, caPem: this.o.ca.certPem, natsUserJwt, natsUrls: [...this.o.agentNatsUrls], expiresAt };
  }
}

/** What the cluster record keeps of a certificate and NATS user just issued. */
function issued(certPem: string, userPublicKey: string, now: Date): { info: CertInfo; cert: IssuedCertificate; natsUser: IssuedNatsUser } {
  const info = certInfo(certPem);
  return {
    info,
    cert: { serialNumber: info.serialNumber, fingerprint256: info.fingerprint256, notAfter: info.notAfter.toISOString(), issuedAt: now.toISOString() },
    natsUser: { publicKey: userPublicKey, expiresAt: info.notAfter.toISOString(), issuedAt: now.toISOString() },
  };
}
