// Storage capacity tracking as a CSI driver's external-provisioner does it (kubernetes-csi
// external-provisioner pkg/capacity): for each storage class that has a capacity, one
// `storage.k8s.io/v1` CSIStorageCapacity object (generateName "csisc-", labels
// csi.storage.k8s.io/drivername and csi.storage.k8s.io/managed-by) with the space left to provision.
//
// The sim's storage has no driver to ask (GetCapacity), so the class says its size in the annotation
// `sim.kubevirt.io/storage-capacity` (the scenario's `capacity`), and what is left is that size minus
// the requests of the class's Bound PVCs: it shrinks as volumes bind and grows as they go. Classes
// without the annotation get no object, as with most drivers. One object per class, with an empty
// nodeTopology (reachable from every node): network storage, not per-node pools.
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import type { Controller, SimCluster } from "../cluster.js";
import { getKubeVirt } from "../kubevirt/index.js";
import { formatBytes, parseQuantity } from "../kubevirt/util.js";
import { WorkQueue } from "../kubevirt/workqueue.js";
import { AnnStorageCapacity } from "./storage.js";

export const DriverNameLabel = "csi.storage.k8s.io/drivername";
export const ManagedByLabel = "csi.storage.k8s.io/managed-by";
const MANAGED_BY = "external-provisioner";
/** Where the objects live: the driver's namespace in a real cluster. */
export const CAPACITY_NAMESPACE = "kube-system";
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** The class's total size in bytes, or undefined when it publishes no capacity. */
export function classCapacity(sc: KObject | undefined): number | undefined {
  const q = sc?.metadata.annotations?.[AnnStorageCapacity];
  if (q === undefined) return undefined;
  const n = parseQuantity(q);
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** Bytes a Bound claim holds: its capacity, else its request. */
function claimBytes(pvc: KObject): number {
  const n = parseQuantity(pvc.status?.capacity?.storage ?? pvc.spec?.resources?.requests?.storage);
  return Number.isFinite(n) ? n : 0;
}

export class CapacityPublisher implements Controller {
  private readonly queue: WorkQueue;
  private unsubscribe?: () => void;

  constructor(private readonly cluster: SimCluster) {
    this.queue = new WorkQueue("storage-capacity", cluster.clock, (cls) => this.reconcile(cls), {
      onError: (k, e) => getKubeVirt(cluster)?.sim.reportError("storage-capacity", k, e),
    });
  }

  private get store() {
    return this.cluster.store;
  }

  private onEvent(e: StoreEvent): void {
    const o = e.object;
    if (e.rt === R.StorageClass) this.queue.add(o.metadata.name);
    else if (e.rt === R.PersistentVolumeClaim) {
      // Only a change of what is Bound moves the numbers.
      const before = e.type === "DELETED" ? (e.old ?? o) : e.old;
      const was = before?.status?.phase === "Bound" ? before : undefined;
      const is = e.type !== "DELETED" && o.status?.phase === "Bound" ? o : undefined;
      if ((was || is) && (!was || !is || claimBytes(was) !== claimBytes(is))) this.queue.add(String(o.spec?.storageClassName ?? ""));
    } else if (e.rt === R.CSIStorageCapacity && o.metadata.labels?.[ManagedByLabel] === MANAGED_BY) {
      // Someone edited or deleted one of ours: put it right, as the provisioner's informer does.
      this.queue.add(String(o.storageClassName ?? ""));
    }
  }

  start(): void {
    if (this.unsubscribe) return;
    this.unsubscribe = this.store.subscribe((e) => this.onEvent(e));
    for (const sc of this.store.list(R.StorageClass).items) this.queue.add(sc.metadata.name);
  }

  stop(): void {
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.queue.stop();
  }

  private ours(cls: string): KObject[] {
    return this.store
      .list(R.CSIStorageCapacity, { namespace: CAPACITY_NAMESPACE })
      .items.filter((c) => c.metadata.labels?.[ManagedByLabel] === MANAGED_BY && c.storageClassName === cls)
      .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }

  private reconcile(cls: string): void {
    if (!cls) return;
    const sc = this.store.tryGet(R.StorageClass, undefined, cls);
    const total = sc?.metadata.deletionTimestamp ? undefined : classCapacity(sc);
    const [first, ...extra] = this.ours(cls);
    for (const dup of total === undefined ? [first, ...extra] : extra) {
      if (dup) this.store.delete(R.CSIStorageCapacity, CAPACITY_NAMESPACE, dup.metadata.name, { internal: true });
    }
    if (total === undefined || !sc) return;
    const bound = this.store
      .list(R.PersistentVolumeClaim)
      .items.filter((p) => p.spec?.storageClassName === cls && p.status?.phase === "Bound")
      .reduce((sum, p) => sum + claimBytes(p), 0);
    const capacity = formatBytes(Math.max(0, total - bound));
    if (first) {
      if (first.capacity !== capacity) {
        this.store.modify(R.CSIStorageCapacity, CAPACITY_NAMESPACE, first.metadata.name, (o) => {
          o.capacity = capacity;
        });
      }
      return;
    }
    if (!this.store.tryGet(R.Namespace, undefined, CAPACITY_NAMESPACE)) {
      this.store.create(R.Namespace, { metadata: { name: CAPACITY_NAMESPACE, labels: { "kubernetes.io/metadata.name": CAPACITY_NAMESPACE } } }, { internal: true });
    }
    const driver = String(sc.provisioner ?? "");
    this.store.create(
      R.CSIStorageCapacity,
      {
        metadata: {
          generateName: "csisc-",
          namespace: CAPACITY_NAMESPACE,
          labels: { ...(driver.length <= 63 && LABEL_VALUE.test(driver) ? { [DriverNameLabel]: driver } : {}), [ManagedByLabel]: MANAGED_BY },
        },
        storageClassName: cls,
        nodeTopology: {},
        capacity,
      },
      { internal: true },
    );
  }
}

const handles = new WeakMap<SimCluster, CapacityPublisher>();

export function installCapacityPublisher(cluster: SimCluster): CapacityPublisher {
  const existing = handles.get(cluster);
  if (existing) return existing;
  const h = new CapacityPublisher(cluster);
  handles.set(cluster, h);
  cluster.controllers.push(h);
  return h;
}
