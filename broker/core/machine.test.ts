import { describe, expect, it } from "vitest";
import { Task } from "../../proto/bus/index.js";
import { backoffSeconds, step, type Observed, type StepResult } from "./machine.js";
import { MigrationRecord } from "./records.js";
import {
  at,
  ctx,
  describeReply,
  migration,
  observed,
  plan,
  preflightOk,
  rpcError,
  status,
  T0,
  trustOf,
  validationResults,
  view,
} from "./test-fixtures.js";

type M = MigrationRecord;

function run(m: M, obs: Partial<Observed> = {}, now = T0, over: Parameters<typeof ctx>[1] = {}, doc = plan()): StepResult {
  const r = step(m, observed(obs), ctx(now, over, doc));
  // Every record the machine writes must be storable, every task publishable.
  expect(MigrationRecord.safeParse(JSON.parse(JSON.stringify(r.migration))).success).toBe(true);
  for (const t of r.tasks) expect(Task.safeParse(t).success).toBe(true);
  if (r.migration.state !== "Succeeded" && r.migration.state !== "Failed" && r.migration.state !== "Cancelled") expect(r.migration.waitingReason).not.toBe("");
  return r;
}

const sourceTasks = (r: StepResult) => r.tasks.filter((t) => t.role === "source");
const targetTasks = (r: StepResult) => r.tasks.filter((t) => t.role === "target");
const actions = (r: StepResult) => r.tasks.map((t) => `${t.role}:${t.action}`).sort();

/** Walks a fresh migration to `until`, returning the record there. */
function walk(until: M["state"], m0: M = migration(), now = T0): M {
  let m = m0;
  const go = (obs: Partial<Observed>, over: Parameters<typeof ctx>[1] = {}) => {
    m = run(m, obs, now, over).migration;
    return m.state === until;
  };
  if (m.state === until || go({}, { admitted: true })) return m;
  if (go({ results: validationResults(m), ...(until === "Trusting" ? { trust: { east: [], west: [] } } : {}) })) return m;
  if (m.state === "Trusting" && go({})) return m;
  if (go({ tasks: [{ cluster: "west", status: status(m, "target", "ReceiverReady", { syncAddress: "10.0.0.5:9185" }) }] })) return m;
  const ready = { cluster: "west", status: status(m, "target", "ReceiverReady", { syncAddress: "10.0.0.5:9185" }) };
  if (go({ tasks: [ready, { cluster: "east", status: status(m, "source", "Sending") }] })) return m;
  const done = { cluster: "west", status: status(m, "target", "Succeeded", { vmim: vmim("Succeeded"), vm: { exists: true, vmiPhase: "Running", runStrategy: "Always" } }) };
  if (go({ tasks: [done, { cluster: "east", status: status(m, "source", "Succeeded") }] })) return m;
  if (go({ tasks: [{ cluster: "east", status: status(m, "source", "Finalized") }] })) return m;
  throw new Error(`did not reach ${until}; stuck in ${m.state}: ${m.waitingReason}`);
}

function vmim(phase: string, over: Record<string, unknown> = {}) {
  return { name: "ferry-m1-1", phase, phaseTransitions: [], conditions: [], ...over };
}

describe("happy path across clusters", () => {
  it("queues, then starts an attempt when admitted and asks the source to describe the VM", () => {
    const queued = run(migration(), {}, T0, { queueReason: "waiting for a migration slot on cluster east (5/5 in flight, parallelMigrationsPerCluster)" });
    expect(queued.migration.state).toBe("Queued");
    expect(queued.migration.waitingReason).toContain("5/5 in flight");
    expect(queued.tasks).toEqual([]);

    const r = run(queued.migration, {}, T0, { admitted: true });
    expect(r.migration).toMatchObject({ state: "Validating", attempt: 1, migrationId: "m1-1" });
    expect(r.migration.attempts).toEqual([expect.objectContaining({ attempt: 1, migrationId: "m1-1", startedAt: T0.toISOString() })]);
    expect(r.commands).toEqual([{ id: "m1-1/describe-vm", type: "describe-vm", cluster: "east", vm: { namespace: "db", name: "pg-0" } }]);
    expect(r.events.map((e) => e.reason)).toEqual(["AttemptStarted"]);
    expect(r.migration.waitingReason).toBe("validating: waiting for east to describe VM db/pg-0");
  });

  it("stores the description, then preflights both sides (the target with the source facts)", () => {
    const m = walk("Validating");
    const [describe] = validationResults(m);
    const r = run(m, { results: [describe!] });
    expect(r.migration.snapshot).toMatchObject({ attempt: 1, manifest: { kind: "VirtualMachine" } });
    expect(r.migration.sourceNode).toBe("n2");
    expect(r.commands.map((c) => [c.id, c.cluster])).toEqual([
      ["m1-1/preflight-source", "east"],
      ["m1-1/preflight-target", "west"],
    ]);
    const target = r.commands[1];
    expect(target?.type === "preflight" && target.request.sourceFacts?.memoryBytes).toBe(4 * 1024 ** 3);
    expect(r.migration.waitingReason).toBe("validating: waiting for preflight results from east (source) and west (target)");
  });

  it("exchanges CA bundles after preflight and prepares the target only once both sides confirm", () => {
    const m = walk("Validating");
    const notYet = run(m, { results: validationResults(m), trust: { east: [trustOf("west", false)], west: [trustOf("east")] } });
    expect(notYet.migration.state).toBe("Trusting");
    expect(notYet.tasks).toEqual([]);
    expect(notYet.trust.map((t) => [t.cluster, t.peer])).toEqual([
      ["east", "west"],
      ["west", "east"],
    ]);
    expect(notYet.migration.waitingReason).toBe("establishing trust: waiting for east to confirm west's CA in its kubevirt-ca");

    // An old bundle of the peer (fingerprint of a rotated CA) does not count.
    const stale = run(notYet.migration, { trust: { east: [{ peer: "west", fingerprints: ["AA:".repeat(31) + "AA"], present: true }], west: [trustOf("east")] } });
    expect(stale.migration.state).toBe("Trusting");

    const r = run(notYet.migration, {});
    expect(r.migration.state).toBe("PreparingTarget");
    expect(actions(r)).toEqual(["target:prepare"]);
    const prepare = targetTasks(r)[0];
    expect(prepare?.action === "prepare" && prepare.sourceVm.manifest.kind).toBe("VirtualMachine");
    expect(r.migration.attempts[0]?.issued).toEqual(["target"]);
  });

  it("sends to the target's synchronization address once the receiver is ready", () => {
    const m = walk("PreparingTarget");
    const r = run(m, { tasks: [{ cluster: "west", status: status(m, "target", "ReceiverReady", { syncAddress: "10.0.0.5:9185", vmim: vmim("WaitingForSync") }) }] });
    expect(r.migration).toMatchObject({ state: "TargetReady", syncAddress: "10.0.0.5:9185" });
    expect(sourceTasks(r)).toEqual([expect.objectContaining({ action: "send", connectUrl: "10.0.0.5:9185", migrationId: "m1-1" })]);
    expect(actions(r)).toEqual(["source:send", "target:prepare"]);
  });

  it("falls back to the cluster's reported address, and waits (saying so) when there is none", () => {
    const m = walk("PreparingTarget");
    const ready = { cluster: "west", status: status(m, "target", "ReceiverReady") };
    expect(run(m, { tasks: [ready] }).migration.syncAddress).toBe("sync.west.example:9185");
    const none = run(m, { tasks: [ready], clusters: { east: view("east"), west: view("west", { synchronizationAddresses: [] }) } });
    expect(none.migration.state).toBe("PreparingTarget");
    expect(none.migration.waitingReason).toContain("reports no synchronization address");
  });

  it("does not create the sendTo VMIM while trust is unconfirmed (a CA rotated after Trusting)", () => {
    const m = walk("TargetReady");
    const r = run(m, { trust: { east: [trustOf("west", false)], west: [trustOf("east")] } });
    expect(r.migration.state).toBe("TargetReady");
    expect(actions(r)).toEqual(["target:prepare"]);
    expect(r.migration.waitingReason).toContain("waiting for trust between east and west to be confirmed again");
  });

  it("reports progress, phases and mode while KubeVirt migrates", () => {
    const m = walk("Migrating");
    const r = run(m, {
      tasks: [
        { cluster: "east", status: status(m, "source", "Migrating", { vmim: vmim("Running", { migrationState: { completed: false, failed: false, mode: "PreCopy" } }), progress: { processedBytes: 3 * 1024 ** 3, totalBytes: 24 * 1024 ** 3, dataRateBytesPerSecond: 150 * 1024 ** 2 } }) },
        { cluster: "west", status: status(m, "target", "Migrating", { vmim: vmim("Running") }) },
      ],
    });
    expect(r.migration.progress).toMatchObject({ processedBytes: 3 * 1024 ** 3, totalBytes: 24 * 1024 ** 3, sourceVmimPhase: "Running", targetVmimPhase: "Running", mode: "PreCopy" });
    expect(r.migration.attempts[0]).toMatchObject({ sourceVmimPhase: "Running", targetVmimPhase: "Running" });
    expect(r.migration.waitingReason).toBe("KubeVirt is migrating: source VMIM Running, target VMIM Running, 3 GiB of 24 GiB transferred at 150 MiB/s");
    expect(r.events.map((e) => e.reason)).toEqual(["VmimPhaseChanged", "VmimPhaseChanged", "Progress"]);
    expect(actions(r)).toEqual(["source:send", "target:prepare"]);
  });

  it("finalizes the source only after the target VM runs with its run strategy restored (invariant 2)", () => {
    const m = walk("Migrating");
    const migrated = { cluster: "west", status: status(m, "target", "Succeeded", { vmim: vmim("Succeeded"), vm: { exists: true, vmiPhase: "Running", runStrategy: "WaitAsReceiver" } }) };
    const waiting = run(m, { tasks: [migrated] });
    expect(waiting.migration.state).toBe("Migrating");
    expect(waiting.migration.attempts[0]?.targetCompleted).toBe(true);
    expect(actions(waiting)).toEqual(["target:prepare"]); // no send again, no finalize yet
    expect(waiting.migration.waitingReason).toBe("the VM moved; waiting for west to run it with its run strategy restored (VMI Running, runStrategy WaitAsReceiver)");

    const running = { cluster: "west", status: status(m, "target", "Succeeded", { vmim: vmim("Succeeded"), vm: { exists: true, vmiPhase: "Running", runStrategy: "Always" } }) };
    const r = run(waiting.migration, { tasks: [running] });
    expect(r.migration.state).toBe("Finalizing");
    expect(r.tasks).toEqual([expect.objectContaining({ role: "source", action: "finalize", sourcePolicy: "halt" })]);
    expect(r.migration.waitingReason).toBe("waiting for east to apply source policy halt to db/pg-0 (no report yet)");
  });

  it("succeeds once the source policy is applied, and then wants no tasks", () => {
    const m = walk("Finalizing");
    const r = run(m, { tasks: [{ cluster: "east", status: status(m, "source", "Finalized") }] });
    expect(r.migration).toMatchObject({ state: "Succeeded", finishedAt: T0.toISOString(), waitingReason: "" });
    expect(r.migration.attempts[0]?.outcome).toBe("Succeeded");
    expect(r.tasks).toEqual([]);
    expect(r.trust).toEqual([]);
  });

  it("is level-triggered: the same inputs give the same record, unchanged updatedAt", () => {
    const m = walk("Migrating");
    const obs: Partial<Observed> = { tasks: [{ cluster: "east", status: status(m, "source", "Migrating", { vmim: vmim("Running"), progress: { processedBytes: 1000 } }) }] };
    const first = run(m, obs, at(5));
    const again = run(first.migration, obs, at(30));
    expect(again.migration).toEqual(first.migration);
    expect(again.tasks).toEqual(first.tasks);
    expect(again.events).toEqual([]);
  });

  it("ignores reports about an earlier attempt", () => {
    const m = { ...walk("PreparingTarget"), attempt: 2, migrationId: "m1-2" };
    m.attempts = [...m.attempts, { ...m.attempts[0]!, attempt: 2, migrationId: "m1-2", issued: [] }];
    const old = { cluster: "west", status: status({ ...m, attempt: 1 }, "target", "ReceiverReady", { syncAddress: "10.0.0.5:9185" }) };
    expect(run(m, { tasks: [old] }).migration.state).toBe("PreparingTarget");
  });
});

describe("failures, rollback and retry", () => {
  it("computes exponential back-off capped by the plan", () => {
    const b = { initialSeconds: 30, maxSeconds: 600, factor: 2 };
    expect([1, 2, 3, 4, 5, 6, 7].map((n) => backoffSeconds(b, n))).toEqual([30, 60, 120, 240, 480, 600, 600]);
  });

  it("a VM gone at describe time fails the attempt and backs off", () => {
    const m = walk("Validating");
    const r = run(m, { results: [{ id: "m1-1/describe-vm", type: "describe-vm", reply: rpcError("NotFound", "no VM db/pg-0") }] });
    expect(r.migration.state).toBe("Queued");
    expect(r.migration.backoffUntil).toBe(at(30).toISOString());
    expect(r.migration.lastError).toMatchObject({ code: "VmNotFound" });
    expect(r.migration.attempts[0]).toMatchObject({ outcome: "Failed", error: { code: "VmNotFound" } });
    expect(r.migration.waitingReason).toBe("back-off until 12:00:30 UTC after attempt 1 failed: VM db/pg-0 no longer exists on cluster east");
    expect(r.events.map((e) => e.reason)).toEqual(["AttemptFailed", "RetryScheduled"]);
    expect(r.tasks).toEqual([]); // nothing had been sent, nothing to abort
  });

  it("retries a command that failed in transport after a pause, under a new id", () => {
    const m = walk("Validating");
    const failed = run(m, { results: [{ id: "m1-1/describe-vm", type: "describe-vm", reply: rpcError("Unavailable", "no responders on ferry.v1.agent.east.rpc.describe-vm") }] });
    expect(failed.migration.state).toBe("Validating");
    expect(failed.commands).toEqual([]);
    expect(failed.migration.waitingReason).toContain("last error: describe-vm on east: Unavailable: no responders");
    expect(failed.events.map((e) => e.reason)).toEqual(["CommandFailed"]);
    expect(failed.events[0]!.message).toContain("asking again in 1 s");
    // The stale error result is still around: it is not counted twice.
    const soon = run(failed.migration, { results: [{ id: "m1-1/describe-vm", type: "describe-vm", reply: rpcError("Unavailable", "x") }] }, at(0.5));
    expect(soon.commands).toEqual([]);
    expect(soon.migration).toEqual(failed.migration);
    const later = run(failed.migration, {}, at(1));
    expect(later.commands.map((c) => c.id)).toEqual(["m1-1/describe-vm#1"]);
    // Failing again doubles the pause (1, 2, 4, … s, at most 30 s).
    const again = run(later.migration, { results: [{ id: "m1-1/describe-vm#1", type: "describe-vm", reply: rpcError("Internal", "500 from the API server") }] }, at(1));
    expect(again.events[0]!.message).toContain("asking again in 2 s");
    expect(run(again.migration, {}, at(2.5)).commands).toEqual([]);
    const third = run(again.migration, {}, at(3));
    expect(third.commands.map((c) => c.id)).toEqual(["m1-1/describe-vm#2"]);
    const ok = run(third.migration, { results: [{ id: "m1-1/describe-vm#2", type: "describe-vm", reply: describeReply(m) }] }, at(4));
    expect(ok.migration.snapshot?.attempt).toBe(1);
  });

  it("a preflight error fails the attempt with every problem and the first fix", () => {
    const m = walk("Validating");
    const [describe] = validationResults(m);
    const r = run(m, {
      results: [
        describe!,
        { id: "m1-1/preflight-source", type: "preflight", reply: preflightOk([{ code: "VmNotLiveMigratable", severity: "error", field: "", message: "VM uses a LUN disk", fix: "remove the LUN disk" }]) },
        { id: "m1-1/preflight-target", type: "preflight", reply: preflightOk([{ code: "MacAddressCollision", severity: "error", field: "", message: "MAC in use on west", fix: "change the MAC" }]) },
      ],
    });
    expect(r.migration.lastError).toEqual({ code: "PreflightFailed", message: "preflight found 2 problems: VmNotLiveMigratable: VM uses a LUN disk; MacAddressCollision: MAC in use on west", fix: "remove the LUN disk" });
    expect(r.migration.state).toBe("Queued");
  });

  it("preflight warnings become an event and do not stop the migration", () => {
    const m = walk("Validating");
    const [describe, source] = validationResults(m);
    const r = run(m, { results: [describe!, source!, { id: "m1-1/preflight-target", type: "preflight", reply: preflightOk([{ code: "TargetNamespaceMissing", severity: "warning", field: "", message: "namespace db is created", fix: "" }]) }] });
    expect(r.migration.state).toBe("PreparingTarget");
    expect(r.events.map((e) => e.reason)).toContain("PreflightWarning");
  });

  it("rolls back a failed target: abort on the target only, retry after it confirms", () => {
    const m = walk("PreparingTarget");
    const failed = run(m, { tasks: [{ cluster: "west", status: status(m, "target", "Failed", { error: { code: "DataVolumeFailed", message: "DV pg-0-root failed to bind", fix: "check storage class lvm" } }) }] });
    expect(failed.migration.state).toBe("RollingBack");
    expect(actions(failed)).toEqual(["target:abort"]);
    expect(failed.migration.lastError).toEqual({ code: "DataVolumeFailed", message: "target west: DV pg-0-root failed to bind", fix: "check storage class lvm" });
    expect(failed.migration.waitingReason).toBe("rolling back attempt 1: waiting for west (step Failed) to confirm the abort");

    const aborting = run(failed.migration, { tasks: [{ cluster: "west", status: status(m, "target", "Aborting") }] });
    expect(aborting.migration.state).toBe("RollingBack");
    // What the agent still waits for shows in the reason.
    const held = run(failed.migration, { tasks: [{ cluster: "west", status: status(m, "target", "Aborting", { error: { code: "VmimDeletionHeld", message: "VMIM ferry-receive-m1-1 (phase Failed) is deleted but held", fix: "wait" } }) }] });
    expect(held.migration.waitingReason).toBe("rolling back attempt 1: waiting for west (step Aborting: VMIM ferry-receive-m1-1 (phase Failed) is deleted but held) to confirm the abort");
    const done = run(failed.migration, { tasks: [{ cluster: "west", status: status(m, "target", "Aborted") }] }, at(2));
    expect(done.migration).toMatchObject({ state: "Queued", backoffUntil: at(32).toISOString() });
    expect(done.tasks).toEqual([]);

    const next = run(done.migration, {}, at(40), { admitted: true });
    expect(next.migration).toMatchObject({ state: "Validating", attempt: 2, migrationId: "m1-2" });
    expect(next.migration.attempts.map((a) => a.outcome)).toEqual(["Failed", undefined]);
  });

  it("fails for good after maxAttempts, with the last reason", () => {
    const doc = plan({ retry: { maxAttempts: 2 } });
    let m = migration();
    const vmimFailed = (mm: M) => ({ cluster: "east", status: status(mm, "source", "Failed", { vmim: vmim("Failed", { migrationState: { completed: false, failed: true, failureReason: "target pod never started" } }) }) });
    for (const attempt of [1, 2]) {
      m = walk("Migrating", m, at(attempt * 1000));
      expect(m.attempt).toBe(attempt);
      const rb = run(m, { tasks: [vmimFailed(m)] }, at(attempt * 1000 + 1), {}, doc);
      expect(rb.migration.state).toBe("RollingBack");
      expect(actions(rb)).toEqual(["source:abort", "target:abort"]);
      const aborted = [
        { cluster: "east", status: status(m, "source", "Aborted") },
        { cluster: "west", status: status(m, "target", "Aborted") },
      ];
      m = run(rb.migration, { tasks: aborted }, at(attempt * 1000 + 2), {}, doc).migration;
    }
    expect(m.state).toBe("Failed");
    expect(m.lastError?.message).toBe("source east: VMIM ferry-m1-1 failed: target pod never started");
    expect(m.finishedAt).toBe(at(2002).toISOString());
    expect(m.waitingReason).toBe("");
  });

  it("a manual retry starts a new attempt past maxAttempts", () => {
    const failed = migration({ state: "Failed", attempt: 3, migrationId: "m1-3", retryRequested: true, finishedAt: T0.toISOString(), lastError: { code: "Stalled", message: "x", fix: "" } });
    const r = run(failed, {}, T0, { admitted: true });
    expect(r.migration).toMatchObject({ state: "Validating", attempt: 4, migrationId: "m1-4", retryBase: 3, retryRequested: false });
    expect(r.migration.finishedAt).toBeUndefined();
    expect(r.events.map((e) => e.reason)).toEqual(["RetryRequested", "AttemptStarted"]);
  });

  it("ignores a retry request unless Failed or Cancelled", () => {
    const r = run({ ...walk("Migrating"), retryRequested: true });
    expect(r.migration.retryRequested).toBe(false);
    expect(r.events.map((e) => e.reason)).toContain("RetryIgnored");
  });
});

describe("the stall watchdog", () => {
  const running = (m: M, bytes: number, phase = "Running") => ({
    tasks: [
      { cluster: "east", status: status(m, "source", "Migrating", { vmim: vmim(phase), progress: { processedBytes: bytes, totalBytes: 8 * 1024 ** 3 } }) },
      { cluster: "west", status: status(m, "target", "Migrating", { vmim: vmim(phase) }) },
    ],
  });

  it("aborts and retries an attempt without phase change or new bytes for stallTimeoutSeconds", () => {
    let m = walk("Migrating");
    m = run(m, running(m, 1000), at(0)).migration;
    expect(run(m, running(m, 1000), at(599)).migration.state).toBe("Migrating");
    const r = run(m, running(m, 1000), at(600));
    expect(r.migration.state).toBe("RollingBack");
    expect(r.migration.lastError?.code).toBe("Stalled");
    expect(r.migration.lastError?.message).toBe("no progress for 600 s in phase Running: KubeVirt is migrating: source VMIM Running, target VMIM Running, 1000 B of 8 GiB transferred");
    expect(actions(r)).toEqual(["source:abort", "target:abort"]);
    expect(r.events.map((e) => e.reason)).toContain("StallDetected");
  });

  it("bytes or a phase change reset the clock", () => {
    let m = walk("Migrating");
    m = run(m, running(m, 1000), at(0)).migration;
    m = run(m, running(m, 2000), at(500)).migration;
    expect(run(m, running(m, 2000), at(1000)).migration.state).toBe("Migrating");
    m = run(m, running(m, 2000, "Scheduled"), at(1000)).migration;
    expect(run(m, running(m, 2000, "Scheduled"), at(1599)).migration.state).toBe("Migrating");
    expect(run(m, running(m, 2000, "Scheduled"), at(1600)).migration.state).toBe("RollingBack");
  });

  it("never fires while a cluster is unreachable, and restarts the clock when it is back", () => {
    let m = walk("Migrating");
    m = run(m, running(m, 1000), at(0)).migration;
    const away = { ...running(m, 1000), clusters: { east: view("east"), west: view("west", { availability: "unreachable", lastSeen: at(10).toISOString() }) } };
    m = run(m, away, at(100)).migration;
    const r = run(m, away, at(5000));
    expect(r.migration.state).toBe("Migrating");
    expect(r.migration.waitingReason).toBe(
      "cluster west is unreachable (last seen 12:00:10 UTC); waiting for it to report (nothing is aborted meanwhile): KubeVirt is migrating: source VMIM Running, target VMIM Running, 1000 B of 8 GiB transferred",
    );
    expect(actions(r)).toEqual(["source:send", "target:prepare"]);
    m = run(r.migration, running(m, 1000), at(5001)).migration;
    expect(run(m, running(m, 1000), at(5600)).migration.state).toBe("Migrating");
    expect(run(m, running(m, 1000), at(5601)).migration.state).toBe("RollingBack");
  });

  it("also watches trust, preparation and validation, with what it waited for", () => {
    const m0 = walk("Validating");
    const trusting = run(m0, { results: validationResults(m0), trust: { east: [], west: [] } }, at(0)).migration;
    const r = run(trusting, { trust: { east: [], west: [] } }, at(600));
    expect(r.migration.lastError?.message).toBe("no progress for 600 s in state Trusting: establishing trust: waiting for east to confirm west's CA in its kubevirt-ca and west to confirm east's CA in its kubevirt-ca");

    const validating = walk("Validating");
    expect(run(validating, {}, at(600)).migration.lastError?.message).toBe("no progress for 600 s in state Validating: validating: waiting for east to describe VM db/pg-0");
  });

  it("never abandons a migration whose VM already moved", () => {
    let m = walk("Migrating");
    const moved = { tasks: [{ cluster: "west", status: status(m, "target", "Succeeded", { vmim: vmim("Succeeded"), vm: { exists: true, vmiPhase: "Scheduling", runStrategy: "Always" } }) }] };
    m = run(m, moved, at(0)).migration;
    const r = run(m, moved, at(100_000));
    expect(r.migration.state).toBe("Migrating");
    expect(r.tasks.some((t) => t.action === "abort")).toBe(false);
  });
});

describe("cancel", () => {
  it.each(["Pending", "Queued"] as const)("from %s: cancelled at once", (state) => {
    const r = run(migration({ state, cancelRequested: true }));
    expect(r.migration).toMatchObject({ state: "Cancelled", cancelRequested: false });
    expect(r.tasks).toEqual([]);
  });

  it.each(["Validating", "Trusting"] as const)("from %s: cancelled at once, nothing had been created", (state) => {
    const m = walk(state);
    const r = run({ ...m, cancelRequested: true }, { trust: { east: [], west: [] } });
    expect(r.migration.state).toBe("Cancelled");
    expect(r.migration.attempts[0]?.outcome).toBe("Cancelled");
    expect(r.tasks).toEqual([]);
  });

  it.each([
    ["PreparingTarget", ["target:abort"]],
    ["TargetReady", ["source:abort", "target:abort"]],
    ["Migrating", ["source:abort", "target:abort"]],
  ] as const)("from %s: aborts every side that got a task, then Cancelled", (state, expected) => {
    const m = walk(state);
    const r = run({ ...m, cancelRequested: true });
    expect(r.migration.state).toBe("Cancelling");
    expect(actions(r)).toEqual(expected);
    expect(r.migration.waitingReason).toMatch(/^cancelling: waiting for /);
    const aborted = [
      { cluster: "east", status: status(m, "source", "Aborted") },
      { cluster: "west", status: status(m, "target", "Aborted") },
    ];
    const done = run(r.migration, { tasks: aborted });
    expect(done.migration.state).toBe("Cancelled");
    expect(done.migration.attempts[0]?.outcome).toBe("Cancelled");
    expect(done.events.at(-1)?.message).toContain("the source VM keeps running");
    expect(done.tasks).toEqual([]);
  });

  it("waits for an unreachable side to confirm the abort, and says so", () => {
    const m = walk("Migrating");
    const c = run({ ...m, cancelRequested: true }).migration;
    const r = run(c, { tasks: [{ cluster: "east", status: status(m, "source", "Aborted") }], clusters: { east: view("east"), west: view("west", { availability: "unreachable" }) } }, at(10_000));
    expect(r.migration.state).toBe("Cancelling");
    expect(r.migration.waitingReason).toBe("cluster west is unreachable (last seen 12:00:00 UTC); waiting for it to report (nothing is aborted meanwhile): cancelling: waiting for west (no report yet) to confirm the abort");
  });

  it("from Finalizing: too late, the migration completes", () => {
    const m = walk("Finalizing");
    const r = run({ ...m, cancelRequested: true });
    expect(r.migration).toMatchObject({ state: "Finalizing", cancelRequested: false });
    expect(r.events.map((e) => e.reason)).toEqual(["CancelTooLate"]);
    expect(actions(r)).toEqual(["source:finalize"]);
  });

  it("during a rollback: ends Cancelled instead of retrying", () => {
    const m = walk("PreparingTarget");
    const rb = run(m, { tasks: [{ cluster: "west", status: status(m, "target", "Failed") }] }).migration;
    const r = run({ ...rb, cancelRequested: true }, { tasks: [{ cluster: "west", status: status(m, "target", "Aborted") }] });
    expect(r.migration.state).toBe("Cancelled");
    expect(r.migration.attempts[0]?.outcome).toBe("Failed");
  });

  it("when KubeVirt completes the move anyway, finalizes instead and never aborts the target again", () => {
    const m = walk("Migrating");
    const c = run({ ...m, cancelRequested: true }).migration;
    const completed = { cluster: "west", status: status(m, "target", "Succeeded", { vmim: vmim("Succeeded"), vm: { exists: true, vmiPhase: "Running", runStrategy: "Always" } }) };
    const r = run(c, { tasks: [completed] });
    expect(r.migration.state).toBe("Finalizing");
    expect(r.events.map((e) => e.reason)).toEqual(["CompletedDespiteAbort", "VmimPhaseChanged", "TargetRunning"]);
    expect(r.tasks.some((t) => t.action === "abort")).toBe(false);
    expect(r.migration.attempts[0]).toMatchObject({ targetCompleted: true });
    expect(r.migration.attempts[0]?.outcome).toBeUndefined();
  });

  it("a cancelled plan cancels its unfinished migrations", () => {
    const r = run(walk("Migrating"), {}, T0, { plan: { ...ctx().plan, cancelRequested: true } });
    expect(r.migration.state).toBe("Cancelling");
    expect(r.events.map((e) => e.reason)).toEqual(["CancelRequested", "Cancelling"]);
  });

  it("is a no-op on finished migrations", () => {
    for (const state of ["Succeeded", "Failed", "Cancelled"] as const) {
      const r = run(migration({ state, cancelRequested: true }));
      expect(r.migration.state).toBe(state);
      expect(r.tasks).toEqual([]);
    }
  });
});

describe("KubeVirt signals surfaced", () => {
  it("decentralizedMigrationBlocked becomes the last error, the waiting reason and an event", () => {
    const m = walk("Migrating");
    const blocked = { type: "decentralizedMigrationBlocked", status: "True" as const, reason: "SyncConnectionFailed", message: "x509: certificate signed by unknown authority" };
    const r = run(m, { tasks: [{ cluster: "east", status: status(m, "source", "Migrating", { vmim: vmim("Synchronizing", { conditions: [blocked] }) }) }] });
    expect(r.migration.lastError).toMatchObject({ code: "DecentralizedMigrationBlocked", message: "KubeVirt reports decentralizedMigrationBlocked: SyncConnectionFailed: x509: certificate signed by unknown authority" });
    expect(r.migration.progress?.conditions).toEqual([blocked]);
    expect(r.migration.waitingReason).toContain("decentralizedMigrationBlocked: SyncConnectionFailed: x509");
    expect(r.events.map((e) => e.reason)).toContain("MigrationBlocked");
  });

  it("ManualRecoveryRequired stops a storage migration with the recovery rule", () => {
    const m = walk("Migrating", migration({ kind: "storage-live" }));
    const r = run(m, { tasks: [{ cluster: "east", status: status(m, "storage", "Failed", { needsManualRecovery: "VMI was removed during the volume migration; keep the destination only if the copy finished" }) }] });
    expect(r.migration.state).toBe("Failed");
    expect(r.migration.manualRecovery).toContain("keep the destination only if the copy finished");
    expect(r.migration.lastError?.code).toBe("ManualRecoveryRequired");
    expect(r.tasks).toEqual([]); // no automatic revert
    const retried = run({ ...r.migration, retryRequested: true }, {}, T0, { admitted: true });
    expect(retried.migration.manualRecovery).toBeUndefined();
    expect(retried.migration.state).toBe("Validating");
  });

  it("a failing source policy keeps Finalizing and says why", () => {
    const m = walk("Finalizing");
    const r = run(m, { tasks: [{ cluster: "east", status: status(m, "source", "Failed", { error: { code: "DeleteForbidden", message: "cannot delete VM db/pg-0: forbidden", fix: "grant the agent delete on virtualmachines" } }) }] });
    expect(r.migration.state).toBe("Finalizing");
    expect(r.migration.waitingReason).toBe("applying source policy halt failed on east (the agent retries): cannot delete VM db/pg-0: forbidden (fix: grant the agent delete on virtualmachines)");
  });
});

describe("same-cluster paths", () => {
  it.each([
    ["storage-live", "storage"],
    ["offline", "offline"],
  ] as const)("%s: migrate then finalize with role %s, no trust", (kind, role) => {
    let m = walk("Validating", migration({ kind }));
    let r = run(m, { results: validationResults(m) });
    expect(r.migration.state).toBe("Migrating");
    expect(r.tasks).toEqual([expect.objectContaining({ role, action: "migrate", sourceVolumes: [expect.objectContaining({ claimName: "pg-0-root" })] })]);
    expect(r.trust).toEqual([]);
    m = r.migration;
    r = run(m, { tasks: [{ cluster: "east", status: status(m, role, "Succeeded") }] });
    expect(r.migration.state).toBe("Finalizing");
    expect(r.tasks).toEqual([expect.objectContaining({ role, action: "finalize", sourcePolicy: "halt" })]);
    r = run(r.migration, { tasks: [{ cluster: "east", status: status(m, role, "Finalized") }] });
    expect(r.migration.state).toBe("Succeeded");
  });

  it("storage-live cancel restores the volumes through an abort", () => {
    const m = walk("Migrating", migration({ kind: "storage-live" }));
    const r = run({ ...m, cancelRequested: true });
    expect(actions(r)).toEqual(["storage:abort"]);
    expect(run(r.migration, { tasks: [{ cluster: "east", status: status(m, "storage", "Aborted") }] }).migration.state).toBe("Cancelled");
  });

  it("decentralized within one cluster (another namespace) skips trust; both tasks go to that cluster", () => {
    const m0 = migration({ source: { cluster: "east", namespace: "db", name: "pg-0" }, target: { cluster: "east", namespace: "db2", name: "pg-0" } });
    const m = walk("Validating", m0);
    const r = run(m, { results: validationResults(m) });
    expect(r.migration.state).toBe("PreparingTarget");
    expect(r.trust).toEqual([]);
    expect(r.tasks[0]?.target.cluster).toBe("east");
  });
});
