// Same-cluster volume moves: storage live migration (blank destinations + updateVolumesStrategy:
// Migration) and the offline path (CDI clones of a stopped VM's claims, then the volumes swapped),
// their finalize (source policy for the old claims) and abort (exact revert) / cleanup.
import type { Task, TaskStatus } from "../../proto/bus/index.js";
import { blankDataVolume, cloneDataVolume, forgetSwap, isSwapped, originalVolumes, revertVolumes, swapVolumes, volumeMoves, volumesReverted, type MoveTask } from "../core/build.js";
import { condition, KUBEVIRT_API, type DataVolume, type VirtualMachine, type VirtualMachineInstance, type Vmim } from "../core/kube.js";
import { attemptOf, ferryLabels, ownedBy, VOLUME_UPDATE_MIGRATION_LABEL, VOLUMES_MIGRATION_ANNOTATION } from "../core/names.js";
import { agentError, clip, stepForVmim, vmFacts, vmimStatus } from "../core/status.js";
import { claimName } from "../core/vm.js";
import { DV, listOwned, readVm, Report, type Ctx } from "./context.js";
import { refOf } from "./kube.js";
import { migrationProgress } from "./progress.js";

type MoveFinalize = Extract<Task, { role: "storage" | "offline"; action: "finalize" }>;
type MoveUndo = Extract<Task, { role: "storage" | "offline"; action: "abort" | "cleanup" }>;

const DV_USABLE = new Set(["Succeeded", "WaitForFirstConsumer", "PendingPopulation"]);

/** The newest volume-update VMIM of a VMI (the workload updater creates it with generateName). */
async function volumeVmim(ctx: Ctx, namespace: string, vmiName: string): Promise<Vmim | undefined> {
  const list = await ctx.kube.list<Vmim>(KUBEVIRT_API, "VirtualMachineInstanceMigration", namespace, `${VOLUME_UPDATE_MIGRATION_LABEL}=${vmiName}`);
  return list.sort((a, b) => String(b.metadata.creationTimestamp ?? "").localeCompare(String(a.metadata.creationTimestamp ?? "")))[0];
}

const vmiClaims = (vmi: VirtualMachineInstance | undefined) => new Set((vmi?.spec.volumes ?? []).map(claimName).filter((c): c is string => c !== undefined));

/** The running VMI uses the destination claims and no volume is still being copied. */
function liveMoveDone(vmi: VirtualMachineInstance | undefined, destinations: readonly string[]): boolean {
  if (!vmi) return false;
  const claims = vmiClaims(vmi);
  return destinations.every((d) => claims.has(d)) && !(vmi.status?.migratedVolumes?.length) && condition(vmi, "VolumesChange")?.status !== "True";
}

function manualRecovery(vm: VirtualMachine): string | undefined {
  const c = condition(vm, "ManualRecoveryRequired");
  if (c?.status !== "True") return undefined;
  return clip(`${c.message ?? c.reason ?? "ManualRecoveryRequired"}. Recovery: if the copy finished (the failed VMIM has migrationState.targetNodeDomainReadyTimestamp), remove spec.updateVolumesStrategy to keep the new volumes; otherwise revert spec.template.spec.volumes to the original claims (ferry's abort does this) before starting the VM`);
}

export async function moveVolumes(ctx: Ctx, task: MoveTask, r: Report): Promise<TaskStatus> {
  const { namespace, name } = task.source;
  const live = task.role === "storage";
  const [vm, vmi] = await readVm(ctx, namespace, name);
  const facts = () => vmFacts(vm, vmi);
  if (!vm) return r.fail("VmNotFound", `VM ${namespace}/${name} does not exist on cluster ${ctx.cluster}`, "check the plan's source");
  const moves = volumeMoves(task);
  if (moves.length === 0) return r.fail("NoStorageChange", `no volume of VM ${namespace}/${name} changes storage class under the storage map`, "map the VM's storage classes to other classes in storageMap", { vm: facts() });
  const destinations = moves.map((m) => m.to);

  if (isSwapped(vm, task.migrationUid)) {
    if (!live) return r.done("Succeeded", { vm: facts() });
    const recovery = manualRecovery(vm);
    const vmim = vmi ? await volumeVmim(ctx, namespace, vmi.metadata.name ?? name) : undefined;
    const extra = { vm: facts(), ...(vmim ? { vmim: vmimStatus(vmim) } : {}) };
    if (recovery) return r.fail("ManualRecoveryRequired", `VM ${namespace}/${name}: ${recovery}`, "follow the recovery rule in needsManualRecovery, then retry", { ...extra, needsManualRecovery: recovery });
    if (liveMoveDone(vmi, destinations)) return r.done("Succeeded", extra);
    const restart = condition(vm, "RestartRequired");
    if (restart?.status === "True") {
      return r.fail("VolumesNotMigratable", `KubeVirt refused to migrate the volumes of VM ${namespace}/${name}: ${restart.message ?? restart.reason ?? "RestartRequired"}`, "abort (ferry reverts the volumes exactly), remove what blocks volume migration, or move the VM stopped with the offline path", extra);
    }
    const change = condition(vmi, "VolumesChange");
    const error = change?.status === "False" && change.message ? agentError("VolumesChangeRefused", change.message, "KubeVirt retries; if it persists, abort (ferry reverts the volumes)") : undefined;
    // The workload updater's VMIM copies the volumes: its source virt-handler has the bytes.
    const progress = vmim && stepForVmim(vmim) === "Migrating" ? await migrationProgress(ctx, task, vmi) : undefined;
    return r.done("Migrating", { ...extra, ...(error ? { error } : {}), progress });
  }

  if (live && vmi?.status?.phase !== "Running") {
    return r.fail("VmNotRunning", `VM ${namespace}/${name} is not running; storage live migration needs a running VM`, "start the VM, or move it stopped with the offline path", { vm: facts() });
  }
  if (!live && vmi && vmi.status?.phase !== "Succeeded" && vmi.status?.phase !== "Failed") {
    return r.fail("VmRunning", `VM ${namespace}/${name} runs (VMI phase ${vmi.status?.phase ?? "unknown"}); the offline path copies a stopped VM's disks`, `stop the VM (virtctl stop ${name} -n ${namespace}) or use storage live migration`, { vm: facts() });
  }
  r.at("CreatingVolumes", { vm: facts() });
  const labels = ferryLabels(task);
  let ready = true;
  let progress = 0;
  for (const move of moves) {
    const want = live ? blankDataVolume(move.source, task.storageMap, namespace, labels, move.to) : cloneDataVolume(move.source, task.storageMap, namespace, labels, move.to);
    await ctx.kube.create(want);
    const dv = await ctx.kube.get<DataVolume>(DV(namespace, move.to));
    if (dv && !ownedBy(dv, task.migrationUid)) {
      return r.fail("DestinationNameCollision", `DataVolume ${namespace}/${move.to} already exists and ferry did not create it for this migration`, "delete or rename it, then retry");
    }
    const phase = dv?.status?.phase ?? "";
    if (phase === "Failed") return r.fail("DataVolumeFailed", `destination DataVolume ${namespace}/${move.to} failed`, `check storage class ${move.mapping.target} (see the DataVolume's events)`, { vm: facts() });
    if (live ? !DV_USABLE.has(phase) : phase !== "Succeeded") ready = false;
    const pct = /^([\d.]+)%$/.exec(dv?.status?.progress ?? "");
    progress += phase === "Succeeded" ? move.source.sizeBytes : pct ? Math.floor((move.source.sizeBytes * Number(pct[1])) / 100) : 0;
  }
  const total = moves.reduce((s, m) => s + m.source.sizeBytes, 0);
  if (!ready) return r.status(live ? {} : { progress: { processedBytes: progress, totalBytes: total } });
  await ctx.kube.patchTo(vm, swapVolumes(vm, moves, task.migrationUid, live));
  return r.done(live ? "Migrating" : "Succeeded", { vm: facts() });
}

/** Finalize: `halt` keeps the old claims, `delete` removes them once the VM no longer uses them. */
export async function finalizeMove(ctx: Ctx, task: MoveFinalize, r: Report): Promise<TaskStatus> {
  const { namespace, name } = task.source;
  const [vm, vmi] = await readVm(ctx, namespace, name);
  r.at("Finalizing", { vm: vmFacts(vm, vmi) });
  if (!vm || vm.metadata.annotations?.[VOLUMES_MIGRATION_ANNOTATION] !== task.migrationUid) return r.done("Finalized");
  if (task.sourcePolicy === "delete") {
    const original = originalVolumes(vm);
    const now = new Set((vm.spec.template.spec.volumes ?? []).map(claimName));
    const inUse = vmiClaims(vmi);
    const old = (original?.volumes ?? []).map(claimName).filter((c): c is string => c !== undefined && !now.has(c));
    if (old.some((c) => inUse.has(c))) return r.status();
    for (const c of old) {
      await ctx.kube.delete(DV(namespace, c));
      await ctx.kube.delete({ apiVersion: "v1", kind: "PersistentVolumeClaim", namespace, name: c });
    }
  }
  await ctx.kube.patchTo(vm, forgetSwap(vm));
  return r.done("Finalized");
}

/** Abort reverts the VM's volumes exactly and removes the destinations; cleanup removes destinations of other attempts the VM does not use. */
export async function undoMove(ctx: Ctx, task: MoveUndo, r: Report): Promise<TaskStatus> {
  const { namespace, name } = task.source;
  const abort = task.action === "abort";
  r.at(abort ? "Aborting" : "CleaningUp");
  const [vm, vmi] = await readVm(ctx, namespace, name);
  const facts = vmFacts(vm, vmi);
  const swapped = vm !== undefined && isSwapped(vm, task.migrationUid);
  const owned = await listOwned(ctx, namespace, task.migrationUid);
  if (abort && vm && swapped) {
    const destinations = owned.dataVolumes.map((d) => d.metadata.name ?? "");
    const done = task.role === "offline" || liveMoveDone(vmi, destinations);
    // The volumes moved already: keep them (like a target that completed), report success.
    if (done && !volumesReverted(vm)) return r.done("Succeeded", { vm: facts });
    if (!volumesReverted(vm)) {
      await ctx.kube.patchTo(vm, revertVolumes(vm));
      return r.status({ vm: facts });
    }
    const settled = !vmi || (!(vmi.status?.migratedVolumes?.length) && condition(vmi, "VolumesChange")?.status !== "True" && [...vmiClaims(vmi)].every((c) => !destinations.includes(c)));
    if (!settled) return r.status({ vm: facts });
    await ctx.kube.patchTo(vm, forgetSwap(vm));
    return r.status({ vm: facts });
  }
  const used = new Set([...(vm?.spec.template.spec.volumes ?? []).map(claimName), ...vmiClaims(vmi)]);
  const doomed = owned.dataVolumes.filter((d) => (abort || attemptOf(d) !== task.attempt) && !used.has(d.metadata.name));
  for (const d of doomed) await ctx.kube.delete(refOf(d));
  if (doomed.length > 0) return r.status({ vm: facts });
  return r.done(abort ? "Aborted" : "CleanedUp", { vm: facts });
}
