// Building blocks of the bus messages.
//
// Bus objects are not strict: unknown fields are dropped, so an agent one minor version ahead can add
// an optional field without its messages being rejected by an older broker. Anything incompatible
// needs a new apiVersion (and new subjects, ferry.v2.*).
import { z } from "zod";
import { ClusterName, NamespaceName, ObjectName } from "../names.js";

export const BUS_API_VERSION = "bus.ferry.dev/v1";

/** The fields every bus message starts with; `kind` tells a misrouted payload from the real one. */
export function envelope<K extends string>(kind: K) {
  return { apiVersion: z.literal(BUS_API_VERSION), kind: z.literal(kind) };
}

/**
 * RFC 3339 UTC timestamp with a trailing Z, e.g. "2026-11-21T23:42:00.123Z" (Date#toISOString), at
 * most nanosecond precision (Go's RFC3339Nano); without the bound any number of digits would pass.
 */
export const Time = z.iso.datetime().max(30, { error: "timestamp must have at most 9 fractional digits (e.g. 2026-11-21T23:42:00.123Z)" });

export const Count = z.int().min(0);
export const Bytes = z.int().min(0);
export const Seconds = z.int().min(0);

export const TEXT_MAX = 4096;

/** Free text for humans (agents truncate longer KubeVirt messages to fit: clipText). */
export const Text = z.string().max(TEXT_MAX);

/**
 * Cuts `text` to at most `max` UTF-16 units, ending in "…" when cut, never between the two halves
 * of a surrogate pair (a lone half would survive JSON as an escape, but is no character).
 */
export function clipText(text: string, max = TEXT_MAX): string {
  if (text.length <= max) return text;
  let end = max - 1;
  const last = text.charCodeAt(end - 1);
  if (last >= 0xd800 && last <= 0xdbff) end--;
  return `${text.slice(0, end)}…`;
}
export const Reason = z.string().max(256);

/** A stable machine-readable code in UpperCamelCase, e.g. "VmNotLiveMigratable". */
export const Code = z.string().regex(/^[A-Z][A-Za-z0-9]{0,63}$/, {
  error: (issue) => `code ${JSON.stringify(issue.input)} must be UpperCamelCase, at most 64 characters (e.g. "VmNotLiveMigratable")`,
});

/** SHA-256 of a certificate's DER as node:crypto's X509Certificate#fingerprint256 prints it. */
export const Fingerprint = z.string().regex(/^(?:[0-9A-F]{2}:){31}[0-9A-F]{2}$/, {
  error: "must be a SHA-256 fingerprint: 32 uppercase hex pairs joined by ':' (X509Certificate#fingerprint256)",
});

export const PEM_BUNDLE_MAX = 512 * 1024;

/**
 * A PEM bundle of CA certificates (KubeVirt's kubevirt-ca `ca-bundle`). Only the shape is checked
 * here; pki/ parses it and keeps CA certificates that are currently valid before anything is written.
 * PEM is ASCII (RFC 7468), so at most 2 bytes per character on the wire (`\n` is escaped).
 */
export const PemBundle = z
  .string()
  .max(PEM_BUNDLE_MAX, { error: `must be at most ${PEM_BUNDLE_MAX} characters`, abort: true })
  .regex(/-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/, {
    error: "must contain at least one PEM certificate block (-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----)",
  })
  .regex(/^[\x20-\x7e\t\r\n]*$/, { error: "must be ASCII text (PEM): printable characters, tabs and line breaks only" })
  .refine((pem) => !pem.includes("PRIVATE KEY"), {
    error: "must not contain a private key: send only the public CA bundle (ConfigMap kubevirt-ca, key ca-bundle)",
  });

/** "host:port" or "[ipv6]:port", as KubeVirt reports status.synchronizationAddresses. */
export const SyncAddress = z.string().max(253 + 6, { error: "synchronization address must be at most 259 characters (a DNS name and a port)", abort: true }).regex(/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]):[0-9]{1,5}$/, {
  error: (issue) => `synchronization address ${JSON.stringify(issue.input)} must be "host:port" or "[ipv6]:port"`,
});

export const MacAddress = z.string().regex(/^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/, {
  error: (issue) => `MAC address ${JSON.stringify(issue.input)} must be six lowercase hex pairs joined by ':', e.g. "02:00:00:ab:cd:ef"`,
});

/**
 * Order of an agent's messages. `epoch` is the agent process's start time (Unix ms), `seq` counts
 * from 1 within it. See isNewer().
 */
export const agentSeqShape = { epoch: z.int().min(0), seq: z.int().min(1) };
export interface AgentSeq {
  epoch: number;
  seq: number;
}

/**
 * Whether `next` supersedes `last` (from the same cluster). Receivers drop messages for which this
 * is false: they are duplicates or were overtaken. A restarted agent has a larger epoch; a `hello`
 * is accepted whatever its epoch and resets the baseline, so a clock step back cannot lock an agent out.
 */
export function isNewer(last: AgentSeq | undefined, next: AgentSeq): boolean {
  if (!last) return true;
  return next.epoch > last.epoch || (next.epoch === last.epoch && next.seq > last.seq);
}

export const VmRef = z.object({ cluster: ClusterName, namespace: NamespaceName, name: ObjectName });
export type VmRef = z.infer<typeof VmRef>;

/** A VM within the cluster a message is about. */
export const VmKey = z.object({ namespace: NamespaceName, name: ObjectName });
export type VmKey = z.infer<typeof VmKey>;

export const Condition = z.object({
  type: z.string().min(1).max(128),
  status: z.enum(["True", "False", "Unknown"]),
  reason: Reason.optional(),
  message: Text.optional(),
  lastTransitionTime: Time.optional(),
});
export type Condition = z.infer<typeof Condition>;

export const Severity = z.enum(["error", "warning"]);

/** A validation finding; the same fields as ferry.v1.ValidationIssue in the gRPC API. */
export const Issue = z.object({
  code: Code,
  severity: Severity,
  /** Path of the offending field, e.g. "spec.template.spec.volumes[1]"; "" when none applies. */
  field: z.string().max(512),
  message: Text,
  /** What to do about it; "" when there is nothing the user can do. */
  fix: Text,
});
export type Issue = z.infer<typeof Issue>;

/** A failure an agent reports, with the fix a human can apply. */
export const AgentError = z.object({ code: Code, message: Text, fix: Text });
export type AgentError = z.infer<typeof AgentError>;
