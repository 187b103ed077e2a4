 
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { R } from "../apiserver/resources.js";
import type { SimCluster } from "../cluster.js";
import { CABundleKey } from "./constants.js";
import { createCA, mergeCABundle, parseBundle, validCerts } from "./pki.js";
import { type TestCluster, get, startTestCluster, vmSpec, waitFor } from "./testing.js";

const clusters: TestCluster[] = [];
afterEach(async () => {
  for (const c of clusters.splice(0)) await c.stop();
});

const bundle = (c: SimCluster): string => get(c, "ConfigMap", "kubevirt", "kubevirt-ca")!.data[CABundleKey];
const fingerprints = (pem: string) => parseBundle(pem).map((x) => x.fingerprint256);
const inbox = (c: SimCluster, pem: string) => c.store.modify(R.ConfigMap, "kubevirt", "kubevirt-external-ca", (o) => (o.data = { [CABundleKey]: pem }));

describe("CA bundle rules (virt-operator MergeCABundle / getValidCerts)", () => {
  it("keeps the current CA first and older ones only while their successor is younger than the overlap", () => {
    const old = createCA(3600_000);
    const cur = createCA(3600_000);
    const both = mergeCABundle(cur.cert, old.certPem + cur.certPem, 60_000);
    expect(both.count).toBe(2);
    expect(fingerprints(both.bundle)[0]).toBe(cur.cert.fingerprint256);
    // once the current CA is older than the overlap everything else goes
    const later = mergeCABundle(cur.cert, old.certPem + cur.certPem, 60_000, Date.now() + 120_000);
    expect(later.count).toBe(1);
  });

  it("drops expired and not-yet-valid certificates and duplicates", () => {
    const a = createCA(3600_000);
    expect(validCerts([a.cert, a.cert])).toHaveLength(1);
    expect(validCerts([a.cert], Date.now() + 7200_000)).toHaveLength(0);
    expect(validCerts([a.cert], Date.now() - 10_000)).toHaveLength(0);
  });
});

describe("simulated virt-operator", () => {
  it("deploys: CA Secret and bundle, empty external inbox, Deployed status with the sync address", async () => {
    const t = await startTestCluster();
    clusters.push(t);
    const c = t.cluster;
    const secret = get(c, "Secret", "kubevirt", "kubevirt-ca")!;
    expect(secret.type).toBe("kubernetes.io/tls");
    expect(Object.keys(secret.data).sort()).toEqual(["tls.crt", "tls.key"]);
    expect(parseBundle(bundle(c))[0]!.subject).toMatch(/CN=kubevirt\.io@\d+/);
    expect(get(c, "ConfigMap", "kubevirt", "kubevirt-external-ca")!.data).toEqual({ "ca-bundle": "" });
    const kv = get(c, "KubeVirt", "kubevirt", "kubevirt")!;
    expect(kv.status).toMatchObject({ phase: "Deployed", observedKubeVirtVersion: "v1.8.2" });
    expect(kv.status.synchronizationAddresses).toEqual([t.kv.syncAddress]);
    expect(get(c, "Lease", "kubevirt", "virt-synchronization-controller")!.spec.holderIdentity).toMatch(/^virt-synchronization-controller-/);
  });

  it("publishes no synchronizationAddresses without the gate", async () => {
    const t = await startTestCluster({ kubevirt: { featureGates: [] } });
    clusters.push(t);
    expect(get(t.cluster, "KubeVirt", "kubevirt", "kubevirt")!.status.synchronizationAddresses).toBeUndefined();
    expect(t.kv.syncAddress).toBeUndefined();
  });

  it("merges valid certificates from kubevirt-external-ca, de-duplicated, then empties the inbox; garbage is ignored", async () => {
    const t = await startTestCluster();
    clusters.push(t);
    const c = t.cluster;
    const foreign = createCA(3600_000);
    const expired = createCA(0, "kubevirt.io", { notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
    inbox(c, `${foreign.certPem}${foreign.certPem}`);
    await waitFor("merged", () => fingerprints(bundle(c)).includes(foreign.cert.fingerprint256));
    expect(fingerprints(bundle(c))).toHaveLength(2);
    await waitFor("inbox reset", () => get(c, "ConfigMap", "kubevirt", "kubevirt-external-ca")!.data["ca-bundle"] === "");
    inbox(c, expired.certPem);
    await waitFor("inbox reset", () => get(c, "ConfigMap", "kubevirt", "kubevirt-external-ca")!.data["ca-bundle"] === "");
    expect(fingerprints(bundle(c))).not.toContain(expired.cert.fingerprint256);
    inbox(c, "not a certificate at all");
    await waitFor("inbox reset", () => get(c, "ConfigMap", "kubevirt", "kubevirt-external-ca")!.data["ca-bundle"] === "");
    expect(fingerprints(bundle(c))).toHaveLength(2);
  });

  it("rotates the CA: the bundle keeps the old CA for the overlap, imported CAs drop out afterwards", async () => {
    // a 20-minute CA (overlap 4 simulated minutes = 2.4 s at scale 100; x509 times have whole seconds)
    const t = await startTestCluster({ scale: 100, kubevirt: { selfSigned: { ca: { duration: "20m" } } } });
    clusters.push(t);
    const c = t.cluster;
    const foreign = createCA(3600_000);
    inbox(c, foreign.certPem);
    await waitFor("imported", () => fingerprints(bundle(c)).includes(foreign.cert.fingerprint256));
    const oldCA = fingerprints(bundle(c))[0];
    const syncCertBefore = get(c, "Secret", "kubevirt", "kubevirt-synchronization-controller-server-certs")!.data["tls.crt"];
    await t.kv.rotateCA();
    const after = fingerprints(bundle(c));
    expect(after[0]).not.toBe(oldCA);
    expect(after).toEqual(expect.arrayContaining([oldCA, foreign.cert.fingerprint256]));
    expect(get(c, "Secret", "kubevirt", "kubevirt-synchronization-controller-server-certs")!.data["tls.crt"]).not.toBe(syncCertBefore);
    await waitFor("old and imported CAs dropped", () => fingerprints(bundle(c)).length === 1, 10_000);
  });

  it("moves the synchronization address: the CR and new VMIMs report the new one, the old port refuses", async () => {
    const t = await startTestCluster({ namespaces: ["default"] });
    clusters.push(t);
    const c = t.cluster;
    const old = t.kv.syncAddress!;
    await t.kv.moveSyncAddress();
    const now = get(c, "KubeVirt", "kubevirt", "kubevirt")!.status.synchronizationAddresses;
    expect(now).toEqual([t.kv.syncAddress]);
    expect(now[0]).not.toBe(old);
    const [host, port] = old.split(":");
    const refused = await new Promise<string>((resolve) => {
      const s = net.connect(Number(port), host);
      s.on("connect", () => {
        s.destroy();
        resolve("connected");
      });
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
    c.store.create(R.VirtualMachine, { ...vmSpec("r", { runStrategy: "WaitAsReceiver" }), metadata: { name: "r", namespace: "default" } });
    await waitFor("receiver", () => get(c, "VirtualMachineInstance", "default", "r")?.status?.phase === "WaitingForSync");
    c.store.create(R.VirtualMachineInstanceMigration, { metadata: { name: "t", namespace: "default" }, spec: { vmiName: "r", receive: { migrationID: "x" } } });
    const m = await waitFor("addresses", () => get(c, "VirtualMachineInstanceMigration", "default", "t")?.status?.synchronizationAddresses);
    expect(m).toEqual(now);
  });
});
