import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, readBootstrapToken, USAGE } from "./config.js";

const files: Record<string, string> = {
  "/etc/ferry/agent.yaml": "cluster: east\nkube: {mode: kubeconfig, kubeconfigFile: kube.yaml}\nbroker: {address: ferry.example.com:7443, caFile: ca.crt}\ntimings: {heartbeatSeconds: 2}\n",
  "/etc/ferry/bad.yaml": "cluster: East_1\nkube: {mode: in-cluster}\nbroker: {address: 'nope'}\nhttp: {listn: 1}\n",
  "/tok": "  fet.abc.def \n",
  "/empty": "\n",
};
const read = (p: string) => {
  const f = files[p];
  if (f === undefined) throw new Error(`ENOENT: ${p}`);
  return f;
};
const load = (argv: string[], env: NodeJS.ProcessEnv = {}, podNamespace?: string) => loadConfig(argv, env, { read, podNamespace: () => podNamespace });

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error("expected a ConfigError");
}

describe("agent config", () => {
  it("flags alone: defaults applied, namespace from the pod in-cluster", () => {
    const { config } = load(["--cluster", "east", "--in-cluster", "--broker", "10.0.0.1:7443"], {}, "ferry");
    expect(config).toMatchObject({
      cluster: "east",
      kube: { mode: "in-cluster" },
      broker: { address: "10.0.0.1:7443" },
      credentials: { secretName: "ferry-agent-credentials", namespace: "ferry" },
      http: { listen: "0.0.0.0:9090" },
      logLevel: "info",
      timings: { heartbeatSeconds: 5, resyncSeconds: 60 },
    });
  });

  it("file < env < flags; paths relative to the file; --kubeconfig selects the mode", () => {
    const { config } = load(["--config", "/etc/ferry/agent.yaml", "--heartbeat-seconds", "3", "--nats-url", "tls://a:4222,tls://b:4222"], {
      FERRY_HEARTBEAT_SECONDS: "9",
      FERRY_CLUSTER: "west",
      FERRY_LOG_LEVEL: "debug",
    });
    expect(config.cluster).toBe("west");
    expect(config.kube).toEqual({ mode: "kubeconfig", kubeconfigFile: "/etc/ferry/kube.yaml" });
    expect(config.broker.caFile).toBe("/etc/ferry/ca.crt");
    expect(config.timings.heartbeatSeconds).toBe(3);
    expect(config.natsUrls).toEqual(["tls://a:4222", "tls://b:4222"]);
    expect(config.logLevel).toBe("debug");
    expect(config.credentials.namespace).toBe("ferry-system");
    const env = load(["--cluster", "c", "--broker", "h:1"], { FERRY_KUBECONFIG: "/k", FERRY_BOOTSTRAP_TOKEN: "fet.x.y" }).config;
    expect(env.kube).toEqual({ mode: "kubeconfig", kubeconfigFile: "/k" });
    expect(env.bootstrap.token).toBe("fet.x.y");
  });

  it("names every bad field, where it came from and the fix", () => {
    const e = configError(() => load(["--config", "/etc/ferry/bad.yaml"]));
    expect(e.usage).toBe(false);
    const text = e.message;
    expect(text).toMatch(/cluster: .*cluster name.*from \/etc\/ferry\/bad.yaml/);
    expect(text).toMatch(/broker\.address: broker address "nope" must be "host:port"/);
    expect(text).toMatch(/http\.listn: unknown field "listn"; did you mean "listen"/);
    const fromFlag = configError(() => load(["--cluster", "east", "--in-cluster", "--broker", "h:1", "--heartbeat-seconds", "soon"]));
    expect(fromFlag.message).toMatch(/timings\.heartbeatSeconds: .*number of seconds.*\(from flag --heartbeat-seconds\)/);
    const fromEnv = configError(() => load(["--cluster", "east", "--in-cluster", "--broker", "h:1"], { FERRY_NAMESPACE: "Bad NS" }));
    expect(fromEnv.message).toMatch(/credentials\.namespace: .*must be a Kubernetes name.*\(from env FERRY_NAMESPACE\)/);
  });

  it("missing essentials and unknown flags are usage errors that say what to set", () => {
    const e = configError(() => load([]));
    expect(e.usage).toBe(true);
    expect(e.message).toMatch(/--cluster <name>/);
    expect(e.message).toMatch(/--in-cluster or --kubeconfig <file>/);
    expect(e.message).toMatch(/--broker <host:port>/);
    const unknown = configError(() => load(["--clustr", "x"]));
    expect(unknown.usage).toBe(true);
    expect(unknown.message).toMatch(/clustr/);
    expect(configError(() => load(["--cluster", "a", "--broker", "h:1", "--in-cluster", "--kubeconfig", "/k"])).message).toMatch(/exclude each other/);
    expect(configError(() => load(["--cluster", "a", "--broker", "h:1"], { FERRY_IN_CLUSTER: "maybe" })).message).toMatch(/FERRY_IN_CLUSTER.*true or false/);
    expect(load(["--help"]).help).toBe(true);
    expect(USAGE).toMatch(/FERRY_BOOTSTRAP_TOKEN_FILE/);
  });

  it("bootstrap token from env or file; an empty or unreadable file says what to do", () => {
    const base = ["--cluster", "a", "--broker", "h:1", "--in-cluster"];
    expect(readBootstrapToken(load([...base, "--bootstrap-token-file", "/tok"]).config, read)).toBe("fet.abc.def");
    expect(readBootstrapToken(load(base).config, read)).toBeUndefined();
    expect(() => readBootstrapToken(load([...base, "--bootstrap-token-file", "/empty"]).config, read)).toThrow(/is empty; put the token/);
    expect(() => readBootstrapToken(load([...base, "--bootstrap-token-file", "/missing"]).config, read)).toThrow(/cannot read \/missing.*mount the enrollment token Secret/);
  });
});
