// Pure parts of the controller: plan uids and the record → API conversion.
import { describe, expect, it } from "vitest";
import { MigrationUid } from "../../proto/names.js";
import { MigrationKind, MigrationState } from "../../proto/gen/ferry/v1/migrations.js";
import { PlanPhase } from "../../proto/gen/ferry/v1/plans.js";
import { Severity } from "../../proto/gen/ferry/v1/types.js";
import { createPlanRecords, migrationUidFor, PlanUid } from "../core/index.js";
import { plan as planFixture, T0 } from "../core/test-fixtures.js";
import { newPlanUid } from "./api.js";
import { migrationToProto, planToProto } from "./convert.js";

describe("newPlanUid", () => {
  it("is a valid plan uid whose migration uids stay DNS labels, for the longest plan names too", () => {
    for (const name of ["a", "move-db", "x".repeat(29) + "-y", "n".repeat(63)]) {
      const uid = newPlanUid(name);
      expect(PlanUid.safeParse(uid).success).toBe(true);
      expect(MigrationUid.safeParse(migrationUidFor(uid, 9999)).success).toBe(true);
      expect(uid.startsWith(name.slice(0, 10))).toBe(true);
    }
    expect(newPlanUid("same")).not.toBe(newPlanUid("same"));
  });
});

describe("records → API", () => {
  it("carries the plan's phase, counters, findings and each migration's identity, state and placement", () => {
    const doc = planFixture({ vms: [{ namespace: "db", name: "pg-0" }] });
    const { plan, migrations } = createPlanRecords(
      doc,
      {
        ok: true,
        findings: [{ code: "TargetCapacity", severity: "warning", field: "", message: "west is 90% full", fix: "add nodes", vm: { cluster: "east", namespace: "db", name: "pg-0" } }],
        migrations: [{ source: { cluster: "east", namespace: "db", name: "pg-0" }, target: { cluster: "west", namespace: "db", name: "pg-0" }, kind: "decentralized-live", size: { memoryBytes: 1, diskBytes: 2 }, placement: "placed on west" }],
      },
      "move-db-0a1b2c3d",
      T0,
    );
    const p = planToProto(plan, migrations);
    expect(p).toMatchObject({ name: "move-db", phase: PlanPhase.PENDING, counters: { total: 1, queued: 1 }, createTime: T0 });
    expect(p.validation).toEqual([{ vm: { cluster: "east", namespace: "db", name: "pg-0" }, severity: Severity.WARNING, code: "TargetCapacity", field: "", message: "west is 90% full", fix: "add nodes" }]);
    expect((p.document as { spec: { source: { cluster: string } } }).spec.source.cluster).toBe("east");
    const m = migrationToProto(migrations[0]!);
    expect(m).toMatchObject({ uid: "move-db-0a1b2c3d-1", name: "move-db/db/pg-0", plan: "move-db", kind: MigrationKind.DECENTRALIZED_LIVE, state: MigrationState.PENDING, attempt: 0, migrationId: "", placement: "placed on west" });
    expect(m.waitingReason).not.toBe("");
  });
});
