// What every task handler gets: the API door, the clock, the log, and the status it is building.
import type { Logger } from "pino";
import type { AgentError, Task, TaskStatus, TaskStep } from "../../proto/bus/index.js";
import { CDI_API, KUBEVIRT_API, type DataVolume, type KubeObj, type KubeVirtCr, type VirtualMachine, type VirtualMachineInstance, type Vmim } from "../core/kube.js";
import { migrationSelector } from "../core/names.js";
import { agentError } from "../core/status.js";
import type { Kube } from "./kube.js";

export interface Ctx {
  kube: Kube;
  cluster: string;
  log: Logger;
  now: () => Date;
  /** How long a VMIM ferry deleted may stay held by KubeVirt before ferry lifts its finalizers (core/status.ts heldVmim). */
  vmimReleaseMs: number;
  /** Reconcile `task` again after `afterMs` (time-based deadlines that no watch event announces). */
  requeue: (task: Task, afterMs: number) => void;
  /** A migrating VMI's progress from its node's virt-handler metrics (tasks/progress.ts); undefined when unavailable. */
  progress: (vmi: VirtualMachineInstance) => Promise<TaskStatus["progress"]>;
  /** How often a migrating task is reconciled again to refresh its progress. */
  progressPollMs: number;
}

/** A status under construction: the step reached so far is kept so an API failure can report it. */
export class Report {
  step: TaskStep = "Pending";
  private readonly extra: Partial<TaskStatus> = {};

  constructor(
    private readonly task: Task,
    private readonly now: () => Date,
  ) {}

  at(step: TaskStep, extra: Partial<TaskStatus> = {}): this {
    this.step = step;
    Object.assign(this.extra, extra);
    return this;
  }

  status(extra: Partial<TaskStatus> = {}): TaskStatus {
    const all = { ...this.extra, ...extra };
    const out: TaskStatus = { migrationUid: this.task.migrationUid, attempt: this.task.attempt, role: this.task.role, step: this.step, updatedAt: this.now().toISOString() };
    for (const [k, v] of Object.entries(all)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
    return out;
  }

  done(step: TaskStep, extra: Partial<TaskStatus> = {}): TaskStatus {
    return this.at(step).status(extra);
  }

  failed(error: AgentError, extra: Partial<TaskStatus> = {}): TaskStatus {
    return this.at("Failed").status({ ...extra, error });
  }

  fail(code: string, message: string, fix: string, extra: Partial<TaskStatus> = {}): TaskStatus {
    return this.failed(agentError(code, message, fix), extra);
  }
}

export const VM = (namespace: string, name: string) => ({ apiVersion: KUBEVIRT_API, kind: "VirtualMachine", namespace, name });
export const VMI = (namespace: string, name: string) => ({ apiVersion: KUBEVIRT_API, kind: "VirtualMachineInstance", namespace, name });
export const VMIM = (namespace: string, name: string) => ({ apiVersion: KUBEVIRT_API, kind: "VirtualMachineInstanceMigration", namespace, name });
export const DV = (namespace: string, name: string) => ({ apiVersion: CDI_API, kind: "DataVolume", namespace, name });

export function readVm(ctx: Ctx, namespace: string, name: string) {
  return Promise.all([ctx.kube.get<VirtualMachine>(VM(namespace, name)), ctx.kube.get<VirtualMachineInstance>(VMI(namespace, name))]);
}

export async function readKubeVirt(ctx: Ctx): Promise<KubeVirtCr | undefined> {
  const all = await ctx.kube.list<KubeVirtCr>(KUBEVIRT_API, "KubeVirt");
  return all.find((k) => !k.metadata.deletionTimestamp) ?? all[0];
}

/** Kinds ferry creates in a namespace, deleted by abort/cleanup (VMIMs first, by the callers). */
export const OWNED_KINDS = [
  { apiVersion: KUBEVIRT_API, kind: "VirtualMachine" },
  { apiVersion: CDI_API, kind: "DataVolume" },
  { apiVersion: "v1", kind: "Secret" },
  { apiVersion: "v1", kind: "ConfigMap" },
] as const;

export interface Owned {
  vmims: Vmim[];
  vms: VirtualMachine[];
  dataVolumes: DataVolume[];
  others: KubeObj[];
}

/** Everything ferry made for a migration in one namespace (any attempt). */
export async function listOwned(ctx: Ctx, namespace: string, migrationUid: string): Promise<Owned> {
  const sel = migrationSelector(migrationUid);
  const [vmims, vms, dataVolumes, secrets, configMaps] = await Promise.all([
    ctx.kube.list<Vmim>(KUBEVIRT_API, "VirtualMachineInstanceMigration", namespace, sel),
    ctx.kube.list<VirtualMachine>(KUBEVIRT_API, "VirtualMachine", namespace, sel),
    ctx.kube.list<DataVolume>(CDI_API, "DataVolume", namespace, sel),
    ctx.kube.list<KubeObj>("v1", "Secret", namespace, sel),
    ctx.kube.list<KubeObj>("v1", "ConfigMap", namespace, sel),
  ]);
  return {
    vmims: vmims.map((o) => ({ ...o, apiVersion: KUBEVIRT_API, kind: "VirtualMachineInstanceMigration" })),
    vms: vms.map((o) => ({ ...o, apiVersion: KUBEVIRT_API, kind: "VirtualMachine" })),
    dataVolumes: dataVolumes.map((o) => ({ ...o, apiVersion: CDI_API, kind: "DataVolume" })),
    others: [...secrets.map((o) => ({ ...o, apiVersion: "v1", kind: "Secret" })), ...configMaps.map((o) => ({ ...o, apiVersion: "v1", kind: "ConfigMap" }))],
  };
}
