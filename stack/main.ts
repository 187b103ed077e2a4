// `npm run ferry -- up [--clusters a,b,c] [--dir .ferry] [--scenario file.yaml|base|demo] [--brokers 1|2] [--time-scale x]`
// Runs the whole stack in the foreground (startStack), prints `ready` and what to type next on
// stdout, logs to stderr, and on SIGINT/SIGTERM stops everything and exits 0.
import { parseArgs } from "node:util";
import { relative } from "node:path";
import { debugRequested } from "../cli/errors.js";
import type { Stack } from "./stack.js";

const USAGE = `usage: npm run ferry -- up [options]

Starts nats-server, the broker, simulated clusters and one enrolled agent per cluster, in the
foreground; Ctrl-C stops everything.

  --clusters <a,b,c>    cluster names (default east,west)
  --dir <dir>           kubeconfigs, ferryctl.yaml, certificates, logs (default .ferry)
  --scenario <s>        sim scenario YAML file, or base (nodes, storage, KubeVirt; default) or demo (+ running VMs)
  --brokers <1|2>       broker replicas, active/standby (default 1)
  --time-scale <x>      simulated seconds per real second (default 1)
  --log-level <level>   stderr log level (default info)`;

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A usage error: one line naming what is wrong and where the options are listed, exit 2. */
function usage(message: string): never {
  process.stderr.write(`ferry: ${message}; see npm run ferry -- --help\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        clusters: { type: "string", default: "east,west" },
        dir: { type: "string", default: ".ferry" },
        scenario: { type: "string", default: "base" },
        brokers: { type: "string", default: "1" },
        "time-scale": { type: "string", default: "1" },
        "log-level": { type: "string", default: "info" },
        help: { type: "boolean", short: "h" },
      },
    });
  } catch (e) {
    usage((e as Error).message.split("\n")[0]!.split(". ")[0]!.replace(/\.$/, ""));
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  if (positionals[0] !== "up" || positionals.length > 1) usage(positionals.length ? `unknown command ${positionals.join(" ")}` : "missing command: up");
  const clusters = v.clusters.split(",").map((c) => c.trim()).filter(Boolean);
  const bad = clusters.filter((c) => !NAME.test(c) || c.length > 63);
  if (clusters.length === 0 || bad.length) usage(`--clusters: ${bad.length ? `${bad.join(", ")} must be lowercase RFC 1123 labels` : "name at least one cluster"}`);
  if (new Set(clusters).size !== clusters.length) usage("--clusters: names must be unique");
  const brokers = Number(v.brokers);
  if (brokers !== 1 && brokers !== 2) usage(`--brokers must be 1 or 2, not ${v.brokers}`);
  const timeScale = Number(v["time-scale"]);
  if (!(timeScale > 0)) usage(`--time-scale must be a positive number, not ${v["time-scale"]}`);

  // Loaded only now, so that --help and usage errors answer at once.
  const [{ pino }, { startFailure, startStack }] = await Promise.all([import("pino"), import("./stack.js")]);
  const log = pino({ level: v["log-level"], base: undefined }, pino.destination(2));
  let stack: Stack | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "stopping the stack");
    void (stack ? stack.stop() : Promise.resolve()).then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: String(e) }, "unclean shutdown");
        process.exit(1);
      },
    );
  };
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.once("SIGTERM", () => shutdown("SIGTERM"));

  try {
    stack = await startStack({ clusters, dir: v.dir, scenario: v.scenario, brokers, timeScale, log });
  } catch (e) {
    // A line for the person at the terminal (not a JSON log line); the whole error on request.
    const f = startFailure(e, v.dir, "rerun with FERRY_DEBUG=1 for the whole error");
    process.stderr.write(`ferry: ${f.line}\n${debugRequested(process.env, false) ? `${f.detail}\n` : ""}`);
    process.exit(1);
  }
  if (stopping) return;
  const rel = relative(process.cwd(), stack.dir);
  const d = rel === "" ? "." : rel.startsWith("..") ? stack.dir : rel;
  const lines = [
    "ready",
    "",
    `clusters: ${clusters.join(", ")}   brokers: ${stack.brokerAddresses.join(", ")}   nats: ${stack.env.nats.urls.join(", ")}`,
    "",
    "next:",
    `  npx ferryctl --config ${d}/ferryctl.yaml cluster list`,
    ...clusters.map((c) => `  kubectl --kubeconfig ${d}/kubeconfig-${c} get vm -A`),
    `  kubectl --kubeconfig ${d}/kubeconfig-${clusters[0]} get vmim -A -w`,
    `  tail -f ${d}/logs/*.log`,
    "",
    "Ctrl-C stops everything.",
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

await main();
