import { describe, it, expect, beforeAll } from "vitest";
import forge from "node-forge";
import { X509Certificate, createPrivateKey, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import tls from "node:tls";
import type { AddressInfo } from "node:net";
import {
  createCa,
  createCsr,
  certInfo,
  checkCsr,
  CsrRejectedError,
  DEFAULT_LIFETIME_DAYS,
  fromSecretData,
  generateRsaKeyPair,
  identifyPeer,
  issueCertificate,
  issueClientCertificate,
  issueServerCertificate,
  keyMatchesCertificate,
  PkiError,
  renewAgentCertificate,
  renewalDue,
  renewalTime,
  roleOf,
  signCsr,
  toSecretData,
  verifyChain,
  type CertificateAuthority,
  type CertifiedKey,
} from "./index.js";

const DAY = 24 * 3600 * 1000;
const T0 = new Date("2026-06-01T12:00:00Z");

let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let server: CertifiedKey;
let agentA: CertifiedKey;
let agentKey: { privateKeyPem: string; publicKeyPem: string };
let otherKey: { privateKeyPem: string; publicKeyPem: string };

// RSA key generation dominates the run time: generate a few keys once and reuse them.
beforeAll(async () => {
  [ca, otherCa, agentKey, otherKey] = await Promise.all([
    createCa({ keyBits: 2048, now: T0 }),
    createCa({ keyBits: 2048, commonName: "evil CA", now: T0 }),
    generateRsaKeyPair(2048),
    generateRsaKeyPair(2048),
  ]);
  server = await issueServerCertificate(ca, { name: "nats", dnsNames: ["localhost", "nats.ferry.svc"], ipAddresses: ["127.0.0.1", "::1"], now: T0 });
  agentA = await issueClientCertificate(ca, { role: "agent", cluster: "a" }, { now: T0 });
});

describe("CA", () => {
  it("is a self-signed CA that node:crypto verifies", () => {
    const x = new X509Certificate(ca.certPem);
    expect(x.ca).toBe(true);
    expect(x.checkIssued(x)).toBe(true);
    expect(x.verify(x.publicKey)).toBe(true);
    expect(x.checkPrivateKey(createPrivateKey(ca.keyPem))).toBe(true);
    expect(x.subject).toContain("CN=ferry CA");
    expect(certInfo(ca.certPem).notAfter.getTime() - T0.getTime()).toBe(DEFAULT_LIFETIME_DAYS.ca * DAY);
  });

  it("signs with SHA-256 RSA", () => {
    const f = forge.pki.certificateFromPem(ca.certPem);
    expect(f.signatureOid).toBe("1.2.840.113549.1.1.11");
  });
});

describe("server certificates", () => {
  it("carry DNS and IP SANs, serverAuth+clientAuth, and chain to the CA", () => {
    const x = new X509Certificate(server.certPem);
    expect(x.checkHost("localhost")).toBe("localhost");
    expect(x.checkHost("nats.ferry.svc")).toBe("nats.ferry.svc");
    expect(x.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(x.checkHost("evil.example")).toBeUndefined();
    expect(x.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));
    expect(x.ca).toBe(false);
    const info = certInfo(x);
    expect(info.dnsNames).toEqual(["localhost", "nats.ferry.svc"]);
    expect(info.ipAddresses).toEqual(["127.0.0.1", expect.stringMatching(/^0:0:0:0:0:0:0:1$|^::1$/)]);
    expect(verifyChain(server.certPem, ca.certPem, T0)).toEqual({ ok: true });
    expect(keyMatchesCertificate(server.certPem, server.keyPem)).toBe(true);
    expect(roleOf(server.certPem)).toEqual({ role: "server", name: "nats" });
  });

  it("need at least one SAN and valid SAN values", async () => {
    await expect(issueServerCertificate(ca, { name: "nats" })).rejects.toThrow(/at least one DNS name or IP/);
    await expect(issueServerCertificate(ca, { name: "nats", ipAddresses: ["300.1.1.1"] })).rejects.toThrow(/not an IP address/);
    await expect(issueServerCertificate(ca, { name: "nats", dnsNames: ["bad name"] })).rejects.toThrow(/not a DNS name/);
  });

  const label63 = "a".repeat(63);
  const longest = [label63, label63, label63, "a".repeat(61)].join("."); // 253 characters
  it.each(["localhost", "nats.ferry.svc", "*.nats-headless", "*.nats.ferry.svc", "127.0.0.1", "x", `${label63}.b`, longest])("accept the DNS SAN %s", (dns) => {
    expect(() => issueCertificate(ca, { role: "server", name: "nats" }, otherKey.publicKeyPem, { dnsNames: [dns] })).not.toThrow();
  });

  it.each([
    ["uppercase", "Nats.ferry.svc"],
    ["empty label", "a..b"],
    ["label over 63", `${"a".repeat(64)}.b`],
    ["over 253", `${longest}a`],
    ["leading dot", ".a"],
    ["trailing dot", "a."],
    ["label starting with '-'", "-a.b"],
    ["label ending with '-'", "a-.b"],
    ["underscore", "a_b"],
    ["bare wildcard", "*"],
    ["wildcard without a name", "*."],
    ["wildcard not leading", "a.*.b"],
    ["partial wildcard", "a*.b"],
    ["double wildcard", "*.*.b"],
    ["space", "bad name"],
    ["empty", ""],
  ])("refuse a DNS SAN with %s (%j), naming the rule", (_, dns) => {
    expect(() => issueCertificate(ca, { role: "server", name: "nats" }, otherKey.publicKeyPem, { dnsNames: [dns] })).toThrow(
      expect.objectContaining({
        code: "invalid-san",
        message: `dnsNames: ${JSON.stringify(dns)} is not a DNS name: use a DNS-1123 subdomain (lowercase letters, digits, '-' and '.'; each dot-separated label 1-63 characters starting and ending with a letter or digit; at most 253 characters), optionally starting with "*." for a wildcard`,
      }),
    );
  });

  it("do a mutual TLS handshake with an agent certificate, and the server reads the agent's role", async () => {
    // issued now (the fixtures above are dated T0 and may have expired by the time this runs)
    const liveServer = { certPem: issueCertificate(ca, { role: "server", name: "nats" }, otherKey.publicKeyPem, { dnsNames: ["localhost"] }), keyPem: otherKey.privateKeyPem };
    const liveAgent = { certPem: issueCertificate(ca, { role: "agent", cluster: "a" }, agentKey.publicKeyPem), keyPem: agentKey.privateKeyPem };
    const srv = tls.createServer({ cert: liveServer.certPem, key: liveServer.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: true });
    const peer = new Promise<X509Certificate>((resolve) =>
      srv.on("secureConnection", (s) => {
        resolve(new X509Certificate(s.getPeerCertificate().raw));
        s.end();
      }),
    );
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as AddressInfo).port;
    const sock = tls.connect({ host: "127.0.0.1", port, ca: ca.certPem, cert: liveAgent.certPem, key: liveAgent.keyPem, servername: "localhost" });
    await new Promise<void>((resolve, reject) => sock.on("secureConnect", resolve).on("error", reject));
    expect(sock.authorized).toBe(true);
    expect(roleOf(await peer)).toEqual({ role: "agent", cluster: "a" });
    sock.destroy();
    await new Promise((r) => srv.close(r));
  });
});

describe("client certificates and roles", () => {
  it("name the role in the subject and read it back", () => {
    expect(new X509Certificate(agentA.certPem).subject.split("\n")).toEqual(["CN=a", "OU=ferry-agent", "O=ferry"]);
    expect(roleOf(agentA.certPem)).toEqual({ role: "agent", cluster: "a" });
    const admin = issueCertificate(ca, { role: "admin", name: "alice" }, agentKey.publicKeyPem, { now: T0 });
    expect(roleOf(admin)).toEqual({ role: "admin", name: "alice" });
    const broker = issueCertificate(ca, { role: "broker", name: "broker" }, agentKey.publicKeyPem, { now: T0 });
    expect(identifyPeer(broker, ca.certPem, T0)).toEqual({ role: "broker", name: "broker" });
    const x = new X509Certificate(broker);
    expect(x.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]); // clientAuth only
  });

  it("agents get the short default lifetime, configurable", () => {
    const info = certInfo(agentA.certPem);
    expect(info.notAfter.getTime() - T0.getTime()).toBe(7 * DAY);
    const longer = issueCertificate(ca, { role: "agent", cluster: "b" }, agentKey.publicKeyPem, { now: T0, validityDays: 30 });
    expect(certInfo(longer).notAfter.getTime() - T0.getTime()).toBe(30 * DAY);
  });

  it("never outlive the CA", () => {
    const cert = issueCertificate(ca, { role: "server", name: "x" }, agentKey.publicKeyPem, { dnsNames: ["x"], now: T0, validityDays: 100 * 365 });
    expect(certInfo(cert).notAfter).toEqual(certInfo(ca.certPem).notAfter);
  });

  it("refuse invalid names and the server role for clients", async () => {
    expect(() => issueCertificate(ca, { role: "agent", cluster: "A.B" }, agentKey.publicKeyPem)).toThrow(/not a valid cluster name/);
    expect(() => issueCertificate(ca, { role: "agent", cluster: "x.>" }, agentKey.publicKeyPem)).toThrow(PkiError);
    expect(() => issueCertificate(ca, { role: "admin", name: "" }, agentKey.publicKeyPem)).toThrow(/not valid/);
    await expect(issueClientCertificate(ca, { role: "server", name: "s" })).rejects.toThrow(/issueServerCertificate/);
  });

  it("roleOf refuses certificates that are not ferry identities", () => {
    expect(() => roleOf(ca.certPem)).toThrow(/OU=ferry-ca is not a ferry role/);
    const foreign = readFileSync(new URL("./testdata/ecdsa-ca.pem", import.meta.url), "utf8");
    expect(() => roleOf(foreign)).toThrow(/no O/);
  });

  it("identifyPeer refuses a certificate from another CA, expired or not yet valid", () => {
    const evil = issueCertificate(otherCa, { role: "agent", cluster: "a" }, agentKey.publicKeyPem, { now: T0 });
    expect(verifyChain(evil, ca.certPem, T0)).toMatchObject({ ok: false, reason: "not-issued-by-ca" });
    expect(() => identifyPeer(evil, ca.certPem, T0)).toThrow(/not the ferry CA/);
    expect(verifyChain(agentA.certPem, ca.certPem, new Date(T0.getTime() + 8 * DAY))).toMatchObject({ ok: false, reason: "expired" });
    expect(verifyChain(agentA.certPem, ca.certPem, new Date(T0.getTime() - DAY))).toMatchObject({ ok: false, reason: "not-yet-valid" });
  });

  it("detect a forged certificate (same issuer name, wrong signature)", async () => {
    // Another CA with the *same* subject as ours: names match, signature does not.
    const twin = await createCa({ keyBits: 2048, now: T0 });
    const forged = issueCertificate(twin, { role: "admin", name: "mallory" }, agentKey.publicKeyPem, { now: T0 });
    const r = verifyChain(forged, ca.certPem, T0);
    expect(r.ok).toBe(false);
    expect(["not-issued-by-ca", "bad-signature"]).toContain(!r.ok && r.reason);
  });
});

describe("renewal", () => {
  it("is due at 2/3 of the lifetime", () => {
    const info = certInfo(agentA.certPem);
    const life = info.notAfter.getTime() - info.notBefore.getTime();
    expect(renewalTime(agentA.certPem).getTime()).toBe(info.notBefore.getTime() + Math.round((life * 2) / 3));
    expect(renewalDue(agentA.certPem, T0)).toBe(false);
    expect(renewalDue(agentA.certPem, new Date(T0.getTime() + 4 * DAY))).toBe(false);
    expect(renewalDue(agentA.certPem, new Date(T0.getTime() + 5 * DAY))).toBe(true);
  });

  it("renews an agent with its current certificate and a CSR for the same cluster", () => {
    const now = new Date(T0.getTime() + 5 * DAY);
    const csr = createCsr(agentKey.privateKeyPem, { role: "agent", cluster: "a" });
    const renewed = renewAgentCertificate(ca, agentA.certPem, csr, { now });
    expect(roleOf(renewed)).toEqual({ role: "agent", cluster: "a" });
    expect(certInfo(renewed).notAfter.getTime() - now.getTime()).toBe(7 * DAY);
    expect(keyMatchesCertificate(renewed, agentKey.privateKeyPem)).toBe(true);

    const csrB = createCsr(agentKey.privateKeyPem, { role: "agent", cluster: "b" });
    expect(() => renewAgentCertificate(ca, agentA.certPem, csrB, { now })).toThrow(/CN="b" does not match CN="a"/);
    expect(() => renewAgentCertificate(ca, agentA.certPem, csr, { now: new Date(T0.getTime() + 8 * DAY) })).toThrow(/expired/);
    expect(() => renewAgentCertificate(ca, agentA.certPem, csr, { now, isRevoked: (_c, id) => id.role === "agent" && id.cluster === "a" })).toThrow(/revoked/);
    expect(() => renewAgentCertificate(ca, server.certPem, csr, { now })).toThrow(/only agent certificates/);
  });
});

describe("CSR checks", () => {
  const id = { role: "agent", cluster: "a" } as const;

  function forgeCsr(privateKeyPem: string, subject: forge.pki.CertificateField[], extra?: (csr: forge.pki.CertificateSigningRequest) => void) {
    const key = forge.pki.privateKeyFromPem(privateKeyPem);
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.setRsaPublicKey(key.n, key.e);
    csr.setSubject(subject);
    extra?.(csr);
    csr.sign(key, forge.md.sha256.create());
    return forge.pki.certificationRequestToPem(csr);
  }

  function reason(f: () => unknown): string | undefined {
    try {
      f();
    } catch (e) {
      if (e instanceof CsrRejectedError) return e.reason;
      throw e;
    }
    return undefined;
  }

  it("accepts a proper CSR and issues the CA's subject, not the CSR's extensions", () => {
    const csr = forgeCsr(agentKey.privateKeyPem, [{ shortName: "CN", value: "a" }], (c) =>
      c.setAttributes([
        {
          name: "extensionRequest",
          extensions: [
            { name: "basicConstraints", cA: true },
            { name: "subjectAltName", altNames: [{ type: 2, value: "evil.example" }] },
          ],
        },
      ]),
    );
    const cert = signCsr(ca, csr, id, { now: T0 });
    const x = new X509Certificate(cert);
    expect(x.ca).toBe(false);
    expect(x.subjectAltName).toBeUndefined();
    expect(x.subject.split("\n")).toEqual(["CN=a", "OU=ferry-agent", "O=ferry"]);
    expect(verifyChain(cert, ca.certPem, T0)).toEqual({ ok: true });
  });

  it("refuses a CSR whose subject names another cluster or role, or adds attributes", () => {
    expect(reason(() => checkCsr(createCsr(agentKey.privateKeyPem, { role: "agent", cluster: "b" }), id))).toBe("subject-mismatch");
    expect(reason(() => checkCsr(createCsr(agentKey.privateKeyPem, { role: "admin", name: "a" }), id))).toBe("subject-mismatch");
    expect(reason(() => checkCsr(forgeCsr(agentKey.privateKeyPem, [{ shortName: "CN", value: "a" }, { shortName: "C", value: "US" }]), id))).toBe(
      "subject-mismatch",
    );
    expect(reason(() => checkCsr(forgeCsr(agentKey.privateKeyPem, [{ shortName: "OU", value: "ferry-agent" }]), id))).toBe("subject-mismatch");
  });

  it("refuses a key below 2048 bits", () => {
    const small = generateKeyPairSync("rsa", { modulusLength: 1024 }).privateKey.export({ type: "pkcs8", format: "pem" }) as string;
    expect(reason(() => checkCsr(forgeCsr(small, [{ shortName: "CN", value: "a" }]), id))).toBe("key-too-small");
    expect(() => createCsr(small, id)).toThrow(/1024 bits/);
  });

  it("refuses a bad signature", () => {
    const pem = createCsr(agentKey.privateKeyPem, id);
    const der = Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
    const at = der.length - 10; // inside the signature BIT STRING
    der[at] = der[at]! ^ 0xff;
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
    expect(reason(() => checkCsr(tampered, id))).toBe("bad-signature");
  });

  it("refuses a CSR signed by another key than the one it carries", () => {
    const signer = forge.pki.privateKeyFromPem(otherKey.privateKeyPem);
    const mine = forge.pki.privateKeyFromPem(agentKey.privateKeyPem);
    const csr = forge.pki.createCertificationRequest();
    csr.publicKey = forge.pki.setRsaPublicKey(mine.n, mine.e);
    csr.setSubject([{ shortName: "CN", value: "a" }]);
    csr.sign(signer, forge.md.sha256.create());
    expect(reason(() => checkCsr(forge.pki.certificationRequestToPem(csr), id))).toBe("bad-signature");
  });

  it("refuses non-RSA keys and garbage", () => {
    const ec = readFileSync(new URL("./testdata/ecdsa.csr", import.meta.url), "utf8");
    expect(reason(() => checkCsr(ec, id))).toBe("unsupported-key");
    expect(reason(() => checkCsr("hello", id))).toBe("malformed");
  });
});

describe("Kubernetes Secret data", () => {
  it("round-trips and checks coherence", () => {
    const data = toSecretData({ certPem: agentA.certPem, keyPem: agentA.keyPem, caPem: ca.certPem });
    expect(Object.keys(data).sort()).toEqual(["ca.crt", "tls.crt", "tls.key"]);
    expect(Buffer.from(data["tls.crt"], "base64").toString()).toBe(agentA.certPem);
    expect(fromSecretData(data)).toEqual({ certPem: agentA.certPem, keyPem: agentA.keyPem, caPem: ca.certPem });
  });

  it("names the missing or wrong field", () => {
    const data = toSecretData({ certPem: agentA.certPem, keyPem: agentA.keyPem, caPem: ca.certPem });
    expect(() => fromSecretData({ ...data, "tls.key": undefined })).toThrow(/no "tls.key"/);
    expect(() => fromSecretData({ ...data, "tls.key": Buffer.from(server.keyPem).toString("base64") })).toThrow(/does not belong/);
    expect(() => fromSecretData({ ...data, "ca.crt": Buffer.from(otherCa.certPem).toString("base64") })).toThrow(/not signed by ca.crt/);
    expect(() => fromSecretData({ ...data, "ca.crt": "%%%" })).toThrow(/not base64/);
  });
});
