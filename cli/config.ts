// ferryctl.yaml: where the broker is and which admin certificate to present, like a kubeconfig.
// Pure: parse and validate text into a config; `resolveConfigPath` and `loadCredentials` take the
// file reads as arguments so every error can be tested without a disk.
import { isAbsolute, join, resolve, dirname } from "node:path";
import { X509Certificate, createPrivateKey } from "node:crypto";
import { parseDocument } from "yaml";
import { z } from "zod";
import { parseWith } from "../proto/issues.js";
import { CliError } from "./errors.js";

export const CONFIG_ENV = "FERRY_CONFIG";
/** Looked for in the working directory, in this order, when neither --config nor FERRY_CONFIG is given. */
export const DEFAULT_CONFIG_PATHS = ["ferryctl.yaml", ".ferry/ferryctl.yaml"] as const;

const HostPort = z.string().regex(/^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, {
  error: (i) => `broker address ${JSON.stringify(i.input)} must be host:port, e.g. "ferry.example.com:7443"`,
});
const Pem = z.string().min(1).max(1024 * 1024);
const Path = z.string().min(1).max(4096);

/** The ferryctl.yaml document (`kind: FerryctlConfig`). File paths are relative to the file. */
export const FerryctlConfig = z
  .strictObject({
    apiVersion: z.literal("ferry.dev/v1alpha1", { error: 'apiVersion must be "ferry.dev/v1alpha1"' }).default("ferry.dev/v1alpha1"),
    kind: z.literal("FerryctlConfig", { error: 'kind must be "FerryctlConfig"' }).default("FerryctlConfig"),
    /** Broker replicas' gRPC addresses; a standby names the leader and ferryctl follows it. */
    brokers: z.array(HostPort).min(1, { error: "list at least one broker address (host:port)" }).max(16),
    /** Name to verify in the broker's certificate instead of the address's host (kubeconfig tls-server-name). */
    tlsServerName: z.string().min(1).max(253).optional(),
    /** The ferry CA (PEM): a file, or the PEM itself in caData. */
    caFile: Path.optional(),
    caData: Pem.optional(),
    /** The admin client certificate (OU ferry-admin) and its key. */
    certFile: Path.optional(),
    certData: Pem.optional(),
    keyFile: Path.optional(),
    keyData: Pem.optional(),
    /** NATS URL agents connect to; printed in `cluster add`'s install command. */
    natsUrl: z.string().regex(/^(?:tls|nats):\/\/\S+$/, { error: 'natsUrl must look like "tls://nats.example.com:4222"' }).optional(),
  })
  .superRefine((c, ctx) => {
    for (const what of ["ca", "cert", "key"] as const) {
      const file = c[`${what}File`];
      const data = c[`${what}Data`];
      if (file === undefined && data === undefined) ctx.addIssue({ code: "custom", path: [`${what}File`], message: `set ${what}File (a path) or ${what}Data (the PEM)` });
      if (file !== undefined && data !== undefined) ctx.addIssue({ code: "custom", path: [`${what}Data`], message: `set ${what}File or ${what}Data, not both` });
    }
  });
export type FerryctlConfig = z.output<typeof FerryctlConfig>;

/** Which file to read: --config, then $FERRY_CONFIG, then the first default path that exists. */
export function resolveConfigPath(flag: string | undefined, env: NodeJS.ProcessEnv, cwd: string, exists: (p: string) => boolean): { path: string; from: string } {
  if (flag) return { path: resolve(cwd, flag), from: "--config" };
  const fromEnv = env[CONFIG_ENV];
  if (fromEnv) return { path: resolve(cwd, fromEnv), from: CONFIG_ENV };
  for (const p of DEFAULT_CONFIG_PATHS) {
    const abs = join(cwd, p);
    if (exists(abs)) return { path: abs, from: "default" };
  }
  throw new CliError(
    `no ferryctl config: pass --config FILE or set ${CONFIG_ENV} (none of ${DEFAULT_CONFIG_PATHS.join(", ")} exists here); \`npm run ferry -- up\` writes one`,
  );
}

/** Parses and validates the config text; errors name the file, the field and the fix. */
export function parseConfig(text: string, path: string): FerryctlConfig {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const line = e.linePos?.[0].line;
    throw new CliError(`${path}${line ? `:${line}` : ""}: not valid YAML: ${(e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "")}`);
  }
  const parsed = parseWith(FerryctlConfig, doc.toJS() ?? {});
  if (!parsed.ok) {
    const first = parsed.issues[0]!;
    const more = parsed.issues.length > 1 ? ` (and ${parsed.issues.length - 1} more: ${parsed.issues.slice(1).map((i) => i.path).join(", ")})` : "";
    throw new CliError(`${path}: ${first.path}: ${first.message}${more}`);
  }
  return parsed.value;
}

export interface Credentials {
  caPem: string;
  certPem: string;
  keyPem: string;
}

/**
 * Reads the CA, certificate and key (files relative to the config file) and checks that they are
 * PEM of the right kind, that the key matches the certificate and that the certificate is not
 * expired, so a wrong file is named here instead of surfacing as a TLS handshake failure.
 */
export function loadCredentials(config: FerryctlConfig, configPath: string, read: (p: string) => string, now: Date): Credentials {
  const base = dirname(configPath);
  const get = (what: "ca" | "cert" | "key"): { pem: string; where: string } => {
    const data = config[`${what}Data`];
    if (data !== undefined) return { pem: data, where: `${what}Data in ${configPath}` };
    const file = config[`${what}File`]!;
    const p = isAbsolute(file) ? file : join(base, file);
    try {
      return { pem: read(p), where: p };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : e instanceof Error ? e.message : String(e);
      throw new CliError(`${what}File ${p}: ${why}; fix ${what}File in ${configPath} (paths are relative to that file)`);
    }
  };
  const ca = get("ca");
  const cert = get("cert");
  const key = get("key");
  let caCert: X509Certificate;
  let leaf: X509Certificate;
  try {
    caCert = new X509Certificate(ca.pem);
  } catch {
    throw new CliError(`${ca.where} is not a PEM certificate; point caFile at the ferry CA certificate (ca.crt)`);
  }
  try {
    leaf = new X509Certificate(cert.pem);
  } catch {
    throw new CliError(`${cert.where} is not a PEM certificate; point certFile at the admin client certificate`);
  }
  let privateKey;
  try {
    privateKey = createPrivateKey(key.pem);
  } catch {
    throw new CliError(`${key.where} is not a PEM private key; point keyFile at the admin certificate's key`);
  }
  if (!leaf.checkPrivateKey(privateKey)) {
    throw new CliError(`${key.where} is not the key of ${cert.where}; use the key issued with that certificate`);
  }
  if (new Date(leaf.validTo) < now) {
    throw new CliError(`${cert.where} expired on ${new Date(leaf.validTo).toISOString()}; issue a new admin certificate (30-day lifetime) and update certFile/keyFile`);
  }
  if (!leaf.checkIssued(caCert) || !leaf.verify(caCert.publicKey)) {
    throw new CliError(`${cert.where} is not signed by the CA in ${ca.where}; use the admin certificate issued by this ferry CA, or fix caFile`);
  }
  if (!/(^|\n)OU=ferry-admin(\n|$)/.test(leaf.subject)) {
    throw new CliError(`${cert.where} is not an admin certificate (subject ${leaf.subject.replace(/\n/g, ", ")}); the broker accepts only OU=ferry-admin`);
  }
  return { caPem: ca.pem, certPem: cert.pem, keyPem: key.pem };
}
