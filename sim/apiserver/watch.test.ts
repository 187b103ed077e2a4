// Watches, informers and their recovery, fault injection and the control API, all over HTTPS with
// client-node and the typed control client.
import { CoreV1Api, CustomObjectsApi, type KubeConfig, type KubernetesObject, Watch, makeInformer } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KubeVirtFaults } from "../cluster.js";
import { SimControlClient, SimControlError } from "../control-client.js";
import { eventually, expectApiError, kubeConfig } from "../testing.js";
import { type World, startWorld } from "../world.js";

let world: World;
let kc: KubeConfig;
let core: CoreV1Api;
let ctl: SimControlClient;
let nsCounter = 0;

async function freshNamespace(): Promise<string> {
  const name = `w${++nsCounter}`;
  await core.createNamespace({ body: { metadata: { name } } });
  return name;
}

interface Seen {
  type: string;
  name?: string;
  rv?: string;
  code?: number;
  reason?: string;
  initialEventsEnd?: string;
}

/** Starts a raw watch; returns what it saw, a promise for its end, and a stop function. */
async function watch(path: string, params: Record<string, string | number | boolean | undefined>) {
  const seen: Seen[] = [];
  let ended!: (err: unknown) => void;
  const done = new Promise<unknown>((r) => (ended = r));
  const ctrl = await new Watch(kc).watch(
    path,
    params,
    (type, obj: { metadata?: { name?: string; resourceVersion?: string; annotations?: Record<string, string> }; code?: number; reason?: string }) => {
      const end = obj.metadata?.annotations?.["k8s.io/initial-events-end"];
      seen.push({ type, name: obj.metadata?.name, rv: obj.metadata?.resourceVersion, code: obj.code, reason: obj.reason, ...(end ? { initialEventsEnd: end } : {}) });
    },
    (err) => ended(err),
  );
  return { seen, done, stop: () => ctrl.abort() };
}

beforeAll(async () => {
  world = await startWorld({ clusters: ["a", "b"], scenario: "empty", simulateKubeVirt: false, bookmarkIntervalMs: 100 });
  kc = kubeConfig(world.cluster("a").kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  ctl = world.controlClient();
});

afterAll(async () => {
  await world.stop();
});

describe("watch", () => {
  it("streams ADDED/MODIFIED/DELETED from a resourceVersion, with periodic bookmarks", async () => {
    const ns = await freshNamespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "before" } } });
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    const w = await watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: list.metadata!.resourceVersion!, allowWatchBookmarks: true });
    const cm = await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "c", labels: { a: "1" } } } });
    await core.replaceNamespacedConfigMap({ name: "c", namespace: ns, body: { ...cm, data: { x: "y" } } });
    await core.deleteNamespacedConfigMap({ name: "c", namespace: ns });
    await eventually(() => w.seen.some((e) => e.type === "BOOKMARK") && w.seen.some((e) => e.type === "DELETED"), 5000, "events and a bookmark");
    w.stop();
    const changes = w.seen.filter((e) => e.type !== "BOOKMARK").map((e) => `${e.type} ${e.name}`);
    expect(changes).toEqual(["ADDED c", "MODIFIED c", "DELETED c"]);
    const bookmark = w.seen.find((e) => e.type === "BOOKMARK")!;
    expect(Number(bookmark.rv)).toBeGreaterThanOrEqual(Number(list.metadata!.resourceVersion));
  });

  it("sends the current objects as ADDED without a resourceVersion, and honours label selectors", async () => {
    const ns = await freshNamespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "x", labels: { pick: "yes" } } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "y", labels: { pick: "no" } } } });
    const w = await watch(`/api/v1/namespaces/${ns}/configmaps`, { labelSelector: "pick=yes" });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "z", labels: { pick: "yes" } } } });
    await eventually(() => w.seen.length >= 2, 5000, "two events");
    w.stop();
    expect(w.seen.map((e) => `${e.type} ${e.name}`)).toEqual(["ADDED x", "ADDED z"]);
  });

  it("serves the legacy /watch/ paths, single-object watches and the initial-events bookmark", async () => {
    const ns = await freshNamespace();
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "one" } } });
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "two" } } });
    const w = await watch(`/api/v1/watch/namespaces/${ns}/configmaps/two`, { allowWatchBookmarks: true, sendInitialEvents: true, resourceVersionMatch: "NotOlderThan" });
    await eventually(() => w.seen.length >= 2, 5000, "initial events");
    w.stop();
    expect(w.seen[0]).toMatchObject({ type: "ADDED", name: "two" });
    expect(w.seen[1]).toMatchObject({ type: "BOOKMARK", initialEventsEnd: "true" });
  });

  it("answers a too-old resourceVersion with an ERROR event (410 Expired) and closes the stream", async () => {
    const ns = await freshNamespace();
    const list = await core.listNamespacedConfigMap({ namespace: ns });
    await ctl.expireWatches("a");
    const w = await watch(`/api/v1/namespaces/${ns}/configmaps`, { resourceVersion: list.metadata!.resourceVersion! });
    await w.done;
    expect(w.seen).toEqual([{ type: "ERROR", code: 410, reason: "Expired", name: undefined, rv: undefined }]);
  });

  it("ends watches after timeoutSeconds", async () => {
    const ns = await freshNamespace();
    const w = await watch(`/api/v1/namespaces/${ns}/configmaps`, { timeoutSeconds: 1 });
    expect(await w.done).toBeNull();
  });
});

describe("informers", () => {
  it("keep working after their watches are dropped and after their resourceVersion expires", async () => {
    const ns = await freshNamespace();
    const co = kc.makeApiClient(CustomObjectsApi);
    const VM = { group: "kubevirt.io", version: "v1", namespace: ns, plural: "virtualmachines" };
    const vm = (name: string) => ({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", metadata: { name }, spec: { runStrategy: "Halted" } });
    await co.createNamespacedCustomObject({ ...VM, body: vm("first") });
    await co.createNamespacedCustomObject({ ...VM, body: vm("doomed") });

    const informer = makeInformer<KubernetesObject>(kc, `/apis/kubevirt.io/v1/namespaces/${ns}/virtualmachines`, () => co.listNamespacedCustomObject(VM));
    const errors: unknown[] = [];
    const deleted: string[] = [];
    informer.on("error", (e) => errors.push(e));
    informer.on("delete", (o) => deleted.push(o.metadata!.name!));
    await informer.start();
    try {
      const names = () => informer.list(ns).map((o) => o.metadata!.name!).sort().join(",");
      await eventually(() => names() === "doomed,first", 5000, "initial list");
      const count = async (verb: "list" | "watch") =>
        (await ctl.requests("a", { verb, resource: "virtualmachines" })).requests.filter((r) => r.namespace === ns).length;
      const lists = await count("list");
      const watches = await count("watch");

      // 1. Dropped connections: the informer re-watches from its resourceVersion, no relist.
      expect(await ctl.dropWatches("a")).toBeGreaterThanOrEqual(1);
      await eventually(async () => (await count("watch")) > watches, 5000, "a new watch");
      await co.createNamespacedCustomObject({ ...VM, body: vm("after-drop") });
      await eventually(() => names() === "after-drop,doomed,first", 5000, "object created after the drop");
      expect(await count("list")).toBe(lists);

      // 2. Expired history: the re-watch gets 410, the informer relists and carries on. "doomed" is
      //    deleted while the informer reconnects (its re-watch is delayed), so it learns of it from
      //    the relist or from the new watch, either way.
      await ctl.addLatency("a", { verb: "watch", resource: "virtualmachines", namespace: ns, ms: 300, count: 1 });
      await ctl.expireWatches("a");
      await co.deleteNamespacedCustomObject({ ...VM, name: "doomed" });
      await eventually(async () => (await count("list")) > lists, 5000, "a relist after 410");
      await co.createNamespacedCustomObject({ ...VM, body: vm("after-expire") });
      await eventually(() => names() === "after-drop,after-expire,first", 5000, "cache after relist");
      expect(deleted).toEqual(["doomed"]);
      expect(errors).toEqual([]);
    } finally {
      await informer.stop();
    }
  });
});

describe("fault injection and control API", () => {
  it("fails the next N matching requests with the given status, then succeeds", async () => {
    const ns = await freshNamespace();
    await ctl.injectError("a", { verb: "list", resource: "configmaps", namespace: ns, code: 500, count: 2 });
    await ctl.injectError("a", { verb: "create", resource: "configmaps", code: 429, retryAfterSeconds: 3 });
    expect((await ctl.faults("a")).map((f) => [f.type, f.type === "error" ? f.code : f.ms, f.remaining])).toEqual([["error", 500, 2], ["error", 429, 1]]);
    expect((await expectApiError(() => core.listNamespacedConfigMap({ namespace: ns }))).code).toBe(500);
    expect((await expectApiError(() => core.listNamespacedConfigMap({ namespace: ns }))).reason).toBe("InternalError");
    expect((await core.listNamespacedConfigMap({ namespace: ns })).items).toEqual([]);
    // Another cluster is unaffected; other verbs too.
    expect((await kubeConfig(world.cluster("b").kubeconfig).makeApiClient(CoreV1Api).listNamespace()).items).toBeDefined();

    const e = await expectApiError(() => core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "x" } } }));
    expect([e.code, e.reason]).toEqual([429, "TooManyRequests"]);
    await core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: "x" } } });
    expect(await ctl.faults("a")).toEqual([]);

    const log = await ctl.requests("a", { resource: "configmaps" });
    const injected = log.requests.filter((r) => r.injected).map((r) => [r.verb, r.code]);
    expect(injected).toEqual([["list", 500], ["list", 500], ["create", 429]]);
  });

  it("sends Retry-After with 429 and counts requests per verb and resource", async () => {
    const ns = await freshNamespace();
    const before = await ctl.metrics("a");
    await ctl.injectError("a", { resource: "configmaps", name: "r", code: 429, retryAfterSeconds: 7, message: "slow down" });
    let headers: Record<string, string> = {};
    try {
      await core.readNamespacedConfigMap({ name: "r", namespace: ns });
    } catch (e) {
      headers = (e as { headers: Record<string, string> }).headers;
      expect((e as { code: number }).code).toBe(429);
    }
    expect(headers["retry-after"]).toBe("7");
    await core.listNamespacedConfigMap({ namespace: ns });
    await core.listNamespacedConfigMap({ namespace: ns });
    const after = await ctl.metrics("a");
    expect((after.requests.list?.configmaps ?? 0) - (before.requests.list?.configmaps ?? 0)).toBe(2);
    expect((after.requests.get?.configmaps ?? 0) - (before.requests.get?.configmaps ?? 0)).toBe(1);
    const since = (await ctl.requests("a", { since: after.last })).requests;
    expect(since).toEqual([]);
  });

  it("adds latency, lists and clears rules", async () => {
    const rule = await ctl.addLatency("b", { verb: "get", ms: 50 });
    expect(rule).toMatchObject({ type: "latency", ms: 50, remaining: "unlimited" });
    await ctl.injectError("b", { code: 503 });
    expect(await ctl.faults("b")).toHaveLength(2);
    await ctl.removeFault("b", rule.id);
    expect(await ctl.clearFaults("b")).toBe(1);
    expect(await ctl.faults("b")).toEqual([]);
    await expect(ctl.removeFault("b", rule.id)).rejects.toMatchObject({ status: 404 });
    await expect(ctl.injectError("b", { code: 200 })).rejects.toMatchObject({ status: 400 });
    await expect(ctl.injectError("zz", { code: 500 })).rejects.toMatchObject({ status: 404 });
    await expect(new SimControlClient(world.control.url, "wrong").clusters()).rejects.toBeInstanceOf(SimControlError);
    expect((await ctl.clusters()).map((c) => c.name)).toEqual(["a", "b"]);
  });

  it("forwards KubeVirt faults to cluster.kubevirt, and answers 501 when there is none", async () => {
    const calls: string[] = [];
    const fake: KubeVirtFaults = {
      rotateCA: () => Promise.resolve(void calls.push("rotateCA")),
      moveSyncAddress: () => Promise.resolve(void calls.push("moveSyncAddress")),
      breakSyncConnections: () => void calls.push("breakSyncConnections"),
      stallSync: (s) => void calls.push(`stallSync ${s}`),
      setDirtyRate: (ns, vmi, rate) => void calls.push(`setDirtyRate ${ns}/${vmi} ${rate}`),
      killVMI: (ns, vmi) => void calls.push(`killVMI ${ns}/${vmi}`),
      migrationMetrics: () => [{ namespace: "vms", name: "web-1", migrationUID: "u", role: "source", decentralized: false, dataProcessedBytes: 1 }],
      renderMetrics: () => "kubevirt_vmi_migration_data_processed_bytes{} 1\n",
    };
    const b = world.cluster("b").cluster;
    const saved = b.kubevirt;
    try {
      b.kubevirt = undefined;
      const err = await ctl.kubevirt("b").rotateCA().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SimControlError);
      expect((err as SimControlError).status).toBe(501);
      expect((err as SimControlError).message).toContain("cluster.kubevirt is not set");

      b.kubevirt = fake;
      const kv = ctl.kubevirt("b");
      await kv.rotateCA();
      await kv.moveSyncAddress();
      await kv.breakSyncConnections();
      await kv.stallSync(true);
      await kv.setDirtyRate("vms", "web-1", "no-converge");
      await kv.setDirtyRate("vms", "web-1", 1048576);
      await kv.killVMI("vms", "web-1");
      expect(calls).toEqual([
        "rotateCA", "moveSyncAddress", "breakSyncConnections", "stallSync true",
        "setDirtyRate vms/web-1 no-converge", "setDirtyRate vms/web-1 1048576", "killVMI vms/web-1",
      ]);
      await expect(kv.killVMI("", "x")).rejects.toMatchObject({ status: 400 });
      expect(await kv.migrations()).toEqual([{ namespace: "vms", name: "web-1", migrationUID: "u", role: "source", decentralized: false, dataProcessedBytes: 1 }]);
      expect(await kv.metricsText()).toBe("kubevirt_vmi_migration_data_processed_bytes{} 1\n");
      expect((await ctl.clusters()).find((c) => c.name === "b")?.kubevirt).toBe(true);
    } finally {
      b.kubevirt = saved;
    }
  });
});
