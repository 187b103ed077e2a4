// Simulated KubeVirt (virt-operator, virt-api webhooks, virt-controller, virt-handler and the
// synchronization controller) for one cluster. Filled in on the sim-kubevirt branch.
import type { SimCluster } from "../cluster.js";

export function installKubeVirt(_cluster: SimCluster): void {}
