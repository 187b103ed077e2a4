// Cross-cluster (decentralized) live migration: the target's prepare, the source's send and
// finalize, and abort/cleanup on either side. Each call is one idempotent pass.
import type { Task, TaskStatus } from "../../proto/bus/index.js";
import { blankDataVolume, dependencyCopy, receiverVm, receiveVmim, sendVmim, type PrepareTask, type SendTask } from "../core/build.js";
import type { DataVolume, KubeObj, VirtualMachineInstance, Vmim } from "../core/kube.js";
import { attemptOf, ferryLabels, isFerryManaged, MANAGED_BY_LABEL, MANAGED_BY_VALUE, ownedBy, RECEIVING_ANNOTATION, receiveVmimName, SENT_ANNOTATION, sendVmimName } from "../core/names.js";
import { agentError, heldVmim, receiverCompleted, stepForVmim, vmFacts, vmimFailed, vmimFailure, vmimStatus, vmimSucceeded } from "../core/status.js";
import { runStrategyOf } from "../core/vm.js";
import { DV, listOwned, readKubeVirt, readVm, Report, VM, VMIM, type Ctx } from "./context.js";
import { refOf } from "./kube.js";
import { migrationProgress } from "./progress.js";

type SourceFinalize = Extract<Task, { role: "source"; action: "finalize" }>;
type Undo = Extract<Task, { action: "abort" | "cleanup" }>;

const DV_READY = new Set(["Succeeded", "WaitForFirstConsumer", "PendingPopulation"]);

export async function targetPrepare(ctx: Ctx, task: PrepareTask, r: Report): Promise<TaskStatus> {
  const { namespace, name } = task.target;
  const [[vm, vmi], vmim] = await Promise.all([readVm(ctx, namespace, name), ctx.kube.get<Vmim>(VMIM(namespace, receiveVmimName(task.migrationId)))]);
  if (vm && !ownedBy(vm, task.migrationUid)) {
    return r.fail("TargetNameCollision", `VM ${namespace}/${name} already exists on cluster ${ctx.cluster} and ferry did not create it for this migration`, "delete or rename that VM, or choose another target name; then retry the migration");
  }
  const facts = () => vmFacts(vm, vmi);
  // The VM already moved here (this or an earlier attempt): never re-create anything.
  if (vm && (vmimSucceeded(vmim) || receiverCompleted(vm, vmi))) {
    return r.done("Succeeded", { vm: facts(), ...(vmim ? { vmim: vmimStatus(vmim) } : {}) });
  }
  if (vm && attemptOf(vm) !== task.attempt) {
    // A receiver of an earlier attempt that never completed: KubeVirt cannot reuse it (delete VMIMs, then the VM).
    const owned = await listOwned(ctx, namespace, task.migrationUid);
    const stale = owned.vmims.filter((m) => attemptOf(m) !== task.attempt);
    for (const m of stale) await ctx.kube.delete(refOf(m));
    if (stale.length === 0) await ctx.kube.delete(VM(namespace, name));
    return r.done("CreatingReceiver", { vm: facts() });
  }
  if (vmim) {
    const status = vmimStatus(vmim);
    if (vm && vm.metadata.annotations?.[RECEIVING_ANNOTATION] !== task.migrationId) {
      await ctx.kube.mergePatch({ apiVersion: vm.apiVersion, kind: vm.kind, metadata: { name, namespace, annotations: { [RECEIVING_ANNOTATION]: task.migrationId } } });
    }
    if (vmimFailed(vmim)) return r.failed(vmimFailure(vmim, "target", vmi), { vmim: status, vm: facts() });
    const phase = vmim.status?.phase ?? "";
    const syncAddress = vmim.status?.synchronizationAddresses?.[0] ?? (await readKubeVirt(ctx))?.status?.synchronizationAddresses?.[0];
    const step = phase === "" || phase === "WaitingForSync" ? "ReceiverReady" : "Migrating";
    return r.done(step, { vmim: status, vm: facts(), ...(syncAddress ? { syncAddress } : {}) });
  }

  if (vm?.metadata.annotations?.[RECEIVING_ANNOTATION] === task.migrationId) {
    // The receive VMIM existed and is gone while the receiver still waits: cancelled (by the source side or by hand).
    const ms = vmi?.status?.migrationState;
    return r.fail(
      "ReceiveVmimDeleted",
      `the receive VMIM ${namespace}/${receiveVmimName(task.migrationId)} was deleted before the migration completed${ms?.failed ? ` (the receiver VMI reports a failed migration: ${ms.failureReason ?? "no reason given"})` : ""}`,
      "abort this attempt (ferry deletes the receiver) and retry",
      { vm: facts() },
    );
  }
  // Nothing of the receive VMIM yet: build what is missing, in order.
  const labels = ferryLabels(task);
  if (!(await ctx.kube.get({ apiVersion: "v1", kind: "Namespace", name: namespace }))) {
    await ctx.kube.create({ apiVersion: "v1", kind: "Namespace", metadata: { name: namespace, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE } } });
  }
  r.at("CopyingDependencies");
  for (const dep of task.sourceVm.dependencies) {
    const copy = dependencyCopy(dep, namespace, labels);
    if (!(await ctx.kube.create(copy))) {
      const existing = await ctx.kube.get<KubeObj>(refOf(copy));
      if (existing && !ownedBy(existing, task.migrationUid)) {
        return r.fail("DependencyCollision", `${copy.kind} ${namespace}/${copy.metadata.name} already exists on cluster ${ctx.cluster} and ferry did not create it; the VM refers to it by name`, `delete or rename it on ${ctx.cluster}, or choose another target namespace`);
      }
    }
  }
  r.at("CreatingVolumes");
  let ready = true;
  for (const volume of task.sourceVm.volumes) {
    const want = blankDataVolume(volume, task.storageMap, namespace, labels);
    await ctx.kube.create(want);
    const dv = await ctx.kube.get<DataVolume>(DV(namespace, volume.claimName));
    if (dv && !ownedBy(dv, task.migrationUid)) {
      return r.fail("VolumeNameCollision", `DataVolume ${namespace}/${volume.claimName} already exists on cluster ${ctx.cluster} and ferry did not create it; the receiver needs it for volume ${volume.name}`, "delete or rename it, or choose another target namespace; then retry");
    }
    const phase = dv?.status?.phase ?? "";
    if (phase === "Failed") {
      const why = dv?.status?.conditions?.find((c) => c.status === "False" && c.message)?.message ?? "CDI reports phase Failed";
      return r.fail("DataVolumeFailed", `DataVolume ${namespace}/${volume.claimName} failed: ${why}`, "check the storage class and quota on the target cluster (see the DataVolume's events)");
    }
    if (!DV_READY.has(phase)) ready = false;
  }
  if (!ready) return r.status();
  r.at("CreatingReceiver");
  if (!vm) {
    await ctx.kube.create(receiverVm(task));
    const [created, createdVmi] = await readVm(ctx, namespace, name);
    return r.done("WaitingForReceiver", { vm: vmFacts(created, createdVmi) });
  }
  if (vmi?.status?.phase !== "WaitingForSync") return r.done("WaitingForReceiver", { vm: facts() });
  await ctx.kube.create(receiveVmim(task));
  await ctx.kube.mergePatch({ apiVersion: vm.apiVersion, kind: vm.kind, metadata: { name, namespace, annotations: { [RECEIVING_ANNOTATION]: task.migrationId } } });
  const created = await ctx.kube.get<Vmim>(VMIM(namespace, receiveVmimName(task.migrationId)));
  const syncAddress = created?.status?.synchronizationAddresses?.[0] ?? (await readKubeVirt(ctx))?.status?.synchronizationAddresses?.[0];
  return r.done("ReceiverReady", { vm: facts(), ...(created ? { vmim: vmimStatus(created) } : {}), ...(syncAddress ? { syncAddress } : {}) });
}

export async function sourceSend(ctx: Ctx, task: SendTask, r: Report): Promise<TaskStatus> {
  const { namespace, name } = task.source;
  const vmimName = sendVmimName(task.migrationId);
  const [[vm, vmi], vmim] = await Promise.all([readVm(ctx, namespace, name), ctx.kube.get<Vmim>(VMIM(namespace, vmimName))]);
  const facts = () => vmFacts(vm, vmi);
  if (!vm) return r.fail("VmNotFound", `source VM ${namespace}/${name} does not exist on cluster ${ctx.cluster}`, "nothing to send; check whether the VM was deleted");
  if (vmim) {
    const status = vmimStatus(vmim);
    const phase = vmim.status?.phase ?? "";
    if (vmim.spec.sendTo?.connectURL !== task.connectUrl && (phase === "" || phase === "Synchronizing") && !vmim.metadata.deletionTimestamp) {
      // The spec is immutable: a new synchronization address means a new VMIM.
      await ctx.kube.delete(VMIM(namespace, vmimName));
      return r.done("Sending", { vmim: status, vm: facts() });
    }
    if (vm.metadata.annotations?.[SENT_ANNOTATION] !== task.migrationId) {
      await ctx.kube.mergePatch({ apiVersion: vm.apiVersion, kind: vm.kind, metadata: { name, namespace, annotations: { [SENT_ANNOTATION]: task.migrationId } } });
    }
    if (vmimFailed(vmim)) return r.failed(vmimFailure(vmim, "source", vmi), { vmim: status, vm: facts() });
    const step = stepForVmim(vmim);
    return r.done(step, { vmim: status, vm: facts(), progress: step === "Migrating" ? await migrationProgress(ctx, task, vmi) : undefined });
  }
  if (vm.metadata.annotations?.[SENT_ANNOTATION] === task.migrationId) {
    // The sendTo VMIM existed and is gone. KubeVirt deletes it with the VMI after a success.
    const ms = vmi?.status?.migrationState;
    if (!vmi || vmi.status?.phase === "Succeeded") {
      if (ms?.failed) return r.fail("MigrationFailed", `the source VMI ended with a failed migration: ${ms.failureReason ?? "no reason given"}`, "see the target's report; the attempt is retried if attempts are left", { vm: facts() });
      return r.done("Succeeded", { vm: facts() });
    }
    if (ms?.failed) return r.fail("MigrationFailed", `migration ${task.migrationId} failed: ${ms.failureReason ?? "no reason given"}`, "the source VM keeps running; ferry aborts this attempt and retries if attempts are left", { vm: facts() });
    return r.fail("SendVmimDeleted", `the sendTo VMIM ${namespace}/${vmimName} was deleted while VMI ${namespace}/${name} still runs here (the target side cancelled, or someone deleted it)`, "the source VM keeps running; abort this attempt and retry", { vm: facts() });
  }
  if (vmi?.status?.phase !== "Running") {
    return r.fail("VmNotRunning", `source VM ${namespace}/${name} is not running (VMI ${vmi ? `phase ${vmi.status?.phase ?? "unknown"}` : "absent"})`, "start the VM to live-migrate it, or move it stopped with the offline path", { vm: facts() });
  }
  await ctx.kube.create(sendVmim(task));
  await ctx.kube.mergePatch({ apiVersion: vm.apiVersion, kind: vm.kind, metadata: { name, namespace, annotations: { [SENT_ANNOTATION]: task.migrationId } } });
  const created = await ctx.kube.get<Vmim>(VMIM(namespace, vmimName));
  return r.done("Sending", { vm: facts(), ...(created ? { vmim: vmimStatus(created) } : {}) });
}

export async function sourceFinalize(ctx: Ctx, task: SourceFinalize, r: Report): Promise<TaskStatus> {
  const { namespace, name } = task.source;
  const [vm, vmi] = await readVm(ctx, namespace, name);
  r.at("Finalizing", { vm: vmFacts(vm, vmi) });
  for (const m of (await listOwned(ctx, namespace, task.migrationUid)).vmims) await ctx.kube.delete(refOf(m));
  if (!vm) return r.done("Finalized");
  if (vmi?.status?.phase === "Running" && vmi.status.migrationState?.completed !== true) {
    return r.fail("SourceStillRunning", `source VMI ${namespace}/${name} still runs on cluster ${ctx.cluster}; ferry applies the source policy only to a VM that moved away`, "check where the VM runs (the target reported it running); stop one copy by hand if both run", { vm: vmFacts(vm, vmi) });
  }
  if (task.sourcePolicy === "delete") {
    await ctx.kube.delete(VM(namespace, name));
    return r.status();
  }
  if (runStrategyOf(vm) !== "Halted") {
    await ctx.kube.mergePatch({ apiVersion: vm.apiVersion, kind: vm.kind, metadata: { name, namespace }, spec: { runStrategy: "Halted", running: null } });
    return r.status();
  }
  if (vmi && !vmi.metadata.deletionTimestamp && vmi.status?.phase !== "Succeeded" && vmi.status?.phase !== "Failed") return r.status();
  return r.done("Finalized");
}

/** Abort (this migration, any attempt) or cleanup (earlier attempts) on either side of a cross-cluster move. */
export async function undoDecentralized(ctx: Ctx, task: Undo & { role: "source" | "target" }, r: Report): Promise<TaskStatus> {
  const side = task.role === "source" ? task.source : task.target;
  const abort = task.action === "abort";
  r.at(abort ? "Aborting" : "CleaningUp");
  const [owned, [vm, vmi]] = await Promise.all([listOwned(ctx, side.namespace, task.migrationUid), readVm(ctx, side.namespace, side.name)]);
  const extra = task.role === "target" ? { vm: vmFacts(vm, vmi) } : {};
  if (task.role === "target") {
    const completed = owned.vmims.some((m) => m.spec.receive && vmimSucceeded(m)) || (vm !== undefined && ownedBy(vm, task.migrationUid) && receiverCompleted(vm, vmi));
    if (completed) {
      // The VM lives here now: nothing is deleted (the broker may have asked before it learned of the success).
      if (abort) return r.done("Succeeded", extra);
      // cleanup keeps the moved VM, its volumes and copies; only VMIMs of other attempts go.
      for (const m of owned.vmims.filter((x) => attemptOf(x) !== task.attempt && !vmimSucceeded(x))) await ctx.kube.delete(refOf(m));
      return r.done("CleanedUp", extra);
    }
  }
  const mine = (o: KubeObj) => isFerryManaged(o) && (abort || attemptOf(o) !== task.attempt);
  const vmims = owned.vmims.filter(mine);
  for (const m of vmims) await ctx.kube.delete(refOf(m));
  const held = await releaseHeldVmims(ctx, task, vmims, vmi);
  // The VM and its volumes go only once KubeVirt has let go of every VMIM (it cancels through them).
  const rest = [...owned.vms, ...owned.dataVolumes, ...owned.others].filter(mine);
  if (vmims.length === 0) for (const o of rest) await ctx.kube.delete(refOf(o));
  if (vmims.length > 0 || rest.length > 0) {
    return r.status({ ...extra, ...(held.length ? { error: agentError("VmimDeletionHeld", held.join("; "), "nothing to do unless it persists: see the VMIM's finalizers and conditions") } : {}) });
  }
  return r.done(abort ? "Aborted" : "CleanedUp", extra);
}

/** Lifts KubeVirt's finalizers from the VMIMs ferry deleted that KubeVirt will not finish (core heldVmim); says why the others wait. */
async function releaseHeldVmims(ctx: Ctx, task: Task, vmims: readonly Vmim[], vmi: VirtualMachineInstance | undefined): Promise<string[]> {
  const waiting: string[] = [];
  for (const m of vmims) {
    const held = heldVmim(m, vmi, ctx.now(), ctx.vmimReleaseMs);
    if (!held) continue;
    if (!held.release) {
      waiting.push(held.why);
      if (held.releaseAt) ctx.requeue(task, Math.max(0, held.releaseAt.getTime() - ctx.now().getTime()) + 100);
      continue;
    }
    ctx.log.warn({ vmim: `${m.metadata.namespace ?? ""}/${m.metadata.name ?? ""}`, finalizers: held.release, why: held.why }, "lifting KubeVirt's finalizers from a VMIM ferry deleted");
    const rest = (m.metadata.finalizers ?? []).filter((f) => !held.release!.includes(f));
    await ctx.kube.patchTo(m, { ...m, metadata: { ...m.metadata, finalizers: rest } });
  }
  return waiting;
}
