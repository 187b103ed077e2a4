// The cluster agent process, as a function: `startAgent(config, opts)` → a handle with `stop()`.
//
//   identity   Secret → else enroll with the bootstrap token → Secret; renew before expiry
//   bus        NATS with the issued credentials; Hello on connect and reconnect, Heartbeat on a timer,
//              Inventory on connect, on change (watch events, debounced) and periodically,
//              Status on every change and periodically; rpc inventory / preflight / describe-vm
//   tasks      the newest task set; a work queue calls executor.reconcile per task on each new set,
//              on watch events of its objects and on a periodic resync; trust via reconcileTrust
//   http       /healthz /readyz /metrics
//
// Nothing is remembered across restarts except the credentials Secret: tasks come from the next
// task set, their progress from the cluster (the executor reads it on every reconcile).
import { readFileSync } from "node:fs";
import { CoreV1Api, CustomObjectsApi, KubeConfig, StorageV1Api, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import { pino, type Logger } from "pino";
import { BusHandlerError, connectBus, publishReport, serveRpc, subscribeTasks, type Bus, type BusSubscription } from "../../bus/index.js";
import { BUS_API_VERSION, clipText, MAX_MESSAGE_BYTES, type Hello, type Inventory, type Message, type Status, type TaskSet, type TaskStatus } from "../../proto/bus/index.js";
import { readBootstrapToken, type AgentConfig } from "../config.js";
import { MIGRATION_LABEL, type ExecutorOptions, type TaskExecutor } from "../executor.js";
import { activeKubeVirt, buildInventory, KUBEVIRT_CA_CONFIGMAP, type InventoryBody, type Obj, type Snapshot } from "../inventory/build.js";
import { startHttpServer, type Check, type HttpServer } from "./http.js";
import { busCredentials, errText, IdentityManager, type Identity } from "./identity.js";
import { AgentMetrics } from "./metrics.js";
import { WorkQueue } from "./queue.js";
import { Reflector, type EventType } from "./reflector.js";
import { TaskBook, taskKey, type TaskKey } from "./taskbook.js";

export const AGENT_VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { version: string }).version;
  } catch {
    return "0.0.0";
  }
})();

export interface AgentOptions {
  /** The Kubernetes work (cluster-agent/tasks `createExecutor`), or a factory given the agent's KubeConfig, cluster and logger. */
  executor: TaskExecutor | ((opts: ExecutorOptions) => TaskExecutor);
  logger?: Logger;
  /** Clock for certificate renewal and report timestamps (tests move it forward). */
  now?: () => Date;
  /** A fresh private key PEM per CSR (tests share one; default 2048-bit RSA). */
  newKey?: () => Promise<string>;
  /** How often the renewal deadline is checked at most (default 60 s). */
  renewalCheckMs?: number;
  /** Replaces the KubeConfig built from config.kube (tests). */
  kubeConfig?: KubeConfig;
}

export interface AgentHandle {
  readonly cluster: string;
  /** Port of /healthz /readyz /metrics. */
  readonly httpPort: number;
  /** The credentials in use (after renewal, the new ones). */
  readonly identity: Identity;
  /** Whether this start enrolled (true) or reused the Secret (false). */
  readonly enrolled: boolean;
  /** Connected to NATS and every watch established. */
  readonly ready: boolean;
  readonly metrics: AgentMetrics;
  readonly bus: Bus;
  /** Resolves if the agent cannot go on (NATS connection closed for good: credentials revoked or expired). */
  readonly failed: Promise<Error>;
  /** Renew the certificate now (also done automatically before expiry). */
  renew(): Promise<void>;
  stop(): Promise<void>;
}

/** The queue key of the trust reconcile (task keys contain a '/'; this cannot collide). */
const TRUST_KEY = "trust";

export function makeKubeConfig(config: AgentConfig): KubeConfig {
  const kc = new KubeConfig();
  if (config.kube.mode === "in-cluster") {
    kc.loadFromCluster();
    if (!kc.getCurrentCluster()?.server || kc.getCurrentCluster()?.server.includes("undefined")) {
      throw new Error("kube.mode in-cluster: KUBERNETES_SERVICE_HOST/PORT are not set (not running in a pod?); use --kubeconfig <file> outside a cluster");
    }
    return kc;
  }
  try {
    kc.loadFromFile(config.kube.kubeconfigFile!);
  } catch (e) {
    throw new Error(`kube.kubeconfigFile: cannot load ${config.kube.kubeconfigFile}: ${errText(e)}; fix --kubeconfig / FERRY_KUBECONFIG`, { cause: e });
  }
  if (config.kube.context) {
    if (!kc.getContextObject(config.kube.context)) {
      throw new Error(`kube.context: no context "${config.kube.context}" in ${config.kube.kubeconfigFile} (has: ${kc.getContexts().map((c) => c.name).join(", ")}); fix --context`);
    }
    kc.setCurrentContext(config.kube.context);
  }
  if (!kc.getCurrentCluster()) throw new Error(`kube.kubeconfigFile: ${config.kube.kubeconfigFile} has no current context; pass --context`);
  return kc;
}

type AnyObj = KubernetesObject & Obj;

export async function startAgent(config: AgentConfig, opts: AgentOptions): Promise<AgentHandle> {
  const log = (opts.logger ?? pino({ level: config.logLevel })).child({ cluster: config.cluster, ...(config.identity ? { identity: config.identity } : {}) });
  const now = opts.now ?? (() => new Date());
  const kc = opts.kubeConfig ?? makeKubeConfig(config);
  const metrics = new AgentMetrics();
  const cleanups: (() => Promise<void> | void)[] = [];
  const stopAll = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (e) {
        log.warn({ err: errText(e) }, "error during shutdown");
      }
    }
  };

  let busConnected = false;
  const reflectors: Reflector<AnyObj>[] = [];
  let inventoryProblem: string | undefined;

  const readiness = (): Record<string, Check> => {
    const unsynced = reflectors.filter((r) => !r.synced);
    return {
      nats: { ok: busConnected, detail: busConnected ? "connected" : "not connected to NATS" },
      watches: {
        ok: reflectors.length > 0 && unsynced.length === 0,
        detail: unsynced.length ? `not established: ${unsynced.map((r) => r.name).join(", ")}` : reflectors.length ? `${reflectors.length} established` : "not started",
      },
    };
  };
  const http: HttpServer = await startHttpServer(config.http.listen, { registry: metrics.registry, readiness });
  cleanups.push(() => http.close());

  try {
    // ---- identity
    const identities = new IdentityManager({
      config,
      kubeConfig: kc,
      log,
      token: readBootstrapToken(config),
      bootstrapCaPem: config.broker.caFile ? readFileSync(config.broker.caFile, "utf8") : undefined,
      now,
      ...(opts.newKey ? { newKey: opts.newKey } : {}),
    });
    const { identity, enrolled } = await identities.load();
    metrics.certificateExpiry.set(identity.notAfter.getTime() / 1000);

    // ---- executor
    const executor = typeof opts.executor === "function" ? opts.executor({ kubeConfig: kc, cluster: config.cluster, log: log.child({ part: "executor" }), now, vmimReleaseSeconds: config.timings.vmimReleaseSeconds, requeue: (task, ms) => queue.addAfter(taskKey(task), ms), kubevirtNamespace: config.kubevirtNamespace, progressPollSeconds: config.timings.progressPollSeconds }) : opts.executor;

    // ---- bus
    const bus = await connectBus({ ...busCredentials(identity, config.natsUrls), logger: log.child({ part: "bus" }) });
    const setConnected = (up: boolean) => {
      busConnected = up && !bus.nc.isClosed();
      metrics.busConnected.set(busConnected ? 1 : 0);
    };
    setConnected(true);
    cleanups.push(async () => {
      busConnected = false;
      await bus.drain().catch(() => bus.close());
    });

    // ---- reports: (epoch, seq) per process
    const epoch = Date.now();
    let seq = 0;
    const head = <K extends string>(kind: K) => ({ apiVersion: BUS_API_VERSION as typeof BUS_API_VERSION, kind, cluster: config.cluster, epoch, seq: ++seq });
    const publish = <R extends "hello" | "heartbeat" | "inventory" | "status">(kind: R, value: Message<R>) => {
      try {
        publishReport(bus, config.cluster, kind, value);
        metrics.reports.inc({ kind });
      } catch (e) {
        log.error({ kind, err: errText(e) }, "cannot publish report");
      }
    };

    // ---- caches (watches, never polling)
    const co = kc.makeApiClient(CustomObjectsApi);
    const core = kc.makeApiClient(CoreV1Api);
    const storage = kc.makeApiClient(StorageV1Api);
    const custom = (group: string, version: string, plural: string, labelSelector?: string) => () =>
      co.listClusterCustomObject({ group, version, plural, ...(labelSelector ? { labelSelector } : {}) }) as Promise<KubernetesListObject<AnyObj>>;
    const book = new TaskBook();
    let inventoryDirty = false;
    const onInventoryChange = () => scheduleInventory();
    const reflect = (name: string, path: string, list: () => Promise<KubernetesListObject<AnyObj>>, onEvent: (type: EventType, obj: AnyObj) => void, sel: { labelSelector?: string; fieldSelector?: string } = {}) => {
      const r = new Reflector<AnyObj>({ kubeConfig: kc, name, path, list, log, onEvent, ...sel });
      reflectors.push(r);
      return r;
    };
    const migrationOf = (o: AnyObj) => o.metadata?.labels?.[MIGRATION_LABEL];
    const enqueueFor = (o: AnyObj, byVm: boolean) => {
      const keys = new Set<TaskKey>();
      const uid = migrationOf(o);
      if (uid) for (const k of book.tasksForMigration(uid)) keys.add(k);
      if (byVm && o.metadata?.namespace && o.metadata.name) for (const k of book.tasksForVm(config.cluster, o.metadata.namespace, o.metadata.name)) keys.add(k);
      for (const k of keys) queue.add(k);
    };
    const r = {
      kubevirts: reflect("kubevirts", "/apis/kubevirt.io/v1/kubevirts", custom("kubevirt.io", "v1", "kubevirts"), onInventoryChange),
      caConfigMaps: reflect(
        "configmaps/kubevirt-ca",
        `/api/v1/namespaces/${config.kubevirtNamespace}/configmaps`,
        () => core.listNamespacedConfigMap({ namespace: config.kubevirtNamespace, fieldSelector: `metadata.name=${KUBEVIRT_CA_CONFIGMAP}` }) as Promise<KubernetesListObject<AnyObj>>,
        () => {
          onInventoryChange();
          if (book.trustRequest.length) queue.add(TRUST_KEY);
        },
        { fieldSelector: `metadata.name=${KUBEVIRT_CA_CONFIGMAP}` },
      ),
      storageClasses: reflect("storageclasses", "/apis/storage.k8s.io/v1/storageclasses", () => storage.listStorageClass() as unknown as Promise<KubernetesListObject<AnyObj>>, onInventoryChange),
      storageCapacities: reflect(
        "csistoragecapacities",
        "/apis/storage.k8s.io/v1/csistoragecapacities",
        () => storage.listCSIStorageCapacityForAllNamespaces() as unknown as Promise<KubernetesListObject<AnyObj>>,
        onInventoryChange,
      ),
      nads: reflect("network-attachment-definitions", "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions", custom("k8s.cni.cncf.io", "v1", "network-attachment-definitions"), onInventoryChange),
      nodes: reflect("nodes", "/api/v1/nodes", () => core.listNode() as Promise<KubernetesListObject<AnyObj>>, onInventoryChange),
      namespaces: reflect("namespaces", "/api/v1/namespaces", () => core.listNamespace() as Promise<KubernetesListObject<AnyObj>>, onInventoryChange),
      vms: reflect("virtualmachines", "/apis/kubevirt.io/v1/virtualmachines", custom("kubevirt.io", "v1", "virtualmachines"), (_t, o) => {
        onInventoryChange();
        enqueueFor(o, true);
      }),
      vmis: reflect("virtualmachineinstances", "/apis/kubevirt.io/v1/virtualmachineinstances", custom("kubevirt.io", "v1", "virtualmachineinstances"), (_t, o) => {
        onInventoryChange();
        enqueueFor(o, true);
      }),
      pvcs: reflect("persistentvolumeclaims", "/api/v1/persistentvolumeclaims", () => core.listPersistentVolumeClaimForAllNamespaces() as Promise<KubernetesListObject<AnyObj>>, onInventoryChange),
      dataVolumes: reflect("datavolumes", "/apis/cdi.kubevirt.io/v1beta1/datavolumes", custom("cdi.kubevirt.io", "v1beta1", "datavolumes"), (_t, o) => {
        onInventoryChange();
        enqueueFor(o, false);
      }),
      vmims: reflect(
        "virtualmachineinstancemigrations",
        "/apis/kubevirt.io/v1/virtualmachineinstancemigrations",
        custom("kubevirt.io", "v1", "virtualmachineinstancemigrations", MIGRATION_LABEL),
        (_t, o) => enqueueFor(o, false),
        { labelSelector: MIGRATION_LABEL },
      ),
    };
    const snapshot = (): Snapshot => ({
      kubevirts: [...r.kubevirts.list()],
      caConfigMaps: [...r.caConfigMaps.list()],
      storageClasses: [...r.storageClasses.list()],
      storageCapacities: [...r.storageCapacities.list()],
      nads: [...r.nads.list()],
      nodes: [...r.nodes.list()],
      namespaces: [...r.namespaces.list()],
      vms: [...r.vms.list()],
      vmis: [...r.vmis.list()],
      pvcs: [...r.pvcs.list()],
      dataVolumes: [...r.dataVolumes.list()],
    });
    cleanups.push(() => Promise.all(reflectors.map((x) => x.stop())).then(() => undefined));

    // ---- inventory
    let lastInventory: string | undefined;
    const inventoryMessage = (): Inventory | { problem: string } => {
      const built = buildInventory(snapshot(), now(), MAX_MESSAGE_BYTES.inventory);
      if (!built.ok) return { problem: built.reason };
      return { ...head("Inventory"), ...built.body };
    };
    let lastOmitted = "null";
    const publishInventory = (trigger: "connect" | "change" | "periodic") => {
      inventoryDirty = false;
      const built = buildInventory(snapshot(), now(), MAX_MESSAGE_BYTES.inventory);
      if (!built.ok) {
        if (inventoryProblem !== built.reason) log.warn({ reason: built.reason }, "no inventory to publish yet");
        inventoryProblem = built.reason;
        return;
      }
      inventoryProblem = undefined;
      const key = stableInventory(built.body);
      if (trigger === "change" && key === lastInventory) return;
      lastInventory = key;
      publish("inventory", { ...head("Inventory"), ...built.body });
      metrics.inventoryPublishes.inc({ trigger });
      const omitted = JSON.stringify(built.body.omitted ?? null);
      if (omitted !== lastOmitted && built.body.omitted) log.warn({ total: built.body.omitted.total, first: built.body.omitted.items.slice(0, 5) }, "objects left out of the inventory (ferry cannot carry them)");
      lastOmitted = omitted;
      log.debug({ trigger, vms: built.body.vms.length }, "inventory published");
    };
    let inventoryTimer: NodeJS.Timeout | undefined;
    let started = false;
    function scheduleInventory() {
      if (!started || inventoryDirty) return;
      inventoryDirty = true;
      inventoryTimer = setTimeout(() => publishInventory("change"), config.timings.inventoryDebounceSeconds * 1000);
      inventoryTimer.unref();
    }
    cleanups.push(() => clearTimeout(inventoryTimer));

    // ---- hello / heartbeat / status
    const capabilities = (): Hello["capabilities"] => {
      const inv = buildInventory(snapshot(), now(), MAX_MESSAGE_BYTES.inventory);
      if (!inv.ok) return [];
      const caps: Hello["capabilities"] = ["offline-migration"];
      if (inv.body.kubevirt.decentralizedLiveMigration) caps.unshift("decentralized-live-migration");
      if (inv.body.kubevirt.workloadUpdateMethods.includes("LiveMigrate") && inv.body.kubevirt.vmRolloutStrategy === "LiveUpdate") caps.splice(caps.length - 1, 0, "storage-live-migration");
      return caps;
    };
    const sendHello = () => {
      const active = activeKubeVirt(snapshot());
      const hello: Hello = {
        ...head("Hello"),
        agentVersion: AGENT_VERSION,
        capabilities: capabilities(),
        synchronizationAddresses: [...(active?.kv.status?.synchronizationAddresses ?? [])],
        lastTaskSetGeneration: book.generation,
      };
      if (active?.caBundle) hello.caBundle = active.caBundle;
      publish("hello", hello);
    };
    /** A PING/PONG round trip decides "connected" (status events can arrive out of order around a forced reconnect). */
    let probes = 0;
    let probeAnswered = 0;
    const probeBus = () => {
      const n = ++probes;
      // Only a newer probe's answer counts: a slow one from before a reconnect must not overwrite it.
      const answer = (up: boolean) => {
        if (n < probeAnswered) return;
        probeAnswered = n;
        setConnected(up);
      };
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("no PONG")), Math.max(1000, config.timings.heartbeatSeconds * 2000));
        timer.unref();
      });
      void Promise.race([bus.nc.flush(), timeout])
        .then(
          () => answer(true),
          () => answer(false),
        )
        .finally(() => clearTimeout(timer));
    };
    const sendHeartbeat = () => {
      probeBus();
      const failing = reflectors.filter((x) => !x.synced);
      const apiError = failing.find((x) => x.lastError)?.lastError;
      const message = failing.length ? `watches not established: ${failing.map((x) => x.name).join(", ")}${apiError ? ` (${apiError})` : ""}` : inventoryProblem;
      publish("heartbeat", {
        ...head("Heartbeat"),
        time: now().toISOString(),
        health: { kubernetesApi: apiError === undefined, watches: failing.length === 0, tasks: book.size, ...(message ? { message: clipText(message) } : {}) },
      });
      for (const x of reflectors) metrics.watchSynced.set({ watch: x.name }, x.synced ? 1 : 0);
    };
    let statusTimer: NodeJS.Timeout | undefined;
    const sendStatus = () => {
      clearTimeout(statusTimer);
      statusTimer = undefined;
      const status: Status = { ...head("Status"), observedAt: now().toISOString(), ...book.report(now()) };
      log.debug({ generation: status.taskSetGeneration, tasks: status.tasks.length, trust: status.trust.length }, "status published");
      publish("status", status);
    };
    /** Coalesces the changes of one burst (a task set fans out to many reconciles) into one Status. */
    const statusChanged = () => {
      if (statusTimer || !started) return;
      statusTimer = setTimeout(sendStatus, 20);
      statusTimer.unref();
    };
    cleanups.push(() => clearTimeout(statusTimer));

    // ---- work queue
    const queue: WorkQueue<TaskKey> = new WorkQueue<TaskKey>({
      concurrency: config.timings.reconcileConcurrency,
      baseDelayMs: config.timings.reconcileBackoffSeconds * 1000,
      maxDelayMs: config.timings.reconcileMaxBackoffSeconds * 1000,
      onError: (key, e) => log.warn({ key, err: errText(e), failures: queue.failuresOf(key) + 1 }, "reconcile failed; retrying with back-off"),
      process: async (key) => {
        if (key === TRUST_KEY) {
          try {
            const trust = await executor.reconcileTrust(book.trustRequest);
            metrics.trustReconciles.inc({ result: "ok" });
            if (book.observeTrust(trust)) statusChanged();
          } catch (e) {
            metrics.trustReconciles.inc({ result: "error" });
            throw e;
          }
          return;
        }
        const task = book.task(key);
        log.debug({ key, held: task !== undefined }, "reconcile");
        if (!task) return;
        const end = metrics.reconcileDuration.startTimer({ role: task.role });
        let status: TaskStatus;
        try {
          status = await executor.reconcile(task);
          metrics.reconciles.inc({ role: task.role, result: "ok" });
        } catch (e) {
          metrics.reconciles.inc({ role: task.role, result: "error" });
          const prev = book.report(now()).tasks.find((t) => t.migrationUid === task.migrationUid && t.role === task.role);
          if (prev && book.observe(key, { ...prev, error: { code: "ReconcileFailed", message: errText(e), fix: "see the agent log; the agent retries with back-off" }, updatedAt: now().toISOString() })) statusChanged();
          throw e;
        } finally {
          end();
        }
        if (book.observe(key, status)) statusChanged();
        // A transient API failure kept the step: look again with back-off, not at the next resync.
        if (status.error?.code === "KubernetesApiUnavailable") return "retry";
      },
    });
    cleanups.push(() => queue.stop());

    const onTaskSet = (set: TaskSet) => {
      const result = book.accept(set);
      if (!result.accepted) {
        metrics.taskSets.inc({ result: "stale" });
        log.debug({ generation: set.generation, reason: result.reason }, "ignoring stale task set");
        return;
      }
      metrics.taskSets.inc({ result: "accepted" });
      metrics.tasks.set(book.size);
      metrics.taskSetGeneration.set(book.generation);
      if (result.added.length || result.removed.length || result.changed.length) {
        log.info({ generation: set.generation, added: result.added, removed: result.removed, changed: result.changed }, "task set applied");
      }
      for (const k of result.removed) queue.remove(k);
      for (const k of book.keys()) queue.add(k);
      if (set.trust.length || result.trustChanged) queue.add(TRUST_KEY);
      if (result.removed.length || result.added.length || result.trustChanged) statusChanged();
    };

    // ---- start the watches, then talk
    await Promise.all(reflectors.map((x) => x.start()));
    started = true;
    const subs: BusSubscription<unknown>[] = [];
    subs.push(subscribeTasks(bus, config.cluster, (msg) => onTaskSet(msg.data)));
    const deadlineCheck = (deadline: string) => {
      if (Date.parse(deadline) < Date.now()) throw new BusHandlerError("DeadlineExceeded", `request deadline ${deadline} has passed`);
    };
    const served = <T>(verb: string, fn: () => Promise<T>): Promise<T> =>
      fn().then(
        (v) => {
          metrics.rpcs.inc({ verb, result: "ok" });
          return v;
        },
        (e: unknown) => {
          metrics.rpcs.inc({ verb, result: "error" });
          log.warn({ verb, err: errText(e) }, "rpc failed");
          throw e;
        },
      );
    subs.push(
      serveRpc(bus, config.cluster, "inventory", (req) =>
        served("inventory", () => {
          deadlineCheck(req.deadline);
          const inv = inventoryMessage();
          if ("problem" in inv) throw new BusHandlerError("Unavailable", inv.problem);
          return Promise.resolve(inv);
        }),
      ),
      serveRpc(bus, config.cluster, "preflight", (req) =>
        served("preflight", () => {
          deadlineCheck(req.deadline);
          return executor.preflight(req);
        }),
      ),
      serveRpc(bus, config.cluster, "describe-vm", (req) =>
        served("describe-vm", () => {
          deadlineCheck(req.deadline);
          return executor.describeVm(req);
        }),
      ),
    );
    cleanups.push(() => {
      for (const s of subs) s.unsubscribe();
    });

    const onConnect = (trigger: "connect" | "reconnect") => {
      log.info({ trigger }, "announcing to the broker");
      sendHello();
      publishInventory("connect");
      sendStatus();
    };
    onConnect("connect");
    // Reconnects: Hello again (a new broker leader continues above lastTaskSetGeneration), inventory, status.
    void (async () => {
      for await (const s of bus.nc.status()) {
        if (s.type === "disconnect") setConnected(false);
        else if (s.type === "reconnect") {
          setConnected(true);
          onConnect("reconnect");
        }
      }
    })().catch(() => undefined);

    // ---- timers
    const every = (seconds: number, fn: () => void) => {
      const t = setInterval(fn, seconds * 1000);
      t.unref();
      cleanups.push(() => clearInterval(t));
    };
    every(config.timings.heartbeatSeconds, sendHeartbeat);
    every(config.timings.statusSeconds, sendStatus);
    every(config.timings.inventorySeconds, () => publishInventory("periodic"));
    every(config.timings.resyncSeconds, () => {
      for (const k of book.keys()) queue.add(k);
      if (book.trustRequest.length) queue.add(TRUST_KEY);
    });
    sendHeartbeat();

    // ---- renewal
    let current = identity;
    let renewTimer: NodeJS.Timeout | undefined;
    let stopping = false;
    const renew = async () => {
      try {
        current = await identities.renew();
        metrics.renewals.inc({ result: "ok" });
        metrics.certificateExpiry.set(current.notAfter.getTime() / 1000);
        bus.updateCredentials({ jwt: current.natsJwt, seed: current.natsSeed, cert: current.certPem, key: current.keyPem });
        await bus.reconnect();
      } catch (e) {
        metrics.renewals.inc({ result: "error" });
        throw e;
      }
    };
    const scheduleRenewal = (failed = false) => {
      if (stopping) return;
      const due = identities.renewAt().getTime() - now().getTime();
      const ms = Math.max(0, Math.min(due, failed ? 30_000 : (opts.renewalCheckMs ?? 60_000)));
      renewTimer = setTimeout(() => {
        if (identities.renewAt().getTime() > now().getTime()) return scheduleRenewal();
        log.info({ notAfter: current.notAfter.toISOString() }, "renewing the certificate");
        renew().then(
          () => scheduleRenewal(),
          (e: unknown) => {
            log.error({ err: errText(e), notAfter: current.notAfter.toISOString() }, "certificate renewal failed; retrying");
            scheduleRenewal(true);
          },
        );
      }, ms);
      renewTimer.unref();
    };
    scheduleRenewal();
    cleanups.push(() => {
      stopping = true;
      clearTimeout(renewTimer);
    });

    const failed = bus.closed().then((err) => err ?? new Error("NATS connection closed"));
    log.info({ enrolled, http: http.port, natsUrls: busCredentials(identity, config.natsUrls).servers }, "agent started");
    return {
      cluster: config.cluster,
      httpPort: http.port,
      get identity() {
        return current;
      },
      enrolled,
      get ready() {
        return Object.values(readiness()).every((c) => c.ok);
      },
      metrics,
      bus,
      failed: failed.then((e) => (stopping ? new Promise<Error>(() => undefined) : e)),
      renew,
      stop: async () => {
        stopping = true;
        log.info("agent stopping");
        await stopAll();
        log.info("agent stopped");
      },
    };
  } catch (e) {
    await stopAll();
    throw e;
  }
}

function stableInventory(body: InventoryBody): string {
  const { observedAt: _, ...rest } = body;
  return JSON.stringify(rest);
}
