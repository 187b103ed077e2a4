// JetStream helpers for the broker: KV buckets (replicas, compare-and-set) with zod-typed values,
// and the FERRY_EVENTS stream. Agents have no JetStream permissions at all.
import { jetstream, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType, type PubAck, type StreamInfo } from "@nats-io/jetstream";
import { Kvm, type KV, type KvEntry } from "@nats-io/kv";
import type { MsgHdrs, QueuedIterator } from "@nats-io/transport-node";
import { z } from "zod";
import { MAX_MESSAGE_BYTES } from "../proto/bus/codec.js";
import { EVENTS_STREAM, EVENTS_SUBJECTS } from "./subjects.js";
import type { Bus } from "./client.js";

export interface KvBucketOptions {
  /** 1 (single node) or 3 (survives the loss of a NATS node). Default 1. */
  replicas?: number;
  /** Values kept per key, default 1 (max 64). */
  history?: number;
  /** Largest value in bytes, default: the bus limit. */
  maxValueBytes?: number;
  /** Entry TTL in ms (e.g. a leader lease bucket), default none. */
  ttlMs?: number;
  description?: string;
  /** Memory storage instead of file (tests/bench). */
  memory?: boolean;
}

/** Errors a JetStream cluster returns while it is (re)forming; worth retrying for a while. */
const TRANSIENT = /insufficient resources|no suitable peers|temporarily unavailable|not currently available|no responders|timeout|timed out|stream is offline|leader/i;

/**
 * Retry a JetStream administrative call while the cluster reports transient errors (leader
 * election, peers not yet current), up to `timeoutMs`.
 */
export async function retryTransient<T>(what: string, op: () => Promise<T>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    try {
      return await op();
    } catch (e) {
      // nats.js reports a JetStream API request nobody answered (a busy or restarting server) as
      // JetStreamNotEnabled with the no-responders error as its cause.
      const cause = (e as Error).cause;
      const text = `${(e as Error).name} ${(e as Error).message} ${cause instanceof Error ? cause.message : ""}`;
      if (!TRANSIENT.test(text) || Date.now() + delay > deadline) {
        throw new Error(`${what}: ${(e as Error).message}`, { cause: e });
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/** Create the bucket if missing (or open it if it exists). Retries while a JetStream cluster settles. */
export async function ensureKv(bus: Bus, bucket: string, opts: KvBucketOptions = {}): Promise<KV> {
  const kvm = new Kvm(bus.nc);
  return retryTransient(`create KV bucket ${bucket}`, () => kvm.create(bucket, {
    replicas: opts.replicas ?? 1,
    history: opts.history ?? 1,
    ...(opts.maxValueBytes !== undefined ? { maxValueSize: opts.maxValueBytes } : {}),
    ...(opts.ttlMs !== undefined ? { ttl: opts.ttlMs } : {}),
    ...(opts.description !== undefined ? { description: opts.description } : {}),
    storage: opts.memory ? StorageType.Memory : StorageType.File,
  }));
}

/** Open an existing bucket (fails if it does not exist). */
export function openKv(bus: Bus, bucket: string): Promise<KV> {
  return new Kvm(bus.nc).open(bucket);
}

export class KvValueError extends Error {
  constructor(
    message: string,
    readonly bucket: string,
    readonly key: string,
  ) {
    super(message);
    this.name = "KvValueError";
  }
}

export interface TypedEntry<T> {
  key: string;
  value: T;
  revision: number;
  created: Date;
}

/**
 * A KV bucket whose values are JSON validated by a zod schema on write and on read. `create` and
 * `update(key, value, revision)` are the compare-and-set primitives (the write fails if someone
 * else wrote first); `get` returns the revision to pass to `update`.
 */
export class TypedKv<S extends z.ZodType> {
  constructor(
    readonly kv: KV,
    readonly bucket: string,
    readonly schema: S,
    private readonly bus: Bus,
  ) {}

  private encode(key: string, value: z.output<S>): Uint8Array {
    return this.bus.encode(`kv ${this.bucket}/${key}`, this.schema, value);
  }

  private decodeEntry(e: KvEntry): TypedEntry<z.output<S>> {
    let json: unknown;
    try {
      json = e.json();
    } catch (err) {
      throw new KvValueError(`${e.bucket}/${e.key}@${e.revision} is not JSON: ${(err as Error).message}`, e.bucket, e.key);
    }
    const r = this.schema.safeParse(json);
    if (!r.success) {
      const detail = r.error.issues.map((i) => `${i.path.map(String).join(".") || "(root)"}: ${i.message}`).join("; ");
      throw new KvValueError(`${e.bucket}/${e.key}@${e.revision} does not match its schema: ${detail}`, e.bucket, e.key);
    }
    return { key: e.key, value: r.data, revision: e.revision, created: e.created };
  }

  /** Current value, or undefined when absent or deleted. Throws KvValueError if the stored value is invalid. */
  async get(key: string): Promise<TypedEntry<z.output<S>> | undefined> {
    const e = await this.kv.get(key);
    if (!e || e.operation !== "PUT") return undefined;
    return this.decodeEntry(e);
  }

  /** Write only if the key does not exist; returns the new revision. */
  async create(key: string, value: z.output<S>): Promise<number> {
    return this.kv.create(key, this.encode(key, value));
  }

  /** Write only if the key is still at `revision`; returns the new revision. */
  async update(key: string, value: z.output<S>, revision: number): Promise<number> {
    return this.kv.update(key, this.encode(key, value), revision);
  }

  /** Unconditional write. */
  async put(key: string, value: z.output<S>): Promise<number> {
    return this.kv.put(key, this.encode(key, value));
  }

  delete(key: string, opts: { revision?: number } = {}): Promise<void> {
    return this.kv.delete(key, opts.revision !== undefined ? { previousSeq: opts.revision } : {});
  }

  async keys(filter?: string): Promise<string[]> {
    const out: string[] = [];
    for await (const k of await this.kv.keys(filter)) out.push(k);
    return out;
  }

  /**
   * Watch values (current values first, then updates). Invalid stored values are logged and skipped;
   * deletes yield `{key, deleted: true}`.
   */
  async *watch(opts: { key?: string } = {}): AsyncGenerator<
    ({ deleted: false } & TypedEntry<z.output<S>>) | { deleted: true; key: string; revision: number }
  > {
    const it: QueuedIterator<KvEntry> = await this.kv.watch(opts.key ? { key: opts.key } : {});
    try {
      for await (const e of it) {
        if (e.operation !== "PUT") {
          yield { deleted: true, key: e.key, revision: e.revision };
          continue;
        }
        try {
          yield { deleted: false, ...this.decodeEntry(e) };
        } catch (err) {
          this.bus.log.warn({ bucket: e.bucket, key: e.key, err: (err as Error).message }, "kv watch skipped invalid value");
        }
      }
    } finally {
      it.stop();
    }
  }
}

export async function typedKv<S extends z.ZodType>(bus: Bus, bucket: string, schema: S, opts: KvBucketOptions = {}): Promise<TypedKv<S>> {
  return new TypedKv(await ensureKv(bus, bucket, opts), bucket, schema, bus);
}

export interface EventsStreamOptions {
  replicas?: number;
  /** Keep events this long, default 30 days. */
  maxAgeMs?: number;
  /** Cap on stored bytes, default 1 GiB. */
  maxBytes?: number;
  memory?: boolean;
}

/** Create (or update) the FERRY_EVENTS stream on `ferry.v1.events.>`. */
export async function ensureEventsStream(bus: Bus, opts: EventsStreamOptions = {}): Promise<StreamInfo> {
  const jsm = await retryTransient("JetStream API", () => jetstreamManager(bus.nc));
  const config = {
    name: EVENTS_STREAM,
    subjects: [EVENTS_SUBJECTS],
    retention: RetentionPolicy.Limits,
    storage: opts.memory ? StorageType.Memory : StorageType.File,
    discard: DiscardPolicy.Old,
    num_replicas: opts.replicas ?? 1,
    max_age: (opts.maxAgeMs ?? 30 * 24 * 3600 * 1000) * 1_000_000, // nanoseconds
    max_bytes: opts.maxBytes ?? 1024 * 1024 * 1024,
    duplicate_window: 2 * 60 * 1_000_000_000,
    // The server refuses what readers would skip (headers such as Nats-Msg-Id count too).
    max_msg_size: MAX_MESSAGE_BYTES.event + EVENT_HEADER_ALLOWANCE,
  };
  return retryTransient(`create stream ${EVENTS_STREAM}`, async () => {
    try {
      await jsm.streams.info(EVENTS_STREAM);
    } catch (e) {
      if (!/not found/i.test((e as Error).message)) throw e;
      return jsm.streams.add(config);
    }
    return jsm.streams.update(EVENTS_STREAM, config);
  });
}

/** Room for headers on top of an event's payload in the stream's max_msg_size. */
const EVENT_HEADER_ALLOWANCE = 1024;

/**
 * Publish an event into the stream and wait for the ack. `msgId` (e.g. `<migration>/<generation>`)
 * makes a retried publish idempotent within the duplicate window. The payload must fit the event
 * limit (MAX_MESSAGE_BYTES.event) that readers of the stream enforce; a larger one throws
 * BusValidationError and is not stored.
 */
export async function publishEvent<S extends z.ZodType>(
  bus: Bus,
  subject: string,
  schema: S,
  value: z.output<S>,
  opts: { msgId?: string; headers?: MsgHdrs; timeoutMs?: number } = {},
): Promise<PubAck> {
  const js = jetstream(bus.nc);
  const bytes = bus.encode(subject, schema, value, MAX_MESSAGE_BYTES.event);
  return js.publish(subject, bytes, {
    ...(opts.msgId ? { msgID: opts.msgId } : {}),
    ...(opts.headers ? { headers: opts.headers } : {}),
    timeout: opts.timeoutMs ?? 5000,
  });
}
