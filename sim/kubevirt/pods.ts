// virt-launcher pods and the scheduler that places them. The sim keeps pods in memory instead of
// as Pod objects (the API server serves no pods): a pod is scheduled onto a Ready node labelled
// kubevirt.io/schedulable=true that is not cordoned, matches the node selector, avoids the
// anti-affinity node, and has enough allocatable memory left; then it starts after a delay.
import { randomUUID } from "node:crypto";
import { R } from "../apiserver/resources.js";
import type { KObject, Store } from "../apiserver/store.js";
import type { SimClock } from "../clock.js";
import { NodeSchedulable } from "./constants.js";
import { getCondition, parseQuantity, randSuffix } from "./util.js";

export type PodPhase = "Pending" | "Running" | "Succeeded" | "Failed";

export interface SimPod {
  name: string;
  uid: string;
  namespace: string;
  vmi: string;
  vmiUID: string;
  /** "launcher" runs the VMI; "target" is a migration target pod until hand-off. */
  role: "launcher" | "target";
  migrationUID?: string;
  node?: string;
  ip?: string;
  phase: PodPhase;
  ready: boolean;
  createdAt: number;
  /** Scheduler message while the pod cannot be placed. */
  unschedulable?: string;
  memory: number;
  nodeSelector: Record<string, string>;
  avoidNode?: string;
  deleting?: boolean;
}

export interface PodTimings {
  /** Scheduling latency, simulated ms. */
  podScheduling: number;
  /** Image pull + container start, simulated ms. */
  podStart: number;
}

export class PodRuntime {
  private readonly pods = new Map<string, SimPod>();
  private readonly listeners = new Set<(p: SimPod) => void>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private ipCounter = 10;
  private stopped = false;

  constructor(
    private readonly store: Store,
    private readonly clock: SimClock,
    private readonly timings: PodTimings,
    private readonly ipPrefix: string,
  ) {}

  onChange(l: (p: SimPod) => void): void {
    this.listeners.add(l);
  }

  get(name: string): SimPod | undefined {
    return this.pods.get(name);
  }

  list(): SimPod[] {
    return [...this.pods.values()];
  }

  forVMI(namespace: string, vmi: string): SimPod[] {
    return this.list().filter((p) => p.namespace === namespace && p.vmi === vmi);
  }

  create(p: Omit<SimPod, "name" | "uid" | "phase" | "ready" | "createdAt">): SimPod {
    const pod: SimPod = {
      ...p,
      name: `virt-launcher-${p.vmi}-${randSuffix()}`,
      uid: randomUUID(),
      phase: "Pending",
      ready: false,
      createdAt: Date.now(),
    };
    this.pods.set(pod.name, pod);
    this.later(() => this.trySchedule(pod.name), this.timings.podScheduling);
    this.notify(pod);
    return pod;
  }

  /** Deletes a pod: it goes Succeeded (graceful) or Failed, then disappears. */
  delete(name: string, failed = false): void {
    const pod = this.pods.get(name);
    if (!pod || pod.deleting) return;
    pod.deleting = true;
    pod.phase = failed ? "Failed" : "Succeeded";
    pod.ready = false;
    this.pods.delete(name);
    this.notify(pod);
    this.retryUnschedulable();
  }

  /** Re-tries pending unschedulable pods, e.g. after nodes changed or capacity was freed. */
  retryUnschedulable(): void {
    for (const p of this.pods.values()) if (p.phase === "Pending" && !p.node && p.unschedulable) this.later(() => this.trySchedule(p.name), 0);
  }

  usedMemory(node: string): number {
    let sum = 0;
    for (const p of this.pods.values()) if (p.node === node && (p.phase === "Pending" || p.phase === "Running")) sum += p.memory;
    return sum;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  private later(fn: () => void, simMs: number): void {
    if (this.stopped) return;
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, simMs);
    this.timers.add(t);
  }

  private notify(p: SimPod): void {
    for (const l of this.listeners) l(p);
  }

  private trySchedule(name: string): void {
    const pod = this.pods.get(name);
    if (!pod || pod.node || pod.deleting) return;
    const res = this.pickNode(pod);
    if (typeof res === "string") {
      const changed = pod.unschedulable !== res;
      pod.unschedulable = res;
      if (changed) this.notify(pod);
      // The scheduler retries unschedulable pods periodically as well as on cluster events.
      this.later(() => this.trySchedule(name), 5_000);
      return;
    }
    pod.node = res.metadata.name;
    pod.unschedulable = undefined;
    pod.ip = `${this.ipPrefix}.${(this.ipCounter >> 8) & 255}.${this.ipCounter & 255}`;
    this.ipCounter++;
    this.notify(pod);
    this.later(() => {
      const p = this.pods.get(name);
      if (!p || p.deleting) return;
      p.phase = "Running";
      p.ready = true;
      this.notify(p);
    }, this.timings.podStart);
  }

  /** Kubernetes-scheduler-style placement: a node or the "0/N nodes are available" message. */
  private pickNode(pod: SimPod): KObject | string {
    const nodes = this.store.list(R.Node).items;
    const reasons = new Map<string, number>();
    const bump = (r: string) => reasons.set(r, (reasons.get(r) ?? 0) + 1);
    let best: { node: KObject; free: number } | undefined;
    for (const n of nodes) {
      const labels = n.metadata.labels ?? {};
      if (getCondition(n, "Ready")?.status !== "True") {
        bump("node(s) were not ready");
        continue;
      }
      if (n.spec?.unschedulable) {
        bump("node(s) were unschedulable");
        continue;
      }
      const selector = { [NodeSchedulable]: "true", ...pod.nodeSelector };
      if (!Object.entries(selector).every(([k, v]) => labels[k] === v)) {
        bump("node(s) didn't match Pod's node affinity/selector");
        continue;
      }
      if (pod.avoidNode && n.metadata.name === pod.avoidNode) {
        bump("node(s) didn't match pod anti-affinity rules");
        continue;
      }
      const alloc = parseQuantity(n.status?.allocatable?.memory ?? n.status?.capacity?.memory);
      const free = (Number.isFinite(alloc) ? alloc : 0) - this.usedMemory(n.metadata.name);
      if (free < pod.memory) {
        bump("Insufficient memory");
        continue;
      }
      if (!best || free > best.free || (free === best.free && n.metadata.name < best.node.metadata.name)) best = { node: n, free };
    }
    if (best) return best.node;
    const parts = [...reasons.entries()].sort((a, b) => a[0].localeCompare(b[0])).map(([r, c]) => `${c} ${r}`);
    return `0/${nodes.length} nodes are available: ${parts.join(", ")}.`;
  }
}
