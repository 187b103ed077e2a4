// Seeding helpers for scenarios and tests: namespaces, nodes, storage classes and the KubeVirt CR,
// written as an admin would write them (the operator then deploys, creates the CA, etc.).
import { R } from "../apiserver/resources.js";
import type { KObject } from "../apiserver/store.js";
import { AnnStorageCapacity } from "../cdi/storage.js";
import type { SimCluster } from "../cluster.js";
import { DecentralizedLiveMigration } from "./constants.js";
import { findKubeVirt } from "./config.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- CR specs are free-form JSON */

export function seedNamespace(cluster: SimCluster, name: string): KObject {
  return cluster.store.tryGet(R.Namespace, undefined, name) ?? cluster.store.create(R.Namespace, { metadata: { name } });
}

export interface KubeVirtSeed {
  /** KubeVirt CR name (default "kubevirt"). */
  name?: string;
  /** spec.configuration.developerConfiguration.featureGates (default: [DecentralizedLiveMigration]). */
  featureGates?: string[];
  disabledFeatureGates?: string[];
  /** spec.configuration.migrations (parallelMigrationsPerCluster, bandwidthPerMigration, progressTimeout, ...). */
  migrations?: Record<string, unknown>;
  /** spec.workloadUpdateStrategy.workloadUpdateMethods (default: none, as KubeVirt's generated CR). */
  workloadUpdateMethods?: string[];
  vmRolloutStrategy?: "LiveUpdate" | "Stage";
  /** spec.certificateRotateStrategy.selfSigned, e.g. { ca: { duration: "168h", renewBefore: "33h" } }. */
  selfSigned?: Record<string, unknown>;
  synchronizationPort?: string;
  /** Anything else to merge into spec.configuration. */
  configuration?: Record<string, unknown>;
}

/** Creates (or replaces the spec of) the KubeVirt CR in the cluster's KubeVirt namespace. */
export function seedKubeVirt(cluster: SimCluster, seed: KubeVirtSeed = {}): KObject {
  const ns = cluster.kubevirtNamespace;
  seedNamespace(cluster, ns);
  const configuration: any = {
    developerConfiguration: {
      featureGates: seed.featureGates ?? [DecentralizedLiveMigration],
      ...(seed.disabledFeatureGates ? { disabledFeatureGates: seed.disabledFeatureGates } : {}),
    },
    ...(seed.migrations ? { migrations: seed.migrations } : {}),
    ...(seed.vmRolloutStrategy ? { vmRolloutStrategy: seed.vmRolloutStrategy } : {}),
    ...(seed.configuration ?? {}),
  };
  const spec: any = {
    certificateRotateStrategy: seed.selfSigned ? { selfSigned: seed.selfSigned } : {},
    configuration,
    workloadUpdateStrategy: seed.workloadUpdateMethods ? { workloadUpdateMethods: seed.workloadUpdateMethods } : {},
    ...(seed.synchronizationPort ? { synchronizationPort: seed.synchronizationPort } : {}),
  };
  const existing = findKubeVirt(cluster.store, ns);
  if (existing) {
    return cluster.store.modify(R.KubeVirt, ns, existing.metadata.name, (o) => (o.spec = spec))!;
  }
  return cluster.store.create(R.KubeVirt, { metadata: { name: seed.name ?? "kubevirt", namespace: ns }, spec });
}

export interface NodeSeed {
  name: string;
  /** Allocatable memory (default "64Gi"). */
  memory?: string;
  cpu?: string;
  labels?: Record<string, string>;
  unschedulable?: boolean;
  ready?: boolean;
  internalIP?: string;
}

/** Creates Ready nodes (`count` named <cluster>-node-<i>, or the given ones). */
export function seedNodes(cluster: SimCluster, nodes: number | NodeSeed[]): KObject[] {
  const list: NodeSeed[] = typeof nodes === "number" ? Array.from({ length: nodes }, (_, i) => ({ name: `${cluster.name}-node-${i + 1}` })) : nodes;
  return list.map((n, i) => {
    const memory = n.memory ?? "64Gi";
    const cpu = n.cpu ?? "32";
    const obj = {
      metadata: {
        name: n.name,
        labels: { "kubernetes.io/hostname": n.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "cpu-vendor.node.kubevirt.io/Intel": "true", ...n.labels },
      },
      spec: n.unschedulable ? { unschedulable: true } : {},
      status: {
        capacity: { cpu, memory, pods: "110" },
        allocatable: { cpu, memory, pods: "110" },
        conditions: [{ type: "Ready", status: n.ready === false ? "False" : "True", reason: "KubeletReady", message: "kubelet is posting ready status", lastHeartbeatTime: new Date().toISOString(), lastTransitionTime: new Date().toISOString() }],
        addresses: [
          { type: "InternalIP", address: n.internalIP ?? `192.168.${(i >> 8) & 255}.${(i & 255) + 10}` },
          { type: "Hostname", address: n.name },
        ],
        nodeInfo: { kubeletVersion: "v1.32.4", architecture: "amd64", operatingSystem: "linux" },
      },
    };
    const existing = cluster.store.tryGet(R.Node, undefined, n.name);
    if (existing) return cluster.store.modify(R.Node, undefined, n.name, (o) => Object.assign(o, { ...obj, metadata: { ...o.metadata, labels: obj.metadata.labels } }))!;
    return cluster.store.create(R.Node, obj, { internal: true });
  });
}

export interface StorageClassSeed {
  name: string;
  /** Provisioner; names containing "csi" count as CSI drivers (CDI then uses volume populators). */
  provisioner?: string;
  volumeBindingMode?: "Immediate" | "WaitForFirstConsumer";
  default?: boolean;
  /** StorageProfile claim property set: defaults CDI fills into spec.storage when omitted. */
  accessModes?: string[];
  volumeMode?: "Filesystem" | "Block";
  /** Pool size (a quantity): the class publishes a CSIStorageCapacity object (sim/cdi/capacity.ts). */
  capacity?: string;
}

export function seedStorageClasses(cluster: SimCluster, classes: StorageClassSeed[]): KObject[] {
  return classes.map((c) => {
    const annotations: Record<string, string> = {};
    if (c.default) annotations["storageclass.kubernetes.io/is-default-class"] = "true";
    if (c.accessModes) annotations["sim.kubevirt.io/storage-profile-access-modes"] = c.accessModes.join(",");
    if (c.volumeMode) annotations["sim.kubevirt.io/storage-profile-volume-mode"] = c.volumeMode;
    if (c.capacity !== undefined) annotations[AnnStorageCapacity] = c.capacity;
    const obj = {
      metadata: { name: c.name, annotations },
      provisioner: c.provisioner ?? "hostpath.csi.kubevirt.io",
      reclaimPolicy: "Delete",
      volumeBindingMode: c.volumeBindingMode ?? "Immediate",
      allowVolumeExpansion: true,
    };
    const existing = cluster.store.tryGet(R.StorageClass, undefined, c.name);
    if (existing) return cluster.store.modify(R.StorageClass, undefined, c.name, (o) => Object.assign(o, obj))!;
    return cluster.store.create(R.StorageClass, obj);
  });
}

/** Resolves once the operator reports Deployed (and, with the gate on, a synchronization address). */
export async function waitForKubeVirt(cluster: SimCluster, timeoutMs = 10_000): Promise<KObject> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const kv = findKubeVirt(cluster.store, cluster.kubevirtNamespace);
    const gates: string[] = kv?.spec?.configuration?.developerConfiguration?.featureGates ?? [];
    if (kv?.status?.phase === "Deployed" && (!gates.includes(DecentralizedLiveMigration) || kv.status.synchronizationAddresses?.length)) return kv;
    if (Date.now() > deadline) throw new Error(`KubeVirt on ${cluster.name} not deployed after ${timeoutMs}ms`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
