// The virt-synchronization-controller (pkg/synchronization-controller/synchronization-controller.go):
// per VMI, finds the decentralized migration it belongs to, keeps the sync finalizer on it, pushes
// the local VMI status to the peer (source → SyncSourceMigrationStatus to the target's connectURL;
// target → SyncTargetMigrationStatus to the source's reported syncAddress), records failures in the
// DecentralizedLiveMigrationFailure VMI condition, answers the peer's calls, and sends
// CancelMigration when a VMIM is deleted. Connections are cached per migrationID as KubeVirt does.
import { R } from "../../apiserver/resources.js";
import type { KObject, StoreEvent } from "../../apiserver/store.js";
import { Cond, Msg, Phase, Reason, SynchronizationFinalizer } from "../constants.js";
import type { MigrationHandler } from "../handler.js";
import { isDecSource, isDecTarget, isDecentralized, isFinal } from "../migration-util.js";
import type { KubeVirtSim } from "../sim.js";
import type { DataLink } from "../transfer.js";
import { addFinalizer, deepEqual, hasFinalizer, isNotFound, key, now, removeCondition, removeFinalizer, setCondition, splitKey } from "../util.js";
import { WorkQueue } from "../workqueue.js";
import { RpcError, type SyncClient, type SyncCredentials, SyncNetwork } from "./network.js";
import type { DataHeader } from "./wire.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- VMI statuses travel as JSON */

class TlsDataLink implements DataLink {
  private client?: SyncClient;
  /** Connections of clients replaced after an address change. */
  private earlierConnections = 0;
  constructor(
    private readonly net: SyncNetwork,
    private readonly migrationID: string,
    private readonly address: () => string | undefined,
    /** Each send's outcome: the error message, or undefined once data flows again. */
    private readonly report: (error: string | undefined) => void,
  ) {}

  private conn(): SyncClient {
    const addr = this.address();
    if (!addr) throw new RpcError("no synchronization address for the target");
    if (!this.client || this.client.address !== addr) {
      this.earlierConnections += this.client?.connections ?? 0;
      this.client?.close();
      this.client = this.net.client(addr);
    }
    return this.client;
  }

  stats(): { connections: number; address?: string } {
    return { connections: this.earlierConnections + (this.client?.connections ?? 0), ...(this.client ? { address: this.client.address } : {}) };
  }

  async send(simBytes: number, realBytes: number, kind: "disk" | "memory"): Promise<void> {
    try {
      await this.conn().sendData(this.migrationID, simBytes, realBytes, kind);
    } catch (e) {
      this.report((e as Error).message);
      throw e;
    }
    this.report(undefined);
  }

  async finish(ok: boolean, reason?: string): Promise<void> {
    await this.conn().fin(this.migrationID, ok, reason);
  }

  close(): void {
    this.client?.close();
  }
}

export class SyncController {
  readonly queue: WorkQueue;
  readonly net: SyncNetwork;
  /** syncOutboundConnectionMap / syncReceivingConnectionMap, keyed by migrationID. */
  private readonly outbound = new Map<string, SyncClient>();
  private readonly receiving = new Map<string, SyncClient>();
  handler?: MigrationHandler;
  private starting?: Promise<string>;

  constructor(
    private readonly sim: KubeVirtSim,
    credentials: () => SyncCredentials | undefined,
  ) {
    this.queue = new WorkQueue("sync-vmi-status", sim.clock, (k) => this.execute(k), { onError: (k, e) => sim.reportError("sync", k, e) });
    this.net = new SyncNetwork(sim.clock, sim.opts.syncHost ?? "127.0.0.1", credentials, {
      rpc: (method, body) => this.rpc(method, body),
      data: (h, real) => this.onData(h, real),
      fin: (mid, ok, reason) => this.onFin(mid, ok, reason),
      dataClosed: (mid) => this.onDataClosed(mid),
    });
  }

  get address(): string | undefined {
    return this.net.address;
  }

  onEvent(e: StoreEvent): void {
    const o = e.object;
    if (e.rt.kind === "VirtualMachineInstance") this.queue.add(key(o.metadata.namespace, o.metadata.name));
    if (e.rt.kind === "VirtualMachineInstanceMigration") {
      this.queue.add(key(o.metadata.namespace, o.spec?.vmiName));
      if (e.type === "DELETED" && isDecentralized(o)) {
        const id = o.spec.receive?.migrationID ?? o.spec.sendTo?.migrationID;
        const map = o.spec.receive ? this.receiving : this.outbound;
        map.get(id)?.close();
        map.delete(id);
      }
    }
  }

  // ---- endpoint lifecycle ------------------------------------------------------------------------

  async ensureEndpoint(): Promise<string | undefined> {
    if (this.net.listening) return this.net.address;
    this.starting ??= this.net.listen().then(
      (a) => {
        this.starting = undefined;
        this.rebuildConnections();
        return a;
      },
      (e: unknown) => {
        this.starting = undefined;
        throw e;
      },
    );
    return this.starting;
  }

  async stopEndpoint(): Promise<void> {
    for (const c of [...this.outbound.values(), ...this.receiving.values()]) c.close();
    this.outbound.clear();
    this.receiving.clear();
    await this.net.close();
  }

  async moveEndpoint(): Promise<void> {
    if (!this.net.listening) return;
    await this.net.move();
    this.rebuildConnections();
  }

  reloadCredentials(): void {
    this.net.reload();
  }

  /** rebuildConnectionsAndUpdateSyncAddress: ongoing migrations learn this controller's (new) address. */
  private rebuildConnections(): void {
    const addr = this.net.address;
    if (!addr) return;
    for (const m of this.sim.store.list(R.VirtualMachineInstanceMigration).items) {
      if (!isDecentralized(m) || isFinal(m)) continue;
      const vmi = this.sim.store.tryGet(R.VirtualMachineInstance, m.metadata.namespace, m.spec.vmiName);
      const ms = vmi?.status?.migrationState;
      if (!vmi || !ms) continue;
      if (m.spec.receive && ms.targetState && ms.sourceState?.syncAddress) {
        this.receiving.get(m.spec.receive.migrationID)?.close();
        this.receiving.set(m.spec.receive.migrationID, this.net.client(ms.sourceState.syncAddress));
        this.patchVMI(vmi, (s) => (s.migrationState.targetState.syncAddress = addr));
      } else if (m.spec.sendTo && ms.sourceState && ms.targetState?.syncAddress) {
        this.outbound.get(m.spec.sendTo.migrationID)?.close();
        this.outbound.set(m.spec.sendTo.migrationID, this.net.client(ms.targetState.syncAddress));
        this.patchVMI(vmi, (s) => (s.migrationState.sourceState.syncAddress = addr));
      }
      this.queue.add(key(vmi.metadata.namespace, vmi.metadata.name));
    }
  }

  dataLink(migrationID: string, address: string): DataLink {
    const sourceVMI = () => {
      const m = this.sim.cache.list("VirtualMachineInstanceMigration").find((x) => x.spec?.sendTo?.migrationID === migrationID);
      return m && this.sim.cache.get("VirtualMachineInstance", m.metadata.namespace, m.spec.vmiName);
    };
    return new TlsDataLink(
      this.net,
      migrationID,
      // the data path follows the target's current address (virt-handler dials targetState anew)
      () => sourceVMI()?.status?.migrationState?.targetState?.syncAddress ?? address,
      // The copy rides the synchronization connection here, so a failed (re-)dial, e.g. a peer
      // certificate this cluster's kubevirt-ca does not hold, is reported as the controller reports
      // its own connection failures: the VMI's DecentralizedLiveMigrationFailure condition.
      (error) => {
        const vmi = sourceVMI();
        if (!vmi) return;
        if (error && !(error.includes("Canceled") || error.includes("closing"))) this.setFailure(vmi, error);
        else if (!error) this.clearFailure(vmi);
      },
    );
  }

  // ---- reconcile ---------------------------------------------------------------------------------

  private patchVMI(vmi: KObject, fn: (s: any) => void): void {
    this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      if (o.metadata.uid !== vmi.metadata.uid) return;
      o.status ??= {};
      fn(o.status);
    }, { subresource: "status" });
  }

  private migrationForVMI(vmi: KObject): KObject | undefined {
    const ms = vmi.status?.migrationState;
    const found = this.sim.cache
      .list("VirtualMachineInstanceMigration", vmi.metadata.namespace)
      .filter((m) => m.spec?.vmiName === vmi.metadata.name)
      .filter((m) => (isDecSource(m) && ms?.sourceState?.migrationUID === m.metadata.uid) || (isDecTarget(m) && ms?.targetState?.migrationUID === m.metadata.uid));
    if (found.length > 1) throw new Error("found more than one migration pointing to same VMI");
    return found[0];
  }

  private async execute(k: string): Promise<void> {
    const [ns, name] = splitKey(k);
    const vmi = this.sim.store.tryGet(R.VirtualMachineInstance, ns, name);
    if (!vmi) return;
    const m = this.migrationForVMI(vmi);
    if (!m || !isDecentralized(m)) {
      this.clearFailure(vmi);
      return;
    }
    this.handleFinalizer(m);
    if (isDecSource(m)) {
      if (m.metadata.deletionTimestamp) {
        try {
          await this.handleSourceState(vmi, m);
        } catch (e) {
          this.setFailure(vmi, (e as Error).message);
          throw e;
        }
        await this.cancelRemote(vmi.status?.migrationState?.targetState?.migrationUID, m.spec.sendTo.migrationID, this.outbound, m);
        return;
      }
      try {
        await this.handleSourceState(vmi, m);
      } catch (e) {
        this.setFailure(vmi, (e as Error).message);
        throw e;
      }
      this.clearFailure(vmi);
      return;
    }
    if (m.metadata.deletionTimestamp) {
      await this.cancelRemote(vmi.status?.migrationState?.sourceState?.migrationUID, m.spec.receive.migrationID, this.receiving, m);
      return;
    }
    try {
      await this.handleTargetState(vmi, m);
    } catch (e) {
      // KubeVirt re-stamps the condition's lastTransitionTime on every failure, so its own patch
      // re-queues the VMI and the call is retried; the sim keeps the condition stable and retries
      // with the work queue's back-off instead.
      this.setFailure(vmi, (e as Error).message);
      throw e;
    }
    if (m.status?.phase === Phase.WaitingForSync) this.setFailure(vmi, Msg.waitingForSync);
    else this.clearFailure(vmi);
  }

  private handleFinalizer(m: KObject): void {
    const want = !isFinal(m) && !m.metadata.deletionTimestamp;
    if (want === hasFinalizer(m, SynchronizationFinalizer)) return;
    if (want && m.metadata.deletionTimestamp) return;
    this.sim.store.modify(R.VirtualMachineInstanceMigration, m.metadata.namespace, m.metadata.name, (o) => {
      if (want) addFinalizer(o, SynchronizationFinalizer);
      else removeFinalizer(o, SynchronizationFinalizer);
    });
  }

  private setFailure(vmi: KObject, message: string): void {
    const cur = this.sim.store.tryGet(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name);
    if (!cur || cur.metadata.uid !== vmi.metadata.uid) return;
    const next = setCondition(structuredClone(cur.status?.conditions ?? []), {
      type: Cond.DecentralizedLiveMigrationFailure,
      status: "True",
      reason: Reason.DecentralizedNotMigratable,
      message,
      lastProbeTime: null,
      lastTransitionTime: now(),
    });
    const old = (cur.status?.conditions ?? []).find((c: any) => c.type === Cond.DecentralizedLiveMigrationFailure);
    if (old && old.message === message && old.status === "True") return;
    this.patchVMI(cur, (s) => (s.conditions = next));
  }

  private clearFailure(vmi: KObject): void {
    if (!(vmi.status?.conditions ?? []).some((c: any) => c.type === Cond.DecentralizedLiveMigrationFailure)) return;
    this.patchVMI(vmi, (s) => {
      s.conditions = removeCondition(s.conditions, Cond.DecentralizedLiveMigrationFailure);
    });
  }

  private async cancelRemote(remoteUID: string | undefined, migrationID: string, map: Map<string, SyncClient>, m: KObject): Promise<void> {
    if (!remoteUID || remoteUID === m.metadata.uid) return;
    const conn = map.get(migrationID);
    if (!conn) return;
    await conn.call("CancelMigration", { migrationUID: remoteUID });
  }

  private async handleSourceState(vmi: KObject, m: KObject): Promise<void> {
    const ms = vmi.status?.migrationState;
    if (!ms?.sourceState || !ms.targetState) return;
    const status = structuredClone(vmi.status);
    status.migrationState.sourceState.syncAddress ||= this.net.address;
    const id: string = m.spec.sendTo.migrationID;
    if (!ms.targetState.syncAddress || !ms.sourceState.migrationUID) return;
    let conn = this.outbound.get(id);
    if (!conn) {
      conn = this.net.client(ms.targetState.syncAddress);
      this.outbound.set(id, conn);
    }
    await conn.call("SyncSourceMigrationStatus", { migrationID: id, vmiStatus: status });
    if (isFinal(m)) {
      conn.close();
      this.outbound.delete(id);
    }
  }

  private async handleTargetState(vmi: KObject, m: KObject): Promise<void> {
    const ms = vmi.status?.migrationState;
    if (!ms?.targetState || !ms.sourceState) return;
    const status = structuredClone(vmi.status);
    status.migrationState.targetState.syncAddress ||= this.net.address;
    const id: string = m.spec.receive.migrationID;
    if (!ms.sourceState.syncAddress || !ms.targetState.migrationUID) return;
    let conn = this.receiving.get(id);
    if (!conn) {
      conn = this.net.client(ms.sourceState.syncAddress);
      this.receiving.set(id, conn);
    }
    await conn.call("SyncTargetMigrationStatus", { migrationID: id, vmiStatus: status });
    if (isFinal(m)) {
      conn.close();
      this.receiving.delete(id);
    }
  }

  // ---- server side -------------------------------------------------------------------------------

  private findBy(field: "receive" | "sendTo" | "uid", value: string): KObject | undefined {
    const hit = this.sim.cache.list("VirtualMachineInstanceMigration").find((m) =>
      field === "uid" ? m.metadata.uid === value : m.spec?.[field]?.migrationID === value,
    );
    return hit && this.sim.store.tryGet(R.VirtualMachineInstanceMigration, hit.metadata.namespace, hit.metadata.name);
  }

  private rpc(method: string, body: any): Promise<unknown> {
    return Promise.resolve().then(() => this.rpcSync(method, body));
  }

  private rpcSync(method: string, body: any): unknown {
    switch (method) {
      case "SyncSourceMigrationStatus":
        return this.syncStatus(body, "source");
      case "SyncTargetMigrationStatus":
        return this.syncStatus(body, "target");
      case "CancelMigration": {
        const m = this.findBy("uid", String(body?.migrationUID ?? ""));
        if (m) {
          try {
            this.sim.store.delete(R.VirtualMachineInstanceMigration, m.metadata.namespace, m.metadata.name, { internal: true });
          } catch (e) {
            if (!isNotFound(e)) throw new Error(`unable to cancel migration for migrationUID ${body?.migrationUID}`, { cause: e });
          }
        }
        return { message: "migration canceled" };
      }
      default:
        throw new Error(`unknown method ${method}`);
    }
  }

  /** SyncSourceMigrationStatus / SyncTargetMigrationStatus handlers. */
  private syncStatus(body: any, from: "source" | "target"): unknown {
    const id = String(body?.migrationID ?? "");
    const remote = body?.vmiStatus;
    if (!remote) throw new Error(from === "source" ? "must pass source status" : "must pass target status");
    const m = this.findBy(from === "source" ? "receive" : "sendTo", id);
    if (!m) throw new Error(from === "source" ? Msg.sourceUnableToLocate(id) : Msg.targetUnableToLocate(id));
    const k = key(m.metadata.namespace, m.spec.vmiName);
    const vmi = this.sim.store.tryGet(R.VirtualMachineInstance, m.metadata.namespace, m.spec.vmiName);
    if (!vmi) throw new Error(from === "source" ? Msg.sourceUnableToLocateVMI(id, k) : Msg.targetUnableToLocateVMI(id, k));
    const rms = remote.migrationState;
    if (!rms) throw new Error(from === "source" ? "must pass source status" : "must pass target status");
    if (isFinal(m)) return { message: "success" };
    const st = structuredClone(vmi.status ?? {});
    st.migrationState ??= {};
    const ms = st.migrationState;
    if (ms.migrationUid && ms.migrationUid !== m.metadata.uid) return { message: "success" };
    if (vmi.status?.migrationState?.completed) return { message: "success" };
    if (from === "source") {
      ms.sourceState = structuredClone(rms.sourceState);
      // copyLegacySourceFields
      ms.sourceNode = rms.sourceState?.node;
      if (rms.sourceState?.persistentStatePVCName) ms.sourcePersistentStatePVCName = rms.sourceState.persistentStatePVCName;
      ms.sourcePod = rms.sourceState?.pod;
      copyCommon(ms, rms);
      if (rms.abortRequested && rms.endTimestamp) {
        ms.failed = rms.failed;
        ms.completed = rms.completed;
        if (rms.abortStatus) ms.abortStatus = rms.abortStatus;
        if (rms.failureReason) ms.failureReason = rms.failureReason;
      }
      if ((remote.migratedVolumes ?? []).length) st.migratedVolumes = mergeSourceVolumes(st.migratedVolumes ?? [], remote.migratedVolumes);
      if (remote.migrationMethod) st.migrationMethod = remote.migrationMethod;
      if (remote.migrationTransport) st.migrationTransport = remote.migrationTransport;
    } else {
      const ts = rms.targetState ?? {};
      ms.targetState = structuredClone(rms.targetState);
      st.migratedVolumes = mergeTargetVolumes(st.migratedVolumes ?? [], remote.migratedVolumes ?? []);
      // copyLegacyTargetFields
      ms.targetNode = ts.node;
      if (ts.attachmentPodUID) ms.targetAttachmentPodUID = ts.attachmentPodUID;
      if (ts.cpuSet) ms.targetCPUSet = ts.cpuSet;
      if (ts.directMigrationNodePorts) ms.targetDirectMigrationNodePorts = ts.directMigrationNodePorts;
      if (ts.nodeAddress) ms.targetNodeAddress = ts.nodeAddress;
      if (ts.domainDetected) ms.targetNodeDomainDetected = ts.domainDetected;
      if (ts.domainReadyTimestamp) ms.targetNodeDomainReadyTimestamp = ts.domainReadyTimestamp;
      if (ts.nodeTopology) ms.targetNodeTopology = ts.nodeTopology;
      if (ts.persistentStatePVCName) ms.targetPersistentStatePVCName = ts.persistentStatePVCName;
      ms.targetPod = ts.pod;
      copyCommon(ms, rms);
      if (rms.completed) ms.completed = rms.completed;
      if (rms.failed) ms.failed = rms.failed;
      if (!st.migratedVolumes.length) delete st.migratedVolumes;
    }
    if (!deepEqual(st, vmi.status ?? {})) {
      this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
        if (o.metadata.uid !== vmi.metadata.uid) return;
        o.status = { ...o.status, migrationState: st.migrationState, ...(st.migratedVolumes ? { migratedVolumes: st.migratedVolumes } : {}), ...(st.migrationMethod ? { migrationMethod: st.migrationMethod } : {}), ...(st.migrationTransport ? { migrationTransport: st.migrationTransport } : {}) };
      }, { subresource: "status" });
    }
    return { message: "success" };
  }

  private targetRuntime(mid: string): { m: KObject; rt: import("../sim.js").MigrationRuntime } | undefined {
    const m = this.findBy("receive", mid);
    if (!m) return undefined;
    let rt = this.sim.runtimes.get(m.metadata.uid);
    if (!rt) {
      rt = { uid: m.metadata.uid, namespace: m.metadata.namespace!, vmi: m.spec.vmiName, role: "target", decentralized: true, migrationID: mid, receivedBytes: 0, receivedRealBytes: 0 };
      this.sim.runtimes.set(m.metadata.uid, rt);
    }
    return { m, rt };
  }

  private onData(h: DataHeader, realBytes: number): void {
    const t = this.targetRuntime(h.mid);
    if (!t) throw new Error(Msg.sourceUnableToLocate(h.mid));
    t.rt.receivedBytes += h.sim;
    t.rt.receivedRealBytes += realBytes;
    t.rt.lastDataAt = Date.now();
  }

  private onFin(mid: string, ok: boolean, reason?: string): void {
    const t = this.targetRuntime(mid);
    if (!t) throw new Error(Msg.sourceUnableToLocate(mid));
    const vmi = this.sim.store.tryGet(R.VirtualMachineInstance, t.m.metadata.namespace, t.m.spec.vmiName);
    if (!vmi) throw new Error(Msg.sourceUnableToLocateVMI(mid, key(t.m.metadata.namespace, t.m.spec.vmiName)));
    this.handler?.incomingFinished(vmi, ok, reason);
  }

  /** The incoming copy's connection dropped: if it is not resumed within progressTimeout the target gives up. */
  private onDataClosed(mid: string): void {
    const t = this.targetRuntime(mid);
    if (!t || t.rt.done) return;
    const closedAt = Date.now();
    const timeoutS = this.sim.config().migrations.progressTimeout;
    // as the source's monitor: never sooner than 1 s real, so a reconnect's handshake fits at any scale
    this.sim.after(Math.max(timeoutS * 1000, this.sim.clock.simMs(1000)), () => {
      const rt = this.sim.runtimes.get(t.m.metadata.uid);
      if (!rt || rt.done || (rt.lastDataAt ?? 0) > closedAt) return;
      const vmi = this.sim.store.tryGet(R.VirtualMachineInstance, t.m.metadata.namespace, t.m.spec.vmiName);
      if (vmi) this.handler?.incomingFinished(vmi, false, "Live migration has been aborted");
    });
  }

  stop(): void {
    this.queue.stop();
    void this.stopEndpoint();
  }
}

function copyCommon(ms: any, rms: any): void {
  if (rms.migrationPolicyName) ms.migrationPolicyName = rms.migrationPolicyName;
  if (rms.migrationConfiguration) ms.migrationConfiguration = rms.migrationConfiguration;
  if (rms.startTimestamp) ms.startTimestamp = rms.startTimestamp;
  if (rms.endTimestamp) ms.endTimestamp = rms.endTimestamp;
}

function mergeTargetVolumes(local: any[], remote: any[]): any[] {
  const byName = new Map(remote.map((v) => [v.volumeName, v]));
  return local.map((v) => {
    const r = byName.get(v.volumeName);
    if (!r) return v;
    return { volumeName: v.volumeName, ...(r.destinationPVCInfo ? { destinationPVCInfo: r.destinationPVCInfo } : {}), ...(v.sourcePVCInfo ? { sourcePVCInfo: v.sourcePVCInfo } : {}) };
  });
}

function mergeSourceVolumes(local: any[], remote: any[]): any[] {
  const byName = new Map(remote.map((v) => [v.volumeName, v]));
  const out: any[] = [];
  for (const v of local) {
    const r = byName.get(v.volumeName);
    if (!r) continue;
    out.push({ volumeName: v.volumeName, sourcePVCInfo: v.sourcePVCInfo ?? r.sourcePVCInfo, ...(v.destinationPVCInfo ? { destinationPVCInfo: v.destinationPVCInfo } : {}) });
    byName.delete(v.volumeName);
  }
  return [...out, ...byName.values()];
}
