// What the core knows about a cluster: the shell's cluster registry (enrollment, heartbeats, cordon)
// merged with the agent's latest hello/inventory. The core never talks to a cluster; it reads this.
import { z } from "zod";
import { Capability, Count, Fingerprint, PemBundle, SyncAddress, Text, Time, type Hello, type Inventory } from "../../proto/bus/index.js";
import { ClusterName } from "../../proto/names.js";

/**
 * `available`: heartbeats arrive. `unreachable`: they stopped (the cluster may be fine; the broker
 * cannot tell, so nothing destructive is done about it). `unknown`: not enrolled, removed, or never
 * reported.
 */
export const ClusterAvailability = z.enum(["available", "unreachable", "unknown"]);
export type ClusterAvailability = z.infer<typeof ClusterAvailability>;

/** KubeVirt's defaults (reference §5) for a cluster that has not reported its own limits yet. */
export const DEFAULT_CLUSTER_LIMITS = { parallelMigrationsPerCluster: 5, parallelOutboundMigrationsPerNode: 2 } as const;

export const ClusterView = z.object({
  name: ClusterName,
  availability: ClusterAvailability,
  /** Last heartbeat (or report) received. */
  lastSeen: Time.optional(),
  /** Set while an admin has cordoned the cluster: no migration starts to or from it. */
  cordon: z.object({ reason: Text }).optional(),
  capabilities: z.array(Capability).max(16),
  /** DecentralizedLiveMigration is effectively on. */
  decentralizedLiveMigration: z.boolean(),
  synchronizationAddresses: z.array(SyncAddress).max(16),
  /** The cluster's kubevirt-ca bundle, already validated by the shell (CA certificates valid now). */
  caBundle: PemBundle.optional(),
  /** SHA-256 fingerprints of the certificates in caBundle. */
  caFingerprints: z.array(Fingerprint).max(64),
  limits: z.object({ parallelMigrationsPerCluster: Count, parallelOutboundMigrationsPerNode: Count }),
});
export type ClusterView = z.infer<typeof ClusterView>;

export interface ClusterViewInput {
  name: string;
  availability: ClusterAvailability;
  lastSeen?: string;
  cordon?: { reason: string };
  hello?: Hello;
  inventory?: Inventory;
  /** The validated kubevirt-ca bundle and its fingerprints (pki `validateCaBundle`). */
  ca?: { bundle: string; fingerprints: string[] };
}

/** Builds a view from the registry's facts and the agent's latest hello / inventory (the inventory wins). */
export function clusterView(input: ClusterViewInput): ClusterView {
  const kv = input.inventory?.kubevirt;
  return {
    name: input.name,
    availability: input.availability,
    ...(input.lastSeen ? { lastSeen: input.lastSeen } : {}),
    ...(input.cordon ? { cordon: input.cordon } : {}),
    capabilities: input.hello?.capabilities ?? [],
    decentralizedLiveMigration: kv?.decentralizedLiveMigration ?? false,
    synchronizationAddresses: kv?.synchronizationAddresses ?? input.hello?.synchronizationAddresses ?? [],
    ...(input.ca ? { caBundle: input.ca.bundle } : {}),
    caFingerprints: input.ca?.fingerprints ?? [],
    limits: kv
      ? { parallelMigrationsPerCluster: kv.migrations.parallelMigrationsPerCluster, parallelOutboundMigrationsPerNode: kv.migrations.parallelOutboundMigrationsPerNode }
      : { ...DEFAULT_CLUSTER_LIMITS },
  };
}

export type Clusters = Readonly<Record<string, ClusterView | undefined>>;
