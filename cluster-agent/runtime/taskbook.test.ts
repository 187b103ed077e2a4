import { describe, expect, it } from "vitest";
import { BUS_API_VERSION, type Task, type TaskSet } from "../../proto/bus/index.js";
import { TaskBook, taskKey } from "./taskbook.js";

const task = (uid: string, attempt = 1): Task => ({
  migrationUid: uid,
  plan: "p",
  attempt,
  migrationId: `${uid}-${attempt}`,
  source: { cluster: "a", namespace: "vms", name: uid },
  target: { cluster: "b", namespace: "vms", name: uid },
  role: "source",
  action: "send",
  connectUrl: "10.0.0.1:9185",
});
const set = (generation: number, tasks: Task[]): TaskSet => ({ apiVersion: BUS_API_VERSION, kind: "TaskSet", cluster: "a", generation, issuedAt: new Date(0).toISOString(), trust: [], tasks });
const now = new Date(0);

describe("TaskBook", () => {
  it("keeps the newest set; older generations are refused; absent tasks are dropped", () => {
    const b = new TaskBook();
    expect(b.accept(set(2, [task("m1"), task("m2")]))).toMatchObject({ accepted: true, added: ["m1/source", "m2/source"] });
    expect(b.accept(set(1, [task("m3")]))).toEqual({ accepted: false, reason: "generation 1 is older than 2" });
    expect(b.keys()).toEqual(["m1/source", "m2/source"]);
    expect(b.accept(set(3, [task("m2", 2)]))).toMatchObject({ accepted: true, added: [], changed: ["m2/source"], removed: ["m1/source"] });
    expect(b.generation).toBe(3);
    expect(b.tasksForMigration("m2")).toEqual(["m2/source"]);
    expect(b.tasksForVm("a", "vms", "m2")).toEqual(["m2/source"]);
    expect(b.tasksForVm("a", "vms", "m9")).toEqual([]);
  });

  it("reports Pending until observed; a change is news only when more than updatedAt moved; old attempts are dropped", () => {
    const b = new TaskBook();
    b.accept(set(1, [task("m1")]));
    expect(b.report(now).tasks).toEqual([{ migrationUid: "m1", attempt: 1, role: "source", step: "Pending", updatedAt: now.toISOString() }]);
    const s = { migrationUid: "m1", attempt: 1, role: "source" as const, step: "Sending" as const, updatedAt: "2026-01-01T00:00:00.000Z" };
    expect(b.observe(taskKey(task("m1")), s)).toBe(true);
    expect(b.observe(taskKey(task("m1")), { ...s, updatedAt: "2026-01-01T00:00:05.000Z" })).toBe(false);
    expect(b.observe(taskKey(task("m1")), { ...s, step: "Migrating" })).toBe(true);
    expect(b.observe(taskKey(task("m1")), { ...s, attempt: 2 })).toBe(false);
    b.accept(set(2, [task("m1", 2)]));
    expect(b.report(now).tasks[0]).toMatchObject({ attempt: 2, step: "Pending" });
    expect(b.observe("gone/source", s)).toBe(false);
  });
});
