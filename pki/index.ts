// ferry PKI: the CA, certificates and roles, CSRs, enrollment tokens, Kubernetes Secret data and
// KubeVirt CA bundle handling. Pure + crypto; no I/O. See pki/README.md.
export * from "./names.js";
export * from "./keys.js";
export * from "./ca.js";
export * from "./secret.js";
export * from "./tokens.js";
export * from "./enroll.js";
export * from "./bundle.js";
