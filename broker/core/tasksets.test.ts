import { describe, expect, it } from "vitest";
import { TaskSet, type Task } from "../../proto/bus/index.js";
import { canonicalJson } from "./json.js";
import { step } from "./machine.js";
import { composeTaskSets, sameTaskSet, toTaskSet } from "./tasksets.js";
import { caBundle, ctx, migration, observed, T0, validationResults } from "./test-fixtures.js";

const base = (uid: string, source = "east", target = "west") => ({
  migrationUid: uid,
  plan: "move-db",
  attempt: 1,
  migrationId: `${uid}-1`,
  source: { cluster: source, namespace: "db", name: uid },
  target: { cluster: target, namespace: "db", name: uid },
});

describe("task sets", () => {
  it("routes each task to the cluster that executes it, sorted, one trust entry per peer, an empty set for idle clusters", () => {
    const send: Task = { ...base("m2"), role: "source", action: "send", connectUrl: "10.0.0.5:9185" };
    const abort: Task = { ...base("m1"), role: "target", action: "abort" };
    const storage: Task = { ...base("m3", "west", "west"), role: "storage", action: "abort" };
    const sets = composeTaskSets(["north", "east", "west"], [
      { tasks: [send], trust: [{ cluster: "east", peer: "west", caBundle: caBundle("west") }, { cluster: "west", peer: "east", caBundle: caBundle("east") }] },
      { tasks: [storage, abort], trust: [{ cluster: "east", peer: "west", caBundle: caBundle("west") }] },
    ]);
    expect([...sets.keys()]).toEqual(["east", "north", "west"]);
    expect(sets.get("east")).toEqual({ cluster: "east", trust: [{ peer: "west", caBundle: caBundle("west") }], tasks: [send] });
    expect(sets.get("west")?.tasks.map((t) => `${t.migrationUid}/${t.role}`)).toEqual(["m1/target", "m3/storage"]);
    expect(sets.get("north")).toEqual({ cluster: "north", trust: [], tasks: [] });
    for (const body of sets.values()) expect(TaskSet.safeParse(toTaskSet(body, 7, T0)).success).toBe(true);
  });

  it("compares equal whatever order the inputs came in and whatever key order a stored copy has", () => {
    const a: Task = { ...base("a"), role: "source", action: "abort" };
    const b: Task = { ...base("b"), role: "source", action: "abort" };
    const one = composeTaskSets([], [{ tasks: [a], trust: [] }, { tasks: [b], trust: [] }]).get("east")!;
    const two = composeTaskSets([], [{ tasks: [b], trust: [] }, { tasks: [a], trust: [] }]).get("east")!;
    expect(sameTaskSet(one, two)).toBe(true);
    const stored = JSON.parse(canonicalJson(one)) as typeof one;
    expect(sameTaskSet(one, stored)).toBe(true);
    expect(sameTaskSet(one, { ...one, tasks: [a] })).toBe(false);
  });

  it("composes what the state machine wants into valid task sets", () => {
    const m = step(migration(), observed(), ctx(T0, { admitted: true })).migration;
    const r = step(m, observed({ results: validationResults(m) }), ctx(T0));
    const sets = composeTaskSets(["east", "west"], [r]);
    expect(sets.get("west")?.tasks.map((t) => t.action)).toEqual(["prepare"]);
    expect(sets.get("west")?.trust.map((t) => t.peer)).toEqual(["east"]);
    expect(sets.get("east")?.trust.map((t) => t.peer)).toEqual(["west"]);
    expect(TaskSet.safeParse(toTaskSet(sets.get("west")!, 1, T0)).success).toBe(true);
  });
});
