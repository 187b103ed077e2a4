// Helpers for tests that talk to simulated clusters over HTTP(S) (used by sim's own tests; other
// parts of ferry may use them too).
import { ApiException, KubeConfig, KubernetesObjectApi, PatchStrategy, Watch } from "@kubernetes/client-node";
import { resourceByKind } from "./apiserver/resources.js";

/** A client-node KubeConfig for a kubeconfig YAML string. */
export function kubeConfig(yaml: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return kc;
}

/** The Kubernetes `Status` carried by a client-node ApiException (undefined for other errors). */
export function statusOf(e: unknown): { code: number; reason?: string; message?: string } | undefined {
  if (!(e instanceof ApiException)) return undefined;
  let body: unknown = e.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const b = (body ?? {}) as { reason?: string; message?: string };
  return { code: e.code, ...(b.reason ? { reason: b.reason } : {}), ...(b.message ? { message: b.message } : {}) };
}

/** Runs `fn`, expecting it to reject with an ApiException; returns its status. */
export async function expectApiError(fn: () => Promise<unknown>): Promise<{ code: number; reason?: string; message?: string }> {
  try {
    await fn();
  } catch (e) {
    const s = statusOf(e);
    if (s) return s;
    throw e;
  }
  throw new Error("expected the call to fail with an ApiException");
}

/** Polls `check` until it returns a truthy value (or stops throwing) within `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : last !== undefined ? `: ${JSON.stringify(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects in tests are free-form JSON */

/** A served kind by its Kind name ("VirtualMachine", "ConfigMap", ...). */
export type KindName =
  | "Namespace" | "Node" | "ConfigMap" | "Secret" | "PersistentVolumeClaim" | "Pod" | "Event" | "StorageClass"
  | "NetworkAttachmentDefinition" | "Lease" | "KubeVirt" | "VirtualMachine" | "VirtualMachineInstance"
  | "VirtualMachineInstanceMigration" | "DataVolume"
  | "CSIStorageCapacity";

function typeOf(kind: KindName) {
  const rt = resourceByKind(kind);
  if (!rt) throw new Error(`kind ${kind} is not served by the simulated API server`);
  return { apiVersion: rt.group ? `${rt.group}/${rt.version}` : rt.version, rt };
}

/** A watch event as client-node delivers it. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: any;
}

/**
 * A small typed helper over client-node's KubernetesObjectApi and Watch for tests: objects by kind,
 * namespace and name, over HTTP(S) like any client. `get` answers undefined for 404; `modify` is the
 * read-modify-write loop clients do (replace with the read resourceVersion, again on 409).
 */
export class KubeClient {
  readonly api: KubernetesObjectApi;

  constructor(readonly kc: KubeConfig) {
    this.api = KubernetesObjectApi.makeApiClient(kc);
  }

  static fromYaml(yaml: string): KubeClient {
    return new KubeClient(kubeConfig(yaml));
  }

  private header(kind: KindName, namespace: string | undefined, name: string) {
    return { apiVersion: typeOf(kind).apiVersion, kind, metadata: { name, ...(namespace ? { namespace } : {}) } };
  }

  async get(kind: KindName, namespace: string | undefined, name: string): Promise<any> {
    try {
      return await this.api.read(this.header(kind, namespace, name));
    } catch (e) {
      if (statusOf(e)?.code === 404) return undefined;
      throw e;
    }
  }

  /** Like `get`, but a missing object is an error naming it. */
  async must(kind: KindName, namespace: string | undefined, name: string): Promise<any> {
    const o = await this.get(kind, namespace, name);
    if (!o) throw new Error(`${kind} ${namespace ? `${namespace}/` : ""}${name} not found`);
    return o;
  }

  async listWithVersion(kind: KindName, namespace?: string, opts: { labelSelector?: string; fieldSelector?: string } = {}): Promise<{ items: any[]; resourceVersion: string }> {
    const l = await this.api.list(typeOf(kind).apiVersion, kind, namespace, undefined, undefined, undefined, opts.fieldSelector, opts.labelSelector);
    return { items: l.items as any[], resourceVersion: l.metadata?.resourceVersion ?? "" };
  }

  async list(kind: KindName, namespace?: string, opts: { labelSelector?: string; fieldSelector?: string } = {}): Promise<any[]> {
    return (await this.listWithVersion(kind, namespace, opts)).items;
  }

  /** Creates `body` (apiVersion, kind and namespace are filled in). */
  async create(kind: KindName, namespace: string | undefined, body: any): Promise<any> {
    const metadata = { ...(body.metadata ?? {}), ...(namespace ? { namespace } : {}) };
    return this.api.create({ ...body, apiVersion: typeOf(kind).apiVersion, kind, metadata });
  }

  async replace(kind: KindName, obj: any): Promise<any> {
    return this.api.replace({ ...obj, apiVersion: typeOf(kind).apiVersion, kind });
  }

  /** A JSON merge patch (what `kubectl patch --type merge` sends). */
  async patch(kind: KindName, namespace: string | undefined, name: string, patch: any): Promise<any> {
    const h = this.header(kind, namespace, name);
    return this.api.patch({ ...patch, ...h, metadata: { ...(patch.metadata ?? {}), ...h.metadata } }, undefined, undefined, undefined, undefined, PatchStrategy.MergePatch);
  }

  /** Read, change with `fn`, replace; on 409 Conflict (someone wrote in between) again from the read. */
  async modify(kind: KindName, namespace: string | undefined, name: string, fn: (o: any) => void): Promise<any> {
    for (let attempt = 0; ; attempt++) {
      const o = await this.must(kind, namespace, name);
      fn(o);
      try {
        return await this.replace(kind, o);
      } catch (e) {
        if (statusOf(e)?.code !== 409 || attempt >= 20) throw e;
      }
    }
  }

  /** Deletes; with `ignoreNotFound` an object already gone is fine (answers false). */
  async delete(kind: KindName, namespace: string | undefined, name: string, opts: { propagationPolicy?: "Foreground" | "Background" | "Orphan"; ignoreNotFound?: boolean } = {}): Promise<boolean> {
    try {
      await this.api.delete(this.header(kind, namespace, name), undefined, undefined, undefined, undefined, opts.propagationPolicy);
      return true;
    } catch (e) {
      if (opts.ignoreNotFound && statusOf(e)?.code === 404) return false;
      throw e;
    }
  }

  /**
   * Watches `kind` (in `namespace`, or all) from `resourceVersion`; `onEvent` gets every event in
   * order. Resolves once the request is made; call the returned function to stop.
   */
  async watch(kind: KindName, namespace: string | undefined, opts: { resourceVersion?: string; fieldSelector?: string; labelSelector?: string }, onEvent: (e: WatchEvent) => void): Promise<() => void> {
    const { rt } = typeOf(kind);
    const path = `${rt.group ? `/apis/${rt.group}/${rt.version}` : `/api/${rt.version}`}${namespace && rt.namespaced ? `/namespaces/${namespace}` : ""}/${rt.plural}`;
    const query: Record<string, string | boolean> = { allowWatchBookmarks: false };
    if (opts.resourceVersion) query.resourceVersion = opts.resourceVersion;
    if (opts.fieldSelector) query.fieldSelector = opts.fieldSelector;
    if (opts.labelSelector) query.labelSelector = opts.labelSelector;
    const ac = await new Watch(this.kc).watch(path, query, (type, object) => onEvent({ type: type as WatchEvent["type"], object }), () => undefined);
    return () => ac.abort();
  }

  /**
   * Records every distinct `status.phase` of one object, as a watch from now on sees them (start it
   * before creating the object): `phases` grows as events arrive; `deleted` turns true on DELETED.
   */
  async phases(kind: KindName, namespace: string | undefined, name: string): Promise<{ phases: string[]; deleted: () => boolean; stop: () => void }> {
    const { resourceVersion } = await this.listWithVersion(kind, namespace, { fieldSelector: `metadata.name=${name}` });
    const phases: string[] = [];
    let deleted = false;
    const stop = await this.watch(kind, namespace, { resourceVersion, fieldSelector: `metadata.name=${name}` }, (e) => {
      if (e.type === "DELETED") deleted = true;
      if (e.type !== "ADDED" && e.type !== "MODIFIED") return;
      const p = e.object?.status?.phase ?? "";
      if (phases[phases.length - 1] !== p) phases.push(p);
    });
    return { phases, deleted: () => deleted, stop };
  }
}
