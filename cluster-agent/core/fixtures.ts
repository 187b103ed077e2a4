// Objects as the API server returns them, for the core's unit tests.
import type { DataVolume, KubeVirtCr, Pvc, VirtualMachine, VirtualMachineInstance, Vmim } from "./kube.js";

/** A VM like the sim's vms/db-1: a dataVolumeTemplate root disk, a separate data DataVolume, cloud-init with a Secret, pod + multus NICs. */
export function vmFixture(over: { name?: string; namespace?: string; runStrategy?: string } = {}): VirtualMachine {
  const name = over.name ?? "db-1";
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachine",
    metadata: {
      name,
      namespace: over.namespace ?? "vms",
      uid: "11111111-2222-3333-4444-555555555555",
      resourceVersion: "42",
      creationTimestamp: "2026-01-01T00:00:00Z",
      generation: 3,
      labels: { app: "db" },
      annotations: { "kubevirt.io/latest-observed-api-version": "v1", note: "keep" },
      finalizers: ["kubevirt.io/virtualMachineControllerFinalize"],
      managedFields: [{ manager: "kubectl" }],
    },
    spec: {
      runStrategy: over.runStrategy ?? "Always",
      dataVolumeTemplates: [
        {
          metadata: { name: `${name}-rootdisk` },
          spec: { source: { blank: {} }, storage: { storageClassName: "standard", accessModes: ["ReadWriteMany"], volumeMode: "Block", resources: { requests: { storage: "20Gi" } } } },
        },
      ],
      template: {
        metadata: { labels: { "kubevirt.io/vm": name } },
        spec: {
          domain: {
            cpu: { cores: 4 },
            memory: { guest: "8Gi" },
            firmware: { uuid: "6a1a2b3c-0000-4000-8000-000000000001" },
            devices: {
              disks: [
                { name: "rootdisk", disk: { bus: "virtio" } },
                { name: "data", disk: { bus: "virtio" } },
                { name: "cloudinit", disk: { bus: "virtio" } },
              ],
              interfaces: [
                { name: "default", masquerade: {}, macAddress: "02:00:00:00:00:01" },
                { name: "vlan100", bridge: {}, macAddress: "02:00:00:00:01:01" },
              ],
            },
          },
          networks: [
            { name: "default", pod: {} },
            { name: "vlan100", multus: { networkName: "vms/vlan100" } },
          ],
          volumes: [
            { name: "rootdisk", dataVolume: { name: `${name}-rootdisk` } },
            { name: "data", persistentVolumeClaim: { claimName: `${name}-data` } },
            { name: "cloudinit", cloudInitNoCloud: { userDataSecretRef: { name: `${name}-userdata` } } },
          ],
        },
      },
    },
    status: { printableStatus: "Running", ready: true, created: true },
  };
}

export function vmiFixture(vm: VirtualMachine, over: { phase?: string; node?: string } = {}): VirtualMachineInstance {
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachineInstance",
    metadata: { name: vm.metadata.name, namespace: vm.metadata.namespace, uid: "vmi-uid-1" },
    spec: structuredClone(vm.spec.template.spec),
    status: {
      phase: over.phase ?? "Running",
      nodeName: over.node ?? "a-node-1",
      conditions: [{ type: "LiveMigratable", status: "True" }],
      volumeStatus: [
        { name: "rootdisk", persistentVolumeClaimInfo: { claimName: `${vm.metadata.name}-rootdisk`, capacity: { storage: "20Gi" }, accessModes: ["ReadWriteMany"], volumeMode: "Block" } },
        { name: "data", persistentVolumeClaimInfo: { claimName: `${vm.metadata.name}-data`, capacity: { storage: "50Gi" }, accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" } },
      ],
    },
  };
}

export function pvcFixture(name: string, over: { storageClass?: string; size?: string; volumeMode?: string; accessModes?: string[]; namespace?: string } = {}): Pvc {
  return {
    apiVersion: "v1",
    kind: "PersistentVolumeClaim",
    metadata: { name, namespace: over.namespace ?? "vms" },
    spec: { storageClassName: over.storageClass ?? "standard", volumeMode: over.volumeMode ?? "Block", accessModes: over.accessModes ?? ["ReadWriteMany"], resources: { requests: { storage: over.size ?? "50Gi" } } },
    status: { phase: "Bound", capacity: { storage: over.size ?? "50Gi" }, accessModes: over.accessModes ?? ["ReadWriteMany"] },
  };
}

export function dvFixture(name: string, phase = "Succeeded", namespace = "vms"): DataVolume {
  return {
    apiVersion: "cdi.kubevirt.io/v1beta1",
    kind: "DataVolume",
    metadata: { name, namespace },
    spec: { source: { blank: {} }, storage: { storageClassName: "standard", resources: { requests: { storage: "50Gi" } } } },
    status: { phase },
  };
}

export function vmimFixture(name: string, namespace: string, spec: Vmim["spec"], status?: Vmim["status"], labels: Record<string, string> = {}): Vmim {
  return { apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstanceMigration", metadata: { name, namespace, labels }, spec, ...(status ? { status } : {}) };
}

export function kubevirtFixture(over: { featureGates?: string[]; disabled?: string[]; methods?: string[]; addresses?: string[] } = {}): KubeVirtCr {
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "KubeVirt",
    metadata: { name: "kubevirt", namespace: "kubevirt" },
    spec: {
      configuration: { developerConfiguration: { featureGates: over.featureGates ?? ["DecentralizedLiveMigration"], ...(over.disabled ? { disabledFeatureGates: over.disabled } : {}) }, vmRolloutStrategy: "LiveUpdate" },
      workloadUpdateStrategy: { workloadUpdateMethods: over.methods ?? ["LiveMigrate"] },
    },
    status: { phase: "Deployed", observedKubeVirtVersion: "v1.8.2", synchronizationAddresses: over.addresses ?? ["127.0.0.1:9185"] },
  };
}
