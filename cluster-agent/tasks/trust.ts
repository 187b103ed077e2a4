// CA trust: the peers' KubeVirt CA bundles go into ConfigMap kubevirt-external-ca (virt-operator's
// inbox, which it merges into kubevirt-ca and then empties). Presence is checked in kubevirt-ca,
// never in the inbox. The Secret kubevirt-ca (the private CA) is never read or written.
import type { TaskSet, TrustStatus } from "../../proto/bus/index.js";
import { bundleContains, mergeCaBundles, serializeCaBundle, validateCaBundle } from "../../pki/bundle.js";
import type { KubeObj } from "../core/kube.js";
import { readKubeVirt, type Ctx } from "./context.js";

export const CA_CONFIGMAP = "kubevirt-ca";
export const EXTERNAL_CA_CONFIGMAP = "kubevirt-external-ca";
export const CA_BUNDLE_KEY = "ca-bundle";
const PUSHED_AT_ANNOTATION = "ferry.dev/pushed-at";

type ConfigMap = KubeObj & { data?: Record<string, string> };

/** Fingerprints of the currently valid CA certificates of a bundle ([] if it does not parse). */
export function bundleFingerprints(pem: string, now: Date): string[] {
  try {
    return validateCaBundle(pem, now).valid.map((c) => c.fingerprint256);
  } catch {
    return [];
  }
}

export async function reconcileTrust(ctx: Ctx, trust: TaskSet["trust"]): Promise<TrustStatus[]> {
  if (trust.length === 0) return [];
  const kv = await readKubeVirt(ctx);
  if (!kv) throw new Error(`cluster ${ctx.cluster} has no KubeVirt CR: cannot import peer CAs (install KubeVirt)`);
  const namespace = kv.metadata.namespace ?? "kubevirt";
  const now = ctx.now();
  const [ca, inbox] = await Promise.all([
    ctx.kube.get<ConfigMap>({ apiVersion: "v1", kind: "ConfigMap", namespace, name: CA_CONFIGMAP }),
    ctx.kube.get<ConfigMap>({ apiVersion: "v1", kind: "ConfigMap", namespace, name: EXTERNAL_CA_CONFIGMAP }),
  ]);
  const own = ca?.data?.[CA_BUNDLE_KEY] ?? "";
  const peers = trust.map((t) => {
    let valid: ReturnType<typeof validateCaBundle>["valid"] = [];
    try {
      valid = validateCaBundle(t.caBundle, now).valid;
    } catch (e) {
      ctx.log.warn({ peer: t.peer, err: (e as Error).message }, "peer CA bundle does not parse; not imported");
    }
    let present = valid.length > 0;
    if (present) {
      try {
        present = bundleContains(own, valid).contained;
      } catch {
        present = false;
      }
    }
    return { peer: t.peer, valid, present };
  });
  // Every peer's bundle together: a later import replaces an earlier one in virt-operator's merge.
  const want = serializeCaBundle(mergeCaBundles(...peers.map((p) => p.valid).filter((v) => v.length > 0)));
  const current = inbox?.data?.[CA_BUNDLE_KEY] ?? "";
  let pushedAt = inbox?.metadata.annotations?.[PUSHED_AT_ANNOTATION];
  // Push when something is missing, unless exactly this is already waiting in the inbox for virt-operator.
  if (want && peers.some((p) => !p.present && p.valid.length > 0) && current !== want) {
    pushedAt = now.toISOString();
    const body = { apiVersion: "v1", kind: "ConfigMap", metadata: { name: EXTERNAL_CA_CONFIGMAP, namespace, annotations: { [PUSHED_AT_ANNOTATION]: pushedAt } }, data: { [CA_BUNDLE_KEY]: want } };
    if (inbox) await ctx.kube.mergePatch(body);
    else await ctx.kube.create(body);
    ctx.log.info({ peers: peers.filter((p) => !p.present).map((p) => p.peer) }, "pushed peer CA bundles to kubevirt-external-ca");
  }
  return peers.map((p) => ({
    peer: p.peer,
    fingerprints: p.valid.map((c) => c.fingerprint256).slice(0, 64),
    present: p.present,
    ...(pushedAt ? { lastPushAt: pushedAt } : {}),
  }));
}
