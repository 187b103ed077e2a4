// The typed NATS client used by the broker and the agents.
//
// - connects with mutual TLS + a user JWT (`jwtAuthenticator`), reconnects forever with exponential
//   back-off and jitter, logs status changes with pino;
// - every payload is JSON validated by a zod schema: on send (`z.safeEncode`, so codecs work and
//   unknown keys are stripped; a bad value is the sender's bug and throws) and on receipt
//   (`safeParse`); a received message that is oversized, not JSON or not valid is logged (subject,
//   reason, zod issue paths) and dropped — never thrown into the caller, never crashing the process;
// - request/reply: `request` returns the parsed reply or throws a typed `BusRequestError`; `serve`
//   turns handler exceptions into error replies (header `Ferry-Error-Code`);
// - counters of accepted/dropped messages for metrics.
import {
  connect,
  headers as natsHeaders,
  jwtAuthenticator,
  NoRespondersError,
  PermissionViolationError,
  RequestError,
  TimeoutError,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import { pino, type Logger } from "pino";
import { z } from "zod";

export const ERROR_CODE_HEADER = "Ferry-Error-Code";
export const ERROR_MESSAGE_HEADER = "Ferry-Error";
/**
 * Default largest payload (8 MiB: a cluster inventory or task set of thousands of VMs). The server's
 * `max_payload` must be at least this; the launcher sets it. Narrow it per subscription (`maxBytes`).
 */
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

export interface BusTls {
  /** PEM of the ferry CA (verifies the server). */
  ca: string;
  /** Client certificate PEM (from the ferry CA). */
  cert: string;
  /** Client private key PEM. */
  key: string;
}

/** What a process needs to join the bus. */
export interface BusCredentials {
  /** e.g. ["tls://nats-0:4222", …] */
  servers: string[];
  tls: BusTls;
  /** User JWT minted by the broker (bus/auth.ts). */
  jwt: string;
  /** User nkey seed matching the JWT. */
  seed: string;
  /** Agents: `_INBOX_<cluster>` (their only subscribable inbox). */
  inboxPrefix?: string;
  /** Connection name shown in server monitoring. */
  name?: string;
}

export interface BusOptions extends BusCredentials {
  logger?: Logger;
  /** Largest payload sent or accepted, default 8 MiB (per-call `maxBytes` overrides). */
  maxMessageBytes?: number;
  /** Reconnect back-off: delay = min(maxMs, initialMs·2^attempt), then a random 50–100 % of it. */
  reconnect?: { initialMs?: number; maxMs?: number };
  /** Keep retrying the first connection too (agents starting before NATS). Default true. */
  waitOnFirstConnect?: boolean;
  /** Handshake timeout per attempt, default 10 s. */
  timeoutMs?: number;
  /** Ping interval (dead-connection detection), default 20 s. */
  pingIntervalMs?: number;
}

export type DropReason = "oversize" | "not-json" | "invalid" | "rejected" | "no-reply-subject";

export interface BusCounters {
  published: number;
  accepted: number;
  dropped: number;
  droppedBy: Record<DropReason, number>;
  /** Subscription handlers that threw (logged; the message counted as accepted). */
  handlerErrors: number;
  /** Requests served with an error reply. */
  errorReplies: number;
}

function newCounters(): BusCounters {
  return {
    published: 0,
    accepted: 0,
    dropped: 0,
    droppedBy: { oversize: 0, "not-json": 0, invalid: 0, rejected: 0, "no-reply-subject": 0 },
    handlerErrors: 0,
    errorReplies: 0,
  };
}

/** A value did not match its schema on send (a bug in the sender) or could not be encoded. */
export class BusValidationError extends Error {
  constructor(
    message: string,
    readonly subject: string,
    readonly issues: { path: string; message: string }[] = [],
  ) {
    super(message);
    this.name = "BusValidationError";
  }
}

export type RequestFailure = "timeout" | "no-responders" | "permission-denied" | "invalid-reply" | "remote-error" | "connection";

export class BusRequestError extends Error {
  constructor(
    message: string,
    readonly reason: RequestFailure,
    readonly subject: string,
    /** For remote errors: the code the server-side handler chose (`BusHandlerError`), else "internal". */
    readonly remoteCode?: string,
    /** For remote errors: the error reply's body, if it matched the reply schema (see `serve`'s `errorReply`). */
    readonly reply?: unknown,
  ) {
    super(message);
    this.name = "BusRequestError";
  }
}

/** Throw this from a `serve` handler to send a specific error code (default "internal"). */
export class BusHandlerError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "BusHandlerError";
  }
}

export interface BusMessage<T> {
  subject: string;
  data: T;
  reply?: string;
  headers?: MsgHdrs;
}

export interface BusSubscription<T> extends AsyncIterable<BusMessage<T>> {
  readonly subject: string;
  readonly counters: BusCounters;
  unsubscribe(): void;
  drain(): Promise<void>;
  /** Resolves when the subscription ends (unsubscribed, drained, connection closed), with the error if the server ended it (e.g. a permission violation). */
  readonly closed: Promise<Error | undefined>;
}

export interface SubscribeOptions<T = unknown> {
  queue?: string;
  /** Largest accepted payload for this subscription (default: the bus limit). */
  maxBytes?: number;
  /**
   * Extra check after the schema (e.g. "the cluster in the payload is the one in the subject").
   * Return a reason to drop the message, or undefined to accept it.
   */
  check?: (value: T, subject: string) => string | undefined;
}

export interface ServeOptions<Q = unknown, R = unknown> extends SubscribeOptions<Q> {
  maxReplyBytes?: number;
  /**
   * Build the body of an error reply in the reply schema (e.g. proto's RpcError), so that a reader
   * of the body alone sees a valid reply. The `Ferry-Error-Code` header is set either way.
   */
  errorReply?: (code: string, message: string) => R;
}

export interface DecodeOptions<T = unknown> {
  maxBytes?: number;
  check?: (value: T, subject: string) => string | undefined;
}

export interface ServeContext {
  subject: string;
  headers?: MsgHdrs;
}

function issuesOf(err: z.ZodError): { path: string; message: string }[] {
  return err.issues.map((i) => ({ path: i.path.map(String).join(".") || "(root)", message: i.message }));
}

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder("utf-8", { fatal: true });

export class Bus {
  readonly counters: BusCounters = newCounters();
  private readonly maxBytes: number;

  private constructor(
    readonly nc: NatsConnection,
    readonly log: Logger,
    maxBytes: number,
    private readonly credentials: { jwt: string; seed: string; tls: BusTls },
  ) {
    this.maxBytes = maxBytes;
  }

  static async connect(opts: BusOptions): Promise<Bus> {
    const log = (opts.logger ?? pino({ name: "bus" })).child({ conn: opts.name ?? "ferry" });
    // Mutable: `updateCredentials` swaps JWT/seed/certificate for the next (re)connect.
    const credentials = { jwt: opts.jwt, seed: opts.seed, tls: { ...opts.tls } };
    const initial = opts.reconnect?.initialMs ?? 250;
    const max = opts.reconnect?.maxMs ?? 30_000;
    // nats.js calls reconnectDelayHandler on every pass of its dial loop (also while waiting), and
    // dials once `lastConnect + delay` has passed; so the delay must stay stable within one attempt.
    // Attempts are counted in reconnectToServer, which nats.js calls right before each dial
    // (first connection included), and reset once connected.
    let attempt = 0;
    let delayFor = { attempt: -1, ms: 0 };
    const nc = await connect({
      servers: opts.servers,
      name: opts.name,
      tls: credentials.tls,
      authenticator: jwtAuthenticator(
        () => credentials.jwt,
        () => ENCODER.encode(credentials.seed),
      ),
      ...(opts.inboxPrefix ? { inboxPrefix: opts.inboxPrefix } : {}),
      maxReconnectAttempts: -1,
      // Kept (nats.js' default, stated here on purpose): two refusals in a row mean revoked or
      // expired credentials, which no retry with the same ones can fix. The connection closes,
      // bus.closed() resolves, and the process restarts with what its identity store holds
      // (bus/README.md "Reconnect").
      ignoreAuthErrorAbort: false,
      waitOnFirstConnect: opts.waitOnFirstConnect ?? true,
      reconnectToServer: () => {
        attempt++;
        return null; // default server selection
      },
      reconnectDelayHandler: () => {
        if (delayFor.attempt !== attempt) delayFor = { attempt, ms: reconnectDelay(attempt, initial, max) };
        return delayFor.ms;
      },
      timeout: opts.timeoutMs ?? 10_000,
      pingInterval: opts.pingIntervalMs ?? 20_000,
      maxPingOut: 3,
    });
    attempt = 0;
    const bus = new Bus(nc, log, opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES, credentials);
    log.info({ server: nc.getServer() }, "bus connected");
    void (async () => {
      for await (const s of nc.status()) {
        switch (s.type) {
          case "reconnect":
            attempt = 0;
            log.info({ server: s.server }, "bus reconnected");
            break;
          case "disconnect":
            log.warn({ server: s.server }, "bus disconnected");
            break;
          case "reconnecting":
            log.debug({ attempt }, "bus reconnecting");
            break;
          case "error":
            log.warn({ err: s.error.message }, "bus error from server");
            break;
          case "ldm":
            log.info({ server: s.server }, "bus server entering lame-duck mode");
            break;
          case "staleConnection":
            log.warn("bus connection stale");
            break;
          case "slowConsumer":
            log.warn({ subject: s.sub.getSubject(), pending: s.pending }, "bus slow consumer");
            break;
          case "update":
          case "ping":
          case "forceReconnect":
          case "close":
            break;
        }
      }
    })().catch((e: unknown) => log.error({ err: String(e) }, "bus status loop failed"));
    void nc.closed().then((err) => {
      if (err) log.error({ err: err.message }, "bus connection closed with error");
      else log.info("bus connection closed");
    });
    return bus;
  }

  /** Replace JWT, seed and/or certificate (renewal). Takes effect on the next (re)connect; call `reconnect()` to apply now. */
  updateCredentials(next: Partial<{ jwt: string; seed: string; cert: string; key: string }>): void {
    if (next.jwt !== undefined) this.credentials.jwt = next.jwt;
    if (next.seed !== undefined) this.credentials.seed = next.seed;
    if (next.cert !== undefined) this.credentials.tls.cert = next.cert;
    if (next.key !== undefined) this.credentials.tls.key = next.key;
  }

  reconnect(): Promise<void> {
    return this.nc.reconnect();
  }

  /** Validate and encode a value for the wire. Throws BusValidationError (sender bug). */
  encode<S extends z.ZodType>(subject: string, schema: S, value: z.output<S>, maxBytes: number = this.maxBytes): Uint8Array {
    let result: ReturnType<typeof z.safeEncode<S>>;
    try {
      result = z.safeEncode(schema, value);
    } catch (e) {
      throw new BusValidationError(`cannot encode message for ${subject}: ${(e as Error).message} (bus schemas must be JSON schemas or z.codec)`, subject);
    }
    if (!result.success) {
      const issues = issuesOf(result.error);
      throw new BusValidationError(
        `refusing to send an invalid message on ${subject}: ${issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
        subject,
        issues,
      );
    }
    const bytes = ENCODER.encode(JSON.stringify(result.data));
    if (bytes.length > maxBytes) {
      throw new BusValidationError(`message on ${subject} is ${bytes.length} bytes, above the limit of ${maxBytes}`, subject);
    }
    return bytes;
  }

  /**
   * Check and parse a received payload. Returns undefined (after logging and counting) when the
   * message must be dropped.
   */
  decode<S extends z.ZodType>(
    subject: string,
    schema: S,
    data: Uint8Array,
    counters: BusCounters[],
    opts: DecodeOptions<z.output<S>> = {},
  ): { ok: true; value: z.output<S> } | { ok: false; reason: DropReason; detail: string; issues?: { path: string; message: string }[] } {
    const drop = (reason: DropReason, detail: string, issues?: { path: string; message: string }[]) => {
      for (const c of counters) {
        c.dropped++;
        c.droppedBy[reason]++;
      }
      this.log.warn({ subject, reason, detail, ...(issues ? { issues } : {}), bytes: data.length }, "bus dropped message");
      return issues ? { ok: false as const, reason, detail, issues } : { ok: false as const, reason, detail };
    };
    const maxBytes = opts.maxBytes ?? this.maxBytes;
    if (data.length > maxBytes) return drop("oversize", `${data.length} bytes > ${maxBytes}`);
    let json: unknown;
    try {
      json = JSON.parse(DECODER.decode(data));
    } catch (e) {
      return drop("not-json", (e as Error).message.slice(0, 200));
    }
    let parsed: z.ZodSafeParseResult<z.output<S>>;
    try {
      parsed = schema.safeParse(json);
    } catch (e) {
      // A throwing refinement is a schema bug; the message is still only dropped.
      return drop("invalid", `schema threw: ${errText(e)}`.slice(0, 500));
    }
    if (!parsed.success) {
      const issues = issuesOf(parsed.error).slice(0, 10);
      return drop("invalid", issues.map((i) => `${i.path}: ${i.message}`).join("; ").slice(0, 500), issues);
    }
    if (opts.check) {
      let why: string | undefined;
      try {
        why = opts.check(parsed.data, subject);
      } catch (e) {
        why = `check threw: ${errText(e)}`;
      }
      if (why !== undefined) return drop("rejected", why.slice(0, 500));
    }
    for (const c of counters) c.accepted++;
    return { ok: true, value: parsed.data };
  }

  /** Validate, encode and publish. Throws BusValidationError if `value` does not match `schema`. */
  publish<S extends z.ZodType>(subject: string, schema: S, value: z.output<S>, opts: { headers?: MsgHdrs; maxBytes?: number } = {}): void {
    const bytes = this.encode(subject, schema, value, opts.maxBytes);
    this.nc.publish(subject, bytes, opts.headers ? { headers: opts.headers } : undefined);
    this.counters.published++;
  }

  /**
   * Subscribe; every message is parsed with `schema`, invalid ones are logged and dropped. With a
   * handler, messages are handled one at a time in arrival order and handler errors are logged;
   * without one, iterate the returned subscription (`for await`), which yields only valid messages.
   */
  subscribe<S extends z.ZodType>(
    subject: string,
    schema: S,
    handler?: (msg: BusMessage<z.output<S>>) => void | Promise<void>,
    opts: SubscribeOptions<z.output<S>> = {},
  ): BusSubscription<z.output<S>> {
    const sub = this.nc.subscribe(subject, opts.queue ? { queue: opts.queue } : {});
    const counters = newCounters();
    const decode = (m: Msg) => this.decode(m.subject, schema, m.data, [counters, this.counters], opts);
    async function* valid(): AsyncGenerator<BusMessage<z.output<S>>> {
      try {
        for await (const m of sub) {
          const r = decode(m);
          if (!r.ok) continue;
          const msg: BusMessage<z.output<S>> = { subject: m.subject, data: r.value };
          if (m.reply) msg.reply = m.reply;
          if (m.headers) msg.headers = m.headers;
          yield msg;
        }
      } catch {
        // The subscription was closed with an error (e.g. permission violation); `closed`
        // carries it and it is logged there. The iteration just ends.
      }
    }
    const closed = subscriptionClosed(sub, subject, this.log);
    let iterating = false;
    const result: BusSubscription<z.output<S>> = {
      subject,
      counters,
      unsubscribe: () => sub.unsubscribe(),
      drain: () => sub.drain(),
      closed,
      [Symbol.asyncIterator]: () => {
        if (iterating || handler) throw new Error(`subscription ${subject} is already being consumed`);
        iterating = true;
        return valid();
      },
    };
    if (handler) {
      void (async () => {
        for await (const msg of valid()) {
          try {
            await handler(msg);
          } catch (e) {
            counters.handlerErrors++;
            this.counters.handlerErrors++;
            this.log.error({ subject: msg.subject, err: errText(e) }, "bus handler failed");
          }
        }
      })().catch((e: unknown) => this.log.error({ subject, err: errText(e) }, "bus subscription loop failed"));
    }
    return result;
  }

  /** Request/reply with validation both ways. Throws BusValidationError (bad request value) or BusRequestError. */
  async request<Q extends z.ZodType, R extends z.ZodType>(
    subject: string,
    requestSchema: Q,
    value: z.output<Q>,
    replySchema: R,
    opts: {
      timeoutMs?: number;
      headers?: MsgHdrs;
      maxBytes?: number;
      maxReplyBytes?: number;
      /**
       * Return an error reply whose body matches `replySchema` (e.g. proto's RpcError) instead of
       * throwing. Such bodies go through the same checks as any reply (size, JSON, schema, `check`):
       * a bad one is logged and dropped, and the request fails with "remote-error".
       */
      errorsAsReplies?: boolean;
      /** Extra check of the reply after its schema (e.g. its cluster claim); a reason drops it. */
      check?: (value: z.output<R>, subject: string) => string | undefined;
    } = {},
  ): Promise<z.output<R>> {
    const bytes = this.encode(subject, requestSchema, value, opts.maxBytes);
    let reply: Msg;
    try {
      reply = await this.nc.request(subject, bytes, { timeout: opts.timeoutMs ?? 5000, ...(opts.headers ? { headers: opts.headers } : {}) });
    } catch (e) {
      throw toRequestError(subject, e);
    }
    this.counters.published++;
    const code = reply.headers?.get(ERROR_CODE_HEADER);
    const decodeOpts: DecodeOptions<z.output<R>> = {
      ...(opts.maxReplyBytes !== undefined ? { maxBytes: opts.maxReplyBytes } : {}),
      ...(opts.check ? { check: opts.check } : {}),
    };
    if (code) {
      const message = reply.headers?.get(ERROR_MESSAGE_HEADER) || "remote handler failed";
      if (opts.errorsAsReplies) {
        const body = this.decode(subject, replySchema, reply.data, [this.counters], decodeOpts);
        if (body.ok) return body.value;
        throw new BusRequestError(`${subject}: ${code}: ${message} (error reply body dropped: ${body.reason})`, "remote-error", subject, code);
      }
      // Plain bus error replies carry `{error: {code, message}}`, not the reply schema: no drop to log.
      const body = replySchema.safeParse(safeJson(reply.data));
      throw new BusRequestError(`${subject}: ${code}: ${message}`, "remote-error", subject, code, body.success ? body.data : undefined);
    }
    const r = this.decode(subject, replySchema, reply.data, [this.counters], decodeOpts);
    if (!r.ok) throw new BusRequestError(`${subject}: invalid reply (${r.reason}): ${r.detail}`, "invalid-reply", subject);
    return r.value;
  }

  /**
   * Serve requests on `subject`: each request is parsed (invalid → error reply "bad-request"),
   * the handler's result is validated against `replySchema` (invalid → "internal"), handler
   * exceptions become error replies (`BusHandlerError` code, else "internal"). Requests are handled
   * concurrently.
   */
  serve<Q extends z.ZodType, R extends z.ZodType>(
    subject: string,
    requestSchema: Q,
    replySchema: R,
    handler: (request: z.output<Q>, ctx: ServeContext) => z.output<R> | Promise<z.output<R>>,
    opts: ServeOptions<z.output<Q>, z.output<R>> = {},
  ): BusSubscription<never> {
    const counters = newCounters();
    const sub: Subscription = this.nc.subscribe(subject, {
      ...(opts.queue ? { queue: opts.queue } : {}),
      callback: (err, m) => {
        if (err) {
          this.log.warn({ subject, err: err.message }, "bus serve subscription error");
          return;
        }
        void this.handleRequest(m, requestSchema, replySchema, handler, counters, opts);
      },
    });
    const closed = subscriptionClosed(sub, subject, this.log);
    return {
      subject,
      counters,
      unsubscribe: () => sub.unsubscribe(),
      drain: () => sub.drain(),
      closed,
      [Symbol.asyncIterator]: () => {
        throw new Error("serve() subscriptions are not iterable");
      },
    };
  }

  private async handleRequest<Q extends z.ZodType, R extends z.ZodType>(
    m: Msg,
    requestSchema: Q,
    replySchema: R,
    handler: (request: z.output<Q>, ctx: ServeContext) => z.output<R> | Promise<z.output<R>>,
    counters: BusCounters,
    opts: ServeOptions<z.output<Q>, z.output<R>>,
  ): Promise<void> {
    const all = [counters, this.counters];
    if (!m.reply) {
      for (const c of all) {
        c.dropped++;
        c.droppedBy["no-reply-subject"]++;
      }
      this.log.warn({ subject: m.subject, reason: "no-reply-subject" }, "bus dropped message");
      return;
    }
    const respondError = (code: string, message: string) => {
      for (const c of all) c.errorReplies++;
      const h = natsHeaders();
      h.set(ERROR_CODE_HEADER, code);
      h.set(ERROR_MESSAGE_HEADER, message.replace(/[\r\n]+/g, " ").slice(0, 1000));
      let body: Uint8Array | undefined;
      if (opts.errorReply) {
        try {
          body = this.encode(m.subject, replySchema, opts.errorReply(code, message), opts.maxReplyBytes);
        } catch (e) {
          this.log.error({ subject: m.subject, err: errText(e) }, "bus errorReply produced an invalid reply");
        }
      }
      this.safeRespond(m, body ?? ENCODER.encode(JSON.stringify({ error: { code, message } })), h);
    };
    const r = this.decode(m.subject, requestSchema, m.data, all, opts);
    if (!r.ok) {
      respondError("bad-request", `${r.reason}: ${r.detail}`);
      return;
    }
    let result: z.output<R>;
    try {
      const ctx: ServeContext = { subject: m.subject };
      if (m.headers) ctx.headers = m.headers;
      result = await handler(r.value, ctx);
    } catch (e) {
      const code = e instanceof BusHandlerError ? e.code : "internal";
      this.log.warn({ subject: m.subject, code, err: errText(e) }, "bus request handler failed");
      respondError(code, errText(e));
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.encode(m.subject, replySchema, result, opts.maxReplyBytes);
    } catch (e) {
      this.log.error({ subject: m.subject, err: errText(e) }, "bus request handler returned an invalid reply");
      respondError("internal", `handler returned an invalid reply: ${errText(e)}`);
      return;
    }
    this.safeRespond(m, bytes);
  }

  private safeRespond(m: Msg, data: Uint8Array, headers?: MsgHdrs): void {
    try {
      m.respond(data, headers ? { headers } : undefined);
      this.counters.published++;
    } catch (e) {
      this.log.warn({ subject: m.subject, err: errText(e) }, "bus could not send reply");
    }
  }

  flush(): Promise<void> {
    return this.nc.flush();
  }

  /** Let subscriptions finish what they received, then close. */
  drain(): Promise<void> {
    return this.nc.isClosed() ? Promise.resolve() : this.nc.drain();
  }

  close(): Promise<void> {
    return this.nc.close();
  }

  /** Resolves when the connection is closed for good (error if it died, e.g. revoked). */
  closed(): Promise<void | Error> {
    return this.nc.closed();
  }
}

/**
 * Back-off before reconnect attempt `attempt` (1 = the first retry): min(maxMs, initialMs·2^attempt),
 * then a random 50–100 % of it, so that agents cut off together do not redial together.
 * `random` is Math.random's contract: a number in [0, 1).
 */
export function reconnectDelay(attempt: number, initialMs: number, maxMs: number, random: () => number = Math.random): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(attempt, 0), 30));
  return Math.round(base / 2 + (random() * base) / 2);
}

function subscriptionClosed(sub: Subscription, subject: string, log: Logger): Promise<Error | undefined> {
  return sub.closed.then(
    (v) => {
      if (v instanceof Error) {
        log.error({ subject, err: v.message }, "bus subscription ended by the server");
        return v;
      }
      return undefined;
    },
    (e: unknown) => {
      log.error({ subject, err: errText(e) }, "bus subscription ended with error");
      return e instanceof Error ? e : new Error(String(e));
    },
  );
}

function safeJson(data: Uint8Array): unknown {
  try {
    return JSON.parse(DECODER.decode(data));
  } catch {
    return undefined;
  }
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

function toRequestError(subject: string, e: unknown): BusRequestError {
  if (e instanceof RequestError && e.isNoResponders()) return new BusRequestError(`${subject}: no responders`, "no-responders", subject);
  if (e instanceof NoRespondersError || (e instanceof Error && e.cause instanceof NoRespondersError)) {
    return new BusRequestError(`${subject}: no responders`, "no-responders", subject);
  }
  if (e instanceof PermissionViolationError || (e instanceof Error && e.cause instanceof PermissionViolationError)) {
    return new BusRequestError(`${subject}: ${e.message}`, "permission-denied", subject);
  }
  if (e instanceof TimeoutError || (e instanceof Error && e.cause instanceof TimeoutError)) {
    return new BusRequestError(`${subject}: request timed out`, "timeout", subject);
  }
  return new BusRequestError(`${subject}: ${errText(e)}`, "connection", subject);
}

/** Connect to the bus (see BusOptions). */
export function connectBus(opts: BusOptions): Promise<Bus> {
  return Bus.connect(opts);
}
