// The install command `ferryctl cluster add` prints is run as printed (through bash, so its shell
// quoting counts), with `helm template` in place of `helm install`, against the real ferry-agent
// chart: its values schema refuses unknown keys, so a value name ferryctl misspells fails here.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { agentInstallCommand } from "./install.js";

const repo = join(dirname(fileURLToPath(import.meta.url)), "..");
let helm = "";
let home = "";

beforeAll(() => {
  helm = execFileSync(process.execPath, [join(repo, "scripts", "ensure-helm.mjs")], { encoding: "utf8" }).trim();
  home = mkdtempSync(join(tmpdir(), "ferryctl-helm-"));
});
afterAll(() => rmSync(home, { recursive: true, force: true }));

function renderPrinted(command: string) {
  expect(command.startsWith("helm install ferry-agent charts/ferry-agent ")).toBe(true);
  const script = command.replace(/^helm install /, '"$HELM" template ').replace(" --create-namespace", "");
  return spawnSync("bash", ["-c", script], { cwd: repo, encoding: "utf8", env: { PATH: process.env["PATH"] ?? "", HELM: helm, HOME: home, HELM_CACHE_HOME: join(home, "c"), HELM_CONFIG_HOME: join(home, "f"), HELM_DATA_HOME: join(home, "d") } });
}

const token = `fet.0123456789abcdef.${"A".repeat(21)}-_${"b".repeat(20)}`;
const caPem = "-----BEGIN CERTIFICATE-----\nMIIBplaceholder\n-----END CERTIFICATE-----\n";

describe("the printed install command renders with the ferry-agent chart", () => {
  it("token, CA file and the broker's NATS URLs (no nats.url)", () => {
    const caFile = join(home, "ferry ca.crt"); // a space: the shell quoting must hold
    writeFileSync(caFile, caPem);
    const r = renderPrinted(agentInstallCommand({ cluster: "east", brokerAddress: "ferry.example.com:7443", token, caFile }));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain(`value: "east"`);
    expect(r.stdout).toContain(`value: "ferry.example.com:7443"`);
    expect(r.stdout).toContain(`token: "${token}"`);
    expect(r.stdout).toContain(`ca.crt: "-----BEGIN CERTIFICATE-----\\nMIIBplaceholder\\n-----END CERTIFICATE-----\\n"`);
    expect(r.stdout).not.toContain("FERRY_NATS_URLS");
  });

  it("with a NATS URL", () => {
    const r = renderPrinted(agentInstallCommand({ cluster: "west", brokerAddress: "10.0.0.5:7443", token, natsUrl: "tls://nats-0.example.com:4222" }));
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/name: FERRY_NATS_URLS\n\s+value: "tls:\/\/nats-0\.example\.com:4222"/);
  });
});
