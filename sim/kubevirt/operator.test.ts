 
// The simulated virt-operator (CA, bundle, external-CA inbox, sync endpoint), driven over HTTPS
// (client-node) with faults from the control API; the CA bundle rules also as plain functions.
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { KubeClient } from "../testing.js";
import { CABundleKey } from "./constants.js";
import { getKubeVirt } from "./index.js";
import { createCA, mergeCABundle, parseBundle, validCerts } from "./pki.js";
import { type TestCluster, startTestCluster, vmSpec, waitFor } from "./testing.js";

let tc: (TestCluster & { stop(): Promise<void> }) | undefined;
afterEach(async () => {
  await tc?.stop();
  tc = undefined;
});

const bundle = async (k: KubeClient): Promise<string> => (await k.must("ConfigMap", "kubevirt", "kubevirt-ca")).data[CABundleKey];
const inboxOf = async (k: KubeClient): Promise<string> => (await k.must("ConfigMap", "kubevirt", "kubevirt-external-ca")).data[CABundleKey];
const fingerprints = (pem: string) => parseBundle(pem).map((x) => x.fingerprint256);
const inbox = (k: KubeClient, pem: string) => k.patch("ConfigMap", "kubevirt", "kubevirt-external-ca", { data: { [CABundleKey]: pem } });
/** The sync controller's listening address: no API shows it except the CR, which is what is checked (a sim internal). */
const listener = (c: TestCluster) => getKubeVirt(c.world.cluster(c.name).cluster)?.syncAddress;

/** Whether a TCP connection to host:port is accepted ("connected") or refused (the error code). */
function dial(addr: string): Promise<string> {
  const [host, port] = addr.split(":");
  return new Promise<string>((resolve) => {
    const s = net.connect(Number(port), host);
    s.on("connect", () => {
      s.destroy();
      resolve("connected");
    });
    s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
  });
}

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
    const c = (tc = await startTestCluster());
    const secret = await c.k.must("Secret", "kubevirt", "kubevirt-ca");
    expect(secret.type).toBe("kubernetes.io/tls");
    expect(Object.keys(secret.data).sort()).toEqual(["tls.crt", "tls.key"]);
    expect(parseBundle(await bundle(c.k))[0]!.subject).toMatch(/CN=kubevirt\.io@\d+/);
    expect((await c.k.must("ConfigMap", "kubevirt", "kubevirt-external-ca")).data).toEqual({ "ca-bundle": "" });
    const kv = await c.k.must("KubeVirt", "kubevirt", "kubevirt");
    expect(kv.status).toMatchObject({ phase: "Deployed", observedKubeVirtVersion: "v1.8.2" });
    expect(kv.status.synchronizationAddresses).toEqual([listener(c)]);
    expect(await dial(kv.status.synchronizationAddresses[0])).toBe("connected");
    expect((await c.k.must("Lease", "kubevirt", "virt-synchronization-controller")).spec.holderIdentity).toMatch(/^virt-synchronization-controller-/);
  });

  it("publishes no synchronizationAddresses without the gate", async () => {
    const c = (tc = await startTestCluster({ kubevirt: { featureGates: [] } }));
    expect((await c.k.must("KubeVirt", "kubevirt", "kubevirt")).status.synchronizationAddresses).toBeUndefined();
    expect(listener(c)).toBeUndefined();
  });

  it("merges valid certificates from kubevirt-external-ca, de-duplicated, then empties the inbox; garbage is ignored", async () => {
    const c = (tc = await startTestCluster());
    const foreign = createCA(3600_000);
    const expired = createCA(0, "kubevirt.io", { notBefore: new Date(Date.now() - 7200_000), notAfter: new Date(Date.now() - 3600_000) });
    await inbox(c.k, `${foreign.certPem}${foreign.certPem}`);
    await waitFor("merged", async () => fingerprints(await bundle(c.k)).includes(foreign.cert.fingerprint256));
    expect(fingerprints(await bundle(c.k))).toHaveLength(2);
    await waitFor("inbox reset", async () => (await inboxOf(c.k)) === "");
    await inbox(c.k, expired.certPem);
    await waitFor("inbox reset", async () => (await inboxOf(c.k)) === "");
    expect(fingerprints(await bundle(c.k))).not.toContain(expired.cert.fingerprint256);
    await inbox(c.k, "not a certificate at all");
    await waitFor("inbox reset", async () => (await inboxOf(c.k)) === "");
    expect(fingerprints(await bundle(c.k))).toHaveLength(2);
  });

  it("rotates the CA: the bundle keeps the old CA for the overlap, imported CAs drop out afterwards", async () => {
    // a 20-minute CA (overlap 4 simulated minutes = 2.4 s at scale 100; x509 times have whole seconds)
    const c = (tc = await startTestCluster({ scale: 100, kubevirt: { selfSigned: { ca: { duration: "20m" } } } }));
    const foreign = createCA(3600_000);
    await inbox(c.k, foreign.certPem);
    await waitFor("imported", async () => fingerprints(await bundle(c.k)).includes(foreign.cert.fingerprint256));
    const oldCA = fingerprints(await bundle(c.k))[0];
    const syncCertBefore = (await c.k.must("Secret", "kubevirt", "kubevirt-synchronization-controller-server-certs")).data["tls.crt"];
    await c.kv.rotateCA();
    const after = fingerprints(await bundle(c.k));
    expect(after[0]).not.toBe(oldCA);
    expect(after).toEqual(expect.arrayContaining([oldCA, foreign.cert.fingerprint256]));
    expect((await c.k.must("Secret", "kubevirt", "kubevirt-synchronization-controller-server-certs")).data["tls.crt"]).not.toBe(syncCertBefore);
    await waitFor("old and imported CAs dropped", async () => fingerprints(await bundle(c.k)).length === 1, 10_000);
  });

  it("moves the synchronization address: the CR and new VMIMs report the new one, the old port refuses", async () => {
    const c = (tc = await startTestCluster());
    const old = (await c.k.must("KubeVirt", "kubevirt", "kubevirt")).status.synchronizationAddresses[0];
    await c.kv.moveSyncAddress();
    const now = (await c.k.must("KubeVirt", "kubevirt", "kubevirt")).status.synchronizationAddresses;
    expect(now).toEqual([listener(c)]);
    expect(now[0]).not.toBe(old);
    expect(await dial(old)).toBe("ECONNREFUSED");
    expect(await dial(now[0])).toBe("connected");
    await c.k.create("VirtualMachine", "default", vmSpec("r", { runStrategy: "WaitAsReceiver" }));
    await waitFor("receiver", async () => (await c.k.get("VirtualMachineInstance", "default", "r"))?.status?.phase === "WaitingForSync");
    await c.k.create("VirtualMachineInstanceMigration", "default", { metadata: { name: "t" }, spec: { vmiName: "r", receive: { migrationID: "x" } } });
    const m = await waitFor("addresses", async () => (await c.k.get("VirtualMachineInstanceMigration", "default", "t"))?.status?.synchronizationAddresses);
    expect(m).toEqual(now);
  });
});
