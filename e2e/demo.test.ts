// `npm run demo` end to end: real broker, agents, NATS and simulated clusters; every migration of the
// three plans (cross-cluster live, same-cluster storage, evacuation) must succeed within its bound,
// and the output must have shown each VM's progress while it moved.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { REPO } from "../stack/stack.js";

describe("npm run demo", () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-demo-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("moves every VM and exits 0 with a summary", async () => {
    const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "stack/demo.ts"), "--dir", dir, "--timeout", "110"], { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code, `demo exited ${code}:\n${stdout.split("\n").slice(-25).join("\n")}\n--- stderr\n${stderr.slice(-2000)}`).toBe(0);
    expect(stdout).toMatch(/^demo OK: 6 migrations succeeded$/m);
    for (const plan of ["demo-cross", "demo-storage", "demo-evacuate"]) expect(stdout).toMatch(new RegExp(`^plan ${plan}\\s+Succeeded\\s`, "m"));
    // Summary lines name each VM with where it went.
    expect(stdout).toMatch(/east\/vms\/web-1 +Succeeded +(100% [\d.]+ [KMGT]?i?B\/[\d.]+ [KMGT]?i?B +)?→ west:vms\/web-1/);
    expect(stdout).toMatch(/east\/vms\/web-3 +Succeeded/);
    expect(stdout).toMatch(/kubectl --kubeconfig \S+\/kubeconfig-west get vm,vmim -A/);

    // Live progress while each stage ran (not only the summary): every VM was shown Migrating — by
    // KubeVirt's decentralized migration, or the storage migration within east — before it Succeeded.
    const section = (from: string, to: string) => stdout.slice(stdout.indexOf(from), stdout.indexOf(to));
    const stage1 = section("\n== east → west", "\n== evacuate north");
    const stage2 = section("\n== evacuate north", "\n== summary");
    const live = (text: string, vm: string, migrating: RegExp) => {
      const lines = text.split("\n");
      const first = lines.findIndex((l) => migrating.test(l));
      const done = lines.findIndex((l) => new RegExp(`^ {2}\\w+/${vm} {2}Succeeded `).test(l));
      expect(first, `no live line for ${vm} in:\n${text}`).toBeGreaterThanOrEqual(0);
      expect(done, `no Succeeded line for ${vm} in:\n${text}`).toBeGreaterThan(first);
    };
    // A line may carry the copy's progress ("37% 4.4 GiB/12 GiB  1.7 GiB/s  ETA 0:05") once the agent has read it.
    const copy = "(\\d+% [\\d.]+ [KMGT]?i?B/[\\d.]+ [KMGT]?i?B( {2}[\\d.]+ [KMGT]?i?B/s)?( {2}ETA [\\d:]+)? {2})?";
    for (const vm of ["web-1", "web-2", "db-1"]) live(stage1, `vms/${vm}`, new RegExp(`^ {2}east/vms/${vm} {2}Migrating {2}${copy}→ west:vms/${vm} {2}KubeVirt is migrating: `));
    live(stage1, "vms/web-3", new RegExp(`^ {2}east/vms/web-3 {2}Migrating {2}${copy}→ east:vms/web-3 {2}storage live migration on east: `));
    for (const vm of ["north-app-1", "north-app-2"]) live(stage2, `vms/${vm}`, new RegExp(`^ {2}north/vms/${vm} {2}Migrating {2}${copy}→ (east|west):vms/${vm} {2}KubeVirt is migrating: `));
  }, 170_000);
});
