// Storage defaults CDI takes from StorageProfiles (pkg/storagecapabilities) and the storage
// provisioner/binder the sim stands in for (no PersistentVolume objects are served).
import { R } from "../apiserver/resources.js";
import type { KObject, Store } from "../apiserver/store.js";

/** On a StorageClass: the size of its pool, published as CSIStorageCapacity (capacity.ts). */
export const AnnStorageCapacity = "sim.kubevirt.io/storage-capacity";

export interface ClaimPropertySet {
  accessModes: string[];
  volumeMode: "Filesystem" | "Block";
}

/** A few well-known provisioners' capabilities (CDI storagecapabilities.go), first entry preferred. */
const KNOWN: Record<string, ClaimPropertySet[]> = {
  "rook-ceph.rbd.csi.ceph.com": [
    { accessModes: ["ReadWriteMany"], volumeMode: "Block" },
    { accessModes: ["ReadWriteOnce"], volumeMode: "Block" },
    { accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" },
  ],
  "openshift-storage.rbd.csi.ceph.com": [
    { accessModes: ["ReadWriteMany"], volumeMode: "Block" },
    { accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" },
  ],
  "rook-ceph.cephfs.csi.ceph.com": [{ accessModes: ["ReadWriteMany"], volumeMode: "Filesystem" }],
  "hostpath.csi.kubevirt.io": [{ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" }],
  "kubevirt.io.hostpath-provisioner": [{ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" }],
  "rancher.io/local-path": [{ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" }],
  "kubernetes.io/no-provisioner": [{ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" }],
  "nfs.csi.k8s.io": [{ accessModes: ["ReadWriteMany"], volumeMode: "Filesystem" }],
  "csi.trident.netapp.io": [
    { accessModes: ["ReadWriteMany"], volumeMode: "Filesystem" },
    { accessModes: ["ReadWriteMany"], volumeMode: "Block" },
  ],
  "driver.longhorn.io": [
    { accessModes: ["ReadWriteMany"], volumeMode: "Block" },
    { accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" },
  ],
};

/** The StorageProfile's claimPropertySets: sim annotations on the class first, else the known table. */
export function claimPropertySets(sc: KObject): ClaimPropertySet[] {
  const modes = sc.metadata.annotations?.["sim.kubevirt.io/storage-profile-access-modes"];
  const mode = sc.metadata.annotations?.["sim.kubevirt.io/storage-profile-volume-mode"];
  if (modes || mode) {
    return [{ accessModes: modes ? modes.split(",") : ["ReadWriteOnce"], volumeMode: mode === "Block" ? "Block" : "Filesystem" }];
  }
  const p = String(sc.provisioner ?? "");
  if (KNOWN[p]) return KNOWN[p];
  // provisioners the table does not know: guess from the name, as a StorageProfile admin would set it
  if (p.includes("rbd")) return KNOWN["rook-ceph.rbd.csi.ceph.com"]!;
  if (p.includes("cephfs") || p.includes("nfs")) return [{ accessModes: ["ReadWriteMany"], volumeMode: "Filesystem" }];
  if (p.includes("local") || p.includes("hostpath") || p.includes("lvm") || p.includes("topolvm")) return [{ accessModes: ["ReadWriteOnce"], volumeMode: "Filesystem" }];
  return [];
}

export function isCSI(sc: KObject | undefined): boolean {
  const p = String(sc?.provisioner ?? "");
  return p.includes("csi") || p === "driver.longhorn.io";
}

export function defaultStorageClass(store: Store): KObject | undefined {
  const defaults = store
    .list(R.StorageClass)
    .items.filter((s) => s.metadata.annotations?.["storageclass.kubernetes.io/is-default-class"] === "true")
    .sort((a, b) => Date.parse(b.metadata.creationTimestamp) - Date.parse(a.metadata.creationTimestamp) || a.metadata.name.localeCompare(b.metadata.name));
  return defaults[0];
}

export const isWFFC = (sc: KObject | undefined): boolean => sc?.volumeBindingMode === "WaitForFirstConsumer";
