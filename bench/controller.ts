// The broker's control-plane overhead on a bulk plan. A real broker (in process, over a real
// nats-server, gRPC over TLS) runs plans against scripted bus-level agents whose every migration
// takes exactly D ms once its send starts (broker/controller/testing.ts). With S migration slots
// (2 source nodes × parallelOutboundMigrationsPerNode 2), no scheduler can finish N VMs before
// ceil(N / S) · D: that lower bound is the baseline. The ratio makespan / lower bound is what the
// broker adds: validation round trips, trust, prepare, the passes between a slot freeing and the
// next migration's send. Also the cost of one reconcile pass per migration held.
import { performance } from "node:perf_hooks";
import { call, startBrokerEnv } from "../broker/testing.js";
import { controllerFactory } from "../broker/controller/index.js";
import { ScriptedWorld, testVm } from "../broker/controller/testing.js";
import { PlanPhase } from "../proto/gen/ferry/v1/plans.js";
import { stats, type Bench } from "./lib.js";

const SLOTS = 4;

export const controllerBench: Bench = {
  name: "controller",
  what: "bulk plan makespan through the broker vs the lower bound set by the migration slots",
  async run(opts, out) {
    const sizes = opts.quick ? [16] : [16, 64];
    const durationMs = opts.quick ? 100 : 250;
    const env = await startBrokerEnv();
    const world = new ScriptedWorld({ migrationMs: durationMs });
    try {
      const broker = await env.startInProcess("bench", {}, { controller: controllerFactory({ tickMs: 1000 }) });
      while (!broker.runtime.leader.isLeader) await new Promise((r) => setTimeout(r, 20));
      const admin = await env.adminClients(broker.grpcAddress);
      const total = sizes.reduce((a, b) => a + b, 0);
      const [e, w] = await Promise.all(["east", "west"].map((c) => env.enrollAgent(broker.grpcAddress, c)));
      await world.agent({ cluster: "east", bus: e!.bus, vms: Array.from({ length: total }, (_, i) => testVm("bench", `vm-${i}`, { node: i % 2 ? "node-a" : "node-b" })) });
      await world.agent({ cluster: "west", bus: w!.bus, vms: [] });
      await new Promise((r) => setTimeout(r, 1000)); // inventories reach the broker
      const ratios: number[] = [];
      let next = 0;
      for (const n of sizes) {
        const vms = Array.from({ length: n }, () => ({ namespace: "bench", name: `vm-${next++}` }));
        const name = `bulk-${n}`;
        const doc = { apiVersion: "ferry.dev/v1alpha1", kind: "MigrationPlan", metadata: { name }, spec: { source: { cluster: "east" }, target: { cluster: "west" }, vms, limits: { maxInFlight: 100 } } };
        const t0 = performance.now();
        await call(admin.plans, "createPlan", { document: { $case: "object", value: doc }, dryRun: false });
        const created = performance.now();
        for (;;) {
          const p = (await call(admin.plans, "getPlan", { name })).plan!;
          if (p.phase === PlanPhase.SUCCEEDED) break;
          if (p.phase !== PlanPhase.PENDING && p.phase !== PlanPhase.RUNNING) throw new Error(`plan ${name} ended ${PlanPhase[p.phase]}`);
          await new Promise((r) => setTimeout(r, 20));
        }
        const ms = performance.now() - created;
        const bound = Math.ceil(n / SLOTS) * durationMs;
        out.section(`${n} VMs, ${SLOTS} slots, ${durationMs} ms per migration (CreatePlan with validation: ${(created - t0).toFixed(0)} ms)`);
        out.baseline("lower bound ceil(N/S)·D", { ops: n, ms: bound, rate: (n / bound) * 1000 }, "VMs/s");
        out.measured("makespan through the broker", { ops: n, ms, rate: (n / ms) * 1000 }, { ops: n, ms: bound, rate: (n / bound) * 1000 }, "VMs/s");
        ratios.push(ms / bound);
      }
      out.ratio("makespan / lower bound", stats(ratios), "1 = the broker adds nothing; the excess is control-plane latency per wave");
      const metrics = await (await fetch(`http://127.0.0.1:${broker.httpPort}/metrics`)).text();
      const value = (m: string) => Number(metrics.split("\n").find((l) => l.startsWith(`${m} `))?.split(" ")[1] ?? NaN);
      const passes = value("ferry_reconcile_pass_duration_seconds_count");
      out.note(`reconcile passes: ${passes}, mean ${((value("ferry_reconcile_pass_duration_seconds_sum") / passes) * 1000).toFixed(1)} ms over up to ${total} migration records`);
      admin.close();
    } finally {
      await world.stop();
      await env.stop();
    }
  },
};
