// Shared pieces of the benchmarks: timing loops, a seeded PRNG, and the one output format
// (a baseline measured in the same run, then each measurement with its ratio to it).
import { performance } from "node:perf_hooks";

export interface BenchOptions {
  /** Short runs for CI: fewer samples, smaller fleets. Numbers are noisier, ratios still meaningful. */
  quick: boolean;
}

export interface Bench {
  name: string;
  /** One line: what is compared with what. */
  what: string;
  run(opts: BenchOptions, out: Reporter): Promise<void>;
}

export interface Throughput {
  ops: number;
  ms: number;
  /** Operations per second. */
  rate: number;
}

/** Runs `fn` repeatedly (after a warm-up) for at least `minMs`, in batches. */
export function measureSync(fn: () => void, opts: { minMs: number; warmup?: number }): Throughput {
  for (let i = 0; i < (opts.warmup ?? 20); i++) fn();
  let ops = 0;
  let batch = 1;
  const start = performance.now();
  let elapsed = 0;
  while (elapsed < opts.minMs) {
    for (let i = 0; i < batch; i++) fn();
    ops += batch;
    elapsed = performance.now() - start;
    if (elapsed < opts.minMs / 10) batch *= 2;
  }
  return { ops, ms: elapsed, rate: (ops * 1000) / elapsed };
}

/** Runs `concurrency` loops of `fn` until `minMs` have passed (after `warmup` calls). */
export async function measureAsync(fn: () => Promise<unknown>, opts: { minMs: number; warmup?: number; concurrency?: number }): Promise<Throughput> {
  for (let i = 0; i < (opts.warmup ?? 20); i++) await fn();
  let ops = 0;
  const start = performance.now();
  const deadline = start + opts.minMs;
  const loop = async () => {
    while (performance.now() < deadline) {
      await fn();
      ops++;
    }
  };
  await Promise.all(Array.from({ length: opts.concurrency ?? 1 }, loop));
  const ms = performance.now() - start;
  return { ops, ms, rate: (ops * 1000) / ms };
}

/** Mulberry32: a small seeded PRNG, so a run's fleets can be reproduced. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function int(rand: () => number, min: number, max: number): number {
  return min + Math.floor(rand() * (max - min + 1));
}

export interface Stats {
  n: number;
  mean: number;
  min: number;
  max: number;
  p50: number;
}

export function stats(xs: readonly number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return { n, mean: s.reduce((a, b) => a + b, 0) / n, min: s[0]!, max: s[n - 1]!, p50: s[Math.floor((n - 1) / 2)]! };
}

const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));

/** Prints a bench's lines; all benches share this format so the README explains it once. */
export class Reporter {
  constructor(private readonly write: (line: string) => void = (l) => process.stdout.write(`${l}\n`)) {}

  section(title: string): void {
    this.write(`  ${title}`);
  }

  /** The baseline row of a comparison. */
  baseline(label: string, t: Throughput, unit = "ops/s"): void {
    this.write(`    baseline  ${label.padEnd(46)} ${fmt(t.rate).padStart(10)} ${unit}  (${t.ops} in ${t.ms.toFixed(0)} ms)`);
  }

  /** A measured row: its rate and `rate / baseline rate` (> 1 = faster than the baseline). */
  measured(label: string, t: Throughput, base: Throughput, unit = "ops/s"): void {
    const r = t.rate / base.rate;
    this.write(`    measured  ${label.padEnd(46)} ${fmt(t.rate).padStart(10)} ${unit}  ratio ${fmt(r)}× of baseline  (${t.ops} in ${t.ms.toFixed(0)} ms)`);
  }

  /** A ratio computed elsewhere (e.g. makespans), with what it is a ratio of. */
  ratio(label: string, s: Stats, note: string): void {
    this.write(`    ratio     ${label.padEnd(46)} mean ${fmt(s.mean)}  p50 ${fmt(s.p50)}  min ${fmt(s.min)}  max ${fmt(s.max)}  (n=${s.n}; ${note})`);
  }

  note(text: string): void {
    this.write(`    ${text}`);
  }
}
