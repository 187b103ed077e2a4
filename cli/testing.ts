// Runs the real ferryctl (cli/bin/ferryctl.js, as `npx ferryctl` does) as a subprocess, and writes
// ferryctl configs with admin certificates from a broker test env.
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify as toYaml } from "yaml";
import { issueCertificate, publicKeyOf, type CertificateAuthority } from "../pki/index.js";

export const FERRYCTL = join(dirname(fileURLToPath(import.meta.url)), "bin", "ferryctl.js");

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `ferryctl args…` with FERRY_CONFIG=config (unless env overrides it); stdin from `input`. */
export function ferryctl(args: string[], opts: { config?: string; env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.config ? { FERRY_CONFIG: opts.config } : {}), ...opts.env };
    if (!opts.config && !opts.env?.["FERRY_CONFIG"]) delete env["FERRY_CONFIG"];
    const child = spawn(process.execPath, [FERRYCTL, ...args], { env, cwd: opts.cwd ?? process.cwd(), stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.input ?? "");
  });
}

/**
 * Writes an admin certificate + key and a ferryctl.yaml naming `brokers` into `dir`; returns the
 * config path. `extra` is merged into the config document.
 */
export function writeFerryctlConfig(dir: string, ca: CertificateAuthority, keyPem: string, brokers: string[], extra: Record<string, unknown> = {}, name = "ferryctl"): string {
  const certPem = issueCertificate(ca, { role: "admin", name: "ferryctl" }, publicKeyOf(keyPem));
  writeFileSync(join(dir, `${name}-ca.crt`), ca.certPem);
  writeFileSync(join(dir, `${name}-admin.crt`), certPem);
  writeFileSync(join(dir, `${name}-admin.key`), keyPem, { mode: 0o600 });
  const path = join(dir, `${name}.yaml`);
  writeFileSync(
    path,
    toYaml({
      apiVersion: "ferry.dev/v1alpha1",
      kind: "FerryctlConfig",
      brokers,
      tlsServerName: "localhost",
      caFile: `${name}-ca.crt`,
      certFile: `${name}-admin.crt`,
      keyFile: `${name}-admin.key`,
      natsUrl: "tls://127.0.0.1:4222",
      ...extra,
    }),
  );
  return path;
}
