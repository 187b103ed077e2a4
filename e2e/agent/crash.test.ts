// The agent issue's crash scenarios over the real system: the agent process is SIGKILLed at each
// step of a migration and started again; it must find its work by listing (Kubernetes is its
// memory), finish the same attempt, and create nothing twice.
//
// "At a step" is made exact with the sim's fault injection: the request that would take the agent
// past the step fails with 500 for as long as the fault stands, so the agent is held there
// (retrying) when it is killed; the fault is lifted before the restart. Steps between two writes
// (created the receive VMIM, not yet annotated the receiver) are held the same way.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationState } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase } from "../../proto/gen/ferry/v1/plans.js";
import type { RequestLogEntry, Verb } from "../../sim/control-client.js";
import { startStack, type Stack } from "../../stack/stack.js";
import { snapshotWorld } from "../invariants.js";
import { patientScenario, planDriver, suiteDir, type PlanDriver } from "../plans.js";

let stack: Stack;
const dir = suiteDir("agent");
let plans: PlanDriver;

const VMS = ["flaky", "t-volumes", "t-receiver", "t-receive-vmim", "t-receive-note", "s-send-vmim", "s-send-note", "copy", "s-delete", "l-volumes", "l-swap", "l-copy"];
const vm = (name: string) => ({ name, namespace: "vms", memory: "1Gi", cpu: 1, labels: { app: "crash" }, disks: [{ name: "rootdisk", size: "4Gi" }, { name: "data", size: "2Gi", template: false }] });

beforeAll(async () => {
  stack = await startStack({ clusters: ["east", "west"], dir: dir.path, timeScale: 20, scenario: patientScenario({ east: VMS.map(vm), west: [] }) });
  await stack.waitClustersAvailable(120_000);
  plans = planDriver(stack);
}, 240_000);

afterAll(async () => {
  await stack?.stop();
  dir.cleanup();
});

const ctl = () => stack.world.controlClient();
const marks = async () => new Map(await Promise.all(stack.clusters.map(async (c) => [c, (await ctl().metrics(c)).last] as const)));

async function requestsSince(since: Map<string, number>): Promise<(RequestLogEntry & { cluster: string })[]> {
  const out: (RequestLogEntry & { cluster: string })[] = [];
  for (const [cluster, mark] of since) for (const r of (await ctl().requests(cluster, { since: mark })).requests) out.push({ ...r, cluster });
  return out;
}

/** Kill the agents of `clusters` (SIGKILL), run `meanwhile`, start them again. */
async function crash(clusters: string[], meanwhile: () => Promise<void> = async () => {}): Promise<void> {
  const agents = clusters.map((c) => stack.agents.get(c)!);
  await Promise.all(agents.map((a) => a.kill()));
  expect(agents.map((a) => a.running)).toEqual(agents.map(() => false));
  await meanwhile();
  await Promise.all(agents.map((a) => a.restart()));
}

/** What one move creates through the API (the request log names a create's resource, not the object). */
const CROSS_CREATES = { "west datavolumes": 2, "west virtualmachines": 1, "west virtualmachineinstancemigrations": 1, "east virtualmachineinstancemigrations": 1 };
const LOCAL_CREATES = { "east datavolumes": 2 };

/** The plan finished with its one attempt, each object was created once, and DESIGN.md §8 holds. */
async function expectFinishedOnce(plan: string, since: Map<string, number>, creates: Record<string, number>): Promise<void> {
  const done = await plans.finished(plan);
  expect(done.phase, done.migrations.map((m) => m.lastError?.message).join("; ")).toBe(PlanPhase.SUCCEEDED);
  expect(done.migrations.map((m) => m.attempt)).toEqual([1]);
  const counts: Record<string, number> = {};
  for (const r of await requestsSince(since)) {
    if (r.verb === "create" && r.code === 201) counts[`${r.cluster} ${r.resource}`] = (counts[`${r.cluster} ${r.resource}`] ?? 0) + 1;
  }
  expect(counts).toEqual(creates);
  expect(await plans.violations()).toEqual([]);
}

interface HeldStep {
  vm: string;
  /** The request the step is held before. */
  cluster: "east" | "west";
  verb: Verb;
  resource: string;
  /** Plan spec over "east → west". */
  spec?: Record<string, unknown>;
}

const CROSS = { source: { cluster: "east" }, target: { cluster: "west" } };
const LOCAL = { source: { cluster: "east" }, target: { cluster: "east" }, storageMap: [{ source: "standard", target: "fast" }] };

const HELD: [string, HeldStep][] = [
  ["target: creating the blank DataVolumes", { vm: "t-volumes", cluster: "west", verb: "create", resource: "datavolumes" }],
  ["target: creating the receiver VM", { vm: "t-receiver", cluster: "west", verb: "create", resource: "virtualmachines" }],
  ["target: creating the receive VMIM", { vm: "t-receive-vmim", cluster: "west", verb: "create", resource: "virtualmachineinstancemigrations" }],
  ["target: receive VMIM created, receiver not yet annotated", { vm: "t-receive-note", cluster: "west", verb: "patch", resource: "virtualmachines" }],
  ["source: creating the sendTo VMIM", { vm: "s-send-vmim", cluster: "east", verb: "create", resource: "virtualmachineinstancemigrations" }],
  ["source: sendTo VMIM created, source not yet annotated", { vm: "s-send-note", cluster: "east", verb: "patch", resource: "virtualmachines" }],
  ["source: deleting the moved VM (sourcePolicy delete)", { vm: "s-delete", cluster: "east", verb: "delete", resource: "virtualmachines", spec: { sourcePolicy: "delete" } }],
  ["storage: creating the destination DataVolumes", { vm: "l-volumes", cluster: "east", verb: "create", resource: "datavolumes", spec: LOCAL }],
  ["storage: swapping the volumes (the one VM update)", { vm: "l-swap", cluster: "east", verb: "patch", resource: "virtualmachines", spec: LOCAL }],
];

describe("agent killed at each step of a migration", () => {
  it.each(HELD)("%s: the restarted agent finishes the same attempt, nothing twice", async (_step, h) => {
    const since = await marks();
    await ctl().injectError(h.cluster, { verb: h.verb, resource: h.resource, namespace: "vms", code: 500, message: "etcdserver: leader changed", count: "unlimited" });
    const plan = `crash-${h.vm}`;
    await plans.create(plan, { ...CROSS, vms: [{ namespace: "vms", name: h.vm }], ...h.spec });
    // Held: the agent tried the request and was refused at least once.
    await plans.waitFor(`${h.cluster}'s agent to reach ${h.verb} ${h.resource}`, async () => {
      const { requests } = await ctl().requests(h.cluster, { since: since.get(h.cluster)!, verb: h.verb, resource: h.resource });
      return requests.some((r) => r.injected) ? true : undefined;
    });
    await crash([h.cluster], async () => {
      await ctl().clearFaults(h.cluster);
    });
    await expectFinishedOnce(plan, since, h.spec === LOCAL ? LOCAL_CREATES : CROSS_CREATES);
  });

  it("both agents killed mid-copy; KubeVirt finishes while they are down; restarted, they finalize", async () => {
    const kv = ctl().kubevirt("east");
    await kv.setDirtyRate("vms", "copy", "no-converge");
    const since = await marks();
    await plans.create("crash-copy", { ...CROSS, vms: [{ namespace: "vms", name: "copy" }] });
    await plans.migrationIn("crash-copy/vms/copy", [MigrationState.MIGRATING]);
    await crash(["east", "west"], async () => {
      await kv.setDirtyRate("vms", "copy", 0);
      // The copy completes with no agent alive: the target VMI runs on west.
      await plans.waitFor("the VMI to run on west", async () => {
        const vmi = (await snapshotWorld(stack.world)).get("west")!.vmis.find((v) => v.metadata?.namespace === "vms" && v.metadata.name === "copy");
        return vmi?.status?.["phase"] === "Running" && vmi.status["migrationState"] ? true : undefined;
      });
    });
    await expectFinishedOnce("crash-copy", since, CROSS_CREATES);
  });

  it("storage migration: the agent killed mid-copy and restarted while KubeVirt still copies", async () => {
    const kv = ctl().kubevirt("east");
    await kv.setDirtyRate("vms", "l-copy", "no-converge");
    const since = await marks();
    await plans.create("crash-l-copy", { ...LOCAL, vms: [{ namespace: "vms", name: "l-copy" }] });
    await plans.migrationIn("crash-l-copy/vms/l-copy", [MigrationState.MIGRATING]);
    await crash(["east"]);
    await kv.setDirtyRate("vms", "l-copy", 0);
    await expectFinishedOnce("crash-l-copy", since, LOCAL_CREATES);
  });
  it("API server trouble throughout a migration (500, 429, 409, dropped and expired watches): one attempt, nothing twice", async () => {
    const since = await marks();
    for (const c of ["east", "west"]) {
      await ctl().injectError(c, { verb: "get", resource: "virtualmachines", code: 500, count: 3 });
      await ctl().injectError(c, { verb: "list", resource: "datavolumes", code: 500, count: 2 });
      await ctl().injectError(c, { verb: "patch", resource: "virtualmachines", code: 409, reason: "Conflict", message: "the object has been modified; please apply your changes to the latest version and try again", count: 2 });
    }
    await ctl().injectError("west", { verb: "create", resource: "datavolumes", code: 429, retryAfterSeconds: 1, count: 1 });
    await plans.create("flaky", { ...CROSS, vms: [{ namespace: "vms", name: "flaky" }] });
    // Watches cut every half second, and once the history is compacted (410 Gone: relist).
    let stop = false;
    const chaos = (async () => {
      for (let i = 0; !stop; i++) {
        for (const c of ["east", "west"]) await (i === 3 ? ctl().expireWatches(c) : ctl().dropWatches(c));
        await new Promise((r) => setTimeout(r, 500));
      }
    })();
    try {
      await expectFinishedOnce("flaky", since, CROSS_CREATES);
    } finally {
      stop = true;
      await chaos;
    }
    const log = await requestsSince(since);
    for (const c of ["east", "west"]) {
      // Every injected fault was met, and the agent re-listed after its watch history expired.
      expect((await ctl().faults(c)).filter((f) => f.remaining !== 0)).toEqual([]);
      expect(log.some((r) => r.cluster === c && r.injected)).toBe(true);
      expect(log.some((r) => r.cluster === c && r.verb === "list" && r.resource === "virtualmachines")).toBe(true);
      const ready = await fetch(`http://127.0.0.1:${stack.agents.get(c)!.httpPort}/readyz`);
      expect(ready.status).toBe(200);
    }
  });
});
