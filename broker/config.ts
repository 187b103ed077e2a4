// Broker configuration: one zod schema, filled from a YAML/JSON file, then environment variables,
// then command-line flags (later wins). Secrets are never inline: the config names files (mounted
// Kubernetes Secrets), read and checked by `loadSecrets` before anything starts.
import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import type { BusAuthority } from "../bus/auth.js";
import { keyMatchesCertificate, parseCertificate, PRINCIPAL_NAME_RE, verifyChain, type CertificateAuthority, type CertifiedKey } from "../pki/index.js";
import { parseWith, type FieldError } from "../proto/issues.js";
import type { Same } from "./state/records.js";

const FilePath = z.string().min(1, { error: "must be a file path" });

/** "host:port" to listen on ("0.0.0.0:7443", "127.0.0.1:0" for a free port, "[::]:7443"). */
const ListenAddress = z.string().regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$/, {
  error: (i) => `listen address ${JSON.stringify(i.input)} must be "host:port", e.g. "0.0.0.0:7443" (port 0 picks a free one)`,
});

const NatsUrl = z.string().regex(/^(?:tls|nats):\/\/[^\s/]+:[0-9]{1,5}$/, {
  error: (i) => `NATS URL ${JSON.stringify(i.input)} must be "tls://host:port"`,
});

const Seconds = (what: string, min: number, max: number) =>
  z
    .number()
    .min(min, { error: `${what} must be at least ${min} seconds` })
    .max(max, { error: `${what} must be at most ${max} seconds` });

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

export const BrokerConfig = z
  .object({
    /** This replica's name in the leader lease and in logs; default: the host name (the pod name). */
    identity: z
      .string()
      .regex(PRINCIPAL_NAME_RE, { error: "identity must be 1-128 lowercase letters, digits, '.' or '-' (e.g. the pod name)" })
      .default(() => sanitizeIdentity(hostname())),
    logLevel: z.enum(LOG_LEVELS).default("info"),
    nats: z
      .object({
        urls: z.array(NatsUrl).min(1, { error: "list at least one NATS server URL" }),
        /** Trust anchor for the NATS servers (the ferry CA). */
        caFile: FilePath,
        /** The broker's NATS client certificate and key (role broker, from the ferry CA). */
        certFile: FilePath,
        keyFile: FilePath,
        /** The broker's NATS user JWT and nkey seed; both or neither (then minted from the bus authority at start-up). */
        userJwtFile: FilePath.optional(),
        userSeedFile: FilePath.optional(),
        /** JetStream replicas of the broker's KV buckets and event stream: 1, or 3 on a 3-node NATS cluster. */
        kvReplicas: z.literal([1, 3], { error: "kvReplicas must be 1 or 3 (3 needs a 3-node NATS cluster)" }).default(1),
        /** How long audit events stay in FERRY_EVENTS (WatchPlan resume window). */
        eventsMaxAgeDays: z.number().int().min(1).max(3650).default(30),
      })
      .strict()
      .refine((n) => (n.userJwtFile === undefined) === (n.userSeedFile === undefined), {
        error: "set both userJwtFile and userSeedFile, or neither (the broker then mints its own user from busAuthorityFile)",
        path: ["userSeedFile"],
      }),
    /** JSON of bus/auth.ts BusAuthority: mints agent NATS users, signs revocations, pushes account updates. */
    busAuthorityFile: FilePath,
    /** The ferry CA certificate and key: signs agent certificates. */
    ca: z.object({ certFile: FilePath, keyFile: FilePath }).strict(),
    grpc: z
      .object({
        listen: ListenAddress.default("0.0.0.0:7443"),
        /** The gRPC server certificate (role server, from the ferry CA, with the broker's DNS names). */
        certFile: FilePath,
        keyFile: FilePath,
        /** Address agents and ferryctl reach this broker at (shown to admins with enrollment tokens). */
        advertiseAddress: z.string().max(253).optional(),
      })
      .strict(),
    http: z.object({ listen: ListenAddress.default("0.0.0.0:9090") }).strict().default({ listen: "0.0.0.0:9090" }),
    agents: z
      .object({
        /** NATS URLs handed to agents at enrollment; default nats.urls (set this when agents reach NATS through another address). */
        natsUrls: z.array(NatsUrl).min(1).optional(),
        /** A cluster is Unknown (UNREACHABLE) when no heartbeat arrived for this long. */
        heartbeatGraceSeconds: Seconds("heartbeatGraceSeconds", 0.1, 3600).default(30),
        /** Lifetime of agent certificates (and their NATS JWTs). */
        certificateValidityDays: z.number().min(0.01).max(90).default(7),
      })
      .strict()
      .default({ heartbeatGraceSeconds: 30, certificateValidityDays: 7 }),
    leader: z
      .object({
        /** A standby takes over when the lease was not renewed for this long. */
        leaseSeconds: Seconds("leaseSeconds", 0.5, 300).default(15),
        /** How often the leader renews (and a standby checks); default a third of the lease. */
        renewSeconds: Seconds("renewSeconds", 0.1, 100).optional(),
      })
      .strict()
      .default({ leaseSeconds: 15 })
      .refine((l) => l.renewSeconds === undefined || l.renewSeconds * 2 <= l.leaseSeconds, {
        error: "renewSeconds must be at most half of leaseSeconds (the leader needs a second chance to renew)",
        path: ["renewSeconds"],
      }),
    enrollment: z
      .object({
        defaultTokenTtlSeconds: Seconds("defaultTokenTtlSeconds", 1, 86_400).default(3600),
        maxTokenTtlSeconds: Seconds("maxTokenTtlSeconds", 1, 7 * 86_400).default(86_400),
      })
      .strict()
      .default({ defaultTokenTtlSeconds: 3600, maxTokenTtlSeconds: 86_400 }),
    controller: z
      .object({
        /** Broker-wide cap on migrations in flight, every plan together (cluster and plan limits apply on top). */
        maxInFlight: z.int().min(1).max(100_000).default(100),
        /** Timer pass of the reconcile loop (back-off ends, stalls, plan windows); reports trigger passes at once. */
        tickSeconds: Seconds("tickSeconds", 0.05, 60).default(2),
        /** Unchanged task sets are sent to each agent again this often. */
        republishSeconds: Seconds("republishSeconds", 1, 3600).default(30),
        /** Timeout of describe-vm and preflight requests to agents. */
        rpcTimeoutSeconds: Seconds("rpcTimeoutSeconds", 1, 300).default(15),
      })
      .strict()
      .default({ maxInFlight: 100, tickSeconds: 2, republishSeconds: 30, rpcTimeoutSeconds: 15 }),
  })
  .strict();
export type BrokerConfig = z.output<typeof BrokerConfig>;

function sanitizeIdentity(name: string): string {
  const s = name.toLowerCase().replace(/[^a-z0-9.-]/g, "-").replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, "");
  return s.slice(0, 128) || "broker";
}

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: FieldError[] = [],
  ) {
    super(issues.length ? `${message}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}` : message);
    this.name = "ConfigError";
  }
}

type Source = { flag: string; env: string; path: string[]; kind: "string" | "number" | "list" };

/** Environment variables and flags that override the file (flags win). */
export const OVERRIDES: Source[] = [
  { flag: "identity", env: "FERRY_BROKER_IDENTITY", path: ["identity"], kind: "string" },
  { flag: "log-level", env: "FERRY_LOG_LEVEL", path: ["logLevel"], kind: "string" },
  { flag: "nats-url", env: "FERRY_NATS_URLS", path: ["nats", "urls"], kind: "list" },
  { flag: "kv-replicas", env: "FERRY_KV_REPLICAS", path: ["nats", "kvReplicas"], kind: "number" },
  { flag: "grpc-listen", env: "FERRY_GRPC_LISTEN", path: ["grpc", "listen"], kind: "string" },
  { flag: "grpc-advertise", env: "FERRY_GRPC_ADVERTISE", path: ["grpc", "advertiseAddress"], kind: "string" },
  { flag: "http-listen", env: "FERRY_HTTP_LISTEN", path: ["http", "listen"], kind: "string" },
  { flag: "heartbeat-grace", env: "FERRY_HEARTBEAT_GRACE_SECONDS", path: ["agents", "heartbeatGraceSeconds"], kind: "number" },
  { flag: "lease", env: "FERRY_LEADER_LEASE_SECONDS", path: ["leader", "leaseSeconds"], kind: "number" },
];

export const USAGE = `usage: node --import tsx broker/main.ts --config <file> [flags]

flags (each also an environment variable; flags win over env, env over the file):
${OVERRIDES.map((o) => `  --${o.flag.padEnd(16)} ${o.env.padEnd(30)} ${o.path.join(".")}`).join("\n")}
  --help`;

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const key of path.slice(0, -1)) {
    const next = cur[key];
    if (typeof next !== "object" || next === null || Array.isArray(next)) cur[key] = {};
    cur = cur[key] as Record<string, unknown>;
  }
  cur[path[path.length - 1]!] = value;
}

function coerce(src: Source, raw: string | string[]): unknown {
  const values = Array.isArray(raw) ? raw : [raw];
  if (src.kind === "list") return values.flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
  const last = values[values.length - 1]!;
  if (src.kind === "number") {
    const n = Number(last);
    return Number.isFinite(n) && last.trim() !== "" ? n : last; // a non-number fails validation with the field's message
  }
  return last;
}

/** The config file's fields whose value is a file path; resolved relative to the config file. */
function resolvePaths(doc: unknown, baseDir: string): void {
  const visit = (v: unknown) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return;
    const o = v as Record<string, unknown>;
    for (const [k, child] of Object.entries(o)) {
      if (/File$/.test(k) && typeof child === "string" && child !== "" && !isAbsolute(child)) o[k] = resolve(baseDir, child);
      else visit(child);
    }
  };
  visit(doc);
}

export interface LoadedConfig {
  config: BrokerConfig;
  configPath: string;
  help: boolean;
}

/**
 * Read `--config <file>` (YAML or JSON), apply environment variables and flags, validate.
 * Throws ConfigError naming each bad field (with where its value came from).
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, read: (path: string) => string = (p) => readFileSync(p, "utf8")): LoadedConfig {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(OVERRIDES.map((o) => [o.flag, { type: "string" as const, multiple: true }])),
      },
    });
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\n${USAGE}`);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values["help"]) return { config: undefined as unknown as BrokerConfig, configPath: "", help: true };
  const configFlag = values["config"];
  const configPath = typeof configFlag === "string" ? configFlag : env["FERRY_BROKER_CONFIG"];
  if (!configPath) throw new ConfigError(`--config <file> is required (or FERRY_BROKER_CONFIG)\n${USAGE}`);
  const abs = resolve(configPath);
  let text: string;
  try {
    text = read(abs);
  } catch (e) {
    throw new ConfigError(`cannot read config file ${abs}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text) ?? {};
  } catch (e) {
    throw new ConfigError(`config file ${abs} is not valid YAML/JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) throw new ConfigError(`config file ${abs} must hold a mapping (key: value)`);
  resolvePaths(doc, dirname(abs));
  const origin = new Map<string, string>();
  for (const src of OVERRIDES) {
    const fromEnv = env[src.env];
    if (fromEnv !== undefined && fromEnv !== "") {
      setPath(doc as Record<string, unknown>, src.path, coerce(src, fromEnv));
      origin.set(src.path.join("."), `env ${src.env}`);
    }
    const fromFlag = values[src.flag];
    if (Array.isArray(fromFlag) && fromFlag.length > 0) {
      setPath(doc as Record<string, unknown>, src.path, coerce(src, fromFlag));
      origin.set(src.path.join("."), `flag --${src.flag}`);
    }
  }
  const result = parseWith(BrokerConfig, doc);
  if (!result.ok) {
    const issues = result.issues.map((i) => {
      const from = [...origin.entries()].find(([p]) => i.path === p || i.path.startsWith(`${p}[`) || i.path.startsWith(`${p}.`));
      return { ...i, message: `${i.message} (from ${from ? from[1] : abs})` };
    });
    throw new ConfigError(`invalid broker configuration`, issues);
  }
  return { config: result.value, configPath: abs, help: false };
}

// ---------------------------------------------------------------------------------------------
// Secrets named by the config

const Seed = (prefix: string) => z.string().regex(new RegExp(`^S${prefix}[A-Z2-7]{56}$`), { error: `must be an nkey seed starting with S${prefix}` });
const PublicKey = (prefix: string) => z.string().regex(new RegExp(`^${prefix}[A-Z2-7]{55}$`), { error: `must be an nkey public key starting with ${prefix}` });

/** The bus authority file (JSON of bus/auth.ts BusAuthority). */
export const BusAuthorityFile = z
  .object({
    operator: z.object({ publicKey: PublicKey("O"), jwt: z.string().min(1), signingSeed: Seed("O") }),
    system: z.object({ publicKey: PublicKey("A"), seed: Seed("A") }),
    account: z.object({ name: z.string().min(1), publicKey: PublicKey("A"), signingSeed: Seed("A") }),
  })
  .strict();
// The schema and bus/auth.ts's interface must agree both ways.
const _sameAuthority: Same<z.output<typeof BusAuthorityFile>, BusAuthority> = true;
void _sameAuthority;

export interface BrokerSecrets {
  natsTls: { ca: string; cert: string; key: string };
  /** Absent: mint the broker user from the authority. */
  natsUser?: { jwt: string; seed: string };
  authority: BusAuthority;
  ca: CertificateAuthority;
  grpcServer: CertifiedKey;
}

/** Read and check every file the config names. Throws ConfigError naming the field and the file. */
export function loadSecrets(config: BrokerConfig, read: (path: string) => string = (p) => readFileSync(p, "utf8")): BrokerSecrets {
  const issues: FieldError[] = [];
  const file = (field: string, path: string | undefined): string => {
    if (path === undefined) return "";
    try {
      return read(path);
    } catch (e) {
      issues.push({ path: field, message: `cannot read ${path}: ${(e as Error).message}` });
      return "";
    }
  };
  const check = (field: string, fn: () => void) => {
    try {
      fn();
    } catch (e) {
      issues.push({ path: field, message: (e as Error).message });
    }
  };
  const natsTls = { ca: file("nats.caFile", config.nats.caFile), cert: file("nats.certFile", config.nats.certFile), key: file("nats.keyFile", config.nats.keyFile) };
  const caCert = file("ca.certFile", config.ca.certFile);
  const caKey = file("ca.keyFile", config.ca.keyFile);
  const grpcCert = file("grpc.certFile", config.grpc.certFile);
  const grpcKey = file("grpc.keyFile", config.grpc.keyFile);
  const authorityText = file("busAuthorityFile", config.busAuthorityFile);
  const jwt = file("nats.userJwtFile", config.nats.userJwtFile).trim();
  const seed = file("nats.userSeedFile", config.nats.userSeedFile).trim();
  if (issues.length) throw new ConfigError("cannot read the files the broker configuration names", issues);

  check("ca.certFile", () => {
    if (!parseCertificate(caCert, "ca.certFile").ca) throw new Error(`${config.ca.certFile} is not a CA certificate (basicConstraints cA=false)`);
  });
  check("ca.keyFile", () => {
    if (!keyMatchesCertificate(caCert, caKey)) throw new Error(`${config.ca.keyFile} is not the private key of ${config.ca.certFile}`);
  });
  const pair = (field: string, cert: string, key: string) =>
    check(field, () => {
      const chain = verifyChain(cert, caCert);
      if (!chain.ok) throw new Error(`${chain.message}; issue it from the ferry CA in ca.certFile`);
      if (!keyMatchesCertificate(cert, key)) throw new Error("the key file does not belong to the certificate");
    });
  pair("grpc.certFile", grpcCert, grpcKey);
  pair("nats.certFile", natsTls.cert, natsTls.key);
  let authority: BusAuthority | undefined;
  check("busAuthorityFile", () => {
    let json: unknown;
    try {
      json = JSON.parse(authorityText);
    } catch (e) {
      throw new Error(`${config.busAuthorityFile} is not JSON: ${(e as Error).message}`, { cause: e });
    }
    const r = parseWith(BusAuthorityFile, json);
    if (!r.ok) throw new Error(`${config.busAuthorityFile}: ${r.error}`);
    authority = r.value;
  });
  if (config.nats.userSeedFile !== undefined) {
    check("nats.userSeedFile", () => {
      if (!/^SU[A-Z2-7]{56}$/.test(seed)) throw new Error(`${config.nats.userSeedFile} must hold a NATS user nkey seed (SU…)`);
    });
  }
  if (issues.length || !authority) throw new ConfigError("invalid files in the broker configuration", issues);
  const secrets: BrokerSecrets = { natsTls, authority, ca: { certPem: caCert, keyPem: caKey }, grpcServer: { certPem: grpcCert, keyPem: grpcKey } };
  if (config.nats.userJwtFile !== undefined) secrets.natsUser = { jwt, seed };
  return secrets;
}
