// The serving CA and certificate of the simulated API servers: one pair per process, for 127.0.0.1,
// ::1 and localhost. RSA keys are generated natively (node:crypto) and signed with node-forge, which
// cannot do ECDSA (see deps.md §6).
import { generateKeyPair as generateKeyPairCb, randomBytes } from "node:crypto";
import { promisify } from "node:util";
import forge from "node-forge";

const generateKeyPair = promisify(generateKeyPairCb);

export interface ServingCert {
  /** PEM of the CA that signed `cert`: goes into kubeconfig `certificate-authority-data`. */
  caPem: string;
  certPem: string;
  keyPem: string;
}

async function rsaKey(): Promise<{ pub: forge.pki.rsa.PublicKey; priv: forge.pki.rsa.PrivateKey; pem: string }> {
  const { privateKey } = await generateKeyPair("rsa", { modulusLength: 2048 });
  const pem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const priv = forge.pki.privateKeyFromPem(pem);
  const pub = forge.pki.setRsaPublicKey(priv.n, priv.e);
  return { pub, priv, pem };
}

function serial(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  return b.toString("hex");
}

let shared: Promise<ServingCert> | undefined;

/** The process's loopback serving pair, made once (RSA key generation and forge signing take ~1 s on a busy machine). */
export function processServingCert(): Promise<ServingCert> {
  shared ??= createServingCert().catch((e: unknown) => {
    shared = undefined;
    throw e;
  });
  return shared;
}

/** Creates a CA and a serving certificate for loopback addresses. Takes a few hundred ms. */
export async function createServingCert(hosts: string[] = ["localhost"], ips: string[] = ["127.0.0.1", "::1"]): Promise<ServingCert> {
  const [ca, leaf] = await Promise.all([rsaKey(), rsaKey()]);
  const now = new Date(Date.now() - 60_000);
  const later = new Date(Date.now() + 365 * 24 * 3600_000);

  const caCert = forge.pki.createCertificate();
  caCert.publicKey = ca.pub;
  caCert.serialNumber = serial();
  caCert.validity.notBefore = now;
  caCert.validity.notAfter = later;
  const caSubject = [{ name: "commonName", value: "ferry-sim-apiserver-ca" }];
  caCert.setSubject(caSubject);
  caCert.setIssuer(caSubject);
  caCert.setExtensions([
    { name: "basicConstraints", cA: true, critical: true },
    { name: "keyUsage", keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: "subjectKeyIdentifier" },
  ]);
  caCert.sign(ca.priv, forge.md.sha256.create());

  const cert = forge.pki.createCertificate();
  cert.publicKey = leaf.pub;
  cert.serialNumber = serial();
  cert.validity.notBefore = now;
  cert.validity.notAfter = later;
  cert.setSubject([{ name: "commonName", value: "ferry-sim-apiserver" }]);
  cert.setIssuer(caSubject);
  cert.setExtensions([
    { name: "basicConstraints", cA: false },
    { name: "keyUsage", digitalSignature: true, keyEncipherment: true, critical: true },
    { name: "extKeyUsage", serverAuth: true },
    { name: "subjectAltName", altNames: [...hosts.map((value) => ({ type: 2, value })), ...ips.map((ip) => ({ type: 7, ip }))] },
    { name: "subjectKeyIdentifier" },
    { name: "authorityKeyIdentifier", keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
  ]);
  cert.sign(ca.priv, forge.md.sha256.create());

  return { caPem: forge.pki.certificateToPem(caCert), certPem: forge.pki.certificateToPem(cert), keyPem: leaf.pem };
}
