// The VirtualMachineInstanceMigration controller (pkg/virt-controller/watch/migration/migration.go
// and decentralized.go): phase machine for local, decentralized-source and decentralized-target
// migrations, target pod creation under the parallel-migration limits (queued in Pending), target
// pod timeouts, hand-off to virt-handler, abort on deletion, back-off of workload-update migrations,
// status.migrationState once final, synchronizationAddresses, and finalized-VMIM garbage collection.
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import {
  Cond,
  Defaults,
  MigrationFinalizer,
  MigrationSelectorLabel,
  MigrationTargetNodeNameLabel,
  Msg,
  Phase,
  VmiPhase,
  WorkloadUpdateMigrationAnnotation,
} from "./constants.js";
import {
  isDecSource,
  isDecTarget,
  isDecentralized,
  isFinal,
  isLocalOrDecSource,
  isLocalOrDecTarget,
  isMigrationSource,
  isMigrationSourceSynchronized,
  isMigrationSynchronized,
  isRunning,
  isTargetPreparing,
  phaseOf,
  priorityOf,
  requeueDelayMs,
  targetIsCreated,
  targetIsHandedOff,
} from "./migration-util.js";
import type { SimPod } from "./pods.js";
import type { KubeVirtSim } from "./sim.js";
import { type Condition, deepEqual, errorMessage, getCondition, isNotFound, key, now, removeCondition, removeFinalizer, setCondition, splitKey } from "./util.js";
import { guestMemory, isFinalPhase, isReceiver } from "./vmi-controller.js";
import { WorkQueue } from "./workqueue.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- status structures are free-form JSON */

export class MigrationController {
  readonly queue: WorkQueue;
  private readonly uidToKey = new Map<string, string>();
  private readonly handedOff = new Set<string>();
  private readonly failedAt = new Map<string, number>();

  constructor(private readonly sim: KubeVirtSim) {
    this.queue = new WorkQueue("migration", sim.clock, (k) => this.reconcile(k), { onError: (k, e) => sim.reportError("migration", k, e) });
    sim.pods.onChange((p) => this.onPod(p));
  }

  onEvent(e: StoreEvent): void {
    const o = e.object;
    switch (e.rt.kind) {
      case "VirtualMachineInstanceMigration":
        this.uidToKey.set(o.metadata.uid, key(o.metadata.namespace, o.metadata.name));
        if (e.type === "DELETED") {
          this.uidToKey.delete(o.metadata.uid);
          this.handedOff.delete(o.metadata.uid);
          this.failedAt.delete(o.metadata.uid);
          // virt-handler forgets a finished copy once its migration object is gone
          const rt = this.sim.runtimes.get(o.metadata.uid);
          if (rt && (rt.done || rt.transfer?.stats().state !== "running")) this.sim.runtimes.delete(o.metadata.uid);
          // a target pod nobody owns any more goes away
          for (const p of this.sim.pods.list()) if (p.migrationUID === o.metadata.uid && p.role === "target") this.sim.pods.delete(p.name);
        }
        this.queue.add(key(o.metadata.namespace, o.metadata.name));
        break;
      case "VirtualMachineInstance":
        for (const m of this.migrationsFor(o.metadata.namespace!, o.metadata.name)) this.queue.add(key(m.metadata.namespace, m.metadata.name));
        break;
      case "KubeVirt":
        for (const m of this.sim.cache.list("VirtualMachineInstanceMigration")) this.queue.add(key(m.metadata.namespace, m.metadata.name));
        break;
      default:
    }
  }

  private onPod(p: SimPod): void {
    if (p.migrationUID) {
      const k = this.uidToKey.get(p.migrationUID);
      if (k) this.queue.add(k);
    }
    for (const m of this.migrationsFor(p.namespace, p.vmi)) this.queue.add(key(m.metadata.namespace, m.metadata.name));
  }

  /** Migrations of a VMI, from the cache (read-only objects). */
  migrationsFor(namespace: string, vmi: string): KObject[] {
    return this.sim.cache.list("VirtualMachineInstanceMigration", namespace).filter((m) => m.spec?.vmiName === vmi || m.metadata.labels?.[MigrationSelectorLabel] === vmi);
  }

  targetPod(m: KObject): SimPod | undefined {
    return this.sim.pods.list().find((p) => p.migrationUID === m.metadata.uid);
  }

  private sourcePod(vmi: KObject): SimPod | undefined {
    return this.sim.pods.forVMI(vmi.metadata.namespace!, vmi.metadata.name).find((p) => p.role === "launcher" && p.vmiUID === vmi.metadata.uid);
  }

  private patchVMIStatus(vmi: KObject, fn: (st: any) => void): void {
    this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      if (o.metadata.uid !== vmi.metadata.uid) return;
      o.status ??= {};
      fn(o.status);
    }, { subresource: "status" });
  }

  // ---- execute ---------------------------------------------------------------------------------

  reconcile(k: string): void {
    const [ns, name] = splitKey(k);
    // reads come from the informer cache (read-only objects); writes go through the store
    const m = this.sim.cache.get("VirtualMachineInstanceMigration", ns, name);
    if (!m) return;
    this.uidToKey.set(m.metadata.uid, k);
    const vmi = this.sim.cache.get("VirtualMachineInstance", ns, m.spec?.vmiName);
    if (!vmi) {
      if (!m.metadata.deletionTimestamp) {
        // "Deleting migration for deleted vmi"
        try {
          this.sim.store.delete(R.VirtualMachineInstanceMigration, ns, name, { internal: true });
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      } else if (!isFinal(m) || m.metadata.finalizers?.includes(MigrationFinalizer)) {
        // The VMI vanished before this migration saw it final; finish the migration so it can go.
        this.writeStatus(m, (c) => {
          if (!isFinal(c)) this.fail(c, "Migration failed because vmi does not exist.");
          removeFinalizer(c, MigrationFinalizer);
        });
      }
      return;
    }
    let syncErr: unknown;
    try {
      this.sync(m, vmi);
    } catch (e) {
      syncErr = e;
    }
    const m2 = this.sim.cache.get("VirtualMachineInstanceMigration", ns, name);
    const vmi2 = this.sim.cache.get("VirtualMachineInstance", ns, m.spec?.vmiName);
    if (!m2) return;
    this.updateStatus(m2, vmi2, syncErr);
    if (syncErr) throw syncErr instanceof Error ? syncErr : new Error(errorMessage(syncErr));
    const m3 = this.sim.cache.get("VirtualMachineInstanceMigration", ns, name);
    if (m3 && isFinal(m3) && vmi2) {
      this.garbageCollect(vmi2);
      this.reEnqueuePending();
    }
  }

  // ---- sync ------------------------------------------------------------------------------------

  private canMigrateVMI(m: KObject, vmi: KObject): boolean {
    const cur = vmi.status?.migrationState?.migrationUid;
    if (!vmi.status?.migrationState || !cur || cur === m.metadata.uid) return true;
    const other = this.sim.cache.list("VirtualMachineInstanceMigration", m.metadata.namespace).find((x) => x.metadata.uid === cur);
    return !other || isFinal(other);
  }

  private sync(m: KObject, vmi: KObject): void {
    if (vmi.metadata.deletionTimestamp) return;
    const ms = vmi.status?.migrationState;
    if (isMigrationSynchronized(vmi, m) && ms?.migrationUid === m.metadata.uid && ms?.completed) return;
    if (!this.canMigrateVMI(m, vmi)) throw new Error("vmi is ineligible for migration because another migration job is running");
    const pod = this.targetPod(m);
    const deleting = !!m.metadata.deletionTimestamp;
    switch (phaseOf(m)) {
      case Phase.Pending: {
        if (deleting) return this.preHandoffCancel(pod);
        if (this.inBackoff(m, vmi)) return;
        if (!isLocalOrDecTarget(m)) return;
        if (!pod) {
          if (!isDecentralized(m) && !this.sourcePod(vmi)) return;
          this.handleTargetPodCreation(m, vmi);
        } else if (!pod.ready) this.handlePendingPodTimeout(m, pod);
        else this.claimsReady(m, vmi, pod);
        return;
      }
      case Phase.Scheduling:
        if (deleting) return this.preHandoffCancel(pod);
        if (isDecSource(m) && vmi.status?.phase === VmiPhase.Running) this.updateVMIMigrationSourceWithPodInfo(m, vmi);
        if (pod) {
          this.handlePendingPodTimeout(m, pod);
          if (pod.node) this.claimsReady(m, vmi, pod);
        }
        return;
      case Phase.Scheduled:
        if (deleting && !this.isHandedOff(m, vmi)) return this.preHandoffCancel(pod);
        if (pod?.ready && this.claimsReady(m, vmi, pod)) this.handoff(m, vmi, pod);
        return;
      case Phase.PreparingTarget:
      case Phase.TargetReady:
        if (isLocalOrDecTarget(m) && (!pod || pod.phase === "Failed" || pod.phase === "Succeeded") && isMigrationSynchronized(vmi, m) && !ms?.startTimestamp && !ms?.failed && !ms?.completed) {
          this.markFailedOnVMI(m, vmi);
        }
        return;
      case Phase.Failed:
        if (isLocalOrDecTarget(m) && isMigrationSynchronized(vmi, m) && ms?.migrationUid === m.metadata.uid && !ms?.failed) this.markFailedOnVMI(m, vmi);
        return;
      case Phase.Running:
        if (deleting && isMigrationSynchronized(vmi, m) && !ms?.abortRequested) this.patchVMIStatus(vmi, (s) => (s.migrationState.abortRequested = true));
        return;
      case Phase.WaitingForSync:
        this.patchVMIStatus(vmi, (s) => {
          if (!s.migrationState || s.migrationState.completed) s.migrationState = {};
          const t = (s.migrationState.targetState ??= {});
          if (s.migrationState.targetPod) t.pod = s.migrationState.targetPod;
          if (s.migrationState.targetNode) t.node = s.migrationState.targetNode;
          t.migrationUID = m.metadata.uid;
        });
        return;
      case Phase.Synchronizing:
        this.patchVMIStatus(vmi, (s) => {
          if (!s.migrationState || s.migrationState.completed) s.migrationState = {};
          const src = (s.migrationState.sourceState ??= {});
          s.migrationState.targetState ??= {};
          src.migrationUID = m.metadata.uid;
          src.virtualMachineInstanceUID = vmi.metadata.uid;
          src.domainNamespace = vmi.metadata.namespace;
          s.migrationState.targetState.syncAddress = m.spec.sendTo.connectURL;
        });
        return;
      default:
    }
  }

  /**
   * The target pod's volumes: the scheduler records its node on WaitForFirstConsumer claims, and the
   * pod only becomes ready once every claim is bound and populated.
   */
  private claimsReady(m: KObject, vmi: KObject, pod: SimPod): boolean {
    const ns = vmi.metadata.namespace!;
    let ready = true;
    for (const v of vmi.spec?.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name;
      if (!claim) continue;
      const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
      if (!pvc) {
        ready = false;
        continue;
      }
      if (pvc.status?.phase !== "Bound") {
        ready = false;
        if (pod.node && !pvc.metadata.annotations?.["volume.kubernetes.io/selected-node"]) {
          this.sim.store.modify(R.PersistentVolumeClaim, ns, claim, (o) => {
            o.metadata.annotations = { ...o.metadata.annotations, "volume.kubernetes.io/selected-node": pod.node! };
          });
        }
        continue;
      }
      const dv = this.sim.store.tryGet(R.DataVolume, ns, claim);
      if (dv && dv.status?.phase !== "Succeeded") ready = false;
    }
    if (!ready) this.queue.addAfter(key(m.metadata.namespace, m.metadata.name), this.pollDelay(1_000));
    return ready;
  }

  private claimsReadyQuiet(vmi: KObject): boolean {
    const ns = vmi.metadata.namespace!;
    return (vmi.spec?.volumes ?? []).every((v: any) => {
      const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name;
      if (!claim) return true;
      const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
      const dv = this.sim.store.tryGet(R.DataVolume, ns, claim);
      return pvc?.status?.phase === "Bound" && (!dv || dv.status?.phase === "Succeeded");
    });
  }

  private preHandoffCancel(pod: SimPod | undefined): void {
    if (pod) this.sim.pods.delete(pod.name);
  }

  private isHandedOff(m: KObject, vmi: KObject): boolean {
    return (isMigrationSynchronized(vmi, m) && vmi.status?.migrationState?.migrationUid === m.metadata.uid) || this.handedOff.has(m.metadata.uid);
  }

  /** handleMigrationBackoff: evacuation/workload-update migrations wait 20s, doubling per earlier failure. */
  private inBackoff(m: KObject, vmi: KObject): boolean {
    if (m.metadata.annotations?.[WorkloadUpdateMigrationAnnotation] === undefined && m.metadata.annotations?.["kubevirt.io/evacuationMigration"] === undefined) return false;
    const eligible = this.migrationsFor(vmi.metadata.namespace!, vmi.metadata.name)
      .filter((x) => x.metadata.annotations?.[WorkloadUpdateMigrationAnnotation] !== undefined || x.metadata.annotations?.["kubevirt.io/evacuationMigration"] !== undefined)
      .sort((a, b) => Date.parse(b.metadata.creationTimestamp) - Date.parse(a.metadata.creationTimestamp) || b.metadata.name.localeCompare(a.metadata.name));
    if (eligible.length < 2 || eligible[0]!.metadata.uid !== m.metadata.uid) return false;
    let backoff = 0;
    for (const x of eligible.slice(1)) {
      if (phaseOf(x) === Phase.Succeeded) break;
      if (x.metadata.deletionTimestamp) continue;
      if (phaseOf(x) === Phase.Failed) backoff = backoff ? backoff * 2 : 20_000;
    }
    if (!backoff) return false;
    const prev = eligible[1]!;
    const failedTs =
      this.failedAt.get(prev.metadata.uid) ??
      Date.parse((prev.status?.phaseTransitionTimestamps ?? []).find((t: any) => t.phase === Phase.Failed)?.phaseTransitionTimestamp ?? "");
    if (!Number.isFinite(failedTs)) return false;
    const remainingReal = failedTs + this.sim.clock.realMs(backoff) - Date.now();
    if (remainingReal <= 0) return false;
    this.sim.event(vmi, "Warning", "MigrationBackoff", `backoff migrating vmi ${vmi.metadata.namespace}/${vmi.metadata.name}`);
    this.queue.addAfter(key(m.metadata.namespace, m.metadata.name), this.sim.clock.simMs(remainingReal));
    return true;
  }

  /** findRunningMigrations: running phases plus unfinished migrations that already have a target pod. */
  private runningMigrations(): KObject[] {
    const withPods = new Set(this.sim.pods.list().map((p) => p.migrationUID));
    return this.sim.cache.list("VirtualMachineInstanceMigration").filter((x) => !isFinal(x) && (isRunning(x) || withPods.has(x.metadata.uid)));
  }

  /**
   * KubeVirt re-checks queued migrations every 1-5 s; at a high time scale that would be a busy loop,
   * so such polls wait at least 25 ms of real time (a freed slot re-queues them at once anyway).
   */
  private pollDelay(simMs: number): number {
    return Math.max(simMs, this.sim.clock.simMs(25));
  }

  private handleTargetPodCreation(m: KObject, vmi: KObject): void {
    const k = key(m.metadata.namespace, m.metadata.name);
    const cfg = this.sim.config().migrations;
    const running = this.runningMigrations();
    if (running.length >= cfg.parallelMigrationsPerCluster) {
      this.queue.addAfter(k, this.pollDelay(requeueDelayMs(m)));
      return;
    }
    // Higher-priority (then older) pending migrations get the free slots first, as the priority queue does.
    const free = cfg.parallelMigrationsPerCluster - running.length;
    const withPods = new Set(this.sim.pods.list().map((p) => p.migrationUID));
    const ahead = this.sim.cache
      .list("VirtualMachineInstanceMigration")
      .filter((x) => phaseOf(x) === Phase.Pending && !withPods.has(x.metadata.uid) && isLocalOrDecTarget(x) && x.metadata.uid !== m.metadata.uid)
      .filter((x) => priorityOf(x) > priorityOf(m) || (priorityOf(x) === priorityOf(m) && x.metadata.creationTimestamp < m.metadata.creationTimestamp));
    if (ahead.length >= free) {
      this.queue.addAfter(k, this.pollDelay(requeueDelayMs(m)));
      return;
    }
    const node = vmi.status?.nodeName ?? "";
    let outbound = 0;
    for (const r of running) {
      const rv = this.sim.cache.get("VirtualMachineInstance", r.metadata.namespace, r.spec?.vmiName);
      if (rv && ((rv.status?.nodeName ?? "") === node || rv.status?.migrationState?.sourceNode === node)) outbound++;
    }
    if (outbound >= cfg.parallelOutboundMigrationsPerNode) {
      this.queue.addAfter(k, this.pollDelay(requeueDelayMs(m)));
      return;
    }
    if (vmi.status?.phase !== VmiPhase.Running && !isDecTarget(m)) return;
    this.sim.pods.create({
      namespace: vmi.metadata.namespace!,
      vmi: vmi.metadata.name,
      vmiUID: vmi.metadata.uid,
      role: "target",
      migrationUID: m.metadata.uid,
      memory: guestMemory(vmi) + this.sim.launcherOverhead,
      nodeSelector: { ...(m.spec?.addedNodeSelector ?? {}), ...(vmi.spec?.nodeSelector ?? {}) },
      avoidNode: isDecentralized(m) ? undefined : vmi.status?.nodeName,
    });
    this.sim.event(m, "Normal", "SuccessfulCreate", `Created migration target pod`);
  }

  /** handlePendingPodTimeout: unschedulable target pods are deleted after 5 min, any pending one after 15. */
  private handlePendingPodTimeout(m: KObject, pod: SimPod): void {
    if (pod.phase !== "Pending" || pod.deleting) return;
    const k = key(m.metadata.namespace, m.metadata.name);
    const spentS = this.sim.clock.simMs(Date.now() - pod.createdAt) / 1000;
    if (pod.unschedulable && !pod.node) {
      this.sim.event(m, "Warning", "migrationTargetPodUnschedulable", `Migration target pod for VMI [${pod.namespace}/${pod.vmi}] is currently unschedulable.`);
      if (spentS >= Defaults.unschedulablePendingTimeoutS) {
        this.sim.pods.delete(pod.name, true);
        this.sim.event(m, "Normal", "SuccessfulDelete", `unschedulable pod ${pod.namespace}/${pod.name} timeout period exceeded`);
        return;
      }
      this.queue.addAfter(k, (Defaults.unschedulablePendingTimeoutS - spentS) * 1000);
    }
    if (spentS >= Defaults.catchAllPendingTimeoutS) {
      this.sim.pods.delete(pod.name, true);
      this.sim.event(m, "Normal", "SuccessfulDelete", `pending pod ${pod.namespace}/${pod.name} timeout period exceeded`);
      return;
    }
    this.queue.addAfter(k, (Defaults.catchAllPendingTimeoutS - spentS) * 1000);
  }

  /** updateVMIMigrationSourceWithPodInfo (decentralized.go). */
  private updateVMIMigrationSourceWithPodInfo(m: KObject, vmi: KObject): void {
    if (!isDecentralized(m)) return;
    const node = vmi.status?.nodeName;
    const nodeObj = node ? this.sim.store.tryGet(R.Node, undefined, node) : undefined;
    // getNodeSelectorsFromNodeName: the node's host-model CPU labels (the sim's nodes may carry none)
    const selectors: Record<string, string> = {};
    for (const [k2, v] of Object.entries(nodeObj?.metadata.labels ?? {})) if (k2.startsWith("host-model-cpu.node.kubevirt.io/") || k2.startsWith("cpu-vendor.node.kubevirt.io/")) selectors[k2] = v;
    const sourcePod = m.status?.migrationState?.sourcePod ?? this.sourcePod(vmi)?.name;
    this.patchVMIStatus(vmi, (s) => {
      const st = s.migrationState;
      if (!st?.sourceState) return;
      st.sourceNode = node;
      st.sourcePod = sourcePod;
      st.migrationUid = m.metadata.uid;
      st.sourceState.node = node;
      st.sourceState.pod = sourcePod;
      st.sourceState.nodeSelectors = selectors;
      st.sourceState.persistentStatePVCName = "";
    });
  }

  /** handleTargetPodHandoff: tells virt-handler on the target node to prepare the domain. */
  private handoff(m: KObject, vmi: KObject, pod: SimPod): void {
    if (isMigrationSynchronized(vmi, m) && vmi.status?.migrationState?.migrationUid === m.metadata.uid) return;
    const cfg = this.sim.config().migrations;
    this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      o.metadata.labels = { ...o.metadata.labels, [MigrationTargetNodeNameLabel]: pod.node! };
    });
    this.patchVMIStatus(vmi, (s) => {
      if (!s.migrationState || !isDecentralized(m)) s.migrationState = {};
      else {
        // completed/failed are omitempty booleans: false is absent
        delete s.migrationState.completed;
        delete s.migrationState.failed;
      }
      const st = s.migrationState;
      st.migrationUid = m.metadata.uid;
      st.targetNode = pod.node;
      st.sourceNode = s.nodeName;
      st.targetPod = pod.name;
      if (isDecentralized(m)) {
        st.targetState ??= {};
        st.targetState.migrationUID = m.metadata.uid;
        st.targetState.node = pod.node;
        st.targetState.pod = pod.name;
        st.targetState.virtualMachineInstanceUID = vmi.metadata.uid;
        st.targetState.domainNamespace = vmi.metadata.namespace;
        st.targetState.domainName = vmi.metadata.name;
        st.sourceNode = st.sourceState?.node;
      }
      if (m.status?.migrationState?.sourcePod) st.sourcePod = m.status.migrationState.sourcePod;
      st.migrationConfiguration = {
        allowAutoConverge: cfg.allowAutoConverge,
        allowPostCopy: cfg.allowPostCopy,
        allowWorkloadDisruption: cfg.allowWorkloadDisruption,
        bandwidthPerMigration: String(cfg.bandwidthPerMigration === 0 ? "0" : cfg.bandwidthPerMigration),
        completionTimeoutPerGiB: cfg.completionTimeoutPerGiB,
        progressTimeout: cfg.progressTimeout,
        maxDowntimeMs: cfg.maxDowntimeMs,
      };
    });
    this.handedOff.add(m.metadata.uid);
    this.sim.event(m, "Normal", "SuccessfulHandOver", "Migration target pod is ready for preparation by virt-handler.");
  }

  /** handleMarkMigrationFailedOnVMI: the target pod went away before the migration started. */
  private markFailedOnVMI(m: KObject, vmi: KObject): void {
    this.patchVMIStatus(vmi, (s) => {
      const st = s.migrationState;
      if (!st || st.migrationUid !== m.metadata.uid) return;
      st.failed = true;
      st.completed = true;
      st.endTimestamp ??= now();
      st.startTimestamp ??= now();
      st.failureReason ||= Msg.targetPodDown;
    });
    this.sim.event(vmi, "Warning", "Migrated", `VirtualMachineInstance migration uid ${m.metadata.uid} failed. reason: Target pod is down`);
  }

  // ---- status ----------------------------------------------------------------------------------

  private fail(c: KObject, message: string): void {
    c.status ??= {};
    c.status.phase = Phase.Failed;
    this.failedAt.set(c.metadata.uid, Date.now());
    this.sim.event(c, "Warning", "FailedMigration", message);
  }

  private writeStatus(m: KObject, fn: (c: KObject) => void): void {
    const c = structuredClone(m);
    c.status ??= {};
    fn(c);
    this.commit(m, c);
  }

  private commit(m: KObject, c: KObject): void {
    // SetVMIMigrationPhaseTransitionTimestamp
    if (phaseOf(m) !== phaseOf(c) && !(c.status.phaseTransitionTimestamps ?? []).some((t: any) => t.phase === c.status.phase)) {
      c.status.phaseTransitionTimestamps = [...(c.status.phaseTransitionTimestamps ?? []), { phase: c.status.phase, phaseTransitionTimestamp: now() }];
    }
    const store = this.sim.store;
    if (!deepEqual(m.status ?? {}, c.status)) {
      store.modify(R.VirtualMachineInstanceMigration, m.metadata.namespace, m.metadata.name, (o) => (o.status = c.status), { subresource: "status" });
    }
    if (!deepEqual(m.metadata.finalizers ?? [], c.metadata.finalizers ?? [])) {
      store.modify(R.VirtualMachineInstanceMigration, m.metadata.namespace, m.metadata.name, (o) => {
        o.metadata.finalizers = c.metadata.finalizers;
        if (!o.metadata.finalizers?.length) delete o.metadata.finalizers;
      });
    }
  }

  private updateStatus(m: KObject, vmi: KObject | undefined, syncErr: unknown): void {
    const c = structuredClone(m);
    c.status ??= {};
    const pod = this.targetPod(m);
    const podDown = !!pod && (pod.phase === "Failed" || pod.phase === "Succeeded" || pod.deleting);
    const ms = vmi?.status?.migrationState;
    const conds: Condition[] = c.status.conditions ?? [];
    const abortRequested = (): Condition => ({ type: Cond.AbortRequested, status: "True", lastProbeTime: now(), lastTransitionTime: null });

    if (isFinal(m)) {
      if (vmi && isMigrationSynchronized(vmi, m) && ms?.migrationUid === m.metadata.uid) {
        // "Store the finalized migration state data from the VMI status in the migration object"
        c.status.migrationState = structuredClone(ms);
      }
      removeFinalizer(c, MigrationFinalizer);
    } else if (!vmi) {
      this.fail(c, "Migration failed because vmi does not exist.");
    } else if (isFinalPhase(vmi.status?.phase) && !isMigrationSource(vmi)) {
      this.fail(c, "Migration failed vmi shutdown during migration.");
    } else if (m.metadata.deletionTimestamp && !this.isHandedOff(m, vmi)) {
      if (!getCondition(c, Cond.AbortRequested)) conds.push(abortRequested());
      c.status.conditions = conds;
      this.fail(c, "Migration failed due to being canceled");
    } else if (pod && podDown) {
      this.fail(c, "Migration failed because target pod shutdown during migration");
    } else if (targetIsCreated(m) && !pod && isLocalOrDecTarget(m)) {
      this.fail(c, "Migration target pod was removed during active migration.");
    } else if (targetIsHandedOff(m) && !isMigrationSynchronized(vmi, m)) {
      this.fail(c, "VMI's migration state was cleared during the active migration.");
    } else if (targetIsHandedOff(m) && isMigrationSynchronized(vmi, m) && ms?.migrationUid !== m.metadata.uid && (!isDecentralized(m) || ms?.migrationUid)) {
      this.fail(c, "VMI's migration state was taken over by another migration job during active migration.");
    } else if (isMigrationSynchronized(vmi, m) && ms?.migrationUid === m.metadata.uid && ms?.failed) {
      this.fail(c, "source node reported migration failed");
    } else if (m.metadata.deletionTimestamp && !getCondition(c, Cond.AbortRequested)) {
      conds.push(abortRequested());
      c.status.conditions = conds;
    } else {
      this.processPhase(m, c, vmi, pod, syncErr);
    }

    if (vmi) {
      // updateDecentralizedMigrationCondition
      const vc = getCondition(vmi, Cond.DecentralizedLiveMigrationFailure);
      if (vc) {
        c.status.conditions = setCondition(c.status.conditions ?? [], {
          type: Cond.DecentralizedMigrationBlocked,
          status: "True",
          reason: vc.reason,
          message: vc.message,
          lastProbeTime: getCondition(c, Cond.DecentralizedMigrationBlocked)?.message === vc.message ? getCondition(c, Cond.DecentralizedMigrationBlocked)!.lastProbeTime : now(),
          lastTransitionTime: null,
        });
      } else c.status.conditions = removeCondition(c.status.conditions, Cond.DecentralizedMigrationBlocked);
      if (!c.status.conditions?.length) delete c.status.conditions;
    }
    // SetSourcePod: the source pod name while Pending
    if (phaseOf(c) === Phase.Pending && vmi && !isReceiver(vmi)) {
      const sp = this.sourcePod(vmi);
      if (sp) c.status.migrationState = { ...(c.status.migrationState ?? {}), sourcePod: sp.name };
    }
    // setSynchronizationAddressStatus
    const kv = this.sim.store.list(R.KubeVirt, { namespace: this.sim.ns }).items;
    if (kv.length === 1) {
      const addrs = kv[0]!.status?.synchronizationAddresses;
      if (addrs?.length) c.status.synchronizationAddresses = addrs;
      else delete c.status.synchronizationAddresses;
    }
    this.commit(m, c);
  }

  private processPhase(m: KObject, c: KObject, vmi: KObject, pod: SimPod | undefined, _syncErr: unknown): void {
    const ms = vmi.status?.migrationState;
    switch (phaseOf(m)) {
      case Phase.Unset:
        if (this.canMigrateVMI(m, vmi)) c.status.phase = isDecTarget(m) ? Phase.WaitingForSync : isDecSource(m) ? Phase.Synchronizing : Phase.Pending;
        else this.fail(c, "VMI is not eligible for migration because another migration job is in progress.");
        return;
      case Phase.Pending:
        if (isLocalOrDecTarget(m)) {
          if (pod) c.status.phase = Phase.Scheduling;
        } else if (isDecSource(m) && vmi.status?.phase === VmiPhase.Running) c.status.phase = Phase.Scheduling;
        return;
      case Phase.WaitingForSync:
        if (isMigrationSourceSynchronized(vmi)) c.status.phase = Phase.Pending;
        return;
      case Phase.Synchronizing:
        if (isMigrationSynchronized(vmi, m)) c.status.phase = Phase.Pending;
        return;
      case Phase.Scheduling:
        if (isDecSource(m)) {
          this.patchMigratedVolumesForDecentralizedMigration(vmi);
          if (ms?.targetState?.pod) c.status.phase = Phase.Scheduled;
        } else if (pod?.ready && this.claimsReadyQuiet(vmi)) c.status.phase = Phase.Scheduled;
        return;
      case Phase.Scheduled:
        if (isTargetPreparing(vmi, m)) c.status.phase = Phase.PreparingTarget;
        return;
      case Phase.PreparingTarget:
        if (
          (isLocalOrDecSource(m) && isMigrationSourceSynchronized(vmi) && ms?.targetState?.nodeAddress) ||
          (isLocalOrDecTarget(m) && ms?.targetNode && ms?.targetNodeAddress)
        ) {
          c.status.phase = Phase.TargetReady;
        }
        return;
      case Phase.TargetReady:
        if (ms?.startTimestamp) c.status.phase = Phase.Running;
        return;
      case Phase.Running: {
        const blocking = ["HotVCPUChange", "MigrationRequired"].some((t) => getCondition(vmi, t)) || getCondition(vmi, "HotMemoryChange")?.status === "True";
        if (ms?.completed && !blocking) {
          c.status.phase = Phase.Succeeded;
          this.sim.event(m, "Normal", "SuccessfulMigration", "Source node reported migration succeeded");
        }
        return;
      }
      default:
    }
  }

  /** patchMigratedVolumesForDecentralizedMigration: every PVC/DV volume of the source is copied. */
  private patchMigratedVolumesForDecentralizedMigration(vmi: KObject): void {
    const ns = vmi.metadata.namespace!;
    const vols: any[] = [];
    for (const v of vmi.spec?.volumes ?? []) {
      const claim = v.persistentVolumeClaim?.claimName ?? v.dataVolume?.name;
      if (!claim) continue;
      const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
      if (!pvc) continue;
      const info = {
        claimName: claim,
        accessModes: pvc.spec?.accessModes,
        volumeMode: pvc.spec?.volumeMode,
        requests: pvc.spec?.resources?.requests,
        capacity: pvc.status?.capacity,
      };
      vols.push({ volumeName: v.name, sourcePVCInfo: info, destinationPVCInfo: structuredClone(info) });
    }
    if (!deepEqual(vols, vmi.status?.migratedVolumes ?? [])) this.patchVMIStatus(vmi, (s) => (s.migratedVolumes = vols));
  }

  /** garbageCollectFinalizedMigrations: keep the 5 most recent finalized migrations of a VMI. */
  private garbageCollect(vmi: KObject): void {
    const finalized = this.migrationsFor(vmi.metadata.namespace!, vmi.metadata.name)
      .filter((x) => isFinal(x) && !x.metadata.deletionTimestamp)
      .sort((a, b) => Date.parse(a.metadata.creationTimestamp) - Date.parse(b.metadata.creationTimestamp) || a.metadata.name.localeCompare(b.metadata.name));
    const n = finalized.length - Defaults.finalizedMigrationGCBuffer;
    for (let i = 0; i < n; i++) {
      const x = finalized[i]!;
      try {
        this.sim.store.delete(R.VirtualMachineInstanceMigration, x.metadata.namespace, x.metadata.name, { internal: true });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }

  /** reEnqueueHighestPriorityPendingMigrations: a slot was freed. */
  private reEnqueuePending(): void {
    const pending = this.sim.cache
      .list("VirtualMachineInstanceMigration")
      .filter((x) => phaseOf(x) === Phase.Pending)
      .sort((a, b) => priorityOf(b) - priorityOf(a));
    const limit = this.sim.config().migrations.parallelMigrationsPerCluster;
    for (const x of pending.slice(0, limit)) this.queue.add(key(x.metadata.namespace, x.metadata.name));
  }

  stop(): void {
    this.queue.stop();
  }
}
