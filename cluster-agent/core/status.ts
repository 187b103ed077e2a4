// TaskStatus pieces derived from what KubeVirt reports: VMIM phase/conditions/migrationState, the
// VM facts the broker checks invariants with, the step a VMIM phase means, and failures with fixes.
import { clipText, type AgentError, type TaskStatus, type TaskStep, type VmimStatus } from "../../proto/bus/index.js";
import { condition, type Condition, type VirtualMachine, type VirtualMachineInstance, type Vmim } from "./kube.js";
import { MIGRATION_TARGET_ANNOTATION } from "./names.js";
import { runStrategyOf } from "./vm.js";

/** Cuts free text to the bus's limit (never splitting a surrogate pair). */
export const clip = (s: string, n?: number): string => clipText(s, n);

function isoTime(t: unknown): string | undefined {
  if (typeof t !== "string" && !(t instanceof Date)) return undefined;
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

function busCondition(c: Condition): VmimStatus["conditions"][number] {
  const status = c.status === "True" || c.status === "False" ? c.status : "Unknown";
  const at = isoTime(c.lastTransitionTime);
  return {
    type: clip(c.type, 128),
    status,
    ...(c.reason ? { reason: clip(c.reason, 256) } : {}),
    ...(c.message ? { message: clip(c.message) } : {}),
    ...(at ? { lastTransitionTime: at } : {}),
  };
}

/** The VMIM as the bus reports it. */
export function vmimStatus(vmim: Vmim): VmimStatus {
  const st = vmim.status ?? {};
  const out: VmimStatus = {
    name: vmim.metadata.name ?? "",
    phase: st.phase ?? "",
    phaseTransitions: (st.phaseTransitionTimestamps ?? []).flatMap((p) => {
      const at = isoTime(p.phaseTransitionTimestamp);
      return at ? [{ phase: p.phase, at }] : [];
    }).slice(-32),
    conditions: (st.conditions ?? []).map(busCondition).slice(0, 32),
  };
  const ms = st.migrationState;
  if (ms) {
    const start = isoTime(ms.startTimestamp);
    const end = isoTime(ms.endTimestamp);
    out.migrationState = {
      completed: ms.completed === true,
      failed: ms.failed === true,
      ...(start ? { startTimestamp: start } : {}),
      ...(end ? { endTimestamp: end } : {}),
      ...(ms.failureReason ? { failureReason: clip(ms.failureReason) } : {}),
      ...(ms.mode ? { mode: ms.mode } : {}),
    };
  }
  return out;
}

/** VM facts for the broker's invariants (a VM never runs in two places). */
export function vmFacts(vm: VirtualMachine | undefined, vmi: VirtualMachineInstance | undefined): NonNullable<TaskStatus["vm"]> {
  if (!vm) return { exists: false };
  return {
    exists: true,
    runStrategy: runStrategyOf(vm),
    ...(vm.status?.printableStatus ? { printableStatus: vm.status.printableStatus } : {}),
    ...(vmi?.status?.phase ? { vmiPhase: vmi.status.phase } : {}),
    ...(vmi?.status?.nodeName ? { node: vmi.status.nodeName } : {}),
  };
}

const SENDING_PHASES = new Set(["", "Synchronizing", "WaitingForSync", "Pending"]);

/** The step a decentralized VMIM's phase means for its side. */
export function stepForVmim(vmim: Vmim): TaskStep {
  const phase = vmim.status?.phase ?? "";
  if (phase === "Succeeded") return "Succeeded";
  if (phase === "Failed") return "Failed";
  if (SENDING_PHASES.has(phase)) return "Sending";
  return "Migrating";
}

/** A VMIM that completed: phase Succeeded or migrationState completed and not failed. */
export function vmimSucceeded(vmim: Vmim | undefined): boolean {
  if (!vmim) return false;
  const ms = vmim.status?.migrationState;
  return vmim.status?.phase === "Succeeded" || (ms?.completed === true && ms.failed !== true);
}

export function vmimFailed(vmim: Vmim | undefined): boolean {
  return vmim?.status?.phase === "Failed" || vmim?.status?.migrationState?.failed === true;
}

/** A VMIM ferry deleted that KubeVirt still holds, and whether ferry may lift KubeVirt's finalizers. */
export interface HeldVmim {
  /** Lift these now (KubeVirt will not). Absent: wait. */
  release?: string[];
  /** Why it is held, and why it may or may not be released; for the task status and the log. */
  why: string;
  /** When it will be released unless KubeVirt finishes first (look again then). */
  releaseAt?: Date;
}

/**
 * KubeVirt can leave a deleted VMIM behind for good: the synchronization controller finds a VMIM
 * only through its VMI's migrationState, so once the VMI is gone or re-created (a receiver VMI
 * whose pod died is re-created by WaitAsReceiver) it never removes its finalizer; and a
 * decentralized source cancelled after hand-off waits for a peer that no longer exists. A held VMIM
 * blocks the next attempt ("another migration job is running"). ferry lifts the finalizers of a
 * VMIM it deleted when no KubeVirt controller can: a final VMIM its VMI no longer refers to, at
 * once; after `graceMs`, a final one, one whose copy never started, or a receive VMIM (the receiver
 * of an uncompleted migration is disposable). A source whose copy started is never forced.
 */
export function heldVmim(vmim: Vmim, vmi: VirtualMachineInstance | undefined, now: Date, graceMs: number): HeldVmim | undefined {
  const since = vmim.metadata.deletionTimestamp;
  const finalizers = vmim.metadata.finalizers ?? [];
  if (!since || finalizers.length === 0) return undefined;
  const uid = vmim.metadata.uid;
  const ms = vmi?.status?.migrationState;
  const referenced = uid !== undefined && [ms?.migrationUid, ms?.sourceState?.migrationUID, ms?.targetState?.migrationUID].includes(uid);
  const phase = vmim.status?.phase ?? "";
  const final = phase === "Succeeded" || phase === "Failed";
  const heldFor = now.getTime() - Date.parse(since);
  const what = `VMIM ${vmim.metadata.name ?? "?"} (phase ${phase || "unset"}) is deleted but held by ${finalizers.join(", ")}`;
  if (final && !referenced) return { release: finalizers, why: `${what}; its VMI ${vmi ? "was re-created" : "is gone"}, so KubeVirt will never finish it` };
  const startedCopy = referenced && ms?.migrationUid === uid && ms?.startTimestamp !== undefined;
  // A receiver that has not completed is disposable (ferry deletes it next); a source copy that
  // started is KubeVirt's to abort: forcing it could let the hand-over finish into a deleted receiver.
  const receiver = vmim.spec.receive !== undefined;
  if (heldFor >= graceMs && (final || !startedCopy || receiver)) {
    const why = final ? "the migration is final" : startedCopy ? "the receiver's copy is being cancelled (its source has let go)" : "the copy never started (its peer is gone)";
    return { release: finalizers, why: `${what} for ${Math.round(heldFor / 1000)} s and ${why}` };
  }
  if (startedCopy && !receiver) return { why: `${what}; KubeVirt is aborting the copy` };
  const releaseAt = new Date(Date.parse(since) + graceMs);
  return { why: `${what}; ferry lifts the finalizers at ${releaseAt.toISOString()} unless KubeVirt finishes first`, releaseAt };
}

/** Why a VMIM failed, with what to do. */
export function vmimFailure(vmim: Vmim, side: "source" | "target" | "local", vmi?: VirtualMachineInstance): AgentError {
  // KubeVirt copies the VMI's migrationState into the VMIM a pass after it marks the VMIM Failed:
  // until then the reason is on the VMI, if it still refers to this VMIM.
  const uid = vmim.metadata.uid;
  const ms = vmi?.status?.migrationState;
  const fromVmi = uid !== undefined && [ms?.migrationUid, ms?.sourceState?.migrationUID, ms?.targetState?.migrationUID].includes(uid) ? ms?.failureReason : undefined;
  const reason = vmim.status?.migrationState?.failureReason ?? fromVmi;
  const blocked = condition(vmim, "decentralizedMigrationBlocked");
  const parts = [`${side === "local" ? "" : `${side} `}VMIM ${vmim.metadata.namespace}/${vmim.metadata.name} failed`];
  if (reason) parts.push(reason);
  if (blocked?.status === "True" && blocked.message) parts.push(`decentralizedMigrationBlocked: ${blocked.message}`);
  return {
    code: "MigrationFailed",
    message: clip(parts.join(": ")),
    fix: clip(
      reason === "Live migration has been aborted"
        ? "the copy did not converge or timed out (progressTimeout / completionTimeoutPerGiB): retry when the guest writes less memory, or raise bandwidthPerMigration / the timeouts in the KubeVirt CR"
        : "see the message; the source VM keeps running. ferry aborts this attempt and retries if attempts are left",
    ),
  };
}

/** The decentralizedMigrationBlocked condition of a VMIM when True (TLS/x509 or connectivity between sync controllers). */
export function blockedCondition(vmim: Vmim | undefined): Condition | undefined {
  const c = condition(vmim, "decentralizedMigrationBlocked");
  return c?.status === "True" ? c : undefined;
}

/** The receiver finished: its VMI runs without the migration-target annotation, or the VM left WaitAsReceiver. */
export function receiverCompleted(vm: VirtualMachine | undefined, vmi: VirtualMachineInstance | undefined): boolean {
  if (!vm) return false;
  if (runStrategyOf(vm) !== "WaitAsReceiver") return true;
  const ms = vmi?.status?.migrationState;
  return vmi?.status?.phase === "Running" && vmi.metadata.annotations?.[MIGRATION_TARGET_ANNOTATION] === undefined && ms?.completed === true && ms.failed !== true;
}

/** Progress as virt-handler exports it (kubevirt_vmi_migration_data_*), when the caller has a sample. */
export interface ProgressSample {
  processedBytes: number;
  totalBytes?: number;
  remainingBytes?: number;
  dataRateBytesPerSecond?: number;
}

export function progressOf(sample: ProgressSample | undefined): TaskStatus["progress"] {
  if (!sample) return undefined;
  const int = (n: number | undefined) => (n === undefined || !Number.isFinite(n) ? undefined : Math.max(0, Math.round(n)));
  const out: NonNullable<TaskStatus["progress"]> = { processedBytes: int(sample.processedBytes) ?? 0 };
  const total = int(sample.totalBytes);
  const remaining = int(sample.remainingBytes);
  const rate = int(sample.dataRateBytesPerSecond);
  if (total !== undefined) out.totalBytes = total;
  if (remaining !== undefined) out.remainingBytes = remaining;
  if (rate !== undefined) out.dataRateBytesPerSecond = rate;
  return out;
}

export function agentError(code: string, message: string, fix: string): AgentError {
  return { code, message: clip(message), fix: clip(fix) };
}

/**
 * Progress of one VMI's migration from virt-handler's Prometheus text (kubevirt_vmi_migration_data_*
 * series labelled namespace/name, source side only; pkg/monitoring/metrics/virt-handler/
 * migrationdomainstats). virt-handler stamps each sample with its collection time and may return
 * several buffered samples of a series: the newest wins (the last one when unstamped). Undefined
 * when the text has no data_processed sample for the VMI.
 */
export function progressFromMetrics(text: string, namespace: string, name: string): ProgressSample | undefined {
  const newest = new Map<string, { value: number; at: number }>();
  for (const line of text.split("\n")) {
    const m = /^(kubevirt_vmi_migration_[a-z_]+)\{([^}]*)\}\s+(\S+)(?:\s+(-?\d+))?\s*$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1], l[2]]));
    if (labels.namespace !== namespace || labels.name !== name) continue;
    const value = Number(m[3]);
    const at = m[4] !== undefined ? Number(m[4]) : -Infinity;
    const cur = newest.get(m[1]!);
    if (Number.isFinite(value) && (!cur || at >= cur.at)) newest.set(m[1]!, { value, at });
  }
  const value = (metric: string) => newest.get(`kubevirt_vmi_migration_${metric}`)?.value;
  const processed = value("data_processed_bytes");
  if (processed === undefined) return undefined;
  const sample: ProgressSample = { processedBytes: processed };
  const total = value("data_bytes_total");
  const remaining = value("data_remaining_bytes");
  const rate = value("memory_transfer_rate_bytes");
  if (total !== undefined) sample.totalBytes = total;
  if (remaining !== undefined) sample.remainingBytes = remaining;
  if (rate !== undefined) sample.dataRateBytesPerSecond = rate;
  return sample;
}
