// Runs the real ferryctl (cli/bin/ferryctl.js, as `npx ferryctl` does) as a subprocess, and writes
// ferryctl configs with admin certificates from a broker test env.
import { spawn, type ChildProcess } from "node:child_process";
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

/** Everything `child` writes, and its exit code, once it has exited. */
export function collect(child: ChildProcess): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * `ferryctl args…` on a pseudo-terminal (util-linux `script`), so stdout is a TTY as in a shell.
 * Output is what the terminal received, escape sequences included.
 */
export function ferryctlOnTty(args: string[], opts: { config: string; columns?: number }): Promise<RunResult> {
  const quoted = [process.execPath, FERRYCTL, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(" ");
  return collect(spawn("script", ["-qec", `stty cols ${opts.columns ?? 160}; ${quoted}`, "/dev/null"], { env: { ...process.env, FERRY_CONFIG: opts.config }, stdio: ["pipe", "pipe", "pipe"] }));
}

/** `ferryctl args…` with FERRY_CONFIG=config (unless env overrides it); stdin from `input`. */
export function ferryctl(args: string[], opts: { config?: string; env?: Record<string, string>; input?: string; cwd?: string } = {}): Promise<RunResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, ...(opts.config ? { FERRY_CONFIG: opts.config } : {}), ...opts.env };
  if (!opts.config && !opts.env?.["FERRY_CONFIG"]) delete env["FERRY_CONFIG"];
  const child = spawn(process.execPath, [FERRYCTL, ...args], { env, cwd: opts.cwd ?? process.cwd(), stdio: ["pipe", "pipe", "pipe"] });
  const done = collect(child);
  child.stdin.end(opts.input ?? "");
  return done;
}

export interface FerryctlProcess {
  /** Resolves with the first stdout line matching `re`; rejects if ferryctl exits first. */
  line(re: RegExp): Promise<string>;
  /** Resolves when ferryctl exits. */
  done: Promise<RunResult>;
}

/** `ferryctl args…` still running (e.g. `plan watch`), whose stdout lines can be awaited as they come. */
export function ferryctlProcess(args: string[], opts: { cwd?: string } = {}): FerryctlProcess {
  const child = spawn(process.execPath, [FERRYCTL, ...args], { cwd: opts.cwd ?? process.cwd(), stdio: ["ignore", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  const waiting: { re: RegExp; resolve: (l: string) => void }[] = [];
  const scan = () => {
    for (const w of [...waiting]) {
      const hit = stdout.split("\n").find((l) => w.re.test(l));
      if (hit !== undefined) {
        waiting.splice(waiting.indexOf(w), 1);
        w.resolve(hit);
      }
    }
  };
  child.stdout.on("data", (d: Buffer) => {
    stdout += d.toString();
    scan();
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
  return {
    done,
    line: (re) =>
      new Promise<string>((resolve, reject) => {
        waiting.push({ re, resolve });
        scan();
        void done.then((r) => reject(new Error(`ferryctl ${args.join(" ")} exited ${r.code} before a line matching ${re}:\n${r.stdout}${r.stderr}`)), reject);
      }),
  };
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
