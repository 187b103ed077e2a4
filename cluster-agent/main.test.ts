// The process entry: help, usage errors and configuration errors, with their exit codes.
import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const run = (args: string[], env: Record<string, string> = {}) =>
  spawnSync(process.execPath, ["--import", "tsx", join(REPO, "cluster-agent/main.ts"), ...args], { cwd: REPO, encoding: "utf8", env: { PATH: process.env["PATH"] ?? "", ...env }, timeout: 60_000 });

describe("npm run agent", () => {
  it("--help lists every flag with its environment variable and exits 0", () => {
    const r = run(["--help"]);
    expect(r.status).toBe(0);
    for (const s of ["--cluster", "FERRY_CLUSTER", "--kubeconfig", "--in-cluster", "--broker", "FERRY_BOOTSTRAP_TOKEN_FILE", "FERRY_BOOTSTRAP_TOKEN", "--http-listen", "Exit codes"]) expect(r.stdout).toContain(s);
  });

  it("a usage error exits 2 naming what to set; an invalid value exits 1 naming the field and its source", () => {
    const usage = run(["--cluster", "east"]);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/missing required settings:[\s\S]*--broker <host:port>/);
    const bad = run(["--in-cluster", "--broker", "b:7443"], { FERRY_CLUSTER: "East!" });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/cluster: .*DNS-1123 label.*\(from env FERRY_CLUSTER\)/);
  });
});
