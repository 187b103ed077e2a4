// The simulated virt-operator: KubeVirt CR status, the cluster's KubeVirt CA (Secret kubevirt-ca) and
// CA bundle (ConfigMap kubevirt-ca), the kubevirt-external-ca inbox, the synchronization
// controller's certificates, its endpoint and Lease, and status.synchronizationAddresses
// (pkg/virt-operator/resource/apply/core.go, certificates.go; generate/components/secrets.go).
import { createHash } from "node:crypto";
import { R } from "../apiserver/resources.js";
import type { KObject, StoreEvent } from "../apiserver/store.js";
import {
  CABundleKey,
  DecentralizedLiveMigration,
  ExternalKubeVirtCAConfigMapName,
  KubeVirtCAConfigMapName,
  KubeVirtCASecretName,
  ManagedByLabel,
  NodeSchedulable,
  SyncClientCN,
  SyncClientCertSecret,
  SyncControllerName,
  SyncServerCN,
  SyncServerCertSecret,
} from "./constants.js";
import { findKubeVirt } from "./config.js";
import { type KeyPair, bundleParses, bundleWithExternal, createCA, mergeCABundle, parseBundle, signLeaf, validCerts } from "./pki.js";
import type { KubeVirtSim } from "./sim.js";
import type { SyncCredentials } from "./sync/network.js";
import type { SyncController } from "./sync/controller.js";
import { deepEqual, getCondition, now, randSuffix } from "./util.js";
import { WorkQueue } from "./workqueue.js";
import { X509Certificate } from "node:crypto";

/* eslint-disable @typescript-eslint/no-explicit-any -- CR status is free-form JSON */

const b64 = (s: string) => Buffer.from(s).toString("base64");
const unb64 = (s: unknown) => (typeof s === "string" ? Buffer.from(s, "base64").toString() : "");
const OPERATOR_LABELS = { [ManagedByLabel]: "virt-operator", "kubevirt.io": "" };

function keyPairFromSecret(secret: KObject | undefined): KeyPair | undefined {
  const crt = unb64(secret?.data?.["tls.crt"]);
  const key = unb64(secret?.data?.["tls.key"]);
  if (!crt || !key) return undefined;
  try {
    const cert = new X509Certificate(crt);
    return { certPem: crt, keyPem: key, cert, notBefore: new Date(cert.validFrom), notAfter: new Date(cert.validTo) };
  } catch {
    return undefined;
  }
}

export class Operator {
  readonly queue: WorkQueue;
  private leasePod = `${SyncControllerName}-${randSuffix(10)}-${randSuffix()}`;
  private forceRotate = false;
  private credsCache?: { key: string; creds: SyncCredentials };

  constructor(
    private readonly sim: KubeVirtSim,
    private readonly sync: SyncController,
  ) {
    this.queue = new WorkQueue("virt-operator", sim.clock, (k) => this.reconcile(k), { onError: (k, e) => sim.reportError("virt-operator", k, e) });
  }

  onEvent(e: StoreEvent): void {
    const o = e.object;
    if (e.rt.kind === "KubeVirt") {
      if (e.type !== "MODIFIED" || !deepEqual(e.old?.spec, o.spec) || !deepEqual(e.old?.metadata.generation, o.metadata.generation)) this.queue.add("kubevirt");
      return;
    }
    if (o.metadata.namespace !== this.sim.ns) {
      if (e.rt.kind === "Node") this.labelNode(o);
      return;
    }
    // genericUpdateHandler → delayedQueueAdder: operator-labelled objects re-queue the CR after 5s.
    if ((e.rt.kind === "ConfigMap" && (o.metadata.name === KubeVirtCAConfigMapName || o.metadata.name === ExternalKubeVirtCAConfigMapName)) ||
        (e.rt.kind === "Secret" && [KubeVirtCASecretName, SyncServerCertSecret, SyncClientCertSecret].includes(o.metadata.name))) {
      this.queue.addAfter("kubevirt", 5_000);
      if (e.rt.kind !== "ConfigMap" || o.metadata.name === KubeVirtCAConfigMapName) this.sync.reloadCredentials();
    }
  }

  /** virt-handler labels the nodes it runs on as schedulable for VMIs. */
  labelNode(n: KObject): void {
    if (n.metadata.labels?.[NodeSchedulable] !== undefined || getCondition(n, "Ready")?.status !== "True") return;
    this.sim.store.modify(R.Node, undefined, n.metadata.name, (o) => {
      o.metadata.labels = { ...o.metadata.labels, [NodeSchedulable]: "true" };
    });
  }

  rotateCA(): void {
    this.forceRotate = true;
    this.queue.add("kubevirt");
  }

  /** The synchronization endpoint's certificates and trust bundle, read from the cluster's objects. */
  credentials(): SyncCredentials | undefined {
    const store = this.sim.store;
    const srv = store.tryGet(R.Secret, this.sim.ns, SyncServerCertSecret);
    const cli = store.tryGet(R.Secret, this.sim.ns, SyncClientCertSecret);
    const cm = store.tryGet(R.ConfigMap, this.sim.ns, KubeVirtCAConfigMapName);
    if (!srv || !cli || !cm) return undefined;
    const cacheKey = `${srv.metadata.resourceVersion}/${cli.metadata.resourceVersion}/${cm.metadata.resourceVersion}`;
    if (this.credsCache?.key === cacheKey) return this.credsCache.creds;
    const creds: SyncCredentials = {
      serverCertPem: unb64(srv.data?.["tls.crt"]),
      serverKeyPem: unb64(srv.data?.["tls.key"]),
      clientCertPem: unb64(cli.data?.["tls.crt"]),
      clientKeyPem: unb64(cli.data?.["tls.key"]),
      // only well-formed certificates reach the trust pool, as Go's AppendCertsFromPEM does
      caBundle: parseBundle(cm.data?.[CABundleKey]).map((c) => c.toString()).join("\n"),
    };
    this.credsCache = { key: cacheKey, creds };
    return creds;
  }

  private realMs(simMs: number): number {
    return this.sim.clock.realMs(simMs);
  }

  async reconcile(_k: string): Promise<void> {
    const store = this.sim.store;
    const ns = this.sim.ns;
    const kv = findKubeVirt(store, ns);
    this.sim.invalidateConfig();
    if (!kv || kv.metadata.deletionTimestamp) {
      await this.sync.stopEndpoint();
      return;
    }
    const cfg = this.sim.config();
    if (!store.tryGet(R.Namespace, undefined, ns)) return;

    // 1. CA secret (createOrUpdateCACertificateSecret): renew when less than renewBefore is left.
    const caSecret = store.tryGet(R.Secret, ns, KubeVirtCASecretName);
    let ca = keyPairFromSecret(caSecret);
    const renewAt = ca ? ca.notAfter.getTime() - this.realMs(cfg.caRenewBeforeMs) : 0;
    if (!ca || Date.now() >= renewAt || this.forceRotate) {
      this.forceRotate = false;
      ca = createCA(this.realMs(cfg.caDurationMs));
      this.writeSecret(KubeVirtCASecretName, ca, cfg.caDurationMs);
    }
    this.queue.addAfter("kubevirt", Math.max(1000, this.sim.clock.simMs(ca.notAfter.getTime() - this.realMs(cfg.caRenewBeforeMs) - Date.now()) + 1000));

    // 2. external CA inbox
    let external = store.tryGet(R.ConfigMap, ns, ExternalKubeVirtCAConfigMapName);
    if (!external) {
      external = store.create(R.ConfigMap, { metadata: { name: ExternalKubeVirtCAConfigMapName, namespace: ns, labels: OPERATOR_LABELS }, data: { [CABundleKey]: "" } }, { internal: true });
    }
    const inbox: string = external.data?.[CABundleKey] ?? "";
    const externalCerts = inbox && bundleParses(inbox) ? validCerts(parseBundle(inbox)) : [];

    // 3. CA bundle (createOrUpdateKubeVirtCAConfigMap + shouldUpdateBundle + MergeCABundle)
    const caCm = store.tryGet(R.ConfigMap, ns, KubeVirtCAConfigMapName);
    if (!caCm) {
      const data = externalCerts.map((c) => c.toString().replace(/\n?$/, "\n")).join("") + ca.certPem;
      store.create(R.ConfigMap, { metadata: { name: KubeVirtCAConfigMapName, namespace: ns, labels: OPERATOR_LABELS }, data: { [CABundleKey]: data } }, { internal: true });
    } else {
      const existing: string = caCm.data?.[CABundleKey] ?? "";
      let bundle: string;
      if (!bundleParses(existing)) bundle = ca.certPem;
      else {
        const merged = mergeCABundle(ca.cert, existing, this.realMs(cfg.caRenewBeforeMs));
        // ensure that we remove the old CA after the overlap period
        if (merged.count > 1) this.queue.addAfter("kubevirt", cfg.caRenewBeforeMs + 1000);
        bundle = bundleWithExternal(merged.bundle, externalCerts);
      }
      if (bundle !== existing) {
        store.modify(R.ConfigMap, ns, KubeVirtCAConfigMapName, (o) => (o.data = { [CABundleKey]: bundle }));
      }
    }
    // 4. cleanupExternalCACerts: the inbox is emptied after every merge
    if (inbox !== "") store.modify(R.ConfigMap, ns, ExternalKubeVirtCAConfigMapName, (o) => (o.data = { [CABundleKey]: "" }));

    // 5. synchronization controller certificates, re-issued with a new CA or before they expire
    for (const [name, cn, usage] of [[SyncServerCertSecret, SyncServerCN, "server"], [SyncClientCertSecret, SyncClientCN, "client"]] as const) {
      const cur = keyPairFromSecret(store.tryGet(R.Secret, ns, name));
      const signedByCA = cur && cur.cert.checkIssued(ca.cert) && cur.cert.verify(ca.cert.publicKey);
      // a certificate cut short by its CA's expiry is renewed with the CA, not before
      const capped = (kp: KeyPair) => kp.notAfter.getTime() >= ca.notAfter.getTime() - 1000;
      const due = !cur || (!capped(cur) && Date.now() >= cur.notAfter.getTime() - this.realMs(cfg.certRenewBeforeMs));
      let kp = cur;
      if (!signedByCA || due || !kp) {
        kp = signLeaf(ca, cn, usage, this.realMs(cfg.certDurationMs));
        this.writeSecret(name, kp, cfg.certDurationMs);
      }
      if (!capped(kp)) this.queue.addAfter("kubevirt", Math.max(1000, this.sim.clock.simMs(kp.notAfter.getTime() - this.realMs(cfg.certRenewBeforeMs) - Date.now()) + 1000));
    }

    // 6. the synchronization controller runs when the gate is on
    const gate = cfg.isEnabled(DecentralizedLiveMigration);
    let address: string | undefined;
    if (gate) {
      address = await this.sync.ensureEndpoint();
      this.ensureLease();
    } else await this.sync.stopEndpoint();

    // 7. status
    const fresh = findKubeVirt(store, ns);
    if (!fresh) return;
    const st: any = structuredClone(fresh.status ?? {});
    const deploymentID = createHash("sha1").update(this.sim.version).digest("hex").slice(0, 16);
    st.phase = "Deployed";
    st.observedKubeVirtVersion = this.sim.version;
    st.targetKubeVirtVersion = this.sim.version;
    st.observedKubeVirtRegistry = "quay.io/kubevirt";
    st.targetKubeVirtRegistry = "quay.io/kubevirt";
    st.operatorVersion = this.sim.version;
    st.observedDeploymentID = deploymentID;
    st.targetDeploymentID = deploymentID;
    st.observedDeploymentConfig = st.observedDeploymentConfig ?? "{}";
    st.defaultArchitecture = "amd64";
    st.observedGeneration = fresh.metadata.generation;
    const t = now();
    const cond = (type: string, status: string, reason: string, message: string) => {
      const old = (st.conditions ?? []).find((c: any) => c.type === type);
      return { type, status, reason, message, lastProbeTime: old?.lastProbeTime ?? t, lastTransitionTime: old?.status === status ? old.lastTransitionTime : t };
    };
    st.conditions = [
      cond("Available", "True", "AllComponentsReady", "All components are ready."),
      cond("Progressing", "False", "AllComponentsReady", "All components are ready."),
      cond("Degraded", "False", "AllComponentsReady", "All components are ready."),
      cond("Created", "True", "AllResourcesCreated", "All resources were created."),
    ];
    if (gate && address) st.synchronizationAddresses = [address];
    else delete st.synchronizationAddresses;
    if (!deepEqual(st, fresh.status ?? {})) {
      store.modify(R.KubeVirt, ns, fresh.metadata.name, (o) => (o.status = st), { subresource: "status" });
    }
    this.sync.reloadCredentials();
    for (const n of store.list(R.Node).items) this.labelNode(n);
  }

  /** A new sync-controller leader pod: new address (moveSyncAddress). */
  async moveSyncAddress(): Promise<void> {
    this.leasePod = `${SyncControllerName}-${randSuffix(10)}-${randSuffix()}`;
    await this.sync.moveEndpoint();
    this.ensureLease();
    this.queue.add("kubevirt");
  }

  private ensureLease(): void {
    const store = this.sim.store;
    const lease = store.tryGet(R.Lease, this.sim.ns, SyncControllerName);
    const spec = { holderIdentity: this.leasePod, leaseDurationSeconds: 15, acquireTime: lease?.spec?.holderIdentity === this.leasePod ? lease.spec.acquireTime : new Date().toISOString(), renewTime: lease?.spec?.renewTime ?? new Date().toISOString() };
    if (!lease) store.create(R.Lease, { metadata: { name: SyncControllerName, namespace: this.sim.ns }, spec }, { internal: true });
    else if (lease.spec?.holderIdentity !== this.leasePod) store.modify(R.Lease, this.sim.ns, SyncControllerName, (o) => (o.spec = spec));
  }

  private writeSecret(name: string, kp: KeyPair, durationSimMs: number): void {
    const store = this.sim.store;
    const data = { "tls.crt": b64(kp.certPem), "tls.key": b64(kp.keyPem) };
    const annotations = { "kubevirt.io/duration": `${Math.round(durationSimMs / 1000)}s` };
    if (store.tryGet(R.Secret, this.sim.ns, name)) {
      store.modify(R.Secret, this.sim.ns, name, (o) => {
        o.data = data;
        o.metadata.annotations = { ...o.metadata.annotations, ...annotations };
      });
    } else {
      store.create(R.Secret, { metadata: { name, namespace: this.sim.ns, labels: OPERATOR_LABELS, annotations }, type: "kubernetes.io/tls", data }, { internal: true });
    }
  }

  stop(): void {
    this.queue.stop();
  }
}
