// OpenAPI v3, only as far as kubectl needs it: `kubectl apply/create/replace` check that each
// kind's PATCH operation lists the `fieldValidation` parameter (then they leave validation to the
// server). No component schemas are published: kubectl then computes strategic merge patches for
// built-in kinds from its compiled-in types, exactly as kube's own schemas would make it do, and
// uses JSON merge patch for custom resources as always. OpenAPI v2 is not served (kubectl asks for
// it as protobuf and copes with 404).
import { createHash } from "node:crypto";
import type { GroupVersion } from "./discovery.js";
import { SERVER_VERSION } from "./discovery.js";

const gvPath = (gv: GroupVersion) => (gv.group ? `apis/${gv.group}/${gv.version}` : `api/${gv.version}`);

export function openApiV3Index(gvs: GroupVersion[]): Record<string, unknown> {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const gv of gvs) {
    const hash = createHash("sha512").update(JSON.stringify(openApiV3GroupVersion(gvs, gvPath(gv)))).digest("hex").toUpperCase().slice(0, 128);
    paths[gvPath(gv)] = { serverRelativeURL: `/openapi/v3/${gvPath(gv)}?hash=${hash}` };
  }
  return { paths };
}

const param = (name: string, type: string, description: string) => ({ name, in: "query", description, schema: { type, uniqueItems: true } });
const WRITE_PARAMS = [
  param("dryRun", "string", "When present, indicates that modifications should not be persisted. Valid value: All"),
  param("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes."),
  param("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values: Ignore, Warn, Strict."),
];

export function openApiV3GroupVersion(gvs: GroupVersion[], path: string): Record<string, unknown> | undefined {
  const gv = gvs.find((g) => gvPath(g) === path);
  if (!gv) return undefined;
  const paths: Record<string, unknown> = {};
  for (const rt of gv.resources) {
    const gvk = { group: rt.group, version: rt.version, kind: rt.kind };
    const base = `/${gvPath(gv)}${rt.namespaced ? "/namespaces/{namespace}" : ""}/${rt.plural}`;
    const nameParam = { name: "name", in: "path", required: true, schema: { type: "string", uniqueItems: true } };
    const nsParam = rt.namespaced ? [{ name: "namespace", in: "path", required: true, schema: { type: "string", uniqueItems: true } }] : [];
    const op = (action: string, extra: unknown[] = []) => ({
      operationId: `${action}${rt.kind}`,
      parameters: [...WRITE_PARAMS, ...extra],
      responses: { "200": { description: "OK" } },
      "x-kubernetes-action": action,
      "x-kubernetes-group-version-kind": gvk,
    });
    paths[base] = { parameters: nsParam, get: { ...op("list"), parameters: [] }, post: op("post") };
    paths[`${base}/{name}`] = {
      parameters: [nameParam, ...nsParam],
      get: { ...op("get"), parameters: [] },
      put: op("put"),
      patch: op("patch", [param("force", "boolean", "Force is going to \"force\" Apply requests.")]),
      delete: { ...op("delete"), parameters: [param("dryRun", "string", "Valid value: All")] },
    };
  }
  return {
    openapi: "3.0.0",
    info: { title: "Kubernetes", version: SERVER_VERSION.gitVersion },
    paths,
    components: { schemas: {} },
  };
}
