// The VirtualMachine controller (pkg/virt-controller/watch/vm/vm.go): run strategies, VMI creation
// from the template, DataVolume templates, the receiver VM of a decentralized migration, the run
// strategy switch after a decentralized migration, volume updates with updateVolumesStrategy
// Migration (handleVolumeUpdateRequest, syncVolumeMigration), printableStatus and conditions.
import { createHash } from "node:crypto";
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import {
  Cond,
  CreateMigrationTarget,
  Msg,
  Reason,
  RestoreRunStrategy,
  VMGenerationAnnotation,
  VirtualMachineControllerFinalizer,
  VmiPhase,
} from "./constants.js";
import type { KubeVirtSim } from "./sim.js";
import {
  type Condition,
  addFinalizer,
  claimOfVolume,
  deepEqual,
  getCondition,
  hasCondition,
  hasFinalizer,
  isNotFound,
  key,
  now,
  removeCondition,
  removeFinalizer,
  setCondition,
  splitKey,
} from "./util.js";
import { isFinalPhase } from "./vmi-controller.js";
import { WorkQueue } from "./workqueue.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- VM specs and statuses are free-form JSON */

const FIRMWARE_UUID_NS = "6a1a24a1-4061-4607-8bf4-a3963d0c5895";

/** uuid.NewSHA1(firmwareUUIDns, name) — CalculateLegacyUUID in firmware.go. */
export function legacyFirmwareUUID(name: string): string {
  const ns = Buffer.from(FIRMWARE_UUID_NS.replace(/-/g, ""), "hex");
  const h = createHash("sha1").update(ns).update(name).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString("hex");
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}

export function runStrategyOf(vm: KObject): string {
  if (vm.spec?.runStrategy) return vm.spec.runStrategy as string;
  if (vm.spec?.running === true) return "Always";
  if (vm.spec?.running === false) return "Halted";
  return "";
}

class SyncError extends Error {
  constructor(
    message: string,
    readonly reason: string,
  ) {
    super(message);
  }
}

const isMigrationCompleted = (vmi: KObject | undefined) => vmi?.status?.migrationState?.completed === true;
/** vmi.IsDecentralizedMigration(): exactly one side's syncAddress is set. */
export function isDecentralizedMigration(vmi: KObject | undefined): boolean {
  const ms = vmi?.status?.migrationState;
  if (!ms?.sourceState || !ms.targetState) return false;
  return !!ms.sourceState.syncAddress !== !!ms.targetState.syncAddress;
}

export class VMController {
  readonly queue: WorkQueue;

  constructor(private readonly sim: KubeVirtSim) {
    this.queue = new WorkQueue("vm", sim.clock, (k) => this.reconcile(k), { onError: (k, e) => sim.reportError("vm", k, e) });
  }

  onEvent(e: StoreEvent): void {
    const o = e.object;
    const ns = o.metadata.namespace;
    switch (e.rt.kind) {
      case "VirtualMachine":
        this.queue.add(key(ns, o.metadata.name));
        break;
      case "VirtualMachineInstance":
        this.queue.add(key(ns, o.metadata.name));
        break;
      case "DataVolume":
      case "PersistentVolumeClaim":
        for (const vm of this.sim.cache.list("VirtualMachine", ns)) {
          const uses =
            (vm.spec?.template?.spec?.volumes ?? []).some((v: any) => claimOfVolume(v) === o.metadata.name) ||
            (vm.spec?.dataVolumeTemplates ?? []).some((t: any) => t.metadata?.name === o.metadata.name);
          if (uses) this.queue.add(key(ns, vm.metadata.name));
        }
        break;
      case "KubeVirt":
        for (const vm of this.sim.cache.list("VirtualMachine")) this.queue.add(key(vm.metadata.namespace, vm.metadata.name));
        break;
      default:
    }
  }

  reconcile(k: string): void {
    const [ns, name] = splitKey(k);
    const orig = this.sim.store.tryGet(R.VirtualMachine, ns, name);
    if (!orig) return;
    let vmi = this.sim.store.tryGet(R.VirtualMachineInstance, ns, name);
    // a VMI of another (older) VM of the same name is not ours
    if (vmi && !vmi.metadata.ownerReferences?.some((r) => r.uid === orig.metadata.uid)) vmi = undefined;
    const vm = structuredClone(orig);
    let syncErr: SyncError | undefined;
    try {
      this.sync(vm, vmi);
    } catch (e) {
      if (e instanceof SyncError) syncErr = e;
      else throw e;
    }
    // As in vm.go, status is computed against the VMI as it was before this sync (a VMI started or
    // deleted in this pass shows up in the next one).
    this.updateStatus(vm, vmi, syncErr);
  }

  // ---- sync ------------------------------------------------------------------------------------

  private sync(vm: KObject, vmi: KObject | undefined): void {
    const store = this.sim.store;
    if (vm.metadata.deletionTimestamp) {
      if (!vmi || vm.metadata.finalizers?.includes("orphan")) {
        if (hasFinalizer(vm, VirtualMachineControllerFinalizer)) {
          const cur = store.modify(R.VirtualMachine, vm.metadata.namespace, vm.metadata.name, (o) => removeFinalizer(o, VirtualMachineControllerFinalizer));
          if (cur) Object.assign(vm, { metadata: cur.metadata });
        }
      } else this.stopVMI(vm, vmi);
      return;
    }
    if (!hasFinalizer(vm, VirtualMachineControllerFinalizer)) {
      const cur = store.modify(R.VirtualMachine, vm.metadata.namespace, vm.metadata.name, (o) => addFinalizer(o, VirtualMachineControllerFinalizer));
      if (cur) vm.metadata = cur.metadata;
    }
    const runStrategy = runStrategyOf(vm);

    const dvReady = this.handleDataVolumes(vm);
    if (!dvReady && runStrategy !== "Halted") return;

    const before = JSON.stringify({ spec: vm.spec, metadata: vm.metadata });
    this.syncRunStrategy(vm, vmi, runStrategy);

    // FirmwareController.Sync: a stable firmware UUID in the template.
    const fw = (vm.spec.template.spec.domain.firmware ??= {});
    if (!fw.uuid) fw.uuid = legacyFirmwareUUID(vm.metadata.name);

    if (this.sim.config().vmRolloutStrategy === "LiveUpdate" && vmi) {
      if (runStrategy === "WaitAsReceiver") this.handleWaitAsReceiverVolumeInfo(vm, vmi);
      else this.handleVolumeUpdateRequest(vm, vmi);
    }

    if (JSON.stringify({ spec: vm.spec, metadata: vm.metadata }) !== before) {
      try {
        const updated = store.update(R.VirtualMachine, { ...vm, metadata: { ...vm.metadata, resourceVersion: "" } }, { internal: true });
        vm.metadata = updated.metadata;
      } catch (e) {
        if (isNotFound(e)) return;
        throw new SyncError(`Error encountered when trying to update vm according to add volume and/or memory dump requests: ${(e as Error).message}`, "FailedUpdateError");
      }
    }
  }

  /** handleDataVolumes: creates the DataVolumes of dataVolumeTemplates; true when all can be used. */
  private handleDataVolumes(vm: KObject): boolean {
    let ready = true;
    const ns = vm.metadata.namespace!;
    for (const t of vm.spec?.dataVolumeTemplates ?? []) {
      const dvName = t.metadata?.name as string;
      const dv = this.sim.store.tryGet(R.DataVolume, ns, dvName);
      if (!dv) {
        ready = false;
        const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, dvName);
        try {
          this.sim.store.create(
            R.DataVolume,
            {
              metadata: {
                name: dvName,
                namespace: ns,
                labels: { ...(t.metadata?.labels ?? {}), "kubevirt.io/created-by": vm.metadata.uid },
                ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
                ownerReferences: [
                  { apiVersion: vm.apiVersion, kind: "VirtualMachine", name: vm.metadata.name, uid: vm.metadata.uid, controller: true, blockOwnerDeletion: true },
                ],
              },
              spec: structuredClone(t.spec),
            },
            { internal: true },
          );
          this.sim.event(vm, "Normal", "SuccessfulDataVolumeCreate", `Created DataVolume ${dvName}`);
        } catch (e) {
          if (pvc) continue;
          this.sim.event(vm, "Warning", "FailedDataVolumeCreate", `Error creating DataVolume ${dvName}: ${(e as Error).message}`);
          throw new SyncError(`Error encountered while creating DataVolumes: failed to create DataVolume: ${(e as Error).message}`, "FailedCreate");
        }
        continue;
      }
      const phase = dv.status?.phase;
      if (phase === "Succeeded" || phase === "WaitForFirstConsumer" || phase === "PendingPopulation") continue;
      ready = false;
    }
    return ready;
  }

  private startVMI(vm: KObject): void {
    if (!this.handleDataVolumes(vm)) return;
    if (hasCondition(vm, Cond.ManualRecoveryRequired, "True")) return;
    vm.status = { ...vm.status, conditions: removeCondition(vm.status?.conditions, Cond.RestartRequired) };
    const tmpl = vm.spec.template ?? {};
    const spec = structuredClone(tmpl.spec ?? {});
    spec.domain ??= {};
    spec.domain.firmware ??= {};
    spec.domain.firmware.uuid ??= legacyFirmwareUUID(vm.metadata.name);
    // SetDefaultNetworkInterface: a masquerade interface on the pod network unless disabled.
    spec.domain.devices ??= {};
    if (!spec.domain.devices.interfaces?.length && !spec.networks?.length && spec.domain.devices.autoattachPodInterface !== false) {
      spec.domain.devices.interfaces = [{ name: "default", masquerade: {} }];
      spec.networks = [{ name: "default", pod: {} }];
    }
    // SetDefaultVolumeDisk: every volume without a disk/filesystem gets a disk.
    spec.domain.devices.disks ??= [];
    for (const v of spec.volumes ?? []) {
      const hasDev = spec.domain.devices.disks.some((d: any) => d.name === v.name) || (spec.domain.devices.filesystems ?? []).some((f: any) => f.name === v.name);
      if (!hasDev) spec.domain.devices.disks.push({ name: v.name });
    }
    const annotations: Record<string, string> = { ...(tmpl.metadata?.annotations ?? {}), [VMGenerationAnnotation]: String(vm.metadata.generation ?? 1) };
    if (runStrategyOf(vm) === "WaitAsReceiver") annotations[CreateMigrationTarget] = "true";
    try {
      this.sim.store.create(
        R.VirtualMachineInstance,
        {
          metadata: {
            name: vm.metadata.name,
            namespace: vm.metadata.namespace,
            labels: { ...(tmpl.metadata?.labels ?? {}) },
            annotations,
            finalizers: [VirtualMachineControllerFinalizer],
            ownerReferences: [
              { apiVersion: vm.apiVersion, kind: "VirtualMachine", name: vm.metadata.name, uid: vm.metadata.uid, controller: true, blockOwnerDeletion: true },
            ],
          },
          spec,
          status: {},
        },
        { internal: true },
      );
    } catch (e) {
      this.sim.event(vm, "Warning", "FailedCreate", `Error creating virtual machine instance: ${(e as Error).message}`);
      throw new SyncError(`Failure while starting VMI: ${(e as Error).message}`, "FailedCreate");
    }
    this.sim.event(vm, "Normal", "SuccessfulCreate", `Started the virtual machine by creating the new virtual machine instance ${vm.metadata.name}`);
  }

  private stopVMI(vm: KObject, vmi: KObject | undefined): void {
    if (!vmi || vmi.metadata.deletionTimestamp) return;
    try {
      this.sim.store.delete(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, { internal: true });
    } catch (e) {
      if (!isNotFound(e)) throw new SyncError(`Failure attempting to delete VMI: ${(e as Error).message}`, "FailedDelete");
    }
    if (vm.status) vm.status.conditions = removeCondition(vm.status.conditions, Cond.RestartRequired);
    this.sim.event(vm, "Normal", "SuccessfulDelete", `Stopped the virtual machine by deleting the virtual machine instance ${vmi.metadata.uid}`);
  }

  private hasStartRequest(vm: KObject): boolean {
    return vm.status?.stateChangeRequests?.[0]?.action === "Start";
  }

  private hasStopRequestForVMI(vm: KObject, vmi: KObject): boolean {
    const r = vm.status?.stateChangeRequests?.[0];
    return r?.action === "Stop" && r.uid === vmi.metadata.uid;
  }

  /** syncRunStrategy (vm.go). */
  private syncRunStrategy(vm: KObject, vmi: KObject | undefined, runStrategy: string): void {
    const vmKey = key(vm.metadata.namespace, vm.metadata.name);
    const final = isFinalPhase(vmi?.status?.phase);
    switch (runStrategy) {
      case "Always":
        if (vmi) {
          const forceRestart = this.hasStopRequestForVMI(vm, vmi);
          if (forceRestart || final) {
            if (isDecentralizedMigration(vmi)) {
              if (isMigrationCompleted(vmi)) {
                // "decentralized migration completed, setting runStrategy to halted"
                vm.spec.runStrategy = "Halted";
                return;
              }
              this.queue.addAfter(vmKey, 2_000);
              return;
            }
            this.stopVMI(vm, vmi);
          }
          return;
        }
        this.startVMI(vm);
        return;
      case "RerunOnFailure":
        if (vmi) {
          const forceStop = this.hasStopRequestForVMI(vm, vmi);
          const phase = vmi.status?.phase;
          if (!vmi.metadata.deletionTimestamp && (forceStop || phase === VmiPhase.Failed || phase === VmiPhase.Succeeded)) {
            this.stopVMI(vm, vmi);
            if (phase === VmiPhase.Failed) {
              vm.status = { ...vm.status, stateChangeRequests: [...(vm.status?.stateChangeRequests ?? []), { action: "Start" }] };
            }
          }
          return;
        }
        if (this.hasStartRequest(vm) || vm.status?.runStrategy !== runStrategy) this.startVMI(vm);
        return;
      case "Manual":
        if (vmi) {
          if (this.hasStopRequestForVMI(vm, vmi)) this.stopVMI(vm, vmi);
        } else if (this.hasStartRequest(vm)) this.startVMI(vm);
        return;
      case "Halted":
        if (!vmi) {
          if (this.hasStartRequest(vm)) vm.spec.runStrategy = "Always";
          return;
        }
        this.stopVMI(vm, vmi);
        return;
      case "Once":
        if (!vmi) this.startVMI(vm);
        return;
      case "WaitAsReceiver":
        if (vmi) {
          if (vmi.metadata.annotations?.[CreateMigrationTarget] !== "true") {
            if (isMigrationCompleted(vmi)) {
              const restore = vm.metadata.annotations?.[RestoreRunStrategy];
              if (restore !== undefined) vm.spec.runStrategy = restore;
              return;
            }
            throw new SyncError(Msg.nonReceiverVMI, "FailedCreate");
          }
          return;
        }
        this.startVMI(vm);
        return;
      default:
        throw new SyncError(`unknown runstrategy: ${runStrategy}`, "FailedCreate");
    }
  }

  // ---- volume updates --------------------------------------------------------------------------

  private pvcInfo(ns: string, claim: string, withDetails: boolean): any {
    const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
    const info: any = { claimName: claim };
    if (pvc?.spec?.volumeMode) info.volumeMode = pvc.spec.volumeMode;
    if (pvc && withDetails) {
      if (pvc.spec?.accessModes) info.accessModes = pvc.spec.accessModes;
      if (pvc.spec?.resources?.requests) info.requests = pvc.spec.resources.requests;
      if (pvc.status?.capacity) info.capacity = pvc.status.capacity;
    }
    return info;
  }

  /** handleWaitAsReceiverVolumeInfo: the receiver VMI lists its destination claims in migratedVolumes. */
  private handleWaitAsReceiverVolumeInfo(vm: KObject, vmi: KObject): void {
    if (isMigrationCompleted(vmi) || (vmi.status?.migratedVolumes ?? []).length) return;
    const ns = vm.metadata.namespace!;
    const migVols: any[] = [];
    for (const v of vm.spec?.template?.spec?.volumes ?? []) {
      const claim = claimOfVolume(v);
      if (!claim || !this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim)) continue;
      migVols.push({ volumeName: v.name, destinationPVCInfo: this.pvcInfo(ns, claim, true) });
    }
    if (!migVols.length) return;
    this.sim.store.modify(R.VirtualMachineInstance, ns, vmi.metadata.name, (o) => {
      o.status ??= {};
      if (!(o.status.migratedVolumes ?? []).length) o.status.migratedVolumes = migVols;
    }, { subresource: "status" });
  }

  /** handleVolumeUpdateRequest (vm.go) with VolumeMigrationCancel / ValidateVolumes (volume-migration.go). */
  private handleVolumeUpdateRequest(vm: KObject, vmi: KObject): void {
    const ns = vm.metadata.namespace!;
    const vmVols: any[] = vm.spec?.template?.spec?.volumes ?? [];
    const vmiVols: any[] = vmi.spec?.volumes ?? [];
    const byName = new Map(vmVols.map((v) => [v.name, claimOfVolume(v)]));
    // updatedVolumesMapping: volume name -> new claim, for volumes whose claim changed
    const updated = new Map<string, string>();
    for (const v of vmiVols) {
      const old = claimOfVolume(v);
      const nu = byName.get(v.name);
      if (old && nu && nu !== old) updated.set(v.name, nu);
    }
    const migrating = hasCondition(vmi, Cond.VolumesChange, "True");
    const migVols: any[] = vmi.status?.migratedVolumes ?? [];

    // VolumeMigrationCancel
    if (migrating && migVols.some((m) => updated.has(m.volumeName))) {
      const rest = new Map(updated);
      let reverted = true;
      for (const m of migVols) {
        const claim = rest.get(m.volumeName);
        if (!m.sourcePVCInfo || claim === undefined || m.sourcePVCInfo.claimName !== claim) {
          reverted = false;
          break;
        }
        rest.delete(m.volumeName);
      }
      if (!reverted || rest.size) {
        throw new SyncError(`error encountered while handling volumes update requests: ${Msg.invalidVolumeRevert}`, "VolumesUpdateError");
      }
      this.patchVMIVolumes(vm, vmi);
      this.sim.store.modify(R.VirtualMachineInstance, ns, vmi.metadata.name, (o) => {
        o.status ??= {};
        o.status.conditions = setCondition(o.status.conditions ?? [], {
          type: Cond.VolumesChange,
          status: "False",
          reason: Reason.VolumesChangeCancellation,
          lastProbeTime: null,
          lastTransitionTime: now(),
        });
        delete o.status.migratedVolumes;
      }, { subresource: "status" });
      return;
    }

    if (vm.spec?.updateVolumesStrategy !== "Migration") return;
    if (!updated.size) return; // PersistentVolumesUpdated
    // ValidateVolumes
    const disks = new Map<string, any>((vmi.spec?.domain?.devices?.disks ?? []).map((d: any) => [d.name, d]));
    const filesystems = new Set((vmi.spec?.domain?.devices?.filesystems ?? []).map((f: any) => f.name));
    const invalid = { fs: [] as string[], shareable: [] as string[], luns: [] as string[], noCSI: [] as string[] };
    for (const v of vmVols) {
      if (!updated.has(v.name)) continue;
      if (filesystems.has(v.name)) {
        invalid.fs.push(v.name);
        continue;
      }
      const d = disks.get(v.name);
      if (!d) continue;
      if (d.shareable) {
        invalid.shareable.push(v.name);
        continue;
      }
      if (d.lun) {
        invalid.luns.push(v.name);
        continue;
      }
      if (v.persistentVolumeClaim) {
        if (!this.sim.store.tryGet(R.PersistentVolumeClaim, ns, v.persistentVolumeClaim.claimName)) {
          this.setVolumesChangeFalse(vmi, Msg.destinationMissing(`the pvc ${v.persistentVolumeClaim.claimName} doesn't exist`));
          return;
        }
      }
      if (v.dataVolume) {
        const dv = this.sim.store.tryGet(R.DataVolume, ns, v.dataVolume.name);
        if (!dv) {
          this.setVolumesChangeFalse(vmi, Msg.destinationMissing(`the datavolume ${v.dataVolume.name} doesn't exist`));
          return;
        }
        if (dv.status?.phase === "Succeeded") continue;
        const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, v.dataVolume.name);
        if (!pvc) {
          this.setVolumesChangeFalse(vmi, Msg.destinationMissing(`the pvc ${v.dataVolume.name} doesn't exist`));
          return;
        }
        if (!pvc.spec?.dataSourceRef) invalid.noCSI.push(v.name);
      }
    }
    const parts: string[] = [];
    if (invalid.fs.length) parts.push(` filesystems: [${invalid.fs.join(" ")}]`);
    if (invalid.shareable.length) parts.push(` shareable: [${invalid.shareable.join(" ")}]`);
    if (invalid.luns.length) parts.push(` luns: [${invalid.luns.join(" ")}]`);
    if (invalid.noCSI.length) parts.push(` DV storage class isn't a CSI or not using volume populators: [${invalid.noCSI.join(" ")}]`);
    if (parts.length) {
      this.setRestartRequired(vm, `invalid volumes to update with migration:${parts.join("")}`);
      return;
    }
    // UnsetVolumeChangeCondition
    if (getCondition(vmi, Cond.VolumesChange) && !migrating) {
      this.sim.store.modify(R.VirtualMachineInstance, ns, vmi.metadata.name, (o) => {
        o.status.conditions = removeCondition(o.status.conditions, Cond.VolumesChange);
      }, { subresource: "status" });
    }
    // GenerateMigratedVolumes
    const generated: any[] = [];
    for (const v of vmVols) {
      const nu = updated.get(v.name);
      if (!nu) continue;
      const old = claimOfVolume(vmiVols.find((x) => x.name === v.name));
      generated.push({ volumeName: v.name, sourcePVCInfo: this.pvcInfo(ns, old!, true), destinationPVCInfo: this.pvcInfo(ns, nu, true) });
    }
    // ValidateVolumesUpdateMigration
    const storageCond = getCondition(vmi, Cond.StorageLiveMigratable);
    if (storageCond?.status === "False") {
      this.setRestartRequired(vm, `cannot migrate the volumes as the VMI isn't migratable: ${storageCond.message ?? ""}`);
      return;
    }
    const included = new Set(generated.map((g) => g.volumeName));
    for (const vs of vmi.status?.volumeStatus ?? []) {
      if (!vs.persistentVolumeClaimInfo) continue;
      if ((vs.persistentVolumeClaimInfo.accessModes ?? []).includes("ReadWriteOnce") && !included.has(vs.name)) {
        this.setRestartRequired(vm, `cannot migrate the VM. The volume ${vs.name} is RWO and not included in the migration volumes`);
        return;
      }
    }
    // PatchVMIStatusWithMigratedVolumes + PatchVMIVolumes
    if (!(vmi.status?.migratedVolumes ?? []).length) {
      this.sim.store.modify(R.VirtualMachineInstance, ns, vmi.metadata.name, (o) => {
        o.status ??= {};
        if (!(o.status.migratedVolumes ?? []).length) o.status.migratedVolumes = generated;
      }, { subresource: "status" });
    }
    const fresh = this.sim.store.tryGet(R.VirtualMachineInstance, ns, vmi.metadata.name);
    if (fresh) this.patchVMIVolumes(vm, fresh);
    if (generated.length) {
      vm.status = { ...vm.status, volumeUpdateState: { ...(vm.status?.volumeUpdateState ?? {}), volumeMigrationState: { migratedVolumes: generated } } };
      this.pendingStatus.set(key(ns, vm.metadata.name), vm.status.volumeUpdateState);
    }
  }

  /** Status changes computed during sync that updateStatus must keep. */
  private readonly pendingStatus = new Map<string, any>();

  private patchVMIVolumes(vm: KObject, vmi: KObject): void {
    const migNames = new Set((vmi.status?.migratedVolumes ?? []).map((m: any) => m.volumeName));
    if (!migNames.size) return;
    const vmVols = new Map<string, any>((vm.spec?.template?.spec?.volumes ?? []).map((v: any) => [v.name, v]));
    const next = (vmi.spec?.volumes ?? []).map((v: any) => (migNames.has(v.name) && vmVols.has(v.name) ? structuredClone(vmVols.get(v.name)) : v));
    if (deepEqual(next, vmi.spec?.volumes)) return;
    this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      o.spec.volumes = next;
    });
  }

  private setVolumesChangeFalse(vmi: KObject, message: string): void {
    this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      o.status ??= {};
      o.status.conditions = setCondition(o.status.conditions ?? [], {
        type: Cond.VolumesChange,
        status: "False",
        message,
        lastProbeTime: null,
        lastTransitionTime: now(),
      });
    }, { subresource: "status" });
  }

  private setRestartRequired(vm: KObject, message: string): void {
    vm.status ??= {};
    vm.status.conditions = setCondition(vm.status.conditions ?? [], {
      type: Cond.RestartRequired,
      status: "True",
      message,
      lastProbeTime: null,
      lastTransitionTime: now(),
    });
    this.pendingStatus.set(key(vm.metadata.namespace, vm.metadata.name), { restartRequired: vm.status.conditions.find((c: Condition) => c.type === Cond.RestartRequired) });
  }

  // ---- status ----------------------------------------------------------------------------------

  private updateStatus(vm: KObject, vmi: KObject | undefined, syncErr: SyncError | undefined): void {
    const ns = vm.metadata.namespace!;
    const cur = this.sim.store.tryGet(R.VirtualMachine, ns, vm.metadata.name);
    if (!cur) return;
    const st: any = structuredClone(cur.status ?? {});
    const pending = this.pendingStatus.get(key(ns, vm.metadata.name));
    this.pendingStatus.delete(key(ns, vm.metadata.name));
    if (pending?.volumeMigrationState) st.volumeUpdateState = pending;
    if (pending?.restartRequired) st.conditions = setCondition(st.conditions ?? [], pending.restartRequired);
    if (vm.status?.stateChangeRequests) st.stateChangeRequests = vm.status.stateChangeRequests;
    if (vm.status?.conditions && !hasCondition(vm, Cond.RestartRequired)) st.conditions = removeCondition(st.conditions, Cond.RestartRequired);

    st.created = !!vmi;
    st.ready = !!vmi && hasCondition(vmi, Cond.Ready, "True");
    const runStrategy = runStrategyOf(cur);
    if (st.runStrategy || st.created) st.runStrategy = runStrategy;

    // trim the first state change request once it is done
    const req = st.stateChangeRequests?.[0];
    if (req) {
      const done =
        (req.action === "Start" && vmi && !vmi.metadata.deletionTimestamp && !isFinalPhase(vmi.status?.phase)) ||
        (req.action === "Stop" && (!vmi || !req.uid || vmi.metadata.uid !== req.uid));
      if (done) st.stateChangeRequests = st.stateChangeRequests.slice(1);
      if (!st.stateChangeRequests?.length) delete st.stateChangeRequests;
    }

    this.syncVolumeMigration(cur, st, vmi);
    this.syncConditions(st, vmi, syncErr);
    st.printableStatus = this.printableStatus(cur, vmi, st);
    if (!st.conditions?.length) st.conditions = [];

    if (!deepEqual(st, cur.status ?? {})) {
      this.sim.store.modify(R.VirtualMachine, ns, vm.metadata.name, (o) => (o.status = st), { subresource: "status" });
    }
    // Remove our finalizer from a final VMI once its state is recorded (or a deleted WaitingForSync VMI).
    const syncVMIDeleted = vmi?.status?.phase === VmiPhase.WaitingForSync && !!vmi.metadata.deletionTimestamp;
    if (vmi && (isFinalPhase(vmi.status?.phase) || syncVMIDeleted) && hasFinalizer(vmi, VirtualMachineControllerFinalizer)) {
      this.sim.store.modify(R.VirtualMachineInstance, ns, vmi.metadata.name, (o) => removeFinalizer(o, VirtualMachineControllerFinalizer));
    }
  }

  /** syncVolumeMigration (vm.go): clears the state after a revert; ManualRecoveryRequired when the VMI vanished. */
  private syncVolumeMigration(vm: KObject, st: any, vmi: KObject | undefined): void {
    const state = st.volumeUpdateState?.volumeMigrationState;
    if (!state) return;
    const src = new Map<string, string>();
    for (const m of state.migratedVolumes ?? []) if (m.sourcePVCInfo) src.set(m.volumeName, m.sourcePVCInfo.claimName);
    let recovered = true;
    for (const v of vm.spec?.template?.spec?.volumes ?? []) {
      const orig = src.get(v.name);
      if (orig === undefined) continue;
      if (orig !== claimOfVolume(v)) recovered = false;
    }
    if (recovered || vm.spec?.updateVolumesStrategy !== "Migration") {
      delete st.volumeUpdateState.volumeMigrationState;
      if (!Object.keys(st.volumeUpdateState).length) delete st.volumeUpdateState;
      st.conditions = removeCondition(removeCondition(st.conditions, Cond.VolumesChange), Cond.ManualRecoveryRequired);
      return;
    }
    if (!vmi || isFinalPhase(vmi.status?.phase)) {
      if ((st.conditions ?? []).some((c: Condition) => c.type === Cond.VolumesChange && c.status === "True")) {
        st.conditions = setCondition(st.conditions ?? [], {
          type: Cond.ManualRecoveryRequired,
          status: "True",
          reason: Msg.manualRecovery,
          lastProbeTime: null,
          lastTransitionTime: null,
        });
      }
      return;
    }
    const c = getCondition(vmi, Cond.VolumesChange);
    if (c?.status === "False" && c.reason === Reason.VolumesChangeCancellation) {
      delete st.volumeUpdateState.volumeMigrationState;
      if (!Object.keys(st.volumeUpdateState).length) delete st.volumeUpdateState;
    }
  }

  /** syncConditions + syncReadyConditionFromVMI + processFailureCondition (vm.go). */
  private syncConditions(st: any, vmi: KObject | undefined, syncErr: SyncError | undefined): void {
    let conds: Condition[] = st.conditions ?? [];
    const t = now();
    const vmiReady = vmi ? getCondition(vmi, Cond.Ready) : undefined;
    if (!vmi) {
      conds = setCondition(conds, { type: Cond.Ready, status: "False", reason: "VMINotExists", message: "VMI does not exist", lastProbeTime: t, lastTransitionTime: t });
    } else if (!vmiReady) {
      conds = setCondition(conds, { type: Cond.Ready, status: "False", reason: "VMIConditionMissing", message: "VMI is missing the Ready condition", lastProbeTime: t, lastTransitionTime: t });
    } else {
      conds = setCondition(conds, { ...vmiReady, type: Cond.Ready });
    }
    if (syncErr) {
      conds = setCondition(conds, { type: Cond.Failure, status: "True", reason: syncErr.reason, message: syncErr.message, lastProbeTime: null, lastTransitionTime: t });
    } else conds = removeCondition(conds, Cond.Failure);
    if (vmi) {
      const ignore = new Set<string>([Cond.Ready, Cond.Failure, Cond.RestartRequired]);
      const seen = new Set<string>();
      for (const c of vmi.status?.conditions ?? []) {
        if (ignore.has(c.type)) continue;
        seen.add(c.type);
        conds = setCondition(conds, { ...c });
      }
      conds = conds.filter((c) => ignore.has(c.type) || seen.has(c.type));
    }
    st.conditions = conds;
  }

  /** setPrintableStatus (vm.go): the first matching status wins. */
  private printableStatus(vm: KObject, vmi: KObject | undefined, st: any): string {
    const ns = vm.metadata.namespace!;
    const phase = vmi?.status?.phase;
    const final = isFinalPhase(phase);
    const runStrategy = runStrategyOf(vm);
    const volumes: any[] = vm.spec?.template?.spec?.volumes ?? [];
    const dv = (name: string) => this.sim.store.tryGet(R.DataVolume, ns, name);
    if (vm.metadata.deletionTimestamp) return "Terminating";
    if (vmi && !final && vmi.metadata.deletionTimestamp) return "Stopping";
    if (vmi && this.isMigrating(vmi)) return "Migrating";
    if (vmi && phase === VmiPhase.Running) return hasCondition(vmi, Cond.Paused, "True") ? "Paused" : "Running";
    if (vmi && hasCondition(vmi, "Synchronized", "False", "FailedPvcNotFound")) return "FailedPvcNotFound";
    for (const v of volumes) {
      if (!v.dataVolume) continue;
      const d = dv(v.dataVolume.name);
      if (!d) continue;
      if (d.status?.phase === "Failed") return "DataVolumeError";
      const run = getCondition(d, "Running");
      if (run?.status === "False" && (run.reason === "Error" || run.reason === "ImagePullFailed")) return "DataVolumeError";
    }
    if (vmi && hasCondition(vmi, Cond.PodScheduled, "False", "Unschedulable")) return "ErrorUnschedulable";
    for (const v of volumes) {
      if (!v.dataVolume) continue;
      const d = dv(v.dataVolume.name);
      if (!d || d.status?.phase === "Succeeded" || d.status?.phase === "PendingPopulation") continue;
      if (hasCondition(d, "Bound", "True") || d.status?.phase !== "WaitForFirstConsumer") return "Provisioning";
    }
    if (this.isSetToStart(vm, vmi, st)) {
      for (const v of volumes) {
        const claim = claimOfVolume(v);
        if (!claim) continue;
        const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
        if (pvc && pvc.status?.phase !== "Bound") return "WaitingForVolumeBinding";
      }
    }
    if (vmi && (phase === VmiPhase.Unset || phase === VmiPhase.Pending || phase === VmiPhase.Scheduling || phase === VmiPhase.Scheduled)) return "Starting";
    if (!vmi || final) {
      const sf = st.startFailure;
      if (sf?.consecutiveFailCount > 0 && ["Always", "RerunOnFailure", "Once"].includes(runStrategy)) return "CrashLoopBackOff";
    }
    // isVirtualMachineStatusStopped precedes WaitingForReceiver: without a VMI a receiver VM reads Stopped.
    if (vmi ? final : true) return "Stopped";
    if (phase === VmiPhase.WaitingForSync && runStrategy === "WaitAsReceiver") return "WaitingForReceiver";
    return "Unknown";
  }

  /** migrations.IsMigrating: a migration started and has not ended. */
  private isMigrating(vmi: KObject): boolean {
    const ms = vmi.status?.migrationState;
    return !!ms?.startTimestamp && !ms.endTimestamp;
  }

  private isSetToStart(vm: KObject, vmi: KObject | undefined, st: any): boolean {
    switch (runStrategyOf(vm)) {
      case "Always":
        return true;
      case "Manual":
        return vmi ? !this.hasStopRequestForVMI(vm, vmi) : this.hasStartRequest(vm);
      case "RerunOnFailure":
        return vmi ? vmi.status?.phase !== VmiPhase.Succeeded : this.hasStartRequest(vm) || st.runStrategy !== "RerunOnFailure";
      case "Once":
        return !vmi;
      default:
        return false;
    }
  }

  stop(): void {
    this.queue.stop();
  }
}
