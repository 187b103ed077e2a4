// The real ferryctl (a subprocess) against a real broker with its controller, and scripted
// bus-level agents for the clusters (broker/controller/testing.ts) over a real nats-server:
// plan apply (dry run, idempotence, refusal), watch (plain lines and progress bars on a pty, exit
// codes), get/list, migration get/list/retry/cancel, plan cancel/delete, evacuate, migrate. Broker
// crashes under ferryctl: e2e/cli/failover.test.ts.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify as toYaml } from "yaml";
import { controllerFactory } from "../broker/controller/index.js";
import { ScriptedWorld, testVm, type ScriptedAgent } from "../broker/controller/testing.js";
import { startBrokerEnv, type BrokerEnv } from "../broker/testing.js";
import { ferryctl, ferryctlOnTty, writeFerryctlConfig } from "./testing.js";

let env: BrokerEnv;
let world: ScriptedWorld;
let south: ScriptedAgent;
let config: string;

const planFile = (name: string, vms: string[], extra: Record<string, unknown> = {}) => {
  const path = join(env.dir, `${name}.yaml`);
  writeFileSync(
    path,
    toYaml({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "MigrationPlan",
      metadata: { name },
      spec: { source: { cluster: "east" }, vms: vms.map((n) => ({ namespace: "db", name: n })), target: { cluster: "west" }, retry: { maxAttempts: 1 }, ...extra },
    }),
  );
  return path;
};

beforeAll(async () => {
  env = await startBrokerEnv();
  const broker = await env.startInProcess("broker-0", {}, { controller: controllerFactory({ tickMs: 100 }) });
  for (let i = 0; i < 600 && !broker.runtime.leader.isLeader; i++) await new Promise((r) => setTimeout(r, 50));
  world = new ScriptedWorld({ migrationMs: 30 });
  const [e, w, n, s] = await Promise.all(["east", "west", "north", "south"].map((c) => env.enrollAgent(broker.grpcAddress, c)));
  await world.agent({ cluster: "east", bus: e!.bus, vms: ["pg-0", "pg-1", "pg-2", "pg-3"].map((v) => testVm("db", v)) });
  await world.agent({ cluster: "west", bus: w!.bus, vms: [] });
  await world.agent({ cluster: "north", bus: n!.bus, vms: [] });
  south = await world.agent({ cluster: "south", bus: s!.bus, vms: [testVm("apps", "web-0"), testVm("apps", "web-1")] });
  config = writeFerryctlConfig(env.dir, env.ca, await env.testKey(), [broker.grpcAddress]);
});
afterAll(async () => {
  await world?.stop();
  await env?.stop();
});

describe("plan apply", () => {
  it("refuses a document that does not parse, every field on its own line, before any call", async () => {
    const path = join(env.dir, "bad.yaml");
    writeFileSync(path, "apiVersion: ferry.dev/v1alpha1\nkind: MigrationPlan\nmetadata: {name: bad}\nspec:\n  source: {cluster: east}\n  target: {cluster: west}\n  sourcePolicy: halted\n");
    const r = await ferryctl(["plan", "apply", "-f", path], { config });
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^error: .*bad\.yaml is not a valid MigrationPlan \(2 errors\); fix the fields below$/);
    expect(lines.slice(1).sort()).toEqual([
      expect.stringMatching(/^ {2}spec \(line 5\): set vms \(a list of \{namespace, name\}\) or selector/),
      expect.stringMatching(/^ {2}spec\.sourcePolicy \(line 7\): .*"halt"\|"delete"/),
    ]);
  });

  it("--dry-run shows the migrations that would run and creates nothing", async () => {
    const r = await ferryctl(["plan", "apply", "-f", planFile("dry", ["pg-0"]), "--dry-run"], { config });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^plan\/dry validated \(dry run, nothing created\): 1 migration\(s\), 0 error\(s\), \d+ warning\(s\)\n/);
    expect(r.stdout).toMatch(/dry\/db\/pg-0\s+\S+\s+east:db\/pg-0\s+west:db\/pg-0/);
    const fromStdin = await ferryctl(["plan", "apply", "-f", "-", "--dry-run", "-o", "json"], { config, input: readFileSync(planFile("dry", ["pg-0"]), "utf8") });
    expect((JSON.parse(fromStdin.stdout) as { name: string; migrations: unknown[] }).migrations).toHaveLength(1);
    const get = await ferryctl(["plan", "get", "dry"], { config });
    expect(get.code).toBe(1);
    expect(get.stderr).toMatch(/^error: plan "dry" does not exist/);
  });

  it("a dry run that finds errors lists them and exits 1", async () => {
    const r = await ferryctl(["plan", "apply", "-f", planFile("missing", ["nope"]), "--dry-run"], { config });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ERROR east\/db\/nope \w+: /m);
    expect(r.stderr).toBe("error: plan/missing would be refused: 1 validation error(s) above\n");
  });

  it("creates, watches to success (plain lines, exit 0), and is unchanged when applied again", async () => {
    const file = planFile("move-db", ["pg-0", "pg-1"]);
    const created = await ferryctl(["plan", "apply", "-f", file], { config });
    expect(created.stderr).toBe("");
    expect(created.stdout).toMatch(/^plan\/move-db created: 2 migration\(s\)\n/);
    const watch = await ferryctl(["plan", "watch", "move-db"], { config });
    expect(watch.stderr).toBe("");
    expect(watch.code).toBe(0);
    const lines = watch.stdout.trimEnd().split("\n");
    for (const l of lines) expect(l).toMatch(/^\d\d:\d\d:\d\d /);
    expect(lines.at(-1)).toMatch(/move-db Succeeded: 2\/2 succeeded/);
    expect(lines.some((l) => / db\/pg-0 {2}Succeeded {2}100% /.test(l))).toBe(true);
    expect(lines.some((l) => / db\/pg-1 {2}Succeeded {2}100% /.test(l))).toBe(true);

    const again = await ferryctl(["plan", "apply", "-f", file], { config });
    expect(again.stdout).toBe("plan/move-db unchanged (Succeeded)\n");
    const changed = await ferryctl(["plan", "apply", "-f", planFile("move-db", ["pg-0"])], { config });
    expect(changed.code).toBe(1);
    expect(changed.stderr).toMatch(/^error: plan move-db already exists with a different spec \(Succeeded\); plans are immutable: delete it first/);
  });

  it("get, list and migration get/list show the finished plan", async () => {
    const get = await ferryctl(["plan", "get", "move-db"], { config });
    expect(get.stdout).toMatch(/^NAME\s+PHASE\s+SUCCEEDED.*\nmove-db\s+Succeeded\s+2\/2\s+0\s+0\s+0\s/);
    expect(get.stdout).toMatch(/move-db\/db\/pg-1\s+Succeeded\s+east:db\/pg-1\s+west:db\/pg-1\s+1\s/);
    const list = JSON.parse((await ferryctl(["plan", "list", "-o", "json"], { config })).stdout) as { items: { name: string; phase: string }[] };
    expect(list.items).toContainEqual(expect.objectContaining({ name: "move-db", phase: "PLAN_PHASE_SUCCEEDED" }));
    const m = JSON.parse((await ferryctl(["migration", "get", "move-db/db/pg-0", "-o", "json"], { config })).stdout) as { uid: string; state: string };
    expect(m.state).toBe("MIGRATION_STATE_SUCCEEDED");
    const byUid = await ferryctl(["migration", "get", m.uid], { config });
    expect(byUid.stdout).toMatch(/move-db\/db\/pg-0\s+Succeeded/);
    const failed = await ferryctl(["migration", "list", "move-db", "--state", "Failed"], { config });
    expect(failed.stderr).toBe("No migrations in those states in plan move-db.\n");
  });
});

describe("failure, retry, cancel", () => {
  it("a failed VM makes watch exit 1; retry brings it home", async () => {
    world.script("db/pg-2", { fail: 1 });
    const r = await ferryctl(["migrate", "db/pg-2", "--from", "east", "--to", "west", "--max-attempts", "1", "--watch"], { config });
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^plan\/migrate-db-pg-2 created: 1 migration\(s\)\n/);
    expect(r.stdout).toMatch(/db\/pg-2 {2}Failed /);
    expect(r.stderr).toBe("error: plan/migrate-db-pg-2 finished without every VM succeeding\n");
    const retry = await ferryctl(["migration", "retry", "migrate-db-pg-2/db/pg-2"], { config });
    expect(retry.stderr).toBe("");
    expect(retry.stdout).toMatch(/^migration\/migrate-db-pg-2\/db\/pg-2 retried \(state \w+; a new attempt follows attempt 1\)\n$/);
    const watch = await ferryctl(["plan", "watch", "migrate-db-pg-2"], { config });
    expect(watch.code).toBe(0);
  });

  it("plan delete is refused while it runs; plan cancel, migration cancel (idempotent), then delete", async () => {
    world.script("db/pg-3", { hold: true });
    expect((await ferryctl(["plan", "apply", "-f", planFile("held", ["pg-3"])], { config })).code).toBe(0);
    const refused = await ferryctl(["plan", "delete", "held"], { config });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/; cancel it first \(ferryctl plan cancel held\)/);
    const cancel = await ferryctl(["plan", "cancel", "held"], { config });
    expect(cancel.stdout).toMatch(/^plan\/held cancelled \(phase (Cancelling|Cancelled)\)\n$/);
    // Idempotent on a cancelling or cancelled migration.
    const one = await ferryctl(["migration", "cancel", "held/db/pg-3"], { config });
    expect(one.stderr).toBe("");
    expect(one.stdout).toMatch(/^migration\/held\/db\/pg-3 cancelled \(state (Cancelling|Cancelled)\)\n$/);
    const watch = await ferryctl(["plan", "watch", "held"], { config });
    expect(watch.code).toBe(1);
    expect(watch.stdout).toMatch(/held Cancelled: 0\/1 succeeded/);
    const del = await ferryctl(["plan", "delete", "held"], { config });
    expect(del.stdout).toBe("plan/held deleted\n");
  });
});

describe("evacuate and the terminal", () => {
  it("evacuate --dry-run shows each VM's placement; the real one moves them with progress bars on a pty", async () => {
    const dry = await ferryctl(["evacuate", "south", "--to", "north", "--dry-run", "-o", "wide"], { config });
    expect(dry.stderr).toBe("");
    expect(dry.stdout).toMatch(/^plan\/evacuate-south validated \(dry run, nothing created\): 2 migration/);
    expect(dry.stdout).toMatch(/evacuate-south\/apps\/web-0\s+\S+\s+south:apps\/web-0\s+north:apps\/web-0/);
    const created = await ferryctl(["evacuate", "south", "--to", "north"], { config });
    expect(created.stdout).toMatch(/^plan\/evacuate-south created: 2 migration/);
    // A pseudo-terminal (util-linux script) makes stdout a TTY: bars instead of lines.
    const pty = await ferryctlOnTty(["plan", "watch", "evacuate-south"], { config });
    expect(pty.code).toBe(0);
    expect(pty.stdout).toContain("█");
    expect(pty.stdout).toMatch(/apps\/web-1\s+█+\s+Succeeded/);
    expect(south.vms.filter((v) => v.namespace === "apps").map((v) => v.runStrategy)).toEqual(["Halted", "Halted"]);
  });
});
