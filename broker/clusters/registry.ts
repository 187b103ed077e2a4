// The cluster registry: durable cluster records (KV) joined with the soft state each agent's
// reports build up in memory (last hello, heartbeat time, latest inventory and status). Nothing
// here needs a restart to survive: after one, the records come from KV and the soft state from the
// next reports (and the inventory requested from every enrolled cluster on election).
//
// Health is Available while heartbeats arrive within the grace period, else Unknown. Unknown is
// only reported: nothing destructive happens because a cluster is merely unreachable.
import type { Logger } from "pino";
import { requestRpc, subscribeReports, type Bus, type BusSubscription } from "../../bus/index.js";
import { AGENT_REPORTS, BUS_API_VERSION, isNewer, type AgentReport, type AgentSeq, type Heartbeat, type Hello, type Inventory, type Message, type Status } from "../../proto/bus/index.js";
import { BrokerError } from "../errors.js";
import type { BrokerMetrics, Sample } from "../metrics.js";
import { listValues, mutate, type BrokerState } from "../state/kv.js";
import { clusterKey, CLUSTER_KEY_PREFIX, ClusterRecord } from "../state/records.js";
import { cordoned, healthOf, MAX_CORDON_REASON, notFound, removed, uncordoned, type Health } from "./lifecycle.js";
import type { Revoker } from "./revocation.js";

/** What the controller answers before a cluster may be removed. */
export interface MigrationInvolvement {
  /** Unfinished migrations whose source or target is `cluster` (empty: removal may proceed). */
  activeMigrationsFor(cluster: string): Promise<{ uid: string; name: string; state: string }[]>;
}

/** Until the controller is wired in, no migration exists, so none can be involved. */
export const NO_MIGRATIONS: MigrationInvolvement = { activeMigrationsFor: () => Promise.resolve([]) };

/** In-memory state from an agent's reports; rebuilt from the next reports after a restart. */
export interface SoftState {
  hello?: Hello;
  heartbeat?: Heartbeat;
  /** Receiver's clock (ms) when the last heartbeat was accepted. */
  heartbeatAtMs?: number;
  inventory?: Inventory;
  status?: Status;
}

export interface ClusterView {
  record: ClusterRecord;
  /** Only meaningful for enrolled clusters. */
  health: Health;
  soft: SoftState;
}

export type ClusterChange =
  | { type: "report"; cluster: string; kind: AgentReport; message: Message<AgentReport> }
  | { type: "health"; cluster: string; health: Health }
  | { type: "record"; cluster: string; record: ClusterRecord | undefined };

export interface RegistryOptions {
  bus: Bus;
  state: BrokerState;
  revoker: Revoker;
  log: Logger;
  metrics: BrokerMetrics;
  heartbeatGraceMs: number;
  /** Milliseconds clock for health (default Date.now). */
  nowMs?: () => number;
}

type SeqBaseline = Partial<Record<AgentReport, AgentSeq>>;

export class ClusterRegistry {
  private readonly soft = new Map<string, SoftState>();
  private readonly baseline = new Map<string, SeqBaseline>();
  private readonly health = new Map<string, Health>();
  /** Cache of the records (KV watch) for the report path and health; RPCs read KV itself. */
  private readonly records = new Map<string, ClusterRecord>();
  private readonly listeners = new Set<(change: ClusterChange) => void>();
  private readonly subs: BusSubscription<unknown>[] = [];
  private readonly received = new Map<AgentReport, number>();
  private readonly dropped = new Map<string, number>();
  private readonly nowMs: () => number;
  private readonly abort = new AbortController();
  private ticker: NodeJS.Timeout | undefined;
  private watching: Promise<void> | undefined;
  private involvement: MigrationInvolvement = NO_MIGRATIONS;

  constructor(private readonly o: RegistryOptions) {
    this.nowMs = o.nowMs ?? Date.now;
    o.metrics.sources.reportsReceived = () => [...this.received].map(([kind, value]) => ({ labels: { kind }, value }));
    o.metrics.sources.reportsDropped = () => this.dropSamples();
    o.metrics.sources.clusters = () => this.clusterSamples();
  }

  /** Subscribe to every agent's reports and watch the cluster records. */
  async start(): Promise<void> {
    this.watching = this.watchRecords();
    for (const kind of AGENT_REPORTS) {
      this.subs.push(subscribeReports(this.o.bus, kind, (msg) => void this.ingest(kind, msg.cluster, msg.data)));
    }
    await this.o.bus.flush();
    const tick = Math.max(50, Math.min(1000, this.o.heartbeatGraceMs / 4));
    this.ticker = setInterval(() => this.checkHealth(), tick);
    this.ticker.unref();
  }

  async stop(): Promise<void> {
    this.abort.abort();
    if (this.ticker) clearInterval(this.ticker);
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
    await this.watching?.catch(() => undefined);
  }

  /** The controller's answer to "may this cluster be removed?". */
  setMigrationInvolvement(i: MigrationInvolvement): void {
    this.involvement = i;
  }

  /** Called on every accepted report, health change and record change. Returns an unsubscribe function. */
  onChange(listener: (change: ClusterChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(change: ClusterChange): void {
    for (const l of this.listeners) {
      try {
        l(change);
      } catch (e) {
        this.o.log.error({ err: (e as Error).message, change: change.type, cluster: change.cluster }, "cluster change listener failed");
      }
    }
  }

  // ------------------------------------------------------------------------------------------
  // Reports

  /**
   * Accept a report unless it is stale. Staleness is judged per cluster and per report kind on
   * (epoch, seq) (`isNewer`); a hello resets every kind's baseline to its own position (keeping a
   * newer one of the same epoch), so a restarted agent — or one whose clock stepped back — is
   * heard at once. Returns whether the report was accepted.
   */
  ingest<K extends AgentReport>(kind: K, cluster: string, message: Message<K>): boolean {
    if (this.records.get(cluster)?.state === "Removed") {
      this.drop(kind, "removed-cluster");
      this.o.log.debug({ cluster, kind }, "dropped report of a removed cluster");
      return false;
    }
    const pos: AgentSeq = { epoch: message.epoch, seq: message.seq };
    const base = this.baseline.get(cluster) ?? {};
    if (kind === "hello") {
      for (const k of AGENT_REPORTS) {
        const b = base[k];
        base[k] = b && b.epoch === pos.epoch && b.seq > pos.seq ? b : pos;
      }
    } else {
      if (!isNewer(base[kind], pos)) {
        this.drop(kind, "stale");
        this.o.log.debug({ cluster, kind, epoch: pos.epoch, seq: pos.seq, last: base[kind] }, "dropped stale report");
        return false;
      }
      base[kind] = pos;
    }
    this.baseline.set(cluster, base);
    const soft = this.soft.get(cluster) ?? {};
    switch (kind) {
      case "hello":
        soft.hello = message as Hello;
        break;
      case "heartbeat":
        soft.heartbeat = message as Heartbeat;
        soft.heartbeatAtMs = this.nowMs();
        break;
      case "inventory":
        soft.inventory = message as Inventory;
        break;
      case "status":
        soft.status = message as Status;
        break;
    }
    this.soft.set(cluster, soft);
    this.received.set(kind, (this.received.get(kind) ?? 0) + 1);
    this.emit({ type: "report", cluster, kind, message });
    if (kind === "heartbeat") this.updateHealth(cluster);
    return true;
  }

  private drop(kind: AgentReport, reason: string): void {
    const key = `${kind}\u0000${reason}`;
    this.dropped.set(key, (this.dropped.get(key) ?? 0) + 1);
  }

  private dropSamples(): Sample<"kind" | "reason">[] {
    const out: Sample<"kind" | "reason">[] = [...this.dropped].map(([key, value]) => {
      const [kind = "", reason = ""] = key.split("\u0000");
      return { labels: { kind, reason }, value };
    });
    // The bus drops malformed messages before they reach `ingest`; its counters name the reason.
    for (const sub of this.subs) {
      const kind = sub.subject.split(".").pop() ?? "";
      for (const [reason, value] of Object.entries(sub.counters.droppedBy)) if (value > 0) out.push({ labels: { kind, reason }, value });
    }
    return out;
  }

  /**
   * Ask every enrolled cluster's agent for its inventory (on becoming leader: the soft state may
   * be empty or old). Agents that do not answer are logged; their next reports fill in.
   */
  async requestInventories(opts: { timeoutMs?: number; concurrency?: number } = {}): Promise<{ answered: string[]; failed: string[] }> {
    const enrolled = (await this.listRecords()).filter((r) => r.state === "Enrolled").map((r) => r.name);
    const answered: string[] = [];
    const failed: string[] = [];
    const queue = [...enrolled];
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const worker = async () => {
      for (let cluster = queue.shift(); cluster !== undefined; cluster = queue.shift()) {
        try {
          const deadline = new Date(Date.now() + timeoutMs).toISOString();
          const reply = await requestRpc(this.o.bus, cluster, "inventory", { apiVersion: BUS_API_VERSION, kind: "InventoryRequest", cluster, deadline }, { timeoutMs });
          if (reply.kind === "RpcError") throw new Error(`${reply.code}: ${reply.message}`);
          if (reply.cluster !== cluster) throw new Error(`reply names cluster ${reply.cluster}`);
          this.ingest("inventory", cluster, reply);
          answered.push(cluster);
        } catch (e) {
          failed.push(cluster);
          this.o.log.info({ cluster, err: (e as Error).message }, "inventory request not answered; waiting for the agent's next reports");
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 16, Math.max(1, enrolled.length)) }, worker));
    return { answered, failed };
  }

  // ------------------------------------------------------------------------------------------
  // Health

  healthOf(cluster: string): Health {
    return healthOf(this.soft.get(cluster)?.heartbeatAtMs, this.nowMs(), this.o.heartbeatGraceMs);
  }

  private updateHealth(cluster: string): void {
    const record = this.records.get(cluster);
    const h = this.healthOf(cluster);
    const before = this.health.get(cluster);
    if (before === h) return;
    this.health.set(cluster, h);
    if (before === undefined && h === "Unknown") return; // not heard of since start: nothing changed
    if (record?.state === "Removed") return;
    this.o.log.info({ cluster, health: h, graceMs: this.o.heartbeatGraceMs }, h === "Available" ? "cluster available" : "cluster unknown: no heartbeat within the grace period");
    this.emit({ type: "health", cluster, health: h });
  }

  private checkHealth(): void {
    for (const cluster of new Set([...this.soft.keys(), ...this.health.keys()])) this.updateHealth(cluster);
  }

  private clusterSamples(): Sample<"state" | "cordoned">[] {
    const counts = new Map<string, number>();
    for (const r of this.records.values()) {
      const state = r.state === "Enrolled" ? this.healthOf(r.name) : r.state;
      const key = `${state}\u0000${r.cordon ? "true" : "false"}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    const out: Sample<"state" | "cordoned">[] = [];
    for (const state of ["PendingEnrollment", "Available", "Unknown", "Removed"]) {
      for (const c of ["false", "true"]) out.push({ labels: { state, cordoned: c }, value: counts.get(`${state}\u0000${c}`) ?? 0 });
    }
    return out;
  }

  // ------------------------------------------------------------------------------------------
  // Records

  private async watchRecords(): Promise<void> {
    while (!this.abort.signal.aborted) {
      try {
        // The raw KV watch (not TypedKv.watch) so that stop() can end it at once.
        const it = await this.o.state.clusters.kv.watch({ key: `${CLUSTER_KEY_PREFIX}>` });
        const onAbort = () => it.stop();
        this.abort.signal.addEventListener("abort", onAbort, { once: true });
        try {
          for await (const e of it) {
            const name = e.key.slice(CLUSTER_KEY_PREFIX.length);
            if (e.operation !== "PUT") {
              this.records.delete(name);
              this.emit({ type: "record", cluster: name, record: undefined });
              continue;
            }
            const parsed = ClusterRecord.safeParse(safeJson(e.value));
            if (!parsed.success) {
              this.o.log.error({ key: e.key, revision: e.revision, err: parsed.error.message }, "skipping invalid cluster record");
              continue;
            }
            this.records.set(name, parsed.data);
            if (parsed.data.state === "Removed") this.forget(name);
            this.emit({ type: "record", cluster: name, record: parsed.data });
          }
        } finally {
          this.abort.signal.removeEventListener("abort", onAbort);
        }
      } catch (e) {
        if (this.abort.signal.aborted) return;
        this.o.log.warn({ err: (e as Error).message }, "cluster record watch ended; restarting");
      }
      if (!this.abort.signal.aborted) await new Promise((r) => setTimeout(r, 500));
    }
  }

  private forget(cluster: string): void {
    this.soft.delete(cluster);
    this.baseline.delete(cluster);
    this.health.delete(cluster);
  }

  private async listRecords(): Promise<ClusterRecord[]> {
    const entries = await listValues(this.o.state.clusters, CLUSTER_KEY_PREFIX, (key, err) =>
      this.o.log.error({ key, err: err.message }, "skipping invalid cluster record"),
    );
    return entries.map((e) => e.value);
  }

  private view(record: ClusterRecord): ClusterView {
    // Whoever sees a health transition first (a reader or the ticker) also announces it.
    if (record.state === "Enrolled") this.updateHealth(record.name);
    return { record, health: record.state === "Enrolled" ? this.healthOf(record.name) : "Unknown", soft: this.soft.get(record.name) ?? {} };
  }

  /** Every cluster, ordered by name, from KV (read-your-writes) joined with the soft state. */
  async list(): Promise<ClusterView[]> {
    return (await this.listRecords()).map((r) => this.view(r));
  }

  async get(name: string): Promise<ClusterView> {
    const e = await this.o.state.clusters.get(clusterKey(name));
    if (!e) throw notFound(name);
    return this.view(e.value);
  }

  /** Soft state of a cluster (the controller reads inventories and statuses here). */
  softState(cluster: string): SoftState | undefined {
    return this.soft.get(cluster);
  }

  /** Stop new migrations to and from the cluster (persisted). Idempotent. */
  async cordon(name: string, reason: string): Promise<ClusterView> {
    if (reason.length > MAX_CORDON_REASON) {
      throw new BrokerError("invalid-argument", `reason is ${reason.length} characters; shorten it to at most ${MAX_CORDON_REASON}`, { field: "reason" });
    }
    const r = await mutate(this.o.state.clusters, clusterKey(name), (cur) => cordoned(cur?.value, name, reason, new Date()));
    if (r.changed) this.o.log.info({ cluster: name, reason }, "cluster cordoned");
    return this.view(r.value!);
  }

  async uncordon(name: string): Promise<ClusterView> {
    const r = await mutate(this.o.state.clusters, clusterKey(name), (cur) => uncordoned(cur?.value, name, new Date()));
    if (r.changed) this.o.log.info({ cluster: name }, "cluster uncordoned");
    return this.view(r.value!);
  }

  /**
   * Remove a cluster: refused while migrations involve it; then marked Removed (its certificates
   * can no longer renew) and its agent's NATS users revoked live. Retrying on a removed cluster
   * re-applies the revocation.
   */
  async remove(name: string): Promise<ClusterView> {
    const current = await this.o.state.clusters.get(clusterKey(name));
    if (!current) throw notFound(name);
    if (current.value.state !== "Removed") {
      const active = await this.involvement.activeMigrationsFor(name);
      if (active.length > 0) {
        throw new BrokerError(
          "failed-precondition",
          `cluster "${name}" is source or target of ${active.length} unfinished migration(s); cordon it (\`ferryctl cluster cordon ${name}\`) and wait for them to finish, or cancel them, then remove it`,
          {
            reason: "CLUSTER_IN_USE",
            violations: active.map((m) => ({ type: "MigrationInFlight", subject: m.name, description: `migration ${m.uid} is ${m.state}` })),
          },
        );
      }
    }
    const r = await mutate(this.o.state.clusters, clusterKey(name), (cur) => removed(cur?.value, name, new Date()));
    this.records.set(name, r.value!);
    this.forget(name);
    await this.o.revoker.reconcile();
    this.o.log.info({ cluster: name, natsUsers: r.value!.natsUsers.length }, "cluster removed; agent NATS users revoked");
    return this.view(r.value!);
  }
}

function safeJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return undefined;
  }
}
