// Plan expansion and validation: (plan document, cluster inventories and views) → the migrations
// to create, each with its kind and target, and the findings that explain what would go wrong.
//
//   expandPlan()        broker-level: selection, kind, placement, cluster and VM checks
//   checkPlan()         the agents' word: describe-vm + preflight on both sides, as commands the
//                       shell performs; call again with the results until it returns a report
//   createPlanRecords() the records to store when the report has no errors
//
// A dry run is the report; nothing is created.
import type { Inventory, InventoryVm, MigrationState, PreflightResult, VmRef } from "../../proto/bus/index.js";
import type { MigrationPlan } from "../../proto/plan.js";
import type { Clusters } from "./clusters.js";
import { rpcErrorText, resultFor, type Command, type CommandResult, type PreflightRequestBody } from "./commands.js";
import { clusterIssues, compatIssues, diskBytes, finding, hasErrors, storageCapacityIssues, storageNeeds, vmPower } from "./compat.js";
import { clip, formatBytes, vmName } from "./format.js";
import { place } from "./placement.js";
import { MAX_FINDINGS, migrationUidFor, type Finding, type MigrationKind, type MigrationRecord, type PlanRecord } from "./records.js";

type Spec = MigrationPlan["spec"];
type LabelSelector = NonNullable<NonNullable<Spec["selector"]>["labelSelector"]>;

export interface ExpandInput {
  plan: MigrationPlan;
  clusters: Clusters;
  inventories: Readonly<Record<string, Inventory | undefined>>;
  /** Unfinished migrations of other plans: their VMs are taken, their memory (and, see promisedStorage, disk bytes per target class) promised to their targets. */
  busy?: ReadonlyArray<BusyMigration>;
  now: Date;
}

export interface BusyMigration {
  plan: string;
  source: VmRef;
  target: VmRef;
  memoryBytes: number;
  /** Target storage class → bytes its volumes will take there and the cluster's capacity does not count yet. */
  storageBytes?: Readonly<Record<string, number>>;
}

/** Before these states' end the target holds none of the migration's volumes yet (PreparingTarget / Migrating create them). */
const BEFORE_VOLUMES: ReadonlySet<MigrationState> = new Set(["Pending", "Queued", "Validating", "Trusting"]);

/**
 * Disk bytes per target storage class an unfinished migration of another plan will still take on its
 * target: all of them until it creates its volumes there, none once it has (they are bound then, and
 * the cluster's CSIStorageCapacity already counts them; counting them again would refuse room that
 * exists). Empty when its source VM is no longer in the source inventory.
 */
export function promisedStorage(m: Pick<MigrationRecord, "state" | "source" | "target" | "kind">, spec: Pick<Spec, "storageMap">, inventories: Readonly<Record<string, Inventory | undefined>>): Record<string, number> {
  if (!BEFORE_VOLUMES.has(m.state)) return {};
  const vm = inventories[m.source.cluster]?.vms.find((v) => v.namespace === m.source.namespace && v.name === m.source.name);
  return vm ? Object.fromEntries(storageNeeds(vm, spec, m.kind, inventories[m.target.cluster])) : {};
}

/**
 * Memory an unfinished migration of another plan will still take on its target: none once the target
 * VM has a live VMI there (the receiver, or the VM itself in a storage move), since the inventory's
 * nodes already count that VMI's memory; counting it again would refuse room that exists.
 */
export function promisedMemory(m: Pick<MigrationRecord, "target" | "size">, inventories: Readonly<Record<string, Inventory | undefined>>): number {
  const vm = inventories[m.target.cluster]?.vms.find((v) => v.namespace === m.target.namespace && v.name === m.target.name);
  const live = vm?.vmiPhase !== undefined && vm.vmiPhase !== "Succeeded" && vm.vmiPhase !== "Failed";
  return live ? 0 : m.size.memoryBytes;
}

/** Per cluster and class, the bytes `busy` promised. */
function storagePromises(busy: readonly BusyMigration[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  for (const b of busy) {
    for (const [cls, bytes] of Object.entries(b.storageBytes ?? {})) {
      const byClass = (out[b.target.cluster] ??= {});
      byClass[cls] = (byClass[cls] ?? 0) + bytes;
    }
  }
  return out;
}

export interface PlannedMigration {
  source: VmRef;
  target: VmRef;
  kind: MigrationKind;
  size: { memoryBytes: number; diskBytes: number };
  sourceNode?: string;
  /** Evacuation: why this target. */
  placement?: string;
}

export interface Expansion {
  plan: MigrationPlan;
  migrations: PlannedMigration[];
  findings: Finding[];
}

export interface PlanReport {
  /** No finding is an error: the plan may be created. */
  ok: boolean;
  findings: Finding[];
  migrations: PlannedMigration[];
}

/** Whether `labels` satisfy a Kubernetes label selector (every term must hold). */
export function matchesSelector(selector: LabelSelector, labels: Readonly<Record<string, string>>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const value = labels[e.key];
    const ok =
      e.operator === "Exists"
        ? has
        : e.operator === "DoesNotExist"
          ? !has
          : e.operator === "In"
            ? has && (e.values ?? []).includes(value as string)
            : !has || !(e.values ?? []).includes(value as string);
    if (!ok) return false;
  }
  return true;
}

interface Selected {
  vm: InventoryVm;
  /** Listed by name in spec.vms (index), rather than picked by the selector. */
  listed?: number;
}

function selectVms(spec: Spec, inv: Inventory, findings: Finding[]): Selected[] {
  const source = spec.source.cluster;
  if (spec.vms) {
    const out: Selected[] = [];
    spec.vms.forEach((ref, i) => {
      const vm = inv.vms.find((v) => v.namespace === ref.namespace && v.name === ref.name);
      const left = inv.omitted?.items.find((o) => o.kind === "VirtualMachine" && o.name === `${ref.namespace}/${ref.name}`);
      if (vm) out.push({ vm, listed: i });
      else if (left) {
        findings.push(finding("error", "VmNotReported", `cluster ${source}'s agent left VM ${ref.namespace}/${ref.name} out of its inventory: ${left.reason}`, "change what the reason names on the VM, or move it by hand", `spec.vms[${i}]`, { cluster: source, ...ref }));
      } else {
        findings.push(
          finding("error", "VmNotFound", `VM ${ref.namespace}/${ref.name} does not exist on cluster ${source}`, "fix the namespace/name, or remove the entry", `spec.vms[${i}]`, { cluster: source, ...ref }),
        );
      }
    });
    return out;
  }
  const sel = spec.selector ?? {};
  const picked = inv.vms.filter((vm) => (sel.namespaces ? sel.namespaces.includes(vm.namespace) : true) && (sel.labelSelector ? matchesSelector(sel.labelSelector, vm.labels ?? {}) : true));
  const vmsLeftOut = inv.omitted?.items.filter((o) => o.kind === "VirtualMachine") ?? [];
  if (vmsLeftOut.length > 0) {
    findings.push(finding("warning", "VmsNotReported", `cluster ${source}'s agent left ${inv.omitted!.total} object(s) out of its inventory, so the selector cannot see them (first: ${vmsLeftOut[0]!.name}: ${vmsLeftOut[0]!.reason})`, "see the agent's log for the full list", "spec.selector"));
  }
  if (picked.length === 0) {
    findings.push(finding("error", "NothingSelected", `spec.selector matches no VM on cluster ${source}`, "widen the selector (namespaces, labelSelector) or check the source cluster", "spec.selector"));
  }
  return picked.map((vm) => ({ vm }));
}

function kindOf(vm: InventoryVm, source: VmRef, target: VmRef): { kind?: MigrationKind; problem?: { code: string; message: string; fix: string } } {
  const power = vmPower(vm);
  const sameCluster = source.cluster === target.cluster;
  if (power === "unsettled") {
    return {
      problem: {
        code: "VmNotSettled",
        message: `VM ${vmName(source)} is neither running nor stopped (status ${vm.printableStatus}${vm.vmiPhase ? `, VMI phase ${vm.vmiPhase}` : ""})`,
        fix: "wait until it is Running or Stopped, then submit the plan again",
      },
    };
  }
  if (power === "stopped") {
    if (!sameCluster) {
      return {
        problem: {
          code: "VmStoppedCrossCluster",
          message: `VM ${vmName(source)} is stopped; ferry moves VMs between clusters only live, and a stopped VM only within its own cluster (offline)`,
          fix: `start the VM to move it live, or move it within cluster ${source.cluster}`,
        },
      };
    }
    if (source.namespace !== target.namespace) {
      return {
        problem: {
          code: "OfflineAcrossNamespaces",
          message: `VM ${vmName(source)} is stopped; an offline move swaps its volumes in place and cannot change its namespace to ${target.namespace}`,
          fix: "remove spec.target.namespace, or start the VM to move it live",
        },
      };
    }
    return { kind: "offline" };
  }
  return { kind: sameCluster && source.namespace === target.namespace ? "storage-live" : "decentralized-live" };
}

function planned(source: VmRef, target: VmRef, kind: MigrationKind, vm: InventoryVm, placement?: string): PlannedMigration {
  return {
    source,
    target,
    kind,
    size: { memoryBytes: vm.memoryBytes, diskBytes: diskBytes(vm) },
    ...(vm.node && vmPower(vm) === "running" ? { sourceNode: vm.node } : {}),
    ...(placement ? { placement: clip(placement) } : {}),
  };
}

/** Broker-level expansion and validation (no agent round-trips). */
export function expandPlan(input: ExpandInput): Expansion {
  const { plan, clusters, inventories, now } = input;
  const spec = plan.spec;
  const findings: Finding[] = [];
  const migrations: PlannedMigration[] = [];
  const srcName = spec.source.cluster;
  const srcView = clusters[srcName];
  const srcInv = inventories[srcName];

  if (!srcInv) {
    findings.push(...clusterIssues(srcName, srcView, undefined, "source", new Set(), now, "spec.source.cluster"));
    if (!hasErrors(findings)) {
      findings.push(finding("error", "InventoryMissing", `source cluster ${srcName} has not reported an inventory yet`, "wait for its agent to report, then submit the plan again", "spec.source.cluster"));
    }
    return { plan, migrations, findings: dedupe(findings) };
  }

  const selected = selectVms(spec, srcInv, findings);
  const busy = new Map((input.busy ?? []).map((b) => [vmName(b.source, true), b]));
  const usable: Array<Selected & { ref: VmRef }> = [];
  for (const s of selected) {
    const ref: VmRef = { cluster: srcName, namespace: s.vm.namespace, name: s.vm.name };
    const field = s.listed === undefined ? "spec.selector" : `spec.vms[${s.listed}]`;
    const other = busy.get(vmName(ref, true));
    if (other) {
      findings.push(finding("error", "VmAlreadyMigrating", `VM ${vmName(ref)} is already being moved by plan ${other.plan} (to ${vmName(other.target, true)})`, `wait for plan ${other.plan} to finish or cancel it`, field, ref));
      continue;
    }
    usable.push({ ...s, ref });
  }

  const targetOf = (ref: VmRef): VmRef | undefined => (spec.target.cluster ? { cluster: spec.target.cluster, namespace: spec.target.namespace ?? ref.namespace, name: ref.name } : undefined);
  const kinds = new Set<MigrationKind>();
  const toPlace: Array<{ ref: VmRef; vm: InventoryVm }> = [];
  for (const s of usable) {
    // Evacuation targets another cluster: any candidate stands in for classification.
    const target = targetOf(s.ref) ?? { cluster: `${srcName}-evacuation-target`, namespace: s.ref.namespace, name: s.ref.name };
    const { kind, problem } = kindOf(s.vm, s.ref, target);
    if (problem) {
      // A VM named in spec.vms must move; one a selector happened to pick is skipped with a warning.
      const listed = s.listed !== undefined;
      findings.push(finding(listed ? "error" : "warning", problem.code, listed ? problem.message : `${problem.message}; skipped`, problem.fix, listed ? `spec.vms[${s.listed}]` : "spec.selector", s.ref));
      continue;
    }
    if (!kind) continue;
    kinds.add(kind);
    const fixed = targetOf(s.ref);
    if (fixed) migrations.push(planned(s.ref, fixed, kind, s.vm));
    else toPlace.push({ ref: s.ref, vm: s.vm });
  }

  findings.push(...clusterIssues(srcName, srcView, srcInv, "source", kinds, now, "spec.source.cluster", spec.target.evacuate === true));

  if (spec.target.cluster) {
    const tgtName = spec.target.cluster;
    const tgtInv = inventories[tgtName];
    const crossKinds = new Set([...kinds].filter((k) => k === "decentralized-live"));
    if (tgtName !== srcName) findings.push(...clusterIssues(tgtName, clusters[tgtName], tgtInv, "target", crossKinds, now, "spec.target.cluster"));
    else if (crossKinds.size > 0) {
      findings.push(
        finding("warning", "SameClusterDecentralized", `VMs move to another namespace of cluster ${srcName} by decentralized live migration, a path with known KubeVirt bugs (kubevirt/kubevirt#18259)`, "prefer moving between clusters, or keep the namespace (storage live migration)", "spec.target.namespace"),
      );
    }
    const needs = new Map<string, number>();
    for (const m of migrations) {
      const vm = srcInv.vms.find((v) => v.namespace === m.source.namespace && v.name === m.source.name) as InventoryVm;
      findings.push(...compatIssues({ vm, source: m.source, target: m.target, kind: m.kind, sourceInventory: srcInv, ...(tgtInv ? { targetInventory: tgtInv } : {}), spec }));
      for (const [cls, bytes] of storageNeeds(vm, spec, m.kind, tgtInv)) needs.set(cls, (needs.get(cls) ?? 0) + bytes);
    }
    if (tgtInv && tgtName !== srcName) findings.push(...capacityWarning(tgtName, tgtInv, migrations, input.busy ?? []));
    if (tgtInv) findings.push(...storageCapacityIssues(tgtName, tgtInv, needs, new Map(Object.entries(storagePromises(input.busy ?? [])[tgtName] ?? {})), spec));
  } else {
    const names = spec.target.candidates ?? Object.keys(clusters).filter((c) => c !== srcName);
    const candidates = [];
    for (const [i, name] of names.entries()) {
      const view = clusters[name];
      if (!view || view.availability === "unknown") {
        if (spec.target.candidates) findings.push(finding("error", "ClusterUnknown", `evacuation candidate ${name} is not registered with the broker`, "fix the name or remove it from spec.target.candidates", `spec.target.candidates[${i}]`));
        continue;
      }
      const inventory = inventories[name];
      candidates.push({ view, ...(inventory ? { inventory } : {}) });
    }
    const reservedBytes: Record<string, number> = {};
    for (const b of input.busy ?? []) reservedBytes[b.target.cluster] = (reservedBytes[b.target.cluster] ?? 0) + b.memoryBytes;
    const reservedStorage = storagePromises(input.busy ?? []);
    for (const d of place({ vms: toPlace, sourceInventory: srcInv, candidates, spec, reservedBytes, reservedStorage, now })) {
      findings.push(...d.findings);
      const vm = toPlace.find((p) => p.ref.namespace === d.source.namespace && p.ref.name === d.source.name)?.vm as InventoryVm;
      if (d.target) migrations.push(planned(d.source, d.target, "decentralized-live", vm, d.reason));
    }
  }

  const seen = new Map<string, PlannedMigration>();
  for (const m of migrations) {
    const key = vmName(m.target, true);
    const first = seen.get(key);
    if (first) {
      findings.push(finding("error", "TargetNameCollision", `VMs ${vmName(first.source)} and ${vmName(m.source)} would both become ${vmName(m.target, true)}`, "keep each VM's namespace (remove spec.target.namespace) or move them in separate plans to different namespaces", "spec.target.namespace", m.source));
    } else seen.set(key, m);
  }

  migrations.sort((a, b) => vmName(a.source).localeCompare(vmName(b.source)));
  if (migrations.length === 0 && selected.length > 0 && !hasErrors(findings)) {
    findings.push(finding("error", "NothingToMove", "no VM the plan selects can be moved (see the warnings)", "start the VMs that must move live, or narrow the selection"));
  }
  return { plan, migrations, findings: dedupe(findings) };
}

function capacityWarning(cluster: string, inv: Inventory, migrations: readonly PlannedMigration[], busy: NonNullable<ExpandInput["busy"]>): Finding[] {
  const allocatable = inv.nodes.filter((n) => n.schedulable).reduce((s, n) => s + n.allocatableMemoryBytes, 0);
  const used = inv.vms.filter((v) => v.vmiPhase !== undefined && v.vmiPhase !== "Succeeded" && v.vmiPhase !== "Failed").reduce((s, v) => s + v.memoryBytes, 0);
  const promised = busy.filter((b) => b.target.cluster === cluster).reduce((s, b) => s + b.memoryBytes, 0);
  const need = migrations.filter((m) => m.kind === "decentralized-live").reduce((s, m) => s + m.size.memoryBytes, 0);
  const free = allocatable - used - promised;
  if (need <= free) return [];
  return [
    finding(
      "warning",
      "TargetCapacity",
      `the plan moves ${formatBytes(need)} of VM memory to cluster ${cluster}, which has about ${formatBytes(Math.max(0, free))} free (${formatBytes(allocatable)} allocatable on schedulable nodes); receiver VMs that do not fit stay Pending and their migrations stall`,
      `add capacity to ${cluster}, or split the plan`,
      "spec.target.cluster",
    ),
  ];
}

const findingKey = (f: Finding) => `${f.vm ? vmName(f.vm, true) : ""}\u0000${f.code}\u0000${f.field}\u0000${f.message}`;

function dedupe(findings: readonly Finding[]): Finding[] {
  const seen = new Set<string>();
  return findings.filter((f) => {
    const k = findingKey(f);
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/** Caps a finding list for storage: errors first, then a summary of what was left out. */
export function boundFindings(findings: readonly Finding[], max = MAX_FINDINGS): Finding[] {
  if (findings.length <= max) return [...findings];
  const sorted = [...findings].sort((a, b) => (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1));
  const kept = sorted.slice(0, max - 1);
  const dropped = findings.length - kept.length;
  return [...kept, finding("warning", "FindingsTruncated", `${dropped} more findings are not shown`, "fix the ones above and validate again (dry run)")];
}

// --- Agent checks ---------------------------------------------------------------------------

const checkId = (m: PlannedMigration, what: string) => `plan/${vmName(m.source)}/${what}`;

/** What the target agent needs to check the VM can land (and what the source agent checks). */
export function preflightBody(m: Pick<PlannedMigration, "source" | "target" | "kind">, spec: Pick<Spec, "storageMap" | "networkMap">, side: "source" | "target", sourceFacts?: PreflightRequestBody["sourceFacts"]): PreflightRequestBody {
  return {
    side,
    migrationKind: m.kind,
    source: m.source,
    target: m.target,
    storageMap: spec.storageMap,
    networkMap: spec.networkMap,
    ...(sourceFacts ? { sourceFacts } : {}),
  };
}

/** Turns an agent's preflight result into findings about `vm`. */
export function preflightFindings(result: Pick<PreflightResult, "issues">, vm: VmRef): Finding[] {
  return result.issues.map((i) => ({ ...i, vm }));
}

/**
 * The agents' checks for every planned migration whose clusters are available: describe-vm on the
 * source, then preflight on both sides. Returns the commands still to run, or (when none are left)
 * the full report. Agents that cannot answer produce a warning: preflight runs again before each
 * attempt, so an unanswered check never blocks a plan.
 */
export function checkPlan(expansion: Expansion, results: readonly CommandResult[], clusters: Clusters): { commands: Command[]; report?: PlanReport } {
  const spec = expansion.plan.spec;
  const findings = [...expansion.findings];
  const commands: Command[] = [];
  const up = (c: string) => clusters[c]?.availability === "available";
  for (const m of expansion.migrations) {
    if (!up(m.source.cluster) || !up(m.target.cluster)) continue;
    const describe = resultFor(results, checkId(m, "describe-vm"), "describe-vm");
    if (!describe) {
      commands.push({ id: checkId(m, "describe-vm"), type: "describe-vm", cluster: m.source.cluster, vm: { namespace: m.source.namespace, name: m.source.name } });
      continue;
    }
    if (describe.reply.kind === "RpcError") {
      findings.push(
        describe.reply.code === "NotFound"
          ? finding("error", "VmNotFound", `VM ${vmName(m.source)} no longer exists on cluster ${m.source.cluster}`, "remove it from the plan", "", m.source)
          : finding("warning", "PreflightUnavailable", `could not describe VM ${vmName(m.source)} on ${m.source.cluster}: ${rpcErrorText(describe.reply)}`, "preflight runs again before the migration starts", "", m.source),
      );
      continue;
    }
    for (const side of ["source", "target"] as const) {
      const id = checkId(m, `preflight-${side}`);
      const cluster = side === "source" ? m.source.cluster : m.target.cluster;
      const r = resultFor(results, id, "preflight");
      if (!r) {
        commands.push({ id, type: "preflight", cluster, request: preflightBody(m, spec, side, describe.reply.sourceFacts) });
      } else if (r.reply.kind === "RpcError") {
        findings.push(finding("warning", "PreflightUnavailable", `${side} preflight of VM ${vmName(m.source)} on ${cluster} failed: ${rpcErrorText(r.reply)}`, "preflight runs again before the migration starts", "", m.source));
      } else {
        findings.push(...preflightFindings(r.reply, m.source));
      }
    }
  }
  if (commands.length > 0) return { commands };
  const all = dedupe(findings);
  return { commands, report: { ok: !hasErrors(all), findings: all, migrations: expansion.migrations } };
}

// --- Records ----------------------------------------------------------------------------------

export function newMigrationRecord(m: PlannedMigration, plan: string, uid: string, now: Date): MigrationRecord {
  const at = now.toISOString();
  return {
    uid,
    plan,
    kind: m.kind,
    source: m.source,
    target: m.target,
    state: "Pending",
    attempt: 0,
    attempts: [],
    retryBase: 0,
    commandErrors: [],
    waitingReason: "accepted; waiting for the scheduler",
    cancelRequested: false,
    retryRequested: false,
    size: m.size,
    ...(m.sourceNode ? { sourceNode: m.sourceNode } : {}),
    ...(m.placement ? { placement: m.placement } : {}),
    createdAt: at,
    updatedAt: at,
  };
}

/** The plan and migration records to store for a report without errors (throws otherwise: check `report.ok`). */
export function createPlanRecords(plan: MigrationPlan, report: PlanReport, planUid: string, now: Date): { plan: PlanRecord; migrations: MigrationRecord[] } {
  if (!report.ok) throw new Error(`plan ${plan.metadata.name} has validation errors; create nothing`);
  const at = now.toISOString();
  const migrations = report.migrations.map((m, i) => newMigrationRecord(m, plan.metadata.name, migrationUidFor(planUid, i), now));
  const n = migrations.length;
  return {
    plan: {
      name: plan.metadata.name,
      uid: planUid,
      document: plan,
      phase: n === 0 ? "Succeeded" : "Pending",
      counters: { total: n, queued: n, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
      findings: boundFindings(report.findings),
      cancelRequested: false,
      waitingReason: "",
      createdAt: at,
      ...(n === 0 ? { startedAt: at, finishedAt: at } : {}),
      updatedAt: at,
    },
    migrations,
  };
}
