// The bus contract: subjects, message schemas (types are z.infer of them) and the codec.
export * from "./common.js";
export * from "./agent.js";
export * from "./tasks.js";
export * from "./rpc.js";
export * from "./events.js";
export * from "./subjects.js";
export * from "./codec.js";
