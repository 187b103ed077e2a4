// Deterministic names and labels of every object ferry creates. A name is a function of the task
// alone, so a restarted agent finds what the dead one made (and a create answered 409 is "done").
import { createHash } from "node:crypto";
import { ATTEMPT_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MIGRATION_LABEL } from "../executor.js";

export { ATTEMPT_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, MIGRATION_LABEL };

/** Annotation KubeVirt copies into the receiver VM's spec.runStrategy after a successful migration. */
export const RESTORE_RUN_STRATEGY_ANNOTATION = "kubevirt.io/restore-run-strategy";
/** Set by KubeVirt on a receiver VMI until the migration completes. */
export const MIGRATION_TARGET_ANNOTATION = "kubevirt.io/create-migration-target";
/** Label the workload updater puts on a volume-migration VMIM (value: VMI name). */
export const VOLUME_UPDATE_MIGRATION_LABEL = "kubevirt.io/volume-update-migration";
/** On the source VM: the migrationID of the sendTo VMIM ferry saw created (tells "gone after success" from "never sent"). */
export const SENT_ANNOTATION = "ferry.dev/sent-migration-id";
/** On a VM whose volumes ferry swapped: JSON of the original volumes, so abort can revert them exactly. */
export const ORIGINAL_VOLUMES_ANNOTATION = "ferry.dev/original-volumes";
/** On a VM whose volumes ferry swapped: the migration that swapped them. */
export const VOLUMES_MIGRATION_ANNOTATION = "ferry.dev/volumes-migration";
export const USE_POPULATOR_ANNOTATION = "cdi.kubevirt.io/storage.usePopulator";

export interface AttemptRef {
  migrationUid: string;
  attempt: number;
}

/** The three labels on every object ferry creates. */
export function ferryLabels(ref: AttemptRef): Record<string, string> {
  return { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, [MIGRATION_LABEL]: ref.migrationUid, [ATTEMPT_LABEL]: String(ref.attempt) };
}

/** Label selector of everything ferry made for a migration (any attempt). */
export function migrationSelector(migrationUid: string): string {
  return `${MANAGED_BY_LABEL}=${MANAGED_BY_VALUE},${MIGRATION_LABEL}=${migrationUid}`;
}

/** Whether ferry made this object for this migration (any attempt when `attempt` is omitted). */
export function ownedBy(obj: { metadata?: { labels?: Record<string, string> } } | undefined, migrationUid: string, attempt?: number): boolean {
  const l = obj?.metadata?.labels ?? {};
  return l[MANAGED_BY_LABEL] === MANAGED_BY_VALUE && l[MIGRATION_LABEL] === migrationUid && (attempt === undefined || l[ATTEMPT_LABEL] === String(attempt));
}

export function isFerryManaged(obj: { metadata?: { labels?: Record<string, string> } } | undefined): boolean {
  return obj?.metadata?.labels?.[MANAGED_BY_LABEL] === MANAGED_BY_VALUE;
}

export function attemptOf(obj: { metadata?: { labels?: Record<string, string> } } | undefined): number | undefined {
  const v = obj?.metadata?.labels?.[ATTEMPT_LABEL];
  return v === undefined ? undefined : Number(v);
}

/** The target's receive VMIM of one attempt. */
export function receiveVmimName(migrationId: string): string {
  return `ferry-receive-${migrationId}`;
}

/** The source's sendTo VMIM of one attempt. */
export function sendVmimName(migrationId: string): string {
  return `ferry-send-${migrationId}`;
}

const hash = (s: string, n = 8) => createHash("sha256").update(s).digest("hex").slice(0, n);

/**
 * Destination claim of a same-cluster volume move: `<claim>-<8 hex of migration uid and claim>`,
 * the claim cut so the whole stays a DNS-1123 subdomain of at most 253 characters. A suffix from an
 * earlier move is replaced, not stacked (`root-1a2b3c4d` moves to `root-5e6f7a8b`).
 */
export function movedClaimName(claim: string, migrationUid: string): string {
  const base = claim.replace(/-[0-9a-f]{8}$/, "").slice(0, 243).replace(/[-.]+$/, "");
  return `${base}-${hash(`${migrationUid}/${claim}`)}`;
}
