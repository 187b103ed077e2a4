import { describe, expect, it } from "vitest";
import { decentralizedEnabled, kubevirtInfo, minorVersion } from "./kubevirt.js";

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

describe("KubeVirt facts for the inventory", () => {
  it("DecentralizedLiveMigration: explicit enable > explicit disable > Beta from v1.10 > off", () => {
    expect(decentralizedEnabled("v1.8.2", ["DecentralizedLiveMigration"], [])).toBe(true);
    expect(decentralizedEnabled("v1.8.2", [], [])).toBe(false);
    expect(decentralizedEnabled("v1.10.0", [], [])).toBe(true);
    expect(decentralizedEnabled("v1.10.0", [], ["DecentralizedLiveMigration"])).toBe(false);
    expect(decentralizedEnabled("v1.10.0", ["DecentralizedLiveMigration"], ["DecentralizedLiveMigration"])).toBe(true);
    expect(decentralizedEnabled("v2.0.0", [], [])).toBe(true);
    expect(decentralizedEnabled(undefined, [], [])).toBe(false);
    expect(minorVersion("v1.9.0-rc.1")).toEqual([1, 9]);
  });

  it("applies KubeVirt's defaults to an empty CR; vmRolloutStrategy defaults by version", () => {
    const info = kubevirtInfo({ status: { observedKubeVirtVersion: "v1.8.2" } }, CA)!;
    expect(info).toEqual({
      version: "v1.8.2",
      featureGates: { enabled: [], disabled: [] },
      decentralizedLiveMigration: false,
      synchronizationAddresses: [],
      caBundle: CA,
      migrations: { parallelMigrationsPerCluster: 5, parallelOutboundMigrationsPerNode: 2, bandwidthPerMigration: 0, progressTimeout: 150, completionTimeoutPerGiB: 150 },
      workloadUpdateMethods: [],
      vmRolloutStrategy: "LiveUpdate",
    });
    expect(kubevirtInfo({ status: { observedKubeVirtVersion: "v1.5.1" } }, CA)!.vmRolloutStrategy).toBe("Stage");
    expect(kubevirtInfo({}, undefined)).toBeUndefined();
  });

  it("reads what the CR sets", () => {
    const info = kubevirtInfo(
      {
        spec: {
          configuration: {
            developerConfiguration: { featureGates: ["DecentralizedLiveMigration"] },
            migrations: { parallelMigrationsPerCluster: 9, bandwidthPerMigration: "64Mi", network: "migration-net" },
            vmRolloutStrategy: "Stage",
          },
          workloadUpdateStrategy: { workloadUpdateMethods: ["LiveMigrate", "Evict"] },
        },
        status: { observedKubeVirtVersion: "v1.8.2", synchronizationAddresses: ["10.0.0.5:9185"] },
      },
      CA,
    )!;
    expect(info.decentralizedLiveMigration).toBe(true);
    expect(info.migrations).toEqual({ parallelMigrationsPerCluster: 9, parallelOutboundMigrationsPerNode: 2, bandwidthPerMigration: 64 * 2 ** 20, progressTimeout: 150, completionTimeoutPerGiB: 150, network: "migration-net" });
    expect(info.workloadUpdateMethods).toEqual(["LiveMigrate", "Evict"]);
    expect(info.vmRolloutStrategy).toBe("Stage");
    expect(info.synchronizationAddresses).toEqual(["10.0.0.5:9185"]);
  });
});
