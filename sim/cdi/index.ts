// Simulated CDI (DataVolume and PVC binding) for one cluster. Filled in on the sim-kubevirt branch.
import type { SimCluster } from "../cluster.js";

export function installCDI(_cluster: SimCluster): void {}
