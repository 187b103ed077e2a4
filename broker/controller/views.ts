// What the core knows of each cluster (broker/core ClusterView), built from the registry: the
// durable record (enrolled? cordoned?), health from heartbeats, and the agent's latest hello and
// inventory. KubeVirt CA bundles are validated here (pki) before the core relays them.
import type { Logger } from "pino";
import { validateCaBundle, serializeCaBundle } from "../../pki/index.js";
import type { Inventory, Status } from "../../proto/bus/index.js";
import type { ClusterRegistry, ClusterView as RegistryView } from "../clusters/registry.js";
import { clusterView, type ClusterAvailability, type Clusters, type ClusterView } from "../core/index.js";

export interface ClusterFacts {
  /** Core views of every cluster the broker has a record of. */
  clusters: Record<string, ClusterView>;
  /** Latest inventory per cluster. */
  inventories: Record<string, Inventory | undefined>;
  /** Latest status per cluster. */
  statuses: Record<string, Status | undefined>;
  /** Clusters that are enrolled (task sets go to these). */
  enrolled: string[];
  /** The highest task-set generation each cluster's agent has reported (hello or status). */
  agentGenerations: Record<string, number>;
}

function availability(v: RegistryView): ClusterAvailability {
  if (v.record.state !== "Enrolled") return "unknown";
  if (v.health === "Available") return "available";
  return v.soft.heartbeatAtMs === undefined ? "unknown" : "unreachable";
}

export class ClusterViews {
  /** Validated bundles by their PEM text (bundles change rarely; validation parses certificates). */
  private readonly ca = new Map<string, { bundle: string; fingerprints: string[]; validUntil: number } | { error: string }>();

  constructor(
    private readonly registry: ClusterRegistry,
    private readonly log: Logger,
  ) {}

  private validated(cluster: string, pem: string | undefined, now: Date): { bundle: string; fingerprints: string[] } | undefined {
    if (!pem) return undefined;
    let v = this.ca.get(pem);
    if (!v || ("validUntil" in v && v.validUntil <= now.getTime())) {
      try {
        const r = validateCaBundle(pem, now);
        if (r.valid.length === 0) throw new Error(`no CA certificate in it is valid now (${r.dropped.map((d) => d.message).join("; ") || "empty"})`);
        const validUntil = Math.min(...r.valid.map((c) => c.notAfter.getTime()));
        v = { bundle: serializeCaBundle(r.valid), fingerprints: r.valid.map((c) => c.fingerprint256), validUntil };
      } catch (e) {
        v = { error: (e as Error).message };
        this.log.warn({ cluster, err: v.error }, "the cluster's kubevirt-ca bundle is not usable; trust cannot be established with it");
      }
      if (this.ca.size > 1000) this.ca.clear();
      this.ca.set(pem, v);
    }
    return "error" in v ? undefined : { bundle: v.bundle, fingerprints: v.fingerprints };
  }

  async facts(now: Date): Promise<ClusterFacts> {
    const list = await this.registry.list();
    const out: ClusterFacts = { clusters: {}, inventories: {}, statuses: {}, enrolled: [], agentGenerations: {} };
    for (const v of list) {
      const name = v.record.name;
      const soft = v.soft;
      if (v.record.state === "Enrolled") out.enrolled.push(name);
      out.inventories[name] = soft.inventory;
      out.statuses[name] = soft.status;
      out.agentGenerations[name] = Math.max(soft.hello?.lastTaskSetGeneration ?? 0, soft.status?.taskSetGeneration ?? 0);
      const ca = this.validated(name, soft.inventory?.kubevirt.caBundle ?? soft.hello?.caBundle, now);
      out.clusters[name] = clusterView({
        name,
        availability: availability(v),
        ...(soft.heartbeatAtMs !== undefined ? { lastSeen: new Date(soft.heartbeatAtMs).toISOString() } : {}),
        ...(v.record.cordon ? { cordon: { reason: v.record.cordon.reason } } : {}),
        ...(soft.hello ? { hello: soft.hello } : {}),
        ...(soft.inventory ? { inventory: soft.inventory } : {}),
        ...(ca ? { ca } : {}),
      });
    }
    return out;
  }
}

export type { Clusters };
