// The task set: broker → agent on ferry.v1.agent.<cluster>.tasks. Level-triggered: each message is
// the WHOLE desired state for that cluster, so any one message repairs every lost one.
import { z } from "zod";
import { KubeObject, networkMappingShape, SourcePolicy, storageMappingShape, AccessMode, VolumeMode } from "../kube.js";
import { ClusterName, dns1123Subdomain, MigrationUid, ObjectName, PlanName, StorageClassName } from "../names.js";
import { Bytes, envelope, PemBundle, SyncAddress, Time, VmRef } from "./common.js";

export const TaskRole = z.enum(["source", "target", "storage", "offline"]);
export type TaskRole = z.infer<typeof TaskRole>;

/** KubeVirt migrationID shared by both VMIMs of one attempt. */
export const MigrationId = dns1123Subdomain("migrationID");

export function migrationIdFor(migrationUid: string, attempt: number): string {
  return `${migrationUid}-${attempt}`;
}

/** A source volume as the target needs it to create a blank DataVolume of at least this size. */
export const SourceVolume = z.object({
  /** Volume name in the VM spec. */
  name: z.string().min(1).max(253),
  claimName: ObjectName,
  sizeBytes: Bytes,
  storageClass: StorageClassName.optional(),
  volumeMode: VolumeMode.optional(),
  accessModes: z.array(AccessMode).max(4).optional(),
});
export type SourceVolume = z.infer<typeof SourceVolume>;

const StorageMapping = z.object(storageMappingShape);
const NetworkMapping = z.object(networkMappingShape);

const base = {
  migrationUid: MigrationUid,
  plan: PlanName,
  attempt: z.int().min(1),
  /** migrationIdFor(migrationUid, attempt). */
  migrationId: MigrationId,
  source: VmRef,
  target: VmRef,
  /** Give up (report Failed) if the action has not completed by then. */
  deadline: Time.optional(),
};

/** abort: delete this attempt's VMIMs and everything ferry created for it. cleanup: remove leftovers of earlier attempts. */
const Undo = z.enum(["abort", "cleanup"]);

// Each role is a union on `action`, so TypeScript narrows to the fields an action needs.
const source = z.literal("source");
const SourceTask = z.discriminatedUnion("action", [
  /** Create the sendTo VMIM towards the target's synchronization address. */
  z.object({ ...base, role: source, action: z.literal("send"), connectUrl: SyncAddress }),
  /** The target runs: apply the plan's source policy to the source VM. */
  z.object({ ...base, role: source, action: z.literal("finalize"), sourcePolicy: SourcePolicy }),
  z.object({ ...base, role: source, action: Undo }),
]);

const target = z.literal("target");
const TargetTask = z.discriminatedUnion("action", [
  /**
   * Copy the dependencies, create blank DataVolumes sized from `sourceVm.volumes`, the
   * WaitAsReceiver VM (from `sourceVm.manifest`, storage and networks remapped) and the receive VMIM.
   */
  z.object({
    ...base,
    role: target,
    action: z.literal("prepare"),
    storageMap: z.array(StorageMapping).max(256),
    networkMap: z.array(NetworkMapping).max(256),
    sourceVm: z.object({
      /** The source VirtualMachine as its cluster's API returned it (describe-vm). */
      manifest: KubeObject,
      /** Secrets and ConfigMaps the VM references, to be created under the same names. */
      dependencies: z.array(KubeObject).max(64),
      volumes: z.array(SourceVolume).max(256),
    }),
  }),
  z.object({ ...base, role: target, action: Undo }),
]);

/** Same-cluster moves: `migrate` creates the destination volumes and swaps them in (live for storage, clone for offline). */
function volumeMoveTask<R extends "storage" | "offline">(name: R) {
  const role = z.literal(name);
  return z.discriminatedUnion("action", [
    z.object({ ...base, role, action: z.literal("migrate"), storageMap: z.array(StorageMapping).max(256), sourceVolumes: z.array(SourceVolume).max(256) }),
    /** halt keeps the old volumes, delete removes them. */
    z.object({ ...base, role, action: z.literal("finalize"), sourcePolicy: SourcePolicy }),
    z.object({ ...base, role, action: Undo }),
  ]);
}

export const Task = z.discriminatedUnion("role", [SourceTask, TargetTask, volumeMoveTask("storage"), volumeMoveTask("offline")]);
export type Task = z.infer<typeof Task>;
export type TaskAction = Task["action"];

export const TaskSet = z
  .object({
    ...envelope("TaskSet"),
    cluster: ClusterName,
    /** Increases with every change; agents ignore a set older than the newest they have seen. */
    generation: z.int().min(1),
    issuedAt: Time,
    /** Peers whose KubeVirt CA bundle this cluster must import into kubevirt-external-ca. */
    trust: z.array(z.object({ peer: ClusterName, caBundle: PemBundle })).max(1024),
    /** A migration absent from this list is left alone: absence never means "delete". */
    tasks: z.array(Task).max(10_000),
  })
  .superRefine((set, ctx) => {
    // Guards against a broker bug sending a task to the wrong agent, which would act on a VM of
    // the same name in its own cluster.
    const seen = new Set<string>();
    set.tasks.forEach((task, i) => {
      const local = task.role === "source" ? ["source"] : task.role === "target" ? ["target"] : ["source", "target"];
      for (const side of local as ("source" | "target")[]) {
        if (task[side].cluster !== set.cluster) {
          ctx.addIssue({
            code: "custom",
            path: ["tasks", i, side, "cluster"],
            message: `a ${task.role} task for cluster "${set.cluster}" must have ${side}.cluster "${set.cluster}", not "${task[side].cluster}"`,
          });
        }
      }
      const key = `${task.migrationUid}/${task.role}`;
      if (seen.has(key)) {
        ctx.addIssue({ code: "custom", path: ["tasks", i], message: `duplicate ${task.role} task for migration ${task.migrationUid}: one task per migration and role` });
      }
      seen.add(key);
    });
  });
export type TaskSet = z.infer<typeof TaskSet>;
