// The broker issue's KubeVirt-side faults over the real system (nats-server, broker, agents, the
// sim's synchronization controllers over real TLS):
//
//   - a stalled synchronization link: no phase change and no bytes for stallTimeoutSeconds → the
//     broker's watchdog aborts the attempt (reason Stalled) and the retry, on a healthy link, succeeds;
//   - a CA missing on the source: ferry confirms trust before it lets the source send, so the gap is
//     a CA that rotates mid-copy while the source cannot import the new one; the re-dialled
//     connection fails, KubeVirt blocks the copy with the TLS reason, ferry shows it, and once the
//     agent can import the CA again the same attempt finishes.
//
// KubeVirt's own progressTimeout is set beyond the test so that it is ferry's watchdog, not
// KubeVirt, that notices the stall. The stall needs stallTimeoutSeconds of real time (60 s, the
// plan's minimum), so this file runs on its own stack beside the others.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationState } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase } from "../../proto/gen/ferry/v1/plans.js";
import { startStack, type Stack } from "../../stack/stack.js";
import { monitorInvariants, snapshotWorld } from "../invariants.js";
import { patientScenario, planDriver, suiteDir, type PlanDriver } from "../plans.js";

let stack: Stack;
const dir = suiteDir("faults");
let plans: PlanDriver;
let monitor: ReturnType<typeof monitorInvariants>;

const vm = (name: string) => ({ name, namespace: "vms", memory: "2Gi", cpu: 1, disks: [{ name: "rootdisk", size: "8Gi" }] });
const ref = (name: string) => ({ namespace: "vms", name });

beforeAll(async () => {
  stack = await startStack({ clusters: ["east", "west"], dir: dir.path, timeScale: 20, scenario: patientScenario({ east: [vm("stalled"), vm("untrusted")], west: [] }) });
  await stack.waitClustersAvailable(120_000);
  plans = planDriver(stack);
  monitor = monitorInvariants(stack.world, () => plans.seen(), { intervalMs: 250 });
}, 240_000);

afterAll(async () => {
  const seen = monitor ? await monitor.stop() : [];
  await stack?.stop();
  dir.cleanup();
  expect(seen).toEqual([]);
});

describe("KubeVirt faults seen through the broker", () => {
  it("a stalled synchronization link is detected by the watchdog, aborted and retried to success", async () => {
    const kv = stack.world.controlClient().kubevirt("east");
    // The guest keeps dirtying memory so the copy is still going when the link freezes.
    await kv.setDirtyRate("vms", "stalled", "no-converge");
    await plans.create("stall", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [ref("stalled")], retry: { maxAttempts: 3, backoff: { initialSeconds: 1 } }, stallTimeoutSeconds: 60 });
    await plans.migrationIn("stall/vms/stalled", [MigrationState.MIGRATING]);
    await kv.stallSync(true);
    try {
      const rolledBack = await plans.migrationWhen("stall/vms/stalled", "failed by the watchdog", (m) => m.attempts[0]?.error?.code === "Stalled", 150_000);
      expect(rolledBack.attempts[0]!.error!.message).toMatch(/no progress|stalled|no phase/i);
    } finally {
      await kv.stallSync(false); // whatever happened, the next scenario gets a healthy link
    }
    await kv.setDirtyRate("vms", "stalled", 0);
    const plan = await plans.finished("stall");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    const m = plan.migrations[0]!;
    expect(m.attempt).toBeGreaterThanOrEqual(2);
    expect(m.attempts[0]!.outcome).toBe(MigrationState.FAILED);
    expect(await plans.violations()).toEqual([]);
  }, 300_000);

  it("the target's CA rotates mid-copy and the source cannot import it: the copy is blocked with the TLS reason; restoring trust lets the same attempt finish", async () => {
    const ctl = stack.world.controlClient();
    await ctl.kubevirt("east").setDirtyRate("vms", "untrusted", "no-converge");
    await plans.create("untrusted", { source: { cluster: "east" }, target: { cluster: "west" }, vms: [ref("untrusted")] });
    await plans.migrationIn("untrusted/vms/untrusted", [MigrationState.MIGRATING]);
    // east's agent can no longer write kubevirt-external-ca; west rotates its CA and the copy's
    // connection is re-dialled to west's new certificate, which east's kubevirt-ca does not hold.
    await ctl.injectError("east", { verb: "patch", resource: "configmaps", namespace: "kubevirt", name: "kubevirt-external-ca", code: 500, message: "etcdserver: request timed out", count: "unlimited" });
    await ctl.kubevirt("west").rotateCA();
    await ctl.kubevirt("east").breakSyncConnections();
    // Whichever side dials first says it: "x509: certificate signed by unknown authority" (east
    // verifying west) or "remote error: tls: unknown certificate authority" (east refusing west's client).
    const TLS = /x509: certificate signed by unknown authority|tls: unknown certificate authority/;
    const blocked = await plans.migrationWhen("untrusted/vms/untrusted", "blocked with the TLS reason", (m) => TLS.test(m.waitingReason), 60_000);
    expect(blocked.state).toBe(MigrationState.MIGRATING);
    expect(blocked.waitingReason).toContain("decentralizedMigrationBlocked");
    expect(blocked.lastError?.code).toBe("DecentralizedMigrationBlocked");
    expect(blocked.lastError?.message).toMatch(TLS);
    // Nothing moved: the source still runs the VM.
    expect((await snapshotWorld(stack.world)).get("east")!.vmis.find((v) => v.metadata?.name === "untrusted")?.status?.["phase"]).toBe("Running");

    // east's agent imports west's new CA, KubeVirt's next dial succeeds: the same attempt finishes.
    await ctl.clearFaults("east");
    await ctl.kubevirt("east").setDirtyRate("vms", "untrusted", 0);
    const plan = await plans.finished("untrusted");
    expect(plan.phase).toBe(PlanPhase.SUCCEEDED);
    expect(plan.migrations.map((m) => m.attempt)).toEqual([1]);
    expect(await plans.violations()).toEqual([]);
  }, 240_000);
});
