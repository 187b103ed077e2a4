// Simulated KubeVirt (virt-operator, virt-api webhooks, virt-controller, virt-handler and the
// synchronization controller) for one cluster. `installKubeVirt(cluster)` wires everything into the
// cluster's store; `cluster.start()` starts it. See sim/README.md for what is simulated and how.
import { R } from "../apiserver/resources.js";
import type { StoreEvent } from "../apiserver/store.js";
import type { Controller, KubeVirtFaults, SimCluster } from "../cluster.js";
import { MigrationHandler } from "./handler.js";
import { VirtHandlerPods } from "./handler-pods.js";
import { MigrationController } from "./migration-controller.js";
import { Operator } from "./operator.js";
import { KubeVirtSim, type KubeVirtOptions } from "./sim.js";
import { SyncController } from "./sync/controller.js";
import { VMController } from "./vm-controller.js";
import { VMIController } from "./vmi-controller.js";
import { registerWebhooks } from "./webhooks.js";
import { WorkloadUpdater } from "./workload-updater.js";
import { key } from "./util.js";
import { type MigrationMetric, collectMigrationMetrics, renderMigrationMetrics } from "./metrics.js";

export type { KubeVirtOptions, Timings } from "./sim.js";
export type { MigrationMetric } from "./metrics.js";
export { seedKubeVirt, seedNodes, seedNamespace, seedStorageClasses, waitForKubeVirt, type KubeVirtSeed, type NodeSeed, type StorageClassSeed } from "./seed.js";

/** Handle on one cluster's simulated KubeVirt, for the control API, tests and benchmarks. */
export class KubeVirtHandle implements Controller, KubeVirtFaults {
  readonly sim: KubeVirtSim;
  readonly operator: Operator;
  readonly sync: SyncController;
  readonly vms: VMController;
  readonly vmis: VMIController;
  readonly migrations: MigrationController;
  readonly handler: MigrationHandler;
  readonly workloadUpdater: WorkloadUpdater;
  readonly handlerPods: VirtHandlerPods;
  private unsubscribe?: () => void;

  constructor(cluster: SimCluster, opts: KubeVirtOptions = {}) {
    this.sim = new KubeVirtSim(cluster, opts);
    this.sync = new SyncController(this.sim, () => this.operator.credentials());
    this.operator = new Operator(this.sim, this.sync);
    this.vms = new VMController(this.sim);
    this.vmis = new VMIController(this.sim);
    this.migrations = new MigrationController(this.sim);
    this.handler = new MigrationHandler(this.sim, this.vmis);
    this.workloadUpdater = new WorkloadUpdater(this.sim);
    this.handlerPods = new VirtHandlerPods(this.sim);
    cluster.podServers.push((pod, req) => this.handlerPods.serve(pod, req));
    this.handler.remote = this.sync;
    this.sync.handler = this.handler;
    registerWebhooks(this.sim);
  }

  private onEvent(e: StoreEvent): void {
    this.sim.cache.apply(e);
    if (e.rt.kind === "KubeVirt") this.sim.invalidateConfig();
    this.operator.onEvent(e);
    this.vms.onEvent(e);
    this.vmis.onEvent(e);
    this.migrations.onEvent(e);
    this.handler.onEvent(e);
    this.sync.onEvent(e);
    this.workloadUpdater.onEvent(e);
    this.handlerPods.onEvent(e);
  }

  start(): void {
    if (this.unsubscribe) return;
    const store = this.sim.store;
    this.sim.cache.prime(store);
    this.unsubscribe = store.subscribe((e) => this.onEvent(e));
    // level-triggered start: everything that exists already is reconciled once
    for (const rt of [R.Node, R.KubeVirt, R.VirtualMachine, R.VirtualMachineInstance, R.VirtualMachineInstanceMigration]) {
      for (const o of store.list(rt).items) this.onEvent({ type: "ADDED", rt, object: o, rv: 0 });
    }
    this.operator.queue.add("kubevirt");
    this.workloadUpdater.queue.add("kubevirt");
    this.handlerPods.queue.add("daemonset");
  }

  async stop(): Promise<void> {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.sim.stop();
    for (const q of [this.operator.queue, this.vms.queue, this.vmis.queue, this.migrations.queue, this.handler.queue, this.sync.queue, this.workloadUpdater.queue, this.handlerPods.queue]) q.stop();
    await this.sync.stopEndpoint();
  }

  // ---- KubeVirtFaults ----------------------------------------------------------------------------

  async rotateCA(): Promise<void> {
    this.operator.rotateCA();
    await this.operator.queue.flush("kubevirt");
  }

  async moveSyncAddress(): Promise<void> {
    await this.operator.moveSyncAddress();
    await this.operator.queue.flush("kubevirt");
  }

  breakSyncConnections(): void {
    this.sync.net.breakAll();
  }

  stallSync(stalled: boolean): void {
    this.sync.net.setStalled(stalled);
  }

  setDirtyRate(namespace: string, vmi: string, rate: number | "no-converge"): void {
    this.sim.dirtyRates.set(`${namespace}/${vmi}`, rate);
  }

  killVMI(namespace: string, vmi: string): void {
    for (const p of this.sim.pods.forVMI(namespace, vmi)) this.sim.pods.delete(p.name, true);
    this.vmis.queue.add(key(namespace, vmi));
    const obj = this.sim.store.tryGet(R.VirtualMachineInstance, namespace, vmi);
    if (!obj) return;
    // once virt-controller has seen the VMI fail, the object goes away (eviction/cleanup)
    const tryDelete = (attempt: number) => {
      const cur = this.sim.store.tryGet(R.VirtualMachineInstance, namespace, vmi);
      if (!cur || cur.metadata.uid !== obj.metadata.uid) return;
      const final = cur.status?.phase === "Failed" || cur.status?.phase === "Succeeded" || cur.status?.phase === "WaitingForSync";
      if (!final && attempt < 50) {
        this.sim.after(100, () => tryDelete(attempt + 1));
        return;
      }
      // give the VM controller a moment to act on the failed VMI first (as it would before anyone cleans up)
      this.sim.after(5_000, () => {
        try {
          this.sim.store.delete(R.VirtualMachineInstance, namespace, vmi, { internal: true, preconditions: { uid: obj.metadata.uid } });
        } catch {
          // already gone
        }
      });
    };
    this.sim.after(100, () => tryDelete(0));
  }

  // ---- observation -------------------------------------------------------------------------------

  /** The synchronization endpoint's current address (host:port), when it runs. */
  get syncAddress(): string | undefined {
    return this.sync.address;
  }

  /** Live migration progress as virt-handler exports it (kubevirt_vmi_migration_* metrics) plus the target's received bytes. */
  migrationMetrics(): MigrationMetric[] {
    return collectMigrationMetrics(this.sim);
  }

  /** The same in Prometheus text format (every node, plus the sim's own series; virt-handler pods serve their node's share over pods/proxy). */
  renderMetrics(): string {
    return renderMigrationMetrics(this.sim);
  }
}

const handles = new WeakMap<SimCluster, KubeVirtHandle>();

export function installKubeVirt(cluster: SimCluster, opts: KubeVirtOptions = {}): KubeVirtHandle {
  const existing = handles.get(cluster);
  if (existing) return existing;
  const h = new KubeVirtHandle(cluster, opts);
  handles.set(cluster, h);
  cluster.controllers.push(h);
  cluster.kubevirt = h;
  return h;
}

/** The KubeVirt handle installed on `cluster`, if any. */
export function getKubeVirt(cluster: SimCluster): KubeVirtHandle | undefined {
  return handles.get(cluster);
}
