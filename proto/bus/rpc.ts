// Request/reply on ferry.v1.agent.<cluster>.rpc.<verb>: the broker asks, the agent answers on the
// broker's reply inbox. Any request may be answered with RpcError instead of its reply.
import { z } from "zod";
import { KubeObject, networkMappingShape, storageMappingShape } from "../kube.js";
import { ClusterName, ObjectName } from "../names.js";
import { envelope, Issue, MacAddress, Text, Time, VmKey, VmRef } from "./common.js";
import { Inventory } from "./agent.js";
import { SourceVolume } from "./tasks.js";

/**
 * Requests carry a deadline instead of a sequence number: request/reply is matched by inbox, so the
 * only stale request is one whose caller has given up. Agents drop requests past their deadline.
 */
const request = <K extends string>(kind: K) => ({ ...envelope(kind), cluster: ClusterName, deadline: Time });

export const RpcError = z.object({
  ...envelope("RpcError"),
  code: z.enum(["BadRequest", "NotFound", "Unavailable", "DeadlineExceeded", "Internal"]),
  message: Text,
  fix: Text.optional(),
});
export type RpcError = z.infer<typeof RpcError>;

/** Facts about the source VM that the target-side preflight checks for collisions. */
export const SourceFacts = z.object({
  architecture: z.string().min(1).max(32),
  memoryBytes: z.int().min(0),
  /** Volumes (their DataVolume/PVC names must be free on the target). */
  volumes: z.array(SourceVolume).max(256),
  /** Secrets and ConfigMaps the VM references (their names must be free or ferry's own). */
  dependencies: z.array(z.object({ kind: z.enum(["Secret", "ConfigMap"]), name: ObjectName })).max(64),
  macAddresses: z.array(MacAddress).max(64),
});

/**
 * Sent to the source agent (`side: "source"`: VM exists, runs, is live-migratable, every volume
 * mapped) and to the target agent (`side: "target"`: namespace, storage classes, networks, no
 * colliding names or MACs; needs `sourceFacts`).
 */
export const PreflightRequest = z.object({
  ...request("PreflightRequest"),
  side: z.enum(["source", "target"]),
  /** Not `kind`: that is the envelope's message kind ("PreflightRequest"). */
  migrationKind: z.enum(["decentralized-live", "storage-live", "offline"]),
  source: VmRef,
  target: VmRef,
  storageMap: z.array(z.object(storageMappingShape)).max(256),
  networkMap: z.array(z.object(networkMappingShape)).max(256),
  sourceFacts: SourceFacts.optional(),
});
export type PreflightRequest = z.infer<typeof PreflightRequest>;

export const PreflightResult = z.object({
  ...envelope("PreflightResult"),
  /** No issue has severity "error". */
  ok: z.boolean(),
  issues: z.array(Issue).max(1000),
});
export type PreflightResult = z.infer<typeof PreflightResult>;

export const InventoryRequest = z.object({ ...request("InventoryRequest") });
export type InventoryRequest = z.infer<typeof InventoryRequest>;

export const DescribeVmRequest = z.object({ ...request("DescribeVmRequest"), vm: VmKey });
export type DescribeVmRequest = z.infer<typeof DescribeVmRequest>;

/** What the target needs to recreate the VM: the manifest, its dependencies and volume sizes. */
export const VmDescription = z.object({
  ...envelope("VmDescription"),
  vm: KubeObject,
  /** Its VMI, if running. */
  vmi: KubeObject.optional(),
  dependencies: z.array(KubeObject).max(64),
  sourceFacts: SourceFacts,
});
export type VmDescription = z.infer<typeof VmDescription>;

const reply = <T extends z.ZodObject>(ok: T) => z.discriminatedUnion("kind", [ok, RpcError]);

export const PreflightReply = reply(PreflightResult);
export type PreflightReply = z.infer<typeof PreflightReply>;
/** The agent answers with its current inventory, exactly as it would publish it. */
export const InventoryReply = reply(Inventory);
export type InventoryReply = z.infer<typeof InventoryReply>;
export const DescribeVmReply = reply(VmDescription);
export type DescribeVmReply = z.infer<typeof DescribeVmReply>;
