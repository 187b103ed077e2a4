// ferry's NATS layer: typed client, per-cluster authorization (operator/JWT), JetStream helpers
// and the nats-server launcher. See bus/README.md.
export * from "./subjects.js";
export * from "./auth.js";
export * from "./client.js";
export * from "./jetstream.js";
export * from "./nats-server.js";
export * from "./ferry.js";
