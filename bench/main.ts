// `npm run bench [-- --quick] [name ...]`: runs the benchmarks and prints ratios against baselines
// measured in the same run. Never fails on a number; exits non-zero only if a bench crashed.
import { parseArgs } from "node:util";
import { busBench } from "./bus.js";
import { codecBench } from "./codec.js";
import { controllerBench } from "./controller.js";
import { Reporter, type Bench } from "./lib.js";
import { schedulerBench } from "./scheduler.js";
import { simBench } from "./sim.js";
import { simkvBench } from "./simkv.js";

export const BENCHES: Bench[] = [schedulerBench, codecBench, busBench, simBench, simkvBench, controllerBench];

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({ options: { quick: { type: "boolean", default: false }, help: { type: "boolean", short: "h" } }, allowPositionals: true });
  if (values.help) {
    process.stdout.write(`usage: npm run bench -- [--quick] [${BENCHES.map((b) => b.name).join("|")} ...]\n`);
    for (const b of BENCHES) process.stdout.write(`  ${b.name.padEnd(10)} ${b.what}\n`);
    return 0;
  }
  const unknown = positionals.filter((p) => !BENCHES.some((b) => b.name === p));
  if (unknown.length > 0) {
    process.stderr.write(`unknown bench ${unknown.join(", ")}: choose from ${BENCHES.map((b) => b.name).join(", ")}\n`);
    return 2;
  }
  const chosen = positionals.length > 0 ? BENCHES.filter((b) => positionals.includes(b.name)) : BENCHES;
  const out = new Reporter();
  let failed = 0;
  process.stdout.write(`ferry benchmarks${values.quick ? " (--quick)" : ""}: node ${process.version}, ratios are against the baseline measured in the same run\n`);
  for (const b of chosen) {
    process.stdout.write(`\n${b.name}: ${b.what}\n`);
    const t0 = Date.now();
    try {
      await b.run({ quick: values.quick }, out);
      out.note(`(${((Date.now() - t0) / 1000).toFixed(1)} s)`);
    } catch (e) {
      failed++;
      process.stdout.write(`  FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
