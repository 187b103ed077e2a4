import { describe, expect, it } from "vitest";
import { ApiError } from "./errors.js";
import { R } from "./resources.js";
import { type KObject, Store } from "./store.js";

const settle = () => new Promise((r) => setTimeout(r, 30));

function storeWithNs(): Store {
  const s = new Store({ historySize: 50 });
  s.create(R.Namespace, { metadata: { name: "default" } });
  return s;
}

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

describe("Store", () => {
  it("creates with server-set metadata and refuses duplicates with 409 AlreadyExists", () => {
    const s = storeWithNs();
    const cm = s.create(R.ConfigMap, { metadata: { name: "a", namespace: "default" }, data: { k: "v" } });
    expect(cm.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(cm.apiVersion).toBe("v1");
    expect(Number(cm.metadata.resourceVersion)).toBeGreaterThan(0);
    const err = apiError(() => s.create(R.ConfigMap, { metadata: { name: "a", namespace: "default" } }));
    expect([err.code, err.reason]).toEqual([409, "AlreadyExists"]);
  });

  it("fills generateName, validates names and requires the namespace to exist", () => {
    const s = storeWithNs();
    const o = s.create(R.ConfigMap, { metadata: { generateName: "gen-", namespace: "default" } });
    expect(o.metadata.name).toMatch(/^gen-[a-z0-9]{5}$/);
    expect(apiError(() => s.create(R.ConfigMap, { metadata: { name: "Bad_Name", namespace: "default" } })).code).toBe(422);
    const nf = apiError(() => s.create(R.ConfigMap, { metadata: { name: "x", namespace: "nope" } }));
    expect([nf.code, nf.message]).toEqual([404, 'namespaces "nope" not found']);
  });

  it("answers a stale resourceVersion with 409 Conflict and bumps generation only on spec change", () => {
    const s = storeWithNs();
    const vm = s.create(R.VirtualMachine, { metadata: { name: "vm", namespace: "default" }, spec: { runStrategy: "Always" } });
    const v2 = s.update(R.VirtualMachine, { ...vm, spec: { runStrategy: "Halted" } });
    expect(v2.metadata.generation).toBe(2);
    expect(apiError(() => s.update(R.VirtualMachine, { ...vm, spec: { runStrategy: "Manual" } })).reason).toBe("Conflict");
    const v3 = s.update(R.VirtualMachine, { ...v2, status: { ready: true } }, { subresource: "status" });
    expect(v3.metadata.generation).toBe(2);
    expect(v3.status).toEqual({ ready: true });
    // The main endpoint ignores status for kinds with a status subresource.
    const v4 = s.update(R.VirtualMachine, { ...v3, status: { ready: false }, metadata: { ...v3.metadata, labels: { a: "b" } } });
    expect(v4.status).toEqual({ ready: true });
    expect(v4.metadata.labels).toEqual({ a: "b" });
  });

  it("filters by label and field selectors", () => {
    const s = storeWithNs();
    s.create(R.ConfigMap, { metadata: { name: "a", namespace: "default", labels: { app: "x", tier: "db" } } });
    s.create(R.ConfigMap, { metadata: { name: "b", namespace: "default", labels: { app: "y" } } });
    const names = (sel: object) => s.list(R.ConfigMap, sel).items.map((o) => o.metadata.name);
    expect(names({ labelSelector: "app=x" })).toEqual(["a"]);
    expect(names({ labelSelector: "app in (x,y),!tier" })).toEqual(["b"]);
    expect(names({ labelSelector: "app notin (x)" })).toEqual(["b"]);
    expect(names({ fieldSelector: "metadata.name=b" })).toEqual(["b"]);
    expect(names({ fieldSelector: "metadata.name!=b,metadata.namespace=default" })).toEqual(["a"]);
    expect(apiError(() => names({ fieldSelector: "metadata.name in (a)" })).code).toBe(400);
  });

  it("replays watch history from a resourceVersion and answers 410 when it is too old", () => {
    const s = storeWithNs();
    const start = s.resourceVersion;
    s.create(R.ConfigMap, { metadata: { name: "a", namespace: "default" } });
    const seen: string[] = [];
    const stop = s.watch(R.ConfigMap, { resourceVersion: start }, (t, o) => seen.push(`${t} ${o.metadata.name}`));
    s.create(R.ConfigMap, { metadata: { name: "b", namespace: "default" } });
    s.delete(R.ConfigMap, "default", "a");
    stop();
    expect(seen).toEqual(["ADDED a", "ADDED b", "DELETED a"]);
    for (let i = 0; i < 60; i++) s.create(R.ConfigMap, { metadata: { name: `n${i}`, namespace: "default" } });
    const err = apiError(() => s.watch(R.ConfigMap, { resourceVersion: start }, () => {}));
    expect(err.code).toBe(410);
  });

  it("reports objects leaving a label selector as DELETED to that watch", () => {
    const s = storeWithNs();
    const cm = s.create(R.ConfigMap, { metadata: { name: "a", namespace: "default", labels: { x: "1" } } });
    const seen: string[] = [];
    s.watch(R.ConfigMap, { labelSelector: "x=1", resourceVersion: s.resourceVersion }, (t) => seen.push(t));
    s.update(R.ConfigMap, { ...cm, metadata: { ...cm.metadata, labels: { x: "2" } } });
    expect(seen).toEqual(["DELETED"]);
  });

  it("holds an object with finalizers until they are removed", () => {
    const s = storeWithNs();
    s.create(R.ConfigMap, { metadata: { name: "f", namespace: "default", finalizers: ["ferry.dev/hold"] } });
    const terminating = s.delete(R.ConfigMap, "default", "f");
    expect(terminating.metadata.deletionTimestamp).toBeDefined();
    expect(s.tryGet(R.ConfigMap, "default", "f")).toBeDefined();
    const err = apiError(() => s.modify(R.ConfigMap, "default", "f", (o) => o.metadata.finalizers!.push("another")));
    expect(err.code).toBe(422);
    s.modify(R.ConfigMap, "default", "f", (o) => (o.metadata.finalizers = []));
    expect(s.tryGet(R.ConfigMap, "default", "f")).toBeUndefined();
  });

  it("garbage-collects dependents in the background and orphans them on request", async () => {
    const s = storeWithNs();
    const owner = s.create(R.VirtualMachine, { metadata: { name: "vm", namespace: "default" }, spec: {} });
    const ref = (o: KObject) => [{ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata.name, uid: o.metadata.uid }];
    s.create(R.DataVolume, { metadata: { name: "dv", namespace: "default", ownerReferences: ref(owner) }, spec: {} });
    s.delete(R.VirtualMachine, "default", "vm");
    await settle();
    expect(s.tryGet(R.DataVolume, "default", "dv")).toBeUndefined();

    const owner2 = s.create(R.VirtualMachine, { metadata: { name: "vm2", namespace: "default" }, spec: {} });
    s.create(R.DataVolume, { metadata: { name: "dv2", namespace: "default", ownerReferences: ref(owner2) }, spec: {} });
    s.delete(R.VirtualMachine, "default", "vm2", { propagationPolicy: "Orphan" });
    await settle();
    expect(s.tryGet(R.VirtualMachine, "default", "vm2")).toBeUndefined();
    expect(s.tryGet(R.DataVolume, "default", "dv2")?.metadata.ownerReferences).toBeUndefined();
  });

  it("deletes dependents first under Foreground propagation", async () => {
    const s = storeWithNs();
    const owner = s.create(R.VirtualMachine, { metadata: { name: "vm", namespace: "default" }, spec: {} });
    s.create(R.DataVolume, {
      metadata: { name: "dv", namespace: "default", ownerReferences: [{ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", name: "vm", uid: owner.metadata.uid }] },
      spec: {},
    });
    const t = s.delete(R.VirtualMachine, "default", "vm", { propagationPolicy: "Foreground" });
    expect(t.metadata.finalizers).toContain("foregroundDeletion");
    await settle();
    expect(s.tryGet(R.DataVolume, "default", "dv")).toBeUndefined();
    expect(s.tryGet(R.VirtualMachine, "default", "vm")).toBeUndefined();
  });

  it("terminates a namespace by deleting its content, refusing new content meanwhile", async () => {
    const s = storeWithNs();
    s.create(R.Namespace, { metadata: { name: "gone" } });
    s.create(R.ConfigMap, { metadata: { name: "a", namespace: "gone", finalizers: ["x/y"] } });
    expect(s.delete(R.Namespace, undefined, "gone").status.phase).toBe("Terminating");
    expect(apiError(() => s.create(R.ConfigMap, { metadata: { name: "b", namespace: "gone" } })).code).toBe(403);
    await settle();
    expect(s.tryGet(R.Namespace, undefined, "gone")).toBeDefined(); // held by the finalizer on "a"
    s.modify(R.ConfigMap, "gone", "a", (o) => (o.metadata.finalizers = []));
    await settle();
    expect(s.tryGet(R.Namespace, undefined, "gone")).toBeUndefined();
  });

  it("runs mutating then validating admission hooks and honours dry-run", () => {
    const s = storeWithNs();
    s.addMutatingHook(R.ConfigMap, (req) => {
      if (req.object) req.object.metadata.labels = { ...req.object.metadata.labels, mutated: "yes" };
    });
    s.addValidatingHook(R.ConfigMap, (req) => {
      if (req.object?.data?.forbidden) throw new ApiError(422, "Invalid", "forbidden data");
    });
    expect(apiError(() => s.create(R.ConfigMap, { metadata: { name: "a", namespace: "default" }, data: { forbidden: "1" } })).message).toBe("forbidden data");
    const dry = s.create(R.ConfigMap, { metadata: { name: "a", namespace: "default" } }, { dryRun: true });
    expect(dry.metadata.labels).toEqual({ mutated: "yes" });
    expect(s.tryGet(R.ConfigMap, "default", "a")).toBeUndefined();
  });
});
