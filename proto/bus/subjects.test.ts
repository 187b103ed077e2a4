import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DNS1123_LABEL, isDns1123Label } from "../names.js";
import {
  AGENT_REPORTS,
  agentInboxPrefix,
  agentPermissions,
  eventSubject,
  parseSubject,
  planEventsFilter,
  reportSubject,
  RPC_VERBS,
  rpcSubject,
  tasksSubject,
} from "./subjects.js";

const label = fc.stringMatching(DNS1123_LABEL);
const notLabel = fc.string().filter((s) => !isDns1123Label(s));

describe("subjects", () => {
  it("builds the documented subjects", () => {
    expect(tasksSubject("east")).toBe("ferry.v1.agent.east.tasks");
    expect(rpcSubject("east", "describe-vm")).toBe("ferry.v1.agent.east.rpc.describe-vm");
    expect(reportSubject("east", "heartbeat")).toBe("ferry.v1.broker.east.heartbeat");
    expect(eventSubject("p1", "0b6d1f2e-7c1a-4f0e-9d2b-5a8e3c4f6a7b")).toBe("ferry.v1.events.p1.0b6d1f2e-7c1a-4f0e-9d2b-5a8e3c4f6a7b");
    expect(eventSubject("p1")).toBe("ferry.v1.events.p1._plan");
    expect(planEventsFilter("p1")).toBe("ferry.v1.events.p1.*");
    expect(agentInboxPrefix("east")).toBe("_INBOX_east");
    expect(agentPermissions("east")).toEqual({
      publish: ["ferry.v1.broker.east.>"],
      subscribe: ["ferry.v1.agent.east.>", "_INBOX_east.>"],
    });
  });

  it("rejects cluster names that are not DNS-1123 labels (they could inject subject tokens or wildcards)", () => {
    const builders = [
      tasksSubject,
      (c: string) => rpcSubject(c, "preflight"),
      (c: string) => reportSubject(c, "status"),
      agentInboxPrefix,
      agentPermissions,
    ];
    for (const bad of ["east.>", "*", "a b", "East"]) {
      for (const build of builders) expect(() => build(bad)).toThrow(/must be a DNS-1123 label/);
    }
    fc.assert(
      fc.property(notLabel, fc.constantFrom(...builders), (bad, build) => {
        expect(() => build(bad)).toThrow(`invalid cluster name`);
      }),
    );
  });

  it("parses what it builds", () => {
    fc.assert(
      fc.property(label, fc.constantFrom(...RPC_VERBS), fc.constantFrom(...AGENT_REPORTS), (cluster, verb, report) => {
        expect(parseSubject(tasksSubject(cluster))).toEqual({ subject: "tasks", cluster, message: "tasks" });
        expect(parseSubject(rpcSubject(cluster, verb))).toMatchObject({ subject: "rpc", cluster, verb });
        expect(parseSubject(reportSubject(cluster, report))).toEqual({ subject: "report", cluster, report, message: report });
        expect(parseSubject(eventSubject(cluster, cluster))).toEqual({ subject: "event", plan: cluster, migrationUid: cluster, message: "event" });
        expect(parseSubject(eventSubject(cluster))).toEqual({ subject: "event", plan: cluster, migrationUid: undefined, message: "event" });
      }),
    );
  });

  it.each(["ferry.v1.agent.east", "ferry.v1.agent.east.tasks.x", "ferry.v1.agent.East.tasks", "ferry.v1.agent.east.rpc.reboot", "ferry.v1.broker.east.bogus", "ferry.v2.agent.east.tasks", "_INBOX_east.abc"])(
    "does not parse %s",
    (subject) => {
      expect(parseSubject(subject)).toBeUndefined();
    },
  );

  it("maps RPC subjects to their request message", () => {
    expect(parseSubject("ferry.v1.agent.east.rpc.describe-vm")).toEqual({ subject: "rpc", cluster: "east", verb: "describe-vm", message: "describeVmRequest" });
  });
});
