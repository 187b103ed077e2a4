// The agent's plain-HTTP endpoints for Kubernetes probes and Prometheus:
//   /healthz  200 while the process runs
//   /readyz   200 when connected to NATS and every watch is established; the JSON body names each check
//   /metrics  Prometheus text format
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface Check {
  ok: boolean;
  detail: string;
}

export interface HttpServer {
  server: Server;
  port: number;
  close(): Promise<void>;
}

function splitListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  return { host: listen.slice(0, i).replace(/^\[|\]$/g, ""), port: Number(listen.slice(i + 1)) };
}

export async function startHttpServer(listen: string, ep: { registry: Registry; readiness: () => Record<string, Check> }): Promise<HttpServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const send = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "content-type": type, "cache-control": "no-store" });
      res.end(body);
    };
    if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed\n");
    switch (path) {
      case "/healthz":
        return send(200, "ok\n");
      case "/readyz": {
        const checks = ep.readiness();
        const ok = Object.values(checks).every((c) => c.ok);
        return send(ok ? 200 : 503, JSON.stringify({ ready: ok, checks }) + "\n", "application/json");
      }
      case "/metrics":
        void ep.registry.metrics().then(
          (text) => send(200, text, ep.registry.contentType),
          (e: unknown) => send(500, `metrics failed: ${String(e)}\n`),
        );
        return;
      default:
        return send(404, "not found: try /healthz, /readyz or /metrics\n");
    }
  });
  const { host, port } = splitListen(listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e) => reject(new Error(`cannot listen for HTTP on ${listen}: ${e.message}; fix --http-listen / FERRY_HTTP_LISTEN`)));
    server.listen(port, host, () => resolve());
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
