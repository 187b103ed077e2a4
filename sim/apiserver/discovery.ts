// Discovery documents built from the resource table: the legacy ones (/api, /apis, /api/v1,
// /apis/<g>, /apis/<g>/<v>) and aggregated discovery (apidiscovery.k8s.io/v2, what kubectl 1.32
// asks for first), plus /version.
import { createHash } from "node:crypto";
import { type ResourceType, resourceTypes } from "./resources.js";

const VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];
const STATUS_VERBS = ["get", "patch", "update"];
const READ_VERBS = ["get", "list", "watch"];
/** kube-apiserver's verbs for pods/proxy (one per HTTP method it forwards). */
const PROXY_VERBS = ["create", "delete", "get", "patch", "update"];
const verbsOf = (rt: ResourceType) => (rt.readOnly ? READ_VERBS : VERBS);
const statusVerbsOf = (rt: ResourceType) => (rt.readOnly ? ["get"] : STATUS_VERBS);

export interface GroupVersion {
  group: string;
  version: string;
  resources: ResourceType[];
}

export function groupVersions(types: readonly ResourceType[] = resourceTypes): GroupVersion[] {
  const byGv = new Map<string, GroupVersion>();
  for (const rt of types) {
    const key = `${rt.group}/${rt.version}`;
    let gv = byGv.get(key);
    if (!gv) byGv.set(key, (gv = { group: rt.group, version: rt.version, resources: [] }));
    gv.resources.push(rt);
  }
  return [...byGv.values()];
}

const gvString = (g: string, v: string) => (g ? `${g}/${v}` : v);

function storageVersionHash(rt: ResourceType): string {
  return createHash("sha256").update(`${rt.group}/${rt.version}/${rt.kind}`).digest("base64").slice(0, 11);
}

export function apiVersions(serverAddress: string): Record<string, unknown> {
  return {
    kind: "APIVersions",
    versions: ["v1"],
    serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }],
  };
}

function apiGroup(group: string, gvs: GroupVersion[]): Record<string, unknown> {
  const versions = gvs.filter((gv) => gv.group === group).map((gv) => ({ groupVersion: gvString(group, gv.version), version: gv.version }));
  return { name: group, versions, preferredVersion: versions[0] };
}

export function apiGroupList(gvs: GroupVersion[]): Record<string, unknown> {
  const groups = [...new Set(gvs.filter((gv) => gv.group !== "").map((gv) => gv.group))];
  return { kind: "APIGroupList", apiVersion: "v1", groups: groups.map((g) => apiGroup(g, gvs)) };
}

export function apiGroupDoc(group: string, gvs: GroupVersion[]): Record<string, unknown> | undefined {
  if (!gvs.some((gv) => gv.group === group)) return undefined;
  return { kind: "APIGroup", apiVersion: "v1", ...apiGroup(group, gvs) };
}

export function apiResourceList(gv: GroupVersion): Record<string, unknown> {
  const resources: Record<string, unknown>[] = [];
  for (const rt of gv.resources) {
    resources.push({
      name: rt.plural,
      singularName: rt.singular,
      namespaced: rt.namespaced,
      kind: rt.kind,
      verbs: verbsOf(rt),
      ...(rt.shortNames ? { shortNames: rt.shortNames } : {}),
      ...(rt.categories ? { categories: rt.categories } : {}),
      storageVersionHash: storageVersionHash(rt),
    });
    if (rt.statusSubresource) {
      resources.push({ name: `${rt.plural}/status`, singularName: "", namespaced: rt.namespaced, kind: rt.kind, verbs: statusVerbsOf(rt) });
    }
    if (rt.proxySubresource) {
      resources.push({ name: `${rt.plural}/proxy`, singularName: "", namespaced: rt.namespaced, kind: `${rt.kind}ProxyOptions`, verbs: PROXY_VERBS });
    }
  }
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: gvString(gv.group, gv.version), resources };
}

export const AGGREGATED_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
export const AGGREGATED_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList";

/** Aggregated discovery for `/api` (legacy: true) or `/apis`. */
export function aggregatedDiscovery(gvs: GroupVersion[], legacy: boolean, apiVersion: "v2" | "v2beta1"): Record<string, unknown> {
  const wanted = gvs.filter((gv) => (gv.group === "") === legacy);
  const groups = [...new Set(wanted.map((gv) => gv.group))];
  return {
    kind: "APIGroupDiscoveryList",
    apiVersion: `apidiscovery.k8s.io/${apiVersion}`,
    metadata: {},
    items: groups.map((g) => ({
      metadata: { name: g, creationTimestamp: null },
      versions: wanted
        .filter((gv) => gv.group === g)
        .map((gv) => ({
          version: gv.version,
          resources: gv.resources.map((rt) => ({
            resource: rt.plural,
            responseKind: { group: rt.group, version: rt.version, kind: rt.kind },
            scope: rt.namespaced ? "Namespaced" : "Cluster",
            singularResource: rt.singular,
            verbs: verbsOf(rt),
            ...(rt.shortNames ? { shortNames: rt.shortNames } : {}),
            ...(rt.categories ? { categories: rt.categories } : {}),
            ...(rt.statusSubresource || rt.proxySubresource
              ? {
                  subresources: [
                    ...(rt.proxySubresource ? [{ subresource: "proxy", responseKind: { group: "", version: "", kind: `${rt.kind}ProxyOptions` }, verbs: PROXY_VERBS }] : []),
                    ...(rt.statusSubresource ? [{ subresource: "status", responseKind: { group: rt.group, version: rt.version, kind: rt.kind }, verbs: statusVerbsOf(rt) }] : []),
                  ],
                }
              : {}),
          })),
          freshness: "Current",
        })),
    })),
  };
}

export const SERVER_VERSION = {
  major: "1",
  minor: "32",
  gitVersion: "v1.32.4-ferry-sim",
  gitCommit: "0000000000000000000000000000000000000000",
  gitTreeState: "clean",
  buildDate: "2026-01-01T00:00:00Z",
  goVersion: "go1.23.8",
  compiler: "gc",
  platform: "linux/amd64",
};
