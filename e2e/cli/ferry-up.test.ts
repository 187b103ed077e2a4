// The README's "Try it by hand" walk-through, as a user types it: `ferry up` as a process (nats-server,
// broker, two simulated clusters with running VMs, one enrolled agent each), then the real ferryctl
// and kubectl as subprocesses: cluster list; a dry run refusing a stopped VM with its reason; apply;
// watch to exit 0; get -o json; a same-cluster storage migration (the claim is on the new class); a
// cancel mid-migration (rolled back, the VM still runs at the source); evacuate (dry run, then for
// real). Finally Ctrl-C: `ferry up` exits 0 and leaves no process behind.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ferryctl, ferryctlProcess, type RunResult } from "../../cli/testing.js";
import { kubectl } from "../../scripts/kubectl.js";
import { REPO } from "../../stack/stack.js";

const dir = mkdtempSync(join(tmpdir(), "ferry-up-"));
const config = join(dir, "ferryctl.yaml");
const kubeconfig = (cluster: string) => join(dir, `kubeconfig-${cluster}`);
let up: ChildProcess;
let upExit: Promise<number | null>;
let upStdout = "";
let upStderr = "";

/** A size as ferryctl prints it ("1.2 GiB", "512 MiB", "10 GiB"), and a watch line's optional copy progress ("12% 1.2 GiB/10 GiB  110 MiB/s  ETA 1:21"). */
const SIZE = "[\\d.]+ [KMGT]?i?B";
const BYTES = `\\d+% ${SIZE}/${SIZE}( {2}${SIZE}/s)?( {2}ETA [\\d:]+)?`;
const fc = (...args: string[]): Promise<RunResult> => ferryctl(["--config", config, ...args], { cwd: dir });
const ok = (r: RunResult, what: string) => expect(r.code, `${what} exited ${r.code}\n${r.stdout}\n${r.stderr}`).toBe(0);
const json = <T>(r: RunResult): T => JSON.parse(r.stdout) as T;
const vmPhase = async (cluster: string, name: string): Promise<string> =>
  (await kubectl(kubeconfig(cluster), ["-n", "vms", "get", "vmi", name, "-o", "jsonpath={.status.phase}"])).stdout;
const vmNames = async (cluster: string): Promise<string[]> =>
  (await kubectl(kubeconfig(cluster), ["-n", "vms", "get", "vm", "-o", "jsonpath={.items[*].metadata.name}"])).stdout.split(" ").filter(Boolean).sort();

interface Migration {
  name: string;
  kind: string;
  state: string;
  source: { cluster: string; name: string };
  target: { cluster: string; name: string };
}
interface Plan {
  name: string;
  phase: string;
  counters: Record<string, number>;
  migrations: Migration[];
}

/** The plan document of the README (its `cat > plan.yaml <<'EOF'` block). */
function readmePlan(): string {
  const readme = readFileSync(join(REPO, "README.md"), "utf8");
  const m = /cat > plan\.yaml <<'EOF'\n([\s\S]*?)\nEOF\n/.exec(readme);
  if (!m) throw new Error("README.md has no `cat > plan.yaml <<'EOF'` block");
  return `${m[1]}\n`;
}

/** Every process below `root` (/proc), with its command line. */
function descendants(root: number): { pid: number; cmd: string }[] {
  const parent = new Map<number, number>();
  for (const e of readdirSync("/proc")) {
    if (!/^\d+$/.test(e)) continue;
    try {
      const stat = readFileSync(`/proc/${e}/stat`, "utf8");
      parent.set(Number(e), Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: { pid: number; cmd: string }[] = [];
  const walk = (p: number) => {
    for (const [pid, pp] of parent) {
      if (pp !== p) continue;
      let cmd = "";
      try {
        cmd = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
      } catch {
        // gone meanwhile
      }
      out.push({ pid, cmd });
      walk(pid);
    }
  };
  walk(root);
  return out;
}

/** A process that still runs (a zombie has exited; only its parent has not collected it yet). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

beforeAll(async () => {
  up = spawn(process.execPath, ["--import", "tsx", join(REPO, "stack/main.ts"), "up", "--clusters", "east,west", "--scenario", "demo", "--dir", dir, "--time-scale", "15"], {
    cwd: REPO,
    stdio: ["ignore", "pipe", "pipe"],
  });
  upExit = new Promise((resolve) => up.once("exit", (code) => resolve(code)));
  up.stderr!.on("data", (d: Buffer) => (upStderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    up.stdout!.on("data", (d: Buffer) => {
      upStdout += d.toString();
      if (upStdout.startsWith("ready\n")) resolve();
    });
    void upExit.then((code) => reject(new Error(`ferry up exited ${code} before "ready":\n${upStdout}\n${upStderr.slice(-3000)}`)));
  });
}, 120_000);

afterAll(async () => {
  if (up && up.exitCode === null && up.signalCode === null) {
    up.kill("SIGINT");
    await upExit;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe("ferryctl against `ferry up` (the README walk-through)", () => {
  it("ferry up prints ready and the next commands; both clusters are listed Available", async () => {
    expect(upStdout).toContain(`npx ferryctl --config ${config} cluster list`);
    expect(existsSync(config)).toBe(true);
    const list = await fc("cluster", "list");
    ok(list, "cluster list");
    expect(list.stdout).toMatch(/^NAME\s+STATE\s+CORDONED\s+KUBEVIRT\s+VMS\s/);
    expect(list.stdout).toMatch(/^east\s+Available\s+no\s+v\S+\s+5\s/m);
    expect(list.stdout).toMatch(/^west\s+Available\s+no\s+v\S+\s+2\s/m);
  });

  it("a dry run names the stopped VM it refuses and why, creates nothing and exits 1", async () => {
    await kubectl(kubeconfig("east"), ["-n", "vms", "patch", "vm", "web-4", "--type", "merge", "-p", '{"spec":{"runStrategy":"Halted"}}']);
    await kubectl(kubeconfig("east"), ["-n", "vms", "wait", "vm/web-4", "--for=jsonpath={.status.printableStatus}=Stopped", "--timeout=60s"]);
    writeFileSync(join(dir, "plan.yaml"), readmePlan());
    const dry = await fc("plan", "apply", "-f", "plan.yaml", "--dry-run");
    expect(dry.code).toBe(1);
    expect(dry.stdout).toMatch(/^plan\/east-to-west validated \(dry run, nothing created\): 2 migration\(s\), 1 error\(s\), \d+ warning\(s\)$/m);
    const errors = dry.stdout.split("\n").filter((l) => l.startsWith("ERROR "));
    expect(errors).toEqual([
      "ERROR east/vms/web-4 VmStoppedCrossCluster: VM vms/web-4 is stopped; ferry moves VMs between clusters only live, and a stopped VM only within its own cluster (offline) [spec.vms[2]] (fix: start the VM to move it live, or move it within cluster east)",
    ]);
    // The VMs that would move are listed with their targets.
    expect(dry.stdout).toMatch(/^east-to-west\/vms\/web-1\s+Pending\s+east:vms\/web-1\s+west:vms\/web-1\s/m);
    expect(dry.stdout).toMatch(/^east-to-west\/vms\/web-2\s+Pending\s+east:vms\/web-2\s+west:vms\/web-2\s/m);
    expect(dry.stderr).toBe("error: plan/east-to-west would be refused: 1 validation error(s) above\n");
    const get = await fc("plan", "get", "east-to-west");
    expect(get.code).toBe(1);
    expect(get.stderr).toMatch(/^error: plan "east-to-west" does not exist/);
  });

  it("apply, then watch shows live progress and exits 0 when both VMs run on west", async () => {
    // The README's next step: sed -i '/web-4/d' plan.yaml
    writeFileSync(join(dir, "plan.yaml"), readmePlan().split("\n").filter((l) => !l.includes("web-4")).join("\n"));
    const apply = await fc("plan", "apply", "-f", "plan.yaml");
    ok(apply, "plan apply");
    expect(apply.stdout).toMatch(/^plan\/east-to-west created: 2 migration\(s\)\n/);
    const watch = await fc("plan", "watch", "east-to-west");
    ok(watch, "plan watch");
    const lines = watch.stdout.trimEnd().split("\n");
    for (const l of lines) expect(l).toMatch(/^\d\d:\d\d:\d\d /);
    // Progress as it happened, not just the end state: each VM passed through Migrating while KubeVirt
    // moved it, with the bytes, rate and ETA the source agent read from virt-handler's metrics
    // (through the API server's pods/proxy) — "37% 4.4 GiB/12 GiB  1.7 GiB/s  ETA 0:05".
    for (const vm of ["web-1", "web-2"]) {
      expect(lines.some((l) => new RegExp(` vms/${vm} {2}Migrating {2}(${BYTES} {2})?→ west:vms/${vm} {2}KubeVirt is migrating: `).test(l)), `${vm} Migrating line in:\n${watch.stdout}`).toBe(true);
      const bytesLine = new RegExp(` vms/${vm} {2}Migrating {2}\\d+% ${SIZE}/${SIZE} {2}${SIZE}/s {2}ETA [\\d:]+ {2}→ west:vms/${vm} {2}KubeVirt is migrating: .*, ${SIZE} of ${SIZE} transferred at ${SIZE}/s`);
      expect(lines.some((l) => bytesLine.test(l)), `${vm}: no Migrating line with bytes, rate and ETA in:\n${watch.stdout}`).toBe(true);
      expect(lines).toContainEqual(expect.stringMatching(new RegExp(` vms/${vm} {2}Succeeded {2}(100% (${SIZE})/\\2 {2})?→ west:vms/${vm} {2}\\(VM runs on west/vms/${vm}; source deleted\\)$`)));
    }
    expect(lines.at(-1)).toMatch(/ east-to-west Succeeded: 2\/2 succeeded, 0 running, 0 queued, 0 failed, 0 cancelled$/);
    expect(await vmPhase("west", "web-1")).toBe("Running");
    expect(await vmPhase("west", "web-2")).toBe("Running");
    expect(await vmNames("east")).toEqual(["db-1", "web-3", "web-4"]); // sourcePolicy: delete
  });

  it("plan get -o json: phase, counters and every VM's state and kind", async () => {
    const get = await fc("plan", "get", "east-to-west", "-o", "json");
    ok(get, "plan get -o json");
    const plan = json<Plan>(get);
    expect(plan.name).toBe("east-to-west");
    expect(plan.phase).toBe("PLAN_PHASE_SUCCEEDED");
    expect(plan.counters).toMatchObject({ total: 2, succeeded: 2 });
    expect(plan.migrations.map((m) => [m.name, m.state, m.kind, `${m.target.cluster}/${m.target.name}`]).sort()).toEqual([
      ["east-to-west/vms/web-1", "MIGRATION_STATE_SUCCEEDED", "MIGRATION_KIND_DECENTRALIZED_LIVE", "west/web-1"],
      ["east-to-west/vms/web-2", "MIGRATION_STATE_SUCCEEDED", "MIGRATION_KIND_DECENTRALIZED_LIVE", "west/web-2"],
    ]);
  });

  it("migrate within west onto storage class fast: the VM's claim is on fast, and it still runs", async () => {
    const before = await kubectl(kubeconfig("west"), ["-n", "vms", "get", "vm", "web-1", "-o", "json"]);
    const claimOf = (vmJson: string) => {
      const volumes = (JSON.parse(vmJson) as { spec: { template: { spec: { volumes: { dataVolume?: { name: string }; persistentVolumeClaim?: { claimName: string } }[] } } } }).spec.template.spec.volumes;
      const v = volumes.find((x) => x.dataVolume ?? x.persistentVolumeClaim)!;
      return v.dataVolume?.name ?? v.persistentVolumeClaim!.claimName;
    };
    const classOf = async (claim: string) => (await kubectl(kubeconfig("west"), ["-n", "vms", "get", "pvc", claim, "-o", "jsonpath={.spec.storageClassName}"])).stdout;
    expect(await classOf(claimOf(before.stdout))).toBe("standard");

    const r = await fc("migrate", "vms/web-1", "--from", "west", "--to", "west", "--storage-class", "fast", "-w");
    ok(r, "migrate --storage-class fast -w");
    expect(r.stdout).toMatch(/^plan\/migrate-vms-web-1 created: 1 migration\(s\)\n/);
    expect(r.stdout).toMatch(new RegExp(` vms/web-1 {2}Migrating {2}(${BYTES} {2})?→ west:vms/web-1 {2}storage live migration on west: `));
    expect(r.stdout).toMatch(/ migrate-vms-web-1 Succeeded: 1\/1 succeeded/);
    const plan = json<Plan>(await fc("plan", "get", "migrate-vms-web-1", "-o", "json"));
    expect(plan.migrations.map((m) => m.kind)).toEqual(["MIGRATION_KIND_STORAGE_LIVE"]);

    const after = await kubectl(kubeconfig("west"), ["-n", "vms", "get", "vm", "web-1", "-o", "json"]);
    const claim = claimOf(after.stdout);
    expect(claim).not.toBe(claimOf(before.stdout));
    expect(await classOf(claim)).toBe("fast");
    expect(await vmPhase("west", "web-1")).toBe("Running");
  });

  it("plan cancel while KubeVirt migrates: the watch ends Cancelled (exit 1), db-1 still runs on east, nothing is left on west", async () => {
    const created = await fc("migrate", "vms/db-1", "--from", "east", "--to", "west");
    ok(created, "migrate vms/db-1");
    const watch = ferryctlProcess(["--config", config, "plan", "watch", "migrate-vms-db-1"], { cwd: dir });
    // Mid-flight: both VMIMs exist and the source is sending.
    await watch.line(/ vms\/db-1 {2}Migrating .*source VMIM Running/);
    const cancel = await fc("plan", "cancel", "migrate-vms-db-1");
    ok(cancel, "plan cancel");
    expect(cancel.stdout).toMatch(/^plan\/migrate-vms-db-1 cancelled \(phase Cancell(ing|ed)\)\n$/);
    const w = await watch.done;
    expect(w.code).toBe(1);
    expect(w.stderr).toBe("error: plan/migrate-vms-db-1 finished without every VM succeeding\n");
    expect(w.stdout.trimEnd().split("\n").at(-1)).toMatch(/ migrate-vms-db-1 Cancelled: 0\/1 succeeded, 0 running, 0 queued, 0 failed, 1 cancelled$/);
    const plan = json<Plan>(await fc("plan", "get", "migrate-vms-db-1", "-o", "json"));
    expect(plan.phase).toBe("PLAN_PHASE_CANCELLED");
    expect(plan.migrations.map((m) => m.state)).toEqual(["MIGRATION_STATE_CANCELLED"]);
    expect(await vmPhase("east", "db-1")).toBe("Running");
    // Cancelled means both agents confirmed the abort: the receiver VM, its volumes and the VMIM are gone.
    const west = (await kubectl(kubeconfig("west"), ["-n", "vms", "get", "vm,vmi,vmim,dv,pvc", "-o", "name"])).stdout.split("\n");
    expect(west.filter((o) => o.includes("db-1"))).toEqual([]);
    expect(west).toContain("virtualmachine.kubevirt.io/web-1"); // (the listing works)
  });

  it("evacuate west: the dry run places every VM on east and says why; for real, watch exits 0 and west is empty", async () => {
    const westVms = await vmNames("west");
    expect(westVms).toEqual(["web-1", "web-2", "west-app-1", "west-app-2"]);
    const dry = await fc("evacuate", "west", "--dry-run");
    ok(dry, "evacuate --dry-run");
    expect(dry.stdout).toMatch(/^plan\/evacuate-west validated \(dry run, nothing created\): 4 migration\(s\), 0 error\(s\)/);
    for (const vm of westVms) {
      expect(dry.stdout).toMatch(new RegExp(`^evacuate-west/vms/${vm}\\s+Pending\\s+west:vms/${vm}\\s+east:vms/${vm}\\s.*placed on east: \\d+% of its memory free afterwards`, "m"));
    }
    expect((await fc("plan", "get", "evacuate-west")).code).toBe(1); // nothing created

    const ev = await fc("evacuate", "west", "-w");
    ok(ev, "evacuate west -w");
    expect(ev.stdout).toMatch(/^plan\/evacuate-west created: 4 migration\(s\)\n/);
    for (const vm of westVms) expect(ev.stdout).toMatch(new RegExp(` vms/${vm} {2}Succeeded {2}(100% ${SIZE}/${SIZE} {2})?→ east:vms/${vm} `));
    expect(ev.stdout.trimEnd().split("\n").at(-1)).toMatch(/ evacuate-west Succeeded: 4\/4 succeeded/);
    for (const vm of westVms) expect(await vmPhase("east", vm)).toBe("Running");
    expect((await kubectl(kubeconfig("west"), ["-n", "vms", "get", "vmi", "-o", "name"])).stdout).toBe(""); // halted there (evacuate's default source policy)
  });

  it("Ctrl-C: ferry up stops everything and exits 0; no process it started is left", async () => {
    const children = descendants(up.pid!);
    // What it started: nats-server, the broker, one agent per cluster.
    expect(children.filter((c) => /nats-server/.test(c.cmd))).toHaveLength(1);
    expect(children.filter((c) => /broker\/main\.ts/.test(c.cmd))).toHaveLength(1);
    expect(children.filter((c) => /cluster-agent\/main\.ts/.test(c.cmd))).toHaveLength(2);
    up.kill("SIGINT");
    expect(await upExit, upStderr.slice(-3000)).toBe(0);
    expect(upStderr).toMatch(/"signal":"SIGINT","msg":"stopping the stack"/);
    // tsx's esbuild service helpers end when their parent's pipe closes: give them that moment.
    await expect.poll(() => children.filter((c) => alive(c.pid)), { timeout: 10_000, interval: 100 }).toEqual([]);
  });
});
