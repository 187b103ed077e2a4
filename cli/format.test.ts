import { describe, expect, it } from "vitest";
import { ClusterState, type Cluster } from "../proto/gen/ferry/v1/clusters.js";
import { MigrationState } from "../proto/gen/ferry/v1/migrations.js";
import { Severity } from "../proto/gen/ferry/v1/types.js";
import { ago, migration, now, plan } from "./fixtures.js";
import { age, bytes, clock, clusterTable, enumWord, list, migrationNote, migrationTable, parseOutputFormat, planTable, structured, table, toJson, until, validationLines } from "./format.js";

describe("table", () => {
  it("pads columns to the widest cell, three spaces apart, no trailing spaces", () => {
    expect(table(["NAME", "STATE"], [["a-long-name", "X"], ["b", ""]])).toBe("NAME          STATE\na-long-name   X\nb\n");
  });
});

describe("small formats", () => {
  it("enum words, ages, bytes, clocks", () => {
    expect(enumWord("MIGRATION_STATE_PREPARING_TARGET", "MIGRATION_STATE_")).toBe("PreparingTarget");
    expect([age(ago(5), now), age(ago(300), now), age(ago(4 * 3600), now), age(ago(3 * 86400), now), age(undefined, now)]).toEqual(["5s", "5m", "4h", "3d", "<unknown>"]);
    expect([until(new Date(now.getTime() + 6.5 * 86400_000), now), until(ago(1), now)]).toEqual(["in 6d", "expired"]);
    expect([bytes(0), bytes(1536), bytes(10 * 1024 * 1024), bytes(4.25 * 2 ** 30)]).toEqual(["0 B", "1.5 KiB", "10 MiB", "4.3 GiB"]);
    expect([clock(9), clock(309), clock(3909)]).toEqual(["0:09", "5:09", "1:05:09"]);
  });

  it("-o accepts json, yaml, wide; anything else is a usage error naming the choices", () => {
    expect([parseOutputFormat(undefined), parseOutputFormat("json"), parseOutputFormat("yaml"), parseOutputFormat("wide")]).toEqual(["table", "json", "yaml", "wide"]);
    expect(() => parseOutputFormat("table")).toThrow(/use -o json, -o yaml or -o wide/);
    try {
      parseOutputFormat("xml");
    } catch (e) {
      expect((e as { exitCode: number }).exitCode).toBe(2);
    }
  });
});

describe("clusters", () => {
  const c: Cluster = {
    name: "east",
    state: ClusterState.AVAILABLE,
    cordoned: true,
    cordonReason: "kernel",
    lastHeartbeatTime: ago(3),
    certificateExpireTime: new Date(now.getTime() + 6 * 86400_000 + 1000),
    agentVersion: "0.1.0",
    inventory: {
      kubevirtVersion: "v1.8.2",
      decentralizedMigrationEnabled: true,
      synchronizationAddresses: ["10.0.0.1:9185"],
      nodeCount: 3,
      architectures: ["amd64"],
      storageClasses: [{ name: "ceph", provisioner: "rbd", volumeBindingMode: "Immediate", isDefault: true }],
      networks: [],
      vmCount: 12,
      migrationLimits: undefined,
      workloadUpdateLiveMigrate: true,
      observeTime: undefined,
    },
    createTime: ago(2 * 86400),
  };
  it("table and wide table", () => {
    expect(clusterTable([c], false, now)).toBe("NAME   STATE       CORDONED   KUBEVIRT   VMS   HEARTBEAT   CERT EXPIRES   AGE\neast   Available   yes        v1.8.2     12    3s ago      in 6d          2d\n");
    const wide = clusterTable([{ ...c, inventory: undefined, lastHeartbeatTime: undefined }], true, now).split("\n");
    expect(wide[0]).toMatch(/AGE\s+NODES\s+ARCH\s+DECENTRALIZED\s+SYNC ADDRESSES\s+STORAGE CLASSES\s+AGENT\s+CORDON REASON$/);
    expect(wide[1]).toMatch(/^east\s+Available\s+yes\s+-\s+-\s+never\s+in 6d\s+2d\s+-\s+-\s+-\s+-\s+-\s+0\.1\.0\s+kernel$/);
    expect(clusterTable([c], true, now)).toContain("ceph(default)");
    const withCapacity = { ...c, inventory: { ...c.inventory!, storageClasses: [...c.inventory!.storageClasses, { name: "lvm", provisioner: "lvm", volumeBindingMode: "WaitForFirstConsumer", isDefault: false, freeBytes: 40 * 2 ** 30 }] } };
    expect(clusterTable([withCapacity], true, now)).toContain("ceph(default),lvm(40 GiB free)");
  });

  it("-o json is the proto3 JSON of the message; lists are kind: List", () => {
    const j = toJson.cluster(c) as Record<string, unknown>;
    expect(j).toMatchObject({ name: "east", state: "CLUSTER_STATE_AVAILABLE", cordoned: true, lastHeartbeatTime: ago(3).toISOString() });
    expect(JSON.parse(structured(list([j]), "json"))).toEqual({ kind: "List", items: [j] });
    expect(structured({ a: 1 }, "yaml")).toBe("a: 1\n");
  });
});

describe("plans and migrations", () => {
  it("plan table: succeeded/total, running, queued, failed; wide adds source, target, waiting", () => {
    expect(planTable([plan()], false, now)).toBe("NAME      PHASE     SUCCEEDED   RUNNING   QUEUED   FAILED   AGE\nmove-db   Running   1/3         1         1        0        3h\n");
    const evac = plan({ document: { spec: { source: { cluster: "east" }, target: { evacuate: true, candidates: ["west", "north"] } } }, waitingReason: "window opens at 22:00 UTC" });
    expect(planTable([evac], true, now).split("\n")[1]).toMatch(/east\s+evacuate\(west,north\)\s+0\s+window opens at 22:00 UTC$/);
  });

  it("migration rows: progress, unplaced target, why it waits or failed", () => {
    const moving = migration({ progress: { dataProcessedBytes: 2 * 2 ** 30, dataTotalBytes: 4 * 2 ** 30, dataRemainingBytes: 0, dataRateBytesPerSecond: 100 * 2 ** 20, eta: undefined, sourceVmimPhase: "Running", targetVmimPhase: "Running", conditions: [], mode: "PreCopy", updateTime: undefined } });
    const queued = migration({ uid: "m-2", name: "move-db/db/pg-1", source: { cluster: "east", namespace: "db", name: "pg-1" }, state: MigrationState.QUEUED, target: undefined, waitingReason: "cluster west: 5/5 parallelMigrationsPerCluster in use" });
    const failed = migration({ uid: "m-3", name: "move-db/db/pg-2", state: MigrationState.FAILED, attempt: 3, lastError: { code: "TargetNameCollision", message: "db/pg-2 exists on west", fix: "rename or delete it" } });
    const out = migrationTable([moving, queued, failed], false, now).split("\n");
    expect(out[0]).toMatch(/^NAME\s+STATE\s+SOURCE\s+TARGET\s+ATTEMPT\s+PROGRESS\s+AGE\s+NOTE$/);
    expect(out[1]).toMatch(/^move-db\/db\/pg-0\s+Migrating\s+east:db\/pg-0\s+west:db\/pg-0\s+1\s+50% 2\.0 GiB\/4\.0 GiB\s+90s\s+-$/);
    expect(out[2]).toMatch(/Queued\s+east:db\/pg-1\s+\(unplaced\)\s+1\s+-\s+90s\s+cluster west: 5\/5 parallelMigrationsPerCluster in use$/);
    expect(out[3]).toMatch(/Failed .* TargetNameCollision: db\/pg-2 exists on west \(fix: rename or delete it\)$/);
    expect(migrationTable([moving], true, now)).toMatch(/DecentralizedLive\s+m-1\s+Running\s+Running\s+100 MiB\/s/);
    expect(migrationTable([migration({ placement: "placed on north: 81% of its memory free afterwards" })], false, now)).toMatch(/\s90s\s+placed on north: 81% of its memory free afterwards\n$/);
    expect(migrationNote(migration({ manualRecovery: "keep the destination only if the copy finished" }))).toBe("manual recovery: keep the destination only if the copy finished");
  });

  it("validation findings, one per line with severity, VM, field and fix", () => {
    const p = plan({
      validation: [
        { vm: { cluster: "east", namespace: "db", name: "pg-0" }, severity: Severity.ERROR, code: "StorageClassUnmapped", field: "spec.storageMap", message: 'class "ceph" has no mapping', fix: 'add a storageMap entry for "ceph"' },
        { vm: undefined, severity: Severity.WARNING, code: "WindowClosed", field: "", message: "the window is closed now", fix: "" },
      ],
    });
    expect(validationLines(p)).toEqual([
      'ERROR east/db/pg-0 StorageClassUnmapped: class "ceph" has no mapping [spec.storageMap] (fix: add a storageMap entry for "ceph")',
      "WARNING WindowClosed: the window is closed now",
    ]);
  });
});
