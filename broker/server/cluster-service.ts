// ferry.v1.ClusterService: clusters, enrollment tokens, agent enrollment and renewal, cordon,
// removal. Thin: validation of the request, then the registry / enrollment, then the proto view.
import { ClusterServiceService, ClusterState, type AgentCredentials, type Cluster, type ClusterInventory } from "../../proto/gen/ferry/v1/clusters.js";
import type { Duration } from "../../proto/gen/google/protobuf/duration.js";
import type { Inventory } from "../../proto/bus/index.js";
import type { ClusterRegistry, ClusterView } from "../clusters/registry.js";
import type { Enrollment, IssuedCredentials } from "../enrollment/enrollment.js";
import { BrokerError } from "../errors.js";
import type { Access, Handlers } from "./service.js";

export const CLUSTER_SERVICE_ACCESS = (method: keyof typeof ClusterServiceService): Access =>
  method === "enroll" ? "public" : method === "renewCertificate" ? "agent" : "admin";

const DEFAULT_PAGE = 100;
const MAX_PAGE = 1000;

export interface ClusterServiceDeps {
  registry: ClusterRegistry;
  enrollment: Enrollment;
  /** Address agents enroll at (config grpc.advertiseAddress); "" if not configured. */
  advertiseAddress: string;
}

export function clusterToProto(view: ClusterView): Cluster {
  const r = view.record;
  const state =
    r.state === "PendingEnrollment"
      ? ClusterState.PENDING_ENROLLMENT
      : r.state === "Removed"
        ? ClusterState.REMOVED
        : view.health === "Available"
          ? ClusterState.AVAILABLE
          : ClusterState.UNREACHABLE;
  const cert = r.certificates[r.certificates.length - 1];
  return {
    name: r.name,
    state,
    cordoned: r.cordon !== undefined,
    cordonReason: r.cordon?.reason ?? "",
    lastHeartbeatTime: view.soft.heartbeatAtMs !== undefined ? new Date(view.soft.heartbeatAtMs) : undefined,
    certificateExpireTime: cert ? new Date(cert.notAfter) : undefined,
    agentVersion: view.soft.hello?.agentVersion ?? "",
    inventory: view.soft.inventory ? inventoryToProto(view.soft.inventory) : undefined,
    createTime: new Date(r.createdAt),
  };
}

export function inventoryToProto(inv: Inventory): ClusterInventory {
  return {
    kubevirtVersion: inv.kubevirt.version,
    decentralizedMigrationEnabled: inv.kubevirt.decentralizedLiveMigration,
    synchronizationAddresses: [...inv.kubevirt.synchronizationAddresses],
    nodeCount: inv.nodes.length,
    architectures: [...new Set(inv.nodes.map((n) => n.architecture))].sort(),
    storageClasses: inv.storageClasses.map((s) => ({ name: s.name, provisioner: s.provisioner, volumeBindingMode: s.volumeBindingMode, isDefault: s.isDefault, freeBytes: s.capacityBytes })),
    networks: inv.networks.map((n) => ({ namespace: n.namespace, name: n.name })),
    vmCount: inv.vms.length,
    migrationLimits: {
      parallelMigrationsPerCluster: inv.kubevirt.migrations.parallelMigrationsPerCluster,
      parallelOutboundMigrationsPerNode: inv.kubevirt.migrations.parallelOutboundMigrationsPerNode,
    },
    workloadUpdateLiveMigrate: inv.kubevirt.workloadUpdateMethods.includes("LiveMigrate"),
    observeTime: new Date(inv.observedAt),
  };
}

function credentialsToProto(c: IssuedCredentials): AgentCredentials {
  return { clusterName: c.cluster, certificateChainPem: c.certPem, caPem: c.caPem, natsUserJwt: c.natsUserJwt, natsUrls: c.natsUrls, expireTime: c.expiresAt };
}

function requireName(name: string, field = "name"): string {
  if (!name) throw new BrokerError("invalid-argument", `${field} is required: the cluster name (a DNS-1123 label)`, { field });
  return name;
}

function durationMs(d: Duration | undefined): number | undefined {
  if (!d) return undefined;
  return d.seconds * 1000 + Math.round(d.nanos / 1e6);
}

function pageToken(after: string): string {
  return Buffer.from(JSON.stringify({ after }), "utf8").toString("base64url");
}

function readPageToken(token: string): string {
  if (!token) return "";
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { after?: unknown };
    if (typeof v.after === "string") return v.after;
  } catch {
    // fall through
  }
  throw new BrokerError("invalid-argument", "page_token is not one this broker issued; pass next_page_token of the previous response, or nothing for the first page", { field: "page_token" });
}

export function clusterServiceHandlers(deps: ClusterServiceDeps): Handlers<typeof ClusterServiceService> {
  const { registry, enrollment } = deps;
  return {
    async listClusters(req) {
      if (req.pageSize < 0) throw new BrokerError("invalid-argument", "page_size must not be negative (0 = default 100)", { field: "page_size" });
      const size = Math.min(req.pageSize || DEFAULT_PAGE, MAX_PAGE);
      const after = readPageToken(req.pageToken);
      const all = (await registry.list()).filter((v) => v.record.name > after);
      const page = all.slice(0, size);
      const last = page[page.length - 1];
      return { clusters: page.map(clusterToProto), nextPageToken: all.length > size && last ? pageToken(last.record.name) : "" };
    },
    async getCluster(req) {
      return { cluster: clusterToProto(await registry.get(requireName(req.name))) };
    },
    async createEnrollmentToken(req) {
      const issued = await enrollment.createToken(requireName(req.clusterName, "cluster_name"), durationMs(req.ttl));
      return {
        token: issued.token,
        expireTime: issued.expiresAt,
        caPem: issued.caPem,
        caFingerprintSha256: issued.caFingerprint256,
        cluster: clusterToProto({ record: issued.cluster, health: "Unknown", soft: {} }),
        brokerAddress: deps.advertiseAddress,
      };
    },
    async enroll(req) {
      if (!req.token) throw new BrokerError("invalid-argument", "token is required: the enrollment token `ferryctl cluster add` printed", { field: "token" });
      return { credentials: credentialsToProto(await enrollment.enroll({ token: req.token, csrPem: req.csrPem, natsUserPublicKey: req.natsUserPublicKey })) };
    },
    async renewCertificate(req, ctx) {
      return { credentials: credentialsToProto(await enrollment.renew(ctx.peerCertPem!, { csrPem: req.csrPem, natsUserPublicKey: req.natsUserPublicKey })) };
    },
    async cordonCluster(req) {
      return { cluster: clusterToProto(await registry.cordon(requireName(req.name), req.reason)) };
    },
    async uncordonCluster(req) {
      return { cluster: clusterToProto(await registry.uncordon(requireName(req.name))) };
    },
    async removeCluster(req) {
      return { cluster: clusterToProto(await registry.remove(requireName(req.name))) };
    },
  };
}
