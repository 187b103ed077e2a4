// Typed client of the sim's control API (sim/control.ts), over HTTP. Tests anywhere in ferry use it
// to inject faults into simulated clusters and to read their request logs:
//
//   const ctl = SimControlClient.fromDir(".sim");          // or world.controlClient()
//   await ctl.injectError("a", { verb: "create", resource: "virtualmachineinstancemigrations", code: 500, count: 2 });
//   await ctl.dropWatches("b");
//   const { requests } = await ctl.requests("a", { since: mark, verb: "list" });
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { ErrorFault, FaultRule, LatencyFault, RequestCounts, RequestLogEntry, Verb } from "./faults.js";
import type { MigrationMetric } from "./kubevirt/metrics.js";

export type { ErrorFault, FaultRule, LatencyFault, RequestCounts, RequestLogEntry, Verb } from "./faults.js";
export type { MigrationMetric } from "./kubevirt/metrics.js";

export interface ClusterMetrics {
  /** verb → resource ("configmaps", "virtualmachines/status", "" for discovery) → count, since start. */
  requests: RequestCounts;
  /** Sequence number of the last logged request (use as `since`). */
  last: number;
  openWatches: number;
  resourceVersion: string;
}

export interface ClusterSummary extends ClusterMetrics {
  name: string;
  server: string;
  /** Whether KubeVirt-level faults are available (the KubeVirt simulator installed its hooks). */
  kubevirt: boolean;
}

export class SimControlError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
    this.name = "SimControlError";
  }
}

export class SimControlClient {
  constructor(
    readonly url: string,
    readonly token: string,
  ) {}

  /** Reads `<dir>/sim.json` written by `npm run sim -- up --dir <dir>` or `startWorld({dir})`. */
  static fromDir(dir: string): SimControlClient {
    const m = JSON.parse(readFileSync(join(dir, "sim.json"), "utf8")) as { control: { url: string; token: string } };
    return new SimControlClient(m.control.url, m.control.token);
  }

  private async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.url}/sim/v1${path}`, {
      method,
      headers: { Authorization: `Bearer ${this.token}`, ...(body !== undefined ? { "Content-Type": "application/json" } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const parsed = text ? (JSON.parse(text) as unknown) : undefined;
    if (!res.ok) {
      const msg = (parsed as { error?: string } | undefined)?.error ?? text;
      throw new SimControlError(res.status, `sim control ${method} ${path}: ${res.status} ${msg}`);
    }
    return parsed as T;
  }

  private c(cluster: string): string {
    return `/clusters/${encodeURIComponent(cluster)}`;
  }

  async clusters(): Promise<ClusterSummary[]> {
    return (await this.call<{ clusters: ClusterSummary[] }>("GET", "/clusters")).clusters;
  }

  /** Fails the next `count` (default 1) requests matching the rule with a Status error. */
  async injectError(cluster: string, fault: ErrorFault): Promise<FaultRule> {
    return (await this.call<{ fault: FaultRule }>("POST", `${this.c(cluster)}/faults`, fault)).fault;
  }

  /** Delays matching requests by `ms` (real milliseconds), until removed unless `count` is given. */
  async addLatency(cluster: string, fault: LatencyFault): Promise<FaultRule> {
    return (await this.call<{ fault: FaultRule }>("POST", `${this.c(cluster)}/latency`, fault)).fault;
  }

  async faults(cluster: string): Promise<FaultRule[]> {
    return (await this.call<{ faults: FaultRule[] }>("GET", `${this.c(cluster)}/faults`)).faults;
  }

  async removeFault(cluster: string, id: string): Promise<void> {
    await this.call("DELETE", `${this.c(cluster)}/faults/${encodeURIComponent(id)}`);
  }

  /** Removes every error and latency rule of the cluster. */
  async clearFaults(cluster: string): Promise<number> {
    return (await this.call<{ removed: number }>("DELETE", `${this.c(cluster)}/faults`)).removed;
  }

  /** Closes every open watch of the cluster; clients re-watch from their last resourceVersion. */
  async dropWatches(cluster: string): Promise<number> {
    return (await this.call<{ dropped: number }>("POST", `${this.c(cluster)}/watches/drop`)).dropped;
  }

  /**
   * Forgets the cluster's watch history (as an etcd compaction) and closes every watch: clients
   * re-watching from an old resourceVersion get 410 Expired and must relist.
   */
  async expireWatches(cluster: string): Promise<{ dropped: number; resourceVersion: string }> {
    return this.call("POST", `${this.c(cluster)}/watches/expire`);
  }

  /** Logged requests (newest last), optionally only those after `since` (a `last` value). */
  async requests(cluster: string, q: { since?: number; verb?: Verb; resource?: string; limit?: number } = {}): Promise<{ last: number; requests: RequestLogEntry[] }> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(q)) if (v !== undefined) params.set(k, String(v));
    const qs = params.size ? `?${params.toString()}` : "";
    return this.call("GET", `${this.c(cluster)}/requests${qs}`);
  }

  async metrics(cluster: string): Promise<ClusterMetrics> {
    return this.call("GET", `${this.c(cluster)}/metrics`);
  }

  /** KubeVirt-level faults and migration metrics (KubeVirtFaults in sim/cluster.ts). 501 when the cluster has none. */
  kubevirt(cluster: string) {
    const post = (action: string, body: unknown = {}) => this.call<{ ok: true }>("POST", `${this.c(cluster)}/kubevirt/${action}`, body).then(() => undefined);
    return {
      /** Per migration with virt-handler state on this cluster: progress (source) or bytes received (decentralized target). */
      migrations: async () => (await this.call<{ migrations: MigrationMetric[] }>("GET", `${this.c(cluster)}/kubevirt/migrations`)).migrations,
      /** The same as virt-handler's Prometheus text (kubevirt_vmi_migration_*). */
      metricsText: async () => (await this.call<{ text: string }>("GET", `${this.c(cluster)}/kubevirt/metrics`)).text,
      rotateCA: () => post("rotate-ca"),
      moveSyncAddress: () => post("move-sync-address"),
      breakSyncConnections: () => post("break-sync-connections"),
      stallSync: (stalled: boolean) => post("stall-sync", { stalled }),
      setDirtyRate: (namespace: string, vmi: string, rate: number | "no-converge") => post("dirty-rate", { namespace, vmi, rate }),
      killVMI: (namespace: string, vmi: string) => post("kill-vmi", { namespace, vmi }),
    };
  }
}
