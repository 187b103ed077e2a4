// Scenarios: what each simulated cluster holds when it starts. A YAML file validated with zod (errors
// name the field), or the built-in default. Seeding creates ordinary objects through the store, as a
// cluster admin would with kubectl; the simulated KubeVirt/CDI controllers then act on them.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import YAML from "yaml";
import { z } from "zod";
import { ApiError } from "./apiserver/errors.js";
import { R, type ResourceType, resourceTypes } from "./apiserver/resources.js";
import type { KObject, NewObject } from "./apiserver/store.js";
import { AnnStorageCapacity } from "./cdi/storage.js";
import type { SimCluster } from "./cluster.js";

const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$/;
const quantity = z
  .union([z.string(), z.number().nonnegative()], {
    error: (iss) => (iss.input === undefined ? "required" : 'expected a Kubernetes quantity such as "2Gi", "500m" or "4"'),
  })
  .transform(String)
  .refine((s) => QUANTITY.test(s), { message: 'expected a Kubernetes quantity such as "2Gi", "500m" or "4"' });
const dnsName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/, "must be a lowercase RFC 1123 name (a-z, 0-9, '-', '.')")
  .max(253);
const dnsLabel = z.string().regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, "must be a lowercase RFC 1123 label (a-z, 0-9, '-')").max(63);
const labels = z.record(z.string(), z.string());
const MAC = /^([0-9a-fA-F]{2}:){5}[0-9a-fA-F]{2}$/;

export const NodeSpec = z.strictObject({
  /** Node name; with count > 1 the nodes are "<name>-1".."<name>-N". Default "<cluster>-node-<i>". */
  name: dnsName.optional(),
  count: z.number().int().min(1).default(1),
  arch: z.enum(["amd64", "arm64", "s390x"]).default("amd64"),
  /** Allocatable CPU and memory. */
  cpu: quantity.default("32"),
  memory: quantity.default("128Gi"),
  labels: labels.optional(),
  unschedulable: z.boolean().optional(),
});

export const StorageClassSpec = z.strictObject({
  name: dnsName,
  provisioner: z.string().default("csi.sim.ferry.dev"),
  volumeBindingMode: z.enum(["Immediate", "WaitForFirstConsumer"]).default("Immediate"),
  /** Marks the class with storageclass.kubernetes.io/is-default-class. */
  default: z.boolean().default(false),
  reclaimPolicy: z.enum(["Delete", "Retain"]).default("Delete"),
  allowVolumeExpansion: z.boolean().default(true),
  parameters: z.record(z.string(), z.string()).optional(),
  /** Size of the class's storage pool: published as a CSIStorageCapacity object with what is left
   *  (this minus the class's Bound claims). Absent: no capacity is published, as with most drivers. */
  capacity: quantity.optional(),
});

export const NetworkSpec = z.strictObject({
  /** NetworkAttachmentDefinition name. */
  name: dnsName,
  namespace: dnsLabel.default("default"),
  /** CNI plugin type used in the generated config. */
  type: z.string().default("bridge"),
  /** Full CNI config (object or JSON string); generated from name/type when absent. */
  config: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
});

export const KubeVirtSpec = z.strictObject({
  name: dnsName.default("kubevirt"),
  namespace: dnsLabel.default("kubevirt"),
  featureGates: z.array(z.string()).default(["DecentralizedLiveMigration"]),
  workloadUpdateMethods: z.array(z.enum(["LiveMigrate", "Evict"])).default(["LiveMigrate"]),
  vmRolloutStrategy: z.enum(["LiveUpdate", "Stage"]).default("LiveUpdate"),
  /** spec.configuration.migrations, over KubeVirt's defaults. */
  migrations: z.record(z.string(), z.unknown()).optional(),
  /** NAD name for migration traffic (spec.configuration.migrations.network). */
  migrationNetwork: z.string().optional(),
  synchronizationPort: z.union([z.string(), z.number().int()]).transform(String).optional(),
  /** spec.certificateRotateStrategy, e.g. {selfSigned: {ca: {duration: "20m"}}} (default: KubeVirt's 7-day CA). */
  certificateRotateStrategy: z.record(z.string(), z.unknown()).optional(),
  /** Extra spec.configuration fields, merged last. */
  configuration: z.record(z.string(), z.unknown()).optional(),
});

export const DiskSpec = z.strictObject({
  name: dnsLabel,
  size: quantity,
  /** Default: the cluster's default storage class. */
  storageClass: z.string().optional(),
  accessModes: z.array(z.enum(["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"])).default(["ReadWriteMany"]),
  volumeMode: z.enum(["Block", "Filesystem"]).default("Block"),
  /** true: a dataVolumeTemplate of the VM; false: a separate DataVolume the VM references. */
  template: z.boolean().default(true),
});

export const VmNetworkSpec = z.strictObject({
  name: dnsLabel.default("default"),
  /** "pod" (masquerade on the pod network) or a NAD name ("nad" or "namespace/nad") for multus. */
  network: z.string().default("pod"),
  binding: z.enum(["masquerade", "bridge"]).optional(),
  /** MAC address; default: derived from the cluster, VM and interface names (locally administered). */
  mac: z.string().regex(MAC, "must be a MAC address like 02:00:00:00:00:01").optional(),
});

export const VmSpec = z.strictObject({
  name: dnsName,
  namespace: dnsLabel.default("default"),
  /** With count > 1 the VMs are "<name>-1".."<name>-N" (for scale scenarios). */
  count: z.number().int().min(1).default(1),
  memory: quantity.default("1Gi"),
  cpu: z.number().int().min(1).default(1),
  runStrategy: z.enum(["Always", "Halted", "Manual", "RerunOnFailure", "Once", "WaitAsReceiver"]).default("Always"),
  labels: labels.optional(),
  annotations: labels.optional(),
  evictionStrategy: z.enum(["LiveMigrate", "LiveMigrateIfPossible", "None", "External"]).optional(),
  disks: z.array(DiskSpec).default([{ name: "rootdisk", size: "10Gi", accessModes: ["ReadWriteMany"], volumeMode: "Block", template: true }]),
  networks: z.array(VmNetworkSpec).default([{ name: "default", network: "pod" }]),
});

const RawObject = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.looseObject({ name: z.string().optional(), generateName: z.string().optional(), namespace: z.string().optional() }),
});

export const ClusterSpec = z.strictObject({
  namespaces: z.array(z.union([dnsLabel, z.strictObject({ name: dnsLabel, labels: labels.optional() })])).optional(),
  nodes: z.array(NodeSpec).optional(),
  storageClasses: z.array(StorageClassSpec).optional(),
  networks: z.array(NetworkSpec).optional(),
  /** The KubeVirt CR; false: none. */
  kubevirt: z.union([KubeVirtSpec, z.literal(false)]).optional(),
  vms: z.array(VmSpec).optional(),
  /** Any other objects, created as given (kinds the API server serves). */
  objects: z.array(RawObject).optional(),
});

export const Scenario = z.strictObject({
  /** Applied to every cluster; a cluster's own entry replaces whole top-level fields. */
  defaults: ClusterSpec.optional(),
  /** Per-cluster specs by cluster name; their names are the clusters started when none are given. */
  clusters: z.record(dnsLabel, ClusterSpec).optional(),
});

export type ClusterSpec = z.infer<typeof ClusterSpec>;
export type Scenario = z.infer<typeof Scenario>;
export type ScenarioInput = z.input<typeof Scenario>;

function formatIssues(error: z.ZodError, source: string): string {
  const lines = error.issues.map((i) => {
    const path = i.path.map((p, idx) => (typeof p === "number" ? `[${p}]` : `${idx ? "." : ""}${String(p)}`)).join("");
    return `  ${path || "(root)"}: ${i.message}`;
  });
  return `invalid scenario ${source}:\n${lines.join("\n")}`;
}

/** Validates a scenario object; the error lists every bad field by path. */
export function parseScenario(input: unknown, source = "(inline)"): Scenario {
  const r = Scenario.safeParse(input ?? {});
  if (!r.success) throw new Error(formatIssues(r.error, source));
  return r.data;
}

export function loadScenarioFile(path: string): Scenario {
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`cannot read scenario ${path}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
  }
  return parseScenario(doc, path);
}

/** The scenario used when no file is given: clusters a and b, running VMs on a. */
export function defaultScenario(): Scenario {
  return parseScenario({
    defaults: {
      namespaces: ["default", "kube-system", "kube-public", "kube-node-lease", "kubevirt", "cdi", "vms"],
      nodes: [{ count: 3, arch: "amd64", cpu: "32", memory: "128Gi" }],
      storageClasses: [
        { name: "standard", default: true, volumeBindingMode: "Immediate", provisioner: "rbd.csi.sim.ferry.dev" },
        { name: "local-wffc", volumeBindingMode: "WaitForFirstConsumer", provisioner: "local.csi.sim.ferry.dev" },
      ],
      networks: [{ name: "vlan100", namespace: "vms", type: "bridge" }],
      kubevirt: {},
    },
    clusters: {
      a: {
        vms: [
          { name: "web-1", namespace: "vms", memory: "2Gi", cpu: 1, labels: { app: "web" }, disks: [{ name: "rootdisk", size: "10Gi" }] },
          { name: "web-2", namespace: "vms", memory: "2Gi", cpu: 1, labels: { app: "web" }, disks: [{ name: "rootdisk", size: "10Gi" }] },
          {
            name: "db-1",
            namespace: "vms",
            memory: "8Gi",
            cpu: 4,
            labels: { app: "db" },
            evictionStrategy: "LiveMigrate",
            disks: [{ name: "rootdisk", size: "20Gi" }, { name: "data", size: "50Gi", template: false }],
            networks: [{ name: "default", network: "pod" }, { name: "vlan100", network: "vlan100" }],
          },
        ],
      },
      b: {},
    },
  });
}

/** The spec a cluster gets: its own entry's fields over the defaults. */
export function clusterSpec(s: Scenario, cluster: string): ClusterSpec {
  return { ...(s.defaults ?? {}), ...(s.clusters?.[cluster] ?? {}) };
}

function mac(...parts: string[]): string {
  const h = createHash("sha256").update(parts.join("/")).digest();
  return ["02", ...[...h.subarray(0, 5)].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

/** Builds every object of a cluster's spec, in creation order (namespaces first). */
export function buildObjects(clusterName: string, clusterIndex: number, spec: ClusterSpec): { rt: ResourceType; obj: NewObject }[] {
  const out: { rt: ResourceType; obj: NewObject }[] = [];
  const add = (rt: ResourceType, obj: NewObject) => out.push({ rt, obj });

  for (const ns of spec.namespaces ?? []) {
    const n = typeof ns === "string" ? { name: ns } : ns;
    add(R.Namespace, { metadata: { name: n.name, labels: { "kubernetes.io/metadata.name": n.name, ...(n.labels ?? {}) } } });
  }
  // Namespaces the other objects need, if the spec did not list them.
  const listed = new Set(out.map((o) => o.obj.metadata.name));
  const need = (ns: string | undefined) => {
    if (ns && !listed.has(ns)) {
      listed.add(ns);
      add(R.Namespace, { metadata: { name: ns, labels: { "kubernetes.io/metadata.name": ns } } });
    }
  };

  let nodeIndex = 0;
  for (const group of spec.nodes ?? []) {
    for (let i = 1; i <= group.count; i++) {
      nodeIndex++;
      const name = group.name ? (group.count > 1 ? `${group.name}-${i}` : group.name) : `${clusterName}-node-${nodeIndex}`;
      const resources = { cpu: group.cpu, memory: group.memory, pods: "110", "ephemeral-storage": "100Gi" };
      add(R.Node, {
        metadata: {
          name,
          labels: {
            "kubernetes.io/arch": group.arch,
            "kubernetes.io/os": "linux",
            "kubernetes.io/hostname": name,
            "node-role.kubernetes.io/worker": "",
            "kubevirt.io/schedulable": "true",
            ...(group.labels ?? {}),
          },
        },
        spec: group.unschedulable ? { unschedulable: true } : {},
        status: {
          capacity: resources,
          allocatable: resources,
          conditions: [{ type: "Ready", status: "True", reason: "KubeletReady", message: "kubelet is posting ready status" }],
          addresses: [
            { type: "InternalIP", address: `10.${(clusterIndex % 250) + 1}.0.${(nodeIndex % 250) + 1}` },
            { type: "Hostname", address: name },
          ],
          nodeInfo: {
            architecture: group.arch,
            operatingSystem: "linux",
            osImage: "Sim Linux 1.0",
            kernelVersion: "6.1.0-sim",
            kubeletVersion: "v1.32.4",
            kubeProxyVersion: "v1.32.4",
            containerRuntimeVersion: "containerd://1.7.24",
          },
        },
      });
    }
  }

  let defaultClass: string | undefined;
  for (const sc of spec.storageClasses ?? []) {
    if (sc.default && !defaultClass) defaultClass = sc.name;
    const annotations = {
      ...(sc.default ? { "storageclass.kubernetes.io/is-default-class": "true" } : {}),
      ...(sc.capacity !== undefined ? { [AnnStorageCapacity]: sc.capacity } : {}),
    };
    add(R.StorageClass, {
      metadata: { name: sc.name, ...(Object.keys(annotations).length ? { annotations } : {}) },
      provisioner: sc.provisioner,
      reclaimPolicy: sc.reclaimPolicy,
      volumeBindingMode: sc.volumeBindingMode,
      allowVolumeExpansion: sc.allowVolumeExpansion,
      ...(sc.parameters ? { parameters: sc.parameters } : {}),
    });
  }

  for (const net of spec.networks ?? []) {
    need(net.namespace);
    const config =
      typeof net.config === "string"
        ? net.config
        : JSON.stringify(net.config ?? { cniVersion: "0.3.1", name: net.name, type: net.type, bridge: `br-${net.name}`.slice(0, 15), ipam: {} });
    add(R.NetworkAttachmentDefinition, { metadata: { name: net.name, namespace: net.namespace }, spec: { config } });
  }

  if (spec.kubevirt) {
    const kv = spec.kubevirt;
    need(kv.namespace);
    const migrations = {
      parallelMigrationsPerCluster: 5,
      parallelOutboundMigrationsPerNode: 2,
      bandwidthPerMigration: "0Mi",
      completionTimeoutPerGiB: 150,
      progressTimeout: 150,
      ...(kv.migrationNetwork ? { network: kv.migrationNetwork } : {}),
      ...(kv.migrations ?? {}),
    };
    add(R.KubeVirt, {
      metadata: { name: kv.name, namespace: kv.namespace },
      spec: {
        certificateRotateStrategy: kv.certificateRotateStrategy ?? {},
        configuration: {
          developerConfiguration: { featureGates: kv.featureGates },
          vmRolloutStrategy: kv.vmRolloutStrategy,
          migrations,
          ...(kv.configuration ?? {}),
        },
        workloadUpdateStrategy: { workloadUpdateMethods: kv.workloadUpdateMethods },
        ...(kv.synchronizationPort ? { synchronizationPort: kv.synchronizationPort } : {}),
      },
    });
  }

  for (const vm of spec.vms ?? []) {
    need(vm.namespace);
    for (let i = 1; i <= vm.count; i++) {
      const name = vm.count > 1 ? `${vm.name}-${i}` : vm.name;
      for (const { rt, obj } of buildVm(clusterName, { ...vm, name }, defaultClass)) add(rt, obj);
    }
  }

  for (const [i, o] of (spec.objects ?? []).entries()) {
    const rt = resourceTypes.find((t) => t.kind === o.kind && (t.group ? `${t.group}/${t.version}` : t.version) === o.apiVersion);
    if (!rt) throw new Error(`objects[${i}]: kind ${o.apiVersion} ${o.kind} is not served by the simulated API server`);
    if (rt.readOnly) throw new Error(`objects[${i}]: kind ${o.apiVersion} ${o.kind} is served read-only (the KubeVirt simulation owns them); seed VMs instead`);
    if (rt.namespaced) need(o.metadata.namespace ?? "default");
    add(rt, { ...o, metadata: { ...o.metadata, ...(rt.namespaced ? { namespace: o.metadata.namespace ?? "default" } : {}) } } as NewObject);
  }
  // Namespaces first, then the rest in the order built.
  return [...out.filter((o) => o.rt === R.Namespace), ...out.filter((o) => o.rt !== R.Namespace)];
}

type Vm = z.infer<typeof VmSpec>;

function buildVm(cluster: string, vm: Vm, defaultClass: string | undefined): { rt: ResourceType; obj: NewObject }[] {
  const out: { rt: ResourceType; obj: NewObject }[] = [];
  const dvName = (disk: string) => `${vm.name}-${disk}`;
  const dvSpec = (d: Vm["disks"][number]) => ({
    source: { blank: {} },
    storage: {
      accessModes: d.accessModes,
      volumeMode: d.volumeMode,
      resources: { requests: { storage: d.size } },
      ...((d.storageClass ?? defaultClass) ? { storageClassName: d.storageClass ?? defaultClass } : {}),
    },
  });
  for (const d of vm.disks.filter((x) => !x.template)) {
    out.push({ rt: R.DataVolume, obj: { metadata: { name: dvName(d.name), namespace: vm.namespace, labels: { "kubevirt.io/vm": vm.name } }, spec: dvSpec(d) } });
  }
  const interfaces = vm.networks.map((n) => {
    const binding = n.binding ?? (n.network === "pod" ? "masquerade" : "bridge");
    return { name: n.name, [binding]: {}, macAddress: n.mac ?? mac(cluster, vm.namespace, vm.name, n.name) };
  });
  const networks = vm.networks.map((n) => (n.network === "pod" ? { name: n.name, pod: {} } : { name: n.name, multus: { networkName: n.network } }));
  const templateLabels = { "kubevirt.io/vm": vm.name, ...(vm.labels ?? {}) };
  out.push({
    rt: R.VirtualMachine,
    obj: {
      metadata: { name: vm.name, namespace: vm.namespace, ...(vm.labels ? { labels: vm.labels } : {}), ...(vm.annotations ? { annotations: vm.annotations } : {}) },
      spec: {
        runStrategy: vm.runStrategy,
        dataVolumeTemplates: vm.disks.filter((d) => d.template).map((d) => ({ metadata: { name: dvName(d.name) }, spec: dvSpec(d) })),
        template: {
          metadata: { labels: templateLabels },
          spec: {
            domain: {
              cpu: { cores: vm.cpu, sockets: 1, threads: 1 },
              memory: { guest: vm.memory },
              resources: { requests: { memory: vm.memory } },
              devices: {
                disks: vm.disks.map((d) => ({ name: d.name, disk: { bus: "virtio" } })),
                interfaces,
              },
            },
            ...(vm.evictionStrategy ? { evictionStrategy: vm.evictionStrategy } : {}),
            networks,
            volumes: vm.disks.map((d) => ({ name: d.name, dataVolume: { name: dvName(d.name) } })),
          },
        },
      },
    },
  });
  return out;
}

/**
 * Creates a cluster's objects through its store as a client would (admission applies). Objects
 * given with a status get it written through the status subresource afterwards. An object that
 * already exists is left as it is.
 */
export function seedCluster(cluster: SimCluster, clusterIndex: number, spec: ClusterSpec): number {
  let created = 0;
  for (const { rt, obj } of buildObjects(cluster.name, clusterIndex, spec)) {
    const where = `${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ""}${obj.metadata.name ?? obj.metadata.generateName ?? ""}`;
    try {
      const made: KObject = cluster.store.create(rt, obj);
      created++;
      if (rt.statusSubresource && rt !== R.Node && rt !== R.Namespace && obj.status !== undefined) {
        cluster.store.update(rt, { ...made, status: obj.status }, { subresource: "status" });
      }
    } catch (e) {
      if (e instanceof ApiError && e.reason === "AlreadyExists") continue;
      throw new Error(`cluster ${cluster.name}: cannot create ${rt.kind} ${where}: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
    }
  }
  return created;
}
