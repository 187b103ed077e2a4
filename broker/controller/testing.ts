// A scripted, bus-level double of the OTHER side of ferry's own protocol (proto/bus): an agent that
// publishes Hello / Heartbeat / Inventory / Status, answers describe-vm / preflight / inventory,
// and reacts to task sets the way a cluster running KubeVirt would (a receiver gets ready, a send
// completes on the target, finalize halts the source, abort cleans up). It exists to test the
// controller before (and independently of) the real agents in cluster-agent/; it is not a fake of
// any client library — it talks to a real nats-server with an enrolled agent's credentials.
//
//   const world = new ScriptedWorld();
//   const east = await world.agent({ cluster: "east", bus: (await env.enrollAgent(addr, "east")).bus, vms: [vm("db", "pg-0")] });
//   const west = await world.agent({ cluster: "west", bus: …, vms: [] });
//   world.script("db/pg-0", { fail: 1 });       // the first attempt fails on the target
//   ...
//   await world.stop();
import { pino } from "pino";
import { connectBus, publishReport, serveRpc, subscribeTasks, type Bus, type BusCredentials, type BusSubscription } from "../../bus/index.js";
import { createCa, validateCaBundle } from "../../pki/index.js";
import {
  BUS_API_VERSION,
  type AgentError,
  type Inventory,
  type InventoryVm,
  type Issue,
  type PreflightRequest,
  type Status,
  type Task,
  type TaskSet,
  type TaskStatus,
  type TaskStep,
  type TrustStatus,
  type VmDescription,
} from "../../proto/bus/index.js";

const GiB = 1024 ** 3;

/** A running VM for an inventory: 2 GiB memory, one 10 GiB DataVolume on storage class "standard". */
export function testVm(namespace: string, name: string, over: Partial<InventoryVm> = {}): InventoryVm {
  return {
    namespace,
    name,
    uid: `uid-${namespace}-${name}`,
    runStrategy: "Always",
    printableStatus: "Running",
    vmiPhase: "Running",
    node: "node-a",
    memoryBytes: 2 * GiB,
    cpu: 1,
    volumes: [{ name: "root", kind: "dataVolume", claimName: `${name}-root`, sizeBytes: 10 * GiB, storageClass: "standard" }],
    interfaces: [{ name: "default", network: "pod" }],
    migrationBlockers: [],
    ...over,
  };
}

/** What the scripted KubeVirt does with one VM ("namespace/name" of the source). */
export interface VmScript {
  /** The first `fail` attempts fail on the target after the send started. */
  fail?: number;
  /** The first `stall` attempts never progress after the send started (until aborted). */
  stall?: number;
  /** Sends stay in Migrating (VMIM Running) until `release()`. */
  hold?: boolean;
  /** Issues the preflight reports (on either side). */
  preflightIssues?: Issue[];
  /** How long a send takes (default: the world's migrationMs). */
  durationMs?: number;
}

export interface AgentOptions {
  cluster: string;
  bus: BusCredentials;
  vms: InventoryVm[];
  /** kubevirt-ca bundle; default: a fresh CA per cluster. */
  caPem?: string;
  /** Capabilities in Hello; default all three. */
  capabilities?: ("decentralized-live-migration" | "storage-live-migration" | "offline-migration")[];
  /** Confirm imported peer CAs (TrustStatus.present); default true. */
  confirmTrust?: boolean;
  /** Heartbeat and status period; default 250 ms. */
  periodMs?: number;
  /** Inventory.nodes allocatable memory, default 64 GiB per node (2 nodes). */
  nodeMemoryBytes?: number;
  /** Free bytes per storage class ("standard", "fast") as CSIStorageCapacity would report; default none (unknown). */
  storageCapacity?: Record<string, number>;
}

interface Held {
  task: Task;
  status: TaskStatus;
}

const key = (uid: string, attempt: number, role: string) => `${uid}/${attempt}/${role}`;

export class ScriptedAgent {
  readonly cluster: string;
  /** Every task set accepted, in order. */
  readonly taskSets: TaskSet[] = [];
  /** Every (migration, attempt, role, action) the agent started, in order (for duplicate checks). */
  readonly actions: string[] = [];
  /** Task sets ignored because their generation was not newer. */
  ignored = 0;
  lastGeneration = 0;
  vms: InventoryVm[];
  /** Reported free bytes per storage class; change it, then publishInventory(). */
  storageCapacity: Record<string, number>;
  readonly caPem: string;
  private readonly tasks = new Map<string, Held>();
  private readonly trust = new Map<string, TrustStatus>();
  private readonly subs: BusSubscription<unknown>[] = [];
  private timer: NodeJS.Timeout | undefined;
  private epoch = Date.now();
  private seq = 0;
  private stopped = false;
  /** Partitioned from the broker: no reports out, task sets lost (see pause/resume). */
  private paused = false;

  constructor(
    private readonly world: ScriptedWorld,
    private readonly bus: Bus,
    private readonly o: AgentOptions & { caPem: string },
  ) {
    this.cluster = o.cluster;
    this.vms = [...o.vms];
    this.storageCapacity = { ...o.storageCapacity };
    this.caPem = o.caPem;
  }

  private head<K extends string>(kind: K) {
    return { apiVersion: BUS_API_VERSION as typeof BUS_API_VERSION, kind, cluster: this.cluster, epoch: this.epoch, seq: ++this.seq };
  }

  get syncAddress(): string {
    return `sync.${this.cluster}.example:9185`;
  }

  inventory(): Inventory {
    const nodeMemory = this.o.nodeMemoryBytes ?? 64 * GiB;
    return {
      ...this.head("Inventory"),
      observedAt: new Date().toISOString(),
      kubevirt: {
        version: "v1.8.2",
        featureGates: { enabled: ["DecentralizedLiveMigration"], disabled: [] },
        decentralizedLiveMigration: true,
        synchronizationAddresses: [this.syncAddress],
        caBundle: this.caPem,
        migrations: { parallelMigrationsPerCluster: 5, parallelOutboundMigrationsPerNode: 2, bandwidthPerMigration: 0, progressTimeout: 150, completionTimeoutPerGiB: 150 },
        workloadUpdateMethods: ["LiveMigrate"],
        vmRolloutStrategy: "LiveUpdate",
      },
      storageClasses: (
        [
          { name: "standard", provisioner: "csi.example", volumeBindingMode: "WaitForFirstConsumer", isDefault: true },
          { name: "fast", provisioner: "nvme.csi.example", volumeBindingMode: "WaitForFirstConsumer", isDefault: false },
        ] satisfies Inventory["storageClasses"]
      ).map((c) => (this.storageCapacity[c.name] === undefined ? c : { ...c, capacityBytes: this.storageCapacity[c.name]! })),
      networks: [],
      nodes: [
        { name: "node-a", architecture: "amd64", schedulable: true, allocatableMemoryBytes: nodeMemory },
        { name: "node-b", architecture: "amd64", schedulable: true, allocatableMemoryBytes: nodeMemory },
      ],
      namespaces: [...new Set(["default", ...this.vms.map((v) => v.namespace)])],
      vms: this.vms,
    };
  }

  async start(): Promise<void> {
    this.subs.push(subscribeTasks(this.bus, this.cluster, (m) => this.onTaskSet(m.data)));
    this.subs.push(serveRpc(this.bus, this.cluster, "inventory", () => this.inventory()));
    this.subs.push(serveRpc(this.bus, this.cluster, "describe-vm", (req) => this.describe(req.vm.namespace, req.vm.name)));
    this.subs.push(serveRpc(this.bus, this.cluster, "preflight", (req) => this.preflight(req)));
    await this.bus.flush();
    this.hello();
    this.publishInventory();
    this.heartbeat();
    this.publishStatus();
    this.timer = setInterval(() => {
      this.heartbeat();
      this.publishStatus();
    }, this.o.periodMs ?? 250);
  }

  hello(): void {
    publishReport(this.bus, this.cluster, "hello", {
      ...this.head("Hello"),
      agentVersion: "0.0.0-scripted",
      capabilities: this.o.capabilities ?? ["decentralized-live-migration", "storage-live-migration", "offline-migration"],
      caBundle: this.caPem,
      synchronizationAddresses: [this.syncAddress],
      lastTaskSetGeneration: this.lastGeneration,
    });
  }

  heartbeat(): void {
    if (this.stopped || this.paused) return;
    publishReport(this.bus, this.cluster, "heartbeat", { ...this.head("Heartbeat"), time: new Date().toISOString(), health: { kubernetesApi: true, watches: true, tasks: this.tasks.size } });
  }

  publishInventory(): void {
    if (!this.stopped && !this.paused) publishReport(this.bus, this.cluster, "inventory", this.inventory());
  }

  status(): Status {
    return {
      ...this.head("Status"),
      taskSetGeneration: this.lastGeneration,
      observedAt: new Date().toISOString(),
      trust: [...this.trust.values()],
      tasks: [...this.tasks.values()].map((h) => h.status),
    };
  }

  publishStatus(): void {
    if (!this.stopped && !this.paused) publishReport(this.bus, this.cluster, "status", this.status());
  }

  private describe(namespace: string, name: string): VmDescription | { apiVersion: typeof BUS_API_VERSION; kind: "RpcError"; code: "NotFound"; message: string } {
    const vm = this.vms.find((v) => v.namespace === namespace && v.name === name);
    if (!vm) return { apiVersion: BUS_API_VERSION, kind: "RpcError", code: "NotFound", message: `VirtualMachine ${namespace}/${name} not found on ${this.cluster}` };
    const volumes = vm.volumes.flatMap((v) => (v.claimName && v.sizeBytes !== undefined ? [{ name: v.name, claimName: v.claimName, sizeBytes: v.sizeBytes, ...(v.storageClass ? { storageClass: v.storageClass } : {}) }] : []));
    return {
      apiVersion: BUS_API_VERSION,
      kind: "VmDescription",
      vm: { apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", metadata: { name, namespace, uid: vm.uid }, spec: { runStrategy: vm.runStrategy } },
      ...(vm.vmiPhase ? { vmi: { apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", metadata: { name, namespace }, status: { phase: vm.vmiPhase, nodeName: vm.node } } } : {}),
      dependencies: [],
      sourceFacts: { architecture: "amd64", memoryBytes: vm.memoryBytes, volumes, dependencies: [], macAddresses: [] },
    };
  }

  private preflight(req: PreflightRequest) {
    const script = this.world.scriptFor(`${req.source.namespace}/${req.source.name}`);
    const issues = (script?.preflightIssues ?? []).filter(() => true);
    return { apiVersion: BUS_API_VERSION as typeof BUS_API_VERSION, kind: "PreflightResult" as const, ok: !issues.some((i) => i.severity === "error"), issues };
  }

  // --- task sets --------------------------------------------------------------------------

  private onTaskSet(set: TaskSet): void {
    if (this.stopped || this.paused) return;
    if (set.generation <= this.lastGeneration) {
      this.ignored++;
      return;
    }
    this.lastGeneration = set.generation;
    this.taskSets.push(set);
    for (const t of set.trust) {
      const fingerprints = validateCaBundle(t.caBundle).valid.map((c) => c.fingerprint256);
      this.trust.set(t.peer, { peer: t.peer, fingerprints, present: this.o.confirmTrust ?? true, lastPushAt: new Date().toISOString() });
    }
    for (const task of set.tasks) this.apply(task);
    this.publishStatus();
  }

  private set(task: Task, step: TaskStep, extra: Partial<TaskStatus> = {}): TaskStatus {
    const k = key(task.migrationUid, task.attempt, task.role);
    const prev = this.tasks.get(k)?.status;
    const status: TaskStatus = {
      ...(prev ?? {}),
      migrationUid: task.migrationUid,
      attempt: task.attempt,
      role: task.role,
      step,
      ...extra,
      updatedAt: new Date().toISOString(),
    };
    this.tasks.set(k, { task, status });
    return status;
  }

  private held(task: Pick<Task, "migrationUid" | "attempt" | "role">): TaskStatus | undefined {
    return this.tasks.get(key(task.migrationUid, task.attempt, task.role))?.status;
  }

  private apply(task: Task): void {
    const current = this.held(task);
    const tag = `${task.migrationUid}/${task.attempt}/${task.role}/${task.action}`;
    if (!this.actions.includes(tag)) this.actions.push(tag);
    const vmKey = `${task.source.namespace}/${task.source.name}`;
    if (task.action === "abort" || task.action === "cleanup") {
      if (current?.step === "Aborted") return;
      // A target whose receive VMIM succeeded is never aborted: the VM lives here now.
      if (task.role === "target" && current?.step === "Succeeded") return;
      if (task.role === "target") this.vms = this.vms.filter((v) => !(v.namespace === task.target.namespace && v.name === task.target.name));
      this.set(task, "Aborted", { vm: { exists: task.role !== "target" } });
      return;
    }
    switch (task.role) {
      case "target":
        if (task.action === "prepare" && !current) {
          this.set(task, "ReceiverReady", {
            syncAddress: this.syncAddress,
            vmim: { name: `ferry-${task.migrationId}-receive`, phase: "WaitingForSync", phaseTransitions: [], conditions: [] },
            vm: { exists: true, runStrategy: "WaitAsReceiver", vmiPhase: "WaitingForSync" },
          });
        }
        return;
      case "source":
        if (task.action === "send" && (!current || current.step === "Pending")) {
          this.set(task, "Migrating", { vmim: { name: `ferry-${task.migrationId}-send`, phase: "Running", phaseTransitions: [], conditions: [] }, progress: { processedBytes: 0, totalBytes: 2 * GiB } });
          this.world.sendStarted(vmKey, task);
        } else if (task.action === "finalize" && current?.step !== "Finalized") {
          this.set(task, "Finalized");
          this.vms = this.vms.map((v) => (v.namespace === task.source.namespace && v.name === task.source.name ? { ...v, runStrategy: "Halted", printableStatus: "Stopped", vmiPhase: undefined, node: undefined } : v));
          this.publishInventory();
        }
        return;
      case "storage":
      case "offline":
        if (task.action === "migrate" && !current) {
          this.set(task, "Migrating");
          this.world.later(() => {
            this.set(task, "Succeeded", { progress: { processedBytes: 10 * GiB, totalBytes: 10 * GiB } });
            this.publishStatus();
          });
        } else if (task.action === "finalize" && current?.step !== "Finalized") {
          this.set(task, "Finalized");
        }
        return;
    }
  }

  /** KubeVirt finished the receive: the VM runs here. */
  completeTarget(task: Task): void {
    const t = { migrationUid: task.migrationUid, attempt: task.attempt, role: "target" as const };
    const held = this.tasks.get(key(t.migrationUid, t.attempt, t.role));
    if (!held || held.status.step === "Aborted") return;
    this.set(held.task, "Succeeded", {
      vmim: { name: `ferry-${task.migrationId}-receive`, phase: "Succeeded", phaseTransitions: [], conditions: [], migrationState: { completed: true, failed: false } },
      vm: { exists: true, runStrategy: "Always", vmiPhase: "Running", node: "node-a" },
    });
    const src = this.world.sourceVm(task);
    if (src && !this.vms.some((v) => v.namespace === task.target.namespace && v.name === task.target.name)) this.vms.push({ ...src, namespace: task.target.namespace, name: task.target.name });
    this.publishStatus();
    this.publishInventory();
  }

  /** The source side of a finished (or failed) send. */
  finishSource(task: Task, outcome: "Succeeded" | "Failed", error?: AgentError): void {
    const held = this.held(task);
    if (!held || held.step === "Aborted") return;
    this.set(task, outcome, {
      vmim: { name: `ferry-${task.migrationId}-send`, phase: outcome, phaseTransitions: [], conditions: [], migrationState: { completed: outcome === "Succeeded", failed: outcome === "Failed" } },
      progress: { processedBytes: outcome === "Succeeded" ? 2 * GiB : GiB, totalBytes: 2 * GiB },
      ...(error ? { error } : {}),
    });
    this.publishStatus();
  }

  failTarget(task: Task, error: AgentError): void {
    const held = this.tasks.get(key(task.migrationUid, task.attempt, "target"));
    if (!held || held.status.step === "Aborted") return;
    this.set(held.task, "Failed", { error, vmim: { name: `ferry-${task.migrationId}-receive`, phase: "Failed", phaseTransitions: [], conditions: [], migrationState: { completed: false, failed: true, failureReason: error.message } } });
    this.publishStatus();
  }

  /** A network partition: no heartbeats or reports reach the broker and its task sets are lost; KubeVirt keeps going. */
  pause(): void {
    this.paused = true;
  }

  /** The partition heals: the agent reconnects and says hello (as on every NATS reconnect), then reports. */
  resume(): void {
    this.paused = false;
    this.hello();
    this.heartbeat();
    this.publishInventory();
    this.publishStatus();
  }

  /** Stop reporting and answering (a crashed agent); the bus connection is closed. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const s of this.subs) s.unsubscribe();
    await this.bus.close().catch(() => undefined);
  }
}

/** The scripted clusters and the "KubeVirt" between them (a send completes on the target). */
export class ScriptedWorld {
  readonly agents = new Map<string, ScriptedAgent>();
  private readonly scripts = new Map<string, VmScript & { attempts: number }>();
  private readonly held: (() => void)[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly cas = new Map<string, Promise<string>>();
  /** Sends in progress per cluster (source and target both count, as KubeVirt counts VMIMs) and per source node. */
  readonly active = new Map<string, number>();
  /** The most sends ever in progress at once, per cluster and per "cluster/node". */
  readonly maxActive = new Map<string, number>();

  constructor(private readonly opts: { migrationMs?: number } = {}) {}

  script(vm: string, s: VmScript): void {
    this.scripts.set(vm, { ...s, attempts: 0 });
  }

  scriptFor(vm: string): VmScript | undefined {
    return this.scripts.get(vm);
  }

  /** A kubevirt-ca bundle for `cluster` (a real CA certificate; cached per world). */
  caFor(cluster: string): Promise<string> {
    let p = this.cas.get(cluster);
    if (!p) this.cas.set(cluster, (p = createCa({ commonName: `kubevirt-ca ${cluster}`, keyBits: 2048 }).then((c) => c.certPem)));
    return p;
  }

  async agent(o: AgentOptions): Promise<ScriptedAgent> {
    const bus = await connectBus({ ...o.bus, logger: pino({ level: "silent" }) });
    const a = new ScriptedAgent(this, bus, { ...o, caPem: o.caPem ?? (await this.caFor(o.cluster)) });
    this.agents.set(o.cluster, a);
    await a.start();
    return a;
  }

  later(fn: () => void, ms = this.opts.migrationMs ?? 50): void {
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  /** Let every held send complete, and stop holding new ones. */
  release(): void {
    for (const s of this.scripts.values()) s.hold = false;
    for (const fn of this.held.splice(0)) fn();
  }

  sourceVm(task: Task): InventoryVm | undefined {
    return this.agents.get(task.source.cluster)?.vms.find((v) => v.namespace === task.source.namespace && v.name === task.source.name);
  }

  sendStarted(vm: string, task: Task): void {
    const script = this.scripts.get(vm);
    const attempt = script ? ++script.attempts : 1;
    const source = this.agents.get(task.source.cluster);
    const target = this.agents.get(task.target.cluster);
    if (!source || !target) return;
    if (script?.stall !== undefined && attempt <= script.stall) return; // never progresses
    const node = this.sourceVm(task)?.node ?? "?";
    const slots = [task.source.cluster, task.target.cluster, `${task.source.cluster}/${node}`];
    for (const k of slots) {
      this.active.set(k, (this.active.get(k) ?? 0) + 1);
      this.maxActive.set(k, Math.max(this.maxActive.get(k) ?? 0, this.active.get(k)!));
    }
    const finish = () => {
      for (const k of slots) this.active.set(k, this.active.get(k)! - 1);
      if (script?.fail !== undefined && attempt <= script.fail) {
        const error = { code: "MigrationFailed", message: `scripted failure of attempt ${task.attempt}: the target's virt-handler reported an error`, fix: "retry" };
        target.failTarget(task, error);
        source.finishSource(task, "Failed", error);
        return;
      }
      target.completeTarget(task);
      source.finishSource(task, "Succeeded");
    };
    const ms = script?.durationMs ?? this.opts.migrationMs ?? 50;
    if (script?.hold) this.held.push(() => this.later(finish, ms));
    else this.later(finish, ms);
  }

  async stop(): Promise<void> {
    for (const t of this.timers) clearTimeout(t);
    await Promise.all([...this.agents.values()].map((a) => a.stop()));
  }
}
