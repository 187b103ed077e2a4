// A work queue in the manner of client-go's / controller-runtime's: each key is queued at most once;
// a key added while it is being processed is processed again right after (never twice at once);
// failures are retried with per-key exponential back-off; `forget` resets the back-off.
export interface WorkQueueOptions<K> {
  /** Processes one key. Throwing (or returning "retry") re-queues it with back-off. */
  process: (key: K) => Promise<void | "retry">;
  concurrency: number;
  baseDelayMs: number;
  maxDelayMs: number;
  onError?: (key: K, err: unknown) => void;
}

export class WorkQueue<K> {
  private readonly queue: K[] = [];
  private readonly queued = new Set<K>();
  private readonly processing = new Set<K>();
  /** Re-added while processing: run again when done. */
  private readonly dirty = new Set<K>();
  private readonly failures = new Map<K, number>();
  private readonly delayed = new Map<K, NodeJS.Timeout>();
  private active = 0;
  private stopped = false;
  private idleWaiters: (() => void)[] = [];

  constructor(private readonly o: WorkQueueOptions<K>) {}

  /** Queue `key` now (deduplicated). A pending delayed retry of it is superseded. */
  add(key: K): void {
    if (this.stopped) return;
    const t = this.delayed.get(key);
    if (t) {
      clearTimeout(t);
      this.delayed.delete(key);
    }
    if (this.processing.has(key)) {
      this.dirty.add(key);
      return;
    }
    if (this.queued.has(key)) return;
    this.queued.add(key);
    this.queue.push(key);
    this.pump();
  }

  /** Queue `key` after `ms` (unless it is added earlier). */
  addAfter(key: K, ms: number): void {
    if (this.stopped || this.queued.has(key) || this.delayed.has(key)) return;
    const t = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.delayed.set(key, t);
  }

  /** Queue after this key's back-off (base·2^failures, capped) and count a failure. */
  addRateLimited(key: K): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const ms = Math.min(this.o.maxDelayMs, this.o.baseDelayMs * 2 ** Math.min(n, 30));
    this.addAfter(key, ms);
    return ms;
  }

  /** The key succeeded: its back-off starts over. */
  forget(key: K): void {
    this.failures.delete(key);
  }

  /** Drop a key entirely (no longer wanted): pending and delayed runs are cancelled. */
  remove(key: K): void {
    const t = this.delayed.get(key);
    if (t) clearTimeout(t);
    this.delayed.delete(key);
    this.failures.delete(key);
    this.dirty.delete(key);
    if (this.queued.delete(key)) this.queue.splice(this.queue.indexOf(key), 1);
  }

  get length(): number {
    return this.queue.length;
  }

  failuresOf(key: K): number {
    return this.failures.get(key) ?? 0;
  }

  /** Stop taking work; resolves when running items finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.delayed.values()) clearTimeout(t);
    this.delayed.clear();
    this.queue.length = 0;
    this.queued.clear();
    this.dirty.clear();
    if (this.active > 0) await new Promise<void>((r) => this.idleWaiters.push(r));
  }

  private pump(): void {
    while (!this.stopped && this.active < this.o.concurrency && this.queue.length > 0) {
      const key = this.queue.shift()!;
      this.queued.delete(key);
      this.processing.add(key);
      this.active++;
      void this.run(key);
    }
  }

  private async run(key: K): Promise<void> {
    let retry: boolean;
    try {
      retry = (await this.o.process(key)) === "retry";
    } catch (e) {
      retry = true;
      this.o.onError?.(key, e);
    }
    this.processing.delete(key);
    this.active--;
    if (!this.stopped) {
      if (this.dirty.delete(key)) this.add(key);
      else if (retry) this.addRateLimited(key);
      else this.forget(key);
    }
    if (this.active === 0 && this.stopped) for (const w of this.idleWaiters.splice(0)) w();
    this.pump();
  }
}
