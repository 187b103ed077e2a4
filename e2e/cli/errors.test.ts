// How `npm run demo` and `npm run ferry -- up` fail, as processes: --help, a usage error (one line,
// exit 2), nats-server missing or failing at start-up (one line with what to do, exit 1, no stack
// trace; the whole error only on request). ferryctl's own unexpected-error line: cli/run.test.ts.
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { collect, type RunResult } from "../../cli/testing.js";
import { REPO } from "../../stack/stack.js";

const tmp = mkdtempSync(join(tmpdir(), "ferry-errors-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A nats-server that dies at start-up, saying why (as a real one does when its port is taken).
const brokenNats = join(tmp, "nats-server");
writeFileSync(brokenNats, "#!/bin/sh\necho 'nats-server: listen tcp 127.0.0.1:4222: address already in use' >&2\nexit 1\n");
chmodSync(brokenNats, 0o755);

function run(script: "demo" | "main", args: string[], env: NodeJS.ProcessEnv = {}): Promise<RunResult> {
  return collect(spawn(process.execPath, ["--import", "tsx", join(REPO, `stack/${script}.ts`), ...args], { cwd: REPO, env: { ...process.env, FERRY_DEBUG: "", ...env }, stdio: ["ignore", "pipe", "pipe"] }));
}

const STACK_TRACE = /^\s+at /m;

describe("npm run demo", () => {
  it("--help prints the usage and exits 0", async () => {
    const r = await run("demo", ["--help"]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout).toMatch(/^usage: npm run demo \[-- options\]\n/);
    for (const option of ["--keep", "--dir <dir>", "--time-scale <x>", "--timeout <s>", "--verbose", "-h, --help"]) expect(r.stdout).toContain(`  ${option} `);
  });

  it.each([
    [["--kep"], "demo: Unknown option '--kep'; see npm run demo -- --help\n"],
    [["now"], "demo: Unexpected argument 'now'; see npm run demo -- --help\n"],
    [["--timeout", "soon"], "demo: --timeout must be a positive number of seconds, not soon; see npm run demo -- --help\n"],
  ])("%j is a one-line usage error, exit 2", async (args, line) => {
    const r = await run("demo", args);
    expect(r).toEqual({ code: 2, stdout: "", stderr: line });
  });

  it("nats-server missing and not installable: one line with the fix, exit 1, nothing started", async () => {
    const r = await run("demo", ["--dir", join(tmp, "demo-missing")], { NATS_SERVER_BIN: join(tmp, "no-such-nats-server") });
    expect(r).toEqual({ code: 1, stdout: "", stderr: `demo: NATS_SERVER_BIN=${join(tmp, "no-such-nats-server")} is not an executable file; fix it or unset it\n` });
  });

  it("the stack fails to start: one line naming the piece and where to look, exit 1; --verbose adds the whole error", async () => {
    const dir = join(tmp, "demo-broken");
    const r = await run("demo", ["--dir", dir], { NATS_SERVER_BIN: brokenNats });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`demo: the stack did not start: nats-server n0 exited with code 1 at start-up; rerun with --verbose for the whole error, and see the process logs in ${join(dir, "logs")}\n`);
    expect(r.stdout).not.toMatch(STACK_TRACE);

    const verbose = await run("demo", ["--dir", dir, "--verbose"], { NATS_SERVER_BIN: brokenNats });
    expect(verbose.code).toBe(1);
    expect(verbose.stderr).toContain("demo: the stack did not start: nats-server n0 exited with code 1 at start-up; the whole error follows");
    expect(verbose.stderr).toContain("address already in use"); // nats-server's own words, from its log
  });
});

describe("npm run ferry -- up", () => {
  it("the stack fails to start: a line naming the piece, not a JSON log line; exit 1; FERRY_DEBUG=1 adds the whole error", async () => {
    const dir = join(tmp, "up-broken");
    const r = await run("main", ["up", "--dir", dir, "--log-level", "warn"], { NATS_SERVER_BIN: brokenNats });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe("");
    expect(r.stderr).toBe(`ferry: the stack did not start: nats-server n0 exited with code 1 at start-up; rerun with FERRY_DEBUG=1 for the whole error, and see the process logs in ${join(dir, "logs")}\n`);

    const debug = await run("main", ["up", "--dir", dir, "--log-level", "warn"], { NATS_SERVER_BIN: brokenNats, FERRY_DEBUG: "1" });
    expect(debug.code).toBe(1);
    const lines = debug.stderr.split("\n");
    expect(lines[0]).toMatch(/^ferry: the stack did not start: nats-server n0 exited with code 1 at start-up; /);
    expect(debug.stderr).toContain("address already in use");
    expect(debug.stderr).toMatch(STACK_TRACE);
  });

  it.each([
    [["down"], "ferry: unknown command down; see npm run ferry -- --help\n"],
    [[], "ferry: missing command: up; see npm run ferry -- --help\n"],
    [["up", "--cluster", "a"], "ferry: Unknown option '--cluster'; see npm run ferry -- --help\n"],
    [["up", "--clusters", "East"], "ferry: --clusters: East must be lowercase RFC 1123 labels; see npm run ferry -- --help\n"],
    [["up", "--brokers", "3"], "ferry: --brokers must be 1 or 2, not 3; see npm run ferry -- --help\n"],
  ])("%j is a one-line usage error, exit 2", async (args, line) => {
    const r = await run("main", args);
    expect(r).toEqual({ code: 2, stdout: "", stderr: line });
  });

  it("--help prints the usage and exits 0", async () => {
    const r = await run("main", ["--help"]);
    expect(r).toMatchObject({ code: 0, stderr: "" });
    expect(r.stdout).toMatch(/^usage: npm run ferry -- up \[options\]\n/);
    for (const option of ["--clusters <a,b,c>", "--dir <dir>", "--scenario <s>", "--brokers <1|2>", "--time-scale <x>", "--log-level <level>"]) expect(r.stdout).toContain(`  ${option} `);
  });
});
