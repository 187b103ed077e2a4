// Predicates of VirtualMachineInstanceMigration and VMI migration state, as in KubeVirt's types.go.
import type { KObject } from "../apiserver/store.js";
import { Phase } from "./constants.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- migration state is free-form JSON */

export const phaseOf = (m: KObject): string => m.status?.phase ?? "";
export const isDecentralized = (m: KObject): boolean => !!m.spec?.sendTo !== !!m.spec?.receive;
export const isDecSource = (m: KObject): boolean => isDecentralized(m) && !!m.spec?.sendTo;
export const isDecTarget = (m: KObject): boolean => isDecentralized(m) && !!m.spec?.receive;
export const isLocalOrDecSource = (m: KObject): boolean => !isDecentralized(m) || !!m.spec?.sendTo;
export const isLocalOrDecTarget = (m: KObject): boolean => !isDecentralized(m) || !!m.spec?.receive;
export const isFinal = (m: KObject): boolean => phaseOf(m) === Phase.Succeeded || phaseOf(m) === Phase.Failed;
export const migrationID = (m: KObject): string | undefined => (m.spec?.sendTo?.migrationID ?? m.spec?.receive?.migrationID) as string | undefined;

export function isRunning(m: KObject): boolean {
  switch (phaseOf(m)) {
    case Phase.Failed:
    case Phase.Pending:
    case Phase.Unset:
    case Phase.Succeeded:
    case Phase.WaitingForSync:
    case Phase.Synchronizing:
      return false;
    case Phase.Scheduling:
      return !isDecSource(m);
    default:
      return true;
  }
}

export function targetIsCreated(m: KObject): boolean {
  const p = phaseOf(m);
  return p !== Phase.Unset && p !== Phase.Pending && p !== Phase.WaitingForSync && p !== Phase.Synchronizing;
}

export function targetIsHandedOff(m: KObject): boolean {
  const p = phaseOf(m);
  return targetIsCreated(m) && p !== Phase.Scheduling && p !== Phase.Scheduled;
}

const ms = (vmi: KObject | undefined): any => vmi?.status?.migrationState;

export function isMigrationSynchronized(vmi: KObject, m: KObject): boolean {
  const s = ms(vmi);
  if (isDecentralized(m)) return !!s?.sourceState && !!s.targetState && !!s.sourceState.migrationUID && !!s.targetState.migrationUID;
  return !!s;
}

export function isMigrationSourceSynchronized(vmi: KObject): boolean {
  const s = ms(vmi);
  return !!s?.sourceState && !!s.targetState && !!s.sourceState.migrationUID && !!s.sourceState.pod && s.sourceState.nodeSelectors != null && !!s.sourceState.node;
}

export function isTargetPreparing(vmi: KObject, m: KObject): boolean {
  const s = ms(vmi);
  if (isDecentralized(m)) return isMigrationSynchronized(vmi, m) && !!s.targetState.pod && !!s.targetState.node;
  return !!s && s.migrationUid === m.metadata.uid && !!s.targetNode;
}

/** vmi.IsMigrationSource(): fully synchronized decentralized source. */
export function isMigrationSource(vmi: KObject): boolean {
  const s = ms(vmi);
  return !!s?.targetState?.syncAddress && !!s.targetState.nodeAddress;
}

/** migrations.IsMigrating: started and not ended. */
export function isMigrating(vmi: KObject): boolean {
  const s = ms(vmi);
  return !!s?.startTimestamp && !s.endTimestamp;
}

/** Queue priority (migrationsutil.PriorityFromMigration); re-queue delays follow getRequeueDelayForPriority. */
export function priorityOf(m: KObject): number {
  switch (m.spec?.priority) {
    case "system-critical":
      return 100;
    case "user-triggered":
      return 50;
    case "system-maintenance":
      return 20;
    default:
      return 0;
  }
}

export function requeueDelayMs(m: KObject): number {
  const p = priorityOf(m);
  return p >= 100 ? 1_000 : p >= 50 ? 3_000 : 5_000;
}
