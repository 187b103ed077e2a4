import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { MigrationState } from "../../proto/bus/index.js";
import { windowContains } from "../../proto/plan.js";
import type { ClusterView } from "./clusters.js";
import { isInFlight, type MigrationKind, type MigrationRecord } from "./records.js";
import { fifo, largestFirst, schedule, type Order, type ScheduleInput } from "./scheduler.js";
import { at, GiB, migration, plan, planRecord, T0, view } from "./test-fixtures.js";

type M = MigrationRecord;

let seq = 0;
function mig(over: Partial<M> & { node?: string; gib?: number; kind?: MigrationKind } = {}): M {
  const { node, gib, ...rest } = over;
  const name = rest.source?.name ?? `vm-${String(++seq).padStart(3, "0")}`;
  return migration({
    uid: `m-${name}`,
    state: "Queued",
    source: { cluster: "east", namespace: "db", name },
    target: { cluster: "west", namespace: "db", name },
    size: { memoryBytes: (gib ?? 4) * GiB, diskBytes: 0 },
    sourceNode: node ?? "n1",
    ...rest,
  });
}

function input(migrations: M[], over: Partial<ScheduleInput> = {}, doc = plan({ limits: { maxInFlight: 100 } })): ScheduleInput {
  return {
    now: T0,
    migrations,
    plans: { "move-db": planRecord(doc) },
    clusters: { east: view("east"), west: view("west") },
    maxInFlight: 1000,
    ...over,
  };
}

describe("scheduler limits and why-waiting texts", () => {
  it("fills each cluster's parallelMigrationsPerCluster, largest first, and says who waits for what", () => {
    const ms = [1, 2, 3, 4, 5, 6, 7].map((gib, i) => mig({ gib, node: `n${i}` }));
    const s = schedule(input(ms));
    expect(s.start).toEqual([6, 5, 4, 3, 2].map((i) => ms[i]!.uid));
    expect(s.waiting.get(ms[0]!.uid)).toBe("waiting for a migration slot on cluster east (5/5 in flight, parallelMigrationsPerCluster)");
  });

  it("counts the target cluster's slots too", () => {
    const clusters = { east: view("east", { limits: { parallelMigrationsPerCluster: 10, parallelOutboundMigrationsPerNode: 10 } }), west: view("west", { limits: { parallelMigrationsPerCluster: 1, parallelOutboundMigrationsPerNode: 2 } }) };
    const ms = [mig({ node: "a" }), mig({ node: "b" })];
    const s = schedule(input(ms, { clusters }));
    expect(s.start).toHaveLength(1);
    expect([...s.waiting.values()]).toEqual(["waiting for a migration slot on cluster west (1/1 in flight, parallelMigrationsPerCluster)"]);
  });

  it("respects parallelOutboundMigrationsPerNode on the source node, counting migrations in flight", () => {
    const running = mig({ node: "n2", state: "Migrating" });
    const ms = [running, mig({ node: "n2", gib: 8 }), mig({ node: "n2", gib: 2 }), mig({ node: "n3", gib: 1 })];
    const s = schedule(input(ms));
    expect(s.start).toEqual([ms[1]!.uid, ms[3]!.uid]);
    expect(s.waiting.get(ms[2]!.uid)).toBe("waiting for a migration slot on source node n2 (2/2 in flight, parallelOutboundMigrationsPerNode of cluster east)");
  });

  it("respects the plan's maxInFlight and maxInFlightPerSourceNode", () => {
    const doc = plan({ limits: { maxInFlight: 2, maxInFlightPerSourceNode: 1 } });
    const ms = [mig({ node: "n1", gib: 9 }), mig({ node: "n1", gib: 8 }), mig({ node: "n2", gib: 7 }), mig({ node: "n3", gib: 6 })];
    const s = schedule(input(ms, {}, doc));
    expect(s.start).toEqual([ms[0]!.uid, ms[2]!.uid]);
    expect(s.waiting.get(ms[1]!.uid)).toBe("waiting for a migration slot on source node n1 (1/1 in flight, spec.limits.maxInFlightPerSourceNode)");
    expect(s.waiting.get(ms[3]!.uid)).toBe("plan move-db has 2/2 migrations in flight (spec.limits.maxInFlight)");
  });

  it("respects the broker-wide cap across plans", () => {
    const other = plan({}, "other");
    const ms = [mig({ gib: 3 }), mig({ gib: 2, plan: "other", node: "n2" }), mig({ gib: 1, node: "n3" })];
    const s = schedule({ ...input(ms), plans: { "move-db": planRecord(plan()), other: planRecord(other) }, maxInFlight: 2 });
    expect(s.start).toEqual([ms[0]!.uid, ms[1]!.uid]);
    expect(s.waiting.get(ms[2]!.uid)).toBe("broker-wide limit reached: 2/2 migrations in flight");
  });

  it("waits for back-off, availability, cordons and the plan window, saying which", () => {
    const backoff = mig({ attempt: 1, backoffUntil: at(190).toISOString(), lastError: { code: "Stalled", message: "no progress for 600 s in phase Running", fix: "" } });
    expect(schedule(input([backoff])).waiting.get(backoff.uid)).toBe("back-off until 12:03:10 UTC after attempt 1 failed: no progress for 600 s in phase Running");
    expect(schedule(input([backoff], { now: at(190) })).start).toEqual([backoff.uid]);

    const m = mig();
    const down = { east: view("east"), west: view("west", { availability: "unreachable", lastSeen: at(-60).toISOString() }) };
    expect(schedule(input([m], { clusters: down })).waiting.get(m.uid)).toBe("target cluster west is unreachable (last seen 11:59:00 UTC)");
    expect(schedule(input([m], { clusters: { west: view("west") } })).waiting.get(m.uid)).toBe("source cluster east is not registered with the broker");
    const cordoned = { east: view("east"), west: view("west", { cordon: { reason: "maintenance" } }) };
    expect(schedule(input([m], { clusters: cordoned })).waiting.get(m.uid)).toBe("cluster west cordoned: maintenance");
    // Cordon, then evacuate: an evacuation leaves its cordoned source, never lands on a cordoned target.
    const sourceCordoned = { east: view("east", { cordon: { reason: "kernel upgrade" } }), west: view("west") };
    expect(schedule(input([m], { clusters: sourceCordoned })).waiting.get(m.uid)).toBe("cluster east cordoned: kernel upgrade");
    const drain = plan({ vms: undefined, selector: { allVMs: true }, target: { evacuate: true } });
    expect(schedule(input([m], { clusters: sourceCordoned }, drain)).start).toEqual([m.uid]);
    expect(schedule(input([m], { clusters: { ...sourceCordoned, west: view("west", { cordon: { reason: "full" } }) } }, drain)).waiting.get(m.uid)).toBe("cluster west cordoned: full");

    const night = plan({ window: { start: "22:00", end: "06:00", timeZone: "Europe/Berlin" } });
    expect(schedule(input([m], {}, night)).waiting.get(m.uid)).toBe("outside the plan's window 22:00–06:00 Europe/Berlin");
    expect(schedule(input([m], { now: new Date("2026-11-21T22:30:00Z") }, night)).start).toEqual([m.uid]);
  });

  it("offline moves use no KubeVirt migration slot", () => {
    const clusters = { east: view("east", { limits: { parallelMigrationsPerCluster: 0, parallelOutboundMigrationsPerNode: 0 } }) };
    const off = mig({ kind: "offline", target: { cluster: "east", namespace: "db", name: "x" }, sourceNode: undefined });
    delete (off as Partial<M>).sourceNode;
    const s = schedule(input([off, mig({ target: { cluster: "east", namespace: "db", name: "y" }, kind: "storage-live" })], { clusters }));
    expect(s.start).toEqual([off.uid]);
  });

  it("leaves cancelled migrations and cancelled plans alone", () => {
    const a = mig({ cancelRequested: true });
    expect(schedule(input([a]))).toEqual({ start: [], waiting: new Map() });
    const b = mig();
    expect(schedule({ ...input([b]), plans: { "move-db": planRecord(plan(), { cancelRequested: true }) } })).toEqual({ start: [], waiting: new Map() });
  });
});

// --- Property: no limit is ever exceeded ---------------------------------------------------

const STATES: MigrationState[] = ["Pending", "Queued", "Queued", "Queued", "Validating", "Migrating", "RollingBack", "Finalizing", "Succeeded", "Failed"];

const world = fc.record({
  clusters: fc.array(
    fc.record({
      availability: fc.constantFrom("available", "available", "available", "unreachable"),
      cordoned: fc.nat({ max: 4 }).map((n) => n === 0),
      perCluster: fc.integer({ min: 0, max: 6 }),
      perNode: fc.integer({ min: 0, max: 3 }),
    }),
    { minLength: 2, maxLength: 4 },
  ),
  plans: fc.array(fc.record({ maxInFlight: fc.integer({ min: 1, max: 8 }), perNode: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }), window: fc.boolean() }), { minLength: 1, maxLength: 3 }),
  migrations: fc.array(
    fc.record({
      plan: fc.nat(),
      src: fc.nat(),
      tgt: fc.nat(),
      node: fc.integer({ min: 0, max: 3 }),
      state: fc.constantFrom(...STATES),
      kind: fc.constantFrom<MigrationKind>("decentralized-live", "decentralized-live", "storage-live", "offline"),
      gib: fc.integer({ min: 1, max: 128 }),
      backoff: fc.integer({ min: -600, max: 600 }),
    }),
    { maxLength: 40 },
  ),
  global: fc.integer({ min: 1, max: 30 }),
  hour: fc.integer({ min: 0, max: 23 }),
});

describe("scheduler properties", () => {
  it("never starts a migration past any limit, and every queued one it does not start says why", () => {
    fc.assert(
      fc.property(world, (w) => {
        const names = w.clusters.map((_, i) => `c${i}`);
        const clusters: Record<string, ClusterView> = {};
        w.clusters.forEach((c, i) =>
          (clusters[`c${i}`] = view(`c${i}`, {
            availability: c.availability as ClusterView["availability"],
            ...(c.cordoned ? { cordon: { reason: "maintenance" } } : {}),
            limits: { parallelMigrationsPerCluster: c.perCluster, parallelOutboundMigrationsPerNode: c.perNode },
          })),
        );
        const plans = Object.fromEntries(
          w.plans.map((p, i) => [`p${i}`, planRecord(plan({ limits: { maxInFlight: p.maxInFlight, ...(p.perNode ? { maxInFlightPerSourceNode: p.perNode } : {}) }, ...(p.window ? { window: { start: "22:00", end: "06:00" } } : {}) }, `p${i}`))]),
        );
        const now = new Date(Date.UTC(2026, 10, 21, w.hour, 30));
        const ms = w.migrations.map((x, i) => {
          const src = names[x.src % names.length]!;
          const tgt = x.kind === "decentralized-live" ? names[x.tgt % names.length]! : src;
          return migration({
            uid: `m${i}`,
            plan: `p${x.plan % w.plans.length}`,
            kind: x.kind,
            state: x.state,
            source: { cluster: src, namespace: "ns", name: `vm${i}` },
            target: { cluster: tgt, namespace: x.kind === "decentralized-live" && src === tgt ? "other" : "ns", name: `vm${i}` },
            size: { memoryBytes: x.gib * GiB, diskBytes: 0 },
            sourceNode: `n${x.node}`,
            attempt: 1,
            backoffUntil: new Date(now.getTime() + x.backoff * 1000).toISOString(),
          });
        });
        const s = schedule({ now, migrations: ms, plans, clusters, maxInFlight: w.global });
        const started = new Set(s.start);
        const byUid = new Map(ms.map((m) => [m.uid, m]));

        // Partition: every candidate either starts or has a reason.
        const candidates = ms.filter((m) => m.state === "Pending" || m.state === "Queued");
        for (const m of candidates) {
          expect(started.has(m.uid) !== s.waiting.has(m.uid)).toBe(true);
          if (!started.has(m.uid)) expect(s.waiting.get(m.uid)).toMatch(/\S/);
        }
        for (const uid of started) {
          const m = byUid.get(uid)!;
          expect(candidates).toContain(m);
          for (const c of new Set([m.source.cluster, m.target.cluster])) {
            expect(clusters[c]!.availability).toBe("available");
            expect(clusters[c]!.cordon).toBeUndefined();
          }
          expect(new Date(m.backoffUntil!) <= now).toBe(true);
          expect(windowContains(plans[m.plan]!.document.spec.window, now)).toBe(true);
        }

        // Limits: a key touched by a started migration ends at or below its limit.
        const after = ms.filter((m) => isInFlight(m.state) || started.has(m.uid));
        const check = (key: (m: M) => string[], limit: (k: string) => number) => {
          const count = new Map<string, number>();
          for (const m of after) for (const k of key(m)) count.set(k, (count.get(k) ?? 0) + 1);
          for (const uid of started) for (const k of key(byUid.get(uid)!)) expect(count.get(k)!, k).toBeLessThanOrEqual(limit(k));
        };
        const live = (m: M) => m.kind !== "offline";
        check(() => ["global"], () => w.global);
        check((m) => [m.plan], (k) => plans[k]!.document.spec.limits.maxInFlight);
        check((m) => (live(m) ? [...new Set([m.source.cluster, m.target.cluster])] : []), (k) => clusters[k]!.limits.parallelMigrationsPerCluster);
        check((m) => (live(m) ? [`${m.source.cluster}/${m.sourceNode}`] : []), (k) => clusters[k.split("/")[0]!]!.limits.parallelOutboundMigrationsPerNode);
        check(
          (m) => (plans[m.plan]!.document.spec.limits.maxInFlightPerSourceNode ? [`${m.plan}/${m.source.cluster}/${m.sourceNode}`] : []),
          (k) => plans[k.split("/")[0]!]!.document.spec.limits.maxInFlightPerSourceNode!,
        );
      }),
      { numRuns: 300 },
    );
  });
});

// --- Makespan: largest-first against FIFO ---------------------------------------------------

interface Job {
  name: string;
  node: string;
  gib: number;
}

/**
 * A simple model of a bulk plan: every migration moves its bytes at the same rate (1 GiB per time
 * unit), KubeVirt limits as in the cluster views. Returns when the last one finishes.
 */
function makespan(jobs: readonly Job[], order: Order, limits = { perCluster: 5, perNode: 2, maxInFlight: 5 }): number {
  const clusters = {
    east: view("east", { limits: { parallelMigrationsPerCluster: limits.perCluster, parallelOutboundMigrationsPerNode: limits.perNode } }),
    west: view("west", { limits: { parallelMigrationsPerCluster: 100, parallelOutboundMigrationsPerNode: 100 } }),
  };
  const doc = plan({ limits: { maxInFlight: limits.maxInFlight } });
  let ms: M[] = jobs.map((j) => migration({ uid: `m-${j.name}`, source: { cluster: "east", namespace: "db", name: j.name }, target: { cluster: "west", namespace: "db", name: j.name }, state: "Queued", size: { memoryBytes: j.gib * GiB, diskBytes: 0 }, sourceNode: j.node }));
  const finish = new Map<string, number>();
  let t = 0;
  for (;;) {
    const s = schedule({ now: T0, migrations: ms, plans: { "move-db": planRecord(doc) }, clusters, maxInFlight: 1000 }, { order });
    const start = new Set(s.start);
    ms = ms.map((m) => (start.has(m.uid) ? { ...m, state: "Migrating" } : m));
    for (const uid of start) finish.set(uid, t + ms.find((m) => m.uid === uid)!.size.memoryBytes / GiB);
    const running = ms.filter((m) => m.state === "Migrating");
    if (running.length === 0) break;
    t = Math.min(...running.map((m) => finish.get(m.uid)!));
    ms = ms.map((m) => (m.state === "Migrating" && finish.get(m.uid) === t ? { ...m, state: "Succeeded" } : m));
  }
  expect(ms.every((m) => m.state === "Succeeded")).toBe(true);
  return t;
}

describe("scheduler ordering", () => {
  it("finishes a mixed-size plan sooner than FIFO", () => {
    // Alphabetical (FIFO) order puts the big databases last: the classic worst case for FIFO.
    const jobs: Job[] = [
      ...Array.from({ length: 24 }, (_, i) => ({ name: `app-${String(i).padStart(2, "0")}`, node: `n${i % 4}`, gib: 2 + (i % 3) })),
      ...Array.from({ length: 6 }, (_, i) => ({ name: `cache-${i}`, node: `n${i % 4}`, gib: 12 })),
      ...Array.from({ length: 3 }, (_, i) => ({ name: `db-${i}`, node: `n${i}`, gib: 48 })),
    ];
    const lpt = makespan(jobs, largestFirst);
    const fifoSpan = makespan(jobs, fifo);
    const lowerBound = Math.max(jobs.reduce((s, j) => s + j.gib, 0) / 5, ...jobs.map((j) => j.gib));
    expect(lpt).toBeLessThan(fifoSpan);
    expect(lpt).toBeLessThanOrEqual(lowerBound * 1.1);
  });

  it("beats FIFO on average over random mixed workloads", () => {
    const ratios: number[] = [];
    fc.assert(
      fc.property(
        fc.array(fc.record({ node: fc.integer({ min: 0, max: 5 }), gib: fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 16, max: 64 })) }), { minLength: 10, maxLength: 40 }),
        (raw) => {
          const jobs = raw.map((j, i) => ({ name: `vm-${String(i).padStart(2, "0")}`, node: `n${j.node}`, gib: j.gib }));
          ratios.push(makespan(jobs, largestFirst) / makespan(jobs, fifo));
        },
      ),
      { numRuns: 40, seed: 42 },
    );
    const mean = ratios.reduce((s, r) => s + r, 0) / ratios.length;
    expect(mean).toBeLessThan(0.95);
  });
});
