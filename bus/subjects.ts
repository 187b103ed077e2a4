// Subject patterns the bus's *authorization* is built on (DESIGN §4). The concrete subjects and
// payload schemas of each message live in proto/; these are the per-cluster isolation boundaries.
import { assertClusterName } from "../pki/index.js";

export const SUBJECT_ROOT = "ferry.v1";
/** JetStream stream holding the audit/event feed (`ferry.v1.events.<plan>.<migration>`). */
export const EVENTS_STREAM = "FERRY_EVENTS";
export const EVENTS_SUBJECTS = `${SUBJECT_ROOT}.events.>`;

/** Everything the broker sends to one cluster's agent: `ferry.v1.agent.<cluster>.>`. */
export function agentInboundSubjects(cluster: string): string {
  assertClusterName(cluster);
  return `${SUBJECT_ROOT}.agent.${cluster}.>`;
}

/** Everything one cluster's agent may send: `ferry.v1.broker.<cluster>.>`. */
export function agentOutboundSubjects(cluster: string): string {
  assertClusterName(cluster);
  return `${SUBJECT_ROOT}.broker.${cluster}.>`;
}

/** The agent's private inbox prefix for its own requests (`_INBOX_<cluster>`). */
export function agentInboxPrefix(cluster: string): string {
  assertClusterName(cluster);
  return `_INBOX_${cluster}`;
}

/**
 * The cluster an agent message came from, read from the subject (`ferry.v1.broker.<cluster>.…`).
 * NATS permissions guarantee an agent can only publish under its own cluster token, so the broker
 * trusts this and never a cluster name inside the payload.
 */
export function clusterOfAgentSubject(subject: string): string | undefined {
  const parts = subject.split(".");
  if (parts.length < 4 || parts[0] !== "ferry" || parts[1] !== "v1" || parts[2] !== "broker") return undefined;
  return parts[3];
}
