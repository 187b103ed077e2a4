// Kubernetes name rules, as zod schemas whose error says which rule was broken and what is allowed.
// The regexes are the ones in k8s.io/apimachinery/pkg/util/validation; the label regex encodes the
// 63-character bound itself so a single check (and a single message) covers both.
import { z } from "zod";

const LABEL = "[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?";
const SUBDOMAIN_PART = "[a-z0-9](?:[-a-z0-9]*[a-z0-9])?";
const QUALIFIED_NAME = "(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)";

export const DNS1123_LABEL = new RegExp(`^${LABEL}$`);
export const DNS1123_SUBDOMAIN = new RegExp(`^${SUBDOMAIN_PART}(?:\\.${SUBDOMAIN_PART})*$`);
export const SUBDOMAIN_MAX = 253;

export const DNS1123_LABEL_RULE =
  "must be a DNS-1123 label: lowercase alphanumerics and '-', start and end alphanumeric, at most 63 characters";
export const DNS1123_SUBDOMAIN_RULE =
  "must be a DNS-1123 subdomain: lowercase alphanumerics, '-' and '.', each dot-separated part starting and ending alphanumeric, at most 253 characters";

export function isDns1123Label(s: string): boolean {
  return DNS1123_LABEL.test(s);
}

export function isDns1123Subdomain(s: string): boolean {
  return s.length <= SUBDOMAIN_MAX && DNS1123_SUBDOMAIN.test(s);
}

/** Quotes the offending value for an error message, cut short so a huge input can't flood logs. */
export function quote(value: unknown): string {
  const s = typeof value === "string" ? value : String(value);
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

const ruleError =
  (what: string, rule: string) =>
  (issue: { input?: unknown }): string =>
    `${what} ${quote(issue.input)} ${rule}`;

/** A DNS-1123 label such as a cluster, namespace, plan or migration uid. */
export function dns1123Label(what: string) {
  return z.string().regex(DNS1123_LABEL, { error: ruleError(what, DNS1123_LABEL_RULE) });
}

/** A DNS-1123 subdomain such as a VM, DataVolume or StorageClass name. */
export function dns1123Subdomain(what: string) {
  const error = ruleError(what, DNS1123_SUBDOMAIN_RULE);
  return z.string().regex(DNS1123_SUBDOMAIN, { error }).max(SUBDOMAIN_MAX, { error });
}

export const ClusterName = dns1123Label("cluster name");
export const NamespaceName = dns1123Label("namespace");
export const ObjectName = dns1123Subdomain("name");
export const StorageClassName = dns1123Subdomain("storage class");
export const PlanName = dns1123Label("plan name");
/** Broker-assigned migration id (a UUID fits); used in label values, subjects and migrationIDs. */
export const MigrationUid = dns1123Label("migration uid");

/** The pod network, written `pod` in maps and inventories. */
export const POD_NETWORK = "pod";

/** Longest network name: a 63-character namespace, '/', a 253-character name. */
export const NETWORK_NAME_MAX = 63 + 1 + SUBDOMAIN_MAX;

const networkError = (issue: { input?: unknown }) =>
  `network ${quote(issue.input)} must be "pod", "<namespace>/<name>" or "<name>" of a NetworkAttachmentDefinition (namespace a DNS-1123 label of at most 63 characters, name a DNS-1123 subdomain of at most 253)`;

/**
 * A VM network as a network map names it: `pod`, or a NetworkAttachmentDefinition as
 * `<namespace>/<name>`, or `<name>` in the VM's own namespace (Multus' networkName syntax).
 */
export const NetworkName = z
  .string()
  .max(NETWORK_NAME_MAX, { error: networkError, abort: true })
  .regex(new RegExp(`^(?:${LABEL}/)?${SUBDOMAIN_PART}(?:\\.${SUBDOMAIN_PART})*$`), { error: networkError })
  // The namespace's 63 is in the regex; the name after '/' has its own bound.
  .refine((s) => s.length - s.indexOf("/") - 1 <= SUBDOMAIN_MAX, { error: networkError });

const LABEL_KEY = new RegExp(`^(?:${SUBDOMAIN_PART}(?:\\.${SUBDOMAIN_PART})*/)?${QUALIFIED_NAME}$`);
const LABEL_VALUE = new RegExp(`^${QUALIFIED_NAME}?$`);

/** A Kubernetes label key: optional DNS-subdomain prefix and '/', then a name of at most 63 characters. */
export const LabelKey = z
  .string()
  .regex(LABEL_KEY, {
    error: (issue) =>
      `label key ${quote(issue.input)} must be [prefix/]name: name at most 63 characters of alphanumerics, '-', '_' and '.', starting and ending alphanumeric; prefix a DNS-1123 subdomain`,
  })
  .refine((k) => (k.includes("/") ? k.indexOf("/") <= SUBDOMAIN_MAX : true), {
    error: "label key prefix must be at most 253 characters",
  });

/** A Kubernetes label value: empty, or at most 63 alphanumerics, '-', '_' and '.', starting and ending alphanumeric. */
export const LabelValue = z.string().regex(LABEL_VALUE, {
  error: (issue) =>
    `label value ${quote(issue.input)} must be empty or at most 63 characters of alphanumerics, '-', '_' and '.', starting and ending alphanumeric`,
});

/** Labels per object that a message may carry: Kubernetes sets no count, this keeps one VM's record bounded. */
export const MAX_LABELS = 256;

/** metadata.labels: label keys to label values, at most MAX_LABELS of them. */
export const Labels = z.record(LabelKey, LabelValue).refine((labels) => Object.keys(labels).length <= MAX_LABELS, {
  error: (issue) => `at most ${MAX_LABELS} labels, not ${Object.keys(issue.input as object).length}`,
});
