// A 3-node NATS cluster: a KV bucket with 3 replicas survives SIGKILL of its stream leader; the
// broker reads the value and writes again through the survivors; the killed node rejoins.
import { describe, it, expect, beforeAll, afterAll } from "vitest";
import { jetstreamManager } from "@nats-io/jetstream";
import { z } from "zod";
import { connect, jwtAuthenticator, AuthorizationError } from "@nats-io/transport-node";
import {
  connectBus,
  encodeFerryAccount,
  pushAccountJwt,
  revokeUsers,
  startNats,
  typedKv,
  type Bus,
  type NatsHarness,
  type TypedKv,
} from "./index.js";
import { captureLogs, serverErrors, waitFor } from "./test-support.js";

const Plan = z.object({ name: z.string(), generation: z.number().int() });

const logs = captureLogs();
let h: NatsHarness;
let broker: Bus;
let kv: TypedKv<typeof Plan>;

beforeAll(async () => {
  h = await startNats({ nodes: 3 });
  broker = await connectBus({ ...(await h.brokerCredentials()), logger: logs.logger, reconnect: { initialMs: 50, maxMs: 1000 } });
  kv = await typedKv(broker, "FERRY_PLANS", Plan, { replicas: 3 });
}, 120_000);

afterAll(async () => {
  await broker?.close();
  await h?.stop();
});

/** Retry an operation while the cluster elects a new leader. */
async function eventually<T>(what: string, op: () => Promise<T>): Promise<T> {
  let last: unknown;
  return waitFor(
    async () => {
      try {
        return { v: await op() };
      } catch (e) {
        last = e;
        await new Promise((r) => setTimeout(r, 200));
        return undefined;
      }
    },
    what,
    30_000,
  )
    .then((r) => r.v)
    .catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; last error: ${String(last)}`, { cause: e });
    });
}

describe("3-node JetStream cluster", () => {
  it("runs three routed servers with one meta leader", async () => {
    expect(h.nodes.map((n) => n.name)).toEqual(["n0", "n1", "n2"]);
    expect(new Set(h.urls).size).toBe(3);
    const res = await fetch(`${h.nodes[0]!.monitorUrl}/jsz`);
    const jsz = (await res.json()) as { meta_cluster: { cluster_size: number; leader: string } };
    expect(jsz.meta_cluster.cluster_size).toBe(3);
    expect(["n0", "n1", "n2"]).toContain(jsz.meta_cluster.leader);
  });

  it("keeps a replicas-3 KV value readable and writable after SIGKILL of the stream leader", async () => {
    const jsm = await jetstreamManager(broker.nc);
    // A new replicas-3 stream reports its followers once they have joined (a moment on a busy machine).
    const info = await eventually("both followers joined", async () => {
      const i = await jsm.streams.info("KV_FERRY_PLANS");
      if ((i.cluster?.replicas ?? []).length !== 2) throw new Error(JSON.stringify(i.cluster));
      return i;
    });
    expect(info.config.num_replicas).toBe(3);

    const r1 = await kv.put("plan.p1", { name: "p1", generation: 1 });
    const leader = info.cluster!.leader!;
    const victim = h.nodes.find((n) => n.name === leader)!;
    await victim.kill();
    expect(victim.running).toBe(false);

    const got = await eventually("read after kill", () => kv.get("plan.p1"));
    expect(got).toMatchObject({ value: { name: "p1", generation: 1 }, revision: r1 });
    const r2 = await eventually("CAS write after kill", () => kv.update("plan.p1", { name: "p1", generation: 2 }, r1));
    expect((await kv.get("plan.p1"))?.value.generation).toBe(2);

    const after = await eventually("new leader", async () => {
      const i = await jsm.streams.info("KV_FERRY_PLANS");
      if (!i.cluster?.leader || i.cluster.leader === leader) throw new Error("no new leader yet");
      return i;
    });
    expect(after.cluster!.leader).not.toBe(leader);

    // The killed node comes back and catches up.
    await victim.restart();
    await eventually("all replicas current", async () => {
      const i = await jsm.streams.info("KV_FERRY_PLANS");
      const peers = i.cluster?.replicas ?? [];
      if (peers.length !== 2 || !peers.every((p) => p.current)) throw new Error(JSON.stringify(i.cluster));
      return i;
    });
    const r3 = await kv.update("plan.p1", { name: "p1", generation: 3 }, r2);
    expect(r3).toBeGreaterThan(r2);
  }, 90_000); // kills and restarts NATS nodes: seconds each on a busy machine

  it("applies a revocation pushed to one node on every node, also after a node restart", async () => {
    const x = await h.agentCredentials("x");
    // x connects only to n2; the claims push goes through n0.
    const busX = await connectBus({ ...x, servers: [h.nodes[2]!.url], logger: logs.logger });
    const errs = serverErrors(busX.nc);
    const sys = await connectBus({ ...(await h.systemCredentials()), servers: [h.nodes[0]!.url], logger: logs.logger });
    const r = await pushAccountJwt(sys.nc, await encodeFerryAccount(h.authority, revokeUsers({}, [x.user.publicKey])));
    expect(r.message).toBe("jwt updated");
    await waitFor(() => errs.find((e) => /User Authentication Revoked/i.test(e.message)), "x revoked on n2");

    // n1 restarts from its stored JWTs (the preloaded account JWT is older and does not win).
    await h.nodes[1]!.restart();
    await h.waitReady();
    const refused = await connect({
      servers: [h.nodes[1]!.url],
      tls: x.tls,
      reconnect: false,
      authenticator: jwtAuthenticator(x.jwt, new TextEncoder().encode(x.seed)),
    }).then(
      async (nc) => {
        await nc.close();
        return undefined;
      },
      (e: unknown) => e,
    );
    expect(refused).toBeInstanceOf(AuthorizationError);
    await Promise.all([busX.close(), sys.close()]);
  }, 90_000);
});
