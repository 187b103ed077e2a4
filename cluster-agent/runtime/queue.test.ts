import { describe, expect, it } from "vitest";
import { WorkQueue } from "./queue.js";

function gate() {
  let open!: () => void;
  const p = new Promise<void>((r) => (open = r));
  return { p, open };
}

describe("WorkQueue", () => {
  it("deduplicates queued keys and never runs one key twice at once; an add while running runs it again after", async () => {
    const g = gate();
    let running = 0;
    let maxRunning = 0;
    const runs: string[] = [];
    const done: (() => void)[] = [];
    const q = new WorkQueue<string>({
      concurrency: 4,
      baseDelayMs: 1,
      maxDelayMs: 10,
      process: async (k) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        runs.push(k);
        if (runs.length === 1) await g.p;
        running--;
        done.shift()?.();
      },
    });
    const finished = new Promise<void>((r) => done.push(() => undefined, r));
    q.add("a");
    q.add("a"); // while running: marked dirty
    q.add("a"); // still one re-run
    g.open();
    await finished;
    expect(runs).toEqual(["a", "a"]);
    expect(maxRunning).toBe(1);
    await q.stop();
  });

  it("retries failures with per-key exponential back-off and resets it on success", async () => {
    let calls = 0;
    const seen: number[] = [];
    let resolveDone!: () => void;
    const done = new Promise<void>((r) => (resolveDone = r));
    const q = new WorkQueue<string>({
      concurrency: 1,
      baseDelayMs: 1,
      maxDelayMs: 4,
      process: (k) => {
        calls++;
        seen.push(q.failuresOf(k));
        if (calls < 4) return Promise.reject(new Error("boom"));
        resolveDone();
        return Promise.resolve();
      },
    });
    q.add("k");
    await done;
    await new Promise((r) => setImmediate(r));
    expect(seen).toEqual([0, 1, 2, 3]);
    expect(q.failuresOf("k")).toBe(0);
    q.remove("k");
    await q.stop();
  });
});
