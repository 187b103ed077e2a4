// Can this VM go to that cluster? The broker-level checks shared by plan validation (fixed target)
// and evacuation placement (every candidate). They read only inventories and cluster views; the
// agents' preflight checks (run just before each attempt) are the authority and may find more.
import type { Inventory, InventoryVm, VmRef } from "../../proto/bus/index.js";
import { POD_NETWORK } from "../../proto/names.js";
import type { MigrationPlan } from "../../proto/plan.js";
import type { ClusterView } from "./clusters.js";
import { formatBytes, formatTime, list, vmName } from "./format.js";
import type { Finding, MigrationKind } from "./records.js";

type Spec = MigrationPlan["spec"];

export function finding(severity: Finding["severity"], code: string, message: string, fix: string, field = "", vm?: VmRef): Finding {
  return { code, severity, field, message, fix, ...(vm ? { vm } : {}) };
}

export const hasErrors = (findings: readonly Finding[]): boolean => findings.some((f) => f.severity === "error");

/** Volume kinds that cannot move to another cluster (host-local data, transient dumps, unknown kinds). */
const UNMOVABLE_VOLUME_KINDS = new Set(["hostDisk", "memoryDump", "other"]);

const CLAIM_KINDS = new Set(["dataVolume", "persistentVolumeClaim"]);

export type VmPower = "running" | "stopped" | "unsettled";

/** Running = its VMI runs; stopped = no VMI and meant to be off; anything else is in transition. */
export function vmPower(vm: Pick<InventoryVm, "vmiPhase" | "printableStatus" | "runStrategy">): VmPower {
  if (vm.vmiPhase === "Running") return "running";
  if (vm.vmiPhase === undefined && (vm.printableStatus === "Stopped" || vm.runStrategy === "Halted")) return "stopped";
  return "unsettled";
}

/** The plan's storage mapping for a class, or the class itself when unmapped. */
export function mapStorageClass(spec: Pick<Spec, "storageMap">, cls: string): { target: string; index?: number } {
  const index = spec.storageMap.findIndex((m) => m.source === cls);
  const entry = spec.storageMap[index];
  return entry ? { target: entry.target, index } : { target: cls };
}

export function mapNetwork(spec: Pick<Spec, "networkMap">, network: string): { target: string; index?: number } {
  const index = spec.networkMap.findIndex((m) => m.source === network);
  const entry = spec.networkMap[index];
  return entry ? { target: entry.target, index } : { target: network };
}

function networkExists(inventory: Inventory, network: string, namespace: string): boolean {
  if (network === POD_NETWORK) return true;
  const [ns, name] = network.includes("/") ? (network.split("/", 2) as [string, string]) : [namespace, network];
  return inventory.networks.some((n) => n.namespace === ns && n.name === name);
}

export function nodeArchitecture(inventory: Inventory, node: string | undefined): string | undefined {
  return node === undefined ? undefined : inventory.nodes.find((n) => n.name === node)?.architecture;
}

/** Disk bytes of a VM's claim-backed volumes. */
export function diskBytes(vm: InventoryVm): number {
  return vm.volumes.reduce((sum, v) => sum + (CLAIM_KINDS.has(v.kind) ? (v.sizeBytes ?? 0) : 0), 0);
}

/**
 * Bytes this VM's move creates in each storage class of the target: a decentralized move creates
 * every claim-backed volume there (class per spec.storageMap, an unclassed volume in the target's
 * default class); a storage or offline move copies only the volumes whose mapping changes something
 * (the agent's volumeMoves). A class the bytes cannot be attributed to is left out.
 */
export function storageNeeds(vm: InventoryVm, spec: Pick<Spec, "storageMap">, kind: MigrationKind, targetInventory?: Inventory): Map<string, number> {
  const out = new Map<string, number>();
  for (const v of vm.volumes) {
    if (!CLAIM_KINDS.has(v.kind) || !v.sizeBytes) continue;
    let cls: string | undefined;
    if (kind === "decentralized-live") {
      cls = v.storageClass === undefined ? targetInventory?.storageClasses.find((c) => c.isDefault)?.name : mapStorageClass(spec, v.storageClass).target;
    } else {
      const m = v.storageClass === undefined ? undefined : spec.storageMap.find((e) => e.source === v.storageClass);
      if (m && (m.target !== v.storageClass || m.volumeMode || m.accessModes)) cls = m.target;
    }
    if (cls !== undefined) out.set(cls, (out.get(cls) ?? 0) + v.sizeBytes);
  }
  return out;
}

/** Free space per storage class as the cluster reports it (CSIStorageCapacity); classes without a figure are absent. */
export function classCapacities(inventory: Inventory): Map<string, number> {
  return new Map(inventory.storageClasses.flatMap((c) => (c.capacityBytes === undefined ? [] : [[c.name, c.capacityBytes] as const])));
}

/**
 * A fixed target's classes too small for what the plan puts in them (plus what other plans'
 * migrations promised there): one warning per class. Classes with unknown capacity are not checked.
 */
export function storageCapacityIssues(cluster: string, inventory: Inventory, needs: ReadonlyMap<string, number>, promised: ReadonlyMap<string, number>, spec: Pick<Spec, "storageMap">): Finding[] {
  const out: Finding[] = [];
  const free = classCapacities(inventory);
  for (const [cls, need] of [...needs].sort(([a], [b]) => a.localeCompare(b))) {
    const reported = free.get(cls);
    if (reported === undefined) continue;
    const other = promised.get(cls) ?? 0;
    const room = reported - other;
    if (need <= room) continue;
    const index = spec.storageMap.findIndex((m) => m.target === cls);
    out.push(
      finding(
        "warning",
        "TargetStorageCapacity",
        `the plan puts ${formatBytes(need)} of volumes in storage class ${cls} on cluster ${cluster}, which reports ${formatBytes(reported)} free${other ? ` (${formatBytes(other)} of it promised to other plans' migrations)` : ""}; volumes that do not fit stay Pending and their migrations stall`,
        `free space in ${cls} on ${cluster}, map some volumes to another class (spec.storageMap), or split the plan`,
        index >= 0 ? `spec.storageMap[${index}].target` : "spec.target.cluster",
      ),
    );
  }
  return out;
}

export interface CompatInput {
  vm: InventoryVm;
  source: VmRef;
  target: VmRef;
  kind: MigrationKind;
  sourceInventory: Inventory;
  /** Absent when the target has not reported an inventory: the checks that need it are skipped. */
  targetInventory?: Inventory;
  spec: Pick<Spec, "storageMap" | "networkMap">;
}

/** Problems moving this VM to this target, VM by VM (cluster-wide problems: clusterIssues). */
export function compatIssues(input: CompatInput): Finding[] {
  const { vm, source, target, kind, sourceInventory, targetInventory: tgt, spec } = input;
  const out: Finding[] = [];
  const add = (severity: Finding["severity"], code: string, message: string, fix: string, field = "") => out.push(finding(severity, code, message, fix, field, source));
  const name = vmName(source);
  const live = kind !== "offline";

  if (live) {
    for (const b of vm.migrationBlockers) {
      add("error", "VmNotLiveMigratable", `VM ${name} cannot be live-migrated: ${b.reason}: ${b.message}`, "remove what blocks live migration (see the message), or stop the VM to move it offline within its cluster");
    }
  }
  vm.volumes.forEach((v, i) => {
    const field = `spec.template.spec.volumes[${i}]`;
    if (v.hotpluggable && live) {
      add("error", "VolumeHotplugged", `volume ${v.name} of VM ${name} is hotplugged; KubeVirt cannot migrate hotplugged volumes`, `unplug volume ${v.name} (virtctl removevolume) before migrating`, field);
    }
    if (kind === "decentralized-live" && UNMOVABLE_VOLUME_KINDS.has(v.kind)) {
      add("error", "VolumeUnsupported", `volume ${v.name} of VM ${name} is a ${v.kind} volume, which cannot move to another cluster`, "only PVC/DataVolume, container disks and cloud-init/config volumes move; remove or replace this volume", field);
    }
    if (CLAIM_KINDS.has(v.kind) && v.storageClass !== undefined) {
      const mapped = mapStorageClass(spec, v.storageClass);
      if (tgt && !tgt.storageClasses.some((c) => c.name === mapped.target)) {
        if (mapped.index === undefined) {
          add("error", "StorageClassUnmapped", `volume ${v.name} of VM ${name} uses storage class "${v.storageClass}", which is not in spec.storageMap and does not exist on cluster ${target.cluster}`, `add a spec.storageMap entry {source: ${v.storageClass}, target: <a class of ${target.cluster}>}`, "spec.storageMap");
        } else {
          add("error", "StorageClassMissingOnTarget", `spec.storageMap maps "${v.storageClass}" to "${mapped.target}", which does not exist on cluster ${target.cluster} (volume ${v.name} of VM ${name})`, `use one of ${target.cluster}'s storage classes: ${tgt.storageClasses.map((c) => c.name).join(", ") || "(none reported)"}`, `spec.storageMap[${mapped.index}].target`);
        }
      }
    }
  });
  if (kind === "storage-live" || kind === "offline") {
    const moving = vm.volumes.some((v) => CLAIM_KINDS.has(v.kind) && v.storageClass !== undefined && mapStorageClass(spec, v.storageClass).target !== v.storageClass);
    if (!moving) {
      add("warning", "NoStorageChange", `no volume of VM ${name} changes storage class under spec.storageMap; the move copies each volume into its own class`, "map the VM's storage classes to new ones in spec.storageMap, or leave the VM out of the plan");
    }
  }
  if (kind === "decentralized-live" && tgt) {
    vm.interfaces.forEach((iface, i) => {
      const mapped = mapNetwork(spec, iface.network);
      if (networkExists(tgt, mapped.target, target.namespace)) return;
      const field = mapped.index === undefined ? "spec.networkMap" : `spec.networkMap[${mapped.index}].target`;
      if (mapped.index === undefined) {
        add("error", "NetworkUnmapped", `interface ${iface.name} of VM ${name} uses network "${iface.network}", which is not in spec.networkMap and does not exist on cluster ${target.cluster}`, `add a spec.networkMap entry {source: ${iface.network}, target: <a network of ${target.cluster}>}`, field);
      } else {
        add("error", "NetworkMissingOnTarget", `spec.networkMap maps "${iface.network}" to "${mapped.target}", which does not exist on cluster ${target.cluster} (interface ${iface.name} of VM ${name}; spec.template.spec.networks[${i}])`, `create the NetworkAttachmentDefinition on ${target.cluster} or map to an existing one`, field);
      }
    });
  }
  if (kind === "decentralized-live" && tgt) {
    const arch = nodeArchitecture(sourceInventory, vm.node);
    if (arch && !tgt.nodes.some((n) => n.schedulable && n.architecture === arch)) {
      add("error", "ArchitectureUnavailable", `VM ${name} runs on ${arch}; cluster ${target.cluster} has no schedulable ${arch} node`, `choose a target cluster with ${arch} nodes`);
    }
    const existing = tgt.vms.find((o) => o.namespace === target.namespace && o.name === target.name);
    if (existing && !(target.cluster === source.cluster && existing.uid === vm.uid)) {
      add("error", "TargetNameCollision", `cluster ${target.cluster} already has a VM ${vmName(target)}`, "delete or rename that VM, or set spec.target.namespace to another namespace");
    }
    const macs = new Set(vm.interfaces.flatMap((i) => (i.macAddress ? [i.macAddress] : [])));
    for (const other of tgt.vms) {
      if (other.uid === vm.uid) continue;
      const clash = other.interfaces.filter((i) => i.macAddress && macs.has(i.macAddress)).map((i) => i.macAddress as string);
      if (clash.length > 0) {
        add("error", "MacAddressCollision", `MAC ${list(clash)} of VM ${name} is already used by VM ${other.namespace}/${other.name} on cluster ${target.cluster}`, `change the MAC address of one of them, or free it on ${target.cluster}`);
      }
    }
    if (!tgt.namespaces.includes(target.namespace)) {
      add("warning", "TargetNamespaceMissing", `namespace ${target.namespace} does not exist on cluster ${target.cluster}; the agent creates it`, "");
    }
  }
  return out;
}

/**
 * Problems with a cluster as the source or target of migrations of `kind` (gate, capability,
 * synchronization address, storage-migration prerequisites, availability, cordon). `now` words
 * "last seen" times.
 */
export function clusterIssues(
  name: string,
  view: ClusterView | undefined,
  inventory: Inventory | undefined,
  role: "source" | "target",
  kinds: ReadonlySet<MigrationKind>,
  now: Date,
  field: string,
  /** An evacuation of this (source) cluster: a cordon does not hold it back. */
  draining = false,
): Finding[] {
  const out: Finding[] = [];
  if (!view || view.availability === "unknown") {
    out.push(finding("error", "ClusterUnknown", `${role} cluster ${name} is not registered with the broker`, `enroll it (ferryctl cluster add ${name}) and start its agent, or fix the cluster name`, field));
    return out;
  }
  if (view.availability === "unreachable") {
    const seen = view.lastSeen ? ` since ${formatTime(view.lastSeen, now)}` : "";
    out.push(
      inventory
        ? finding("warning", "ClusterUnreachable", `${role} cluster ${name} has not sent a heartbeat${seen}; its migrations wait until it is back`, `check the ferry agent on ${name} and its connection to NATS`, field)
        : finding("error", "ClusterUnreachable", `${role} cluster ${name} is unreachable${seen} and has never reported an inventory`, `check the ferry agent on ${name} and its connection to NATS`, field),
    );
  }
  if (view.cordon && !draining) {
    out.push(finding("warning", "ClusterCordoned", `${role} cluster ${name} is cordoned (${view.cordon.reason}); its migrations wait until it is uncordoned`, `ferryctl cluster uncordon ${name}`, field));
  }
  const need = (capability: ClusterView["capabilities"][number], why: string) => {
    if (view.capabilities.length > 0 && !view.capabilities.includes(capability)) {
      out.push(finding("error", "AgentLacksCapability", `the agent of cluster ${name} does not offer ${capability}, needed for ${why}`, `upgrade the ferry agent on ${name}`, field));
    }
  };
  if (kinds.has("decentralized-live")) {
    need("decentralized-live-migration", "live migration between clusters");
    if (!view.decentralizedLiveMigration) {
      out.push(finding("error", "DecentralizedLiveMigrationDisabled", `KubeVirt's DecentralizedLiveMigration feature gate is off on ${role} cluster ${name}`, `add DecentralizedLiveMigration to spec.configuration.developerConfiguration.featureGates of the KubeVirt CR on ${name}`, field));
    }
    if (view.synchronizationAddresses.length === 0) {
      out.push(
        finding(
          role === "target" ? "error" : "warning",
          "NoSynchronizationAddress",
          `KubeVirt on ${role} cluster ${name} reports no status.synchronizationAddresses (virt-synchronization-controller not running or not leading)`,
          `check the virt-synchronization-controller deployment in the KubeVirt namespace of ${name}`,
          field,
        ),
      );
    }
  }
  if (role === "source" && kinds.has("storage-live")) {
    need("storage-live-migration", "storage live migration");
    const kv = inventory?.kubevirt;
    if (kv && !kv.workloadUpdateMethods.includes("LiveMigrate")) {
      out.push(finding("error", "LiveMigrateUpdatesDisabled", `KubeVirt on ${name} does not list LiveMigrate in workloadUpdateStrategy.workloadUpdateMethods, so no volume migration starts`, `add LiveMigrate to spec.workloadUpdateStrategy.workloadUpdateMethods of the KubeVirt CR on ${name}`, field));
    }
    if (kv && kv.vmRolloutStrategy !== "LiveUpdate") {
      out.push(finding("error", "VmRolloutStrategyNotLiveUpdate", `KubeVirt on ${name} has vmRolloutStrategy "${kv.vmRolloutStrategy}"; volume migration needs LiveUpdate`, `set spec.configuration.vmRolloutStrategy: LiveUpdate in the KubeVirt CR on ${name}`, field));
    }
    if (inventory && inventory.nodes.filter((n) => n.schedulable).length < 2) {
      out.push(finding("error", "TooFewNodes", `cluster ${name} has fewer than two schedulable nodes; storage live migration moves the VM to another node`, `add or uncordon a node on ${name}`, field));
    }
  }
  if (role === "source" && kinds.has("offline")) need("offline-migration", "moving stopped VMs");
  return out;
}
