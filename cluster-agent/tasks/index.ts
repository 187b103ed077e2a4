// The executor: every Kubernetes action of the agent, behind the TaskExecutor seam. Each call
// reads what it needs, acts once, and reports what it observed; nothing is kept in memory between
// calls, so a new executor (a restarted agent) continues where an old one stopped.
import type { Task, TaskStatus } from "../../proto/bus/index.js";
import type { ExecutorOptions, TaskExecutor } from "../executor.js";
import { agentError } from "../core/status.js";
import { Report, type Ctx } from "./context.js";
import { sourceFinalize, sourceSend, targetPrepare, undoDecentralized } from "./decentralized.js";
import { describeVm, preflight } from "./describe.js";
import { Kube, KubeError } from "./kube.js";
import { ProgressReader } from "./progress.js";
import { reconcileTrust } from "./trust.js";
import { finalizeMove, moveVolumes, undoMove } from "./volumes.js";

export { ExecutorError } from "./describe.js";
export { KubeError } from "./kube.js";

/** Steps after which a deadline no longer matters. */
const SETTLED = new Set(["Succeeded", "Failed", "Finalized", "Aborted", "CleanedUp"]);

async function dispatch(ctx: Ctx, task: Task, r: Report): Promise<TaskStatus> {
  switch (task.action) {
    case "abort":
    case "cleanup":
      return task.role === "source" || task.role === "target" ? undoDecentralized(ctx, task, r) : undoMove(ctx, task, r);
    case "prepare":
      return targetPrepare(ctx, task, r);
    case "send":
      return sourceSend(ctx, task, r);
    case "migrate":
      return moveVolumes(ctx, task, r);
    case "finalize":
      return task.role === "source" ? sourceFinalize(ctx, task, r) : finalizeMove(ctx, task, r);
  }
}

export function createExecutor(opts: ExecutorOptions): TaskExecutor {
  const now = opts.now ?? (() => new Date());
  const kube = new Kube(opts.kubeConfig);
  const progressPollMs = (opts.progressPollSeconds ?? 5) * 1000;
  const progress = new ProgressReader({ kubeConfig: opts.kubeConfig, kube, namespace: opts.kubevirtNamespace ?? "kubevirt", pollMs: progressPollMs, log: opts.log });
  const ctx: Ctx = {
    kube,
    cluster: opts.cluster,
    log: opts.log,
    now,
    vmimReleaseMs: (opts.vmimReleaseSeconds ?? 60) * 1000,
    requeue: opts.requeue ?? (() => undefined),
    progress: (vmi) => progress.read(vmi),
    progressPollMs,
  };
  return {
    async reconcile(task) {
      const r = new Report(task, now);
      let status: TaskStatus;
      try {
        status = await dispatch(ctx, task, r);
      } catch (e) {
        if (!(e instanceof KubeError)) throw e;
        // A refused request fails the task (with the API's words); a transient one keeps the step and says why.
        const error = agentError(e.transient ? "KubernetesApiUnavailable" : "KubernetesApiRefused", e.message, e.transient ? "ferry retries on the next reconcile; check the API server if this persists" : "see the message: the API server refused ferry's request (RBAC, admission or quota)");
        ctx.log.warn({ migration: task.migrationUid, role: task.role, action: task.action, err: e.message }, "task reconcile hit an API error");
        status = e.transient ? r.status({ error }) : r.failed(error);
      }
      if (task.deadline && !SETTLED.has(status.step) && task.action !== "abort" && task.action !== "cleanup" && now().getTime() > Date.parse(task.deadline)) {
        return { ...status, step: "Failed", error: agentError("DeadlineExceeded", `${task.role} ${task.action} did not complete by ${task.deadline} (last step ${status.step})`, "ferry aborts this attempt and retries if attempts are left") };
      }
      return status;
    },
    reconcileTrust: (trust) => reconcileTrust(ctx, trust),
    preflight: (req) => preflight(ctx, req),
    describeVm: (req) => describeVm(ctx, req),
  };
}
