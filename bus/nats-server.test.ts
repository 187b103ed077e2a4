// The launcher itself: binary discovery, clean-up, restart on the same port.
import { describe, it, expect } from "vitest";
import { existsSync } from "node:fs";
import { DEFAULT_NATS_SERVER_BIN, findNatsServer, startNats } from "./index.js";

describe("findNatsServer", () => {
  it("prefers NATS_SERVER_BIN and refuses a wrong one with the fix", () => {
    expect(findNatsServer({ NATS_SERVER_BIN: DEFAULT_NATS_SERVER_BIN, PATH: "" })).toBe(DEFAULT_NATS_SERVER_BIN);
    expect(() => findNatsServer({ NATS_SERVER_BIN: "/nonexistent/nats-server" })).toThrow(/NATS_SERVER_BIN=\/nonexistent\/nats-server is not an executable/);
  });

  it("falls back from PATH to /usr/sbin/nats-server", () => {
    expect(findNatsServer({ PATH: "/nonexistent" })).toBe(DEFAULT_NATS_SERVER_BIN);
  });
});

describe("startNats", () => {
  it("restarts a node on the same port and removes its temp dir on stop", async () => {
    const h = await startNats();
    const node = h.nodes[0]!;
    const url = node.url;
    const pid = node.pid;
    expect(url).toMatch(/^tls:\/\/127\.0\.0\.1:\d+$/);
    expect(existsSync(h.tempDir)).toBe(true);
    await node.restart();
    await h.waitReady();
    expect(node.url).toBe(url);
    expect(node.pid).not.toBe(pid);
    await h.stop();
    expect(node.running).toBe(false);
    expect(existsSync(h.tempDir)).toBe(false);
  });
});
