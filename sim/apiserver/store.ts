// The object store of one simulated cluster: what etcd + kube-apiserver's registry do for it.
// resourceVersion is one monotonic counter per cluster; every committed change becomes a watch
// event kept in a bounded history so watches can resume (or get 410 Gone when too far behind).
// Finalizers, deletionTimestamp, owner-reference garbage collection and namespace termination
// behave as in Kubernetes; admission hooks let KubeVirt/CDI webhooks mutate and validate.
import { randomUUID } from "node:crypto";
import { ApiError, alreadyExists, conflict, gone, invalid, notFound } from "./errors.js";
import { kindInfo } from "./kinds.js";
import { type ResourceType, apiVersionOf, R } from "./resources.js";
import { fieldValue, parseFieldSelector, parseLabelSelector } from "./selectors.js";

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  generateName?: string;
  uid: string;
  resourceVersion: string;
  generation?: number;
  creationTimestamp: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [key: string]: unknown;
}

/** Any Kubernetes object. Kinds are free-form: controllers read `spec`/`status` as they need. */
/* eslint-disable @typescript-eslint/no-explicit-any -- objects of every kind pass through the store */
export interface KObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: any;
  status?: any;
  [key: string]: any;
}
/* eslint-enable @typescript-eslint/no-explicit-any */

/** What callers may pass on create: server-set metadata is optional. */
export type NewObject = Omit<KObject, "metadata" | "apiVersion" | "kind"> & {
  apiVersion?: string;
  kind?: string;
  metadata: Partial<ObjectMeta> & ({ name: string } | { generateName: string });
};

export type EventType = "ADDED" | "MODIFIED" | "DELETED";

export interface StoreEvent {
  type: EventType;
  rt: ResourceType;
  object: KObject;
  /** The object before this change (MODIFIED/DELETED). */
  old?: KObject;
  rv: number;
}

export type Operation = "CREATE" | "UPDATE" | "DELETE";

export interface AdmissionRequest {
  operation: Operation;
  rt: ResourceType;
  /** The object as it will be stored (CREATE/UPDATE); mutating hooks may change it in place. */
  object?: KObject;
  oldObject?: KObject;
  subresource?: "status";
  /** True when the request came from a simulated controller rather than a client (KubeVirt's own
   *  service accounts bypass some of its webhooks). */
  internal: boolean;
}

export type AdmissionHook = (req: AdmissionRequest) => void;

export interface ListOptions {
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
}

export interface WatchOptions extends ListOptions {
  /** Unset or "0": synthetic ADDED for every current object, then changes. Otherwise replay from there. */
  resourceVersion?: string;
}

export interface WriteOptions {
  dryRun?: boolean;
  /** Set by simulated controllers: skips client-only admission and may set status on create. */
  internal?: boolean;
}

export type PropagationPolicy = "Background" | "Foreground" | "Orphan";

export interface DeleteOptions extends WriteOptions {
  propagationPolicy?: PropagationPolicy;
  preconditions?: { uid?: string; resourceVersion?: string };
}

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const FOREGROUND = "foregroundDeletion";
const ORPHAN = "orphan";

const clone = <T>(v: T): T => structuredClone(v);
const keyOf = (rt: ResourceType) => `${rt.group}/${rt.plural}`;
const objKey = (ns: string | undefined, name: string) => `${ns ?? ""}/${name}`;

function randomSuffix(): string {
  const alphabet = "bcdfghjklmnpqrstvwxz2456789"; // kube's generateName alphabet
  let s = "";
  for (let i = 0; i < 5; i++) s += alphabet[Math.floor(Math.random() * alphabet.length)];
  return s;
}

/** Everything but metadata and status: a change here bumps metadata.generation. */
function specPart(o: KObject): string {
  const { metadata: _m, status: _s, ...rest } = o;
  return JSON.stringify(rest);
}

/** Everything but metadata: what bumps the generation of a custom resource without a status subresource. */
function nonMetaPart(o: KObject): string {
  const { metadata: _m, ...rest } = o;
  return JSON.stringify(rest);
}

/** Kinds with metadata.generation: those with a status subresource and every custom resource (as the CRD strategy). */
function hasGeneration(rt: ResourceType): boolean {
  return rt.statusSubresource || !kindInfo(rt).builtin;
}

/** Whether an update bumps metadata.generation (kube's CRD strategy: without a status subresource, status counts too). */
function generationChanged(rt: ResourceType, obj: KObject, old: KObject): boolean {
  if (!hasGeneration(rt)) return false;
  return rt.statusSubresource ? specPart(obj) !== specPart(old) : nonMetaPart(obj) !== nonMetaPart(old);
}

export class Store {
  private rv = 1;
  private readonly objects = new Map<string, Map<string, KObject>>();
  private readonly history: StoreEvent[] = [];
  private readonly listeners = new Set<(e: StoreEvent) => void>();
  /** Watches by resource type, so an event only reaches the watches of its own type. */
  private readonly watchers = new Map<string, Set<(e: StoreEvent) => void>>();
  private readonly mutating: { rt?: ResourceType; hook: AdmissionHook }[] = [];
  private readonly validating: { rt?: ResourceType; hook: AdmissionHook }[] = [];

  constructor(readonly opts: { historySize?: number } = {}) {}

  get resourceVersion(): string {
    return String(this.rv);
  }

  /** Oldest resourceVersion a watch can still resume from. */
  get oldestResumableVersion(): number {
    return this.history.length ? this.history[0]!.rv - 1 : this.rv;
  }

  addMutatingHook(rt: ResourceType | undefined, hook: AdmissionHook): void {
    this.mutating.push({ rt, hook });
  }

  addValidatingHook(rt: ResourceType | undefined, hook: AdmissionHook): void {
    this.validating.push({ rt, hook });
  }

  /** In-process listener for every committed change of every type (controllers use this). */
  subscribe(listener: (e: StoreEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  tryGet(rt: ResourceType, namespace: string | undefined, name: string): KObject | undefined {
    const o = this.table(rt).get(objKey(rt.namespaced ? namespace : undefined, name));
    return o ? clone(o) : undefined;
  }

  get(rt: ResourceType, namespace: string | undefined, name: string): KObject {
    const o = this.tryGet(rt, namespace, name);
    if (!o) throw notFound(rt.plural, rt.group, name);
    return o;
  }

  list(rt: ResourceType, opts: ListOptions = {}): { items: KObject[]; resourceVersion: string } {
    const match = this.matcher(rt, opts);
    const items = [...this.table(rt).values()].filter(match).map(clone);
    items.sort((a, b) =>
      objKey(a.metadata.namespace, a.metadata.name).localeCompare(objKey(b.metadata.namespace, b.metadata.name)),
    );
    return { items, resourceVersion: this.resourceVersion };
  }

  /**
   * Streams changes to `onEvent` until the returned function is called. Throws 410 Gone when
   * `resourceVersion` is older than the retained history, as kube-apiserver does.
   */
  watch(rt: ResourceType, opts: WatchOptions, onEvent: (type: EventType, obj: KObject) => void): () => void {
    const match = this.matcher(rt, opts);
    const from = opts.resourceVersion && opts.resourceVersion !== "0" ? Number(opts.resourceVersion) : undefined;
    if (from !== undefined && (!Number.isInteger(from) || from < 0)) {
      throw new ApiError(400, "BadRequest", `invalid resource version "${opts.resourceVersion}"`);
    }
    if (from !== undefined && from < this.oldestResumableVersion) {
      throw gone(`too old resource version: ${from} (${this.oldestResumableVersion})`);
    }
    const deliver = (e: StoreEvent) => {
      if (keyOf(e.rt) !== keyOf(rt)) return;
      const now = match(e.object);
      const before = e.old !== undefined && match(e.old);
      // An object moving into or out of the selector appears as ADDED / DELETED, as in Kubernetes.
      if (e.type === "MODIFIED") {
        if (now && before) onEvent("MODIFIED", clone(e.object));
        else if (now) onEvent("ADDED", clone(e.object));
        else if (before) onEvent("DELETED", clone(e.object));
      } else if (now) onEvent(e.type, clone(e.object));
    };
    if (from === undefined) {
      for (const o of this.list(rt, opts).items) onEvent("ADDED", o);
    } else {
      for (const e of this.history) if (e.rv > from) deliver(e);
    }
    let set = this.watchers.get(keyOf(rt));
    if (!set) this.watchers.set(keyOf(rt), (set = new Set()));
    set.add(deliver);
    return () => set.delete(deliver);
  }

  create(rt: ResourceType, input: NewObject, opts: WriteOptions = {}): KObject {
    const obj = clone(input) as KObject;
    obj.apiVersion = apiVersionOf(rt);
    obj.kind = rt.kind;
    const meta = (obj.metadata ??= {} as ObjectMeta);
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomSuffix()}`;
    if (!rt.namespaced) delete meta.namespace;
    this.validateMeta(rt, obj);
    if (rt.namespaced) this.requireNamespace(meta.namespace!, opts);
    if (this.table(rt).has(objKey(meta.namespace, meta.name))) throw alreadyExists(rt.plural, rt.group, meta.name);
    if (rt.statusSubresource && !opts.internal && rt !== R.Node) delete obj.status;
    if (rt === R.Namespace) {
      obj.spec = { finalizers: ["kubernetes"], ...obj.spec };
      obj.status = { phase: "Active" };
    }
    // controllers mirroring state they own (virt-launcher pods) keep its UID
    meta.uid = opts.internal && meta.uid ? meta.uid : randomUUID();
    meta.creationTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    if (hasGeneration(rt)) meta.generation = 1;
    delete meta.deletionTimestamp;
    this.admit({ operation: "CREATE", rt, object: obj, internal: !!opts.internal });
    if (opts.dryRun) return clone(obj);
    meta.resourceVersion = String(++this.rv);
    this.table(rt).set(objKey(meta.namespace, meta.name), obj);
    this.emit({ type: "ADDED", rt, object: obj, rv: this.rv });
    return clone(obj);
  }

  /**
   * Replaces an object (PUT). With `subresource: "status"` only `.status` changes; otherwise `.status`
   * is kept for kinds with a status subresource. A stale `metadata.resourceVersion` is a 409 Conflict;
   * an empty one means "last write wins", as for kube-apiserver's unconditional updates.
   */
  update(rt: ResourceType, input: KObject, opts: WriteOptions & { subresource?: "status" } = {}): KObject {
    const ns = rt.namespaced ? input.metadata?.namespace : undefined;
    const name = input.metadata?.name;
    if (!name) throw invalid(rt.kind, rt.group, "", [{ field: "metadata.name", message: "Required value: name is required" }]);
    const old = this.table(rt).get(objKey(ns, name));
    if (!old) throw notFound(rt.plural, rt.group, name);
    const rvIn = input.metadata.resourceVersion;
    if (rvIn && rvIn !== old.metadata.resourceVersion) throw conflict(rt.plural, rt.group, name);
    if (input.metadata.uid && input.metadata.uid !== old.metadata.uid) {
      throw new ApiError(409, "Conflict", `Precondition failed: UID in precondition: ${input.metadata.uid}, UID in object meta: ${old.metadata.uid}`);
    }

    let obj: KObject;
    if (opts.subresource === "status") {
      obj = clone(old);
      obj.status = clone(input.status);
    } else {
      obj = clone(input);
      obj.apiVersion = apiVersionOf(rt);
      obj.kind = rt.kind;
      if (rt.statusSubresource && !opts.internal) obj.status = clone(old.status);
      // Server-owned metadata cannot be changed by clients.
      for (const k of ["uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation"] as const) {
        if (old.metadata[k] === undefined) delete obj.metadata[k];
        else obj.metadata[k] = old.metadata[k] as never;
      }
      if (!rt.namespaced) delete obj.metadata.namespace;
      else obj.metadata.namespace = old.metadata.namespace;
      this.validateMeta(rt, obj);
      if (old.metadata.deletionTimestamp) {
        const added = (obj.metadata.finalizers ?? []).filter((f) => !(old.metadata.finalizers ?? []).includes(f));
        if (added.length) {
          throw invalid(rt.kind, rt.group, name, [
            { field: "metadata.finalizers", reason: "FieldValueForbidden", message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(added)}` },
          ]);
        }
      }
    }
    if (generationChanged(rt, obj, old)) obj.metadata.generation = (old.metadata.generation ?? 1) + 1;
    this.admit({ operation: "UPDATE", rt, object: obj, oldObject: clone(old), subresource: opts.subresource, internal: !!opts.internal });
    if (opts.dryRun) return clone(obj);
    // A no-op write does not bump resourceVersion or emit an event, as kube-apiserver.
    if (JSON.stringify({ ...obj, metadata: { ...obj.metadata, resourceVersion: "" } }) ===
        JSON.stringify({ ...old, metadata: { ...old.metadata, resourceVersion: "" } })) {
      return clone(old);
    }
    if (obj.metadata.deletionTimestamp && !(obj.metadata.finalizers ?? []).length) {
      this.remove(rt, obj);
      return clone(obj);
    }
    obj.metadata.resourceVersion = String(++this.rv);
    this.table(rt).set(objKey(ns, name), obj);
    this.emit({ type: "MODIFIED", rt, object: obj, old, rv: this.rv });
    return clone(obj);
  }

  /**
   * Read-modify-write for controllers: applies `change` to the latest copy, retrying on conflict.
   * Returns undefined when the object does not exist.
   */
  modify(
    rt: ResourceType,
    namespace: string | undefined,
    name: string,
    change: (o: KObject) => void,
    opts: { subresource?: "status" } = {},
  ): KObject | undefined {
    const cur = this.tryGet(rt, namespace, name);
    if (!cur) return undefined;
    change(cur);
    return this.update(rt, cur, { ...opts, internal: true });
  }

  delete(rt: ResourceType, namespace: string | undefined, name: string, opts: DeleteOptions = {}): KObject {
    const ns = rt.namespaced ? namespace : undefined;
    const old = this.table(rt).get(objKey(ns, name));
    if (!old) throw notFound(rt.plural, rt.group, name);
    const pre = opts.preconditions;
    if (pre?.uid && pre.uid !== old.metadata.uid) {
      throw new ApiError(409, "Conflict", `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${old.metadata.uid}`);
    }
    if (pre?.resourceVersion && pre.resourceVersion !== old.metadata.resourceVersion) {
      throw new ApiError(409, "Conflict", `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${old.metadata.resourceVersion}`);
    }
    this.admit({ operation: "DELETE", rt, oldObject: clone(old), internal: !!opts.internal });
    if (opts.dryRun) return clone(old);

    const policy = opts.propagationPolicy ?? "Background";
    const finalizers = [...(old.metadata.finalizers ?? [])];
    if (policy === "Foreground" && !finalizers.includes(FOREGROUND) && this.dependents(old).length) finalizers.push(FOREGROUND);
    if (policy === "Orphan" && !finalizers.includes(ORPHAN)) finalizers.push(ORPHAN);
    // Namespaces are held by the namespace controller (spec.finalizers: [kubernetes]) until empty.
    const heldByNamespaceController = rt === R.Namespace;

    if (!finalizers.length && !heldByNamespaceController) {
      this.remove(rt, old);
      return clone(old);
    }
    if (old.metadata.deletionTimestamp) return clone(old); // already terminating
    const obj = clone(old);
    obj.metadata.deletionTimestamp = new Date().toISOString().replace(/\.\d+Z$/, "Z");
    obj.metadata.deletionGracePeriodSeconds = 0;
    if (finalizers.length) obj.metadata.finalizers = finalizers;
    if (rt === R.Namespace) obj.status = { ...obj.status, phase: "Terminating" };
    obj.metadata.resourceVersion = String(++this.rv);
    this.table(rt).set(objKey(ns, name), obj);
    this.emit({ type: "MODIFIED", rt, object: obj, old, rv: this.rv });
    // The garbage collector and namespace controller act asynchronously, as in a real cluster.
    setImmediate(() => this.finishSystemFinalizers(rt, ns, name));
    return clone(obj);
  }

  /**
   * Forgets the retained watch history, as an etcd compaction would, and moves the resourceVersion
   * on (as writes to other resources do in a real cluster): every resourceVersion a client holds is
   * then too old, so its next watch or continue gets 410 Expired. (Fault injection uses this.)
   */
  compactHistory(): void {
    this.rv++;
    this.history.length = 0;
  }

  deleteCollection(rt: ResourceType, opts: ListOptions & DeleteOptions = {}): KObject[] {
    const deleted: KObject[] = [];
    for (const o of this.list(rt, opts).items) {
      try {
        deleted.push(this.delete(rt, o.metadata.namespace, o.metadata.name, opts));
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
    return deleted;
  }

  // ---- internals -------------------------------------------------------------------------------

  private table(rt: ResourceType): Map<string, KObject> {
    let t = this.objects.get(keyOf(rt));
    if (!t) this.objects.set(keyOf(rt), (t = new Map()));
    return t;
  }

  private matcher(rt: ResourceType, opts: ListOptions): (o: KObject) => boolean {
    const labels = parseLabelSelector(opts.labelSelector);
    const fields = parseFieldSelector(opts.fieldSelector);
    const ns = rt.namespaced ? opts.namespace : undefined;
    return (o) =>
      (!ns || o.metadata.namespace === ns) &&
      labels((k) => o.metadata.labels?.[k]) &&
      // an unset selectable field reads as "" (kube's selectable fields are plain strings)
      fields((path) => fieldValue(o, path) ?? "");
  }

  private emit(e: StoreEvent): void {
    this.history.push(e);
    const max = this.opts.historySize ?? 20_000;
    // Trim in batches so a full history costs O(1) per event, not a shift of the whole array.
    if (this.history.length > max + Math.min(1024, Math.ceil(max / 10))) this.history.splice(0, this.history.length - max);
    for (const l of [...this.listeners]) l(e);
    const watchers = this.watchers.get(keyOf(e.rt));
    if (watchers) for (const w of [...watchers]) w(e);
  }

  private validateMeta(rt: ResourceType, obj: KObject): void {
    const meta = obj.metadata;
    const causes = [];
    if (!meta.name) causes.push({ field: "metadata.name", reason: "FieldValueRequired", message: "Required value: name or generateName is required" });
    else {
      const re = rt === R.Namespace ? DNS1123_LABEL : DNS1123_SUBDOMAIN;
      const max = rt === R.Namespace ? 63 : 253;
      if (!re.test(meta.name) || meta.name.length > max) {
        causes.push({
          field: "metadata.name",
          message: `Invalid value: "${meta.name}": a lowercase RFC 1123 ${rt === R.Namespace ? "label" : "subdomain"} must consist of lower case alphanumeric characters, '-'${rt === R.Namespace ? "" : " or '.'"}, and must start and end with an alphanumeric character`,
        });
      }
    }
    if (rt.namespaced && !meta.namespace) causes.push({ field: "metadata.namespace", reason: "FieldValueRequired", message: "Required value" });
    for (const [k, v] of Object.entries(meta.labels ?? {})) {
      if (typeof v !== "string" || v.length > 63 || !/^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v)) {
        causes.push({ field: `metadata.labels`, message: `Invalid value: "${String(v)}": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (key ${k})` });
      }
    }
    if (causes.length) throw invalid(rt.kind, rt.group, meta.name ?? "", causes);
  }

  private requireNamespace(ns: string, opts: WriteOptions): void {
    const nsObj = this.table(R.Namespace).get(objKey(undefined, ns));
    if (!nsObj) throw notFound("namespaces", "", ns);
    if (nsObj.metadata.deletionTimestamp && !opts.internal) {
      throw new ApiError(403, "Forbidden", `unable to create new content in namespace ${ns} because it is being terminated`);
    }
  }

  private admit(req: AdmissionRequest): void {
    for (const { rt, hook } of this.mutating) if (!rt || keyOf(rt) === keyOf(req.rt)) hook(req);
    for (const { rt, hook } of this.validating) if (!rt || keyOf(rt) === keyOf(req.rt)) hook(req);
  }

  private remove(rt: ResourceType, obj: KObject): void {
    const key = objKey(rt.namespaced ? obj.metadata.namespace : undefined, obj.metadata.name);
    const old = this.table(rt).get(key);
    this.table(rt).delete(key);
    const gone = clone(obj);
    gone.metadata.resourceVersion = String(++this.rv);
    this.emit({ type: "DELETED", rt, object: gone, old, rv: this.rv });
    setImmediate(() => this.collectGarbage(gone));
  }

  /** Objects whose ownerReferences name `owner`. */
  private dependents(owner: KObject): { rt: ResourceType; obj: KObject }[] {
    const out: { rt: ResourceType; obj: KObject }[] = [];
    for (const rtKey of this.objects.keys()) {
      const rt = this.rtByKey(rtKey);
      if (!rt) continue;
      for (const o of this.table(rt).values()) {
        if (o.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid)) out.push({ rt, obj: o });
      }
    }
    return out;
  }

  private readonly rtRegistry = new Map<string, ResourceType>(Object.values(R).map((rt) => [keyOf(rt), rt]));
  private rtByKey(key: string): ResourceType | undefined {
    return this.rtRegistry.get(key);
  }

  /** Background garbage collection: delete dependents of a deleted owner. */
  private collectGarbage(owner: KObject): void {
    for (const { rt, obj } of this.dependents(owner)) {
      const rest = obj.metadata.ownerReferences!.filter((r) => r.uid !== owner.metadata.uid);
      try {
        if (rest.length) this.modify(rt, obj.metadata.namespace, obj.metadata.name, (o) => (o.metadata.ownerReferences = rest));
        else this.delete(rt, obj.metadata.namespace, obj.metadata.name, { internal: true });
      } catch (e) {
        if (!(e instanceof ApiError && e.code === 404)) throw e;
      }
    }
  }

  /** Finalizers the control plane itself owns: orphan, foregroundDeletion, namespace "kubernetes". */
  private finishSystemFinalizers(rt: ResourceType, ns: string | undefined, name: string): void {
    const obj = this.table(rt).get(objKey(ns, name));
    if (!obj?.metadata.deletionTimestamp) return;
    const fins = obj.metadata.finalizers ?? [];
    const drop = (f: string) => this.modify(rt, ns, name, (o) => (o.metadata.finalizers = (o.metadata.finalizers ?? []).filter((x) => x !== f)));
    if (fins.includes(ORPHAN)) {
      for (const d of this.dependents(obj)) {
        this.modify(d.rt, d.obj.metadata.namespace, d.obj.metadata.name, (o) => {
          o.metadata.ownerReferences = o.metadata.ownerReferences?.filter((r) => r.uid !== obj.metadata.uid);
          if (!o.metadata.ownerReferences?.length) delete o.metadata.ownerReferences;
        });
      }
      drop(ORPHAN);
      return;
    }
    if (fins.includes(FOREGROUND)) {
      const deps = this.dependents(obj);
      for (const d of deps) {
        if (!d.obj.metadata.deletionTimestamp) this.delete(d.rt, d.obj.metadata.namespace, d.obj.metadata.name, { internal: true, propagationPolicy: "Foreground" });
      }
      if (this.dependents(obj).length) setTimeout(() => this.finishSystemFinalizers(rt, ns, name), 5);
      else drop(FOREGROUND);
      return;
    }
    if (rt === R.Namespace) {
      let remaining = 0;
      for (const rtKey of [...this.objects.keys()]) {
        const t = this.rtByKey(rtKey);
        if (!t?.namespaced) continue;
        for (const o of this.list(t, { namespace: name }).items) {
          remaining++;
          if (!o.metadata.deletionTimestamp) this.delete(t, name, o.metadata.name, { internal: true });
        }
      }
      if (remaining) setTimeout(() => this.finishSystemFinalizers(rt, ns, name), 5);
      else if (!fins.length) this.remove(rt, obj);
    }
  }
}
