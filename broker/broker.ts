// Assembles a broker replica: NATS connection, KV state and event feed, cluster registry,
// enrollment, leader election, the gRPC API and the HTTP endpoints. The controller (plans,
// migrations; broker/controller/) plugs in through `ControllerFactory` (main.ts always passes
// it); a broker started without one answers PlanService and MigrationService with UNIMPLEMENTED.
import { hostname } from "node:os";
import { pino, type Logger } from "pino";
import { connectBus, mintBrokerUser, type Bus } from "../bus/index.js";
import { MigrationServiceService } from "../proto/gen/ferry/v1/migrations.js";
import { PlanServiceService } from "../proto/gen/ferry/v1/plans.js";
import { ClusterServiceService } from "../proto/gen/ferry/v1/clusters.js";
import type { BrokerConfig, BrokerSecrets } from "./config.js";
import { ClusterRegistry, type MigrationInvolvement } from "./clusters/registry.js";
import { Revoker } from "./clusters/revocation.js";
import { Enrollment } from "./enrollment/enrollment.js";
import { startHttpServer, type Check, type HttpServer } from "./http.js";
import { LeaderElection, type LeaderTerm } from "./leader.js";
import { BrokerMetrics } from "./metrics.js";
import { CLUSTER_SERVICE_ACCESS, clusterServiceHandlers } from "./server/cluster-service.js";
import { startGrpcServer, type GrpcServer } from "./server/server.js";
import { addGuardedService, type Handlers } from "./server/service.js";
import { EventFeed } from "./state/events.js";
import { openState, type BrokerState } from "./state/kv.js";

/** What a controller gets to work with. */
export interface BrokerRuntime {
  config: BrokerConfig;
  log: Logger;
  bus: Bus;
  state: BrokerState;
  events: EventFeed;
  registry: ClusterRegistry;
  enrollment: Enrollment;
  leader: LeaderElection;
  metrics: BrokerMetrics;
  revoker: Revoker;
}

/** What a controller plugs into the shell. Its loop runs from `leader.onElected` until the term's signal aborts. */
export interface ControllerHooks {
  plans?: Partial<Handlers<typeof PlanServiceService>>;
  migrations?: Partial<Handlers<typeof MigrationServiceService>>;
  /** Consulted before RemoveCluster. */
  involvement?: MigrationInvolvement;
  /** Called on shutdown after the gRPC server stopped. */
  stop?: () => Promise<void>;
}

export type ControllerFactory = (runtime: BrokerRuntime) => ControllerHooks | Promise<ControllerHooks>;

export interface StartOptions {
  controller?: ControllerFactory;
  logger?: Logger;
  /** KV and stream in memory (tests). */
  memoryStorage?: boolean;
}

export interface RunningBroker {
  runtime: BrokerRuntime;
  grpcPort: number;
  httpPort: number;
  /** Graceful: stop serving, release the leader lease (unless `release: false`), close NATS. */
  stop(opts?: { release?: boolean }): Promise<void>;
}

const UNWIRED = "this broker was started without a controller (startBroker without `controller`; broker/main.ts wires broker/controller in)";

function advertised(config: BrokerConfig, port: number): string {
  if (config.grpc.advertiseAddress) return config.grpc.advertiseAddress;
  const host = config.grpc.listen.slice(0, config.grpc.listen.lastIndexOf(":"));
  return `${host === "0.0.0.0" || host === "[::]" || host === "::" ? hostname() : host}:${port}`;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms).unref())]);
}

export async function startBroker(config: BrokerConfig, secrets: BrokerSecrets, opts: StartOptions = {}): Promise<RunningBroker> {
  const log = (opts.logger ?? pino({ level: config.logLevel, base: { identity: config.identity } })).child({ component: "broker" });
  let natsUser = secrets.natsUser;
  if (!natsUser) {
    const minted = await mintBrokerUser(secrets.authority, { name: `broker-${config.identity}` });
    natsUser = { jwt: minted.jwt, seed: minted.seed ?? "" };
  }
  const bus = await connectBus({ servers: config.nats.urls, tls: secrets.natsTls, jwt: natsUser.jwt, seed: natsUser.seed, name: `broker-${config.identity}`, logger: log });
  let natsConnected = true;
  void (async () => {
    for await (const s of bus.nc.status()) {
      if (s.type === "disconnect") natsConnected = false;
      else if (s.type === "reconnect") natsConnected = true;
    }
  })();

  const metrics = new BrokerMetrics();
  const state = await openState(bus, { replicas: config.nats.kvReplicas, ...(opts.memoryStorage ? { memory: true } : {}) });
  const events = await EventFeed.open(bus, log, {
    replicas: config.nats.kvReplicas,
    maxAgeMs: config.nats.eventsMaxAgeDays * 86_400_000,
    ...(opts.memoryStorage ? { memory: true } : {}),
  });
  const certLifetimeMs = config.agents.certificateValidityDays * 86_400_000;
  const revoker = new Revoker({
    state,
    authority: secrets.authority,
    servers: config.nats.urls,
    tls: secrets.natsTls,
    log: log.child({ component: "revoker" }),
    metrics,
    maxUserLifetimeMs: certLifetimeMs + 86_400_000,
  });
  const registry = new ClusterRegistry({ bus, state, revoker, log: log.child({ component: "registry" }), metrics, heartbeatGraceMs: config.agents.heartbeatGraceSeconds * 1000 });
  const enrollment = new Enrollment({
    state,
    ca: secrets.ca,
    authority: secrets.authority,
    agentNatsUrls: config.agents.natsUrls ?? config.nats.urls,
    certificateValidityDays: config.agents.certificateValidityDays,
    defaultTokenTtlMs: config.enrollment.defaultTokenTtlSeconds * 1000,
    maxTokenTtlMs: config.enrollment.maxTokenTtlSeconds * 1000,
    log: log.child({ component: "enrollment" }),
    metrics,
  });
  await registry.start();

  // The lease advertises the gRPC address, known once the server is bound (listen port 0 in tests).
  let grpcPort = 0;
  const leader = new LeaderElection({
    kv: state.leader,
    identity: config.identity,
    address: () => advertised(config, grpcPort),
    leaseMs: config.leader.leaseSeconds * 1000,
    ...(config.leader.renewSeconds !== undefined ? { renewMs: config.leader.renewSeconds * 1000 } : {}),
    log: log.child({ component: "leader" }),
    metrics,
  });
  const runtime: BrokerRuntime = { config, log, bus, state, events, registry, enrollment, leader, metrics, revoker };
  const hooks: ControllerHooks = opts.controller ? await opts.controller(runtime) : {};
  if (hooks.involvement) registry.setMigrationInvolvement(hooks.involvement);

  const guard = { caPem: secrets.ca.certPem, leader, metrics, log: log.child({ component: "grpc" }) };
  const grpc: GrpcServer = await startGrpcServer({ listen: config.grpc.listen, caPem: secrets.ca.certPem, ...secrets.grpcServer }, (server) => {
    addGuardedService(server, ClusterServiceService, clusterServiceHandlers({ registry, enrollment, advertiseAddress: config.grpc.advertiseAddress ?? "" }), CLUSTER_SERVICE_ACCESS, guard);
    addGuardedService(server, PlanServiceService, hooks.plans ?? {}, () => "admin", { ...guard, unimplemented: UNWIRED });
    addGuardedService(server, MigrationServiceService, hooks.migrations ?? {}, () => "admin", { ...guard, unimplemented: UNWIRED });
  });
  grpcPort = grpc.port;

  leader.onElected((term) => onElected(runtime, term));

  const readiness = async (): Promise<Record<string, Check>> => {
    const checks: Record<string, Check> = {};
    checks["nats"] = natsConnected && !bus.nc.isClosed() ? { ok: true, detail: `connected to ${bus.nc.getServer()}` } : { ok: false, detail: "not connected to NATS" };
    try {
      await withTimeout(state.leader.kv.status(), 2000, "JetStream KV");
      checks["kv"] = { ok: true, detail: "KV reachable" };
    } catch (e) {
      checks["kv"] = { ok: false, detail: (e as Error).message };
    }
    const l = leader.leader;
    checks["leader"] = l ? { ok: true, detail: l.self ? "this replica is leader" : `standby; leader is ${l.holder} at ${l.address}` } : { ok: false, detail: "no leader known yet" };
    return checks;
  };
  const http: HttpServer = await startHttpServer(config.http.listen, { registry: metrics.registry, readiness, isLeader: () => leader.isLeader });
  leader.start();
  log.info({ grpc: grpc.port, http: http.port, advertise: advertised(config, grpc.port), nats: config.nats.urls, kvReplicas: config.nats.kvReplicas }, "broker started");

  let stopping: Promise<void> | undefined;
  return {
    runtime,
    grpcPort: grpc.port,
    httpPort: http.port,
    stop: (o = {}) =>
      (stopping ??= (async () => {
        log.info("broker stopping");
        await grpc.stop();
        await leader.stop({ release: o.release ?? true });
        await hooks.stop?.().catch((e: unknown) => log.error({ err: String(e) }, "controller stop failed"));
        await registry.stop();
        await http.close();
        await bus.drain().catch(() => undefined);
        log.info("broker stopped");
      })()),
  };
}

/** On election: re-apply revocations (until it works or the term ends) and refresh every cluster's inventory. */
function onElected(rt: BrokerRuntime, term: LeaderTerm): void {
  const reconcile = async () => {
    for (let delay = 500; !term.signal.aborted; delay = Math.min(delay * 2, 30_000)) {
      try {
        const r = await rt.revoker.reconcile();
        rt.log.info({ revoked: Object.keys(r.revocations).length }, "revocation list pushed to NATS");
        return;
      } catch (e) {
        rt.log.warn({ err: (e as Error).message, retryMs: delay }, "could not push the revocation list; retrying");
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  };
  void reconcile();
  void rt.registry.requestInventories().then(
    (r) => rt.log.info({ answered: r.answered.length, failed: r.failed.length }, "requested inventories after election"),
    (e: unknown) => rt.log.warn({ err: String(e) }, "inventory requests failed"),
  );
}
