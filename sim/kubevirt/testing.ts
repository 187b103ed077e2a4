// Helpers for tests of the simulated KubeVirt/CDI: a started cluster with nodes, storage classes
// and a KubeVirt CR, and polling waits. Used by the sim's own tests; usable by other suites.
/* eslint-disable @typescript-eslint/no-explicit-any -- test fixtures are free-form JSON */
import { R } from "../apiserver/resources.js";
import type { KObject } from "../apiserver/store.js";
import { SimClock } from "../clock.js";
import { SimCluster } from "../cluster.js";
import { installCDI } from "../cdi/index.js";
import { type KubeVirtHandle, type KubeVirtOptions, type KubeVirtSeed, type NodeSeed, type StorageClassSeed, installKubeVirt, seedKubeVirt, seedNamespace, seedNodes, seedStorageClasses, waitForKubeVirt } from "./index.js";

export interface TestClusterOptions {
  name?: string;
  scale?: number;
  nodes?: number | NodeSeed[];
  storageClasses?: StorageClassSeed[];
  kubevirt?: KubeVirtSeed | false;
  kubevirtOptions?: KubeVirtOptions;
  namespaces?: string[];
}

export interface TestCluster {
  cluster: SimCluster;
  kv: KubeVirtHandle;
  stop(): Promise<void>;
}

export const DEFAULT_STORAGE_CLASSES: StorageClassSeed[] = [
  { name: "rwx-block", provisioner: "rook-ceph.rbd.csi.ceph.com", default: true },
  { name: "local-wffc", provisioner: "kubernetes.io/no-provisioner", volumeBindingMode: "WaitForFirstConsumer" },
];

export async function startTestCluster(o: TestClusterOptions = {}): Promise<TestCluster> {
  const cluster = new SimCluster({ name: o.name ?? "c1", clock: new SimClock(o.scale ?? 1000), token: "t" });
  const kv = installKubeVirt(cluster, o.kubevirtOptions);
  installCDI(cluster);
  for (const ns of o.namespaces ?? ["default"]) seedNamespace(cluster, ns);
  seedNodes(cluster, o.nodes ?? 2);
  seedStorageClasses(cluster, o.storageClasses ?? DEFAULT_STORAGE_CLASSES);
  if (o.kubevirt !== false) seedKubeVirt(cluster, o.kubevirt ?? {});
  await cluster.start();
  if (o.kubevirt !== false) await waitForKubeVirt(cluster);
  return { cluster, kv, stop: () => cluster.stop() };
}

/** Polls `fn` every few ms until it returns a truthy value (or throws with the last value seen). */
export async function waitFor<T>(what: string, fn: () => T | undefined | false | null, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = fn();
      if (v) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function get(cluster: SimCluster, kind: keyof typeof R, ns: string | undefined, name: string): KObject | undefined {
  return cluster.store.tryGet(R[kind], ns, name);
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
