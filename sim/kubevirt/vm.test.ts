// The VirtualMachine controller, driven over HTTPS (client-node) with faults from the control API.
import { afterEach, describe, expect, it } from "vitest";
import { expectApiError } from "../testing.js";
import { type TestCluster, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: (TestCluster & { stop(): Promise<void> }) | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

const vm = (c: TestCluster, name: string) => c.k.get("VirtualMachine", "default", name);
const vmi = (c: TestCluster, name: string) => c.k.get("VirtualMachineInstance", "default", name);

describe("VirtualMachine controller", () => {
  it("runs an Always VM: VMI scheduled onto a node, Running with interfaces and conditions", async () => {
    const c = (tc = await startTestCluster());
    await c.k.create("VirtualMachine", "default", vmSpec("vm1"));
    const o = await waitFor("vm Running", async () => {
      const x = await vm(c, "vm1");
      return x?.status?.printableStatus === "Running" && x.status.ready ? x : undefined;
    });
    expect(o.metadata.finalizers).toContain("kubevirt.io/virtualMachineControllerFinalize");
    expect(o.spec.template.spec.domain.firmware.uuid).toMatch(/^[0-9a-f-]{36}$/);
    const i = await vmi(c, "vm1");
    expect(i.status.phase).toBe("Running");
    expect(i.status.nodeName).toMatch(/^c1-node-/);
    expect(i.metadata.labels?.["kubevirt.io/nodeName"]).toBe(i.status.nodeName);
    expect(i.status.interfaces[0]).toMatchObject({ name: "default", mac: expect.stringMatching(/^52:54:00:/), ipAddress: expect.any(String) });
    const types = i.status.conditions.map((x: { type: string }) => x.type);
    expect(types).toEqual(expect.arrayContaining(["Ready", "LiveMigratable", "StorageLiveMigratable"]));
    expect(i.status.phaseTransitionTimestamps.map((t: { phase: string }) => t.phase)).toEqual(["Pending", "Scheduling", "Scheduled", "Running"]);
    expect(o.status.conditions.find((x: { type: string }) => x.type === "Ready").status).toBe("True");
  });

  it("stops a VM set to Halted and reports Stopped", async () => {
    const c = (tc = await startTestCluster());
    await c.k.create("VirtualMachine", "default", vmSpec("vm1"));
    await waitFor("running", async () => (await vm(c, "vm1"))?.status?.printableStatus === "Running");
    await c.k.patch("VirtualMachine", "default", "vm1", { spec: { runStrategy: "Halted" } });
    await waitFor("stopped", async () => (await vm(c, "vm1"))?.status?.printableStatus === "Stopped" && !(await vmi(c, "vm1")));
  });

  it("refuses WaitAsReceiver without the DecentralizedLiveMigration gate, with KubeVirt's message", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { featureGates: [] } }));
    const err = await expectApiError(() => c.k.create("VirtualMachine", "default", vmSpec("r", { runStrategy: "WaitAsReceiver" })));
    expect(err.code).toBe(422);
    expect(err.message).toBe(
      'admission webhook "virtualmachine-validator.kubevirt.io" denied the request: Invalid RunStrategy (WaitAsReceiver), DecentralizedLiveMigration feature gate is not enabled in kubevirt resource',
    );
    const bad = await expectApiError(() => c.k.create("VirtualMachine", "default", vmSpec("x", { runStrategy: "Sometimes" })));
    expect(bad.message).toContain("Invalid RunStrategy (Sometimes)");
  });

  it("honours disabledFeatureGates for a version where the gate is Beta", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { featureGates: [], disabledFeatureGates: ["DecentralizedLiveMigration"] }, kubevirtOptions: { version: "v1.10.0" } }));
    expect((await expectApiError(() => c.k.create("VirtualMachine", "default", vmSpec("r", { runStrategy: "WaitAsReceiver" })))).message).toMatch(/feature gate is not enabled/);
  });

  it("creates a receiver VMI in WaitingForSync for WaitAsReceiver", async () => {
    const c = (tc = await startTestCluster());
    await c.k.create("VirtualMachine", "default", vmSpec("r", { runStrategy: "WaitAsReceiver", annotations: { "kubevirt.io/restore-run-strategy": "Always" } }));
    const i = await waitFor("receiver VMI", async () => {
      const o = await vmi(c, "r");
      return o?.status?.phase === "WaitingForSync" ? o : undefined;
    });
    expect(i.metadata.annotations?.["kubevirt.io/create-migration-target"]).toBe("true");
    await waitFor("WaitingForReceiver", async () => (await vm(c, "r"))?.status?.printableStatus === "WaitingForReceiver");
  });

  it("validates volume and disk references as the webhook does", async () => {
    const c = (tc = await startTestCluster());
    const spec = vmSpec("v");
    spec.spec.template.spec.domain.devices.disks.push({ name: "missing", disk: { bus: "virtio" } });
    const err = await expectApiError(() => c.k.create("VirtualMachine", "default", spec));
    expect(err.message).toContain("spec.template.spec.domain.devices.disks[1].Name 'missing' not found.");
    const dv = vmSpec("d", { volumes: [{ name: "root", dataVolume: { name: "other" } }], dataVolumeTemplates: [{ metadata: { name: "d-root" }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "1Gi" } } } } }] });
    expect((await expectApiError(() => c.k.create("VirtualMachine", "default", dv))).message).toContain(
      "DataVolumeTemplate entry spec.dataVolumeTemplate[0] must be referenced in the VMI template's 'volumes' list",
    );
  });

  it("provisions dataVolumeTemplates (blank, CSI storage) before starting the VM", async () => {
    const c = (tc = await startTestCluster());
    const spec = vmSpec("dvm", {
      volumes: [{ name: "root", dataVolume: { name: "dvm-root" } }],
      dataVolumeTemplates: [{ metadata: { name: "dvm-root" }, spec: { source: { blank: {} }, storage: { resources: { requests: { storage: "10Gi" } } } } }],
    });
    await c.k.create("VirtualMachine", "default", spec);
    await waitFor("running", async () => (await vm(c, "dvm"))?.status?.printableStatus === "Running", 15_000);
    const dv = await c.k.must("DataVolume", "default", "dvm-root");
    expect(dv.status.phase).toBe("Succeeded");
    expect(dv.metadata.ownerReferences?.[0]?.kind).toBe("VirtualMachine");
    const pvc = await c.k.must("PersistentVolumeClaim", "default", "dvm-root");
    expect(pvc.spec.accessModes).toEqual(["ReadWriteMany"]);
    expect(pvc.spec.volumeMode).toBe("Block");
    expect(pvc.spec.dataSourceRef.kind).toBe("VolumeImportSource");
    expect(pvc.status.capacity.storage).toBe("10Gi");
    const i = await vmi(c, "dvm");
    expect(i.status.volumeStatus[0].persistentVolumeClaimInfo.claimName).toBe("dvm-root");
    expect(i.status.conditions.find((x: { type: string }) => x.type === "LiveMigratable").status).toBe("True");
  });

  it("follows Manual, Once and RerunOnFailure", async () => {
    const c = (tc = await startTestCluster());
    for (const [name, rs] of [["man", "Manual"], ["once", "Once"], ["rerun", "RerunOnFailure"]] as const) {
      await c.k.create("VirtualMachine", "default", vmSpec(name, { runStrategy: rs }));
    }
    await waitFor("once and rerun running", async () => (await vm(c, "once"))?.status?.printableStatus === "Running" && (await vm(c, "rerun"))?.status?.printableStatus === "Running");
    await waitFor("manual stopped", async () => (await vm(c, "man"))?.status?.printableStatus === "Stopped");
    expect(await vmi(c, "man")).toBeUndefined();
    const first = (await vmi(c, "rerun")).metadata.uid;
    await c.kv.killVMI("default", "rerun");
    await waitFor("rerun restarted", async () => {
      const o = await vmi(c, "rerun");
      return o && o.metadata.uid !== first && o.status?.phase === "Running";
    });
  });

  it("keeps a VMI that fits no node in Scheduling and reports ErrorUnschedulable", async () => {
    const c = (tc = await startTestCluster({ nodes: [{ name: "small", memory: "2Gi" }] }));
    await c.k.create("VirtualMachine", "default", vmSpec("big", { memory: "4Gi" }));
    const cond = await waitFor("PodScheduled", async () => (await vmi(c, "big"))?.status?.conditions?.find((x: { type: string }) => x.type === "PodScheduled"));
    expect(cond).toMatchObject({ status: "False", reason: "Unschedulable", message: "0/1 nodes are available: 1 Insufficient memory." });
    await waitFor("ErrorUnschedulable", async () => (await vm(c, "big"))?.status?.printableStatus === "ErrorUnschedulable");
    await c.k.create("Node", undefined, {
      metadata: { name: "large", labels: { "kubevirt.io/schedulable": "true" } },
      status: { allocatable: { memory: "16Gi" }, capacity: { memory: "16Gi" }, conditions: [{ type: "Ready", status: "True" }] },
    });
    await waitFor("running on the new node", async () => (await vmi(c, "big"))?.status?.nodeName === "large");
  });
});
