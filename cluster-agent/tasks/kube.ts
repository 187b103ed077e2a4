// The executor's only door to the API server: typed get/list/create/replace/patch/delete over
// client-node's KubernetesObjectApi, with Kubernetes' answers turned into ferry's vocabulary
// (404 → undefined, 409 on create → "already there", other failures → KubeError with the object named).
import { ApiException, type KubeConfig, KubernetesObjectApi, type KubernetesObject, PatchStrategy } from "@kubernetes/client-node";
import type { KubeObj } from "../core/kube.js";
import { objectPatch } from "../core/patch.js";

/** A failed API call: `transient` for 429/5xx/network (retry), otherwise the request was refused. */
export class KubeError extends Error {
  constructor(
    message: string,
    readonly code: number | undefined,
    readonly reason: string | undefined,
    readonly transient: boolean,
  ) {
    super(message);
    this.name = "KubeError";
  }
}

function statusBody(e: ApiException<unknown>): { reason?: string; message?: string } {
  let body: unknown = e.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      return { message: body as string };
    }
  }
  return (body ?? {});
}

function describe(verb: string, what: string, e: unknown): KubeError {
  if (e instanceof KubeError) return e;
  if (e instanceof ApiException) {
    const b = statusBody(e);
    // 409 on an update is a stale resourceVersion: read again and retry.
    const transient = e.code === 429 || e.code === 409 || e.code >= 500;
    return new KubeError(`${verb} ${what}: ${e.code}${b.reason ? ` ${b.reason}` : ""}: ${b.message ?? "no message"}`, e.code, b.reason, transient);
  }
  const message = e instanceof Error ? e.message : String(e);
  // "Unrecognized API version and kind" = the kind is not served (a CRD not installed): not transient.
  const unserved = /Unrecognized API version and kind/.test(message);
  return new KubeError(`${verb} ${what}: ${message}`, undefined, unserved ? "NotServed" : undefined, !unserved);
}

const codeOf = (e: unknown) => (e instanceof ApiException ? e.code : undefined);

function plain<T>(obj: unknown): T {
  // Built-in kinds come back as client-node model objects (Dates for timestamps): back to JSON.
  return JSON.parse(JSON.stringify(obj)) as T;
}

export interface Ref {
  apiVersion: string;
  kind: string;
  namespace?: string;
  name: string;
}

const refName = (r: { kind?: string; namespace?: string; name?: string }) => `${r.kind} ${r.namespace ? `${r.namespace}/` : ""}${r.name}`;

export class Kube {
  private readonly api: KubernetesObjectApi;

  constructor(kc: KubeConfig) {
    this.api = KubernetesObjectApi.makeApiClient(kc);
  }

  async get<T extends KubeObj>(ref: Ref): Promise<T | undefined> {
    try {
      const header = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) } };
      return plain<T>(await this.api.read(header));
    } catch (e) {
      if (codeOf(e) === 404) return undefined;
      const err = describe("read", refName(ref), e);
      if (err.reason === "NotServed") return undefined;
      throw err;
    }
  }

  /** Every object of a kind (all pages), optionally in one namespace and by label selector; [] when the kind is not served. */
  async list<T extends KubeObj>(apiVersion: string, kind: string, namespace?: string, labelSelector?: string): Promise<T[]> {
    const out: T[] = [];
    let token: string | undefined;
    try {
      do {
        const page = await this.api.list(apiVersion, kind, namespace, undefined, undefined, undefined, undefined, labelSelector, 500, token);
        out.push(...plain<T[]>(page.items));
        token = page.metadata?._continue || undefined;
      } while (token);
    } catch (e) {
      const err = describe("list", `${kind}${namespace ? ` in ${namespace}` : ""}${labelSelector ? ` (${labelSelector})` : ""}`, e);
      if (err.reason === "NotServed") return [];
      throw err;
    }
    return out;
  }

  /** Creates the object; false when it already existed (409 AlreadyExists). */
  async create(obj: KubeObj): Promise<boolean> {
    try {
      await this.api.create(structuredClone(obj) as KubernetesObject);
      return true;
    } catch (e) {
      if (codeOf(e) === 409) return false;
      throw describe("create", refName({ kind: obj.kind, namespace: obj.metadata.namespace, name: obj.metadata.name }), e);
    }
  }

  /** Patches `before` into `after` (a merge patch of the difference, guarded by before's resourceVersion); false when equal. */
  async patchTo<T extends KubeObj>(before: T, after: T): Promise<boolean> {
    const patch = objectPatch(before, after);
    if (!patch) return false;
    await this.mergePatch(patch);
    return true;
  }

  /** JSON merge patch (`patch` carries apiVersion, kind, metadata.name/namespace and the fields to set; null deletes). */
  async mergePatch(patch: KubeObj): Promise<void> {
    try {
      await this.api.patch(patch as KubernetesObject, undefined, undefined, "ferry", undefined, PatchStrategy.MergePatch);
    } catch (e) {
      throw describe("patch", refName({ kind: patch.kind, namespace: patch.metadata.namespace, name: patch.metadata.name }), e);
    }
  }

  /** Deletes (404 = already gone); true when a delete was issued. */
  async delete(ref: Ref, propagationPolicy: "Background" | "Foreground" = "Background"): Promise<boolean> {
    try {
      const header = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) } };
      await this.api.delete(header, undefined, undefined, undefined, undefined, propagationPolicy);
      return true;
    } catch (e) {
      if (codeOf(e) === 404) return false;
      throw describe("delete", refName(ref), e);
    }
  }
}

export function refOf(obj: KubeObj): Ref {
  return { apiVersion: obj.apiVersion ?? "v1", kind: obj.kind ?? "", name: obj.metadata.name ?? "", ...(obj.metadata.namespace ? { namespace: obj.metadata.namespace } : {}) };
}
