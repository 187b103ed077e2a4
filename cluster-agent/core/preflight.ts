// Preflight: every reason a VM cannot go, as a pure function of the objects the agent read. Each
// issue names the field and the fix. No side effects; the shell reads, this decides.
import type { Issue, PreflightRequest, PreflightResult } from "../../proto/bus/index.js";
import { BUS_API_VERSION } from "../../proto/bus/index.js";
import { POD_NETWORK } from "../../proto/names.js";
import { networkMappingFor, sourceVolumesOf, storageMappingFor, volumeMoves } from "./build.js";
import { condition, type DataVolume, type KubeObj, type KubeVirtCr, type Node, type Pvc, type VirtualMachine, type VirtualMachineInstance } from "./kube.js";
import { isFerryManaged, MIGRATION_LABEL } from "./names.js";
import { formatBytes } from "../../proto/units.js";
import { parseQuantity, quantityBytes } from "./quantity.js";
import { CLAIM_KINDS, migrationBlockers, vmDependencies, vmInterfaces, vmVolumes } from "./vm.js";

/** What the shell read for one preflight (namespaced lists are of the namespace the side acts in). */
export interface PreflightObserved {
  kubevirt?: KubeVirtCr;
  /** Source side: the source VM; target side: whatever VM has the target's name. */
  vm?: VirtualMachine;
  vmi?: VirtualMachineInstance;
  namespaceExists: boolean;
  pvcs: readonly Pvc[];
  dataVolumes: readonly DataVolume[];
  secrets: readonly KubeObj[];
  configMaps: readonly KubeObj[];
  storageClasses: readonly string[];
  /** Free bytes per storage class from CSIStorageCapacity (inventory/build classCapacities); a class without a figure is absent. */
  classCapacities: ReadonlyMap<string, number>;
  /** NetworkAttachmentDefinitions. */
  networks: readonly { namespace: string; name: string }[];
  nodes: readonly Node[];
  /** Every VM and VMI of the cluster (MAC collisions). */
  vms: readonly VirtualMachine[];
  vmis: readonly VirtualMachineInstance[];
}

export const DECENTRALIZED_GATE = "DecentralizedLiveMigration";

/** The gate is effectively on: enabled explicitly, or Beta (KubeVirt ≥ v1.10) and not disabled. */
export function decentralizedGateOn(kv: KubeVirtCr | undefined): boolean {
  const dev = kv?.spec?.configuration?.developerConfiguration;
  if (dev?.featureGates?.includes(DECENTRALIZED_GATE)) return true;
  if (dev?.disabledFeatureGates?.includes(DECENTRALIZED_GATE)) return false;
  const m = /^v?(\d+)\.(\d+)/.exec(kv?.status?.observedKubeVirtVersion ?? "");
  return m !== null && (Number(m[1]) > 1 || Number(m[2]) >= 10);
}

export function nodeSchedulable(n: Node): boolean {
  return n.spec?.unschedulable !== true && condition(n, "Ready")?.status === "True";
}

export function nodeArchitecture(n: Node): string {
  return n.metadata.labels?.["kubernetes.io/arch"] ?? "amd64";
}

function networkExists(observed: PreflightObserved, network: string, namespace: string): boolean {
  if (network === POD_NETWORK) return true;
  const [ns, name] = network.includes("/") ? (network.split("/", 2) as [string, string]) : [namespace, network];
  return observed.networks.some((n) => n.namespace === ns && n.name === name);
}

function claimBytes(observed: PreflightObserved, name: string): number | undefined {
  const pvc = observed.pvcs.find((p) => p.metadata.name === name);
  const dv = observed.dataVolumes.find((d) => d.metadata.name === name);
  return quantityBytes(pvc?.status?.capacity?.storage) ?? quantityBytes(pvc?.spec.resources?.requests?.storage) ?? quantityBytes((dv?.spec.storage ?? dv?.spec.pvc)?.resources?.requests?.storage);
}

export function preflightResult(issues: Issue[]): PreflightResult {
  return { apiVersion: BUS_API_VERSION, kind: "PreflightResult", ok: !issues.some((i) => i.severity === "error"), issues: issues.slice(0, 1000) };
}

/** Every issue for this request, given what was read. */
export function preflightIssues(req: PreflightRequest, observed: PreflightObserved): Issue[] {
  const issues: Issue[] = [];
  const add = (severity: Issue["severity"], code: string, field: string, message: string, fix: string) => issues.push({ code, severity, field, message, fix });
  const src = `${req.source.namespace}/${req.source.name}`;
  const tgt = `${req.target.namespace}/${req.target.name}`;
  const kv = observed.kubevirt;

  if (!kv) {
    add("error", "KubeVirtMissing", "", `cluster ${req.cluster} has no KubeVirt CR`, "install KubeVirt (the agent reads the KubeVirt CR for the feature gate and synchronization addresses)");
    return issues;
  }
  const decentralized = req.migrationKind === "decentralized-live";
  if (decentralized) {
    if (!decentralizedGateOn(kv)) {
      add("error", "DecentralizedLiveMigrationDisabled", "spec.configuration.developerConfiguration.featureGates", `KubeVirt's ${DECENTRALIZED_GATE} feature gate is off on cluster ${req.cluster}`, `add ${DECENTRALIZED_GATE} to spec.configuration.developerConfiguration.featureGates of the KubeVirt CR ${kv.metadata.namespace}/${kv.metadata.name}`);
    }
    if (!kv.status?.synchronizationAddresses?.length) {
      add(req.side === "target" ? "error" : "warning", "NoSynchronizationAddress", "status.synchronizationAddresses", `KubeVirt on cluster ${req.cluster} reports no status.synchronizationAddresses (virt-synchronization-controller not running or not leading)`, `check the virt-synchronization-controller deployment in namespace ${kv.metadata.namespace}`);
    }
  }

  if (req.side === "source") sourceSide();
  else targetSide();
  return issues;

  function sourceSide() {
    const vm = observed.vm;
    if (!vm) {
      add("error", "VmNotFound", "source", `VM ${src} does not exist on cluster ${req.cluster}`, "check the plan's source namespace and name");
      return;
    }
    const vmi = observed.vmi;
    const running = vmi?.status?.phase === "Running";
    const live = req.migrationKind !== "offline";
    if (live && !running) {
      add("error", "VmNotRunning", "source", `VM ${src} is not running (VMI ${vmi ? `phase ${vmi.status?.phase ?? "unknown"}` : "absent"}); only a running VM can be live-migrated`, "start the VM, or move it stopped with the offline path (migrationKind offline, within its cluster)");
    }
    if (!live && vmi && vmi.status?.phase !== "Succeeded" && vmi.status?.phase !== "Failed") {
      add("error", "VmRunning", "source", `VM ${src} has a VMI (phase ${vmi.status?.phase ?? "unknown"}); the offline path copies the disks of a stopped VM`, `stop the VM first (virtctl stop ${req.source.name} -n ${req.source.namespace}), or use storage live migration`);
    }
    if (live) {
      for (const b of migrationBlockers(vm, running ? vmi : undefined)) {
        add("error", "VmNotLiveMigratable", "spec.template.spec", `VM ${src} cannot be live-migrated: ${b.reason}: ${b.message}`, "remove what blocks live migration (see the message), or stop the VM and move it with the offline path within its cluster");
      }
    }
    for (const dep of vmDependencies(vm)) {
      const list = dep.kind === "Secret" ? observed.secrets : observed.configMaps;
      if (!list.some((o) => o.metadata.name === dep.name)) {
        add("error", "DependencyMissing", dep.field, `VM ${src} refers to ${dep.kind} ${req.source.namespace}/${dep.name}, which does not exist; ferry copies it to the target and cannot`, `create ${dep.kind} ${req.source.namespace}/${dep.name} or remove the reference from the VM`);
      }
    }
    const volumes = vmVolumes(vm, vmi, observed);
    volumes.forEach((v, i) => {
      const field = `spec.template.spec.volumes[${i}]`;
      if (!CLAIM_KINDS.has(v.kind)) return;
      if (v.sizeBytes === undefined) {
        add("error", "VolumeSizeUnknown", field, `the size of volume ${v.name} (claim ${v.claimName}) of VM ${src} cannot be read: no bound PVC, DataVolume or template request`, `make sure PVC ${req.source.namespace}/${v.claimName} exists and is bound`);
      }
      const mapping = storageMappingFor(req.storageMap, v.storageClass);
      if (!mapping && decentralized) {
        add("warning", "StorageClassUnmapped", "storageMap", `volume ${v.name} of VM ${src} uses storage class "${v.storageClass ?? "(none)"}", which the storage map does not map; the target must have a class of that name`, `add a storageMap entry {source: ${v.storageClass ?? "<class>"}, target: <a class of ${req.target.cluster}>}`);
      }
    });
    if (decentralized) {
      vmInterfaces(vm, vmi).forEach((iface, i) => {
        if (iface.network === POD_NETWORK || networkMappingFor(req.networkMap, iface.network, req.source.namespace)) return;
        add("warning", "NetworkUnmapped", `spec.template.spec.networks[${i}]`, `interface ${iface.name} of VM ${src} uses network "${iface.network}", which the network map does not map; the target must have a NetworkAttachmentDefinition of that name`, `add a networkMap entry {source: ${iface.network}, target: <a network of ${req.target.cluster}>}`);
      });
    }
    if (req.migrationKind === "storage-live" || req.migrationKind === "offline") sameClusterMove(vm, vmi, volumes);
  }

  function sameClusterMove(vm: VirtualMachine, vmi: VirtualMachineInstance | undefined, volumes: ReturnType<typeof vmVolumes>) {
    const moves = volumeMoves({ migrationUid: "preflight", sourceVolumes: sourceVolumesOf(volumes), storageMap: req.storageMap });
    if (moves.length === 0) {
      add("error", "NoStorageChange", "storageMap", `no volume of VM ${src} changes storage class under the storage map`, "map the VM's storage classes to other classes in storageMap");
    }
    req.storageMap.forEach((m, i) => {
      if (!observed.storageClasses.includes(m.target)) {
        add("error", "StorageClassMissing", `storageMap[${i}].target`, `storage class "${m.target}" does not exist on cluster ${req.cluster}`, `use one of: ${observed.storageClasses.join(", ") || "(none)"}`);
      }
    });
    for (const move of moves) {
      // The real destination name depends on the migration uid; any existing claim with the
      // destination's base name and a foreign owner is reported when the task runs.
      if (move.source.sizeBytes === 0) {
        add("error", "VolumeSizeUnknown", "storageMap", `volume ${move.volume} of VM ${src} reports size 0`, `check PVC ${req.source.namespace}/${move.from}`);
      }
    }
    if (req.migrationKind !== "storage-live") return;
    const methods = kv?.spec?.workloadUpdateStrategy?.workloadUpdateMethods ?? [];
    if (!methods.includes("LiveMigrate")) {
      add("error", "LiveMigrateNotEnabled", "spec.workloadUpdateStrategy.workloadUpdateMethods", `the KubeVirt CR on cluster ${req.cluster} does not list LiveMigrate in workloadUpdateMethods (${JSON.stringify(methods)}); KubeVirt starts no volume migration without it`, `add LiveMigrate to spec.workloadUpdateStrategy.workloadUpdateMethods of the KubeVirt CR ${kv?.metadata.namespace}/${kv?.metadata.name}`);
    }
    const rollout = kv?.spec?.configuration?.vmRolloutStrategy;
    if (rollout !== undefined && rollout !== "LiveUpdate") {
      add("error", "VmRolloutStrategyNotLiveUpdate", "spec.configuration.vmRolloutStrategy", `the KubeVirt CR on cluster ${req.cluster} has vmRolloutStrategy ${rollout}; volume migration needs LiveUpdate`, "set spec.configuration.vmRolloutStrategy: LiveUpdate in the KubeVirt CR");
    }
    const storage = condition(vmi, "StorageLiveMigratable");
    if (storage?.status === "False") {
      add("error", "StorageNotLiveMigratable", "status.conditions[StorageLiveMigratable]", `VMI ${src} reports StorageLiveMigratable=False: ${storage.reason ?? ""} ${storage.message ?? ""}`.trim(), "remove what blocks storage migration (see the message), or stop the VM and use the offline path");
    }
    const memory = quantityBytes(vm.spec.template.spec.domain.memory?.guest) ?? quantityBytes(vm.spec.template.spec.domain.resources?.requests?.memory) ?? 0;
    const fits = observed.nodes.filter((n) => nodeSchedulable(n) && (parseQuantity(n.status?.allocatable?.memory) ?? Infinity) >= memory);
    if (fits.length < 2) {
      add("error", "NotEnoughNodes", "", `storage live migration needs two schedulable nodes with room for VM ${src} (${memory} bytes of memory); cluster ${req.cluster} has ${fits.length}`, "uncordon or add a node; KubeVirt cannot migrate storage on the same node");
    }
  }

  function targetSide() {
    if (!observed.namespaceExists) {
      add("warning", "TargetNamespaceMissing", "target.namespace", `namespace ${req.target.namespace} does not exist on cluster ${req.cluster}; the agent creates it`, "");
    }
    const facts = req.sourceFacts;
    if (!facts) {
      add("error", "SourceFactsMissing", "sourceFacts", "a target-side preflight needs the source VM's facts", "send sourceFacts (from describe-vm on the source cluster)");
      return;
    }
    // A storage or offline move keeps the VM where it is: the VM, its claims and the objects it
    // refers to are its own, not collisions (its new claims get names of their own, movedClaimName).
    const inPlace = req.source.cluster === req.target.cluster && req.source.namespace === req.target.namespace && req.source.name === req.target.name;
    const existing = inPlace ? undefined : observed.vm;
    if (existing) {
      const owner = isFerryManaged(existing) ? `, created by ferry for migration ${existing.metadata.labels?.[MIGRATION_LABEL]}` : " that ferry did not create";
      add("error", "TargetNameCollision", "target.name", `cluster ${req.cluster} already has a VM ${tgt}${owner}`, isFerryManaged(existing) ? "wait for that migration to finish or abort it, or choose another target name" : "delete or rename that VM, or choose another target namespace or name");
    }
    /** Bytes the receiver's new claims take per target class, with the volumes that need them. */
    const needs = new Map<string, { bytes: number; volumes: string[] }>();
    facts.volumes.forEach((v, i) => {
      const field = `sourceFacts.volumes[${i}]`;
      const mapping = storageMappingFor(req.storageMap, v.storageClass);
      const targetClass = mapping?.target ?? v.storageClass;
      // A new claim is needed unless ferry already made it (an earlier try) or the volume stays put.
      const stays = inPlace && targetClass === v.storageClass;
      const made = !inPlace && [...observed.pvcs, ...observed.dataVolumes].some((o) => o.metadata.name === v.claimName && isFerryManaged(o));
      if (targetClass !== undefined && !stays && !made) {
        const need = needs.get(targetClass) ?? { bytes: 0, volumes: [] };
        needs.set(targetClass, { bytes: need.bytes + v.sizeBytes, volumes: [...need.volumes, v.name] });
      }
      if (targetClass === undefined) {
        if (!observed.storageClasses.length) add("error", "StorageClassUnmapped", field, `volume ${v.name} has no storage class and cluster ${req.cluster} has none`, "create a storage class on the target");
      } else if (!observed.storageClasses.includes(targetClass)) {
        if (mapping) {
          const index = req.storageMap.indexOf(mapping);
          add("error", "StorageClassMissingOnTarget", `storageMap[${index}].target`, `the storage map maps "${v.storageClass}" to "${targetClass}", which does not exist on cluster ${req.cluster} (volume ${v.name})`, `use one of ${req.cluster}'s storage classes: ${observed.storageClasses.join(", ") || "(none)"}`);
        } else {
          add("error", "StorageClassUnmapped", "storageMap", `volume ${v.name} uses storage class "${v.storageClass}", which the storage map does not map and cluster ${req.cluster} does not have`, `add a storageMap entry {source: ${v.storageClass}, target: <one of ${observed.storageClasses.join(", ") || "(none)"}>}`);
        }
      }
      const pvc = observed.pvcs.find((p) => p.metadata.name === v.claimName);
      const dv = observed.dataVolumes.find((d) => d.metadata.name === v.claimName);
      const holder = inPlace ? undefined : (dv ?? pvc);
      if (holder && !isFerryManaged(holder)) {
        add("error", "VolumeNameCollision", field, `${dv ? "DataVolume" : "PVC"} ${req.target.namespace}/${v.claimName} already exists on cluster ${req.cluster}; the receiver needs a claim of that name for volume ${v.name}`, `delete or rename it, or choose another target namespace`);
      } else if (holder) {
        const have = claimBytes(observed, v.claimName);
        if (have !== undefined && have < v.sizeBytes) {
          add("error", "DestinationTooSmall", field, `the destination claim ${req.target.namespace}/${v.claimName} left by ferry holds ${have} bytes; volume ${v.name} needs ${v.sizeBytes}`, "abort the migration (it removes ferry's claims) and retry");
        }
      }
    });
    for (const [cls, need] of needs) {
      const free = observed.classCapacities.get(cls);
      if (free === undefined || need.bytes <= free) continue; // unknown capacity is not checked
      const index = req.storageMap.findIndex((m) => m.target === cls);
      add(
        "error",
        "StorageCapacityExceeded",
        index >= 0 ? `storageMap[${index}].target` : "target.cluster",
        `storage class ${cls} on cluster ${req.cluster} reports ${formatBytes(free)} free (CSIStorageCapacity); VM ${src} needs ${formatBytes(need.bytes)} there for volume${need.volumes.length > 1 ? "s" : ""} ${need.volumes.join(", ")}`,
        `free space in ${cls} on ${req.cluster}, map the volumes to another class in storageMap, or choose another target cluster`,
      );
    }
    facts.dependencies.forEach((d, i) => {
      const list = d.kind === "Secret" ? observed.secrets : observed.configMaps;
      const found = list.find((o) => o.metadata.name === d.name);
      if (found && !inPlace && !isFerryManaged(found)) {
        add("error", "DependencyCollision", `sourceFacts.dependencies[${i}]`, `${d.kind} ${req.target.namespace}/${d.name} already exists on cluster ${req.cluster} and ferry did not create it; the VM refers to it by name`, `delete or rename it on ${req.cluster} (ferry copies the source's), or choose another target namespace`);
      }
    });
    req.networkMap.forEach((m, i) => {
      if (!networkExists(observed, m.target, req.target.namespace)) {
        add("error", "NetworkMissingOnTarget", `networkMap[${i}].target`, `the network map maps "${m.source}" to "${m.target}", which does not exist on cluster ${req.cluster}`, `create the NetworkAttachmentDefinition on ${req.cluster} or map to an existing one`);
      }
    });
    const macs = new Set(facts.macAddresses);
    const seen = new Set<string>();
    // Within one cluster the source VM itself is not a collision (it leaves as the receiver arrives).
    const isSource = (o: KubeObj) => req.source.cluster === req.target.cluster && o.metadata.namespace === req.source.namespace && o.metadata.name === req.source.name;
    for (const other of observed.vms) {
      if (isSource(other)) continue;
      for (const i of vmInterfaces(other)) {
        if (i.macAddress && macs.has(i.macAddress) && !seen.has(i.macAddress)) {
          seen.add(i.macAddress);
          add("error", "MacAddressCollision", "sourceFacts.macAddresses", `MAC ${i.macAddress} of VM ${src} is already used by VM ${other.metadata.namespace}/${other.metadata.name} on cluster ${req.cluster}`, `change the MAC of one of them, or free it on ${req.cluster}`);
        }
      }
    }
    for (const vmi of observed.vmis) {
      if (isSource(vmi)) continue;
      for (const i of vmi.status?.interfaces ?? []) {
        const mac = i.mac?.toLowerCase();
        if (mac && macs.has(mac) && !seen.has(mac)) {
          seen.add(mac);
          add("error", "MacAddressCollision", "sourceFacts.macAddresses", `MAC ${mac} of VM ${src} is already used by VMI ${vmi.metadata.namespace}/${vmi.metadata.name} on cluster ${req.cluster}`, `change the MAC of one of them, or free it on ${req.cluster}`);
        }
      }
    }
    const schedulable = observed.nodes.filter(nodeSchedulable);
    const archNodes = schedulable.filter((n) => nodeArchitecture(n) === facts.architecture);
    if (archNodes.length === 0) {
      add("error", "ArchitectureUnavailable", "sourceFacts.architecture", `the VM runs on ${facts.architecture}; cluster ${req.cluster} has no schedulable ${facts.architecture} node`, `choose a target cluster with ${facts.architecture} nodes`);
    } else if (!archNodes.some((n) => (parseQuantity(n.status?.allocatable?.memory) ?? Infinity) >= facts.memoryBytes)) {
      add("error", "InsufficientMemory", "sourceFacts.memoryBytes", `no schedulable node of cluster ${req.cluster} has ${facts.memoryBytes} bytes of allocatable memory for the VM`, "free memory on a node or add one");
    }
  }
}
