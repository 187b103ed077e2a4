// A per-key work queue in the style of client-go's rate-limited workqueue, on simulated time:
// a key is never processed twice at once, a key added while it is processed runs again afterwards,
// `addAfter` delays (keeping the earliest deadline), and a failing key is retried with
// per-item exponential backoff (client-go's DefaultControllerRateLimiter: 5ms doubling to 1000s).
import type { SimClock } from "../clock.js";

export type Reconcile = (key: string) => void | Promise<void>;

export interface QueueOptions {
  /** First retry delay after an error, simulated ms (client-go: 5ms). */
  baseDelayMs?: number;
  /** Cap of the retry delay, simulated ms (client-go: 1000s). */
  maxDelayMs?: number;
  /** Called with errors a reconcile threw (tests and debugging). */
  onError?: (key: string, err: unknown) => void;
}

export class WorkQueue {
  private readonly pending = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly dirty = new Set<string>();
  private readonly timers = new Map<string, { at: number; t: NodeJS.Timeout }>();
  private readonly failures = new Map<string, number>();
  private scheduled = false;
  private stopped = false;
  private readonly waiters = new Map<string, { resolve: () => void; reject: (e: unknown) => void }[]>();

  constructor(
    readonly name: string,
    private readonly clock: SimClock,
    private readonly reconcile: Reconcile,
    private readonly opts: QueueOptions = {},
  ) {}

  add(key: string): void {
    if (this.stopped) return;
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    this.pending.add(key);
    this.schedule();
  }

  /** Adds `key` after `simMs` simulated milliseconds (an earlier pending deadline wins). */
  addAfter(key: string, simMs: number): void {
    if (this.stopped) return;
    if (!(simMs > 0)) {
      this.add(key);
      return;
    }
    const realMs = this.clock.realMs(simMs);
    const at = Date.now() + realMs;
    const cur = this.timers.get(key);
    if (cur && cur.at <= at) return;
    if (cur) clearTimeout(cur.t);
    const t = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, Math.max(0, realMs));
    t.unref?.();
    this.timers.set(key, { at, t });
  }

  /** Re-adds `key` with exponential backoff, as after a failed reconcile. */
  addRateLimited(key: string): void {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const base = this.opts.baseDelayMs ?? 5;
    const max = this.opts.maxDelayMs ?? 1_000_000;
    this.addAfter(key, Math.min(max, base * 2 ** n));
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  /** Adds `key` and resolves once a reconcile of it that started after this call has finished. */
  flush(key: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(key, list);
      this.add(key);
    });
  }

  /** Number of failed attempts since the last success (for tests). */
  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  get length(): number {
    return this.pending.size + this.processing.size;
  }

  stop(): void {
    this.stopped = true;
    for (const list of this.waiters.values()) for (const w of list) w.reject(new Error(`work queue ${this.name} stopped`));
    this.waiters.clear();
    for (const { t } of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    this.pending.clear();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    if (this.stopped) return;
    const keys = [...this.pending];
    this.pending.clear();
    for (const k of keys) void this.process(k);
  }

  private async process(key: string): Promise<void> {
    this.processing.add(key);
    const waiters = this.waiters.get(key);
    this.waiters.delete(key);
    let failed = false;
    let error: unknown;
    try {
      await this.reconcile(key);
    } catch (e) {
      failed = true;
      error = e;
      this.opts.onError?.(key, e);
    } finally {
      this.processing.delete(key);
    }
    for (const w of waiters ?? []) {
      if (failed) w.reject(error);
      else w.resolve();
    }
    if (this.stopped) return;
    if (failed) this.addRateLimited(key);
    else this.forget(key);
    if (this.dirty.delete(key)) this.add(key);
  }
}

/** Thrown by a reconcile that wants a plain retry with backoff without it being logged as a bug. */
export class RequeueError extends Error {}
