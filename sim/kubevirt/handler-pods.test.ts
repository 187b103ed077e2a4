// virt-handler pods (one per node, as virt-operator's DaemonSet runs them) and their metrics over
// the API server's pods/proxy, read over HTTPS with client-node as a client in the cluster would.
/* eslint-disable @typescript-eslint/no-explicit-any -- objects are free-form JSON */
import { type ApiException, CoreV1Api } from "@kubernetes/client-node";
import { afterEach, describe, expect, it } from "vitest";
import { expectApiError, kubeConfig } from "../testing.js";
import { type TestCluster, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: (TestCluster & { stop(): Promise<void> }) | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

const HANDLER = "kubevirt.io=virt-handler";
/** Timeouts out of reach: with a "no-converge" guest the copy stays in flight until the test ends it. */
const HOLD = { progressTimeout: 100_000, completionTimeoutPerGiB: 100_000, bandwidthPerMigration: "64Mi" };

const handlers = async (c: TestCluster) => (await c.k.list("Pod", "kubevirt", { labelSelector: HANDLER }));
const handlerOn = async (c: TestCluster, node: string) => (await handlers(c)).find((p) => p.spec.nodeName === node);

function proxy(c: TestCluster) {
  const core = kubeConfig(c.world.cluster(c.name).kubeconfig).makeApiClient(CoreV1Api);
  return (name: string, path = "metrics", namespace = "kubevirt") => core.connectGetNamespacedPodProxyWithPathWithHttpInfo({ name, namespace, path });
}

/** The samples of one metric for one VMI: value and timestamp. */
function samples(text: string, metric: string, vmi: string): { value: number; timestamp?: number }[] {
  const out: { value: number; timestamp?: number }[] = [];
  for (const line of text.split("\n")) {
    const m = new RegExp(`^${metric}\\{([^}]*)\\} (\\S+)(?: (\\d+))?$`).exec(line);
    if (m && m[1]!.includes(`name="${vmi}"`) && m[1]!.includes(`namespace="default"`)) out.push({ value: Number(m[2]), ...(m[3] ? { timestamp: Number(m[3]) } : {}) });
  }
  return out;
}

async function runningVM(c: TestCluster, name: string) {
  const spec = vmSpec(name, {
    memory: "2Gi",
    volumes: [{ name: "root", dataVolume: { name: `${name}-root` } }],
    dataVolumeTemplates: [{ metadata: { name: `${name}-root` }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "4Gi" } } } } }],
  });
  await c.k.create("VirtualMachine", "default", spec);
  await waitFor(`${name} running`, async () => (await c.k.get("VirtualMachine", "default", name))?.status?.printableStatus === "Running", 15_000);
}

describe("virt-handler pods", () => {
  it("runs one per node in the KubeVirt namespace, labelled and owned as virt-operator's DaemonSet makes them; follows the nodes", async () => {
    const c = (tc = await startTestCluster({ nodes: 2 }));
    const pods = await waitFor("two virt-handler pods", async () => {
      const ps = await handlers(c);
      return ps.length === 2 ? ps : undefined;
    });
    expect(pods.map((p) => p.spec.nodeName).sort()).toEqual(["c1-node-1", "c1-node-2"]);
    for (const p of pods) {
      expect(p.metadata.name).toMatch(/^virt-handler-[a-z0-9]{5}$/);
      expect(p.metadata.labels).toMatchObject({ "kubevirt.io": "virt-handler", "prometheus.kubevirt.io": "true", "app.kubernetes.io/managed-by": "virt-operator", "app.kubernetes.io/component": "kubevirt" });
      expect(p.metadata.ownerReferences).toEqual([expect.objectContaining({ apiVersion: "apps/v1", kind: "DaemonSet", name: "virt-handler", controller: true })]);
      expect(p.spec.containers[0]).toMatchObject({ name: "virt-handler", ports: [{ name: "metrics", containerPort: 8443, protocol: "TCP" }, { name: "vmstats", containerPort: 8187, protocol: "TCP" }] });
      expect(p.status.phase).toBe("Running");
      expect(p.status.podIP).toMatch(/^10\.\d+\.\d+\.\d+$/);
      expect(p.status.conditions.find((x: any) => x.type === "Ready")?.status).toBe("True");
    }
    // read-only, like the virt-launcher pods
    expect((await expectApiError(() => c.k.delete("Pod", "kubevirt", pods[0].metadata.name))).code).toBe(405);

    const versions = new Map(pods.map((p) => [p.metadata.name, p.metadata.resourceVersion]));
    await c.k.create("Node", undefined, { metadata: { name: "c1-node-3", labels: { "kubernetes.io/arch": "amd64" } }, status: { conditions: [{ type: "Ready", status: "True" }], allocatable: { memory: "64Gi", cpu: "16" } } });
    await waitFor("a pod on the new node", () => handlerOn(c, "c1-node-3"));
    // the DaemonSet pass that made it left the other pods untouched (no needless writes)
    for (const p of (await handlers(c)).filter((x) => versions.has(x.metadata.name))) expect(p.metadata.resourceVersion).toBe(versions.get(p.metadata.name));
    await c.k.delete("Node", undefined, "c1-node-1");
    await waitFor("the deleted node's pod gone", async () => (await handlers(c)).every((p) => p.spec.nodeName !== "c1-node-1"));
    expect((await handlers(c)).map((p) => p.spec.nodeName).sort()).toEqual(["c1-node-2", "c1-node-3"]);
  }, 60_000);

  it("serves the node's migration metrics over pods/proxy (https:<pod>:8443/proxy/metrics), as kube-apiserver relays them", async () => {
    const c = (tc = await startTestCluster({ nodes: 2, kubevirt: { migrations: HOLD } }));
    await runningVM(c, "vm1");
    const source = (await c.k.must("VirtualMachineInstance", "default", "vm1")).status.nodeName as string;
    await c.kv.setDirtyRate("default", "vm1", "no-converge");
    await c.k.create("VirtualMachineInstanceMigration", "default", { metadata: { name: "mig-vm1" }, spec: { vmiName: "vm1" } });
    await waitFor("migration Running", async () => (await c.k.get("VirtualMachineInstanceMigration", "default", "mig-vm1"))?.status?.phase === "Running", 15_000);
    const get = proxy(c);
    const onSource = (await handlerOn(c, source)).metadata.name as string;
    const other = (await handlers(c)).find((p) => p.spec.nodeName !== source).metadata.name as string;

    const first = await waitFor("processed bytes", async () => {
      const r = await get(`https:${onSource}:8443`);
      return samples(r.data, "kubevirt_vmi_migration_data_processed_bytes", "vm1")[0]?.value ? r : undefined;
    });
    expect(first.httpStatusCode).toBe(200);
    expect(first.headers["content-type"]).toBe("text/plain; version=0.0.4; charset=utf-8");
    expect(first.data).toContain("# TYPE kubevirt_vmi_migration_data_processed_bytes gauge");
    expect(first.data).toContain(`kubevirt_vmi_migration_data_bytes_total{name="vm1",namespace="default",node="${source}"} `);
    expect(first.data).not.toContain("kubevirt_sim_"); // a real virt-handler serves KubeVirt's series only
    const [p1] = samples(first.data, "kubevirt_vmi_migration_data_processed_bytes", "vm1");
    const [total] = samples(first.data, "kubevirt_vmi_migration_data_bytes_total", "vm1");
    const [remaining] = samples(first.data, "kubevirt_vmi_migration_data_remaining_bytes", "vm1");
    expect(total!.value).toBe(2 * 2 ** 30); // the guest's memory; the disk stays on its claim (no volume migration)
    expect(remaining!.value).toBeGreaterThan(0);
    expect(p1!.timestamp).toBeGreaterThan(Date.parse("2020-01-01"));
    expect(samples(first.data, "kubevirt_vmi_migration_memory_transfer_rate_bytes", "vm1")).toHaveLength(1);
    // the copy goes on: a later read shows more bytes processed
    const later = await waitFor("more bytes processed", async () => {
      const text = (await get(`https:${onSource}:8443`)).data;
      return (samples(text, "kubevirt_vmi_migration_data_processed_bytes", "vm1")[0]?.value ?? 0) > p1!.value ? text : undefined;
    });
    // libvirt's total is the guest's size, fixed while pages are sent again
    expect(samples(later, "kubevirt_vmi_migration_data_bytes_total", "vm1")[0]?.value).toBe(total!.value);
    // the other node's virt-handler has no source VMI of this migration
    const otherText = (await get(`https:${other}:8443`)).data;
    expect(otherText).toContain("# TYPE kubevirt_vmi_migration_data_processed_bytes gauge");
    expect(samples(otherText, "kubevirt_vmi_migration_data_processed_bytes", "vm1")).toEqual([]);

    // the forms kube-apiserver accepts: no scheme = http, which virt-handler's TLS port refuses (Go's 400)
    for (const id of [onSource, `${onSource}:8443`, `http:${onSource}:8443`]) {
      const e = await get(id).then(
        () => undefined,
        (x: unknown) => x as ApiException<unknown>,
      );
      expect([e?.code, e?.body]).toEqual([400, "Client sent an HTTP request to an HTTPS server.\n"]);
    }
    expect(await expectApiError(() => get(`https:${onSource}:8187`))).toMatchObject({ code: 503, reason: "ServiceUnavailable", message: expect.stringMatching(/^error trying to reach service: dial tcp 10\.[\d.]+:8187: connect: connection refused$/) });
    expect(await expectApiError(() => get(`https:${onSource}:8443`, "nothing"))).toMatchObject({ code: 404 });
    expect(await expectApiError(() => get("a:b:c:d"))).toMatchObject({ code: 400, reason: "BadRequest", message: 'invalid pod request "a:b:c:d"' });
    expect(await expectApiError(() => get("ftp:x:1"))).toMatchObject({ code: 400, message: 'invalid pod request "ftp:x:1"' });
    expect(await expectApiError(() => get("https:virt-handler-nope:8443"))).toMatchObject({ code: 404, reason: "NotFound", message: 'pods "virt-handler-nope" not found' });
    // nothing listens in a virt-launcher pod
    const launcher = ((await c.k.list("Pod", "default", { labelSelector: "kubevirt.io=virt-launcher" })))[0].metadata.name as string;
    expect(await expectApiError(() => get(`https:${launcher}:8443`, "metrics", "default"))).toMatchObject({ code: 503, reason: "ServiceUnavailable" });

    // the migration ends (aborted): its series go away
    await c.k.delete("VirtualMachineInstanceMigration", "default", "mig-vm1");
    await waitFor("series gone", async () => samples((await get(`https:${onSource}:8443`)).data, "kubevirt_vmi_migration_data_processed_bytes", "vm1").length === 0, 15_000);
  }, 60_000);
});
