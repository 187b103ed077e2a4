// Leader election on a JetStream KV lease (bucket ferry_leader, key `leader`).
//
// - Acquire: compare-and-set create of the key (only one replica can create it).
// - Renew: the leader rewrites the key every `renewMs` with compare-and-set on its last revision.
//   A lost CAS (someone else holds it now) demotes at once; if renewals keep failing (NATS
//   unreachable), the leader demotes itself `leaseMs - renewMs` after the start of its last
//   successful renewal — before any standby may take over.
// - Take over: a standby watches the key's revision on its own monotonic clock and takes over by
//   CAS on that revision once it has not changed for `leaseMs`. No wall-clock comparison between
//   replicas is involved. A replica restarting under the same identity takes its own old lease
//   back at once; graceful shutdown deletes the lease, so a standby takes over on its next check.
//
// Split brain is bounded by the lease (a leader that cannot renew stops acting before a standby
// starts), and every state write in the broker is a compare-and-set anyway.
import { randomUUID } from "node:crypto";
import { performance } from "node:perf_hooks";
import type { Logger } from "pino";
import type { TypedKv } from "../bus/index.js";
import type { BrokerMetrics } from "./metrics.js";
import { isCasConflict } from "./state/kv.js";
import { LEADER_KEY, type LeaderLease } from "./state/records.js";

export interface LeaderInfo {
  /** Identity of the replica holding the lease. */
  holder: string;
  /** Its gRPC address (advertised), for clients to go to. */
  address: string;
  /** This replica holds it. */
  self: boolean;
}

export interface LeaderTerm {
  /** KV revision at which this replica acquired the lease. */
  revision: number;
  /** Aborted when this replica stops being leader: stop the controller loop on it. */
  signal: AbortSignal;
}

export interface LeaderElectionOptions {
  kv: TypedKv<typeof LeaderLease>;
  identity: string;
  /** gRPC address to advertise to clients that reach a standby (read when the lease is written). */
  address: string | (() => string);
  leaseMs: number;
  /** Default leaseMs / 3. */
  renewMs?: number;
  log: Logger;
  metrics?: BrokerMetrics;
}

type Hook<T> = (arg: T) => void | Promise<void>;

export class LeaderElection {
  readonly instance = randomUUID();
  private readonly renewMs: number;
  private running = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private term: { revision: number; abort: AbortController; acquiredAt: string } | undefined;
  private demoteTimer: NodeJS.Timeout | undefined;
  private observed: { revision: number; atMs: number; lease: LeaderLease } | undefined;
  private noLease = false;
  private readonly elected = new Set<Hook<LeaderTerm>>();
  private readonly demoted = new Set<Hook<string>>();
  private hooks: Promise<void> = Promise.resolve();

  constructor(private readonly o: LeaderElectionOptions) {
    this.renewMs = o.renewMs ?? o.leaseMs / 3;
    if (this.renewMs * 2 > o.leaseMs) throw new Error(`leader: renewMs (${this.renewMs}) must be at most half of leaseMs (${o.leaseMs})`);
  }

  get isLeader(): boolean {
    return this.term !== undefined;
  }

  /** The current leader as this replica last saw it; undefined while nobody is known to hold the lease. */
  get leader(): LeaderInfo | undefined {
    if (this.term) return { holder: this.o.identity, address: this.address, self: true };
    if (this.noLease || !this.observed) return undefined;
    if (performance.now() - this.observed.atMs > this.o.leaseMs * 2) return undefined;
    return { holder: this.observed.lease.holder, address: this.observed.lease.address, self: false };
  }

  /** Whether this replica has checked the lease at least once (readiness). */
  get known(): boolean {
    return this.term !== undefined || this.observed !== undefined || this.noLease;
  }

  /** Run `fn` each time this replica becomes leader. Hooks run one at a time, in order. */
  onElected(fn: Hook<LeaderTerm>): () => void {
    this.elected.add(fn);
    return () => this.elected.delete(fn);
  }

  /** Run `fn` (with the reason) each time this replica stops being leader. */
  onDemoted(fn: Hook<string>): () => void {
    this.demoted.add(fn);
    return () => this.demoted.delete(fn);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /**
   * Stop campaigning. With `release` (graceful shutdown) a leader deletes its lease so a standby
   * takes over at once; without it the lease simply expires (what a crash looks like).
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    if (this.term && opts.release !== false) {
      try {
        await this.o.kv.delete(LEADER_KEY, { revision: this.currentRevision });
        this.o.log.info({ identity: this.o.identity }, "released the leader lease");
      } catch (e) {
        this.o.log.warn({ err: (e as Error).message }, "could not release the leader lease; it will expire");
      }
    }
    if (this.term) this.demote("shutting down");
    await this.hooks;
  }

  private currentRevision = 0;

  private get address(): string {
    return typeof this.o.address === "function" ? this.o.address() : this.o.address;
  }

  private lease(acquiredAt: string): LeaderLease {
    return {
      holder: this.o.identity,
      address: this.address,
      instance: this.instance,
      acquiredAt,
      renewedAt: new Date().toISOString(),
      leaseMs: Math.round(this.o.leaseMs),
    };
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        if (this.term) await this.renew();
        else await this.campaign();
      } catch (e) {
        if (this.term && isCasConflict(e)) this.demote("lost the lease to another replica");
        else this.o.log.warn({ err: (e as Error).message, leader: this.isLeader }, this.isLeader ? "lease renewal failed" : "leader election check failed");
      }
      if (!this.running) break;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.renewMs);
        this.wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  private async renew(): Promise<void> {
    const term = this.term!;
    const started = performance.now();
    const revision = await this.o.kv.update(LEADER_KEY, this.lease(term.acquiredAt), this.currentRevision);
    if (this.term !== term) return; // demoted meanwhile
    this.currentRevision = revision;
    this.armDemotion(started);
  }

  /** Demote if no renewal that started after `since` succeeds within leaseMs - renewMs. */
  private armDemotion(since: number): void {
    if (this.demoteTimer) clearTimeout(this.demoteTimer);
    const deadline = since + this.o.leaseMs - this.renewMs;
    this.demoteTimer = setTimeout(() => this.demote("could not renew the lease in time"), Math.max(0, deadline - performance.now()));
    this.demoteTimer.unref();
  }

  private async campaign(): Promise<void> {
    const entry = await this.o.kv.get(LEADER_KEY);
    const now = performance.now();
    if (!entry) {
      this.noLease = true;
      this.observed = undefined;
      const acquiredAt = new Date().toISOString();
      const revision = await this.o.kv.create(LEADER_KEY, this.lease(acquiredAt)).catch((e: unknown) => {
        if (isCasConflict(e)) return undefined; // someone else was faster
        throw e;
      });
      if (revision !== undefined) this.elect(revision, acquiredAt, now, "no leader");
      return;
    }
    this.noLease = false;
    const lease = entry.value;
    if (!this.observed || this.observed.revision !== entry.revision) {
      const first = this.observed === undefined;
      this.observed = { revision: entry.revision, atMs: now, lease };
      if (first || lease.holder !== this.observed.lease.holder) this.o.log.info({ leader: lease.holder, address: lease.address }, "following leader");
      // Our own lease from a previous life (same identity, another process): take it back now.
      if (!(lease.holder === this.o.identity && lease.instance !== this.instance)) return;
    } else {
      const waitMs = Math.max(this.o.leaseMs, lease.leaseMs);
      if (now - this.observed.atMs < waitMs) return;
    }
    const acquiredAt = new Date().toISOString();
    const revision = await this.o.kv.update(LEADER_KEY, this.lease(acquiredAt), entry.revision).catch((e: unknown) => {
      if (isCasConflict(e)) return undefined;
      throw e;
    });
    if (revision !== undefined) {
      this.elect(revision, acquiredAt, now, lease.holder === this.o.identity ? "took back own lease after restart" : `lease of ${lease.holder} expired`);
    }
  }

  private elect(revision: number, acquiredAt: string, startedMs: number, why: string): void {
    this.currentRevision = revision;
    this.observed = undefined;
    this.noLease = false;
    const abort = new AbortController();
    this.term = { revision, abort, acquiredAt };
    this.armDemotion(startedMs);
    this.o.metrics?.leader.set(1);
    this.o.metrics?.leaderTransitions.inc({ transition: "elected" });
    this.o.log.info({ identity: this.o.identity, revision, why }, "elected leader");
    const term: LeaderTerm = { revision, signal: abort.signal };
    this.runHooks([...this.elected], term, "onElected");
  }

  private demote(reason: string): void {
    const term = this.term;
    if (!term) return;
    this.term = undefined;
    if (this.demoteTimer) clearTimeout(this.demoteTimer);
    this.demoteTimer = undefined;
    term.abort.abort(new Error(reason));
    this.o.metrics?.leader.set(0);
    this.o.metrics?.leaderTransitions.inc({ transition: "demoted" });
    this.o.log.warn({ identity: this.o.identity, reason }, "no longer leader");
    this.runHooks([...this.demoted], reason, "onDemoted");
    this.wake?.();
  }

  private runHooks<T>(hooks: Hook<T>[], arg: T, what: string): void {
    this.hooks = this.hooks.then(async () => {
      for (const h of hooks) {
        try {
          await h(arg);
        } catch (e) {
          this.o.log.error({ err: (e as Error).message, hook: what }, "leader hook failed");
        }
      }
    });
  }
}
