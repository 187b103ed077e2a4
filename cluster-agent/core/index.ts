// The agent's pure Kubernetes core: VM analysis, names and labels, object builders, preflight,
// status derivation. No I/O; the shell is cluster-agent/tasks.
export * from "./kube.js";
export * from "./quantity.js";
export * from "./vm.js";
export * from "./names.js";
export * from "./build.js";
export * from "./patch.js";
export * from "./preflight.js";
export * from "./status.js";
