// Launches real nats-server processes (one node or a 3-node JetStream cluster) on free loopback
// ports, with mutual TLS from the ferry CA, JetStream, and operator/JWT authorization with a
// `full` account resolver. Used by tests, the demo and benchmarks.
import { spawn, type ChildProcess } from "node:child_process";
import { accessSync, closeSync, constants, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import {
  createCa,
  issueClientCertificate,
  issueServerCertificate,
  type CertificateAuthority,
  type CertifiedKey,
  type FerryIdentity,
} from "../pki/index.js";
import {
  createBusAuthority,
  mintAgentUser,
  mintBrokerUser,
  mintSystemUser,
  type BusAuthority,
  type MintOptions,
  type UserCredentials,
} from "./auth.js";
import { agentInboxPrefix } from "./subjects.js";
import { DEFAULT_MAX_MESSAGE_BYTES, type BusCredentials } from "./client.js";

export const DEFAULT_NATS_SERVER_BIN = "/usr/sbin/nats-server";

/** Locate nats-server: $NATS_SERVER_BIN, then PATH, then /usr/sbin/nats-server. */
export function findNatsServer(env: NodeJS.ProcessEnv = process.env): string {
  const tried: string[] = [];
  const executable = (p: string) => {
    tried.push(p);
    try {
      accessSync(p, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  };
  if (env["NATS_SERVER_BIN"]) {
    if (executable(env["NATS_SERVER_BIN"])) return env["NATS_SERVER_BIN"];
    throw new Error(`NATS_SERVER_BIN=${env["NATS_SERVER_BIN"]} is not an executable file; fix it or unset it`);
  }
  for (const dir of (env["PATH"] ?? "").split(delimiter).filter(Boolean)) {
    const p = join(dir, "nats-server");
    if (executable(p)) return p;
  }
  if (executable(DEFAULT_NATS_SERVER_BIN)) return DEFAULT_NATS_SERVER_BIN;
  throw new Error(`nats-server not found (tried ${tried.join(", ")}); run scripts/ensure-nats-server.sh or set NATS_SERVER_BIN`);
}

/** A free TCP port on 127.0.0.1 (bind to 0, read, close). Only for route ports, which must be known up front. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface StartNatsOptions {
  /** 1 (default) or 3 for a JetStream cluster with routes. */
  nodes?: 1 | 3;
  /** Reuse a CA (demo); default: a fresh one (RSA-2048, for speed). */
  ca?: CertificateAuthority;
  /** Reuse trust material; default: a fresh operator/system/FERRY set. */
  authority?: BusAuthority;
  /** Account JWTs to preload (required with `authority`). */
  preload?: Record<string, string>;
  /** Max message size in bytes (server `max_payload`), default 8 MiB (= the bus default). */
  maxPayload?: number;
  clusterName?: string;
  /** Extra nats-server flags such as ["-DV"] for debug/trace logs. */
  extraArgs?: string[];
  /** Keep the temp dir after stop() (debugging). */
  keepTempDir?: boolean;
}

export interface NatsNode {
  readonly name: string;
  /** tls://127.0.0.1:<port> */
  readonly url: string;
  readonly monitorUrl: string;
  readonly logPath: string;
  readonly pid: number | undefined;
  readonly running: boolean;
  /** SIGTERM, wait for exit (SIGKILL after 5 s). */
  stop(): Promise<void>;
  /** SIGKILL (chaos), wait for exit. */
  kill(): Promise<void>;
  /** Start again with the same ports, store and name. */
  restart(): Promise<void>;
}

export interface NatsHarness {
  readonly urls: string[];
  readonly ca: CertificateAuthority;
  readonly caPem: string;
  readonly authority: BusAuthority;
  readonly nodes: NatsNode[];
  readonly tempDir: string;
  /** Client certificate from the ferry CA for `identity` (cached per identity). */
  clientCertificate(identity: FerryIdentity): Promise<CertifiedKey>;
  /** Everything `connectBus` needs for the broker (certificate + broker JWT). */
  brokerCredentials(opts?: MintOptions): Promise<BusCredentials & { user: UserCredentials }>;
  /** Everything `connectBus` needs for one cluster's agent (certificate + agent JWT + inbox prefix). */
  agentCredentials(cluster: string, opts?: MintOptions): Promise<BusCredentials & { user: UserCredentials }>;
  /** System user credentials (for pushing account JWT updates). */
  systemCredentials(): Promise<BusCredentials & { user: UserCredentials }>;
  /** Wait until every running node answers /healthz and, for a cluster, a JetStream meta leader exists. */
  waitReady(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Never leave orphaned servers behind when the test process exits.
  process.once("exit", () => {
    for (const p of live) p.kill("SIGKILL");
  });
}

const q = (s: string) => JSON.stringify(s);

interface NodePlan {
  name: string;
  dir: string;
  clientPort: number; // -1 until first start
  monitorPort: number;
  routePort?: number;
}

function renderConfig(
  plan: NodePlan,
  all: NodePlan[],
  files: { cert: string; key: string; ca: string },
  trust: { operatorJwt: string; systemAccount: string; preload: Record<string, string> },
  opts: { maxPayload: number; clusterName: string },
): string {
  const tls = `{\n    cert_file: ${q(files.cert)}\n    key_file: ${q(files.key)}\n    ca_file: ${q(files.ca)}\n    verify: true\n    timeout: 5\n  }`;
  const lines = [
    `server_name: ${q(plan.name)}`,
    `host: "127.0.0.1"`,
    `port: ${plan.clientPort}`,
    `http_port: ${plan.monitorPort}`,
    `ports_file_dir: ${q(plan.dir)}`,
    `max_payload: ${opts.maxPayload}`,
    `tls ${tls}`,
    `jetstream {\n  store_dir: ${q(join(plan.dir, "js"))}\n  max_memory_store: 268435456\n  max_file_store: 1073741824\n}`,
    `operator: ${q(trust.operatorJwt)}`,
    `system_account: ${q(trust.systemAccount)}`,
    `resolver {\n  type: full\n  dir: ${q(join(plan.dir, "jwt"))}\n  allow_delete: false\n  interval: "2m"\n}`,
    `resolver_preload {\n${Object.entries(trust.preload)
      .map(([k, v]) => `  ${k}: ${q(v)}`)
      .join("\n")}\n}`,
  ];
  if (plan.routePort !== undefined) {
    const routes = all.map((p) => `nats-route://127.0.0.1:${p.routePort}`).join(", ");
    lines.push(
      `cluster {\n  name: ${q(opts.clusterName)}\n  listen: "127.0.0.1:${plan.routePort}"\n  routes: [${routes}]\n  tls ${tls}\n}`,
    );
  }
  return lines.join("\n") + "\n";
}

class NodeProcess implements NatsNode {
  proc: ChildProcess | undefined;
  exited: Promise<void> = Promise.resolve();
  url = "";
  monitorUrl = "";

  constructor(
    readonly plan: NodePlan,
    private readonly bin: string,
    private readonly writeConfig: () => string,
    private readonly extraArgs: string[],
  ) {}

  get name() {
    return this.plan.name;
  }
  get logPath() {
    return join(this.plan.dir, "nats-server.log");
  }
  get pid() {
    return this.proc?.pid;
  }
  get running() {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    const conf = this.writeConfig();
    for (const f of readdirSync(this.plan.dir)) if (f.endsWith(".ports")) rmSync(join(this.plan.dir, f), { force: true });
    const log = openSync(this.logPath, "a");
    const proc = spawn(this.bin, ["-c", conf, ...this.extraArgs], { stdio: ["ignore", log, log] });
    closeSync(log);
    this.proc = proc;
    live.add(proc);
    installExitHook();
    let exitInfo = "";
    this.exited = new Promise<void>((resolve) =>
      proc.once("exit", (code, signal) => {
        live.delete(proc);
        exitInfo = `exited with ${signal ?? `code ${code}`}`;
        resolve();
      }),
    );
    const portsFile = join(this.plan.dir, `nats-server_${proc.pid}.ports`);
    const deadline = Date.now() + 15_000;
    while (!existsSync(portsFile)) {
      if (exitInfo) throw new Error(`nats-server ${this.name} ${exitInfo} at start-up:\n${this.logTail()}`);
      if (Date.now() > deadline) throw new Error(`nats-server ${this.name} wrote no ports file within 15 s:\n${this.logTail()}`);
      await sleep(20);
    }
    let ports: { nats?: string[]; monitoring?: string[] };
    for (;;) {
      try {
        ports = JSON.parse(readFileSync(portsFile, "utf8"));
        break;
      } catch {
        await sleep(10); // partially written
      }
    }
    const nats = ports.nats?.[0];
    const mon = ports.monitoring?.[0];
    if (!nats || !mon) throw new Error(`nats-server ${this.name}: ports file lacks nats/monitoring: ${JSON.stringify(ports)}`);
    const cp = Number(new URL(nats).port);
    const mp = Number(new URL(mon).port);
    // Keep the same ports across restarts, so client URLs stay valid.
    this.plan.clientPort = cp;
    this.plan.monitorPort = mp;
    this.url = `tls://127.0.0.1:${cp}`;
    this.monitorUrl = `http://127.0.0.1:${mp}`;
  }

  logTail(lines = 30): string {
    try {
      return readFileSync(this.logPath, "utf8").split("\n").slice(-lines).join("\n");
    } catch {
      return "(no log)";
    }
  }

  async signal(sig: NodeJS.Signals, graceMs: number): Promise<void> {
    const p = this.proc;
    if (!p || !this.running) return;
    p.kill(sig);
    const done = await Promise.race([this.exited.then(() => true), sleep(graceMs).then(() => false)]);
    if (!done) {
      p.kill("SIGKILL");
      await this.exited;
    }
  }

  stop() {
    return this.signal("SIGTERM", 5000);
  }
  kill() {
    return this.signal("SIGKILL", 5000);
  }
  async restart() {
    await this.stop();
    await this.start();
  }
}

function sleep(ms: number) {
  return new Promise<void>((r) => setTimeout(r, ms));
}

async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, body };
}

/** Start nats-server node(s). Always `await harness.stop()` (tests: in afterAll). */
export async function startNats(opts: StartNatsOptions = {}): Promise<NatsHarness> {
  const bin = findNatsServer();
  const n = opts.nodes ?? 1;
  const ca = opts.ca ?? (await createCa({ keyBits: 2048, commonName: "ferry test CA" }));
  let authority: BusAuthority;
  let preload: Record<string, string>;
  if (opts.authority) {
    if (!opts.preload) throw new Error("startNats: `preload` (account JWTs) is required with `authority`");
    authority = opts.authority;
    preload = opts.preload;
  } else {
    const created = await createBusAuthority();
    authority = created.authority;
    preload = created.preload;
  }
  const tempDir = mkdtempSync(join(tmpdir(), "ferry-nats-"));
  const serverCert = await issueServerCertificate(ca, { name: "nats", dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const files = { cert: join(tempDir, "server.crt"), key: join(tempDir, "server.key"), ca: join(tempDir, "ca.crt") };
  writeFileSync(files.cert, serverCert.certPem);
  writeFileSync(files.key, serverCert.keyPem, { mode: 0o600 });
  writeFileSync(files.ca, ca.certPem);
  const trust = { operatorJwt: authority.operator.jwt, systemAccount: authority.system.publicKey, preload };
  const clusterName = opts.clusterName ?? "ferry";
  const maxPayload = opts.maxPayload ?? DEFAULT_MAX_MESSAGE_BYTES;

  let nodes: NodeProcess[] = [];
  for (let attempt = 1; ; attempt++) {
    const plans: NodePlan[] = [];
    for (let i = 0; i < n; i++) {
      const dir = join(tempDir, `n${i}`);
      rmSync(dir, { recursive: true, force: true });
      mkdirSync(dir, { recursive: true });
      const plan: NodePlan = { name: `n${i}`, dir, clientPort: -1, monitorPort: -1 };
      if (n > 1) plan.routePort = await freePort();
      plans.push(plan);
    }
    nodes = plans.map((plan) => {
      const confPath = join(plan.dir, "nats.conf");
      return new NodeProcess(
        plan,
        bin,
        () => {
          writeFileSync(confPath, renderConfig(plan, plans, files, trust, { maxPayload, clusterName }), { mode: 0o600 });
          return confPath;
        },
        opts.extraArgs ?? [],
      );
    });
    try {
      await Promise.all(nodes.map((node) => node.start()));
      break;
    } catch (e) {
      await Promise.all(nodes.map((node) => node.kill()));
      // A route port picked by freePort() can be taken by someone else in between; retry.
      if (attempt >= 3 || !/address already in use/i.test(String(e))) {
        if (!opts.keepTempDir) rmSync(tempDir, { recursive: true, force: true });
        throw e;
      }
    }
  }

  const certCache = new Map<string, Promise<CertifiedKey>>();
  const clientCertificate = (identity: FerryIdentity) => {
    const key = JSON.stringify(identity);
    let p = certCache.get(key);
    if (!p) {
      p = issueClientCertificate(ca, identity);
      certCache.set(key, p);
    }
    return p;
  };
  const urls = () => nodes.map((node) => node.url);
  const creds = (cert: CertifiedKey, user: UserCredentials, extra: Partial<BusCredentials> = {}) => ({
    servers: urls(),
    tls: { ca: ca.certPem, cert: cert.certPem, key: cert.keyPem },
    jwt: user.jwt,
    seed: user.seed ?? "",
    user,
    ...extra,
  });

  const harness: NatsHarness = {
    get urls() {
      return urls();
    },
    ca,
    caPem: ca.certPem,
    authority,
    nodes,
    tempDir,
    clientCertificate,
    async brokerCredentials(mint = {}) {
      const [cert, user] = await Promise.all([clientCertificate({ role: "broker", name: "broker" }), mintBrokerUser(authority, mint)]);
      return creds(cert, user, { name: "broker" });
    },
    async agentCredentials(cluster, mint = {}) {
      const [cert, user] = await Promise.all([clientCertificate({ role: "agent", cluster }), mintAgentUser(authority, cluster, mint)]);
      return creds(cert, user, { inboxPrefix: agentInboxPrefix(cluster), name: `agent-${cluster}` });
    },
    async systemCredentials() {
      const [cert, user] = await Promise.all([clientCertificate({ role: "broker", name: "broker" }), mintSystemUser(authority)]);
      return creds(cert, user, { name: "broker-claims" });
    },
    async waitReady(timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      let last: string;
      for (;;) {
        const running = nodes.filter((node) => node.running);
        try {
          const health = await Promise.all(running.map((node) => getJson(`${node.monitorUrl}/healthz`)));
          const unhealthy = health.findIndex((h) => h.status !== 200);
          if (unhealthy >= 0) {
            last = `${running[unhealthy]!.name} /healthz: ${JSON.stringify(health[unhealthy]!.body)}`;
          } else if (n === 1) {
            return;
          } else {
            type Meta = { meta_cluster?: { leader?: string; replicas?: { name: string; current?: boolean; offline?: boolean }[] } };
            const jsz = await Promise.all(running.map((node) => getJson(`${node.monitorUrl}/jsz`)));
            const metas = jsz.map((j) => (j.body as Meta).meta_cluster);
            const leaders = metas.map((m) => m?.leader ?? "");
            // Everyone agrees on the leader, and the leader sees every running peer as current
            // (otherwise an R3 stream created right now can fail with "insufficient resources").
            const leaderMeta = metas[running.findIndex((node) => node.name === leaders[0])];
            const peers = (leaderMeta?.replicas ?? []).filter((p) => p.current && !p.offline).map((p) => p.name);
            const others = running.map((node) => node.name).filter((name) => name !== leaders[0]);
            if (leaders.every((l) => l !== "" && l === leaders[0]) && others.every((name) => peers.includes(name))) return;
            last = `meta leaders seen: ${JSON.stringify(leaders)}, current peers of the leader: ${JSON.stringify(peers)}`;
          }
        } catch (e) {
          last = String(e);
        }
        if (Date.now() > deadline) throw new Error(`NATS not ready within ${timeoutMs} ms: ${last}`);
        await sleep(50);
      }
    },
    async stop() {
      await Promise.all(nodes.map((node) => node.stop()));
      if (!opts.keepTempDir) rmSync(tempDir, { recursive: true, force: true });
    },
  };
  try {
    await harness.waitReady();
  } catch (e) {
    const logs = nodes.map((node) => `--- ${node.name} ---\n${node.logTail()}`).join("\n");
    await harness.stop();
    throw new Error(`${(e as Error).message}\n${logs}`, { cause: e });
  }
  return harness;
}
