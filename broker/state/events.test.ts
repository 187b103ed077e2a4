// The FERRY_EVENTS plumbing on a real nats-server: publish with dedupe, follow one plan from a
// sequence (stored, then live), OUT_OF_RANGE once the sequence aged out — directly and through
// PlanService.WatchPlan over gRPC (a controller stand-in supplies the snapshot and the changes).
import { status, type ServiceError } from "@grpc/grpc-js";
import { jetstreamManager } from "@nats-io/jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../bus/test-support.js";
import { BUS_API_VERSION, EVENTS_STREAM, MAX_MESSAGE_BYTES, TEXT_MAX, type Event, type MigrationState } from "../../proto/bus/index.js";
import { MIGRATION_STATE_TO_PROTO } from "../../proto/convert.js";
import { Migration } from "../../proto/gen/ferry/v1/migrations.js";
import { Plan, type WatchPlanResponse } from "../../proto/gen/ferry/v1/plans.js";
import type { RunningBroker } from "../broker.js";
import { BrokerError } from "../errors.js";
import { streamPlanFeed, type PlanChange } from "../server/watch.js";
import { startBrokerEnv, type BrokerClients, type BrokerEnv } from "../testing.js";
import { EventsOutOfRangeError, type EventFeed, type FeedEntry } from "./events.js";

let env: BrokerEnv;
let broker: RunningBroker & { grpcAddress: string };
let admin: BrokerClients;
let feed: EventFeed;
/** The controller stand-in's records: migration uid → state. */
const records = new Map<string, Map<string, MigrationState>>();

function event(plan: string, migrationUid: string | undefined, generation: number, state?: MigrationState): Event {
  return {
    apiVersion: BUS_API_VERSION,
    kind: "Event",
    plan,
    ...(migrationUid ? { migrationUid } : {}),
    generation,
    time: new Date().toISOString(),
    type: "Normal",
    reason: "StateChanged",
    message: `${migrationUid ?? plan} → ${state ?? "?"}`,
    ...(state ? { migrationState: state } : {}),
  };
}

const migrationChange = (plan: string, uid: string, state: MigrationState): PlanChange => ({
  $case: "migration",
  value: Migration.fromPartial({ uid, plan, name: `${plan}/default/${uid}`, state: MIGRATION_STATE_TO_PROTO[state] }),
});

beforeAll(async () => {
  env = await startBrokerEnv();
  broker = await env.startInProcess("broker-0", {}, {
    controller: (rt) => ({
      plans: {
        watchPlan: (req, ctx) =>
          streamPlanFeed(
            rt.events,
            {
              snapshot: (plan) => {
                const migrations = records.get(plan);
                if (!migrations) return Promise.reject(new BrokerError("not-found", `plan "${plan}" does not exist`));
                return Promise.resolve([{ $case: "plan", value: Plan.fromPartial({ name: plan }) }, ...[...migrations].map(([uid, s]) => migrationChange(plan, uid, s))]);
              },
              changesFor: (e: FeedEntry) => Promise.resolve(e.event.migrationUid && e.event.migrationState ? [migrationChange(e.event.plan, e.event.migrationUid, e.event.migrationState)] : []),
            },
            req,
            ctx,
          ),
      },
    }),
  });
  feed = broker.runtime.events;
  admin = await env.adminClients(broker.grpcAddress);
  await waitFor(() => broker.runtime.leader.isLeader, "elected");
});

afterAll(async () => {
  admin?.close();
  await env?.stop();
});

async function collect(plan: string, afterSeq: number, n: number): Promise<FeedEntry[]> {
  const ac = new AbortController();
  const out: FeedEntry[] = [];
  for await (const e of feed.follow(plan, { afterSeq, signal: ac.signal })) {
    out.push(e);
    if (out.length === n) ac.abort();
  }
  return out;
}

describe("event feed", () => {
  it("publishes idempotently and follows one plan from a sequence, stored events first, then live ones", async () => {
    const a1 = await feed.publish(event("alpha", "m1", 1, "Pending"));
    await feed.publish(event("beta", "m9", 1, "Pending"));
    const a2 = await feed.publish(event("alpha", "m1", 2, "Validating"));
    const again = await feed.publish(event("alpha", "m1", 2, "Validating"));
    expect(again).toEqual({ seq: a2.seq, duplicate: true });

    const all = await collect("alpha", 0, 2);
    expect(all.map((e) => [e.seq, e.event.generation])).toEqual([
      [a1.seq, 1],
      [a2.seq, 2],
    ]);
    // Resume after the first: the second, then a live one published while following.
    const live = collect("alpha", a1.seq, 2);
    const a3 = await feed.publish(event("alpha", undefined, 3));
    expect((await live).map((e) => e.seq)).toEqual([a2.seq, a3.seq]);
  });

  it("clips a long event message instead of losing the event, and the stored event fits the event limit", async () => {
    // Control characters are the dearest on the wire (6 bytes each as JSON); the emoji makes the
    // cut fall inside a surrogate pair.
    const message = `${"\u0001".repeat(TEXT_MAX - 2)}😀${"x".repeat(10_000)}`;
    const { seq } = await feed.publish({ ...event("epsilon", "m1", 1, "Failed"), message });
    const [stored] = await collect("epsilon", seq - 1, 1);
    expect(stored!.seq).toBe(seq);
    expect(stored!.event.message).toBe(`${"\u0001".repeat(TEXT_MAX - 2)}…`);
    const jsm = await jetstreamManager(broker.runtime.bus.nc);
    const raw = await jsm.streams.getMessage(EVENTS_STREAM, { seq });
    expect(raw!.data.length).toBeLessThanOrEqual(MAX_MESSAGE_BYTES.event);
  });

  it("refuses a sequence that aged out of the stream or lies beyond it", async () => {
    const first = await feed.publish(event("gamma", "m1", 1, "Pending"));
    const second = await feed.publish(event("gamma", "m1", 2, "Queued"));
    const jsm = await jetstreamManager(broker.runtime.bus.nc);
    await jsm.streams.purge(EVENTS_STREAM, { seq: second.seq }); // everything before `second` ages out
    await expect(collect("gamma", first.seq - 1, 1)).rejects.toBeInstanceOf(EventsOutOfRangeError);
    await expect(collect("gamma", second.seq + 1000, 1)).rejects.toThrow(/beyond the last event/);
    // Right at the edge nothing is missing.
    expect((await collect("gamma", first.seq, 1)).map((e) => e.seq)).toEqual([second.seq]);
  });
});

describe("WatchPlan over gRPC", () => {
  it("sends a snapshot stamped with the stream position, then live changes; resumes after a seq; OUT_OF_RANGE when aged out", async () => {
    records.set("delta", new Map([["m1", "Queued"]]));
    const seen: WatchPlanResponse[] = [];
    const stream = admin.plans.watchPlan({ name: "delta", afterSeq: 0 });
    stream.on("data", (m: WatchPlanResponse) => void seen.push(m));
    const ended = new Promise<ServiceError | undefined>((resolve) => {
      stream.on("error", (e: ServiceError) => resolve(e));
      stream.on("end", () => resolve(undefined));
    });
    await waitFor(() => seen.some((m) => m.snapshotComplete), "snapshot");
    expect(seen.map((m) => m.change?.$case)).toEqual(["plan", "migration"]);
    const snapSeq = seen[0]!.seq;
    expect(seen.every((m) => m.seq === snapSeq)).toBe(true);

    const e1 = await feed.publish(event("delta", "m1", 2, "Migrating"));
    await feed.publish(event("epsilon", "m7", 1, "Migrating")); // another plan: not sent
    const e2 = await feed.publish(event("delta", "m1", 3, "Succeeded"));
    await waitFor(() => seen.length === 4, "two live changes");
    expect(seen.slice(2).map((m) => [m.seq, m.change?.$case === "migration" ? m.change.value.state : undefined, m.message])).toEqual([
      [e1.seq, MIGRATION_STATE_TO_PROTO.Migrating, "m1 → Migrating"],
      [e2.seq, MIGRATION_STATE_TO_PROTO.Succeeded, "m1 → Succeeded"],
    ]);
    stream.cancel();
    expect((await ended)?.code).toBe(status.CANCELLED);

    // Reconnect after the first live change: exactly what followed it.
    const resumed: WatchPlanResponse[] = [];
    const s2 = admin.plans.watchPlan({ name: "delta", afterSeq: e1.seq });
    s2.on("data", (m: WatchPlanResponse) => void resumed.push(m));
    s2.on("error", () => undefined);
    await waitFor(() => resumed.length === 1, "resumed change");
    expect(resumed[0]).toMatchObject({ seq: e2.seq, snapshotComplete: false });
    s2.cancel();

    const jsm = await jetstreamManager(broker.runtime.bus.nc);
    await jsm.streams.purge(EVENTS_STREAM, { seq: e2.seq + 1 });
    const s3 = admin.plans.watchPlan({ name: "delta", afterSeq: e1.seq });
    const err = await new Promise<ServiceError>((resolve) => {
      s3.on("data", () => undefined);
      s3.on("error", (e: ServiceError) => resolve(e));
    });
    expect(err.code).toBe(status.OUT_OF_RANGE);
    expect(err.details).toMatch(/aged out.*reconnect without after_seq/);

    const s4 = admin.plans.watchPlan({ name: "nope", afterSeq: 0 });
    const nf = await new Promise<ServiceError>((resolve) => {
      s4.on("data", () => undefined);
      s4.on("error", (e: ServiceError) => resolve(e));
    });
    expect(nf.code).toBe(status.NOT_FOUND);
  });
});
