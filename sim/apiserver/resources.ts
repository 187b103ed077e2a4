// The resource types a simulated cluster serves. One table drives discovery, routing, the store's
// status-subresource rules and kubectl's short names, so adding a kind is one line.

export interface ResourceType {
  group: string; // "" for the core group
  version: string;
  kind: string;
  plural: string;
  singular: string;
  namespaced: boolean;
  /** Has a `/status` subresource: the main endpoint ignores `.status`, `/status` changes only `.status`. */
  statusSubresource: boolean;
  shortNames?: string[];
  categories?: string[];
  /** Served for reading only (get, list, watch): the objects mirror state the simulation owns. */
  readOnly?: boolean;
  /** Has a `/proxy` subresource (pods): requests forwarded to a port of the object (SimCluster.podServers). */
  proxySubresource?: boolean;
}

export const resourceTypes: readonly ResourceType[] = [
  { group: "", version: "v1", kind: "Namespace", plural: "namespaces", singular: "namespace", namespaced: false, statusSubresource: true, shortNames: ["ns"] },
  { group: "", version: "v1", kind: "Node", plural: "nodes", singular: "node", namespaced: false, statusSubresource: true, shortNames: ["no"] },
  { group: "", version: "v1", kind: "ConfigMap", plural: "configmaps", singular: "configmap", namespaced: true, statusSubresource: false, shortNames: ["cm"] },
  { group: "", version: "v1", kind: "Secret", plural: "secrets", singular: "secret", namespaced: true, statusSubresource: false },
  { group: "", version: "v1", kind: "PersistentVolumeClaim", plural: "persistentvolumeclaims", singular: "persistentvolumeclaim", namespaced: true, statusSubresource: true, shortNames: ["pvc"] },
  // virt-launcher and virt-handler pods as the KubeVirt simulation runs them (sim/kubevirt/pods.ts,
  // handler-pods.ts), read-only; pods/proxy reaches what listens in them.
  { group: "", version: "v1", kind: "Pod", plural: "pods", singular: "pod", namespaced: true, statusSubresource: true, shortNames: ["po"], categories: ["all"], readOnly: true, proxySubresource: true },
  { group: "", version: "v1", kind: "Event", plural: "events", singular: "event", namespaced: true, statusSubresource: false, shortNames: ["ev"] },
  { group: "storage.k8s.io", version: "v1", kind: "StorageClass", plural: "storageclasses", singular: "storageclass", namespaced: false, statusSubresource: false, shortNames: ["sc"] },
  // Free space per storage class as a CSI driver's external-provisioner publishes it (sim/cdi/capacity.ts).
  { group: "storage.k8s.io", version: "v1", kind: "CSIStorageCapacity", plural: "csistoragecapacities", singular: "csistoragecapacity", namespaced: true, statusSubresource: false },
  { group: "k8s.cni.cncf.io", version: "v1", kind: "NetworkAttachmentDefinition", plural: "network-attachment-definitions", singular: "network-attachment-definition", namespaced: true, statusSubresource: false, shortNames: ["net-attach-def"] },
  { group: "coordination.k8s.io", version: "v1", kind: "Lease", plural: "leases", singular: "lease", namespaced: true, statusSubresource: false },
  { group: "kubevirt.io", version: "v1", kind: "KubeVirt", plural: "kubevirts", singular: "kubevirt", namespaced: true, statusSubresource: true, shortNames: ["kv", "kvs"], categories: ["all"] },
  { group: "kubevirt.io", version: "v1", kind: "VirtualMachine", plural: "virtualmachines", singular: "virtualmachine", namespaced: true, statusSubresource: true, shortNames: ["vm", "vms"], categories: ["all"] },
  // KubeVirt's VMI CRD has no subresources (virt-operator crds.go NewVirtualMachineInstanceCrd): .status is written through the object itself.
  { group: "kubevirt.io", version: "v1", kind: "VirtualMachineInstance", plural: "virtualmachineinstances", singular: "virtualmachineinstance", namespaced: true, statusSubresource: false, shortNames: ["vmi", "vmis"], categories: ["all"] },
  { group: "kubevirt.io", version: "v1", kind: "VirtualMachineInstanceMigration", plural: "virtualmachineinstancemigrations", singular: "virtualmachineinstancemigration", namespaced: true, statusSubresource: true, shortNames: ["vmim", "vmims"], categories: ["all"] },
  { group: "cdi.kubevirt.io", version: "v1beta1", kind: "DataVolume", plural: "datavolumes", singular: "datavolume", namespaced: true, statusSubresource: true, shortNames: ["dv", "dvs"], categories: ["all"] },
];

export function apiVersionOf(rt: ResourceType): string {
  return rt.group === "" ? rt.version : `${rt.group}/${rt.version}`;
}

const byKind = new Map(resourceTypes.map((rt) => [rt.kind, rt]));
const byPath = new Map(resourceTypes.map((rt) => [`${rt.group}/${rt.version}/${rt.plural}`, rt]));

export function resourceByKind(kind: string): ResourceType | undefined {
  return byKind.get(kind);
}

export function resourceByPath(group: string, version: string, plural: string): ResourceType | undefined {
  return byPath.get(`${group}/${version}/${plural}`);
}

/** Short handles for controllers and tests: `R.VirtualMachine` etc. */
export const R = Object.fromEntries(resourceTypes.map((rt) => [rt.kind, rt])) as Record<
  | "Namespace" | "Node" | "ConfigMap" | "Secret" | "PersistentVolumeClaim" | "Pod" | "Event" | "StorageClass" | "CSIStorageCapacity"
  | "NetworkAttachmentDefinition" | "Lease" | "KubeVirt" | "VirtualMachine" | "VirtualMachineInstance"
  | "VirtualMachineInstanceMigration" | "DataVolume",
  ResourceType
>;
