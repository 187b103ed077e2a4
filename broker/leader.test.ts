// Leader election on a real JetStream KV bucket, with each replica on its own NATS connection:
// one leader; a crashed leader's lease expires and the standby takes over; a graceful release
// hands over at once; a leader that loses its lease steps down; a restarted replica takes its own
// lease back. (Failover of whole broker processes: e2e/broker/failover.test.ts.)
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connectBus, startNats, type Bus, type NatsHarness } from "../bus/index.js";
import { waitFor } from "../bus/test-support.js";
import { LeaderElection, type LeaderTerm } from "./leader.js";
import { openState, type BrokerState } from "./state/kv.js";
import { LEADER_KEY } from "./state/records.js";

const log = pino({ level: "silent" });
let nats: NatsHarness;
const buses: Bus[] = [];
const elections: LeaderElection[] = [];

beforeAll(async () => {
  nats = await startNats();
});

afterAll(async () => {
  for (const e of elections) await e.stop({ release: false }).catch(() => undefined);
  for (const b of buses) await b.close().catch(() => undefined);
  await nats?.stop();
});

async function replica(identity: string, opts: { leaseMs?: number } = {}): Promise<{ election: LeaderElection; state: BrokerState; terms: LeaderTerm[]; demotions: string[] }> {
  const bus = await connectBus({ ...(await nats.brokerCredentials()), logger: log });
  buses.push(bus);
  const state = await openState(bus, { replicas: 1 });
  const election = new LeaderElection({ kv: state.leader, identity, address: `${identity}:7443`, leaseMs: opts.leaseMs ?? 1500, renewMs: 250, log });
  elections.push(election);
  const terms: LeaderTerm[] = [];
  const demotions: string[] = [];
  election.onElected((t) => void terms.push(t));
  election.onDemoted((why) => void demotions.push(why));
  return { election, state, terms, demotions };
}

describe("leader election", () => {
  it("elects one leader; the standby knows it; after a crash (no release) the standby takes over", async () => {
    const a = await replica("a");
    a.election.start();
    await waitFor(() => a.election.isLeader, "a elected");
    const b = await replica("b");
    b.election.start();
    await waitFor(() => b.election.leader?.holder === "a", "b sees a as leader");
    expect(b.election.leader).toEqual({ holder: "a", address: "a:7443", self: false });
    expect(b.election.isLeader).toBe(false);
    expect(a.terms).toHaveLength(1);

    // a "crashes": it stops renewing and never releases; its lease must run out first.
    await a.election.stop({ release: false });
    expect(a.terms[0]!.signal.aborted).toBe(true);
    await waitFor(() => b.election.isLeader, "b takes over after a's lease expired", 15_000);
    expect(b.terms).toHaveLength(1);
    const lease = await b.state.leader.get(LEADER_KEY);
    expect(lease?.value).toMatchObject({ holder: "b", address: "b:7443" });
    await b.election.stop();
    expect(b.demotions).toEqual(["shutting down"]);
    expect(await b.state.leader.get(LEADER_KEY)).toBeUndefined();
  });

  it("a graceful release hands over on the standby's next check, without waiting for the lease", async () => {
    const c = await replica("c", { leaseMs: 60_000 });
    c.election.start();
    await waitFor(() => c.election.isLeader, "c elected");
    const d = await replica("d", { leaseMs: 60_000 });
    d.election.start();
    await waitFor(() => d.election.leader?.holder === "c", "d follows c");
    await c.election.stop({ release: true });
    await waitFor(() => d.election.isLeader, "d elected after c released the lease");
    await d.election.stop();
  });

  it("a leader whose lease was taken steps down (its term's signal aborts)", async () => {
    const e = await replica("e");
    e.election.start();
    await waitFor(() => e.election.isLeader, "e elected");
    const cur = await e.state.leader.get(LEADER_KEY);
    await e.state.leader.update(LEADER_KEY, { ...cur!.value, holder: "intruder", instance: "x" }, cur!.revision);
    await waitFor(() => !e.election.isLeader, "e demoted");
    expect(e.terms[0]!.signal.aborted).toBe(true);
    expect(e.demotions[0]).toMatch(/lost the lease/);
    await e.election.stop({ release: false });
    await e.state.leader.delete(LEADER_KEY);
  });

  it("a replica restarting under the same identity takes its own lease back at once", async () => {
    const f1 = await replica("f", { leaseMs: 60_000 });
    f1.election.start();
    await waitFor(() => f1.election.isLeader, "f elected");
    await f1.election.stop({ release: false }); // crash
    const f2 = await replica("f", { leaseMs: 60_000 });
    f2.election.start();
    await waitFor(() => f2.election.isLeader, "restarted f elected without waiting for its old lease");
    await f2.election.stop();
  });
});
