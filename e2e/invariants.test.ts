// The invariant checks themselves must catch what they claim to: a simulated world seeded with a
// VM running in two places, a leftover copy after a cancel, and a migration without a reason.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MigrationKind, MigrationState, type Migration } from "../proto/gen/ferry/v1/migrations.js";
import { startWorld, type World } from "../sim/world.js";
import { checkInvariants, monitorInvariants, snapshotWorld } from "./invariants.js";

let world: World;
const ferry = (uid: string, attempt = 1) => ({ "app.kubernetes.io/managed-by": "ferry", "ferry.dev/migration": uid, "ferry.dev/attempt": String(attempt) });

function migration(uid: string, vm: string, state: MigrationState, over: Partial<Migration> = {}): Migration {
  return {
    uid,
    name: `p/vms/${vm}`,
    plan: "p",
    source: { cluster: "a", namespace: "vms", name: vm },
    target: { cluster: "b", namespace: "vms", name: vm },
    kind: MigrationKind.DECENTRALIZED_LIVE,
    state,
    attempt: 1,
    migrationId: `${uid}-1`,
    waitingReason: "",
    lastError: undefined,
    progress: undefined,
    attempts: [],
    manualRecovery: "",
    createTime: undefined,
    startTime: undefined,
    finishTime: undefined,
    updateTime: undefined,
    placement: "",
    ...over,
  };
}

beforeAll(async () => {
  world = await startWorld({
    clusters: ["a", "b"],
    timeScale: 50,
    scenario: {
      defaults: {
        namespaces: ["default", "kubevirt", "cdi", "vms"],
        nodes: [{ count: 2, arch: "amd64", cpu: "32", memory: "128Gi" }],
        storageClasses: [{ name: "standard", default: true, volumeBindingMode: "Immediate", provisioner: "rbd.csi.sim.ferry.dev" }],
        kubevirt: {},
      },
      clusters: {
        a: { vms: [{ name: "web", namespace: "vms" }, { name: "db", namespace: "vms" }, { name: "app", namespace: "vms" }] },
        b: {
          vms: [{ name: "web", namespace: "vms", labels: ferry("m-1") }],
          objects: [{ apiVersion: "v1", kind: "ConfigMap", metadata: { name: "db-config", namespace: "vms", labels: ferry("m-2") }, data: { k: "v" } }],
        },
      },
    },
  });
});

afterAll(async () => {
  await world?.stop();
});

describe("checkInvariants", () => {
  it("reports a VM in two places, a leftover after cancel and a migration without a reason; a clean one passes", async () => {
    const migrations = [
      migration("m-1", "web", MigrationState.SUCCEEDED),
      migration("m-2", "db", MigrationState.CANCELLED),
      migration("m-3", "app", MigrationState.MIGRATING),
      migration("m-4", "app", MigrationState.CANCELLED, { name: "q/vms/app", plan: "q" }),
    ];
    // Both copies of web run once the simulated KubeVirt started them.
    for (let i = 0; i < 200; i++) {
      const snap = await snapshotWorld(world);
      const running = (c: string) => snap.get(c)!.vmis.some((v) => v.metadata?.name === "web" && v.status?.["phase"] === "Running");
      if (running("a") && running("b")) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const violations = await checkInvariants(world, migrations);
    expect(violations.map((v) => [v.invariant, v.subject]).sort()).toEqual([
      [1, "p/vms/web"],
      [3, "p/vms/db"],
      [4, "p/vms/app"],
    ]);
    expect(violations.find((v) => v.invariant === 3)!.message).toBe("ConfigMap b/vms/db-config is left behind after CANCELLED");

    const monitor = monitorInvariants(world, () => migrations, { intervalMs: 20 });
    for (let i = 0; i < 200 && monitor.samples() < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect((await monitor.stop()).map((v) => [v.invariant, v.subject])).toEqual([[1, "p/vms/web"]]);
  });
});
