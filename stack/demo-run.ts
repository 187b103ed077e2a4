// The demo itself (`npm run demo`, entry stack/demo.ts, which parses the options and imports this
// module only then, so that --help and usage errors answer at once).
//
// Starts the stack with three clusters seeded with running VMs, applies two plans at once — three
// VMs east → west (decentralized live migration) and one VM within east onto another storage class
// (storage live migration) — then evacuates north (the broker places its VMs), showing live
// per-VM progress. Prints a summary with durations and the kubectl commands to look at the
// result. Exit 0 only if every migration succeeded; bounded by --timeout so CI can run it.
import { spawnSync } from "node:child_process";
import { join, relative } from "node:path";
import type { Metadata } from "@grpc/grpc-js";
import { CustomObjectsApi } from "@kubernetes/client-node";
import { pino } from "pino";
import { call } from "../broker/testing.js";
import { readStatusDetails } from "../proto/grpc-status.js";
import { MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";
import { kubeConfig } from "../sim/testing.js";
import { plainKey, progressRow } from "../cli/watch.js";
import { durationOf, formatDuration, migrationLine, planPhaseName, ProgressBoard, stateName } from "./progress.js";
import { REPO, startFailure, startStack, type Stack } from "./stack.js";

export interface DemoOptions {
  keep: boolean;
  dir: string;
  timeScale: number;
  /** As typed (seconds), for messages. */
  timeout: string;
  verbose: boolean;
}

const CLUSTERS = ["east", "west", "north"];

/** The demo's plans: applied together in the first stage, evacuation in the second. */
export function demoPlans(): { stage1: Record<string, string>; stage2: Record<string, string> } {
  return {
    stage1: {
      "demo-cross": `apiVersion: ferry.dev/v1alpha1
kind: MigrationPlan
metadata: {name: demo-cross}
spec:
  source: {cluster: east}
  vms:
    - {namespace: vms, name: web-1}
    - {namespace: vms, name: web-2}
    - {namespace: vms, name: db-1}
  target: {cluster: west}
  limits: {maxInFlight: 3}
`,
      "demo-storage": `apiVersion: ferry.dev/v1alpha1
kind: MigrationPlan
metadata: {name: demo-storage}
spec:
  source: {cluster: east}
  vms:
    - {namespace: vms, name: web-3}
  target: {cluster: east}
  storageMap:
    - {source: standard, target: fast}
`,
    },
    stage2: {
      "demo-evacuate": `apiVersion: ferry.dev/v1alpha1
kind: MigrationPlan
metadata: {name: demo-evacuate}
spec:
  source: {cluster: north}
  selector: {allVMs: true}
  target: {evacuate: true}
`,
    },
  };
}

/** A failure the demo explains in one line (what went wrong; what to do); `detail` only with --verbose or FERRY_DEBUG. */
export class DemoError extends Error {
  override readonly name = "DemoError";
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** scripts/ensure-nats-server.sh; its last stderr line on failure says why and what to do. */
function ensureNatsServer(): void {
  const r = spawnSync("bash", [join(REPO, "scripts/ensure-nats-server.sh")], { stdio: ["ignore", "inherit", "pipe"], encoding: "utf8" });
  const said = (r.stderr ?? "").trimEnd().split("\n").filter(Boolean);
  if (r.status === 0) {
    if (said.length) process.stderr.write(`${said.join("\n")}\n`);
    return;
  }
  const last = said.pop()?.replace(/^ensure-nats-server: /, "") ?? `scripts/ensure-nats-server.sh exited ${r.status ?? r.signal}; install nats-server and put it on PATH, or set NATS_SERVER_BIN`;
  // Earlier lines are the installer's own (apt-get's errors): shown, then the one line that sums up.
  if (said.length) process.stderr.write(`${said.join("\n")}\n`);
  throw new DemoError(last);
}

async function waitVmsRunning(stack: Stack, deadline: number, timeout: string): Promise<void> {
  for (const c of stack.clusters) {
    const api = kubeConfig(stack.world.cluster(c).kubeconfig).makeApiClient(CustomObjectsApi);
    for (;;) {
      const list = (await api.listClusterCustomObject({ group: "kubevirt.io", version: "v1", plural: "virtualmachines" })) as { items: { status?: { printableStatus?: string } }[] };
      if (list.items.every((vm) => vm.status?.printableStatus === "Running")) break;
      if (Date.now() > deadline) throw new DemoError(`the seeded VMs of ${c} were not Running within --timeout ${timeout} s; rerun with a larger --timeout (a busy machine is slower)`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function describeGrpcError(e: unknown): string {
  const err = e as { code?: number; details?: string; message?: string; metadata?: Metadata };
  const details = readStatusDetails(err.metadata);
  return `${err.details ?? err.message ?? String(e)}${details.length ? `\n${JSON.stringify(details, null, 2)}` : ""}`;
}

/** Runs the demo; resolves with the exit code. Throws DemoError for failures it explains in one line. */
export async function runDemo(v: DemoOptions): Promise<number> {
  const { timeScale } = v;
  const timeoutMs = Number(v.timeout) * 1000;
  const out = (line = "") => process.stdout.write(`${line}\n`);
  const t0 = Date.now();
  const deadline = t0 + timeoutMs;
  ensureNatsServer();

  const log = pino({ level: v.verbose ? "info" : "warn", base: undefined }, pino.destination(2));
  out(`ferry demo: starting nats-server, the broker, clusters ${CLUSTERS.join(", ")} (simulated, time ×${timeScale}) and their agents…`);
  let stack: Stack;
  try {
    stack = await startStack({ clusters: CLUSTERS, dir: v.dir, scenario: "demo", timeScale, log });
  } catch (e) {
    const f = startFailure(e, v.dir, v.verbose ? "the whole error follows" : "rerun with --verbose for the whole error");
    throw new DemoError(f.line, f.detail);
  }
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  let board: ProgressBoard | undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    out(`stack up in ${formatDuration(Date.now() - t0)}; waiting for the seeded VMs to run`);
    await waitVmsRunning(stack, deadline, v.timeout);

    const tty = process.stdout.isTTY;
    let drawn = 0;
    let stagePlans: string[] = [];
    const seen = new Map<string, string>();
    const draw = () => {
      if (!board) return;
      const lines = board.lines(stagePlans);
      if (tty) {
        if (drawn > 0) process.stdout.write(`\x1b[${drawn}A\x1b[J`);
        for (const l of lines) out(l);
        drawn = lines.length;
      }
    };
    // Non-TTY (CI): a line per change worth one (state, note, every 10 % of the bytes: ferryctl's rule).
    board = new ProgressBoard(({ migration }) => {
      if (tty || !migration) return;
      const key = plainKey(progressRow(migration));
      if (seen.get(migration.name) === key) return;
      seen.set(migration.name, key);
      out(`  ${migrationLine(migration)}`);
    });
    if (tty) timer = setInterval(draw, 250);

    const plans = demoPlans();
    const runStage = async (title: string, docs: Record<string, string>): Promise<void> => {
      out(`\n== ${title}`);
      stagePlans = Object.keys(docs);
      const admin = await stack.leaderClients();
      for (const [name, text] of Object.entries(docs)) {
        try {
          await call(admin.plans, "createPlan", { document: { $case: "text", value: text }, dryRun: false });
        } catch (e) {
          throw new Error(`CreatePlan ${name} failed: ${describeGrpcError(e)}`, { cause: e });
        }
        board!.follow(admin.plans, name);
      }
      const names = Object.keys(docs);
      while (!board!.done(names)) {
        if (interrupted) throw new Error("interrupted");
        if (Date.now() > deadline) throw new Error(`timed out after ${formatDuration(Date.now() - t0)} (--timeout ${v.timeout})`);
        await new Promise((r) => setTimeout(r, 200));
      }
      draw();
      drawn = 0;
    };
    let failure: Error | undefined;
    try {
      await runStage("east → west (live, 3 VMs) and east → east (storage class standard → fast, 1 VM), at once", plans.stage1);
      await runStage("evacuate north (the broker places each VM)", plans.stage2);
    } catch (e) {
      failure = e as Error;
    }
    if (timer) clearInterval(timer);
    board.close();

    // Summary.
    out("\n== summary");
    for (const [name, p] of board.plans) {
      const d = p.startTime && p.finishTime ? formatDuration(p.finishTime.getTime() - p.startTime.getTime()) : "-";
      out(`plan ${name.padEnd(16)} ${planPhaseName(p.phase).padEnd(16)} ${d.padStart(8)}   ${p.counters?.succeeded ?? 0}/${p.counters?.total ?? 0} succeeded`);
    }
    const migrations: Migration[] = [...board.migrations.values()].sort((a, b) => a.name.localeCompare(b.name));
    for (const m of migrations) {
      const d = durationOf(m);
      out(`  ${(d === undefined ? "-" : formatDuration(d)).padStart(8)}  ${migrationLine(m)}`);
    }
    const failed = migrations.filter((m) => m.state !== MigrationState.SUCCEEDED);
    const rel = relative(process.cwd(), stack.dir);
    const d = rel.startsWith("..") || rel === "" ? stack.dir : rel;
    out(`\nlook at the result${v.keep ? "" : " (after the run, with --keep)"}:`);
    for (const c of CLUSTERS) out(`  kubectl --kubeconfig ${d}/kubeconfig-${c} get vm,vmim -A`);
    out(`  npx ferryctl --config ${d}/ferryctl.yaml plan list`);
    out(`\ntotal ${formatDuration(Date.now() - t0)}`);
    if (failure) out(`demo FAILED: ${failure.message}`);
    else if (failed.length) out(`demo FAILED: ${failed.length} migration(s) did not succeed: ${failed.map((m) => `${m.name} (${stateName(m.state)})`).join(", ")}`);
    else out(`demo OK: ${migrations.length} migrations succeeded`);
    const code = failure || failed.length > 0 || migrations.length === 0 ? 1 : 0;
    if (v.keep && !interrupted) {
      out("\nthe stack keeps running (--keep); Ctrl-C stops it");
      await new Promise<void>((r) => {
        process.once("SIGINT", () => r());
        process.once("SIGTERM", () => r());
      });
    }
    return code;
  } finally {
    if (timer) clearInterval(timer);
    board?.close();
    await stack.stop();
  }
}

