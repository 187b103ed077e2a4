// The simulated KubeVirt under load, driven over HTTPS like the tests: how long a decentralized
// migration of a big VM takes against a small one at a high time scale (the fixed cost of TLS
// dials, phases and status round trips against the copy itself), and how fast tens of clusters
// with hundreds of VMs come up in one process against one cluster with the same VMs each.
import { performance } from "node:perf_hooks";
import { KubeClient, eventually } from "../sim/testing.js";
import { startWorld } from "../sim/world.js";
import { type TestCluster, startTestWorld, vmSpec, waitFor } from "../sim/kubevirt/testing.js";
import { type Bench, type Reporter, type Throughput, stats } from "./lib.js";

const SCALE = 10_000;

async function bundle(k: KubeClient): Promise<string> {
  return (await k.must("ConfigMap", "kubevirt", "kubevirt-ca")).data["ca-bundle"] as string;
}

const certs = (pem: string) => [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => m[0].replace(/\s+/g, ""));
const hasAll = (bundlePem: string, pem: string) => certs(pem).every((c) => certs(bundlePem).includes(c));

async function exchangeCAs(a: TestCluster, b: TestCluster): Promise<void> {
  const [pa, pb] = [await bundle(a.k), await bundle(b.k)];
  await a.k.patch("ConfigMap", "kubevirt", "kubevirt-external-ca", { data: { "ca-bundle": pb } });
  await b.k.patch("ConfigMap", "kubevirt", "kubevirt-external-ca", { data: { "ca-bundle": pa } });
  await waitFor("CA bundles merged", async () => hasAll(await bundle(a.k), pb) && hasAll(await bundle(b.k), pa));
}

/** Source VM on a, receiver on b (the user guide's steps 2–4), ready to migrate. */
async function prepare(a: TestCluster, b: TestCluster, name: string, memory: string): Promise<void> {
  const disk = { name: "root", dataVolume: { name: `${name}-root` } };
  const dvSpec = { source: { blank: {} }, storage: { resources: { requests: { storage: "1Gi" } } } };
  await a.k.create("VirtualMachine", "src", vmSpec(name, { memory, volumes: [disk], dataVolumeTemplates: [{ metadata: { name: `${name}-root` }, spec: dvSpec }] }));
  await b.k.create("DataVolume", "dst", { metadata: { name: `${name}-root`, annotations: { "cdi.kubevirt.io/storage.usePopulator": "true" } }, spec: dvSpec });
  await b.k.create("VirtualMachine", "dst", { ...vmSpec(name, { runStrategy: "WaitAsReceiver", memory, volumes: [disk] }), metadata: { name, annotations: { "kubevirt.io/restore-run-strategy": "Always" } } });
  await waitFor(`${name} source running`, async () => (await a.k.get("VirtualMachine", "src", name))?.status?.printableStatus === "Running", 30_000);
  await waitFor(`${name} receiver waiting`, async () => (await b.k.get("VirtualMachineInstance", "dst", name))?.status?.phase === "WaitingForSync", 30_000);
}

/** Real ms from creating the VMIM pair until the target VMIM Succeeded. */
async function migrate(a: TestCluster, b: TestCluster, name: string): Promise<number> {
  const t0 = performance.now();
  await b.k.create("VirtualMachineInstanceMigration", "dst", { metadata: { name: `${name}-in` }, spec: { vmiName: name, receive: { migrationID: `id-${name}` } } });
  const addr = (await b.k.must("KubeVirt", "kubevirt", "kubevirt")).status.synchronizationAddresses[0] as string;
  await a.k.create("VirtualMachineInstanceMigration", "src", { metadata: { name: `${name}-out` }, spec: { vmiName: name, sendTo: { migrationID: `id-${name}`, connectURL: addr } } });
  await waitFor(`${name} migrated`, async () => {
    const phase = (await b.k.get("VirtualMachineInstanceMigration", "dst", `${name}-in`))?.status?.phase;
    if (phase === "Failed") {
      const ms = (await a.k.get("VirtualMachineInstance", "src", name))?.status?.migrationState;
      const cause = (await a.kv.migrations()).find((m) => m.name === name && m.role === "source")?.abortCause;
      throw new Error(`${name}: migration failed: ${JSON.stringify(ms?.failureReason ?? ms)} (${cause ?? "cause unknown"})`);
    }
    return phase === "Succeeded";
  }, 60_000);
  return performance.now() - t0;
}

async function migrationSizes(opts: { quick: boolean }, out: Reporter): Promise<void> {
  const rounds = opts.quick ? 2 : 4;
  // A one-year CA: at this scale KubeVirt's 7-day CA is older than its overlap (20 %) after ~12 s
  // real, and from then on imported CAs drop out of kubevirt-ca at the next reconcile.
  const kubevirt = { selfSigned: { ca: { duration: "8760h" } } };
  const w = await startTestWorld({ a: { namespaces: ["default", "src"], kubevirt }, b: { namespaces: ["default", "dst"], kubevirt } }, { scale: SCALE });
  try {
    const a = w.cluster("a");
    const b = w.cluster("b");
    await exchangeCAs(a, b);
    const ms: Record<"small" | "big", number[]> = { small: [], big: [] };
    // alternate the sizes so both see the same machine load
    for (let r = 0; r < rounds; r++) {
      for (const [size, memory] of [["small", "1Gi"], ["big", "16Gi"]] as const) {
        const name = `${size}-${r}`;
        await prepare(a, b, name, memory);
        ms[size].push(await migrate(a, b, name));
      }
    }
    const tp = (xs: number[]): Throughput => {
      const p50 = stats(xs).p50;
      return { ops: xs.length, ms: xs.reduce((s, x) => s + x, 0), rate: 1000 / p50 };
    };
    out.section(`decentralized migration over TLS at time scale ${SCALE}, 1 Gbit/s link, 1 GiB disk (median of ${rounds})`);
    const base = tp(ms.small);
    const big = tp(ms.big);
    out.baseline("1 GiB VM: migrations per real second", base, "mig/s");
    out.measured("16 GiB VM: migrations per real second", big, base, "mig/s");
    out.note(`16 GiB takes ${(base.rate / big.rate).toFixed(2)}× the real time of 1 GiB, for ${((16 + 1) / (1 + 1)).toFixed(1)}× the data (memory + disk)`);
  } finally {
    await w.stop();
  }
}

/** Real ms from starting a world of `clusters` × `vms` seeded VMs until every VM lists as Running over HTTPS. */
async function fleetUp(clusters: number, vms: number): Promise<number> {
  const t0 = performance.now();
  const names = Array.from({ length: clusters }, (_, i) => `k${i}`);
  const world = await startWorld({
    clusters: names,
    timeScale: 1000,
    scenario: {
      defaults: {
        namespaces: ["default", "vms"],
        nodes: [{ count: 4, memory: "256Gi" }],
        storageClasses: [{ name: "standard", default: true, provisioner: "rbd.csi.sim.ferry.dev" }],
        kubevirt: {},
        vms: [{ name: "vm", namespace: "vms", count: vms, memory: "1Gi", disks: [{ name: "root", size: "2Gi" }] }],
      },
    },
  });
  try {
    const ks = names.map((n) => KubeClient.fromYaml(world.cluster(n).kubeconfig));
    const running = async (k: KubeClient) => (await k.list("VirtualMachine", "vms")).filter((v) => v.status?.printableStatus === "Running").length;
    await eventually(async () => (await Promise.all(ks.map(running))).every((n) => n === vms), 120_000, `${clusters * vms} VMs Running`);
    return performance.now() - t0;
  } finally {
    await world.stop();
  }
}

async function fleetScale(opts: { quick: boolean }, out: Reporter): Promise<void> {
  const [clusters, vms] = opts.quick ? [10, 20] : [20, 30];
  const rounds = opts.quick ? 1 : 3;
  const one: number[] = [];
  const many: number[] = [];
  for (let r = 0; r < rounds; r++) {
    one.push(await fleetUp(1, vms));
    many.push(await fleetUp(clusters, vms));
  }
  const tp = (xs: number[], n: number): Throughput => ({ ops: n * xs.length, ms: xs.reduce((s, x) => s + x, 0), rate: (n * 1000) / stats(xs).p50 });
  out.section(`VMs (with DataVolume and PVC) seeded until all list Running over HTTPS, time scale 1000 (median of ${rounds})`);
  const base = tp(one, vms);
  out.baseline(`1 cluster × ${vms} VMs`, base, "VM/s");
  out.measured(`${clusters} clusters × ${vms} VMs (${clusters * vms}) in one process`, tp(many, clusters * vms), base, "VM/s");
}

export const simkvBench: Bench = {
  name: "simkv",
  what: "simulated KubeVirt over HTTPS: a 16 GiB vs a 1 GiB decentralized migration; tens of clusters with hundreds of VMs vs one",
  async run(opts, out) {
    await migrationSizes(opts, out);
    await fleetScale(opts, out);
  },
};
