// The ferry CA: creates itself, issues server and client certificates, signs agent CSRs.
// Building and signing certificates uses node-forge (RSA only); the signature itself is computed
// with node:crypto (native, ~50x faster than forge's JS RSA). Everything that *reads* a certificate
// (expiry, chain, fingerprints, key match) uses node:crypto's X509Certificate.
import forge from "node-forge";
import { X509Certificate, createPublicKey, randomBytes, sign, type KeyObject } from "node:crypto";
import { isIP } from "node:net";
import { generateRsaKeyPair, loadPrivateKey, loadPublicKey, MIN_RSA_BITS } from "./keys.js";
import { assertClusterName, assertDnsSan, assertPrincipalName, isValidClusterName, PkiError, PRINCIPAL_NAME_RE } from "./names.js";

const SHA256_WITH_RSA = "1.2.840.113549.1.1.11";
const DAY_MS = 24 * 60 * 60 * 1000;
/** notBefore is backdated by this much so that a peer with a slightly slow clock accepts a fresh certificate. */
export const CLOCK_SKEW_MS = 5 * 60 * 1000;
/** Fraction of a certificate's lifetime after which it should be renewed. */
export const RENEWAL_FRACTION = 2 / 3;

/** Default lifetimes in days. Agents are short-lived and renew at 2/3 of their lifetime. */
export const DEFAULT_LIFETIME_DAYS = {
  ca: 3650,
  server: 365,
  broker: 90,
  admin: 30,
  agent: 7,
} as const;

/** Subject organisation of every ferry certificate. */
export const FERRY_ORG = "ferry";
/** Subject OU per role; the role of a presented certificate is read back from it. */
export const ROLE_OU = {
  agent: "ferry-agent",
  admin: "ferry-admin",
  broker: "ferry-broker",
  server: "ferry-server",
} as const;
export const CA_OU = "ferry-ca";

export type Role = keyof typeof ROLE_OU;
export type FerryIdentity =
  | { role: "agent"; cluster: string }
  | { role: "admin"; name: string }
  | { role: "broker"; name: string }
  | { role: "server"; name: string };

/** The CA's certificate and private key (PEM). The key never leaves the broker. */
export interface CertificateAuthority {
  certPem: string;
  keyPem: string;
}

/** A certificate and its private key (PEM). */
export interface CertifiedKey {
  certPem: string;
  keyPem: string;
}

export interface CertInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  /** SHA-256 over the DER, uppercase hex pairs joined by ':' (as `openssl x509 -fingerprint -sha256`). */
  fingerprint256: string;
  isCA: boolean;
  dnsNames: string[];
  ipAddresses: string[];
}

// forge has these, its typings do not.
const forgePki = forge.pki as typeof forge.pki & {
  getTBSCertificate(cert: forge.pki.Certificate): forge.asn1.Asn1;
  getCertificationRequestInfo(csr: forge.pki.CertificateSigningRequest): forge.asn1.Asn1;
};

/** forge writes CRLF; ferry's PEM is LF. */
function lf(pem: string): string {
  return pem.replace(/\r\n/g, "\n");
}

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x40; // positive, no leading zero byte
  return b.toString("hex");
}

function signNative(cert: forge.pki.Certificate, key: KeyObject): void {
  cert.signatureOid = SHA256_WITH_RSA;
  cert.siginfo.algorithmOid = SHA256_WITH_RSA;
  cert.tbsCertificate = forgePki.getTBSCertificate(cert);
  const tbs = Buffer.from(forge.asn1.toDer(cert.tbsCertificate).getBytes(), "binary");
  cert.signature = sign("sha256", tbs, key).toString("binary");
}

function subjectOf(identity: FerryIdentity): forge.pki.CertificateField[] {
  const cn = identity.role === "agent" ? identity.cluster : identity.name;
  return [
    { shortName: "CN", value: cn },
    { shortName: "OU", value: ROLE_OU[identity.role] },
    { shortName: "O", value: FERRY_ORG },
  ];
}

function validateIdentity(identity: FerryIdentity): void {
  if (!(identity.role in ROLE_OU)) {
    throw new PkiError(`unknown role ${JSON.stringify((identity as { role: unknown }).role)}`, "invalid-role");
  }
  if (identity.role === "agent") assertClusterName(identity.cluster);
  else assertPrincipalName(identity.name);
}

/** notBefore of a certificate (Node 20's X509Certificate has no validFromDate). */
export function validFrom(x: X509Certificate): Date {
  return parseX509Date(x.validFrom, "notBefore");
}

/** notAfter of a certificate. */
export function validTo(x: X509Certificate): Date {
  return parseX509Date(x.validTo, "notAfter");
}

function parseX509Date(s: string, field: string): Date {
  const d = new Date(s); // OpenSSL format "Nov 21 23:42:00 2026 GMT"
  if (Number.isNaN(d.getTime())) throw new PkiError(`cannot read certificate ${field} ${JSON.stringify(s)}`, "malformed");
  return d;
}

export function parseCertificate(certPem: string, field = "certificate"): X509Certificate {
  try {
    return new X509Certificate(certPem);
  } catch (e) {
    throw new PkiError(`${field} is not a PEM X.509 certificate: ${(e as Error).message}`, "malformed");
  }
}

/** Create a self-signed ferry CA (RSA, SHA-256). */
export async function createCa(
  opts: { commonName?: string; validityDays?: number; keyBits?: number; now?: Date } = {},
): Promise<CertificateAuthority> {
  const now = opts.now ?? new Date();
  const keys = await generateRsaKeyPair(opts.keyBits ?? 3072);
  const key = loadPrivateKey(keys.privateKeyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(now.getTime() + (opts.validityDays ?? DEFAULT_LIFETIME_DAYS.ca) * DAY_MS);
  const subject = [
    { shortName: "CN", value: opts.commonName ?? "ferry CA" },
    { shortName: "OU", value: CA_OU },
    { shortName: "O", value: FERRY_ORG },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: "basicConstraints", cA: true, pathLenConstraint: 0, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  signNative(cert, key);
  return { certPem: lf(forge.pki.certificateToPem(cert)), keyPem: keys.privateKeyPem };
}

export interface IssueOptions {
  /** DNS names for the subjectAltName (servers). */
  dnsNames?: string[];
  /** IP addresses for the subjectAltName (servers). */
  ipAddresses?: string[];
  validityDays?: number;
  now?: Date;
}

function defaultDays(role: Role): number {
  return DEFAULT_LIFETIME_DAYS[role];
}

/**
 * Issue a certificate for `identity` over `publicKeyPem` (SPKI PEM). The CA decides subject,
 * lifetime and every extension. Pure apart from the signature.
 */
export function issueCertificate(
  ca: CertificateAuthority,
  identity: FerryIdentity,
  publicKeyPem: string,
  opts: IssueOptions = {},
): string {
  validateIdentity(identity);
  const publicKey = loadPublicKey(publicKeyPem);
  return buildLeaf(ca, identity, forge.pki.publicKeyFromPem(publicKey.export({ type: "spki", format: "pem" }) as string), opts);
}

/** Validate SANs and lifetime before any work (in particular before generating a key). */
function checkIssueOptions(identity: FerryIdentity, opts: IssueOptions): { dnsNames: string[]; ips: string[]; days: number } {
  const dnsNames = opts.dnsNames ?? [];
  const ips = opts.ipAddresses ?? [];
  for (const ip of ips) {
    if (isIP(ip) === 0) throw new PkiError(`ipAddresses: ${JSON.stringify(ip)} is not an IP address`, "invalid-san");
  }
  for (const dns of dnsNames) assertDnsSan(dns);
  if (identity.role === "server" && dnsNames.length + ips.length === 0) {
    throw new PkiError("a server certificate needs at least one DNS name or IP address (dnsNames/ipAddresses)", "invalid-san");
  }
  const days = opts.validityDays ?? defaultDays(identity.role);
  if (!(days > 0)) throw new PkiError(`validityDays must be positive, got ${days}`, "invalid-lifetime");
  return { dnsNames, ips, days };
}

function buildLeaf(ca: CertificateAuthority, identity: FerryIdentity, publicKey: forge.pki.PublicKey, opts: IssueOptions): string {
  const now = opts.now ?? new Date();
  const caX509 = parseCertificate(ca.certPem, "CA certificate");
  if (!caX509.ca) throw new PkiError("CA certificate has no basicConstraints cA=true", "not-a-ca");
  const caKey = loadPrivateKey(ca.keyPem, "CA private key");
  if (!caX509.checkPrivateKey(caKey)) throw new PkiError("CA private key does not match the CA certificate", "key-mismatch");
  const caForge = forge.pki.certificateFromPem(ca.certPem);

  const { dnsNames, ips, days } = checkIssueOptions(identity, opts);
  const notAfter = Math.min(now.getTime() + days * DAY_MS, validTo(caX509).getTime());

  const cert = forge.pki.createCertificate();
  cert.publicKey = publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(now.getTime() - CLOCK_SKEW_MS);
  cert.validity.notAfter = new Date(notAfter);
  cert.setSubject(subjectOf(identity));
  cert.setIssuer(caForge.subject.attributes);
  const extensions: object[] = [
    { name: "basicConstraints", cA: false, critical: true },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    // servers also act as TLS clients (NATS routes between cluster nodes)
    { name: "extKeyUsage", clientAuth: true, serverAuth: identity.role === "server" },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caForge.generateSubjectKeyIdentifier().getBytes() },
  ];
  if (dnsNames.length + ips.length > 0) {
    extensions.push({
      name: "subjectAltName",
      altNames: [...dnsNames.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))],
    });
  }
  cert.setExtensions(extensions);
  signNative(cert, caKey);
  return lf(forge.pki.certificateToPem(cert));
}

/** Generate a key natively and issue a certificate for it. */
export async function issueCertifiedKey(
  ca: CertificateAuthority,
  identity: FerryIdentity,
  opts: IssueOptions & { keyBits?: number } = {},
): Promise<CertifiedKey> {
  validateIdentity(identity);
  checkIssueOptions(identity, opts);
  const keys = await generateRsaKeyPair(opts.keyBits ?? 2048);
  return { certPem: issueCertificate(ca, identity, keys.publicKeyPem, opts), keyPem: keys.privateKeyPem };
}

/** Server certificate (NATS server, broker gRPC): serverAuth + clientAuth, DNS/IP SANs. */
export function issueServerCertificate(
  ca: CertificateAuthority,
  opts: IssueOptions & { name: string; keyBits?: number },
): Promise<CertifiedKey> {
  return issueCertifiedKey(ca, { role: "server", name: opts.name }, opts);
}

/** Client certificate for the broker, an admin or an agent (clientAuth only). */
export async function issueClientCertificate(
  ca: CertificateAuthority,
  identity: FerryIdentity,
  opts: Omit<IssueOptions, "dnsNames" | "ipAddresses"> & { keyBits?: number } = {},
): Promise<CertifiedKey> {
  if (identity.role === "server") throw new PkiError("use issueServerCertificate for servers", "invalid-role");
  return issueCertifiedKey(ca, identity, opts);
}

// ---------------------------------------------------------------------------------------------
// Reading certificates (node:crypto)

function parseSans(x: X509Certificate): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  for (const part of (x.subjectAltName ?? "").split(/,\s*/)) {
    if (part.startsWith("DNS:")) dnsNames.push(part.slice(4));
    else if (part.startsWith("IP Address:")) ipAddresses.push(part.slice(11));
  }
  return { dnsNames, ipAddresses };
}

export function certInfo(cert: string | X509Certificate): CertInfo {
  const x = typeof cert === "string" ? parseCertificate(cert) : cert;
  return {
    subject: x.subject.replace(/\n/g, ", "),
    issuer: x.issuer.replace(/\n/g, ", "),
    serialNumber: x.serialNumber,
    notBefore: validFrom(x),
    notAfter: validTo(x),
    fingerprint256: x.fingerprint256,
    isCA: x.ca,
    ...parseSans(x),
  };
}

export function fingerprint256(certPem: string): string {
  return parseCertificate(certPem).fingerprint256;
}

export type ChainResult =
  | { ok: true }
  | { ok: false; reason: "not-issued-by-ca" | "bad-signature" | "expired" | "not-yet-valid" | "ca-invalid"; message: string };

/**
 * Check that `certPem` was issued and signed by the CA and (unless `ignoreTime`) is valid at `now`.
 */
export function verifyChain(certPem: string, caPem: string, now: Date = new Date(), opts: { ignoreTime?: boolean } = {}): ChainResult {
  const cert = parseCertificate(certPem);
  const ca = parseCertificate(caPem, "CA certificate");
  if (!ca.ca) return { ok: false, reason: "ca-invalid", message: "the CA certificate is not a CA (basicConstraints cA=false)" };
  if (!cert.checkIssued(ca)) {
    return { ok: false, reason: "not-issued-by-ca", message: `certificate issuer "${certInfo(cert).issuer}" is not the ferry CA` };
  }
  if (!cert.verify(ca.publicKey)) {
    return { ok: false, reason: "bad-signature", message: "certificate signature does not verify with the CA public key" };
  }
  if (!opts.ignoreTime) {
    if (now < validFrom(cert)) return { ok: false, reason: "not-yet-valid", message: `certificate is valid from ${validFrom(cert).toISOString()}` };
    if (now > validTo(cert)) return { ok: false, reason: "expired", message: `certificate expired at ${validTo(cert).toISOString()}` };
    if (now > validTo(ca)) return { ok: false, reason: "ca-invalid", message: `CA certificate expired at ${validTo(ca).toISOString()}` };
  }
  return { ok: true };
}

function single(v: unknown, attr: string): string {
  if (typeof v === "string") return v;
  if (v === undefined) throw new PkiError(`certificate subject has no ${attr}`, "not-a-ferry-identity");
  throw new PkiError(`certificate subject has several ${attr} values`, "not-a-ferry-identity");
}

/**
 * The role a certificate was issued for, read from its subject (O=ferry, OU=ferry-<role>, CN=<name>).
 * Does not check the chain: use `identifyPeer` for a certificate presented by a peer.
 */
export function roleOf(cert: string | X509Certificate): FerryIdentity {
  const x = typeof cert === "string" ? parseCertificate(cert) : cert;
  const subject = x.toLegacyObject().subject as unknown as Record<string, unknown>;
  const o = single(subject["O"], "O");
  if (o !== FERRY_ORG) throw new PkiError(`certificate subject O=${o} is not ${FERRY_ORG}`, "not-a-ferry-identity");
  const ou = single(subject["OU"], "OU");
  const cn = single(subject["CN"], "CN");
  for (const key of Object.keys(subject)) {
    if (!["O", "OU", "CN"].includes(key)) {
      throw new PkiError(`certificate subject has unexpected attribute ${key}`, "not-a-ferry-identity");
    }
  }
  switch (ou) {
    case ROLE_OU.agent:
      if (!isValidClusterName(cn)) throw new PkiError(`agent certificate CN ${JSON.stringify(cn)} is not a cluster name`, "not-a-ferry-identity");
      return { role: "agent", cluster: cn };
    case ROLE_OU.admin:
    case ROLE_OU.broker:
    case ROLE_OU.server: {
      if (!PRINCIPAL_NAME_RE.test(cn)) throw new PkiError(`certificate CN ${JSON.stringify(cn)} is not a valid name`, "not-a-ferry-identity");
      const role = ou === ROLE_OU.admin ? "admin" : ou === ROLE_OU.broker ? "broker" : "server";
      return { role, name: cn };
    }
    default:
      throw new PkiError(`certificate subject OU=${ou} is not a ferry role`, "not-a-ferry-identity");
  }
}

/** Chain + validity + role of a certificate presented by a peer (gRPC client, renewal request). */
export function identifyPeer(certPem: string, caPem: string, now: Date = new Date()): FerryIdentity {
  const chain = verifyChain(certPem, caPem, now);
  if (!chain.ok) throw new PkiError(chain.message, chain.reason);
  return roleOf(certPem);
}

/** When a certificate should be renewed: at `fraction` (default 2/3) of its lifetime. */
export function renewalTime(cert: string | X509Certificate, fraction = RENEWAL_FRACTION): Date {
  const x = typeof cert === "string" ? parseCertificate(cert) : cert;
  const from = validFrom(x).getTime();
  const to = validTo(x).getTime();
  return new Date(from + (to - from) * fraction);
}

export function renewalDue(cert: string | X509Certificate, now: Date = new Date(), fraction = RENEWAL_FRACTION): boolean {
  return now.getTime() >= renewalTime(cert, fraction).getTime();
}

/** True when the private key belongs to the certificate. */
export function keyMatchesCertificate(certPem: string, keyPem: string): boolean {
  return parseCertificate(certPem).checkPrivateKey(loadPrivateKey(keyPem));
}

// ---------------------------------------------------------------------------------------------
// CSRs

export type CsrRejection = "malformed" | "unsupported-key" | "bad-signature" | "key-too-small" | "subject-mismatch";

export class CsrRejectedError extends PkiError {
  constructor(
    message: string,
    readonly reason: CsrRejection,
  ) {
    super(message, reason);
    this.name = "CsrRejectedError";
  }
}

/** Build a CSR (agent side) for `identity` signed with `privateKeyPem`. */
export function createCsr(privateKeyPem: string, identity: FerryIdentity): string {
  validateIdentity(identity);
  const key = loadPrivateKey(privateKeyPem);
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(createPublicKey(key).export({ type: "spki", format: "pem" }) as string);
  csr.setSubject(subjectOf(identity));
  csr.signatureOid = SHA256_WITH_RSA;
  csr.siginfo.algorithmOid = SHA256_WITH_RSA;
  csr.certificationRequestInfo = forgePki.getCertificationRequestInfo(csr);
  const info = Buffer.from(forge.asn1.toDer(csr.certificationRequestInfo).getBytes(), "binary");
  csr.signature = sign("sha256", info, key).toString("binary");
  return lf(forge.pki.certificationRequestToPem(csr));
}

/** Subject attributes a CSR may carry; anything else is refused. */
const CSR_SUBJECT_ATTRS = new Set(["CN", "OU", "O"]);

/**
 * Check a CSR and return its public key (SPKI PEM). Checks: parses, RSA, self-signature valid,
 * key ≥ 2048 bits, subject names exactly `expected` (CN, and OU/O when present).
 */
export function checkCsr(csrPem: string, expected: FerryIdentity): string {
  validateIdentity(expected);
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (e) {
    const msg = (e as Error).message;
    if (/not RSA/i.test(msg)) throw new CsrRejectedError("CSR key is not RSA; generate an RSA key of at least 2048 bits", "unsupported-key");
    throw new CsrRejectedError(`CSR is not a PEM PKCS#10 request: ${msg}`, "malformed");
  }
  let verified: boolean;
  try {
    verified = csr.verify();
  } catch {
    verified = false;
  }
  if (!verified) throw new CsrRejectedError("CSR signature does not verify with its own public key", "bad-signature");
  const pub = csr.publicKey as forge.pki.rsa.PublicKey | null;
  if (!pub) throw new CsrRejectedError("CSR has no public key", "malformed");
  const bits = pub.n.bitLength();
  if (bits < MIN_RSA_BITS) throw new CsrRejectedError(`CSR key has ${bits} bits; at least ${MIN_RSA_BITS} are required`, "key-too-small");

  const want = subjectOf(expected);
  const wantOf = (sn: string) => want.find((a) => a.shortName === sn)?.value as string;
  const seen = new Set<string>();
  for (const attr of csr.subject.attributes) {
    const sn = attr.shortName ?? attr.name ?? attr.type ?? "?";
    if (!CSR_SUBJECT_ATTRS.has(sn)) throw new CsrRejectedError(`CSR subject has attribute ${sn}; only CN, OU and O are allowed`, "subject-mismatch");
    if (seen.has(sn)) throw new CsrRejectedError(`CSR subject repeats ${sn}`, "subject-mismatch");
    seen.add(sn);
    if (attr.value !== wantOf(sn)) {
      throw new CsrRejectedError(
        `CSR subject ${sn}=${JSON.stringify(attr.value)} does not match ${sn}=${JSON.stringify(wantOf(sn))} this enrollment was issued for`,
        "subject-mismatch",
      );
    }
  }
  if (!seen.has("CN")) throw new CsrRejectedError(`CSR subject has no CN; expected CN=${wantOf("CN")}`, "subject-mismatch");
  return forge.pki.publicKeyToPem(pub);
}

/**
 * Check a CSR (see `checkCsr`) and issue a certificate for `expected`. The CA sets subject,
 * lifetime and extensions; nothing requested in the CSR besides the public key is used.
 */
export function signCsr(ca: CertificateAuthority, csrPem: string, expected: FerryIdentity, opts: IssueOptions = {}): string {
  const publicKeyPem = checkCsr(csrPem, expected);
  return issueCertificate(ca, expected, publicKeyPem, opts);
}

/**
 * Renewal: the agent presents its current certificate (still valid, issued by this CA) and a CSR
 * for the same cluster; returns the new certificate. `isRevoked` lets the broker refuse removed
 * clusters or revoked serial numbers.
 */
export function renewAgentCertificate(
  ca: CertificateAuthority,
  currentCertPem: string,
  csrPem: string,
  opts: IssueOptions & { isRevoked?: (cert: CertInfo, identity: FerryIdentity) => boolean } = {},
): string {
  const now = opts.now ?? new Date();
  const identity = identifyPeer(currentCertPem, ca.certPem, now);
  if (identity.role !== "agent") throw new PkiError(`only agent certificates renew this way, got role ${identity.role}`, "invalid-role");
  if (opts.isRevoked?.(certInfo(currentCertPem), identity)) throw new PkiError(`cluster ${identity.cluster} is revoked`, "revoked");
  return signCsr(ca, csrPem, identity, opts);
}
