// The effective KubeVirt configuration read from the KubeVirt CR, with KubeVirt's defaults
// (pkg/virt-config/virt-config.go, configuration.go) and feature-gate rules
// (pkg/virt-config/featuregate/feature-gates.go): GA > explicit enable > explicit disable > Beta > off.
import { R } from "../apiserver/resources.js";
import type { KObject, Store } from "../apiserver/store.js";
import { Defaults, DecentralizedLiveMigration, KUBEVIRT_VERSION_DEFAULT } from "./constants.js";
import { parseGoDuration, parseQuantity } from "./util.js";

export type GateState = "Alpha" | "Beta" | "GA";

/** State of the gates the sim knows, per KubeVirt version (reference §1). */
export function gateState(gate: string, version: string): GateState | undefined {
  const [maj, min] = /^v?(\d+)\.(\d+)/.exec(version)?.slice(1).map(Number) ?? [1, 8];
  const atLeast = (a: number, b: number) => maj! > a || (maj === a && min! >= b);
  switch (gate) {
    case DecentralizedLiveMigration:
      if (!atLeast(1, 6)) return undefined;
      return atLeast(1, 10) ? "Beta" : "Alpha";
    case "VolumesUpdateStrategy":
    case "VolumeMigration":
      return atLeast(1, 5) ? "GA" : "Alpha";
    default:
      return undefined;
  }
}

export interface MigrationConfig {
  parallelMigrationsPerCluster: number;
  parallelOutboundMigrationsPerNode: number;
  /** Bytes per (simulated) second; 0 = unlimited (KubeVirt's default "0Mi"). */
  bandwidthPerMigration: number;
  completionTimeoutPerGiB: number;
  progressTimeout: number;
  maxDowntimeMs: number;
  allowAutoConverge: boolean;
  allowPostCopy: boolean;
  allowWorkloadDisruption: boolean;
  unsafeMigrationOverride: boolean;
  disableTLS: boolean;
  network?: string;
}

export interface EffectiveConfig {
  kubevirt?: KObject;
  version: string;
  featureGates: string[];
  disabledFeatureGates: string[];
  migrations: MigrationConfig;
  workloadUpdateMethods: string[];
  vmRolloutStrategy: "LiveUpdate" | "Stage";
  caDurationMs: number;
  caRenewBeforeMs: number;
  certDurationMs: number;
  certRenewBeforeMs: number;
  synchronizationPort: number;
  isEnabled(gate: string): boolean;
}

/** The KubeVirt CR KubeVirt's controllers use: the single one in the install namespace. */
export function findKubeVirt(store: Store, namespace: string): KObject | undefined {
  return store.list(R.KubeVirt, { namespace }).items[0];
}

/* eslint-disable @typescript-eslint/no-explicit-any -- the CR spec is free-form JSON */
export function effectiveConfig(kv: KObject | undefined, versionFallback = KUBEVIRT_VERSION_DEFAULT): EffectiveConfig {
  const spec: any = kv?.spec ?? {};
  const conf: any = spec.configuration ?? {};
  const dev: any = conf.developerConfiguration ?? {};
  const mig: any = conf.migrations ?? {};
  const version: string = kv?.status?.observedKubeVirtVersion ?? versionFallback;
  const featureGates: string[] = Array.isArray(dev.featureGates) ? dev.featureGates : [];
  const disabledFeatureGates: string[] = Array.isArray(dev.disabledFeatureGates) ? dev.disabledFeatureGates : [];
  const num = (v: unknown, d: number) => (typeof v === "number" && Number.isFinite(v) ? v : d);
  const bool = (v: unknown) => v === true;
  const bw = mig.bandwidthPerMigration !== undefined ? parseQuantity(mig.bandwidthPerMigration) : 0;

  const selfSigned: any = spec.certificateRotateStrategy?.selfSigned ?? {};
  const caDurationMs =
    parseGoDuration(selfSigned.caRotateInterval) ?? parseGoDuration(selfSigned.ca?.duration) ?? Defaults.caDurationMs;
  const caRenewBeforeMs =
    parseGoDuration(selfSigned.caOverlapInterval) ?? parseGoDuration(selfSigned.ca?.renewBefore) ?? caDurationMs * 0.2;
  const certDurationMs =
    parseGoDuration(selfSigned.certRotateInterval) ?? parseGoDuration(selfSigned.server?.duration) ?? Defaults.certDurationMs;
  const certRenewBeforeMs = parseGoDuration(selfSigned.server?.renewBefore) ?? certDurationMs * 0.2;
  const port = Number.parseInt(String(spec.synchronizationPort ?? ""), 10);

  const cfg: EffectiveConfig = {
    kubevirt: kv,
    version,
    featureGates,
    disabledFeatureGates,
    migrations: {
      parallelMigrationsPerCluster: num(mig.parallelMigrationsPerCluster, Defaults.parallelMigrationsPerCluster),
      parallelOutboundMigrationsPerNode: num(mig.parallelOutboundMigrationsPerNode, Defaults.parallelOutboundMigrationsPerNode),
      bandwidthPerMigration: Number.isFinite(bw) ? bw : 0,
      completionTimeoutPerGiB: num(mig.completionTimeoutPerGiB, Defaults.completionTimeoutPerGiB),
      progressTimeout: num(mig.progressTimeout, Defaults.progressTimeout),
      maxDowntimeMs: num(mig.maxDowntimeMs, Defaults.maxDowntimeMs),
      allowAutoConverge: bool(mig.allowAutoConverge),
      allowPostCopy: bool(mig.allowPostCopy),
      allowWorkloadDisruption: mig.allowWorkloadDisruption === undefined ? bool(mig.allowPostCopy) : bool(mig.allowWorkloadDisruption),
      unsafeMigrationOverride: bool(mig.unsafeMigrationOverride),
      disableTLS: bool(mig.disableTLS),
      network: typeof mig.network === "string" ? mig.network : undefined,
    },
    workloadUpdateMethods: Array.isArray(spec.workloadUpdateStrategy?.workloadUpdateMethods)
      ? spec.workloadUpdateStrategy.workloadUpdateMethods
      : [],
    // nil means LiveUpdate since v1.6.0 (IsVMRolloutStrategyLiveUpdate)
    vmRolloutStrategy: conf.vmRolloutStrategy === "Stage" ? "Stage" : "LiveUpdate",
    caDurationMs,
    caRenewBeforeMs,
    certDurationMs,
    certRenewBeforeMs,
    synchronizationPort: Number.isFinite(port) ? port : Defaults.synchronizationPort,
    isEnabled(gate: string): boolean {
      const state = gateState(gate, version);
      if (!state) return false;
      if (state === "GA") return true;
      if (featureGates.includes(gate)) return true;
      if (disabledFeatureGates.includes(gate)) return false;
      return state === "Beta";
    },
  };
  return cfg;
}
