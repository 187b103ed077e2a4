// NATS request/reply through ferry's typed bus (serveRpc/requestRpc: schema checks on both
// sides, size limits, error mapping) against raw nats.js request/subscribe of the same bytes over
// the same two connections (broker ↔ agent, mTLS + JWT, one real nats-server).
import pino from "pino";
import { connectBus, startNats, serveRpc, requestRpc, type Bus } from "../bus/index.js";
import { BUS_API_VERSION, type DescribeVmRequest } from "../proto/bus/index.js";
import { describeReply } from "../broker/core/test-fixtures.js";
import { measureAsync, type Bench } from "./lib.js";

export const busBench: Bench = {
  name: "bus",
  what: "request/reply broker → agent through the typed bus vs raw nats.js on the same connections",
  async run(opts, out) {
    const minMs = opts.quick ? 400 : 2000;
    const nats = await startNats();
    const logger = pino({ level: "silent" });
    let broker: Bus | undefined;
    let agent: Bus | undefined;
    try {
      broker = await connectBus({ ...(await nats.brokerCredentials()), logger, name: "bench-broker" });
      agent = await connectBus({ ...(await nats.agentCredentials("east")), logger, name: "bench-agent-east" });
      const vm = { namespace: "vms", name: "web-1" };
      const reply = describeReply({ source: { cluster: "east", ...vm } });
      const request = (): DescribeVmRequest => ({
        apiVersion: BUS_API_VERSION,
        kind: "DescribeVmRequest",
        cluster: "east",
        deadline: new Date(Date.now() + 10_000).toISOString(),
        vm,
      });
      serveRpc(agent, "east", "describe-vm", () => reply);
      // Raw: the agent may subscribe only under ferry.v1.agent.east.>, so the raw responder lives there too.
      const rawSubject = "ferry.v1.agent.east.rpc.raw-bench";
      const replyBytes = JSON.stringify(reply);
      agent.nc.subscribe(rawSubject, {
        callback: (_err, m) => {
          m.respond(replyBytes);
        },
      });
      await agent.nc.flush();
      const b = broker;
      const raw = async () => {
        const m = await b.nc.request(rawSubject, JSON.stringify(request()), { timeout: 10_000 });
        return m.json<{ kind: string }>().kind;
      };
      const typed = async () => {
        const r = await requestRpc(b, "east", "describe-vm", request(), { timeoutMs: 10_000 });
        if (r.kind !== "VmDescription") throw new Error(`unexpected reply ${r.kind}`);
      };
      for (const concurrency of [1, 16]) {
        out.section(`DescribeVm request/reply, ${concurrency} in flight (reply ${(replyBytes.length / 1024).toFixed(1)} KiB)`);
        const base = await measureAsync(raw, { minMs, concurrency });
        const t = await measureAsync(typed, { minMs, concurrency });
        out.baseline("raw nats request + JSON", base, "req/s");
        out.measured("typed bus requestRpc/serveRpc", t, base, "req/s");
      }
    } finally {
      await broker?.close();
      await agent?.close();
      await nats.stop();
    }
  },
};
