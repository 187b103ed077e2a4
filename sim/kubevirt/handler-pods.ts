// virt-handler as the API shows it: the pods of virt-operator's DaemonSet `virt-handler` (one per
// node, in the KubeVirt CR's namespace, labelled as the install strategy labels its pod template:
// generate/components/daemonsets.go NewHandlerDaemonSet, deployments.go newPodTemplateSpec,
// apply/reconcile.go injectOperatorMetadata), and what they serve on the `metrics` port: HTTPS
// /metrics with that node's migration metrics (migrationdomainstats: source VMIs on the node).
// The pods are read-only mirrors like the virt-launcher pods; the API server's pods/proxy reaches
// their server through SimCluster.podServers.
import { createHash, randomUUID } from "node:crypto";
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import type { PodRequest, PodResponse } from "../cluster.js";
import { findKubeVirt } from "./config.js";
import { renderMigrationMetrics } from "./metrics.js";
import type { KubeVirtSim } from "./sim.js";
import { getCondition, isNotFound, randSuffix } from "./util.js";
import { WorkQueue } from "./workqueue.js";

export const VIRT_HANDLER = "virt-handler";
/** virt-handler's `--port` (container port `metrics`): HTTPS, /metrics and /healthz. */
export const VIRT_HANDLER_METRICS_PORT = 8443;
const VMSTATS_PORT = 8187;
const KEY = "daemonset";
/** Go's net/http answer to plain HTTP on a TLS port (what kube-apiserver relays for http:<pod>:8443). */
const PLAIN_HTTP_TO_TLS = "Client sent an HTTP request to an HTTPS server.\n";

const isHandlerPod = (o: KObject) => o.metadata.labels?.["kubevirt.io"] === VIRT_HANDLER;

export class VirtHandlerPods {
  readonly queue: WorkQueue;
  private readonly daemonSetUID = randomUUID();

  constructor(private readonly sim: KubeVirtSim) {
    this.queue = new WorkQueue("virt-handler-daemonset", sim.clock, () => this.reconcile(), { onError: (k, e) => sim.reportError("virt-handler-daemonset", k, e) });
  }

  onEvent(e: StoreEvent): void {
    const o = e.object;
    if (e.rt.kind === "Node" || e.rt.kind === "KubeVirt" || (e.rt.kind === "Namespace" && o.metadata.name === this.sim.ns)) this.queue.add(KEY);
    else if (e.rt.kind === "Pod" && e.type === "DELETED" && o.metadata.namespace === this.sim.ns && isHandlerPod(o)) this.queue.add(KEY);
  }

  /** The DaemonSet controller: a pod per node while KubeVirt is installed; readiness follows the node's. */
  reconcile(): void {
    const store = this.sim.store;
    const ns = this.sim.ns;
    const kv = findKubeVirt(store, ns);
    const installed = kv !== undefined && !kv.metadata.deletionTimestamp && store.tryGet(R.Namespace, undefined, ns) !== undefined;
    const nodes = installed ? store.list(R.Node).items : [];
    const byNode = new Map(nodes.map((n) => [n.metadata.name, n]));
    const pods = store.list(R.Pod, { namespace: ns }).items.filter(isHandlerPod);
    const covered = new Set<string>();
    for (const p of pods) {
      const node = byNode.get(p.spec?.nodeName);
      if (!node || covered.has(node.metadata.name)) {
        this.remove(p);
        continue;
      }
      covered.add(node.metadata.name);
      const want = this.status(node, p.status?.podIP, p.status?.startTime);
      if (JSON.stringify(want) !== JSON.stringify(p.status)) store.update(R.Pod, { ...p, status: want }, { internal: true });
    }
    for (const n of nodes) if (!covered.has(n.metadata.name)) store.create(R.Pod, this.podObject(kv!, n), { internal: true });
  }

  /** What listens in a Ready virt-handler pod: HTTPS on the metrics port (/metrics). Other pods and ports: nothing (refused). */
  serve(pod: KObject, req: PodRequest): PodResponse | undefined {
    const ready = getCondition(pod, "Ready")?.status === "True";
    if (pod.metadata.namespace !== this.sim.ns || !isHandlerPod(pod) || pod.status?.phase !== "Running" || !ready) return undefined;
    if (req.port !== String(VIRT_HANDLER_METRICS_PORT)) return undefined;
    if (req.scheme !== "https") return { status: 400, contentType: "text/plain; charset=utf-8", body: PLAIN_HTTP_TO_TLS };
    if (req.path !== "/metrics") return { status: 404, contentType: "text/plain; charset=utf-8", body: "404 page not found\n" };
    if (req.method !== "GET" && req.method !== "HEAD") return { status: 405, contentType: "text/plain; charset=utf-8", body: "405: Method Not Allowed\n" };
    const text = renderMigrationMetrics(this.sim, { node: pod.spec?.nodeName ?? "", kubevirtOnly: true, timestampMs: Date.now() });
    return { status: 200, contentType: "text/plain; version=0.0.4; charset=utf-8", body: text };
  }

  private remove(p: KObject): void {
    try {
      this.sim.store.delete(R.Pod, p.metadata.namespace, p.metadata.name, { internal: true });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private status(node: KObject, podIP: string | undefined, startTime: string | undefined): Record<string, unknown> {
    const ready = getCondition(node, "Ready")?.status === "True";
    const hostIP = ((node.status?.addresses ?? []) as { type: string; address: string }[]).find((a) => a.type === "InternalIP")?.address;
    const ip = podIP ?? this.sim.pods.allocateIP();
    const t = startTime ?? new Date().toISOString().replace(/\.\d+Z$/, "Z");
    const cond = (type: string, ok: boolean) => ({ type, status: ok ? "True" : "False", lastProbeTime: null, lastTransitionTime: t });
    const container = (name: string, image: string) => ({ name, image, imageID: "", ready, restartCount: 0, started: true, state: { running: { startedAt: t } } });
    return {
      phase: "Running",
      conditions: [cond("PodReadyToStartContainers", true), cond("Initialized", true), cond("Ready", ready), cond("ContainersReady", ready), cond("PodScheduled", true)],
      ...(hostIP ? { hostIP, hostIPs: [{ ip: hostIP }] } : {}),
      podIP: ip,
      podIPs: [{ ip }],
      startTime: t,
      qosClass: "BestEffort",
      containerStatuses: [container(VIRT_HANDLER, this.image(VIRT_HANDLER)), container("virt-launcher-image-holder", this.image("virt-launcher"))],
    };
  }

  private image(component: string): string {
    return `quay.io/kubevirt/${component}:${this.sim.version}`;
  }

  private podObject(kv: KObject, node: KObject) {
    const spec = kv.spec ?? {};
    const label = (v: unknown) => typeof v === "string" && /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/.test(v) && v.length <= 63 && v !== "";
    const hash = createHash("sha1").update(`${this.sim.version}/${String(spec.productComponent ?? "")}`).digest("hex");
    return {
      metadata: {
        name: `${VIRT_HANDLER}-${randSuffix()}`,
        namespace: this.sim.ns,
        uid: randomUUID(),
        labels: {
          "kubevirt.io": VIRT_HANDLER,
          "prometheus.kubevirt.io": "true",
          "np.kubevirt.io/allow-access-cluster-services": "true",
          "app.kubernetes.io/component": label(spec.productComponent) ? spec.productComponent : "kubevirt",
          "app.kubernetes.io/managed-by": "virt-operator",
          ...(label(spec.productVersion) ? { "app.kubernetes.io/version": spec.productVersion } : {}),
          ...(label(spec.productName) ? { "app.kubernetes.io/part-of": spec.productName } : {}),
          // the DaemonSet controller's own labels
          "controller-revision-hash": hash.slice(0, 10),
          "pod-template-generation": "1",
        },
        annotations: {
          "kubevirt.io/install-strategy-version": this.sim.version,
          "kubevirt.io/install-strategy-registry": "quay.io/kubevirt",
          "kubevirt.io/install-strategy-identifier": hash.slice(0, 16),
          "openshift.io/required-scc": "kubevirt-handler",
        },
        ownerReferences: [{ apiVersion: "apps/v1", kind: "DaemonSet", name: VIRT_HANDLER, uid: this.daemonSetUID, controller: true, blockOwnerDeletion: true }],
      },
      spec: {
        nodeName: node.metadata.name,
        affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: "metadata.name", operator: "In", values: [node.metadata.name] }] }] } } },
        containers: [
          {
            name: VIRT_HANDLER,
            image: this.image(VIRT_HANDLER),
            command: [VIRT_HANDLER],
            args: ["--port", String(VIRT_HANDLER_METRICS_PORT), "--hostname-override", "$(NODE_NAME)", "--pod-ip-address", "$(MY_POD_IP)", "--max-metric-requests", "3", "--console-server-port", "8186", "--vmstats-server-port", String(VMSTATS_PORT)],
            ports: [
              { name: "metrics", containerPort: VIRT_HANDLER_METRICS_PORT, protocol: "TCP" },
              { name: "vmstats", containerPort: VMSTATS_PORT, protocol: "TCP" },
            ],
          },
          { name: "virt-launcher-image-holder", image: this.image("virt-launcher"), command: ["/bin/sh", "-c"], args: ["sleep infinity"] },
        ],
        hostPID: true,
        priorityClassName: "kubevirt-cluster-critical",
        restartPolicy: "Always",
        schedulerName: "default-scheduler",
        serviceAccountName: "kubevirt-handler",
        terminationGracePeriodSeconds: 330,
        tolerations: [{ key: "CriticalAddonsOnly", operator: "Exists" }],
      },
      status: this.status(node, undefined, undefined),
    };
  }
}
