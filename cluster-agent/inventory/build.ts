// The Inventory report from a snapshot of the agent's caches. Pure: objects in, message body out.
import type { z } from "zod";
import type { Inventory, InventoryNode, InventoryVm, StorageClass } from "../../proto/bus/index.js";
import { kubevirtInfo, quantity, type KubeVirtCR } from "./kubevirt.js";
import { vmSummary, type ClaimInfo, type KubeVm, type KubeVmi } from "./vm.js";

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

/** Why there is no inventory yet, or the inventory. */
export function buildInventory(s: Snapshot, now: Date): { ok: true; body: InventoryBody } | { ok: false; reason: string } {
  const active = activeKubeVirt(s);
  if (!active) return { ok: false, reason: "no KubeVirt CR (kubevirt.io/v1 KubeVirt) in the cluster: install KubeVirt" };
  const kubevirt = kubevirtInfo(active.kv, active.caBundle);
  if (!kubevirt) return { ok: false, reason: `ConfigMap ${active.kv.metadata?.namespace ?? "?"}/${KUBEVIRT_CA_CONFIGMAP} has no ${CA_BUNDLE_KEY} yet (virt-operator writes it)` };

  const claims = new Map<string, ClaimInfo>();
  for (const dv of s.dataVolumes) claims.set(nsName(dv), claimOfDataVolume(dv));
  for (const pvc of s.pvcs) claims.set(nsName(pvc), { ...claims.get(nsName(pvc)), ...claimOfPvc(pvc) });
  const vmis = new Map(s.vmis.map((v) => [nsName(v), v as KubeVmi]));

  const body: InventoryBody = {
    observedAt: now.toISOString(),
    kubevirt,
    storageClasses: s.storageClasses.map(storageClass).sort(byName),
    networks: s.nads.map((n) => ({ namespace: n.metadata!.namespace!, name: n.metadata!.name! })).sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)),
    nodes: s.nodes.map(node).sort(byName),
    namespaces: s.namespaces.filter((n) => !n.metadata?.deletionTimestamp).map((n) => n.metadata!.name!).sort(),
    vms: s.vms
      .map((vm): InventoryVm => vmSummary(vm as KubeVm, vmis.get(nsName(vm)), (ns, claim) => claims.get(`${ns}/${claim}`)))
      .sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`)),
  };
  return { ok: true, body };
}

const byName = (a: { name: string }, b: { name: string }) => a.name.localeCompare(b.name);

function storageClass(sc: Obj): z.infer<typeof StorageClass> {
  return {
    name: sc.metadata!.name!,
    provisioner: typeof sc["provisioner"] === "string" && sc["provisioner"] ? sc["provisioner"] : "unknown",
    volumeBindingMode: sc["volumeBindingMode"] === "WaitForFirstConsumer" ? "WaitForFirstConsumer" : "Immediate",
    isDefault: sc.metadata?.annotations?.[DEFAULT_CLASS_ANNOTATION] === "true" || sc.metadata?.annotations?.["storageclass.beta.kubernetes.io/is-default-class"] === "true",
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
    allocatableMemoryBytes: quantity(status.allocatable?.["memory"]) ?? 0,
  };
}

function claimOfPvc(pvc: Obj): ClaimInfo {
  const spec = (pvc["spec"] ?? {}) as { storageClassName?: string; volumeMode?: string; accessModes?: string[]; resources?: { requests?: Record<string, string> } };
  const status = (pvc["status"] ?? {}) as { capacity?: Record<string, string> };
  const info: ClaimInfo = {};
  const size = quantity(status.capacity?.["storage"]) ?? quantity(spec.resources?.requests?.["storage"]);
  if (size !== undefined) info.sizeBytes = size;
  if (spec.storageClassName) info.storageClass = spec.storageClassName;
  if (spec.volumeMode) info.volumeMode = spec.volumeMode;
  if (spec.accessModes) info.accessModes = spec.accessModes;
  return info;
}

function claimOfDataVolume(dv: Obj): ClaimInfo {
  const spec = (dv["spec"] ?? {}) as { storage?: ClaimSpec; pvc?: ClaimSpec };
  const c = spec.storage ?? spec.pvc ?? {};
  const info: ClaimInfo = {};
  const size = quantity(c.resources?.requests?.["storage"]);
  if (size !== undefined) info.sizeBytes = size;
  if (c.storageClassName) info.storageClass = c.storageClassName;
  if (c.volumeMode) info.volumeMode = c.volumeMode;
  if (c.accessModes) info.accessModes = c.accessModes;
  return info;
}

interface ClaimSpec {
  storageClassName?: string;
  volumeMode?: string;
  accessModes?: string[];
  resources?: { requests?: Record<string, string> };
}
