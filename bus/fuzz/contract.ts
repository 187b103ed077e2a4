// The channels the fuzz test attacks: every subject a receiver listens to, with its schema, size
// limit and valid sample messages.
//
// These schemas are REPRESENTATIVE stand-ins shaped like proto/bus (envelope with apiVersion/kind,
// DNS-label names, regex-checked strings, enums, discriminated unions, nested arrays, ints ≥ 0,
// ISO timestamps, optional fields). proto/ lives on another branch that has not reached main yet;
// when it does, build CHANNELS from proto's MESSAGES, MAX_MESSAGE_BYTES and subject builders.
import { z } from "zod";

const API = "bus.ferry.dev/v1";
const envelope = <K extends string>(kind: K) => ({ apiVersion: z.literal(API), kind: z.literal(kind) });
const Label = z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
const Count = z.int().min(0);
const Time = z.iso.datetime();
const Pem = z
  .string()
  .max(64 * 1024)
  .regex(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/)
  .refine((s) => !s.includes("PRIVATE KEY"));
const SyncAddress = z.string().regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$/);
const Phase = z.enum(["Pending", "Preparing", "Ready", "Migrating", "Succeeded", "Failed"]);
const Condition = z.object({ type: z.string().min(1).max(64), status: z.enum(["True", "False", "Unknown"]), message: z.string().max(4096).optional() });

export const Hello = z.object({
  ...envelope("Hello"),
  cluster: Label,
  seq: Count,
  agentVersion: z.string().min(1).max(64),
  capabilities: z.array(z.enum(["decentralized-live-migration", "storage-live-migration", "offline-migration"])).max(16),
  caBundle: Pem.optional(),
  synchronizationAddresses: z.array(SyncAddress).max(16),
});

export const Heartbeat = z.object({
  ...envelope("Heartbeat"),
  cluster: Label,
  seq: Count,
  time: Time,
  health: z.object({ kubernetesApi: z.boolean(), watches: z.boolean(), tasks: Count, message: z.string().max(4096).optional() }),
});

const Vm = z.object({
  namespace: Label,
  name: Label,
  running: z.boolean(),
  memoryBytes: Count,
  volumes: z.array(z.object({ name: z.string().min(1).max(253), kind: z.enum(["dataVolume", "persistentVolumeClaim", "containerDisk"]), sizeBytes: Count.optional() })).max(64),
});

export const Inventory = z.object({
  ...envelope("Inventory"),
  cluster: Label,
  seq: Count,
  kubevirtVersion: z.string().min(1).max(64),
  storageClasses: z.array(Label).max(256),
  vms: z.array(Vm).max(10_000),
});

export const Status = z.object({
  ...envelope("Status"),
  cluster: Label,
  seq: Count,
  taskSetGeneration: Count,
  tasks: z.array(z.object({ migration: Label, attempt: z.int().min(1), phase: Phase, conditions: z.array(Condition).max(32), progressPercent: z.number().min(0).max(100).optional() })).max(10_000),
});

const Task = z.discriminatedUnion("role", [
  z.object({ role: z.literal("source"), migration: Label, attempt: z.int().min(1), vm: z.object({ namespace: Label, name: Label }), connectURL: SyncAddress.optional() }),
  z.object({ role: z.literal("target"), migration: Label, attempt: z.int().min(1), vm: z.object({ namespace: Label, name: Label }), peerCaBundle: Pem.optional(), storageMap: z.record(Label, Label) }),
]);

export const TaskSet = z.object({ ...envelope("TaskSet"), cluster: Label, generation: Count, tasks: z.array(Task).max(10_000) });

export const PreflightRequest = z.object({ ...envelope("PreflightRequest"), vms: z.array(z.object({ namespace: Label, name: Label })).min(1).max(1000) });
export const PreflightReply = z.object({
  ...envelope("PreflightReply"),
  results: z.array(z.object({ vm: Label, ok: z.boolean(), problems: z.array(z.object({ code: z.string().regex(/^[A-Z][A-Za-z0-9]{0,63}$/), message: z.string() })) })),
});
export const InventoryRequest = z.object({ ...envelope("InventoryRequest"), namespaces: z.array(Label).max(1000).optional() });
export const InventoryReply = Inventory;
export const DescribeVmRequest = z.object({ ...envelope("DescribeVmRequest"), namespace: Label, name: Label });
export const DescribeVmReply = z.object({ ...envelope("DescribeVmReply"), vm: Vm.nullable() });

const pem = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIUQk9HVVMtQ0VSVElGSUNBVEUtRk9SLUZVWlo=\n-----END CERTIFICATE-----\n";
const vm = { namespace: "prod", name: "db-1", running: true, memoryBytes: 8 << 30, volumes: [{ name: "root", kind: "dataVolume", sizeBytes: 20 << 30 }] };

export interface Channel {
  name: string;
  /** "pub": fire-and-forget; "rpc": request/reply served with `serve`. */
  kind: "pub" | "rpc";
  /** Who sends on it (which credentials the fuzzer publishes with). */
  from: "agent" | "broker";
  /** Concrete subject the fuzzer publishes on. */
  subject: string;
  /** The receiver's subscription (wildcards as the real broker/agent use them). */
  listen: string;
  schema: z.ZodType;
  reply?: z.ZodType;
  replySample?: unknown;
  maxBytes: number;
  samples: unknown[];
}

const KiB = 1024;

export const CHANNELS: Channel[] = [
  {
    name: "hello",
    kind: "pub",
    from: "agent",
    subject: "ferry.v1.broker.a.hello",
    listen: "ferry.v1.broker.*.hello",
    schema: Hello,
    maxBytes: 64 * KiB,
    samples: [
      { apiVersion: API, kind: "Hello", cluster: "a", seq: 1, agentVersion: "0.1.0", capabilities: ["decentralized-live-migration"], synchronizationAddresses: ["10.0.0.5:9185"] },
      { apiVersion: API, kind: "Hello", cluster: "a", seq: 2, agentVersion: "0.1.0", capabilities: [], caBundle: pem, synchronizationAddresses: ["[fd00::5]:9185", "sync.a.example:9185"] },
    ],
  },
  {
    name: "heartbeat",
    kind: "pub",
    from: "agent",
    subject: "ferry.v1.broker.a.heartbeat",
    listen: "ferry.v1.broker.*.heartbeat",
    schema: Heartbeat,
    maxBytes: 8 * KiB,
    samples: [
      { apiVersion: API, kind: "Heartbeat", cluster: "a", seq: 3, time: "2026-11-21T23:42:00.123Z", health: { kubernetesApi: true, watches: true, tasks: 2 } },
      { apiVersion: API, kind: "Heartbeat", cluster: "a", seq: 4, time: "2026-11-21T23:42:10Z", health: { kubernetesApi: false, watches: false, tasks: 0, message: "apiserver unreachable" } },
    ],
  },
  {
    name: "inventory",
    kind: "pub",
    from: "agent",
    subject: "ferry.v1.broker.a.inventory",
    listen: "ferry.v1.broker.*.inventory",
    schema: Inventory,
    maxBytes: 64 * KiB,
    samples: [
      { apiVersion: API, kind: "Inventory", cluster: "a", seq: 5, kubevirtVersion: "v1.6.0", storageClasses: ["ceph-rbd", "local"], vms: [vm, { ...vm, name: "web-1", running: false, volumes: [] }] },
    ],
  },
  {
    name: "status",
    kind: "pub",
    from: "agent",
    subject: "ferry.v1.broker.a.status",
    listen: "ferry.v1.broker.*.status",
    schema: Status,
    maxBytes: 64 * KiB,
    samples: [
      {
        apiVersion: API,
        kind: "Status",
        cluster: "a",
        seq: 6,
        taskSetGeneration: 3,
        tasks: [{ migration: "m-1", attempt: 1, phase: "Migrating", conditions: [{ type: "Progressing", status: "True" }], progressPercent: 42.5 }],
      },
    ],
  },
  {
    name: "tasks",
    kind: "pub",
    from: "broker",
    subject: "ferry.v1.agent.a.tasks",
    listen: "ferry.v1.agent.a.tasks",
    schema: TaskSet,
    maxBytes: 64 * KiB,
    samples: [
      {
        apiVersion: API,
        kind: "TaskSet",
        cluster: "a",
        generation: 3,
        tasks: [
          { role: "source", migration: "m-1", attempt: 1, vm: { namespace: "prod", name: "db-1" }, connectURL: "10.1.0.9:9185" },
          { role: "target", migration: "m-2", attempt: 2, vm: { namespace: "prod", name: "web-1" }, peerCaBundle: pem, storageMap: { "ceph-rbd": "local" } },
        ],
      },
      { apiVersion: API, kind: "TaskSet", cluster: "a", generation: 4, tasks: [] },
    ],
  },
  {
    name: "rpc.preflight",
    kind: "rpc",
    from: "broker",
    subject: "ferry.v1.agent.a.rpc.preflight",
    listen: "ferry.v1.agent.a.rpc.preflight",
    schema: PreflightRequest,
    reply: PreflightReply,
    replySample: { apiVersion: API, kind: "PreflightReply", results: [{ vm: "db-1", ok: false, problems: [{ code: "VmNotLiveMigratable", message: "hostDisk" }] }] },
    maxBytes: 16 * KiB,
    samples: [{ apiVersion: API, kind: "PreflightRequest", vms: [{ namespace: "prod", name: "db-1" }] }],
  },
  {
    name: "rpc.inventory",
    kind: "rpc",
    from: "broker",
    subject: "ferry.v1.agent.a.rpc.inventory",
    listen: "ferry.v1.agent.a.rpc.inventory",
    schema: InventoryRequest,
    reply: InventoryReply,
    replySample: { apiVersion: API, kind: "Inventory", cluster: "a", seq: 1, kubevirtVersion: "v1.6.0", storageClasses: [], vms: [] },
    maxBytes: 4 * KiB,
    samples: [
      { apiVersion: API, kind: "InventoryRequest" },
      { apiVersion: API, kind: "InventoryRequest", namespaces: ["prod", "dev"] },
    ],
  },
  {
    name: "rpc.describe-vm",
    kind: "rpc",
    from: "broker",
    subject: "ferry.v1.agent.a.rpc.describe-vm",
    listen: "ferry.v1.agent.a.rpc.describe-vm",
    schema: DescribeVmRequest,
    reply: DescribeVmReply,
    replySample: { apiVersion: API, kind: "DescribeVmReply", vm },
    maxBytes: 4 * KiB,
    samples: [{ apiVersion: API, kind: "DescribeVmRequest", namespace: "prod", name: "db-1" }],
  },
];
