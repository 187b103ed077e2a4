// `ferryctl plan watch`: the I/O part. Follows WatchPlan (resuming with after_seq after a lost
// stream or a leader change, from a fresh snapshot after OUT_OF_RANGE) and renders the view as
// progress bars on a terminal or as plain lines otherwise.
import { status } from "@grpc/grpc-js";
import { MultiBar, Presets, type SingleBar } from "cli-progress";
import type { WatchPlanResponse } from "../proto/gen/ferry/v1/plans.js";
import { BrokerCallError, type BrokerConnection } from "./broker.js";
import { CliError } from "./errors.js";
import type { Io } from "./program.js";
import { applyWatchMessage, emptyView, orderedMigrations, planFinished, planSummary, plainUpdate, progressRow, watchExitCode, type WatchView } from "./watch.js";

/** Consecutive failed reconnects (about a minute) before giving up. */
const MAX_RECONNECTS = 30;

interface Renderer {
  update(view: WatchView, m: WatchPlanResponse): void;
  stop(): void;
}

function plainRenderer(io: Io): Renderer {
  const printed = new Map<string, string>();
  const time = (d: Date | undefined) => `${(d ?? io.now()).toISOString().slice(11, 19)} `;
  return {
    update(view, m) {
      for (const line of plainUpdate(view, m, printed, time)) io.stdout.write(`${line}\n`);
    },
    stop() {},
  };
}

function barRenderer(io: Io, name: string): Renderer {
  const multi = new MultiBar(
    {
      stream: io.stdout,
      hideCursor: true,
      clearOnComplete: false,
      stopOnComplete: false,
      barsize: 24,
      fps: 5,
      linewrap: false,
      format: (_opts, params, payload: Record<string, string>) => {
        if (payload["summary"] !== undefined) return payload["summary"];
        const width = 24;
        const filled = Math.round(params.progress * width);
        const bar = "█".repeat(filled) + "░".repeat(width - filled);
        return [payload["vm"], bar, payload["state"], payload["pct"], payload["bytes"], payload["rate"], payload["eta"], payload["note"]].filter(Boolean).join("  ");
      },
    },
    Presets.shades_classic,
  );
  const header: SingleBar = multi.create(1, 0, { summary: planSummary(undefined, name) });
  const bars = new Map<string, SingleBar>();
  let vmWidth = 8;
  return {
    update(view) {
      header.update(0, { summary: planSummary(view.plan, name) });
      if (!view.snapshotComplete) return;
      const rows = orderedMigrations(view).map(progressRow);
      vmWidth = Math.max(vmWidth, ...rows.map((r) => r.vm.length));
      for (const r of rows) {
        const payload = {
          vm: r.vm.padEnd(vmWidth),
          state: r.state.padEnd(15),
          pct: r.bytes ? `${String(Math.floor(r.fraction * 100)).padStart(3)}%` : "    ",
          bytes: r.bytes,
          rate: r.rate,
          eta: r.eta ? `ETA ${r.eta}` : "",
          note: r.note,
        };
        const bar = bars.get(r.uid);
        if (bar) bar.update(Math.round(r.fraction * 1000), payload);
        else bars.set(r.uid, multi.create(1000, Math.round(r.fraction * 1000), payload));
      }
    },
    stop() {
      multi.stop();
    },
  };
}

/** Watches until the plan finishes; returns the exit code (0 when every VM succeeded). */
export async function watchPlan(conn: BrokerConnection, name: string, io: Io): Promise<number> {
  let view = emptyView();
  const renderer = io.stdout.isTTY ? barRenderer(io, name) : plainRenderer(io);
  const done = new AbortController();
  const onSigint = () => {
    renderer.stop();
    process.exit(130);
  };
  process.once("SIGINT", onSigint);
  let failures = 0;
  try {
    for (;;) {
      try {
        await conn.watchPlan(
          { name, afterSeq: view.snapshotComplete ? view.lastSeq : 0 },
          (m) => {
            failures = 0;
            view = applyWatchMessage(view, m);
            renderer.update(view, m);
            if (planFinished(view)) done.abort();
          },
          done.signal,
        );
        if (planFinished(view)) break;
        renderer.stop();
        throw new CliError(`plan/${name} was deleted while watching`);
      } catch (e) {
        if (!(e instanceof BrokerCallError)) throw e;
        if (e.rpc.code === status.OUT_OF_RANGE) {
          view = emptyView();
          continue;
        }
        if (e.rpc.code !== status.UNAVAILABLE || ++failures > MAX_RECONNECTS) {
          renderer.stop();
          throw e.cli;
        }
        await new Promise((r) => setTimeout(r, Math.min(2000, 200 * failures)));
      }
    }
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
  renderer.stop();
  return watchExitCode(view);
}
