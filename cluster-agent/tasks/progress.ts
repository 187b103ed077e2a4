// Live-migration progress. KubeVirt exports it only as virt-handler metrics
// (kubevirt_vmi_migration_data_*, by the virt-handler of the node the source VMI runs on); no
// KubeVirt object carries the bytes. The agent reads them through the API server's pods/proxy
// (GET …/pods/https:<virt-handler pod>:<metrics port>/proxy/metrics), so it needs no route to pod
// IPs — only `get` on pods/proxy and `list` on pods in the KubeVirt namespace. Which pod runs on
// which node is cached (listed again when unknown or after a failed read); each node's metrics are
// fetched at most once per poll interval, however many VMIs migrate from it. A failed read never fails a task: progress is omitted and the reason is
// logged once at debug.
import { ApiException, CoreV1Api, type KubeConfig } from "@kubernetes/client-node";
import type { Logger } from "pino";
import type { Task, TaskStatus } from "../../proto/bus/index.js";
import type { KubeObj, VirtualMachineInstance } from "../core/kube.js";
import { progressFromMetrics, progressOf } from "../core/status.js";
import type { Ctx } from "./context.js";
import { type Kube, KubeError } from "./kube.js";

/** virt-operator's DaemonSet pod label (generate/components/daemonsets.go) and its metrics port. */
export const VIRT_HANDLER_SELECTOR = "kubevirt.io=virt-handler";
const DEFAULT_METRICS_PORT = 8443;

type Progress = TaskStatus["progress"];

interface PodLike extends KubeObj {
  spec?: { nodeName?: string; containers?: { ports?: { name?: string; containerPort?: number }[] }[] };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}

/** virt-handler pods by node: Running ones, Ready and newest first when a rollout leaves two. */
export function handlersByNode(pods: readonly PodLike[]): Map<string, { pod: string; port: number }> {
  const ready = (p: PodLike) => p.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;
  const ranked = pods
    .filter((p) => p.status?.phase === "Running" && p.spec?.nodeName && p.metadata.name)
    .sort((a, b) => Number(ready(b)) - Number(ready(a)) || String(b.metadata.creationTimestamp ?? "").localeCompare(String(a.metadata.creationTimestamp ?? "")));
  const out = new Map<string, { pod: string; port: number }>();
  for (const p of ranked) {
    if (out.has(p.spec!.nodeName!)) continue;
    const port = p.spec?.containers?.flatMap((c) => c.ports ?? []).find((x) => x.name === "metrics")?.containerPort ?? DEFAULT_METRICS_PORT;
    out.set(p.spec!.nodeName!, { pod: p.metadata.name!, port });
  }
  return out;
}

class Unreadable extends Error {
  constructor(
    readonly kind: string,
    message: string,
  ) {
    super(message);
  }
}

export interface ProgressReaderOptions {
  kubeConfig: KubeConfig;
  kube: Kube;
  /** Where KubeVirt (its virt-handler DaemonSet) runs: config kubevirtNamespace. */
  namespace: string;
  pollMs: number;
  log: Logger;
}

export class ProgressReader {
  private readonly core: CoreV1Api;
  private handlers = new Map<string, { pod: string; port: number }>();
  private listedAt = -Infinity;
  private readonly last = new Map<string, { at: number; progress: Progress }>();
  private readonly logged = new Set<string>();
  private readonly scraped = new Map<string, { at: number; text: Promise<string> }>();

  constructor(private readonly o: ProgressReaderOptions) {
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
  }

  /** The VMI's migration progress as its node's virt-handler reports it now; undefined when it reports none or cannot be read. */
  async read(vmi: VirtualMachineInstance): Promise<Progress> {
    const { namespace, name } = vmi.metadata;
    const node = vmi.status?.nodeName;
    if (!namespace || !name || !node) return undefined;
    const key = `${namespace}/${name}`;
    const now = Date.now();
    const cached = this.last.get(key);
    if (cached && now - cached.at < this.o.pollMs) return cached.progress;
    for (const [k, v] of this.last) if (now - v.at > 10 * this.o.pollMs) this.last.delete(k);
    let progress: Progress;
    try {
      progress = progressOf(progressFromMetrics(await this.scrape(node), namespace, name));
    } catch (e) {
      this.unreadable(e, node);
      progress = undefined;
    }
    this.last.set(key, { at: now, progress });
    return progress;
  }

  /** One scrape of a node's metrics per poll interval, shared by every VMI migrating from that node. */
  private scrape(node: string): Promise<string> {
    const now = Date.now();
    const cached = this.scraped.get(node);
    if (cached && now - cached.at < this.o.pollMs) return cached.text;
    const text = this.fetchMetrics(node);
    this.scraped.set(node, { at: now, text });
    text.catch(() => this.scraped.delete(node));
    return text;
  }

  private async fetchMetrics(node: string): Promise<string> {
    let handler = this.handlers.get(node);
    if (!handler && Date.now() - this.listedAt >= this.o.pollMs) {
      this.listedAt = Date.now();
      this.handlers = handlersByNode(await this.o.kube.list<PodLike>("v1", "Pod", this.o.namespace, VIRT_HANDLER_SELECTOR));
      handler = this.handlers.get(node);
    }
    if (!handler) throw new Unreadable("NoVirtHandler", `no running virt-handler pod (${VIRT_HANDLER_SELECTOR}) on node ${node} in namespace ${this.o.namespace}`);
    try {
      return await this.core.connectGetNamespacedPodProxyWithPath({ name: `https:${handler.pod}:${handler.port}`, namespace: this.o.namespace, path: "metrics" });
    } catch (e) {
      // The pod may have been replaced (rollout, node restart): find it again next time.
      this.handlers.delete(node);
      throw e;
    }
  }

  private unreadable(e: unknown, node: string): void {
    const code = e instanceof ApiException || e instanceof KubeError ? e.code : undefined;
    const kind = e instanceof Unreadable ? e.kind : code !== undefined ? `HTTP ${code}` : "error";
    if (this.logged.has(kind)) return;
    this.logged.add(kind);
    const body = e instanceof ApiException ? (typeof e.body === "string" ? e.body : JSON.stringify(e.body ?? "")) : "";
    const message = e instanceof ApiException ? `pods/proxy ${code}: ${body.slice(0, 300)}` : e instanceof Error ? e.message : String(e);
    const fix =
      code === 403
        ? `grant get on pods/proxy and list on pods in namespace ${this.o.namespace} (charts/ferry-agent: rbac.migrationProgress)`
        : "nothing to do for the migration itself; bytes, rate and ETA stay missing until virt-handler's metrics can be read";
    this.o.log.debug({ node, namespace: this.o.namespace, err: message, fix }, "cannot read live-migration progress from virt-handler; progress omitted (logged once per kind of failure)");
  }
}

/**
 * While KubeVirt copies: the source VMI's progress from its node's virt-handler, and another pass
 * after the poll interval (no watch event announces new bytes).
 */
export async function migrationProgress(ctx: Ctx, task: Task, vmi: VirtualMachineInstance | undefined): Promise<Progress> {
  ctx.requeue(task, ctx.progressPollMs);
  return vmi ? ctx.progress(vmi) : undefined;
}
