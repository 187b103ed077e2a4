// The control API of a simulated world: HTTP + JSON on its own port, bearer token. Injects API
// faults and latency, drops or expires watches, forwards KubeVirt-level faults to
// `cluster.kubevirt`, and exposes each cluster's request log and counters. Routes are listed in
// sim/README.md; `control-client.ts` is the typed client.
import http from "node:http";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import type { StatusReason } from "./apiserver/errors.js";
import type { ApiServer } from "./apiserver/server.js";
import type { SimCluster } from "./cluster.js";
import { VERBS } from "./faults.js";

export interface ControlTarget {
  name: string;
  cluster: SimCluster;
  api: ApiServer;
  server: string;
}

class HttpFail extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

const Match = {
  verb: z.enum(VERBS).optional(),
  resource: z.string().optional(),
  subresource: z.string().optional(),
  namespace: z.string().optional(),
  name: z.string().optional(),
};
const Count = z.union([z.number().int().min(1), z.literal("unlimited")]).optional();
const ErrorFaultBody = z.strictObject({
  ...Match,
  code: z.number().int().min(400).max(599),
  reason: z.custom<StatusReason>((v) => typeof v === "string" && v.length > 0).optional(),
  message: z.string().optional(),
  retryAfterSeconds: z.number().int().min(0).optional(),
  count: Count,
});
const LatencyFaultBody = z.strictObject({ ...Match, ms: z.number().min(0), count: Count });
const StallBody = z.strictObject({ stalled: z.boolean() });
const VmiBody = z.strictObject({ namespace: z.string().min(1), vmi: z.string().min(1) });
const DirtyRateBody = z.strictObject({ namespace: z.string().min(1), vmi: z.string().min(1), rate: z.union([z.number().min(0), z.literal("no-converge")]) });
const Empty = z.strictObject({});

function parse<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body ?? {});
  if (!r.success) throw new HttpFail(400, r.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; "));
  return r.data;
}

export class ControlServer {
  readonly token: string;
  private readonly server: http.Server;
  private address = "";

  constructor(private readonly opts: { clusters: ControlTarget[]; token: string; host?: string; port?: number }) {
    this.token = opts.token;
    this.server = http.createServer((req, res) => void this.handle(req, res));
  }

  get url(): string {
    return this.address;
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
    this.address = `http://${host.includes(":") ? `[${host}]` : host}:${port}`;
    return this.address;
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://control");
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "Content-Type": "application/json" }).end(JSON.stringify(body));
    };
    try {
      if (url.pathname === "/sim/v1/healthz") return reply(200, { ok: true });
      if (req.headers.authorization !== `Bearer ${this.token}`) throw new HttpFail(401, "missing or wrong bearer token (see control.token in sim.json)");
      let body: unknown;
      const raw = await readAll(req);
      if (raw.length) {
        try {
          body = JSON.parse(raw.toString("utf8"));
        } catch {
          throw new HttpFail(400, "body is not JSON");
        }
      }
      const [status, out] = await this.route(req.method ?? "GET", url, body);
      reply(status, out);
    } catch (e) {
      if (e instanceof HttpFail) reply(e.status, { error: e.message });
      else reply(500, { error: e instanceof Error ? e.message : String(e) });
    }
  }

  private target(name: string): ControlTarget {
    const t = this.opts.clusters.find((c) => c.name === name);
    if (!t) throw new HttpFail(404, `no cluster "${name}" (have ${this.opts.clusters.map((c) => c.name).join(", ")})`);
    return t;
  }

  private metrics(t: ControlTarget) {
    return { requests: t.api.log.countsSnapshot(), last: t.api.log.last, openWatches: t.api.openWatches, resourceVersion: t.cluster.store.resourceVersion };
  }

  private async route(method: string, url: URL, body: unknown): Promise<[number, unknown]> {
    const p = url.pathname.replace(/\/+$/, "").split("/").slice(1).map(decodeURIComponent);
    if (p[0] !== "sim" || p[1] !== "v1") throw new HttpFail(404, `no route ${url.pathname}`);
    const r = p.slice(2);
    const is = (m: string, ...segs: (string | null)[]) => method === m && r.length === segs.length && segs.every((s, i) => s === null || s === r[i]);

    if (is("GET", "clusters")) {
      return [200, { clusters: this.opts.clusters.map((c) => ({ name: c.name, server: c.server, kubevirt: c.cluster.kubevirt !== undefined, ...this.metrics(c) })) }];
    }
    if (is("GET", "metrics")) return [200, { clusters: Object.fromEntries(this.opts.clusters.map((c) => [c.name, this.metrics(c)])) }];
    if (r[0] !== "clusters" || r[1] === undefined) throw new HttpFail(404, `no route ${method} ${url.pathname}`);
    const t = this.target(r[1]);
    const rest = r.slice(2);
    const at = (m: string, ...segs: string[]) => method === m && rest.length === segs.length && segs.every((s, i) => s === rest[i]);

    if (at("GET", "metrics")) return [200, this.metrics(t)];
    if (at("GET", "requests")) {
      const q = url.searchParams;
      const since = q.get("since");
      const limit = q.get("limit");
      const verb = q.get("verb");
      const verbOk = (x: string | null): x is (typeof VERBS)[number] => x !== null && (VERBS as readonly string[]).includes(x);
      if (verb !== null && !verbOk(verb)) throw new HttpFail(400, `verb: one of ${VERBS.join(", ")}`);
      const requests = t.api.log.query({
        ...(since !== null ? { since: Number(since) } : {}),
        ...(limit !== null ? { limit: Number(limit) } : {}),
        ...(verbOk(verb) ? { verb } : {}),
        ...(q.get("resource") !== null ? { resource: q.get("resource")! } : {}),
      });
      return [200, { last: t.api.log.last, requests }];
    }
    if (at("GET", "faults")) return [200, { faults: t.api.faults.list() }];
    if (at("POST", "faults")) {
      const f = parse(ErrorFaultBody, body);
      return [201, { fault: t.api.faults.addError(f) }];
    }
    if (at("POST", "latency")) return [201, { fault: t.api.faults.addLatency(parse(LatencyFaultBody, body)) }];
    if (at("DELETE", "faults")) {
      const n = t.api.faults.list().length;
      t.api.faults.clear();
      return [200, { removed: n }];
    }
    if (method === "DELETE" && rest.length === 2 && rest[0] === "faults") {
      if (!t.api.faults.remove(rest[1]!)) throw new HttpFail(404, `no fault ${rest[1]} on cluster ${t.name}`);
      return [200, { removed: 1 }];
    }
    if (at("POST", "watches", "drop")) return [200, { dropped: t.api.dropWatches() }];
    if (at("POST", "watches", "expire")) {
      t.cluster.store.compactHistory();
      return [200, { dropped: t.api.dropWatches(), resourceVersion: t.cluster.store.resourceVersion }];
    }
    if (at("GET", "kubevirt", "migrations")) return [200, { migrations: this.kubevirtOf(t).migrationMetrics() }];
    if (at("GET", "kubevirt", "metrics")) return [200, { text: this.kubevirtOf(t).renderMetrics() }];
    if (method === "POST" && rest.length === 2 && rest[0] === "kubevirt") return this.kubevirt(t, rest[1]!, body);
    throw new HttpFail(404, `no route ${method} ${url.pathname}`);
  }

  private kubevirtOf(t: ControlTarget) {
    const kv = t.cluster.kubevirt;
    if (!kv) throw new HttpFail(501, `cluster ${t.name} has no simulated KubeVirt fault hooks (cluster.kubevirt is not set: the KubeVirt simulator is not installed on this cluster)`);
    return kv;
  }

  private async kubevirt(t: ControlTarget, action: string, body: unknown): Promise<[number, unknown]> {
    const actions = ["rotate-ca", "move-sync-address", "break-sync-connections", "stall-sync", "dirty-rate", "kill-vmi"];
    if (!actions.includes(action)) throw new HttpFail(404, `unknown KubeVirt fault "${action}" (one of ${actions.join(", ")})`);
    const kv = this.kubevirtOf(t);
    switch (action) {
      case "rotate-ca":
        parse(Empty, body);
        await kv.rotateCA();
        break;
      case "move-sync-address":
        parse(Empty, body);
        await kv.moveSyncAddress();
        break;
      case "break-sync-connections":
        parse(Empty, body);
        kv.breakSyncConnections();
        break;
      case "stall-sync":
        kv.stallSync(parse(StallBody, body).stalled);
        break;
      case "dirty-rate": {
        const b = parse(DirtyRateBody, body);
        kv.setDirtyRate(b.namespace, b.vmi, b.rate);
        break;
      }
      case "kill-vmi": {
        const b = parse(VmiBody, body);
        kv.killVMI(b.namespace, b.vmi);
        break;
      }
    }
    return [200, { ok: true }];
  }
}

async function readAll(req: http.IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > 1024 * 1024) throw new HttpFail(413, "body too large");
    chunks.push(c);
  }
  return Buffer.concat(chunks);
}
