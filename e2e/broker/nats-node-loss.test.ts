// A broker process on a 3-node NATS cluster with KV and stream replicas 3: SIGKILL of a NATS node
// loses nothing and the broker keeps answering (after reconnecting to a survivor).
import { status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../../bus/test-support.js";
import { call, startBrokerEnv, type BrokerEnv } from "../../broker/testing.js";

let env: BrokerEnv;

beforeAll(async () => {
  env = await startBrokerEnv({ nats: { nodes: 3 } });
});

afterAll(async () => {
  await env?.stop();
});

describe("NATS node loss", () => {
  it("keeps every cluster record and keeps serving when a NATS node is killed", async () => {
    const b = await env.startProcess("broker-0");
    await waitFor(async () => (await fetch(`http://127.0.0.1:${b.httpPort}/leaderz`)).status === 200, "leader", 30_000);
    const admin = await env.adminClients(b.grpcAddress);
    await env.enrollAgent(b.grpcAddress, "east");
    await call(admin.clusters, "cordonCluster", { name: "east", reason: "before node loss" });

    await env.nats.nodes[0]!.kill();
    // Retry while the broker reconnects and JetStream moves leaders.
    const retrying = async <T>(op: () => Promise<T>): Promise<T> => {
      let result: T | undefined;
      await waitFor(
        async () => {
          try {
            result = await op();
            return true;
          } catch (e) {
            if ([status.UNAVAILABLE, status.ABORTED, status.DEADLINE_EXCEEDED].includes((e as ServiceError).code)) return false;
            throw e;
          }
        },
        "a call that succeeds after the node loss",
        60_000,
      );
      return result!;
    };
    const got = await retrying(() => call(admin.clusters, "getCluster", { name: "east" }, { deadlineMs: 5000 }));
    expect(got.cluster).toMatchObject({ name: "east", cordoned: true, cordonReason: "before node loss" });
    const un = await retrying(() => call(admin.clusters, "uncordonCluster", { name: "east" }, { deadlineMs: 5000 }));
    expect(un.cluster?.cordoned).toBe(false);
    const west = await retrying(() => env.enrollAgent(b.grpcAddress, "west"));
    expect(west.credentials.clusterName).toBe("west");
    admin.close();
  });
});
