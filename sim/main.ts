// `npm run sim -- up`: simulated Kubernetes + KubeVirt clusters in the foreground. Prints exactly one
// line, `ready`, on stdout once every cluster serves; everything else goes to stderr. Stops cleanly
// (exit 0) on SIGINT/SIGTERM.
import { parseArgs } from "node:util";
import { loadScenarioFile } from "./scenario.js";
import { type World, startWorld } from "./world.js";

const USAGE = `usage: npm run sim -- up [options]

Starts simulated clusters (Kubernetes API server + KubeVirt/CDI simulation) and writes
<dir>/<cluster>/kubeconfig for each plus <dir>/sim.json (control API URL and token).

options:
  --clusters <n|names>   number of clusters (a, b, c, ...) or comma-separated names
                         (default: the scenario's clusters, else a,b)
  --dir <dir>            where to write kubeconfigs and sim.json (default: .sim)
  --scenario <file>      YAML scenario (default: the built-in one; see sim/README.md)
  --empty                seed nothing (no scenario)
  --time-scale <x>       simulated seconds per real second (default 1)
  --http                 serve plain HTTP instead of HTTPS
  --host <addr>          listen address (default 127.0.0.1)
  --port-base <port>     control API on <port>, clusters on <port>+1, +2, ... (default: free ports)
  -h, --help             this text
`;

function fail(msg: string): never {
  process.stderr.write(`sim: ${msg}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: {
        clusters: { type: "string" },
        dir: { type: "string", default: ".sim" },
        scenario: { type: "string" },
        empty: { type: "boolean", default: false },
        "time-scale": { type: "string" },
        http: { type: "boolean", default: false },
        host: { type: "string" },
        "port-base": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (e) {
    fail(`${e instanceof Error ? e.message : String(e)}\n\n${USAGE}`);
  }
  const { values: v, positionals } = parsed;
  if (v.help) {
    process.stdout.write(USAGE);
    return;
  }
  if (positionals[0] !== "up" || positionals.length !== 1) fail(`expected the command "up"\n\n${USAGE}`);

  let clusters: number | string[] | undefined;
  if (v.clusters !== undefined) {
    if (/^\d+$/.test(v.clusters)) {
      clusters = Number(v.clusters);
      if (clusters < 1) fail("--clusters: at least 1");
    } else clusters = v.clusters.split(",").map((s) => s.trim()).filter((s) => s !== "");
  }
  const timeScale = v["time-scale"] !== undefined ? Number(v["time-scale"]) : 1;
  if (!(timeScale > 0)) fail(`--time-scale: expected a number > 0, got "${v["time-scale"]}"`);
  const portBase = v["port-base"] !== undefined ? Number(v["port-base"]) : undefined;
  if (portBase !== undefined && !(Number.isInteger(portBase) && portBase > 0 && portBase < 65000)) fail(`--port-base: expected a port number, got "${v["port-base"]}"`);
  if (v.empty && v.scenario) fail("--empty and --scenario exclude each other");

  let scenario;
  try {
    scenario = v.empty ? ("empty" as const) : v.scenario ? loadScenarioFile(v.scenario) : ("default" as const);
  } catch (e) {
    fail(e instanceof Error ? e.message : String(e));
  }

  // Signals during start-up are honoured once the world is up (then stopped at once).
  let world: World | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    if (!world) return;
    process.stderr.write(`sim: ${signal}, stopping\n`);
    world.stop().then(
      () => process.exit(0),
      (e: unknown) => {
        process.stderr.write(`sim: error while stopping: ${e instanceof Error ? e.message : String(e)}\n`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));

  try {
    world = await startWorld({
      ...(clusters !== undefined ? { clusters } : {}),
      timeScale,
      http: v.http,
      scenario,
      dir: v.dir,
      ...(v.host ? { host: v.host } : {}),
      ...(portBase ? { portBase } : {}),
    });
  } catch (e) {
    process.stderr.write(`sim: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }

  if (stopping) {
    stopping = false;
    shutdown("signal during start-up");
    return;
  }
  for (const c of world.clusters) process.stderr.write(`sim: cluster ${c.name} at ${c.server}  kubeconfig ${c.kubeconfigPath}\n`);
  process.stderr.write(`sim: control API at ${world.control.url} (token in ${v.dir}/sim.json), time scale ${timeScale}\n`);
  process.stdout.write("ready\n");
}

await main();
