// The committed proto/gen must be exactly what buf + ts-proto generate from the .proto files, and
// the .proto files must pass buf lint (STANDARD) and buf format.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

const protoDir = import.meta.dirname;
const bin = join(protoDir, "..", "node_modules", ".bin");
// buf finds the local protoc-gen-ts_proto plugin on PATH.
const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` };

function buf(...args: string[]): string {
  return execFileSync(join(bin, "buf"), args, { cwd: protoDir, env, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function files(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) {
      const path = join(entry.parentPath, entry.name);
      out.set(relative(dir, path), readFileSync(path, "utf8"));
    }
  }
  return out;
}

describe("proto codegen", () => {
  const tmp = mkdtempSync(join(tmpdir(), "ferry-proto-gen-"));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("committed proto/gen matches a fresh buf generate (run `npm run proto:gen` if not)", () => {
    buf("generate", "--output", tmp);
    const fresh = files(join(tmp, "gen"));
    const committed = files(join(protoDir, "gen"));
    expect([...committed.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [path, text] of fresh) expect(committed.get(path), `proto/gen/${path} is stale`).toBe(text);
  });

  it("passes buf lint and buf format", () => {
    expect(buf("lint")).toBe("");
    expect(buf("format", "--diff", "--exit-code")).toBe("");
  });
});
