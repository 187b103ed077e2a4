// Generic compare-and-set helpers over bus/jetstream.ts TypedKv, and the buckets the broker opens.
// Every read-modify-write in the broker goes through `mutate`: read the value and its revision,
// compute the next value with a pure function, write it only if nobody wrote in between, retry
// on a conflict. Records of the core (plans, migrations) use the same helpers with their schemas.
import type { z } from "zod";
import { ensureKv, TypedKv, typedKv, type Bus, type KvBucketOptions, type TypedEntry } from "../../bus/index.js";
import { KV_BUCKETS } from "../../proto/bus/subjects.js";
import { ClusterRecord, LeaderLease, RevocationList, TokenRecord } from "./records.js";

/** A compare-and-set write lost: someone else wrote the key first. */
export function isCasConflict(e: unknown): boolean {
  const cause = e instanceof Error ? (e as { cause?: unknown }).cause : undefined;
  const text = `${e instanceof Error ? e.message : String(e)} ${cause instanceof Error ? cause.message : ""}`;
  return /wrong last sequence|key exists|already exists/i.test(text);
}

export class CasExhaustedError extends Error {
  constructor(
    readonly bucket: string,
    readonly key: string,
    attempts: number,
  ) {
    super(`${bucket}/${key}: gave up after ${attempts} conflicting concurrent writes; retry the request`);
    this.name = "CasExhaustedError";
  }
}

export interface MutateResult<T> {
  /** The value now stored (undefined when absent and the change left it absent). */
  value: T | undefined;
  revision: number;
  /** False when `change` returned the current value unchanged (nothing written). */
  changed: boolean;
}

/** Returned by a `mutate` change function to leave the key as it is. */
export const UNCHANGED: unique symbol = Symbol("unchanged");

/**
 * Read-modify-write with compare-and-set. `change(current)` is pure: it returns the next value or
 * UNCHANGED; it may throw to abort (the error propagates, nothing is written). On a conflict the
 * value is read again and `change` runs again, up to `attempts` times.
 */
export async function mutate<S extends z.ZodType>(
  kv: TypedKv<S>,
  key: string,
  change: (current: TypedEntry<z.output<S>> | undefined) => z.output<S> | typeof UNCHANGED,
  opts: { attempts?: number } = {},
): Promise<MutateResult<z.output<S>>> {
  const attempts = opts.attempts ?? 10;
  for (let i = 0; i < attempts; i++) {
    const current = await kv.get(key);
    const next = change(current);
    if (next === UNCHANGED) return { value: current?.value, revision: current?.revision ?? 0, changed: false };
    try {
      const revision = current ? await kv.update(key, next, current.revision) : await kv.create(key, next);
      return { value: next, revision, changed: true };
    } catch (e) {
      if (!isCasConflict(e)) throw e;
    }
  }
  throw new CasExhaustedError(kv.bucket, key, attempts);
}

/** Every valid value under a key prefix (invalid ones are reported through `onInvalid` and skipped). */
export async function listValues<S extends z.ZodType>(
  kv: TypedKv<S>,
  prefix: string,
  onInvalid: (key: string, err: Error) => void,
): Promise<TypedEntry<z.output<S>>[]> {
  const keys = (await kv.keys(`${prefix}>`)).sort();
  const out: TypedEntry<z.output<S>>[] = [];
  for (const key of keys) {
    try {
      const e = await kv.get(key);
      if (e) out.push(e);
    } catch (err) {
      onInvalid(key, err as Error);
    }
  }
  return out;
}

export interface StateOptions {
  /** 1 or 3 (config nats.kvReplicas). */
  replicas: number;
  /** Memory storage (tests). */
  memory?: boolean;
}

/** Token records live a week after creation at most (tokens expire within a day). */
export const TOKEN_RECORD_TTL_MS = 7 * 24 * 3600 * 1000;

export interface BrokerState {
  clusters: TypedKv<typeof ClusterRecord>;
  /** The same bucket as `clusters`, key `revocations`. */
  revocations: TypedKv<typeof RevocationList>;
  tokens: TypedKv<typeof TokenRecord>;
  leader: TypedKv<typeof LeaderLease>;
  /** Open (or create) another broker bucket with a schema, e.g. the core's plans and migrations. */
  bucket<S extends z.ZodType>(name: (typeof KV_BUCKETS)[keyof typeof KV_BUCKETS], schema: S, opts?: Omit<KvBucketOptions, "replicas" | "memory">): Promise<TypedKv<S>>;
}

/** Create or open the broker's buckets (idempotent: every replica calls it at start-up). */
export async function openState(bus: Bus, opts: StateOptions): Promise<BrokerState> {
  const base: KvBucketOptions = { replicas: opts.replicas, ...(opts.memory ? { memory: true } : {}) };
  const clusters = await typedKv(bus, KV_BUCKETS.clusters, ClusterRecord, { ...base, history: 5, description: "ferry clusters and the revocation list" });
  const revocations = new TypedKv(clusters.kv, KV_BUCKETS.clusters, RevocationList, bus);
  const tokens = await typedKv(bus, KV_BUCKETS.tokens, TokenRecord, { ...base, ttlMs: TOKEN_RECORD_TTL_MS, description: "ferry enrollment tokens (hashes)" });
  const leader = await typedKv(bus, KV_BUCKETS.leader, LeaderLease, { ...base, description: "ferry broker leader lease" });
  // The controller's buckets are created here, before FERRY_EVENTS reserves its byte budget (a
  // JetStream server whose file store is no larger than that budget refuses streams created later).
  for (const name of [KV_BUCKETS.plans, KV_BUCKETS.migrations]) await ensureKv(bus, name, { ...base, history: 5 });
  return {
    clusters,
    revocations,
    tokens,
    leader,
    bucket: (name, schema, o = {}) => typedKv(bus, name, schema, { ...base, history: 5, ...o }),
  };
}
