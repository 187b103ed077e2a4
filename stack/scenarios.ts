// Sim scenarios the stack seeds when the caller gives none: every cluster gets the sim's default
// infrastructure (3 nodes, storage classes, a NAD, KubeVirt with DecentralizedLiveMigration and
// LiveMigrate); `demoScenario` adds running VMs.
import { defaultScenario, type ScenarioInput } from "../sim/scenario.js";

/** The sim default's per-cluster infrastructure plus a `fast` storage class (storage-migration target), no VMs. */
export function baseScenario(): ScenarioInput {
  const defaults = defaultScenario().defaults ?? {};
  return {
    defaults: {
      ...defaults,
      storageClasses: [...(defaults.storageClasses ?? []), { name: "fast", volumeBindingMode: "Immediate", provisioner: "nvme.csi.sim.ferry.dev" }],
    },
  };
}

const vm = (name: string, memory: string, disk: string, app: string) => ({
  name,
  namespace: "vms",
  memory,
  cpu: 1,
  labels: { app },
  disks: [{ name: "rootdisk", size: disk }],
});

/**
 * Running VMs on every cluster, sized so that a demo at the stack's time scale moves each in
 * seconds: on the first cluster `web-1..4` and `db-1`; on the others `app-1`, `app-2` (`<cluster>-`
 * prefixed so names never collide when VMs move).
 */
export function demoScenario(clusters: string[]): ScenarioInput {
  const base = baseScenario();
  const entries = clusters.map((c, i) => [
    c,
    {
      vms:
        i === 0
          ? [vm("web-1", "2Gi", "10Gi", "web"), vm("web-2", "2Gi", "10Gi", "web"), vm("web-3", "1Gi", "8Gi", "web"), vm("web-4", "1Gi", "8Gi", "web"), vm("db-1", "4Gi", "20Gi", "db")]
          : [vm(`${c}-app-1`, "1Gi", "8Gi", "app"), vm(`${c}-app-2`, "2Gi", "10Gi", "app")],
    },
  ]);
  return { ...base, clusters: Object.fromEntries(entries) };
}
