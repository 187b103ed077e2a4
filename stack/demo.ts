// `npm run demo [-- --keep] [--dir .ferry-demo] [--time-scale 20] [--timeout 110] [--verbose]`
//
// The entry: options, --help and usage errors (answered before the stack's modules load), then
// stack/demo-run.ts; every failure ends as one line on stderr (the details with --verbose or
// FERRY_DEBUG=1).
import { parseArgs } from "node:util";
import { debugRequested } from "../cli/errors.js";

const USAGE = `usage: npm run demo [-- options]

Starts nats-server, a broker, three simulated clusters (east, west, north) with running VMs and
one agent each; moves three VMs east → west (live) and one within east (storage class standard →
fast), then evacuates north, with live progress and a summary. Exit 0 iff every migration succeeded.

  --keep              leave the stack running afterwards (Ctrl-C stops it)
  --dir <dir>         kubeconfigs, ferryctl.yaml, certificates, logs (default .ferry-demo)
  --time-scale <x>    simulated seconds per real second (default 20)
  --timeout <s>       give up and exit 1 after this many seconds (default 110)
  --verbose           the stack's logs on stderr, and the details of a failure
  -h, --help          this text`;

/** Set once the options are read: failures then show their details. */
let verbose = false;

function usageError(message: string): number {
  process.stderr.write(`demo: ${message}; see npm run demo -- --help\n`);
  return 2;
}

async function main(): Promise<number> {
  let v;
  try {
    v = parseArgs({
      options: {
        keep: { type: "boolean", default: false },
        dir: { type: "string", default: ".ferry-demo" },
        "time-scale": { type: "string", default: "20" },
        timeout: { type: "string", default: "110" },
        verbose: { type: "boolean", default: false },
        help: { type: "boolean", short: "h", default: false },
      },
    }).values;
  } catch (e) {
    // parseArgs' first sentence ("Unknown option '--x'"); the rest is advice about dashes and positionals.
    return usageError((e as Error).message.split("\n")[0]!.split(". ")[0]!.replace(/\.$/, ""));
  }
  if (v.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  verbose = v.verbose;
  const timeScale = Number(v["time-scale"]);
  if (!(timeScale > 0)) return usageError(`--time-scale must be a positive number, not ${v["time-scale"]}`);
  if (!(Number(v.timeout) > 0)) return usageError(`--timeout must be a positive number of seconds, not ${v.timeout}`);
  const { runDemo } = await import("./demo-run.js");
  return runDemo({ keep: v.keep, dir: v.dir, timeScale, timeout: v.timeout, verbose: v.verbose });
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    // One line; what is behind it (log tails, the stack) only on request.
    const details = verbose || debugRequested(process.env, false);
    if (e instanceof Error && e.name === "DemoError") {
      const detail = (e as Error & { detail?: string }).detail;
      process.stderr.write(`demo: ${e.message}\n${details && detail ? `${detail}\n` : ""}`);
    } else {
      const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
      process.stderr.write(details ? `demo: ${message}\n${e instanceof Error ? e.stack : ""}\n` : `demo: ${message} (rerun with --verbose for the details)\n`);
    }
    process.exit(1);
  },
);
