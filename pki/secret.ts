// Certificates as PEM and as the `data` of a Kubernetes TLS Secret (`kubernetes.io/tls` + `ca.crt`).
import { keyMatchesCertificate, parseCertificate, verifyChain } from "./ca.js";
import { loadPrivateKey } from "./keys.js";
import { PkiError } from "./names.js";

export interface TlsMaterial {
  certPem: string;
  keyPem: string;
  caPem: string;
}

/** Kubernetes Secret `data`: base64 of each PEM. */
export type TlsSecretData = {
  "tls.crt": string;
  "tls.key": string;
  "ca.crt": string;
};

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

export function toSecretData(m: TlsMaterial): TlsSecretData {
  return { "tls.crt": b64(m.certPem), "tls.key": b64(m.keyPem), "ca.crt": b64(m.caPem) };
}

function decodeField(data: Record<string, string | undefined>, field: keyof TlsSecretData): string {
  const v = data[field];
  if (typeof v !== "string" || v.length === 0) {
    throw new PkiError(`Secret data has no "${field}"; expected keys tls.crt, tls.key and ca.crt (base64 PEM)`, "malformed");
  }
  if (!/^[A-Za-z0-9+/=\s]+$/.test(v)) throw new PkiError(`Secret data "${field}" is not base64`, "malformed");
  const s = Buffer.from(v, "base64").toString("utf8");
  if (!s.includes("-----BEGIN ")) throw new PkiError(`Secret data "${field}" does not decode to PEM`, "malformed");
  return s;
}

/**
 * Read TLS material back from a Secret's `data` and check it is coherent: each field parses,
 * the key belongs to the certificate, and the certificate was signed by `ca.crt`. Expiry is not
 * checked here (an expired certificate must still be loadable to report or renew it).
 */
export function fromSecretData(data: Record<string, string | undefined>): TlsMaterial {
  const certPem = decodeField(data, "tls.crt");
  const keyPem = decodeField(data, "tls.key");
  const caPem = decodeField(data, "ca.crt");
  parseCertificate(certPem, "tls.crt");
  parseCertificate(caPem, "ca.crt");
  loadPrivateKey(keyPem, "tls.key");
  if (!keyMatchesCertificate(certPem, keyPem)) throw new PkiError("tls.key does not belong to tls.crt", "key-mismatch");
  const chain = verifyChain(certPem, caPem, new Date(), { ignoreTime: true });
  if (!chain.ok) throw new PkiError(`tls.crt is not signed by ca.crt: ${chain.message}`, chain.reason);
  return { certPem, keyPem, caPem };
}
