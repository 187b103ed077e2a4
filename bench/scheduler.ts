// Scheduler makespan: the broker's largest-first (LPT) order against FIFO (creation order) over
// random fleets, and both against a lower bound no scheduler can beat.
//
// Model: each migration moves its bytes (memory + disks) at 1 GiB per time unit once started;
// the real `schedule()` of broker/core decides what starts, under KubeVirt's limits
// (parallelMigrationsPerCluster on source and target, parallelOutboundMigrationsPerNode) and the
// plan's maxInFlight. Time jumps from one finish to the next.
import { schedule, type Order, fifo, largestFirst } from "../broker/core/scheduler.js";
import type { Clusters } from "../broker/core/clusters.js";
import type { MigrationRecord } from "../broker/core/records.js";
import { GiB, T0, migration, plan, planRecord, view } from "../broker/core/test-fixtures.js";
import { int, prng, stats, type Bench } from "./lib.js";

interface Job {
  name: string;
  source: string;
  target: string;
  node: string;
  gib: number;
}

interface Fleet {
  clusters: string[];
  perCluster: number;
  perNode: number;
  maxInFlight: number;
  jobs: Job[];
}

/** A random fleet: 2–4 clusters of 2–6 nodes; VM sizes heavy-tailed (most small, a few huge). */
export function randomFleet(rand: () => number, size: { min: number; max: number }): Fleet {
  const clusters = ["east", "west", "north", "south"].slice(0, int(rand, 2, 4));
  const nodes = Object.fromEntries(clusters.map((c) => [c, int(rand, 2, 6)]));
  const n = int(rand, size.min, size.max);
  const jobs: Job[] = [];
  for (let i = 0; i < n; i++) {
    const source = clusters[int(rand, 0, clusters.length - 1)]!;
    const others = clusters.filter((c) => c !== source);
    const target = others[int(rand, 0, others.length - 1)]!;
    const r = rand();
    const gib = r < 0.7 ? int(rand, 1, 6) : r < 0.93 ? int(rand, 8, 24) : int(rand, 32, 128);
    jobs.push({ name: `vm-${String(i).padStart(4, "0")}`, source, target, node: `n${int(rand, 1, nodes[source]!)}`, gib });
  }
  return { clusters, perCluster: 5, perNode: 2, maxInFlight: int(rand, 4, 12), jobs };
}

/** When the last migration of the fleet finishes, scheduling with `order`. */
export function makespan(fleet: Fleet, order: Order): number {
  const clusters: Clusters = Object.fromEntries(
    fleet.clusters.map((c) => [c, view(c, { limits: { parallelMigrationsPerCluster: fleet.perCluster, parallelOutboundMigrationsPerNode: fleet.perNode } })]),
  );
  const doc = plan({ limits: { maxInFlight: fleet.maxInFlight } });
  const plans = { [doc.metadata.name]: planRecord(doc) };
  const byUid = new Map<string, MigrationRecord>();
  for (const j of fleet.jobs) {
    const m = migration({
      uid: `m-${j.name}`,
      source: { cluster: j.source, namespace: "vms", name: j.name },
      target: { cluster: j.target, namespace: "vms", name: j.name },
      state: "Queued",
      size: { memoryBytes: j.gib * GiB, diskBytes: 0 },
      sourceNode: j.node,
    });
    byUid.set(m.uid, m);
  }
  const finish = new Map<string, number>();
  let t = 0;
  for (;;) {
    const s = schedule({ now: T0, migrations: [...byUid.values()], plans, clusters, maxInFlight: 100_000 }, { order });
    for (const uid of s.start) {
      const m = byUid.get(uid)!;
      byUid.set(uid, { ...m, state: "Migrating" });
      finish.set(uid, t + m.size.memoryBytes / GiB);
    }
    const running = [...byUid.values()].filter((m) => m.state === "Migrating");
    if (running.length === 0) break;
    t = Math.min(...running.map((m) => finish.get(m.uid)!));
    for (const m of running) if (finish.get(m.uid) === t) byUid.set(m.uid, { ...m, state: "Succeeded" });
  }
  const left = [...byUid.values()].filter((m) => m.state !== "Succeeded");
  if (left.length > 0) throw new Error(`scheduler left ${left.length} migrations unstarted (${left[0]!.uid})`);
  return t;
}

/**
 * No schedule finishes sooner than the largest VM, nor than any cluster's, node's or the plan's
 * work divided by its parallel slots.
 */
export function lowerBound(fleet: Fleet): number {
  const total = fleet.jobs.reduce((s, j) => s + j.gib, 0);
  const work = new Map<string, number>();
  const add = (k: string, v: number) => work.set(k, (work.get(k) ?? 0) + v);
  for (const j of fleet.jobs) {
    add(`c/${j.source}`, j.gib);
    add(`c/${j.target}`, j.gib);
    add(`n/${j.source}/${j.node}`, j.gib);
  }
  let bound = Math.max(total / fleet.maxInFlight, ...fleet.jobs.map((j) => j.gib));
  for (const [k, w] of work) bound = Math.max(bound, w / (k.startsWith("c/") ? fleet.perCluster : fleet.perNode));
  return bound;
}

export const schedulerBench: Bench = {
  name: "scheduler",
  what: "makespan of random bulk plans: largest-first (the broker's order) vs FIFO, and vs the lower bound",
  // eslint-disable-next-line @typescript-eslint/require-await
  async run(opts, out) {
    const rand = prng(20261121);
    const fleets = opts.quick ? 15 : 80;
    const size = opts.quick ? { min: 20, max: 60 } : { min: 40, max: 200 };
    const lptVsFifo: number[] = [];
    const lptVsBound: number[] = [];
    const fifoVsBound: number[] = [];
    let wins = 0;
    for (let i = 0; i < fleets; i++) {
      const fleet = randomFleet(rand, size);
      const lpt = makespan(fleet, largestFirst);
      const f = makespan(fleet, fifo);
      const lb = lowerBound(fleet);
      lptVsFifo.push(lpt / f);
      lptVsBound.push(lpt / lb);
      fifoVsBound.push(f / lb);
      if (lpt < f) wins++;
    }
    out.section(`${fleets} random fleets of ${size.min}–${size.max} VMs (seed 20261121), 2–4 clusters, limits 5/cluster 2/node, maxInFlight 4–12`);
    out.ratio("makespan largest-first / FIFO", stats(lptVsFifo), "< 1: largest-first finishes sooner");
    out.ratio("makespan largest-first / lower bound", stats(lptVsBound), "1 = optimal");
    out.ratio("makespan FIFO / lower bound", stats(fifoVsBound), "1 = optimal");
    out.note(`largest-first finished sooner in ${wins}/${fleets} fleets`);
  },
};
