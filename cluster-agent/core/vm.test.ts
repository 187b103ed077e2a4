import { describe, expect, it } from "vitest";
import { InventoryVm } from "../../proto/bus/index.js";
import { pvcFixture, vmFixture, vmiFixture } from "./fixtures.js";
import { bytesQuantity, parseQuantity } from "./quantity.js";
import { inventoryVm, migrationBlockers, runStrategyOf, vmCpu, vmDependencies, vmInterfaces, vmMemoryBytes, vmVolumes, volumeKind } from "./vm.js";

const GiB = 2 ** 30;

describe("quantities", () => {
  it("parses binary, decimal, milli and exponent forms and refuses garbage", () => {
    expect(parseQuantity("10Gi")).toBe(10 * GiB);
    expect(parseQuantity("1.5Gi")).toBe(1.5 * GiB);
    expect(parseQuantity("2G")).toBe(2e9);
    expect(parseQuantity("500m")).toBe(0.5);
    expect(parseQuantity("1e3")).toBe(1000);
    expect(parseQuantity(4)).toBe(4);
    expect(parseQuantity("ten")).toBeUndefined();
    expect(parseQuantity(undefined)).toBeUndefined();
  });
  it("prints bytes as the largest exact binary unit", () => {
    expect(bytesQuantity(10 * GiB)).toBe("10Gi");
    expect(bytesQuantity(1536 * 2 ** 20)).toBe("1536Mi");
    expect(bytesQuantity(1000)).toBe("1000");
  });
});

describe("VM analysis", () => {
  const vm = vmFixture();
  const vmi = vmiFixture(vm);

  it("names every volume's kind and, for claims, its size, class, mode and access modes", () => {
    const volumes = vmVolumes(vm, vmi, { pvcs: [pvcFixture("db-1-data", { storageClass: "fast", volumeMode: "Filesystem", accessModes: ["ReadWriteOnce"] })] });
    expect(volumes).toEqual([
      { name: "rootdisk", kind: "dataVolume", claimName: "db-1-rootdisk", sizeBytes: 20 * GiB, storageClass: "standard", volumeMode: "Block", accessModes: ["ReadWriteMany"] },
      { name: "data", kind: "persistentVolumeClaim", claimName: "db-1-data", sizeBytes: 50 * GiB, storageClass: "fast", volumeMode: "Filesystem", accessModes: ["ReadWriteOnce"] },
      { name: "cloudinit", kind: "cloudInitNoCloud" },
    ]);
  });

  it("falls back to the dataVolumeTemplate when no VMI or PVC is known", () => {
    const [root, data] = vmVolumes(vm);
    expect(root).toMatchObject({ sizeBytes: 20 * GiB, storageClass: "standard", volumeMode: "Block" });
    expect(data).toEqual({ name: "data", kind: "persistentVolumeClaim", claimName: "db-1-data" });
  });

  it("knows every KubeVirt volume kind and calls the rest other", () => {
    expect(volumeKind({ name: "x", containerDisk: { image: "i" } })).toBe("containerDisk");
    expect(volumeKind({ name: "x", hostDisk: { path: "/p" } })).toBe("hostDisk");
    expect(volumeKind({ name: "x", somethingNew: {} })).toBe("other");
  });

  it("reads interfaces with networks and MACs, memory, vCPUs, run strategy", () => {
    expect(vmInterfaces(vm)).toEqual([
      { name: "default", network: "pod", macAddress: "02:00:00:00:00:01" },
      { name: "vlan100", network: "vms/vlan100", macAddress: "02:00:00:00:01:01" },
    ]);
    expect(vmMemoryBytes(vm)).toBe(8 * GiB);
    expect(vmCpu(vm)).toBe(4);
    expect(runStrategyOf(vm)).toBe("Always");
    const legacy = vmFixture();
    delete legacy.spec.runStrategy;
    legacy.spec.running = false;
    expect(runStrategyOf(legacy)).toBe("Halted");
  });

  it("takes a MAC from the VMI when the spec has none", () => {
    const noMac = vmFixture();
    delete noMac.spec.template.spec.domain.devices!.interfaces![0]!.macAddress;
    const running = vmiFixture(noMac);
    running.status!.interfaces = [{ name: "default", mac: "02:AA:00:00:00:09" }];
    expect(vmInterfaces(noMac, running)[0]).toEqual({ name: "default", network: "pod", macAddress: "02:aa:00:00:00:09" });
  });

  it("lists referenced Secrets and ConfigMaps once, with the field naming them", () => {
    const withCm = vmFixture();
    withCm.spec.template.spec.volumes!.push({ name: "cfg", configMap: { name: "app-config" } }, { name: "sec", secret: { secretName: "db-1-userdata" } });
    expect(vmDependencies(withCm)).toEqual([
      { kind: "Secret", name: "db-1-userdata", field: "spec.template.spec.volumes[2].cloudInitNoCloud.userDataSecretRef.name" },
      { kind: "ConfigMap", name: "app-config", field: "spec.template.spec.volumes[3].configMap.name" },
    ]);
  });

  it("finds no blocker on a plain VM, even with DisksNotLiveMigratable (disks are copied)", () => {
    const rwo = vmiFixture(vm);
    rwo.status!.conditions = [{ type: "LiveMigratable", status: "False", reason: "DisksNotLiveMigratable", message: "cannot migrate VMI: PVC db-1-data is not shared" }];
    expect(migrationBlockers(vm, rwo)).toEqual([]);
  });

  it("reports shareable, LUN, filesystem, hotplugged, unmovable volumes and LiveMigratable=False", () => {
    const bad = vmFixture();
    const spec = bad.spec.template.spec;
    spec.domain.devices!.disks![0]!.shareable = true;
    spec.domain.devices!.disks!.push({ name: "lun0", lun: {} });
    spec.domain.devices!.filesystems = [{ name: "share", virtiofs: {} }];
    spec.volumes!.push({ name: "hp", dataVolume: { name: "hp", hotpluggable: true } }, { name: "host", hostDisk: { path: "/var/x" } });
    const badVmi = vmiFixture(bad);
    badVmi.status!.conditions = [{ type: "LiveMigratable", status: "False", reason: "InterfaceNotLiveMigratable", message: "cannot migrate VMI which does not use masquerade" }];
    expect(migrationBlockers(bad, badVmi).map((b) => b.reason)).toEqual(["ShareableDisk", "LunDisk", "FilesystemDevice", "HotpluggedVolume", "VolumeNotMovable", "InterfaceNotLiveMigratable"]);
  });

  it("builds an inventory entry the bus schema accepts", () => {
    const entry = inventoryVm(vm, vmi);
    expect(InventoryVm.parse(entry)).toEqual(entry);
    expect(entry).toMatchObject({ namespace: "vms", name: "db-1", vmiPhase: "Running", node: "a-node-1", cpu: 4, memoryBytes: 8 * GiB, labels: { app: "db" } });
  });
});
