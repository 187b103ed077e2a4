// Evacuation placement: for a plan with `target.evacuate: true`, choose a target cluster per VM.
//
// Largest VMs first (they are the hardest to fit), each onto the feasible candidate that keeps the
// largest share of its room free afterwards (worst fit): that spreads the load, leaves headroom
// on every cluster and lets the migrations into different clusters run in parallel. The share is
// the tighter of memory (of allocatable) and, for each class the VM's disks go to whose capacity
// the cluster reports, that class's space (of what it reports free). A candidate is feasible when
// it is available, not cordoned, can receive decentralized live migrations, passes the VM's
// compatibility checks (storage/network mapping, architecture, name and MAC collisions), has a
// schedulable node of the VM's architecture with enough free memory, and room in every target
// storage class that reports a capacity (CSIStorageCapacity; unknown capacity is not checked).
import type { Inventory, InventoryVm, VmRef } from "../../proto/bus/index.js";
import type { MigrationPlan } from "../../proto/plan.js";
import type { ClusterView } from "./clusters.js";
import { classCapacities, clusterIssues, compatIssues, finding, nodeArchitecture, storageNeeds } from "./compat.js";
import { formatBytes, vmName } from "./format.js";
import type { Finding } from "./records.js";

export interface PlacementCandidate {
  view: ClusterView;
  inventory?: Inventory;
}

export interface PlacementInput {
  /** The source VMs to place (running VMs: evacuation moves them live). */
  vms: ReadonlyArray<{ ref: VmRef; vm: InventoryVm }>;
  sourceInventory: Inventory;
  candidates: readonly PlacementCandidate[];
  spec: Pick<MigrationPlan["spec"], "storageMap" | "networkMap">;
  /** Memory already promised to a cluster by unfinished migrations of other plans. */
  reservedBytes?: Readonly<Record<string, number>>;
  /** Disk bytes per storage class promised to a cluster by other plans' migrations whose volumes the
   *  cluster's capacity does not count yet: cluster → class → bytes. */
  reservedStorage?: Readonly<Record<string, Readonly<Record<string, number>>>>;
  now: Date;
}

export interface PlacementDecision {
  source: VmRef;
  /** Unset when no candidate can take the VM (then `findings` has the error). */
  target?: VmRef;
  /** Why this cluster, or why none. */
  reason: string;
  findings: Finding[];
}

interface NodeRoom {
  name: string;
  architecture: string;
  free: number;
}

interface ClassRoom {
  /** Free as the cluster reports it (CSIStorageCapacity). */
  reported: number;
  /** Reported, less what other plans promised and this pass placed. */
  free: number;
}

interface Room {
  view: ClusterView;
  inventory?: Inventory;
  /** Why the whole cluster is out, if it is. */
  refusal?: string;
  nodes: NodeRoom[];
  allocatable: number;
  free: number;
  /** Classes that report a capacity; others are not checked. */
  storage: Map<string, ClassRoom>;
}

const DECENTRALIZED = new Set(["decentralized-live"] as const);

function roomOf(c: PlacementCandidate, reserved: number, reservedStorage: Readonly<Record<string, number>>, now: Date): Room {
  const inv = c.inventory;
  const nodes: NodeRoom[] = (inv?.nodes ?? [])
    .filter((n) => n.schedulable)
    .map((n) => ({ name: n.name, architecture: n.architecture, free: n.allocatableMemoryBytes }));
  for (const vm of inv?.vms ?? []) {
    const node = nodes.find((n) => n.name === vm.node);
    if (node && vm.vmiPhase !== undefined && vm.vmiPhase !== "Succeeded" && vm.vmiPhase !== "Failed") node.free -= vm.memoryBytes;
  }
  const allocatable = (inv?.nodes ?? []).filter((n) => n.schedulable).reduce((s, n) => s + n.allocatableMemoryBytes, 0);
  const free = nodes.reduce((s, n) => s + Math.max(0, n.free), 0) - reserved;
  let refusal: string | undefined;
  if (c.view.availability !== "available") refusal = `${c.view.availability}`;
  else if (c.view.cordon) refusal = `cordoned (${c.view.cordon.reason})`;
  else if (!inv) refusal = "no inventory reported yet";
  else {
    const blocking = clusterIssues(c.view.name, c.view, inv, "target", DECENTRALIZED, now, "").find((f) => f.severity === "error");
    if (blocking) refusal = blocking.message;
  }
  const storage = new Map([...(inv ? classCapacities(inv) : [])].map(([cls, reported]) => [cls, { reported, free: reported - (reservedStorage[cls] ?? 0) }]));
  return { view: c.view, ...(inv ? { inventory: inv } : {}), ...(refusal ? { refusal } : {}), nodes, allocatable, free, storage };
}

function pct(part: number, whole: number): string {
  return whole > 0 ? `${Math.round((100 * Math.max(0, part)) / whole)}%` : "0%";
}

const share = (part: number, whole: number) => Math.max(0, part) / Math.max(1, whole);

/** Classes (with a reported capacity) too small for the VM's disks: "class fast has 40 GiB free, VM needs 50 GiB". */
function storageShortfalls(room: Room, needs: ReadonlyMap<string, number>): string[] {
  return [...needs]
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([cls, need]) => {
      const r = room.storage.get(cls);
      return r && r.free < need ? [`class ${cls} has ${formatBytes(Math.max(0, r.free))} free, VM needs ${formatBytes(need)}`] : [];
    });
}

export function place(input: PlacementInput): PlacementDecision[] {
  const rooms = input.candidates
    .map((c) => roomOf(c, input.reservedBytes?.[c.view.name] ?? 0, input.reservedStorage?.[c.view.name] ?? {}, input.now))
    .sort((a, b) => a.view.name.localeCompare(b.view.name));
  const order = [...input.vms].sort((a, b) => b.vm.memoryBytes - a.vm.memoryBytes || vmName(a.ref).localeCompare(vmName(b.ref)));
  const decisions = new Map<string, PlacementDecision>();

  for (const { ref, vm } of order) {
    const arch = nodeArchitecture(input.sourceInventory, vm.node);
    const need = vm.memoryBytes;
    const refusals: string[] = [];
    const fits: Array<{ room: Room; node: NodeRoom; warnings: Finding[]; after: number; needs: Map<string, number>; score: number }> = [];
    for (const room of rooms) {
      const name = room.view.name;
      if (room.refusal || !room.inventory) {
        refusals.push(`${name}: ${room.refusal ?? "no inventory"}`);
        continue;
      }
      const target: VmRef = { cluster: name, namespace: ref.namespace, name: ref.name };
      const issues = compatIssues({ vm, source: ref, target, kind: "decentralized-live", sourceInventory: input.sourceInventory, targetInventory: room.inventory, spec: input.spec });
      const errors = issues.filter((f) => f.severity === "error");
      if (errors.length > 0) {
        refusals.push(`${name}: ${errors[0]?.message}${errors.length > 1 ? ` (and ${errors.length - 1} more)` : ""}`);
        continue;
      }
      const nodes = room.nodes.filter((n) => arch === undefined || n.architecture === arch);
      const best = nodes.reduce<NodeRoom | undefined>((b, n) => (!b || n.free > b.free ? n : b), undefined);
      const needs = storageNeeds(vm, input.spec, "decentralized-live", room.inventory);
      const problems = storageShortfalls(room, needs);
      if (!best || best.free < need || room.free < need) {
        const largest = formatBytes(best ? Math.max(0, Math.min(best.free, room.free)) : 0);
        problems.unshift(`needs ${formatBytes(need)} of memory, the most free on one ${arch ? `${arch} ` : ""}node is ${largest}`);
      }
      if (problems.length > 0 || !best) {
        refusals.push(`${name}: ${problems.join(" and ")}`);
        continue;
      }
      const after = room.free - need;
      // The tighter of memory and every class with a known capacity the VM's disks go to.
      const score = Math.min(share(after, room.allocatable), ...[...needs].flatMap(([cls, bytes]) => {
        const r = room.storage.get(cls);
        return r ? [share(r.free - bytes, r.reported)] : [];
      }));
      fits.push({ room, node: best, warnings: issues, after, needs, score });
    }
    fits.sort((a, b) => b.score - a.score || b.after - a.after || a.room.view.name.localeCompare(b.room.view.name));
    const chosen = fits[0];
    if (!chosen) {
      const reason = `no candidate cluster can take VM ${vmName(ref)} (${formatBytes(need)}): ${refusals.join("; ") || "no candidates"}`;
      decisions.set(vmName(ref), {
        source: ref,
        reason,
        findings: [finding("error", "NoPlacement", reason, "add capacity or candidate clusters (spec.target.candidates), map the missing storage classes or networks, or leave the VM out of the plan", "spec.target", ref)],
      });
      continue;
    }
    chosen.node.free -= need;
    chosen.room.free -= need;
    const classes: string[] = [];
    for (const [cls, bytes] of [...chosen.needs].sort(([a], [b]) => a.localeCompare(b))) {
      const r = chosen.room.storage.get(cls);
      if (!r) continue;
      r.free -= bytes;
      classes.push(`class ${cls} ${pct(r.free, r.reported)} (${formatBytes(Math.max(0, r.free))} of the ${formatBytes(r.reported)} it reports free)`);
    }
    const others = fits.slice(1).map((f) => `${f.room.view.name} ${Math.round(100 * f.score)}%`);
    const reason =
      `placed on ${chosen.room.view.name}: ${pct(chosen.after, chosen.room.allocatable)} of its memory free afterwards (${formatBytes(Math.max(0, chosen.after))} of ${formatBytes(chosen.room.allocatable)})` +
      (classes.length ? `, ${classes.join(", ")}` : "") +
      (others.length ? `; also fit: ${others.join(", ")}` : "") +
      (refusals.length ? `; refused: ${refusals.join("; ")}` : "");
    decisions.set(vmName(ref), {
      source: ref,
      target: { cluster: chosen.room.view.name, namespace: ref.namespace, name: ref.name },
      reason,
      findings: chosen.warnings,
    });
  }
  return input.vms.map(({ ref }) => decisions.get(vmName(ref)) as PlacementDecision);
}
