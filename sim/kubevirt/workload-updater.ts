// virt-controller's workload updater (pkg/virt-controller/watch/workload-updater/workload-updater.go),
// the part that matters here: a running VMI whose volumes are being changed (VolumesChange=True)
// gets a migration when the KubeVirt CR lists LiveMigrate in workloadUpdateMethods; when the change
// is cancelled its workload-update migrations are deleted. Created VMIMs carry generateName
// kubevirt-workload-update-, annotation kubevirt.io/workloadUpdateMigration and label
// kubevirt.io/volume-update-migration=<vmi> (the VMI UID for names over 63 characters).
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import { Cond, VolumesUpdateMigration, VmiPhase, WorkloadUpdateMigrationAnnotation } from "./constants.js";
import { findKubeVirt } from "./config.js";
import { isFinal, isMigrating, isRunning } from "./migration-util.js";
import type { KubeVirtSim } from "./sim.js";
import { getCondition, hasCondition, isNotFound } from "./util.js";
import { WorkQueue } from "./workqueue.js";

const KEY = "kubevirt";

export class WorkloadUpdater {
  readonly queue: WorkQueue;

  constructor(private readonly sim: KubeVirtSim) {
    this.queue = new WorkQueue("workload-updater", sim.clock, () => this.sync(), { onError: (k, e) => sim.reportError("workload-updater", k, e) });
  }

  onEvent(e: StoreEvent): void {
    switch (e.rt.kind) {
      case "KubeVirt":
        this.queue.add(KEY);
        break;
      case "VirtualMachineInstanceMigration":
        if (e.object.metadata.annotations?.[WorkloadUpdateMigrationAnnotation] !== undefined) this.queue.add(KEY);
        break;
      case "VirtualMachineInstance": {
        const vmi = e.object;
        const was = e.old && hasCondition(e.old, Cond.VolumesChange, "True");
        const is = hasCondition(vmi, Cond.VolumesChange, "True");
        if (is && !isMigrating(vmi)) this.queue.addAfter(KEY, 5_000); // defaultThrottleInterval
        if (was && !is) this.queue.add(KEY);
        break;
      }
      default:
    }
  }

  private workloadMigrations(vmi: KObject): KObject[] {
    return this.sim.cache
      .list("VirtualMachineInstanceMigration", vmi.metadata.namespace)
      .filter((m) => m.spec?.vmiName === vmi.metadata.name && m.metadata.annotations?.[WorkloadUpdateMigrationAnnotation] !== undefined && !isFinal(m));
  }

  private sync(): void {
    const store = this.sim.store;
    const kv = findKubeVirt(store, this.sim.ns);
    if (!kv || kv.status?.phase !== "Deployed" || kv.status?.observedDeploymentID !== kv.status?.targetDeploymentID) return;
    const cfg = this.sim.config();
    const allowed = cfg.workloadUpdateMethods.includes("LiveMigrate");
    const unfinished = this.sim.cache.list("VirtualMachineInstanceMigration").filter((m) => !isFinal(m));
    const lookup = new Set(unfinished.map((m) => `${m.metadata.namespace}/${m.spec?.vmiName}`));
    const running = unfinished.filter(isRunning).length;
    const candidates: KObject[] = [];
    const aborts: KObject[] = [];
    let pending = false;
    for (const vmi of this.sim.cache.list("VirtualMachineInstance")) {
      if (vmi.status?.phase !== VmiPhase.Running || vmi.metadata.deletionTimestamp) continue;
      const updating = hasCondition(vmi, Cond.VolumesChange, "True");
      const wuMigrations = this.workloadMigrations(vmi);
      if (!updating && !vmi.status?.migrationState?.targetNodeDomainReadyTimestamp && wuMigrations.length) {
        aborts.push(vmi);
        continue;
      }
      if (!updating || isMigrating(vmi)) continue;
      pending = true;
      if (lookup.has(`${vmi.metadata.namespace}/${vmi.metadata.name}`)) continue;
      const storageOk = getCondition(vmi, Cond.StorageLiveMigratable)?.status !== "False";
      const volMig = (vmi.status?.migratedVolumes ?? []).length > 0 && storageOk;
      const migratable = hasCondition(vmi, Cond.LiveMigratable, "True");
      if (allowed && (migratable || volMig)) candidates.push(vmi);
    }
    if (pending || aborts.length) this.queue.addAfter(KEY, 1_000);
    const maxNew = Math.max(0, cfg.migrations.parallelMigrationsPerCluster - running);
    for (const vmi of candidates.slice(0, maxNew)) {
      const label = vmi.metadata.name.length > 63 ? vmi.metadata.uid : vmi.metadata.name;
      try {
        const m = store.create(
          R.VirtualMachineInstanceMigration,
          {
            metadata: {
              generateName: "kubevirt-workload-update-",
              namespace: vmi.metadata.namespace,
              annotations: { [WorkloadUpdateMigrationAnnotation]: "" },
              labels: { [VolumesUpdateMigration]: label },
            },
            spec: { vmiName: vmi.metadata.name, priority: "user-triggered" },
          },
          { internal: true },
        );
        this.sim.event(vmi, "Normal", "SuccessfulCreateVirtualMachineInstanceMigration", `Created Migration ${m.metadata.name} for automated workload update`);
      } catch (e) {
        this.sim.event(vmi, "Warning", "FailedCreateVirtualMachineInstanceMigration", `Error creating a Migration for automated workload update: ${(e as Error).message}`);
      }
    }
    for (const vmi of aborts) {
      for (const m of this.workloadMigrations(vmi)) {
        try {
          store.delete(R.VirtualMachineInstanceMigration, m.metadata.namespace, m.metadata.name, { internal: true });
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
    }
  }

  stop(): void {
    this.queue.stop();
  }
}
