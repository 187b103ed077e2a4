import { describe, expect, it } from "vitest";
import { MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";
import { PlanPhase, type Plan, type WatchPlanResponse } from "../proto/gen/ferry/v1/plans.js";
import { migration, plan } from "./fixtures.js";
import { applyWatchMessage, emptyView, planFinished, plainUpdate, progressRow, watchExitCode, type WatchView } from "./watch.js";

const GiB = 2 ** 30;
const t = new Date("2025-06-01T12:00:00Z");

function planMsg(seq: number, p: Plan, over: Partial<WatchPlanResponse> = {}): WatchPlanResponse {
  return { seq, time: t, change: { $case: "plan", value: p }, message: "", snapshotComplete: false, ...over };
}
function migMsg(seq: number, m: Migration, over: Partial<WatchPlanResponse> = {}): WatchPlanResponse {
  return { seq, time: t, change: { $case: "migration", value: m }, message: "", snapshotComplete: false, ...over };
}
const fold = (msgs: WatchPlanResponse[], from: WatchView = emptyView()) => msgs.reduce(applyWatchMessage, from);

const pg0 = migration();
const pg1 = migration({ uid: "m-2", name: "move-db/db/pg-1", source: { cluster: "east", namespace: "db", name: "pg-1" }, target: undefined, state: MigrationState.QUEUED, waitingReason: "plan limit: 1/1 maxInFlight in use" });
const snapshot = [planMsg(10, plan()), migMsg(10, pg0), migMsg(10, pg1, { snapshotComplete: true })];

describe("applyWatchMessage", () => {
  it("builds the view from the snapshot, then follows live changes by seq", () => {
    const v = fold(snapshot);
    expect([v.snapshotComplete, v.lastSeq, v.migrations.size]).toEqual([true, 10, 2]);
    const moved = fold([migMsg(12, { ...pg1, state: MigrationState.MIGRATING })], v);
    expect(moved.migrations.get("m-2")?.state).toBe(MigrationState.MIGRATING);
    expect(moved.lastSeq).toBe(12);
  });

  it("ignores live messages at or below the last seq (overlap after a resume)", () => {
    const v = fold([...snapshot, migMsg(12, { ...pg1, state: MigrationState.MIGRATING })]);
    const again = fold([migMsg(11, { ...pg1, state: MigrationState.QUEUED })], v);
    expect(again).toBe(v);
  });
});

describe("finish and exit code", () => {
  const done = (phase: PlanPhase, states: MigrationState[]) =>
    fold([planMsg(20, plan({ phase })), ...states.map((s, i) => migMsg(20, migration({ uid: `m-${i}`, name: `p/ns/vm-${i}`, state: s }), { snapshotComplete: i === states.length - 1 }))]);

  it("finished only when the plan phase is final and the snapshot is whole", () => {
    expect(planFinished(fold(snapshot))).toBe(false);
    expect(planFinished(fold([planMsg(5, plan({ phase: PlanPhase.SUCCEEDED }))]))).toBe(false);
    expect(planFinished(done(PlanPhase.SUCCEEDED, [MigrationState.SUCCEEDED]))).toBe(true);
    expect(planFinished(done(PlanPhase.CANCELLED, [MigrationState.CANCELLED]))).toBe(true);
  });

  it("0 only when every VM succeeded", () => {
    expect(watchExitCode(done(PlanPhase.SUCCEEDED, [MigrationState.SUCCEEDED, MigrationState.SUCCEEDED]))).toBe(0);
    expect(watchExitCode(done(PlanPhase.PARTIALLY_FAILED, [MigrationState.SUCCEEDED, MigrationState.FAILED]))).toBe(1);
    expect(watchExitCode(done(PlanPhase.CANCELLED, [MigrationState.CANCELLED]))).toBe(1);
    expect(watchExitCode(done(PlanPhase.FAILED, [MigrationState.FAILED]))).toBe(1);
    expect(watchExitCode(emptyView())).toBe(1);
  });
});

describe("progressRow", () => {
  it("phase, bytes, rate, ETA and target while moving", () => {
    const m = migration({
      progress: { dataProcessedBytes: 1 * GiB, dataTotalBytes: 4 * GiB, dataRemainingBytes: 3 * GiB, dataRateBytesPerSecond: 100 * 2 ** 20, eta: { seconds: 30, nanos: 0 }, sourceVmimPhase: "Running", targetVmimPhase: "Running", conditions: [], mode: "PreCopy", updateTime: undefined },
    });
    expect(progressRow(m)).toEqual({ uid: "m-1", vm: "db/pg-0", state: "Migrating", fraction: 0.25, bytes: "1.0 GiB/4.0 GiB", rate: "100 MiB/s", eta: "0:30", note: "→ west:db/pg-0", done: false });
  });

  it("a live migration whose re-sent memory passed the total: the bar follows processed / (processed + remaining); a success shows it all moved", () => {
    const p = { dataProcessedBytes: 5 * GiB, dataTotalBytes: 4 * GiB, dataRemainingBytes: 1 * GiB, dataRateBytesPerSecond: 100 * 2 ** 20, eta: { seconds: 10, nanos: 0 }, sourceVmimPhase: "Running", targetVmimPhase: "Running", conditions: [], mode: "PreCopy", updateTime: undefined };
    expect(progressRow(migration({ progress: p }))).toMatchObject({ fraction: 5 / 6, bytes: "5.0 GiB/4.0 GiB", eta: "0:10" });
    const last = { ...p, dataProcessedBytes: 3.9 * GiB, dataRemainingBytes: 0.1 * GiB, eta: undefined };
    expect(progressRow(migration({ state: MigrationState.SUCCEEDED, progress: last }))).toMatchObject({ fraction: 1, bytes: "4.0 GiB/4.0 GiB", rate: "", eta: "" });
  });

  it("why queued, which attempt, why failed; a success fills the bar", () => {
    expect(progressRow(pg1)).toMatchObject({ state: "Queued", fraction: 0, bytes: "", note: "plan limit: 1/1 maxInFlight in use" });
    expect(progressRow(migration({ state: MigrationState.ROLLING_BACK, attempt: 2 })).note).toBe("→ west:db/pg-0  attempt 2");
    expect(progressRow(migration({ state: MigrationState.SUCCEEDED })).fraction).toBe(1);
    const failed = progressRow(migration({ state: MigrationState.FAILED, lastError: { code: "Stalled", message: "no progress for 600s", fix: "" } }));
    expect(failed).toMatchObject({ done: true, rate: "", eta: "" });
    expect(failed.note).toContain("Stalled: no progress for 600s");
  });
});

describe("plainUpdate (non-TTY output)", () => {
  const time = () => "12:00:00 ";
  it("prints nothing during the snapshot, everything at its end, then only real changes", () => {
    const printed = new Map<string, string>();
    let v = emptyView();
    const out: string[] = [];
    const feed = (m: WatchPlanResponse) => {
      v = applyWatchMessage(v, m);
      out.push(...plainUpdate(v, m, printed, time));
    };
    feed(snapshot[0]!);
    feed(snapshot[1]!);
    expect(out).toEqual([]);
    feed(snapshot[2]!);
    expect(out).toEqual([
      "12:00:00 db/pg-0  Migrating  → west:db/pg-0",
      "12:00:00 db/pg-1  Queued  plan limit: 1/1 maxInFlight in use",
      "12:00:00 move-db Running: 1/3 succeeded, 1 running, 1 queued, 0 failed, 0 cancelled",
    ]);
    out.length = 0;
    const progress = (processed: number, rate: number) => ({ dataProcessedBytes: processed, dataTotalBytes: 10 * GiB, dataRemainingBytes: 0, dataRateBytesPerSecond: rate, eta: undefined, sourceVmimPhase: "", targetVmimPhase: "", conditions: [], mode: "", updateTime: undefined });
    feed(migMsg(11, migration({ progress: progress(1.2 * GiB, 1) })));
    feed(migMsg(12, migration({ progress: progress(1.5 * GiB, 2) }))); // same 10% step: no line
    feed(migMsg(13, migration({ progress: progress(2.1 * GiB, 2) })));
    feed(migMsg(14, migration({ state: MigrationState.SUCCEEDED, progress: progress(10 * GiB, 0) }), { message: "target running; source halted" }));
    feed(migMsg(15, migration({ state: MigrationState.SUCCEEDED, progress: progress(10 * GiB, 0) }), { message: "source VMIM deleted" }));
    expect(out).toEqual([
      "12:00:00 db/pg-0  Migrating  12% 1.2 GiB/10 GiB  1 B/s  → west:db/pg-0",
      "12:00:00 db/pg-0  Migrating  21% 2.1 GiB/10 GiB  2 B/s  → west:db/pg-0",
      "12:00:00 db/pg-0  Succeeded  100% 10 GiB/10 GiB  → west:db/pg-0  (target running; source halted)",
      "12:00:00 db/pg-0: source VMIM deleted",
    ]);
  });
});
