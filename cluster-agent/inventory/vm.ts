// One VirtualMachine (and its VMI) as the inventory lists it. Pure.
import type { InventoryVm } from "../../proto/bus/index.js";
import { AccessMode, VolumeMode } from "../../proto/kube.js";
import { VolumeKind } from "../../proto/bus/index.js";
import { quantity } from "./kubevirt.js";

export interface KubeVm {
  metadata?: { name?: string; namespace?: string; uid?: string; labels?: Record<string, string> };
  spec?: {
    runStrategy?: string;
    running?: boolean;
    template?: { spec?: VmiSpec };
  };
  status?: { printableStatus?: string };
}

export interface VmiSpec {
  domain?: {
    cpu?: { sockets?: number; cores?: number; threads?: number };
    memory?: { guest?: string };
    resources?: { requests?: Record<string, string> };
    devices?: { interfaces?: { name: string; macAddress?: string }[] };
  };
  volumes?: ({ name: string } & Record<string, unknown>)[];
  networks?: { name: string; pod?: object; multus?: { networkName?: string } }[];
}

export interface KubeVmi {
  metadata?: { name?: string; namespace?: string };
  status?: { phase?: string; nodeName?: string; conditions?: { type: string; status: string; reason?: string; message?: string }[] };
}

/** What the inventory knows of a PVC / DataVolume. */
export interface ClaimInfo {
  sizeBytes?: number;
  storageClass?: string;
  volumeMode?: string;
  accessModes?: string[];
}

type Volume = InventoryVm["volumes"][number];
type Interface = InventoryVm["interfaces"][number];

const KINDS = new Set<string>(VolumeKind.options);

export function runStrategyOf(vm: KubeVm): string {
  if (vm.spec?.runStrategy) return vm.spec.runStrategy;
  if (vm.spec?.running === true) return "Always";
  return "Halted";
}

function volumes(vm: KubeVm, claim: (ns: string, name: string) => ClaimInfo | undefined): Volume[] {
  const ns = vm.metadata?.namespace ?? "";
  return (vm.spec?.template?.spec?.volumes ?? []).map((v) => {
    const key = Object.keys(v).find((k) => k !== "name") ?? "other";
    const kind = (KINDS.has(key) ? key : "other") as Volume["kind"];
    const out: Volume = { name: v.name, kind };
    const src = (v[key] ?? {}) as { name?: string; claimName?: string; hotpluggable?: boolean };
    const claimName = kind === "dataVolume" ? src.name : kind === "persistentVolumeClaim" ? src.claimName : undefined;
    if (claimName) {
      out.claimName = claimName;
      const c = claim(ns, claimName);
      if (c?.sizeBytes !== undefined) out.sizeBytes = c.sizeBytes;
      if (c?.storageClass) out.storageClass = c.storageClass;
      const mode = VolumeMode.safeParse(c?.volumeMode);
      if (mode.success) out.volumeMode = mode.data;
      const modes = (c?.accessModes ?? []).filter((m) => AccessMode.safeParse(m).success) as Volume["accessModes"];
      if (modes?.length) out.accessModes = modes;
    }
    if (src.hotpluggable) out.hotpluggable = true;
    return out;
  });
}

function interfaces(vm: KubeVm): Interface[] {
  const spec = vm.spec?.template?.spec;
  const nets = new Map((spec?.networks ?? []).map((n) => [n.name, n]));
  const ns = vm.metadata?.namespace ?? "";
  return (spec?.domain?.devices?.interfaces ?? []).map((i) => {
    const net = nets.get(i.name);
    const multus = net?.multus?.networkName;
    const out: Interface = { name: i.name, network: multus ? (multus.includes("/") ? multus : `${ns}/${multus}`) : "pod" };
    if (i.macAddress) out.macAddress = i.macAddress.toLowerCase().replace(/-/g, ":");
    return out;
  });
}

/** KubeVirt's own verdict (LiveMigratable=False) and volumes a cross-cluster move cannot take. */
export function migrationBlockers(vm: KubeVm, vmi: KubeVmi | undefined, vols: Volume[]): InventoryVm["migrationBlockers"] {
  const out: InventoryVm["migrationBlockers"] = [];
  const lm = vmi?.status?.conditions?.find((c) => c.type === "LiveMigratable");
  if (lm?.status === "False") out.push({ reason: lm.reason ?? "NotLiveMigratable", message: (lm.message ?? "KubeVirt reports the VMI is not live-migratable").slice(0, 4096) });
  for (const v of vols) {
    if (v.hotpluggable) out.push({ reason: "HotpluggedVolume", message: `volume ${v.name} is hotplugged; unplug it or make it part of the VM spec` });
    if (v.kind === "hostDisk" || v.kind === "other") out.push({ reason: "UnmovableVolume", message: `volume ${v.name} (${v.kind}) cannot be moved to another cluster` });
  }
  return out.slice(0, 32);
}

export function vmSummary(vm: KubeVm, vmi: KubeVmi | undefined, claim: (ns: string, name: string) => ClaimInfo | undefined): InventoryVm {
  const domain = vm.spec?.template?.spec?.domain;
  const cpu = domain?.cpu ? (domain.cpu.sockets ?? 1) * (domain.cpu.cores ?? 1) * (domain.cpu.threads ?? 1) : 1;
  const vols = volumes(vm, claim);
  const out: InventoryVm = {
    namespace: vm.metadata!.namespace!,
    name: vm.metadata!.name!,
    uid: vm.metadata?.uid || "unknown",
    runStrategy: runStrategyOf(vm),
    printableStatus: vm.status?.printableStatus ?? "Unknown",
    memoryBytes: quantity(domain?.memory?.guest) ?? quantity(domain?.resources?.requests?.["memory"]) ?? 0,
    cpu,
    volumes: vols,
    interfaces: interfaces(vm),
    migrationBlockers: migrationBlockers(vm, vmi, vols),
  };
  if (vm.metadata?.labels && Object.keys(vm.metadata.labels).length) out.labels = { ...vm.metadata.labels };
  if (vmi?.status?.phase) out.vmiPhase = vmi.status.phase;
  if (vmi?.status?.nodeName) out.node = vmi.status.nodeName;
  return out;
}
