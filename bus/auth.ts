// NATS authorization in operator/JWT mode (works on nats-server 2.9, needs no restart to add a
// cluster): one operator, the system account, and one FERRY account with JetStream. The broker holds
// the FERRY account's signing key and mints user JWTs (itself, one per cluster agent); it also holds
// an operator *signing* key so it can re-issue the FERRY account JWT with a revocation list and push
// it to the servers over `$SYS.REQ.CLAIMS.UPDATE` (a `full` resolver accepts such pushes live).
// See bus/README.md for the reasoning.
import {
  Algorithms,
  createAccount,
  createOperator,
  createUser,
  decode,
  encodeAccount,
  encodeOperator,
  encodeUser,
  fromPublic,
  fromSeed,
  type Account,
  type KeyPair,
  type Permissions,
  type User,
} from "@nats-io/jwt";
import type { NatsConnection } from "@nats-io/transport-node";
import { agentSubjectPermissions, SUBJECT_ROOT } from "./subjects.js";
import { assertClusterName, certInfo, PkiError, roleOf } from "../pki/index.js";

export const FERRY_ACCOUNT_NAME = "FERRY";
export const SYSTEM_ACCOUNT_NAME = "SYS";

const te = new TextEncoder();
const td = new TextDecoder();
const seedOf = (kp: KeyPair) => td.decode(kp.getSeed());
const kpOf = (seed: string) => fromSeed(te.encode(seed));

/**
 * Deployment-wide NATS trust material. JSON-serialisable (store it as a Kubernetes Secret next to
 * the CA key); everything here is secret except the public keys and JWTs.
 */
export interface BusAuthority {
  operator: {
    publicKey: string;
    /** Operator JWT: goes into every nats-server config (`operator:`). */
    jwt: string;
    /** Operator signing key: signs account JWTs (revocation pushes). The identity seed stays offline. */
    signingSeed: string;
  };
  system: {
    publicKey: string;
    /** System account identity seed: mints the system user that pushes account updates. */
    seed: string;
  };
  account: {
    name: string;
    publicKey: string;
    /** FERRY account signing key: mints broker and agent user JWTs. */
    signingSeed: string;
  };
}

export interface CreatedAuthority {
  authority: BusAuthority;
  /** Operator identity seed. Not needed at run time: keep it offline. */
  operatorSeed: string;
  /** System and FERRY account JWTs for `resolver_preload`. */
  preload: Record<string, string>;
}

/** Full JetStream/NATS limits, -1 = unlimited. A partial `limits` leaves conn/subs at 0 (deps.md §1). */
const UNLIMITED = {
  subs: -1,
  data: -1,
  payload: -1,
  imports: -1,
  exports: -1,
  wildcards: true,
  conn: -1,
  leaf: -1,
  mem_storage: -1,
  disk_storage: -1,
  streams: -1,
  consumer: -1,
  max_ack_pending: -1,
  mem_max_stream_bytes: -1,
  disk_max_stream_bytes: -1,
  max_bytes_required: false,
};

/** Users must name their permissions; a user JWT without any gets nothing (defence in depth). */
const DENY_ALL: Partial<Permissions> = { pub: { deny: [">"] }, sub: { deny: [">"] } };

/** User public key → unix seconds: user JWTs for that key issued at or before are revoked. */
export type Revocations = Record<string, number>;

export async function createBusAuthority(): Promise<CreatedAuthority> {
  const operator = createOperator();
  const operatorSigning = createOperator();
  const system = createAccount();
  const account = createAccount();
  const accountSigning = createAccount();
  const operatorJwt = await encodeOperator("ferry", operator, {
    signing_keys: [operatorSigning.getPublicKey()],
    system_account: system.getPublicKey(),
  });
  const authority: BusAuthority = {
    operator: { publicKey: operator.getPublicKey(), jwt: operatorJwt, signingSeed: seedOf(operatorSigning) },
    system: { publicKey: system.getPublicKey(), seed: seedOf(system) },
    account: { name: FERRY_ACCOUNT_NAME, publicKey: account.getPublicKey(), signingSeed: seedOf(accountSigning) },
  };
  return {
    authority,
    operatorSeed: seedOf(operator),
    preload: {
      [authority.system.publicKey]: await encodeSystemAccount(authority),
      [authority.account.publicKey]: await encodeFerryAccount(authority, {}),
    },
  };
}

export async function encodeSystemAccount(a: BusAuthority): Promise<string> {
  // The system account gets explicit (unlimited) connection limits too, otherwise conn=0.
  return encodeAccount(
    SYSTEM_ACCOUNT_NAME,
    fromPublic(a.system.publicKey),
    { limits: { subs: -1, data: -1, payload: -1, imports: -1, exports: -1, wildcards: true, conn: -1, leaf: -1 } },
    { signer: kpOf(a.operator.signingSeed), algorithm: Algorithms.v2 },
  );
}

/**
 * The FERRY account JWT: JetStream enabled with no limits, the broker's signing key, deny-all
 * default permissions, and the revocation list. Signed with the operator signing key.
 */
export async function encodeFerryAccount(a: BusAuthority, revocations: Revocations): Promise<string> {
  const accountSigning = kpOf(a.account.signingSeed);
  const claims: Partial<Account> = {
    limits: UNLIMITED,
    signing_keys: [accountSigning.getPublicKey()],
    default_permissions: DENY_ALL,
  };
  if (Object.keys(revocations).length > 0) claims.revocations = { ...revocations };
  return encodeAccount(a.account.name, fromPublic(a.account.publicKey), claims, {
    signer: kpOf(a.operator.signingSeed),
    algorithm: Algorithms.v2,
  });
}

export interface UserCredentials {
  /** User JWT (signed by the FERRY account signing key). */
  jwt: string;
  /** User nkey seed; absent when the caller supplied only a public key (the seed stays with its owner). */
  seed?: string;
  publicKey: string;
  /** JWT expiry, if any. */
  expiresAt?: Date;
}

export interface MintOptions {
  /** Mint for this user public key (e.g. the agent's own nkey) instead of generating a key pair. */
  userPublicKey?: string;
  /** JWT expiry; for agents, the certificate's notAfter. */
  expiresAt?: Date;
}

/** What a cluster agent may do: its own subjects, its own inbox, replies to broker requests. */
export function agentPermissions(cluster: string): Partial<Permissions> {
  assertClusterName(cluster);
  const subjects = agentSubjectPermissions(cluster); // proto/bus/subjects.ts: the one definition
  return {
    pub: { allow: subjects.publish },
    sub: { allow: subjects.subscribe },
    // May publish one reply to the reply subject of each request it received, within 1 minute.
    resp: { max: 1, ttl: 60_000_000_000 },
  };
}

/**
 * The broker: all ferry subjects, the JetStream and KV APIs, its own inbox; it replies to agents'
 * requests (whose reply subjects are under `_INBOX_<cluster>`, not expressible as one wildcard)
 * through the response permission.
 */
export function brokerPermissions(): Partial<Permissions> {
  return {
    pub: { allow: [`${SUBJECT_ROOT}.>`, "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>", "_INBOX.>"] },
    sub: { allow: [`${SUBJECT_ROOT}.>`, "_INBOX.>", "$JS.EVENT.>"] },
    resp: { max: 1, ttl: 60_000_000_000 },
  };
}

async function mintUser(
  a: BusAuthority,
  name: string,
  permissions: Partial<Permissions>,
  opts: MintOptions,
  extra: Partial<User> = {},
): Promise<UserCredentials> {
  const generated = opts.userPublicKey ? undefined : createUser();
  const publicKey = opts.userPublicKey ?? generated!.getPublicKey();
  if (!publicKey.startsWith("U")) throw new Error(`userPublicKey must be a NATS user public key (starts with U), got ${publicKey.slice(0, 8)}…`);
  const exp = opts.expiresAt ? Math.floor(opts.expiresAt.getTime() / 1000) : undefined;
  const jwt = await encodeUser(
    name,
    fromPublic(publicKey),
    fromPublic(a.account.publicKey),
    { ...permissions, allowed_connection_types: ["STANDARD"], ...extra },
    { signer: kpOf(a.account.signingSeed), algorithm: Algorithms.v2, ...(exp !== undefined ? { exp } : {}) },
  );
  const creds: UserCredentials = { jwt, publicKey };
  if (generated) creds.seed = seedOf(generated);
  if (opts.expiresAt) creds.expiresAt = new Date((exp ?? 0) * 1000);
  return creds;
}

/** Mint the JWT of one cluster's agent. Its expiry should be the agent certificate's notAfter. */
export async function mintAgentUser(a: BusAuthority, cluster: string, opts: MintOptions = {}): Promise<UserCredentials> {
  assertClusterName(cluster);
  return mintUser(a, `agent-${cluster}`, agentPermissions(cluster), opts, { tags: [`cluster:${cluster}`] });
}

/**
 * Mint the agent's JWT from its (just issued or renewed) certificate: the cluster comes from the
 * certificate's subject and the JWT expires with the certificate, so both credentials die together.
 */
export async function mintAgentUserForCertificate(a: BusAuthority, certPem: string, opts: { userPublicKey?: string } = {}): Promise<UserCredentials> {
  const identity = roleOf(certPem);
  if (identity.role !== "agent") throw new PkiError(`expected an agent certificate, got role ${identity.role}`, "invalid-role");
  return mintAgentUser(a, identity.cluster, { ...opts, expiresAt: certInfo(certPem).notAfter });
}

export function mintBrokerUser(a: BusAuthority, opts: MintOptions & { name?: string } = {}): Promise<UserCredentials> {
  return mintUser(a, opts.name ?? "broker", brokerPermissions(), opts);
}

/** A system-account user that may only push account JWT updates (and read the replies). */
export async function mintSystemUser(a: BusAuthority, opts: MintOptions = {}): Promise<UserCredentials> {
  const user = createUser();
  const exp = opts.expiresAt ? Math.floor(opts.expiresAt.getTime() / 1000) : undefined;
  const jwt = await encodeUser(
    "ferry-claims",
    user,
    kpOf(a.system.seed),
    {
      pub: { allow: ["$SYS.REQ.CLAIMS.UPDATE", "$SYS.REQ.ACCOUNT.*.CLAIMS.UPDATE"] },
      sub: { allow: ["_INBOX.>"] },
      allowed_connection_types: ["STANDARD"],
    },
    { algorithm: Algorithms.v2, ...(exp !== undefined ? { exp } : {}) },
  );
  return { jwt, seed: seedOf(user), publicKey: user.getPublicKey(), ...(opts.expiresAt ? { expiresAt: new Date((exp ?? 0) * 1000) } : {}) };
}

/** Add revocations (pure): every JWT of these user keys issued at or before `at` is refused. */
export function revokeUsers(revocations: Revocations, userPublicKeys: readonly string[], at: Date = new Date()): Revocations {
  const t = Math.floor(at.getTime() / 1000);
  const next = { ...revocations };
  for (const k of userPublicKeys) next[k] = Math.max(next[k] ?? 0, t);
  return next;
}

/**
 * Drop revocations older than the longest user-JWT lifetime: the JWTs they revoke have expired
 * anyway, and the account JWT stays small.
 */
export function pruneRevocations(revocations: Revocations, maxUserLifetimeMs: number, now: Date = new Date()): Revocations {
  const cutoff = Math.floor((now.getTime() - maxUserLifetimeMs) / 1000);
  return Object.fromEntries(Object.entries(revocations).filter(([, t]) => t >= cutoff));
}

export interface ClaimsUpdateResult {
  account: string;
  message: string;
  server?: string;
}

export class ClaimsUpdateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ClaimsUpdateError";
  }
}

/**
 * Push an account JWT to the servers (`$SYS.REQ.CLAIMS.UPDATE`) over a connection authenticated as
 * the system user (`mintSystemUser`). Every server of the cluster stores it (full resolver) and
 * applies it at once: revoked users are disconnected with "User Authentication Revoked".
 */
export async function pushAccountJwt(sys: NatsConnection, accountJwt: string, opts: { timeoutMs?: number } = {}): Promise<ClaimsUpdateResult> {
  const claims = decode<Account>(accountJwt); // also verifies the signature
  const reply = await sys.request("$SYS.REQ.CLAIMS.UPDATE", accountJwt, { timeout: opts.timeoutMs ?? 5000 });
  const body = reply.json<{
    server?: { name?: string };
    data?: { account?: string; code?: number; message?: string };
    error?: { account?: string; code?: number; description?: string };
  }>();
  if (body.error || body.data?.code !== 200) {
    throw new ClaimsUpdateError(
      `account JWT update for ${claims.sub} refused by ${body.server?.name ?? "server"}: ${body.error?.description ?? JSON.stringify(body)}`,
    );
  }
  const result: ClaimsUpdateResult = { account: body.data.account ?? claims.sub, message: body.data.message ?? "" };
  if (body.server?.name) result.server = body.server.name;
  return result;
}
