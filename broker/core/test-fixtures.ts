// Builders of the core's inputs for tests: inventories, cluster views, plans, records, agent
// statuses and command results. Every builder returns a value its zod schema accepts.
import {
  BUS_API_VERSION,
  type Inventory,
  type InventoryVm,
  type PreflightReply,
  type RpcError,
  type TaskRole,
  type TaskStatus,
  type TaskStep,
  type VmDescription,
  type VmRef,
} from "../../proto/bus/index.js";
import { parsePlanObject, type MigrationPlan, type MigrationPlanInput } from "../../proto/plan.js";
import { DEFAULT_CLUSTER_LIMITS, type ClusterView } from "./clusters.js";
import type { CommandResult } from "./commands.js";
import type { Observed, StepContext } from "./machine.js";
import { newMigrationRecord } from "./plan.js";
import type { MigrationKind, MigrationRecord, PlanRecord } from "./records.js";

export const GiB = 1024 ** 3;
export const T0 = new Date("2026-11-21T12:00:00.000Z");

export function at(seconds: number): Date {
  return new Date(T0.getTime() + seconds * 1000);
}

/** A PEM-shaped bundle (the core only checks the shape; pki validates real ones). */
export function caBundle(cluster: string): string {
  const body = Buffer.from(`fake CA of ${cluster}`).toString("base64");
  return `-----BEGIN CERTIFICATE-----\n${body}\n-----END CERTIFICATE-----\n`;
}

export function fingerprint(cluster: string): string {
  const hex = Buffer.from(cluster.padEnd(32, "x").slice(0, 32)).toString("hex").toUpperCase();
  return hex.match(/../g)!.join(":");
}

export function view(name: string, over: Partial<ClusterView> = {}): ClusterView {
  return {
    name,
    availability: "available",
    lastSeen: T0.toISOString(),
    capabilities: ["decentralized-live-migration", "storage-live-migration", "offline-migration"],
    decentralizedLiveMigration: true,
    synchronizationAddresses: [`sync.${name}.example:9185`],
    caBundle: caBundle(name),
    caFingerprints: [fingerprint(name)],
    limits: { ...DEFAULT_CLUSTER_LIMITS },
    ...over,
  };
}

export function vm(namespace: string, name: string, over: Partial<InventoryVm> = {}): InventoryVm {
  return {
    namespace,
    name,
    uid: `uid-${namespace}-${name}`,
    runStrategy: "Always",
    printableStatus: "Running",
    vmiPhase: "Running",
    node: "n1",
    memoryBytes: 4 * GiB,
    cpu: 2,
    volumes: [{ name: "root", kind: "dataVolume", claimName: `${name}-root`, sizeBytes: 20 * GiB, storageClass: "ceph-rbd" }],
    interfaces: [{ name: "default", network: "pod" }],
    migrationBlockers: [],
    ...over,
  };
}

export function stopped(namespace: string, name: string, over: Partial<InventoryVm> = {}): InventoryVm {
  const { vmiPhase: _phase, node: _node, ...rest } = vm(namespace, name, { runStrategy: "Halted", printableStatus: "Stopped", ...over });
  return rest;
}

export function inventory(cluster: string, over: Partial<Inventory> & { kubevirt?: Partial<Inventory["kubevirt"]> } = {}): Inventory {
  const { kubevirt, ...rest } = over;
  return {
    apiVersion: BUS_API_VERSION,
    kind: "Inventory",
    cluster,
    epoch: 1,
    seq: 1,
    observedAt: T0.toISOString(),
    kubevirt: {
      version: "v1.8.2",
      featureGates: { enabled: ["DecentralizedLiveMigration"], disabled: [] },
      decentralizedLiveMigration: true,
      synchronizationAddresses: [`sync.${cluster}.example:9185`],
      caBundle: caBundle(cluster),
      migrations: { parallelMigrationsPerCluster: 5, parallelOutboundMigrationsPerNode: 2, bandwidthPerMigration: 0, progressTimeout: 150, completionTimeoutPerGiB: 150 },
      workloadUpdateMethods: ["LiveMigrate"],
      vmRolloutStrategy: "LiveUpdate",
      ...kubevirt,
    },
    storageClasses: [
      { name: "ceph-rbd", provisioner: "rbd.csi.ceph.com", volumeBindingMode: "Immediate", isDefault: true },
      { name: "lvm", provisioner: "lvm.topolvm.io", volumeBindingMode: "WaitForFirstConsumer", isDefault: false },
    ],
    networks: [],
    nodes: [
      { name: "n1", architecture: "amd64", schedulable: true, allocatableMemoryBytes: 64 * GiB },
      { name: "n2", architecture: "amd64", schedulable: true, allocatableMemoryBytes: 64 * GiB },
    ],
    namespaces: ["default", "db", "web"],
    vms: [],
    ...rest,
  };
}

export function plan(spec: Partial<MigrationPlanInput["spec"]> = {}, name = "move-db"): MigrationPlan {
  const doc: MigrationPlanInput = {
    apiVersion: "ferry.dev/v1alpha1",
    kind: "MigrationPlan",
    metadata: { name },
    spec: { source: { cluster: "east" }, vms: [{ namespace: "db", name: "pg-0" }], target: { cluster: "west" }, ...spec },
  };
  const r = parsePlanObject(doc);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

export function planRecord(doc: MigrationPlan = plan(), over: Partial<PlanRecord> = {}): PlanRecord {
  return {
    name: doc.metadata.name,
    uid: "p1",
    document: doc,
    phase: "Pending",
    counters: { total: 1, queued: 1, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
    findings: [],
    cancelRequested: false,
    waitingReason: "",
    createdAt: T0.toISOString(),
    updatedAt: T0.toISOString(),
    ...over,
  };
}

export function ref(cluster: string, namespace = "db", name = "pg-0"): VmRef {
  return { cluster, namespace, name };
}

export function migration(over: Partial<MigrationRecord> & { kind?: MigrationKind } = {}): MigrationRecord {
  const kind = over.kind ?? "decentralized-live";
  const source = over.source ?? ref("east");
  const target = over.target ?? (kind === "decentralized-live" ? ref("west") : source);
  const base = newMigrationRecord({ source, target, kind, size: { memoryBytes: 4 * GiB, diskBytes: 20 * GiB }, sourceNode: "n1" }, over.plan ?? "move-db", over.uid ?? "m1", T0);
  return { ...base, ...over };
}

export function describeReply(m: Pick<MigrationRecord, "source">, over: Partial<VmDescription> = {}): VmDescription {
  return {
    apiVersion: BUS_API_VERSION,
    kind: "VmDescription",
    vm: { apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", metadata: { name: m.source.name, namespace: m.source.namespace }, spec: { runStrategy: "Always" } },
    vmi: { apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", metadata: { name: m.source.name, namespace: m.source.namespace }, status: { nodeName: "n2" } },
    dependencies: [],
    sourceFacts: {
      architecture: "amd64",
      memoryBytes: 4 * GiB,
      volumes: [{ name: "root", claimName: `${m.source.name}-root`, sizeBytes: 20 * GiB, storageClass: "ceph-rbd" }],
      dependencies: [],
      macAddresses: [],
    },
    ...over,
  };
}

export function preflightOk(issues: Extract<PreflightReply, { kind: "PreflightResult" }>["issues"] = []): PreflightReply {
  return { apiVersion: BUS_API_VERSION, kind: "PreflightResult", ok: !issues.some((i) => i.severity === "error"), issues };
}

export function rpcError(code: RpcError["code"], message: string): RpcError {
  return { apiVersion: BUS_API_VERSION, kind: "RpcError", code, message };
}

/** The results a migration's validation asks for, all answered well. */
export function validationResults(m: Pick<MigrationRecord, "source" | "migrationId">): CommandResult[] {
  return [
    { id: `${m.migrationId}/describe-vm`, type: "describe-vm", reply: describeReply(m) },
    { id: `${m.migrationId}/preflight-source`, type: "preflight", reply: preflightOk() },
    { id: `${m.migrationId}/preflight-target`, type: "preflight", reply: preflightOk() },
  ];
}

export function status(m: Pick<MigrationRecord, "uid" | "attempt">, role: TaskRole, step: TaskStep, over: Partial<TaskStatus> = {}, when: Date = T0): TaskStatus {
  return { migrationUid: m.uid, attempt: m.attempt, role, step, updatedAt: when.toISOString(), ...over };
}

export function trustOf(peer: string, present = true): NonNullable<Observed["trust"][string]>[number] {
  return { peer, fingerprints: [fingerprint(peer)], present };
}

/** Both clusters up, trusting each other, no task reports. */
export function observed(over: Partial<Observed> = {}): Observed {
  return {
    clusters: { east: view("east"), west: view("west") },
    trust: { east: [trustOf("west")], west: [trustOf("east")] },
    tasks: [],
    results: [],
    ...over,
  };
}

export function ctx(now: Date = T0, over: Partial<StepContext> = {}, doc: MigrationPlan = plan()): StepContext {
  return { now, plan: planRecord(doc), ...over };
}
