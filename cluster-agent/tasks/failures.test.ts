// Failures on simulated clusters: KubeVirt failing the migration, the API server refusing or
// failing a request (sim faults), and trust that drops out and is pushed again.
import { afterEach, describe, expect, it } from "vitest";
import type { Task } from "../../proto/bus/index.js";
import type { World } from "../../sim/world.js";
import type { KubeObj, VirtualMachineInstance } from "../core/kube.js";
import { base, caBundle, describeRequest, executor, kube, until, waitFor, world } from "./testing.js";

let w: World | undefined;
afterEach(async () => {
  await w?.stop();
  w = undefined;
});

const running = async (cluster: string, name: string) =>
  (await kube(w!, cluster).get<VirtualMachineInstance>({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstance", namespace: "vms", name }))?.status?.phase === "Running";

async function prepareTask(uid: string): Promise<Extract<Task, { action: "prepare" }>> {
  const d = await executor(w!, "a").describeVm(describeRequest("a", "vms", "web-1"));
  return { ...base(uid), role: "target", action: "prepare", storageMap: [], networkMap: [], sourceVm: { manifest: d.vm, dependencies: d.dependencies, volumes: d.sourceFacts.volumes } };
}

async function control(path: string, body: unknown) {
  const res = await fetch(`${w!.control.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${w!.control.token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
}

async function trustBoth() {
  const [pa, pb] = [await caBundle(w!, "a"), await caBundle(w!, "b")];
  const [ea, eb] = [executor(w!, "a"), executor(w!, "b")];
  await waitFor("trust", async () => (await ea.reconcileTrust([{ peer: "b", caBundle: pb }]))[0]?.present && (await eb.reconcileTrust([{ peer: "a", caBundle: pa }]))[0]?.present);
}

describe("failures", () => {
  it("a migration KubeVirt aborts (guest never converges) is Failed on both sides with KubeVirt's reason; the source keeps running", async () => {
    w = await world({ kubevirt: { migrations: { progressTimeout: 30 } } });
    const [ea, eb] = [executor(w, "a"), executor(w, "b")];
    await waitFor("source running", () => running("a", "web-1"));
    await trustBoth();
    await control("/sim/v1/clusters/a/kubevirt/dirty-rate", { namespace: "vms", vmi: "web-1", rate: "no-converge" });
    const prepare = await prepareTask("f1");
    const ready = await until(eb, prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed");
    const send: Task = { ...base("f1"), role: "source", action: "send", connectUrl: ready.syncAddress! };
    const target = await until(eb, prepare, (s) => s.step === "Failed" || s.step === "Succeeded", 60_000, () => ea.reconcile(send));
    expect(target.step).toBe("Failed");
    expect(target.error?.message).toContain("Live migration has been aborted");
    expect(target.vmim?.phase).toBe("Failed");
    const source = await until(ea, send, (s) => s.step === "Failed" || s.step === "Succeeded", 60_000);
    expect(source.step).toBe("Failed");
    expect(source.error?.code).toBe("MigrationFailed");
    expect(await running("a", "web-1")).toBe(true);

    // The user guide's retry: abort both sides (VMIMs and the receiver go), then attempt 2 succeeds.
    expect((await until(ea, { ...base("f1"), role: "source", action: "abort" }, (s) => s.step === "Aborted")).step).toBe("Aborted");
    expect((await until(eb, { ...base("f1"), role: "target", action: "abort" }, (s) => s.step === "Aborted")).step).toBe("Aborted");
    await control("/sim/v1/clusters/a/kubevirt/dirty-rate", { namespace: "vms", vmi: "web-1", rate: 1024 * 1024 });
    const prepare2 = { ...prepare, ...base("f1", 2) };
    const ready2 = await until(eb, prepare2, (s) => s.step === "ReceiverReady" || s.step === "Failed");
    expect(ready2.step).toBe("ReceiverReady");
    const send2: Task = { ...base("f1", 2), role: "source", action: "send", connectUrl: ready2.syncAddress! };
    const done2 = await until(eb, prepare2, (s) => s.step === "Succeeded" || s.step === "Failed", 60_000, () => ea.reconcile(send2));
    expect(done2.step).toBe("Succeeded");
    expect(done2.attempt).toBe(2);
    // cleanup of earlier attempts keeps the moved VM; finalize delete removes the source VM
    expect((await until(eb, { ...base("f1", 2), role: "target", action: "cleanup" }, (s) => s.step === "CleanedUp" || s.step === "Failed")).step).toBe("CleanedUp");
    expect(await running("b", "web-1")).toBe(true);
    await until(ea, send2, (s) => s.step === "Succeeded");
    expect((await until(ea, { ...base("f1", 2), role: "source", action: "finalize", sourcePolicy: "delete" }, (s) => s.step === "Finalized" || s.step === "Failed")).step).toBe("Finalized");
    expect(await kube(w, "a").get({ apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", namespace: "vms", name: "web-1" })).toBeUndefined();
  }, 120_000);

  it("a request the API server refuses fails the task with the API's words; a transient error keeps the step and retries", async () => {
    w = await world();
    const eb = executor(w, "b");
    await waitFor("source running", () => running("a", "web-1"));
    const ctl = w.controlClient();
    await ctl.injectError("b", { verb: "create", resource: "virtualmachines", code: 503, count: 1 });
    const prepare = await prepareTask("f2");
    const transient = await until(eb, prepare, (s) => s.error !== undefined || s.step === "Failed" || s.step === "ReceiverReady");
    expect(transient.step).toBe("CreatingReceiver");
    expect(transient.error?.code).toBe("KubernetesApiUnavailable");
    expect(transient.error?.message).toContain("VirtualMachine vms/web-1");
    await ctl.injectError("b", { verb: "create", resource: "virtualmachineinstancemigrations", code: 403, message: "migrations are forbidden here", count: "unlimited" });
    const refused = await until(eb, prepare, (s) => s.step === "Failed" || s.step === "ReceiverReady");
    expect(refused.step).toBe("Failed");
    expect(refused.error).toMatchObject({ code: "KubernetesApiRefused" });
    expect(refused.error?.message).toContain("migrations are forbidden here");
    await ctl.clearFaults("b");
    expect((await until(eb, prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed")).step).toBe("ReceiverReady");
  }, 120_000);

  it("without trust the VMIMs report decentralizedMigrationBlocked with the TLS error", async () => {
    w = await world();
    const [ea, eb] = [executor(w, "a"), executor(w, "b")];
    await waitFor("source running", () => running("a", "web-1"));
    const prepare = await prepareTask("f4");
    const ready = await until(eb, prepare, (s) => s.step === "ReceiverReady" || s.step === "Failed");
    const send: Task = { ...base("f4"), role: "source", action: "send", connectUrl: ready.syncAddress! };
    const blocked = await until(ea, send, (s) => s.vmim?.conditions.some((c) => c.type === "decentralizedMigrationBlocked") === true);
    expect(blocked.step).toBe("Sending");
    expect(blocked.vmim?.conditions.find((c) => c.type === "decentralizedMigrationBlocked")?.message).toContain("x509");
  }, 60_000);

  it("a deadline that passes before completion reports DeadlineExceeded", async () => {
    w = await world();
    await waitFor("source running", () => running("a", "web-1"));
    const prepare = { ...(await prepareTask("f3")), deadline: new Date(Date.now() - 1000).toISOString() };
    const s = await executor(w, "b").reconcile(prepare);
    expect(s.step).toBe("Failed");
    expect(s.error?.code).toBe("DeadlineExceeded");
  }, 60_000);

  it("trust: writes kubevirt-external-ca (never the Secret), confirms kubevirt-ca, and pushes again when the CA drops out", async () => {
    w = await world();
    const ea = executor(w, "a");
    const pb = await caBundle(w, "b");
    const ctl = w.controlClient();
    const mark = (await ctl.requests("a", { limit: 1 })).last;
    const first = await ea.reconcileTrust([{ peer: "b", caBundle: pb }]);
    expect(first[0]).toMatchObject({ peer: "b", present: false });
    expect(first[0]?.lastPushAt).toBeDefined();
    const confirmed = await waitFor("present", async () => (await ea.reconcileTrust([{ peer: "b", caBundle: pb }]))[0]?.present && true);
    expect(confirmed).toBe(true);
    const writes = (await ctl.requests("a", { since: mark })).requests.filter((q) => !["get", "list", "watch"].includes(q.verb));
    expect(writes.map((q) => `${q.verb} ${q.resource} ${q.name}`)).toEqual(["patch configmaps kubevirt-external-ca"]);
    expect((await ctl.requests("a", { since: mark })).requests.filter((q) => q.resource === "secrets")).toEqual([]);
    // kubevirt-ca loses the peer (as after a local CA rotation): the next pass pushes again.
    const own = (await kube(w, "a").get<KubeObj & { data: Record<string, string> }>({ apiVersion: "v1", kind: "ConfigMap", namespace: "kubevirt", name: "kubevirt-ca" }))!;
    const onlyOwn = own.data["ca-bundle"]!.split(/(?=-----BEGIN CERTIFICATE-----)/).filter((b) => !pb.includes(b.trim()));
    await kube(w, "a").mergePatch({ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "kubevirt-ca", namespace: "kubevirt" }, data: { "ca-bundle": onlyOwn.join("") } });
    const dropped = await ea.reconcileTrust([{ peer: "b", caBundle: pb }]);
    expect(dropped[0]?.present).toBe(false);
    expect(await waitFor("present again", async () => (await ea.reconcileTrust([{ peer: "b", caBundle: pb }]))[0]?.present && true)).toBe(true);
  }, 120_000);
});
