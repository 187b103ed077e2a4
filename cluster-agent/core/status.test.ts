import { describe, expect, it } from "vitest";
import { VmimStatus } from "../../proto/bus/index.js";
import { vmFixture, vmiFixture, vmimFixture } from "./fixtures.js";
import { blockedCondition, heldVmim, progressFromMetrics, progressOf, receiverCompleted, stepForVmim, vmFacts, vmimFailure, vmimStatus, vmimSucceeded } from "./status.js";

const vmim = (phase: string, extra: Record<string, unknown> = {}) => vmimFixture("ferry-send-m1-1", "vms", { vmiName: "web-1", sendTo: { migrationID: "m1-1", connectURL: "1.2.3.4:9185" } }, { phase, ...extra });

describe("status derivation", () => {
  it("maps VMIM phases to steps", () => {
    expect(["", "Synchronizing", "WaitingForSync", "Pending", "Scheduling", "TargetReady", "Running", "Succeeded", "Failed"].map((p) => stepForVmim(vmim(p)))).toEqual([
      "Sending",
      "Sending",
      "Sending",
      "Sending",
      "Migrating",
      "Migrating",
      "Migrating",
      "Succeeded",
      "Failed",
    ]);
  });
  it("reports phase transitions, conditions (incl. decentralizedMigrationBlocked) and migrationState in the bus shape", () => {
    const m = vmim("Synchronizing", {
      phaseTransitionTimestamps: [{ phase: "Synchronizing", phaseTransitionTimestamp: "2026-01-01T00:00:00Z" }],
      conditions: [{ type: "decentralizedMigrationBlocked", status: "True", reason: "DecentralizedNotLiveMigratable", message: "x509: certificate signed by unknown authority", lastTransitionTime: "2026-01-01T00:00:01Z", lastProbeTime: null }],
      migrationState: { completed: false, failed: false, startTimestamp: "2026-01-01T00:00:00Z", mode: "PreCopy", sourceNode: "n1" },
    });
    const s = vmimStatus(m);
    expect(VmimStatus.parse(s)).toEqual(s);
    expect(s).toEqual({
      name: "ferry-send-m1-1",
      phase: "Synchronizing",
      phaseTransitions: [{ phase: "Synchronizing", at: "2026-01-01T00:00:00.000Z" }],
      conditions: [{ type: "decentralizedMigrationBlocked", status: "True", reason: "DecentralizedNotLiveMigratable", message: "x509: certificate signed by unknown authority", lastTransitionTime: "2026-01-01T00:00:01.000Z" }],
      migrationState: { completed: false, failed: false, startTimestamp: "2026-01-01T00:00:00.000Z", mode: "PreCopy" },
    });
    expect(blockedCondition(m)?.message).toContain("x509");
  });
  it("names the failure reason and the blocked condition in a failed VMIM's error", () => {
    const e = vmimFailure(vmim("Failed", { migrationState: { completed: true, failed: true, failureReason: "Live migration has been aborted" } }), "source");
    expect(e.code).toBe("MigrationFailed");
    expect(e.message).toBe("source VMIM vms/ferry-send-m1-1 failed: Live migration has been aborted");
    expect(e.fix).toContain("bandwidthPerMigration");
    // Marked Failed before KubeVirt stored the migration state on it: the reason comes from the VMI that refers to it.
    const early = { ...vmim("Failed"), metadata: { ...vmim("Failed").metadata, uid: "u1" } };
    const base = vmiFixture(vmFixture({ name: "web-1", namespace: "vms" }));
    const vmiWith = (migrationState: Record<string, unknown>) => ({ ...base, status: { ...base.status, migrationState } });
    expect(vmimFailure(early, "target", vmiWith({ migrationUid: "u1", failed: true, failureReason: "Live migration has been aborted" })).message).toBe("target VMIM vms/ferry-send-m1-1 failed: Live migration has been aborted");
    expect(vmimFailure(early, "target", vmiWith({ migrationUid: "other", failed: true, failureReason: "an earlier migration's reason" })).message).toBe("target VMIM vms/ferry-send-m1-1 failed");
  });
  it("success is the Succeeded phase or a completed, not failed, migrationState", () => {
    expect(vmimSucceeded(vmim("Succeeded"))).toBe(true);
    expect(vmimSucceeded(vmim("Running", { migrationState: { completed: true, failed: false } }))).toBe(true);
    expect(vmimSucceeded(vmim("Failed", { migrationState: { completed: true, failed: true } }))).toBe(false);
    expect(vmimSucceeded(undefined)).toBe(false);
  });
  it("a receiver has completed once its run strategy is restored, or its VMI runs without the target annotation", () => {
    const receiver = vmFixture({ runStrategy: "WaitAsReceiver" });
    const waiting = vmiFixture(receiver, { phase: "WaitingForSync" });
    waiting.metadata.annotations = { "kubevirt.io/create-migration-target": "true" };
    expect(receiverCompleted(receiver, waiting)).toBe(false);
    const moved = vmiFixture(receiver);
    moved.status!.migrationState = { completed: true, failed: false };
    expect(receiverCompleted(receiver, moved)).toBe(true);
    expect(receiverCompleted(vmFixture({ runStrategy: "Always" }), undefined)).toBe(true);
    expect(receiverCompleted(undefined, moved)).toBe(false);
  });
  it("reads a VMI's progress from virt-handler's metrics text", () => {
    const text = [
      "# TYPE kubevirt_vmi_migration_data_processed_bytes gauge",
      'kubevirt_vmi_migration_data_processed_bytes{name="web-1",namespace="vms",node="n1"} 1073741824',
      'kubevirt_vmi_migration_data_bytes_total{name="web-1",namespace="vms",node="n1"} 4294967296',
      'kubevirt_vmi_migration_data_remaining_bytes{name="web-1",namespace="vms",node="n1"} 3221225472',
      'kubevirt_vmi_migration_data_processed_bytes{name="db-1",namespace="vms",node="n1"} 5',
    ].join("\n");
    expect(progressFromMetrics(text, "vms", "web-1")).toEqual({ processedBytes: 2 ** 30, totalBytes: 2 ** 32, remainingBytes: 3 * 2 ** 30 });
    expect(progressFromMetrics(text, "vms", "nope")).toBeUndefined();
  });
  it("takes the newest of several timestamped samples, and the rate from memory_transfer_rate", () => {
    const at = 1767139200000;
    const text = [
      'kubevirt_vmi_migration_data_processed_bytes{name="web-1",namespace="vms",node="n1"} 300 ' + String(at + 10_000),
      'kubevirt_vmi_migration_data_processed_bytes{name="web-1",namespace="vms",node="n1"} 100 ' + String(at),
      'kubevirt_vmi_migration_data_processed_bytes{name="web-1",namespace="other",node="n1"} 999 ' + String(at + 20_000),
      'kubevirt_vmi_migration_data_remaining_bytes{name="web-1",namespace="vms",node="n1"} 7e2 ' + String(at + 10_000),
      'kubevirt_vmi_migration_memory_transfer_rate_bytes{name="web-1",namespace="vms",node="n1"} 50 ' + String(at + 10_000),
      'kubevirt_vmi_migration_dirty_memory_rate_bytes{name="web-1",namespace="vms",node="n1"} 5 ' + String(at + 10_000),
      "kubevirt_vmi_migration_data_bytes_total{name=\"web-1\",namespace=\"vms\",node=\"n1\"} NaN",
    ].join("\n");
    expect(progressFromMetrics(text, "vms", "web-1")).toEqual({ processedBytes: 300, remainingBytes: 700, dataRateBytesPerSecond: 50 });
  });
  it("VM facts and progress", () => {
    const vm = vmFixture();
    expect(vmFacts(vm, vmiFixture(vm))).toEqual({ exists: true, runStrategy: "Always", printableStatus: "Running", vmiPhase: "Running", node: "a-node-1" });
    expect(vmFacts(undefined, undefined)).toEqual({ exists: false });
    expect(progressOf({ processedBytes: 10.4, totalBytes: 100, remainingBytes: -1 })).toEqual({ processedBytes: 10, totalBytes: 100, remainingBytes: 0 });
    expect(progressOf(undefined)).toBeUndefined();
  });
  it("lifts KubeVirt's finalizers from a deleted VMIM only when no KubeVirt controller will", () => {
    const t0 = new Date("2026-01-01T00:00:00Z");
    const after = (s: number) => new Date(t0.getTime() + s * 1000);
    const deleted = (phase: string) => {
      const m = vmim(phase);
      m.metadata = { ...m.metadata, uid: "u1", deletionTimestamp: t0.toISOString(), finalizers: ["kubevirt.io/migrationJobFinalize"] };
      return m;
    };
    const vmi = (migrationState: Record<string, unknown>) => {
      const v = vmiFixture(vmFixture({ name: "web-1", namespace: "vms" }));
      return { ...v, status: { ...v.status, migrationState } };
    };
    const grace = 60_000;
    // Not deleted, or nothing holds it: nothing to do.
    expect(heldVmim(vmim("Failed"), undefined, after(999), grace)).toBeUndefined();
    // Final, and the VMI is gone or re-created (no longer refers to it): at once.
    expect(heldVmim(deleted("Failed"), undefined, after(1), grace)?.release).toEqual(["kubevirt.io/migrationJobFinalize"]);
    expect(heldVmim(deleted("Failed"), vmi({ targetState: { migrationUID: "other" } }), after(1), grace)?.release).toEqual(["kubevirt.io/migrationJobFinalize"]);
    // Final and still referred to: KubeVirt's controllers finish it; lifted only after the grace.
    const referred = vmi({ migrationUid: "u1", sourceState: { migrationUID: "u1" } });
    expect(heldVmim(deleted("Failed"), referred, after(10), grace)).toEqual({ why: expect.stringContaining("unless KubeVirt finishes first") as string, releaseAt: after(60) });
    expect(heldVmim(deleted("Failed"), referred, after(60), grace)?.release).toHaveLength(1);
    // Not final, the copy never started (its peer is gone): after the grace.
    expect(heldVmim(deleted("Scheduling"), referred, after(59), grace)?.release).toBeUndefined();
    expect(heldVmim(deleted("Scheduling"), referred, after(61), grace)).toMatchObject({ release: ["kubevirt.io/migrationJobFinalize"], why: expect.stringContaining("the copy never started") });
    // A source that is copying: KubeVirt aborts it; ferry never forces it.
    const copying = vmi({ migrationUid: "u1", startTimestamp: t0.toISOString(), sourceState: { migrationUID: "u1" } });
    expect(heldVmim(deleted("Running"), copying, after(3600), grace)).toEqual({ why: expect.stringContaining("KubeVirt is aborting the copy") as string });
    // A receiver that is copying is disposable: released after the grace.
    const receive = { ...deleted("Running"), spec: { vmiName: "web-1", receive: { migrationID: "m1-1" } } };
    const receiving = vmi({ migrationUid: "u1", startTimestamp: t0.toISOString(), targetState: { migrationUID: "u1" } });
    expect(heldVmim(receive, receiving, after(30), grace)?.release).toBeUndefined();
    expect(heldVmim(receive, receiving, after(61), grace)).toMatchObject({ release: ["kubevirt.io/migrationJobFinalize"], why: expect.stringContaining("receiver's copy is being cancelled") as string });
  });
});

