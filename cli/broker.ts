// The thin gRPC shell: one client set per broker address, leader-following (a standby answers
// UNAVAILABLE with ErrorInfo NOT_LEADER naming the leader's address; ferryctl retries there), and
// failover to the next configured address when one does not answer.
import { credentials as grpcCredentials, Metadata, status, type CallOptions, type ChannelCredentials, type ClientReadableStream, type ClientUnaryCall, type ServiceError } from "@grpc/grpc-js";
import { readStatusDetails, type Detail } from "../proto/grpc-status.js";
import { ClusterServiceClient } from "../proto/gen/ferry/v1/clusters.js";
import { MigrationServiceClient } from "../proto/gen/ferry/v1/migrations.js";
import { PlanServiceClient, type WatchPlanRequest, type WatchPlanResponse } from "../proto/gen/ferry/v1/plans.js";
import type { Credentials, FerryctlConfig } from "./config.js";
import { describeRpcFailure, type CliError } from "./errors.js";

interface Clients {
  clusters: ClusterServiceClient;
  plans: PlanServiceClient;
  migrations: MigrationServiceClient;
}
type ServiceName = keyof Clients;

type UnaryFn<Q, R> = (request: Q, metadata: Metadata, options: Partial<CallOptions>, callback: (error: ServiceError | null, response: R) => void) => ClientUnaryCall;
type RequestOf<F> = F extends UnaryFn<infer Q, infer _R> ? Q : never;
type ResponseOf<F> = F extends UnaryFn<infer _Q, infer R> ? R : never;
/** Unary method names of a generated client (the ones taking a callback). */
type UnaryMethod<C> = { [K in keyof C & string]: C[K] extends UnaryFn<infer _Q, infer _R> ? K : never }[keyof C & string];

const DEFAULT_DEADLINE_MS = 30_000;
/** At most this many leader redirects per call (a leader elected during the call may move it once more). */
const MAX_HOPS = 4;

export function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === "number" && "metadata" in e;
}

export interface RpcErrorInfo {
  code: status;
  details: Detail[];
  address: string;
}

/** A gRPC error with ferryctl's one-line description; `rpc` keeps the raw code for callers that branch on it. */
export class BrokerCallError extends Error {
  constructor(
    readonly cli: CliError,
    readonly rpc: RpcErrorInfo,
  ) {
    super(cli.message);
  }
}

export class BrokerConnection {
  private readonly creds: ChannelCredentials;
  private readonly clients = new Map<string, Clients>();
  /** Where the last successful call went; the next call starts there. */
  private preferred: string;

  constructor(
    private readonly config: FerryctlConfig,
    credentials: Credentials,
    private readonly configPath: string,
  ) {
    this.creds = grpcCredentials.createSsl(Buffer.from(credentials.caPem), Buffer.from(credentials.keyPem), Buffer.from(credentials.certPem));
    this.preferred = config.brokers[0]!;
  }

  /** The address the last call reached (the leader, after redirects). */
  get address(): string {
    return this.preferred;
  }

  private clientsFor(address: string): Clients {
    let c = this.clients.get(address);
    if (!c) {
      const name = this.config.tlsServerName;
      const options = name ? { "grpc.ssl_target_name_override": name, "grpc.default_authority": name } : {};
      c = {
        clusters: new ClusterServiceClient(address, this.creds, options),
        plans: new PlanServiceClient(address, this.creds, options),
        migrations: new MigrationServiceClient(address, this.creds, options),
      };
      this.clients.set(address, c);
    }
    return c;
  }

  private failure(e: ServiceError, address: string): BrokerCallError {
    const details = readStatusDetails(e.metadata);
    return new BrokerCallError(describeRpcFailure({ code: e.code, message: e.message, details, address, configPath: this.configPath }), { code: e.code, details, address });
  }

  /**
   * Runs `attempt` against the preferred broker, following NOT_LEADER redirects and moving on to
   * the other configured addresses when one is unreachable. Other errors are final.
   */
  private async withFailover<T>(attempt: (clients: Clients, address: string) => Promise<T>): Promise<T> {
    const order = [this.preferred, ...this.config.brokers.filter((b) => b !== this.preferred)];
    const tried = new Set<string>();
    let last: BrokerCallError | undefined;
    let next: string | undefined = order[0];
    let hops = 0;
    while (next !== undefined) {
      const address: string = next;
      tried.add(address);
      try {
        const result = await attempt(this.clientsFor(address), address);
        this.preferred = address;
        return result;
      } catch (e) {
        if (!isServiceError(e)) throw e;
        last = this.failure(e, address);
        if (e.code !== status.UNAVAILABLE) throw last;
        const info = last.rpc.details.find((d) => d.$case === "errorInfo")?.value;
        const leader = info?.reason === "NOT_LEADER" ? info.metadata["leaderAddress"] : undefined;
        if (leader && leader !== address && hops < MAX_HOPS) {
          hops++;
          next = leader;
          continue;
        }
        next = order.find((b) => !tried.has(b));
      }
    }
    throw last!;
  }

  /** A unary RPC: `await broker.call("clusters", "getCluster", { name })`. */
  call<S extends ServiceName, K extends UnaryMethod<Clients[S]>>(service: S, method: K, request: RequestOf<Clients[S][K]>, deadlineMs = DEFAULT_DEADLINE_MS): Promise<ResponseOf<Clients[S][K]>> {
    return this.withFailover(
      (clients) =>
        new Promise((resolve, reject) => {
          const client = clients[service];
          const fn = client[method] as unknown as UnaryFn<RequestOf<Clients[S][K]>, ResponseOf<Clients[S][K]>>;
          fn.call(client, request, new Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => (err ? reject(err) : resolve(res)));
        }),
    );
  }

  /**
   * Opens WatchPlan on the leader and hands each message to `onMessage` until the stream ends
   * (resolves) or fails (rejects with BrokerCallError). The first message decides the leader; a
   * failure before it follows redirects like a unary call.
   */
  watchPlan(request: WatchPlanRequest, onMessage: (m: WatchPlanResponse) => void, signal: AbortSignal): Promise<void> {
    let started = false;
    return this.withFailover(
      (clients, address) =>
        new Promise<void>((resolve, reject) => {
          const stream: ClientReadableStream<WatchPlanResponse> = clients.plans.watchPlan(request);
          const onAbort = () => stream.cancel();
          signal.addEventListener("abort", onAbort, { once: true });
          stream.on("data", (m: WatchPlanResponse) => {
            started = true;
            onMessage(m);
          });
          stream.on("error", (e: ServiceError) => {
            signal.removeEventListener("abort", onAbort);
            if (e.code === status.CANCELLED && signal.aborted) return resolve();
            // Once data flowed, the caller reconnects with after_seq; do not fail over here.
            if (started) return reject(this.failure(e, address));
            reject(e);
          });
          stream.on("end", () => {
            signal.removeEventListener("abort", onAbort);
            resolve();
          });
        }),
    );
  }

  close(): void {
    for (const c of this.clients.values()) {
      c.clusters.close();
      c.plans.close();
      c.migrations.close();
    }
    this.clients.clear();
  }
}
