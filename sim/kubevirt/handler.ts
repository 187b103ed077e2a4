// virt-handler's migration work (pkg/virt-handler/migration-source.go, migration-target.go) plus the
// libvirt/QEMU copy it drives: the target prepares the domain (node address, ports), the source
// starts the copy once the target is ready, the copy's result lands in VMI.status.migrationState,
// and the VMI moves to the target node (local) or the target cluster (decentralized).
import { randomInt } from "node:crypto";
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import { Cond, CreateMigrationTarget, Msg, MigrationTargetNodeNameLabel, NodeNameLabel, VmiPhase } from "./constants.js";
import { isMigrationSourceSynchronized } from "./migration-util.js";
import type { KubeVirtSim, MigrationRuntime } from "./sim.js";
import { type DataLink, Transfer } from "./transfer.js";
import { key, now, parseQuantity, removeCondition, splitKey } from "./util.js";
import { guestMemory, isFinalPhase, isReceiver, setPhase } from "./vmi-controller.js";
import type { VMIController } from "./vmi-controller.js";
import { WorkQueue } from "./workqueue.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- migration state is free-form JSON */

export interface RemoteLinkFactory {
  /** A data link to the peer cluster's synchronization endpoint for `migrationID`. */
  dataLink(migrationID: string, address: string): DataLink;
}

class LocalLink implements DataLink {
  send(): Promise<void> {
    return new Promise((r) => setImmediate(r));
  }
  finish(): Promise<void> {
    return Promise.resolve();
  }
  close(): void {}
}

export class MigrationHandler {
  readonly queue: WorkQueue;
  private readonly preparing = new Set<string>();
  remote?: RemoteLinkFactory;

  constructor(
    private readonly sim: KubeVirtSim,
    private readonly vmis: VMIController,
  ) {
    this.queue = new WorkQueue("virt-handler", sim.clock, (k) => this.reconcile(k), { onError: (k, e) => sim.reportError("virt-handler", k, e) });
    sim.pods.onChange((p) => this.queue.add(key(p.namespace, p.vmi)));
  }

  onEvent(e: StoreEvent): void {
    if (e.rt.kind === "VirtualMachineInstance") this.queue.add(key(e.object.metadata.namespace, e.object.metadata.name));
  }

  private patch(vmi: KObject, fn: (s: any) => void): KObject | undefined {
    return this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      if (o.metadata.uid !== vmi.metadata.uid) return;
      o.status ??= {};
      fn(o.status);
    }, { subresource: "status" });
  }

  private patchMeta(vmi: KObject, fn: (o: KObject) => void): void {
    this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      if (o.metadata.uid === vmi.metadata.uid) fn(o);
    });
  }

  runtimeFor(namespace: string, vmi: string, role?: "source" | "target"): MigrationRuntime | undefined {
    for (const rt of this.sim.runtimes.values()) if (rt.namespace === namespace && rt.vmi === vmi && !rt.done && (!role || rt.role === role)) return rt;
    return undefined;
  }

  reconcile(k: string): void {
    const [ns, name] = splitKey(k);
    const vmi = this.sim.store.tryGet(R.VirtualMachineInstance, ns, name);
    if (!vmi || isFinalPhase(vmi.status?.phase) || vmi.metadata.deletionTimestamp) {
      // the domain is gone: an outgoing copy fails
      for (const rt of this.sim.runtimes.values()) {
        if (rt.namespace === ns && rt.vmi === name && rt.role === "source" && !rt.done && (!vmi || rt.uid !== vmi.status?.migrationState?.migrationUid || isFinalPhase(vmi.status?.phase) || !!vmi.metadata.deletionTimestamp)) {
          rt.transfer?.fail("Unable to read from monitor: Connection reset by peer");
        }
      }
      if (!vmi) return;
      if (isFinalPhase(vmi.status?.phase)) return;
    }
    const ms = vmi.status?.migrationState;
    if (!ms) return;
    this.targetSide(vmi, ms);
    this.sourceSide(vmi, ms);
  }

  // ---- target ----------------------------------------------------------------------------------

  private targetSide(vmi: KObject, ms: any): void {
    const decentralizedTarget = isReceiver(vmi);
    if (!vmi.metadata.labels?.[MigrationTargetNodeNameLabel] || !ms.targetNode || !ms.migrationUid || ms.completed) {
      if (decentralizedTarget) this.decentralizedTargetAbort(vmi, ms);
      return;
    }
    const pod = this.sim.pods.list().find((p) => p.migrationUID === ms.migrationUid);
    if (!pod || pod.phase !== "Running") return;
    if (decentralizedTarget) this.decentralizedTargetAbort(vmi, ms);
    if (ms.targetNodeAddress || this.preparing.has(ms.migrationUid)) return;
    this.preparing.add(ms.migrationUid);
    this.sim.after(this.sim.timings.targetPrepare, () => {
      this.preparing.delete(ms.migrationUid);
      const node = this.sim.store.tryGet(R.Node, undefined, pod.node!);
      const addr = (node?.status?.addresses ?? []).find((a: any) => a.type === "InternalIP")?.address ?? pod.ip;
      const ports = { [String(randomInt(30000, 60000))]: 0, [String(randomInt(30000, 60000))]: 49152, [String(randomInt(30000, 60000))]: 49153 };
      this.patch(vmi, (s) => {
        const st = s.migrationState;
        if (!st || st.migrationUid !== ms.migrationUid || st.completed) return;
        st.targetNodeAddress = addr;
        st.targetDirectMigrationNodePorts = ports;
        if (decentralizedTarget && st.targetState) {
          st.targetState.nodeAddress = addr;
          st.targetState.directMigrationNodePorts = ports;
        }
      });
    });
  }

  /** handleDecentralizedMigrationAbort: once the source reported its end, the aborted target fails. */
  private decentralizedTargetAbort(vmi: KObject, ms: any): void {
    if (!ms.abortRequested || (ms.completed && ms.endTimestamp)) return;
    if (!ms.endTimestamp) return;
    this.patch(vmi, (s) => {
      const st = s.migrationState;
      st.failed = true;
      st.completed = true;
      st.abortStatus ||= "Succeeded";
      st.failureReason ||= Msg.aborted;
    });
    const pod = this.sim.pods.list().find((p) => p.migrationUID === ms.migrationUid && p.role === "target");
    if (pod) this.sim.pods.delete(pod.name, true);
  }

  /** The copy into this cluster finished (FIN from the source over the TLS connection). */
  incomingFinished(vmi: KObject, ok: boolean, reason?: string): void {
    const ms = vmi.status?.migrationState;
    if (!ms) return;
    const rt = this.sim.runtimes.get(ms.targetState?.migrationUID ?? ms.migrationUid);
    if (rt) rt.done = true;
    const pod = this.sim.pods.list().find((p) => p.migrationUID === ms.migrationUid && p.role === "target");
    if (!ok) {
      this.patch(vmi, (s) => {
        const st = s.migrationState;
        if (!st || st.completed) return;
        st.failed = true;
        st.completed = true;
        st.endTimestamp ??= now();
        st.failureReason ||= reason ?? Msg.aborted;
      });
      if (pod) this.sim.pods.delete(pod.name, true);
      this.sim.event(vmi, "Warning", "Migrated", `VirtualMachineInstance migration uid ${ms.migrationUid} failed. reason:${reason ?? ""}`);
      return;
    }
    if (!pod) throw new Error("target pod is gone");
    this.finalizeOnTarget(vmi, pod.name, true);
  }

  /**
   * The domain runs on the target: ackMigrationCompletion + finalCleanup (migration-target.go), and
   * removeMigratedVolumes (the copied volumes are now the VMI's).
   */
  private finalizeOnTarget(vmi: KObject, podName: string, decentralized: boolean): void {
    const pod = this.sim.pods.get(podName);
    if (!pod) return;
    const t = now();
    this.patchMeta(vmi, (o) => {
      const labels: Record<string, string> = { ...o.metadata.labels, [NodeNameLabel]: pod.node! };
      delete labels[MigrationTargetNodeNameLabel];
      o.metadata.labels = labels;
      if (decentralized && o.metadata.annotations) {
        delete o.metadata.annotations[CreateMigrationTarget];
        if (!Object.keys(o.metadata.annotations).length) delete o.metadata.annotations;
      }
    });
    // the old launcher goes away; the target pod now runs the VMI
    for (const p of this.sim.pods.forVMI(vmi.metadata.namespace!, vmi.metadata.name)) if (p.role === "launcher" && p.name !== podName) this.sim.pods.delete(p.name);
    pod.role = "launcher";
    const fresh = this.sim.store.tryGet(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name)!;
    this.patch(fresh, (s) => {
      const st = s.migrationState;
      st.targetNodeDomainDetected = true;
      st.targetNodeDomainReadyTimestamp = t;
      st.endTimestamp ??= t;
      st.completed = true;
      if (st.targetState) {
        st.targetState.domainDetected = true;
        st.targetState.domainReadyTimestamp = t;
      }
      s.nodeName = pod.node;
      s.activePods = { [pod.uid]: pod.node };
      delete s.evacuationNodeName;
      s.migrationTransport = "Unix";
      s.conditions = removeCondition(s.conditions, Cond.VolumesChange);
      delete s.migratedVolumes;
      if (decentralized) {
        setPhase(s, VmiPhase.Running);
        this.vmis.fillRunningStatus(fresh, s, pod);
      } else {
        this.vmis.fillRunningStatus({ ...fresh, status: s }, s, pod);
      }
    });
    this.sim.event(vmi, "Normal", "Migrated", `The VirtualMachineInstance migrated to node ${pod.node}.`);
  }

  // ---- source ----------------------------------------------------------------------------------

  private sourceSide(vmi: KObject, ms: any): void {
    if (vmi.status?.phase !== VmiPhase.Running || isReceiver(vmi)) return;
    const decentralizedSource = !!ms.sourceState && !!ms.targetState?.syncAddress;
    const rt = ms.migrationUid ? this.sim.runtimes.get(ms.migrationUid) : undefined;
    if (ms.abortRequested && rt && !rt.done) {
      rt.transfer?.abort();
      return;
    }
    // Decentralized source: the target finished (synced back) → the VMI here is done.
    if (decentralizedSource && ms.completed && ms.targetNodeDomainDetected && !ms.failed) {
      for (const p of this.sim.pods.forVMI(vmi.metadata.namespace!, vmi.metadata.name)) this.sim.pods.delete(p.name);
      this.patch(vmi, (s) => {
        // "decentralized migration completed successfully, marking VMI as succeeded"
        setPhase(s, VmiPhase.Succeeded);
        s.conditions = (s.conditions ?? []).map((c: any) => (c.type === Cond.Ready ? { ...c, status: "False", reason: "PodTerminating", message: "virt-launcher pod is terminating", lastTransitionTime: now() } : c));
      });
      return;
    }
    if (!ms.migrationUid || ms.startTimestamp || ms.completed || ms.failed || ms.abortRequested) return;
    const targetAddr = decentralizedSource ? ms.targetState?.nodeAddress : ms.targetNodeAddress;
    if (!targetAddr) return;
    if (decentralizedSource && !isMigrationSourceSynchronized(vmi)) return;
    if (rt) return;
    this.startCopy(vmi, ms, decentralizedSource);
  }

  private diskBytes(vmi: KObject): number {
    let sum = 0;
    for (const mv of vmi.status?.migratedVolumes ?? []) {
      const info = mv.sourcePVCInfo ?? {};
      const size = parseQuantity(info.capacity?.storage ?? info.requests?.storage);
      if (Number.isFinite(size)) sum += size;
    }
    return sum;
  }

  private startCopy(vmi: KObject, ms: any, decentralized: boolean): void {
    const cfg = this.sim.config().migrations;
    const mc = ms.migrationConfiguration ?? {};
    const bwConf = parseQuantity(mc.bandwidthPerMigration ?? cfg.bandwidthPerMigration);
    const bandwidth = Number.isFinite(bwConf) && bwConf > 0 ? bwConf : this.sim.linkBandwidth;
    const migrationUid: string = ms.migrationUid;
    const ns = vmi.metadata.namespace!;
    const mig = this.sim.store.list(R.VirtualMachineInstanceMigration, { namespace: ns }).items.find((m) => m.metadata.uid === migrationUid);
    const migrationID: string | undefined = mig?.spec?.sendTo?.migrationID;
    let link: DataLink;
    if (decentralized) {
      if (!this.remote || !migrationID) return;
      link = this.remote.dataLink(migrationID, ms.targetState.syncAddress);
    } else link = new LocalLink();
    const transfer = new Transfer(this.sim.clock, link, {
      memoryBytes: guestMemory(vmi),
      diskBytes: this.diskBytes(vmi),
      bandwidth,
      dirtyRate: () => this.sim.dirtyRate(ns, vmi.metadata.name),
      progressTimeoutS: mc.progressTimeout ?? cfg.progressTimeout,
      completionTimeoutPerGiB: mc.completionTimeoutPerGiB ?? cfg.completionTimeoutPerGiB,
      maxDowntimeMs: mc.maxDowntimeMs ?? cfg.maxDowntimeMs,
      simBytesPerRealByte: this.sim.simBytesPerRealByte,
    });
    const rt: MigrationRuntime = {
      uid: migrationUid,
      namespace: ns,
      vmi: vmi.metadata.name,
      role: "source",
      decentralized,
      migrationID,
      transfer,
      link,
      receivedBytes: 0,
      receivedRealBytes: 0,
      node: vmi.status?.nodeName,
    };
    this.sim.runtimes.set(migrationUid, rt);
    const cfgOpts = {
      allowAutoConverge: cfg.allowAutoConverge,
      allowPostCopy: cfg.allowPostCopy,
      allowWorkloadDisruption: cfg.allowWorkloadDisruption,
      bandwidthPerMigration: String(cfg.bandwidthPerMigration),
      completionTimeoutPerGiB: cfg.completionTimeoutPerGiB,
      progressTimeout: cfg.progressTimeout,
      maxDowntimeMs: cfg.maxDowntimeMs,
    };
    this.patch(vmi, (s) => {
      const st = s.migrationState;
      st.startTimestamp = now();
      st.mode = "PreCopy";
      st.migrationConfiguration ??= cfgOpts;
    });
    this.sim.event(vmi, "Normal", "Migrating", `VirtualMachineInstance is migrating.`);
    transfer.start();
    void transfer.done.then((res) => {
      rt.done = true;
      // a failure notice (FIN) may still be on its way to the peer: close the link after it
      void transfer.settled.then(() => link.close());
      const cur = this.sim.store.tryGet(R.VirtualMachineInstance, ns, vmi.metadata.name);
      if (!cur || cur.metadata.uid !== vmi.metadata.uid) return;
      if (res.ok) {
        if (decentralized) {
          // the source's libvirt job ended; completion is reported by the target through the sync controller
          this.patch(cur, (s) => (s.migrationState.endTimestamp ??= now()));
          return;
        }
        const target = this.sim.pods.list().find((p) => p.migrationUID === migrationUid);
        if (!target) return;
        this.finalizeOnTarget(cur, target.name, false);
        return;
      }
      const aborted = res.cause !== "error";
      this.patch(cur, (s) => {
        const st = s.migrationState;
        if (!st || st.migrationUid !== migrationUid) return;
        st.failed = true;
        st.completed = true;
        st.endTimestamp = now();
        st.failureReason = res.reason;
        if (aborted) st.abortStatus = "Succeeded";
      });
      this.sim.event(cur, "Warning", "Migrated", `VirtualMachineInstance migration uid ${migrationUid} failed. reason:${res.reason}`);
      if (!decentralized) {
        const target = this.sim.pods.list().find((p) => p.migrationUID === migrationUid && p.role === "target");
        if (target) this.sim.pods.delete(target.name, true);
      }
    });
  }

  stop(): void {
    this.queue.stop();
  }
}
