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
  /** Connections the link opened so far and the peer address it sends to (TLS links only). */
  stats?(): { connections: number; address?: string };
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
/**
 * Real network latency (TLS handshakes, a busy event loop) is many simulated seconds at a high time
 * scale; "no progress" must also have lasted this long in real time before the copy is aborted, and
 * a copy must have run this long in real time before it can exceed its completion timeout.
 */
const MIN_REAL_STALL_MS = 1_000;

export class Transfer {
  private diskRemaining: number;
  /** Current pre-copy pass: bytes to send in it, sent (acknowledged) so far, and pages dirtied meanwhile. */
  private pass = { size: 0, sent: 0, dirtied: 0 };
  private processed = 0;
  private inflight = 0;
  private sending = 0;
  private lastTick: number;
  private readonly startReal = Date.now();
  private lastProgress = 0;
  private lastProgressReal = Date.now();
  private watermark = Infinity;
  private readonly startSim = 0;
  private timer?: NodeJS.Timeout;
  private paused = false;
  private state: TransferStats["state"] = "running";
  private cause?: string;
  private rateWindow: { at: number; bytes: number }[] = [];
  private memPasses = 0;
  private resolveDone!: (r: TransferResult) => void;
  readonly done: Promise<TransferResult>;
  /** The failure notice to the peer (FIN), so the link is not closed under it. */
  private finSent: Promise<void> = Promise.resolve();
  private simNow = 0;

  constructor(
    private readonly clock: SimClock,
    private readonly link: DataLink,
    private readonly p: TransferParams,
  ) {
    this.diskRemaining = p.diskBytes;
    this.pass = { size: p.memoryBytes, sent: 0, dirtied: 0 };
    this.lastTick = Date.now();
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Resolves once the copy ended and the peer was told how (or telling it failed): then the link may close. */
  get settled(): Promise<void> {
    return this.done.then(() => this.finSent);
  }

  /** Data size in GB as getVMIMigrationDataSize computes it (ScaledValue(Giga), rounded up). */
  get acceptableCompletionS(): number {
    return this.p.completionTimeoutPerGiB * Math.ceil((this.p.memoryBytes + this.p.diskBytes) / 1e9);
  }

  /** Memory still to send: the rest of this pass plus what the guest dirtied meanwhile (libvirt's dataRemaining). */
  private get memRemaining(): number {
    return Math.min(this.p.memoryBytes, this.pass.size - this.pass.sent + this.pass.dirtied);
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
    const bytes = this.rateWindow.reduce((sum, r) => sum + r.bytes, 0);
    const windowSim = this.clock.simMs(Math.min(1000, now - (this.rateWindow[0]?.at ?? now))) / 1000;
    const mem = this.state === "completed" ? 0 : this.memRemaining;
    const disk = this.state === "completed" ? 0 : this.diskRemaining;
    return {
      state: this.state,
      // libvirt's data total is the guest's memory and disks, fixed; re-sent dirty pages push processed past it.
      dataTotalBytes: this.p.memoryBytes + this.p.diskBytes,
      dataProcessedBytes: this.processed,
      dataRemainingBytes: mem + disk,
      memoryRemainingBytes: mem,
      diskRemainingBytes: disk,
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
    // A late timer (busy event loop) must not look like minutes of simulated time without progress:
    // a tick advances the copy's clock by at most four tick lengths.
    const tickS = this.clock.simMs(this.tickRealMs()) / 1000;
    const dtS = Math.min(this.clock.simMs(nowReal - this.lastTick) / 1000, 4 * tickS);
    this.lastTick = nowReal;
    this.simNow += dtS;

    // The running guest dirties memory pages while a memory pass is under way. Delivered chunks account
    // for the time they took (see sendChunk); a tick without any delivery (stalled link) counts in full.
    if (!this.paused && this.diskRemaining === 0 && !this.ackedSinceTick) this.dirty(dtS);
    this.ackedSinceTick = false;

    // libvirt's progress watermark
    const remaining = this.memRemaining + this.diskRemaining;
    if (remaining < this.watermark) {
      this.watermark = remaining;
      this.lastProgress = this.simNow;
      this.lastProgressReal = nowReal;
    }
    if (this.p.progressTimeoutS > 0 && this.simNow - this.lastProgress > this.p.progressTimeoutS && nowReal - this.lastProgressReal >= MIN_REAL_STALL_MS) {
      this.finish({ ok: false, reason: "Live migration has been aborted", cause: "progressTimeout" });
      return;
    }
    if (this.acceptableCompletionS > 0 && this.simNow > this.acceptableCompletionS && nowReal - this.startReal >= MIN_REAL_STALL_MS) {
      this.finish({ ok: false, reason: "Live migration has been aborted", cause: "completionTimeout" });
      return;
    }
    this.rollover();
    if (this.diskRemaining === 0 && this.paused && this.pass.sent >= this.pass.size && this.inflight === 0) {
      void this.complete();
      return;
    }

    const budget = this.p.bandwidth * dtS;
    const unsent = this.diskRemaining > 0 ? this.diskRemaining - this.inflight : this.pass.size - this.pass.sent - this.inflight;
    if (this.sending < WINDOW && budget >= 1 && unsent > 0) this.sendChunk(Math.ceil(Math.min(budget, unsent)), this.diskRemaining > 0 ? "disk" : "memory");
    this.schedule();
  }

  private ackedSinceTick = false;

  private dirty(seconds: number): void {
    const rate = this.p.dirtyRate();
    this.pass.dirtied = Math.min(this.p.memoryBytes, this.pass.dirtied + (rate === Infinity ? this.p.memoryBytes : rate * seconds));
  }

  /** End of a pre-copy pass: the next one sends what was dirtied; switch over when that fits the downtime. */
  private rollover(): void {
    if (this.paused || this.diskRemaining > 0 || this.pass.sent < this.pass.size || this.inflight > 0) return;
    this.memPasses++;
    const next = this.pass.dirtied;
    this.pass = { size: next, sent: 0, dirtied: 0 };
    if (next <= (this.p.bandwidth * this.p.maxDowntimeMs) / 1000) this.paused = true;
  }

  private sendChunk(size: number, kind: "disk" | "memory"): void {
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
          this.pass.sent += size;
          if (!this.paused) this.dirty(size / this.p.bandwidth);
          this.ackedSinceTick = true;
          this.rollover();
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
    if (!r.ok) this.finSent = this.link.finish(false, r.reason).catch(() => undefined);
    this.resolveDone(r);
  }
}
