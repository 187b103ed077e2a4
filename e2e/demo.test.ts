// `npm run demo` end to end: real broker, agents, NATS and simulated clusters; every migration of the
// three plans (cross-cluster live, same-cluster storage, evacuation) must succeed within its bound.
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
    expect(stdout).toMatch(/east\/vms\/web-1 +Succeeded +→ west:vms\/web-1/);
    expect(stdout).toMatch(/east\/vms\/web-3 +Succeeded/);
    expect(stdout).toMatch(/kubectl --kubeconfig \S+\/kubeconfig-west get vm,vmim -A/);
  }, 170_000);
});
