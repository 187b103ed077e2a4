// The real ferryctl (a subprocess, as `npx ferryctl` runs it) against a real broker over mTLS:
// cluster commands, leader-following, config and connection errors, exit codes.
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { call, startBrokerEnv, type BrokerEnv } from "../broker/testing.js";
import { ferryctl, writeFerryctlConfig } from "./testing.js";

let env: BrokerEnv;
let address: string;
let config: string;

beforeAll(async () => {
  env = await startBrokerEnv();
  const b = await env.startInProcess("broker-0");
  address = b.grpcAddress;
  config = writeFerryctlConfig(env.dir, env.ca, await env.testKey(), [address]);
});
afterAll(async () => {
  await env?.stop();
});

/** One line on stderr starting with "error: ". */
function oneErrorLine(stderr: string): string {
  const lines = stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  return lines[0]!;
}

describe("cluster commands", () => {
  it("cluster add prints a token that enrolls the agent and the chart's install command", async () => {
    const r = await ferryctl(["cluster", "add", "east"], { config });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const token = /^ {2}(fet\.\S+)$/m.exec(r.stdout)?.[1];
    expect(token).toBeDefined();
    expect(r.stdout).toContain(
      `helm install ferry-agent charts/ferry-agent -n ferry-system --create-namespace --set cluster.name=east --set broker.address=${address} --set nats.url=tls://127.0.0.1:4222 --set bootstrapToken=${token}`,
    );
    expect(r.stdout).toMatch(/fingerprint: ([0-9A-F]{2}:){31}[0-9A-F]{2}/);
    // The printed token is the real one: an agent enrolls with it.
    const agent = await env.enrollWithToken(address, "east", token!);
    expect(agent.credentials.clusterName).toBe("east");
  });

  it("cluster add --nats-url overrides the config; -o json has the same command", async () => {
    const r = await ferryctl(["cluster", "add", "west", "--nats-url", "tls://nats.example.com:4222", "-o", "json"], { config });
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { token: string; installCommand: string; brokerAddress: string };
    expect(out.installCommand).toContain("--set nats.url=tls://nats.example.com:4222");
    expect(out.installCommand).toContain(`--set bootstrapToken=${out.token}`);
    expect(out.brokerAddress).toBe(address);
  });

  it("cluster list shows the clusters as a table, -o json and -o yaml as lists", async () => {
    const table = await ferryctl(["cluster", "list"], { config });
    expect(table.code).toBe(0);
    const [header, ...rows] = table.stdout.trimEnd().split("\n");
    expect(header).toMatch(/^NAME\s+STATE\s+CORDONED\s+KUBEVIRT/);
    expect(rows.map((r) => r.split(/\s+/).slice(0, 2))).toEqual([
      ["east", expect.stringMatching(/^(Available|Unreachable)$/)],
      ["west", "PendingEnrollment"],
    ]);
    const wide = await ferryctl(["cluster", "list", "-o", "wide"], { config });
    expect(wide.stdout.split("\n")[0]).toContain("SYNC ADDRESSES");
    const json = await ferryctl(["cluster", "list", "-o", "json"], { config });
    const parsed = JSON.parse(json.stdout) as { kind: string; items: { name: string; state: string }[] };
    expect(parsed.kind).toBe("List");
    expect(parsed.items.map((c) => [c.name, c.state])).toEqual([
      ["east", expect.stringMatching(/^CLUSTER_STATE_(AVAILABLE|UNREACHABLE)$/)],
      ["west", "CLUSTER_STATE_PENDING_ENROLLMENT"],
    ]);
    const yaml = await ferryctl(["cluster", "list", "-o", "yaml"], { config });
    expect(yaml.stdout).toMatch(/^kind: List\nitems:\n {2}- name: east\n/);
  });

  it("cordon and uncordon show in cluster get", async () => {
    const c = await ferryctl(["cluster", "cordon", "east", "--reason", "kernel upgrade"], { config });
    expect(c.stdout).toBe("cluster/east cordoned (kernel upgrade)\n");
    const got = JSON.parse((await ferryctl(["cluster", "get", "east", "-o", "json"], { config })).stdout) as { cordoned: boolean; cordonReason: string };
    expect(got).toMatchObject({ cordoned: true, cordonReason: "kernel upgrade" });
    expect((await ferryctl(["cluster", "uncordon", "east"], { config })).stdout).toBe("cluster/east uncordoned\n");
    const table = await ferryctl(["cluster", "get", "east"], { config });
    expect(table.stdout.split("\n")[1]).toMatch(/^east\s+\S+\s+no\s/);
  });

  it("cluster remove revokes the cluster", async () => {
    const r = await ferryctl(["cluster", "remove", "west"], { config });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("cluster/west removed (Removed)");
    const admin = await env.adminClients(address);
    try {
      expect((await call(admin.clusters, "getCluster", { name: "west" })).cluster?.state).toBe(4);
    } finally {
      admin.close();
    }
  });

  it("a missing cluster is one error line and exit 1", async () => {
    const r = await ferryctl(["cluster", "get", "nope"], { config });
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toContain("nope");
  });

  it("the broker's field violations are listed under the error line", async () => {
    const r = await ferryctl(["cluster", "add", "Not_A_Name"], { config });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: invalid request: /);
  });
});

describe("usage", () => {
  it("usage errors exit 2; --help exits 0 and documents every command", async () => {
    const bad = await ferryctl(["cluster", "lst"], { config });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("Did you mean list?");
    const missing = await ferryctl(["plan", "apply"], { config });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("-f, --filename");
    const badOutput = await ferryctl(["cluster", "list", "-o", "xml"], { config });
    expect(badOutput.code).toBe(2);
    expect(oneErrorLine(badOutput.stderr)).toContain("use -o json, -o yaml or -o wide");
    const help = await ferryctl(["plan", "watch", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout.replace(/\s+/g, " ")).toContain("exits 0 when every VM succeeded");
  });
});

describe("config and connection errors", () => {
  it("a missing config file names --config", async () => {
    const r = await ferryctl(["cluster", "list", "--config", join(env.dir, "missing.yaml")]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/missing\.yaml \(from --config\): no such file; pass --config/);
  });

  it("an unreachable broker is one line naming the address", async () => {
    const path = writeFerryctlConfig(env.dir, env.ca, await env.testKey(), ["127.0.0.1:1"], {}, "down");
    const r = await ferryctl(["cluster", "list", "--config", path]);
    expect(r.code).toBe(1);
    expect(oneErrorLine(r.stderr)).toMatch(/cannot reach the broker at 127\.0\.0\.1:1 .*check that it runs/);
  });

  it("verifies the broker by its IP address when the config sets no tlsServerName", async () => {
    const path = writeFerryctlConfig(env.dir, env.ca, await env.testKey(), [address], { tlsServerName: undefined }, "byip");
    const r = await ferryctl(["cluster", "list", "--config", path, "-o", "json"]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });

  it("flags alone are enough (no config file)", async () => {
    const r = await ferryctl(
      ["cluster", "list", "--broker", address, "--tls-server-name", "localhost", "--ca", "ferryctl-ca.crt", "--cert", "ferryctl-admin.crt", "--key", "ferryctl-admin.key", "-o", "json"],
      { cwd: env.dir },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
  });
});

describe("leader following", () => {
  it("a config listing only a standby (or a dead address first) reaches the leader", async () => {
    const standby = await env.startInProcess("broker-1");
    const onlyStandby = writeFerryctlConfig(env.dir, env.ca, await env.testKey(), [standby.grpcAddress], {}, "standby");
    const r = await ferryctl(["cluster", "get", "east", "-o", "json"], { config: onlyStandby });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const deadFirst = writeFerryctlConfig(env.dir, env.ca, await env.testKey(), ["127.0.0.1:1", standby.grpcAddress], {}, "deadfirst");
    const r2 = await ferryctl(["cluster", "list"], { config: deadFirst });
    expect(r2.code).toBe(0);
    expect(r2.stdout).toContain("east");
  });
});
