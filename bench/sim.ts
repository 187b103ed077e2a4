// The simulated API server under list and watch load, read with @kubernetes/client-node (what the
// agent uses) against raw fetch + JSON.parse of the same URLs (the floor the server allows).
// Plain HTTP so both clients pay the same transport; the server, store and watch code are the same
// as over HTTPS.
import { CoreV1Api, Watch } from "@kubernetes/client-node";
import { performance } from "node:perf_hooks";
import { startWorld } from "../sim/world.js";
import { kubeConfig } from "../sim/testing.js";
import { stats, type Bench, type Throughput } from "./lib.js";

const NS = "bench";

export const simBench: Bench = {
  name: "sim",
  what: "sim API server list and watch throughput: client-node vs raw fetch",
  async run(opts, out) {
    const objects = opts.quick ? 1000 : 3000;
    const rounds = opts.quick ? 5 : 9;
    const world = await startWorld({ clusters: ["bench"], http: true, scenario: "empty", simulateKubeVirt: false });
    try {
      const c = world.cluster("bench");
      const headers = { authorization: `Bearer ${c.token}`, "content-type": "application/json" };
      const api = async (method: string, path: string, body?: unknown): Promise<unknown> => {
        const r = await fetch(`${c.server}${path}`, { method, headers, ...(body ? { body: JSON.stringify(body) } : {}) });
        if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${await r.text()}`);
        return r.json();
      };
      await api("POST", "/api/v1/namespaces", { apiVersion: "v1", kind: "Namespace", metadata: { name: NS } });
      const before = (await api("GET", `/api/v1/namespaces/${NS}/configmaps`)) as { metadata: { resourceVersion: string } };
      const rv0 = before.metadata.resourceVersion;
      const data = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`key-${i}`, "x".repeat(64)]));
      for (let i = 0; i < objects; i += 50) {
        await Promise.all(
          Array.from({ length: Math.min(50, objects - i) }, (_, j) =>
            api("POST", `/api/v1/namespaces/${NS}/configmaps`, { apiVersion: "v1", kind: "ConfigMap", metadata: { name: `cm-${i + j}`, labels: { app: "bench" } }, data }),
          ),
        );
      }
      const kc = kubeConfig(c.kubeconfig);
      const core = kc.makeApiClient(CoreV1Api);

      // List: whole collection per call; rate in objects per second.
      const timeRounds = async (fn: () => Promise<number>): Promise<Throughput> => {
        await fn();
        const ms: number[] = [];
        let ops = 0;
        for (let r = 0; r < rounds; r++) {
          const t0 = performance.now();
          ops += await fn();
          ms.push(performance.now() - t0);
        }
        const med = stats(ms).p50;
        return { ops, ms: ms.reduce((a, b) => a + b, 0), rate: (objects * 1000) / med };
      };
      const rawList = async () => ((await api("GET", `/api/v1/namespaces/${NS}/configmaps`)) as { items: unknown[] }).items.length;
      const nodeList = async () => (await core.listNamespacedConfigMap({ namespace: NS })).items.length;
      out.section(`list ${objects} ConfigMaps (median of ${rounds} rounds)`);
      const baseList = await timeRounds(rawList);
      out.baseline("raw fetch + JSON.parse", baseList, "obj/s");
      out.measured("client-node listNamespacedConfigMap", await timeRounds(nodeList), baseList, "obj/s");

      // Watch from before the creations: the server replays every ADDED event from its history.
      const rawWatch = async (): Promise<number> => {
        const r = await fetch(`${c.server}/api/v1/namespaces/${NS}/configmaps?watch=true&resourceVersion=${rv0}`, { headers });
        if (!r.ok || !r.body) throw new Error(`watch: ${r.status}`);
        const reader = r.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        let n = 0;
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          const lines = (buf + dec.decode(value, { stream: true })).split("\n");
          buf = lines.pop()!;
          for (const line of lines) if (line && (JSON.parse(line) as { type: string }).type === "ADDED") n++;
          if (n >= objects) break;
        }
        await reader.cancel();
        return n;
      };
      const nodeWatch = (): Promise<number> =>
        new Promise((resolve, reject) => {
          let n = 0;
          let abort: AbortController | undefined;
          void new Watch(kc)
            .watch(
              `/api/v1/namespaces/${NS}/configmaps`,
              { resourceVersion: rv0 },
              (type) => {
                if (type === "ADDED" && ++n === objects) {
                  abort?.abort();
                  resolve(n);
                }
              },
              (err) => {
                if (n < objects) reject(err instanceof Error ? err : new Error(`watch ended after ${n} events`));
              },
            )
            .then((a) => (abort = a), reject);
        });
      out.section(`watch: replay of ${objects} ADDED events (median of ${rounds} rounds)`);
      const baseWatch = await timeRounds(rawWatch);
      out.baseline("raw fetch stream + JSON.parse per line", baseWatch, "ev/s");
      out.measured("client-node Watch", await timeRounds(nodeWatch), baseWatch, "ev/s");
    } finally {
      await world.stop();
    }
  },
};
