// The seam between the agent's runtime (bus, work queue, reports, inventory) and its Kubernetes work
// (tasks, trust, preflight, describe-vm). The runtime decides WHEN; the executor decides WHAT, from
// what it reads in the cluster each time (so a restarted agent continues where the dead one stopped).
import type { KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { DescribeVmRequest, PreflightRequest, PreflightResult, Task, TaskSet, TaskStatus, TrustStatus, VmDescription } from "../proto/bus/index.js";

export interface ExecutorOptions {
  kubeConfig: KubeConfig;
  /** This agent's cluster name (the broker's name for it). */
  cluster: string;
  log: Logger;
  /** Injected for tests; defaults to the wall clock. */
  now?: () => Date;
  /** config timings.vmimReleaseSeconds (default 60). */
  vmimReleaseSeconds?: number;
  /** Reconcile `task` again after `afterMs` (a deadline passes with no watch event to announce it); the runtime's queue. */
  requeue?: (task: Task, afterMs: number) => void;
  /** Namespace of KubeVirt (its virt-handler pods, read for live-migration progress); default "kubevirt". */
  kubevirtNamespace?: string;
  /** config timings.progressPollSeconds (default 5): how often a migrating VMI's progress is read. */
  progressPollSeconds?: number;
}

export interface TaskExecutor {
  /**
   * One idempotent pass toward the task's goal: create what is missing (409 = already there), read
   * what KubeVirt reports, return the observed status. Never waits for KubeVirt to move; the runtime
   * calls again on every watch event of an object labelled `ferry.dev/migration=<uid>`, on every new
   * task set, and on a periodic resync.
   */
  reconcile(task: Task): Promise<TaskStatus>;
  /** Write the peers' CA bundles into kubevirt-external-ca (never the Secret kubevirt-ca) and report whether each reached kubevirt-ca. */
  reconcileTrust(trust: TaskSet["trust"]): Promise<TrustStatus[]>;
  /** No side effects: every reason this VM cannot go, as specific issues. */
  preflight(request: PreflightRequest): Promise<PreflightResult>;
  /** The source VM as the target needs it: manifest, VMI, referenced Secrets/ConfigMaps, volume facts. */
  describeVm(request: DescribeVmRequest): Promise<VmDescription>;
}

/** Labels on every object ferry creates; the runtime watches objects carrying MIGRATION_LABEL. */
export const MANAGED_BY_LABEL = "app.kubernetes.io/managed-by";
export const MANAGED_BY_VALUE = "ferry";
export const MIGRATION_LABEL = "ferry.dev/migration";
export const ATTEMPT_LABEL = "ferry.dev/attempt";
