// The parts of Kubernetes, KubeVirt (kubevirt.io/v1) and CDI (cdi.kubevirt.io/v1beta1) objects the
// agent reads and writes. Field names are KubeVirt's own (staging/src/kubevirt.io/api/core/v1/types.go,
// CDI core/v1beta1/types.go); every type stays open (`[key: string]: unknown`) so fields ferry does
// not know survive a read-modify-write.

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { apiVersion: string; kind: string; name: string; uid: string; controller?: boolean }[];
  finalizers?: string[];
  [key: string]: unknown;
}

export interface KubeObj {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  [key: string]: unknown;
}

export interface Condition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  lastTransitionTime?: string | null;
  lastProbeTime?: string | null;
  [key: string]: unknown;
}

export interface Disk {
  name: string;
  disk?: Record<string, unknown>;
  lun?: Record<string, unknown>;
  cdrom?: Record<string, unknown>;
  shareable?: boolean;
  [key: string]: unknown;
}

export interface Volume {
  name: string;
  dataVolume?: { name: string; hotpluggable?: boolean; [key: string]: unknown };
  persistentVolumeClaim?: { claimName: string; hotpluggable?: boolean; readOnly?: boolean; [key: string]: unknown };
  containerDisk?: Record<string, unknown>;
  cloudInitNoCloud?: Record<string, unknown>;
  cloudInitConfigDrive?: Record<string, unknown>;
  configMap?: { name?: string; [key: string]: unknown };
  secret?: { secretName?: string; [key: string]: unknown };
  serviceAccount?: Record<string, unknown>;
  sysprep?: { configMap?: { name?: string }; secret?: { name?: string }; [key: string]: unknown };
  [key: string]: unknown;
}

export interface Interface {
  name: string;
  macAddress?: string;
  [key: string]: unknown;
}

export interface Network {
  name: string;
  pod?: Record<string, unknown>;
  multus?: { networkName: string; default?: boolean; [key: string]: unknown };
  [key: string]: unknown;
}

export interface VmiSpec {
  domain: {
    cpu?: { sockets?: number; cores?: number; threads?: number; [key: string]: unknown };
    memory?: { guest?: string | number; [key: string]: unknown };
    resources?: { requests?: Record<string, string | number>; limits?: Record<string, string | number>; [key: string]: unknown };
    firmware?: { uuid?: string; [key: string]: unknown };
    devices?: {
      disks?: Disk[];
      interfaces?: Interface[];
      filesystems?: { name: string; [key: string]: unknown }[];
      hostDevices?: unknown[];
      gpus?: unknown[];
      [key: string]: unknown;
    };
    [key: string]: unknown;
  };
  volumes?: Volume[];
  networks?: Network[];
  accessCredentials?: { sshPublicKey?: { source?: { secret?: { secretName?: string } } }; userPassword?: { source?: { secret?: { secretName?: string } } } }[];
  [key: string]: unknown;
}

export interface StorageSpec {
  storageClassName?: string;
  volumeMode?: string;
  accessModes?: string[];
  resources?: { requests?: { storage?: string | number } };
  [key: string]: unknown;
}

export interface DataVolumeSpec {
  source?: { blank?: Record<string, unknown>; pvc?: { namespace: string; name: string }; [key: string]: unknown };
  sourceRef?: unknown;
  storage?: StorageSpec;
  pvc?: StorageSpec;
  [key: string]: unknown;
}

export interface DataVolumeTemplate {
  metadata: ObjectMeta;
  spec: DataVolumeSpec;
  [key: string]: unknown;
}

export interface VirtualMachine extends KubeObj {
  spec: {
    runStrategy?: string;
    running?: boolean;
    template: { metadata?: ObjectMeta; spec: VmiSpec };
    dataVolumeTemplates?: DataVolumeTemplate[];
    updateVolumesStrategy?: string;
    [key: string]: unknown;
  };
  status?: {
    printableStatus?: string;
    ready?: boolean;
    created?: boolean;
    runStrategy?: string;
    conditions?: Condition[];
    volumeUpdateState?: Record<string, unknown>;
    [key: string]: unknown;
  };
}

export interface PvcInfo {
  claimName?: string;
  accessModes?: string[];
  volumeMode?: string;
  capacity?: Record<string, string | number>;
  requests?: Record<string, string | number>;
  [key: string]: unknown;
}

export interface MigrationState {
  startTimestamp?: string;
  endTimestamp?: string;
  completed?: boolean;
  failed?: boolean;
  failureReason?: string;
  mode?: string;
  abortStatus?: string;
  migrationUid?: string;
  targetNodeDomainReadyTimestamp?: string;
  /** Decentralized migrations: each side's VMIM uid (note KubeVirt's casing, migrationUID). */
  sourceState?: { migrationUID?: string; [key: string]: unknown };
  targetState?: { migrationUID?: string; [key: string]: unknown };
  [key: string]: unknown;
}

export interface VirtualMachineInstance extends KubeObj {
  spec: VmiSpec;
  status?: {
    phase?: string;
    nodeName?: string;
    conditions?: Condition[];
    interfaces?: { name?: string; mac?: string; [key: string]: unknown }[];
    volumeStatus?: { name: string; persistentVolumeClaimInfo?: PvcInfo; hotplugVolume?: Record<string, unknown>; [key: string]: unknown }[];
    migrationState?: MigrationState;
    migratedVolumes?: unknown[];
    [key: string]: unknown;
  };
}

export interface Vmim extends KubeObj {
  spec: {
    vmiName: string;
    sendTo?: { migrationID: string; connectURL: string };
    receive?: { migrationID: string };
    [key: string]: unknown;
  };
  status?: {
    phase?: string;
    conditions?: Condition[];
    phaseTransitionTimestamps?: { phase: string; phaseTransitionTimestamp: string }[];
    migrationState?: MigrationState;
    synchronizationAddresses?: string[];
    [key: string]: unknown;
  };
}

export interface DataVolume extends KubeObj {
  spec: DataVolumeSpec;
  status?: { phase?: string; progress?: string; conditions?: Condition[]; claimName?: string; [key: string]: unknown };
}

export interface Pvc extends KubeObj {
  spec: StorageSpec & { volumeName?: string; dataSourceRef?: unknown };
  status?: { phase?: string; capacity?: Record<string, string | number>; accessModes?: string[]; [key: string]: unknown };
}

export interface KubeVirtCr extends KubeObj {
  spec?: {
    configuration?: {
      developerConfiguration?: { featureGates?: string[]; disabledFeatureGates?: string[] };
      vmRolloutStrategy?: string;
      migrations?: Record<string, unknown>;
      [key: string]: unknown;
    };
    workloadUpdateStrategy?: { workloadUpdateMethods?: string[]; [key: string]: unknown };
    [key: string]: unknown;
  };
  status?: { synchronizationAddresses?: string[]; observedKubeVirtVersion?: string; phase?: string; [key: string]: unknown };
}

export interface Node extends KubeObj {
  spec?: { unschedulable?: boolean; [key: string]: unknown };
  status?: { allocatable?: Record<string, string>; conditions?: Condition[]; [key: string]: unknown };
}

export const KUBEVIRT_GROUP = "kubevirt.io";
export const KUBEVIRT_VERSION = "v1";
export const KUBEVIRT_API = `${KUBEVIRT_GROUP}/${KUBEVIRT_VERSION}`;
export const CDI_GROUP = "cdi.kubevirt.io";
export const CDI_VERSION = "v1beta1";
export const CDI_API = `${CDI_GROUP}/${CDI_VERSION}`;

export function condition(obj: { status?: { conditions?: Condition[] } } | undefined, type: string): Condition | undefined {
  return obj?.status?.conditions?.find((c) => c.type === type);
}
