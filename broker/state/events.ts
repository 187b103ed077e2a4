// The audit stream FERRY_EVENTS as the broker uses it: publish events (idempotent within the
// stream's duplicate window), and follow one plan's events from a stream sequence — the feed
// behind PlanService.WatchPlan, whose resume token is that sequence.
import { DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages } from "@nats-io/jetstream";
import type { Logger } from "pino";
import { ensureEventsStream, publishEvent, retryTransient, type Bus } from "../../bus/index.js";
import { clipText, decode, EVENTS_STREAM, eventSubject, planEventsFilter, PLAN_EVENT_TOKEN, type Event } from "../../proto/bus/index.js";
import { MESSAGES } from "../../proto/bus/codec.js";

/** `after_seq` is older than the oldest event the stream still holds (or from another stream). */
export class EventsOutOfRangeError extends Error {
  constructor(
    readonly afterSeq: number,
    readonly firstSeq: number,
    readonly lastSeq: number,
  ) {
    super(
      afterSeq > lastSeq
        ? `after_seq ${afterSeq} is beyond the last event (${lastSeq}): the event stream was reset; reconnect without after_seq for a fresh snapshot`
        : `after_seq ${afterSeq} has aged out of the event stream (oldest kept: ${firstSeq}); reconnect without after_seq for a fresh snapshot`,
    );
    this.name = "EventsOutOfRangeError";
  }
}

export interface FeedEntry {
  /** FERRY_EVENTS stream sequence: the WatchPlan `seq`. */
  seq: number;
  /** When the stream stored it. */
  time: Date;
  event: Event;
}

/** Default dedupe id: one event per record revision. */
export function eventMsgId(event: Event): string {
  return `${event.plan}/${event.migrationUid ?? PLAN_EVENT_TOKEN}/${event.generation}/${event.reason}`;
}

export interface EventFeedOptions {
  replicas: number;
  maxAgeMs?: number;
  memory?: boolean;
}

export class EventFeed {
  private constructor(
    private readonly bus: Bus,
    private readonly log: Logger,
  ) {}

  /** Ensure the stream exists (idempotent) and return the feed. */
  static async open(bus: Bus, log: Logger, opts: EventFeedOptions): Promise<EventFeed> {
    await ensureEventsStream(bus, {
      replicas: opts.replicas,
      ...(opts.maxAgeMs !== undefined ? { maxAgeMs: opts.maxAgeMs } : {}),
      ...(opts.memory ? { memory: true } : {}),
    });
    return new EventFeed(bus, log);
  }

  /**
   * Publish an event; a retry with the same `msgId` (default `eventMsgId`) is stored once. A long
   * message is clipped (clipText) rather than the event refused.
   */
  async publish(event: Event, opts: { msgId?: string } = {}): Promise<{ seq: number; duplicate: boolean }> {
    const ack = await publishEvent(this.bus, eventSubject(event.plan, event.migrationUid), MESSAGES.event, { ...event, message: clipText(event.message) }, { msgId: opts.msgId ?? eventMsgId(event) });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  /** First and last sequence the stream holds (an empty stream: first = last + 1). */
  async bounds(): Promise<{ firstSeq: number; lastSeq: number }> {
    const jsm = await jetstreamManager(this.bus.nc);
    const info = await retryTransient("FERRY_EVENTS info", () => jsm.streams.info(EVENTS_STREAM));
    return { firstSeq: info.state.first_seq, lastSeq: info.state.last_seq };
  }

  /** Throws EventsOutOfRangeError unless every event after `afterSeq` is still in the stream. */
  async checkResume(afterSeq: number): Promise<void> {
    if (afterSeq <= 0) return;
    const { firstSeq, lastSeq } = await this.bounds();
    if (afterSeq > lastSeq || afterSeq + 1 < firstSeq) throw new EventsOutOfRangeError(afterSeq, firstSeq, lastSeq);
  }

  /**
   * The events of `plan` with a sequence above `afterSeq`, stored ones first, then live ones, in
   * order, until `signal` aborts (or the caller stops iterating). Invalid stored events are logged
   * and skipped. Throws EventsOutOfRangeError (before yielding anything) if `afterSeq` aged out.
   */
  async *follow(plan: string, opts: { afterSeq: number; signal?: AbortSignal }): AsyncGenerator<FeedEntry> {
    await this.checkResume(opts.afterSeq);
    const js = jetstream(this.bus.nc);
    const consumer = await retryTransient(`follow the events of plan ${plan}`, () =>
      js.consumers.get(EVENTS_STREAM, {
        // A single string becomes `filter_subject` (nats-server 2.9 has no `filter_subjects`).
        filter_subjects: planEventsFilter(plan),
        deliver_policy: DeliverPolicy.StartSequence,
        opt_start_seq: opts.afterSeq + 1,
      }),
      10_000,
    );
    const messages: ConsumerMessages = await consumer.consume();
    const stop = () => void messages.close().catch(() => undefined);
    if (opts.signal?.aborted) stop();
    opts.signal?.addEventListener("abort", stop, { once: true });
    try {
      for await (const m of messages) {
        const parsed = decode("event", m.data);
        if (!parsed.ok) {
          this.log.warn({ seq: m.seq, subject: m.subject, err: parsed.error }, "skipping invalid event in FERRY_EVENTS");
          continue;
        }
        yield { seq: m.seq, time: m.time, event: parsed.value };
      }
    } finally {
      opts.signal?.removeEventListener("abort", stop);
      stop();
    }
  }
}
