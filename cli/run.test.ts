// run(): an error ferryctl has no explanation for (here stdout failing under it) is one line on
// stderr, exit 1; the stack trace only with --debug or FERRY_DEBUG.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, describe, expect, it } from "vitest";
import type { Io } from "./program.js";
import { run } from "./run.js";

const dir = mkdtempSync(join(tmpdir(), "ferryctl-run-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const plan = join(dir, "plan.yaml");
writeFileSync(plan, "apiVersion: ferry.dev/v1alpha1\nkind: MigrationPlan\nmetadata: {name: p}\nspec:\n  source: {cluster: east}\n  vms: [{namespace: db, name: pg-0}]\n  target: {cluster: west}\n");

/** `plan apply --dry-run=client` (no broker involved) with a stdout whose every write throws. */
async function withBrokenStdout(extraArgs: string[], env: NodeJS.ProcessEnv) {
  let stderr = "";
  const io: Io = {
    stdout: new Writable({ write: () => undefined }) as Io["stdout"],
    stderr: new Writable({
      write(c: Buffer, _e, cb) {
        stderr += c.toString();
        cb();
      },
    }),
    env,
    cwd: dir,
    now: () => new Date(),
    readStdin: () => "",
  };
  io.stdout.write = () => {
    throw new Error("write EPIPE\nsecond line of the message");
  };
  const code = await run([...extraArgs, "plan", "apply", "-f", plan, "--dry-run=client"], io);
  return { code, stderr };
}

describe("run: unexpected errors", () => {
  it("print one line naming the error and how to see the stack trace; exit 1", async () => {
    const r = await withBrokenStdout([], {});
    expect(r.code).toBe(1);
    expect(r.stderr).toBe("error: write EPIPE (unexpected; rerun with --debug or FERRY_DEBUG=1 for the stack trace)\n");
    expect((await withBrokenStdout([], { FERRY_DEBUG: "0" })).stderr).toBe(r.stderr);
  });

  it.each([
    ["--debug", [["--debug"], {}]],
    ["FERRY_DEBUG=1", [[], { FERRY_DEBUG: "1" }]],
  ] as const)("with %s the stack trace follows the line", async (_, [args, env]) => {
    const r = await withBrokenStdout([...args], { ...env });
    expect(r.code).toBe(1);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe("error: write EPIPE");
    expect(lines[1]).toBe("Error: write EPIPE");
    expect(lines.some((l) => /^ {4}at .*program\.ts:\d+/.test(l))).toBe(true);
  });
});
