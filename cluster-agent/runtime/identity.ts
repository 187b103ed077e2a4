// The agent's identity: enrollment with the bootstrap token (first start), the credentials kept in
// a Kubernetes Secret of its own cluster (later starts need no token), and renewal with the current
// certificate before it expires. The crypto is pki's; the RPCs are the broker's ClusterService.
import { credentials as grpcCredentials, Metadata, status, type ChannelCredentials, type ServiceError } from "@grpc/grpc-js";
import { CoreV1Api, type KubeConfig, type V1Secret } from "@kubernetes/client-node";
import { createUser } from "@nats-io/nkeys";
import type { Logger } from "pino";
import { z } from "zod";
import { agentInboxPrefix, type BusCredentials } from "../../bus/index.js";
import { createCsr, fromSecretData, generateRsaKeyPair, parseCertificate, renewalTime, roleOf, toSecretData, validTo } from "../../pki/index.js";
import { readStatusDetails } from "../../proto/grpc-status.js";
import { ClusterServiceClient, type AgentCredentials, type EnrollResponse, type RenewCertificateResponse } from "../../proto/gen/ferry/v1/clusters.js";
import type { AgentConfig } from "../config.js";
import { MANAGED_BY_LABEL, MANAGED_BY_VALUE } from "../executor.js";

/** Everything the broker issued, as kept in the Secret. */
export interface Identity {
  cluster: string;
  certPem: string;
  keyPem: string;
  caPem: string;
  natsJwt: string;
  natsSeed: string;
  natsUrls: string[];
  notAfter: Date;
}

/** A failure the operator must fix (refused token, missing token, foreign Secret); the process exits 1. */
export class IdentityError extends Error {
  constructor(
    message: string,
    /** ErrorInfo.reason from the broker, e.g. TOKEN_ALREADY_USED; or a local reason. */
    readonly reason: string,
  ) {
    super(message);
    this.name = "IdentityError";
  }
}

/** Extra Secret keys next to pki's tls.crt / tls.key / ca.crt. */
const NATS_KEYS = { jwt: "nats.jwt", seed: "nats.seed", urls: "nats.urls", cluster: "cluster" } as const;

const SecretStrings = z.object({
  [NATS_KEYS.jwt]: z.string().min(1),
  [NATS_KEYS.seed]: z.string().regex(/^SU[A-Z2-7]+$/, { error: "must be a NATS user nkey seed (SU…)" }),
  [NATS_KEYS.urls]: z.string().min(1),
  [NATS_KEYS.cluster]: z.string().min(1),
});

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");
const unb64 = (s: string | undefined) => (s === undefined ? undefined : Buffer.from(s, "base64").toString("utf8"));

/** Secret `data` for an identity. */
export function identityToSecretData(id: Identity): Record<string, string> {
  return {
    ...toSecretData({ certPem: id.certPem, keyPem: id.keyPem, caPem: id.caPem }),
    [NATS_KEYS.jwt]: b64(id.natsJwt),
    [NATS_KEYS.seed]: b64(id.natsSeed),
    [NATS_KEYS.urls]: b64(id.natsUrls.join(",")),
    [NATS_KEYS.cluster]: b64(id.cluster),
  };
}

/** Reads an identity back from Secret `data`; throws with the key that is wrong. */
export function identityFromSecretData(data: Record<string, string | undefined>): Identity {
  const tls = fromSecretData(data);
  const strings = SecretStrings.safeParse(Object.fromEntries(Object.values(NATS_KEYS).map((k) => [k, unb64(data[k])])));
  if (!strings.success) {
    const i = strings.error.issues[0]!;
    throw new Error(`Secret key ${String(i.path[0])}: ${i.message}`);
  }
  const s = strings.data;
  return {
    cluster: s[NATS_KEYS.cluster],
    certPem: tls.certPem,
    keyPem: tls.keyPem,
    caPem: tls.caPem,
    natsJwt: s[NATS_KEYS.jwt],
    natsSeed: s[NATS_KEYS.seed],
    natsUrls: s[NATS_KEYS.urls].split(",").filter(Boolean),
    notAfter: validTo(parseCertificate(tls.certPem)),
  };
}

/** What connectBus needs. */
export function busCredentials(id: Identity, natsUrls: string[] | undefined): BusCredentials {
  return {
    servers: natsUrls ?? id.natsUrls,
    tls: { ca: id.caPem, cert: id.certPem, key: id.keyPem },
    jwt: id.natsJwt,
    seed: id.natsSeed,
    inboxPrefix: agentInboxPrefix(id.cluster),
    name: `agent-${id.cluster}`,
  };
}

export interface IdentityOptions {
  config: AgentConfig;
  kubeConfig: KubeConfig;
  log: Logger;
  /** The bootstrap token, if any (only needed when the Secret is missing or unusable). */
  token: string | undefined;
  /** CA PEM to verify the broker with before the agent has credentials (broker.caFile). */
  bootstrapCaPem: string | undefined;
  now?: () => Date;
  /** A fresh RSA private key PEM per CSR; default 2048-bit native keygen. Tests share one key. */
  newKey?: () => Promise<string>;
}

/**
 * Loads the identity from the Secret, or enrolls with the token and stores it. Also renews it
 * (`renew()`), writing the new credentials to the Secret before using them.
 */
export class IdentityManager {
  private readonly core: CoreV1Api;
  private readonly now: () => Date;
  private readonly newKey: () => Promise<string>;
  private current: Identity | undefined;

  constructor(private readonly o: IdentityOptions) {
    this.core = o.kubeConfig.makeApiClient(CoreV1Api);
    this.now = o.now ?? (() => new Date());
    this.newKey = o.newKey ?? (async () => (await generateRsaKeyPair(2048)).privateKeyPem);
  }

  get identity(): Identity {
    if (!this.current) throw new Error("identity not loaded yet");
    return this.current;
  }

  private get secretRef(): string {
    return `${this.o.config.credentials.namespace}/${this.o.config.credentials.secretName}`;
  }

  /** When the current certificate should be renewed. */
  renewAt(): Date {
    return renewalTime(this.identity.certPem, this.o.config.credentials.renewAtFraction);
  }

  /** The stored identity if usable, else enroll. Throws IdentityError when neither works. */
  async load(): Promise<{ identity: Identity; enrolled: boolean }> {
    const { cluster } = this.o.config;
    const stored = await this.readSecret();
    if (stored.identity) {
      const id = stored.identity;
      if (id.cluster !== cluster) {
        throw new IdentityError(
          `credentials Secret ${this.secretRef} belongs to cluster "${id.cluster}", not "${cluster}": point --credentials-secret at this cluster's Secret or fix --cluster`,
          "SECRET_FOR_OTHER_CLUSTER",
        );
      }
      if (id.notAfter.getTime() > this.now().getTime()) {
        this.current = id;
        this.o.log.info({ secret: this.secretRef, notAfter: id.notAfter.toISOString() }, "using stored credentials");
        return { identity: id, enrolled: false };
      }
      this.o.log.warn({ secret: this.secretRef, notAfter: id.notAfter.toISOString() }, "stored certificate expired; enrolling again");
    }
    if (!this.o.token) {
      const why = stored.identity
        ? `the certificate in ${this.secretRef} expired at ${stored.identity.notAfter.toISOString()}`
        : stored.problem
          ? `the credentials Secret ${this.secretRef} is unusable (${stored.problem})`
          : `there is no credentials Secret ${this.secretRef}`;
      throw new IdentityError(
        `cannot join the broker: ${why} and no bootstrap token is set; ask the admin for one (\`ferryctl cluster add ${cluster}\`) and pass it in --bootstrap-token-file or FERRY_BOOTSTRAP_TOKEN`,
        "NO_TOKEN",
      );
    }
    const id = await this.enroll(this.o.token);
    await this.writeSecret(id);
    this.current = id;
    return { identity: id, enrolled: true };
  }

  /** RenewCertificate over the current certificate; the Secret is updated before the result is returned. */
  async renew(): Promise<Identity> {
    const cur = this.identity;
    const key = await this.newKey();
    const nkey = createUser();
    const client = this.client(grpcCredentials.createSsl(Buffer.from(cur.caPem), Buffer.from(cur.keyPem), Buffer.from(cur.certPem)));
    let res;
    try {
      res = await unary<RenewCertificateResponse>((cb) => client.renewCertificate({ csrPem: createCsr(key, { role: "agent", cluster: cur.cluster }), natsUserPublicKey: nkey.getPublicKey() }, new Metadata(), { deadline: Date.now() + 30_000 }, cb));
    } catch (e) {
      throw refusal("RenewCertificate", e as ServiceError);
    } finally {
      client.close();
    }
    const id = this.fromIssued(res.credentials, key, new TextDecoder().decode(nkey.getSeed()));
    await this.writeSecret(id);
    this.current = id;
    this.o.log.info({ notAfter: id.notAfter.toISOString() }, "certificate renewed");
    return id;
  }

  private async enroll(token: string): Promise<Identity> {
    const { cluster } = this.o.config;
    const ca = this.o.bootstrapCaPem;
    if (!ca) {
      throw new IdentityError(
        "broker.caFile is required for the first enrollment: pass the ferry CA PEM that `ferryctl cluster add` printed (--broker-ca-file or FERRY_BROKER_CA_FILE)",
        "NO_BROKER_CA",
      );
    }
    const key = await this.newKey();
    const nkey = createUser();
    const client = this.client(grpcCredentials.createSsl(Buffer.from(ca)));
    this.o.log.info({ broker: this.o.config.broker.address, cluster }, "enrolling with the bootstrap token");
    let res;
    try {
      res = await unary<EnrollResponse>((cb) => client.enroll({ token, csrPem: createCsr(key, { role: "agent", cluster }), natsUserPublicKey: nkey.getPublicKey() }, new Metadata(), { deadline: Date.now() + 30_000 }, cb));
    } catch (e) {
      throw refusal("Enroll", e as ServiceError);
    } finally {
      client.close();
    }
    const id = this.fromIssued(res.credentials, key, new TextDecoder().decode(nkey.getSeed()));
    this.o.log.info({ notAfter: id.notAfter.toISOString(), natsUrls: id.natsUrls }, "enrolled");
    return id;
  }

  private fromIssued(c: AgentCredentials | undefined, keyPem: string, seed: string): Identity {
    if (!c) throw new IdentityError("the broker answered without credentials", "NO_CREDENTIALS");
    const who = roleOf(c.certificateChainPem);
    if (who.role !== "agent" || who.cluster !== this.o.config.cluster) {
      throw new IdentityError(`the broker issued a certificate for ${JSON.stringify(who)}, not agent "${this.o.config.cluster}"`, "WRONG_CERTIFICATE");
    }
    return {
      cluster: this.o.config.cluster,
      certPem: c.certificateChainPem,
      keyPem,
      caPem: c.caPem,
      natsJwt: c.natsUserJwt,
      natsSeed: seed,
      natsUrls: c.natsUrls,
      notAfter: validTo(parseCertificate(c.certificateChainPem)),
    };
  }

  private client(creds: ChannelCredentials): ClusterServiceClient {
    const { address, serverName } = this.o.config.broker;
    const opts = serverName ? { "grpc.ssl_target_name_override": serverName, "grpc.default_authority": serverName } : {};
    return new ClusterServiceClient(address, creds, opts);
  }

  private async readSecret(): Promise<{ identity?: Identity; problem?: string }> {
    const { namespace, secretName } = this.o.config.credentials;
    let secret: V1Secret;
    try {
      secret = await this.core.readNamespacedSecret({ name: secretName, namespace: namespace! });
    } catch (e) {
      if (httpCode(e) === 404) return {};
      throw new IdentityError(`cannot read credentials Secret ${this.secretRef}: ${errText(e)}; the agent's ServiceAccount needs get/create/update on that Secret`, "SECRET_UNREADABLE");
    }
    try {
      return { identity: identityFromSecretData(secret.data ?? {}) };
    } catch (e) {
      this.o.log.warn({ secret: this.secretRef, err: errText(e) }, "credentials Secret is unusable");
      return { problem: errText(e) };
    }
  }

  private async writeSecret(id: Identity): Promise<void> {
    const { namespace, secretName } = this.o.config.credentials;
    const body: V1Secret = {
      apiVersion: "v1",
      kind: "Secret",
      type: "Opaque",
      metadata: { name: secretName, namespace: namespace!, labels: { [MANAGED_BY_LABEL]: MANAGED_BY_VALUE, "ferry.dev/cluster": id.cluster } },
      data: identityToSecretData(id),
    };
    // Create; if it exists, replace on its current resourceVersion (retry on a conflict).
    for (let attempt = 0; ; attempt++) {
      try {
        try {
          await this.core.createNamespacedSecret({ namespace: namespace!, body });
          return;
        } catch (e) {
          if (httpCode(e) !== 409) throw e;
        }
        const cur = await this.core.readNamespacedSecret({ name: secretName, namespace: namespace! });
        await this.core.replaceNamespacedSecret({ name: secretName, namespace: namespace!, body: { ...body, metadata: { ...body.metadata, resourceVersion: cur.metadata?.resourceVersion } } });
        return;
      } catch (e) {
        if (httpCode(e) === 409 && attempt < 5) continue;
        if (httpCode(e) === 404) {
          throw new IdentityError(`cannot store credentials: namespace "${namespace}" does not exist; create it or set --namespace / FERRY_NAMESPACE`, "SECRET_NAMESPACE_MISSING");
        }
        throw new IdentityError(`cannot store credentials in Secret ${this.secretRef}: ${errText(e)}; the agent's ServiceAccount needs get/create/update on that Secret`, "SECRET_UNWRITABLE");
      }
    }
  }
}

function unary<R>(fn: (cb: (err: ServiceError | null, res: R) => void) => void): Promise<R> {
  return new Promise((resolve, reject) => fn((err, res) => (err ? reject(err) : resolve(res))));
}

/** A broker refusal as an IdentityError that keeps the broker's words (they name the fix). */
function refusal(rpc: string, e: ServiceError): Error {
  if (e.code === undefined) return e;
  const info = readStatusDetails(e.metadata).find((d) => d.$case === "errorInfo");
  const reason = info?.$case === "errorInfo" ? info.value.reason : status[e.code];
  if (e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED) {
    return new IdentityError(`${rpc}: the broker is not reachable (${e.details}); check --broker and the network`, `${reason ?? "UNAVAILABLE"}`);
  }
  return new IdentityError(`${rpc} refused by the broker (${reason}): ${e.details}`, reason ?? "REFUSED");
}

export function httpCode(e: unknown): number | undefined {
  const c = (e as { code?: unknown; statusCode?: unknown } | null)?.code ?? (e as { statusCode?: unknown } | null)?.statusCode;
  return typeof c === "number" ? c : undefined;
}

export function errText(e: unknown): string {
  if (e instanceof Error) return e.message.slice(0, 500);
  return String(e).slice(0, 500);
}
