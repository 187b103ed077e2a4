// Subject patterns the bus's authorization is built on. The subjects themselves (builders, stream
// and bucket names, the agent's permission patterns) are defined once, in proto/bus/subjects.ts;
// this module re-exports what bus needs and adds the patterns NATS permissions are made of.
import { agentInboxPrefix, agentPermissions as agentSubjectPatterns, EVENTS_STREAM, EVENTS_SUBJECTS, SUBJECT_ROOT } from "../proto/bus/subjects.js";

export { agentInboxPrefix, EVENTS_STREAM, EVENTS_SUBJECTS, SUBJECT_ROOT };

/** Everything the broker sends to one cluster's agent: `ferry.v1.agent.<cluster>.>`. */
export function agentInboundSubjects(cluster: string): string {
  const sub = agentSubjectPatterns(cluster).subscribe.find((s) => s.startsWith(`${SUBJECT_ROOT}.`));
  if (!sub) throw new Error("proto agentPermissions() has no ferry subscribe pattern");
  return sub;
}

/** Everything one cluster's agent may send: `ferry.v1.broker.<cluster>.>`. */
export function agentOutboundSubjects(cluster: string): string {
  const pub = agentSubjectPatterns(cluster).publish[0];
  if (!pub) throw new Error("proto agentPermissions() has no publish pattern");
  return pub;
}

/** The agent's NATS subject permissions (publish / subscribe allow lists), from proto. */
export function agentSubjectPermissions(cluster: string): { publish: string[]; subscribe: string[] } {
  return agentSubjectPatterns(cluster);
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
