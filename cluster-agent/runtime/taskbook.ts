// What the agent holds: the newest task set and the last observed status of each task in it. Pure
// data; the runtime feeds it task sets and reconcile results and reads Status reports from it.
import type { Task, TaskSet, TaskStatus, TrustStatus } from "../../proto/bus/index.js";

/** One task per migration and role (the task set guarantees it). */
export type TaskKey = string;

export function taskKey(task: Pick<Task, "migrationUid" | "role">): TaskKey {
  return `${task.migrationUid}/${task.role}`;
}

export type Accepted =
  | { accepted: true; added: TaskKey[]; changed: TaskKey[]; removed: TaskKey[]; trustChanged: boolean }
  | { accepted: false; reason: string };

export class TaskBook {
  private set: TaskSet | undefined;
  private readonly tasks = new Map<TaskKey, Task>();
  private readonly statuses = new Map<TaskKey, TaskStatus>();
  private trust: TrustStatus[] = [];

  /** Generation of the newest task set accepted; 0 if none. */
  get generation(): number {
    return this.set?.generation ?? 0;
  }

  get size(): number {
    return this.tasks.size;
  }

  get trustRequest(): TaskSet["trust"] {
    return this.set?.trust ?? [];
  }

  /**
   * Take a task set unless it is older than the newest seen. The set is the whole desired state:
   * tasks absent from it are no longer held (nothing is undone for them: absence never means
   * delete). An equal generation is re-applied (a broker re-sending the same set) but changes nothing.
   */
  accept(next: TaskSet): Accepted {
    if (this.set && next.generation < this.set.generation) {
      return { accepted: false, reason: `generation ${next.generation} is older than ${this.set.generation}` };
    }
    const added: TaskKey[] = [];
    const changed: TaskKey[] = [];
    const removed: TaskKey[] = [];
    const keys = new Set<TaskKey>();
    for (const t of next.tasks) {
      const k = taskKey(t);
      keys.add(k);
      const before = this.tasks.get(k);
      if (!before) added.push(k);
      else if (JSON.stringify(before) !== JSON.stringify(t)) changed.push(k);
      this.tasks.set(k, t);
    }
    for (const k of [...this.tasks.keys()]) {
      if (!keys.has(k)) {
        this.tasks.delete(k);
        this.statuses.delete(k);
        removed.push(k);
      }
    }
    // A status of an earlier attempt does not describe the new one.
    for (const k of changed) {
      const s = this.statuses.get(k);
      if (s && s.attempt !== this.tasks.get(k)!.attempt) this.statuses.delete(k);
    }
    const trustChanged = JSON.stringify(this.set?.trust ?? []) !== JSON.stringify(next.trust);
    this.set = next;
    return { accepted: true, added, changed, removed, trustChanged };
  }

  task(key: TaskKey): Task | undefined {
    return this.tasks.get(key);
  }

  keys(): TaskKey[] {
    return [...this.tasks.keys()];
  }

  all(): Task[] {
    return [...this.tasks.values()];
  }

  /**
   * Record a reconcile result. Returns whether the reported state changed (ignoring `updatedAt`),
   * i.e. whether a Status should go out now. A result for a task no longer held is dropped.
   */
  observe(key: TaskKey, status: TaskStatus): boolean {
    const task = this.tasks.get(key);
    if (!task || task.attempt !== status.attempt) return false;
    const before = this.statuses.get(key);
    this.statuses.set(key, status);
    return !before || stable(before) !== stable(status);
  }

  /** Record the trust observations; returns whether they changed (ignoring push times). */
  observeTrust(trust: TrustStatus[]): boolean {
    const changed = JSON.stringify(this.trust.map(({ lastPushAt: _, ...t }) => t)) !== JSON.stringify(trust.map(({ lastPushAt: _, ...t }) => t));
    this.trust = trust;
    return changed;
  }

  /** Statuses to report: every held task with an observation, plus Pending for those not reconciled yet. */
  report(now: Date): { taskSetGeneration: number; trust: TrustStatus[]; tasks: TaskStatus[] } {
    const tasks = [...this.tasks.entries()].map(
      ([k, t]) => this.statuses.get(k) ?? { migrationUid: t.migrationUid, attempt: t.attempt, role: t.role, step: "Pending" as const, updatedAt: now.toISOString() },
    );
    return { taskSetGeneration: this.generation, trust: this.trust, tasks };
  }

  /** Tasks whose source or target VM is `namespace/name` in this cluster. */
  tasksForVm(cluster: string, namespace: string, name: string): TaskKey[] {
    const out: TaskKey[] = [];
    for (const [k, t] of this.tasks) {
      for (const side of [t.source, t.target]) {
        if (side.cluster === cluster && side.namespace === namespace && side.name === name) {
          out.push(k);
          break;
        }
      }
    }
    return out;
  }

  /** Tasks of a migration (the value of the ferry.dev/migration label). */
  tasksForMigration(migrationUid: string): TaskKey[] {
    return [...this.tasks.entries()].filter(([, t]) => t.migrationUid === migrationUid).map(([k]) => k);
  }
}

function stable(s: TaskStatus): string {
  const { updatedAt: _, ...rest } = s;
  return JSON.stringify(rest);
}
