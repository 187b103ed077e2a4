// Names, labels, annotations, finalizers and messages exactly as KubeVirt spells them
// (kubevirt/kubevirt staging/src/kubevirt.io/api/core/v1/types.go and the files cited inline).

export const KUBEVIRT_VERSION_DEFAULT = "v1.8.2";

// Labels / annotations (types.go)
export const MigrationSelectorLabel = "kubevirt.io/vmi-name";
export const VolumesUpdateMigration = "kubevirt.io/volume-update-migration";
export const WorkloadUpdateMigrationAnnotation = "kubevirt.io/workloadUpdateMigration";
export const CreateMigrationTarget = "kubevirt.io/create-migration-target";
export const RestoreRunStrategy = "kubevirt.io/restore-run-strategy";
export const NodeNameLabel = "kubevirt.io/nodeName";
export const MigrationTargetNodeNameLabel = "kubevirt.io/migrationTargetNodeName";
export const NodeSchedulable = "kubevirt.io/schedulable";
export const VirtualMachineLabel = "kubevirt.io/vm";
export const CreatedByLabel = "kubevirt.io/created-by";
export const VMGenerationAnnotation = "kubevirt.io/vm-generation";
export const LatestApiVersionAnnotation = "kubevirt.io/latest-observed-api-version";
export const StorageApiVersionAnnotation = "kubevirt.io/storage-observed-api-version";
export const AllowPodBridgeNetworkLiveMigrationAnnotation = "kubevirt.io/allow-pod-bridge-network-live-migration";
export const ManagedByLabel = "app.kubernetes.io/managed-by";

// Finalizers (types.go, synchronization-controller.go)
export const VirtualMachineControllerFinalizer = "kubevirt.io/virtualMachineControllerFinalize";
export const VirtualMachineInstanceFinalizer = "kubevirt.io/foregroundDeleteVirtualMachine";
export const MigrationFinalizer = "kubevirt.io/migrationJobFinalize";
export const SynchronizationFinalizer = "synchronization.kubevirt.io/migrationFinalizer";

// Feature gates (pkg/virt-config/featuregate)
export const DecentralizedLiveMigration = "DecentralizedLiveMigration";

// VMIM phases
export const Phase = {
  Unset: "",
  Pending: "Pending",
  Scheduling: "Scheduling",
  Scheduled: "Scheduled",
  PreparingTarget: "PreparingTarget",
  TargetReady: "TargetReady",
  Running: "Running",
  Succeeded: "Succeeded",
  Failed: "Failed",
  WaitingForSync: "WaitingForSync",
  Synchronizing: "Synchronizing",
} as const;

// VMI phases
export const VmiPhase = {
  Unset: "",
  Pending: "Pending",
  Scheduling: "Scheduling",
  Scheduled: "Scheduled",
  Running: "Running",
  Succeeded: "Succeeded",
  Failed: "Failed",
  Unknown: "Unknown",
  WaitingForSync: "WaitingForSync",
} as const;

export const RunStrategies = ["Always", "Halted", "Manual", "RerunOnFailure", "Once", "WaitAsReceiver"] as const;
export type RunStrategy = (typeof RunStrategies)[number];

// Condition types
export const Cond = {
  // VMI
  Ready: "Ready",
  LiveMigratable: "LiveMigratable",
  StorageLiveMigratable: "StorageLiveMigratable",
  VolumesChange: "VolumesChange",
  DecentralizedLiveMigrationFailure: "DecentralizedLiveMigrationFailure",
  PodScheduled: "PodScheduled",
  Paused: "Paused",
  // VM
  Failure: "Failure",
  RestartRequired: "RestartRequired",
  ManualRecoveryRequired: "ManualRecoveryRequired",
  // VMIM
  AbortRequested: "migrationAbortRequested",
  DecentralizedMigrationBlocked: "decentralizedMigrationBlocked",
  RejectedByResourceQuota: "migrationRejectedByResourceQuota",
} as const;

export const Reason = {
  DisksNotMigratable: "DisksNotLiveMigratable",
  InterfaceNotMigratable: "InterfaceNotLiveMigratable",
  HostDeviceNotMigratable: "HostDeviceNotLiveMigratable",
  VirtIOFSNotMigratable: "VirtIOFSNotLiveMigratable",
  NotMigratable: "NotMigratable",
  DecentralizedNotMigratable: "DecentralizedNotLiveMigratable",
  VolumesChangeCancellation: "VolumesChangeCancellation",
  PodNotExists: "PodNotExists",
  PodTerminating: "PodTerminating",
  GuestNotRunning: "GuestNotRunning",
} as const;

// Messages (cited files)
export const Msg = {
  // synchronization-controller.go
  waitingForSync: "waiting for incoming synchronization, unable to proceed",
  sourceUnableToLocate: (id: string) => `source: unable to locate VMI for migrationID ${id}`,
  targetUnableToLocate: (id: string) => `target: unable to locate VMI for migrationID ${id}`,
  sourceUnableToLocateVMI: (id: string, k: string) => `source: unable to locate VMI for migrationID ${id}, vmi: ${k}`,
  targetUnableToLocateVMI: (id: string, k: string) => `target: unable to locate VMI for migrationID ${id}, vmi: ${k}`,
  // volume-migration.go, vm.go
  invalidVolumeRevert: "The volume can only be reverted to the previous version during the update",
  destinationMissing: (err: string) => `One of the destination volumes doesn't exist: ${err}`,
  manualRecovery: "VMI was removed or was final during the volume migration",
  migrateVolumes: "migrate volumes",
  // live-migration-source.go
  aborted: "Live migration has been aborted",
  targetPodDown: "Target pod is down",
  // vm.go
  nonReceiverVMI: "Found non receiver VMI while VM is receiver",
} as const;

// virt-operator objects (pkg/virt-operator/resource/generate/components/secrets.go)
export const KubeVirtCASecretName = "kubevirt-ca";
export const KubeVirtCAConfigMapName = "kubevirt-ca";
export const ExternalKubeVirtCAConfigMapName = "kubevirt-external-ca";
export const CABundleKey = "ca-bundle";
export const SyncControllerName = "virt-synchronization-controller";
export const SyncServerCertSecret = "kubevirt-synchronization-controller-server-certs";
export const SyncClientCertSecret = "kubevirt-synchronization-controller-certs";
export const SyncServerCN = "kubevirt.io:system:node:virt-synchronization-controller";
export const SyncClientCN = "kubevirt.io:system:client:virt-synchronization-controller";

// Defaults (pkg/virt-config/virt-config.go, pkg/virt-operator/resource/apply/certificates.go)
export const Defaults = {
  parallelMigrationsPerCluster: 5,
  parallelOutboundMigrationsPerNode: 2,
  completionTimeoutPerGiB: 150,
  progressTimeout: 150,
  maxDowntimeMs: 900,
  caDurationMs: 7 * 24 * 3600_000,
  certDurationMs: 24 * 3600_000,
  synchronizationPort: 9185,
  finalizedMigrationGCBuffer: 5,
  unschedulablePendingTimeoutS: 300,
  catchAllPendingTimeoutS: 900,
} as const;
