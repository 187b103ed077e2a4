// bus/ferry.ts: ferry's contract (proto/bus subjects, schemas, limits) over a real nats-server.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { headers as natsHeaders } from "@nats-io/transport-node";
import { BUS_API_VERSION, MAX_MESSAGE_BYTES, NATS_MAX_PAYLOAD, rpcSubject, type Heartbeat, type Message } from "../proto/bus/index.js";
import {
  BusHandlerError,
  BusRequestError,
  connectBus,
  ERROR_CODE_HEADER,
  publishReport,
  requestRpc,
  serveRpc,
  startNats,
  subscribeReports,
  toRpcCode,
  type Bus,
  type NatsHarness,
} from "./index.js";
import { validPool } from "./fuzz/contract.js";
import { captureLogs, waitFor } from "./test-support.js";

const logs = captureLogs();
let h: NatsHarness;
let broker: Bus;
let agent: Bus;
const heartbeat: Heartbeat = {
  apiVersion: BUS_API_VERSION,
  kind: "Heartbeat",
  cluster: "a",
  epoch: 1,
  seq: 1,
  time: "2026-11-21T23:42:00.000Z",
  health: { kubernetesApi: true, watches: true, tasks: 0 },
};
const describeReq = (name: string): Message<"describeVmRequest"> => ({
  apiVersion: BUS_API_VERSION,
  kind: "DescribeVmRequest",
  cluster: "a",
  deadline: new Date(Date.now() + 60_000).toISOString(),
  vm: { namespace: "prod", name },
});

beforeAll(async () => {
  // Room above the largest bus limit (8 MiB), so an oversized reply reaches the broker's own check.
  h = await startNats({ maxPayload: 2 * NATS_MAX_PAYLOAD });
  [broker, agent] = await Promise.all([
    h.brokerCredentials().then((c) => connectBus({ ...c, logger: logs.logger })),
    h.agentCredentials("a").then((c) => connectBus({ ...c, logger: logs.logger })),
  ]);
});

afterAll(async () => {
  await Promise.all([broker?.close(), agent?.close()]);
  await h?.stop();
});

describe("reports", () => {
  it("reach the broker with the cluster taken from the subject; a payload claiming another cluster is dropped", async () => {
    const got: { cluster: string; seq: number }[] = [];
    const sub = subscribeReports(broker, "heartbeat", (m) => void got.push({ cluster: m.cluster, seq: m.data.seq }));
    await broker.flush();
    publishReport(agent, "a", "heartbeat", { ...heartbeat, cluster: "b", seq: 2 }); // schema-valid, wrong cluster
    publishReport(agent, "a", "heartbeat", heartbeat);
    await waitFor(() => sub.counters.accepted + sub.counters.dropped === 2, "two heartbeats");
    expect(got).toEqual([{ cluster: "a", seq: 1 }]);
    expect(sub.counters.droppedBy.rejected).toBe(1);
    expect(logs.lines.some((l) => l["reason"] === "rejected" && String(l["detail"]).includes('claims cluster "b"'))).toBe(true);
    expect(() => publishReport(agent, "a", "heartbeat", { ...heartbeat, seq: 0 })).toThrow(/seq/);
    sub.unsubscribe();
  });
});

describe("RPCs", () => {
  beforeAll(async () => {
    const description = validPool("describeVmReply", 20, 3).find((r) => (r as { kind: string }).kind === "VmDescription") as Message<"describeVmReply">;
    serveRpc(agent, "a", "describe-vm", (req) => {
      if (req.vm.name === "missing") throw new BusHandlerError("NotFound", `VirtualMachine prod/${req.vm.name} not found`);
      if (req.vm.name === "crash") throw new Error("boom");
      return description;
    });
    await agent.flush();
  });

  it("return the reply", async () => {
    const reply = await requestRpc(broker, "a", "describe-vm", describeReq("db-1"));
    expect(reply.kind).toBe("VmDescription");
  });

  it("turn handler errors into RpcError replies", async () => {
    await expect(requestRpc(broker, "a", "describe-vm", describeReq("missing"))).resolves.toMatchObject({
      kind: "RpcError",
      code: "NotFound",
      message: "VirtualMachine prod/missing not found",
    });
    await expect(requestRpc(broker, "a", "describe-vm", describeReq("crash"))).resolves.toMatchObject({ kind: "RpcError", code: "Internal", message: "boom" });
  });

  it("answer an invalid request with RpcError BadRequest (body) and the error header", async () => {
    const raw = await broker.nc.request(rpcSubject("a", "describe-vm"), JSON.stringify({ ...describeReq("x"), vm: { namespace: "Prod!", name: "x" } }), {
      timeout: 2000,
    });
    expect(raw.headers?.get(ERROR_CODE_HEADER)).toBe("bad-request");
    expect(raw.json()).toMatchObject({ apiVersion: BUS_API_VERSION, kind: "RpcError", code: "BadRequest", message: expect.stringContaining("vm.namespace") });
    // a request for another cluster, sent on a's subject, is refused the same way
    const other = await broker.nc.request(rpcSubject("a", "describe-vm"), JSON.stringify({ ...describeReq("x"), cluster: "b" }), { timeout: 2000 });
    expect(other.json()).toMatchObject({ kind: "RpcError", code: "BadRequest", message: expect.stringContaining('claims cluster "b"') });
  });

  it("refuse a reply that claims another cluster, is malformed or oversized, with a log line each", async () => {
    const inventory = validPool("inventoryReply", 20, 4).find((r) => (r as { kind: string }).kind === "Inventory") as Message<"inventoryReply"> & { cluster: string };
    const replies: { body: Uint8Array; headers?: ReturnType<typeof natsHeaders> }[] = [];
    const errorHeader = () => {
      const hd = natsHeaders();
      hd.set(ERROR_CODE_HEADER, "NotFound");
      return hd;
    };
    const enc = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));
    // A raw responder standing in for a faulty or hostile agent "a".
    const sub = agent.nc.subscribe(rpcSubject("a", "inventory"), {
      callback: (_e, m) => {
        const r = replies.shift()!;
        m.respond(r.body, r.headers ? { headers: r.headers } : undefined);
      },
    });
    await agent.flush();
    const ask = () => requestRpc(broker, "a", "inventory", { apiVersion: BUS_API_VERSION, kind: "InventoryRequest", cluster: "a", deadline: new Date(Date.now() + 60_000).toISOString() });
    const cases: [string, Uint8Array, "invalid-reply" | "remote-error", string, boolean?][] = [
      ["another cluster", enc({ ...inventory, cluster: "b" }), "invalid-reply", "rejected"],
      ["not JSON", new TextEncoder().encode("{nope"), "invalid-reply", "not-json"],
      ["invalid", enc({ ...inventory, nodes: "many" }), "invalid-reply", "invalid"],
      ["oversized", new Uint8Array(MAX_MESSAGE_BYTES.inventoryReply + 1), "invalid-reply", "oversize"],
      ["error header, bad body", enc({ nope: 1 }), "remote-error", "invalid", true],
    ];
    for (const [what, body, reason, dropReason, withHeader] of cases) {
      replies.push({ body, ...(withHeader ? { headers: errorHeader() } : {}) });
      const before = logs.lines.length;
      const e = await ask().catch((x: unknown) => x);
      expect(e, what).toBeInstanceOf(BusRequestError);
      expect((e as BusRequestError).reason, what).toBe(reason);
      expect(logs.lines.slice(before).filter((l) => l["msg"] === "bus dropped message").map((l) => l["reason"]), what).toEqual([dropReason]);
    }
    // the right cluster, and an RpcError with the error header, are accepted
    replies.push({ body: enc({ ...inventory, cluster: "a" }) });
    await expect(ask()).resolves.toMatchObject({ kind: "Inventory", cluster: "a" });
    replies.push({ body: enc({ apiVersion: BUS_API_VERSION, kind: "RpcError", code: "NotFound", message: "no" }), headers: errorHeader() });
    await expect(ask()).resolves.toMatchObject({ kind: "RpcError", code: "NotFound" });
    sub.unsubscribe();
  });

  it("report a cluster without an agent as no-responders", async () => {
    const e = await requestRpc(broker, "zz", "describe-vm", { ...describeReq("x"), cluster: "zz" }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(BusRequestError);
    expect((e as BusRequestError).reason).toBe("no-responders");
  });

  it("map bus error codes to RpcError codes", () => {
    expect(["bad-request", "not-found", "timeout", "internal", "NotFound", "weird"].map(toRpcCode)).toEqual([
      "BadRequest",
      "NotFound",
      "DeadlineExceeded",
      "Internal",
      "NotFound",
      "Internal",
    ]);
  });
});
