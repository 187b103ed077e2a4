// Live-migration progress read by the executors from the source node's virt-handler, through the
// simulated API server's pods/proxy (never a pod IP): a decentralized send and a storage live
// migration report growing bytes while KubeVirt copies; a refused read (no RBAC) changes nothing else.
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import type { Task, TaskStatus } from "../../proto/bus/index.js";
import type { World } from "../../sim/world.js";
import type { TaskExecutor } from "../executor.js";
import type { KubeObj, VirtualMachineInstance } from "../core/kube.js";
import { handlersByNode } from "./progress.js";
import { base, caBundle, describeRequest, executor, kube, until, waitFor, world } from "./testing.js";

let w: World | undefined;
afterEach(async () => {
  await w?.stop();
  w = undefined;
});

/** Timeouts out of reach: a "no-converge" guest keeps the copy going until the test lets it finish. */
const HOLD = { migrations: { progressTimeout: 100_000, completionTimeoutPerGiB: 100_000, bandwidthPerMigration: "64Mi" } };
const POLL_SECONDS = 0.1;
const GiB = 2 ** 30;

const vmi = (cluster: string, namespace: string, name: string) => kube(w!, cluster).get<VirtualMachineInstance>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", namespace, name });
const dirty = (cluster: string, rate: number | "no-converge") => w!.controlClient().kubevirt(cluster).setDirtyRate("vms", "web-1", rate);

async function trust(ea: TaskExecutor, eb: TaskExecutor) {
  const [pa, pb] = [await caBundle(w!, "a"), await caBundle(w!, "b")];
  await waitFor("trust both ways", async () => {
    const [ta, tb] = await Promise.all([ea.reconcileTrust([{ peer: "b", caBundle: pb }]), eb.reconcileTrust([{ peer: "a", caBundle: pa }])]);
    return ta[0]?.present && tb[0]?.present;
  });
}

/** Prepares web-1 on b and returns the send task for a. */
async function readyToSend(ea: TaskExecutor, eb: TaskExecutor, uid: string): Promise<{ prepare: Task; send: Task }> {
  await waitFor("source running", async () => (await vmi("a", "vms", "web-1"))?.status?.phase === "Running");
  await trust(ea, eb);
  const d = await ea.describeVm(describeRequest("a", "vms", "web-1"));
  const prepare: Task = { ...base(uid), role: "target", action: "prepare", storageMap: [{ source: "standard", target: "fast" }], networkMap: [], sourceVm: { manifest: d.vm, dependencies: d.dependencies, volumes: d.sourceFacts.volumes } };
  const ready = await until(eb, prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed");
  expect(ready.step).toBe("ReceiverReady");
  return { prepare, send: { ...base(uid), role: "source", action: "send", connectUrl: ready.syncAddress! } };
}

/** Reconciles until two statuses show processedBytes growing; returns every status seen. */
async function growing(exec: TaskExecutor, task: Task): Promise<TaskStatus[]> {
  const seen: TaskStatus[] = [];
  await until(exec, task, (s) => {
    seen.push(s);
    const bytes = seen.map((x) => x.progress?.processedBytes ?? 0).filter((b) => b > 0);
    return s.step === "Failed" || s.step === "Succeeded" || (bytes.length >= 2 && bytes.at(-1)! > bytes[0]!);
  });
  return seen;
}

describe("live-migration progress from virt-handler's metrics over pods/proxy", () => {
  it("picks each node's virt-handler: running, Ready and newest first during a rollout, with its metrics port", () => {
    const pod = (name: string, node: string, ready: boolean, created: string, phase = "Running", port?: number) => ({
      metadata: { name, creationTimestamp: created },
      spec: { nodeName: node, containers: [{ ports: port ? [{ name: "vmstats", containerPort: 8187 }, { name: "metrics", containerPort: port }] : [] }] },
      status: { phase, conditions: [{ type: "Ready", status: ready ? "True" : "False" }] },
    });
    const byNode = handlersByNode([
      pod("old", "n1", true, "2026-01-01T00:00:00Z", "Running", 8443),
      pod("new", "n1", false, "2026-01-02T00:00:00Z", "Running", 9443),
      pod("next", "n2", true, "2026-01-02T00:00:00Z", "Running", 9443),
      pod("prev", "n2", true, "2026-01-01T00:00:00Z"),
      pod("gone", "n3", true, "2026-01-01T00:00:00Z", "Succeeded"),
    ]);
    expect(Object.fromEntries(byNode)).toEqual({ n1: { pod: "old", port: 8443 }, n2: { pod: "next", port: 9443 } });
  });

  it("a migrating send task reports growing processedBytes with total, remaining and rate, read through pods/proxy from the virt-handler on the VMI's node (its pod looked up once)", async () => {
    w = await world({ kubevirt: HOLD });
    const requeues: number[] = [];
    const ea = executor(w, "a", undefined, { progressPollSeconds: POLL_SECONDS, requeue: (_t, ms) => requeues.push(ms) });
    const eb = executor(w, "b");
    const { prepare, send } = await readyToSend(ea, eb, "p1");
    await dirty("a", "no-converge");
    // the virt-handler pod on the source VMI's node: the one the executor must read through the API server
    const node = (await vmi("a", "vms", "web-1"))!.status!.nodeName!;
    const handlers = await kube(w, "a").list<KubeObj & { spec?: { nodeName?: string } }>("v1", "Pod", "kubevirt", "kubevirt.io=virt-handler");
    const onNode = handlers.find((p) => p.spec?.nodeName === node)!.metadata.name;
    const ctl = w.controlClient();
    const mark = (await ctl.requests("a", { limit: 1 })).last;

    const seen = await growing(ea, send);
    const migrating = seen.filter((s) => s.step === "Migrating" && s.progress);
    expect(migrating.length).toBeGreaterThanOrEqual(2);
    const last = migrating.at(-1)!.progress!;
    expect(last.processedBytes).toBeGreaterThan(migrating[0]!.progress!.processedBytes);
    expect(last.totalBytes).toBeGreaterThanOrEqual(1 * GiB + 2 * GiB); // memory and the 2Gi disk (block migration)
    expect(last.remainingBytes).toBeGreaterThan(0);
    expect(migrating.some((s) => (s.progress!.dataRateBytesPerSecond ?? 0) > 0)).toBe(true);
    expect(requeues).toContain(POLL_SECONDS * 1000);

    // Read through the API server: GET pods/https:<virt-handler on the VMI's node>:8443/proxy/metrics in kubevirt.
    const log = (await ctl.requests("a", { since: mark, resource: "pods" })).requests;
    const proxied = log.filter((q) => q.subresource === "proxy");
    expect(proxied.length).toBeGreaterThanOrEqual(2);
    for (const q of proxied) expect(q).toMatchObject({ verb: "get", namespace: "kubevirt", name: `https:${onNode}:8443`, code: 200 });
    // which pod runs on the node was looked up once (a cached list), not on every read
    expect(log.filter((q) => q.verb === "list")).toHaveLength(1);

    // the guest calms down: the copy converges, both sides succeed, the source no longer reports progress
    await dirty("a", 1024 * 1024);
    expect((await until(eb, prepare, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000, () => ea.reconcile(send))).step).toBe("Succeeded");
    const done = await until(ea, send, (s) => s.step === "Succeeded" || s.step === "Failed");
    expect(done.step).toBe("Succeeded");
    expect(done.progress).toBeUndefined();
  }, 120_000);

  it("a storage live migration reports growing processedBytes of its volume-update migration", async () => {
    w = await world({ kubevirt: HOLD });
    const ea = executor(w, "a", undefined, { progressPollSeconds: POLL_SECONDS });
    await waitFor("web-1 running", async () => (await vmi("a", "vms", "web-1"))?.status?.phase === "Running");
    await dirty("a", "no-converge");
    const d = await ea.describeVm(describeRequest("a", "vms", "web-1"));
    const here = { cluster: "a", namespace: "vms", name: "web-1" };
    const task: Task = { ...base("s1", 1, here, here), role: "storage", action: "migrate", storageMap: [{ source: "standard", target: "fast" }], sourceVolumes: d.sourceFacts.volumes };
    const seen = await growing(ea, task);
    const migrating = seen.filter((s) => s.step === "Migrating" && s.progress);
    expect(migrating.length).toBeGreaterThanOrEqual(2);
    expect(migrating.at(-1)!.progress!.processedBytes).toBeGreaterThan(migrating[0]!.progress!.processedBytes);
    expect(migrating.at(-1)!.progress!.totalBytes).toBeGreaterThanOrEqual(1 * GiB + 2 * GiB);
    expect(seen.some((s) => s.step === "Failed")).toBe(false);
    await dirty("a", 1024 * 1024);
    expect((await until(ea, task, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000)).step).toBe("Succeeded");
  }, 120_000);

  it("without access to pods/proxy (403) the migration goes on with no progress; the reason is logged once at debug", async () => {
    w = await world({ kubevirt: HOLD });
    const lines: string[] = [];
    const logger = pino({ level: "debug" }, { write: (l: string) => void lines.push(l) });
    const ea = executor(w, "a", undefined, { progressPollSeconds: 0.05, log: logger });
    const eb = executor(w, "b");
    const { prepare, send } = await readyToSend(ea, eb, "p2");
    await w.controlClient().injectError("a", { verb: "get", resource: "pods", subresource: "proxy", code: 403, message: 'pods "x" is forbidden: User "system:serviceaccount:ferry-system:ferry-agent" cannot get resource "pods/proxy" in API group "" in the namespace "kubevirt"', count: "unlimited" });
    await dirty("a", "no-converge");
    const seen: TaskStatus[] = [];
    await until(ea, send, (s) => {
      seen.push(s);
      return s.step === "Failed" || seen.filter((x) => x.step === "Migrating").length >= 8;
    });
    await new Promise((r) => setTimeout(r, 200)); // several poll intervals: more refused reads
    seen.push(await ea.reconcile(send));
    expect(seen.map((s) => s.step)).not.toContain("Failed");
    expect(seen.filter((s) => s.progress)).toEqual([]);
    expect(seen.every((s) => s.error === undefined)).toBe(true);
    const refused = lines.map((l) => JSON.parse(l) as { level: number; msg: string; fix?: string; err?: string }).filter((l) => l.msg.startsWith("cannot read live-migration progress"));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ level: 20, fix: expect.stringContaining("get on pods/proxy") as string, err: expect.stringContaining("403") as string });
    await dirty("a", 1024 * 1024);
    expect((await until(eb, prepare, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000, () => ea.reconcile(send))).step).toBe("Succeeded");
  }, 120_000);
});
