// Output in kubectl's conventions, as pure functions of API messages: aligned tables with
// upper-case headers (`-o wide` adds columns), or the messages themselves as proto3 JSON / YAML.
import { stringify as toYaml } from "yaml";
import { Cluster, ClusterState, clusterStateToJSON, type StorageClassSummary } from "../proto/gen/ferry/v1/clusters.js";
import { Migration, MigrationKind, MigrationState, migrationKindToJSON, migrationStateToJSON } from "../proto/gen/ferry/v1/migrations.js";
import { Plan, PlanPhase, planPhaseToJSON } from "../proto/gen/ferry/v1/plans.js";
import type { Duration } from "../proto/gen/google/protobuf/duration.js";
import { Severity, type VmRef } from "../proto/gen/ferry/v1/types.js";
import { usageError } from "./errors.js";

export const OUTPUT_FORMATS = ["table", "wide", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** `-o` value → format; the default (no -o) is the table. */
export function parseOutputFormat(value: string | undefined): OutputFormat {
  if (value === undefined || value === "") return "table";
  if ((OUTPUT_FORMATS as readonly string[]).includes(value) && value !== "table") return value as OutputFormat;
  throw usageError(`unknown output format "${value}"; use -o json, -o yaml or -o wide`);
}

/** Columns padded to the widest cell, separated by three spaces, like kubectl's tabwriter. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join("   ")
      .trimEnd();
  return [line(header), ...rows.map(line)].join("\n") + "\n";
}

/** Enum value → kubectl-style word: MIGRATION_STATE_PREPARING_TARGET → PreparingTarget. */
export function enumWord(json: string, prefix: string): string {
  const rest = json.startsWith(prefix) ? json.slice(prefix.length) : json;
  return rest
    .toLowerCase()
    .split("_")
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : ""))
    .join("");
}

export const clusterStateWord = (s: ClusterState) => enumWord(clusterStateToJSON(s), "CLUSTER_STATE_");
export const migrationStateWord = (s: MigrationState) => enumWord(migrationStateToJSON(s), "MIGRATION_STATE_");
export const planPhaseWord = (p: PlanPhase) => enumWord(planPhaseToJSON(p), "PLAN_PHASE_");
export const migrationKindWord = (k: MigrationKind) => enumWord(migrationKindToJSON(k), "MIGRATION_KIND_");

/** kubectl's age: 45s, 12m, 3h, 5d (one unit, rounded down); "<unknown>" without a time. */
export function age(t: Date | undefined, now: Date): string {
  if (!t) return "<unknown>";
  const s = Math.max(0, Math.floor((now.getTime() - t.getTime()) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Time until `t`: "in 6d", or "expired" once past. */
export function until(t: Date | undefined, now: Date): string {
  if (!t) return "";
  if (t.getTime() <= now.getTime()) return "expired";
  return `in ${age(now, t)}`;
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

/** 1536 → "1.5 KiB"; binary units, one decimal below 10 of a unit. */
export function bytes(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  const digits = u === 0 || v >= 10 ? 0 : 1;
  return `${v.toFixed(digits)} ${UNITS[u]}`;
}

/** Seconds → "1:05:09" / "5:09" / "0:09". */
export function clock(totalSeconds: number): string {
  const s = Math.max(0, Math.round(totalSeconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, "0");
  return h > 0 ? `${h}:${String(m).padStart(2, "0")}:${sec}` : `${m}:${sec}`;
}

export function durationSeconds(d: Duration | undefined): number | undefined {
  return d ? d.seconds + d.nanos / 1e9 : undefined;
}

export function vmRef(v: VmRef | undefined, withCluster = true): string {
  if (!v) return "";
  const nsName = v.namespace || v.name ? `${v.namespace}/${v.name}` : "";
  if (!withCluster) return nsName;
  return v.cluster ? `${v.cluster}:${nsName}` : nsName;
}

// ---- clusters ----

/** "ceph(default, 40 GiB free)": the class, whether it is the default, and its free space where the driver reports one. */
function storageClassWord(s: StorageClassSummary): string {
  const notes = [...(s.isDefault ? ["default"] : []), ...(s.freeBytes !== undefined ? [`${bytes(s.freeBytes)} free`] : [])];
  return s.name + (notes.length ? `(${notes.join(", ")})` : "");
}

export function clusterTable(clusters: readonly Cluster[], wide: boolean, now: Date): string {
  const header = ["NAME", "STATE", "CORDONED", "KUBEVIRT", "VMS", "HEARTBEAT", "CERT EXPIRES", "AGE"];
  if (wide) header.push("NODES", "ARCH", "DECENTRALIZED", "SYNC ADDRESSES", "STORAGE CLASSES", "AGENT", "CORDON REASON");
  const rows = clusters.map((c) => {
    const inv = c.inventory;
    const row = [
      c.name,
      clusterStateWord(c.state),
      c.cordoned ? "yes" : "no",
      inv?.kubevirtVersion || "-",
      inv ? String(inv.vmCount) : "-",
      c.lastHeartbeatTime ? `${age(c.lastHeartbeatTime, now)} ago` : "never",
      c.certificateExpireTime ? until(c.certificateExpireTime, now) : "-",
      age(c.createTime, now),
    ];
    if (wide) {
      row.push(
        inv ? String(inv.nodeCount) : "-",
        inv?.architectures.join(",") || "-",
        inv ? (inv.decentralizedMigrationEnabled ? "yes" : "no") : "-",
        inv?.synchronizationAddresses.join(",") || "-",
        inv?.storageClasses.map(storageClassWord).join(",") || "-",
        c.agentVersion || "-",
        c.cordonReason || "-",
      );
    }
    return row;
  });
  return table(header, rows);
}

// ---- plans ----

function planSpec(p: Plan): { source: string; target: string } {
  const spec = (p.document?.["spec"] ?? {}) as { source?: { cluster?: string }; target?: { cluster?: string; namespace?: string; evacuate?: boolean; candidates?: string[] } };
  const t = spec.target ?? {};
  const target = t.evacuate ? `evacuate${t.candidates ? `(${t.candidates.join(",")})` : ""}` : `${t.cluster ?? "?"}${t.namespace ? `/${t.namespace}` : ""}`;
  return { source: spec.source?.cluster ?? "?", target };
}

export function planTable(plans: readonly Plan[], wide: boolean, now: Date): string {
  const header = ["NAME", "PHASE", "SUCCEEDED", "RUNNING", "QUEUED", "FAILED", "AGE"];
  if (wide) header.push("SOURCE", "TARGET", "CANCELLED", "WAITING");
  const rows = plans.map((p) => {
    const c = p.counters;
    const row = [p.name, planPhaseWord(p.phase), `${c?.succeeded ?? 0}/${c?.total ?? 0}`, String(c?.running ?? 0), String(c?.queued ?? 0), String(c?.failed ?? 0), age(p.createTime, now)];
    if (wide) {
      const { source, target } = planSpec(p);
      row.push(source, target, String(c?.cancelled ?? 0), p.waitingReason || "-");
    }
    return row;
  });
  return table(header, rows);
}

// ---- migrations ----

/**
 * How far the copy is, 0..1, and the bytes to show; undefined while no total is known. A live
 * migration re-sends memory the guest dirtied, so its processed bytes can pass libvirt's total: with
 * bytes remaining reported, the fraction is processed / (processed + remaining). A succeeded
 * migration moved everything: a full bar and the total.
 */
export function copyProgress(m: Migration): { fraction: number; processed: number; total: number } | undefined {
  const p = m.progress;
  const total = p?.dataTotalBytes ?? 0;
  if (!p || total === 0) return undefined;
  if (m.state === MigrationState.SUCCEEDED) return { fraction: 1, processed: Math.max(p.dataProcessedBytes, total), total };
  const whole = p.dataRemainingBytes > 0 ? p.dataProcessedBytes + p.dataRemainingBytes : total;
  return { fraction: Math.min(1, p.dataProcessedBytes / whole), processed: p.dataProcessedBytes, total };
}

/** "43% 1.7 GiB/4.0 GiB" while bytes are known; "" otherwise. */
export function progressText(m: Migration): string {
  const c = copyProgress(m);
  if (!c) return "";
  return `${Math.floor(c.fraction * 100)}% ${bytes(c.processed)}/${bytes(c.total)}`;
}

/** Why a migration waits or failed, in one line. */
export function migrationNote(m: Migration): string {
  if (m.manualRecovery) return `manual recovery: ${m.manualRecovery}`;
  if (m.state === MigrationState.FAILED && m.lastError) return `${m.lastError.code}: ${m.lastError.message}${m.lastError.fix ? ` (fix: ${m.lastError.fix})` : ""}`;
  if (m.waitingReason) return m.waitingReason;
  return "";
}

export function migrationTable(migrations: readonly Migration[], wide: boolean, now: Date): string {
  const header = ["NAME", "STATE", "SOURCE", "TARGET", "ATTEMPT", "PROGRESS", "AGE", "NOTE"];
  if (wide) header.splice(7, 0, "KIND", "UID", "SOURCE VMIM", "TARGET VMIM", "RATE", "PLACEMENT");
  const rows = migrations.map((m) => {
    const row = [
      m.name,
      migrationStateWord(m.state),
      vmRef(m.source),
      vmRef(m.target) || "(unplaced)",
      String(m.attempt),
      progressText(m) || "-",
      age(m.createTime, now),
      // Evacuations: why placement chose the target, when nothing more pressing is to be said.
      migrationNote(m) || m.placement || "-",
    ];
    if (wide) {
      const p = m.progress;
      row.splice(7, 0, migrationKindWord(m.kind), m.uid, p?.sourceVmimPhase || "-", p?.targetVmimPhase || "-", p?.dataRateBytesPerSecond ? `${bytes(p.dataRateBytesPerSecond)}/s` : "-", m.placement || "-");
    }
    return row;
  });
  return table(header, rows);
}

/** Validation findings (dry run or warnings), one per line: "ERROR east/db/pg-0 StorageClassUnmapped: … (fix: …)". */
export function validationLines(p: Plan): string[] {
  return p.validation.map((v) => {
    const sev = v.severity === Severity.ERROR ? "ERROR" : v.severity === Severity.WARNING ? "WARNING" : "INFO";
    const who = v.vm ? `${v.vm.cluster}/${v.vm.namespace}/${v.vm.name} ` : "";
    const field = v.field ? ` [${v.field}]` : "";
    return `${sev} ${who}${v.code}: ${v.message}${field}${v.fix ? ` (fix: ${v.fix})` : ""}`;
  });
}

// ---- -o json|yaml ----

/** One message or a list, in proto3 JSON (enum names, RFC 3339 times), as JSON or YAML text. */
export function structured(value: unknown, format: "json" | "yaml"): string {
  return format === "json" ? JSON.stringify(value, null, 2) + "\n" : toYaml(value);
}

export const toJson = {
  cluster: (c: Cluster) => Cluster.toJSON(c),
  plan: (p: Plan) => Plan.toJSON(p),
  migration: (m: Migration) => Migration.toJSON(m),
};

/** A list as kubectl prints it: `{kind: List, items: [...]}`. */
export function list(items: unknown[]): { kind: "List"; items: unknown[] } {
  return { kind: "List", items };
}
