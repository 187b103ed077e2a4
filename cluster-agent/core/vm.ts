// What a VirtualMachine is made of, as ferry needs it: volumes with their kinds and claims,
// interfaces and MACs, memory and vCPUs, the Secrets/ConfigMaps it references, and every reason it
// cannot be live-migrated. Pure functions of the objects read from the API server.
import type { InventoryVm } from "../../proto/bus/index.js";
import { AccessMode, VolumeMode } from "../../proto/kube.js";
import { POD_NETWORK } from "../../proto/names.js";
import type { z } from "zod";
import type { InventoryVolume, InventoryInterface, VolumeKind } from "../../proto/bus/agent.js";
import { condition, type DataVolume, type Pvc, type Volume, type VirtualMachine, type VirtualMachineInstance } from "./kube.js";
import { quantityBytes } from "./quantity.js";

export type VmVolume = z.infer<typeof InventoryVolume>;
export type VmInterface = z.infer<typeof InventoryInterface>;
export type VmVolumeKind = z.infer<typeof VolumeKind>;
export type MigrationBlocker = InventoryVm["migrationBlockers"][number];

/** Volume source keys in the order KubeVirt's Volume struct lists them; the first one present names the kind. */
const KNOWN_KINDS: readonly Exclude<VmVolumeKind, "other">[] = [
  "dataVolume",
  "persistentVolumeClaim",
  "containerDisk",
  "cloudInitNoCloud",
  "cloudInitConfigDrive",
  "configMap",
  "secret",
  "serviceAccount",
  "sysprep",
  "downwardAPI",
  "downwardMetrics",
  "emptyDisk",
  "ephemeral",
  "hostDisk",
  "memoryDump",
];

export const CLAIM_KINDS: ReadonlySet<VmVolumeKind> = new Set(["dataVolume", "persistentVolumeClaim"]);

export function volumeKind(volume: Volume): VmVolumeKind {
  return KNOWN_KINDS.find((k) => volume[k] !== undefined && volume[k] !== null) ?? "other";
}

/** PVC (= DataVolume) name behind a dataVolume / persistentVolumeClaim volume. */
export function claimName(volume: Volume): string | undefined {
  return volume.dataVolume?.name ?? volume.persistentVolumeClaim?.claimName;
}

/** The VM's run strategy; the deprecated `spec.running` maps to Always/Halted as KubeVirt does. */
export function runStrategyOf(vm: VirtualMachine): string {
  if (vm.spec.runStrategy) return vm.spec.runStrategy;
  return vm.spec.running === true ? "Always" : "Halted";
}

/** Objects the volume facts are looked up in: the VM's PVCs and DataVolumes (same namespace). */
export interface ClaimLookup {
  pvcs?: readonly Pvc[];
  dataVolumes?: readonly DataVolume[];
}

const asAccessModes = (v: unknown): VmVolume["accessModes"] => {
  if (!Array.isArray(v)) return undefined;
  const modes = v.filter((m): m is AccessMode => AccessMode.safeParse(m).success);
  return modes.length > 0 ? modes : undefined;
};
const asVolumeMode = (v: unknown): VmVolume["volumeMode"] => (VolumeMode.safeParse(v).success ? (v as VolumeMode) : undefined);

/**
 * Every volume of the VM (its template: what the next VMI and a receiver get), with kind, claim,
 * size, storage class, volume mode and access modes taken from the VMI's volumeStatus, the bound
 * PVC, the DataVolume or the dataVolumeTemplate — the first that knows.
 */
export function vmVolumes(vm: VirtualMachine, vmi?: VirtualMachineInstance, lookup: ClaimLookup = {}): VmVolume[] {
  return (vm.spec.template.spec.volumes ?? []).map((volume) => {
    const kind = volumeKind(volume);
    const out: VmVolume = { name: volume.name, kind };
    const claim = claimName(volume);
    const status = vmi?.status?.volumeStatus?.find((s) => s.name === volume.name);
    const hotplug = volume.dataVolume?.hotpluggable === true || volume.persistentVolumeClaim?.hotpluggable === true || status?.hotplugVolume !== undefined;
    if (hotplug) out.hotpluggable = true;
    if (!claim || !CLAIM_KINDS.has(kind)) return out;
    out.claimName = claim;
    const pvc = lookup.pvcs?.find((p) => p.metadata.name === claim);
    const dv = lookup.dataVolumes?.find((d) => d.metadata.name === claim);
    const template = vm.spec.dataVolumeTemplates?.find((t) => t.metadata.name === claim);
    const dvStorage = dv?.spec.storage ?? dv?.spec.pvc ?? template?.spec.storage ?? template?.spec.pvc;
    const info = status?.persistentVolumeClaimInfo;
    const size =
      quantityBytes(info?.capacity?.storage) ??
      quantityBytes(pvc?.status?.capacity?.storage) ??
      quantityBytes(pvc?.spec.resources?.requests?.storage) ??
      quantityBytes(dvStorage?.resources?.requests?.storage);
    if (size !== undefined) out.sizeBytes = size;
    const storageClass = pvc?.spec.storageClassName ?? dvStorage?.storageClassName;
    if (storageClass) out.storageClass = storageClass;
    const volumeMode = asVolumeMode(info?.volumeMode) ?? asVolumeMode(pvc?.spec.volumeMode) ?? asVolumeMode(dvStorage?.volumeMode);
    if (volumeMode) out.volumeMode = volumeMode;
    const accessModes = asAccessModes(info?.accessModes) ?? asAccessModes(pvc?.status?.accessModes) ?? asAccessModes(pvc?.spec.accessModes) ?? asAccessModes(dvStorage?.accessModes);
    if (accessModes) out.accessModes = accessModes;
    return out;
  });
}

/** `pod`, or the Multus networkName as written (`<ns>/<name>` or `<name>` in the VM's namespace). */
export function networkName(network: { pod?: unknown; multus?: { networkName: string } }): string {
  return network.multus?.networkName ?? POD_NETWORK;
}

/** Interfaces with their network and MAC (the spec's, else the one the running VMI reports). */
export function vmInterfaces(vm: VirtualMachine, vmi?: VirtualMachineInstance): VmInterface[] {
  const spec = vm.spec.template.spec;
  return (spec.domain.devices?.interfaces ?? []).map((iface) => {
    const network = spec.networks?.find((n) => n.name === iface.name);
    const out: VmInterface = { name: iface.name, network: network ? networkName(network) : POD_NETWORK };
    const mac = (iface.macAddress ?? vmi?.status?.interfaces?.find((i) => i.name === iface.name)?.mac)?.toLowerCase();
    if (mac && /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/.test(mac)) out.macAddress = mac;
    return out;
  });
}

/** Guest memory: domain.memory.guest, else the memory request, else the limit; 0 if none is set. */
export function vmMemoryBytes(vm: VirtualMachine): number {
  const d = vm.spec.template.spec.domain;
  return quantityBytes(d.memory?.guest) ?? quantityBytes(d.resources?.requests?.memory) ?? quantityBytes(d.resources?.limits?.memory) ?? 0;
}

/** vCPUs: sockets × cores × threads (each default 1), else the CPU request/limit rounded up, else 1. */
export function vmCpu(vm: VirtualMachine): number {
  const d = vm.spec.template.spec.domain;
  if (d.cpu) return (d.cpu.sockets ?? 1) * (d.cpu.cores ?? 1) * (d.cpu.threads ?? 1);
  const cpu = quantityBytes(d.resources?.requests?.cpu) ?? quantityBytes(d.resources?.limits?.cpu);
  return cpu === undefined ? 1 : Math.max(1, cpu);
}

/** A Secret or ConfigMap the VM references by name (copied to the target under the same name). */
export interface Dependency {
  kind: "Secret" | "ConfigMap";
  name: string;
  /** Where the VM names it. */
  field: string;
}

/** Every Secret and ConfigMap the VM's template references, once each, in spec order. */
export function vmDependencies(vm: VirtualMachine): Dependency[] {
  const spec = vm.spec.template.spec;
  const out: Dependency[] = [];
  const add = (kind: Dependency["kind"], name: unknown, field: string) => {
    if (typeof name === "string" && name && !out.some((d) => d.kind === kind && d.name === name)) out.push({ kind, name, field });
  };
  (spec.volumes ?? []).forEach((v, i) => {
    const f = `spec.template.spec.volumes[${i}]`;
    add("ConfigMap", v.configMap?.name, `${f}.configMap.name`);
    add("Secret", v.secret?.secretName, `${f}.secret.secretName`);
    for (const key of ["cloudInitNoCloud", "cloudInitConfigDrive"] as const) {
      const ci = v[key] as { userDataSecretRef?: { name?: string }; networkDataSecretRef?: { name?: string } } | undefined;
      add("Secret", ci?.userDataSecretRef?.name, `${f}.${key}.userDataSecretRef.name`);
      add("Secret", ci?.networkDataSecretRef?.name, `${f}.${key}.networkDataSecretRef.name`);
    }
    add("ConfigMap", v.sysprep?.configMap?.name, `${f}.sysprep.configMap.name`);
    add("Secret", v.sysprep?.secret?.name, `${f}.sysprep.secret.name`);
  });
  (spec.accessCredentials ?? []).forEach((c, i) => {
    add("Secret", c.sshPublicKey?.source?.secret?.secretName, `spec.template.spec.accessCredentials[${i}].sshPublicKey.source.secret.secretName`);
    add("Secret", c.userPassword?.source?.secret?.secretName, `spec.template.spec.accessCredentials[${i}].userPassword.source.secret.secretName`);
  });
  return out;
}

/** Volume kinds that cannot be moved by a live migration at all (host-local data, dumps, unknown). */
export const UNMOVABLE_KINDS: ReadonlySet<VmVolumeKind> = new Set(["hostDisk", "memoryDump", "other"]);

/**
 * Why KubeVirt or ferry would refuse to live-migrate this VM (empty if nothing blocks it):
 * shareable, LUN and filesystem (virtiofs) disks, hotplugged volumes, volumes that are neither a
 * PVC/DataVolume nor regenerated on the target, host devices/GPUs, and the VMI's LiveMigratable=False
 * condition. DisksNotLiveMigratable is not a blocker: both decentralized and storage migration copy
 * the disks (KubeVirt admits decentralized migrations despite it).
 */
export function migrationBlockers(vm: VirtualMachine, vmi?: VirtualMachineInstance): MigrationBlocker[] {
  const spec = vmi?.spec ?? vm.spec.template.spec;
  const devices = spec.domain.devices ?? {};
  const out: MigrationBlocker[] = [];
  const add = (reason: string, message: string) => {
    if (!out.some((b) => b.reason === reason && b.message === message)) out.push({ reason, message });
  };
  for (const disk of devices.disks ?? []) {
    if (disk.shareable) add("ShareableDisk", `disk ${disk.name} is shareable (spec.template.spec.domain.devices.disks[name=${disk.name}].shareable); shared disks cannot be migrated`);
    if (disk.lun) add("LunDisk", `disk ${disk.name} is a LUN (spec.template.spec.domain.devices.disks[name=${disk.name}].lun); LUN disks cannot be migrated`);
  }
  for (const fs of devices.filesystems ?? []) {
    add("FilesystemDevice", `filesystem ${fs.name} (virtiofs, spec.template.spec.domain.devices.filesystems) cannot be migrated`);
  }
  if ((devices.hostDevices?.length ?? 0) > 0) add("HostDevice", "the VM has host devices (spec.template.spec.domain.devices.hostDevices), which cannot be migrated");
  if ((devices.gpus?.length ?? 0) > 0) add("HostDevice", "the VM has GPUs (spec.template.spec.domain.devices.gpus), which cannot be migrated");
  const hotplugged = new Set((vmi?.status?.volumeStatus ?? []).filter((s) => s.hotplugVolume !== undefined).map((s) => s.name));
  for (const volume of spec.volumes ?? []) {
    const kind = volumeKind(volume);
    if (volume.dataVolume?.hotpluggable || volume.persistentVolumeClaim?.hotpluggable || hotplugged.has(volume.name)) {
      add("HotpluggedVolume", `volume ${volume.name} is hotplugged; KubeVirt cannot migrate hotplugged volumes`);
    }
    if (UNMOVABLE_KINDS.has(kind)) {
      add("VolumeNotMovable", `volume ${volume.name} is a ${kind === "other" ? "volume of a kind ferry does not know" : `${kind} volume`}; only PVC/DataVolume, containerDisk, emptyDisk and generated (cloud-init, configMap, secret, serviceAccount, sysprep, downwardAPI) volumes can move`);
    }
  }
  const live = condition(vmi, "LiveMigratable");
  if (live?.status === "False" && live.reason !== "DisksNotLiveMigratable") {
    add(live.reason ?? "NotLiveMigratable", live.message ?? "the VMI reports LiveMigratable=False");
  }
  return out;
}

/** The VM as the inventory reports it. */
export function inventoryVm(vm: VirtualMachine, vmi?: VirtualMachineInstance, lookup: ClaimLookup = {}): InventoryVm {
  const out: InventoryVm = {
    namespace: vm.metadata.namespace ?? "",
    name: vm.metadata.name ?? "",
    uid: vm.metadata.uid ?? "",
    runStrategy: runStrategyOf(vm),
    printableStatus: vm.status?.printableStatus ?? "",
    memoryBytes: vmMemoryBytes(vm),
    cpu: vmCpu(vm),
    volumes: vmVolumes(vm, vmi, lookup),
    interfaces: vmInterfaces(vm, vmi),
    migrationBlockers: migrationBlockers(vm, vmi),
  };
  if (vm.metadata.labels && Object.keys(vm.metadata.labels).length > 0) out.labels = { ...vm.metadata.labels };
  if (vmi?.status?.phase) out.vmiPhase = vmi.status.phase;
  if (vmi?.status?.nodeName) out.node = vmi.status.nodeName;
  return out;
}
