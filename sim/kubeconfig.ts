// Kubeconfig files for the simulated clusters: one cluster, one user (bearer token), one context,
// named after the simulated cluster, as `kind` or a cloud CLI would write them.
import YAML from "yaml";

export interface KubeconfigInput {
  /** Cluster name; also the context and user name prefix. */
  name: string;
  /** https://127.0.0.1:port or http://... */
  server: string;
  token: string;
  /** PEM of the serving CA (HTTPS). */
  caPem?: string;
  /** Default namespace of the context. */
  namespace?: string;
}

export function kubeconfigYaml(k: KubeconfigInput): string {
  const cluster: Record<string, unknown> = { server: k.server };
  if (k.server.startsWith("https:") && k.caPem) cluster["certificate-authority-data"] = Buffer.from(k.caPem).toString("base64");
  // client-node 1.4 refuses http:// unless the cluster skips TLS verification.
  else if (k.server.startsWith("http:")) cluster["insecure-skip-tls-verify"] = true;
  return YAML.stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: k.name, cluster }],
    users: [{ name: `${k.name}-admin`, user: { token: k.token } }],
    contexts: [{ name: k.name, context: { cluster: k.name, user: `${k.name}-admin`, ...(k.namespace ? { namespace: k.namespace } : {}) } }],
    "current-context": k.name,
    preferences: {},
  });
}
