// Kubernetes / KubeVirt vocabulary shared by the plan document and the bus messages. Field names and
// values are KubeVirt's and CDI's own (see shared/reference/kubevirt-api.md).
//
// Values that KubeVirt owns and may extend in a later release (phases, printable status, run
// strategies, condition types) are open strings with the known values exported as constants: an
// agent on a newer KubeVirt must not have its whole status report rejected over one new phase.
// Values ferry chooses (volume mode and access modes it asks CDI for) are closed enums.
import { z } from "zod";
import { NamespaceName, NetworkName, ObjectName, StorageClassName } from "./names.js";

export const VolumeMode = z.enum(["Filesystem", "Block"]);
export type VolumeMode = z.infer<typeof VolumeMode>;

export const AccessMode = z.enum(["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]);
export type AccessMode = z.infer<typeof AccessMode>;

/** VirtualMachine spec.runStrategy values (kubevirt.io/v1). */
export const RUN_STRATEGIES = ["Always", "Halted", "Manual", "RerunOnFailure", "Once", "WaitAsReceiver"] as const;

/** VirtualMachineInstanceMigration status.phase values; "" means not set yet. */
export const VMIM_PHASES = [
  "",
  "Pending",
  "Scheduling",
  "Scheduled",
  "PreparingTarget",
  "TargetReady",
  "Running",
  "Succeeded",
  "Failed",
  "WaitingForSync",
  "Synchronizing",
] as const;

/** VirtualMachineInstance status.phase values. */
export const VMI_PHASES = ["Pending", "Scheduling", "Scheduled", "Running", "Succeeded", "Failed", "Unknown", "WaitingForSync"] as const;

/** A value KubeVirt owns (phase, printable status, run strategy, condition type): any short string. */
export const KubeVirtString = z.string().max(128);

/** Storage class mapping entry; `volumeMode`/`accessModes` override what CDI's StorageProfile picks. */
export const storageMappingShape = {
  source: StorageClassName,
  target: StorageClassName,
  volumeMode: VolumeMode.optional(),
  accessModes: z.array(AccessMode).min(1).max(4).optional(),
};

/** Network mapping entry: `pod` or a NetworkAttachmentDefinition on each side. */
export const networkMappingShape = {
  source: NetworkName,
  target: NetworkName,
};

/**
 * A Kubernetes object as the API server returns it (a VirtualMachine, Secret, ConfigMap).
 * Only identity is checked here; the agent that applies it validates the rest against the API.
 */
export const KubeObject = z.looseObject({
  apiVersion: z.string().min(1).max(253),
  kind: z.string().min(1).max(63),
  metadata: z.looseObject({ name: ObjectName, namespace: NamespaceName.optional() }),
});
export type KubeObject = z.infer<typeof KubeObject>;

/** What happens to the source VM after a successful move: left Halted (KubeVirt's own outcome) or deleted. */
export const SourcePolicy = z.enum(["halt", "delete"]);
export type SourcePolicy = z.infer<typeof SourcePolicy>;
