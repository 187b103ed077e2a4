// Task sets: the whole desired state of each cluster, composed from every migration's desired tasks
// and trust needs. Stable order and canonical comparison, so an unchanged set compares equal and
// the shell publishes only on change (plus periodically); the generation is the shell's.
import { BUS_API_VERSION, type Task, type TaskSet } from "../../proto/bus/index.js";
import { jsonEqual } from "./json.js";
import type { TrustNeed } from "./machine.js";

export interface TaskSetBody {
  cluster: string;
  trust: Array<{ peer: string; caBundle: string }>;
  tasks: Task[];
}

/** The cluster whose agent executes `task`. */
export function clusterOfTask(task: Task): string {
  return task.role === "target" ? task.target.cluster : task.source.cluster;
}

const ROLE_ORDER: Record<Task["role"], number> = { source: 0, target: 1, storage: 2, offline: 3 };

/**
 * One body per cluster in `clusters` (an empty set tells an agent there is nothing to do) and per
 * cluster any task or trust need names. Tasks sorted by migration uid then role; trust by peer,
 * one entry per peer.
 */
export function composeTaskSets(clusters: Iterable<string>, outputs: Iterable<{ tasks: readonly Task[]; trust: readonly TrustNeed[] }>): Map<string, TaskSetBody> {
  const sets = new Map<string, TaskSetBody>();
  const bodyOf = (cluster: string): TaskSetBody => {
    let b = sets.get(cluster);
    if (!b) sets.set(cluster, (b = { cluster, trust: [], tasks: [] }));
    return b;
  };
  for (const c of clusters) bodyOf(c);
  for (const out of outputs) {
    for (const task of out.tasks) bodyOf(clusterOfTask(task)).tasks.push(task);
    for (const need of out.trust) {
      const body = bodyOf(need.cluster);
      if (!body.trust.some((t) => t.peer === need.peer)) body.trust.push({ peer: need.peer, caBundle: need.caBundle });
    }
  }
  for (const body of sets.values()) {
    body.tasks.sort((a, b) => a.migrationUid.localeCompare(b.migrationUid) || ROLE_ORDER[a.role] - ROLE_ORDER[b.role]);
    body.trust.sort((a, b) => a.peer.localeCompare(b.peer));
  }
  return new Map([...sets.entries()].sort(([a], [b]) => a.localeCompare(b)));
}

/** Same trust and tasks (generation and issue time aside): nothing new to publish. */
export function sameTaskSet(a: Pick<TaskSetBody, "trust" | "tasks">, b: Pick<TaskSetBody, "trust" | "tasks">): boolean {
  return jsonEqual({ trust: a.trust, tasks: a.tasks }, { trust: b.trust, tasks: b.tasks });
}

export function toTaskSet(body: TaskSetBody, generation: number, issuedAt: Date): TaskSet {
  return { apiVersion: BUS_API_VERSION, kind: "TaskSet", cluster: body.cluster, generation, issuedAt: issuedAt.toISOString(), trust: body.trust, tasks: body.tasks };
}
