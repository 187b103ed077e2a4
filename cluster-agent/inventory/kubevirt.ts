// The KubeVirt CR (and the kubevirt-ca ConfigMap) as the broker needs them: version, feature gates,
// whether DecentralizedLiveMigration is effectively on, sync addresses, CA bundle, migration limits
// with KubeVirt's defaults. Pure. Facts: shared/reference/kubevirt-api.md §1, §4, §5, §6.
import type { z } from "zod";
import type { KubeVirtInfo } from "../../proto/bus/index.js";

type KubeVirtInfo = z.infer<typeof KubeVirtInfo>;

export const DECENTRALIZED_GATE = "DecentralizedLiveMigration";
/** The gate is Beta (on unless disabled) from this minor on (kubevirt-api.md §1: "Alpha: v1.6.0 / Beta: v1.10.0"). */
export const DECENTRALIZED_BETA_FROM: [number, number] = [1, 10];
/** vmRolloutStrategy nil means LiveUpdate from v1.6.0 on; Stage before (kubevirt-api.md §6). */
export const LIVE_UPDATE_DEFAULT_FROM: [number, number] = [1, 6];

/** KubeVirt's defaults for spec.configuration.migrations (kubevirt-api.md §5). */
export const MIGRATION_DEFAULTS = {
  parallelMigrationsPerCluster: 5,
  parallelOutboundMigrationsPerNode: 2,
  bandwidthPerMigration: 0,
  progressTimeout: 150,
  completionTimeoutPerGiB: 150,
} as const;

/** The subset of the KubeVirt CR the agent reads. */
export interface KubeVirtCR {
  metadata?: { name?: string; namespace?: string };
  spec?: {
    configuration?: {
      developerConfiguration?: { featureGates?: string[]; disabledFeatureGates?: string[] };
      migrations?: {
        parallelMigrationsPerCluster?: number;
        parallelOutboundMigrationsPerNode?: number;
        bandwidthPerMigration?: string | number;
        progressTimeout?: number;
        completionTimeoutPerGiB?: number;
        network?: string;
      };
      vmRolloutStrategy?: string;
    };
    workloadUpdateStrategy?: { workloadUpdateMethods?: string[] };
  };
  status?: { observedKubeVirtVersion?: string; synchronizationAddresses?: string[]; phase?: string };
}

/** "v1.8.2" → [1, 8]; undefined when it does not look like a version. */
export function minorVersion(version: string | undefined): [number, number] | undefined {
  const m = /^v?(\d+)\.(\d+)/.exec(version ?? "");
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

function atLeast(v: [number, number] | undefined, min: [number, number]): boolean {
  return v !== undefined && (v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]));
}

/** Precedence (KubeVirt fg/feature-gates.go): explicit enable > explicit disable > Beta default > off. */
export function decentralizedEnabled(version: string | undefined, enabled: string[], disabled: string[]): boolean {
  if (enabled.includes(DECENTRALIZED_GATE)) return true;
  if (disabled.includes(DECENTRALIZED_GATE)) return false;
  return atLeast(minorVersion(version), DECENTRALIZED_BETA_FROM);
}

const SUFFIX: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity ("2Gi", "500M", "1.5Gi", "0Mi", 4) in base units, rounded up; undefined if unreadable. */
export function quantity(q: string | number | undefined): number | undefined {
  if (typeof q === "number") return Number.isFinite(q) && q >= 0 ? Math.ceil(q) : undefined;
  if (typeof q !== "string") return undefined;
  const m = /^\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE]([+-]?[0-9]+))?([a-zA-Z]*)$/.exec(q.trim());
  if (!m) return undefined;
  const mult = SUFFIX[m[3]!];
  if (mult === undefined) return undefined;
  const n = Number(m[1]) * 10 ** Number(m[2] ?? 0) * mult;
  return Number.isFinite(n) ? Math.ceil(n) : undefined;
}

const uint = (v: unknown, dflt: number) => (typeof v === "number" && Number.isInteger(v) && v >= 0 ? v : dflt);

/**
 * KubeVirtInfo of the inventory. `caBundle` is the kubevirt-ca ConfigMap's `ca-bundle` (in the
 * KubeVirt CR's namespace); undefined when it cannot be read yet, and then there is no KubeVirtInfo.
 */
export function kubevirtInfo(kv: KubeVirtCR, caBundle: string | undefined): KubeVirtInfo | undefined {
  if (!caBundle) return undefined;
  const version = kv.status?.observedKubeVirtVersion || "unknown";
  const conf = kv.spec?.configuration ?? {};
  const enabled = conf.developerConfiguration?.featureGates ?? [];
  const disabled = conf.developerConfiguration?.disabledFeatureGates ?? [];
  const mig = conf.migrations ?? {};
  const migrations: KubeVirtInfo["migrations"] = {
    parallelMigrationsPerCluster: uint(mig.parallelMigrationsPerCluster, MIGRATION_DEFAULTS.parallelMigrationsPerCluster),
    parallelOutboundMigrationsPerNode: uint(mig.parallelOutboundMigrationsPerNode, MIGRATION_DEFAULTS.parallelOutboundMigrationsPerNode),
    bandwidthPerMigration: quantity(mig.bandwidthPerMigration) ?? MIGRATION_DEFAULTS.bandwidthPerMigration,
    progressTimeout: uint(mig.progressTimeout, MIGRATION_DEFAULTS.progressTimeout),
    completionTimeoutPerGiB: uint(mig.completionTimeoutPerGiB, MIGRATION_DEFAULTS.completionTimeoutPerGiB),
  };
  if (mig.network) migrations.network = mig.network;
  return {
    version,
    featureGates: { enabled: [...enabled], disabled: [...disabled] },
    decentralizedLiveMigration: decentralizedEnabled(version, enabled, disabled),
    synchronizationAddresses: [...(kv.status?.synchronizationAddresses ?? [])],
    caBundle,
    migrations,
    workloadUpdateMethods: [...(kv.spec?.workloadUpdateStrategy?.workloadUpdateMethods ?? [])],
    vmRolloutStrategy: conf.vmRolloutStrategy ?? (atLeast(minorVersion(version), LIVE_UPDATE_DEFAULT_FROM) ? "LiveUpdate" : "Stage"),
  };
}
