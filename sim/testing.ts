// Helpers for tests that talk to simulated clusters over HTTP(S) (used by sim's own tests; other
// parts of ferry may use them too).
import { ApiException, KubeConfig } from "@kubernetes/client-node";

/** A client-node KubeConfig for a kubeconfig YAML string. */
export function kubeConfig(yaml: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(yaml);
  return kc;
}

/** The Kubernetes `Status` carried by a client-node ApiException (undefined for other errors). */
export function statusOf(e: unknown): { code: number; reason?: string; message?: string } | undefined {
  if (!(e instanceof ApiException)) return undefined;
  let body: unknown = e.body;
  if (typeof body === "string") {
    try {
      body = JSON.parse(body);
    } catch {
      body = undefined;
    }
  }
  const b = (body ?? {}) as { reason?: string; message?: string };
  return { code: e.code, ...(b.reason ? { reason: b.reason } : {}), ...(b.message ? { message: b.message } : {}) };
}

/** Runs `fn`, expecting it to reject with an ApiException; returns its status. */
export async function expectApiError(fn: () => Promise<unknown>): Promise<{ code: number; reason?: string; message?: string }> {
  try {
    await fn();
  } catch (e) {
    const s = statusOf(e);
    if (s) return s;
    throw e;
  }
  throw new Error("expected the call to fail with an ApiException");
}

/** Polls `check` until it returns a truthy value (or stops throwing) within `timeoutMs`. */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000, what = "condition"): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
      last = undefined;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : last !== undefined ? `: ${JSON.stringify(last)}` : ""}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
