import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "../apiserver/errors.js";
import { R } from "../apiserver/resources.js";
import { type TestCluster, get, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: TestCluster | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error("expected an ApiError");
}

describe("VirtualMachine controller", () => {
  it("runs an Always VM: VMI scheduled onto a node, Running with interfaces and conditions", async () => {
    tc = await startTestCluster();
    const { cluster } = tc;
    cluster.store.create(R.VirtualMachine, { ...vmSpec("vm1"), metadata: { name: "vm1", namespace: "default" } });
    const vm = await waitFor("vm Running", () => {
      const o = get(cluster, "VirtualMachine", "default", "vm1");
      return o?.status?.printableStatus === "Running" && o.status.ready ? o : undefined;
    });
    expect(vm.metadata.finalizers).toContain("kubevirt.io/virtualMachineControllerFinalize");
    expect(vm.spec.template.spec.domain.firmware.uuid).toMatch(/^[0-9a-f-]{36}$/);
    const vmi = get(cluster, "VirtualMachineInstance", "default", "vm1")!;
    expect(vmi.status.phase).toBe("Running");
    expect(vmi.status.nodeName).toMatch(/^c1-node-/);
    expect(vmi.metadata.labels?.["kubevirt.io/nodeName"]).toBe(vmi.status.nodeName);
    expect(vmi.status.interfaces[0]).toMatchObject({ name: "default", mac: expect.stringMatching(/^52:54:00:/), ipAddress: expect.any(String) });
    const types = vmi.status.conditions.map((c: { type: string }) => c.type);
    expect(types).toEqual(expect.arrayContaining(["Ready", "LiveMigratable", "StorageLiveMigratable"]));
    expect(vmi.status.phaseTransitionTimestamps.map((t: { phase: string }) => t.phase)).toEqual(["Pending", "Scheduling", "Scheduled", "Running"]);
    expect(vm.status.conditions.find((c: { type: string }) => c.type === "Ready").status).toBe("True");
  });

  it("stops a VM set to Halted and reports Stopped", async () => {
    tc = await startTestCluster();
    const { cluster } = tc;
    cluster.store.create(R.VirtualMachine, { ...vmSpec("vm1"), metadata: { name: "vm1", namespace: "default" } });
    await waitFor("running", () => get(cluster, "VirtualMachine", "default", "vm1")?.status?.printableStatus === "Running");
    cluster.store.modify(R.VirtualMachine, "default", "vm1", (o) => (o.spec.runStrategy = "Halted"));
    await waitFor("stopped", () => get(cluster, "VirtualMachine", "default", "vm1")?.status?.printableStatus === "Stopped" && !get(cluster, "VirtualMachineInstance", "default", "vm1"));
  });

  it("refuses WaitAsReceiver without the DecentralizedLiveMigration gate, with KubeVirt's message", async () => {
    tc = await startTestCluster({ kubevirt: { featureGates: [] } });
    const err = apiError(() =>
      tc!.cluster.store.create(R.VirtualMachine, { ...vmSpec("r", { runStrategy: "WaitAsReceiver" }), metadata: { name: "r", namespace: "default" } }),
    );
    expect(err.code).toBe(422);
    expect(err.message).toBe(
      'admission webhook "virtualmachine-validator.kubevirt.io" denied the request: Invalid RunStrategy (WaitAsReceiver), DecentralizedLiveMigration feature gate is not enabled in kubevirt resource',
    );
    const bad = apiError(() => tc!.cluster.store.create(R.VirtualMachine, { ...vmSpec("x", { runStrategy: "Sometimes" }), metadata: { name: "x", namespace: "default" } }));
    expect(bad.message).toContain("Invalid RunStrategy (Sometimes)");
  });

  it("honours disabledFeatureGates for a version where the gate is Beta", async () => {
    tc = await startTestCluster({ kubevirt: { featureGates: [], disabledFeatureGates: ["DecentralizedLiveMigration"] }, kubevirtOptions: { version: "v1.10.0" } });
    expect(() => tc!.cluster.store.create(R.VirtualMachine, { ...vmSpec("r", { runStrategy: "WaitAsReceiver" }), metadata: { name: "r", namespace: "default" } })).toThrow(/feature gate is not enabled/);
  });

  it("creates a receiver VMI in WaitingForSync for WaitAsReceiver", async () => {
    tc = await startTestCluster();
    const { cluster } = tc;
    cluster.store.create(R.VirtualMachine, { ...vmSpec("r", { runStrategy: "WaitAsReceiver", annotations: { "kubevirt.io/restore-run-strategy": "Always" } }), metadata: { name: "r", namespace: "default", annotations: { "kubevirt.io/restore-run-strategy": "Always" } } });
    const vmi = await waitFor("receiver VMI", () => {
      const o = get(cluster, "VirtualMachineInstance", "default", "r");
      return o?.status?.phase === "WaitingForSync" ? o : undefined;
    });
    expect(vmi.metadata.annotations?.["kubevirt.io/create-migration-target"]).toBe("true");
    await waitFor("WaitingForReceiver", () => get(cluster, "VirtualMachine", "default", "r")?.status?.printableStatus === "WaitingForReceiver");
  });

  it("validates volume and disk references as the webhook does", async () => {
    tc = await startTestCluster();
    const spec = vmSpec("v");
    spec.spec.template.spec.domain.devices.disks.push({ name: "missing", disk: { bus: "virtio" } });
    const err = apiError(() => tc!.cluster.store.create(R.VirtualMachine, { ...spec, metadata: { name: "v", namespace: "default" } }));
    expect(err.message).toContain("spec.template.spec.domain.devices.disks[1].Name 'missing' not found.");
    const dv = vmSpec("d", { volumes: [{ name: "root", dataVolume: { name: "other" } }], dataVolumeTemplates: [{ metadata: { name: "d-root" }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "1Gi" } } } } }] });
    expect(() => tc!.cluster.store.create(R.VirtualMachine, { ...dv, metadata: { name: "d", namespace: "default" } })).toThrow(
      "DataVolumeTemplate entry spec.dataVolumeTemplate[0] must be referenced in the VMI template's 'volumes' list",
    );
  });

  it("provisions dataVolumeTemplates (blank, CSI storage) before starting the VM", async () => {
    tc = await startTestCluster();
    const { cluster } = tc;
    const spec = vmSpec("dvm", {
      volumes: [{ name: "root", dataVolume: { name: "dvm-root" } }],
      dataVolumeTemplates: [{ metadata: { name: "dvm-root" }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "10Gi" } } } } }],
    });
    cluster.store.create(R.VirtualMachine, { ...spec, metadata: { name: "dvm", namespace: "default" } });
    await waitFor("running", () => get(cluster, "VirtualMachine", "default", "dvm")?.status?.printableStatus === "Running", 15_000);
    const dv = get(cluster, "DataVolume", "default", "dvm-root")!;
    expect(dv.status.phase).toBe("Succeeded");
    expect(dv.metadata.ownerReferences?.[0]?.kind).toBe("VirtualMachine");
    const pvc = get(cluster, "PersistentVolumeClaim", "default", "dvm-root")!;
    expect(pvc.spec.accessModes).toEqual(["ReadWriteMany"]);
    expect(pvc.spec.volumeMode).toBe("Block");
    expect(pvc.spec.dataSourceRef.kind).toBe("VolumeImportSource");
    expect(pvc.status.capacity.storage).toBe("10Gi");
    const vmi = get(cluster, "VirtualMachineInstance", "default", "dvm")!;
    expect(vmi.status.volumeStatus[0].persistentVolumeClaimInfo.claimName).toBe("dvm-root");
    expect(vmi.status.conditions.find((c: { type: string }) => c.type === "LiveMigratable").status).toBe("True");
  });

  it("follows Manual, Once and RerunOnFailure", async () => {
    tc = await startTestCluster();
    const { cluster } = tc;
    for (const [name, rs] of [["man", "Manual"], ["once", "Once"], ["rerun", "RerunOnFailure"]] as const) {
      cluster.store.create(R.VirtualMachine, { ...vmSpec(name, { runStrategy: rs }), metadata: { name, namespace: "default" } });
    }
    await waitFor("once and rerun running", () => ["once", "rerun"].every((n) => get(cluster, "VirtualMachine", "default", n)?.status?.printableStatus === "Running"));
    await waitFor("manual stopped", () => get(cluster, "VirtualMachine", "default", "man")?.status?.printableStatus === "Stopped");
    expect(get(cluster, "VirtualMachineInstance", "default", "man")).toBeUndefined();
    const first = get(cluster, "VirtualMachineInstance", "default", "rerun")!.metadata.uid;
    tc.kv.killVMI("default", "rerun");
    await waitFor("rerun restarted", () => {
      const o = get(cluster, "VirtualMachineInstance", "default", "rerun");
      return o && o.metadata.uid !== first && o.status?.phase === "Running";
    });
  });

  it("keeps a VMI that fits no node in Scheduling and reports ErrorUnschedulable", async () => {
    tc = await startTestCluster({ nodes: [{ name: "small", memory: "2Gi" }] });
    const { cluster } = tc;
    cluster.store.create(R.VirtualMachine, { ...vmSpec("big", { memory: "4Gi" }), metadata: { name: "big", namespace: "default" } });
    const cond = await waitFor("PodScheduled", () => get(cluster, "VirtualMachineInstance", "default", "big")?.status?.conditions?.find((c: { type: string }) => c.type === "PodScheduled"));
    expect(cond).toMatchObject({ status: "False", reason: "Unschedulable", message: "0/1 nodes are available: 1 Insufficient memory." });
    await waitFor("ErrorUnschedulable", () => get(cluster, "VirtualMachine", "default", "big")?.status?.printableStatus === "ErrorUnschedulable");
    cluster.store.create(R.Node, {
      metadata: { name: "large", labels: { "kubevirt.io/schedulable": "true" } },
      status: { allocatable: { memory: "16Gi" }, capacity: { memory: "16Gi" }, conditions: [{ type: "Ready", status: "True" }] },
    });
    await waitFor("running on the new node", () => get(cluster, "VirtualMachineInstance", "default", "big")?.status?.nodeName === "large");
  });
});
