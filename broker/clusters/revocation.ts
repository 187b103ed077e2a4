// Keeps NATS in line with the cluster records: every agent user of a removed cluster is on the
// FERRY account's revocation list. The list is persisted in KV (ferry_clusters/revocations) and the
// signed account JWT is pushed to the servers over $SYS — on every removal and again whenever this
// replica becomes leader (a NATS node that lost its resolver store, or a removal whose push was cut
// short by a crash, is repaired then). Idempotent: run it as often as you like.
import type { Logger } from "pino";
import {
  connectBus,
  encodeFerryAccount,
  mintSystemUser,
  pruneRevocations,
  pushAccountJwt,
  revokeUsers,
  type BusAuthority,
  type BusTls,
  type Revocations,
} from "../../bus/index.js";
import type { BrokerMetrics } from "../metrics.js";
import { listValues, mutate, UNCHANGED } from "../state/kv.js";
import type { BrokerState } from "../state/kv.js";
import { CLUSTER_KEY_PREFIX, REVOCATIONS_KEY } from "../state/records.js";
import { revocationsDue } from "./lifecycle.js";

export interface RevokerOptions {
  state: BrokerState;
  authority: BusAuthority;
  servers: string[];
  tls: BusTls;
  log: Logger;
  metrics: BrokerMetrics;
  /** Longest lifetime of an agent JWT; older revocations are pruned. */
  maxUserLifetimeMs: number;
  now?: () => Date;
}

export class Revoker {
  private readonly now: () => Date;

  constructor(private readonly o: RevokerOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** The revocation list as stored. */
  async current(): Promise<Revocations> {
    return (await this.o.state.revocations.get(REVOCATIONS_KEY))?.value.revocations ?? {};
  }

  /**
   * Merge the revocations the cluster records call for into the stored list (compare-and-set),
   * prune expired ones, and push the account JWT to NATS. Throws if the push fails (callers retry).
   */
  async reconcile(): Promise<{ revocations: Revocations; added: number }> {
    const now = this.now();
    const records = await listValues(this.o.state.clusters, CLUSTER_KEY_PREFIX, (key, err) =>
      this.o.log.error({ key, err: err.message }, "cluster record is invalid; its revocations cannot be checked"),
    );
    const due = revocationsDue(
      records.map((r) => r.value),
      now,
    );
    let added = 0;
    const result = await mutate(this.o.state.revocations, REVOCATIONS_KEY, (cur) => {
      const before = cur?.value.revocations ?? {};
      let next = pruneRevocations(before, this.o.maxUserLifetimeMs, now);
      for (const d of due) next = revokeUsers(next, [d.publicKey], d.at);
      added = Object.keys(next).filter((k) => before[k] === undefined).length;
      if (cur && sameRevocations(before, next)) return UNCHANGED;
      return { revocations: next, updatedAt: now.toISOString() };
    });
    const revocations = result.value?.revocations ?? {};
    await this.push(revocations);
    if (added > 0) this.o.log.info({ added, total: Object.keys(revocations).length }, "revoked agent NATS users");
    return { revocations, added };
  }

  /** Sign the FERRY account JWT with this revocation list and push it to every NATS server. */
  async push(revocations: Revocations): Promise<void> {
    const jwt = await encodeFerryAccount(this.o.authority, revocations);
    const user = await mintSystemUser(this.o.authority, { expiresAt: new Date(this.now().getTime() + 10 * 60_000) });
    const sys = await connectBus({
      servers: this.o.servers,
      tls: this.o.tls,
      jwt: user.jwt,
      seed: user.seed!,
      name: "broker-claims",
      logger: this.o.log,
      waitOnFirstConnect: false,
      reconnect: { initialMs: 100, maxMs: 1000 },
    });
    try {
      const r = await pushAccountJwt(sys.nc, jwt);
      this.o.metrics.revocationPushes.inc({ result: "ok" });
      this.o.log.debug({ server: r.server, message: r.message, revocations: Object.keys(revocations).length }, "pushed FERRY account JWT");
    } catch (e) {
      this.o.metrics.revocationPushes.inc({ result: "error" });
      throw e;
    } finally {
      await sys.close();
    }
  }
}

function sameRevocations(a: Revocations, b: Revocations): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => a[k] === b[k]);
}
