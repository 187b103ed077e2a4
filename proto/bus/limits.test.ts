// Every message kind's byte limit against the LARGEST message its schema accepts: max-length strings
// of the character JSON escapes most dearly (6 bytes per character), max-length arrays, every
// optional field. A schema that admits a message its own limit refuses would make a valid value
// unsendable (encode fails) or, worse, make a receiver drop what a sender thought was fine.
//
// Two sorts of kinds:
// - fixed-size (heartbeat, event, hello, the requests): the whole largest message must fit;
// - collections (inventory, status, task set, preflight result, VM description): their size grows
//   with the fleet (VMs, tasks, issues), so the count bounds in the schema are sanity caps and the
//   byte limit is the real bound on the total — a sender past it gets an error naming the limit.
//   For them, the largest message with ONE largest element per collection must fit: no single VM,
//   task or issue, however large the schema lets it be, can make a message unsendable.
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { ClusterName, LabelKey, LabelValue, MigrationUid, NamespaceName, NetworkName, ObjectName, PlanName, StorageClassName } from "../names.js";
import { fillDearest, jsonBytes, largestValue, UnboundedSchemaError, type LargestOptions } from "../testing/largest.js";
import { encode, MAX_MESSAGE_BYTES, MESSAGES, type Message, type MessageKind } from "./codec.js";
import { Code, Fingerprint, MacAddress, PEM_BUNDLE_MAX, PemBundle, SyncAddress, Text } from "./common.js";
import { MigrationId } from "./tasks.js";

const label = "a".repeat(63);
const subdomain = "a".repeat(253);
const PEM_BLOCK = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

/** Largest values of the patterned strings; all their patterns admit only 1-byte ASCII characters, except PemBundle's. */
const patterned: LargestOptions["patterned"] = new Map<z.core.$ZodType, string | ((i: number) => string)>([
  [ClusterName, label],
  [NamespaceName, label],
  [PlanName, label],
  [MigrationUid, label],
  [ObjectName, subdomain],
  [StorageClassName, subdomain],
  [MigrationId, subdomain],
  [NetworkName, `${label}/${subdomain}`],
  // 253-character prefix, '/', 63-character name; distinct per index.
  [LabelKey, (i: number) => `${subdomain}/${String(i).padStart(63, "k")}`],
  [LabelValue, "v".repeat(63)],
  [Code, `C${"c".repeat(63)}`],
  [Fingerprint, Array.from({ length: 32 }, () => "AB").join(":")],
  [MacAddress, "02:00:00:ab:cd:ef"],
  [SyncAddress, `${"h".repeat(253)}:65535`],
  // A real block, then whatever else the schema lets a bundle hold.
  [PemBundle, fillDearest(PemBundle, PEM_BLOCK)],
]);

/** The collections of each collection kind (array paths held at one element). */
const COLLECTIONS: Partial<Record<MessageKind, string[]>> = {
  inventory: ["storageClasses", "networks", "nodes", "namespaces", "vms"],
  inventoryReply: ["storageClasses", "networks", "nodes", "namespaces", "vms"],
  status: ["trust", "tasks"],
  tasks: ["trust", "tasks"],
  preflightReply: ["issues"],
  describeVmReply: ["dependencies"],
};

const KINDS = Object.keys(MESSAGES) as MessageKind[];

function largest(kind: MessageKind): unknown {
  const collections = COLLECTIONS[kind];
  // Kubernetes objects inside task sets and VM descriptions are open (their limit is the API
  // server's); only their declared fields are built.
  return largestValue(MESSAGES[kind], { patterned, ...(collections ? { single: new Set(collections), allowOpen: true } : {}) });
}

describe.each(KINDS)("the largest valid %s", (kind) => {
  const collections = COLLECTIONS[kind];
  const what = collections ? `with one largest element per collection (${collections.join(", ")})` : "(fixed size)";

  it(`fits the ${MAX_MESSAGE_BYTES[kind]}-byte limit ${what}`, () => {
    const value = largest(kind);
    const parsed = MESSAGES[kind].safeParse(value);
    expect(parsed.error?.issues ?? [], "the built message is valid").toEqual([]);
    const bytes = jsonBytes(value);
    const encoded = encode(kind, value as Message<typeof kind>);
    expect(encoded.ok ? [] : encoded.issues, `${bytes} bytes`).toEqual([]);
    expect(bytes).toBeLessThanOrEqual(MAX_MESSAGE_BYTES[kind]);
  });
});

describe("the largest values of patterned strings", () => {
  // Each is the longest its schema takes: one character more (where the pattern would allow it) is refused.
  const longer: [string, z.ZodType, string][] = [
    ["cluster name", ClusterName, `${label}a`],
    ["object name", ObjectName, `${subdomain}a`],
    ["migration id", MigrationId, `${subdomain}a`],
    ["network namespace", NetworkName, `a${label}/${subdomain}`],
    ["network name", NetworkName, `${label}/${subdomain}a`],
    ["label key prefix", LabelKey, `a${subdomain}/${"k".repeat(63)}`],
    ["label key name", LabelKey, `${subdomain}/${"k".repeat(64)}`],
    ["label value", LabelValue, "v".repeat(64)],
    ["code", Code, `C${"c".repeat(64)}`],
    ["sync address", SyncAddress, `${"h".repeat(254)}:65535`],
    ["PEM bundle", PemBundle, `${patterned.get(PemBundle) as string}a`],
  ];
  it.each(longer)("%s: one character more is refused", (_, schema, value) => {
    expect(schema.safeParse(value).success).toBe(false);
  });

  it("the PEM bundle is filled with 2-byte characters (PEM is ASCII; line breaks are escaped)", () => {
    expect(jsonBytes(patterned.get(PemBundle))).toBeGreaterThan(2 * PEM_BUNDLE_MAX - 100);
  });
});

describe("largestValue", () => {
  it("refuses a datetime without a length bound (zod takes any number of fractional digits)", () => {
    expect(() => largestValue(z.object({ t: z.iso.datetime() }), { patterned })).toThrow("t: datetime without a maximum length");
  });

  it("fills free text with the character JSON escapes most dearly (\\u0001: 6 bytes each)", () => {
    expect(jsonBytes(largestValue(Text, { patterned }))).toBe(4096 * 6 + 2);
  });

  it("fills a byte-bounded string up to its byte budget", () => {
    const ByteBound = z.string().max(100).refine((s) => jsonBytes(s) <= 50);
    expect(jsonBytes(largestValue(ByteBound, { patterned }))).toBe(50);
  });

  it("finds a record's bound from its refinement, and refuses an unbounded one", () => {
    const Bounded = z.record(LabelKey, LabelValue).refine((r) => Object.keys(r).length <= 37);
    expect(Object.keys(largestValue(Bounded, { patterned }) as object)).toHaveLength(37);
    expect(() => largestValue(z.record(LabelKey, LabelValue), { patterned })).toThrow(UnboundedSchemaError);
  });

  it("refuses strings and arrays without a maximum, and patterns it has no value for", () => {
    expect(() => largestValue(z.object({ s: z.string() }), { patterned })).toThrow("s: string without a maximum length");
    expect(() => largestValue(z.object({ a: z.array(Text) }), { patterned })).toThrow("a: array without a maximum length");
    expect(() => largestValue(z.object({ p: z.string().regex(/^x+$/).max(9) }), { patterned })).toThrow("p: string with a pattern");
  });
});
