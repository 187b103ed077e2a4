// Pure cluster-record transitions: who may enroll, renew, cordon, be removed, and which NATS
// users stay revoked.
import { describe, expect, it } from "vitest";
import { BrokerError } from "../errors.js";
import { UNCHANGED } from "../state/kv.js";
import type { ClusterRecord } from "../state/records.js";
import { cordoned, enrolled, healthOf, holdsCertificate, removed, renewed, revocationsDue, uncordoned, withPendingToken } from "./lifecycle.js";

const t0 = new Date("2026-01-01T00:00:00Z");
const later = (ms: number) => new Date(t0.getTime() + ms);
const DAY = 86_400_000;
const cert = (serial: string, notAfter = later(7 * DAY)) => ({ serialNumber: serial, fingerprint256: `fp-${serial}`, notAfter: notAfter.toISOString(), issuedAt: t0.toISOString() });
const user = (k: string, expires = later(7 * DAY)) => ({ publicKey: `U${k.repeat(55)}`.slice(0, 56), expiresAt: expires.toISOString(), issuedAt: t0.toISOString() });

function kindOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof BrokerError ? `${e.kind}:${e.details.reason}` : String(e);
  }
  return undefined;
}

describe("cluster lifecycle", () => {
  const pending = withPendingToken(undefined, "east", { id: "aaaaaaaaaaaaaaaa", expiresAt: later(3600_000).toISOString() }, t0);

  it("enrolls only with the current pending token; a newer token replaces it", () => {
    expect(pending).toMatchObject({ name: "east", state: "PendingEnrollment", pendingToken: { id: "aaaaaaaaaaaaaaaa" }, certificates: [], natsUsers: [] });
    const replaced = withPendingToken(pending, "east", { id: "bbbbbbbbbbbbbbbb", expiresAt: later(3600_000).toISOString() }, later(1000));
    expect(replaced.createdAt).toBe(pending.createdAt);
    expect(kindOf(() => enrolled(replaced, "east", "aaaaaaaaaaaaaaaa", cert("01"), user("A"), later(2000)))).toBe("unauthenticated:TOKEN_SUPERSEDED");
    const e = enrolled(replaced, "east", "bbbbbbbbbbbbbbbb", cert("01"), user("A"), later(2000));
    expect(e).toMatchObject({ state: "Enrolled", certificates: [{ serialNumber: "01" }], natsUsers: [{ publicKey: user("A").publicKey }] });
    expect(e.pendingToken).toBeUndefined();
    expect(kindOf(() => withPendingToken(e, "east", { id: "cccccccccccccccc", expiresAt: t0.toISOString() }, t0))).toBe("already-exists:CLUSTER_ALREADY_ENROLLED");
  });

  const active: ClusterRecord = enrolled(pending, "east", "aaaaaaaaaaaaaaaa", cert("01"), user("A"), t0);

  it("renews only certificates of the current enrollment that are still valid, pruning expired ones", () => {
    expect(holdsCertificate(active, "01", later(DAY))).toBe(true);
    expect(holdsCertificate(active, "99", later(DAY))).toBe(false);
    expect(holdsCertificate(active, "01", later(8 * DAY))).toBe(false);
    const r = renewed(active, "east", "01", cert("02", later(12 * DAY)), user("B", later(12 * DAY)), later(5 * DAY));
    expect(r.certificates.map((c) => c.serialNumber)).toEqual(["01", "02"]);
    const r2 = renewed(r, "east", "02", cert("03", later(17 * DAY)), user("C", later(17 * DAY)), later(10 * DAY));
    expect(r2.certificates.map((c) => c.serialNumber)).toEqual(["02", "03"]); // 01 expired on day 7
    expect(r2.natsUsers.map((u) => u.publicKey[1])).toEqual(["B", "C"]);
    expect(kindOf(() => renewed(active, "east", "99", cert("04"), user("D"), later(DAY)))).toBe("failed-precondition:CERTIFICATE_SUPERSEDED");
  });

  it("cordons idempotently and keeps the first cordon time", () => {
    const c = cordoned(active, "east", "upgrade", later(1000));
    expect(c).not.toBe(UNCHANGED);
    expect(cordoned(c as ClusterRecord, "east", "upgrade", later(2000))).toBe(UNCHANGED);
    const c2 = cordoned(c as ClusterRecord, "east", "upgrade, day 2", later(3000)) as ClusterRecord;
    expect(c2.cordon).toEqual({ reason: "upgrade, day 2", at: later(1000).toISOString() });
    expect(uncordoned(active, "east", t0)).toBe(UNCHANGED);
    expect((uncordoned(c2, "east", t0) as ClusterRecord).cordon).toBeUndefined();
    expect(kindOf(() => cordoned(undefined, "west", "x", t0))).toBe("not-found:CLUSTER_NOT_FOUND");
  });

  it("removal ends renewal and keeps the NATS users revoked while their JWTs may live", () => {
    const gone = removed(active, "east", later(DAY)) as ClusterRecord;
    expect(gone).toMatchObject({ state: "Removed", removedAt: later(DAY).toISOString(), certificates: [] });
    expect(removed(gone, "east", later(2 * DAY))).toBe(UNCHANGED);
    expect(kindOf(() => renewed(gone, "east", "01", cert("02"), user("B"), later(DAY)))).toBe("failed-precondition:CLUSTER_REMOVED");
    expect(revocationsDue([active, gone], later(2 * DAY))).toEqual([{ publicKey: user("A").publicKey, at: later(DAY) }]);
    expect(revocationsDue([gone], later(8 * DAY))).toEqual([]); // the JWT expired with the certificate
    // Re-adding a removed cluster starts a fresh enrollment (its old users stay revoked in the list).
    const readded = withPendingToken(gone, "east", { id: "dddddddddddddddd", expiresAt: later(2 * DAY).toISOString() }, later(2 * DAY));
    expect(readded).toMatchObject({ state: "PendingEnrollment", natsUsers: [], certificates: [] });
  });

  it("health is Available within the grace period after the last heartbeat", () => {
    expect(healthOf(undefined, 1000, 500)).toBe("Unknown");
    expect(healthOf(1000, 1500, 500)).toBe("Available");
    expect(healthOf(1000, 1501, 500)).toBe("Unknown");
  });
});
