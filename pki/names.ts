// Names that end up in certificate subjects, NATS subjects and Kubernetes objects.
// A cluster name is a DNS label (RFC 1123): it is one NATS subject token (no dots, no wildcards),
// one certificate CN and one Kubernetes label value, so a single rule serves all three.

export const CLUSTER_NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
/** Admin and broker names: DNS-label characters plus dots, e.g. `alice` or `ops.alice`. */
export const PRINCIPAL_NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,126}[a-z0-9])?$/;

const DNS_LABEL = "[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?";
/** A DNS SAN: a DNS-1123 subdomain, optionally with a leading `*.` wildcard label (e.g. `*.nats-headless`). */
export const DNS_SAN_RE = new RegExp(`^(?:\\*\\.)?${DNS_LABEL}(?:\\.${DNS_LABEL})*$`);
export const DNS_NAME_MAX = 253;

export function isValidDnsSan(name: string): boolean {
  return name.length <= DNS_NAME_MAX && DNS_SAN_RE.test(name);
}

export class PkiError extends Error {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
    this.name = "PkiError";
  }
}

export function isValidClusterName(name: string): boolean {
  return CLUSTER_NAME_RE.test(name);
}

export function assertClusterName(name: string, field = "cluster"): void {
  if (!isValidClusterName(name)) {
    throw new PkiError(
      `${field} ${JSON.stringify(name)} is not a valid cluster name: use 1-63 lowercase letters, digits or '-', starting and ending with a letter or digit (a DNS label)`,
      "invalid-name",
    );
  }
}

export function assertPrincipalName(name: string, field = "name"): void {
  if (!PRINCIPAL_NAME_RE.test(name)) {
    throw new PkiError(
      `${field} ${JSON.stringify(name)} is not valid: use 1-128 lowercase letters, digits, '.' or '-', starting and ending with a letter or digit`,
      "invalid-name",
    );
  }
}

export function assertDnsSan(name: string, field = "dnsNames"): void {
  if (!isValidDnsSan(name)) {
    throw new PkiError(
      `${field}: ${JSON.stringify(name)} is not a DNS name: use a DNS-1123 subdomain (lowercase letters, digits, '-' and '.'; each dot-separated label 1-63 characters starting and ending with a letter or digit; at most ${DNS_NAME_MAX} characters), optionally starting with "*." for a wildcard`,
      "invalid-san",
    );
  }
}
