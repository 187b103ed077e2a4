// Encoding and decoding of bus messages: UTF-8 JSON, size-limited, schema-checked. decode() never
// throws: a malformed or oversized message is an error value to log and drop (DESIGN.md §4).
import type { z } from "zod";
import { fail, parseWith, type Result } from "../issues.js";
import { Heartbeat, Hello, Inventory, Status } from "./agent.js";
import { Event } from "./events.js";
import { DescribeVmReply, DescribeVmRequest, InventoryReply, InventoryRequest, PreflightReply, PreflightRequest } from "./rpc.js";
import { TaskSet } from "./tasks.js";

export const MESSAGES = {
  hello: Hello,
  heartbeat: Heartbeat,
  inventory: Inventory,
  status: Status,
  tasks: TaskSet,
  event: Event,
  preflightRequest: PreflightRequest,
  preflightReply: PreflightReply,
  inventoryRequest: InventoryRequest,
  inventoryReply: InventoryReply,
  describeVmRequest: DescribeVmRequest,
  describeVmReply: DescribeVmReply,
} as const;

export type MessageKind = keyof typeof MESSAGES;
export type Message<K extends MessageKind> = z.output<(typeof MESSAGES)[K]>;

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * Largest encoded message accepted per kind. Fixed-size kinds fit their largest valid message
 * (limits.test.ts: a 4096-character Text can take 24 KiB as JSON). Inventory and task sets are the
 * big collections: an inventory takes roughly 0.5–1 KiB per VM, so 8 MiB covers about 8,000 VMs per
 * cluster; a target `prepare` task carries the VM manifest and its Secrets/ConfigMaps.
 */
export const MAX_MESSAGE_BYTES = {
  hello: 2 * MiB,
  heartbeat: 32 * KiB,
  inventory: 8 * MiB,
  status: 4 * MiB,
  tasks: 8 * MiB,
  event: 32 * KiB,
  preflightRequest: 1 * MiB,
  preflightReply: 1 * MiB,
  inventoryRequest: 4 * KiB,
  inventoryReply: 8 * MiB,
  describeVmRequest: 4 * KiB,
  describeVmReply: 4 * MiB,
} as const satisfies Record<MessageKind, number>;

/** The nats-server `max_payload` must be at least this (NATS' default is 1 MiB). */
export const NATS_MAX_PAYLOAD = Math.max(...Object.values(MAX_MESSAGE_BYTES));

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();

export interface DecodeOptions {
  /** The cluster named by the subject; a message claiming another cluster is rejected. */
  cluster?: string;
}

/** Parses and validates a message of `kind`. Never throws. */
export function decode<K extends MessageKind>(kind: K, bytes: Uint8Array, options: DecodeOptions = {}): Result<Message<K>> {
  try {
    const max = MAX_MESSAGE_BYTES[kind];
    if (bytes.byteLength > max) {
      return fail([{ path: "(message)", message: `${bytes.byteLength} bytes exceeds the ${max}-byte limit for ${kind}` }]);
    }
    let data: unknown;
    try {
      data = JSON.parse(utf8.decode(bytes));
    } catch (e) {
      return fail([{ path: "(message)", message: `not UTF-8 JSON: ${e instanceof Error ? e.message : String(e)}` }]);
    }
    const parsed = parseWith(MESSAGES[kind], data) as Result<Message<K>>;
    if (parsed.ok && options.cluster !== undefined) {
      const claimed = (parsed.value as { cluster?: unknown }).cluster;
      if (claimed !== undefined && claimed !== options.cluster) {
        return fail([{ path: "cluster", message: `message claims cluster ${JSON.stringify(claimed)} but arrived on a subject of "${options.cluster}"` }]);
      }
    }
    return parsed;
  } catch (e) {
    // Schema code should never throw; if it does, the message is still just dropped.
    return fail([{ path: "(message)", message: `decoder failure: ${e instanceof Error ? e.message : String(e)}` }]);
  }
}

/** Validates and serializes a message of `kind`; fails (never throws) if invalid or over the size limit. */
export function encode<K extends MessageKind>(kind: K, value: Message<K>): Result<Uint8Array> {
  const parsed = parseWith(MESSAGES[kind], value);
  if (!parsed.ok) return parsed;
  const bytes = utf8Encoder.encode(JSON.stringify(parsed.value));
  const max = MAX_MESSAGE_BYTES[kind];
  if (bytes.byteLength > max) {
    return fail([{ path: "(message)", message: `${bytes.byteLength} bytes exceeds the ${max}-byte limit for ${kind}` }]);
  }
  return { ok: true, value: bytes };
}
