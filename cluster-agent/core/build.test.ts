import { describe, expect, it } from "vitest";
import { migrationIdFor, type SourceVolume } from "../../proto/bus/index.js";
import type { KubeObject } from "../../proto/kube.js";
import { blankDataVolume, cloneDataVolume, dependencyCopy, forgetSwap, isSwapped, receiverVm, receiveVmim, revertVolumes, sendVmim, swapVolumes, volumeMoves, volumesReverted, type PrepareTask } from "./build.js";
import { vmFixture } from "./fixtures.js";
import { ferryLabels, movedClaimName, ORIGINAL_VOLUMES_ANNOTATION } from "./names.js";

const GiB = 2 ** 30;
const ref = { migrationUid: "m1", attempt: 2, migrationId: migrationIdFor("m1", 2) };
const source = { cluster: "a", namespace: "vms", name: "db-1" };
const target = { cluster: "b", namespace: "prod", name: "db-1" };
const volumes: SourceVolume[] = [
  { name: "rootdisk", claimName: "db-1-rootdisk", sizeBytes: 20 * GiB, storageClass: "standard", volumeMode: "Block", accessModes: ["ReadWriteMany"] },
  { name: "data", claimName: "db-1-data", sizeBytes: 50 * GiB, storageClass: "slow" },
];

function prepare(): PrepareTask {
  return {
    ...ref,
    plan: "p",
    source,
    target,
    role: "target",
    action: "prepare",
    storageMap: [{ source: "standard", target: "fast", volumeMode: "Filesystem" }],
    networkMap: [
      { source: "vms/vlan100", target: "pod" },
      { source: "pod", target: "prod/flat" },
    ],
    sourceVm: { manifest: vmFixture() as unknown as KubeObject, dependencies: [], volumes },
  };
}

describe("receiver VM", () => {
  const vm = receiverVm(prepare());
  it("waits as receiver under the target name and restores the source's run strategy afterwards", () => {
    expect(vm.metadata).toMatchObject({ name: "db-1", namespace: "prod" });
    expect(vm.spec.runStrategy).toBe("WaitAsReceiver");
    expect(vm.spec.running).toBeUndefined();
    expect(vm.metadata.annotations).toEqual({ note: "keep", "kubevirt.io/restore-run-strategy": "Always" });
    expect(vm.metadata.labels).toEqual({ app: "db", ...ferryLabels(ref) });
    expect(vm.metadata.uid).toBeUndefined();
    expect(vm.metadata.resourceVersion).toBeUndefined();
    expect(vm.status).toBeUndefined();
  });
  it("keeps the firmware UUID and MACs, refers to the blank DataVolumes by the source claim names", () => {
    const spec = vm.spec.template.spec;
    expect(spec.domain.firmware?.uuid).toBe("6a1a2b3c-0000-4000-8000-000000000001");
    expect(spec.domain.devices?.interfaces?.map((i) => i.macAddress)).toEqual(["02:00:00:00:00:01", "02:00:00:00:01:01"]);
    expect(vm.spec.dataVolumeTemplates).toBeUndefined();
    expect(spec.volumes?.map((v) => v.dataVolume?.name ?? v.persistentVolumeClaim?.claimName ?? null)).toEqual(["db-1-rootdisk", "db-1-data", null]);
  });
  it("matches a map entry written <name> or <ns>/<name> against either form in the VM", () => {
    const task = prepare();
    task.networkMap = [{ source: "vlan100", target: "prod/vlan200" }];
    expect(receiverVm(task).spec.template.spec.networks?.[1]).toEqual({ name: "vlan100", multus: { networkName: "prod/vlan200" } });
  });
  it("remaps networks both ways (multus → pod, pod → multus)", () => {
    expect(vm.spec.template.spec.networks).toEqual([
      { name: "default", multus: { networkName: "prod/flat" } },
      { name: "vlan100", pod: {} },
    ]);
  });
});

describe("DataVolumes", () => {
  it("a blank destination takes the mapped class and overrides, at least the source size, populators on", () => {
    const dv = blankDataVolume(volumes[0]!, prepare().storageMap, "prod", ferryLabels(ref));
    expect(dv).toEqual({
      apiVersion: "cdi.kubevirt.io/v1beta1",
      kind: "DataVolume",
      metadata: { name: "db-1-rootdisk", namespace: "prod", labels: ferryLabels(ref), annotations: { "cdi.kubevirt.io/storage.usePopulator": "true" } },
      spec: { source: { blank: {} }, storage: { storageClassName: "fast", volumeMode: "Filesystem", accessModes: ["ReadWriteMany"], resources: { requests: { storage: "20Gi" } } } },
    });
  });
  it("an unmapped volume keeps its class", () => {
    expect(blankDataVolume(volumes[1]!, prepare().storageMap, "prod", {}).spec.storage).toEqual({ storageClassName: "slow", resources: { requests: { storage: "50Gi" } } });
  });
  it("a clone reads the source claim in the same namespace", () => {
    const dv = cloneDataVolume(volumes[0]!, prepare().storageMap, "vms", {}, "x");
    expect(dv.spec.source).toEqual({ pvc: { namespace: "vms", name: "db-1-rootdisk" } });
    expect(dv.metadata.name).toBe("x");
  });
});

describe("copies and VMIMs", () => {
  it("a dependency copy keeps its data and type, drops the source cluster's metadata, adds ferry's labels", () => {
    const secret = { apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "vms", uid: "u", resourceVersion: "9", labels: { x: "y" }, annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" } }, type: "Opaque", data: { k: "dg==" } };
    expect(dependencyCopy(secret as KubeObject, "prod", ferryLabels(ref))).toEqual({ apiVersion: "v1", kind: "Secret", metadata: { name: "s", namespace: "prod", labels: { x: "y", ...ferryLabels(ref) } }, type: "Opaque", data: { k: "dg==" } });
  });
  it("both VMIMs carry the same migrationID; the source's connects to the target's address", () => {
    const recv = receiveVmim({ ...ref, target });
    const send = sendVmim({ ...ref, source, connectUrl: "10.0.0.5:9185" });
    expect(recv.metadata).toEqual({ name: "ferry-receive-m1-2", namespace: "prod", labels: ferryLabels(ref) });
    expect(recv.spec).toEqual({ vmiName: "db-1", receive: { migrationID: "m1-2" } });
    expect(send.metadata.name).toBe("ferry-send-m1-2");
    expect(send.spec).toEqual({ vmiName: "db-1", sendTo: { migrationID: "m1-2", connectURL: "10.0.0.5:9185" } });
  });
});

describe("same-cluster volume swap", () => {
  const task = { migrationUid: "s1", storageMap: [{ source: "standard", target: "fast" }], sourceVolumes: volumes };
  it("moves only volumes whose class changes, to deterministic names that do not stack suffixes", () => {
    const moves = volumeMoves(task);
    expect(moves.map((m) => [m.volume, m.from, m.to])).toEqual([["rootdisk", "db-1-rootdisk", movedClaimName("db-1-rootdisk", "s1")]]);
    expect(movedClaimName("db-1-rootdisk", "s1")).toMatch(/^db-1-rootdisk-[0-9a-f]{8}$/);
    expect(movedClaimName(movedClaimName("db-1-rootdisk", "s1"), "s2")).toMatch(/^db-1-rootdisk-[0-9a-f]{8}$/);
    expect(movedClaimName("x".repeat(253), "s1").length).toBeLessThanOrEqual(253);
  });
  it("swaps volumes and templates with updateVolumesStrategy Migration, records the original, and reverts exactly", () => {
    const vm = vmFixture();
    const moves = volumeMoves(task);
    const to = moves[0]!.to;
    const swapped = swapVolumes(vm, moves, "s1", true);
    expect(swapped.spec.updateVolumesStrategy).toBe("Migration");
    expect(swapped.spec.template.spec.volumes?.[0]?.dataVolume?.name).toBe(to);
    expect(swapped.spec.dataVolumeTemplates?.[0]?.metadata.name).toBe(to);
    expect(swapped.spec.dataVolumeTemplates?.[0]?.spec.storage?.storageClassName).toBe("fast");
    expect(isSwapped(swapped, "s1")).toBe(true);
    expect(swapVolumes(swapped, moves, "s1", true)).toEqual(swapped);
    expect(volumesReverted(swapped)).toBe(false);
    const reverted = revertVolumes(swapped);
    expect(volumesReverted(reverted)).toBe(true);
    expect(reverted.spec.updateVolumesStrategy).toBe("Migration");
    const clean = forgetSwap(reverted);
    expect(clean.spec).toEqual(vm.spec);
    expect(clean.metadata.annotations?.[ORIGINAL_VOLUMES_ANNOTATION]).toBeUndefined();
    expect(clean.metadata).toEqual(vm.metadata);
  });
  it("the offline swap sets no update strategy; finalize keeps the new volumes", () => {
    const swapped = swapVolumes(vmFixture(), volumeMoves(task), "s1", false);
    expect(swapped.spec.updateVolumesStrategy).toBeUndefined();
    const kept = forgetSwap(swapped);
    expect(kept.spec.template.spec.volumes?.[0]?.dataVolume?.name).toBe(volumeMoves(task)[0]!.to);
  });
});
