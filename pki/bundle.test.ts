import { describe, it, expect, beforeAll } from "vitest";
import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import {
  bundleContains,
  CaBundleError,
  createCa,
  issueClientCertificate,
  mergeCaBundles,
  parseCaBundle,
  serializeCaBundle,
  validateCaBundle,
  type CertificateAuthority,
} from "./index.js";

const ecdsaCa = readFileSync(new URL("./testdata/ecdsa-ca.pem", import.meta.url), "utf8");
const NOW = new Date();
const DAY = 24 * 3600 * 1000;

let caA: CertificateAuthority; // valid 10 years
let caB: CertificateAuthority; // valid 30 days
let expired: CertificateAuthority;
let future: CertificateAuthority;
let leafPem: string;

beforeAll(async () => {
  [caA, caB, expired, future] = await Promise.all([
    createCa({ keyBits: 2048, commonName: "kubevirt A" }),
    createCa({ keyBits: 2048, commonName: "kubevirt B", validityDays: 30 }),
    createCa({ keyBits: 2048, commonName: "old", now: new Date(NOW.getTime() - 400 * DAY), validityDays: 365 }),
    createCa({ keyBits: 2048, commonName: "future", now: new Date(NOW.getTime() + 10 * DAY) }),
  ]);
  leafPem = (await issueClientCertificate(caA, { role: "admin", name: "x" })).certPem;
});

function blockError(f: () => unknown): CaBundleError {
  try {
    f();
  } catch (e) {
    if (e instanceof CaBundleError) return e;
    throw e;
  }
  throw new Error("expected a CaBundleError");
}

describe("parseCaBundle", () => {
  it("parses RSA and ECDSA (KubeVirt-style) certificates with fingerprint, subject, dates, isCA", () => {
    const certs = parseCaBundle(caA.certPem + "\n" + ecdsaCa);
    expect(certs).toHaveLength(2);
    expect(certs[0]).toMatchObject({ index: 0, subject: "CN=kubevirt A, OU=ferry-ca, O=ferry", isCA: true });
    expect(certs[1]).toMatchObject({ index: 1, subject: "CN=kubevirt.io@1700000000", isCA: true });
    expect(certs[1]!.fingerprint256).toBe(new X509Certificate(ecdsaCa).fingerprint256);
    expect(certs[1]!.notAfter.getUTCFullYear()).toBeGreaterThan(2100);
    expect(certs[0]!.notBefore.getTime()).toBeLessThan(NOW.getTime());
    // normalised PEM re-parses to the same certificate
    expect(new X509Certificate(certs[1]!.pem).fingerprint256).toBe(certs[1]!.fingerprint256);
  });

  it("rejects any private key block, naming its index", () => {
    for (const label of ["PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]) {
      const key = caA.keyPem.replace(/PRIVATE KEY/g, label);
      const e = blockError(() => parseCaBundle(caA.certPem + ecdsaCa + key));
      expect(e.blockIndex).toBe(2);
      expect(e.message).toContain(`block #2 is a private key ("${label}")`);
    }
  });

  it("rejects garbage with the block index", () => {
    expect(blockError(() => parseCaBundle("")).message).toMatch(/no certificate/);
    expect(blockError(() => parseCaBundle("hello")).message).toMatch(/non-PEM text .* block #0/);
    const bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    const e = blockError(() => parseCaBundle(caA.certPem + bad));
    expect(e.blockIndex).toBe(1);
    expect(e.message).toMatch(/block #1 is not a valid X.509 certificate/);
    expect(blockError(() => parseCaBundle(caA.certPem + "junk\n" + ecdsaCa)).message).toMatch(/non-PEM text before block #1/);
    expect(blockError(() => parseCaBundle(caA.certPem.replace(/-----END CERTIFICATE-----\n?$/, ""))).message).toMatch(/unterminated/);
    const pub = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    expect(blockError(() => parseCaBundle(pub)).message).toMatch(/block #0 is "PUBLIC KEY"; only CERTIFICATE/);
    expect(blockError(() => parseCaBundle("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")).message).toMatch(/not valid base64/);
  });
});

describe("validateCaBundle", () => {
  it("keeps valid CA certificates, drops expired / not yet valid / non-CA / duplicates with reasons", () => {
    const pem = [caA.certPem, expired.certPem, leafPem, future.certPem, caB.certPem, caA.certPem, ecdsaCa].join("");
    const r = validateCaBundle(pem, NOW);
    expect(r.valid.map((c) => c.subject)).toEqual([
      "CN=kubevirt A, OU=ferry-ca, O=ferry",
      "CN=kubevirt B, OU=ferry-ca, O=ferry",
      "CN=kubevirt.io@1700000000",
    ]);
    expect(r.dropped.map((d) => [d.cert.index, d.reason])).toEqual([
      [1, "expired"],
      [2, "not-a-ca"],
      [3, "not-yet-valid"],
      [5, "duplicate"],
    ]);
    expect(r.dropped[0]!.message).toMatch(/block #1 \(CN=old.*\) expired at/);
    expect(r.earliestExpiry?.subject).toBe("CN=kubevirt B, OU=ferry-ca, O=ferry");
    expect(r.earliestExpiry!.notAfter.getTime()).toBeLessThan(NOW.getTime() + 31 * DAY);
  });

  it("reports nothing valid for a bundle of only expired certificates", () => {
    const r = validateCaBundle(expired.certPem, NOW);
    expect(r.valid).toEqual([]);
    expect(r.earliestExpiry).toBeUndefined();
  });
});

describe("merge and contains", () => {
  it("merges with dedupe by fingerprint, in first-appearance order", () => {
    const merged = mergeCaBundles(caA.certPem + caB.certPem, caB.certPem + ecdsaCa, caA.certPem);
    expect(merged.map((c) => c.subject)).toEqual([
      "CN=kubevirt A, OU=ferry-ca, O=ferry",
      "CN=kubevirt B, OU=ferry-ca, O=ferry",
      "CN=kubevirt.io@1700000000",
    ]);
    expect(merged.map((c) => c.index)).toEqual([0, 1, 2]);
    expect(parseCaBundle(serializeCaBundle(merged)).map((c) => c.fingerprint256)).toEqual(merged.map((c) => c.fingerprint256));
  });

  it("tells whether a peer's CA reached our kubevirt-ca, and what is missing", () => {
    const ours = mergeCaBundles(caA.certPem, ecdsaCa);
    expect(bundleContains(ours, ecdsaCa)).toEqual({ contained: true, missing: [] });
    const r = bundleContains(ours, ecdsaCa + caB.certPem);
    expect(r.contained).toBe(false);
    expect(r.missing.map((c) => c.subject)).toEqual(["CN=kubevirt B, OU=ferry-ca, O=ferry"]);
    // re-encoded PEM (different line wrapping) is still the same certificate
    const rewrapped = ecdsaCa.replace(/\n(?!-----)/g, "").replace("-----BEGIN CERTIFICATE-----", "-----BEGIN CERTIFICATE-----\n");
    expect(bundleContains(ours, rewrapped.replace("-----END", "\n-----END")).contained).toBe(true);
  });
});
