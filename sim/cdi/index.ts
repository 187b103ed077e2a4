// Simulated CDI (containerized-data-importer) and the storage underneath it for one cluster:
// DataVolumes with source.blank and source.pvc (clone) create and populate a PVC of the same name
// (spec.storage rendered with StorageProfile defaults and filesystem overhead, or spec.pvc as is);
// PVCs bind (Immediate, or WaitForFirstConsumer once a pod selects a node) and get status.capacity.
// Phases, conditions (Bound, Ready, Running) and progress follow CDI's datavolume controller
// (pkg/controller/datavolume/controller-base.go, conditions.go).
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import type { Controller, SimCluster } from "../cluster.js";
import { getKubeVirt } from "../kubevirt/index.js";
import { DefaultTimings, type Timings } from "../kubevirt/sim.js";
import { type Condition, key, now, parseQuantity, setCondition, splitKey } from "../kubevirt/util.js";
import { WorkQueue } from "../kubevirt/workqueue.js";
import { installCapacityPublisher } from "./capacity.js";
import { claimPropertySets, defaultStorageClass, isCSI, isWFFC } from "./storage.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- DataVolume and PVC specs are free-form JSON */

export const AnnUsePopulator = "cdi.kubevirt.io/storage.usePopulator";
export const AnnSelectedNode = "volume.kubernetes.io/selected-node";
export const AnnPopulatedFor = "cdi.kubevirt.io/storage.populatedFor";
export const AnnImmediateBinding = "cdi.kubevirt.io/storage.bind.immediate.requested";
export const MessageErrStorageClassNotFound = "PVC spec is missing accessMode and no storageClass to choose profile";
const FS_OVERHEAD = 0.06; // CDI DefaultGlobalOverhead
const MiB = 2 ** 20;

export interface CDIOptions {
  timings?: Partial<Pick<Timings, "blankImport" | "cloneBandwidth">>;
  /** Provisioning latency of a PVC once it may bind, simulated ms (default 500). */
  provisionDelay?: number;
}

interface Work {
  startedAt: number;
  durationMs: number;
}

class RenderError extends Error {
  constructor(
    message: string,
    readonly reason = "ErrClaimNotValid",
  ) {
    super(message);
  }
}

export class CDIHandle implements Controller {
  private readonly dvQueue: WorkQueue;
  private readonly pvcQueue: WorkQueue;
  private readonly work = new Map<string, Work>();
  private readonly binding = new Set<string>();
  /** Clone DataVolumes by their source claim (ns/name), to wake them when the source changes. */
  private readonly clonesOf = new Map<string, Set<string>>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private unsubscribe?: () => void;
  private readonly timings: Pick<Timings, "blankImport" | "cloneBandwidth">;

  constructor(
    private readonly cluster: SimCluster,
    private readonly opts: CDIOptions = {},
  ) {
    this.timings = { blankImport: DefaultTimings.blankImport, cloneBandwidth: DefaultTimings.cloneBandwidth, ...opts.timings };
    const onError = (k: string, e: unknown) => getKubeVirt(cluster)?.sim.reportError("cdi", k, e);
    this.dvQueue = new WorkQueue("datavolume", cluster.clock, (k) => this.reconcileDV(k), { onError });
    this.pvcQueue = new WorkQueue("pvc-binder", cluster.clock, (k) => this.reconcilePVC(k), { onError });
    // The DefaultStorageClass admission plugin fills in the default class of an unclassed claim.
    cluster.store.addMutatingHook(R.PersistentVolumeClaim, (req) => {
      if (req.operation !== "CREATE" || !req.object) return;
      const spec = (req.object.spec ??= {});
      if (spec.storageClassName === undefined) {
        const def = defaultStorageClass(cluster.store);
        if (def) spec.storageClassName = def.metadata.name;
      }
      spec.volumeMode ??= "Filesystem";
    });
  }

  private get store() {
    return this.cluster.store;
  }

  private after(simMs: number, fn: () => void): void {
    const t = this.cluster.clock.setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, simMs);
    t.unref?.();
    this.timers.add(t);
  }

  private onEvent(e: StoreEvent): void {
    const o = e.object;
    switch (e.rt.kind) {
      case "DataVolume": {
        const k = key(o.metadata.namespace, o.metadata.name);
        this.dvQueue.add(k);
        const src = o.spec?.source?.pvc;
        if (src && e.type !== "DELETED") {
          const sk = key(src.namespace ?? o.metadata.namespace, src.name);
          if (!this.clonesOf.has(sk)) this.clonesOf.set(sk, new Set());
          this.clonesOf.get(sk)!.add(k);
        }
        break;
      }
      case "PersistentVolumeClaim": {
        const k = key(o.metadata.namespace, o.metadata.name);
        this.pvcQueue.add(k);
        this.dvQueue.add(k);
        for (const dv of this.clonesOf.get(k) ?? []) this.dvQueue.add(dv);
        break;
      }
      case "StorageClass":
        for (const p of this.store.list(R.PersistentVolumeClaim).items) if (p.status?.phase !== "Bound") this.pvcQueue.add(key(p.metadata.namespace, p.metadata.name));
        for (const d of this.store.list(R.DataVolume).items) if (d.status?.phase !== "Succeeded") this.dvQueue.add(key(d.metadata.namespace, d.metadata.name));
        break;
      default:
    }
  }

  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.store.subscribe((e) => this.onEvent(e));
    for (const d of this.store.list(R.DataVolume).items) this.dvQueue.add(key(d.metadata.namespace, d.metadata.name));
    for (const p of this.store.list(R.PersistentVolumeClaim).items) this.pvcQueue.add(key(p.metadata.namespace, p.metadata.name));
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.dvQueue.stop();
    this.pvcQueue.stop();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }

  // ---- PVC binding (the PV controller and a dynamic provisioner) -------------------------------

  private reconcilePVC(k: string): void {
    const [ns, name] = splitKey(k);
    const pvc = this.store.tryGet(R.PersistentVolumeClaim, ns, name);
    if (!pvc || pvc.metadata.deletionTimestamp) return;
    if (pvc.status?.phase === "Bound") return;
    if (pvc.status?.phase !== "Pending") {
      this.store.modify(R.PersistentVolumeClaim, ns, name, (o) => (o.status = { phase: "Pending" }), { subresource: "status" });
      return;
    }
    const scName: string | undefined = pvc.spec?.storageClassName;
    const sc = scName ? this.store.tryGet(R.StorageClass, undefined, scName) : undefined;
    if (!sc) {
      this.eventOnce(pvc, "Warning", "ProvisioningFailed", scName ? `storageclass.storage.k8s.io "${scName}" not found` : "no persistent volumes available for this claim and no storage class is set");
      return;
    }
    const immediate = pvc.metadata.annotations?.[AnnImmediateBinding] !== undefined;
    if (isWFFC(sc) && !pvc.metadata.annotations?.[AnnSelectedNode] && !immediate) {
      this.eventOnce(pvc, "Normal", "WaitForFirstConsumer", "waiting for first consumer to be created before binding");
      return;
    }
    if (this.binding.has(k)) return;
    this.binding.add(k);
    this.after(this.opts.provisionDelay ?? 500, () => {
      this.binding.delete(k);
      this.store.modify(R.PersistentVolumeClaim, ns, name, (o) => {
        if (o.metadata.uid !== pvc.metadata.uid) return;
        o.spec.volumeName = `pvc-${o.metadata.uid}`;
        o.metadata.annotations = {
          ...o.metadata.annotations,
          "pv.kubernetes.io/bind-completed": "yes",
          "pv.kubernetes.io/bound-by-controller": "yes",
          "volume.beta.kubernetes.io/storage-provisioner": sc.provisioner,
          "volume.kubernetes.io/storage-provisioner": sc.provisioner,
        };
      });
      this.store.modify(R.PersistentVolumeClaim, ns, name, (o) => {
        if (o.metadata.uid !== pvc.metadata.uid) return;
        o.status = { phase: "Bound", accessModes: o.spec.accessModes, capacity: { storage: o.spec.resources?.requests?.storage ?? "0" } };
      }, { subresource: "status" });
    });
  }

  private readonly evented = new Set<string>();
  private eventOnce(obj: KObject, type: "Normal" | "Warning", reason: string, message: string): void {
    const k = `${obj.metadata.uid}/${reason}/${message}`;
    if (this.evented.has(k)) return;
    this.evented.add(k);
    getKubeVirt(this.cluster)?.sim.event(obj, type, reason, message);
  }

  // ---- DataVolume controller -------------------------------------------------------------------

  /** renderPvcSpec: spec.pvc as is, or spec.storage with StorageProfile defaults and size inflation. */
  private renderPvcSpec(dv: KObject): any {
    if (dv.spec?.pvc) return structuredClone(dv.spec.pvc);
    const storage = dv.spec?.storage;
    if (!storage) throw new RenderError("datavolume one of {pvc, storage} field is required");
    const spec: any = {
      ...(storage.accessModes ? { accessModes: [...storage.accessModes] } : {}),
      ...(storage.selector ? { selector: storage.selector } : {}),
      resources: structuredClone(storage.resources ?? {}),
      ...(storage.volumeName ? { volumeName: storage.volumeName } : {}),
      ...(storage.storageClassName !== undefined ? { storageClassName: storage.storageClassName } : {}),
      ...(storage.volumeMode ? { volumeMode: storage.volumeMode } : {}),
      ...(storage.dataSource ? { dataSource: storage.dataSource } : {}),
      ...(storage.dataSourceRef ? { dataSourceRef: storage.dataSourceRef } : {}),
    };
    const sc = spec.storageClassName ? this.store.tryGet(R.StorageClass, undefined, spec.storageClassName) : defaultStorageClass(this.store);
    if (!sc) {
      if (!spec.accessModes?.length) throw new RenderError(MessageErrStorageClassNotFound);
    } else {
      spec.storageClassName = sc.metadata.name;
      const sets = claimPropertySets(sc);
      if (!spec.volumeMode && !spec.accessModes?.length) {
        if (!sets.length) throw new RenderError(`no accessMode specified in StorageProfile ${sc.metadata.name}`);
        spec.accessModes = [...sets[0]!.accessModes];
        spec.volumeMode = sets[0]!.volumeMode;
      } else if (!spec.accessModes?.length) {
        const match = sets.find((s) => s.volumeMode === spec.volumeMode);
        if (!match) throw new RenderError(`no accessMode specified in StorageProfile ${sc.metadata.name}`);
        spec.accessModes = [...match.accessModes];
      } else if (!spec.volumeMode) {
        const match = sets.find((s) => s.accessModes.some((m) => spec.accessModes.includes(m)));
        spec.volumeMode = match?.volumeMode ?? "Filesystem";
      }
    }
    const isClone = !!dv.spec?.source?.pvc;
    const requested = spec.resources?.requests?.storage;
    if (requested === undefined) {
      if (!isClone) throw new RenderError("PVC Spec is not valid - missing storage size");
      const src = this.store.tryGet(R.PersistentVolumeClaim, dv.spec.source.pvc.namespace ?? dv.metadata.namespace, dv.spec.source.pvc.name);
      const size = src?.spec?.resources?.requests?.storage;
      if (size) spec.resources = { ...spec.resources, requests: { ...spec.resources?.requests, storage: size } };
      return spec;
    }
    const bytes = parseQuantity(requested);
    if (!(bytes >= MiB)) throw new RenderError("PVC Spec is not valid - storage size should be at least 1MiB");
    if ((spec.volumeMode ?? "Filesystem") === "Filesystem") {
      // InflateSizeWithOverhead: align to 1MiB, then add the filesystem overhead
      const aligned = Math.ceil(bytes / MiB) * MiB;
      spec.resources.requests.storage = String(Math.ceil(aligned * (1 + FS_OVERHEAD)));
    }
    return spec;
  }

  private usePopulator(dv: KObject, pvcSpec: any): boolean {
    const ann = dv.metadata.annotations?.[AnnUsePopulator];
    if (ann !== undefined) return ann === "true";
    const sc = pvcSpec.storageClassName ? this.store.tryGet(R.StorageClass, undefined, pvcSpec.storageClassName) : undefined;
    return isCSI(sc);
  }

  private writeStatus(dv: KObject, fn: (st: any) => void): void {
    const st: any = structuredClone(dv.status ?? {});
    fn(st);
    if (JSON.stringify(st) === JSON.stringify(dv.status ?? {})) return;
    const before = dv.status?.phase;
    this.store.modify(R.DataVolume, dv.metadata.namespace, dv.metadata.name, (o) => {
      if (o.metadata.uid === dv.metadata.uid) o.status = st;
    }, { subresource: "status" });
    if (st.phase !== before && st.phase) {
      const kv = getKubeVirt(this.cluster)?.sim;
      if (st.phase === "Succeeded") kv?.event(dv, "Normal", "ImportSucceeded", `Successfully imported into PVC ${dv.metadata.name}`);
    }
  }

  /** updateConditions (controller-base.go). */
  private conditions(st: any, pvc: KObject | undefined, reason: string, message: string, running?: { status: "True" | "False"; reason: string; message: string }): void {
    let conds: Condition[] = st.conditions ?? [];
    const t = now();
    const upd = (type: string, status: "True" | "False" | "Unknown", msg: string, rsn: string) => {
      const old = conds.find((c) => c.type === type);
      if (old && old.status === status && old.message === msg && old.reason === rsn) return;
      conds = setCondition(conds, { type, status, message: msg, reason: rsn, lastHeartbeatTime: t, lastTransitionTime: old?.status === status ? old.lastTransitionTime : t });
    };
    if (pvc) {
      if (pvc.status?.phase === "Bound") upd("Bound", "True", `PVC ${pvc.metadata.name} Bound`, "Bound");
      else upd("Bound", "False", `PVC ${pvc.metadata.name} Pending`, "Pending");
    } else upd("Bound", "False", message || "No PVC found", reason || "NotFound");
    const ready = st.phase === "Succeeded" ? "True" : st.phase === "Unknown" ? "Unknown" : "False";
    upd("Ready", ready, pvc ? "" : message, pvc ? (ready === "True" ? "" : st.phase === "ImportInProgress" || st.phase === "CloneInProgress" ? "TransferRunning" : "") : reason);
    if (running) upd("Running", running.status, running.message, running.reason);
    else if (!conds.some((c) => c.type === "Running")) upd("Running", "False", "", "");
    st.conditions = conds;
  }

  private reconcileDV(k: string): void {
    const [ns, name] = splitKey(k);
    const dv = this.store.tryGet(R.DataVolume, ns, name);
    if (!dv) {
      this.work.delete(k);
      return;
    }
    if (dv.metadata.deletionTimestamp) return;
    let pvc = this.store.tryGet(R.PersistentVolumeClaim, ns, name);
    if (!pvc) {
      let spec: any;
      try {
        spec = this.renderPvcSpec(dv);
      } catch (e) {
        if (!(e instanceof RenderError)) throw e;
        this.eventOnce(dv, "Warning", e.reason, e.message);
        this.writeStatus(dv, (st) => {
          st.phase = "";
          this.conditions(st, undefined, e.reason, e.message);
        });
        return;
      }
      const populator = this.usePopulator(dv, spec);
      if (populator && !spec.dataSourceRef) {
        const kind = dv.spec?.source?.pvc ? "VolumeCloneSource" : "VolumeImportSource";
        spec.dataSourceRef = { apiGroup: "cdi.kubevirt.io", kind, name: `${kind === "VolumeCloneSource" ? "volume-clone-source" : "volume-import-source"}-${dv.metadata.uid}` };
        spec.dataSource = { apiGroup: "cdi.kubevirt.io", kind, name: spec.dataSourceRef.name };
      }
      const annotations: Record<string, string> = {
        "cdi.kubevirt.io/storage.contentType": dv.spec?.contentType ?? "kubevirt",
        "cdi.kubevirt.io/createdForDataVolume": dv.metadata.uid,
        ...(populator ? { [AnnUsePopulator]: "true" } : {}),
      };
      for (const [ak, av] of Object.entries(dv.metadata.annotations ?? {})) if (ak.startsWith("cdi.kubevirt.io/") || ak === AnnImmediateBinding) annotations[ak] = av;
      pvc = this.store.create(
        R.PersistentVolumeClaim,
        {
          metadata: {
            name,
            namespace: ns,
            labels: { app: "containerized-data-importer", "app.kubernetes.io/component": "storage", "app.kubernetes.io/managed-by": "cdi-controller", ...(dv.metadata.labels ?? {}) },
            annotations,
            ownerReferences: [{ apiVersion: "cdi.kubevirt.io/v1beta1", kind: "DataVolume", name, uid: dv.metadata.uid, controller: true, blockOwnerDeletion: true }],
          },
          spec,
        },
        { internal: true },
      );
    }
    this.syncPhase(dv, pvc);
  }

  private syncPhase(dv: KObject, pvc: KObject): void {
    const k = key(dv.metadata.namespace, dv.metadata.name);
    const sc = pvc.spec?.storageClassName ? this.store.tryGet(R.StorageClass, undefined, pvc.spec.storageClassName) : undefined;
    const populated = pvc.metadata.annotations?.[AnnPopulatedFor] === dv.metadata.name || pvc.metadata.annotations?.["cdi.kubevirt.io/storage.pod.phase"] === "Succeeded";
    const clone = dv.spec?.source?.pvc;
    if (populated) {
      this.writeStatus(dv, (st) => {
        st.phase = "Succeeded";
        st.progress = "100.0%";
        st.claimName = pvc.metadata.name;
        this.conditions(st, pvc, "", "", { status: "False", reason: "Completed", message: clone ? "Clone Complete" : "Import Complete" });
      });
      return;
    }
    if (pvc.status?.phase !== "Bound") {
      const usePop = pvc.metadata.annotations?.[AnnUsePopulator] === "true";
      const wffcUnselected = isWFFC(sc) && !pvc.metadata.annotations?.[AnnSelectedNode] && pvc.metadata.annotations?.[AnnImmediateBinding] === undefined;
      this.writeStatus(dv, (st) => {
        st.phase = wffcUnselected ? (usePop ? "PendingPopulation" : "WaitForFirstConsumer") : "Pending";
        st.progress ??= "N/A";
        st.claimName = pvc.metadata.name;
        this.conditions(st, pvc, "", "");
      });
      return;
    }
    // bound: the importer (blank) or cloner runs
    let w = this.work.get(k);
    const starting = !w; // the pod is only being scheduled: report *Scheduled once, whatever the clock says
    if (clone) {
      const srcNs = clone.namespace ?? dv.metadata.namespace;
      const src = this.store.tryGet(R.PersistentVolumeClaim, srcNs, clone.name);
      if (!src) {
        this.writeStatus(dv, (st) => {
          st.phase = "CloneScheduled";
          st.progress ??= "N/A";
          st.claimName = pvc.metadata.name;
          this.conditions(st, pvc, "", "", { status: "False", reason: "CloneSourceNotFound", message: `source PVC ${srcNs}/${clone.name} not found` });
        });
        return;
      }
      if (!w) {
        const size = parseQuantity(src.status?.capacity?.storage ?? src.spec?.resources?.requests?.storage);
        w = { startedAt: Date.now(), durationMs: Math.max(1000, ((Number.isFinite(size) ? size : 0) / this.timings.cloneBandwidth) * 1000) };
        this.work.set(k, w);
      }
    } else if (!w) {
      w = { startedAt: Date.now(), durationMs: this.timings.blankImport };
      this.work.set(k, w);
    }
    const elapsed = this.cluster.clock.simMs(Date.now() - w.startedAt);
    if (!starting && elapsed >= w.durationMs) {
      this.work.delete(k);
      this.store.modify(R.PersistentVolumeClaim, pvc.metadata.namespace, pvc.metadata.name, (o) => {
        o.metadata.annotations = {
          ...o.metadata.annotations,
          "cdi.kubevirt.io/storage.pod.phase": "Succeeded",
          "cdi.kubevirt.io/storage.condition.running": "false",
          "cdi.kubevirt.io/storage.condition.running.reason": "Completed",
          [AnnPopulatedFor]: dv.metadata.name,
        };
      });
      return; // the PVC event brings us back to mark Succeeded
    }
    const pct = Math.min(99.99, (elapsed / w.durationMs) * 100);
    const inProgress = clone ? "CloneInProgress" : "ImportInProgress";
    this.writeStatus(dv, (st) => {
      st.phase = starting || elapsed < Math.min(500, w.durationMs / 10) ? (clone ? "CloneScheduled" : "ImportScheduled") : inProgress;
      st.progress = st.phase === inProgress ? `${pct.toFixed(2)}%` : "N/A";
      st.claimName = pvc.metadata.name;
      this.conditions(st, pvc, "", "", st.phase === inProgress ? { status: "True", reason: "Pod is running", message: "" } : undefined);
    });
    // progress is re-evaluated on a timer while the transfer runs
    this.dvQueue.addAfter(k, Math.min(w.durationMs - elapsed, Math.max(250, w.durationMs / 10)));
  }
}

const handles = new WeakMap<SimCluster, CDIHandle>();

export function installCDI(cluster: SimCluster, opts: CDIOptions = {}): CDIHandle {
  const existing = handles.get(cluster);
  if (existing) return existing;
  const h = new CDIHandle(cluster, opts);
  handles.set(cluster, h);
  cluster.controllers.push(h);
  // The CSI driver's capacity tracking (CSIStorageCapacity objects) runs beside CDI.
  installCapacityPublisher(cluster);
  return h;
}

