// Cluster agent configuration: one zod schema, filled from an optional YAML/JSON file, then
// environment variables, then command-line flags (later wins). The bootstrap token is never a flag
// (it would show in `ps`): it comes from a file or from FERRY_BOOTSTRAP_TOKEN.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { parseWith, type FieldError } from "../proto/issues.js";
import { ClusterName } from "../proto/names.js";

const FilePath = z.string().min(1, { error: "must be a file path" });

/** "host:port" to listen on ("0.0.0.0:9090", "127.0.0.1:0" for a free port). */
const ListenAddress = z.string().regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$/, {
  error: (i) => `listen address ${JSON.stringify(i.input)} must be "host:port", e.g. "0.0.0.0:9090" (port 0 picks a free one)`,
});

/** The broker's gRPC address, "host:port". */
const BrokerAddress = z.string().regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$/, {
  error: (i) => `broker address ${JSON.stringify(i.input)} must be "host:port" of the broker's gRPC API, e.g. "ferry.example.com:7443"`,
});

const NatsUrl = z.string().regex(/^(?:tls|nats):\/\/[^\s/]+:[0-9]{1,5}$/, {
  error: (i) => `NATS URL ${JSON.stringify(i.input)} must be "tls://host:port"`,
});

/** Kubernetes object names (Secret, namespace): DNS-1123. */
const KubeName = (what: string) =>
  z.string().regex(/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/, { error: (i) => `${what} ${JSON.stringify(i.input)} must be a Kubernetes name (lowercase letters, digits, '-', '.')` });

const Seconds = (what: string, min: number, max: number) =>
  z
    .number({ error: `${what} must be a number of seconds` })
    .min(min, { error: `${what} must be at least ${min} seconds` })
    .max(max, { error: `${what} must be at most ${max} seconds` });

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;

/** The in-cluster service-account namespace file (the default namespace of the credentials Secret). */
export const SERVICE_ACCOUNT_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

const TIMING_DEFAULTS = {
  heartbeatSeconds: 5,
  statusSeconds: 30,
  inventorySeconds: 300,
  inventoryDebounceSeconds: 1,
  resyncSeconds: 60,
  reconcileBackoffSeconds: 1,
  reconcileMaxBackoffSeconds: 300,
  reconcileConcurrency: 4,
  vmimReleaseSeconds: 60,
  progressPollSeconds: 5,
};

export const AgentConfig = z
  .object({
    /** This cluster's name at the broker (the name `ferryctl cluster add` enrolled). */
    cluster: ClusterName,
    logLevel: z.enum(LOG_LEVELS).default("info"),
    /** Name of this agent process in logs (the pod name). */
    identity: z.string().min(1).max(253).optional(),
    /** KubeVirt's install namespace: ConfigMaps kubevirt-ca (read) and kubevirt-external-ca (written). */
    kubevirtNamespace: KubeName("kubevirtNamespace").default("kubevirt"),
    kube: z
      .object({
        /** in-cluster: the pod's service account; kubeconfig: the file below. Never guessed (no fall-through to localhost:8080). */
        mode: z.enum(["in-cluster", "kubeconfig"], { error: 'kube.mode must be "in-cluster" or "kubeconfig" (set --in-cluster or --kubeconfig <file>)' }),
        kubeconfigFile: FilePath.optional(),
        /** Context of the kubeconfig; default its current-context. */
        context: z.string().min(1).optional(),
      })
      .strict()
      .refine((k) => k.mode !== "kubeconfig" || k.kubeconfigFile !== undefined, {
        error: "kube.mode kubeconfig needs kube.kubeconfigFile (--kubeconfig <file> or FERRY_KUBECONFIG)",
        path: ["kubeconfigFile"],
      }),
    broker: z
      .object({
        /** gRPC address of the broker (Enroll and RenewCertificate). */
        address: BrokerAddress,
        /** The ferry CA PEM (printed by `ferryctl cluster add`): verifies the broker before the agent has credentials. */
        caFile: FilePath.optional(),
        /** SHA-256 fingerprint of the ferry CA as ferryctl prints it: pinned at enrollment when no caFile is given (the broker must present its CA in its TLS chain). */
        caFingerprint: z
          .string()
          .transform((s) => s.trim().toUpperCase())
          .pipe(z.string().regex(/^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$/, { error: "broker.caFingerprint must be the SHA-256 fingerprint ferryctl printed: 32 hex pairs joined by ':'" }))
          .optional(),
        /** TLS name to check the broker's certificate against when `address` is an IP or differs from the certificate (default: the host of `address`). */
        serverName: z.string().min(1).max(253).optional(),
      })
      .strict(),
    /** Override the NATS URLs the broker hands out at enrollment (e.g. when the agent reaches NATS through another address). */
    natsUrls: z.array(NatsUrl).min(1, { error: "list at least one NATS URL, or leave natsUrls unset to use the broker's" }).optional(),
    credentials: z
      .object({
        /** Kubernetes Secret (in this cluster) that keeps the issued certificate, key, CA, NATS JWT and seed. */
        secretName: KubeName("credentials.secretName").default("ferry-agent-credentials"),
        /** Its namespace; default the pod's namespace (in-cluster) or ferry-system. */
        namespace: KubeName("credentials.namespace").optional(),
        /** Renew when this fraction of the certificate's lifetime has passed. */
        renewAtFraction: z.number().min(0.1, { error: "credentials.renewAtFraction must be between 0.1 and 0.95" }).max(0.95, { error: "credentials.renewAtFraction must be between 0.1 and 0.95" }).default(2 / 3),
      })
      .strict()
      .default({ secretName: "ferry-agent-credentials", renewAtFraction: 2 / 3 }),
    bootstrap: z
      .object({
        /** File holding the single-use enrollment token (a mounted Secret). Needed only until the credentials Secret exists. */
        tokenFile: FilePath.optional(),
        /** The token itself (from FERRY_BOOTSTRAP_TOKEN; not settable by flag). */
        token: z.string().min(1).optional(),
      })
      .strict()
      .default({}),
    http: z.object({ listen: ListenAddress.default("0.0.0.0:9090") }).strict().default({ listen: "0.0.0.0:9090" }),
    timings: z
      .object({
        heartbeatSeconds: Seconds("timings.heartbeatSeconds", 0.05, 300).default(TIMING_DEFAULTS.heartbeatSeconds),
        /** Status is published on every change and at least this often. */
        statusSeconds: Seconds("timings.statusSeconds", 0.05, 3600).default(TIMING_DEFAULTS.statusSeconds),
        /** Inventory is published on change (debounced) and at least this often. */
        inventorySeconds: Seconds("timings.inventorySeconds", 0.1, 86_400).default(TIMING_DEFAULTS.inventorySeconds),
        inventoryDebounceSeconds: Seconds("timings.inventoryDebounceSeconds", 0, 60).default(TIMING_DEFAULTS.inventoryDebounceSeconds),
        /** Every task is reconciled at least this often even without events. */
        resyncSeconds: Seconds("timings.resyncSeconds", 0.05, 3600).default(TIMING_DEFAULTS.resyncSeconds),
        reconcileBackoffSeconds: Seconds("timings.reconcileBackoffSeconds", 0.001, 60).default(TIMING_DEFAULTS.reconcileBackoffSeconds),
        reconcileMaxBackoffSeconds: Seconds("timings.reconcileMaxBackoffSeconds", 0.01, 3600).default(TIMING_DEFAULTS.reconcileMaxBackoffSeconds),
        reconcileConcurrency: z.int().min(1).max(64).default(TIMING_DEFAULTS.reconcileConcurrency),
        /** A VMIM ferry deleted that KubeVirt still holds after this long (and whose copy never started) has its finalizers lifted. */
        vmimReleaseSeconds: Seconds("timings.vmimReleaseSeconds", 1, 86_400).default(TIMING_DEFAULTS.vmimReleaseSeconds),
        /** While a live migration copies, its progress is read from virt-handler's metrics this often (virt-handler samples every 5 s). */
        progressPollSeconds: Seconds("timings.progressPollSeconds", 0.05, 300).default(TIMING_DEFAULTS.progressPollSeconds),
      })
      .strict()
      .default(TIMING_DEFAULTS),
  })
  .strict();
export type AgentConfig = z.output<typeof AgentConfig>;
/** What a caller (tests, the stack harness) writes: defaults may be left out. */
export type AgentConfigInput = z.input<typeof AgentConfig>;

export class ConfigError extends Error {
  constructor(
    message: string,
    readonly issues: FieldError[] = [],
    /** A usage error (unknown flag, missing required setting): exit code 2. */
    readonly usage = false,
  ) {
    super(issues.length ? `${message}:\n${issues.map((i) => `  ${i.path}: ${i.message}`).join("\n")}` : message);
    this.name = "ConfigError";
  }
}

type Kind = "string" | "number" | "list" | "boolean";
interface Source {
  flag?: string;
  env: string;
  /** Other environment names read the same way (older or chart spellings); `env` wins over them. */
  aliases?: string[];
  path: string[];
  kind: Kind;
  help: string;
}

/** Environment variables and flags that override the file (flags win). */
export const OVERRIDES: Source[] = [
  { flag: "cluster", env: "FERRY_CLUSTER", aliases: ["FERRY_CLUSTER_NAME"], path: ["cluster"], kind: "string", help: "this cluster's name at the broker" },
  { flag: "identity", env: "FERRY_AGENT_IDENTITY", path: ["identity"], kind: "string", help: "name of this process in logs (the pod name)" },
  { flag: "kube-mode", env: "FERRY_KUBE_MODE", path: ["kube", "mode"], kind: "string", help: "in-cluster | kubeconfig" },
  { flag: "kubeconfig", env: "FERRY_KUBECONFIG", path: ["kube", "kubeconfigFile"], kind: "string", help: "kubeconfig file (sets kube.mode=kubeconfig)" },
  { flag: "context", env: "FERRY_KUBE_CONTEXT", path: ["kube", "context"], kind: "string", help: "kubeconfig context (default: current-context)" },
  { flag: "in-cluster", env: "FERRY_IN_CLUSTER", path: ["kube", "mode"], kind: "boolean", help: "use the pod's service account (= --kube-mode in-cluster)" },
  { flag: "kubevirt-namespace", env: "FERRY_KUBEVIRT_NAMESPACE", path: ["kubevirtNamespace"], kind: "string", help: "KubeVirt's install namespace (default kubevirt)" },
  { flag: "broker", env: "FERRY_BROKER_ADDRESS", path: ["broker", "address"], kind: "string", help: "broker gRPC address host:port (enrollment, renewal)" },
  { flag: "broker-ca-file", env: "FERRY_BROKER_CA_FILE", path: ["broker", "caFile"], kind: "string", help: "ferry CA PEM to verify the broker at first enrollment" },
  { flag: "broker-ca-fingerprint", env: "FERRY_BROKER_CA_FINGERPRINT", path: ["broker", "caFingerprint"], kind: "string", help: "SHA-256 of the ferry CA (AA:BB:…) pinned at enrollment" },
  { flag: "broker-server-name", env: "FERRY_BROKER_SERVER_NAME", path: ["broker", "serverName"], kind: "string", help: "TLS name of the broker's certificate (default: host of --broker)" },
  { flag: "nats-url", env: "FERRY_NATS_URLS", path: ["natsUrls"], kind: "list", help: "NATS URLs (repeat or comma list; default: the broker's)" },
  { flag: "credentials-secret", env: "FERRY_CREDENTIALS_SECRET", path: ["credentials", "secretName"], kind: "string", help: "Secret keeping the issued credentials" },
  { flag: "namespace", env: "FERRY_NAMESPACE", aliases: ["FERRY_CREDENTIALS_NAMESPACE"], path: ["credentials", "namespace"], kind: "string", help: "namespace of that Secret (default: the pod's, else ferry-system)" },
  { flag: "bootstrap-token-file", env: "FERRY_BOOTSTRAP_TOKEN_FILE", path: ["bootstrap", "tokenFile"], kind: "string", help: "file with the enrollment token (first start only)" },
  { env: "FERRY_BOOTSTRAP_TOKEN", path: ["bootstrap", "token"], kind: "string", help: "the enrollment token itself (env only)" },
  { flag: "http-listen", env: "FERRY_HTTP_LISTEN", path: ["http", "listen"], kind: "string", help: "/healthz /readyz /metrics listen address" },
  { flag: "log-level", env: "FERRY_LOG_LEVEL", path: ["logLevel"], kind: "string", help: LOG_LEVELS.join("|") },
  { flag: "heartbeat-seconds", env: "FERRY_HEARTBEAT_SECONDS", path: ["timings", "heartbeatSeconds"], kind: "number", help: "heartbeat interval" },
  { flag: "resync-seconds", env: "FERRY_RESYNC_SECONDS", path: ["timings", "resyncSeconds"], kind: "number", help: "periodic reconcile of every task" },
];

export const USAGE = `usage: npm run agent -- [--config <file>] [flags]
       node --import tsx cluster-agent/main.ts [--config <file>] [flags]

The ferry cluster agent: enrolls with the broker on first start (bootstrap token), keeps its
credentials in a Kubernetes Secret, reports inventory and status over NATS, executes tasks.

  --config <file>              FERRY_AGENT_CONFIG             YAML/JSON file (every field; see cluster-agent/README.md)
${OVERRIDES.map((o) => `  ${(o.flag ? `--${o.flag}${o.kind === "boolean" ? "" : " <v>"}` : "").padEnd(28)} ${o.env.padEnd(30)} ${o.help}${o.aliases ? ` (also ${o.aliases.join(", ")})` : ""}`).join("\n")}
  --help

Flags win over environment variables, which win over the file. Exit codes: 0 after SIGTERM/SIGINT,
1 on a fatal error (bad credentials, refused token), 2 on a usage error.`;

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

const TRUE = /^(1|true|yes|on)$/i;
const FALSE = /^(0|false|no|off)?$/i;

export interface LoadedConfig {
  config: AgentConfig;
  configPath?: string;
  help: boolean;
}

export interface LoadOptions {
  read?: (path: string) => string;
  /** Reads the service-account namespace file (default: the real file; undefined if absent). */
  podNamespace?: () => string | undefined;
}

function readPodNamespace(): string | undefined {
  try {
    return readFileSync(SERVICE_ACCOUNT_NAMESPACE_FILE, "utf8").trim() || undefined;
  } catch {
    return undefined;
  }
}

/**
 * Parse flags (node:util parseArgs), read the optional `--config` file, apply environment
 * variables and flags, validate. Throws ConfigError naming each bad field, where its value came
 * from and the fix.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, opts: LoadOptions = {}): LoadedConfig {
  const read = opts.read ?? ((p: string) => readFileSync(p, "utf8"));
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: false,
      strict: true,
      options: {
        config: { type: "string", short: "c" },
        help: { type: "boolean", short: "h" },
        ...Object.fromEntries(OVERRIDES.filter((o) => o.flag).map((o) => [o.flag!, o.kind === "boolean" ? { type: "boolean" as const } : { type: "string" as const, multiple: true }])),
      },
    });
  } catch (e) {
    throw new ConfigError(`${(e as Error).message}\n\n${USAGE}`, [], true);
  }
  const values = parsed.values as Record<string, string | string[] | boolean | undefined>;
  if (values["help"]) return { config: undefined as unknown as AgentConfig, help: true };

  const configFlag = values["config"];
  const configPath = typeof configFlag === "string" ? configFlag : env["FERRY_AGENT_CONFIG"] || undefined;
  let doc: Record<string, unknown> = {};
  let abs: string | undefined;
  if (configPath) {
    abs = resolve(configPath);
    let text: string;
    try {
      text = read(abs);
    } catch (e) {
      throw new ConfigError(`cannot read config file ${abs}: ${(e as Error).message}; check --config / FERRY_AGENT_CONFIG`);
    }
    let raw: unknown;
    try {
      raw = parseYaml(text) ?? {};
    } catch (e) {
      throw new ConfigError(`config file ${abs} is not valid YAML/JSON: ${(e as Error).message}`);
    }
    if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError(`config file ${abs} must hold a mapping (key: value)`);
    doc = raw as Record<string, unknown>;
    resolvePaths(doc, dirname(abs));
  }

  const origin = new Map<string, string>();
  const apply = (src: Source, value: unknown, from: string) => {
    if (src.kind === "boolean") {
      // --in-cluster is the only boolean: it selects the mode.
      if (value === true) setPath(doc, src.path, "in-cluster");
      else return;
    } else {
      setPath(doc, src.path, value);
      if (src.flag === "kubeconfig") setPath(doc, ["kube", "mode"], "kubeconfig");
    }
    origin.set(src.path.join("."), from);
    if (src.flag === "kubeconfig") origin.set("kube.mode", from);
  };
  for (const src of OVERRIDES) {
    const name = [src.env, ...(src.aliases ?? [])].find((n) => env[n] !== undefined && env[n] !== "") ?? src.env;
    const fromEnv = env[name];
    if (fromEnv !== undefined && fromEnv !== "") {
      if (src.kind === "boolean") {
        if (TRUE.test(fromEnv)) apply(src, true, `env ${name}`);
        else if (!FALSE.test(fromEnv)) throw new ConfigError(`env ${name}=${JSON.stringify(fromEnv)} must be true or false`, [], true);
      } else {
        apply(src, coerce(src, fromEnv), `env ${name}`);
      }
    }
    const fromFlag = src.flag ? values[src.flag] : undefined;
    if (fromFlag === true) apply(src, true, `flag --${src.flag}`);
    else if (Array.isArray(fromFlag) && fromFlag.length > 0) apply(src, coerce(src, fromFlag), `flag --${src.flag}`);
  }
  const kube = doc["kube"] as Record<string, unknown> | undefined;
  if (values["in-cluster"] === true && (values["kubeconfig"] !== undefined || values["kube-mode"] !== undefined)) {
    throw new ConfigError("--in-cluster excludes --kubeconfig and --kube-mode: pick one", [], true);
  }
  if (kube?.["mode"] === undefined && kube?.["kubeconfigFile"] !== undefined) kube["mode"] = "kubeconfig";
  // Missing essentials are usage errors with the flag to set.
  const missing: string[] = [];
  if (doc["cluster"] === undefined) missing.push("--cluster <name> (or FERRY_CLUSTER, or cluster: in the file)");
  if (kube?.["mode"] === undefined) missing.push("--in-cluster or --kubeconfig <file> (or FERRY_IN_CLUSTER=true / FERRY_KUBECONFIG, or kube.mode in the file)");
  if ((doc["broker"] as Record<string, unknown> | undefined)?.["address"] === undefined) missing.push("--broker <host:port> (or FERRY_BROKER_ADDRESS, or broker.address in the file)");
  if (missing.length) throw new ConfigError(`missing required settings:\n${missing.map((m) => `  ${m}`).join("\n")}\n\n${USAGE}`, [], true);

  const result = parseWith(AgentConfig, doc);
  if (!result.ok) {
    const issues = result.issues.map((i) => {
      const from = [...origin.entries()].find(([p]) => i.path === p || i.path.startsWith(`${p}[`) || i.path.startsWith(`${p}.`));
      return { ...i, message: `${i.message} (from ${from ? from[1] : (abs ?? "defaults")})` };
    });
    throw new ConfigError("invalid agent configuration", issues);
  }
  const config = result.value;
  if (config.credentials.namespace === undefined) {
    const podNs = config.kube.mode === "in-cluster" ? (opts.podNamespace ?? readPodNamespace)() : undefined;
    config.credentials.namespace = podNs ?? "ferry-system";
  }
  return abs ? { config, configPath: abs, help: false } : { config, help: false };
}

/** The bootstrap token: FERRY_BOOTSTRAP_TOKEN / bootstrap.token, else the file; undefined if neither is set. */
export function readBootstrapToken(config: AgentConfig, read: (path: string) => string = (p) => readFileSync(p, "utf8")): string | undefined {
  if (config.bootstrap.token) return config.bootstrap.token.trim();
  if (!config.bootstrap.tokenFile) return undefined;
  let text: string;
  try {
    text = read(config.bootstrap.tokenFile);
  } catch (e) {
    throw new ConfigError(`bootstrap.tokenFile: cannot read ${config.bootstrap.tokenFile}: ${(e as Error).message}; mount the enrollment token Secret there or fix --bootstrap-token-file`);
  }
  const token = text.trim();
  if (!token) throw new ConfigError(`bootstrap.tokenFile: ${config.bootstrap.tokenFile} is empty; put the token \`ferryctl cluster add\` printed in it`);
  return token;
}
