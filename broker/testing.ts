// Test harness for the broker, reused by the agent, controller, ferryctl and e2e suites:
//
//   const env = await startBrokerEnv();                 // nats-server + ferry CA + broker config files
//   const b = await env.startProcess("broker-0");       // a real broker process (or env.startInProcess)
//   const admin = await env.adminClients(b.grpcAddress); // grpc-js clients with an admin certificate
//   await call(admin.clusters, "listClusters", { pageSize: 0, pageToken: "" });
//   const agent = await env.enrollAgent(admin, "east"); // token → CSR → certificate + NATS JWT
//   const bus = await connectBus({ ...agent.bus, logger });
//   ...
//   await env.stop();
//
// Everything is real: nats-server processes (bus/nats-server.ts), certificates from a fresh CA,
// broker processes started with `node --import tsx broker/main.ts --config <file>`.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { credentials as grpcCredentials, Metadata, type CallOptions, type ChannelCredentials, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { createUser } from "@nats-io/nkeys";
import { pino, type Logger } from "pino";
import { stringify as toYaml } from "yaml";
import { agentInboxPrefix, freePort, mintBrokerUser, startNats, type BusCredentials, type NatsHarness, type StartNatsOptions } from "../bus/index.js";
import { createCsr, generateRsaKeyPair, issueCertificate, publicKeyOf, type CertificateAuthority, type CertifiedKey } from "../pki/index.js";
import { BUS_API_VERSION, type Heartbeat, type Hello, type Inventory, type Status } from "../proto/bus/index.js";
import { ClusterServiceClient, type AgentCredentials } from "../proto/gen/ferry/v1/clusters.js";
import { MigrationServiceClient } from "../proto/gen/ferry/v1/migrations.js";
import { PlanServiceClient } from "../proto/gen/ferry/v1/plans.js";
import { startBroker, type ControllerFactory, type RunningBroker } from "./broker.js";
import { loadConfig, loadSecrets } from "./config.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");

type UnaryFn<Q, R> = (request: Q, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: R) => void) => ClientUnaryCall;
type RequestOf<F> = F extends UnaryFn<infer Q, infer _R> ? Q : never;
type ResponseOf<F> = F extends UnaryFn<infer _Q, infer R> ? R : never;

/**
 * Call a generated unary method as a promise: `await call(admin.clusters, "getCluster", { name })`.
 * Rejects with the grpc-js ServiceError (`code`, `details`, `metadata` for `readStatusDetails`).
 */
export function call<C extends object, K extends keyof C & string>(
  client: C,
  method: K,
  request: RequestOf<C[K]>,
  opts: { metadata?: Metadata; deadlineMs?: number } = {},
): Promise<ResponseOf<C[K]>> {
  const fn = client[method] as unknown as UnaryFn<RequestOf<C[K]>, ResponseOf<C[K]>>;
  const options: Partial<CallOptions> = opts.deadlineMs !== undefined ? { deadline: Date.now() + opts.deadlineMs } : {};
  return new Promise((resolve, reject) => fn.call(client, request, opts.metadata ?? new Metadata(), options, (err, res) => (err ? reject(err) : resolve(res))));
}

export interface BrokerClients {
  clusters: ClusterServiceClient;
  plans: PlanServiceClient;
  migrations: MigrationServiceClient;
  close(): void;
}

/** Overrides merged into the generated config file (same shape as the file). */
export type ConfigOverrides = Record<string, unknown>;

export interface BrokerProcess {
  identity: string;
  /** "127.0.0.1:<port>" (stable across restarts). */
  grpcAddress: string;
  httpPort: number;
  configPath: string;
  logPath: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** Resolves with the exit code (or signal) once the process has exited. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
  /** SIGTERM and wait (clean shutdown). */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Start the same broker again (same identity, ports and config). */
  restart(): Promise<void>;
  /** Parsed JSON log lines so far. */
  logs(): Record<string, unknown>[];
}

export interface EnrolledAgent {
  cluster: string;
  credentials: AgentCredentials;
  keyPem: string;
  /** NATS user nkey seed (never sent to the broker). */
  seed: string;
  /** Ready for `connectBus`. */
  bus: BusCredentials;
}

export interface BrokerEnv {
  nats: NatsHarness;
  ca: CertificateAuthority;
  dir: string;
  /** The broker's gRPC server certificate (localhost, 127.0.0.1). */
  serverCertificate: CertifiedKey;
  /** Write a config file for `identity` (fresh free ports unless given in overrides). */
  writeConfig(identity: string, overrides?: ConfigOverrides): Promise<{ path: string; grpcAddress: string; httpPort: number }>;
  startProcess(identity: string, overrides?: ConfigOverrides): Promise<BrokerProcess>;
  startInProcess(identity: string, overrides?: ConfigOverrides, opts?: { logger?: Logger; controller?: ControllerFactory }): Promise<RunningBroker & { grpcAddress: string }>;
  /** TLS channel credentials with a client certificate (admin `name` by default), or none (`null`: like an agent before enrollment). */
  channelCredentials(identity?: { role: "admin"; name: string } | { role: "agent"; cluster: string } | null): Promise<ChannelCredentials>;
  /** Admin clients of the broker at `address`. */
  adminClients(address: string, name?: string): Promise<BrokerClients>;
  clients(address: string, creds: ChannelCredentials): BrokerClients;
  /** Token (as admin) → CSR + nkey → Enroll (without a client certificate). */
  enrollAgent(address: string, cluster: string): Promise<EnrolledAgent>;
  /** Enroll with an existing token. */
  enrollWithToken(address: string, cluster: string, token: string, opts?: { freshKey?: boolean }): Promise<EnrolledAgent>;
  /**
   * An RSA key shared by the test agents of this env (RSA key generation costs ~0.5 s on a small
   * machine); the CA signs whatever key a CSR carries, so sharing it changes nothing else.
   */
  testKey(): Promise<string>;
  stop(): Promise<void>;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b) ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** The harness's server certificate names localhost and 127.0.0.1; verify by name (no TLS SNI with an IP address). */
const CHANNEL_OPTIONS = { "grpc.ssl_target_name_override": "localhost", "grpc.default_authority": "localhost" };

function clientsOf(address: string, creds: ChannelCredentials): BrokerClients {
  const clusters = new ClusterServiceClient(address, creds, CHANNEL_OPTIONS);
  const plans = new PlanServiceClient(address, creds, CHANNEL_OPTIONS);
  const migrations = new MigrationServiceClient(address, creds, CHANNEL_OPTIONS);
  return {
    clusters,
    plans,
    migrations,
    close: () => {
      clusters.close();
      plans.close();
      migrations.close();
    },
  };
}

const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of liveChildren) c.kill("SIGKILL");
});

/**
 * A nats-server (1 node unless `nats.nodes: 3`), the ferry CA it trusts, and broker config
 * files against it. `stop()` stops every broker process it started and NATS.
 */
export async function startBrokerEnv(opts: { nats?: StartNatsOptions } = {}): Promise<BrokerEnv> {
  const nats = await startNats(opts.nats ?? {});
  const ca = nats.ca;
  const dir = mkdtempSync(join(tmpdir(), "ferry-broker-"));
  let sharedKey: Promise<string> | undefined;
  const testKey = () => (sharedKey ??= generateRsaKeyPair(2048).then((k) => k.privateKeyPem));
  const keyPem = await testKey();
  const serverCertificate = { certPem: issueCertificate(ca, { role: "server", name: "broker" }, publicKeyOf(keyPem), { dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }), keyPem };
  const natsClient = await nats.clientCertificate({ role: "broker", name: "broker" });
  const brokerUser = await mintBrokerUser(nats.authority);
  const file = (name: string, content: string, mode = 0o644) => {
    const p = join(dir, name);
    writeFileSync(p, content, { mode });
    return p;
  };
  const files = {
    ca: file("ca.crt", ca.certPem),
    caKey: file("ca.key", ca.keyPem, 0o600),
    grpcCert: file("grpc.crt", serverCertificate.certPem),
    grpcKey: file("grpc.key", serverCertificate.keyPem, 0o600),
    natsCert: file("nats-client.crt", natsClient.certPem),
    natsKey: file("nats-client.key", natsClient.keyPem, 0o600),
    jwt: file("broker.jwt", brokerUser.jwt, 0o600),
    seed: file("broker.nk", brokerUser.seed!, 0o600),
    authority: file("bus-authority.json", JSON.stringify(nats.authority, null, 2), 0o600),
  };
  const certs = new Map<string, Promise<CertifiedKey>>();
  const clientCert = (identity: { role: "admin"; name: string } | { role: "agent"; cluster: string }) => {
    const key = JSON.stringify(identity);
    let p = certs.get(key);
    if (!p) certs.set(key, (p = testKey().then((k) => ({ certPem: issueCertificate(ca, identity, publicKeyOf(k)), keyPem: k }))));
    return p;
  };
  const processes = new Set<BrokerProcess>();
  const inProcess = new Set<RunningBroker>();

  const writeConfig: BrokerEnv["writeConfig"] = async (identity, overrides = {}) => {
    const grpcPort = await freePort();
    const httpPort = await freePort();
    const base = {
      identity,
      logLevel: "info",
      nats: { urls: nats.urls, caFile: files.ca, certFile: files.natsCert, keyFile: files.natsKey, userJwtFile: files.jwt, userSeedFile: files.seed, kvReplicas: opts.nats?.nodes === 3 ? 3 : 1 },
      busAuthorityFile: files.authority,
      ca: { certFile: files.ca, keyFile: files.caKey },
      grpc: { listen: `127.0.0.1:${grpcPort}`, certFile: files.grpcCert, keyFile: files.grpcKey, advertiseAddress: `127.0.0.1:${grpcPort}` },
      http: { listen: `127.0.0.1:${httpPort}` },
      agents: { heartbeatGraceSeconds: 30 },
      leader: { leaseSeconds: 3, renewSeconds: 0.5 },
    };
    const config = deepMerge(base, overrides) as typeof base;
    const path = join(dir, `${identity}.yaml`);
    writeFileSync(path, toYaml(config));
    const grpcAddress = config.grpc.listen;
    return { path, grpcAddress, httpPort: Number(config.http.listen.split(":").pop()) };
  };

  const startProcess: BrokerEnv["startProcess"] = async (identity, overrides = {}) => {
    const written = await writeConfig(identity, overrides);
    const logPath = join(dir, `${identity}.log`);
    let child: ChildProcess | undefined;
    let exited!: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    const launch = async () => {
      const fd = openSync(logPath, "a");
      child = spawn(process.execPath, ["--import", "tsx", join(REPO, "broker/main.ts"), "--config", written.path], {
        cwd: REPO,
        stdio: ["ignore", fd, fd],
        env: { ...process.env, FERRY_LOG_LEVEL: process.env["FERRY_TEST_BROKER_LOG_LEVEL"] ?? "info" },
      });
      closeSync(fd);
      const c = child;
      liveChildren.add(c);
      exited = new Promise((resolve) =>
        c.once("exit", (code, signal) => {
          liveChildren.delete(c);
          resolve({ code, signal });
        }),
      );
      // Started = /healthz answers (the HTTP server starts last, after gRPC).
      const deadline = Date.now() + 60_000;
      for (;;) {
        const up = await fetch(`http://127.0.0.1:${written.httpPort}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
          (r) => r.status === 200,
          () => false,
        );
        if (up) return;
        if (c.exitCode !== null || c.signalCode !== null) throw new Error(`broker ${identity} exited during start-up:\n${tail()}`);
        if (Date.now() > deadline) throw new Error(`broker ${identity} did not start within 60 s:\n${tail()}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const readLog = (): Record<string, unknown>[] => {
      let text: string;
      try {
        text = readFileSync(logPath, "utf8");
      } catch {
        return [];
      }
      return text
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .flatMap((l) => {
          try {
            return [JSON.parse(l) as Record<string, unknown>];
          } catch {
            return [];
          }
        });
    };
    const tail = () => {
      try {
        return readFileSync(logPath, "utf8").split("\n").slice(-30).join("\n");
      } catch {
        return "(no log)";
      }
    };
    await launch();
    const proc: BrokerProcess = {
      identity,
      grpcAddress: written.grpcAddress,
      httpPort: written.httpPort,
      configPath: written.path,
      logPath,
      get pid() {
        return child?.pid;
      },
      get running() {
        return child !== undefined && child.exitCode === null && child.signalCode === null;
      },
      get exited() {
        return exited;
      },
      async kill() {
        if (proc.running) child!.kill("SIGKILL");
        await exited;
      },
      async stop() {
        if (proc.running) child!.kill("SIGTERM");
        const t = setTimeout(() => child?.kill("SIGKILL"), 20_000);
        const r = await exited;
        clearTimeout(t);
        return r;
      },
      async restart() {
        if (proc.running) await proc.stop();
        await launch();
      },
      logs: readLog,
    };
    processes.add(proc);
    return proc;
  };

  const startInProcess: BrokerEnv["startInProcess"] = async (identity, overrides = {}, o = {}) => {
    const written = await writeConfig(identity, overrides);
    const { config } = loadConfig(["--config", written.path], {});
    const secrets = loadSecrets(config);
    const broker = await startBroker(config, secrets, {
      logger: o.logger ?? pino({ level: process.env["FERRY_TEST_BROKER_LOG_LEVEL"] ?? "silent", base: { identity } }),
      ...(o.controller ? { controller: o.controller } : {}),
    });
    inProcess.add(broker);
    return Object.assign(broker, { grpcAddress: `127.0.0.1:${broker.grpcPort}` });
  };

  const channelCredentials: BrokerEnv["channelCredentials"] = async (identity = { role: "admin", name: "admin" }) => {
    if (identity === null) return grpcCredentials.createSsl(Buffer.from(ca.certPem));
    const c = await clientCert(identity);
    return grpcCredentials.createSsl(Buffer.from(ca.certPem), Buffer.from(c.keyPem), Buffer.from(c.certPem));
  };

  const enrollWithToken: BrokerEnv["enrollWithToken"] = async (address, cluster, token, o = {}) => {
    const anonymous = clientsOf(address, await channelCredentials(null));
    try {
      const keys = { privateKeyPem: o.freshKey ? (await generateRsaKeyPair(2048)).privateKeyPem : await testKey() };
      const nkey = createUser();
      const seed = new TextDecoder().decode(nkey.getSeed());
      const res = await call(anonymous.clusters, "enroll", {
        token,
        csrPem: createCsr(keys.privateKeyPem, { role: "agent", cluster }),
        natsUserPublicKey: nkey.getPublicKey(),
      });
      const creds = res.credentials!;
      return {
        cluster,
        credentials: creds,
        keyPem: keys.privateKeyPem,
        seed,
        bus: {
          servers: creds.natsUrls,
          tls: { ca: creds.caPem, cert: creds.certificateChainPem, key: keys.privateKeyPem },
          jwt: creds.natsUserJwt,
          seed,
          inboxPrefix: agentInboxPrefix(cluster),
          name: `agent-${cluster}`,
        },
      };
    } finally {
      anonymous.close();
    }
  };

  const env: BrokerEnv = {
    nats,
    ca,
    dir,
    serverCertificate,
    writeConfig,
    startProcess,
    startInProcess,
    channelCredentials,
    clients: clientsOf,
    async adminClients(address, name = "admin") {
      return clientsOf(address, await channelCredentials({ role: "admin", name }));
    },
    enrollWithToken,
    testKey,
    async enrollAgent(address, cluster) {
      const admin = await env.adminClients(address);
      try {
        const { token } = await call(admin.clusters, "createEnrollmentToken", { clusterName: cluster, ttl: undefined });
        return await enrollWithToken(address, cluster, token);
      } finally {
        admin.close();
      }
    },
    async stop() {
      await Promise.all([...inProcess].map((b) => b.stop().catch(() => undefined)));
      await Promise.all([...processes].map((p) => p.stop().catch(() => undefined)));
      await nats.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  return env;
}

/**
 * Valid agent reports for tests, with an agent's (epoch, seq) counter: every call takes the next
 * seq, like a real agent. `at(seq)` builds one at an explicit position (stale-report tests).
 */
export function agentReports(cluster: string, opts: { epoch?: number; caPem: string; agentVersion?: string }) {
  let epoch = opts.epoch ?? Date.now();
  let seq = 0;
  const head = <K extends string>(kind: K, s?: number) => ({ apiVersion: BUS_API_VERSION as typeof BUS_API_VERSION, kind, cluster, epoch, seq: s ?? ++seq });
  const now = () => new Date().toISOString();
  return {
    get epoch() {
      return epoch;
    },
    /** A restarted agent: new epoch, seq from 1. */
    restart(next = epoch + 1) {
      epoch = next;
      seq = 0;
    },
    hello: (s?: number): Hello => ({
      ...head("Hello", s),
      agentVersion: opts.agentVersion ?? "0.1.0-test",
      capabilities: ["decentralized-live-migration"],
      caBundle: opts.caPem,
      synchronizationAddresses: [`sync.${cluster}.example:9185`],
      lastTaskSetGeneration: 0,
    }),
    heartbeat: (s?: number): Heartbeat => ({ ...head("Heartbeat", s), time: now(), health: { kubernetesApi: true, watches: true, tasks: 0 } }),
    status: (generation = 0, s?: number): Status => ({ ...head("Status", s), taskSetGeneration: generation, observedAt: now(), trust: [], tasks: [] }),
    inventory: (s?: number): Inventory => ({
      ...head("Inventory", s),
      observedAt: now(),
      kubevirt: {
        version: "v1.8.2",
        featureGates: { enabled: ["DecentralizedLiveMigration"], disabled: [] },
        decentralizedLiveMigration: true,
        synchronizationAddresses: [`sync.${cluster}.example:9185`],
        caBundle: opts.caPem,
        migrations: { parallelMigrationsPerCluster: 5, parallelOutboundMigrationsPerNode: 2, bandwidthPerMigration: 0, progressTimeout: 150, completionTimeoutPerGiB: 150 },
        workloadUpdateMethods: ["LiveMigrate"],
        vmRolloutStrategy: "LiveUpdate",
      },
      storageClasses: [{ name: "standard", provisioner: "csi.example", volumeBindingMode: "WaitForFirstConsumer", isDefault: true }],
      networks: [],
      nodes: [
        { name: "node-a", architecture: "amd64", schedulable: true, allocatableMemoryBytes: 64 * 2 ** 30 },
        { name: "node-b", architecture: "amd64", schedulable: true, allocatableMemoryBytes: 64 * 2 ** 30 },
      ],
      namespaces: ["default"],
      vms: [],
    }),
  };
}
