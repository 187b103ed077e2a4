// A world: N simulated clusters in one process sharing one SimClock, each with its own store,
// simulated KubeVirt/CDI controllers and HTTP(S) API server, plus the control API. Used by
// `npm run sim -- up` and by tests that want clusters in-process (they still talk HTTP to them).
import { randomBytes } from "node:crypto";
import { chmodSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { ApiServer } from "./apiserver/server.js";
import { type ServingCert, processServingCert } from "./apiserver/tls.js";
import { installCDI } from "./cdi/index.js";
import { SimClock } from "./clock.js";
import { SimCluster } from "./cluster.js";
import { ControlServer } from "./control.js";
import { SimControlClient } from "./control-client.js";
import { kubeconfigYaml } from "./kubeconfig.js";
import { type KubeVirtOptions, installKubeVirt } from "./kubevirt/index.js";
import { type Scenario, type ScenarioInput, clusterSpec, defaultScenario, parseScenario, seedCluster } from "./scenario.js";

export interface WorldOptions {
  /** Cluster names, or how many ("a", "b", ...). Default: the scenario's clusters, else a and b. */
  clusters?: number | string[];
  /** Simulated seconds per real second (SimClock scale). Default 1. */
  timeScale?: number;
  /** Serve plain HTTP (kubeconfigs then say insecure-skip-tls-verify). Default: HTTPS. */
  http?: boolean;
  /** What to seed: a scenario (object as in the YAML file), "default" (the default) or "empty". */
  scenario?: ScenarioInput | "default" | "empty";
  /** Write `<dir>/<cluster>/kubeconfig` and `<dir>/sim.json`. */
  dir?: string;
  /** Listen address. Default 127.0.0.1. */
  host?: string;
  /** Fixed ports: control API on `portBase`, clusters on portBase+1, +2, ... Default: free ports. */
  portBase?: number;
  /** Real milliseconds between watch BOOKMARK events (default: 60 simulated seconds, 1-60 s real). */
  bookmarkIntervalMs?: number;
  /** Install the simulated KubeVirt and CDI controllers (default true). false serves the bare API
   *  server, for tests of the API layer itself. */
  simulateKubeVirt?: boolean;
  /** Options of the simulated KubeVirt on every cluster (version it reports, timings, ...). */
  kubevirt?: KubeVirtOptions;
}

export interface WorldCluster {
  name: string;
  /** The simulated cluster: store, controllers, KubeVirt fault hooks. Tests should use HTTP instead. */
  cluster: SimCluster;
  api: ApiServer;
  /** API server URL. */
  server: string;
  token: string;
  /** Kubeconfig YAML for this cluster (KubeConfig.loadFromString / kubectl --kubeconfig). */
  kubeconfig: string;
  /** Where the kubeconfig was written, with `dir`. */
  kubeconfigPath?: string;
}

/** `<dir>/sim.json`: how programs find the clusters and the control API. */
export interface SimManifest {
  control: { url: string; token: string };
  timeScale: number;
  clusters: Record<string, { server: string; token: string; kubeconfig?: string }>;
  /** PEM of the API servers' CA (HTTPS only). */
  caPem?: string;
  pid: number;
}

export interface World {
  clock: SimClock;
  clusters: WorldCluster[];
  /** By name; throws if there is none. */
  cluster(name: string): WorldCluster;
  control: { url: string; token: string };
  controlClient(): SimControlClient;
  manifest: SimManifest;
  tls?: ServingCert;
  stop(): Promise<void>;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** "a".."z", then "aa", "ab", ... */
export function clusterNames(n: number): string[] {
  const names: string[] = [];
  for (let i = 0; i < n; i++) {
    let s = "";
    let k = i;
    do {
      s = String.fromCharCode(97 + (k % 26)) + s;
      k = Math.floor(k / 26) - 1;
    } while (k >= 0);
    names.push(s);
  }
  return names;
}

const token = () => randomBytes(24).toString("base64url");

export async function startWorld(opts: WorldOptions = {}): Promise<World> {
  const scenario: Scenario =
    opts.scenario === undefined || opts.scenario === "default" ? defaultScenario() : opts.scenario === "empty" ? {} : parseScenario(opts.scenario);
  const names =
    typeof opts.clusters === "number"
      ? clusterNames(opts.clusters)
      : (opts.clusters ?? (Object.keys(scenario.clusters ?? {}).length ? Object.keys(scenario.clusters ?? {}) : ["a", "b"]));
  if (!names.length) throw new Error("clusters: at least one cluster is needed");
  for (const n of names) if (!NAME.test(n) || n.length > 63) throw new Error(`clusters: "${n}" is not a valid cluster name (lowercase letters, digits and '-')`);
  if (new Set(names).size !== names.length) throw new Error(`clusters: duplicate names in ${names.join(",")}`);

  const clock = new SimClock(opts.timeScale ?? 1);
  const tls = opts.http ? undefined : await processServingCert();
  const host = opts.host ?? "127.0.0.1";
  const clusters: WorldCluster[] = [];
  let control: ControlServer | undefined;

  const stop = async () => {
    await control?.stop();
    await Promise.all(clusters.map((c) => c.api.stop()));
    for (const c of clusters) await c.cluster.stop();
  };

  try {
    for (const [i, name] of names.entries()) {
      const spec = clusterSpec(scenario, name);
      const kubevirtNamespace = spec.kubevirt ? spec.kubevirt.namespace : undefined;
      const cluster = new SimCluster({ name, clock, token: token(), ...(kubevirtNamespace ? { kubevirtNamespace } : {}) });
      // The other half of the simulator: KubeVirt and CDI controllers register on the cluster here.
      if (opts.simulateKubeVirt !== false) {
        installKubeVirt(cluster, opts.kubevirt);
        installCDI(cluster);
      }
      const api = new ApiServer({
        cluster,
        ...(tls ? { tls } : {}),
        host,
        ...(opts.portBase ? { port: opts.portBase + 1 + i } : {}),
        ...(opts.bookmarkIntervalMs !== undefined ? { bookmarkIntervalMs: opts.bookmarkIntervalMs } : {}),
      });
      const wc: WorldCluster = { name, cluster, api, server: "", token: cluster.opts.token, kubeconfig: "" };
      clusters.push(wc);
      await cluster.start();
      // Controllers run before seeding, so seeded objects reach them as ordinary ADDED events.
      seedCluster(cluster, i, spec);
      wc.server = await api.start();
      wc.kubeconfig = kubeconfigYaml({ name, server: wc.server, token: wc.token, ...(tls ? { caPem: tls.caPem } : {}) });
    }
    control = new ControlServer({ clusters, token: token(), host, ...(opts.portBase ? { port: opts.portBase } : {}) });
    await control.start();
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }

  const manifest: SimManifest = {
    control: { url: control.url, token: control.token },
    timeScale: clock.scale,
    clusters: Object.fromEntries(clusters.map((c) => [c.name, { server: c.server, token: c.token }])),
    ...(tls ? { caPem: tls.caPem } : {}),
    pid: process.pid,
  };
  if (opts.dir) {
    const dir = resolve(opts.dir);
    mkdirSync(dir, { recursive: true });
    for (const c of clusters) {
      mkdirSync(join(dir, c.name), { recursive: true });
      c.kubeconfigPath = join(dir, c.name, "kubeconfig");
      writeFileSync(c.kubeconfigPath, c.kubeconfig, { mode: 0o600 });
      chmodSync(c.kubeconfigPath, 0o600);
      manifest.clusters[c.name]!.kubeconfig = c.kubeconfigPath;
    }
    writeFileSync(join(dir, "sim.json"), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  }

  const ctl = control;
  return {
    clock,
    clusters,
    cluster(name: string) {
      const c = clusters.find((x) => x.name === name);
      if (!c) throw new Error(`no cluster "${name}" (have ${clusters.map((x) => x.name).join(", ")})`);
      return c;
    },
    control: { url: ctl.url, token: ctl.token },
    controlClient: () => new SimControlClient(ctl.url, ctl.token),
    manifest,
    ...(tls ? { tls } : {}),
    stop,
  };
}
