// The memory/disk copy of one live migration (what QEMU pre-copy does under libvirt's job), on
// simulated time. Disks (block migration) are mirrored first, then memory is copied while the guest
// keeps dirtying it; once what is left fits in maxDowntime at the current bandwidth the guest is
// paused and the rest is sent (stop-and-copy). Every chunk is really written to a DataLink — for
// decentralized migrations a TLS connection to the peer cluster — and counts only once the peer
// acknowledged it, so a stalled or broken connection really stops progress.
//
// Timeouts follow virt-launcher's legacy convergence monitor (live-migration-source.go):
// progress = "data remaining fell below its lowest value so far"; no progress for progressTimeout
// seconds, or a run longer than completionTimeoutPerGiB × data size in GB, aborts the migration
// (failureReason "Live migration has been aborted", abortStatus Succeeded).
import type { SimClock } from "../clock.js";

export interface DataLink {
  /** Sends `simBytes` of migration data (with `realBytes` of real payload); resolves on the peer's ack. */
  send(simBytes: number, realBytes: number, kind: "disk" | "memory"): Promise<void>;
  /** Tells the peer the copy finished (resolves on ack) or failed. */
  finish(ok: boolean, reason?: string): Promise<void>;
  close(): void;
}

export interface TransferParams {
  memoryBytes: number;
  diskBytes: number;
  /** Bytes per simulated second. */
  bandwidth: number;
  /** Guest dirty rate in bytes per simulated second, or Infinity ("no-converge"). */
  dirtyRate: () => number;
  progressTimeoutS: number;
  completionTimeoutPerGiB: number;
  maxDowntimeMs: number;
  simBytesPerRealByte: number;
}

export type TransferResult = { ok: true } | { ok: false; reason: string; cause: "progressTimeout" | "completionTimeout" | "aborted" | "error" };

export interface TransferStats {
  state: "running" | "completed" | "failed";
  dataTotalBytes: number;
  dataProcessedBytes: number;
  dataRemainingBytes: number;
  memoryRemainingBytes: number;
  diskRemainingBytes: number;
  memoryDirtyRateBytes: number;
  memoryTransferRateBytes: number;
  iteration: number;
  mode: "PreCopy" | "Paused";
  startedAt: number;
  cause?: string;
}

const WINDOW = 2;

export class Transfer {
  private memRemaining: number;
  private diskRemaining: number;
  private processed = 0;
  private inflight = 0;
  private sending = 0;
  private lastTick: number;
  private lastProgress: number;
  private watermark = Infinity;
  private readonly startSim: number;
  private timer?: NodeJS.Timeout;
  private paused = false;
  private state: TransferStats["state"] = "running";
  private cause?: string;
  private rateWindow: { at: number; bytes: number }[] = [];
  private memPasses = 0;
  private memSentThisPass = 0;
  private resolveDone!: (r: TransferResult) => void;
  readonly done: Promise<TransferResult>;
  private simNow = 0;

  constructor(
    private readonly clock: SimClock,
    private readonly link: DataLink,
    private readonly p: TransferParams,
  ) {
    this.memRemaining = p.memoryBytes;
    this.diskRemaining = p.diskBytes;
    this.lastTick = Date.now();
    this.startSim = 0;
    this.lastProgress = 0;
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Data size in GB as getVMIMigrationDataSize computes it (ScaledValue(Giga), rounded up). */
  get acceptableCompletionS(): number {
    return this.p.completionTimeoutPerGiB * Math.ceil((this.p.memoryBytes + this.p.diskBytes) / 1e9);
  }

  start(): void {
    this.schedule();
  }

  abort(reason = "aborted"): void {
    if (this.state !== "running") return;
    this.finish({ ok: false, reason: "Live migration has been aborted", cause: reason === "aborted" ? "aborted" : "error" });
  }

  /** Fails the copy with a libvirt-style error (connection loss, source domain gone). */
  fail(reason: string): void {
    if (this.state !== "running") return;
    this.finish({ ok: false, reason, cause: "error" });
  }

  stats(): TransferStats {
    const now = Date.now();
    this.rateWindow = this.rateWindow.filter((r) => now - r.at < 1000);
    const bytes = this.rateWindow.reduce((s, r) => s + r.bytes, 0);
    const windowSim = this.clock.simMs(Math.min(1000, now - (this.rateWindow[0]?.at ?? now))) / 1000;
    return {
      state: this.state,
      dataTotalBytes: this.processed + this.memRemaining + this.diskRemaining,
      dataProcessedBytes: this.processed,
      dataRemainingBytes: this.memRemaining + this.diskRemaining,
      memoryRemainingBytes: this.memRemaining,
      diskRemainingBytes: this.diskRemaining,
      memoryDirtyRateBytes: this.paused ? 0 : Math.min(this.p.dirtyRate(), Number.MAX_SAFE_INTEGER),
      memoryTransferRateBytes: windowSim > 0 ? bytes / windowSim : 0,
      iteration: this.memPasses + 1,
      mode: this.paused ? "Paused" : "PreCopy",
      startedAt: this.startSim,
      cause: this.cause,
    };
  }

  private tickRealMs(): number {
    return Math.min(100, Math.max(5, this.clock.realMs(1000)));
  }

  private schedule(): void {
    if (this.state !== "running") return;
    this.timer = setTimeout(() => this.tick(), this.tickRealMs());
  }

  private tick(): void {
    if (this.state !== "running") return;
    const nowReal = Date.now();
    const dtS = this.clock.simMs(nowReal - this.lastTick) / 1000;
    this.lastTick = nowReal;
    this.simNow += dtS;

    // The guest dirties memory while it runs (not yet-unsent memory beyond its size).
    if (!this.paused && this.diskRemaining === 0) {
      const rate = this.p.dirtyRate();
      const dirtied = rate === Infinity ? this.p.memoryBytes : rate * dtS;
      this.memRemaining = Math.min(this.p.memoryBytes, this.memRemaining + dirtied);
    }

    // libvirt's progress watermark
    const remaining = this.memRemaining + this.diskRemaining;
    if (remaining < this.watermark) {
      this.watermark = remaining;
      this.lastProgress = this.simNow;
    }
    if (remaining === 0 && this.inflight === 0) {
      void this.complete();
      return;
    }
    if (this.p.progressTimeoutS > 0 && this.simNow - this.lastProgress > this.p.progressTimeoutS) {
      this.finish({ ok: false, reason: "Live migration has been aborted", cause: "progressTimeout" });
      return;
    }
    if (this.acceptableCompletionS > 0 && this.simNow > this.acceptableCompletionS) {
      this.finish({ ok: false, reason: "Live migration has been aborted", cause: "completionTimeout" });
      return;
    }
    // Switch-over: what is left fits in the allowed downtime (and at least one full memory pass ran).
    if (!this.paused && this.diskRemaining === 0 && this.memPasses >= 1 && this.memRemaining <= (this.p.bandwidth * this.p.maxDowntimeMs) / 1000) {
      this.paused = true;
    }

    const budget = Math.min(this.p.bandwidth * dtS, this.p.bandwidth);
    const unsent = remaining - this.inflight;
    if (this.sending < WINDOW && budget > 0 && unsent > 0) this.sendChunk(Math.min(budget, unsent));
    this.schedule();
  }

  private sendChunk(bytes: number): void {
    const kind = this.diskRemaining - this.inflight > 0 ? "disk" : "memory";
    const size = kind === "disk" ? Math.min(bytes, this.diskRemaining - this.inflight) : bytes;
    const real = Math.max(1, Math.round(size / this.p.simBytesPerRealByte));
    this.inflight += size;
    this.sending++;
    this.link.send(size, real, kind).then(
      () => {
        this.sending--;
        this.inflight -= size;
        if (this.state !== "running") return;
        if (kind === "disk") this.diskRemaining = Math.max(0, this.diskRemaining - size);
        else {
          this.memRemaining = Math.max(0, this.memRemaining - size);
          this.memSentThisPass += size;
          if (this.memSentThisPass >= this.p.memoryBytes) {
            this.memPasses++;
            this.memSentThisPass = 0;
          }
        }
        this.processed += size;
        this.rateWindow.push({ at: Date.now(), bytes: size });
      },
      () => {
        // Not delivered: the bytes stay to be sent; the link reconnects or the monitor times out.
        this.sending--;
        this.inflight -= size;
      },
    );
  }

  private async complete(): Promise<void> {
    if (this.state !== "running") return;
    clearTimeout(this.timer);
    try {
      await this.link.finish(true);
    } catch {
      // retry on the next tick: the peer has not confirmed yet
      if (this.state === "running") this.schedule();
      return;
    }
    if (this.state !== "running") return;
    this.state = "completed";
    this.resolveDone({ ok: true });
  }

  private finish(r: TransferResult): void {
    if (this.state !== "running") return;
    clearTimeout(this.timer);
    this.state = r.ok ? "completed" : "failed";
    if (!r.ok) this.cause = r.cause;
    if (!r.ok) void this.link.finish(false, r.reason).catch(() => undefined);
    this.resolveDone(r);
  }
}
