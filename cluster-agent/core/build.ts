// The objects ferry creates, as plain functions of the task (and of what was read): receiver VM,
// blank and clone DataVolumes, copies of Secrets/ConfigMaps, the two VMIMs of a decentralized
// migration, and the VM volume swap of a same-cluster move with its exact revert.
import type { KubeObject } from "../../proto/kube.js";
import type { SourceVolume, Task } from "../../proto/bus/index.js";
import { POD_NETWORK } from "../../proto/names.js";
import { CDI_API, KUBEVIRT_API, type DataVolume, type DataVolumeTemplate, type KubeObj, type Network, type VirtualMachine, type Vmim, type Volume } from "./kube.js";
import {
  ferryLabels,
  movedClaimName,
  ORIGINAL_VOLUMES_ANNOTATION,
  receiveVmimName,
  RESTORE_RUN_STRATEGY_ANNOTATION,
  sendVmimName,
  USE_POPULATOR_ANNOTATION,
  VOLUMES_MIGRATION_ANNOTATION,
} from "./names.js";
import { bytesQuantity } from "./quantity.js";
import { claimName, runStrategyOf } from "./vm.js";

export type PrepareTask = Extract<Task, { role: "target"; action: "prepare" }>;
export type SendTask = Extract<Task, { role: "source"; action: "send" }>;
export type MoveTask = Extract<Task, { role: "storage" | "offline"; action: "migrate" }>;
export type StorageMapping = PrepareTask["storageMap"][number];
export type NetworkMapping = PrepareTask["networkMap"][number];

/** Annotations that describe an object's past on its source cluster, never copied. */
const DROP_ANNOTATION = /^(kubectl\.kubernetes\.io\/last-applied-configuration|kubevirt\.io\/(latest|storage)-observed-api-version|ferry\.dev\/.*)$/;

function keptAnnotations(a: Record<string, string> | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(a ?? {}).filter(([k]) => !DROP_ANNOTATION.test(k)));
}

/** The storage mapping entry for a source class (undefined: the class is kept as is). */
export function storageMappingFor(storageMap: readonly StorageMapping[], storageClass: string | undefined): StorageMapping | undefined {
  return storageClass === undefined ? undefined : storageMap.find((m) => m.source === storageClass);
}

/** Target network of a source network under the map (unmapped: unchanged). */
export function mapNetworkName(networkMap: readonly NetworkMapping[], network: string): string {
  return networkMap.find((m) => m.source === network)?.target ?? network;
}

function remapNetwork(network: Network, networkMap: readonly NetworkMapping[]): Network {
  const source = network.multus?.networkName ?? POD_NETWORK;
  const target = mapNetworkName(networkMap, source);
  if (target === source) return structuredClone(network);
  const { pod: _pod, multus, ...rest } = structuredClone(network);
  if (target === POD_NETWORK) return { ...rest, pod: {} };
  return { ...rest, multus: { ...(multus ?? {}), networkName: target } };
}

/**
 * The receiver VM: the source VM's manifest under the target's name and namespace, runStrategy
 * WaitAsReceiver with the source's run strategy in `kubevirt.io/restore-run-strategy`, firmware
 * (UUID) and MACs as they were, networks remapped, labels kept plus ferry's. dataVolumeTemplates
 * become plain `dataVolume` volumes: ferry creates the blank DataVolumes (same names) itself, before
 * the VM, so they are ready when KubeVirt starts the receiver.
 */
export function receiverVm(task: PrepareTask): VirtualMachine {
  const source = task.sourceVm.manifest as unknown as VirtualMachine;
  const spec = structuredClone(source.spec);
  delete spec.running;
  delete spec.updateVolumesStrategy;
  delete spec.dataVolumeTemplates;
  spec.runStrategy = "WaitAsReceiver";
  spec.template.spec.networks = (spec.template.spec.networks ?? []).map((n) => remapNetwork(n, task.networkMap));
  return {
    apiVersion: KUBEVIRT_API,
    kind: "VirtualMachine",
    metadata: {
      name: task.target.name,
      namespace: task.target.namespace,
      labels: { ...(source.metadata.labels ?? {}), ...ferryLabels(task) },
      annotations: { ...keptAnnotations(source.metadata.annotations), [RESTORE_RUN_STRATEGY_ANNOTATION]: runStrategyOf(source) },
    },
    spec,
  };
}

function storageSpec(volume: SourceVolume, mapping: StorageMapping | undefined, sizeBytes = volume.sizeBytes) {
  const storageClassName = mapping?.target ?? volume.storageClass;
  const volumeMode = mapping?.volumeMode ?? volume.volumeMode;
  const accessModes = mapping?.accessModes ?? volume.accessModes;
  return {
    ...(storageClassName ? { storageClassName } : {}),
    ...(volumeMode ? { volumeMode } : {}),
    ...(accessModes?.length ? { accessModes: [...accessModes] } : {}),
    resources: { requests: { storage: bytesQuantity(sizeBytes) } },
  };
}

/**
 * A blank DataVolume for a source volume: the source's claim name (the VM refers to it), at least
 * the source's size, storage class / volume mode / access modes from the storage map (else the
 * source's), CDI populators so KubeVirt accepts it as a migration destination before it is bound.
 */
export function blankDataVolume(volume: SourceVolume, storageMap: readonly StorageMapping[], namespace: string, labels: Record<string, string>, name = volume.claimName): DataVolume {
  return {
    apiVersion: CDI_API,
    kind: "DataVolume",
    metadata: { name, namespace, labels: { ...labels }, annotations: { [USE_POPULATOR_ANNOTATION]: "true" } },
    spec: { source: { blank: {} }, storage: storageSpec(volume, storageMappingFor(storageMap, volume.storageClass)) },
  };
}

/** A DataVolume that clones a stopped VM's claim into the mapped storage class (offline path). */
export function cloneDataVolume(volume: SourceVolume, storageMap: readonly StorageMapping[], namespace: string, labels: Record<string, string>, name: string): DataVolume {
  return {
    apiVersion: CDI_API,
    kind: "DataVolume",
    metadata: { name, namespace, labels: { ...labels } },
    spec: { source: { pvc: { namespace, name: volume.claimName } }, storage: storageSpec(volume, storageMappingFor(storageMap, volume.storageClass)) },
  };
}

/** A Secret or ConfigMap the VM references, re-created under the same name in the target namespace. */
export function dependencyCopy(object: KubeObject, namespace: string, labels: Record<string, string>): KubeObj {
  const { apiVersion, kind, metadata, status: _status, ...body } = structuredClone(object) as KubeObj & { status?: unknown };
  const annotations = keptAnnotations(metadata.annotations);
  return {
    apiVersion: apiVersion ?? "v1",
    kind: kind ?? "ConfigMap",
    metadata: {
      name: metadata.name,
      namespace,
      labels: { ...(metadata.labels ?? {}), ...labels },
      ...(Object.keys(annotations).length ? { annotations } : {}),
    },
    ...body,
  };
}

/** The target's VMIM: receive the VMI under migrationID (created once the receiver VMI exists). */
export function receiveVmim(task: Pick<PrepareTask, "migrationUid" | "attempt" | "migrationId" | "target">): Vmim {
  return {
    apiVersion: KUBEVIRT_API,
    kind: "VirtualMachineInstanceMigration",
    metadata: { name: receiveVmimName(task.migrationId), namespace: task.target.namespace, labels: ferryLabels(task) },
    spec: { vmiName: task.target.name, receive: { migrationID: task.migrationId } },
  };
}

/** The source's VMIM: send the VMI under the same migrationID to the target's synchronization address. */
export function sendVmim(task: Pick<SendTask, "migrationUid" | "attempt" | "migrationId" | "source" | "connectUrl">): Vmim {
  return {
    apiVersion: KUBEVIRT_API,
    kind: "VirtualMachineInstanceMigration",
    metadata: { name: sendVmimName(task.migrationId), namespace: task.source.namespace, labels: ferryLabels(task) },
    spec: { vmiName: task.source.name, sendTo: { migrationID: task.migrationId, connectURL: task.connectUrl } },
  };
}

// ---------------------------------------------------------------------------------------------
// Same-cluster volume moves (storage live migration and the offline path)

/** One volume that moves: its VM volume name, the claim it leaves and the claim it moves to. */
export interface VolumeMove {
  volume: string;
  from: string;
  to: string;
  source: SourceVolume;
  mapping: StorageMapping;
}

/** The volumes whose storage class the map changes, each with its deterministic destination claim. */
export function volumeMoves(task: Pick<MoveTask, "migrationUid" | "sourceVolumes" | "storageMap">): VolumeMove[] {
  return task.sourceVolumes.flatMap((v) => {
    const mapping = storageMappingFor(task.storageMap, v.storageClass);
    if (!mapping || (mapping.target === v.storageClass && !mapping.volumeMode && !mapping.accessModes)) return [];
    return [{ volume: v.name, from: v.claimName, to: movedClaimName(v.claimName, task.migrationUid), source: v, mapping }];
  });
}

/** What the swap replaced, kept on the VM (annotation) so that abort can put back exactly this. */
export interface OriginalVolumes {
  volumes: Volume[];
  dataVolumeTemplates?: DataVolumeTemplate[];
  updateVolumesStrategy?: string;
}

export function originalVolumes(vm: VirtualMachine): OriginalVolumes | undefined {
  const raw = vm.metadata.annotations?.[ORIGINAL_VOLUMES_ANNOTATION];
  if (!raw) return undefined;
  try {
    return JSON.parse(raw) as OriginalVolumes;
  } catch {
    return undefined;
  }
}

/**
 * The VM with the moving volumes pointed at their destination claims (volumes and the matching
 * dataVolumeTemplates, renamed and re-classed as kubevirt-migration-controller does), the original
 * set recorded in an annotation, and — for a live move — `updateVolumesStrategy: Migration`, all in
 * one update. Idempotent: a VM already swapped by this migration comes back unchanged.
 */
export function swapVolumes(vm: VirtualMachine, moves: readonly VolumeMove[], migrationUid: string, live: boolean): VirtualMachine {
  const out = structuredClone(vm);
  const annotations = (out.metadata.annotations ??= {});
  if (annotations[VOLUMES_MIGRATION_ANNOTATION] === migrationUid) return out;
  const original: OriginalVolumes = { volumes: structuredClone(vm.spec.template.spec.volumes ?? []) };
  if (vm.spec.dataVolumeTemplates) original.dataVolumeTemplates = structuredClone(vm.spec.dataVolumeTemplates);
  if (vm.spec.updateVolumesStrategy) original.updateVolumesStrategy = vm.spec.updateVolumesStrategy;
  annotations[ORIGINAL_VOLUMES_ANNOTATION] = JSON.stringify(original);
  annotations[VOLUMES_MIGRATION_ANNOTATION] = migrationUid;
  const byFrom = new Map(moves.map((m) => [m.from, m]));
  for (const v of out.spec.template.spec.volumes ?? []) {
    const claim = claimName(v);
    const move = claim === undefined ? undefined : byFrom.get(claim);
    if (!move || move.volume !== v.name) continue;
    if (v.dataVolume) v.dataVolume.name = move.to;
    if (v.persistentVolumeClaim) v.persistentVolumeClaim.claimName = move.to;
  }
  for (const t of out.spec.dataVolumeTemplates ?? []) {
    const move = t.metadata.name === undefined ? undefined : byFrom.get(t.metadata.name);
    if (!move) continue;
    t.metadata.name = move.to;
    const storage = t.spec.storage ?? t.spec.pvc;
    if (storage) {
      storage.storageClassName = move.mapping.target;
      if (move.mapping.volumeMode) storage.volumeMode = move.mapping.volumeMode;
      if (move.mapping.accessModes) storage.accessModes = [...move.mapping.accessModes];
    }
  }
  if (live) out.spec.updateVolumesStrategy = "Migration";
  return out;
}

/** Whether the VM's volumes are the swapped ones of this migration (annotation present). */
export function isSwapped(vm: VirtualMachine, migrationUid: string): boolean {
  return vm.metadata.annotations?.[VOLUMES_MIGRATION_ANNOTATION] === migrationUid;
}

/**
 * First step of a cancel: volumes and dataVolumeTemplates exactly as recorded, the update strategy
 * left as it is (KubeVirt cancels a volume migration only on an exact revert under `Migration`).
 */
export function revertVolumes(vm: VirtualMachine): VirtualMachine {
  const original = originalVolumes(vm);
  const out = structuredClone(vm);
  if (!original) return out;
  out.spec.template.spec.volumes = structuredClone(original.volumes);
  if (original.dataVolumeTemplates) out.spec.dataVolumeTemplates = structuredClone(original.dataVolumeTemplates);
  else delete out.spec.dataVolumeTemplates;
  return out;
}

/** Whether the VM's volumes equal the recorded originals (the revert is written). */
export function volumesReverted(vm: VirtualMachine): boolean {
  const original = originalVolumes(vm);
  return original !== undefined && JSON.stringify(vm.spec.template.spec.volumes ?? []) === JSON.stringify(original.volumes);
}

/** Last step of a move (finalize) or a cancel: the original update strategy back, ferry's annotations gone. */
export function forgetSwap(vm: VirtualMachine): VirtualMachine {
  const original = originalVolumes(vm);
  const out = structuredClone(vm);
  if (original?.updateVolumesStrategy) out.spec.updateVolumesStrategy = original.updateVolumesStrategy;
  else delete out.spec.updateVolumesStrategy;
  if (out.metadata.annotations) {
    delete out.metadata.annotations[ORIGINAL_VOLUMES_ANNOTATION];
    delete out.metadata.annotations[VOLUMES_MIGRATION_ANNOTATION];
  }
  return out;
}

/** Bus `SourceVolume`s of a VM's claim volumes (those with a known size). */
export function sourceVolumesOf(volumes: readonly { name: string; claimName?: string; sizeBytes?: number; storageClass?: string; volumeMode?: SourceVolume["volumeMode"]; accessModes?: SourceVolume["accessModes"] }[]): SourceVolume[] {
  return volumes.flatMap((v) =>
    v.claimName && v.sizeBytes !== undefined
      ? [
          {
            name: v.name,
            claimName: v.claimName,
            sizeBytes: v.sizeBytes,
            ...(v.storageClass ? { storageClass: v.storageClass } : {}),
            ...(v.volumeMode ? { volumeMode: v.volumeMode } : {}),
            ...(v.accessModes ? { accessModes: v.accessModes } : {}),
          },
        ]
      : [],
  );
}
