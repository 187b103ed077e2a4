// MigrationPlan documents ferryctl writes for the admin: `evacuate` (the broker places every VM of
// a cluster) and `migrate` (one VM). Pure; the result is checked with proto/plan.ts, the only
// schema, so a builder bug shows up as a schema error here rather than at the broker.
import { createHash } from "node:crypto";
import { parsePlanObject, PLAN_API_VERSION, PLAN_KIND, type MigrationPlan, type MigrationPlanInput } from "../proto/plan.js";
import { CliError, usageError } from "./errors.js";
import { isDns1123Label } from "../proto/names.js";

const LABEL_MAX = 63;

/**
 * A deterministic DNS-1123 label from parts: joined with "-", dots turned into "-", and when too
 * long cut with an 8-hex hash of the full text so two long names never collide.
 */
export function planNameFrom(parts: readonly string[]): string {
  const full = parts.join("-").toLowerCase().replace(/[^a-z0-9-]/g, "-");
  if (full.length <= LABEL_MAX) return full;
  const hash = createHash("sha256").update(parts.join("/")).digest("hex").slice(0, 8);
  return `${full.slice(0, LABEL_MAX - 9).replace(/-+$/, "")}-${hash}`;
}

function checked(doc: MigrationPlanInput): MigrationPlan {
  const r = parsePlanObject(doc);
  if (!r.ok) throw usageError(`invalid arguments: ${r.error}`);
  return r.value;
}

function list(csv: string | undefined): string[] | undefined {
  if (csv === undefined) return undefined;
  const items = csv
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? [...new Set(items)] : undefined;
}

export interface EvacuateOptions {
  cluster: string;
  /** Comma-separated candidate clusters (--to); default: every available, uncordoned one. */
  to?: string;
  /** Plan name (--name); default evacuate-<cluster>. */
  name?: string;
  maxInFlight?: number;
}

/** Every VM of `cluster`, placed by the broker (optionally only on `to`). */
export function evacuationPlan(o: EvacuateOptions): MigrationPlan {
  if (!isDns1123Label(o.cluster)) throw usageError(`cluster name "${o.cluster}" is not a DNS-1123 label (lower-case letters, digits, '-')`);
  const candidates = list(o.to);
  if (candidates?.includes(o.cluster)) throw usageError(`--to lists the cluster being evacuated ("${o.cluster}"); name only other clusters`);
  for (const c of candidates ?? []) if (!isDns1123Label(c)) throw usageError(`--to: "${c}" is not a cluster name (DNS-1123 label)`);
  return checked({
    apiVersion: PLAN_API_VERSION,
    kind: PLAN_KIND,
    metadata: { name: o.name ?? planNameFrom(["evacuate", o.cluster]) },
    spec: {
      source: { cluster: o.cluster },
      selector: { allVMs: true },
      target: { evacuate: true, ...(candidates ? { candidates } : {}) },
      ...(o.maxInFlight !== undefined ? { limits: { maxInFlight: o.maxInFlight } } : {}),
    },
  });
}

export interface MigrateOptions {
  /** "namespace/name". */
  vm: string;
  from: string;
  to: string;
  /** Move every volume to this storage class (--storage-class). */
  storageClass?: string;
  /** The source cluster's storage classes (from its inventory); needed with storageClass. */
  sourceStorageClasses?: readonly string[];
  targetNamespace?: string;
  name?: string;
}

/** Splits "ns/vm"; a usage error names the expected form. */
export function parseVmArg(arg: string): { namespace: string; name: string } {
  const m = /^([^/]+)\/([^/]+)$/.exec(arg);
  if (!m) throw usageError(`"${arg}" is not NAMESPACE/VM, e.g. "db/pg-0"`);
  return { namespace: m[1]!, name: m[2]! };
}

/**
 * A one-VM plan. With --storage-class every storage class of the source cluster maps to it (the
 * CLI cannot see the VM's volumes, and an unused mapping is harmless), which also makes
 * `--from A --to A --storage-class X` a same-cluster storage migration.
 */
export function migrationPlan(o: MigrateOptions): MigrationPlan {
  const vm = parseVmArg(o.vm);
  if (o.storageClass !== undefined && !o.sourceStorageClasses?.length) {
    throw new CliError(`--storage-class needs the storage classes of cluster "${o.from}", and it has not reported an inventory yet; wait for its agent (ferryctl cluster get ${o.from}) or write a plan with a storageMap`);
  }
  const storageMap = o.storageClass === undefined ? [] : (o.sourceStorageClasses ?? []).map((source) => ({ source, target: o.storageClass! }));
  if (o.from === o.to && o.storageClass === undefined && (o.targetNamespace === undefined || o.targetNamespace === vm.namespace)) {
    throw usageError(`--from and --to are both "${o.from}" and nothing changes; add --storage-class to move the volumes, or --target-namespace`);
  }
  return checked({
    apiVersion: PLAN_API_VERSION,
    kind: PLAN_KIND,
    metadata: { name: o.name ?? planNameFrom(["migrate", vm.namespace, vm.name]) },
    spec: {
      source: { cluster: o.from },
      vms: [vm],
      target: { cluster: o.to, ...(o.targetNamespace ? { namespace: o.targetNamespace } : {}) },
      storageMap,
    },
  });
}
