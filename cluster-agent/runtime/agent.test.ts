// The agent runtime against real parts: nats-server, a broker (in process, with its gRPC
// ClusterService over TLS), a simulated cluster over HTTPS (sim/). The Kubernetes work behind the
// executor seam is a scripted TaskExecutor here: these tests are about the runtime.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions, StorageV1Api } from "@kubernetes/client-node";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startBrokerEnv, type BrokerEnv } from "../../broker/testing.js";
import { BusHandlerError, publishTasks, requestRpc } from "../../bus/index.js";
import { certInfo } from "../../pki/index.js";
import { BUS_API_VERSION, type Task, type TaskSet, type TaskStatus } from "../../proto/bus/index.js";
import { eventually } from "../../sim/testing.js";
import { startWorld, type World } from "../../sim/world.js";
import { AgentConfig, type AgentConfigInput } from "../config.js";
import { quantityBytes } from "../core/quantity.js";
import { MIGRATION_LABEL, type TaskExecutor } from "../executor.js";
import { startAgent, type AgentHandle } from "./agent.js";
import { identityFromSecretData, IdentityError } from "./identity.js";

const quiet = pino({ level: process.env["FERRY_TEST_AGENT_LOG_LEVEL"] ?? "silent" });
const CLUSTER = "a";
const NS = "ferry-system";

let env: BrokerEnv;
let broker: Awaited<ReturnType<BrokerEnv["startInProcess"]>>;
let world: World;
let kc: KubeConfig;
let dir: string;
let caFile: string;
const agents: AgentHandle[] = [];

/** A TaskExecutor that records calls and answers with scripted results. */
function scriptedExecutor() {
  const reconciled: Task[] = [];
  const trusts: TaskSet["trust"][] = [];
  /** The next this-many reconciles report a transient API failure (the step is kept). */
  const script = { transient: 0 };
  const executor: TaskExecutor = {
    reconcile: (task) => {
      reconciled.push(task);
      const status: TaskStatus = { migrationUid: task.migrationUid, attempt: task.attempt, role: task.role, step: "Migrating", updatedAt: new Date().toISOString() };
      if (script.transient > 0) {
        script.transient--;
        return Promise.resolve({ ...status, error: { code: "KubernetesApiUnavailable", message: "500 InternalError", fix: "ferry retries" } });
      }
      return Promise.resolve(status);
    },
    reconcileTrust: (trust) => {
      trusts.push(trust);
      return Promise.resolve(trust.map((t) => ({ peer: t.peer, fingerprints: [], present: true })));
    },
    preflight: (req) => Promise.resolve({ apiVersion: BUS_API_VERSION, kind: "PreflightResult", ok: req.side === "source", issues: [] }),
    describeVm: (req) => Promise.reject(new BusHandlerError("NotFound", `VirtualMachine ${req.vm.namespace}/${req.vm.name} not found`)),
  };
  return { executor, reconciled, trusts, script };
}

function config(over: Partial<AgentConfigInput> = {}): AgentConfig {
  return AgentConfig.parse({
    cluster: CLUSTER,
    logLevel: "silent",
    kube: { mode: "kubeconfig", kubeconfigFile: world.cluster(CLUSTER).kubeconfigPath },
    broker: { address: broker.grpcAddress, caFile, serverName: "localhost" },
    credentials: { namespace: NS },
    http: { listen: "127.0.0.1:0" },
    timings: { heartbeatSeconds: 0.2, statusSeconds: 1, inventorySeconds: 3600, inventoryDebounceSeconds: 0.05, resyncSeconds: 3600, reconcileBackoffSeconds: 0.05 },
    ...over,
  } satisfies AgentConfigInput);
}

async function start(cfg: AgentConfig, exec: TaskExecutor, extra: { now?: () => Date; renewalCheckMs?: number } = {}): Promise<AgentHandle> {
  const a = await startAgent(cfg, { executor: exec, logger: quiet, newKey: () => env.testKey(), ...extra });
  agents.push(a);
  return a;
}

async function stop(a: AgentHandle): Promise<void> {
  agents.splice(agents.indexOf(a), 1);
  await a.stop();
}

async function token(cluster = CLUSTER): Promise<string> {
  const admin = await env.adminClients(broker.grpcAddress);
  try {
    return (await call(admin.clusters, "createEnrollmentToken", { clusterName: cluster, ttl: undefined })).token;
  } finally {
    admin.close();
  }
}

const soft = () => broker.runtime.registry.softState(CLUSTER);
const readSecret = (name = "ferry-agent-credentials") => kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name, namespace: NS });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "ferry-agent-"));
  env = await startBrokerEnv();
  broker = await env.startInProcess("broker-0");
  world = await startWorld({ clusters: [CLUSTER], timeScale: 50, dir });
  caFile = join(dir, "ferry-ca.crt");
  writeFileSync(caFile, env.ca.certPem);
  kc = new KubeConfig();
  kc.loadFromFile(world.cluster(CLUSTER).kubeconfigPath!);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
}, 60_000);

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await world?.stop();
  await env?.stop();
});

describe("cluster agent runtime", () => {
  let agent: AgentHandle;
  const exec = scriptedExecutor();
  let usedToken: string;

  it("first start enrolls with the token and keeps the credentials in a Secret", async () => {
    usedToken = await token();
    agent = await start(config({ bootstrap: { token: usedToken } }), exec.executor);
    expect(agent.enrolled).toBe(true);
    const secret = await readSecret();
    const stored = identityFromSecretData(secret.data!);
    expect(stored.cluster).toBe(CLUSTER);
    expect(stored.certPem).toBe(agent.identity.certPem);
    expect(secret.metadata?.labels?.["app.kubernetes.io/managed-by"]).toBe("ferry");
    const admin = await env.adminClients(broker.grpcAddress);
    const got = await call(admin.clusters, "getCluster", { name: CLUSTER });
    admin.close();
    expect(got.cluster?.name).toBe(CLUSTER);
  });

  it("the broker's registry shows the inventory (VMs with labels) and health from heartbeats", async () => {
    const inv = await eventually(() => {
      const i = soft()?.inventory;
      if (!i) throw new Error("no inventory yet");
      return i;
    });
    const web = inv.vms.find((v) => v.name === "web-1");
    expect(web).toMatchObject({ namespace: "vms", labels: { app: "web" }, runStrategy: "Always" });
    expect(web!.volumes[0]).toMatchObject({ kind: "dataVolume" });
    expect(inv.vms.find((v) => v.name === "db-1")!.interfaces).toHaveLength(2);
    expect(inv.kubevirt).toMatchObject({ decentralizedLiveMigration: true, workloadUpdateMethods: ["LiveMigrate"], vmRolloutStrategy: "LiveUpdate" });
    expect(inv.kubevirt.migrations.parallelMigrationsPerCluster).toBe(5);
    expect(inv.storageClasses.map((s) => s.name)).toEqual(["local-wffc", "standard"]);
    expect(inv.networks).toContainEqual({ namespace: "vms", name: "vlan100" });
    expect(inv.namespaces).toContain("vms");
    expect(inv.nodes).toHaveLength(3);
    const hb = await eventually(() => {
      const h = soft()?.heartbeat;
      if (!h?.health.watches) throw new Error("no healthy heartbeat yet");
      return h;
    });
    expect(hb.health).toMatchObject({ kubernetesApi: true, watches: true, tasks: 0 });
    expect(broker.runtime.registry.healthOf(CLUSTER)).toBe("Available");
    expect(soft()?.hello).toMatchObject({ capabilities: expect.arrayContaining(["decentralized-live-migration", "storage-live-migration"]), lastTaskSetGeneration: 0 });
    const ready = await fetch(`http://127.0.0.1:${agent.httpPort}/readyz`);
    expect(ready.status).toBe(200);
  });

  it("a new VM in the cluster reaches the broker through watches, without listing again", async () => {
    const ctl = world.controlClient();
    const mark = (await ctl.requests(CLUSTER, {})).last;
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: "kubevirt.io",
      version: "v1",
      plural: "virtualmachines",
      namespace: "vms",
      body: {
        apiVersion: "kubevirt.io/v1",
        kind: "VirtualMachine",
        metadata: { name: "fresh", namespace: "vms", labels: { tier: "new" } },
        spec: { runStrategy: "Halted", template: { spec: { domain: { devices: {}, memory: { guest: "1Gi" } } } } },
      },
    });
    const vm = await eventually(() => {
      const v = soft()?.inventory?.vms.find((x) => x.name === "fresh");
      if (!v) throw new Error("fresh VM not in the broker's inventory yet");
      return v;
    });
    expect(vm).toMatchObject({ labels: { tier: "new" }, runStrategy: "Halted", memoryBytes: 2 ** 30 });
    const since = await ctl.requests(CLUSTER, { since: mark, verb: "list" });
    expect(since.requests).toEqual([]);
  });

  it("storage capacity (CSIStorageCapacity) reaches the broker through watches: capacityBytes per class, none where nothing is published", async () => {
    const ctl = world.controlClient();
    const storage = kc.makeApiClient(StorageV1Api);
    const core = kc.makeApiClient(CoreV1Api);
    // The default scenario's VMs' volumes are in class standard; once they are Bound the pool is settled.
    const boundInStandard = async () => {
      const pvcs = (await core.listPersistentVolumeClaimForAllNamespaces()).items.filter((p) => p.spec?.storageClassName === "standard");
      if (!pvcs.length || pvcs.some((p) => p.status?.phase !== "Bound")) throw new Error("claims of class standard not all Bound yet");
      return { used: pvcs.reduce((n, p) => n + quantityBytes(p.status?.capacity?.["storage"])!, 0) };
    };
    const { used } = await eventually(boundInStandard, 10_000, "standard's claims bound");
    const mark = (await ctl.requests(CLUSTER, {})).last;
    // `kubectl annotate sc standard sim.kubevirt.io/storage-capacity=1Ti`: the simulated driver publishes.
    await storage.patchStorageClass({ name: "standard", body: { metadata: { annotations: { "sim.kubevirt.io/storage-capacity": "1Ti" } } } }, setHeaderOptions("Content-Type", PatchStrategy.MergePatch));
    const classes = () => Object.fromEntries((soft()?.inventory?.storageClasses ?? []).map((c) => [c.name, c.capacityBytes]));
    await eventually(() => classes()["standard"] === 2 ** 40 - used || undefined, 10_000, "standard's capacity in the broker's inventory");
    expect(classes()).toEqual({ standard: 2 ** 40 - used, "local-wffc": undefined });

    // A new 10Gi volume binds: the capacity object shrinks and so does the reported capacity.
    await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
      group: "cdi.kubevirt.io",
      version: "v1beta1",
      plural: "datavolumes",
      namespace: "vms",
      body: { apiVersion: "cdi.kubevirt.io/v1beta1", kind: "DataVolume", metadata: { name: "extra" }, spec: { source: { blank: {} }, storage: { storageClassName: "standard", volumeMode: "Block", accessModes: ["ReadWriteMany"], resources: { requests: { storage: "10Gi" } } } } },
    });
    await eventually(() => classes()["standard"] === 2 ** 40 - used - 10 * 2 ** 30 || undefined, 10_000, "capacity after the new volume bound");
    const lists = await ctl.requests(CLUSTER, { since: mark, verb: "list" });
    expect(lists.requests).toEqual([]);
    // ferryctl cluster get shows it: the API's storage class summary carries the free bytes.
    const admin = await env.adminClients(broker.grpcAddress);
    const got = await call(admin.clusters, "getCluster", { name: CLUSTER });
    admin.close();
    expect(got.cluster?.inventory?.storageClasses.map((c) => [c.name, c.freeBytes])).toEqual([
      ["local-wffc", undefined],
      ["standard", 2 ** 40 - used - 10 * 2 ** 30],
    ]);
  });

  it("answers rpc inventory, preflight and describe-vm", async () => {
    const deadline = new Date(Date.now() + 10_000).toISOString();
    const head = { apiVersion: BUS_API_VERSION, cluster: CLUSTER, deadline } as const;
    const inv = await requestRpc(broker.runtime.bus, CLUSTER, "inventory", { ...head, kind: "InventoryRequest" }, { timeoutMs: 10_000 });
    expect(inv.kind).toBe("Inventory");
    if (inv.kind === "Inventory") expect(inv.vms.map((v) => v.name)).toContain("web-1");
    const ref = { cluster: CLUSTER, namespace: "vms", name: "web-1" };
    const pf = await requestRpc(
      broker.runtime.bus,
      CLUSTER,
      "preflight",
      { ...head, kind: "PreflightRequest", side: "source", migrationKind: "decentralized-live", source: ref, target: { ...ref, cluster: "b" }, storageMap: [], networkMap: [] },
      { timeoutMs: 10_000 },
    );
    expect(pf).toMatchObject({ kind: "PreflightResult", ok: true });
    const dv = await requestRpc(broker.runtime.bus, CLUSTER, "describe-vm", { ...head, kind: "DescribeVmRequest", vm: { namespace: "vms", name: "nope" } }, { timeoutMs: 10_000 });
    expect(dv).toMatchObject({ kind: "RpcError", code: "NotFound", message: expect.stringMatching(/vms\/nope not found/) });
    const late = await requestRpc(broker.runtime.bus, CLUSTER, "preflight", { ...head, deadline: new Date(Date.now() - 1000).toISOString(), kind: "PreflightRequest", side: "source", migrationKind: "decentralized-live", source: ref, target: { ...ref, cluster: "b" }, storageMap: [], networkMap: [] }, { timeoutMs: 10_000 });
    expect(late).toMatchObject({ kind: "RpcError", code: "DeadlineExceeded" });
  });

  const uid = "mig-1";
  const sendTask = (attempt = 1): Task => ({
    migrationUid: uid,
    plan: "p",
    attempt,
    migrationId: `${uid}-${attempt}`,
    source: { cluster: CLUSTER, namespace: "vms", name: "web-1" },
    target: { cluster: "b", namespace: "vms", name: "web-1" },
    role: "source",
    action: "send",
    connectUrl: "10.0.0.9:9185",
  });
  const taskSet = (generation: number, tasks: Task[], trust: TaskSet["trust"] = []): TaskSet => ({
    apiVersion: BUS_API_VERSION,
    kind: "TaskSet",
    cluster: CLUSTER,
    generation,
    issuedAt: new Date().toISOString(),
    trust,
    tasks,
  });

  it("a task set triggers reconcile, trust and a Status; older generations are ignored", async () => {
    publishTasks(broker.runtime.bus, CLUSTER, taskSet(5, [sendTask()], [{ peer: "b", caBundle: env.ca.certPem }]));
    const status = await eventually(() => {
      const s = soft()?.status;
      if (s?.taskSetGeneration !== 5 || s.tasks.length !== 1 || s.tasks[0]!.step !== "Migrating" || s.trust.length !== 1) throw new Error("no status for generation 5 yet");
      return s;
    });
    expect(status.tasks[0]).toMatchObject({ migrationUid: uid, role: "source", attempt: 1 });
    expect(status.trust[0]).toMatchObject({ peer: "b", present: true });
    expect(exec.reconciled.filter((t) => t.migrationUid === uid).length).toBeGreaterThanOrEqual(1);
    expect(exec.trusts.at(-1)).toEqual([{ peer: "b", caBundle: env.ca.certPem }]);

    // A stale set: its task is never reconciled and the status still answers generation 5.
    publishTasks(broker.runtime.bus, CLUSTER, taskSet(3, [{ ...sendTask(), migrationUid: "stale-1", migrationId: "stale-1-1" }]));
    // Then the same generation again: everything re-reconciled, a marker that the stale one was processed before.
    const before = exec.reconciled.length;
    publishTasks(broker.runtime.bus, CLUSTER, taskSet(5, [sendTask()], [{ peer: "b", caBundle: env.ca.certPem }]));
    await eventually(() => {
      if (exec.reconciled.length <= before) throw new Error("re-sent set not reconciled yet");
      return true;
    });
    expect(exec.reconciled.some((t) => t.migrationUid === "stale-1")).toBe(false);
    expect(soft()?.status?.taskSetGeneration).toBe(5);
    const hb = await eventually(() => {
      const h = soft()?.heartbeat;
      if (h?.health.tasks !== 1) throw new Error("heartbeat does not count the task yet");
      return h;
    });
    expect(hb.health.tasks).toBe(1);
  });

  it("a watch event on an object labelled with the migration reconciles its task again", async () => {
    const before = exec.reconciled.length;
    await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
      { group: "kubevirt.io", version: "v1", plural: "virtualmachines", namespace: "vms", name: "web-2", body: { metadata: { labels: { [MIGRATION_LABEL]: uid } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    await eventually(() => {
      if (!exec.reconciled.slice(before).some((t) => t.migrationUid === uid)) throw new Error("no reconcile after the labelled VM changed");
      return true;
    });
  });

  it("a transient API failure is reconciled again with back-off, without waiting for an event or the resync", async () => {
    exec.script.transient = 2;
    const before = exec.reconciled.length;
    await kc.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
      { group: "kubevirt.io", version: "v1", plural: "virtualmachines", namespace: "vms", name: "web-2", body: { metadata: { labels: { touched: "1" } } } },
      setHeaderOptions("Content-Type", PatchStrategy.MergePatch),
    );
    // One event, then two transient failures: three reconciles (the resync is an hour away).
    await eventually(() => {
      if (exec.script.transient > 0 || exec.reconciled.slice(before).filter((t) => t.migrationUid === uid).length < 3) throw new Error("not reconciled again after the transient failures");
      return true;
    });
  });

  it("a migration absent from the next set is no longer held (and nothing is undone)", async () => {
    publishTasks(broker.runtime.bus, CLUSTER, taskSet(6, []));
    await eventually(() => {
      const s = soft()?.status;
      if (s?.taskSetGeneration !== 6 || s.tasks.length !== 0) throw new Error("status still holds the task");
      return true;
    });
    const metrics = await (await fetch(`http://127.0.0.1:${agent.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/ferry_agent_reconciles_total\{role="source",result="ok"\} [1-9]/);
    expect(metrics).toMatch(/ferry_agent_task_sets_total\{result="stale"\} 1/);
    expect(metrics).toMatch(/ferry_agent_inventory_publishes_total\{trigger="change"\} [1-9]/);
    expect(metrics).toMatch(/ferry_agent_tasks 0/);
  });

  it("a second start reuses the Secret: no token needed, Hello carries the last generation", async () => {
    await stop(agent);
    const epochBefore = soft()!.hello!.epoch;
    agent = await start(config(), exec.executor);
    expect(agent.enrolled).toBe(false);
    const hello = await eventually(() => {
      const h = soft()?.hello;
      if (!h || h.epoch === epochBefore) throw new Error("no hello from the new process yet");
      return h;
    });
    expect(hello.lastTaskSetGeneration).toBe(0); // a restarted agent re-learns the set from the broker
  });

  it("renews the certificate before expiry, stores it and reconnects with it", async () => {
    const oldSerial = certInfo(agent.identity.certPem).serialNumber;
    await stop(agent);
    // The clock is 6 of the certificate's 7 days on: renewal (due at 2/3) starts at once.
    const later = () => new Date(Date.now() + 6 * 86_400_000);
    agent = await start(config(), exec.executor, { now: later, renewalCheckMs: 50 });
    await eventually(() => {
      if (certInfo(agent.identity.certPem).serialNumber === oldSerial) throw new Error("not renewed yet");
      return true;
    });
    const stored = identityFromSecretData((await readSecret()).data!);
    expect(stored.certPem).toBe(agent.identity.certPem);
    expect(stored.natsJwt).toBe(agent.identity.natsJwt);
    const seqAfter = soft()!.heartbeat!.seq;
    await eventually(() => {
      if (!(soft()!.heartbeat!.seq > seqAfter + 2)) throw new Error("no heartbeats after renewal");
      return true;
    });
    // Ready again once a PING after the reconnect was answered.
    await eventually(async () => (await fetch(`http://127.0.0.1:${agent.httpPort}/readyz`)).status === 200);
  });

  it("a used token is refused with a clear error, and no token with no Secret says what to do", async () => {
    const err = await startAgent(config({ bootstrap: { token: usedToken }, credentials: { namespace: NS, secretName: "other-credentials", renewAtFraction: 2 / 3 } }), {
      executor: exec.executor,
      logger: quiet,
      newKey: () => env.testKey(),
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(IdentityError);
    expect((err as IdentityError).reason).toBe("TOKEN_ALREADY_USED");
    expect((err as Error).message).toMatch(/Enroll refused by the broker.*single-use; ask the admin for a new one \(`ferryctl cluster add/);
    const none = await startAgent(config({ credentials: { namespace: NS, secretName: "nothing-here", renewAtFraction: 2 / 3 } }), { executor: exec.executor, logger: quiet }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((none as Error).message).toMatch(/no credentials Secret ferry-system\/nothing-here and no bootstrap token is set.*ferryctl cluster add a.*--bootstrap-token-file or FERRY_BOOTSTRAP_TOKEN/);
  });
});
