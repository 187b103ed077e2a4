import { status } from "@grpc/grpc-js";
import { describe, expect, it } from "vitest";
import { parsePlan } from "../proto/plan.js";
import { describeRpcFailure } from "./errors.js";
import { agentInstallCommand, shellWord } from "./install.js";
import { evacuationPlan, migrationPlan, parseVmArg, planNameFrom } from "./plans.js";
import { allPages, migrationRef, parseTtl, sameDocument } from "./program.js";

describe("evacuationPlan", () => {
  it("selects every VM of the cluster and lets the broker place them", () => {
    const p = evacuationPlan({ cluster: "east" });
    expect(p.metadata.name).toBe("evacuate-east");
    expect(p.spec).toMatchObject({ source: { cluster: "east" }, selector: { allVMs: true }, target: { evacuate: true }, sourcePolicy: "halt", limits: { maxInFlight: 5 } });
    expect(p.spec.target.candidates).toBeUndefined();
  });

  it("--to becomes the candidate list (deduplicated), --name and --max-in-flight carry over", () => {
    const p = evacuationPlan({ cluster: "east", to: "west, north,west", name: "drain-east", maxInFlight: 10 });
    expect(p.metadata.name).toBe("drain-east");
    expect(p.spec.target).toEqual({ evacuate: true, candidates: ["west", "north"] });
    expect(p.spec.limits.maxInFlight).toBe(10);
  });

  it("refuses the evacuated cluster as a target and bad names, as usage errors", () => {
    expect(() => evacuationPlan({ cluster: "east", to: "west,east" })).toThrow(/--to lists the cluster being evacuated \("east"\)/);
    expect(() => evacuationPlan({ cluster: "East" })).toThrow(/not a DNS-1123 label/);
    expect(() => evacuationPlan({ cluster: "east", to: "We st" })).toThrow(/--to: "We st" is not a cluster name/);
    expect(() => evacuationPlan({ cluster: "east", name: "Bad_Name" })).toThrow(/invalid arguments: metadata\.name/);
    try {
      evacuationPlan({ cluster: "east", to: "east" });
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });
});

describe("migrationPlan", () => {
  it("one VM from A to B", () => {
    const p = migrationPlan({ vm: "db/pg-0", from: "east", to: "west" });
    expect(p.metadata.name).toBe("migrate-db-pg-0");
    expect(p.spec).toMatchObject({ source: { cluster: "east" }, vms: [{ namespace: "db", name: "pg-0" }], target: { cluster: "west" }, storageMap: [] });
  });

  it("--storage-class maps every source storage class to it; same cluster = storage migration", () => {
    const p = migrationPlan({ vm: "db/pg-0", from: "east", to: "east", storageClass: "fast", sourceStorageClasses: ["ceph", "lvm"] });
    expect(p.spec.storageMap).toEqual([
      { source: "ceph", target: "fast" },
      { source: "lvm", target: "fast" },
    ]);
    expect(p.spec.target).toEqual({ cluster: "east" });
  });

  it("--storage-class without the source inventory says what to do", () => {
    expect(() => migrationPlan({ vm: "db/pg-0", from: "east", to: "west", storageClass: "fast", sourceStorageClasses: [] })).toThrow(/has not reported an inventory yet; wait for its agent \(ferryctl cluster get east\)/);
  });

  it("a move that changes nothing is a usage error; --target-namespace makes it one", () => {
    expect(() => migrationPlan({ vm: "db/pg-0", from: "east", to: "east" })).toThrow(/nothing changes; add --storage-class/);
    expect(migrationPlan({ vm: "db/pg-0", from: "east", to: "east", targetNamespace: "db2" }).spec.target).toEqual({ cluster: "east", namespace: "db2" });
  });

  it("VM argument and names", () => {
    expect(parseVmArg("db/pg-0")).toEqual({ namespace: "db", name: "pg-0" });
    expect(() => parseVmArg("pg-0")).toThrow('"pg-0" is not NAMESPACE/VM, e.g. "db/pg-0"');
    expect(migrationPlan({ vm: "db/pg.0", from: "a", to: "b" }).metadata.name).toBe("migrate-db-pg-0");
    const long = planNameFrom(["migrate", "n".repeat(40), "v".repeat(40)]);
    expect(long).toHaveLength(63);
    expect(long).toMatch(/^migrate-n+-v+-[0-9a-f]{8}$/);
    expect(planNameFrom(["migrate", "n".repeat(40), "v".repeat(41)])).not.toBe(long);
  });
});

describe("sameDocument (apply is idempotent)", () => {
  it("the stored document (defaults filled, keys in any order) equals the submitted one", () => {
    const text = "apiVersion: ferry.dev/v1alpha1\nkind: MigrationPlan\nmetadata: {name: p}\nspec:\n  source: {cluster: a}\n  vms: [{namespace: n, name: v}]\n  target: {cluster: b}\n";
    const local = parsePlan(text);
    if (!local.ok) throw new Error(local.error);
    const stored = JSON.parse(JSON.stringify({ spec: local.value.spec, metadata: local.value.metadata, kind: local.value.kind, apiVersion: local.value.apiVersion })) as Record<string, unknown>;
    expect(sameDocument(stored, local.value)).toBe(true);
    const other = parsePlan(text.replace("cluster: b", "cluster: c"));
    if (!other.ok) throw new Error(other.error);
    expect(sameDocument(stored, other.value)).toBe(false);
    expect(sameDocument(undefined, local.value)).toBe(false);
  });
});

describe("allPages", () => {
  it("follows next_page_token to the end", async () => {
    const pages: Record<string, [number[], string]> = { "": [[1, 2], "b"], b: [[3], "c"], c: [[], ""] };
    const seen: string[] = [];
    expect(await allPages((t) => (seen.push(t), Promise.resolve(pages[t]!)))).toEqual([1, 2, 3]);
    expect(seen).toEqual(["", "b", "c"]);
  });
});

describe("small parsers", () => {
  it("--ttl and migration references", () => {
    expect([parseTtl("90s"), parseTtl("30m"), parseTtl("2h")]).toEqual([90, 1800, 7200]);
    expect(() => parseTtl("1d")).toThrow(/e\.g\. "1h"/);
    expect(migrationRef("abc123")).toEqual({ $case: "uid", value: "abc123" });
    expect(migrationRef("move-db/db/pg-0")).toEqual({ $case: "name", value: "move-db/db/pg-0" });
    expect(() => migrationRef("db/pg-0")).toThrow(/neither a migration uid nor PLAN\/NAMESPACE\/VM/);
  });
});

describe("agentInstallCommand", () => {
  it("is the chart's helm install with its values", () => {
    expect(agentInstallCommand({ cluster: "east", brokerAddress: "ferry.example.com:7443", natsUrl: "tls://nats.example.com:4222", token: "fet.abc.DEF-_x", caFile: "/etc/ferry/ca.crt" })).toBe(
      "helm install ferry-agent charts/ferry-agent -n ferry-system --create-namespace --set cluster.name=east --set broker.address=ferry.example.com:7443 --set nats.url=tls://nats.example.com:4222 --set bootstrapToken=fet.abc.DEF-_x --set-file broker.caPem=/etc/ferry/ca.crt",
    );
    expect(agentInstallCommand({ cluster: "east", brokerAddress: "b:1", token: "t" })).toBe("helm install ferry-agent charts/ferry-agent -n ferry-system --create-namespace --set cluster.name=east --set broker.address=b:1 --set bootstrapToken=t");
  });

  it("escapes helm's list commas and quotes for the shell when needed", () => {
    const cmd = agentInstallCommand({ cluster: "east", brokerAddress: "b:1", natsUrl: "tls://a:4222,tls://b:4222", token: "t", caFile: "/my dir/ca.crt" });
    expect(cmd).toContain(String.raw`--set 'nats.url=tls://a:4222\,tls://b:4222'`);
    expect(cmd).toContain(`--set-file 'broker.caPem=/my dir/ca.crt'`);
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
  });
});

describe("describeRpcFailure", () => {
  const base = { details: [], address: "b:7443", configPath: "/x/ferryctl.yaml" };
  it("connection, TLS, authentication and permission errors name the config fix", () => {
    expect(describeRpcFailure({ ...base, code: status.UNAVAILABLE, message: "14 UNAVAILABLE: No connection established. Last error: connect ECONNREFUSED" }).message).toBe(
      "cannot reach the broker at b:7443 (No connection established. Last error: connect ECONNREFUSED); check that it runs and that brokers in /x/ferryctl.yaml lists its gRPC address",
    );
    expect(describeRpcFailure({ ...base, code: status.UNAVAILABLE, message: "14 UNAVAILABLE: self-signed certificate in certificate chain" }).message).toMatch(/^TLS with broker b:7443 failed .*caFile in \/x\/ferryctl\.yaml is the ferry CA/);
    expect(describeRpcFailure({ ...base, code: status.UNAUTHENTICATED, message: "16 UNAUTHENTICATED: no cert" }).message).toMatch(/set certFile\/keyFile in \/x\/ferryctl\.yaml/);
    expect(describeRpcFailure({ ...base, code: status.PERMISSION_DENIED, message: "7 PERMISSION_DENIED: agent" }).message).toMatch(/OU=ferry-admin/);
    expect(describeRpcFailure({ ...base, code: status.UNIMPLEMENTED, message: "12 UNIMPLEMENTED: PlanService" }).message).toMatch(/does not implement this yet/);
  });

  it("field and precondition violations become the lines under the message", () => {
    const bad = describeRpcFailure({
      ...base,
      code: status.INVALID_ARGUMENT,
      message: "3 INVALID_ARGUMENT: the plan does not parse",
      details: [{ $case: "badRequest", value: { fieldViolations: [{ field: "spec.target", description: "set target.cluster (line 7)", reason: "INVALID_FIELD" }] } }],
    });
    expect([bad.message, bad.lines, bad.exitCode]).toEqual(["invalid request: the plan does not parse", ["spec.target: set target.cluster (line 7)"], 1]);
    const pre = describeRpcFailure({
      ...base,
      code: status.FAILED_PRECONDITION,
      message: "9 FAILED_PRECONDITION: 1 VM cannot move",
      details: [{ $case: "preconditionFailure", value: { violations: [{ type: "VmNotLiveMigratable", subject: "east/db/pg-0", description: "hostDisk volume; remove it" }] } }],
    });
    expect([pre.message, pre.lines]).toEqual(["1 VM cannot move", ["east/db/pg-0: hostDisk volume; remove it [VmNotLiveMigratable]"]]);
  });

  it("a standby whose leader did not answer says to retry", () => {
    const e = describeRpcFailure({ ...base, code: status.UNAVAILABLE, message: "14 UNAVAILABLE: standby", details: [{ $case: "errorInfo", value: { reason: "NOT_LEADER", domain: "", metadata: { leaderAddress: "b2:7443" } } }] });
    expect(e.message).toMatch(/standby and the leader b2:7443 did not answer; retry shortly/);
  });
});
