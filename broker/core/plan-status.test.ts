import { describe, expect, it } from "vitest";
import type { MigrationState } from "../../proto/bus/index.js";
import { planCounters, planPhase, planStatus, planWaitingReason } from "./plan-status.js";
import { PlanRecord } from "./records.js";
import { at, migration, planRecord } from "./test-fixtures.js";

const ms = (...states: MigrationState[]) => states.map((state, i) => migration({ uid: `m${i}`, state, source: { cluster: "east", namespace: "db", name: `vm-${i}` }, ...(state === "Queued" || state === "Pending" ? {} : { attempt: 1 }) }));

describe("plan phase and counters", () => {
  it.each([
    [[], false, "Succeeded"],
    [["Pending", "Queued"], false, "Pending"],
    [["Queued", "Migrating"], false, "Running"],
    [["Queued", "Succeeded"], false, "Running"],
    [["Succeeded", "Succeeded"], false, "Succeeded"],
    [["Failed", "Failed"], false, "Failed"],
    [["Succeeded", "Failed"], false, "PartiallyFailed"],
    [["Succeeded", "Cancelled"], false, "PartiallyFailed"],
    [["Succeeded", "Cancelling"], true, "Cancelling"],
    [["Succeeded", "Cancelled"], true, "Cancelled"],
  ] as const)("%j (cancel requested: %s) → %s", (states, cancel, phase) => {
    expect(planPhase({ cancelRequested: cancel }, ms(...states))).toBe(phase);
  });

  it("counts by state group", () => {
    expect(planCounters(ms("Pending", "Queued", "Validating", "RollingBack", "Cancelling", "Succeeded", "Failed", "Cancelled"))).toEqual({ total: 8, queued: 2, running: 3, succeeded: 1, failed: 1, cancelled: 1 });
  });

  it("says why a plan does not progress when nothing is in flight", () => {
    const waiting = ms("Queued", "Queued").map((m) => ({ ...m, waitingReason: "outside the plan's window 22:00–06:00 Europe/Berlin" }));
    expect(planWaitingReason(waiting)).toBe("outside the plan's window 22:00–06:00 Europe/Berlin");
    const mixed = [{ ...waiting[0]!, waitingReason: "cluster west cordoned: maintenance" }, waiting[1]!];
    expect(planWaitingReason(mixed)).toBe("cluster west cordoned: maintenance (and 1 more queued)");
    expect(planWaitingReason([...waiting, ...ms("Migrating")])).toBe("");
  });

  it("updates the record, stamps start and finish, and emits a phase change event", () => {
    const p = planRecord();
    const running = planStatus(p, ms("Migrating"), at(10));
    expect(running.plan).toMatchObject({ phase: "Running", startedAt: at(10).toISOString(), updatedAt: at(10).toISOString() });
    expect(running.events).toEqual([expect.objectContaining({ reason: "PlanPhaseChanged", planPhase: "Running", message: "plan Pending → Running: 0 succeeded, 0 failed, 0 cancelled, 1 running, 0 queued of 1" })]);
    const same = planStatus(running.plan, ms("Migrating"), at(20));
    expect(same.plan).toEqual(running.plan);
    expect(same.events).toEqual([]);
    const done = planStatus(running.plan, ms("Succeeded"), at(30));
    expect(done.plan).toMatchObject({ phase: "Succeeded", startedAt: at(10).toISOString(), finishedAt: at(30).toISOString() });
    expect(PlanRecord.safeParse(done.plan).success).toBe(true);
  });
});
