// ferryctl (the real bin, a subprocess) while broker processes crash: kill -9 of the leader, then
// the next call waits out the election; a running `plan watch` follows the new leader, resumes
// after its last seq and exits 0. Broker processes run the controller (broker/main.ts); the
// clusters are scripted bus-level agents (broker/controller/testing.ts) on a real nats-server.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { stringify as toYaml } from "yaml";
import { ScriptedWorld, testVm } from "../../broker/controller/testing.js";
import { startBrokerEnv } from "../../broker/testing.js";
import { ferryctl, writeFerryctlConfig } from "../../cli/testing.js";

describe("ferryctl while the broker leader crashes", () => {
  it("kill -9 of the leader: ferryctl waits out the election and reaches the new leader", async () => {
    const failEnv = await startBrokerEnv();
    try {
      const leader = await failEnv.startProcess("broker-a");
      const standby = await failEnv.startProcess("broker-b");
      const cfg = writeFerryctlConfig(failEnv.dir, failEnv.ca, await failEnv.testKey(), [leader.grpcAddress, standby.grpcAddress], {}, "election");
      expect((await ferryctl(["cluster", "add", "east"], { config: cfg })).code).toBe(0);
      await leader.kill();
      // Right after the crash the standby still sees the dead leader's lease and names it.
      const r = await ferryctl(["cluster", "get", "east", "-o", "json"], { config: cfg });
      expect(r.stderr).toBe("");
      expect(r.code).toBe(0);
      expect((JSON.parse(r.stdout) as { name: string }).name).toBe("east");
    } finally {
      await failEnv.stop();
    }
  });


  it("kill -9 of the leader mid-plan: watch follows the new leader, resumes after the last seq and exits 0", async () => {
    const fenv = await startBrokerEnv();
    const fworld = new ScriptedWorld({ migrationMs: 30 });
    try {
      const leader = await fenv.startProcess("broker-a");
      const standby = await fenv.startProcess("broker-b");
      const [a, b] = await Promise.all(["east", "west"].map((c) => fenv.enrollAgent(leader.grpcAddress, c)));
      await fworld.agent({ cluster: "east", bus: a!.bus, vms: [testVm("db", "pg-0"), testVm("db", "pg-1")] });
      await fworld.agent({ cluster: "west", bus: b!.bus, vms: [] });
      const cfg = writeFerryctlConfig(fenv.dir, fenv.ca, await fenv.testKey(), [leader.grpcAddress, standby.grpcAddress], {}, "failover");
      fworld.script("db/pg-0", { hold: true });
      fworld.script("db/pg-1", { hold: true });
      const file = join(fenv.dir, "crash.yaml");
      writeFileSync(
        file,
        toYaml({ apiVersion: "ferry.dev/v1alpha1", kind: "MigrationPlan", metadata: { name: "crash" }, spec: { source: { cluster: "east" }, vms: [{ namespace: "db", name: "pg-0" }, { namespace: "db", name: "pg-1" }], target: { cluster: "west" } } }),
      );
      expect((await ferryctl(["plan", "apply", "-f", file], { config: cfg })).code).toBe(0);
      const watching = ferryctl(["plan", "watch", "crash"], { config: cfg });
      // Both sends are held in Migrating; the watch has printed its snapshot by then.
      for (let i = 0; i < 200; i++) {
        const r = await ferryctl(["migration", "list", "crash", "--state", "Migrating", "-o", "json"], { config: cfg });
        if (r.code === 0 && (JSON.parse(r.stdout) as { items: unknown[] }).items.length === 2) break;
        await new Promise((res) => setTimeout(res, 100));
      }
      await leader.kill();
      fworld.release();
      const w = await watching;
      expect(w.stderr).toBe("");
      expect(w.code).toBe(0);
      const lines = w.stdout.trimEnd().split("\n");
      expect(lines.at(-1)).toMatch(/crash Succeeded: 2\/2 succeeded/);
      expect(lines.filter((l) => / db\/pg-0 {2}Succeeded /.test(l))).toHaveLength(1);
      expect(lines.filter((l) => / db\/pg-1 {2}Succeeded /.test(l))).toHaveLength(1);
      // Every audit line once: nothing was replayed after the resume (lines without their time).
      const bodies = lines.map((l) => l.slice(9));
      expect(new Set(bodies).size).toBe(bodies.length);
    } finally {
      await fworld.stop();
      await fenv.stop();
    }
  });
});
