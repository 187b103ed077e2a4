// Smoke test of the generated gRPC code: a real grpc-js server and client over loopback (insecure;
// TLS belongs to the broker). Unary calls, a rich INVALID_ARGUMENT error and a resumable stream.
import { credentials, Server, ServerCredentials, status, type ServiceError } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster, ClusterServiceClient, ClusterServiceService, ClusterState, type ClusterServiceServer } from "./gen/ferry/v1/clusters.js";
import { Migration, MigrationKind, MigrationState } from "./gen/ferry/v1/migrations.js";
import { Plan, PlanPhase, PlanServiceClient, PlanServiceService, type PlanServiceServer, type WatchPlanResponse } from "./gen/ferry/v1/plans.js";
import { invalidArgument, readStatusDetails } from "./grpc-status.js";
import { parsePlan } from "./plan.js";

const heartbeat = new Date("2026-11-21T23:00:00.123Z");

const clusters: Pick<ClusterServiceServer, "getCluster"> = {
  getCluster(call, callback) {
    if (call.request.name !== "east") return callback({ code: status.NOT_FOUND, details: `cluster "${call.request.name}" not found` });
    callback(null, { cluster: Cluster.fromPartial({ name: "east", state: ClusterState.AVAILABLE, lastHeartbeatTime: heartbeat }) });
  },
};

const events: WatchPlanResponse[] = [1, 5, 9].map((seq) => ({
  seq,
  time: new Date(Date.UTC(2026, 10, 21, 0, 0, seq)),
  change: {
    $case: "migration",
    value: Migration.fromPartial({ uid: `m${seq}`, plan: "p", kind: MigrationKind.DECENTRALIZED_LIVE, state: MigrationState.MIGRATING, attempt: 1 }),
  },
  message: `event ${seq}`,
  snapshotComplete: false,
}));

const plans: Pick<PlanServiceServer, "createPlan" | "watchPlan"> = {
  createPlan(call, callback) {
    const doc = call.request.document;
    const parsed = doc?.$case === "text" ? parsePlan(doc.value) : undefined;
    if (!parsed) return callback({ code: status.INVALID_ARGUMENT, details: "document is required" });
    if (!parsed.ok) return callback(invalidArgument("the plan document is invalid", parsed.issues));
    callback(null, { plan: Plan.fromPartial({ name: parsed.value.metadata.name, phase: PlanPhase.PENDING, document: parsed.value }) });
  },
  watchPlan(call) {
    for (const e of events) if (e.seq > call.request.afterSeq) call.write(e);
    call.end();
  },
};

describe("generated gRPC code", () => {
  const server = new Server();
  let clusterClient: ClusterServiceClient;
  let planClient: PlanServiceClient;

  beforeAll(async () => {
    server.addService(ClusterServiceService, clusters);
    server.addService(PlanServiceService, plans);
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    clusterClient = new ClusterServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
    planClient = new PlanServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  });

  afterAll(() => {
    clusterClient.close();
    planClient.close();
    server.forceShutdown();
  });

  const getCluster = (name: string) =>
    new Promise<unknown>((resolve, reject) => clusterClient.getCluster({ name }, (err, res) => (err ? reject(err) : resolve(res))));

  it("serves a unary call with enums and timestamps intact", async () => {
    expect(await getCluster("east")).toMatchObject({ cluster: { name: "east", state: ClusterState.AVAILABLE, lastHeartbeatTime: heartbeat } });
  });

  it("passes status codes through", async () => {
    await expect(getCluster("west")).rejects.toMatchObject({ code: status.NOT_FOUND, details: 'cluster "west" not found' });
  });

  it("answers UNIMPLEMENTED for RPCs the server does not implement", async () => {
    const err = await new Promise<ServiceError | null>((resolve) => clusterClient.removeCluster({ name: "east" }, (e) => resolve(e)));
    expect(err?.code).toBe(status.UNIMPLEMENTED);
  });

  it("carries BadRequest field violations for an invalid plan", async () => {
    const text = "apiVersion: ferry.dev/v1alpha1\nkind: MigrationPlan\nmetadata: {name: Bad_Name}\nspec: {}\n";
    const err = await new Promise<ServiceError | null>((resolve) =>
      planClient.createPlan({ document: { $case: "text", value: text }, dryRun: true }, (e) => resolve(e)),
    );
    expect(err?.code).toBe(status.INVALID_ARGUMENT);
    const [detail] = readStatusDetails(err?.metadata);
    expect(detail?.$case).toBe("badRequest");
    const violations = detail?.$case === "badRequest" ? detail.value.fieldViolations : [];
    expect(violations).toContainEqual({ field: "metadata.name", description: expect.stringMatching(/DNS-1123 label.*\(line 3\)$/), reason: "INVALID_FIELD" });
    expect(violations.map((v) => v.field)).toContain("spec.source");
  });

  it("returns the parsed plan document as a Struct", async () => {
    const text = "apiVersion: ferry.dev/v1alpha1\nkind: MigrationPlan\nmetadata: {name: ok}\nspec: {source: {cluster: a}, selector: {allVMs: true}, target: {cluster: b}}\n";
    const res = await new Promise<unknown>((resolve, reject) =>
      planClient.createPlan({ document: { $case: "text", value: text }, dryRun: true }, (e, r) => (e ? reject(e) : resolve(r))),
    );
    expect(res).toMatchObject({ plan: { name: "ok", phase: PlanPhase.PENDING, document: { spec: { sourcePolicy: "halt", limits: { maxInFlight: 5 } } } } });
  });

  it("streams WatchPlan and resumes after a given seq", async () => {
    const watch = async (afterSeq: number) => {
      const seen: WatchPlanResponse[] = [];
      for await (const e of planClient.watchPlan({ name: "p", afterSeq })) seen.push(e as WatchPlanResponse);
      return seen;
    };
    expect((await watch(0)).map((e) => e.seq)).toEqual([1, 5, 9]);
    const resumed = await watch(5);
    expect(resumed).toEqual([events[2]]);
  });
});
