// The scheduler: which queued migrations start now, and why each of the others waits.
//
// Limits (a migration starts only if every one of them still has room, counting the migrations in
// flight plus the ones started in this pass):
//   - the plan's spec.limits.maxInFlight and maxInFlightPerSourceNode,
//   - the broker-wide cap,
//   - each cluster's parallelMigrationsPerCluster, on the source and the target (KubeVirt counts
//     the VMIMs of decentralized migrations on both sides),
//   - each source node's parallelOutboundMigrationsPerNode.
// Offline moves (CDI clones, no VMIM) count against the plan and broker caps only.
// Nothing starts from or to a cluster that is unreachable, unknown or cordoned (except an evacuation
// leaving its cordoned source: cordon, then evacuate, drains a cluster), outside the plan's window,
// or before its back-off has passed.
//
// Order: largest first (memory + disks, the bytes KubeVirt must move). Slots are the scarce
// resource and the longest migrations set the makespan; starting them early lets the small ones
// fill the gaps at the end instead of one big VM running alone after everything else finished
// (LPT scheduling). Ties go to the source node with the most work left, then to creation order.
import { windowContains } from "../../proto/plan.js";
import type { Clusters } from "./clusters.js";
import { formatTime } from "./format.js";
import { isInFlight, QUEUED_STATES, totalBytes, type MigrationRecord, type PlanRecord } from "./records.js";

export type SchedulePlan = Pick<PlanRecord, "name" | "cancelRequested" | "document">;

export interface ScheduleInput {
  now: Date;
  /** Unfinished migrations of every plan (terminal ones are ignored). */
  migrations: readonly MigrationRecord[];
  plans: Readonly<Record<string, SchedulePlan | undefined>>;
  clusters: Clusters;
  /** Broker-wide cap on migrations in flight. */
  maxInFlight: number;
}

export interface Schedule {
  /** Uids to admit now, in start order. */
  start: string[];
  /** Why-waiting text of every queued migration that does not start. */
  waiting: Map<string, string>;
}

export interface OrderContext {
  /** Bytes still queued on the migration's source node (0 when the node is unknown). */
  backlog(m: MigrationRecord): number;
}

export type Order = (a: MigrationRecord, b: MigrationRecord, ctx: OrderContext) => number;

/** Creation order (the plan lists migrations by namespace/name). */
export const fifo: Order = (a, b) => a.createdAt.localeCompare(b.createdAt) || a.plan.localeCompare(b.plan) || `${a.source.namespace}/${a.source.name}`.localeCompare(`${b.source.namespace}/${b.source.name}`);

export const largestFirst: Order = (a, b, ctx) => totalBytes(b) - totalBytes(a) || ctx.backlog(b) - ctx.backlog(a) || fifo(a, b, ctx);

/** KubeVirt migration slots: VMIMs exist for live moves, on each cluster involved. */
function usesKubeVirtSlots(m: MigrationRecord): boolean {
  return m.kind !== "offline";
}

function clustersOf(m: MigrationRecord): string[] {
  return m.source.cluster === m.target.cluster ? [m.source.cluster] : [m.source.cluster, m.target.cluster];
}

const nodeKey = (m: MigrationRecord) => (m.sourceNode ? `${m.source.cluster}/${m.sourceNode}` : undefined);

class Counter {
  private readonly n = new Map<string, number>();
  get(k: string): number {
    return this.n.get(k) ?? 0;
  }
  add(k: string): void {
    this.n.set(k, this.get(k) + 1);
  }
}

export function schedule(input: ScheduleInput, options: { order?: Order } = {}): Schedule {
  const { now, clusters } = input;
  const order = options.order ?? largestFirst;
  const perPlan = new Counter();
  const perCluster = new Counter();
  const perNode = new Counter();
  const perPlanNode = new Counter();
  let global = 0;

  const count = (m: MigrationRecord) => {
    global++;
    perPlan.add(m.plan);
    if (usesKubeVirtSlots(m)) {
      for (const c of clustersOf(m)) perCluster.add(c);
      const node = nodeKey(m);
      if (node) perNode.add(node);
    }
    const node = nodeKey(m);
    if (node) perPlanNode.add(`${m.plan}\u0000${node}`);
  };
  for (const m of input.migrations) if (isInFlight(m.state)) count(m);

  const candidates = input.migrations.filter((m) => QUEUED_STATES.has(m.state) && !m.cancelRequested && input.plans[m.plan]?.cancelRequested !== true);
  const backlog = new Map<string, number>();
  for (const m of candidates) {
    const node = nodeKey(m);
    if (node) backlog.set(node, (backlog.get(node) ?? 0) + totalBytes(m));
  }
  const ctx: OrderContext = { backlog: (m) => backlog.get(nodeKey(m) ?? "") ?? 0 };
  candidates.sort((a, b) => order(a, b, ctx));

  const start: string[] = [];
  const waiting = new Map<string, string>();
  for (const m of candidates) {
    const reason = blocked(m);
    if (reason) waiting.set(m.uid, reason);
    else {
      start.push(m.uid);
      count(m);
    }
  }
  return { start, waiting };

  function blocked(m: MigrationRecord): string | undefined {
    const plan = input.plans[m.plan];
    if (!plan) return `plan ${m.plan} not found`;
    if (m.backoffUntil && new Date(m.backoffUntil) > now) {
      return `back-off until ${formatTime(m.backoffUntil, now)} after attempt ${m.attempt} failed${m.lastError ? `: ${m.lastError.message}` : ""}`;
    }
    for (const [role, c] of [
      ["source", m.source.cluster],
      ["target", m.target.cluster],
    ] as const) {
      const v = clusters[c];
      if (!v || v.availability === "unknown") return `${role} cluster ${c} is not registered with the broker`;
      if (v.availability === "unreachable") return `${role} cluster ${c} is unreachable${v.lastSeen ? ` (last seen ${formatTime(v.lastSeen, now)})` : ""}`;
    }
    const spec = plan.document.spec;
    for (const c of clustersOf(m)) {
      const cordon = clusters[c]?.cordon;
      // Cordon, then evacuate, is how a cluster is drained: its evacuation may leave it.
      if (cordon && !(spec.target.evacuate && c === m.source.cluster)) return `cluster ${c} cordoned: ${cordon.reason}`;
    }
    if (!windowContains(spec.window, now)) {
      const w = spec.window;
      return `outside the plan's window ${w?.start}–${w?.end} ${w?.timeZone}`;
    }
    if (perPlan.get(m.plan) >= spec.limits.maxInFlight) {
      return `plan ${m.plan} has ${perPlan.get(m.plan)}/${spec.limits.maxInFlight} migrations in flight (spec.limits.maxInFlight)`;
    }
    if (global >= input.maxInFlight) return `broker-wide limit reached: ${global}/${input.maxInFlight} migrations in flight`;
    if (usesKubeVirtSlots(m)) {
      for (const c of clustersOf(m)) {
        const limit = clusters[c]?.limits.parallelMigrationsPerCluster ?? 0;
        if (perCluster.get(c) >= limit) return `waiting for a migration slot on cluster ${c} (${perCluster.get(c)}/${limit} in flight, parallelMigrationsPerCluster)`;
      }
    }
    const node = nodeKey(m);
    if (node && usesKubeVirtSlots(m)) {
      const limit = clusters[m.source.cluster]?.limits.parallelOutboundMigrationsPerNode ?? 0;
      if (perNode.get(node) >= limit) return `waiting for a migration slot on source node ${m.sourceNode} (${perNode.get(node)}/${limit} in flight, parallelOutboundMigrationsPerNode of cluster ${m.source.cluster})`;
    }
    const perNodeLimit = spec.limits.maxInFlightPerSourceNode;
    if (node && perNodeLimit !== undefined && perPlanNode.get(`${m.plan}\u0000${node}`) >= perNodeLimit) {
      return `waiting for a migration slot on source node ${m.sourceNode} (${perPlanNode.get(`${m.plan}\u0000${node}`)}/${perNodeLimit} in flight, spec.limits.maxInFlightPerSourceNode)`;
    }
    return undefined;
  }
}
