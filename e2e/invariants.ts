// DESIGN.md §8, checked against simulated clusters over HTTP (client-node, as any client would)
// and the broker's migration records (gRPC):
//
//   1. a VM never runs in two places (source and target VMI both Running outside a KubeVirt
//      migration in progress);
//   2. the source is never halted or deleted before the target VMI runs on the target;
//   3. after cancel, failure or plan deletion nothing ferry created is left behind (VMs, VMIMs,
//      DataVolumes, PVCs, Secret/ConfigMap copies); after success nothing of earlier attempts;
//   4. every migration is terminal or says exactly what it waits for;
//   5. no duplicates (one receiver VM per migration, one VMIM per attempt and side).
//
// `checkInvariants(world, migrations)` checks a snapshot (after a scenario). `monitorInvariants`
// samples 1 and 2 while a scenario runs (every `intervalMs`: an instant between two samples is not
// seen; the sim's VMI phases last longer than a sample at the time scales the suites use).
import { CoreV1Api, CustomObjectsApi, KubeConfig } from "@kubernetes/client-node";
import { MigrationKind, MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";

export const MANAGED_BY = "app.kubernetes.io/managed-by=ferry";
export const MIGRATION_LABEL = "ferry.dev/migration";
export const ATTEMPT_LABEL = "ferry.dev/attempt";

/** What the checks need of a world: `sim/world.ts` World fits. */
export interface InvariantWorld {
  clusters: ReadonlyArray<{ name: string; kubeconfig: string }>;
}

export interface Violation {
  invariant: 1 | 2 | 3 | 4 | 5;
  subject: string;
  message: string;
}

interface Obj {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string>; deletionTimestamp?: string; finalizers?: string[] };
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
}

interface ClusterSnapshot {
  vms: Obj[];
  vmis: Obj[];
  vmims: Obj[];
  /** Everything labelled managed-by ferry (VMs, VMIMs, DVs, PVCs, Secrets, ConfigMaps). */
  ferry: Obj[];
}

const TERMINAL = new Set([MigrationState.SUCCEEDED, MigrationState.FAILED, MigrationState.CANCELLED]);
const FINAL_VMIM_PHASES = new Set(["Succeeded", "Failed"]);

const clients = new Map<string, { custom: CustomObjectsApi; core: CoreV1Api }>();

function clientsFor(kubeconfig: string) {
  let c = clients.get(kubeconfig);
  if (!c) {
    const kc = new KubeConfig();
    kc.loadFromString(kubeconfig);
    clients.set(kubeconfig, (c = { custom: kc.makeApiClient(CustomObjectsApi), core: kc.makeApiClient(CoreV1Api) }));
  }
  return c;
}

async function list(custom: CustomObjectsApi, group: string, version: string, plural: string, labelSelector?: string): Promise<Obj[]> {
  const r = (await custom.listClusterCustomObject({ group, version, plural, ...(labelSelector ? { labelSelector } : {}) })) as { items?: Obj[] };
  return r.items ?? [];
}

async function snapshotCluster(kubeconfig: string): Promise<ClusterSnapshot> {
  const { custom, core } = clientsFor(kubeconfig);
  const [vms, vmis, vmims, dvs, pvcs, secrets, cms] = await Promise.all([
    list(custom, "kubevirt.io", "v1", "virtualmachines"),
    list(custom, "kubevirt.io", "v1", "virtualmachineinstances"),
    list(custom, "kubevirt.io", "v1", "virtualmachineinstancemigrations"),
    list(custom, "cdi.kubevirt.io", "v1beta1", "datavolumes", MANAGED_BY),
    core.listPersistentVolumeClaimForAllNamespaces({ labelSelector: MANAGED_BY }).then((r) => r.items as Obj[]),
    core.listSecretForAllNamespaces({ labelSelector: MANAGED_BY }).then((r) => r.items as Obj[]),
    core.listConfigMapForAllNamespaces({ labelSelector: MANAGED_BY }).then((r) => r.items as Obj[]),
  ]);
  const managed = (o: Obj) => o.metadata?.labels?.["app.kubernetes.io/managed-by"] === "ferry";
  const kinds = (items: Obj[], kind: string) => items.map((o) => ({ ...o, kind: o.kind ?? kind }));
  return {
    vms,
    vmis,
    vmims,
    ferry: [...kinds(vms.filter(managed), "VirtualMachine"), ...kinds(vmims.filter(managed), "VirtualMachineInstanceMigration"), ...kinds(dvs, "DataVolume"), ...kinds(pvcs, "PersistentVolumeClaim"), ...kinds(secrets, "Secret"), ...kinds(cms, "ConfigMap")],
  };
}

export async function snapshotWorld(world: InvariantWorld): Promise<Map<string, ClusterSnapshot>> {
  const entries = await Promise.all(world.clusters.map(async (c) => [c.name, await snapshotCluster(c.kubeconfig)] as const));
  return new Map(entries);
}

const key = (o: Obj) => `${o.metadata?.namespace ?? ""}/${o.metadata?.name ?? ""}`;
const find = (items: Obj[] | undefined, namespace: string, name: string) => items?.find((o) => o.metadata?.namespace === namespace && o.metadata?.name === name);
const phaseOf = (o: Obj | undefined) => (o?.status?.["phase"] as string | undefined) ?? "";
const ofMigration = (o: Obj, uid: string) => o.metadata?.labels?.[MIGRATION_LABEL] === uid;
const describe = (cluster: string, o: Obj) => `${o.kind ?? "object"} ${cluster}/${key(o)}`;

/** Invariants 1 and 2 on one snapshot. */
function runningChecks(snap: Map<string, ClusterSnapshot>, migrations: readonly Migration[]): Violation[] {
  const out: Violation[] = [];
  for (const m of migrations) {
    const s = m.source;
    const t = m.target;
    if (!s || !t || m.kind !== MigrationKind.DECENTRALIZED_LIVE) continue;
    if (s.cluster === t.cluster && s.namespace === t.namespace && s.name === t.name) continue;
    const src = snap.get(s.cluster);
    const tgt = snap.get(t.cluster);
    if (!src || !tgt) continue;
    const srcVmi = find(src.vmis, s.namespace, s.name);
    const tgtVmi = find(tgt.vmis, t.namespace, t.name);
    const inProgress = [...src.vmims, ...tgt.vmims].some((v) => ofMigration(v, m.uid) && !FINAL_VMIM_PHASES.has(phaseOf(v)));
    if (phaseOf(srcVmi) === "Running" && phaseOf(tgtVmi) === "Running" && !inProgress) {
      out.push({ invariant: 1, subject: m.name, message: `VMI ${s.cluster}/${s.namespace}/${s.name} and ${t.cluster}/${t.namespace}/${t.name} both Running with no migration of ${m.uid} in progress` });
    }
    const srcVm = find(src.vms, s.namespace, s.name);
    const halted = !srcVm || (srcVm.spec?.["runStrategy"] as string | undefined) === "Halted";
    if (halted && phaseOf(tgtVmi) !== "Running") {
      out.push({ invariant: 2, subject: m.name, message: `source VM ${s.cluster}/${s.namespace}/${s.name} is ${srcVm ? "Halted" : "deleted"} but the target VMI on ${t.cluster} is ${phaseOf(tgtVmi) || "absent"}` });
    }
  }
  return out;
}

/** Every invariant on the world as it is now. `migrations`: every migration the scenario made (also of deleted plans). */
export async function checkInvariants(world: InvariantWorld, migrations: readonly Migration[]): Promise<Violation[]> {
  const snap = await snapshotWorld(world);
  const out = runningChecks(snap, migrations);
  const names = new Map<string, string>();
  for (const m of migrations) {
    // 4: terminal or a reason.
    if (!TERMINAL.has(m.state) && m.waitingReason.trim() === "") out.push({ invariant: 4, subject: m.name, message: `migration ${m.uid} is ${MigrationState[m.state]} without a waiting reason` });
    // 5: one migration per VM and plan.
    const other = names.get(m.name);
    if (other && other !== m.uid) out.push({ invariant: 5, subject: m.name, message: `two migrations (${other}, ${m.uid}) for one VM of one plan` });
    names.set(m.name, m.uid);

    for (const [cluster, c] of snap) {
      const mine = c.ferry.filter((o) => ofMigration(o, m.uid));
      // 3: nothing left after failure or cancel (a storage migration needing manual recovery keeps what the rule says).
      if ((m.state === MigrationState.FAILED && !m.manualRecovery) || m.state === MigrationState.CANCELLED) {
        for (const o of mine) out.push({ invariant: 3, subject: m.name, message: `${describe(cluster, o)} is left behind after ${MigrationState[m.state]}` });
      }
      // 3: after success, nothing of earlier attempts.
      if (m.state === MigrationState.SUCCEEDED) {
        for (const o of mine.filter((o) => o.metadata?.labels?.[ATTEMPT_LABEL] !== String(m.attempt))) {
          out.push({ invariant: 3, subject: m.name, message: `${describe(cluster, o)} of attempt ${o.metadata?.labels?.[ATTEMPT_LABEL]} is left behind (attempt ${m.attempt} succeeded)` });
        }
      }
      // 5: one receiver VM per migration; one VMIM per attempt on each side.
      const vms = mine.filter((o) => o.kind === "VirtualMachine");
      if (vms.length > 1) out.push({ invariant: 5, subject: m.name, message: `${vms.length} VMs of migration ${m.uid} on ${cluster}: ${vms.map(key).join(", ")}` });
      const perAttempt = new Map<string, number>();
      for (const v of mine.filter((o) => o.kind === "VirtualMachineInstanceMigration")) {
        const a = v.metadata?.labels?.[ATTEMPT_LABEL] ?? "?";
        perAttempt.set(a, (perAttempt.get(a) ?? 0) + 1);
      }
      for (const [a, n] of perAttempt) if (n > 1) out.push({ invariant: 5, subject: m.name, message: `${n} VMIMs of attempt ${a} of ${m.uid} on ${cluster}` });
    }
  }
  return out;
}

/** Sample invariants 1 and 2 every `intervalMs` until `stop()`, which returns what was seen (deduplicated). */
export function monitorInvariants(world: InvariantWorld, migrations: () => readonly Migration[] | Promise<readonly Migration[]>, opts: { intervalMs?: number } = {}): { stop(): Promise<Violation[]>; samples(): number } {
  const seen = new Map<string, Violation>();
  let stopped = false;
  let samples = 0;
  const run = (async () => {
    while (!stopped) {
      try {
        const ms = await migrations();
        for (const v of runningChecks(await snapshotWorld(world), ms)) seen.set(`${v.invariant}/${v.subject}/${v.message}`, v);
        samples++;
      } catch {
        // a cluster or the broker is restarting in a chaos scenario: sample again
      }
      await new Promise((r) => setTimeout(r, opts.intervalMs ?? 100));
    }
  })();
  return {
    samples: () => samples,
    async stop() {
      stopped = true;
      await run;
      return [...seen.values()];
    },
  };
}
