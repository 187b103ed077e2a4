// `npm run sim -- up` as a subprocess: ready line, working kubeconfigs, control API, clean exit.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { SimControlClient } from "./control-client.js";
import { kubectlPath } from "../scripts/kubectl.js";

// kubectl on PATH, else the pinned one (scripts/ensure-kubectl.mjs): tooling, not ferry code.
const KUBECTL = await kubectlPath();

const root = join(import.meta.dirname, "..");

function start(args: string[]): { proc: ChildProcess; out: () => string; err: () => string; ready: Promise<void>; exit: Promise<number | null> } {
  const proc = spawn("npm", ["run", "--silent", "sim", "--", "up", ...args], { cwd: root, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  proc.stderr.on("data", (d: Buffer) => (err += d.toString()));
  const exit = new Promise<number | null>((r) => proc.once("exit", (code) => r(code)));
  const ready = new Promise<void>((resolve, reject) => {
    proc.stdout.on("data", (d: Buffer) => {
      out += d.toString();
      if (out.includes("ready\n")) resolve();
    });
    void exit.then((code) => reject(new Error(`sim exited ${code} before ready: ${err}`)));
  });
  return { proc, out: () => out, err: () => err, ready, exit };
}

function kubectl(kubeconfig: string, cacheDir: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", cacheDir, ...args], { env: { ...process.env, HOME: cacheDir } }, (e, stdout, stderr) =>
      resolve({ code: e ? 1 : 0, stdout, stderr }),
    ),
  );
}

describe("npm run sim -- up", () => {
  it("prints ready, writes kubeconfigs kubectl uses, serves the control API, and exits 0 on SIGTERM", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "sim-up-"));
    const dir = join(tmp, "state");
    const sim = start(["--clusters", "a,b,c", "--dir", dir, "--time-scale", "20"]);
    try {
      await sim.ready;
      expect(sim.out()).toBe("ready\n");
      const vms = await kubectl(join(dir, "a", "kubeconfig"), tmp, "get", "vm", "-A", "-o", "name");
      expect(vms).toEqual({ code: 0, stdout: ["db-1", "web-1", "web-2"].map((n) => `virtualmachine.kubevirt.io/${n}\n`).join(""), stderr: "" });
      const nodes = await kubectl(join(dir, "c", "kubeconfig"), tmp, "get", "nodes", "-o", "name");
      expect(nodes.stdout).toBe("node/c-node-1\nnode/c-node-2\nnode/c-node-3\n");
      const ctl = SimControlClient.fromDir(dir);
      expect((await ctl.clusters()).map((c) => c.name)).toEqual(["a", "b", "c"]);
      const m = await ctl.metrics("a");
      expect(m.requests.list?.virtualmachines).toBeGreaterThanOrEqual(1);
    } finally {
      sim.proc.kill("SIGTERM");
    }
    expect(await sim.exit).toBe(0);
    expect(sim.err()).toContain("SIGTERM, stopping");
  });

  it("stops on SIGINT too, and serves plain HTTP with --http", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "sim-up-"));
    const sim = start(["--clusters", "1", "--dir", tmp, "--http", "--empty"]);
    try {
      await sim.ready;
      const r = await kubectl(join(tmp, "a", "kubeconfig"), tmp, "get", "ns");
      expect(r).toEqual({ code: 0, stdout: "", stderr: "No resources found\n" });
    } finally {
      sim.proc.kill("SIGINT");
    }
    expect(await sim.exit).toBe(0);
  });

  it("rejects a bad scenario file with the field named, before starting anything", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "sim-up-"));
    const file = join(tmp, "bad.yaml");
    writeFileSync(file, "clusters:\n  a:\n    vms:\n      - {name: x, memory: plenty}\n");
    const sim = start(["--scenario", file, "--dir", tmp]);
    await expect(sim.ready).rejects.toThrow();
    expect(await sim.exit).toBe(2);
    expect(sim.err()).toContain("clusters.a.vms[0].memory");
  });
});
