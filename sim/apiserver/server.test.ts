// The simulated API server as @kubernetes/client-node sees it, over HTTPS (and HTTP), through the
// kubeconfig startWorld writes. Nothing here touches the store directly.
import {
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  VersionApi,
  setHeaderOptions,
  type V1ConfigMap,
} from "@kubernetes/client-node";
import { request as httpsRequest } from "node:https";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, expectApiError, kubeConfig } from "../testing.js";
import { type World, startWorld } from "../world.js";

const VM = { group: "kubevirt.io", version: "v1", plural: "virtualmachines" };
const NAD = { group: "k8s.cni.cncf.io", version: "v1", plural: "network-attachment-definitions" };

let world: World;
let kc: KubeConfig;
let core: CoreV1Api;
let co: CustomObjectsApi;
let nsCounter = 0;

/** A fresh namespace per test keeps tests independent. */
async function freshNamespace(): Promise<string> {
  const name = `t${++nsCounter}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

const vm = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "kubevirt.io/v1",
  kind: "VirtualMachine",
  metadata: { name, ...extra },
  spec: { runStrategy: "Halted", template: { spec: { domain: { memory: { guest: "1Gi" } } } } },
});

beforeAll(async () => {
  world = await startWorld({ clusters: ["a"], scenario: { clusters: { a: { namespaces: ["default"] } } }, simulateKubeVirt: false });
  kc = kubeConfig(world.cluster("a").kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  co = kc.makeApiClient(CustomObjectsApi);
});

afterAll(async () => {
  await world.stop();
});

describe("simulated API server over HTTPS with client-node", () => {
  it("serves version and discovery so the generic object client works", async () => {
    const v = await kc.makeApiClient(VersionApi).getCode();
    expect([v.major, v.minor]).toEqual(["1", "32"]);
    const ns = await freshNamespace();
    const generic = KubernetesObjectApi.makeApiClient(kc);
    await generic.create({ ...vm("generic"), metadata: { name: "generic", namespace: ns } });
    const read = await generic.read({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", metadata: { name: "generic", namespace: ns } });
    expect(read.metadata?.uid).toBeTruthy();
    const desired: V1ConfigMap = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: "applied", namespace: ns }, data: { k: "v" } };
    const ssa = await generic.patch(
      desired,
      undefined,
      undefined,
      "ferry-test",
      true,
      PatchStrategy.ServerSideApply,
    );
    expect(ssa.data).toEqual({ k: "v" });
    expect(ssa.metadata?.managedFields?.[0]?.manager).toBe("ferry-test");
  });

  it("creates, gets and lists with server-set metadata; refuses duplicates and unknown names", async () => {
    const ns = await freshNamespace();
    const cm = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "one", labels: { app: "x" } }, data: { a: "1" } } });
    expect(cm.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(cm.metadata?.namespace).toBe(ns);
    const gen = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { generateName: "gen-" } } });
    expect(gen.metadata?.name).toMatch(/^gen-[a-z0-9]{5}$/);
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    expect(list.items.map((i) => i.metadata?.name).sort()).toEqual(["one", gen.metadata!.name!].sort());
    expect(Number(list.metadata?.resourceVersion)).toBeGreaterThanOrEqual(Number(gen.metadata?.resourceVersion));

    const dup = await expectApiError(() => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "one" } } }));
    expect([dup.code, dup.reason]).toEqual([409, "AlreadyExists"]);
    const nf = await expectApiError(() => core.readNamespacedConfigMap({ name: "nope", namespace: ns }));
    expect([nf.code, nf.reason, nf.message]).toEqual([404, "NotFound", 'configmaps "nope" not found']);
    const badName = await expectApiError(() => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "Bad_Name" } } }));
    expect([badName.code, badName.reason]).toEqual([422, "Invalid"]);
    const raw = (await co.listNamespacedCustomObject({ ...VM, namespace: ns })) as { kind: string; apiVersion: string; metadata: { resourceVersion: string }; items: unknown[] };
    expect(raw).toMatchObject({ kind: "VirtualMachineList", apiVersion: "kubevirt.io/v1", items: [] });
    expect(raw.metadata.resourceVersion).toMatch(/^\d+$/);
  });

  it("checks namespace and kind of the body against the URL, and dry-runs", async () => {
    const ns = await freshNamespace();
    const mismatch = await expectApiError(() => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "x", namespace: "default" } } }));
    expect([mismatch.code, mismatch.reason]).toEqual([400, "BadRequest"]);
    expect(mismatch.message).toContain("does not match the namespace");
    const wrongKind = await expectApiError(() => co.createNamespacedCustomObject({ ...VM, namespace: ns, body: { ...vm("x"), kind: "VirtualMachineInstance" } }));
    expect(wrongKind.code).toBe(400);
    const withRv = await expectApiError(() => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "x", resourceVersion: "5" } } }));
    expect(withRv.message).toBe("resourceVersion should not be set on objects to be created");
    const dry = await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("dry"), dryRun: "All" });
    expect(dry.metadata.name).toBe("dry");
    expect((await expectApiError(() => co.getNamespacedCustomObject({ ...VM, namespace: ns, name: "dry" }))).code).toBe(404);
    const noNs = await expectApiError(() => core.createNamespacedConfigMap({ namespace: "missing", body: { metadata: { name: "x" } } }));
    expect([noNs.code, noNs.message]).toEqual([404, 'namespaces "missing" not found']);
  });

  it("answers a stale resourceVersion with 409 Conflict and a custom resource PUT without one with 422", async () => {
    const ns = await freshNamespace();
    const cm = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "c" }, data: { v: "1" } } });
    const updated = await core.replaceNamespacedConfigMap({ name: "c", namespace: ns, body: { ...cm, data: { v: "2" } } });
    expect(Number(updated.metadata!.resourceVersion)).toBeGreaterThan(Number(cm.metadata!.resourceVersion));
    const stale = await expectApiError(() => core.replaceNamespacedConfigMap({ name: "c", namespace: ns, body: { ...cm, data: { v: "3" } } }));
    expect([stale.code, stale.reason]).toEqual([409, "Conflict"]);
    // Built-ins allow unconditional updates; custom resources do not.
    const { resourceVersion: _rv, ...metaNoRv } = updated.metadata!;
    await core.replaceNamespacedConfigMap({ name: "c", namespace: ns, body: { ...updated, metadata: metaNoRv, data: { v: "4" } } });
    const created = await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("v") });
    const body = { ...created, metadata: { name: "v", namespace: ns } };
    const noRv = await expectApiError(() => co.replaceNamespacedCustomObject({ ...VM, namespace: ns, name: "v", body }));
    expect([noRv.code, noRv.reason]).toEqual([422, "Invalid"]);
    const renamed = await expectApiError(() => co.replaceNamespacedCustomObject({ ...VM, namespace: ns, name: "v", body: { ...created, metadata: { ...created.metadata, name: "w" } } }));
    expect(renamed.code).toBe(400);
  });

  it("patches with merge, JSON and strategic patches; custom resources refuse strategic with 415", async () => {
    const ns = await freshNamespace();
    await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("p", { labels: { a: "1" } }) });
    const merged = await co.patchNamespacedCustomObject(
      { ...VM, namespace: ns, name: "p", body: { metadata: { labels: { a: null, b: "2" } }, spec: { runStrategy: "Always" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    expect(merged.metadata.labels).toEqual({ b: "2" });
    expect(merged.spec.runStrategy).toBe("Always");
    expect(merged.metadata.generation).toBe(2);
    const jp = await co.patchNamespacedCustomObject(
      { ...VM, namespace: ns, name: "p", body: [{ op: "replace", path: "/spec/runStrategy", value: "Manual" }] },
      setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
    );
    expect(jp.spec.runStrategy).toBe("Manual");
    const failedTest = await expectApiError(() =>
      co.patchNamespacedCustomObject(
        { ...VM, namespace: ns, name: "p", body: [{ op: "test", path: "/spec/runStrategy", value: "Always" }] },
        setHeaderOptions("Content-Type", PatchStrategy.JsonPatch),
      ),
    );
    expect(failedTest.code).toBe(422);
    const smp = await expectApiError(() =>
      co.patchNamespacedCustomObject({ ...VM, namespace: ns, name: "p", body: { spec: {} } }, setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch)),
    );
    expect([smp.code, smp.reason]).toEqual([415, "UnsupportedMediaType"]);
    const stale = await expectApiError(() =>
      co.patchNamespacedCustomObject(
        { ...VM, namespace: ns, name: "p", body: { metadata: { resourceVersion: "1" }, spec: { runStrategy: "Always" } } },
        setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
      ),
    );
    expect(stale.code).toBe(409);

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "c", finalizers: ["x.io/a"] }, data: { a: "1" } } });
    const cm = await core.patchNamespacedConfigMap(
      { name: "c", namespace: ns, body: { metadata: { finalizers: ["x.io/b"] }, data: { b: "2" } } },
      setHeaderOptions("Content-Type", PatchStrategy.StrategicMergePatch),
    );
    expect(cm.data).toEqual({ a: "1", b: "2" });
    expect(cm.metadata?.finalizers).toEqual(["x.io/a", "x.io/b"]);
    const missing = await expectApiError(() =>
      co.patchNamespacedCustomObject({ ...VM, namespace: ns, name: "absent", body: {} }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch)),
    );
    expect(missing.code).toBe(404);
  });

  it("applies server-side: creates, then removes fields the manager no longer applies", async () => {
    const ns = await freshNamespace();
    const apply = (body: object) =>
      co.patchNamespacedCustomObject({ ...VM, namespace: ns, name: "ssa", body, fieldManager: "ferry", force: true }, setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply));
    const first = await apply({ ...vm("ssa"), metadata: { name: "ssa", namespace: ns, labels: { a: "1", b: "2" } } });
    expect(first.metadata.labels).toEqual({ a: "1", b: "2" });
    const second = await apply({ ...vm("ssa"), metadata: { name: "ssa", namespace: ns, labels: { a: "1" } } });
    expect(second.metadata.labels).toEqual({ a: "1" });
    expect(second.metadata.managedFields).toMatchObject([{ manager: "ferry", operation: "Apply", fieldsType: "FieldsV1" }]);
    const noManager = await expectApiError(() =>
      co.patchNamespacedCustomObject({ ...VM, namespace: ns, name: "ssa", body: vm("ssa") }, setHeaderOptions("Content-Type", PatchStrategy.ServerSideApply)),
    );
    expect(noManager.code).toBe(400);
  });

  it("keeps .status behind the status subresource", async () => {
    const ns = await freshNamespace();
    const created = await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: { ...vm("s"), status: { printableStatus: "Bogus" } } });
    expect(created.status).toBeUndefined();
    const st = await co.patchNamespacedCustomObjectStatus(
      { ...VM, namespace: ns, name: "s", body: { status: { printableStatus: "Stopped" }, spec: { runStrategy: "Always" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    expect(st.status).toEqual({ printableStatus: "Stopped" });
    expect(st.spec.runStrategy).toBe("Halted"); // spec changes through /status are ignored
    expect(st.metadata.generation).toBe(1);
    const main = await co.patchNamespacedCustomObject(
      { ...VM, namespace: ns, name: "s", body: { status: { printableStatus: "Hacked" }, spec: { runStrategy: "Always" } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    expect(main.status).toEqual({ printableStatus: "Stopped" });
    expect(main.metadata.generation).toBe(2);
    const got = await co.getNamespacedCustomObjectStatus({ ...VM, namespace: ns, name: "s" });
    expect(got.status.printableStatus).toBe("Stopped");
    const replaced = await co.replaceNamespacedCustomObjectStatus({ ...VM, namespace: ns, name: "s", body: { ...got, status: { printableStatus: "Running" } } });
    expect(replaced.status.printableStatus).toBe("Running");
    const noStatus = await expectApiError(() => co.getNamespacedCustomObjectStatus({ ...NAD, namespace: ns, name: "x" }));
    expect(noStatus.code).toBe(404);
  });

  it("writes a VMI's .status through the object itself: KubeVirt's VMI CRD has no status subresource", async () => {
    const ns = await freshNamespace();
    const VMI = { group: "kubevirt.io", version: "v1", plural: "virtualmachineinstances" };
    const merge = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);
    const body = { apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", metadata: { name: "i" }, spec: { domain: { devices: {} } }, status: { phase: "Pending" } };
    const created = await co.createNamespacedCustomObject({ ...VMI, namespace: ns, body });
    expect(created.status).toEqual({ phase: "Pending" });
    expect(created.metadata.generation).toBe(1);
    const patched = await co.patchNamespacedCustomObject({ ...VMI, namespace: ns, name: "i", body: { status: { phase: "Running" } } }, merge);
    expect(patched.status.phase).toBe("Running");
    // as kube's CRD strategy: without a status subresource every change but metadata bumps the generation
    expect(patched.metadata.generation).toBe(2);
    const replaced = await co.replaceNamespacedCustomObject({ ...VMI, namespace: ns, name: "i", body: { ...patched, status: { phase: "Succeeded" } } });
    expect(replaced.status.phase).toBe("Succeeded");
    for (const call of [
      () => co.getNamespacedCustomObjectStatus({ ...VMI, namespace: ns, name: "i" }),
      () => co.patchNamespacedCustomObjectStatus({ ...VMI, namespace: ns, name: "i", body: { status: { phase: "Failed" } } }, merge),
      () => co.replaceNamespacedCustomObjectStatus({ ...VMI, namespace: ns, name: "i", body: replaced }),
    ]) {
      expect((await expectApiError(call)).code).toBe(404);
    }
    const resources = (await co.getAPIResources({ group: "kubevirt.io", version: "v1" })).resources.map((r) => r.name);
    expect(resources).toContain("virtualmachines/status");
    expect(resources).not.toContain("virtualmachineinstances/status");
  });

  it("filters by label and field selectors and pages with limit/continue", async () => {
    const ns = await freshNamespace();
    for (const [name, labels] of [["a", { tier: "web", env: "prod" }], ["b", { tier: "db", env: "prod" }], ["c", { tier: "web" }]] as const) {
      await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name, labels } } });
    }
    const names = async (o: { labelSelector?: string; fieldSelector?: string }) => (await core.listNamespacedConfigMap({ namespace: ns, ...o })).items.map((i) => i.metadata?.name);
    expect(await names({ labelSelector: "tier=web" })).toEqual(["a", "c"]);
    expect(await names({ labelSelector: "env,tier notin (db)" })).toEqual(["a"]);
    expect(await names({ labelSelector: "!env" })).toEqual(["c"]);
    expect(await names({ fieldSelector: "metadata.name=b" })).toEqual(["b"]);
    expect(await names({ fieldSelector: "metadata.name!=b", labelSelector: "env=prod" })).toEqual(["a"]);
    const badLabel = await expectApiError(() => names({ labelSelector: "a=(" }));
    expect(badLabel.code).toBe(400);
    const badField = await expectApiError(() => co.listNamespacedCustomObject({ ...VM, namespace: ns, fieldSelector: "status.phase=Running" }));
    expect([badField.code, badField.reason]).toEqual([400, "BadRequest"]);

    const p1 = await core.listNamespacedConfigMap({ namespace: ns, limit: 2 });
    expect(p1.items.map((i) => i.metadata?.name)).toEqual(["a", "b"]);
    expect(p1.metadata?.remainingItemCount).toBe(1);
    const p2 = await core.listNamespacedConfigMap({ namespace: ns, limit: 2, _continue: p1.metadata!._continue! });
    expect(p2.items.map((i) => i.metadata?.name)).toEqual(["c"]);
    expect(p2.metadata?._continue).toBeFalsy();
    const all = await co.listClusterCustomObject({ ...VM });
    expect(Array.isArray(all.items)).toBe(true);
  });

  it("deletes: objects or Status as kube-apiserver, finalizers, garbage collection, deletecollection", async () => {
    const ns = await freshNamespace();
    const owner = await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("owner") });
    const ref = [{ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", name: "owner", uid: owner.metadata.uid, controller: true }];
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "dependent", ownerReferences: ref } } });
    const deleted = await co.deleteNamespacedCustomObject({ ...VM, namespace: ns, name: "owner", propagationPolicy: "Background" });
    expect(deleted.metadata.name).toBe("owner"); // custom resources answer with the object
    await eventually(async () => (await expectApiError(() => core.readNamespacedConfigMap({ name: "dependent", namespace: ns }))).code === 404, 5000, "garbage collection");

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "plain" } } });
    const status = (await core.deleteNamespacedConfigMap({ name: "plain", namespace: ns })) as unknown as { kind: string; status: string };
    expect([status.kind, status.status]).toEqual(["Status", "Success"]);

    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "held", finalizers: ["ferry.dev/hold"] } } });
    await core.deleteNamespacedConfigMap({ name: "held", namespace: ns });
    const held = await core.readNamespacedConfigMap({ name: "held", namespace: ns });
    expect(held.metadata?.deletionTimestamp).toBeTruthy();
    const pre = await expectApiError(() => core.deleteNamespacedConfigMap({ name: "held", namespace: ns, body: { preconditions: { uid: "other" } } }));
    expect(pre.code).toBe(409);
    await core.patchNamespacedConfigMap({ name: "held", namespace: ns, body: { metadata: { finalizers: null } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    expect((await expectApiError(() => core.readNamespacedConfigMap({ name: "held", namespace: ns }))).code).toBe(404);

    for (const n of ["x1", "x2", "keep"]) await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: n, labels: n === "keep" ? {} : { batch: "x" } } } });
    await core.deleteCollectionNamespacedConfigMap({ namespace: ns, labelSelector: "batch=x" });
    expect((await core.listNamespacedConfigMap({ namespace: ns })).items.map((i) => i.metadata?.name)).toEqual(["keep"]);
    const gone = await expectApiError(() => co.deleteNamespacedCustomObject({ ...VM, namespace: ns, name: "owner" }));
    expect(gone.code).toBe(404);
  });

  it("deletes with Foreground propagation: the owner waits, marked foregroundDeletion, until its dependents are gone", async () => {
    const ns = await freshNamespace();
    const owner = await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("fg") });
    const ref = [{ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", name: "fg", uid: owner.metadata.uid, controller: true, blockOwnerDeletion: true }];
    // the dependent has a finalizer of its own, so it (and with it the owner) stays until that is removed
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "fg-dep", ownerReferences: ref, finalizers: ["ferry.dev/hold"] } } });
    const answered = await co.deleteNamespacedCustomObject({ ...VM, namespace: ns, name: "fg", propagationPolicy: "Foreground" });
    expect(answered.metadata.deletionTimestamp).toBeTruthy();
    expect(answered.metadata.finalizers).toContain("foregroundDeletion");
    const dep = await eventually(async () => {
      const d = await core.readNamespacedConfigMap({ name: "fg-dep", namespace: ns });
      return d.metadata?.deletionTimestamp ? d : undefined;
    }, 5000, "the garbage collector deleting the dependent");
    expect(dep!.metadata?.finalizers).toEqual(["ferry.dev/hold"]);
    await new Promise((r) => setTimeout(r, 100));
    const waiting = await co.getNamespacedCustomObject({ ...VM, namespace: ns, name: "fg" });
    expect(waiting.metadata.finalizers).toEqual(["foregroundDeletion"]);
    await core.patchNamespacedConfigMap({ name: "fg-dep", namespace: ns, body: { metadata: { finalizers: null } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    await eventually(async () => (await expectApiError(() => co.getNamespacedCustomObject({ ...VM, namespace: ns, name: "fg" }))).code === 404, 5000, "owner deleted after its dependent");
    expect((await expectApiError(() => core.readNamespacedConfigMap({ name: "fg-dep", namespace: ns }))).code).toBe(404);
  });

  it("deletes with Orphan propagation (DeleteOptions body): the owner goes, dependents stay without the owner reference", async () => {
    const ns = await freshNamespace();
    const owner = await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("or") });
    const other = await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("or-other") });
    const ref = (o: { metadata: { name: string; uid: string } }) => ({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", name: o.metadata.name, uid: o.metadata.uid });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "only", ownerReferences: [ref(owner)] } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "shared", ownerReferences: [ref(owner), ref(other)] } } });
    const answered = await co.deleteNamespacedCustomObject({ ...VM, namespace: ns, name: "or", body: { propagationPolicy: "Orphan" } });
    expect(answered.metadata.finalizers).toContain("orphan");
    await eventually(async () => (await expectApiError(() => co.getNamespacedCustomObject({ ...VM, namespace: ns, name: "or" }))).code === 404, 5000, "owner deleted");
    const only = await core.readNamespacedConfigMap({ name: "only", namespace: ns });
    expect(only.metadata?.ownerReferences).toBeUndefined();
    expect(only.metadata?.deletionTimestamp).toBeUndefined();
    const shared = await core.readNamespacedConfigMap({ name: "shared", namespace: ns });
    expect(shared.metadata?.ownerReferences?.map((r) => r.name)).toEqual(["or-other"]);
    // with no propagation policy a custom resource's dependents are collected (Background)
    await co.deleteNamespacedCustomObject({ ...VM, namespace: ns, name: "or-other" });
    await eventually(async () => (await expectApiError(() => core.readNamespacedConfigMap({ name: "shared", namespace: ns }))).code === 404, 5000, "shared dependent collected");
    expect((await core.readNamespacedConfigMap({ name: "only", namespace: ns })).metadata?.name).toBe("only");
  });

  it("refuses requests without the cluster's bearer token (401 Status)", async () => {
    const cfg = world.cluster("a").kubeconfig.replace(world.cluster("a").token, "wrong-token");
    const bad = kubeConfig(cfg).makeApiClient(CoreV1Api);
    expect((await expectApiError(() => bad.listNamespace())).code).toBe(401);
    const res = await fetch(`${world.cluster("a").server.replace("https", "http")}/api`).catch(() => undefined);
    expect(res?.ok ?? false).toBe(false); // HTTPS only
  });
});

/** A raw HTTPS request to cluster a, trusting the world's CA. */
function raw(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const c = world.cluster("a");
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      `${c.server}${path}`,
      { method, ca: world.tls!.caPem, headers: { Authorization: `Bearer ${c.token}`, ...headers } },
      (res) => {
        let data = "";
        res.on("data", (d: Buffer) => (data += d.toString()));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: data }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

describe("protocol details", () => {
  it("answers Table, aggregated discovery, 404/405/406/415 as kube-apiserver", async () => {
    const ns = await freshNamespace();
    await co.createNamespacedCustomObject({ ...VM, namespace: ns, body: vm("t") });
    const t = await raw("GET", `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachines`, { Accept: "application/json;as=Table;v=v1;g=meta.k8s.io,application/json" });
    expect(t.headers["content-type"]).toBe("application/json;as=Table;v=v1;g=meta.k8s.io");
    const table = JSON.parse(t.body) as { kind: string; columnDefinitions: { name: string }[]; rows: { cells: unknown[]; object: { kind: string } }[] };
    expect(table.kind).toBe("Table");
    expect(table.columnDefinitions.map((c) => c.name)).toEqual(["Name", "Age", "Status", "Ready"]);
    expect(table.rows[0]?.cells.slice(0, 1)).toEqual(["t"]);
    expect(table.rows[0]?.object.kind).toBe("PartialObjectMetadata");

    const agg = await raw("GET", "/apis", { Accept: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json" });
    expect(agg.headers["content-type"]).toBe("application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList");
    const groups = (JSON.parse(agg.body) as { items: { metadata: { name: string } }[] }).items.map((i) => i.metadata.name);
    expect(groups).toEqual(expect.arrayContaining(["kubevirt.io", "cdi.kubevirt.io", "storage.k8s.io", "k8s.cni.cncf.io", "coordination.k8s.io"]));
    const legacy = JSON.parse((await raw("GET", "/apis/kubevirt.io/v1")).body) as { resources: { name: string; shortNames?: string[] }[] };
    expect(legacy.resources.find((r) => r.name === "virtualmachines")?.shortNames).toEqual(["vm", "vms"]);
    expect(legacy.resources.map((r) => r.name)).toContain("virtualmachines/status");

    const status = (r: { body: string }) => JSON.parse(r.body) as { kind: string; code: number; reason: string };
    expect(status(await raw("GET", "/apis/kubevirt.io/v1/namespaces/x/pods"))).toMatchObject({ kind: "Status", code: 404, reason: "NotFound" });
    expect(status(await raw("POST", `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachines/t`, { "Content-Type": "application/json" }, "{}"))).toMatchObject({ code: 405, reason: "MethodNotAllowed" });
    expect(status(await raw("GET", `/api/v1/namespaces/${ns}/configmaps`, { Accept: "application/vnd.kubernetes.protobuf" }))).toMatchObject({ code: 406, reason: "NotAcceptable" });
    expect(status(await raw("POST", `/api/v1/namespaces/${ns}/configmaps`, { "Content-Type": "application/cbor" }, "x"))).toMatchObject({ code: 415 });
    expect(status(await raw("PATCH", `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachines/t`, { "Content-Type": "text/plain" }, "x"))).toMatchObject({ code: 415 });
    const yaml = await raw("POST", `/api/v1/namespaces/${ns}/configmaps`, { "Content-Type": "application/yaml" }, "metadata:\n  name: from-yaml\ndata:\n  k: v\n");
    expect(yaml.status).toBe(201);
    const secret = await raw("POST", `/api/v1/namespaces/${ns}/secrets`, { "Content-Type": "application/json" }, JSON.stringify({ metadata: { name: "s" }, stringData: { pw: "hunter2" } }));
    expect(JSON.parse(secret.body)).toMatchObject({ data: { pw: Buffer.from("hunter2").toString("base64") } });
    expect(JSON.parse(secret.body).stringData).toBeUndefined();
  });
});

describe("plain HTTP", () => {
  it("serves the same API over http:// with a kubeconfig that skips TLS verification", async () => {
    const w = await startWorld({ clusters: ["h"], http: true, scenario: "empty", simulateKubeVirt: false });
    try {
      const c = w.cluster("h");
      expect(c.server).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(c.kubeconfig).toContain("insecure-skip-tls-verify: true");
      const api = kubeConfig(c.kubeconfig).makeApiClient(CoreV1Api);
      await api.createNamespace({ body: { metadata: { name: "plain" } } });
      expect((await api.listNamespace()).items.map((n) => n.metadata?.name)).toEqual(["plain"]);
      // kubectl sends no credentials over plain HTTP: anonymous requests are served, wrong tokens are not.
      const anon = await fetch(`${c.server}/api/v1/namespaces`);
      expect(anon.status).toBe(200);
      const res = await fetch(`${c.server}/api/v1/namespaces`, { headers: { Authorization: "Bearer wrong" } });
      expect(res.status).toBe(401);
      expect(await res.json()).toMatchObject({ kind: "Status", status: "Failure", reason: "Unauthorized", code: 401 });
    } finally {
      await w.stop();
    }
  });
});
