// The broker's pure core: records, plan expansion and validation, evacuation placement, the
// per-migration state machine, the scheduler, task-set composition and plan status. No I/O, no
// clocks: time is a parameter. See README.md in this folder.
export * from "./records.js";
export * from "./clusters.js";
export * from "./commands.js";
export * from "./compat.js";
export * from "./plan.js";
export * from "./placement.js";
export * from "./machine.js";
export * from "./scheduler.js";
export * from "./tasksets.js";
export * from "./plan-status.js";
export * from "./json.js";
export * from "./format.js";
