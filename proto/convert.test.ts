import { describe, expect, it } from "vitest";
import { MigrationState as BusMigrationState, PlanPhase as BusPlanPhase } from "./bus/index.js";
import { issueToProto, MIGRATION_STATE_TO_PROTO, PLAN_PHASE_TO_PROTO } from "./convert.js";
import { MigrationState } from "./gen/ferry/v1/migrations.js";
import { PlanPhase } from "./gen/ferry/v1/plans.js";
import { Severity } from "./gen/ferry/v1/types.js";

// Every real value of a ts-proto enum (not UNSPECIFIED / UNRECOGNIZED).
const protoValues = (e: Record<string, string | number>) => Object.values(e).filter((v): v is number => typeof v === "number" && v > 0);

describe("bus ↔ gRPC enums", () => {
  it("map every migration state one to one", () => {
    expect(Object.keys(MIGRATION_STATE_TO_PROTO).sort()).toEqual([...BusMigrationState.options].sort());
    expect(Object.values(MIGRATION_STATE_TO_PROTO).sort()).toEqual(protoValues(MigrationState).sort());
  });

  it("map every plan phase one to one", () => {
    expect(Object.keys(PLAN_PHASE_TO_PROTO).sort()).toEqual([...BusPlanPhase.options].sort());
    expect(Object.values(PLAN_PHASE_TO_PROTO).sort()).toEqual(protoValues(PlanPhase).sort());
  });

  it("converts preflight findings", () => {
    const vm = { cluster: "east", namespace: "db", name: "pg-0" };
    expect(issueToProto({ code: "VmNotRunning", severity: "warning", field: "", message: "m", fix: "f" }, vm)).toEqual({
      vm,
      severity: Severity.WARNING,
      code: "VmNotRunning",
      field: "",
      message: "m",
      fix: "f",
    });
  });
});
