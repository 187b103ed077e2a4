// kubectl (the machine's, else the pinned one) against the simulated API server, as a subprocess with the
// kubeconfig the world writes.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually } from "./testing.js";
import { type World, startWorld } from "./world.js";
import { kubectlPath } from "../scripts/kubectl.js";

// kubectl on PATH, else the pinned one (scripts/ensure-kubectl.mjs): tooling, not ferry code.
const KUBECTL = await kubectlPath();

let world: World;
let tmp: string;
let kubeconfig: string;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function kubectl(...args: string[]): Promise<Run> {
  return kubectlAt(kubeconfig, ...args);
}

function kubectlAt(config: string, ...args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      KUBECTL,
      ["--kubeconfig", config, "--cache-dir", join(tmp, "cache"), ...args],
      { env: { ...process.env, HOME: tmp, KUBECONFIG: "" }, timeout: 20_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

async function ok(...args: string[]): Promise<string> {
  return okAt(kubeconfig, ...args);
}

async function okAt(config: string, ...args: string[]): Promise<string> {
  const r = await kubectlAt(config, ...args);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  expect(r.stderr).toBe("");
  return r.stdout;
}

/**
 * Writes .status as a controller would: through /status where the kind has that subresource (the
 * sim's resource table decides; KubeVirt's VMI CRD has none), else through the object itself.
 */
async function setStatus(ref: string, status: object, ns = "vms"): Promise<void> {
  const p = JSON.stringify({ status });
  const viaStatus = await kubectl("patch", ref, "-n", ns, "--subresource=status", "--type", "merge", "-p", p);
  if (viaStatus.code === 0) return;
  expect(viaStatus.stderr).toContain("the server could not find the requested resource");
  await ok("patch", ref, "-n", ns, "--type", "merge", "-p", p);
}

/** Splits kubectl's table output into rows of cells. */
const table = (out: string) => out.trim().split("\n").map((l) => l.trim().split(/\s{2,}/));

function file(name: string, content: string): string {
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
}

/** A running `kubectl ... -w`: lines so far, and a stop function. */
function streaming(...args: string[]): { lines: string[]; stop(): void; proc: ChildProcess } {
  const proc = spawn(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", join(tmp, "cache"), ...args], { env: { ...process.env, HOME: tmp, KUBECONFIG: "" } });
  const lines: string[] = [];
  let buf = "";
  proc.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    lines.push(...parts);
  });
  return { lines, proc, stop: () => proc.kill("SIGTERM") };
}

function exited(p: ChildProcess): Promise<number | null> {
  return new Promise((r) => (p.exitCode !== null ? r(p.exitCode) : p.once("exit", (c) => r(c))));
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "sim-kubectl-"));
  world = await startWorld({
    clusters: ["a"],
    dir: join(tmp, "sim"),
    simulateKubeVirt: false,
    scenario: {
      clusters: {
        a: {
          namespaces: ["default", "vms"],
          nodes: [{ count: 2, cpu: "16", memory: "64Gi" }],
          storageClasses: [{ name: "standard", default: true }],
          vms: [{ name: "web", namespace: "vms", memory: "2Gi", labels: { app: "web" }, disks: [{ name: "root", size: "5Gi", template: false }] }],
          kubevirt: {},
          objects: [
            {
              apiVersion: "v1",
              kind: "PersistentVolumeClaim",
              metadata: { name: "disk", namespace: "vms" },
              spec: { accessModes: ["ReadWriteMany"], storageClassName: "standard", volumeMode: "Block", resources: { requests: { storage: "10Gi" } }, volumeName: "pv-1" },
              status: { phase: "Bound", capacity: { storage: "10Gi" }, accessModes: ["ReadWriteMany"] },
            },
          ],
        },
      },
    },
  });
  kubeconfig = world.cluster("a").kubeconfigPath!;
});

afterAll(async () => {
  await world.stop();
});

describe("kubectl against the simulated API server", () => {
  it("lists resource kinds with short names (api-resources) and gets tables", async () => {
    const res = table(await ok("api-resources"));
    const row = (name: string) => res.find((r) => r[0] === name);
    expect(row("virtualmachines")).toEqual(["virtualmachines", "vm,vms", "kubevirt.io/v1", "true", "VirtualMachine"]);
    expect(row("virtualmachineinstancemigrations")?.[1]).toBe("vmim,vmims");
    expect(row("datavolumes")?.slice(1)).toEqual(["dv,dvs", "cdi.kubevirt.io/v1beta1", "true", "DataVolume"]);
    expect(row("nodes")?.slice(1)).toEqual(["no", "v1", "false", "Node"]);
    expect(row("pods")?.slice(1)).toEqual(["po", "v1", "true", "Pod"]);
    const wide = table(await ok("api-resources", "-o", "wide"));
    expect(wide.find((r) => r[0] === "pods")?.[5]).toBe("get,list,watch");

    const vms = table(await ok("get", "vm", "-A"));
    expect(vms[0]).toEqual(["NAMESPACE", "NAME", "AGE", "STATUS", "READY"]);
    expect(vms[1]?.slice(0, 2)).toEqual(["vms", "web"]);
    const nodes = table(await ok("get", "nodes", "-o", "wide"));
    expect(nodes[0]?.slice(0, 6)).toEqual(["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP"]);
    expect(nodes.slice(1).map((r) => [r[0], r[1], r[2]])).toEqual([["a-node-1", "Ready", "worker"], ["a-node-2", "Ready", "worker"]]);
    expect(table(await ok("get", "sc"))[1]?.[0]).toBe("standard (default)");
    expect(table(await ok("get", "pvc", "-n", "vms", "-o", "wide"))).toEqual([
      ["NAME", "STATUS", "VOLUME", "CAPACITY", "ACCESS MODES", "STORAGECLASS", "VOLUMEATTRIBUTESCLASS", "AGE", "VOLUMEMODE"],
      ["disk", "Bound", "pv-1", "10Gi", "RWX", "standard", "<unset>", expect.stringMatching(/^\d+s$/), "Block"],
    ]);
    expect(table(await ok("get", "dv", "-n", "vms"))[0]).toEqual(["NAME", "PHASE", "PROGRESS", "RESTARTS", "AGE"]);
    expect(table(await ok("get", "dv", "-n", "vms"))[1]?.[0]).toBe("web-root");
    expect(table(await ok("get", "kv", "-n", "kubevirt"))[0]).toEqual(["NAME", "AGE", "PHASE"]);
    const all = table(await ok("get", "all", "-n", "vms", "-o", "name"));
    expect(all.flat()).toEqual(["virtualmachine.kubevirt.io/web", "datavolume.cdi.kubevirt.io/web-root"]);
    const none = await kubectl("get", "vmi", "-n", "vms");
    expect([none.code, none.stdout, none.stderr]).toEqual([0, "", "No resources found in vms namespace.\n"]);
  });

  it("gets plain objects as YAML and JSON, and describes them", async () => {
    const y = await ok("get", "vm", "web", "-n", "vms", "-o", "yaml");
    expect(y).toContain("kind: VirtualMachine");
    expect(y).toContain("runStrategy: Always");
    const j = JSON.parse(await ok("get", "vm", "-n", "vms", "-o", "json")) as { kind: string; items: { metadata: { name: string } }[] };
    expect(j.kind).toBe("List");
    expect(j.items.map((i) => i.metadata.name)).toEqual(["web"]);
    const d = await ok("describe", "vm", "web", "-n", "vms");
    expect(d).toMatch(/^Name:\s+web$/m);
    expect(d).toMatch(/^Namespace:\s+vms$/m);
    expect(d).toMatch(/Run Strategy:\s+Always/);
    expect(d).toMatch(/Events:\s+<none>/);
    const uid = await ok("get", "vm", "web", "-n", "vms", "-o", "jsonpath={.metadata.uid}");
    const event = {
      apiVersion: "v1",
      kind: "Event",
      metadata: { name: "web.started", namespace: "vms" },
      involvedObject: { apiVersion: "kubevirt.io/v1", kind: "VirtualMachine", name: "web", namespace: "vms", uid },
      reason: "SuccessfulCreate",
      message: "Started the virtual machine by creating the new virtual machine instance web",
      type: "Normal",
      source: { component: "virtualmachine-controller" },
      count: 1,
      firstTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
      lastTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
    };
    await ok("create", "-f", file("event.json", JSON.stringify(event)));
    expect(await ok("describe", "vm", "web", "-n", "vms")).toMatch(/Normal\s+SuccessfulCreate\s+\S+\s+virtualmachine-controller\s+Started the virtual machine/);
    expect(table(await ok("get", "events", "-n", "vms"))[1]).toEqual([expect.any(String), "Normal", "SuccessfulCreate", "virtualmachine/web", event.message]);
    await ok("create", "configmap", "described", "-n", "vms", "--from-literal=k=v");
    expect(await ok("describe", "cm", "described", "-n", "vms")).toMatch(/^k:\n----\nv$/m);
  });

  it("describes a node; pods are served read-only (none here: no KubeVirt simulation runs launchers)", async () => {
    const d = await ok("describe", "node", "a-node-1");
    expect(d).toMatch(/^Name:\s+a-node-1$/m);
    expect(d).toMatch(/^Non-terminated Pods:\s+\(0 in total\)$/m);
    expect(d).toMatch(/^Allocatable:\n\s+cpu:\s+16$/m);
    const none = await kubectl("get", "pods", "-A");
    expect([none.code, none.stdout, none.stderr.trim()]).toEqual([0, "", "No resources found"]);
    const del = await kubectl("delete", "pod", "virt-launcher-x", "-n", "vms");
    expect(del.code).not.toBe(0);
    expect(del.stderr).toContain("serves pods read-only");
  });

  it("applies (client-side and --server-side), patches, labels and deletes", async () => {
    const cm = (data: string) => file("cm.yaml", `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\ndata:\n${data}`);
    expect(await ok("apply", "-f", cm("  a: '1'\n  b: '2'\n"))).toBe("configmap/cfg created\n");
    expect(await ok("apply", "-f", cm("  a: '1'\n  c: '3'\n"))).toBe("configmap/cfg configured\n");
    expect(JSON.parse(await ok("get", "cm", "cfg", "-o", "jsonpath={.data}"))).toEqual({ a: "1", c: "3" });

    const vm = (strategy: string) =>
      file("vm.yaml", `apiVersion: kubevirt.io/v1\nkind: VirtualMachine\nmetadata:\n  name: applied\n  namespace: vms\n  labels: {x: "1"}\nspec:\n  runStrategy: ${strategy}\n`);
    expect(await ok("apply", "--server-side", "-f", vm("Halted"))).toBe("virtualmachine.kubevirt.io/applied serverside-applied\n");
    expect(await ok("apply", "--server-side", "-f", vm("Always"))).toBe("virtualmachine.kubevirt.io/applied serverside-applied\n");
    expect(await ok("get", "vm", "applied", "-n", "vms", "-o", "jsonpath={.spec.runStrategy}")).toBe("Always");
    // Client-side apply over a server-side applied object: kubectl warns and adds its annotation.
    const csa = await kubectl("apply", "-f", vm("Manual"));
    expect([csa.code, csa.stdout]).toEqual([0, "virtualmachine.kubevirt.io/applied configured\n"]);
    expect(csa.stderr).toContain("missing the kubectl.kubernetes.io/last-applied-configuration annotation");
    expect(await ok("get", "vm", "applied", "-n", "vms", "-o", "jsonpath={.spec.runStrategy}")).toBe("Manual");

    expect(await ok("patch", "cm", "cfg", "--type", "merge", "-p", '{"data":{"m":"1"}}')).toBe("configmap/cfg patched\n");
    expect(await ok("patch", "cm", "cfg", "--type", "json", "-p", '[{"op":"remove","path":"/data/a"}]')).toBe("configmap/cfg patched\n");
    expect(await ok("patch", "cm", "cfg", "--type", "strategic", "-p", '{"data":{"s":"1"}}')).toBe("configmap/cfg patched\n");
    expect(JSON.parse(await ok("get", "cm", "cfg", "-o", "jsonpath={.data}"))).toEqual({ c: "3", m: "1", s: "1" });
    const smp = await kubectl("patch", "vm", "applied", "-n", "vms", "-p", '{"spec":{"runStrategy":"Halted"}}');
    expect(smp.code).not.toBe(0);
    expect(smp.stderr).toContain("application/strategic-merge-patch+json is not supported");
    expect(await ok("patch", "vm", "applied", "-n", "vms", "--type", "merge", "-p", '{"spec":{"runStrategy":"Halted"}}')).toContain("patched");

    expect(await ok("label", "vm", "applied", "-n", "vms", "team=ops")).toBe("virtualmachine.kubevirt.io/applied labeled\n");
    expect(await ok("annotate", "cm", "cfg", "note=hi")).toBe("configmap/cfg annotated\n");
    expect(await ok("get", "vm", "-n", "vms", "-l", "team=ops", "-o", "name")).toBe("virtualmachine.kubevirt.io/applied\n");

    expect(await ok("delete", "vm", "applied", "-n", "vms")).toBe('virtualmachine.kubevirt.io "applied" deleted\n');
    expect(await ok("delete", "-f", join(tmp, "cm.yaml"))).toBe('configmap "cfg" deleted\n');
    const gone = await kubectl("get", "cm", "cfg");
    expect(gone.stderr).toContain('configmaps "cfg" not found');
  });

  it("waits for a jsonpath value and for deletion", async () => {
    file("vmi.yaml", "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstance\nmetadata:\n  name: x\n  namespace: vms\nspec:\n  domain: {devices: {}}\n");
    await ok("apply", "-f", join(tmp, "vmi.yaml"));
    const waiting = kubectl("wait", "--for=jsonpath={.status.phase}=Running", "vmi/x", "-n", "vms", "--timeout=15s");
    await setStatus("vmi/x", { phase: "Scheduling" });
    await setStatus("vmi/x", { phase: "Running", nodeName: "a-node-1" });
    const w = await waiting;
    expect([w.code, w.stdout]).toEqual([0, "virtualmachineinstance.kubevirt.io/x condition met\n"]);
    const vmi = table(await ok("get", "vmi", "-n", "vms", "-o", "wide"));
    expect(vmi[0]).toEqual(["NAME", "AGE", "PHASE", "IP", "NODENAME", "READY", "LIVE-MIGRATABLE", "PAUSED"]);
    expect(vmi[1]).toEqual(["x", expect.stringMatching(/^\d+s$/), "Running", "a-node-1"]);

    const deleting = kubectl("wait", "--for=delete", "vmi/x", "-n", "vms", "--timeout=15s");
    await ok("delete", "vmi", "x", "-n", "vms", "--wait=false");
    expect((await deleting).code).toBe(0);
  });

  it("watches with get -w", async () => {
    const w = streaming("get", "vmim", "-n", "vms", "-w");
    try {
      file("vmim.yaml", "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\nmetadata:\n  name: mig\n  namespace: vms\nspec:\n  vmiName: web\n");
      await eventually(() => w.proc.exitCode === null, 2000, "kubectl get -w running");
      await ok("create", "-f", join(tmp, "vmim.yaml"));
      await eventually(() => w.lines.length >= 2, 10_000, "header and first row");
      for (const phase of ["Scheduling", "Running", "Succeeded"]) {
        await setStatus("vmim/mig", { phase });
      }
      await eventually(() => w.lines.some((l) => l.includes("Succeeded")), 10_000, "the Succeeded row");
      expect(w.lines[0]).toMatch(/^NAME\s+PHASE\s+VMI$/);
      expect(w.lines[1]).toMatch(/^mig\s+web$/);
      expect(w.lines.slice(2).map((l) => l.split(/\s+/))).toEqual(["Scheduling", "Running", "Succeeded"].map((p) => ["mig", p, "web"]));
    } finally {
      w.stop();
      await exited(w.proc);
    }
  });

  it("is refused without the right token", async () => {
    const bad = file("bad-kubeconfig", world.cluster("a").kubeconfig.replace(world.cluster("a").token, "nope"));
    const r = await new Promise<Run>((resolve) =>
      execFile(KUBECTL, ["--kubeconfig", bad, "--cache-dir", join(tmp, "cache-bad"), "get", "ns"], { env: { ...process.env, HOME: tmp } }, (err, stdout, stderr) =>
        resolve({ code: err ? 1 : 0, stdout, stderr }),
      ),
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: You must be logged in to the server");
  });
});

describe("kubectl against a cluster with the KubeVirt simulation running", () => {
  let kv: World;
  let cfg: string;
  beforeAll(async () => {
    kv = await startWorld({
      clusters: ["kv"],
      timeScale: 1000,
      dir: join(tmp, "sim-kv"),
      scenario: {
        clusters: {
          kv: {
            namespaces: ["default", "vms"],
            nodes: [{ count: 2 }],
            storageClasses: [{ name: "standard", default: true }],
            // timeouts out of reach: a "no-converge" guest keeps a migration in flight while the test reads its metrics
            kubevirt: { migrations: { progressTimeout: 100_000, completionTimeoutPerGiB: 100_000, bandwidthPerMigration: "64Mi" } },
            vms: [{ name: "web", namespace: "vms", memory: "2Gi" }],
          },
        },
      },
    });
    cfg = kv.cluster("kv").kubeconfigPath!;
  });
  afterAll(async () => {
    await kv.stop();
  });

  it("lists the running VM's virt-launcher pod and describes its node with it", async () => {
    await eventually(async () => (await okAt(cfg, "get", "vmi", "web", "-n", "vms", "-o", "jsonpath={.status.phase}")) === "Running", 15_000, "VMI Running");
    const node = await okAt(cfg, "get", "vmi", "web", "-n", "vms", "-o", "jsonpath={.status.nodeName}");
    const pods = table(await okAt(cfg, "get", "pods", "-n", "vms", "-o", "wide", "-l", "kubevirt.io=virt-launcher,vm.kubevirt.io/name=web"));
    expect(pods[0]).toEqual(["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]);
    expect(pods).toHaveLength(2);
    const [name, ready, status, restarts, , ip, podNode] = pods[1]!;
    expect([ready, status, restarts, podNode]).toEqual(["1/1", "Running", "0", node]);
    expect(name).toMatch(/^virt-launcher-web-[a-z0-9]{5}$/);
    // the pod's IP is the one the VMI reports
    expect(ip).toBe(await okAt(cfg, "get", "vmi", "web", "-n", "vms", "-o", "jsonpath={.status.interfaces[0].ipAddress}"));
    const d = await okAt(cfg, "describe", "node", node);
    // the VM's launcher and the node's virt-handler (virt-operator's DaemonSet)
    expect(d).toMatch(/^Non-terminated Pods:\s+\(2 in total\)$/m);
    expect(d).toMatch(new RegExp(`^\\s+vms\\s+${name}\\s+100m \\(0%\\)\\s+0 \\(0%\\)\\s+2248Mi \\(1%\\)`, "m"));
    expect(d).toMatch(/^\s+kubevirt\s+virt-handler-[a-z0-9]{5}\s/m);
    const pod = await okAt(cfg, "describe", "pod", name!, "-n", "vms");
    expect(pod).toMatch(/^Controlled By:\s+VirtualMachineInstance\/web$/m);
    expect(pod).toMatch(/^Node:\s+[^/]+\/10\./m);
  });

  it("reads the migration progress of the source node's virt-handler through the API server (kubectl get --raw …/pods/https:<pod>:8443/proxy/metrics)", async () => {
    const node = await okAt(cfg, "get", "vmi", "web", "-n", "vms", "-o", "jsonpath={.status.nodeName}");
    const handler = await okAt(cfg, "get", "pods", "-n", "kubevirt", "-l", "kubevirt.io=virt-handler", "--field-selector", `spec.nodeName=${node}`, "-o", "jsonpath={.items[*].metadata.name}");
    expect(handler).toMatch(/^virt-handler-[a-z0-9]{5}$/);
    await kv.controlClient().kubevirt("kv").setDirtyRate("vms", "web", "no-converge");
    await okAt(cfg, "create", "-f", file("vmim.yaml", "apiVersion: kubevirt.io/v1\nkind: VirtualMachineInstanceMigration\nmetadata:\n  name: move-web\n  namespace: vms\nspec:\n  vmiName: web\n"));
    const raw = `/api/v1/namespaces/kubevirt/pods/https:${handler}:8443/proxy/metrics`;
    const processed = new RegExp(`^kubevirt_vmi_migration_data_processed_bytes\\{name="web",namespace="vms",node="${node}"\\} (\\d+) \\d+$`, "m");
    const first = await eventually(async () => Number(processed.exec(await okAt(cfg, "get", "--raw", raw))?.[1] ?? 0), 15_000, "processed bytes of the running migration");
    expect(first).toBeGreaterThan(0);
    const text = await okAt(cfg, "get", "--raw", raw);
    expect(text).toMatch(new RegExp(`^kubevirt_vmi_migration_data_bytes_total\\{name="web",namespace="vms",node="${node}"\\} \\d+ \\d+$`, "m"));
    expect(text).toMatch(/^# TYPE kubevirt_vmi_migration_memory_transfer_rate_bytes gauge$/m);
    await eventually(async () => Number(processed.exec(await okAt(cfg, "get", "--raw", raw))?.[1] ?? 0) > first, 15_000, "more bytes processed");
    // without a scheme kube-apiserver speaks plain HTTP to virt-handler's TLS port: Go's 400, relayed
    const plain = await kubectlAt(cfg, "get", "--raw", `/api/v1/namespaces/kubevirt/pods/${handler}:8443/proxy/metrics`);
    expect([plain.code, plain.stderr.trim()]).toEqual([1, "Error from server (BadRequest): the server rejected our request for an unknown reason"]);
    await okAt(cfg, "delete", "vmim", "move-web", "-n", "vms");
  });
});

describe("kubectl and storage capacity (CSIStorageCapacity)", () => {
  let cap: World;
  let cfg: string;
  beforeAll(async () => {
    cap = await startWorld({
      clusters: ["cap"],
      timeScale: 1000,
      dir: join(tmp, "sim-cap"),
      scenario: {
        clusters: {
          cap: {
            namespaces: ["default"],
            storageClasses: [{ name: "standard", default: true, capacity: "1Ti" }, { name: "plain" }],
            kubevirt: false,
            objects: [{ apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data", namespace: "default" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "10Gi" } } } }],
          },
        },
      },
    });
    cfg = cap.cluster("cap").kubeconfigPath!;
  });
  afterAll(async () => {
    await cap.stop();
  });

  it("lists the capacity a class with `capacity` publishes, net of its bound claims; a class without publishes none", async () => {
    const res = table(await okAt(cfg, "api-resources", "--api-group", "storage.k8s.io"));
    expect(res.find((r) => r[0] === "csistoragecapacities")).toEqual(["csistoragecapacities", "storage.k8s.io/v1", "true", "CSIStorageCapacity"]);
    await eventually(async () => (await okAt(cfg, "get", "pvc", "data", "-o", "jsonpath={.status.phase}")) === "Bound", 10_000, "PVC bound");
    const rows = await eventually(async () => {
      const t = table(await okAt(cfg, "get", "csistoragecapacities", "-A"));
      return t[1]?.[3] === "1014Gi" ? t : undefined;
    }, 10_000, "1Ti - 10Gi published");
    expect(rows).toEqual([
      ["NAMESPACE", "NAME", "STORAGECLASSNAME", "CAPACITY"],
      ["kube-system", expect.stringMatching(/^csisc-[a-z0-9]{5}$/), "standard", "1014Gi"],
    ]);
  });
});
