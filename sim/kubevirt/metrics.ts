// Migration progress. KubeVirt exports it as virt-handler metrics (pkg/monitoring/metrics/
// virt-handler/migrationdomainstats): kubevirt_vmi_migration_data_bytes_total, _data_remaining_bytes,
// _data_processed_bytes, _dirty_memory_rate_bytes, _memory_transfer_rate_bytes, labelled
// namespace/name/node, on the source only. The sim adds what the target received over the TLS
// connection (kubevirt_sim_migration_received_bytes, not a KubeVirt metric).
import type { KubeVirtSim } from "./sim.js";

export interface MigrationMetric {
  namespace: string;
  name: string;
  node?: string;
  migrationUID: string;
  migrationID?: string;
  role: "source" | "target";
  decentralized: boolean;
  /** Source side (libvirt job stats), simulated bytes. */
  dataTotalBytes?: number;
  dataProcessedBytes?: number;
  dataRemainingBytes?: number;
  memoryDirtyRateBytes?: number;
  memoryTransferRateBytes?: number;
  iteration?: number;
  state?: string;
  /** Why a failed copy was aborted (progressTimeout, completionTimeout, aborted, error). Sim-only. */
  abortCause?: string;
  /** Decentralized source, sim-only: TLS connections the copy opened to the peer (a reconnect counts again) and the address it sends to now. */
  dataConnections?: number;
  dataAddress?: string;
  /** Target side: simulated bytes received over the synchronization TLS connection, and real bytes on the wire. */
  receivedBytes?: number;
  receivedWireBytes?: number;
}

export function collectMigrationMetrics(sim: KubeVirtSim): MigrationMetric[] {
  const out: MigrationMetric[] = [];
  for (const rt of sim.runtimes.values()) {
    const base = { namespace: rt.namespace, name: rt.vmi, node: rt.node, migrationUID: rt.uid, migrationID: rt.migrationID, role: rt.role, decentralized: rt.decentralized };
    if (rt.role === "source" && rt.transfer) {
      const s = rt.transfer.stats();
      out.push({
        ...base,
        dataTotalBytes: s.dataTotalBytes,
        dataProcessedBytes: s.dataProcessedBytes,
        dataRemainingBytes: s.dataRemainingBytes,
        memoryDirtyRateBytes: s.memoryDirtyRateBytes,
        memoryTransferRateBytes: s.memoryTransferRateBytes,
        iteration: s.iteration,
        state: s.state,
        abortCause: s.cause,
        ...(rt.link?.stats ? { dataConnections: rt.link.stats().connections, ...(rt.link.stats().address ? { dataAddress: rt.link.stats().address } : {}) } : {}),
      });
    } else out.push({ ...base, receivedBytes: rt.receivedBytes, receivedWireBytes: rt.receivedRealBytes, state: rt.done ? "completed" : "running" });
  }
  return out;
}

export interface RenderOptions {
  /** Only the migrations whose VMI is on this node (one virt-handler's view). */
  node?: string;
  /** Leave out the sim's own series (kubevirt_sim_*): what a real virt-handler serves. */
  kubevirtOnly?: boolean;
  /** Sample timestamps in ms (virt-handler attaches its collection time to each sample). */
  timestampMs?: number;
}

export function renderMigrationMetrics(sim: KubeVirtSim, opts: RenderOptions = {}): string {
  const lines: string[] = [];
  const all = collectMigrationMetrics(sim).filter((m) => opts.node === undefined || m.node === opts.node);
  const at = opts.timestampMs !== undefined ? ` ${Math.round(opts.timestampMs)}` : "";
  const metric = (name: string, help: string, type: string, pick: (m: MigrationMetric) => number | undefined) => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const m of all) {
      const v = pick(m);
      if (v === undefined || !Number.isFinite(v)) continue;
      lines.push(`${name}{name="${m.name}",namespace="${m.namespace}",node="${m.node ?? ""}"} ${Math.round(v)}${at}`);
    }
  };
  metric("kubevirt_vmi_migration_data_bytes_total", "The total Guest OS data to be migrated to the new VM.", "counter", (m) => m.dataTotalBytes);
  metric("kubevirt_vmi_migration_data_remaining_bytes", "The remaining guest OS data to be migrated to the new VM.", "gauge", (m) => m.dataRemainingBytes);
  metric("kubevirt_vmi_migration_data_processed_bytes", "The total Guest OS data processed and migrated to the new VM.", "gauge", (m) => m.dataProcessedBytes);
  metric("kubevirt_vmi_migration_dirty_memory_rate_bytes", "The rate of memory being dirty in the Guest OS.", "gauge", (m) => m.memoryDirtyRateBytes);
  metric("kubevirt_vmi_migration_memory_transfer_rate_bytes", "The rate at which the memory is being transferred.", "gauge", (m) => m.memoryTransferRateBytes);
  if (!opts.kubevirtOnly) metric("kubevirt_sim_migration_received_bytes", "Simulated bytes a decentralized migration target received (sim only).", "gauge", (m) => m.receivedBytes);
  return `${lines.join("\n")}\n`;
}
