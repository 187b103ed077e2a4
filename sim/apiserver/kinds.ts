// Per-kind behaviour of the API server that kube-apiserver gets from each type's registry strategy
// (built-in kinds) or from the CRD (custom resources): printer columns for `kubectl get`, the field
// selectors a kind supports, whether DELETE answers with the object or a Status, whether PUT may
// create, and strategic-merge-patch list keys. Kept apart from resources.ts so that adding a kind
// there needs nothing here (defaults apply).
import { jsonPath } from "./jsonpath.js";
import type { ResourceType } from "./resources.js";
import type { KObject } from "./store.js";

export interface Column {
  name: string;
  type: "string" | "date" | "integer" | "number" | "boolean";
  format?: string;
  description?: string;
  /** 0 = always shown; 1 = only with `-o wide`. */
  priority?: number;
  /** A CRD printer column (`additionalPrinterColumns[].jsonPath`). */
  jsonPath?: string;
  /** A built-in printer's computed cell. */
  cell?: (o: KObject, now: number) => unknown;
}

export interface KindInfo {
  /** Columns after NAME (which every table starts with). */
  columns: Column[];
  /** The NAME cell, when a built-in printer decorates it; null when the printer has no leading NAME
   *  column (events: their columns say everything). */
  nameCell?: ((o: KObject) => string) | null;
  /** Field selector keys besides metadata.name and metadata.namespace. */
  fieldSelectors: string[];
  /** DELETE answers with the object (true) or a `Status` of success (false). */
  returnDeletedObject: boolean;
  /** PUT of a missing object creates it. */
  allowCreateOnUpdate: boolean;
  /** PUT without metadata.resourceVersion is allowed (false for custom resources). */
  allowUnconditionalUpdate: boolean;
  /** Built into kube-apiserver, so strategic merge patch is accepted (custom resources: 415). */
  builtin: boolean;
  /** Strategic-merge list handling by field path (dotted, from the object root): the merge key, or
   *  "$primitive" for a merged list of scalars. */
  mergeKeys: Record<string, string>;
}

const age: Column = { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp", description: "CreationTimestamp is a timestamp representing the server time when this object was created." };

/** k8s.io/apimachinery/pkg/util/duration.HumanDuration. */
export function humanDuration(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) {
    const s = seconds % 60;
    return s === 0 ? `${minutes}m` : `${minutes}m${s}s`;
  }
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) {
    const m = minutes % 60;
    return m === 0 ? `${hours}h` : `${hours}h${m}m`;
  }
  if (hours < 48) return `${hours}h`;
  if (hours < 24 * 8) {
    const h = hours % 24;
    return h === 0 ? `${Math.floor(hours / 24)}d` : `${Math.floor(hours / 24)}d${h}h`;
  }
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24)}d`;
  if (hours < 24 * 365 * 8) {
    const dy = Math.floor(hours / 24) % 365;
    const y = Math.floor(hours / 24 / 365);
    return dy === 0 ? `${y}y` : `${y}y${dy}d`;
  }
  return `${Math.floor(hours / 24 / 365)}y`;
}

export function since(ts: unknown, now: number): string {
  if (typeof ts !== "string") return "<unknown>";
  const t = Date.parse(ts);
  return Number.isNaN(t) ? "<invalid>" : humanDuration(now - t);
}

const ageCell = (o: KObject, now: number) => since(o.metadata.creationTimestamp, now);
const builtinAge: Column = { name: "Age", type: "string", description: age.description, cell: ageCell };

const ACCESS_MODES: Record<string, string> = { ReadWriteOnce: "RWO", ReadOnlyMany: "ROX", ReadWriteMany: "RWX", ReadWriteOncePod: "RWOP" };

function nodeStatus(o: KObject): string {
  const ready = (o.status?.conditions as { type: string; status: string }[] | undefined)?.find((c) => c.type === "Ready");
  let s = ready?.status === "True" ? "Ready" : ready ? "NotReady" : "Unknown";
  if (o.spec?.unschedulable) s += ",SchedulingDisabled";
  return s;
}

function nodeRoles(o: KObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter((k) => k.startsWith("node-role.kubernetes.io/"))
    .map((k) => k.slice("node-role.kubernetes.io/".length))
    .filter((r) => r !== "");
  return roles.length ? roles.sort().join(",") : "<none>";
}

function nodeAddress(o: KObject, type: string): string {
  const a = (o.status?.addresses as { type: string; address: string }[] | undefined)?.find((x) => x.type === type);
  return a?.address ?? "<none>";
}

/** kubectl's READY cell: ready containers / containers. */
function podReady(o: KObject): string {
  const statuses = (o.status?.containerStatuses ?? []) as { ready?: boolean }[];
  return `${statuses.filter((c) => c.ready).length}/${(o.spec?.containers ?? []).length}`;
}

const dataCount = (o: KObject) => Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length;

const BUILTIN: Record<string, Partial<KindInfo>> = {
  Namespace: {
    columns: [{ name: "Status", type: "string", cell: (o) => o.status?.phase ?? "" }, builtinAge],
    fieldSelectors: ["status.phase"],
    returnDeletedObject: true,
  },
  Node: {
    columns: [
      { name: "Status", type: "string", cell: nodeStatus },
      { name: "Roles", type: "string", cell: nodeRoles },
      builtinAge,
      { name: "Version", type: "string", cell: (o) => o.status?.nodeInfo?.kubeletVersion ?? "" },
      { name: "Internal-IP", type: "string", priority: 1, cell: (o) => nodeAddress(o, "InternalIP") },
      { name: "External-IP", type: "string", priority: 1, cell: (o) => nodeAddress(o, "ExternalIP") },
      { name: "OS-Image", type: "string", priority: 1, cell: (o) => o.status?.nodeInfo?.osImage ?? "<unknown>" },
      { name: "Kernel-Version", type: "string", priority: 1, cell: (o) => o.status?.nodeInfo?.kernelVersion ?? "<unknown>" },
      { name: "Container-Runtime", type: "string", priority: 1, cell: (o) => o.status?.nodeInfo?.containerRuntimeVersion ?? "<unknown>" },
    ],
    fieldSelectors: ["spec.unschedulable"],
    mergeKeys: { "status.conditions": "type", "status.addresses": "type" },
  },
  ConfigMap: { columns: [{ name: "Data", type: "integer", cell: dataCount }, builtinAge] },
  Pod: {
    columns: [
      { name: "Ready", type: "string", cell: podReady },
      { name: "Status", type: "string", cell: (o) => (o.metadata.deletionTimestamp ? "Terminating" : (o.status?.reason ?? o.status?.phase ?? "")) },
      { name: "Restarts", type: "string", cell: (o) => String(((o.status?.containerStatuses ?? []) as { restartCount?: number }[]).reduce((n, c) => n + (c.restartCount ?? 0), 0)) },
      builtinAge,
      { name: "IP", type: "string", priority: 1, cell: (o) => o.status?.podIP ?? "<none>" },
      { name: "Node", type: "string", priority: 1, cell: (o) => o.spec?.nodeName ?? "<none>" },
      { name: "Nominated Node", type: "string", priority: 1, cell: (o) => o.status?.nominatedNodeName ?? "<none>" },
      { name: "Readiness Gates", type: "string", priority: 1, cell: () => "<none>" },
    ],
    // pkg/registry/core/pod/strategy.go PodToSelectableFields
    fieldSelectors: ["spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"],
    mergeKeys: { "status.conditions": "type" },
  },
  Secret: {
    columns: [{ name: "Type", type: "string", cell: (o) => o.type ?? "Opaque" }, { name: "Data", type: "integer", cell: dataCount }, builtinAge],
    fieldSelectors: ["type"],
  },
  PersistentVolumeClaim: {
    columns: [
      { name: "Status", type: "string", cell: (o) => (o.metadata.deletionTimestamp ? "Terminating" : (o.status?.phase ?? "")) },
      { name: "Volume", type: "string", cell: (o) => o.spec?.volumeName ?? "" },
      { name: "Capacity", type: "string", cell: (o) => o.status?.capacity?.storage ?? "" },
      { name: "Access Modes", type: "string", cell: (o) => ((o.status?.accessModes ?? []) as string[]).map((m) => ACCESS_MODES[m] ?? m).join(",") },
      { name: "StorageClass", type: "string", cell: (o) => o.spec?.storageClassName ?? "<unset>" },
      { name: "VolumeAttributesClass", type: "string", cell: (o) => o.spec?.volumeAttributesClassName ?? "<unset>" },
      builtinAge,
      { name: "VolumeMode", type: "string", priority: 1, cell: (o) => o.spec?.volumeMode ?? "<unset>" },
    ],
    returnDeletedObject: true,
    mergeKeys: { "status.conditions": "type" },
  },
  Event: {
    nameCell: null,
    columns: [
      { name: "Last Seen", type: "string", cell: (o, now) => since(o.lastTimestamp ?? o.eventTime ?? o.metadata.creationTimestamp, now) },
      { name: "Type", type: "string", cell: (o) => o.type ?? "" },
      { name: "Reason", type: "string", cell: (o) => o.reason ?? "" },
      { name: "Object", type: "string", cell: (o) => `${String(o.involvedObject?.kind ?? "").toLowerCase()}/${o.involvedObject?.name ?? ""}` },
      { name: "Subobject", type: "string", priority: 1, cell: (o) => o.involvedObject?.fieldPath ?? "" },
      { name: "Source", type: "string", priority: 1, cell: (o) => [o.source?.component, o.source?.host].filter(Boolean).join(", ") },
      { name: "Message", type: "string", cell: (o) => String(o.message ?? "").trim() },
      { name: "First Seen", type: "string", priority: 1, cell: (o, now) => since(o.firstTimestamp ?? o.metadata.creationTimestamp, now) },
      { name: "Count", type: "string", priority: 1, cell: (o) => String(o.count ?? 1) },
      { name: "Name", type: "string", priority: 1, cell: (o) => o.metadata.name },
    ],
    fieldSelectors: [
      "involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
      "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
      "reason", "reportingComponent", "source", "type",
    ],
    allowCreateOnUpdate: true,
  },
  StorageClass: {
    nameCell: (o) => (o.metadata.annotations?.["storageclass.kubernetes.io/is-default-class"] === "true" ? `${o.metadata.name} (default)` : o.metadata.name),
    columns: [
      { name: "Provisioner", type: "string", cell: (o) => o.provisioner ?? "" },
      { name: "ReclaimPolicy", type: "string", cell: (o) => o.reclaimPolicy ?? "Delete" },
      { name: "VolumeBindingMode", type: "string", cell: (o) => o.volumeBindingMode ?? "Immediate" },
      { name: "AllowVolumeExpansion", type: "string", cell: (o) => String(o.allowVolumeExpansion ?? false) },
      builtinAge,
    ],
  },
  // pkg/printers/internalversion printCSIStorageCapacity: no Age column.
  CSIStorageCapacity: {
    columns: [
      { name: "StorageClassName", type: "string", cell: (o) => o.storageClassName ?? "" },
      { name: "Capacity", type: "string", cell: (o) => (o.capacity === undefined || o.capacity === null ? "<unset>" : String(o.capacity)) },
    ],
  },
  Lease: {
    columns: [{ name: "Holder", type: "string", cell: (o) => o.spec?.holderIdentity ?? "" }, builtinAge],
    allowCreateOnUpdate: true,
  },
};

/** CRD printer columns, from KubeVirt's crds.go and CDI's types.go kubebuilder markers. */
const CRD_COLUMNS: Record<string, Column[]> = {
  KubeVirt: [age, { name: "Phase", type: "string", jsonPath: ".status.phase" }],
  VirtualMachine: [
    age,
    { name: "Status", type: "string", jsonPath: ".status.printableStatus", description: "Human Readable Status" },
    { name: "Ready", type: "string", jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
  ],
  VirtualMachineInstance: [
    age,
    { name: "Phase", type: "string", jsonPath: ".status.phase" },
    { name: "IP", type: "string", jsonPath: ".status.interfaces[0].ipAddress" },
    { name: "NodeName", type: "string", jsonPath: ".status.nodeName" },
    { name: "Ready", type: "string", jsonPath: ".status.conditions[?(@.type=='Ready')].status" },
    { name: "Live-Migratable", type: "string", jsonPath: ".status.conditions[?(@.type=='LiveMigratable')].status", priority: 1 },
    { name: "Paused", type: "string", jsonPath: ".status.conditions[?(@.type=='Paused')].status", priority: 1 },
  ],
  VirtualMachineInstanceMigration: [
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "The current phase of VM instance migration" },
    { name: "VMI", type: "string", jsonPath: ".spec.vmiName", description: "The name of the VMI to perform the migration on" },
  ],
  DataVolume: [
    { name: "Phase", type: "string", jsonPath: ".status.phase", description: "The phase the data volume is in" },
    { name: "Progress", type: "string", jsonPath: ".status.progress", description: "Transfer progress in percentage if known, N/A otherwise" },
    { name: "Restarts", type: "integer", jsonPath: ".status.restartCount", description: "The number of times the transfer has been restarted." },
    age,
  ],
};

const BUILTIN_GROUPS = new Set(["", "storage.k8s.io", "coordination.k8s.io", "apps", "batch", "policy", "rbac.authorization.k8s.io"]);
const infoCache = new Map<string, KindInfo>();

export function kindInfo(rt: ResourceType): KindInfo {
  const key = `${rt.group}/${rt.kind}`;
  const hit = infoCache.get(key);
  if (hit) return hit;
  const builtin = BUILTIN_GROUPS.has(rt.group);
  const b = builtin ? (BUILTIN[rt.kind] ?? {}) : {};
  const info: KindInfo = {
    columns: b.columns ?? (builtin ? [builtinAge] : (CRD_COLUMNS[rt.kind] ?? [age])),
    ...(b.nameCell !== undefined ? { nameCell: b.nameCell } : {}),
    fieldSelectors: b.fieldSelectors ?? [],
    // Custom resources answer DELETE with the object; most built-ins with a Status.
    returnDeletedObject: b.returnDeletedObject ?? !builtin,
    allowCreateOnUpdate: b.allowCreateOnUpdate ?? false,
    allowUnconditionalUpdate: builtin,
    builtin,
    mergeKeys: { "metadata.finalizers": "$primitive", "metadata.ownerReferences": "uid", ...(b.mergeKeys ?? {}) },
  };
  infoCache.set(key, info);
  return info;
}

/** A table cell as kube-apiserver computes it (CRD columns: tableconvertor's rules). */
export function cellOf(col: Column, o: KObject, now: number): unknown {
  if (col.cell) return col.cell(o, now);
  const results = jsonPath(o, col.jsonPath ?? "");
  if (!results.length || results[0] === undefined || results[0] === null) return null;
  const v = results[0];
  switch (col.type) {
    case "date":
      return since(v, now);
    case "string":
      return typeof v === "string" ? v : JSON.stringify(v);
    case "integer":
      return typeof v === "number" && Number.isInteger(v) ? v : null;
    case "number":
      return typeof v === "number" ? v : null;
    case "boolean":
      return typeof v === "boolean" ? v : null;
  }
}
