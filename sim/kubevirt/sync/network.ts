// The synchronization endpoint of one simulated cluster: a TLS server on a loopback port with a
// server certificate signed by the cluster's current KubeVirt CA, requiring client certificates and
// trusting only the cluster's own current `kubevirt-ca` bundle; and outbound connections presenting
// the client certificate. As in KubeVirt (pkg/util/tls/tls.go verifyPeerCert) there is no
// hostname check: chain plus the common-name type of the peer.
//
// Errors reaching callers read like the gRPC errors KubeVirt's sync controller records in the
// DecentralizedLiveMigrationFailure condition, e.g.
//   rpc error: code = Unavailable desc = connection error: desc = "transport: authentication
//   handshake failed: could not verify peer certificate: x509: certificate signed by unknown authority"
import tls, { type TLSSocket } from "node:tls";
import type { AddressInfo } from "node:net";
import type { SimClock } from "../../clock.js";
import { SyncClientCN, SyncServerCN } from "../constants.js";
import { type DataHeader, FramedConn, FrameType, decodeData, encodeData, json } from "./wire.js";

export interface SyncCredentials {
  serverKeyPem: string;
  serverCertPem: string;
  clientKeyPem: string;
  clientCertPem: string;
  caBundle: string;
}

export interface SyncHandlers {
  rpc(method: string, body: unknown): Promise<unknown>;
  data(h: DataHeader, realBytes: number): void;
  fin(mid: string, ok: boolean, reason?: string): Promise<void> | void;
  /** A data connection for `mid` closed (the receiver may consider the incoming copy broken). */
  dataClosed?(mid: string): void;
}

export class RpcError extends Error {}

const CALL_TIMEOUT_S = 30; // synchronization-controller.go defaultTimeout
/** Real TLS handshakes and round trips take real time: timeouts never shrink below this (real ms). */
const MIN_REAL_TIMEOUT_MS = 1_000;

function splitHostPort(addr: string): { host: string; port: number } | undefined {
  const m = /^\[([^\]]+)\]:(\d+)$/.exec(addr) ?? /^([^:]+):(\d+)$/.exec(addr);
  if (!m) return undefined;
  return { host: m[1]!, port: Number(m[2]) };
}

function cnOf(socket: TLSSocket): string {
  const cn: string | string[] | undefined = socket.getPeerCertificate()?.subject?.CN;
  return Array.isArray(cn) ? (cn[0] ?? "") : (cn ?? "");
}

/** Maps a Node/OpenSSL handshake error to the text Go's crypto/tls + KubeVirt's verifier produce. */
function handshakeError(e: NodeJS.ErrnoException, addr: string): string {
  const code = e.code ?? "";
  const unavailable = (desc: string) => `rpc error: code = Unavailable desc = connection error: desc = ${JSON.stringify(desc)}`;
  switch (code) {
    case "ECONNREFUSED":
      return unavailable(`transport: Error while dialing: dial tcp ${addr}: connect: connection refused`);
    case "ECONNRESET":
      return unavailable(`transport: Error while dialing: read tcp ${addr}: read: connection reset by peer`);
    case "EHOSTUNREACH":
    case "ENETUNREACH":
      return unavailable(`transport: Error while dialing: dial tcp ${addr}: connect: no route to host`);
    case "UNABLE_TO_VERIFY_LEAF_SIGNATURE":
    case "UNABLE_TO_GET_ISSUER_CERT_LOCALLY":
    case "UNABLE_TO_GET_ISSUER_CERT":
    case "SELF_SIGNED_CERT_IN_CHAIN":
    case "DEPTH_ZERO_SELF_SIGNED_CERT":
    case "CERT_SIGNATURE_FAILURE":
      return unavailable("transport: authentication handshake failed: could not verify peer certificate: x509: certificate signed by unknown authority");
    case "CERT_HAS_EXPIRED":
    case "CERT_NOT_YET_VALID":
      return unavailable(
        `transport: authentication handshake failed: could not verify peer certificate: x509: certificate has expired or is not yet valid: current time ${new Date().toISOString().replace(/\.\d+Z$/, "Z")}`,
      );
    default:
      return unavailable(`transport: authentication handshake failed: ${e.message}`);
  }
}

interface Pending {
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

/** An outbound synchronization connection (one per migration and direction, as KubeVirt keeps them). */
export class SyncClient {
  private conn?: FramedConn;
  private connecting?: Promise<FramedConn>;
  private lastError?: string;
  private nextAttempt = 0;
  private backoffS = 0;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();
  private closed = false;
  /** TLS connections this client established (a reconnect after a cut counts again). */
  connections = 0;

  constructor(
    readonly address: string,
    private readonly net: SyncNetwork,
  ) {}

  get connected(): boolean {
    return !!this.conn && !this.conn.closed;
  }

  async call(method: string, body: unknown): Promise<unknown> {
    const conn = await this.connection();
    const id = ++this.seq;
    return this.await(id, () => conn.write(json(FrameType.Request, { id, method, body })));
  }

  async sendData(mid: string, sim: number, realBytes: number, kind: "disk" | "memory"): Promise<void> {
    const conn = await this.connection();
    const id = ++this.seq;
    await this.await(id, () => conn.write(encodeData({ mid, seq: id, sim, kind }, realBytes)));
  }

  async fin(mid: string, ok: boolean, reason?: string): Promise<void> {
    const conn = await this.connection();
    const id = ++this.seq;
    await this.await(id, () => conn.write(json(FrameType.Fin, { mid, seq: id, ok, reason })));
  }

  close(): void {
    this.closed = true;
    this.net.forgetClient(this);
    this.conn?.close();
    this.failAll(new RpcError("rpc error: code = Canceled desc = grpc: the client connection is closing"));
  }

  /** Cuts the connection (fault injection); the next call re-dials. */
  drop(): void {
    this.conn?.close(new Error("broken"));
  }

  private await(id: number, send: () => void): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new RpcError("rpc error: code = DeadlineExceeded desc = context deadline exceeded"));
      }, Math.max(MIN_REAL_TIMEOUT_MS, this.net.clock.realMs(CALL_TIMEOUT_S * 1000)));
      timer.unref?.();
      this.pending.set(id, { resolve, reject, timer });
      send();
    });
  }

  private failAll(e: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(e);
      this.pending.delete(id);
    }
  }

  private async connection(): Promise<FramedConn> {
    if (this.closed) throw new RpcError("rpc error: code = Canceled desc = grpc: the client connection is closing");
    if (this.conn && !this.conn.closed) return this.conn;
    if (this.connecting) return this.connecting;
    if (this.lastError && Date.now() < this.nextAttempt) throw new RpcError(this.lastError);
    this.connecting = this.dial().then(
      (c) => {
        this.connecting = undefined;
        this.lastError = undefined;
        this.backoffS = 0;
        this.conn = c;
        this.connections++;
        return c;
      },
      (e: Error) => {
        this.connecting = undefined;
        // gRPC reconnect backoff: 1s base, x1.6, max 120s, jitter 0.2 (simulated time)
        this.backoffS = this.backoffS ? Math.min(120, this.backoffS * 1.6) : 1;
        this.nextAttempt = Date.now() + this.net.clock.realMs(this.backoffS * 1000 * (0.8 + Math.random() * 0.4));
        this.lastError = e.message;
        throw e;
      },
    );
    return this.connecting;
  }

  private dial(): Promise<FramedConn> {
    const creds = this.net.credentials();
    const hp = splitHostPort(this.address);
    if (!creds) return Promise.reject(new RpcError("rpc error: code = Unavailable desc = No client certificate, client is not yet ready to talk to the server"));
    if (!hp) {
      return Promise.reject(
        new RpcError(`rpc error: code = Unavailable desc = connection error: desc = "transport: Error while dialing: dial tcp: address ${this.address}: missing port in address"`),
      );
    }
    return new Promise((resolve, reject) => {
      let settled = false;
      let conn: FramedConn | undefined;
      const fail = (msg: string) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        reject(new RpcError(msg));
      };
      const timer = setTimeout(
        () => fail("rpc error: code = DeadlineExceeded desc = context deadline exceeded"),
        Math.max(MIN_REAL_TIMEOUT_MS, this.net.clock.realMs(CALL_TIMEOUT_S * 1000)),
      );
      timer.unref?.();
      const socket = tls.connect({
        host: hp.host,
        port: hp.port,
        key: creds.clientKeyPem,
        cert: creds.clientCertPem,
        ca: creds.caBundle,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
        // KubeVirt checks the chain and the CN type, never the host name.
        checkServerIdentity: () => undefined,
      });
      socket.on("error", (e: NodeJS.ErrnoException) => {
        if (!conn) fail(handshakeError(e, this.address));
      });
      socket.on("close", () => {
        if (!conn) fail(`rpc error: code = Unavailable desc = connection error: desc = "error reading server preface: remote error: tls: unknown certificate authority"`);
      });
      socket.on("secureConnect", () => {
        const cn = cnOf(socket);
        if (cn !== SyncServerCN) {
          fail(`rpc error: code = Unavailable desc = connection error: desc = "transport: authentication handshake failed: common name is invalid, got ${cn}"`);
          return;
        }
        const c = new FramedConn(
          socket,
          (type, payload) => {
            if (type === FrameType.Hello) {
              if (settled) return;
              settled = true;
              clearTimeout(timer);
              conn = c;
              resolve(c);
              return;
            }
            this.onFrame(type, payload);
          },
          () => {
            this.net.untrack(c);
            if (!settled) {
              fail(`rpc error: code = Unavailable desc = connection error: desc = "error reading server preface: remote error: tls: unknown certificate authority"`);
              return;
            }
            this.failAll(new RpcError("rpc error: code = Unavailable desc = error reading from server: EOF"));
          },
        );
        // Tracked from the start, so a stall or cut during the handshake reaches it too.
        this.net.track(c);
        c.setStalled(this.net.stalled);
        c.write(json(FrameType.Hello, {}));
      });
    });
  }

  private onFrame(type: FrameType, payload: Buffer): void {
    const msg = JSON.parse(payload.toString()) as { id?: number; seq?: number; error?: string; body?: unknown };
    const id = type === FrameType.Response ? msg.id : msg.seq;
    const p = id === undefined ? undefined : this.pending.get(id);
    if (!p) return;
    this.pending.delete(id!);
    clearTimeout(p.timer);
    if (msg.error) p.reject(new RpcError(`rpc error: code = Unknown desc = ${msg.error}`));
    else p.resolve(msg.body);
  }
}

export class SyncNetwork {
  private server?: tls.Server;
  private serverConns = new Set<FramedConn>();
  private readonly rawSockets = new Map<tls.Server, Set<import("node:net").Socket>>();
  private addr?: string;
  private readonly conns = new Set<FramedConn>();
  private readonly clients = new Set<SyncClient>();
  stalled = false;

  constructor(
    readonly clock: SimClock,
    private readonly host: string,
    readonly credentials: () => SyncCredentials | undefined,
    private readonly handlers: SyncHandlers,
  ) {}

  get address(): string | undefined {
    return this.addr;
  }

  get listening(): boolean {
    return !!this.server;
  }

  async listen(): Promise<string> {
    const creds = this.credentials();
    if (!creds) throw new Error("synchronization credentials are not ready");
    const server = tls.createServer({
      key: creds.serverKeyPem,
      cert: creds.serverCertPem,
      ca: creds.caBundle,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: "TLSv1.2",
    });
    const serverConns = new Set<FramedConn>();
    const raw = new Set<import("node:net").Socket>();
    server.on("connection", (sock: import("node:net").Socket) => {
      raw.add(sock);
      sock.on("close", () => raw.delete(sock));
    });
    this.rawSockets.set(server, raw);
    server.on("secureConnection", (s) => this.accept(s, serverConns));
    server.on("tlsClientError", () => undefined);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, this.host, () => resolve());
    });
    const port = (server.address() as AddressInfo).port;
    this.server = server;
    this.serverConns = serverConns;
    this.addr = this.host.includes(":") ? `[${this.host}]:${port}` : `${this.host}:${port}`;
    return this.addr;
  }

  /** Applies the current certificates and CA bundle to new connections. */
  reload(): void {
    const creds = this.credentials();
    if (!this.server || !creds) return;
    this.server.setSecureContext({ key: creds.serverKeyPem, cert: creds.serverCertPem, ca: creds.caBundle });
  }

  /** A new listening port (sync-controller leader change): the old one stops accepting and its connections die. */
  async move(): Promise<string> {
    const old = this.server;
    const oldConns = this.serverConns;
    this.server = undefined;
    const addr = await this.listen();
    if (old) void this.shutdown(old);
    for (const c of [...oldConns]) c.close(new Error("listener moved"));
    return addr;
  }

  async close(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    this.addr = undefined;
    for (const c of [...this.clients]) c.close();
    for (const c of [...this.conns]) c.close();
    if (s) await this.shutdown(s);
  }

  /** Stops accepting and cuts every socket of `server`, including handshakes in progress. */
  private shutdown(server: tls.Server): Promise<void> {
    const done = new Promise<void>((r) => server.close(() => r()));
    for (const sock of this.rawSockets.get(server) ?? []) sock.destroy();
    this.rawSockets.delete(server);
    return done;
  }

  client(address: string): SyncClient {
    const c = new SyncClient(address, this);
    this.clients.add(c);
    return c;
  }

  forgetClient(c: SyncClient): void {
    this.clients.delete(c);
  }

  /** Cuts every open synchronization connection, inbound and outbound. */
  breakAll(): void {
    for (const c of [...this.conns]) c.close(new Error("connection broken"));
  }

  setStalled(s: boolean): void {
    this.stalled = s;
    for (const c of this.conns) c.setStalled(s);
  }

  track(c: FramedConn): void {
    this.conns.add(c);
  }

  untrack(c: FramedConn): void {
    this.conns.delete(c);
  }

  private accept(socket: TLSSocket, serverConns: Set<FramedConn>): void {
    // verifyPeerCert: the client certificate must carry the synchronization controller's client CN.
    if (cnOf(socket) !== SyncClientCN) {
      socket.destroy();
      return;
    }
    const dataMids = new Set<string>();
    const conn: FramedConn = new FramedConn(
      socket,
      (type, payload) => {
        switch (type) {
          case FrameType.Hello:
            conn.write(json(FrameType.Hello, {}));
            return;
          case FrameType.Request: {
            const req = JSON.parse(payload.toString()) as { id: number; method: string; body: unknown };
            this.handlers.rpc(req.method, req.body).then(
              (body) => conn.write(json(FrameType.Response, { id: req.id, body: body ?? {} })),
              (e: unknown) => conn.write(json(FrameType.Response, { id: req.id, error: e instanceof Error ? e.message : String(e) })),
            );
            return;
          }
          case FrameType.Data: {
            const { header, realBytes } = decodeData(payload);
            dataMids.add(header.mid);
            this.handlers.data(header, realBytes);
            conn.write(json(FrameType.Ack, { seq: header.seq }));
            return;
          }
          case FrameType.Fin: {
            const fin = JSON.parse(payload.toString()) as { mid: string; seq: number; ok: boolean; reason?: string };
            dataMids.delete(fin.mid);
            Promise.resolve(this.handlers.fin(fin.mid, fin.ok, fin.reason)).then(
              () => conn.write(json(FrameType.Ack, { seq: fin.seq })),
              (e: unknown) => conn.write(json(FrameType.Ack, { seq: fin.seq, error: e instanceof Error ? e.message : String(e) })),
            );
            return;
          }
          default:
            return;
        }
      },
      () => {
        this.untrack(conn);
        serverConns.delete(conn);
        for (const mid of dataMids) this.handlers.dataClosed?.(mid);
      },
    );
    serverConns.add(conn);
    this.track(conn);
    conn.setStalled(this.stalled);
  }
}
