// Pure checks of the minted JWTs (the server-side behaviour is in security.test.ts).
import { describe, it, expect, beforeAll } from "vitest";
import { decode, type Account, type User } from "@nats-io/jwt";
import { createCa, issueClientCertificate, certInfo } from "../pki/index.js";
import {
  agentPermissions,
  createBusAuthority,
  encodeFerryAccount,
  mintAgentUser,
  mintAgentUserForCertificate,
  mintBrokerUser,
  pruneRevocations,
  revokeUsers,
  type CreatedAuthority,
} from "./index.js";

let created: CreatedAuthority;
beforeAll(async () => {
  created = await createBusAuthority();
});

describe("agent users", () => {
  it("may publish only under their cluster, subscribe only to their subjects and inbox, reply to requests", async () => {
    const u = await mintAgentUser(created.authority, "east-1");
    const claims = decode<User>(u.jwt);
    expect(claims.nats.pub).toEqual({ allow: ["ferry.v1.broker.east-1.>"] });
    expect(claims.nats.sub).toEqual({ allow: ["ferry.v1.agent.east-1.>", "_INBOX_east-1.>"] });
    expect(claims.nats.resp).toEqual({ max: 1, ttl: 60_000_000_000 });
    expect(claims.nats.allowed_connection_types).toEqual(["STANDARD"]);
    expect(claims.nats.issuer_account).toBe(created.authority.account.publicKey);
    expect(claims.nats.tags).toEqual(["cluster:east-1"]);
    expect(claims.sub).toBe(u.publicKey);
    expect(u.seed).toMatch(/^SU/);
    expect(JSON.stringify(claims)).not.toMatch(/\$JS|\$KV|_INBOX\.>/);
    expect(agentPermissions("east-1")).toEqual({ pub: claims.nats.pub, sub: claims.nats.sub, resp: claims.nats.resp });
  });

  it("can be minted for the agent's own key (the seed never leaves the agent)", async () => {
    const own = await mintAgentUser(created.authority, "a");
    const again = await mintAgentUser(created.authority, "a", { userPublicKey: own.publicKey });
    expect(again.seed).toBeUndefined();
    expect(decode(again.jwt).sub).toBe(own.publicKey);
    await expect(mintAgentUser(created.authority, "a", { userPublicKey: created.authority.account.publicKey })).rejects.toThrow(/user public key/);
    await expect(mintAgentUser(created.authority, "a.b")).rejects.toThrow(/not a valid cluster name/);
  });

  it("expire with the agent's certificate", async () => {
    const ca = await createCa({ keyBits: 2048 });
    const cert = await issueClientCertificate(ca, { role: "agent", cluster: "west" });
    const u = await mintAgentUserForCertificate(created.authority, cert.certPem);
    const claims = decode<User>(u.jwt);
    expect(claims.exp).toBe(Math.floor(certInfo(cert.certPem).notAfter.getTime() / 1000));
    expect(claims.nats.pub?.allow).toEqual(["ferry.v1.broker.west.>"]);
    const admin = await issueClientCertificate(ca, { role: "admin", name: "alice" });
    await expect(mintAgentUserForCertificate(created.authority, admin.certPem)).rejects.toThrow(/expected an agent certificate/);
  });
});

describe("broker user and account", () => {
  it("the broker may use ferry subjects, JetStream and KV, and reply to agents", async () => {
    const claims = decode<User>((await mintBrokerUser(created.authority)).jwt);
    expect(claims.nats.pub?.allow).toEqual(expect.arrayContaining(["ferry.v1.>", "$JS.API.>", "$KV.>", "_INBOX.>"]));
    expect(claims.nats.resp).toBeDefined();
  });

  it("the FERRY account has JetStream without limits, deny-all defaults, the broker's signing key, and revocations", async () => {
    const acct = decode<Account>(created.preload[created.authority.account.publicKey]!);
    expect(acct.nats.limits).toMatchObject({ conn: -1, subs: -1, mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 });
    expect(acct.nats.default_permissions).toEqual({ pub: { deny: [">"] }, sub: { deny: [">"] } });
    expect(acct.nats.signing_keys).toHaveLength(1);
    expect(acct.iss).not.toBe(created.authority.operator.publicKey); // signed by the operator *signing* key
    expect(acct.nats.revocations).toBeUndefined();

    const t = new Date("2026-11-21T12:00:00Z");
    const revs = revokeUsers({}, ["UAAA", "UBBB"], t);
    expect(revs).toEqual({ UAAA: 1795262400, UBBB: 1795262400 });
    expect(revokeUsers(revs, ["UAAA"], new Date(t.getTime() - 1000))).toEqual(revs); // never moves back
    const revoked = decode<Account>(await encodeFerryAccount(created.authority, revs));
    expect(revoked.nats.revocations).toEqual(revs);
    expect(pruneRevocations(revs, 7 * 864e5, new Date(t.getTime() + 8 * 864e5))).toEqual({});
    expect(pruneRevocations(revs, 7 * 864e5, new Date(t.getTime() + 6 * 864e5))).toEqual(revs);
  });
});
