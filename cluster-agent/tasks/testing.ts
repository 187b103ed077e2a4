// Helpers for the executor's tests against simulated clusters (sim/ over HTTP).
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { BUS_API_VERSION, migrationIdFor, type DescribeVmRequest, type PreflightRequest, type Task, type TaskStatus } from "../../proto/bus/index.js";
import { startWorld, type World } from "../../sim/world.js";
import type { ExecutorOptions, TaskExecutor } from "../executor.js";
import type { KubeObj } from "../core/kube.js";
import { Kube } from "./kube.js";
import { createExecutor } from "./index.js";

export const log = pino({ level: "silent" });

/** Clusters a and b: the default scenario's namespaces, nodes, classes (plus "fast") and VMs on a. */
export async function world(extra: { vms?: unknown[]; objects?: unknown[]; kubevirt?: Record<string, unknown> } = {}): Promise<World> {
  const defaults = {
    namespaces: ["default", "kube-system", "kubevirt", "cdi", "vms"],
    nodes: [{ count: 3, arch: "amd64", cpu: "32", memory: "128Gi" }],
    storageClasses: [
      { name: "standard", default: true, volumeBindingMode: "Immediate", provisioner: "rbd.csi.sim.ferry.dev" },
      { name: "fast", volumeBindingMode: "Immediate", provisioner: "fast.csi.sim.ferry.dev" },
    ],
    networks: [{ name: "vlan100", namespace: "vms", type: "bridge" }],
    kubevirt: extra.kubevirt ?? {},
  };
  const vms = extra.vms ?? [
    { name: "web-1", namespace: "vms", memory: "1Gi", cpu: 1, labels: { app: "web" }, disks: [{ name: "rootdisk", size: "2Gi" }] },
    {
      name: "db-1",
      namespace: "vms",
      memory: "1Gi",
      cpu: 2,
      labels: { app: "db" },
      disks: [{ name: "rootdisk", size: "2Gi" }, { name: "data", size: "1Gi", template: false }],
      networks: [{ name: "default", network: "pod" }, { name: "vlan100", network: "vlan100" }],
    },
  ];
  return startWorld({ clusters: ["a", "b"], timeScale: 1000, http: true, scenario: { defaults, clusters: { a: { vms, objects: extra.objects ?? [] }, b: {} } } as never });
}

export function kubeConfigOf(w: World, cluster: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(w.cluster(cluster).kubeconfig);
  return kc;
}

export function executor(w: World, cluster: string, now?: () => Date, more: Partial<ExecutorOptions> = {}): TaskExecutor {
  return createExecutor({ kubeConfig: kubeConfigOf(w, cluster), cluster, log, ...(now ? { now } : {}), ...more });
}

/** A plain API client for the test's own reads and writes (over HTTP, like the executor). */
export function kube(w: World, cluster: string): Kube {
  return new Kube(kubeConfigOf(w, cluster));
}

/** Reconciles until `done(status)` holds; returns the last status (throws with it on timeout). */
export async function until(exec: TaskExecutor, task: Task, done: (s: TaskStatus) => boolean, timeoutMs = 30_000, also?: () => Promise<unknown>): Promise<TaskStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = await exec.reconcile(task);
    if (done(s)) return s;
    if (Date.now() > deadline) throw new Error(`timed out reconciling ${task.role} ${task.action}: last status ${JSON.stringify(s)}`);
    if (also) await also();
    await new Promise((r) => setTimeout(r, 40));
  }
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 40));
  }
}

export async function caBundle(w: World, cluster: string): Promise<string> {
  const cm = await kube(w, cluster).get<KubeObj & { data?: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", namespace: "kubevirt", name: "kubevirt-ca" });
  return cm?.data?.["ca-bundle"] ?? "";
}

export const base = (uid: string, attempt = 1, source = { cluster: "a", namespace: "vms", name: "web-1" }, target = { cluster: "b", namespace: "vms", name: "web-1" }) => ({
  migrationUid: uid,
  plan: "p1",
  attempt,
  migrationId: migrationIdFor(uid, attempt),
  source,
  target,
});

export function preflightRequest(over: Partial<PreflightRequest> & Pick<PreflightRequest, "side" | "cluster">): PreflightRequest {
  return {
    apiVersion: BUS_API_VERSION,
    kind: "PreflightRequest",
    deadline: new Date(Date.now() + 60_000).toISOString(),
    migrationKind: "decentralized-live",
    source: { cluster: "a", namespace: "vms", name: "web-1" },
    target: { cluster: "b", namespace: "vms", name: "web-1" },
    storageMap: [],
    networkMap: [],
    ...over,
  };
}

export const describeRequest = (cluster: string, namespace: string, name: string): DescribeVmRequest => ({
  apiVersion: BUS_API_VERSION,
  kind: "DescribeVmRequest" as const,
  cluster,
  deadline: new Date(Date.now() + 60_000).toISOString(),
  vm: { namespace, name },
});
