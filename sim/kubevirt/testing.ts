// Helpers for tests of the simulated KubeVirt/CDI: simulated clusters (a world) with nodes, storage
// classes and a KubeVirt CR, driven only over HTTPS — objects with client-node (`KubeClient`),
// faults and migration metrics through the control API. Used by the sim's own tests; usable by
// other suites.
/* eslint-disable @typescript-eslint/no-explicit-any -- test fixtures are free-form JSON */
import type { SimControlClient } from "../control-client.js";
import type { ScenarioInput } from "../scenario.js";
import { KubeClient, eventually } from "../testing.js";
import { type World, startWorld } from "../world.js";
import { DecentralizedLiveMigration } from "./constants.js";
import type { KubeVirtOptions } from "./sim.js";

type ClusterInput = NonNullable<ScenarioInput["clusters"]>[string];
type NodeInput = NonNullable<ClusterInput["nodes"]>[number];
type StorageClassInput = NonNullable<ClusterInput["storageClasses"]>[number];

export interface KubeVirtSeed {
  /** spec.configuration.developerConfiguration.featureGates (default: [DecentralizedLiveMigration]). */
  featureGates?: string[];
  disabledFeatureGates?: string[];
  /** spec.configuration.migrations over KubeVirt's defaults. */
  migrations?: Record<string, unknown>;
  /** spec.workloadUpdateStrategy.workloadUpdateMethods (default: none, as KubeVirt's generated CR). */
  workloadUpdateMethods?: ("LiveMigrate" | "Evict")[];
  /** spec.certificateRotateStrategy.selfSigned, e.g. { ca: { duration: "20m" } }. */
  selfSigned?: Record<string, unknown>;
}

export interface TestClusterOptions {
  /** A count (nodes "<cluster>-node-<i>" with 64Gi) or node specs as in a scenario. Default 2. */
  nodes?: number | NodeInput[];
  storageClasses?: StorageClassInput[];
  /** The KubeVirt CR; false: none. */
  kubevirt?: KubeVirtSeed | false;
  namespaces?: string[];
}

export interface TestCluster {
  name: string;
  world: World;
  /** Objects over HTTPS (client-node). */
  k: KubeClient;
  /** KubeVirt faults and migration metrics over the control API. */
  kv: ReturnType<SimControlClient["kubevirt"]>;
  ctl: SimControlClient;
}

export interface TestWorld {
  world: World;
  cluster(name: string): TestCluster;
  stop(): Promise<void>;
}

export const DEFAULT_STORAGE_CLASSES: StorageClassInput[] = [
  { name: "rwx-block", provisioner: "rook-ceph.rbd.csi.ceph.com", default: true },
  { name: "local-wffc", provisioner: "kubernetes.io/no-provisioner", volumeBindingMode: "WaitForFirstConsumer" },
];

function clusterInput(o: TestClusterOptions): ClusterInput {
  const kv = o.kubevirt;
  return {
    namespaces: o.namespaces ?? ["default"],
    nodes: typeof o.nodes === "object" ? o.nodes.map((n) => ({ memory: "64Gi", ...n })) : [{ count: o.nodes ?? 2, memory: "64Gi" }],
    storageClasses: o.storageClasses ?? DEFAULT_STORAGE_CLASSES,
    kubevirt:
      kv === false
        ? false
        : {
            featureGates: kv?.featureGates ?? [DecentralizedLiveMigration],
            workloadUpdateMethods: kv?.workloadUpdateMethods ?? [],
            ...(kv?.migrations ? { migrations: kv.migrations } : {}),
            ...(kv?.selfSigned ? { certificateRotateStrategy: { selfSigned: kv.selfSigned } } : {}),
            ...(kv?.disabledFeatureGates
              ? { configuration: { developerConfiguration: { featureGates: kv.featureGates ?? [DecentralizedLiveMigration], disabledFeatureGates: kv.disabledFeatureGates } } }
              : {}),
          },
  };
}

/** Resolves once the operator reports Deployed (and, with the gate on, a synchronization address). */
export async function waitForKubeVirt(k: KubeClient): Promise<any> {
  return eventually(async () => {
    const kv = await k.get("KubeVirt", "kubevirt", "kubevirt");
    const gates: string[] = kv?.spec?.configuration?.developerConfiguration?.featureGates ?? [];
    return kv?.status?.phase === "Deployed" && (!gates.includes(DecentralizedLiveMigration) || kv.status.synchronizationAddresses?.length) ? kv : undefined;
  }, 10_000, "KubeVirt Deployed");
}

/**
 * Starts simulated clusters in one world (one clock, `scale` simulated seconds per real second,
 * default 1000) over HTTPS and waits for their KubeVirt to be deployed.
 */
export async function startTestWorld(clusters: Record<string, TestClusterOptions>, o: { scale?: number; kubevirtOptions?: KubeVirtOptions } = {}): Promise<TestWorld> {
  const world = await startWorld({
    clusters: Object.keys(clusters),
    timeScale: o.scale ?? 1000,
    scenario: { clusters: Object.fromEntries(Object.entries(clusters).map(([n, c]) => [n, clusterInput(c)])) },
    ...(o.kubevirtOptions ? { kubevirt: o.kubevirtOptions } : {}),
  });
  const ctl = world.controlClient();
  const byName = new Map<string, TestCluster>();
  try {
    for (const name of Object.keys(clusters)) {
      const k = KubeClient.fromYaml(world.cluster(name).kubeconfig);
      byName.set(name, { name, world, k, kv: ctl.kubevirt(name), ctl });
      if (clusters[name]!.kubevirt !== false) await waitForKubeVirt(k);
    }
  } catch (e) {
    await world.stop();
    throw e;
  }
  return {
    world,
    cluster(name: string) {
      const c = byName.get(name);
      if (!c) throw new Error(`no test cluster "${name}"`);
      return c;
    },
    stop: () => world.stop(),
  };
}

/** One simulated cluster (named "c1" unless `name` says otherwise) in its own world. */
export async function startTestCluster(o: TestClusterOptions & { name?: string; scale?: number; kubevirtOptions?: KubeVirtOptions } = {}): Promise<TestCluster & { stop(): Promise<void> }> {
  const name = o.name ?? "c1";
  const w = await startTestWorld({ [name]: o }, { ...(o.scale ? { scale: o.scale } : {}), ...(o.kubevirtOptions ? { kubevirtOptions: o.kubevirtOptions } : {}) });
  return { ...w.cluster(name), stop: () => w.stop() };
}

/** Waits until `fn` (over HTTP) returns a truthy value; the timeout names `what`. */
export function waitFor<T>(what: string, fn: () => Promise<T | undefined | false | null> | T | undefined | false | null, timeoutMs = 10_000): Promise<T> {
  return eventually(fn as () => Promise<T>, timeoutMs, what);
}

/** A small VM spec (masquerade pod network, one disk per volume). */
export function vmSpec(name: string, opts: { runStrategy?: string; memory?: string; volumes?: object[]; dataVolumeTemplates?: object[]; annotations?: Record<string, string> } = {}) {
  const volumes: any[] = opts.volumes ?? [{ name: "rootdisk", containerDisk: { image: "quay.io/containerdisks/fedora:latest" } }];
  return {
    metadata: { name, ...(opts.annotations ? { annotations: opts.annotations } : {}) },
    spec: {
      runStrategy: opts.runStrategy ?? "Always",
      ...(opts.dataVolumeTemplates ? { dataVolumeTemplates: opts.dataVolumeTemplates } : {}),
      template: {
        metadata: { labels: { "kubevirt.io/vm": name } },
        spec: {
          domain: {
            devices: {
              disks: volumes.map((v) => ({ name: v.name, disk: { bus: "virtio" } })),
              interfaces: [{ name: "default", masquerade: {} }],
            },
            resources: { requests: { memory: opts.memory ?? "1Gi" } },
          },
          networks: [{ name: "default", pod: {} }],
          volumes,
        },
      },
    },
  };
}
