// The Inventory report from a snapshot of the agent's caches. Pure: objects in, message body out.
import type { z } from "zod";
import { Inventory, InventoryNode, InventoryVm, StorageClass, type InventoryOmission } from "../../proto/bus/index.js";
import { NamespaceName } from "../../proto/names.js";
import { quantityBytes } from "../core/quantity.js";
import { kubevirtInfo, type KubeVirtCR } from "./kubevirt.js";
import type { DataVolume, Pvc, VirtualMachine, VirtualMachineInstance } from "../core/kube.js";
import { inventoryVm } from "../core/vm.js";

/** A Kubernetes object as the caches hold it (only what is read here). */
export interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; uid?: string; deletionTimestamp?: unknown };
  [k: string]: unknown;
}

export interface Snapshot {
  kubevirts: KubeVirtCR[];
  /** ConfigMaps named kubevirt-ca (any namespace; the one in the KubeVirt CR's namespace counts). */
  caConfigMaps: Obj[];
  storageClasses: Obj[];
  /** storage.k8s.io/v1 CSIStorageCapacity, all namespaces (CSI drivers publish them in their own). */
  storageCapacities: Obj[];
  nads: Obj[];
  nodes: Obj[];
  namespaces: Obj[];
  vms: Obj[];
  vmis: Obj[];
  pvcs: Obj[];
  dataVolumes: Obj[];
}

export type InventoryBody = Omit<Inventory, "apiVersion" | "kind" | "cluster" | "epoch" | "seq">;

export const KUBEVIRT_CA_CONFIGMAP = "kubevirt-ca";
export const CA_BUNDLE_KEY = "ca-bundle";
const DEFAULT_CLASS_ANNOTATION = "storageclass.kubernetes.io/is-default-class";

const nsName = (o: Obj) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;

/** The KubeVirt CR in use: the one Deployed, else the first; and its kubevirt-ca bundle. */
export function activeKubeVirt(s: Pick<Snapshot, "kubevirts" | "caConfigMaps">): { kv: KubeVirtCR; caBundle: string | undefined } | undefined {
  const kv = s.kubevirts.find((k) => k.status?.phase === "Deployed") ?? s.kubevirts[0];
  if (!kv) return undefined;
  const cm = s.caConfigMaps.find((c) => c.metadata?.namespace === kv.metadata?.namespace && c.metadata?.name === KUBEVIRT_CA_CONFIGMAP);
  const bundle = (cm?.["data"] as Record<string, string> | undefined)?.[CA_BUNDLE_KEY];
  return { kv, caBundle: bundle && bundle.includes("-----BEGIN CERTIFICATE-----") ? bundle : undefined };
}

/** Why there is no inventory yet, or the inventory (every item valid, within `maxBytes` as JSON). */
export function buildInventory(s: Snapshot, now: Date, maxBytes = Number.MAX_SAFE_INTEGER): { ok: true; body: InventoryBody } | { ok: false; reason: string } {
  const active = activeKubeVirt(s);
  if (!active) return { ok: false, reason: "no KubeVirt CR (kubevirt.io/v1 KubeVirt) in the cluster: install KubeVirt" };
  const kubevirt = kubevirtInfo(active.kv, active.caBundle);
  if (!kubevirt) return { ok: false, reason: `ConfigMap ${active.kv.metadata?.namespace ?? "?"}/${KUBEVIRT_CA_CONFIGMAP} has no ${CA_BUNDLE_KEY} yet (virt-operator writes it)` };

  const byNamespace = <T extends Obj>(objs: T[]) => {
    const m = new Map<string, T[]>();
    for (const o of objs) {
      const ns = o.metadata?.namespace ?? "";
      let list = m.get(ns);
      if (!list) m.set(ns, (list = []));
      list.push(o);
    }
    return m;
  };
  const pvcs = byNamespace(s.pvcs);
  const dvs = byNamespace(s.dataVolumes);
  const vmis = new Map(s.vmis.map((v) => [nsName(v), v as unknown as VirtualMachineInstance]));
  const capacityByClass = classCapacities(s.storageCapacities);

  const body: InventoryBody = {
    observedAt: now.toISOString(),
    kubevirt,
    storageClasses: s.storageClasses.map((sc) => storageClass(sc, capacityByClass)).sort(byName),
    networks: s.nads.map((n) => ({ namespace: n.metadata!.namespace!, name: n.metadata!.name! })).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)),
    nodes: s.nodes.map(node).sort(byName),
    namespaces: s.namespaces.filter((n) => !n.metadata?.deletionTimestamp).map((n) => n.metadata!.name!).sort(),
    vms: s.vms
      .map((vm): InventoryVm => {
        const ns = vm.metadata?.namespace ?? "";
        return inventoryVm(vm as unknown as VirtualMachine, vmis.get(nsName(vm)), { pvcs: (pvcs.get(ns) ?? []) as unknown as Pvc[], dataVolumes: (dvs.get(ns) ?? []) as unknown as DataVolume[] });
      })
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)),
  };
  return { ok: true, body: fitInventory(body, maxBytes) };
}

/** Room left in a report for its envelope (apiVersion, kind, cluster, epoch, seq). */
const ENVELOPE_BYTES = 1024;
const MAX_OMISSIONS_LISTED = 100;
const LIST_LIMITS = { vms: 20_000, nodes: 5000, storageClasses: 256, networks: 4096, namespaces: 10_000 } as const;

/**
 * Keeps what the bus schema accepts and drops (naming each) what it would refuse, so one odd object
 * (a VM with more labels than ferry carries, say) never makes the whole report invalid and the
 * cluster invisible; then leaves out VMs from the end until the report fits `maxBytes`.
 */
export function fitInventory(body: InventoryBody, maxBytes: number): InventoryBody {
  const omitted: InventoryOmission[] = [];
  let total = 0;
  const omit = (kind: InventoryOmission["kind"], name: string, reason: string) => {
    total++;
    if (omitted.length < MAX_OMISSIONS_LISTED) omitted.push({ kind, name: name.slice(0, 320), reason: reason.slice(0, 1024) });
  };
  const keep = <T>(items: T[], schema: { safeParse(v: unknown): { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } } }, kind: InventoryOmission["kind"], nameOf: (t: T) => string, max: number): T[] => {
    const out: T[] = [];
    for (const item of items) {
      const r = schema.safeParse(item);
      if (!r.success) {
        const issue = r.error!.issues[0]!;
        omit(kind, nameOf(item), `ferry cannot carry it: ${issue.path.map(String).join(".") || "value"}: ${issue.message}`);
      } else if (out.length >= max) omit(kind, nameOf(item), `more than ${max} ${kind}s in one cluster`);
      else out.push(item);
    }
    return out;
  };
  const vmName = (v: InventoryVm) => `${v.namespace}/${v.name}`;
  const fitted: InventoryBody = {
    ...body,
    storageClasses: keep(body.storageClasses, StorageClass, "StorageClass", (c) => c.name, LIST_LIMITS.storageClasses),
    networks: keep(body.networks, Inventory.shape.networks.element, "Network", (n) => `${n.namespace}/${n.name}`, LIST_LIMITS.networks),
    nodes: keep(body.nodes, InventoryNode, "Node", (n) => n.name, LIST_LIMITS.nodes),
    namespaces: keep(body.namespaces, NamespaceName, "Namespace", (n) => n, LIST_LIMITS.namespaces),
    vms: keep(body.vms, InventoryVm, "VirtualMachine", vmName, LIST_LIMITS.vms),
  };
  // Over the bus limit: report the VMs that fit, name the rest (JSON size is additive per entry).
  const budget = maxBytes - ENVELOPE_BYTES - 64 * 1024; // room for the omissions list itself
  let size = Buffer.byteLength(JSON.stringify({ ...fitted, vms: [] }));
  const vms: InventoryVm[] = [];
  for (const vm of fitted.vms) {
    const add = Buffer.byteLength(JSON.stringify(vm)) + 1;
    if (size + add > budget) omit("VirtualMachine", vmName(vm), `the inventory would exceed the bus limit of ${Math.round(maxBytes / 2 ** 20)} MiB; ferry reports the VMs that fit`);
    else {
      size += add;
      vms.push(vm);
    }
  }
  return { ...fitted, vms, ...(total > 0 ? { omitted: { total, items: omitted } } : {}) };
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

/**
 * Free space per storage class: the sum of `capacity` over its CSIStorageCapacity objects, one per
 * topology segment. An object without `nodeTopology` serves no node, one without `capacity` has no
 * figure yet ("currently not available"): neither counts, and a class none of whose objects counts
 * has no entry (unknown, not zero).
 */
export function classCapacities(objects: readonly Obj[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const o of objects) {
    const cls = o["storageClassName"];
    const bytes = quantityBytes(o["capacity"]);
    if (typeof cls !== "string" || !cls || bytes === undefined || o["nodeTopology"] === undefined || o["nodeTopology"] === null || o.metadata?.deletionTimestamp) continue;
    // Clamped: a figure beyond 2^53 (8 PiB) must not make the bus schema drop the whole class.
    out.set(cls, Math.min(Number.MAX_SAFE_INTEGER, (out.get(cls) ?? 0) + Math.max(0, bytes)));
  }
  return out;
}

function storageClass(sc: Obj, capacities: ReadonlyMap<string, number>): z.infer<typeof StorageClass> {
  const capacityBytes = capacities.get(sc.metadata!.name!);
  return {
    name: sc.metadata!.name!,
    provisioner: typeof sc["provisioner"] === "string" && sc["provisioner"] ? sc["provisioner"] : "unknown",
    volumeBindingMode: sc["volumeBindingMode"] === "WaitForFirstConsumer" ? "WaitForFirstConsumer" : "Immediate",
    isDefault: sc.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === "true" || sc.metadata?.annotations?.["storageclass.beta.kubernetes.io/is-default-class"] === "true",
    ...(capacityBytes !== undefined ? { capacityBytes } : {}),
  };
}

function node(n: Obj): z.infer<typeof InventoryNode> {
  const spec = (n["spec"] ?? {}) as { unschedulable?: boolean };
  const status = (n["status"] ?? {}) as { allocatable?: Record<string, string>; conditions?: { type: string; status: string }[]; nodeInfo?: { architecture?: string } };
  const ready = status.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  return {
    name: n.metadata!.name!,
    architecture: n.metadata?.labels?.["kubernetes.io/arch"] ?? status.nodeInfo?.architecture ?? "unknown",
    schedulable: ready && spec.unschedulable !== true,
    allocatableMemoryBytes: quantityBytes(status.allocatable?.["memory"]) ?? 0,
  };
}

