// Registers a gRPC service on the broker's server with, for every method: authentication from the
// TLS peer certificate (pki.identifyPeer: chain to the ferry CA, validity, role), the role check of
// the method's access policy, the leader check (a standby answers UNAVAILABLE naming the leader),
// metrics, logging and error mapping. Handlers are plain async functions of the request.
import { X509Certificate } from "node:crypto";
import { status, type Server, type ServerUnaryCall, type ServerWritableStream, type sendUnaryData, type UntypedServiceImplementation } from "@grpc/grpc-js";
import type { Logger } from "pino";
import { identifyPeer, PkiError, type FerryIdentity } from "../../pki/index.js";
import { BrokerError } from "../errors.js";
import type { LeaderInfo } from "../leader.js";
import type { BrokerMetrics } from "../metrics.js";
import { toGrpcError } from "./errors.js";

/** Who may call a method: anyone over TLS (Enroll), admins (ferryctl), or a cluster's agent. */
export type Access = "public" | "admin" | "agent";

export interface CallContext {
  /** "/ferry.v1.ClusterService/ListClusters". */
  method: string;
  /** The authenticated caller (undefined for public methods called without a certificate). */
  caller: FerryIdentity | undefined;
  /** PEM of the caller's certificate, when it presented one that verified. */
  peerCertPem: string | undefined;
  /** Aborted when the client cancels or the deadline passes. */
  signal: AbortSignal;
}

export interface StreamContext<R> extends CallContext {
  /** Send one message; resolves when the stream can take more (back-pressure). */
  write(message: R): Promise<void>;
}

interface MethodDef {
  path: string;
  requestStream: boolean;
  responseStream: boolean;
  requestDeserialize: (b: Buffer) => unknown;
  responseSerialize: (v: never) => Buffer;
}
type ReqOf<M> = M extends { requestDeserialize: (b: Buffer) => infer Q } ? Q : never;
type ResOf<M> = M extends { responseSerialize: (v: infer R) => Buffer } ? R : never;

/** Async handlers for a generated service definition (e.g. PlanServiceService). */
export type Handlers<D extends Record<string, MethodDef>> = {
  [K in keyof D]: D[K]["responseStream"] extends true
    ? (request: ReqOf<D[K]>, ctx: StreamContext<ResOf<D[K]>>) => Promise<void>
    : (request: ReqOf<D[K]>, ctx: CallContext) => Promise<ResOf<D[K]>>;
};

export interface LeaderView {
  readonly isLeader: boolean;
  readonly leader: LeaderInfo | undefined;
}

export interface GuardOptions {
  caPem: string;
  leader: LeaderView;
  metrics: BrokerMetrics;
  log: Logger;
  /** Shown when a handler is missing, e.g. "PlanService is not wired to the controller yet". */
  unimplemented?: string;
}

/** The PEM of the certificate the peer presented, if TLS verified it against the server's CA. */
export function peerCertificatePem(call: { getAuthContext(): { sslPeerCertificate?: { raw?: Buffer } } | null }): string | undefined {
  const raw = call.getAuthContext()?.sslPeerCertificate?.raw;
  if (!raw) return undefined;
  return new X509Certificate(raw).toString();
}

function describe(identity: FerryIdentity): string {
  return identity.role === "agent" ? `the agent certificate of cluster "${identity.cluster}"` : `the ${identity.role} certificate "${identity.name}"`;
}

function authenticate(method: string, access: Access, pem: string | undefined, caPem: string): FerryIdentity | undefined {
  let identity: FerryIdentity | undefined;
  if (pem) {
    try {
      identity = identifyPeer(pem, caPem);
    } catch (e) {
      if (access === "public") return undefined;
      const why = e instanceof PkiError ? e.message : String(e);
      throw new BrokerError("unauthenticated", `${method}: the client certificate is not accepted (${why}); use a certificate issued by the ferry CA`, { reason: "BAD_CERTIFICATE" });
    }
  }
  if (access === "public") return identity;
  const wanted = access === "admin" ? "an admin client certificate (OU=ferry-admin) issued by the ferry CA — pass it to ferryctl with --cert/--key" : "the cluster agent's current client certificate";
  if (!identity) throw new BrokerError("unauthenticated", `${method} needs ${wanted}; no valid client certificate was presented`, { reason: "NO_CLIENT_CERTIFICATE" });
  if (identity.role !== access) throw new BrokerError("permission-denied", `${method} needs ${wanted}; ${describe(identity)} may not call it`, { reason: "WRONG_ROLE" });
  return identity;
}

function notLeader(method: string, leader: LeaderInfo | undefined): BrokerError {
  const where = leader ? `the leader is ${leader.holder}${leader.address ? ` at ${leader.address}` : ""}` : "no leader is elected right now";
  return new BrokerError("unavailable", `${method}: this broker replica is a standby; ${where}; retry there (or in a few seconds)`, {
    reason: "NOT_LEADER",
    metadata: leader ? { leader: leader.holder, leaderAddress: leader.address } : {},
  });
}

function abortOn(call: { on(ev: "cancelled", fn: () => void): unknown; getDeadline(): Date | number }): AbortController {
  const ac = new AbortController();
  call.on("cancelled", () => ac.abort(new Error("cancelled by the client")));
  const deadline = call.getDeadline();
  const ms = deadline instanceof Date ? deadline.getTime() - Date.now() : deadline === Infinity ? Infinity : deadline - Date.now();
  if (Number.isFinite(ms)) setTimeout(() => ac.abort(new Error("deadline exceeded")), Math.max(0, ms)).unref();
  return ac;
}

/**
 * Add `definition` to `server` with guarded `handlers`. Methods without a handler answer
 * UNIMPLEMENTED (after authentication) with `opts.unimplemented`.
 */
export function addGuardedService<D extends Record<string, MethodDef>>(
  server: Server,
  definition: D,
  handlers: Partial<Handlers<D>>,
  access: (method: keyof D & string) => Access,
  opts: GuardOptions,
): void {
  const impl: UntypedServiceImplementation = {};
  for (const [name, def] of Object.entries(definition) as [keyof D & string, MethodDef][]) {
    const handler = handlers[name] as ((req: unknown, ctx: CallContext | StreamContext<unknown>) => Promise<unknown>) | undefined;
    const method = def.path;
    const shortName = method.split("/").slice(1).join("/");
    const prepare = (call: ServerUnaryCall<unknown, unknown> | ServerWritableStream<unknown, unknown>): CallContext => {
      const pem = peerCertificatePem(call);
      const caller = authenticate(method, access(name), pem, opts.caPem);
      if (!opts.leader.isLeader) throw notLeader(method, opts.leader.leader);
      if (!handler) throw new BrokerError("unimplemented", `${method} is not implemented by this broker${opts.unimplemented ? `: ${opts.unimplemented}` : ""}`);
      return { method, caller, peerCertPem: caller ? pem : undefined, signal: abortOn(call).signal };
    };
    const finish = (started: bigint, err: unknown, caller: FerryIdentity | undefined) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      opts.metrics.grpcDuration.observe({ method: shortName }, seconds);
      if (err === undefined) {
        opts.metrics.grpcRequests.inc({ method: shortName, code: "OK" });
        return undefined;
      }
      const { error, internal } = toGrpcError(err);
      opts.metrics.grpcRequests.inc({ method: shortName, code: status[error.code ?? status.UNKNOWN] ?? "UNKNOWN" });
      const fields = { method, code: status[error.code ?? status.UNKNOWN], caller: caller ? describe(caller) : undefined };
      if (internal) opts.log.error({ ...fields, err: err instanceof Error ? err.stack : JSON.stringify(err) }, "gRPC handler failed");
      else opts.log.info({ ...fields, err: error.message }, "gRPC request refused");
      return error;
    };
    if (def.requestStream) throw new Error(`${method}: client-streaming methods are not supported`);
    if (!def.responseStream) {
      impl[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
        const started = process.hrtime.bigint();
        let ctx: CallContext | undefined;
        void (async () => {
          ctx = prepare(call);
          return handler!(call.request, ctx);
        })().then(
          (res) => {
            finish(started, undefined, ctx?.caller);
            callback(null, res);
          },
          (e: unknown) => callback(finish(started, e, ctx?.caller)!),
        );
      };
    } else {
      impl[name] = (call: ServerWritableStream<unknown, unknown>) => {
        const started = process.hrtime.bigint();
        let ctx: StreamContext<unknown> | undefined;
        void (async () => {
          const base = prepare(call);
          ctx = {
            ...base,
            write: (m) =>
              new Promise<void>((resolve) => {
                if (call.write(m)) resolve();
                else call.once("drain", () => resolve());
              }),
          };
          await handler!(call.request, ctx);
        })().then(
          () => {
            finish(started, undefined, ctx?.caller);
            call.end();
          },
          (e: unknown) => {
            const error = finish(started, e, ctx?.caller)!;
            if (!call.cancelled) call.emit("error", error);
          },
        );
      };
    }
  }
  server.addService(definition as never, impl);
}
