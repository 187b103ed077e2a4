// ferryctl.yaml: parsing, lookup order, and credential checks. Every error is one line naming the
// file, the field and the fix. Through `run` in-process (no broker needed: these fail before a call).
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa, generateRsaKeyPair, issueCertificate, publicKeyOf, type CertificateAuthority } from "../pki/index.js";
import { loadCredentials, parseConfig, resolveConfigPath } from "./config.js";
import { CliError } from "./errors.js";
import type { Io } from "./program.js";
import { run } from "./run.js";
import { writeFerryctlConfig } from "./testing.js";

let dir: string;
let ca: CertificateAuthority;
let key: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ferryctl-config-"));
  ca = await createCa({ keyBits: 2048 });
  key = (await generateRsaKeyPair(2048)).privateKeyPem;
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function capture(): Writable & { text: string } {
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      w.text += chunk.toString();
      cb();
    },
  }) as Writable & { text: string };
  w.text = "";
  return w;
}

async function ferryctlIn(args: string[], env: NodeJS.ProcessEnv = {}, cwd = dir) {
  const stdout = capture();
  const stderr = capture();
  const io: Io = { stdout, stderr, env, cwd, now: () => new Date(), readStdin: () => "" };
  const code = await run(args, io);
  return { code, stdout: stdout.text, stderr: stderr.text };
}

function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  return lines[0]!;
}

describe("parseConfig", () => {
  it("accepts the documented shape and fills apiVersion/kind", () => {
    const c = parseConfig("brokers: [ferry.example.com:7443, '[::1]:7443']\ncaFile: ca.crt\ncertFile: a.crt\nkeyFile: a.key\n", "f.yaml");
    expect(c).toMatchObject({ apiVersion: "ferry.dev/v1alpha1", kind: "FerryctlConfig", brokers: ["ferry.example.com:7443", "[::1]:7443"] });
  });

  it.each([
    ["brokers: []\ncaFile: a\ncertFile: b\nkeyFile: c\n", /f\.yaml: brokers: list at least one broker address/],
    ["brokers: [nohost]\ncaFile: a\ncertFile: b\nkeyFile: c\n", /brokers\[0\]: broker address "nohost" must be host:port/],
    ["brokers: [a:1]\ncertFile: b\nkeyFile: c\n", /caFile: set caFile \(a path\) or caData \(the PEM\)/],
    ["brokers: [a:1]\ncaFile: a\ncaData: x\ncertFile: b\nkeyFile: c\n", /caData: set caFile or caData, not both/],
    ["brokers: [a:1]\ncaFile: a\ncertFile: b\nkeyFile: c\nnatsUrl: http://x\n", /natsUrl: natsUrl must look like "tls:/],
    ["brokers: [a:1]\ncaFile: x\ncertFile: y\nkeyFile: z\nbrokerz: []\n", /brokerz.*brokers/],
    ["brokers: [a:1\n", /^f\.yaml(:\d+)?: not valid YAML/],
  ])("refuses %j", (text, message) => {
    expect(() => parseConfig(text, "f.yaml")).toThrow(message);
  });
});

describe("resolveConfigPath", () => {
  const none = () => false;
  it("--config, then FERRY_CONFIG, then ./ferryctl.yaml, then ./.ferry/ferryctl.yaml", () => {
    expect(resolveConfigPath("c.yaml", { FERRY_CONFIG: "/e.yaml" }, "/w", none)).toEqual({ path: "/w/c.yaml", from: "--config" });
    expect(resolveConfigPath(undefined, { FERRY_CONFIG: "e.yaml" }, "/w", none)).toEqual({ path: "/w/e.yaml", from: "FERRY_CONFIG" });
    expect(resolveConfigPath(undefined, {}, "/w", (p) => p === "/w/.ferry/ferryctl.yaml")).toEqual({ path: "/w/.ferry/ferryctl.yaml", from: "default" });
    expect(resolveConfigPath(undefined, {}, "/w", () => true)).toEqual({ path: "/w/ferryctl.yaml", from: "default" });
    expect(() => resolveConfigPath(undefined, {}, "/w", none)).toThrow(/pass --config FILE or set FERRY_CONFIG/);
  });
});

describe("loadCredentials", () => {
  const base = { apiVersion: "ferry.dev/v1alpha1" as const, kind: "FerryctlConfig" as const, brokers: ["a:1"] };
  it("reads files relative to the config file, or inline data", () => {
    const cert = issueCertificate(ca, { role: "admin", name: "me" }, publicKeyOf(key));
    const files: Record<string, string> = { "/cfg/ca.crt": ca.certPem, "/cfg/sub/admin.crt": cert };
    const creds = loadCredentials({ ...base, caFile: "ca.crt", certFile: "sub/admin.crt", keyData: key }, "/cfg/ferryctl.yaml", (p) => files[p] ?? "", new Date());
    expect(creds).toEqual({ caPem: ca.certPem, certPem: cert, keyPem: key });
  });

  it("names a missing file and where paths are relative to", () => {
    const read = (p: string): string => {
      throw Object.assign(new Error(p), { code: "ENOENT" });
    };
    expect(() => loadCredentials({ ...base, caFile: "ca.crt", certFile: "a", keyFile: "b" }, "/cfg/f.yaml", read, new Date())).toThrow(
      "caFile /cfg/ca.crt: no such file; fix caFile in /cfg/f.yaml (paths are relative to that file)",
    );
  });

  it("says which file is not PEM", () => {
    const cert = issueCertificate(ca, { role: "admin", name: "me" }, publicKeyOf(key));
    const cfg = { ...base, caData: ca.certPem, certData: cert, keyData: key };
    expect(() => loadCredentials({ ...cfg, caData: "junk" }, "/f.yaml", () => "", new Date())).toThrow(/caData in \/f\.yaml is not a PEM certificate; point caFile at the ferry CA/);
    expect(() => loadCredentials({ ...cfg, certData: key }, "/f.yaml", () => "", new Date())).toThrow(/certData .* is not a PEM certificate/);
    expect(() => loadCredentials({ ...cfg, keyData: cert }, "/f.yaml", () => "", new Date())).toThrow(/keyData .* is not a PEM private key/);
  });
});

describe("ferryctl with bad credentials (in-process, fails before any call)", () => {
  it("a key that is not the certificate's names keyFile", async () => {
    const other = (await generateRsaKeyPair(2048)).privateKeyPem;
    const path = writeFerryctlConfig(dir, ca, key, ["127.0.0.1:1"], {}, "wrongkey");
    writeFileSync(join(dir, "wrongkey-admin.key"), other);
    const r = await ferryctlIn(["cluster", "list", "--config", path]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/wrongkey-admin\.key is not the key of .*wrongkey-admin\.crt; use the key issued with that certificate/);
  });

  it("a certificate from another CA is refused before any call", async () => {
    const foreign = await createCa({ keyBits: 2048 });
    const path = writeFerryctlConfig(dir, ca, key, ["127.0.0.1:1"], {}, "foreign");
    writeFileSync(join(dir, "foreign-admin.crt"), issueCertificate(foreign, { role: "admin", name: "x" }, publicKeyOf(key)));
    const r = await ferryctlIn(["cluster", "list", "--config", path]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/foreign-admin\.crt is not signed by the CA in .*foreign-ca\.crt/);
  });

  it("an expired certificate says to issue a new one", async () => {
    const path = writeFerryctlConfig(dir, ca, key, ["127.0.0.1:1"], {}, "expired");
    const old = new Date(Date.now() - 40 * 86_400_000);
    writeFileSync(join(dir, "expired-admin.crt"), issueCertificate(ca, { role: "admin", name: "x" }, publicKeyOf(key), { now: old, validityDays: 30 }));
    const r = await ferryctlIn(["cluster", "list", "--config", path]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/expired-admin\.crt expired on .*; issue a new admin certificate/);
  });

  it("an agent certificate is not an admin's", async () => {
    const path = writeFerryctlConfig(dir, ca, key, ["127.0.0.1:1"], {}, "agentcert");
    writeFileSync(join(dir, "agentcert-admin.crt"), issueCertificate(ca, { role: "agent", cluster: "east" }, publicKeyOf(key)));
    const r = await ferryctlIn(["cluster", "list", "--config", path]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toContain("is not an admin certificate (subject CN=east, OU=ferry-agent, O=ferry); the broker accepts only OU=ferry-admin");
  });

  it("no config anywhere says how to get one", async () => {
    const empty = mkdtempSync(join(tmpdir(), "ferryctl-empty-"));
    try {
      const r = await ferryctlIn(["cluster", "list"], {}, empty);
      expect(r.code).toBe(1);
      expect(oneErrorLine(r.stderr)).toContain("no ferryctl config: pass --config FILE or set FERRY_CONFIG");
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("FERRY_CONFIG naming a missing file says where the name came from", async () => {
    const r = await ferryctlIn(["plan", "list"], { FERRY_CONFIG: "nope.yaml" });
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/nope\.yaml \(from FERRY_CONFIG\): no such file/);
  });
});
