// The WatchPlan stream over the FERRY_EVENTS feed: a snapshot (without after_seq) stamped with the
// stream's last sequence, then every later event of the plan, each turned into the changes to send
// by the controller (`WatchPlanSource`). A client that resumes with the last seq it processed
// misses nothing; OUT_OF_RANGE when that seq aged out of the stream.
import type { WatchPlanRequest, WatchPlanResponse } from "../../proto/gen/ferry/v1/plans.js";
import { BrokerError } from "../errors.js";
import type { EventFeed, FeedEntry } from "../state/events.js";
import type { StreamContext } from "./service.js";

export type PlanChange = NonNullable<WatchPlanResponse["change"]>;

/** What the controller supplies to WatchPlan. */
export interface WatchPlanSource {
  /** The plan, then each of its migrations, as they are now. Throw a not-found BrokerError if there is no such plan. */
  snapshot(plan: string): Promise<PlanChange[]>;
  /** The changes one event stands for (e.g. the migration record it names, re-read); [] to skip; "end" ends the stream (plan deleted). */
  changesFor(entry: FeedEntry): Promise<PlanChange[] | "end">;
}

export async function streamPlanFeed(feed: EventFeed, source: WatchPlanSource, req: WatchPlanRequest, ctx: StreamContext<WatchPlanResponse>): Promise<void> {
  if (!req.name) throw new BrokerError("invalid-argument", "name is required: the plan to watch", { field: "name" });
  let after = req.afterSeq;
  if (after === 0) {
    // The seq is read before the snapshot: an event that lands in between is sent again after
    // it (events carry the record generation, so a reader can skip what it already has).
    const { lastSeq } = await feed.bounds();
    const items = await source.snapshot(req.name);
    if (items.length === 0) throw new BrokerError("not-found", `plan "${req.name}" does not exist`, { reason: "PLAN_NOT_FOUND" });
    const time = new Date();
    for (const [i, change] of items.entries()) {
      await ctx.write({ seq: lastSeq, time, change, message: "", snapshotComplete: i === items.length - 1 });
    }
    after = lastSeq;
  }
  for await (const entry of feed.follow(req.name, { afterSeq: after, signal: ctx.signal })) {
    const changes = await source.changesFor(entry);
    if (changes === "end") return;
    for (const change of changes) await ctx.write({ seq: entry.seq, time: entry.time, change, message: entry.event.message, snapshotComplete: false });
  }
}
