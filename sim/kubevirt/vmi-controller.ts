// VirtualMachineInstance lifecycle: virt-controller's VMI controller (pkg/virt-controller/watch/vmi)
// together with the parts of virt-handler that start and stop domains. Phases:
//   "" → Pending (launcher pod created) → Scheduling (pod exists) → Scheduled (pod running on a node)
//   → Running (domain started) → Succeeded (shut down) | Failed (pod gone).
// Receiver VMIs (annotation kubevirt.io/create-migration-target) sit in WaitingForSync until a
// migration target pod exists, then Scheduling → Scheduled; the handler makes them Running.
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import {
  AllowPodBridgeNetworkLiveMigrationAnnotation,
  Cond,
  CreateMigrationTarget,
  MigrationTargetNodeNameLabel,
  Msg,
  NodeNameLabel,
  Reason,
  VirtualMachineControllerFinalizer,
  VirtualMachineInstanceFinalizer,
  VmiPhase,
} from "./constants.js";
import type { SimPod } from "./pods.js";
import type { KubeVirtSim } from "./sim.js";
import {
  type Condition,
  addFinalizer,
  claimOfVolume,
  deepEqual,
  getCondition,
  hasFinalizer,
  key,
  now,
  parseQuantity,
  removeCondition,
  removeFinalizer,
  setCondition,
  splitKey,
} from "./util.js";
import { WorkQueue } from "./workqueue.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- VMI specs and statuses are free-form JSON */

export const isFinalPhase = (p: string | undefined): boolean => p === VmiPhase.Succeeded || p === VmiPhase.Failed;
export const isReceiver = (vmi: KObject): boolean => vmi.metadata.annotations?.[CreateMigrationTarget] === "true";

/** Guest memory in bytes: domain.memory.guest, else resources.requests.memory (getVMIMigrationDataSize). */
export function guestMemory(vmi: KObject): number {
  const d = vmi.spec?.domain ?? {};
  const v = parseQuantity(d.memory?.guest ?? d.resources?.requests?.memory ?? d.resources?.limits?.memory);
  return Number.isFinite(v) && v > 0 ? v : 128 * 2 ** 20;
}

export function setPhase(status: any, phase: string): void {
  if (status.phase === phase) return;
  status.phase = phase;
  const ts: any[] = (status.phaseTransitionTimestamps ??= []);
  ts.push({ phase, phaseTransitionTimestamp: now() });
}

/** 52:54:00 MACs derived from the VMI and interface names, so a guest keeps its MAC across migrations. */
export function macFor(namespace: string, vmi: string, iface: string): string {
  let h = 2166136261;
  for (const ch of `${namespace}/${vmi}/${iface}`) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
  const b = [h & 0xff, (h >>> 8) & 0xff, (h >>> 16) & 0xff].map((x) => x.toString(16).padStart(2, "0"));
  return `52:54:00:${b.join(":")}`;
}

const diskPrefix = (bus: string | undefined) => (bus === "sata" || bus === "scsi" || bus === "usb" ? "sd" : "vd");

export class VMIController {
  readonly queue: WorkQueue;
  /** When a VMI reached Scheduled (domain boot starts), by VMI UID. */
  private readonly scheduledAt = new Map<string, number>();
  private readonly shuttingDown = new Set<string>();

  constructor(private readonly sim: KubeVirtSim) {
    this.queue = new WorkQueue("vmi", sim.clock, (k) => this.reconcile(k), { onError: (k, e) => sim.reportError("vmi", k, e) });
    sim.pods.onChange((p) => this.queue.add(key(p.namespace, p.vmi)));
  }

  onEvent(e: StoreEvent): void {
    const o = e.object;
    switch (e.rt.kind) {
      case "VirtualMachineInstance":
        this.queue.add(key(o.metadata.namespace, o.metadata.name));
        break;
      case "PersistentVolumeClaim":
      case "DataVolume":
        for (const vmi of this.sim.cache.list("VirtualMachineInstance", o.metadata.namespace)) {
          if ((vmi.spec?.volumes ?? []).some((v: any) => claimOfVolume(v) === o.metadata.name)) this.queue.add(key(vmi.metadata.namespace, vmi.metadata.name));
        }
        break;
      case "Node":
        this.sim.pods.retryUnschedulable();
        break;
      default:
    }
  }

  /** The pod that runs (or will run) the VMI's domain: the launcher, or for a receiver VMI its target pod. */
  currentPod(vmi: KObject): SimPod | undefined {
    const pods = this.sim.pods.forVMI(vmi.metadata.namespace!, vmi.metadata.name).filter((p) => p.vmiUID === vmi.metadata.uid);
    return pods.find((p) => p.role === "launcher") ?? (isReceiver(vmi) ? pods.find((p) => p.role === "target") : undefined);
  }

  private patchStatus(vmi: KObject, fn: (st: any) => void): void {
    this.sim.store.modify(
      R.VirtualMachineInstance,
      vmi.metadata.namespace,
      vmi.metadata.name,
      (o) => {
        if (o.metadata.uid !== vmi.metadata.uid) return;
        o.status ??= {};
        fn(o.status);
      },
      { subresource: "status" },
    );
  }

  private patchMeta(vmi: KObject, fn: (o: KObject) => void): void {
    this.sim.store.modify(R.VirtualMachineInstance, vmi.metadata.namespace, vmi.metadata.name, (o) => {
      if (o.metadata.uid === vmi.metadata.uid) fn(o);
    });
  }

  reconcile(k: string): void {
    const [ns, name] = splitKey(k);
    const vmi = this.sim.store.tryGet(R.VirtualMachineInstance, ns, name);
    const pods = this.sim.pods.forVMI(ns, name);
    for (const p of pods) if (!vmi || p.vmiUID !== vmi.metadata.uid) this.sim.pods.delete(p.name);
    if (!vmi) return;
    const st = vmi.status ?? {};
    const phase: string = st.phase ?? "";

    if (vmi.metadata.deletionTimestamp) {
      this.handleDeletion(vmi);
      return;
    }
    if (!isFinalPhase(phase) && !hasFinalizer(vmi, VirtualMachineInstanceFinalizer)) {
      this.patchMeta(vmi, (o) => addFinalizer(o, VirtualMachineInstanceFinalizer));
      return;
    }
    const pod = this.currentPod(vmi);

    switch (phase) {
      case VmiPhase.Unset:
      case VmiPhase.Pending: {
        if (isReceiver(vmi) && !vmi.metadata.labels?.[MigrationTargetNodeNameLabel]) {
          this.patchStatus(vmi, (s) => {
            setPhase(s, VmiPhase.WaitingForSync);
            s.conditions = setCondition(s.conditions ?? [], this.readyFalse(Reason.PodNotExists, "virt-launcher pod has not yet been scheduled"));
          });
          return;
        }
        if (!pod) {
          this.sim.pods.create({
            namespace: ns,
            vmi: name,
            vmiUID: vmi.metadata.uid,
            role: "launcher",
            memory: guestMemory(vmi) + this.sim.launcherOverhead,
            nodeSelector: vmi.spec?.nodeSelector ?? {},
          });
          this.patchStatus(vmi, (s) => {
            setPhase(s, VmiPhase.Pending);
            s.conditions = setCondition(s.conditions ?? [], this.readyFalse(Reason.PodNotExists, "virt-launcher pod has not yet been scheduled"));
            s.guestOSInfo ??= {};
            s.qosClass ??= "Burstable";
          });
          return;
        }
        this.patchStatus(vmi, (s) => setPhase(s, VmiPhase.Scheduling));
        return;
      }
      case VmiPhase.Scheduling:
        this.scheduling(vmi, pod);
        return;
      case VmiPhase.Scheduled:
        this.scheduled(vmi, pod);
        return;
      case VmiPhase.Running:
        this.running(vmi, pod);
        return;
      case VmiPhase.WaitingForSync: {
        const failed = st.migrationState?.failed === true && st.migrationState?.completed === true;
        const target = this.sim.pods.forVMI(ns, name).find((p) => p.role === "target" && p.vmiUID === vmi.metadata.uid);
        if (target && !failed && target.phase !== "Failed") {
          this.patchStatus(vmi, (s) => setPhase(s, VmiPhase.Scheduling));
        }
        return;
      }
      default:
        // Succeeded / Failed: the domain is gone; pods terminate.
        for (const p of this.sim.pods.forVMI(ns, name)) this.sim.pods.delete(p.name, phase === VmiPhase.Failed);
    }
  }

  private readyFalse(reason: string, message: string): Condition {
    return { type: Cond.Ready, status: "False", reason, message, lastProbeTime: null, lastTransitionTime: now() };
  }

  /** PVC and DataVolume readiness of the VMI's claims: undefined when all can be used. */
  private claimsBlocker(vmi: KObject): { reason: string; message: string } | undefined {
    const ns = vmi.metadata.namespace!;
    for (const v of vmi.spec?.volumes ?? []) {
      const claim = claimOfVolume(v);
      if (!claim) continue;
      const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
      if (v.dataVolume) {
        const dv = this.sim.store.tryGet(R.DataVolume, ns, claim);
        if (!dv && !pvc) return { reason: "FailedPvcNotFound", message: `PVC ${ns}/${claim} does not exist, waiting for it to appear` };
        if (dv && dv.status?.phase !== "Succeeded" && dv.status?.phase !== "WaitForFirstConsumer" && dv.status?.phase !== "PendingPopulation") {
          return { reason: "DataVolumeNotReady", message: `DataVolume ${claim} is not ready` };
        }
      } else if (!pvc) {
        return { reason: "FailedPvcNotFound", message: `PVC ${ns}/${claim} does not exist, waiting for it to appear` };
      }
      if (pvc && pvc.status?.phase !== "Bound") return { reason: "PvcNotBound", message: `PVC ${claim} is not bound` };
      const dv = this.sim.store.tryGet(R.DataVolume, ns, claim);
      if (dv && dv.status?.phase !== "Succeeded") return { reason: "DataVolumeNotReady", message: `DataVolume ${claim} is being populated` };
    }
    return undefined;
  }

  /** The scheduler records the chosen node on WaitForFirstConsumer claims (volume.kubernetes.io/selected-node). */
  private selectNodeForClaims(vmi: KObject, node: string): void {
    const ns = vmi.metadata.namespace!;
    for (const v of vmi.spec?.volumes ?? []) {
      const claim = claimOfVolume(v);
      if (!claim) continue;
      const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
      if (!pvc || pvc.status?.phase === "Bound" || pvc.metadata.annotations?.["volume.kubernetes.io/selected-node"]) continue;
      this.sim.store.modify(R.PersistentVolumeClaim, ns, claim, (o) => {
        o.metadata.annotations = { ...o.metadata.annotations, "volume.kubernetes.io/selected-node": node };
      });
    }
  }

  private scheduling(vmi: KObject, pod: SimPod | undefined): void {
    if (!pod || pod.phase === "Failed" || pod.phase === "Succeeded") {
      this.patchStatus(vmi, (s) => {
        if (isReceiver(vmi)) setPhase(s, VmiPhase.WaitingForSync);
        else setPhase(s, VmiPhase.Failed);
      });
      return;
    }
    if (pod.unschedulable && !pod.node) {
      this.patchStatus(vmi, (s) => {
        s.conditions = setCondition(s.conditions ?? [], {
          type: Cond.PodScheduled,
          status: "False",
          reason: "Unschedulable",
          message: pod.unschedulable,
          lastProbeTime: null,
          lastTransitionTime: now(),
        });
      });
      return;
    }
    if (!pod.node) return;
    if (!isReceiver(vmi)) this.selectNodeForClaims(vmi, pod.node);
    const blocker = isReceiver(vmi) ? undefined : this.claimsBlocker(vmi);
    if (pod.phase !== "Running" || blocker) {
      this.patchStatus(vmi, (s) => {
        s.conditions = removeCondition(s.conditions, Cond.PodScheduled);
        if (blocker?.reason === "FailedPvcNotFound") {
          s.conditions = setCondition(s.conditions, { type: "Synchronized", status: "False", reason: blocker.reason, message: blocker.message, lastProbeTime: null, lastTransitionTime: now() });
        } else s.conditions = removeCondition(s.conditions, "Synchronized");
        if (!s.conditions.length) delete s.conditions;
      });
      return;
    }
    this.scheduledAt.set(vmi.metadata.uid, Date.now());
    this.patchMeta(vmi, (o) => {
      o.metadata.labels = { ...o.metadata.labels, [NodeNameLabel]: pod.node! };
    });
    this.patchStatus(vmi, (s) => {
      setPhase(s, VmiPhase.Scheduled);
      s.nodeName = pod.node;
      s.conditions = removeCondition(s.conditions, Cond.PodScheduled).filter((c) => c.type !== "Synchronized");
      s.conditions = setCondition(s.conditions, this.readyFalse(Reason.GuestNotRunning, "Guest VM is not reported as running"));
      s.activePods = { [pod.uid]: pod.node };
      s.migrationTransport = "Unix";
      s.launcherContainerImageVersion = `quay.io/kubevirt/virt-launcher:${this.sim.version}`;
    });
    if (!isReceiver(vmi)) this.sim.after(this.sim.timings.domainStart, () => this.queue.add(key(vmi.metadata.namespace, vmi.metadata.name)));
  }

  private scheduled(vmi: KObject, pod: SimPod | undefined): void {
    if (!pod || pod.phase !== "Running") {
      if (isReceiver(vmi)) {
        this.patchStatus(vmi, (s) => {
          setPhase(s, VmiPhase.WaitingForSync);
          if (s.migrationState && !s.migrationState.completed) {
            s.migrationState.failed = true;
            s.migrationState.completed = true;
            s.migrationState.endTimestamp = now();
          }
        });
      } else this.patchStatus(vmi, (s) => setPhase(s, VmiPhase.Failed));
      return;
    }
    if (isReceiver(vmi)) return; // the target virt-handler finishes the incoming migration
    const since = this.scheduledAt.get(vmi.metadata.uid);
    const elapsed = since === undefined ? Infinity : this.sim.clock.simMs(Date.now() - since);
    if (elapsed < this.sim.timings.domainStart) {
      this.sim.after(this.sim.timings.domainStart - elapsed, () => this.queue.add(key(vmi.metadata.namespace, vmi.metadata.name)));
      return;
    }
    this.scheduledAt.delete(vmi.metadata.uid);
    this.patchStatus(vmi, (s) => {
      setPhase(s, VmiPhase.Running);
      this.fillRunningStatus(vmi, s, pod);
    });
  }

  private running(vmi: KObject, pod: SimPod | undefined): void {
    if (!pod || pod.phase === "Failed" || pod.phase === "Succeeded") {
      this.patchStatus(vmi, (s) => {
        setPhase(s, VmiPhase.Failed);
        s.conditions = setCondition(s.conditions ?? [], this.readyFalse(Reason.PodNotExists, "virt-launcher pod has not yet been scheduled"));
      });
      return;
    }
    const before = vmi.status ?? {};
    const next = structuredClone(before);
    this.fillRunningStatus(vmi, next, pod);
    // requireVolumesUpdate (storage.go): the VMI's volumes point at claims that are not migration sources.
    const migVols: any[] = next.migratedVolumes ?? [];
    if (migVols.length && !getCondition({ status: next }, Cond.VolumesChange)) {
      const sources = new Set(migVols.map((m) => m.sourcePVCInfo?.claimName));
      if ((vmi.spec?.volumes ?? []).some((v: any) => claimOfVolume(v) && !sources.has(claimOfVolume(v)))) {
        next.conditions = setCondition(next.conditions ?? [], {
          type: Cond.VolumesChange,
          status: "True",
          message: Msg.migrateVolumes,
          lastProbeTime: null,
          lastTransitionTime: now(),
        });
      }
    }
    if (!deepEqual(before, next)) this.patchStatus(vmi, (s) => Object.assign(s, next));
  }

  /** Status virt-handler reports for a running domain: node, interfaces, volumes, migratability. */
  fillRunningStatus(vmi: KObject, s: any, pod: SimPod): void {
    const ns = vmi.metadata.namespace!;
    s.nodeName = pod.node;
    s.activePods = { ...(s.activePods ?? {}), [pod.uid]: pod.node };
    for (const uid of Object.keys(s.activePods)) if (uid !== pod.uid && !this.sim.pods.list().some((p) => p.uid === uid)) delete s.activePods[uid];
    s.conditions = setCondition(s.conditions ?? [], { type: Cond.Ready, status: "True", lastProbeTime: null, lastTransitionTime: now() });
    s.guestOSInfo ??= {};
    s.qosClass ??= "Burstable";
    s.migrationTransport = "Unix";
    s.launcherContainerImageVersion ??= `quay.io/kubevirt/virt-launcher:${this.sim.version}`;
    s.selinuxContext ??= "none";
    s.runtimeUser ??= 107;
    const d = vmi.spec?.domain ?? {};
    s.currentCPUTopology = { cores: d.cpu?.cores ?? 1, sockets: d.cpu?.sockets ?? 1, threads: d.cpu?.threads ?? 1 };
    const mem = guestMemory(vmi);
    s.memory = { guestAtBoot: String(mem), guestCurrent: String(mem), guestRequested: String(mem) };
    s.machine = { type: d.machine?.type ?? "pc-q35-rhel9.6.0" };

    // interfaces
    const nets: any[] = vmi.spec?.networks ?? [];
    s.interfaces = (d.devices?.interfaces ?? []).map((iface: any, i: number) => {
      const net = nets.find((n) => n.name === iface.name);
      const mac = iface.macAddress ?? macFor(ns, vmi.metadata.name, iface.name);
      if (net?.pod) {
        return { name: iface.name, interfaceName: `eth${i}`, ipAddress: pod.ip, ipAddresses: [pod.ip], mac, infoSource: "domain, guest-agent", queueCount: 1, linkState: "up", podInterfaceName: "eth0" };
      }
      return { name: iface.name, interfaceName: `eth${i}`, mac, infoSource: "domain, multus-status", queueCount: 1, linkState: "up", podInterfaceName: `pod${i}` };
    });

    // volumes
    const disks: any[] = d.devices?.disks ?? [];
    const counters = new Map<string, number>();
    s.volumeStatus = (vmi.spec?.volumes ?? []).map((v: any) => {
      const disk = disks.find((x) => x.name === v.name);
      const bus = disk?.disk?.bus ?? disk?.cdrom?.bus ?? disk?.lun?.bus;
      const prefix = diskPrefix(bus);
      const n = counters.get(prefix) ?? 0;
      counters.set(prefix, n + 1);
      const out: any = { name: v.name, target: disk ? `${prefix}${String.fromCharCode(97 + n)}` : "" };
      const claim = claimOfVolume(v);
      if (claim) {
        const pvc = this.sim.store.tryGet(R.PersistentVolumeClaim, ns, claim);
        if (pvc) {
          out.persistentVolumeClaimInfo = {
            claimName: claim,
            accessModes: pvc.spec?.accessModes ?? [],
            volumeMode: pvc.spec?.volumeMode ?? "Filesystem",
            capacity: pvc.status?.capacity ?? {},
            requests: pvc.spec?.resources?.requests ?? {},
            filesystemOverhead: "0.06",
          };
        }
      } else if (v.containerDisk) out.containerDiskVolume = { checksum: 1234567890 };
      return out;
    });

    const { live, storage, method } = this.migratability(vmi, s);
    s.conditions = setCondition(s.conditions, live);
    s.conditions = setCondition(s.conditions, storage);
    s.migrationMethod = method;
  }

  /** virt-handler calculateLiveMigrationCondition / calculateLiveStorageMigrationCondition (vm.go). */
  migratability(vmi: KObject, s: any): { live: Condition; storage: Condition; method: "LiveMigration" | "BlockMigration" } {
    const d = vmi.spec?.domain ?? {};
    const ifaceErr = this.interfaceError(vmi);
    const hostDevErr = (d.devices?.hostDevices ?? []).length
      ? "VMI specifies non-migratable generic PCI host device"
      : (d.devices?.gpus ?? []).length
        ? "VMI specifies non-migratable GPU device"
        : undefined;
    const statusByName = new Map<string, any>((s.volumeStatus ?? []).map((v: any) => [v.name, v]));
    const migrated = new Set((s.migratedVolumes ?? []).map((m: any) => m.volumeName));
    const filesystems = new Set((d.devices?.filesystems ?? []).map((f: any) => f.name));
    let block = (s.migratedVolumes ?? []).length > 0;
    let blockErr: string | undefined;
    for (const v of vmi.spec?.volumes ?? []) {
      const claim = claimOfVolume(v);
      if (claim) {
        const vs = statusByName.get(v.name);
        if (!vs?.persistentVolumeClaimInfo) {
          blockErr ??= `cannot migrate VMI: Unable to determine if PVC ${claim} is shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)`;
          block = true;
        } else if (!(vs.persistentVolumeClaimInfo.accessModes ?? []).includes("ReadWriteMany") && !migrated.has(v.name)) {
          blockErr ??= `cannot migrate VMI: PVC ${claim} is not shared, live migration requires that all PVCs must be shared (using ReadWriteMany access mode)`;
          block = true;
        }
      } else if (v.hostDisk) {
        if (!v.hostDisk.shared) blockErr ??= "cannot migrate VMI with non-shared HostDisk";
        block = true;
      } else if (filesystems.has(v.name)) {
        continue;
      } else {
        const disk = (d.devices?.disks ?? []).find((x: any) => x.name === v.name);
        const readOnlyCD = disk?.cdrom && disk.cdrom.readonly !== false;
        if (!readOnlyCD) block = true;
      }
    }
    const t = now();
    const notMig = (reason: string, message: string): Condition => ({ type: Cond.LiveMigratable, status: "False", reason, message, lastProbeTime: null, lastTransitionTime: t });
    let live: Condition;
    if (ifaceErr) live = notMig(Reason.InterfaceNotMigratable, ifaceErr);
    else if (hostDevErr) live = notMig(Reason.HostDeviceNotMigratable, hostDevErr);
    else if (blockErr) live = notMig(Reason.DisksNotMigratable, blockErr);
    else live = { type: Cond.LiveMigratable, status: "True", lastProbeTime: null, lastTransitionTime: t };
    const reasons: string[] = [];
    if (ifaceErr) reasons.push(`${Reason.InterfaceNotMigratable}: ${ifaceErr}`);
    if (hostDevErr) reasons.push(`${Reason.HostDeviceNotMigratable}: ${hostDevErr}`);
    const storage: Condition = reasons.length
      ? { type: Cond.StorageLiveMigratable, status: "False", reason: Reason.NotMigratable, message: reasons.join(", "), lastProbeTime: null, lastTransitionTime: t }
      : { type: Cond.StorageLiveMigratable, status: "True", lastProbeTime: null, lastTransitionTime: t };
    return { live, storage, method: block ? "BlockMigration" : "LiveMigration" };
  }

  /** network/vmispec VerifyVMIMigratable. */
  private interfaceError(vmi: KObject): string | undefined {
    const ifaces: any[] = vmi.spec?.domain?.devices?.interfaces ?? [];
    if (!ifaces.length) return undefined;
    const podNet = (vmi.spec?.networks ?? []).find((n: any) => n.pod);
    if (!podNet) return undefined;
    const primary = ifaces.find((i) => i.name === podNet.name);
    if (!primary) return `no primary interface found for network ${podNet.name}`;
    if (primary.masquerade || primary.passtBinding) return undefined;
    if (primary.bridge && vmi.metadata.annotations?.[AllowPodBridgeNetworkLiveMigrationAnnotation] !== undefined) return undefined;
    if (primary.binding) return undefined;
    return "cannot migrate VMI which does not use masquerade or a migratable plugin to connect to the pod network";
  }

  private handleDeletion(vmi: KObject): void {
    const ns = vmi.metadata.namespace!;
    const phase: string = vmi.status?.phase ?? "";
    const pods = this.sim.pods.forVMI(ns, vmi.metadata.name);
    const ownerVM = vmi.metadata.ownerReferences?.find((r) => r.kind === "VirtualMachine");
    const vmExists = !!ownerVM && this.sim.store.tryGet(R.VirtualMachine, ns, ownerVM.name)?.metadata.uid === ownerVM.uid;
    const dropFinalizers = () =>
      this.patchMeta(vmi, (o) => {
        removeFinalizer(o, VirtualMachineInstanceFinalizer);
        if (!vmExists) removeFinalizer(o, VirtualMachineControllerFinalizer);
      });
    if (isFinalPhase(phase)) {
      for (const p of pods) this.sim.pods.delete(p.name, phase === VmiPhase.Failed);
      if (hasFinalizer(vmi, VirtualMachineInstanceFinalizer) || (!vmExists && hasFinalizer(vmi, VirtualMachineControllerFinalizer))) dropFinalizers();
      return;
    }
    if (phase === VmiPhase.WaitingForSync) {
      for (const p of pods) this.sim.pods.delete(p.name);
      dropFinalizers();
      return;
    }
    if (phase !== VmiPhase.Running) {
      for (const p of pods) this.sim.pods.delete(p.name);
      this.patchStatus(vmi, (s) => setPhase(s, VmiPhase.Failed));
      return;
    }
    if (this.shuttingDown.has(vmi.metadata.uid)) return;
    this.shuttingDown.add(vmi.metadata.uid);
    this.sim.after(this.sim.timings.shutdown, () => {
      this.shuttingDown.delete(vmi.metadata.uid);
      for (const p of this.sim.pods.forVMI(ns, vmi.metadata.name)) this.sim.pods.delete(p.name);
      this.patchStatus(vmi, (s) => {
        if (isFinalPhase(s.phase)) return;
        setPhase(s, VmiPhase.Succeeded);
        s.conditions = setCondition(s.conditions ?? [], this.readyFalse(Reason.PodTerminating, "virt-launcher pod is terminating"));
      });
    });
  }

  stop(): void {
    this.queue.stop();
  }
}
