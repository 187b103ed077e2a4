import { describe, it, expect, beforeAll } from "vitest";
import { createHash } from "node:crypto";
import {
  createCa,
  createCsr,
  enrollAgent,
  enrollmentTokenId,
  generateRsaKeyPair,
  issueEnrollmentToken,
  markEnrollmentTokenUsed,
  roleOf,
  verifyEnrollmentToken,
  fingerprint256,
  type CertificateAuthority,
} from "./index.js";

const T0 = new Date("2026-06-01T12:00:00Z");
const HOUR = 3600 * 1000;

describe("enrollment tokens", () => {
  it("are URL-safe, carry ≥128 random bits, and only a hash is stored", () => {
    const { token, record } = issueEnrollmentToken("east-1", { now: T0 });
    expect(token).toMatch(/^fet\.[0-9a-f]{16}\.[A-Za-z0-9_-]{43}$/);
    expect(encodeURIComponent(token)).toBe(token);
    const secret = token.split(".")[2]!;
    expect(Buffer.from(secret, "base64url").length * 8).toBeGreaterThanOrEqual(128);
    expect(record.secretSha256).toBe(createHash("sha256").update(secret).digest("hex"));
    expect(JSON.stringify(record)).not.toContain(secret);
    expect(record).toMatchObject({ cluster: "east-1", createdAt: T0.toISOString(), expiresAt: new Date(T0.getTime() + HOUR).toISOString() });
    expect(enrollmentTokenId(token)).toBe(record.id);
    expect(issueEnrollmentToken("east-1").token).not.toBe(token);
  });

  it("verify once for the right cluster before expiry", () => {
    const { token, record } = issueEnrollmentToken("a", { now: T0, ttlMs: 10 * 60 * 1000 });
    expect(verifyEnrollmentToken(token, record, { cluster: "a", now: new Date(T0.getTime() + 60_000) })).toEqual({ ok: true, record });
  });

  it("refuse a used token, an expired one and one for another cluster, with the reason", () => {
    const { token, record } = issueEnrollmentToken("a", { now: T0 });
    const used = markEnrollmentTokenUsed(record, T0);
    expect(verifyEnrollmentToken(token, used, { cluster: "a", now: T0 })).toMatchObject({ ok: false, reason: "already-used" });
    expect(verifyEnrollmentToken(token, record, { cluster: "a", now: new Date(T0.getTime() + HOUR) })).toMatchObject({
      ok: false,
      reason: "expired",
    });
    expect(verifyEnrollmentToken(token, record, { cluster: "b", now: T0 })).toMatchObject({
      ok: false,
      reason: "wrong-cluster",
      message: "enrollment token was issued for cluster a, not b",
    });
  });

  it("refuse unknown and malformed tokens", () => {
    const { token, record } = issueEnrollmentToken("a", { now: T0 });
    const other = issueEnrollmentToken("a", { now: T0 });
    expect(verifyEnrollmentToken(token, undefined, { cluster: "a", now: T0 })).toMatchObject({ ok: false, reason: "unknown" });
    expect(verifyEnrollmentToken(token, other.record, { cluster: "a", now: T0 })).toMatchObject({ ok: false, reason: "unknown" });
    // right id, wrong secret
    const forged = `fet.${record.id}.${"A".repeat(43)}`;
    expect(verifyEnrollmentToken(forged, record, { cluster: "a", now: T0 })).toMatchObject({ ok: false, reason: "unknown" });
    expect(verifyEnrollmentToken("fet.x.y", record, { cluster: "a", now: T0 })).toMatchObject({ ok: false, reason: "malformed" });
    expect(verifyEnrollmentToken(token + "x", record, { cluster: "a", now: T0 })).toMatchObject({ ok: false, reason: "malformed" });
  });

  it("refuse invalid cluster names at issue", () => {
    expect(() => issueEnrollmentToken("Not_A_Label")).toThrow(/not a valid cluster name/);
  });
});

describe("enrollAgent", () => {
  let ca: CertificateAuthority;
  let keyPem: string;
  beforeAll(async () => {
    [ca, { privateKeyPem: keyPem }] = await Promise.all([createCa({ keyBits: 2048 }), generateRsaKeyPair(2048)]);
  });

  it("issues a certificate once per token, for the token's cluster", () => {
    const now = new Date();
    const { token, record } = issueEnrollmentToken("a", { now });
    const csrPem = createCsr(keyPem, { role: "agent", cluster: "a" });
    const r = enrollAgent(ca, { token, cluster: "a", csrPem }, record, { now });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(roleOf(r.certPem)).toEqual({ role: "agent", cluster: "a" });
    expect(r.caFingerprint256).toBe(fingerprint256(ca.certPem));
    expect(r.record.usedAt).toBe(now.toISOString());
    expect(enrollAgent(ca, { token, cluster: "a", csrPem }, r.record, { now })).toMatchObject({ ok: false, reason: "already-used" });
  });

  it("refuses a CSR for another cluster without consuming the token", () => {
    const { token, record } = issueEnrollmentToken("a");
    const wrong = createCsr(keyPem, { role: "agent", cluster: "b" });
    expect(enrollAgent(ca, { token, cluster: "a", csrPem: wrong }, record)).toMatchObject({ ok: false, reason: "subject-mismatch" });
    expect(enrollAgent(ca, { token, cluster: "b", csrPem: wrong }, record)).toMatchObject({ ok: false, reason: "wrong-cluster" });
    const right = createCsr(keyPem, { role: "agent", cluster: "a" });
    expect(enrollAgent(ca, { token, cluster: "a", csrPem: right }, record).ok).toBe(true);
  });
});
