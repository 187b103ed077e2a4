// Config loading: file + environment + flags (later wins), paths relative to the config file,
// errors that name the field and where its value came from; secrets files checked for coherence.
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig } from "./config.js";

const FILE = `
identity: broker-0
nats:
  urls: [tls://nats-0:4222]
  caFile: certs/ca.crt
  certFile: certs/nats.crt
  keyFile: certs/nats.key
busAuthorityFile: /secrets/authority.json
ca: {certFile: /secrets/ca.crt, keyFile: /secrets/ca.key}
grpc: {certFile: certs/grpc.crt, keyFile: certs/grpc.key}
`;

const read = (files: Record<string, string>) => (p: string) => {
  const f = files[p];
  if (f === undefined) throw new Error(`ENOENT: ${p}`);
  return f;
};

describe("loadConfig", () => {
  it("fills defaults and resolves file paths relative to the config file", () => {
    const { config } = loadConfig(["--config", "/etc/ferry/broker.yaml"], {}, read({ "/etc/ferry/broker.yaml": FILE }));
    expect(config).toMatchObject({
      identity: "broker-0",
      logLevel: "info",
      nats: { urls: ["tls://nats-0:4222"], caFile: "/etc/ferry/certs/ca.crt", kvReplicas: 1, eventsMaxAgeDays: 30 },
      busAuthorityFile: "/secrets/authority.json",
      grpc: { listen: "0.0.0.0:7443", certFile: "/etc/ferry/certs/grpc.crt" },
      http: { listen: "0.0.0.0:9090" },
      agents: { heartbeatGraceSeconds: 30, certificateValidityDays: 7 },
      leader: { leaseSeconds: 15 },
      enrollment: { defaultTokenTtlSeconds: 3600, maxTokenTtlSeconds: 86400 },
    });
  });

  it("environment overrides the file and flags override the environment", () => {
    const env = { FERRY_LOG_LEVEL: "debug", FERRY_NATS_URLS: "tls://a:4222, tls://b:4222", FERRY_KV_REPLICAS: "3", FERRY_HEARTBEAT_GRACE_SECONDS: "10" };
    const { config } = loadConfig(["--config", "/c.yaml", "--log-level", "warn", "--grpc-listen", "127.0.0.1:0"], env, read({ "/c.yaml": FILE }));
    expect(config.logLevel).toBe("warn");
    expect(config.nats.urls).toEqual(["tls://a:4222", "tls://b:4222"]);
    expect(config.nats.kvReplicas).toBe(3);
    expect(config.agents.heartbeatGraceSeconds).toBe(10);
    expect(config.grpc.listen).toBe("127.0.0.1:0");
  });

  it("names every bad field, the fix and where the value came from", () => {
    const bad = FILE.replace("urls: [tls://nats-0:4222]", "urls: [nats-0]").replace("identity: broker-0", "identity: broker-0\nlogLevl: info");
    let err: unknown;
    try {
      loadConfig(["--config", "/c.yaml"], { FERRY_KV_REPLICAS: "2" }, read({ "/c.yaml": bad }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const issues = (err as ConfigError).issues;
    expect(issues).toContainEqual({ path: "nats.urls[0]", message: expect.stringMatching(/must be "tls:\/\/host:port" \(from \/c.yaml\)/) });
    expect(issues).toContainEqual({ path: "nats.kvReplicas", message: expect.stringMatching(/must be 1 or 3 .*\(from env FERRY_KV_REPLICAS\)/) });
    expect(issues.find((i) => i.path.includes("logLevl"))?.message).toMatch(/did you mean "logLevel"/);
  });

  it("requires --config, and both NATS user files or neither", () => {
    expect(() => loadConfig([], {}, read({}))).toThrow(/--config <file> is required/);
    const half = FILE.replace("keyFile: certs/nats.key", "keyFile: certs/nats.key\n  userJwtFile: broker.jwt");
    expect(() => loadConfig(["--config", "/c.yaml"], {}, read({ "/c.yaml": half }))).toThrow(/nats.userSeedFile: set both userJwtFile and userSeedFile, or neither/);
    expect(() => loadConfig(["--config", "/missing.yaml"], {}, read({}))).toThrow(/cannot read config file \/missing.yaml/);
    expect(loadConfig(["--help"], {}, read({})).help).toBe(true);
  });
});

describe("loadSecrets", () => {
  it("checks that the files fit together and names the field and the fix when they do not", async () => {
    const { createBusAuthority } = await import("../bus/auth.js");
    const { createCa, generateRsaKeyPair, issueCertificate, publicKeyOf } = await import("../pki/index.js");
    const { loadSecrets } = await import("./config.js");
    const [ca, other, { authority }, key] = await Promise.all([createCa({ keyBits: 2048 }), createCa({ keyBits: 2048 }), createBusAuthority(), generateRsaKeyPair(2048)]);
    const pub = publicKeyOf(key.privateKeyPem);
    const files: Record<string, string> = {
      "/s/ca.crt": ca.certPem,
      "/s/ca.key": ca.keyPem,
      "/s/grpc.crt": issueCertificate(other, { role: "server", name: "broker" }, pub, { dnsNames: ["localhost"] }), // wrong CA
      "/s/grpc.key": key.privateKeyPem,
      "/s/nats.crt": issueCertificate(ca, { role: "broker", name: "broker" }, pub),
      "/s/nats.key": key.privateKeyPem,
      "/s/authority.json": JSON.stringify(authority),
    };
    const yaml = `nats: {urls: [tls://n:4222], caFile: ca.crt, certFile: nats.crt, keyFile: nats.key}
busAuthorityFile: authority.json
ca: {certFile: ca.crt, keyFile: ca.key}
grpc: {certFile: grpc.crt, keyFile: grpc.key}`;
    const { config } = loadConfig(["--config", "/s/broker.yaml"], {}, read({ ...files, "/s/broker.yaml": yaml }));
    let err: unknown;
    try {
      loadSecrets(config, read(files));
    } catch (e) {
      err = e;
    }
    expect((err as ConfigError).issues).toEqual([{ path: "grpc.certFile", message: expect.stringMatching(/is not the ferry CA; issue it from the ferry CA in ca.certFile/) }]);

    files["/s/grpc.crt"] = issueCertificate(ca, { role: "server", name: "broker" }, pub, { dnsNames: ["localhost"] });
    files["/s/authority.json"] = JSON.stringify({ ...authority, account: { ...authority.account, signingSeed: "nope" } });
    files["/s/ca.key"] = key.privateKeyPem;
    expect(() => loadSecrets(config, read(files))).toThrow(/ca.keyFile: \/s\/ca.key is not the private key of \/s\/ca.crt[\s\S]*busAuthorityFile: .*account.signingSeed: must be an nkey seed starting with SA/);

    files["/s/ca.key"] = ca.keyPem;
    files["/s/authority.json"] = JSON.stringify(authority);
    const secrets = loadSecrets(config, read(files));
    expect(secrets.authority).toEqual(authority);
    expect(secrets.natsUser).toBeUndefined(); // minted from the authority at start-up
  });
});
