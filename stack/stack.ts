// The embedded stack: everything ferry needs on one machine, for `npm run ferry -- up`, the demo and
// the e2e suites.
//
//   nats-server (JetStream, mTLS, operator/JWT auth)      bus/nats-server.ts via broker/testing.ts
//   1 or 2 broker processes (active/standby)              broker/testing.ts startBrokerEnv().startProcess
//   simulated clusters, in this process                   sim/world.ts startWorld
//   one agent process per cluster, enrolled for real      startAgentProcess (below)
//   admin certificate + ferryctl.yaml                     writeFerryctlConfig (below)
//
// The simulated clusters run in-process (not as `npm run sim` child): callers get the World
// handle (clock, control client, fault hooks) without a second discovery step, start-up is one
// await, and shutdown is ordered. Everything whose death a test wants to cause (brokers, agents,
// NATS) is a separate process; the sim stands in for Kubernetes, which ferry never kills.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, copyFileSync, mkdirSync, openSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { CoreV1Api } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { stringify as toYaml } from "yaml";
import { freePort } from "../bus/index.js";
import { call, startBrokerEnv, type BrokerClients, type BrokerEnv, type BrokerProcess, type ConfigOverrides } from "../broker/testing.js";
import { issueCertificate, publicKeyOf } from "../pki/index.js";
import { ClusterState, type Cluster } from "../proto/gen/ferry/v1/clusters.js";
import { loadScenarioFile, type ScenarioInput } from "../sim/scenario.js";
import { baseScenario, demoScenario } from "./scenarios.js";
import { kubeConfig } from "../sim/testing.js";
import { startWorld, type World } from "../sim/world.js";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");

/** Namespace of each agent's credentials Secret (the agent's default outside a pod). */
export const AGENT_NAMESPACE = "ferry-system";

export interface StackOptions {
  /** Cluster names (DNS-1123 labels), e.g. ["east", "west"]. */
  clusters: string[];
  /** Where kubeconfigs, ferryctl.yaml, certificates and logs go (created; existing files overwritten). */
  dir: string;
  /**
   * What the clusters hold: a sim scenario YAML file path, an object in that format, "base" (the
   * default: nodes, storage classes, KubeVirt, no VMs), "demo" (base + running VMs), or the sim's
   * own "default" / "empty" (nothing at all: no nodes, no KubeVirt; agents will report that).
   */
  scenario?: string | ScenarioInput;
  /** Broker replicas (active/standby). Default 1. */
  brokers?: 1 | 2;
  /** Simulated seconds per real second (sim clock). Default 1. */
  timeScale?: number;
  /** Start and enroll the agents (default true). false: clusters stay PendingEnrollment; tokens are in `tokens`. */
  agents?: boolean;
  /** Merged into every broker config file (same shape as the file), e.g. {agents: {heartbeatGraceSeconds: 5}}. */
  brokerConfig?: ConfigOverrides;
  /** Merged into every agent config file, e.g. {timings: {heartbeatSeconds: 1}}. */
  agentConfig?: Record<string, unknown>;
  /** Progress of start-up and shutdown (default: silent). */
  log?: Logger;
}

export interface AgentProcess {
  cluster: string;
  configPath: string;
  logPath: string;
  httpPort: number;
  readonly pid: number | undefined;
  readonly running: boolean;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGKILL (a crash). */
  kill(): Promise<void>;
  /** SIGTERM and wait. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Start it again (it finds its credentials in its Secret; no new token). */
  restart(): Promise<void>;
}

export interface Stack {
  dir: string;
  clusters: string[];
  world: World;
  /** The broker harness: NATS, CA, config writer, enrollment helpers. */
  env: BrokerEnv;
  brokers: BrokerProcess[];
  /** gRPC addresses of the brokers ("127.0.0.1:<port>"; the certificate names localhost). */
  brokerAddresses: string[];
  /** Admin gRPC clients of the current leader (re-resolved by `leaderClients()` after a failover). */
  admin: BrokerClients;
  /** Admin gRPC clients of the broker that is leader now (waits for one). */
  leaderClients(timeoutMs?: number): Promise<BrokerClients>;
  /** The broker that is leader now (waits for one). */
  leader(timeoutMs?: number): Promise<BrokerProcess>;
  /** SIGKILL broker `i` (default: the leader). */
  killBroker(i?: number): Promise<BrokerProcess>;
  /** Start broker `i` again (same identity and ports). */
  restartBroker(i: number): Promise<void>;
  agents: Map<string, AgentProcess>;
  /** Enrollment tokens created for the agents (already used when agents run). */
  tokens: Map<string, string>;
  /** `<dir>/kubeconfig-<cluster>`. */
  kubeconfig(cluster: string): string;
  /** `<dir>/ferryctl.yaml`. */
  ferryctlConfig: string;
  /** Wait until every agent's cluster is AVAILABLE at the leader. */
  waitClustersAvailable(timeoutMs?: number): Promise<Cluster[]>;
  /** Stop everything: agents, brokers, NATS, the sim. Idempotent. */
  stop(): Promise<void>;
}

const liveChildren = new Set<ChildProcess>();
process.once("exit", () => {
  for (const c of liveChildren) c.kill("SIGKILL");
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function tailOf(path: string, lines = 30): string {
  try {
    return readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export async function startStack(opts: StackOptions): Promise<Stack> {
  const log = opts.log ?? pino({ level: "silent" });
  const dir = resolve(opts.dir);
  const logs = join(dir, "logs");
  mkdirSync(logs, { recursive: true });
  if (opts.clusters.length === 0) throw new Error("startStack: clusters must name at least one cluster");
  const cleanups: (() => Promise<void>)[] = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    for (const c of cleanups.reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn({ err: e instanceof Error ? e.message : String(e) }, "stack: clean-up step failed");
      }
    }
  };
  try {
    // 1. Simulated clusters.
    const world = await startWorld({ clusters: opts.clusters, scenario: resolveScenario(opts.scenario, opts.clusters), timeScale: opts.timeScale ?? 1, dir: join(dir, "sim") });
    cleanups.push(() => world.stop());
    for (const c of world.clusters) {
      writeFileSync(join(dir, `kubeconfig-${c.name}`), c.kubeconfig, { mode: 0o600 });
      // The agent keeps its credentials Secret here; 409 = already there.
      await kubeConfig(c.kubeconfig)
        .makeApiClient(CoreV1Api)
        .createNamespace({ body: { metadata: { name: AGENT_NAMESPACE } } })
        .catch((e: unknown) => {
          if ((e as { code?: number }).code !== 409) throw e;
        });
    }
    log.info({ clusters: opts.clusters, control: world.control.url }, "simulated clusters up");

    // 2. NATS + broker secrets, then the brokers.
    const env = await startBrokerEnv();
    cleanups.push(async () => {
      // The brokers' logs live in the broker env's directory, which stop() removes: keep copies.
      for (const b of brokers) {
        try {
          rmSync(join(logs, `${b.identity}.log`), { force: true });
          copyFileSync(b.logPath, join(logs, `${b.identity}.log`));
        } catch {
          // a log copy is a convenience only
        }
      }
      await env.stop();
    });
    const brokers: BrokerProcess[] = [];
    for (let i = 0; i < (opts.brokers ?? 1); i++) {
      const b = await env.startProcess(`broker-${i}`, opts.brokerConfig ?? {});
      brokers.push(b);
      try {
        rmSync(join(logs, `${b.identity}.log`), { force: true });
        symlinkSync(b.logPath, join(logs, `${b.identity}.log`));
      } catch {
        // a log link is a convenience only
      }
    }
    log.info({ nats: env.nats.urls, brokers: brokers.map((b) => b.grpcAddress) }, "nats and brokers up");

    const clientsByAddress = new Map<string, BrokerClients>();
    const clientsOf = async (address: string) => {
      let c = clientsByAddress.get(address);
      if (!c) clientsByAddress.set(address, (c = await env.adminClients(address)));
      return c;
    };
    cleanups.push(() => {
      for (const c of clientsByAddress.values()) c.close();
      return Promise.resolve();
    });
    const leader = async (timeoutMs = 30_000): Promise<BrokerProcess> => {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        for (const b of brokers) {
          if (!b.running) continue;
          const ok = await fetch(`http://127.0.0.1:${b.httpPort}/leaderz`, { signal: AbortSignal.timeout(1000) }).then(
            (r) => r.status === 200,
            () => false,
          );
          if (ok) return b;
        }
        if (Date.now() > deadline) throw new Error(`no broker became leader within ${timeoutMs} ms (logs: ${brokers.map((b) => b.logPath).join(", ")})`);
        await sleep(100);
      }
    };
    const leaderClients = async (timeoutMs?: number) => clientsOf((await leader(timeoutMs)).grpcAddress);
    const admin = await leaderClients();

    // 3. Admin identity for ferryctl.
    const adminKey = await env.testKey();
    const adminCert = issueCertificate(env.ca, { role: "admin", name: "admin" }, publicKeyOf(adminKey));
    const files = {
      ca: join(dir, "ca.crt"),
      cert: join(dir, "admin.crt"),
      key: join(dir, "admin.key"),
    };
    writeFileSync(files.ca, env.ca.certPem);
    writeFileSync(files.cert, adminCert);
    writeFileSync(files.key, adminKey, { mode: 0o600 });
    const ferryctlConfig = writeFerryctlConfig(dir, { brokers: brokers.map((b) => b.grpcAddress), serverName: "localhost", natsUrl: env.nats.urls[0]!, ...files });

    // 4. Agents, enrolled through the real token → CSR flow.
    const tokens = new Map<string, string>();
    const agents = new Map<string, AgentProcess>();
    cleanups.push(async () => {
      await Promise.all([...agents.values()].map((a) => a.stop().catch(() => undefined)));
    });
    for (const cluster of opts.clusters) {
      const { token } = await call(admin.clusters, "createEnrollmentToken", { clusterName: cluster, ttl: undefined });
      tokens.set(cluster, token);
    }
    if (opts.agents !== false) {
      const enrollAt = (await leader()).grpcAddress;
      for (const cluster of opts.clusters) {
        const agent = await startAgentProcess({
          cluster,
          dir,
          kubeconfigPath: join(dir, `kubeconfig-${cluster}`),
          brokerAddress: enrollAt,
          caFile: files.ca,
          token: tokens.get(cluster)!,
          // virt-handler samples a migration every 5 s; read its metrics every 5 simulated seconds (0.2–5 s real)
          overrides: deepMerge({ timings: { progressPollSeconds: Math.min(5, Math.max(0.2, 5 / (opts.timeScale ?? 1))) } }, opts.agentConfig ?? {}),
        });
        agents.set(cluster, agent);
      }
    }

    const waitClustersAvailable = async (timeoutMs = 60_000): Promise<Cluster[]> => {
      const deadline = Date.now() + timeoutMs;
      let last: Cluster[] = [];
      for (;;) {
        for (const a of agents.values()) {
          if (!a.running) throw new Error(`agent of ${a.cluster} exited during start-up:\n${tailOf(a.logPath)}`);
        }
        try {
          const c = await leaderClients(5_000);
          last = (await call(c.clusters, "listClusters", { pageSize: 0, pageToken: "" }, { deadlineMs: 5_000 })).clusters;
          const want = [...agents.keys()];
          if (want.every((n) => last.find((x) => x.name === n)?.state === ClusterState.AVAILABLE)) return last;
        } catch {
          // leader changing; retry
        }
        if (Date.now() > deadline) {
          throw new Error(
            `clusters not AVAILABLE within ${timeoutMs} ms: ${last.map((c) => `${c.name}=${ClusterState[c.state]}`).join(", ")}\n` +
              [...agents.values()].map((a) => `--- agent ${a.cluster} (${a.logPath})\n${tailOf(a.logPath, 15)}`).join("\n"),
          );
        }
        await sleep(200);
      }
    };
    if (agents.size > 0) {
      await waitClustersAvailable();
      log.info({ clusters: [...agents.keys()] }, "agents enrolled and available");
    }

    const stack: Stack = {
      dir,
      clusters: opts.clusters,
      world,
      env,
      brokers,
      brokerAddresses: brokers.map((b) => b.grpcAddress),
      admin,
      leaderClients,
      leader,
      async killBroker(i) {
        const b = i === undefined ? await leader() : brokers[i];
        if (!b) throw new Error(`killBroker: no broker ${i} (have ${brokers.length})`);
        await b.kill();
        return b;
      },
      async restartBroker(i) {
        const b = brokers[i];
        if (!b) throw new Error(`restartBroker: no broker ${i} (have ${brokers.length})`);
        await b.restart();
      },
      agents,
      tokens,
      kubeconfig: (cluster) => {
        if (!opts.clusters.includes(cluster)) throw new Error(`no cluster ${cluster} in this stack (have ${opts.clusters.join(", ")})`);
        return join(dir, `kubeconfig-${cluster}`);
      },
      ferryctlConfig,
      waitClustersAvailable,
      stop,
    };
    return stack;
  } catch (e) {
    await stop();
    throw e;
  }
}

/**
 * A start-up failure for a person: one line, the first line of the error (which names the piece)
 * plus where to look, and the whole error (log tails, stack) to print only on request.
 */
export function startFailure(e: unknown, dir: string, howToSeeMore: string): { line: string; detail: string } {
  const message = e instanceof Error ? e.message : String(e);
  const first = message.split("\n")[0]!.replace(/:\s*$/, "");
  return {
    line: `the stack did not start: ${first}; ${howToSeeMore}, and see the process logs in ${join(resolve(dir), "logs")}`,
    detail: e instanceof Error ? (e.stack ?? message) : message,
  };
}

function resolveScenario(s: StackOptions["scenario"], clusters: string[]): ScenarioInput | "default" | "empty" {
  if (s === undefined || s === "base") return baseScenario();
  if (s === "demo") return demoScenario(clusters);
  if (s === "default" || s === "empty") return s;
  if (typeof s === "string") return loadScenarioFile(s);
  return s;
}

/**
 * ferryctl's configuration file (schema: cli/config.ts FerryctlConfig): the broker replicas, the
 * TLS name on the broker's certificate (the addresses are IPs), the CA, the admin's certificate
 * and key, and the NATS URL that `cluster add` prints for agents.
 */
export function writeFerryctlConfig(dir: string, c: { brokers: string[]; serverName: string; ca: string; cert: string; key: string; natsUrl?: string }): string {
  const path = join(dir, "ferryctl.yaml");
  const doc = {
    apiVersion: "ferry.dev/v1alpha1",
    kind: "FerryctlConfig",
    brokers: c.brokers,
    tlsServerName: c.serverName,
    caFile: c.ca,
    certFile: c.cert,
    keyFile: c.key,
    ...(c.natsUrl ? { natsUrl: c.natsUrl } : {}),
  };
  writeFileSync(path, toYaml(doc), { mode: 0o600 });
  return path;
}

/**
 * One cluster agent as a child process (`cluster-agent/main.ts`), configured by a file in `dir`,
 * given its single-use token in FERRY_BOOTSTRAP_TOKEN (never a flag): on first start it creates a
 * key and CSR, calls ClusterService.Enroll, and keeps the issued credentials in a Secret of its
 * cluster, so a restart needs no token.
 */
export async function startAgentProcess(o: {
  cluster: string;
  dir: string;
  kubeconfigPath: string;
  brokerAddress: string;
  caFile: string;
  token: string;
  overrides?: Record<string, unknown>;
}): Promise<AgentProcess> {
  const httpPort = await freePort();
  const config = deepMerge(
    {
      cluster: o.cluster,
      identity: `agent-${o.cluster}`,
      logLevel: "info",
      kube: { mode: "kubeconfig", kubeconfigFile: o.kubeconfigPath },
      broker: { address: o.brokerAddress, caFile: o.caFile, serverName: "localhost" },
      credentials: { namespace: AGENT_NAMESPACE },
      http: { listen: `127.0.0.1:${httpPort}` },
      // A short grace before lifting KubeVirt's finalizers from a stuck VMIM: the stack runs at a time scale.
      timings: { heartbeatSeconds: 1, statusSeconds: 5, inventorySeconds: 30, vmimReleaseSeconds: 10 },
    },
    o.overrides ?? {},
  );
  const configPath = join(o.dir, `agent-${o.cluster}.yaml`);
  writeFileSync(configPath, toYaml(config), { mode: 0o600 });
  const logPath = join(o.dir, "logs", `agent-${o.cluster}.log`);
  let child: ChildProcess | undefined;
  let exited!: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  const launch = () => {
    const fd = openSync(logPath, "a");
    const c = spawn(process.execPath, ["--import", "tsx", join(REPO, "cluster-agent/main.ts"), "--config", configPath], {
      cwd: REPO,
      stdio: ["ignore", fd, fd],
      env: { ...process.env, FERRY_BOOTSTRAP_TOKEN: o.token },
    });
    closeSync(fd);
    child = c;
    liveChildren.add(c);
    exited = new Promise((res) =>
      c.once("exit", (code, signal) => {
        liveChildren.delete(c);
        res({ code, signal });
      }),
    );
  };
  launch();
  const a: AgentProcess = {
    cluster: o.cluster,
    configPath,
    logPath,
    httpPort,
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
      if (a.running) child!.kill("SIGKILL");
      await exited;
    },
    async stop() {
      if (a.running) child!.kill("SIGTERM");
      const t = setTimeout(() => child?.kill("SIGKILL"), 10_000);
      const r = await exited;
      clearTimeout(t);
      return r;
    },
    async restart() {
      if (a.running) await a.stop();
      launch();
      return Promise.resolve();
    },
  };
  return a;
}

function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = v && typeof v === "object" && !Array.isArray(v) && b && typeof b === "object" && !Array.isArray(b) ? deepMerge(b as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}
