// Messages an agent publishes on ferry.v1.broker.<cluster>.{hello,heartbeat,inventory,status}.
import { z } from "zod";
import { AccessMode, KubeVirtString, VolumeMode } from "../kube.js";
import { ClusterName, Labels, MigrationUid, NamespaceName, NetworkName, ObjectName, StorageClassName } from "../names.js";
import {
  AgentError,
  agentSeqShape,
  Bytes,
  Condition,
  Count,
  envelope,
  Fingerprint,
  MacAddress,
  PemBundle,
  Reason,
  Seconds,
  SyncAddress,
  Text,
  Time,
} from "./common.js";
import { TaskRole } from "./tasks.js";

/** What this agent can do; the broker only assigns matching roles. */
export const Capability = z.enum(["decentralized-live-migration", "storage-live-migration", "offline-migration"]);

/** Sent once per agent process start (and on every NATS reconnect). */
export const Hello = z.object({
  ...envelope("Hello"),
  cluster: ClusterName,
  ...agentSeqShape,
  agentVersion: z.string().min(1).max(64),
  capabilities: z.array(Capability).max(16),
  /** ConfigMap kubevirt-ca `ca-bundle`; absent when the agent cannot read it yet. */
  caBundle: PemBundle.optional(),
  synchronizationAddresses: z.array(SyncAddress).max(16),
  /** Generation of the last task set this agent acted on; 0 if none. Lets a new broker leader continue above it. */
  lastTaskSetGeneration: Count,
});
export type Hello = z.infer<typeof Hello>;

/** Periodic liveness; the broker marks the cluster UNREACHABLE when these stop. */
export const Heartbeat = z.object({
  ...envelope("Heartbeat"),
  cluster: ClusterName,
  ...agentSeqShape,
  time: Time,
  health: z.object({
    /** The agent can reach its Kubernetes API server. */
    kubernetesApi: z.boolean(),
    /** Its watches on the objects it manages are established. */
    watches: z.boolean(),
    /** Tasks currently held. */
    tasks: Count,
    /** Why something above is false. */
    message: Text.optional(),
  }),
});
export type Heartbeat = z.infer<typeof Heartbeat>;

export const StorageClass = z.object({
  name: StorageClassName,
  provisioner: z.string().min(1).max(253),
  volumeBindingMode: z.enum(["Immediate", "WaitForFirstConsumer"]),
  isDefault: z.boolean(),
  /**
   * Free space to provision in this class: the sum of `capacity` over the class's
   * storage.k8s.io/v1 CSIStorageCapacity objects (one per topology segment). Absent when none
   * exists: most CSI drivers publish none, so the capacity is unknown, not zero.
   */
  capacityBytes: Bytes.optional(),
});

export const InventoryNode = z.object({
  name: ObjectName,
  /** kubernetes.io/arch, e.g. "amd64". */
  architecture: z.string().min(1).max(32),
  /** Not cordoned and Ready. */
  schedulable: z.boolean(),
  allocatableMemoryBytes: Bytes,
});

/** KubeVirt volume source kinds (the key set in spec.template.spec.volumes[]). */
export const VolumeKind = z.enum([
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
  "other",
]);

export const InventoryVolume = z.object({
  /** Volume name in the VM spec. */
  name: z.string().min(1).max(253),
  kind: VolumeKind,
  /** PVC (or DataVolume) name for kind dataVolume / persistentVolumeClaim. */
  claimName: ObjectName.optional(),
  sizeBytes: Bytes.optional(),
  storageClass: StorageClassName.optional(),
  volumeMode: VolumeMode.optional(),
  accessModes: z.array(AccessMode).max(4).optional(),
  /** Hotplugged volume (not migratable across clusters). */
  hotpluggable: z.boolean().optional(),
});

export const InventoryInterface = z.object({
  name: z.string().min(1).max(253),
  /** `pod` or `<namespace>/<name>` of the NetworkAttachmentDefinition. */
  network: NetworkName,
  macAddress: MacAddress.optional(),
});

export const InventoryVm = z.object({
  namespace: NamespaceName,
  name: ObjectName,
  uid: z.string().min(1).max(64),
  /** metadata.labels of the VirtualMachine: plan selectors (labelSelector) match against them. */
  labels: Labels.optional(),
  runStrategy: KubeVirtString,
  printableStatus: KubeVirtString,
  /** Absent when the VM has no VMI. */
  vmiPhase: KubeVirtString.optional(),
  node: ObjectName.optional(),
  memoryBytes: Bytes,
  /** vCPUs (sockets × cores × threads). */
  cpu: Count,
  volumes: z.array(InventoryVolume).max(256),
  interfaces: z.array(InventoryInterface).max(64),
  /** Why KubeVirt (LiveMigratable=False) or ferry would refuse to live-migrate it; empty if none. */
  migrationBlockers: z.array(z.object({ reason: Reason, message: Text })).max(32),
});
export type InventoryVm = z.infer<typeof InventoryVm>;

export const KubeVirtInfo = z.object({
  /** KubeVirt CR status.observedKubeVirtVersion, e.g. "v1.8.2". */
  version: z.string().min(1).max(64),
  /** developerConfiguration.featureGates / disabledFeatureGates as written in the CR. */
  featureGates: z.object({ enabled: z.array(z.string().max(128)).max(256), disabled: z.array(z.string().max(128)).max(256) }),
  /** DecentralizedLiveMigration is effectively on (explicitly enabled, or Beta and not disabled). */
  decentralizedLiveMigration: z.boolean(),
  synchronizationAddresses: z.array(SyncAddress).max(16),
  /** ConfigMap kubevirt-ca `ca-bundle`. */
  caBundle: PemBundle,
  /** spec.configuration.migrations, defaults applied by the agent. */
  migrations: z.object({
    parallelMigrationsPerCluster: Count,
    parallelOutboundMigrationsPerNode: Count,
    /** Bytes per second; 0 = unlimited (KubeVirt's default "0Mi"). */
    bandwidthPerMigration: Bytes,
    progressTimeout: Seconds,
    completionTimeoutPerGiB: Seconds,
    /** migrations.network: NAD of the dedicated migration network (`<name>` or `<namespace>/<name>`, as Multus takes it); absent = pod network. */
    network: NetworkName.optional(),
  }),
  /** workloadUpdateStrategy.workloadUpdateMethods, e.g. ["LiveMigrate"]. */
  workloadUpdateMethods: z.array(KubeVirtString).max(8),
  /** configuration.vmRolloutStrategy ("LiveUpdate" or "Stage"). */
  vmRolloutStrategy: KubeVirtString,
});

/** The cluster's facts for validation and placement; sent on start and on change. */
export const Inventory = z.object({
  ...envelope("Inventory"),
  cluster: ClusterName,
  ...agentSeqShape,
  observedAt: Time,
  kubevirt: KubeVirtInfo,
  storageClasses: z.array(StorageClass).max(256),
  networks: z.array(z.object({ namespace: NamespaceName, name: ObjectName })).max(4096),
  nodes: z.array(InventoryNode).max(5000),
  namespaces: z.array(NamespaceName).max(10_000),
  vms: z.array(InventoryVm).max(20_000),
  /**
   * What the agent left out because ferry cannot represent it (a VM with more labels than ferry
   * carries, a name beyond the limits) or because the report would exceed the bus limit; one odd
   * object must not hide the whole cluster. `total` counts every omission, `items` the first ones.
   */
  omitted: z
    .object({
      total: Count,
      items: z.array(z.object({ kind: z.enum(["VirtualMachine", "Node", "StorageClass", "Network", "Namespace"]), name: z.string().max(320), reason: Text })).max(100),
    })
    .optional(),
});
export type Inventory = z.infer<typeof Inventory>;
export type InventoryOmission = NonNullable<Inventory["omitted"]>["items"][number];

/** What an agent does about a task, as it reports it. */
export const TaskStep = z.enum([
  "Pending",
  "CopyingDependencies",
  "CreatingVolumes",
  "CreatingReceiver",
  "WaitingForReceiver",
  "ReceiverReady",
  "Sending",
  "Migrating",
  "Succeeded",
  "Failed",
  "Finalizing",
  "Finalized",
  "Aborting",
  "Aborted",
  "CleaningUp",
  "CleanedUp",
]);
export type TaskStep = z.infer<typeof TaskStep>;

export const VmimStatus = z.object({
  name: ObjectName,
  phase: KubeVirtString,
  phaseTransitions: z.array(z.object({ phase: KubeVirtString, at: Time })).max(32),
  /** Includes decentralizedMigrationBlocked (TLS/x509 or connectivity errors between sync controllers). */
  conditions: z.array(Condition).max(32),
  /** Subset of status.migrationState; KubeVirt fills it once the VMIM is final. */
  migrationState: z
    .object({
      startTimestamp: Time.optional(),
      endTimestamp: Time.optional(),
      completed: z.boolean(),
      failed: z.boolean(),
      failureReason: Text.optional(),
      /** "PreCopy", "PostCopy" or "Paused". */
      mode: KubeVirtString.optional(),
    })
    .optional(),
});
export type VmimStatus = z.infer<typeof VmimStatus>;

export const TaskStatus = z.object({
  migrationUid: MigrationUid,
  attempt: z.int().min(1),
  role: TaskRole,
  step: TaskStep,
  /** Target only: the synchronization address the source must connect to (from the receive VMIM or the KubeVirt CR). */
  syncAddress: SyncAddress.optional(),
  vmim: VmimStatus.optional(),
  progress: z
    .object({
      processedBytes: Bytes,
      totalBytes: Bytes.optional(),
      remainingBytes: Bytes.optional(),
      dataRateBytesPerSecond: Bytes.optional(),
    })
    .optional(),
  /** Facts the broker checks invariants with (a VM never runs in two places). */
  vm: z
    .object({
      exists: z.boolean(),
      runStrategy: KubeVirtString.optional(),
      printableStatus: KubeVirtString.optional(),
      vmiPhase: KubeVirtString.optional(),
      node: ObjectName.optional(),
    })
    .optional(),
  /** Storage migrations: VM condition ManualRecoveryRequired is True; its message and the recovery rule. */
  needsManualRecovery: Text.optional(),
  error: AgentError.optional(),
  updatedAt: Time,
});
export type TaskStatus = z.infer<typeof TaskStatus>;

export const TrustStatus = z.object({
  peer: ClusterName,
  /** Fingerprints of the peer's CA certificates the agent was asked to import. */
  fingerprints: z.array(Fingerprint).max(64),
  /** All of them are in this cluster's own kubevirt-ca bundle (virt-operator merged them). */
  present: z.boolean(),
  /** When the agent last wrote them to kubevirt-external-ca. */
  lastPushAt: Time.optional(),
});
export type TrustStatus = z.infer<typeof TrustStatus>;

/** Observed state of every task the agent holds and of the trust it was asked to establish. */
export const Status = z.object({
  ...envelope("Status"),
  cluster: ClusterName,
  ...agentSeqShape,
  /** Generation of the task set these observations answer. */
  taskSetGeneration: Count,
  observedAt: Time,
  trust: z.array(TrustStatus).max(1024),
  tasks: z.array(TaskStatus).max(10_000),
});
export type Status = z.infer<typeof Status>;
