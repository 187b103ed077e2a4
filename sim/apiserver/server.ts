// The HTTP(S) front of one simulated cluster: the Kubernetes REST protocol over its Store, enough
// of it that @kubernetes/client-node and kubectl work unchanged. Bearer-token authentication,
// discovery, CRUD, JSON/merge/strategic patch, server-side apply, status subresource, selectors,
// pagination, watch (NDJSON, bookmarks, 410 Expired), kubectl tables, and the fault-injection and
// request-log hooks the control API drives. See sim/README.md ("Simplifications") for what differs.
import http from "node:http";
import https from "node:https";
import type { AddressInfo } from "node:net";
import YAML from "yaml";
import type { SimCluster } from "../cluster.js";
import { ClusterFaults, RequestLog, type RequestInfo, type Verb } from "../faults.js";
import {
  AGGREGATED_V2,
  AGGREGATED_V2BETA1,
  SERVER_VERSION,
  aggregatedDiscovery,
  apiGroupDoc,
  apiGroupList,
  apiResourceList,
  apiVersions,
  groupVersions,
} from "./discovery.js";
import { ApiError, notFound } from "./errors.js";
import { cellOf, kindInfo } from "./kinds.js";
import { openApiV3Index, openApiV3GroupVersion } from "./openapi.js";
import { PROTOBUF, decodeProtobuf } from "./protobuf.js";
import { badRequest, jsonPatch, mergePatch, serverSideApply, strategicMergePatch } from "./patch.js";
import { type ResourceType, apiVersionOf, resourceByPath } from "./resources.js";
import type { DeleteOptions, KObject, PropagationPolicy } from "./store.js";
import type { ServingCert } from "./tls.js";

export interface ApiServerOptions {
  cluster: SimCluster;
  /** Serve HTTPS with this certificate; plain HTTP when absent. */
  tls?: ServingCert;
  host?: string;
  /** 0 (default): any free port. */
  port?: number;
  faults?: ClusterFaults;
  log?: RequestLog;
  /** Real milliseconds between BOOKMARK events on watches that allow them. Default: 60 simulated
   *  seconds (kube-apiserver's cadence), kept between 1 s and 60 s of real time. */
  bookmarkIntervalMs?: number;
}

type Format =
  | { kind: "json" }
  | { kind: "table"; version: "v1" | "v1beta1" }
  | { kind: "partial"; version: "v1" | "v1beta1" };

interface ActiveWatch {
  res: http.ServerResponse;
  close(): void;
}

const MAX_BODY = 3 * 1024 * 1024;
const JSON_TYPE = "application/json";
const NAME_COLUMN = {
  name: "Name",
  type: "string",
  format: "name",
  description: "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
  priority: 0,
};
const PATCH_TYPES = ["application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"];

const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

class HttpError extends ApiError {}
const notFoundPath = () => new HttpError(404, "NotFound", "the server could not find the requested resource");
const methodNotAllowed = (what: string) => new HttpError(405, "MethodNotAllowed", `the server does not allow this method on the requested resource (${what})`);

export class ApiServer {
  readonly faults: ClusterFaults;
  readonly log: RequestLog;
  private readonly server: http.Server;
  private readonly watches = new Set<ActiveWatch>();
  private readonly gvs = groupVersions();
  private address = "";

  constructor(private readonly opts: ApiServerOptions) {
    this.faults = opts.faults ?? new ClusterFaults();
    this.log = opts.log ?? new RequestLog();
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => void this.handle(req, res);
    this.server = opts.tls ? https.createServer({ key: opts.tls.keyPem, cert: opts.tls.certPem }, handler) : http.createServer(handler);
    this.server.keepAliveTimeout = 65_000;
  }

  get cluster(): SimCluster {
    return this.opts.cluster;
  }

  /** `https://127.0.0.1:<port>` (or http). Valid after start(). */
  get url(): string {
    return this.address;
  }

  get openWatches(): number {
    return this.watches.size;
  }

  async start(): Promise<string> {
    const host = this.opts.host ?? "127.0.0.1";
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.opts.port ?? 0, host, () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    const { port } = this.server.address() as AddressInfo;
    const h = host.includes(":") ? `[${host}]` : host;
    this.address = `${this.opts.tls ? "https" : "http"}://${h}:${port}`;
    return this.address;
  }

  async stop(): Promise<void> {
    this.dropWatches();
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  /** Ends every open watch stream (clients see the connection close and re-watch). */
  dropWatches(): number {
    const n = this.watches.size;
    for (const w of [...this.watches]) w.close();
    return n;
  }

  // ---- request handling ------------------------------------------------------------------------

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://sim");
    const path = url.pathname.replace(/\/+$/, "") || "/";
    let info: RequestInfo = { verb: "get", group: "", resource: "", path };
    let injected = false;
    try {
      if (path === "/healthz" || path === "/livez" || path === "/readyz") {
        res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" }).end("ok");
        return;
      }
      const auth = req.headers.authorization;
      // Over plain HTTP kubectl sends no credentials at all (client-go only uses them over TLS), so
      // HTTP mode accepts anonymous requests like kube-apiserver's old insecure port; a wrong token
      // is refused either way.
      const anonymousOk = !this.opts.tls && auth === undefined;
      if (auth !== `Bearer ${this.opts.cluster.opts.token}` && !anonymousOk) throw new ApiError(401, "Unauthorized", "Unauthorized");

      const route = this.route(req.method ?? "GET", path, url.searchParams);
      info = route.info;
      const { delayMs, error } = this.faults.take(info);
      if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
      if (error) {
        injected = true;
        throw error;
      }
      if (route.kind === "nonresource") {
        this.serveNonResource(req, res, path);
      } else if (route.kind === "proxy") {
        await this.serveProxy(req, res, route);
      } else {
        await this.serveResource(req, res, route, url.searchParams);
      }
    } catch (e) {
      this.sendError(res, e);
    } finally {
      if (info.path !== "/healthz" && info.path !== "/livez" && info.path !== "/readyz") {
        const log = () =>
          this.log.record({
            verb: info.verb,
            resource: info.resource,
            group: info.group,
            ...(info.subresource ? { subresource: info.subresource } : {}),
            ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
            ...(info.name !== undefined ? { name: info.name } : {}),
            path: info.path,
            code: res.statusCode,
            ...(injected ? { injected } : {}),
            ...(req.headers["user-agent"] ? { userAgent: req.headers["user-agent"] } : {}),
          });
        if (res.headersSent) log();
        else res.once("finish", log);
      }
    }
  }

  private sendError(res: http.ServerResponse, e: unknown): void {
    const err = e instanceof ApiError ? e : new ApiError(500, "InternalError", `Internal error occurred: ${e instanceof Error ? e.message : String(e)}`);
    if (res.headersSent) {
      res.end();
      return;
    }
    const headers: Record<string, string> = { "Content-Type": JSON_TYPE, "Cache-Control": "no-cache, private" };
    if (err.details?.retryAfterSeconds !== undefined) headers["Retry-After"] = String(err.details.retryAfterSeconds);
    res.writeHead(err.code, headers).end(JSON.stringify(err.toStatus()));
  }

  private send(res: http.ServerResponse, code: number, body: unknown, contentType = JSON_TYPE): void {
    res.writeHead(code, { "Content-Type": contentType, "Cache-Control": "no-cache, private" }).end(JSON.stringify(body));
  }

  // ---- routing ---------------------------------------------------------------------------------

  private route(method: string, path: string, q: URLSearchParams): Route {
    const segs = path.split("/").slice(1).map(decodeURIComponent);
    const nonResource = (): Route => {
      if (method !== "GET") throw methodNotAllowed(path);
      return { kind: "nonresource", info: { verb: "get", group: "", resource: "", path } };
    };
    let group: string;
    let version: string;
    let rest: string[];
    if (segs[0] === "api") {
      if (segs.length <= 2) return nonResource();
      group = "";
      version = segs[1]!;
      rest = segs.slice(2);
    } else if (segs[0] === "apis") {
      if (segs.length <= 3) return nonResource();
      group = segs[1]!;
      version = segs[2]!;
      rest = segs.slice(3);
    } else {
      return nonResource();
    }
    let watchPath = false;
    if (rest[0] === "watch") {
      watchPath = true;
      rest = rest.slice(1);
    }
    let namespace: string | undefined;
    if (rest[0] === "namespaces" && rest.length >= 3 && !(rest.length === 3 && (rest[2] === "status" || rest[2] === "finalize"))) {
      namespace = rest[1]!;
      rest = rest.slice(2);
    }
    const [plural, name, subresource, ...extra] = rest;
    const rt = plural ? resourceByPath(group, version, plural) : undefined;
    if (rt?.proxySubresource && subresource === "proxy" && name !== undefined && namespace !== undefined && !watchPath) {
      // pods/<[scheme:]name[:port]>/proxy/<path>: RBAC verb from the method, like kube-apiserver's RequestInfo.
      const verb: Verb = PROXY_VERB[method] ?? "get";
      return { kind: "proxy", rt, target: name, method, path: `/${extra.join("/")}`, info: { verb, group, resource: rt.plural, subresource: "proxy", namespace, name, path } };
    }
    if (!rt || extra.length || (namespace !== undefined && !rt.namespaced)) throw notFoundPath();
    if (subresource !== undefined && !(subresource === "status" && rt.statusSubresource)) throw notFoundPath();
    const isWatch = watchPath || q.get("watch") === "true" || q.get("watch") === "1";
    let verb: Verb;
    switch (method) {
      case "GET":
        verb = isWatch ? "watch" : name !== undefined ? "get" : "list";
        break;
      case "POST":
        if (name !== undefined) throw methodNotAllowed(`post ${rt.plural}`);
        verb = "create";
        break;
      case "PUT":
        if (name === undefined) throw methodNotAllowed(`put ${rt.plural}`);
        verb = "update";
        break;
      case "PATCH":
        if (name === undefined) throw methodNotAllowed(`patch ${rt.plural}`);
        verb = "patch";
        break;
      case "DELETE":
        verb = name !== undefined ? "delete" : "deletecollection";
        break;
      default:
        throw methodNotAllowed(`${method} ${rt.plural}`);
    }
    if (subresource && !["get", "update", "patch"].includes(verb)) throw methodNotAllowed(`${verb} ${rt.plural}/${subresource}`);
    if (rt.readOnly && !["get", "list", "watch"].includes(verb)) {
      throw new HttpError(405, "MethodNotAllowed", `the simulated API server serves ${rt.plural} read-only (get, list, watch): they mirror the virt-launcher and virt-handler pods the KubeVirt simulation runs (${verb} ${rt.plural})`);
    }
    if (rt.namespaced && namespace === undefined && name !== undefined) throw notFoundPath();
    if (rt.namespaced && namespace === undefined && (verb === "create" || verb === "deletecollection")) throw methodNotAllowed(`${verb} ${rt.plural}`);
    return {
      kind: "resource",
      rt,
      watchName: isWatch ? name : undefined,
      info: {
        verb,
        group,
        resource: rt.plural,
        ...(subresource ? { subresource } : {}),
        ...(namespace !== undefined ? { namespace } : {}),
        ...(name !== undefined ? { name } : {}),
        path,
      },
    };
  }

  private serveNonResource(req: http.IncomingMessage, res: http.ServerResponse, path: string): void {
    const accept = req.headers.accept ?? "";
    const aggregated = accept.includes("as=APIGroupDiscoveryList") ? (/v=v2(?![a-z0-9])/.test(accept) ? "v2" : accept.includes("v=v2beta1") ? "v2beta1" : undefined) : undefined;
    const host = req.headers.host ?? "127.0.0.1";
    if (path === "/api") {
      if (aggregated) return this.send(res, 200, aggregatedDiscovery(this.gvs, true, aggregated), aggregated === "v2" ? AGGREGATED_V2 : AGGREGATED_V2BETA1);
      return this.send(res, 200, apiVersions(host));
    }
    if (path === "/apis") {
      if (aggregated) return this.send(res, 200, aggregatedDiscovery(this.gvs, false, aggregated), aggregated === "v2" ? AGGREGATED_V2 : AGGREGATED_V2BETA1);
      return this.send(res, 200, apiGroupList(this.gvs));
    }
    if (path === "/version") return this.send(res, 200, SERVER_VERSION);
    const segs = path.split("/").slice(1);
    if (segs[0] === "api" && segs.length === 2) {
      const gv = this.gvs.find((g) => g.group === "" && g.version === segs[1]);
      if (gv) return this.send(res, 200, apiResourceList(gv));
    }
    if (segs[0] === "apis" && segs.length === 2) {
      const doc = apiGroupDoc(segs[1]!, this.gvs);
      if (doc) return this.send(res, 200, doc);
    }
    if (segs[0] === "apis" && segs.length === 3) {
      const gv = this.gvs.find((g) => g.group === segs[1] && g.version === segs[2]);
      if (gv) return this.send(res, 200, apiResourceList(gv));
    }
    if (path === "/openapi/v3") return this.send(res, 200, openApiV3Index(this.gvs));
    if (segs[0] === "openapi" && segs[1] === "v3" && segs.length > 2) {
      const doc = openApiV3GroupVersion(this.gvs, segs.slice(2).join("/"));
      if (doc) return this.send(res, 200, doc);
    }
    throw notFoundPath();
  }

  // ---- pods/proxy ------------------------------------------------------------------------------

  /**
   * kube-apiserver's pod proxy (pkg/registry/core/pod/strategy.go ResourceLocation): the id is
   * `name`, `name:port` or `scheme:name:port` (scheme http, the default, or https); no port = the
   * first container port. Instead of dialling the pod IP the sim asks the cluster's PodServers;
   * when none answers, the dial is refused as it would be.
   */
  private async serveProxy(req: http.IncomingMessage, res: http.ServerResponse, route: ProxyRoute): Promise<void> {
    await drain(req);
    const id = splitSchemeNamePort(route.target);
    if (!id) throw new ApiError(400, "BadRequest", `invalid pod request "${route.target}"`);
    const pod = this.opts.cluster.store.get(route.rt, route.info.namespace, id.name);
    const ip = (pod.status?.podIPs as { ip?: string }[] | undefined)?.[0]?.ip ?? pod.status?.podIP;
    if (typeof ip !== "string" || !ip) throw new ApiError(400, "BadRequest", "address not allowed");
    const port = id.port || firstContainerPort(pod);
    const scheme = id.scheme || "http";
    const answer = port ? this.opts.cluster.podServers.map((serve) => serve(pod, { scheme, port, method: route.method, path: route.path })).find((a) => a !== undefined) : undefined;
    if (!answer) throw new ApiError(503, "ServiceUnavailable", `error trying to reach service: dial tcp ${ip}:${port || "80"}: connect: connection refused`);
    res.writeHead(answer.status, { "Content-Type": answer.contentType ?? "text/plain; charset=utf-8", "Cache-Control": "no-cache, private" }).end(req.method === "HEAD" ? undefined : answer.body);
  }

  // ---- resources -------------------------------------------------------------------------------

  private async serveResource(req: http.IncomingMessage, res: http.ServerResponse, route: ResourceRoute, q: URLSearchParams): Promise<void> {
    const { rt, info } = route;
    const store = this.opts.cluster.store;
    const ns = info.namespace;
    const dryRun = parseDryRun(q);
    const format = info.verb === "get" || info.verb === "list" || info.verb === "watch" ? negotiate(req.headers.accept) : { kind: "json" as const };
    const sub = info.subresource === "status" ? ("status" as const) : undefined;

    switch (info.verb) {
      case "get": {
        await drain(req);
        const o = store.get(rt, ns, info.name!);
        return this.sendObject(res, 200, rt, [o], format, q, store.resourceVersion, false);
      }
      case "list": {
        await drain(req);
        this.checkFieldSelector(rt, q.get("fieldSelector"));
        const { items, resourceVersion } = store.list(rt, {
          ...(ns !== undefined ? { namespace: ns } : {}),
          labelSelector: q.get("labelSelector") ?? undefined,
          fieldSelector: q.get("fieldSelector") ?? undefined,
        });
        const page = this.paginate(rt, items, resourceVersion, q);
        return this.sendObject(res, 200, rt, page.items, format, q, page.resourceVersion, true, page.cont, page.remaining);
      }
      case "watch":
        await drain(req);
        return this.serveWatch(req, res, route, q, format);
      case "create": {
        const body = await readObject(req);
        this.checkTypeMeta(rt, body);
        const meta = (body.metadata ??= {});
        if (rt.namespaced) {
          if (meta.namespace && meta.namespace !== ns) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
          meta.namespace = ns;
        }
        if (meta.resourceVersion) throw new ApiError(500, "InternalError", "resourceVersion should not be set on objects to be created");
        foldStringData(rt, body);
        const created = store.create(rt, body as KObject, { dryRun });
        return this.send(res, 201, created);
      }
      case "update": {
        const body = await readObject(req);
        this.checkTypeMeta(rt, body);
        const meta = (body.metadata ??= {});
        if (meta.name && meta.name !== info.name) throw badRequest(`the name of the object (${meta.name}) does not match the name on the URL (${info.name})`);
        if (rt.namespaced && meta.namespace && meta.namespace !== ns) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
        meta.name = info.name;
        if (rt.namespaced) meta.namespace = ns;
        foldStringData(rt, body);
        const exists = store.tryGet(rt, ns, info.name!) !== undefined;
        const ki = kindInfo(rt);
        if (!exists) {
          if (!ki.allowCreateOnUpdate || sub) throw notFound(rt.plural, rt.group, info.name!);
          delete meta.resourceVersion;
          return this.send(res, 201, store.create(rt, body as KObject, { dryRun }));
        }
        if (!meta.resourceVersion && !ki.allowUnconditionalUpdate) {
          throw new ApiError(422, "Invalid", `${rt.kind}.${rt.group} "${info.name}" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update`, {
            name: info.name!,
            group: rt.group,
            kind: rt.kind,
            causes: [{ reason: "FieldValueInvalid", message: "Invalid value: 0x0: must be specified for an update", field: "metadata.resourceVersion" }],
          });
        }
        return this.send(res, 200, store.update(rt, body as KObject, { dryRun, ...(sub ? { subresource: sub } : {}) }));
      }
      case "patch":
        return this.servePatch(req, res, rt, info, q, dryRun, sub);
      case "delete": {
        const opts = await this.deleteOptions(req, q, dryRun);
        const result = store.delete(rt, ns, info.name!, opts);
        const stillThere = !dryRun && store.tryGet(rt, ns, info.name!) !== undefined;
        if (stillThere || kindInfo(rt).returnDeletedObject) return this.send(res, 200, result);
        return this.send(res, 200, {
          kind: "Status",
          apiVersion: "v1",
          metadata: {},
          status: "Success",
          details: { name: info.name, group: rt.group, kind: rt.plural, uid: result.metadata.uid },
        });
      }
      case "deletecollection": {
        const opts = await this.deleteOptions(req, q, dryRun);
        this.checkFieldSelector(rt, q.get("fieldSelector"));
        const items = store.deleteCollection(rt, {
          ...opts,
          ...(ns !== undefined ? { namespace: ns } : {}),
          labelSelector: q.get("labelSelector") ?? undefined,
          fieldSelector: q.get("fieldSelector") ?? undefined,
        });
        return this.send(res, 200, { apiVersion: apiVersionOf(rt), kind: `${rt.kind}List`, metadata: { resourceVersion: store.resourceVersion }, items });
      }
    }
  }

  private async servePatch(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    rt: ResourceType,
    info: RequestInfo,
    q: URLSearchParams,
    dryRun: boolean,
    sub: "status" | undefined,
  ): Promise<void> {
    const store = this.opts.cluster.store;
    const ns = info.namespace;
    const ki = kindInfo(rt);
    const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
    const accepted = ki.builtin ? [...PATCH_TYPES, "application/strategic-merge-patch+json"] : PATCH_TYPES;
    if (!accepted.includes(contentType)) {
      await drain(req);
      throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: ${accepted.join(", ")}`);
    }
    const raw = await readBody(req);
    let patch: unknown;
    try {
      patch = contentType === "application/apply-patch+yaml" ? YAML.parse(raw.toString("utf8")) : JSON.parse(raw.toString("utf8"));
    } catch (e) {
      throw badRequest(`error decoding patch: ${e instanceof Error ? e.message : String(e)}`);
    }
    const current = store.tryGet(rt, ns, info.name!);

    if (contentType === "application/apply-patch+yaml") {
      const manager = q.get("fieldManager");
      if (!manager) throw badRequest("PATCH with apply content type requires fieldManager: fieldManager is required for apply requests");
      if (!isRecord(patch)) throw badRequest("apply patch must be a single object");
      if (!patch.apiVersion || !patch.kind) throw badRequest("invalid object: apiVersion and kind must be set in an apply patch");
      this.checkTypeMeta(rt, patch);
      const meta = (isRecord(patch.metadata) ? patch.metadata : (patch.metadata = {})) as Record<string, unknown>;
      if (meta.name !== undefined && meta.name !== info.name) throw badRequest(`the name of the object (${JSON.stringify(meta.name)}) does not match the name on the URL (${info.name})`);
      if (rt.namespaced && meta.namespace !== undefined && meta.namespace !== ns) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
      if (!current) {
        if (sub) throw notFound(rt.plural, rt.group, info.name!);
        const obj = serverSideApply(undefined, patch, manager, undefined, now()) as Body;
        obj.metadata.name = info.name;
        if (rt.namespaced) obj.metadata.namespace = ns;
        return this.send(res, 201, store.create(rt, obj as KObject, { dryRun }));
      }
      const merged = serverSideApply(current, patch, manager, sub, now()) as KObject;
      return this.send(res, 200, store.update(rt, this.keepIdentity(rt, merged, current), { dryRun, ...(sub ? { subresource: sub } : {}) }));
    }

    if (!current) throw notFound(rt.plural, rt.group, info.name!);
    let patched: unknown;
    if (contentType === "application/json-patch+json") patched = jsonPatch(current, patch);
    else if (contentType === "application/merge-patch+json") {
      if (!isRecord(patch)) throw badRequest("merge patch must be a JSON object");
      patched = mergePatch(current, patch);
    } else {
      patched = strategicMergePatch(current, patch, ki.mergeKeys);
    }
    if (!isRecord(patched) || !isRecord(patched.metadata)) throw new ApiError(422, "Invalid", "the patch removed the object's metadata");
    const p = patched as KObject;
    if (p.metadata.name !== info.name) throw badRequest(`the name of the object (${p.metadata.name}) does not match the name on the URL (${info.name})`);
    if (rt.namespaced && p.metadata.namespace !== ns) throw badRequest("the namespace of the provided object does not match the namespace sent on the request");
    return this.send(res, 200, store.update(rt, this.keepIdentity(rt, p, current), { dryRun, ...(sub ? { subresource: sub } : {}) }));
  }

  /** Patches may not change kind/apiVersion; an empty resourceVersion means "the current one". */
  private keepIdentity(rt: ResourceType, o: KObject, current: KObject): KObject {
    o.apiVersion = apiVersionOf(rt);
    o.kind = rt.kind;
    if (!o.metadata.resourceVersion) o.metadata.resourceVersion = current.metadata.resourceVersion;
    return o;
  }

  private async deleteOptions(req: http.IncomingMessage, q: URLSearchParams, dryRun: boolean): Promise<DeleteOptions> {
    const raw = await readBody(req);
    let body: Body = {};
    if (raw.length) {
      try {
        const parsed = JSON.parse(raw.toString("utf8"));
        if (isRecord(parsed)) body = parsed;
      } catch (e) {
        throw badRequest(`error decoding DeleteOptions: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    let policy = (q.get("propagationPolicy") ?? body.propagationPolicy) as string | undefined;
    const orphan = q.get("orphanDependents") ?? body.orphanDependents;
    if (policy === undefined && orphan !== undefined && orphan !== null) policy = String(orphan) === "true" ? "Orphan" : "Background";
    if (policy !== undefined && !["Background", "Foreground", "Orphan"].includes(policy)) {
      throw new ApiError(422, "Invalid", `propagationPolicy: Unsupported value: "${policy}": supported values: "Foreground", "Background", "Orphan"`);
    }
    const bodyDry = Array.isArray(body.dryRun) && body.dryRun.includes("All");
    const grace = q.get("gracePeriodSeconds") ?? body.gracePeriodSeconds;
    if (grace !== undefined && grace !== null && !(Number(grace) >= 0)) throw badRequest(`invalid gracePeriodSeconds ${String(grace)}`);
    const pre = isRecord(body.preconditions) ? body.preconditions : undefined;
    return {
      dryRun: dryRun || bodyDry,
      ...(policy ? { propagationPolicy: policy as PropagationPolicy } : {}),
      ...(pre
        ? { preconditions: { ...(pre.uid ? { uid: String(pre.uid) } : {}), ...(pre.resourceVersion ? { resourceVersion: String(pre.resourceVersion) } : {}) } }
        : {}),
    };
  }

  private checkTypeMeta(rt: ResourceType, body: Body): void {
    const av = apiVersionOf(rt);
    if (body.apiVersion !== undefined && body.apiVersion !== av) {
      throw badRequest(`the API version in the data (${body.apiVersion}) does not match the expected API version (${av})`);
    }
    if (body.kind !== undefined && body.kind !== rt.kind) {
      throw badRequest(`the kind in the data (${body.kind}) does not match the expected kind (${rt.kind})`);
    }
  }

  private checkFieldSelector(rt: ResourceType, sel: string | null): void {
    if (!sel) return;
    const allowed = new Set(["metadata.name", "metadata.namespace", ...kindInfo(rt).fieldSelectors]);
    for (const part of sel.split(",")) {
      const key = part.split(/!=|==|=/)[0]!.trim();
      if (!key || allowed.has(key)) continue;
      if (kindInfo(rt).builtin) throw badRequest(`field label not supported: ${key}`);
      throw badRequest(`"${key}" is not a known field selector: only "metadata.name", "metadata.namespace"`);
    }
  }

  private paginate(rt: ResourceType, items: KObject[], rv: string, q: URLSearchParams): { items: KObject[]; resourceVersion: string; cont?: string; remaining?: number } {
    const limit = q.get("limit") ? Number(q.get("limit")) : 0;
    if (!Number.isInteger(limit) || limit < 0) throw badRequest(`invalid limit ${q.get("limit")}`);
    const token = q.get("continue");
    let start: string | undefined;
    let listRv = rv;
    if (token) {
      let decoded: { rv?: string; start?: string };
      try {
        decoded = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
      } catch {
        throw badRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
      }
      if (typeof decoded.rv !== "string" || typeof decoded.start !== "string") throw badRequest("continue key is not valid");
      if (Number(decoded.rv) < this.opts.cluster.store.oldestResumableVersion) {
        throw new ApiError(410, "Expired", "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.");
      }
      start = decoded.start;
      listRv = decoded.rv;
    }
    const key = (o: KObject) => `${rt.namespaced ? (o.metadata.namespace ?? "") : ""}/${o.metadata.name}`;
    const after = start === undefined ? items : items.filter((o) => key(o).localeCompare(start) > 0);
    if (!limit || after.length <= limit) return { items: after, resourceVersion: listRv };
    const page = after.slice(0, limit);
    const cont = Buffer.from(JSON.stringify({ rv: listRv, start: key(page[page.length - 1]!) })).toString("base64url");
    return { items: page, resourceVersion: listRv, cont, remaining: after.length - limit };
  }

  private sendObject(
    res: http.ServerResponse,
    code: number,
    rt: ResourceType,
    objs: KObject[],
    format: Format,
    q: URLSearchParams,
    rv: string,
    isList: boolean,
    cont?: string,
    remaining?: number,
  ): void {
    const listMeta = { resourceVersion: rv, ...(cont ? { continue: cont, remainingItemCount: remaining } : {}) };
    if (format.kind === "table") {
      const table = toTable(rt, objs, q.get("includeObject") ?? "Metadata", format.version, listMeta);
      return this.send(res, code, table, `application/json;as=Table;v=${format.version};g=meta.k8s.io`);
    }
    if (format.kind === "partial") {
      const partial = (o: KObject) => ({ kind: "PartialObjectMetadata", apiVersion: `meta.k8s.io/${format.version}`, metadata: o.metadata });
      if (isList) {
        return this.send(res, code, { kind: "PartialObjectMetadataList", apiVersion: `meta.k8s.io/${format.version}`, metadata: listMeta, items: objs.map(partial) },
          `application/json;as=PartialObjectMetadataList;v=${format.version};g=meta.k8s.io`);
      }
      return this.send(res, code, partial(objs[0]!), `application/json;as=PartialObjectMetadata;v=${format.version};g=meta.k8s.io`);
    }
    if (isList) return this.send(res, code, { apiVersion: apiVersionOf(rt), kind: `${rt.kind}List`, metadata: listMeta, items: objs });
    return this.send(res, code, objs[0]);
  }

  // ---- watch -----------------------------------------------------------------------------------

  private serveWatch(req: http.IncomingMessage, res: http.ServerResponse, route: ResourceRoute, q: URLSearchParams, format: Format): void {
    const { rt, info } = route;
    const store = this.opts.cluster.store;
    this.checkFieldSelector(rt, q.get("fieldSelector"));
    let fieldSelector = q.get("fieldSelector") ?? undefined;
    if (route.watchName !== undefined) fieldSelector = [fieldSelector, `metadata.name=${route.watchName}`].filter(Boolean).join(",");
    const timeoutParam = q.get("timeoutSeconds");
    if (timeoutParam !== null && !(Number(timeoutParam) >= 0)) throw badRequest(`invalid timeoutSeconds ${timeoutParam}`);
    const rv = q.get("resourceVersion") ?? undefined;
    if (rv !== undefined && rv !== "" && !/^\d+$/.test(rv)) throw badRequest(`invalid resource version "${rv}"`);

    const contentType = format.kind === "table" ? `application/json;as=Table;v=${format.version};g=meta.k8s.io` : JSON_TYPE;
    res.writeHead(200, { "Content-Type": contentType, "Cache-Control": "no-cache, private", "Transfer-Encoding": "chunked" });
    res.flushHeaders();
    res.socket?.setNoDelay(true);

    const includeObject = q.get("includeObject") ?? "Metadata";
    const write = (type: string, object: unknown) => {
      if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    const emit = (type: string, o: KObject) => {
      if (format.kind === "table") write(type, toTable(rt, [o], includeObject, format.version, { resourceVersion: o.metadata.resourceVersion }));
      else if (format.kind === "partial") write(type, { kind: "PartialObjectMetadata", apiVersion: `meta.k8s.io/${format.version}`, metadata: o.metadata });
      else write(type, o);
    };

    let stop: (() => void) | undefined;
    const timers: NodeJS.Timeout[] = [];
    const watch: ActiveWatch = {
      res,
      close: () => {
        stop?.();
        stop = undefined;
        for (const t of timers) clearTimeout(t);
        this.watches.delete(watch);
        if (!res.writableEnded) res.end();
      },
    };
    this.watches.add(watch);
    res.on("close", () => watch.close());

    try {
      stop = store.watch(
        rt,
        {
          ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
          labelSelector: q.get("labelSelector") ?? undefined,
          fieldSelector,
          ...(rv !== undefined && rv !== "" ? { resourceVersion: rv } : {}),
        },
        emit,
      );
    } catch (e) {
      // kube-apiserver answers a too-old resourceVersion with 200 and an ERROR event, then closes.
      const err = e instanceof ApiError ? e : new ApiError(500, "InternalError", String(e));
      write("ERROR", err.toStatus());
      watch.close();
      return;
    }

    const bookmark = (extra?: Record<string, string>) =>
      write("BOOKMARK", {
        kind: rt.kind,
        apiVersion: apiVersionOf(rt),
        metadata: { resourceVersion: store.resourceVersion, ...(extra ? { annotations: extra } : {}) },
      });
    const bookmarks = q.get("allowWatchBookmarks") === "true" && format.kind === "json";
    if (bookmarks && q.get("sendInitialEvents") === "true") bookmark({ "k8s.io/initial-events-end": "true" });
    if (bookmarks) {
      const every = this.opts.bookmarkIntervalMs ?? Math.min(60_000, Math.max(1000, this.opts.cluster.clock.realMs(60_000)));
      const tick = () => {
        bookmark();
        timers[0] = setTimeout(tick, every);
      };
      timers[0] = setTimeout(tick, every);
    }
    // kube-apiserver ends a watch after timeoutSeconds, or after a random 30-60 min by default.
    const timeoutMs = timeoutParam !== null ? Number(timeoutParam) * 1000 : (1800 + Math.random() * 1800) * 1000;
    timers.push(setTimeout(() => watch.close(), timeoutMs));
  }
}

// ---- helpers -------------------------------------------------------------------------------------

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- request bodies are arbitrary JSON, checked field by field
type Body = Record<string, any>;
type ResourceRoute = { kind: "resource"; rt: ResourceType; info: RequestInfo; watchName: string | undefined };
type ProxyRoute = { kind: "proxy"; rt: ResourceType; info: RequestInfo & { namespace: string }; target: string; method: string; path: string };
type Route = { kind: "nonresource"; info: RequestInfo } | ResourceRoute | ProxyRoute;

const PROXY_VERB: Record<string, Verb> = { GET: "get", HEAD: "get", OPTIONS: "get", POST: "create", PUT: "update", PATCH: "patch", DELETE: "delete" };

/** k8s.io/apimachinery/pkg/util/net SplitSchemeNamePort: undefined when invalid. */
function splitSchemeNamePort(id: string): { scheme: "" | "http" | "https"; name: string; port: string } | undefined {
  const parts = id.split(":");
  const [scheme, name, port] = parts.length === 1 ? ["", parts[0]!, ""] : parts.length === 2 ? ["", parts[0]!, parts[1]!] : parts.length === 3 ? [parts[0]!, parts[1]!, parts[2]!] : [];
  if (name === undefined || name === "" || (scheme !== "" && scheme !== "http" && scheme !== "https")) return undefined;
  return { scheme: scheme, name, port: port! };
}

function firstContainerPort(pod: KObject): string {
  for (const c of (pod.spec?.containers ?? []) as { ports?: { containerPort?: number }[] }[]) {
    const p = c.ports?.[0]?.containerPort;
    if (p) return String(p);
  }
  return "";
}

function isRecord(v: unknown): v is Body {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Secret.stringData is write-only: kube-apiserver folds it into .data. */
function foldStringData(rt: ResourceType, body: Body): void {
  if (rt.group !== "" || rt.kind !== "Secret" || !isRecord(body.stringData)) return;
  const data: Record<string, string> = isRecord(body.data) ? body.data : {};
  for (const [k, v] of Object.entries(body.stringData)) data[k] = Buffer.from(String(v)).toString("base64");
  body.data = data;
  delete body.stringData;
}

function parseDryRun(q: URLSearchParams): boolean {
  const values = q.getAll("dryRun");
  for (const v of values) if (v !== "All") throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`);
  return values.length > 0;
}

async function readBody(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw new ApiError(413, "BadRequest", "Request entity too large: limit is 3145728");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function drain(req: http.IncomingMessage): Promise<void> {
  if (!req.readableEnded) await readBody(req);
}

async function readObject(req: http.IncomingMessage): Promise<Body> {
  const type = (req.headers["content-type"] ?? JSON_TYPE).split(";")[0]!.trim().toLowerCase();
  const buf = await readBody(req);
  // kubectl's typed clients (kubectl create namespace|configmap|secret) send protobuf.
  if (type === PROTOBUF) return decodeProtobuf(buf);
  if (type !== JSON_TYPE && type !== "application/yaml" && type !== "*/*") {
    throw new ApiError(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, ${PROTOBUF}`);
  }
  const raw = buf.toString("utf8");
  let body: unknown;
  try {
    body = type === "application/yaml" ? YAML.parse(raw) : JSON.parse(raw);
  } catch (e) {
    throw badRequest(`error decoding request body: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (!isRecord(body)) throw badRequest("the request body must be a single object");
  if (body.metadata !== undefined && !isRecord(body.metadata)) throw badRequest("metadata must be an object");
  return body;
}

/** Picks the response format from Accept, as kube-apiserver's content negotiation. */
function negotiate(accept: string | undefined): Format {
  if (!accept) return { kind: "json" };
  for (const part of accept.split(",")) {
    const [type, ...params] = part.split(";").map((s) => s.trim());
    const p = Object.fromEntries(params.map((x) => x.split("=").map((s) => s.trim()) as [string, string]));
    if (type !== "application/json" && type !== "*/*" && type !== "application/*") continue;
    if (!p.as) return { kind: "json" };
    if (p.g !== "meta.k8s.io" || (p.v !== "v1" && p.v !== "v1beta1")) continue;
    if (p.as === "Table") return { kind: "table", version: p.v };
    if (p.as === "PartialObjectMetadata" || p.as === "PartialObjectMetadataList") return { kind: "partial", version: p.v };
  }
  throw new ApiError(406, "NotAcceptable", `only the following media types are accepted: application/json, application/json;as=Table;v=v1;g=meta.k8s.io`);
}

function toTable(rt: ResourceType, objs: KObject[], includeObject: string, version: string, listMeta: Record<string, unknown>): Record<string, unknown> {
  const { columns: cols, nameCell } = kindInfo(rt);
  const t = Date.now();
  return {
    kind: "Table",
    apiVersion: `meta.k8s.io/${version}`,
    metadata: listMeta,
    columnDefinitions: [
      ...(nameCell === null ? [] : [NAME_COLUMN]),
      ...cols.map((c) => ({ name: c.name, type: c.type, format: c.format ?? "", description: c.description ?? "", priority: c.priority ?? 0 })),
    ],
    rows: objs.map((o) => ({
      cells: [...(nameCell === null ? [] : [nameCell ? nameCell(o) : o.metadata.name]), ...cols.map((c) => cellOf(c, o, t))],
      ...(includeObject === "None"
        ? {}
        : { object: includeObject === "Object" ? o : { kind: "PartialObjectMetadata", apiVersion: `meta.k8s.io/${version}`, metadata: o.metadata } }),
    })),
  };
}
