// virt-launcher pods and the scheduler that places them. The sim keeps pods in memory and mirrors
// each into a read-only core/v1 Pod object (what `kubectl get pods` and `kubectl describe node`
// read): a pod is scheduled onto a Ready node labelled kubevirt.io/schedulable=true that is not
// cordoned, matches the node selector, avoids the anti-affinity node, and has enough allocatable
// memory left; then it starts after a delay.
import { randomUUID } from "node:crypto";
import { isNotFound } from "./util.js";
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
    /** virt-launcher image shown in the Pod objects. */
    private readonly image = "quay.io/kubevirt/virt-launcher:latest",
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

  /** The next pod IP of the cluster's fake pod network (virt-launcher and virt-handler pods share it). */
  allocateIP(): string {
    const ip = `${this.ipPrefix}.${(this.ipCounter >> 8) & 255}.${this.ipCounter & 255}`;
    this.ipCounter++;
    return ip;
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
    this.mirror(p);
    for (const l of this.listeners) l(p);
  }

  /** Writes the pod's core/v1 Pod object (as kubelet and the scheduler would), or removes it once the pod is gone. */
  private mirror(p: SimPod): void {
    if (this.stopped) return;
    if (!this.pods.has(p.name)) {
      try {
        this.store.delete(R.Pod, p.namespace, p.name, { internal: true });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
      return;
    }
    const obj = this.podObject(p);
    const cur = this.store.tryGet(R.Pod, p.namespace, p.name);
    if (!cur) {
      // the owner VMI may be gone already (its garbage collection removed an earlier copy): then it stays gone
      if (!this.store.tryGet(R.VirtualMachineInstance, p.namespace, p.vmi)) return;
      this.store.create(R.Pod, obj, { internal: true });
      return;
    }
    this.store.update(R.Pod, { ...cur, metadata: { ...cur.metadata, labels: obj.metadata.labels }, spec: obj.spec, status: obj.status }, { internal: true });
  }

  private podObject(p: SimPod) {
    const node = p.node ? this.store.tryGet(R.Node, undefined, p.node) : undefined;
    const hostIP = ((node?.status?.addresses ?? []) as { type: string; address: string }[]).find((a) => a.type === "InternalIP")?.address;
    const t = new Date(p.createdAt).toISOString().replace(/\.\d+Z$/, "Z");
    const running = p.phase === "Running";
    const cond = (type: string, ok: boolean, reason?: string, message?: string) => ({ type, status: ok ? "True" : "False", lastProbeTime: null, lastTransitionTime: t, ...(reason ? { reason } : {}), ...(message ? { message } : {}) });
    const state =
      p.phase === "Running"
        ? { running: { startedAt: t } }
        : p.phase === "Pending"
          ? { waiting: { reason: p.node ? "ContainerCreating" : "Pending" } }
          : { terminated: { exitCode: p.phase === "Succeeded" ? 0 : 1, reason: p.phase === "Succeeded" ? "Completed" : "Error", startedAt: t, finishedAt: new Date().toISOString().replace(/\.\d+Z$/, "Z") } };
    return {
      metadata: {
        name: p.name,
        namespace: p.namespace,
        uid: p.uid,
        labels: { "kubevirt.io": "virt-launcher", "kubevirt.io/created-by": p.vmiUID, "vm.kubevirt.io/name": p.vmi, ...(p.migrationUID ? { "kubevirt.io/migrationJobUID": p.migrationUID } : {}) },
        annotations: { "kubevirt.io/domain": p.vmi },
        ownerReferences: [{ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", name: p.vmi, uid: p.vmiUID, controller: true, blockOwnerDeletion: true }],
      },
      spec: {
        ...(p.node ? { nodeName: p.node } : {}),
        containers: [{ name: "compute", image: this.image, resources: { requests: { cpu: "100m", memory: p.memory % 2 ** 20 === 0 ? `${p.memory / 2 ** 20}Mi` : String(p.memory) } } }],
        nodeSelector: { [NodeSchedulable]: "true", ...p.nodeSelector },
        restartPolicy: "Never",
        schedulerName: "default-scheduler",
        serviceAccountName: "default",
        terminationGracePeriodSeconds: 30,
      },
      status: {
        phase: p.phase,
        conditions: [
          cond("PodScheduled", !!p.node, p.node ? undefined : "Unschedulable", p.node ? undefined : p.unschedulable),
          ...(p.node ? [cond("Initialized", true), cond("ContainersReady", p.ready), cond("Ready", p.ready)] : []),
        ],
        ...(hostIP ? { hostIP, hostIPs: [{ ip: hostIP }] } : {}),
        ...(p.ip ? { podIP: p.ip, podIPs: [{ ip: p.ip }] } : {}),
        startTime: t,
        qosClass: "Burstable",
        ...(p.node ? { containerStatuses: [{ name: "compute", image: this.image, imageID: "", ready: p.ready, restartCount: 0, started: running, state }] } : {}),
      },
    };
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
    pod.ip = this.allocateIP();
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
