// startStack: the embedded stack comes up, kubectl works against every cluster, the agents enroll
// through the real token flow and report, and a standby broker takes over when the leader is killed.
import { execFile } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { call } from "../broker/testing.js";
import { ClusterState } from "../proto/gen/ferry/v1/clusters.js";
import { kubectl } from "../scripts/kubectl.js";
import { REPO, startStack, type Stack } from "../stack/stack.js";

const exec = promisify(execFile);

describe("startStack", () => {
  let stack: Stack;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "ferry-stack-"));
    stack = await startStack({ clusters: ["east", "west"], dir, scenario: "demo", brokers: 2, timeScale: 10, brokerConfig: { agents: { heartbeatGraceSeconds: 2 } } });
  });

  afterAll(async () => {
    await stack?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it("writes a kubeconfig per cluster that kubectl uses", async () => {
    for (const c of ["east", "west"]) {
      const { stdout } = await kubectl(stack.kubeconfig(c), ["get", "nodes", "-o", "name"]);
      expect(stdout.trim().split("\n")).toEqual([`node/${c}-node-1`, `node/${c}-node-2`, `node/${c}-node-3`]);
    }
    const { stdout } = await kubectl(stack.kubeconfig("east"), ["get", "vm", "-n", "vms", "-o", "jsonpath={.items[*].metadata.name}"]);
    expect(stdout.split(" ").sort()).toEqual(["db-1", "web-1", "web-2", "web-3", "web-4"]);
  });

  it("writes a ferryctl.yaml that ferryctl uses to reach the broker as admin", async () => {
    const cfg = parseYaml(readFileSync(stack.ferryctlConfig, "utf8")) as { brokers: string[]; caFile: string; certFile: string; keyFile: string };
    expect(cfg.brokers).toEqual(stack.brokerAddresses);
    for (const f of [cfg.caFile, cfg.certFile, cfg.keyFile]) expect(existsSync(f)).toBe(true);
    const { stdout } = await exec(process.execPath, [join(REPO, "cli/bin/ferryctl.js"), "--config", stack.ferryctlConfig, "cluster", "list", "-o", "json"], { cwd: REPO });
    const listed = JSON.parse(stdout) as { kind: string; items: { name: string }[] };
    expect(listed.items.map((c) => c.name).sort()).toEqual(["east", "west"]);
  });

  it("enrolls every cluster through its agent with a single-use token; each is AVAILABLE and reports inventory", async () => {
    const { clusters } = await call(stack.admin.clusters, "listClusters", { pageSize: 0, pageToken: "" });
    expect(clusters.map((c) => c.name).sort()).toEqual(["east", "west"]);
    expect([...stack.tokens.keys()].sort()).toEqual(["east", "west"]);
    for (const c of clusters) {
      expect(c.state).toBe(ClusterState.AVAILABLE);
      expect(c.inventory?.nodeCount).toBe(3);
      expect(c.certificateExpireTime).toBeDefined();
    }
    expect([...stack.agents.keys()].sort()).toEqual(["east", "west"]);
    expect([...stack.agents.values()].every((a) => a.running)).toBe(true);
    // The agent keeps its issued credentials in its own cluster, so a restart needs no token.
    const { stdout } = await kubectl(stack.kubeconfig("east"), ["get", "secret", "-n", "ferry-system", "-o", "name"]);
    expect(stdout).toMatch(/secret\/ferry-agent-credentials/);
  });

  it("a standby broker takes over when the leader is killed, and the killed one comes back", async () => {
    const first = await stack.leader();
    const killed = await stack.killBroker();
    expect(killed.identity).toBe(first.identity);
    expect(killed.running).toBe(false);
    const next = await stack.leader(30_000);
    expect(next.identity).not.toBe(first.identity);
    const admin = await stack.leaderClients();
    const { clusters } = await call(admin.clusters, "listClusters", { pageSize: 0, pageToken: "" });
    expect(clusters.map((c) => c.name).sort()).toEqual(["east", "west"]);
    await stack.restartBroker(stack.brokers.indexOf(killed));
    expect(killed.running).toBe(true);
  });

  it("a killed agent makes its cluster UNREACHABLE; restarted, it comes back with the credentials it stored (no new token)", async () => {
    const state = async (name: string) => {
      const admin = await stack.leaderClients();
      return (await call(admin.clusters, "getCluster", { name })).cluster?.state;
    };
    const east = stack.agents.get("east")!;
    await east.kill();
    expect(east.running).toBe(false);
    await expect.poll(() => state("east"), { timeout: 20_000, interval: 200 }).toBe(ClusterState.UNREACHABLE);
    expect(await state("west")).toBe(ClusterState.AVAILABLE);
    // The restarted process still has the (used) token in its environment: had it enrolled again,
    // the broker would have refused it (TOKEN_ALREADY_USED); AVAILABLE means it used its Secret.
    await east.restart();
    await expect.poll(() => state("east"), { timeout: 30_000, interval: 200 }).toBe(ClusterState.AVAILABLE);
    expect(east.running).toBe(true);
  });

  it("stop() ends every process it started", async () => {
    const pids = [...stack.brokers.map((b) => b.pid), ...stack.env.nats.nodes.map((n) => n.pid), ...[...stack.agents.values()].map((a) => a.pid)];
    await stack.stop();
    for (const pid of pids) expect(() => process.kill(pid!, 0), `pid ${pid}`).toThrow();
    await stack.stop(); // idempotent
  });
});
