// The shared state of one cluster's simulated KubeVirt: store, clock, configuration, pods, running
// transfers, fault knobs, and Kubernetes Events. Components (virt-operator, virt-api webhooks,
// virt-controller, virt-handler, synchronization controller) hang off this object.
import { randomUUID } from "node:crypto";
import { R } from "../apiserver/resources.js";
import type { KObject, Store, StoreEvent } from "../apiserver/store.js";
import type { SimClock } from "../clock.js";
import type { SimCluster } from "../cluster.js";
import { KUBEVIRT_VERSION_DEFAULT } from "./constants.js";
import { type EffectiveConfig, effectiveConfig, findKubeVirt } from "./config.js";
import { PodRuntime } from "./pods.js";
import type { DataLink, Transfer } from "./transfer.js";
import { now } from "./util.js";

export interface Timings {
  /** Pod scheduling latency. All values are simulated milliseconds. */
  podScheduling: number;
  /** Container start of a virt-launcher pod. */
  podStart: number;
  /** Domain boot after the pod runs (VMI Scheduled → Running). */
  domainStart: number;
  /** Guest shutdown on VMI deletion. */
  shutdown: number;
  /** Target virt-handler preparing the target domain (ports, proxies). */
  targetPrepare: number;
  /** Blank DataVolume import (CDI). */
  blankImport: number;
  /** Clone throughput of CDI, bytes per simulated second. */
  cloneBandwidth: number;
}

export const DefaultTimings: Timings = {
  podScheduling: 200,
  podStart: 2_000,
  domainStart: 3_000,
  shutdown: 1_000,
  targetPrepare: 1_000,
  blankImport: 3_000,
  cloneBandwidth: 500 * 2 ** 20,
};

export interface KubeVirtOptions {
  /** KubeVirt version the operator reports (decides gate states, e.g. DecentralizedLiveMigration Alpha < v1.10). */
  version?: string;
  timings?: Partial<Timings>;
  /** Guest memory dirty rate for VMIs without a setDirtyRate override, bytes per simulated second (default 16 MiB/s). */
  defaultDirtyRate?: number;
  /** Migration link speed used when bandwidthPerMigration is 0 ("unlimited"), bytes/s (default 1 Gbit/s). */
  linkBandwidth?: number;
  /** How many simulated bytes one real byte on the wire stands for (default 65536). */
  simBytesPerRealByte?: number;
  /** Memory a virt-launcher pod needs on top of the guest memory, bytes (default 200 MiB). */
  launcherMemoryOverhead?: number;
  /** Address the synchronization endpoint listens on (default 127.0.0.1). */
  syncHost?: string;
  /** First two octets of pod IPs, e.g. "10.244" (default derived from the cluster name). */
  podIPPrefix?: string;
  /** Log controller errors to stderr. */
  debug?: boolean;
}

export interface MigrationRuntime {
  uid: string;
  namespace: string;
  vmi: string;
  role: "source" | "target";
  decentralized: boolean;
  migrationID?: string;
  transfer?: Transfer;
  /** Simulated bytes a decentralized target received over the TLS connection. */
  receivedBytes: number;
  receivedRealBytes: number;
  /** The source's data path (for its connection count). */
  link?: DataLink;
  node?: string;
  done?: boolean;
  /** Wall-clock ms of the last data frame a target received. */
  lastDataAt?: number;
}

function hashPrefix(name: string): string {
  let h = 0;
  for (const ch of name) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `10.${100 + (h % 150)}`;
}

/**
 * An informer-style cache of the kinds the controllers read often, fed from the store's events. It
 * holds the store's own (immutable once stored) objects: read them, never modify them.
 */
export class ObjectCache {
  private readonly kinds = new Map<string, Map<string, KObject>>();
  static readonly KINDS = ["VirtualMachine", "VirtualMachineInstance", "VirtualMachineInstanceMigration", "DataVolume", "PersistentVolumeClaim", "Node", "KubeVirt"];

  prime(store: Store): void {
    for (const kind of ObjectCache.KINDS) {
      const m = this.table(kind);
      m.clear();
      for (const o of store.list(R[kind as keyof typeof R]).items) m.set(`${o.metadata.namespace ?? ""}/${o.metadata.name}`, o);
    }
  }

  apply(e: StoreEvent): void {
    if (!ObjectCache.KINDS.includes(e.rt.kind)) return;
    const k = `${e.object.metadata.namespace ?? ""}/${e.object.metadata.name}`;
    if (e.type === "DELETED") this.table(e.rt.kind).delete(k);
    else this.table(e.rt.kind).set(k, e.object);
  }

  get(kind: string, namespace: string | undefined, name: string): KObject | undefined {
    return this.table(kind).get(`${namespace ?? ""}/${name}`);
  }

  list(kind: string, namespace?: string): KObject[] {
    const all = [...this.table(kind).values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata.namespace === namespace);
  }

  private table(kind: string): Map<string, KObject> {
    let t = this.kinds.get(kind);
    if (!t) this.kinds.set(kind, (t = new Map()));
    return t;
  }
}

export class KubeVirtSim {
  readonly cache = new ObjectCache();
  readonly store: Store;
  readonly clock: SimClock;
  readonly ns: string;
  readonly timings: Timings;
  readonly pods: PodRuntime;
  readonly dirtyRates = new Map<string, number | "no-converge">();
  /** Migrations with virt-handler state on this cluster, by migration (VMIM) UID. */
  readonly runtimes = new Map<string, MigrationRuntime>();
  private cfg?: EffectiveConfig;
  private readonly timers = new Set<NodeJS.Timeout>();
  private stopped = false;
  readonly errors: { component: string; key: string; error: unknown }[] = [];

  constructor(
    readonly cluster: SimCluster,
    readonly opts: KubeVirtOptions = {},
  ) {
    this.store = cluster.store;
    this.clock = cluster.clock;
    this.ns = cluster.kubevirtNamespace;
    this.timings = { ...DefaultTimings, ...opts.timings };
    this.pods = new PodRuntime(this.store, this.clock, this.timings, opts.podIPPrefix ?? hashPrefix(cluster.name), `quay.io/kubevirt/virt-launcher:${opts.version ?? KUBEVIRT_VERSION_DEFAULT}`);
  }

  get version(): string {
    return this.opts.version ?? KUBEVIRT_VERSION_DEFAULT;
  }

  get linkBandwidth(): number {
    return this.opts.linkBandwidth ?? 125_000_000;
  }

  get launcherOverhead(): number {
    return this.opts.launcherMemoryOverhead ?? 200 * 2 ** 20;
  }

  get simBytesPerRealByte(): number {
    return this.opts.simBytesPerRealByte ?? 65536;
  }

  dirtyRate(namespace: string, vmi: string): number {
    const r = this.dirtyRates.get(`${namespace}/${vmi}`);
    if (r === "no-converge") return Infinity;
    return r ?? this.opts.defaultDirtyRate ?? 16 * 2 ** 20;
  }

  /** The configuration in effect (re-read when the KubeVirt CR changes). */
  config(): EffectiveConfig {
    this.cfg ??= effectiveConfig(findKubeVirt(this.store, this.ns), this.version);
    return this.cfg;
  }

  invalidateConfig(): void {
    this.cfg = undefined;
  }

  /** Runs `fn` after `simMs` of simulated time unless the sim stopped meanwhile. */
  after(simMs: number, fn: () => void): void {
    if (this.stopped) return;
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      if (!this.stopped) fn();
    }, simMs);
    t.unref?.();
    this.timers.add(t);
  }

  get isStopped(): boolean {
    return this.stopped;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.pods.stop();
    for (const rt of this.runtimes.values()) rt.transfer?.abort();
  }

  reportError(component: string, key: string, error: unknown): void {
    this.errors.push({ component, key, error });
    if (this.errors.length > 200) this.errors.shift();
    if (this.opts.debug) console.error(`[sim ${this.cluster.name}] ${component} ${key}:`, error);
  }

  /** Records a core/v1 Event, as KubeVirt's recorders do (best effort). */
  event(obj: KObject, type: "Normal" | "Warning", reason: string, message: string): void {
    const ns = obj.metadata.namespace;
    if (!ns) return;
    try {
      this.store.create(
        R.Event,
        {
          metadata: { name: `${obj.metadata.name}.${randomUUID().replace(/-/g, "").slice(0, 16)}`, namespace: ns },
          involvedObject: { apiVersion: obj.apiVersion, kind: obj.kind, name: obj.metadata.name, namespace: ns, uid: obj.metadata.uid },
          type,
          reason,
          message,
          source: { component: obj.kind === "DataVolume" ? "datavolume-controller" : "virtualmachine-controller" },
          firstTimestamp: now(),
          lastTimestamp: now(),
          count: 1,
        },
        { internal: true },
      );
    } catch {
      // events are best effort (e.g. namespace terminating)
    }
  }
}
