// Acceptance tests of the KubeVirt/CDI simulation, driven only over HTTPS with @kubernetes/client-node
// (and the sim's control API for fault injection), the way an admin follows the KubeVirt user guide.
/* eslint-disable @typescript-eslint/no-explicit-any -- Kubernetes objects are free-form JSON */
import { CoreV1Api, CustomObjectsApi, PatchStrategy, setHeaderOptions } from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { KubeClient, eventually, expectApiError, kubeConfig, statusOf } from "../testing.js";
import { type World, startWorld } from "../world.js";

const KV = { group: "kubevirt.io", version: "v1" };
const CDI = { group: "cdi.kubevirt.io", version: "v1beta1" };
const MERGE = setHeaderOptions("Content-Type", PatchStrategy.MergePatch);

const scenario = (kubevirt: Record<string, unknown> = {}) => ({
  defaults: {
    namespaces: ["default", "kubevirt", "vms"],
    nodes: [{ count: 2, memory: "64Gi" }],
    storageClasses: [
      { name: "rbd", provisioner: "rook-ceph.rbd.csi.ceph.com", default: true },
      { name: "local-wffc", provisioner: "kubernetes.io/no-provisioner", volumeBindingMode: "WaitForFirstConsumer" as const },
    ],
    kubevirt: { featureGates: ["DecentralizedLiveMigration"], workloadUpdateMethods: ["LiveMigrate" as const], ...kubevirt },
  },
  clusters: { src: {}, dst: {} },
});

class Admin {
  readonly co: CustomObjectsApi;
  readonly core: CoreV1Api;
  readonly k: KubeClient;
  constructor(world: World, name: string) {
    const kc = kubeConfig(world.cluster(name).kubeconfig);
    this.co = kc.makeApiClient(CustomObjectsApi);
    this.core = kc.makeApiClient(CoreV1Api);
    this.k = new KubeClient(kc);
  }

  private async getOr(fn: () => Promise<any>): Promise<any> {
    try {
      return await fn();
    } catch (e) {
      if (statusOf(e)?.code === 404) return undefined;
      throw e;
    }
  }

  vm = (ns: string, name: string) => this.getOr(() => this.co.getNamespacedCustomObject({ ...KV, namespace: ns, plural: "virtualmachines", name }));
  vmi = (ns: string, name: string) => this.getOr(() => this.co.getNamespacedCustomObject({ ...KV, namespace: ns, plural: "virtualmachineinstances", name }));
  vmim = (ns: string, name: string) => this.getOr(() => this.co.getNamespacedCustomObject({ ...KV, namespace: ns, plural: "virtualmachineinstancemigrations", name }));
  dv = (ns: string, name: string) => this.getOr(() => this.co.getNamespacedCustomObject({ ...CDI, namespace: ns, plural: "datavolumes", name }));
  kubevirt = () => this.co.getNamespacedCustomObject({ ...KV, namespace: "kubevirt", plural: "kubevirts", name: "kubevirt" });
  vmims = async (ns: string, labelSelector?: string) =>
    ((await this.co.listNamespacedCustomObject({ ...KV, namespace: ns, plural: "virtualmachineinstancemigrations", ...(labelSelector ? { labelSelector } : {}) }))).items as any[];

  create(plural: string, ns: string, body: object, group = KV) {
    return this.co.createNamespacedCustomObject({ ...group, namespace: ns, plural, body });
  }

  patchVM(ns: string, name: string, body: object) {
    return this.co.patchNamespacedCustomObject({ ...KV, namespace: ns, plural: "virtualmachines", name, body }, MERGE);
  }

  async caBundle(): Promise<string> {
    return (await this.core.readNamespacedConfigMap({ name: "kubevirt-ca", namespace: "kubevirt" })).data?.["ca-bundle"] ?? "";
  }

  async importCA(pem: string): Promise<void> {
    await this.core.patchNamespacedConfigMap({ name: "kubevirt-external-ca", namespace: "kubevirt", body: { data: { "ca-bundle": pem } } }, MERGE);
  }
}

/** Timeouts out of reach (~100 s real at scale 1000): with a "no-converge" guest a copy stays in flight until the test lets it go. */
const HOLD = { progressTimeout: 100_000, completionTimeoutPerGiB: 100_000 };

const certs = (pem: string) => [...pem.matchAll(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g)].map((m) => m[0].replace(/\s+/g, ""));

/** The user guide's CA exchange: each cluster's kubevirt-ca into the other's kubevirt-external-ca. */
async function exchangeCAs(a: Admin, b: Admin) {
  const [pa, pb] = [await a.caBundle(), await b.caBundle()];
  await a.importCA(pb);
  await b.importCA(pa);
  await eventually(async () => {
    const [ba, bb] = [certs(await a.caBundle()), certs(await b.caBundle())];
    return certs(pb).every((c) => ba.includes(c)) && certs(pa).every((c) => bb.includes(c));
  }, 10_000, "CA bundles merged");
}

function vmBody(name: string, opts: { runStrategy?: string; memory?: string; dv: string; template?: boolean; annotations?: Record<string, string> }) {
  return {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachine",
    metadata: { name, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      runStrategy: opts.runStrategy ?? "Always",
      ...(opts.template
        ? { dataVolumeTemplates: [{ metadata: { name: opts.dv }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "8Gi" } } } } }] }
        : {}),
      template: {
        metadata: { labels: { "kubevirt.io/vm": name } },
        spec: {
          domain: {
            devices: { disks: [{ name: "rootdisk", disk: { bus: "virtio" } }], interfaces: [{ name: "default", masquerade: {} }] },
            resources: { requests: { memory: opts.memory ?? "2Gi" } },
          },
          networks: [{ name: "default", pod: {} }],
          volumes: [{ name: "rootdisk", dataVolume: { name: opts.dv } }],
        },
      },
    },
  };
}

const blankDV = (name: string, size = "8Gi", storageClassName?: string) => ({
  apiVersion: "cdi.kubevirt.io/v1beta1",
  kind: "DataVolume",
  metadata: { name, annotations: { "cdi.kubevirt.io/storage.usePopulator": "true" } },
  spec: { source: { blank: {} }, storage: { ...(storageClassName ? { storageClassName } : {}), resources: { requests: { storage: size } } } },
});

/** Source VM on src; target DV and receiver VM on dst (user guide steps 2-4). */
async function prepare(src: Admin, dst: Admin, ns: string, name: string) {
  await src.create("virtualmachines", ns, vmBody(name, { dv: `${name}-root`, template: true }));
  await eventually(async () => (await src.vm(ns, name))?.status?.printableStatus === "Running", 15_000, "source VM Running");
  await dst.create("datavolumes", ns, blankDV(`${name}-root`), CDI);
  await eventually(async () => ["Succeeded", "WaitForFirstConsumer", "PendingPopulation"].includes((await dst.dv(ns, `${name}-root`))?.status?.phase), 10_000, "target DV");
  await dst.create("virtualmachines", ns, vmBody(name, { runStrategy: "WaitAsReceiver", dv: `${name}-root`, annotations: { "kubevirt.io/restore-run-strategy": "Always" } }));
  await eventually(async () => (await dst.vmi(ns, name))?.status?.phase === "WaitingForSync", 10_000, "receiver VMI WaitingForSync");
}

/** Receive VMIM, sync address from the KubeVirt CR, sendTo VMIM (user guide steps 5-7). */
async function migratePair(src: Admin, dst: Admin, ns: string, name: string, id: string) {
  await dst.create("virtualmachineinstancemigrations", ns, { apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstanceMigration", metadata: { name: `${name}-in` }, spec: { vmiName: name, receive: { migrationID: id } } });
  const address = ((await dst.kubevirt())).status.synchronizationAddresses[0] as string;
  await src.create("virtualmachineinstancemigrations", ns, {
    apiVersion: "kubevirt.io/v1",
    kind: "VirtualMachineInstanceMigration",
    metadata: { name: `${name}-out` },
    spec: { vmiName: name, sendTo: { migrationID: id, connectURL: address } },
  });
  return address;
}

describe("decentralized live migration over HTTPS, as the user guide does it", () => {
  let world: World;
  let src: Admin;
  let dst: Admin;
  beforeAll(async () => {
    world = await startWorld({ clusters: ["src", "dst"], timeScale: 1000, scenario: scenario({ migrations: { ...HOLD, bandwidthPerMigration: "256Mi" } }) });
    src = new Admin(world, "src");
    dst = new Admin(world, "dst");
  });
  afterAll(async () => {
    await world.stop();
  });

  it("without the CA exchange the migration is blocked with the TLS reason", async () => {
    await prepare(src, dst, "vms", "blocked");
    await migratePair(src, dst, "vms", "blocked", "id-blocked");
    const cond = await eventually(async () => ((await src.vmim("vms", "blocked-out"))?.status?.conditions ?? []).find((c: any) => c.type === "decentralizedMigrationBlocked"), 10_000, "blocked");
    expect(cond.message).toContain("x509: certificate signed by unknown authority");
    const target = await eventually(async () => ((await dst.vmim("vms", "blocked-in"))?.status?.conditions ?? []).find((c: any) => c.type === "decentralizedMigrationBlocked"), 10_000, "target waits");
    expect(target.message).toBe("waiting for incoming synchronization, unable to proceed");
    // the exchange unblocks it
    await exchangeCAs(src, dst);
    await eventually(async () => (await dst.vmim("vms", "blocked-in"))?.status?.phase === "Succeeded", 20_000, "target VMIM Succeeded");
  });

  it("migrates a VM: target runs with its run strategy restored, source Halted without a VMI", async () => {
    await exchangeCAs(src, dst);
    await prepare(src, dst, "vms", "web");
    // The source VMIM is garbage-collected with its VMI right after it succeeds: a watch from before
    // its creation sees every phase it went through.
    const out = await src.k.phases("VirtualMachineInstanceMigration", "vms", "web-out");
    const address = await migratePair(src, dst, "vms", "web", "id-web");
    const tgt = await eventually(async () => {
      const m = await dst.vmim("vms", "web-in");
      return m?.status?.phase === "Succeeded" && m.status.migrationState ? m : undefined;
    }, 20_000, "target VMIM Succeeded");
    expect(tgt.status.synchronizationAddresses).toEqual([address]);
    expect(tgt.status.migrationState.completed).toBe(true);
    expect(tgt.metadata.labels["kubevirt.io/vmi-name"]).toBe("web");
    const vmi = await eventually(async () => {
      const o = await dst.vmi("vms", "web");
      return o?.status?.phase === "Running" ? o : undefined;
    }, 10_000, "target VMI Running");
    expect(vmi.metadata.annotations?.["kubevirt.io/create-migration-target"]).toBeUndefined();
    await eventually(async () => (await dst.vm("vms", "web"))?.spec?.runStrategy === "Always", 10_000, "run strategy restored");
    await eventually(async () => (await dst.vm("vms", "web"))?.status?.printableStatus === "Running", 10_000, "target VM Running");
    await eventually(async () => (await src.vm("vms", "web"))?.spec?.runStrategy === "Halted", 10_000, "source Halted");
    await eventually(async () => !(await src.vmi("vms", "web")), 10_000, "source VMI gone");
    await eventually(() => out.phases.includes("Succeeded"), 10_000, "source VMIM Succeeded (watched)");
    out.stop();
    expect(out.phases).not.toContain("Failed");
    expect(out.phases[out.phases.length - 1]).toBe("Succeeded");
    await eventually(async () => (await src.vm("vms", "web"))?.status?.printableStatus === "Stopped", 10_000, "source VM Stopped");
  });

  it("cancelling by deleting both VMIMs leaves the source running and the target removable", async () => {
    await exchangeCAs(src, dst);
    await prepare(src, dst, "vms", "cancel");
    await world.controlClient().kubevirt("src").setDirtyRate("vms", "cancel", "no-converge"); // holds the copy in flight
    await migratePair(src, dst, "vms", "cancel", "id-cancel");
    await eventually(async () => (await src.vmim("vms", "cancel-out"))?.status?.phase === "Running", 10_000, "copy running");
    await src.co.deleteNamespacedCustomObject({ ...KV, namespace: "vms", plural: "virtualmachineinstancemigrations", name: "cancel-out" });
    // the source's CancelMigration may have removed it already
    await dst.co.deleteNamespacedCustomObject({ ...KV, namespace: "vms", plural: "virtualmachineinstancemigrations", name: "cancel-in" }).catch((e: unknown) => {
      if (statusOf(e)?.code !== 404) throw e;
    });
    await eventually(async () => !(await src.vmim("vms", "cancel-out")) && !(await dst.vmim("vms", "cancel-in")), 10_000, "VMIMs gone");
    expect((await src.vmi("vms", "cancel")).status.phase).toBe("Running");
    expect((await src.vm("vms", "cancel")).spec.runStrategy).toBe("Always");
    await eventually(async () => (await dst.vmi("vms", "cancel"))?.status?.phase === "WaitingForSync", 10_000, "target waits again");
    await dst.co.deleteNamespacedCustomObject({ ...KV, namespace: "vms", plural: "virtualmachines", name: "cancel" });
    await eventually(async () => !(await dst.vm("vms", "cancel")) && !(await dst.vmi("vms", "cancel")), 10_000, "target cleaned up");
  });

  it("refuses WaitAsReceiver and decentralized VMIMs where the gate is off, with KubeVirt's messages", async () => {
    await dst.co.patchNamespacedCustomObject({ ...KV, namespace: "kubevirt", plural: "kubevirts", name: "kubevirt", body: { spec: { configuration: { developerConfiguration: { featureGates: [] } } } } }, MERGE);
    try {
      const err = await expectApiError(() => dst.create("virtualmachines", "default", vmBody("nogate", { runStrategy: "WaitAsReceiver", dv: "x" })));
      expect(err.code).toBe(422);
      expect(err.message).toContain("Invalid RunStrategy (WaitAsReceiver), DecentralizedLiveMigration feature gate is not enabled in kubevirt resource");
      // "web" runs on dst after the earlier migration
      const vmim = await expectApiError(() =>
        dst.create("virtualmachineinstancemigrations", "vms", { apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstanceMigration", metadata: { name: "again" }, spec: { vmiName: "web", receive: { migrationID: "x" } } }),
      );
      expect(vmim).toMatchObject({ code: 422, message: 'admission webhook "migration-create-validator.kubevirt.io" denied the request: DecentralizedLiveMigration feature gate is not enabled in kubevirt resource' });
      await eventually(async () => !((await dst.kubevirt())).status.synchronizationAddresses, 10_000, "addresses cleared");
    } finally {
      await dst.co.patchNamespacedCustomObject(
        { ...KV, namespace: "kubevirt", plural: "kubevirts", name: "kubevirt", body: { spec: { configuration: { developerConfiguration: { featureGates: ["DecentralizedLiveMigration"] } } } } },
        MERGE,
      );
      await eventually(async () => ((await dst.kubevirt())).status.synchronizationAddresses?.length, 10_000, "addresses back");
    }
  });
});

describe("operator behaviour and limits over HTTPS", () => {
  let world: World;
  let src: Admin;
  let dst: Admin;
  beforeAll(async () => {
    world = await startWorld({
      clusters: ["src", "dst"],
      timeScale: 100,
      scenario: scenario({ migrations: { parallelMigrationsPerCluster: 1, progressTimeout: 20, bandwidthPerMigration: "1Gi" } }),
    });
    src = new Admin(world, "src");
    dst = new Admin(world, "dst");
    // a 20-minute CA: the overlap is 4 simulated minutes (2.4 s here)
    await src.co.patchNamespacedCustomObject(
      { ...KV, namespace: "kubevirt", plural: "kubevirts", name: "kubevirt", body: { spec: { certificateRotateStrategy: { selfSigned: { ca: { duration: "20m" } } } } } },
      MERGE,
    );
  });
  afterAll(async () => {
    await world.stop();
  });

  it("CA rotation makes imported CAs drop out of kubevirt-ca; they must be imported again", async () => {
    const has = async (want: string[]) => {
      const have = certs(await src.caBundle());
      return want.every((c) => have.includes(c));
    };
    // imported while the cluster's first CA (7 days, overlap 33.6 h) is young: it stays
    const peerPem = await dst.caBundle();
    const peer = certs(peerPem);
    await src.importCA(peerPem);
    await eventually(() => has(peer), 10_000, "imported");
    // a rotation to the 20-minute CA set in beforeAll (overlap 4 simulated minutes = 2.4 s here):
    // once the new CA is older than the overlap, the imported and the old CA are gone
    await world.controlClient().kubevirt("src").rotateCA();
    await eventually(async () => certs(await src.caBundle()).length === 1, 20_000, "imported and old CA dropped");
    expect(await has(peer)).toBe(false);
    // Import again. MergeCABundle keeps imports only while the local CA is younger than the overlap,
    // so an import right after a rotation sticks (into an older CA it lasts one reconcile).
    await world.controlClient().kubevirt("src").rotateCA();
    await src.importCA(peerPem);
    await eventually(() => has(peer), 10_000, "imported again");
  });

  it("queues VMIMs beyond parallelMigrationsPerCluster and fails a non-converging one with progressTimeout", async () => {
    for (const n of ["q1", "q2"]) await src.create("virtualmachines", "vms", vmBody(n, { dv: `${n}-root`, template: true, memory: "4Gi" }));
    await eventually(async () => (await src.vm("vms", "q1"))?.status?.printableStatus === "Running" && (await src.vm("vms", "q2"))?.status?.printableStatus === "Running", 20_000, "VMs running");
    await world.controlClient().kubevirt("src").setDirtyRate("vms", "q1", "no-converge");
    for (const n of ["q1", "q2"]) {
      await src.create("virtualmachineinstancemigrations", "vms", { apiVersion: "kubevirt.io/v1", kind: "VirtualMachineInstanceMigration", metadata: { name: `m-${n}` }, spec: { vmiName: n } });
    }
    await eventually(async () => (await src.vmim("vms", "m-q1"))?.status?.phase === "Running", 10_000, "first running");
    expect((await src.vmim("vms", "m-q2")).status.phase).toBe("Pending");
    const failed = await eventually(async () => {
      const m = await src.vmim("vms", "m-q1");
      return m?.status?.phase === "Failed" && m.status.migrationState?.endTimestamp ? m : undefined;
    }, 20_000, "non-converging migration failed");
    expect(failed.status.migrationState).toMatchObject({ failed: true, failureReason: "Live migration has been aborted", abortStatus: "Succeeded" });
    await eventually(async () => (await src.vmim("vms", "m-q2"))?.status?.phase === "Succeeded", 20_000, "queued one ran");
  });
});

describe("same-cluster volume migration over HTTPS", () => {
  let world: World;
  let a: Admin;
  beforeAll(async () => {
    world = await startWorld({ clusters: ["one"], timeScale: 1000, scenario: { ...scenario({ migrations: { ...HOLD, bandwidthPerMigration: "16Mi" } }), clusters: { one: {} } } });
    a = new Admin(world, "one");
  });
  afterAll(async () => {
    await world.stop();
  });

  async function vmOn(name: string, runStrategy = "Always") {
    await a.create("datavolumes", "vms", blankDV(`${name}-src`, "2Gi"), CDI);
    await a.create("datavolumes", "vms", blankDV(`${name}-dst`, "2Gi"), CDI);
    await a.create("virtualmachines", "vms", vmBody(name, { dv: `${name}-src` }));
    await eventually(async () => (await a.vm("vms", name))?.status?.printableStatus === "Running", 15_000, `${name} running`);
    // e.g. Manual: a VM its owner started and will not have restarted behind its back
    if (runStrategy !== "Always") await a.patchVM("vms", name, { spec: { runStrategy } });
    await eventually(async () => (await a.dv("vms", `${name}-dst`))?.status?.phase === "Succeeded", 10_000, "destination ready");
  }
  const setVolume = (name: string, dv: string, strategy: string | null = "Migration") =>
    a.patchVM("vms", name, { spec: { updateVolumesStrategy: strategy, template: { spec: { volumes: [{ name: "rootdisk", dataVolume: { name: dv } }] } } } });

  it("migrates the volume by hand: workload-update VMIM, VMI on the destination", async () => {
    await vmOn("vol");
    await world.controlClient().kubevirt("one").setDirtyRate("vms", "vol", 1024 * 1024);
    await setVolume("vol", "vol-dst");
    const m = await eventually(async () => (await a.vmims("vms", "kubevirt.io/volume-update-migration=vol"))[0], 10_000, "workload-update VMIM");
    expect(m.metadata.name).toMatch(/^kubevirt-workload-update-/);
    await eventually(async () => (await a.vmims("vms", "kubevirt.io/volume-update-migration=vol")).some((x) => x.status?.migrationState?.completed && !x.status.migrationState.failed), 20_000, "VMIM completed");
    const vmi = await eventually(async () => {
      const o = await a.vmi("vms", "vol");
      return o && !o.status.migratedVolumes && o.spec.volumes[0].dataVolume.name === "vol-dst" ? o : undefined;
    }, 10_000, "VMI on destination");
    expect(vmi.status.conditions.some((c: any) => c.type === "VolumesChange")).toBe(false);
  });

  it("cancels by an exact revert", async () => {
    await vmOn("rev");
    await world.controlClient().kubevirt("one").setDirtyRate("vms", "rev", "no-converge"); // in flight until reverted
    await setVolume("rev", "rev-dst");
    await eventually(async () => (await a.vmims("vms", "kubevirt.io/volume-update-migration=rev")).some((x) => x.status?.phase === "Running"), 10_000, "copy running");
    await setVolume("rev", "rev-src");
    const cond = await eventually(async () => ((await a.vmi("vms", "rev"))?.status?.conditions ?? []).find((c: any) => c.type === "VolumesChange" && c.status === "False"), 10_000, "cancelled");
    expect(cond.reason).toBe("VolumesChangeCancellation");
    await eventually(async () => (await a.vmims("vms", "kubevirt.io/volume-update-migration=rev")).length === 0, 10_000, "VMIM removed");
    expect((await a.vmi("vms", "rev")).spec.volumes[0].dataVolume.name).toBe("rev-src");
  });

  it("sets ManualRecoveryRequired after killVMI during the copy", async () => {
    await vmOn("mr", "Manual");
    await world.controlClient().kubevirt("one").setDirtyRate("vms", "mr", "no-converge"); // in flight until killed
    await setVolume("mr", "mr-dst");
    await eventually(async () => (await a.vmims("vms", "kubevirt.io/volume-update-migration=mr")).some((x) => x.status?.phase === "Running"), 10_000, "copy running");
    await world.controlClient().kubevirt("one").killVMI("vms", "mr");
    const cond = await eventually(async () => ((await a.vm("vms", "mr"))?.status?.conditions ?? []).find((c: any) => c.type === "ManualRecoveryRequired"), 10_000, "ManualRecoveryRequired");
    expect(cond).toMatchObject({ status: "True", reason: "VMI was removed or was final during the volume migration" });
    await setVolume("mr", "mr-src");
    await eventually(async () => !((await a.vm("vms", "mr"))?.status?.conditions ?? []).some((c: any) => c.type === "ManualRecoveryRequired"), 10_000, "cleared");
  });
});
