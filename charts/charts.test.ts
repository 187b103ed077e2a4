// The Helm charts, rendered without a cluster: `helm lint --strict` and `helm template` (helm 4 from
// scripts/ensure-helm.mjs) with the default values and every charts/<chart>/ci/*.yaml, then checks on
// the parsed objects. The broker's rendered config and mounted Secrets are fed to the broker's own
// loadConfig/loadSecrets, so the chart and broker/config.ts cannot drift apart unnoticed.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, posix } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml, parseAllDocuments } from "yaml";
import { loadConfig, loadSecrets } from "../broker/config.js";
import { createBusAuthority, mintBrokerUser } from "../bus/auth.js";
import { agentInstallCommand } from "../cli/install.js";
import { createCa, generateRsaKeyPair, issueCertificate, publicKeyOf } from "../pki/index.js";

const chartsDir = dirname(fileURLToPath(import.meta.url));
const repo = dirname(chartsDir);

type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [k: string]: unknown;
};
type Rule = { apiGroups?: string[]; resources?: string[]; verbs: string[]; resourceNames?: string[] };
type Container = {
  name: string;
  image: string;
  env?: { name: string; value?: string; valueFrom?: unknown }[];
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
  resources?: { requests?: Record<string, string> };
  volumeMounts?: { name: string; mountPath: string }[];
};
type Volume = { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string } };
type PodSpec = { containers: Container[]; volumes?: Volume[] };
type Deployment = K8sObject & { spec: { replicas: number; strategy: { type: string }; template: { metadata: { labels: Record<string, string> }; spec: PodSpec } } };

let helmBin = "";
let helmHome = "";

function helm(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(helmBin, args, {
    encoding: "utf8",
    env: { PATH: process.env["PATH"] ?? "", HOME: helmHome, HELM_CACHE_HOME: join(helmHome, "cache"), HELM_CONFIG_HOME: join(helmHome, "config"), HELM_DATA_HOME: join(helmHome, "data") },
  });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function render(chart: string, args: string[] = [], release = "rel", namespace = "ferry"): K8sObject[] {
  const r = helm(["template", release, join(chartsDir, chart), "--namespace", namespace, ...args]);
  if (r.code !== 0) throw new Error(`helm template ${chart} ${args.join(" ")} failed:\n${r.stderr}`);
  return parseAllDocuments(r.stdout)
    .map((d) => {
      if (d.errors.length) throw new Error(`rendered YAML does not parse: ${d.errors[0]!.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

function chartMeta(chart: string): { name: string; version: string; appVersion: string } {
  return parseYaml(readFileSync(join(chartsDir, chart, "Chart.yaml"), "utf8"));
}

const ciFiles = (chart: string) =>
  readdirSync(join(chartsDir, chart, "ci"))
    .filter((f) => f.endsWith(".yaml"))
    .sort();

const kinds = (objs: K8sObject[]) => [...new Set(objs.map((o) => o.kind))].sort();
const one = (objs: K8sObject[], kind: string, name?: string): K8sObject => {
  const found = objs.filter((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
  if (found.length !== 1) throw new Error(`expected one ${kind}${name ? ` ${name}` : ""}, found ${found.length}`);
  return found[0]!;
};
const oneDeployment = (objs: K8sObject[]) => one(objs, "Deployment") as Deployment;

/** Checks every chart must pass for every values file that renders. */
function checkCommon(chart: string, objs: K8sObject[], release: string): void {
  const meta = chartMeta(chart);
  const expected = {
    "app.kubernetes.io/name": chart,
    "app.kubernetes.io/instance": release,
    "app.kubernetes.io/version": meta.appVersion,
    "app.kubernetes.io/managed-by": "Helm",
    "helm.sh/chart": `${meta.name}-${meta.version}`,
  };
  for (const o of objs) {
    expect.soft(o.metadata.labels ?? {}, `${o.kind}/${o.metadata.name} labels`).toMatchObject(expected);
  }
  for (const o of objs.filter((x) => x.kind === "ClusterRole" || x.kind === "Role")) {
    for (const rule of (o["rules"] as Rule[]) ?? []) {
      for (const field of ["verbs", "resources", "apiGroups", "resourceNames"] as const) {
        expect(rule[field] ?? [], `${o.kind}/${o.metadata.name} ${field}`).not.toContain("*");
      }
    }
  }
  for (const d of objs.filter((x) => x.kind === "Deployment") as Deployment[]) {
    expect(d.spec.template.metadata.labels, "pod labels").toMatchObject(expected);
    for (const c of d.spec.template.spec.containers) {
      expect(c.livenessProbe?.httpGet?.path, `${c.name} livenessProbe`).toBe("/healthz");
      expect(c.readinessProbe?.httpGet?.path, `${c.name} readinessProbe`).toBe("/readyz");
      expect(Object.keys(c.resources?.requests ?? {}).sort(), `${c.name} resource requests`).toEqual(["cpu", "memory"]);
      expect(c.image, "image tag defaults to the chart's appVersion").toMatch(new RegExp(`:${meta.appVersion.replace(/\./g, "\\.")}$`));
    }
  }
}

beforeAll(() => {
  helmBin = execFileSync(process.execPath, [join(repo, "scripts", "ensure-helm.mjs")], { encoding: "utf8" }).trim();
  helmHome = mkdtempSync(join(tmpdir(), "ferry-helm-home-"));
});

afterAll(() => {
  if (helmHome) rmSync(helmHome, { recursive: true, force: true });
});

describe("ferry-broker", () => {
  const chart = "ferry-broker";
  const cases: [string, string[]][] = [["default values", []], ...ciFiles(chart).map((f): [string, string[]] => [`ci/${f}`, ["-f", join(chartsDir, chart, "ci", f)]])];

  it.each(cases)("lints and renders with %s", (_name, args) => {
    const lint = helm(["lint", "--strict", join(chartsDir, chart), ...args]);
    expect(lint.stdout + lint.stderr).toContain("0 chart(s) failed");
    const objs = render(chart, args);
    checkCommon(chart, objs, "rel");
    for (const kind of ["ConfigMap", "Deployment", "Service", "ServiceAccount"]) expect(kinds(objs)).toContain(kind);
    const d = oneDeployment(objs);
    const values = { ...parseYaml(readFileSync(join(chartsDir, chart, "values.yaml"), "utf8")), ...(args[1] ? parseYaml(readFileSync(args[1], "utf8")) : {}) };
    expect(d.spec.replicas).toBe(values.replicaCount);
    expect(d.spec.template.spec.containers[0]!.env?.find((e) => e.name === "FERRY_BROKER_IDENTITY")?.valueFrom).toEqual({ fieldRef: { fieldPath: "metadata.name" } });
    const grpc = one(objs, "Service", "rel-ferry-broker") as K8sObject & { spec: { ports: { name: string }[] } };
    expect(grpc.spec.ports.map((p) => p.name)).toEqual(["grpc"]);
  });

  it("renders two replicas, a PodDisruptionBudget and no ServiceMonitor by default", () => {
    const objs = render(chart);
    expect(kinds(objs)).toEqual(["ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "ServiceAccount"]);
    expect(oneDeployment(objs).spec.replicas).toBe(2);
    expect((one(objs, "PodDisruptionBudget") as K8sObject & { spec: unknown }).spec).toMatchObject({ maxUnavailable: 1 });
  });

  it("renders a ServiceMonitor on the metrics port when asked", () => {
    const objs = render(chart, ["-f", join(chartsDir, chart, "ci", "ha-values.yaml")]);
    const sm = one(objs, "ServiceMonitor") as K8sObject & { spec: { endpoints: { port: string; path: string }[] } };
    expect(sm.spec.endpoints).toMatchObject([{ port: "http", path: "/metrics" }]);
    expect(sm.metadata.labels).toMatchObject({ release: "prometheus" });
  });

  it("creates only the Secrets whose values say create", () => {
    expect(kinds(render(chart))).not.toContain("Secret");
    const objs = render(chart, ["-f", join(chartsDir, chart, "ci", "create-secrets-values.yaml")]);
    expect(objs.filter((o) => o.kind === "Secret").map((o) => o.metadata.name).sort()).toEqual([
      "test-broker-grpc-tls",
      "test-broker-nats-tls",
      "test-broker-nats-user",
      "test-bus-authority",
      "test-ferry-ca",
    ]);
  });

  it("renders a config and mounts that broker/config.ts loadConfig and loadSecrets accept (real certificates)", async () => {
    const ca = await createCa({ keyBits: 2048 });
    const keyPem = (await generateRsaKeyPair(2048)).privateKeyPem;
    const grpcCert = issueCertificate(ca, { role: "server", name: "broker" }, publicKeyOf(keyPem), { dnsNames: ["ferry.example.com"] });
    const natsCert = issueCertificate(ca, { role: "broker", name: "broker" }, publicKeyOf(keyPem));
    const { authority } = await createBusAuthority();
    const user = await mintBrokerUser(authority);
    const dir = mkdtempSync(join(tmpdir(), "ferry-chart-values-"));
    try {
      const file = (name: string, content: string) => {
        writeFileSync(join(dir, name), content);
        return join(dir, name);
      };
      const setFile = (key: string, name: string, content: string) => ["--set-file", `${key}=${file(name, content)}`];
      const objs = render(chart, [
        ...["--set", "ca.create=true,grpc.tls.create=true,nats.tls.create=true,busAuthority.create=true,nats.user.enabled=true,nats.user.create=true"],
        ...["--set", "grpc.advertiseAddress=ferry.example.com:7443,nats.kvReplicas=1,leader.renewSeconds=4"],
        ...setFile("ca.cert", "ca.crt", ca.certPem),
        ...setFile("ca.key", "ca.key", ca.keyPem),
        ...setFile("grpc.tls.cert", "grpc.crt", grpcCert),
        ...setFile("grpc.tls.key", "grpc.key", keyPem),
        ...setFile("nats.tls.cert", "nats.crt", natsCert),
        ...setFile("nats.tls.key", "nats.key", keyPem),
        ...setFile("busAuthority.json", "authority.json", JSON.stringify(authority)),
        ...setFile("nats.user.jwt", "user.jwt", user.jwt),
        ...setFile("nats.user.seed", "user.nk", user.seed!),
      ]);

      // The pod's file system as the kubelet would lay it out: each volumeMount of the container,
      // filled from the rendered ConfigMap or Secret its volume names (with the items' paths).
      const d = oneDeployment(objs);
      const container = d.spec.template.spec.containers[0]!;
      const files = new Map<string, string>();
      for (const m of container.volumeMounts ?? []) {
        const v = d.spec.template.spec.volumes!.find((x) => x.name === m.name)!;
        if (v.configMap) {
          const cm = one(objs, "ConfigMap", v.configMap.name) as K8sObject & { data: Record<string, string> };
          for (const [k, text] of Object.entries(cm.data)) files.set(posix.join(m.mountPath, k), text);
        } else if (v.secret) {
          const s = one(objs, "Secret", v.secret.secretName) as K8sObject & { stringData: Record<string, string> };
          for (const item of v.secret.items ?? []) files.set(posix.join(m.mountPath, item.path), s.stringData[item.key]!);
        }
      }
      const read = (p: string) => {
        const text = files.get(p);
        if (text === undefined) throw new Error(`ENOENT: ${p} is not mounted`);
        return text;
      };
      const args = (container as Container & { args: string[] }).args;
      const { config } = loadConfig(args, { FERRY_BROKER_IDENTITY: "rel-ferry-broker-7d9f-x2" }, read);
      expect(config.identity).toBe("rel-ferry-broker-7d9f-x2");
      expect(config.grpc).toMatchObject({ listen: "0.0.0.0:7443", advertiseAddress: "ferry.example.com:7443" });
      expect(config.nats).toMatchObject({ urls: ["tls://nats:4222"], kvReplicas: 1 });
      expect(config.leader).toEqual({ leaseSeconds: 15, renewSeconds: 4 });
      const secrets = loadSecrets(config, read);
      expect(secrets.natsUser).toEqual({ jwt: user.jwt, seed: user.seed });
      expect(secrets.authority).toEqual(authority);
      expect(secrets.ca.certPem).toBe(ca.certPem);
      expect(secrets.natsTls.ca).toBe(ca.certPem);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("defaults the advertised address to the Service's in-cluster name", () => {
    const cm = one(render(chart, [], "hub", "ferry-system"), "ConfigMap") as K8sObject & { data: { "broker.yaml": string } };
    expect(parseYaml(cm.data["broker.yaml"]).grpc.advertiseAddress).toBe("hub-ferry-broker.ferry-system.svc:7443");
  });

  it.each([
    ["replicaCount=two", "/replicaCount", "want integer"],
    ["nats.kvReplicas=2", "/nats/kvReplicas", "1, 3"],
    ["logLevel=loud", "/logLevel", "info"],
    ["nats.urls[0]=https://nats:4222", "/nats/urls/0", "does not match pattern"],
    ["ca.create=true", "/ca/cert", "BEGIN CERTIFICATE"],
    ["service.type=Ingress", "/service/type", "LoadBalancer"],
    ["grpc.port=70000", "/grpc/port", "maximum"],
  ])("values.schema.json rejects %s naming %s", (set, field, detail) => {
    const r = helm(["template", "rel", join(chartsDir, chart), "--set", set]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`'${field}'`);
    expect(r.stderr).toContain(detail);
  });
});

describe("ferry-agent", () => {
  const chart = "ferry-agent";
  const enroll = ["-f", join(chartsDir, chart, "ci", "enroll-values.yaml")];
  const cases = ciFiles(chart).map((f): [string, string[]] => [`ci/${f}`, ["-f", join(chartsDir, chart, "ci", f)]]);

  /** The agent's configuration contract: values → environment of the agent container (cluster-agent/config.ts OVERRIDES). */
  const CONFIG_ENV = [
    "FERRY_BOOTSTRAP_TOKEN_FILE",
    "FERRY_BROKER_ADDRESS",
    "FERRY_BROKER_CA_FILE",
    "FERRY_CLUSTER",
    "FERRY_CREDENTIALS_SECRET",
    "FERRY_HTTP_LISTEN",
    "FERRY_IN_CLUSTER",
    "FERRY_KUBEVIRT_NAMESPACE",
    "FERRY_LOG_LEVEL",
    "FERRY_NAMESPACE",
    "FERRY_NATS_URLS",
  ];

  it("refuses the default values, naming the required cluster.name and broker.address", () => {
    const lint = helm(["lint", "--strict", join(chartsDir, chart)]);
    expect(lint.code).not.toBe(0);
    const r = helm(["template", "rel", join(chartsDir, chart)]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("'/cluster/name'");
    expect(r.stderr).toContain("'/broker/address'");
  });

  it.each(cases)("lints and renders with %s", (_name, args) => {
    const lint = helm(["lint", "--strict", join(chartsDir, chart), ...args]);
    expect(lint.stdout + lint.stderr).toContain("0 chart(s) failed");
    const objs = render(chart, args);
    checkCommon(chart, objs, "rel");
    for (const kind of ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "RoleBinding", "ServiceAccount"]) expect(kinds(objs)).toContain(kind);
    const d = oneDeployment(objs);
    expect(d.spec.replicas).toBe(1);
    expect(d.spec.strategy.type).toBe("Recreate");
    const env = d.spec.template.spec.containers[0]!.env!.map((e) => e.name);
    for (const name of CONFIG_ENV) expect(env).toContain(name);
  });

  it("passes the values to the agent as its environment", () => {
    const objs = render(chart, enroll, "east", "ferry");
    const env = Object.fromEntries(oneDeployment(objs).spec.template.spec.containers[0]!.env!.map((e) => [e.name, e.value ?? e.valueFrom]));
    expect(env).toEqual({
      FERRY_CLUSTER: "east",
      FERRY_BROKER_ADDRESS: "ferry.example.com:7443",
      FERRY_BROKER_CA_FILE: "/etc/ferry/bootstrap/ca.crt",
      FERRY_NATS_URLS: "tls://nats.example.com:4222",
      FERRY_CREDENTIALS_SECRET: "east-ferry-agent-credentials",
      FERRY_NAMESPACE: { fieldRef: { fieldPath: "metadata.namespace" } },
      FERRY_BOOTSTRAP_TOKEN_FILE: "/etc/ferry/bootstrap/token",
      FERRY_IN_CLUSTER: "true",
      FERRY_HTTP_LISTEN: "0.0.0.0:9090",
      FERRY_LOG_LEVEL: "info",
      FERRY_KUBEVIRT_NAMESPACE: "kubevirt",
    });
    expect(Object.keys(env).sort()).toEqual(CONFIG_ENV);
    const kc = render(chart, [...enroll, "--set", "kube.mode=kubeconfig,kube.kubeconfigSecret=east-kubeconfig"]);
    const kcDeploy = oneDeployment(kc);
    const kcEnv = kcDeploy.spec.template.spec.containers[0]!.env!;
    expect(kcEnv.find((e) => e.name === "FERRY_KUBECONFIG")?.value).toBe("/etc/ferry/kubeconfig/kubeconfig");
    expect(kcEnv.find((e) => e.name === "FERRY_IN_CLUSTER")).toBeUndefined();
    expect(kcDeploy.spec.template.spec.volumes!.find((v) => v.name === "kubeconfig")?.secret?.secretName).toBe("east-kubeconfig");
  });

  it("renders with exactly the --set values `ferryctl cluster add` prints (cli/install.ts)", () => {
    const command = agentInstallCommand({ cluster: "east", brokerAddress: "ferry.example.com:7443", natsUrl: "tls://nats.example.com:4222", token: "fet.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" });
    const words = command.split(/\s+/);
    const sets = words.flatMap((w, i) => (w === "--set" ? ["--set", words[i + 1]!.replace(/^'|'$/g, "")] : []));
    expect(sets.length).toBeGreaterThanOrEqual(8);
    expect(words.slice(0, 4)).toEqual(["helm", "install", "ferry-agent", "charts/ferry-agent"]);
    const objs = render(chart, sets, "ferry-agent", "ferry-system");
    const env = Object.fromEntries(oneDeployment(objs).spec.template.spec.containers[0]!.env!.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({ FERRY_CLUSTER: "east", FERRY_BROKER_ADDRESS: "ferry.example.com:7443", FERRY_NATS_URLS: "tls://nats.example.com:4222" });
    expect((one(objs, "Secret", "ferry-agent-bootstrap") as K8sObject & { stringData: Record<string, string> }).stringData.token).toMatch(/^fet\./);
  });

  it("stores the bootstrap token and CA in a Secret mounted where the agent reads them; the credentials Secret is the agent's", () => {
    const objs = render(chart, enroll, "east");
    const bootstrap = one(objs, "Secret", "east-ferry-agent-bootstrap") as K8sObject & { stringData: Record<string, string> };
    expect(bootstrap.stringData).toEqual({
      token: "fet.0123456789abcdef.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
      "ca.crt": "-----BEGIN CERTIFICATE-----\nMIIBplaceholder\n-----END CERTIFICATE-----\n",
    });
    expect(objs.filter((o) => o.kind === "Secret")).toHaveLength(1); // the agent creates its credentials Secret itself
    const pod = oneDeployment(objs).spec.template.spec;
    const vol = pod.volumes!.find((v) => v.name === "bootstrap")!;
    expect(vol.secret).toMatchObject({
      secretName: "east-ferry-agent-bootstrap",
      optional: true,
      items: [
        { key: "token", path: "token" },
        { key: "ca.crt", path: "ca.crt" },
      ],
    });
    expect(pod.containers[0]!.volumeMounts).toContainEqual({ name: "bootstrap", mountPath: "/etc/ferry/bootstrap", readOnly: true });
    // an existing Secret instead: the chart creates none
    const existing = render(chart, ["-f", join(chartsDir, chart, "ci", "full-values.yaml")]);
    expect(existing.filter((o) => o.kind === "Secret")).toEqual([]);
    expect(oneDeployment(existing).spec.template.spec.volumes!.find((v) => v.name === "bootstrap")?.secret?.secretName).toBe("ferry-bootstrap-west-2");
  });

  it("scopes the CA exchange to the KubeVirt namespace and the credentials to the agent's own Secret", () => {
    const objs = render(chart, ["-f", join(chartsDir, chart, "ci", "full-values.yaml")], "rel", "ferry-agent");
    const kv = one(objs, "Role", "rel-ferry-agent-kubevirt-ca") as K8sObject & { rules: Rule[] };
    expect(kv.metadata.namespace).toBe("openshift-cnv");
    expect(kv.rules).toEqual([
      { apiGroups: [""], resources: ["configmaps"], resourceNames: ["kubevirt-ca"], verbs: ["get", "list", "watch"] },
      { apiGroups: [""], resources: ["configmaps"], resourceNames: ["kubevirt-external-ca"], verbs: ["get", "update", "patch"] },
    ]);
    const own = one(objs, "Role", "rel-ferry-agent-credentials") as K8sObject & { rules: Rule[] };
    expect(own.metadata.namespace).toBe("ferry-agent");
    expect(own.rules).toEqual([{ apiGroups: [""], resources: ["secrets"], resourceNames: ["ferry-agent-west-2-credentials"], verbs: ["get", "update"] }]);
    for (const b of objs.filter((o) => o.kind === "RoleBinding" || o.kind === "ClusterRoleBinding")) {
      expect(b["subjects"]).toEqual([{ kind: "ServiceAccount", name: "rel-ferry-agent", namespace: "ferry-agent" }]);
    }
    const ns = (one(objs, "ClusterRole") as K8sObject & { rules: Rule[] }).rules.find((r) => r.resources?.includes("namespaces"))!;
    expect(ns.verbs).toContain("create");
    const nsDefault = (one(render(chart, enroll), "ClusterRole") as K8sObject & { rules: Rule[] }).rules.find((r) => r.resources?.includes("namespaces"))!;
    expect(nsDefault.verbs).not.toContain("create");
  });

  it("grants the virt-handler metrics read (pods list, pods/proxy get) in the KubeVirt namespace only, and not with rbac.migrationProgress=false", () => {
    const objs = render(chart, ["-f", join(chartsDir, chart, "ci", "full-values.yaml")], "rel", "ferry-agent");
    const role = one(objs, "Role", "rel-ferry-agent-migration-progress") as K8sObject & { rules: Rule[] };
    expect(role.metadata.namespace).toBe("openshift-cnv");
    expect(role.rules).toEqual([
      { apiGroups: [""], resources: ["pods"], verbs: ["list"] },
      { apiGroups: [""], resources: ["pods/proxy"], verbs: ["get"] },
    ]);
    expect(one(objs, "RoleBinding", "rel-ferry-agent-migration-progress")["subjects"]).toEqual([{ kind: "ServiceAccount", name: "rel-ferry-agent", namespace: "ferry-agent" }]);
    const cluster = (one(objs, "ClusterRole") as K8sObject & { rules: Rule[] }).rules;
    expect(cluster.flatMap((r) => r.resources ?? []).filter((x) => x.startsWith("pods"))).toEqual([]);
    const off = render(chart, ["-f", join(chartsDir, chart, "ci", "full-values.yaml"), "--set", "rbac.migrationProgress=false"], "rel", "ferry-agent");
    expect(off.filter((o) => o.metadata.name === "rel-ferry-agent-migration-progress")).toEqual([]);
  });

  it("lists every RBAC rule in the README, with exactly the rendered verbs", () => {
    // README rows: | scope | API group | resource | resourceNames | verbs | why |
    const readme = readFileSync(join(chartsDir, chart, "README.md"), "utf8");
    const section = readme.slice(readme.indexOf("## RBAC"));
    const documented = new Set<string>();
    for (const line of section.split("\n")) {
      const cells = line.split("|").map((c) => c.trim().replace(/`/g, ""));
      if (cells.length < 7 || !/^(cluster|KubeVirt namespace|own namespace)$/.test(cells[1]!)) continue;
      const group = cells[2] === "core" ? "" : cells[2]!;
      for (const resource of cells[3]!.split(/,\s*/)) documented.add(`${group}/${resource}/${cells[4] === "—" ? "" : cells[4]}/${cells[5]}`);
    }
    const objs = render(chart, [...enroll, "--set", "credentials.secretName=ferry-agent-credentials"]);
    const rendered = new Set<string>();
    for (const role of objs.filter((o) => o.kind === "ClusterRole" || o.kind === "Role") as (K8sObject & { rules: Rule[] })[]) {
      for (const r of role.rules) {
        for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) rendered.add(`${g}/${res}/${(r.resourceNames ?? []).join(", ")}/${r.verbs.join(", ")}`);
      }
    }
    expect([...documented].sort()).toEqual([...rendered].sort());
  });

  it.each([
    ["cluster.name=East_1", "/cluster/name"],
    ["broker.address=ferry.example.com", "/broker/address"],
    ["broker.caPem=not-a-pem", "/broker/caPem"],
    ["bootstrapToken=not-a-token", "/bootstrapToken"],
    ["nats.url=https://nats:4222", "/nats/url"],
    ["kube.mode=outside", "/kube/mode"],
    ["kube.mode=kubeconfig", "/kube"],
    ["http.port=metrics", "/http/port"],
    ["rbac.create=yes", "/rbac/create"],
  ])("values.schema.json rejects %s naming %s", (set, field) => {
    const r = helm(["template", "rel", join(chartsDir, chart), ...enroll, "--set", set]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain(`'${field}`);
  });
});

describe("scripts/ensure-helm.mjs", () => {
  it("caches helm 4 under node_modules/.cache/ferry-helm", () => {
    expect(helmBin).toContain(join("node_modules", ".cache", "ferry-helm"));
    expect(helm(["version", "--short"]).stdout).toMatch(/^v4\./);
  });
});
