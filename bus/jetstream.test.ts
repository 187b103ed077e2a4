// JetStream helpers against a real single-node server: typed KV with compare-and-set, invalid
// stored values, watch; the events stream with idempotent publishes.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { MAX_MESSAGE_BYTES } from "../proto/bus/index.js";
import { z } from "zod";
import {
  BusValidationError,
  connectBus,
  ensureEventsStream,
  EVENTS_STREAM,
  KvValueError,
  publishEvent,
  startNats,
  typedKv,
  type Bus,
  type NatsHarness,
  type TypedKv,
} from "./index.js";
import { captureLogs, waitFor } from "./test-support.js";

const Migration = z.object({ phase: z.enum(["Pending", "Migrating", "Succeeded"]), attempt: z.number().int() });
const Event = z.object({ migration: z.string(), phase: z.string(), generation: z.number().int() });

const logs = captureLogs();
let h: NatsHarness;
let broker: Bus;
let kv: TypedKv<typeof Migration>;

beforeAll(async () => {
  h = await startNats();
  broker = await connectBus({ ...(await h.brokerCredentials()), logger: logs.logger });
  kv = await typedKv(broker, "FERRY_MIGRATIONS", Migration, { history: 5 });
});

afterAll(async () => {
  await broker?.close();
  await h?.stop();
});

describe("typed KV", () => {
  it("creates once and updates only at the expected revision", async () => {
    const r1 = await kv.create("m1", { phase: "Pending", attempt: 1 });
    await expect(kv.create("m1", { phase: "Pending", attempt: 1 })).rejects.toThrow(/wrong last sequence|exists/i);
    const got = await kv.get("m1");
    expect(got).toMatchObject({ key: "m1", value: { phase: "Pending", attempt: 1 }, revision: r1 });
    const r2 = await kv.update("m1", { phase: "Migrating", attempt: 1 }, r1);
    expect(r2).toBeGreaterThan(r1);
    // A writer holding the old revision loses.
    await expect(kv.update("m1", { phase: "Succeeded", attempt: 1 }, r1)).rejects.toThrow(/wrong last sequence/i);
    expect((await kv.get("m1"))?.value.phase).toBe("Migrating");
  });

  it("validates on write and on read", async () => {
    await expect(kv.put("m2", { phase: "Paused", attempt: 1 } as unknown as z.infer<typeof Migration>)).rejects.toBeInstanceOf(BusValidationError);
    await kv.kv.put("m3", JSON.stringify({ phase: "Pending", attempt: "one" }));
    const err = await kv.get("m3").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(KvValueError);
    expect((err as Error).message).toMatch(/FERRY_MIGRATIONS\/m3@\d+ does not match its schema: attempt:/);
    await kv.kv.put("m4", "{not json");
    await expect(kv.get("m4")).rejects.toThrow(/is not JSON/);
    expect(await kv.get("absent")).toBeUndefined();
  });

  it("deletes (optionally at a revision) and lists keys", async () => {
    const r = await kv.put("m5", { phase: "Pending", attempt: 1 });
    await expect(kv.delete("m5", { revision: r - 1 })).rejects.toThrow(/wrong last sequence/i);
    await kv.delete("m5", { revision: r });
    expect(await kv.get("m5")).toBeUndefined();
    expect((await kv.keys()).sort()).toEqual(["m1", "m3", "m4"]);
  });

  it("watches current values and updates, skipping invalid ones with a log line", async () => {
    const seen: string[] = [];
    const it = kv.watch({ key: "w.>" });
    await kv.put("w.1", { phase: "Pending", attempt: 1 });
    const consumer = (async () => {
      for await (const e of it) {
        seen.push(e.deleted ? `del ${e.key}` : `${e.key}=${e.value.phase}`);
        if (seen.length === 3) break;
      }
    })();
    await kv.kv.put("w.bad", "[]");
    await kv.put("w.1", { phase: "Migrating", attempt: 1 });
    await kv.delete("w.1");
    await consumer;
    expect(seen).toEqual(["w.1=Pending", "w.1=Migrating", "del w.1"]);
    await waitFor(() => logs.lines.some((l) => l["msg"] === "kv watch skipped invalid value" && l["key"] === "w.bad"), "skip log");
  });
});

describe("events stream", () => {
  it("is created idempotently on ferry.v1.events.>", async () => {
    const a = await ensureEventsStream(broker, { replicas: 1 });
    const b = await ensureEventsStream(broker, { replicas: 1, maxAgeMs: 3600_000 });
    expect(a.config.subjects).toEqual(["ferry.v1.events.>"]);
    expect(b.config.max_age).toBe(3600_000 * 1_000_000);
  });

  it("stores validated events and deduplicates retried publishes by id", async () => {
    const ev = { migration: "m1", phase: "Migrating", generation: 2 };
    const a1 = await publishEvent(broker, "ferry.v1.events.p1.m1", Event, ev, { msgId: "m1/2" });
    const a2 = await publishEvent(broker, "ferry.v1.events.p1.m1", Event, ev, { msgId: "m1/2" });
    expect(a1.duplicate).toBe(false);
    expect(a2.duplicate).toBe(true);
    expect(a2.seq).toBe(a1.seq);
    await expect(publishEvent(broker, "ferry.v1.events.p1.m1", Event, { ...ev, generation: "x" } as unknown as typeof ev)).rejects.toBeInstanceOf(
      BusValidationError,
    );
    const jsm = await jetstreamManager(broker.nc);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(1);
  });

  it("refuses an event over the event limit on write, so readers never meet one they would skip", async () => {
    const jsm = await jetstreamManager(broker.nc);
    const before = (await jsm.streams.info(EVENTS_STREAM)).state.messages;
    // A schema without the Text bound: only the byte limit stands in the way.
    const Loose = z.object({ migration: z.string() });
    const big = { migration: "x".repeat(MAX_MESSAGE_BYTES.event) };
    const e = await publishEvent(broker, "ferry.v1.events.p1.m2", Loose, big).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BusValidationError);
    expect((e as Error).message).toMatch(new RegExp(`is ${MAX_MESSAGE_BYTES.event + 16} bytes, above the limit of ${MAX_MESSAGE_BYTES.event}`));
    // The stream refuses it too, whoever publishes (max_msg_size).
    const info = await jsm.streams.info(EVENTS_STREAM);
    expect(info.config.max_msg_size).toBeGreaterThanOrEqual(MAX_MESSAGE_BYTES.event);
    await expect(jetstream(broker.nc).publish("ferry.v1.events.p1.m2", new Uint8Array(info.config.max_msg_size + 1))).rejects.toThrow(/message size exceeds maximum allowed/);
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(before);
    // One at the limit is stored.
    await publishEvent(broker, "ferry.v1.events.p1.m2", Loose, { migration: "x".repeat(MAX_MESSAGE_BYTES.event - 16) });
    expect((await jsm.streams.info(EVENTS_STREAM)).state.messages).toBe(before + 1);
  });
});
