// KubeVirt CA bundles relayed between clusters (a cluster's `kubevirt-ca` → the peer's
// `kubevirt-external-ca`). Parsed with node:crypto, so any key type KubeVirt uses (ECDSA, RSA) works.
// A bundle is accepted only if every PEM block is a certificate; private keys and garbage are
// refused with the index of the offending block. Validation then keeps only CA certificates that
// are valid now.
import { X509Certificate } from "node:crypto";
import { validFrom, validTo } from "./ca.js";

export interface CaCert {
  /** 0-based index of the PEM block in the bundle it was parsed from. */
  index: number;
  /** Normalised PEM of this certificate alone. */
  pem: string;
  fingerprint256: string;
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
}

export class CaBundleError extends Error {
  constructor(
    message: string,
    /** 0-based index of the offending PEM block, or -1 for the bundle as a whole. */
    readonly blockIndex: number,
  ) {
    super(message);
    this.name = "CaBundleError";
  }
}

export type DropReason = "expired" | "not-yet-valid" | "not-a-ca" | "duplicate";

export interface ValidatedBundle {
  /** CA certificates valid at `now`, deduplicated by fingerprint, in bundle order. */
  valid: CaCert[];
  dropped: { cert: CaCert; reason: DropReason; message: string }[];
  /** Certificate among `valid` that expires first (rotation watch), if any. */
  earliestExpiry?: { fingerprint256: string; subject: string; notAfter: Date };
}

const BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;

function toPem(der: Buffer): string {
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

/**
 * Parse a PEM bundle into certificates. Throws `CaBundleError` naming the block when a block is a
 * private key, not a certificate, or not decodable, when text other than whitespace sits between
 * blocks, or when the bundle holds no certificate at all.
 */
export function parseCaBundle(pem: string): CaCert[] {
  if (typeof pem !== "string") throw new CaBundleError("CA bundle must be a PEM string", -1);
  const certs: CaCert[] = [];
  let index = 0;
  let last = 0;
  for (const m of pem.matchAll(BLOCK_RE)) {
    const [whole, label, body, endLabel] = m as unknown as [string, string, string, string];
    const between = pem.slice(last, m.index);
    if (between.trim() !== "") {
      throw new CaBundleError(
        `CA bundle has non-PEM text before block #${index}: ${JSON.stringify(between.trim().slice(0, 40))}`,
        index,
      );
    }
    if (/PRIVATE KEY/.test(label) || /PRIVATE KEY/.test(endLabel)) {
      throw new CaBundleError(
        `CA bundle block #${index} is a private key ("${label}"); a CA bundle must contain certificates only — remove the key (and treat it as leaked)`,
        index,
      );
    }
    if (label !== endLabel) {
      throw new CaBundleError(`CA bundle block #${index} begins "${label}" but ends "${endLabel}"`, index);
    }
    if (label !== "CERTIFICATE") {
      throw new CaBundleError(`CA bundle block #${index} is "${label}"; only CERTIFICATE blocks are allowed`, index);
    }
    if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) {
      throw new CaBundleError(`CA bundle block #${index} is not valid base64`, index);
    }
    const der = Buffer.from(body.replace(/\s+/g, ""), "base64");
    let x: X509Certificate;
    try {
      x = new X509Certificate(der);
    } catch (e) {
      throw new CaBundleError(`CA bundle block #${index} is not a valid X.509 certificate: ${(e as Error).message}`, index);
    }
    certs.push({
      index,
      pem: toPem(der),
      fingerprint256: x.fingerprint256,
      subject: x.subject.replace(/\n/g, ", "),
      issuer: x.issuer.replace(/\n/g, ", "),
      serialNumber: x.serialNumber,
      notBefore: validFrom(x),
      notAfter: validTo(x),
      isCA: x.ca,
    });
    index++;
    last = (m.index ?? 0) + whole.length;
  }
  const tail = pem.slice(last);
  if (/PRIVATE KEY/.test(tail)) {
    throw new CaBundleError(`CA bundle block #${index} looks like a private key (unterminated); remove it`, index);
  }
  if (tail.trim() !== "") {
    throw new CaBundleError(
      `CA bundle has non-PEM text or an unterminated block at block #${index}: ${JSON.stringify(tail.trim().slice(0, 40))}`,
      index,
    );
  }
  if (certs.length === 0) throw new CaBundleError("CA bundle contains no certificate", -1);
  return certs;
}

function asCerts(b: string | readonly CaCert[]): readonly CaCert[] {
  return typeof b === "string" ? parseCaBundle(b) : b;
}

/** Drop repeated certificates (same SHA-256 fingerprint), keeping the first. */
export function dedupeCaCerts(certs: readonly CaCert[]): CaCert[] {
  const seen = new Set<string>();
  return certs.filter((c) => (seen.has(c.fingerprint256) ? false : (seen.add(c.fingerprint256), true)));
}

export function earliestExpiry(certs: readonly CaCert[]): { fingerprint256: string; subject: string; notAfter: Date } | undefined {
  let first: CaCert | undefined;
  for (const c of certs) if (!first || c.notAfter < first.notAfter) first = c;
  return first && { fingerprint256: first.fingerprint256, subject: first.subject, notAfter: first.notAfter };
}

/**
 * Keep only CA certificates valid at `now`, deduplicated; report every dropped one and why.
 * Throws like `parseCaBundle` for a bundle that does not parse.
 */
export function validateCaBundle(bundle: string | readonly CaCert[], now: Date = new Date()): ValidatedBundle {
  const valid: CaCert[] = [];
  const dropped: ValidatedBundle["dropped"] = [];
  const seen = new Set<string>();
  for (const cert of asCerts(bundle)) {
    const name = `block #${cert.index} (${cert.subject})`;
    if (seen.has(cert.fingerprint256)) {
      dropped.push({ cert, reason: "duplicate", message: `${name} repeats an earlier certificate` });
    } else if (!cert.isCA) {
      dropped.push({ cert, reason: "not-a-ca", message: `${name} is not a CA certificate (basicConstraints cA is not true)` });
    } else if (now < cert.notBefore) {
      dropped.push({ cert, reason: "not-yet-valid", message: `${name} is valid only from ${cert.notBefore.toISOString()}` });
    } else if (now > cert.notAfter) {
      dropped.push({ cert, reason: "expired", message: `${name} expired at ${cert.notAfter.toISOString()}` });
    } else {
      valid.push(cert);
    }
    seen.add(cert.fingerprint256);
  }
  const earliest = earliestExpiry(valid);
  return earliest ? { valid, dropped, earliestExpiry: earliest } : { valid, dropped };
}

/** Serialise certificates back into one PEM bundle. */
export function serializeCaBundle(certs: readonly CaCert[]): string {
  return certs.map((c) => c.pem).join("");
}

/** Union of bundles, deduplicated by fingerprint, in order of first appearance; re-indexed. */
export function mergeCaBundles(...bundles: (string | readonly CaCert[])[]): CaCert[] {
  return dedupeCaCerts(bundles.flatMap((b) => [...asCerts(b)])).map((c, index) => ({ ...c, index }));
}

/**
 * Whether every certificate of `other` is in `bundle` (by SHA-256 fingerprint). The agent uses this
 * to confirm that a peer cluster's KubeVirt CA reached its own `kubevirt-ca`.
 */
export function bundleContains(
  bundle: string | readonly CaCert[],
  other: string | readonly CaCert[],
): { contained: boolean; missing: CaCert[] } {
  const have = new Set(asCerts(bundle).map((c) => c.fingerprint256));
  const missing = asCerts(other).filter((c) => !have.has(c.fingerprint256));
  return { contained: missing.length === 0, missing };
}
