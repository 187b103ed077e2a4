// The simulated virt-operator's certificates: ECDSA P-256 CAs and leaf certificates like KubeVirt's
// (pkg/certificates/triple), built as DER with node-forge's ASN.1 writer and signed with node:crypto
// (node-forge itself signs only RSA). Also the CA-bundle merging rules of virt-operator:
// MergeCABundle (secrets.go) and getValidCerts (core.go).
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from "node:crypto";
import forge from "node-forge";

const asn1 = forge.asn1;
type Asn1 = forge.asn1.Asn1;

const OID = {
  ecPublicKey: "1.2.840.10045.2.1",
  prime256v1: "1.2.840.10045.3.1.7",
  ecdsaWithSHA256: "1.2.840.10045.4.3.2",
  commonName: "2.5.4.3",
  organization: "2.5.4.10",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  clientAuth: "1.3.6.1.5.5.7.3.2",
};

const seq = (v: Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SEQUENCE, true, v);
const set = (v: Asn1[]) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.SET, true, v);
const oid = (o: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OID, false, asn1.oidToDer(o).getBytes());
const utf8 = (s: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTF8, false, forge.util.encodeUtf8(s));
const bool = (b: boolean) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BOOLEAN, false, b ? "\xff" : "\x00");
const octets = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.OCTETSTRING, false, bytes);
const bits = (unused: number, bytes: string) =>
  asn1.create(asn1.Class.UNIVERSAL, asn1.Type.BITSTRING, false, String.fromCharCode(unused) + bytes);
const int = (bytes: string) => asn1.create(asn1.Class.UNIVERSAL, asn1.Type.INTEGER, false, bytes);
const explicit = (n: number, v: Asn1) => asn1.create(asn1.Class.CONTEXT_SPECIFIC, n, true, [v]);
const bin = (b: Buffer) => b.toString("binary");

/** x509 Time: UTCTime until 2049, GeneralizedTime after (RFC 5280 4.1.2.5). */
function time(d: Date): Asn1 {
  if (d.getUTCFullYear() < 2050) return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.UTCTIME, false, asn1.dateToUtcTime(d));
  return asn1.create(asn1.Class.UNIVERSAL, asn1.Type.GENERALIZEDTIME, false, asn1.dateToGeneralizedTime(d));
}

function name(cn: string, org?: string): Asn1 {
  const rdns = [set([seq([oid(OID.commonName), utf8(cn)])])];
  if (org) rdns.unshift(set([seq([oid(OID.organization), utf8(org)])]));
  return seq(rdns);
}

function ext(id: string, critical: boolean, value: Asn1): Asn1 {
  const parts = [oid(id)];
  if (critical) parts.push(bool(true));
  parts.push(octets(asn1.toDer(value).getBytes()));
  return seq(parts);
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  if (b[0] === 0) b[0] = 1;
  return bin(b);
}

function spkiDer(pub: KeyObject): Buffer {
  return pub.export({ type: "spki", format: "der" });
}

/** SHA-1 of the subjectPublicKey bit string, RFC 5280 method (1), as Go and OpenSSL compute SKIs. */
function keyId(pub: KeyObject): string {
  const spki = asn1.fromDer(forge.util.createBuffer(bin(spkiDer(pub))));
  const bitString = (spki.value as Asn1[])[1]!.value as string;
  return bin(createHash("sha1").update(Buffer.from(bitString.slice(1), "binary")).digest());
}

export interface KeyPair {
  certPem: string;
  keyPem: string;
  cert: X509Certificate;
  notBefore: Date;
  notAfter: Date;
}

interface CertSpec {
  cn: string;
  org?: string;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
  usage?: "server" | "client";
  subjectKey: KeyObject;
  issuer?: { cn: string; org?: string; key: KeyObject; pub: KeyObject };
}

function buildCert(spec: CertSpec, subjectPub: KeyObject): string {
  const sigAlg = seq([oid(OID.ecdsaWithSHA256)]);
  const issuerName = spec.issuer ? name(spec.issuer.cn, spec.issuer.org) : name(spec.cn, spec.org);
  const signerKey = spec.issuer ? spec.issuer.key : spec.subjectKey;
  const signerPub = spec.issuer ? spec.issuer.pub : subjectPub;
  const exts: Asn1[] = [];
  if (spec.isCA) {
    // KeyUsageKeyEncipherment | KeyUsageDigitalSignature | KeyUsageCertSign
    exts.push(ext(OID.keyUsage, true, bits(2, "\xa4")));
    exts.push(ext(OID.basicConstraints, true, seq([bool(true)])));
  } else {
    exts.push(ext(OID.keyUsage, true, bits(5, "\xa0")));
    exts.push(ext(OID.extKeyUsage, false, seq([oid(spec.usage === "client" ? OID.clientAuth : OID.serverAuth)])));
    exts.push(ext(OID.basicConstraints, true, seq([])));
  }
  exts.push(ext(OID.subjectKeyIdentifier, false, octets(keyId(subjectPub))));
  exts.push(ext(OID.authorityKeyIdentifier, false, seq([asn1.create(asn1.Class.CONTEXT_SPECIFIC, 0, false, keyId(signerPub))])));
  const spki = asn1.fromDer(forge.util.createBuffer(bin(spkiDer(subjectPub))));
  const tbs = seq([
    explicit(0, int("\x02")),
    int(serial()),
    sigAlg,
    issuerName,
    seq([time(spec.notBefore), time(spec.notAfter)]),
    name(spec.cn, spec.org),
    spki,
    explicit(3, seq(exts)),
  ]);
  const tbsDer = Buffer.from(asn1.toDer(tbs).getBytes(), "binary");
  const signature = sign("sha256", tbsDer, { key: signerKey, dsaEncoding: "der" });
  const certAsn1 = seq([tbs, seq([oid(OID.ecdsaWithSHA256)]), bits(0, bin(signature))]);
  const der = asn1.toDer(certAsn1).getBytes();
  const b64 = forge.util.encode64(der).replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

function newKey(): { priv: KeyObject; pub: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  return { priv: privateKey, pub: publicKey };
}

/** Whole seconds, as x509 times carry them. */
function truncSeconds(ms: number): Date {
  return new Date(Math.floor(ms / 1000) * 1000);
}

function toKeyPair(certPem: string, priv: KeyObject): KeyPair {
  const cert = new X509Certificate(certPem);
  return {
    certPem,
    keyPem: priv.export({ type: "sec1", format: "pem" }).toString(),
    cert,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
  };
}

/**
 * A self-signed CA named like KubeVirt's (`kubevirt.io@<unix seconds>`), valid for `validRealMs` of
 * wall-clock time (the caller converts simulated durations with the clock).
 */
export function createCA(validRealMs: number, cnPrefix = "kubevirt.io", window?: { notBefore: Date; notAfter: Date }): KeyPair {
  const { priv, pub } = newKey();
  const nowMs = Date.now();
  const cn = `${cnPrefix}@${Math.floor(nowMs / 1000)}`;
  const notBefore = window?.notBefore ?? truncSeconds(nowMs);
  const notAfter = window?.notAfter ?? truncSeconds(nowMs + Math.max(validRealMs, 2000));
  const certPem = buildCert({ cn, notBefore, notAfter, isCA: true, subjectKey: priv }, pub);
  return toKeyPair(certPem, priv);
}

/** A leaf certificate signed by `ca` (server or client auth), as virt-operator issues for its components. */
export function signLeaf(ca: KeyPair, cn: string, usage: "server" | "client", validRealMs: number): KeyPair {
  const { priv, pub } = newKey();
  const caKey = createPrivateKey(ca.keyPem);
  const caSubject = /CN=([^\n]+)/.exec(ca.cert.subject)?.[1] ?? "";
  const nowMs = Date.now();
  const notAfter = Math.min(nowMs + Math.max(validRealMs, 2000), ca.notAfter.getTime());
  const certPem = buildCert(
    {
      cn,
      notBefore: truncSeconds(nowMs),
      notAfter: truncSeconds(notAfter),
      isCA: false,
      usage,
      subjectKey: priv,
      issuer: { cn: caSubject, key: caKey, pub: ca.cert.publicKey },
    },
    pub,
  );
  return toKeyPair(certPem, priv);
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

/** Certificates of a PEM bundle; blocks that do not parse are skipped (garbage is ignored). */
export function parseBundle(pem: string | undefined): X509Certificate[] {
  const out: X509Certificate[] = [];
  for (const m of (pem ?? "").matchAll(PEM_BLOCK)) {
    try {
      out.push(new X509Certificate(m[0]));
    } catch {
      // not a certificate
    }
  }
  return out;
}

/** Whether every block in `pem` parses (cert.ParseCertsPEM fails on the first bad block). */
export function bundleParses(pem: string | undefined): boolean {
  const blocks = [...(pem ?? "").matchAll(/-----BEGIN ([A-Z ]+)-----[\s\S]*?-----END \1-----/g)];
  return blocks.every((b) => {
    if (b[1] !== "CERTIFICATE") return true; // ParseCertsPEM skips non-certificate blocks
    try {
      new X509Certificate(b[0]);
      return true;
    } catch {
      return false;
    }
  });
}

export const certPem = (c: X509Certificate): string => c.toString().replace(/\r?\n?$/, "\n");
export const sha256Hex = (c: X509Certificate): string => createHash("sha256").update(c.raw).digest("hex");
const notBeforeMs = (c: X509Certificate) => Date.parse(c.validFrom);
const notAfterMs = (c: X509Certificate) => Date.parse(c.validTo);

/**
 * virt-operator's MergeCABundle (secrets.go): keeps the unexpired certificates of the current bundle,
 * newest first, as long as each one's successor is younger than the overlap interval (the first is
 * checked against the current CA); the current CA always leads. Returns the bundle and how many
 * certificates it holds.
 */
export function mergeCABundle(current: X509Certificate, bundle: string, overlapMs: number, nowMs = Date.now()): { bundle: string; count: number } {
  const currentPem = certPem(current);
  const valid = parseBundle(bundle)
    .filter((c) => !(notAfterMs(c) < nowMs))
    .sort((a, b) => Math.floor(notBeforeMs(b) / 1000) - Math.floor(notBeforeMs(a) / 1000))
    .slice(0, 50);
  let out = "";
  let count = 0;
  for (let i = 0; i < valid.length; i++) {
    const ref = i === 0 ? notBeforeMs(current) : notBeforeMs(valid[i - 1]!);
    if (ref + overlapMs < nowMs) break;
    const pem = certPem(valid[i]!);
    if (pem === currentPem) continue;
    out += pem;
    count++;
  }
  return { bundle: currentPem + out, count: count + 1 };
}

/** virt-operator's getValidCerts (core.go): currently valid certificates, de-duplicated by SHA-256. */
export function validCerts(certs: X509Certificate[], nowMs = Date.now()): X509Certificate[] {
  const seen = new Set<string>();
  const out: X509Certificate[] = [];
  for (const c of certs) {
    const h = sha256Hex(c);
    if (seen.has(h)) continue;
    if (nowMs > notBeforeMs(c) && nowMs < notAfterMs(c)) {
      out.push(c);
      seen.add(h);
    }
  }
  return out;
}

/** shouldUpdateBundle (core.go): the merged bundle plus the external CAs not in it yet. */
export function bundleWithExternal(merged: string, external: X509Certificate[]): string {
  const present = new Set(parseBundle(merged).map(sha256Hex));
  let out = merged;
  for (const c of external) {
    const h = sha256Hex(c);
    if (present.has(h)) continue;
    present.add(h);
    out += certPem(c);
  }
  return out;
}
