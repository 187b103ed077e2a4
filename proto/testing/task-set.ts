// Random task sets almost never satisfy their cross-field rules (each task names the set's cluster
// on its local side(s); one task per migration and role): property tests and the fuzzer repair them
// instead of filtering them out.
import type { Task, TaskSet } from "../bus/index.js";

/** `set` made valid for `cluster` (default: the set's own): local sides renamed, duplicates dropped. */
export function repairTaskSet(set: TaskSet, cluster = set.cluster): TaskSet {
  const seen = new Set<string>();
  const tasks = set.tasks
    .filter((t) => !seen.has(`${t.migrationUid}/${t.role}`) && seen.add(`${t.migrationUid}/${t.role}`))
    .map((t): Task => {
      const source = t.role === "target" ? t.source : { ...t.source, cluster };
      const target = t.role === "source" ? t.target : { ...t.target, cluster };
      return { ...t, source, target };
    });
  return { ...set, cluster, tasks };
}
