// One simulated cluster: its object store (the API server's state), the simulated KubeVirt/CDI
// controllers acting on it, and the handles fault injection reaches.
import { type KObject, Store } from "./apiserver/store.js";
import type { SimClock } from "./clock.js";
import type { MigrationMetric } from "./kubevirt/metrics.js";

/** A control loop of the simulated control plane (virt-controller, CDI, ...). */
export interface Controller {
  start(): void | Promise<void>;
  stop(): void | Promise<void>;
}

/** KubeVirt-level faults the control API can inject, and what it can observe (implemented in `kubevirt/`). */
export interface KubeVirtFaults {
  /** Rotate this cluster's KubeVirt CA now (new CA key pair; the bundle keeps the old CA for the overlap). */
  rotateCA(): Promise<void>;
  /** Simulate a synchronization-controller leader change: new listening port/address. */
  moveSyncAddress(): Promise<void>;
  /** Cut every open synchronization connection (peers see the connection drop). */
  breakSyncConnections(): void;
  /** Stop (true) or resume (false) all synchronization traffic without closing connections. */
  stallSync(stalled: boolean): void;
  /** Guest memory dirty rate for a VMI in bytes per simulated second, or "no-converge". */
  setDirtyRate(namespace: string, vmi: string, rate: number | "no-converge"): void;
  /** Delete a VMI as if its virt-launcher pod vanished (mid-migration if one is running). */
  killVMI(namespace: string, vmi: string): void;
  /** Migration progress as virt-handler exports it (plus the sim's own counters). */
  migrationMetrics(): MigrationMetric[];
  /** The same in Prometheus text format. */
  renderMetrics(): string;
}

/** A request the API server's `pods/proxy` forwards to a port of a pod (kube-apiserver dials the pod IP). */
export interface PodRequest {
  scheme: "http" | "https";
  port: string;
  method: string;
  /** The path after `/proxy`, starting with "/". */
  path: string;
}

/** What a pod's server answered. */
export interface PodResponse {
  status: number;
  contentType?: string;
  body: string;
}

/** Serves the ports of some pods; undefined when nothing of it listens on that pod and port. */
export type PodServer = (pod: KObject, request: PodRequest) => PodResponse | undefined;

export interface ClusterOptions {
  name: string;
  clock: SimClock;
  /** Bearer token clients must present. */
  token: string;
  /** Namespace KubeVirt is installed in. */
  kubevirtNamespace?: string;
}

export class SimCluster {
  readonly store = new Store();
  readonly controllers: Controller[] = [];
  kubevirt?: KubeVirtFaults;
  /** What listens in the cluster's pods (the simulated components register theirs); nothing = connection refused. */
  readonly podServers: PodServer[] = [];

  constructor(readonly opts: ClusterOptions) {}

  get name(): string {
    return this.opts.name;
  }

  get clock(): SimClock {
    return this.opts.clock;
  }

  get kubevirtNamespace(): string {
    return this.opts.kubevirtNamespace ?? "kubevirt";
  }

  async start(): Promise<void> {
    for (const c of this.controllers) await c.start();
  }

  async stop(): Promise<void> {
    for (const c of [...this.controllers].reverse()) await c.stop();
  }
}
