// Read-only RPCs: describe-vm (what the target needs to recreate the VM) and preflight (the reads
// behind core/preflight's pure checks).
import type { DescribeVmRequest, PreflightRequest, PreflightResult, VmDescription } from "../../proto/bus/index.js";
import { BUS_API_VERSION } from "../../proto/bus/index.js";
import type { KubeObject } from "../../proto/kube.js";
import { sourceVolumesOf } from "../core/build.js";
import { CDI_API, KUBEVIRT_API, type DataVolume, type KubeObj, type Node, type Pvc, type VirtualMachine, type VirtualMachineInstance } from "../core/kube.js";
import { preflightIssues, preflightResult, nodeArchitecture, type PreflightObserved } from "../core/preflight.js";
import { classCapacities } from "../inventory/build.js";
import { vmDependencies, vmInterfaces, vmMemoryBytes, vmVolumes } from "../core/vm.js";
import { readKubeVirt, readVm, type Ctx } from "./context.js";

/** A request the executor cannot answer; `code` is the RpcError code the runtime replies with. */
export class ExecutorError extends Error {
  constructor(
    readonly code: "BadRequest" | "NotFound" | "Unavailable",
    message: string,
    readonly fix?: string,
  ) {
    super(message);
    this.name = "ExecutorError";
  }
}

/** Metadata that describes the object's life on its own cluster, dropped from what is sent. */
function portable(obj: KubeObj, kind: string, apiVersion: string): KubeObject {
  const { managedFields: _m, resourceVersion: _r, uid: _u, creationTimestamp: _c, generation: _g, selfLink: _s, ownerReferences: _o, ...metadata } = obj.metadata;
  return { ...obj, apiVersion, kind, metadata } as KubeObject;
}

export async function describeVm(ctx: Ctx, req: DescribeVmRequest): Promise<VmDescription> {
  const { namespace, name } = req.vm;
  const [vm, vmi] = await readVm(ctx, namespace, name);
  if (!vm) throw new ExecutorError("NotFound", `VM ${namespace}/${name} does not exist on cluster ${ctx.cluster}`, "check the namespace and name");
  const [pvcs, dataVolumes] = await Promise.all([ctx.kube.list<Pvc>("v1", "PersistentVolumeClaim", namespace), ctx.kube.list<DataVolume>(CDI_API, "DataVolume", namespace)]);
  const manifest = structuredClone(vm);
  // Keep the guest's identity: the firmware UUID KubeVirt derived for the running VMI when the VM does not set one.
  const uuid = vmi?.spec.domain.firmware?.uuid;
  if (uuid && !manifest.spec.template.spec.domain.firmware?.uuid) {
    manifest.spec.template.spec.domain.firmware = { ...(manifest.spec.template.spec.domain.firmware ?? {}), uuid };
  }
  const deps = vmDependencies(vm);
  const dependencies: KubeObject[] = [];
  for (const d of deps) {
    const obj = await ctx.kube.get<KubeObj>({ apiVersion: "v1", kind: d.kind, namespace, name: d.name });
    if (obj) dependencies.push(portable(obj, d.kind, "v1"));
  }
  const node = vmi?.status?.nodeName ? await ctx.kube.get<Node>({ apiVersion: "v1", kind: "Node", name: vmi.status.nodeName }) : undefined;
  const volumes = vmVolumes(vm, vmi, { pvcs, dataVolumes });
  return {
    apiVersion: BUS_API_VERSION,
    kind: "VmDescription",
    vm: portable(manifest, "VirtualMachine", KUBEVIRT_API),
    ...(vmi ? { vmi: portable(vmi, "VirtualMachineInstance", KUBEVIRT_API) } : {}),
    dependencies,
    sourceFacts: {
      architecture: node ? nodeArchitecture(node) : (vm.spec.template.spec.architecture as string | undefined) ?? "amd64",
      memoryBytes: vmMemoryBytes(vm),
      volumes: sourceVolumesOf(volumes),
      dependencies: deps.filter((d) => dependencies.some((o) => o.kind === d.kind && o.metadata.name === d.name)).map((d) => ({ kind: d.kind, name: d.name })),
      macAddresses: [...new Set(vmInterfaces(vm, vmi).flatMap((i) => (i.macAddress ? [i.macAddress] : [])))],
    },
  };
}

export async function preflight(ctx: Ctx, req: PreflightRequest): Promise<PreflightResult> {
  const side = req.side === "source" ? req.source : req.target;
  const ns = side.namespace;
  const target = req.side === "target";
  const [kubevirt, [vm, vmi], namespace, pvcs, dataVolumes, secrets, configMaps, storageClasses, capacities, networks, nodes, vms, vmis] = await Promise.all([
    readKubeVirt(ctx),
    readVm(ctx, ns, side.name),
    ctx.kube.get({ apiVersion: "v1", kind: "Namespace", name: ns }),
    ctx.kube.list<Pvc>("v1", "PersistentVolumeClaim", ns),
    ctx.kube.list<DataVolume>(CDI_API, "DataVolume", ns),
    ctx.kube.list<KubeObj>("v1", "Secret", ns),
    ctx.kube.list<KubeObj>("v1", "ConfigMap", ns),
    ctx.kube.list<KubeObj>("storage.k8s.io/v1", "StorageClass"),
    target ? ctx.kube.list<KubeObj>("storage.k8s.io/v1", "CSIStorageCapacity") : Promise.resolve([]),
    ctx.kube.list<KubeObj>("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"),
    ctx.kube.list<Node>("v1", "Node"),
    target ? ctx.kube.list<VirtualMachine>(KUBEVIRT_API, "VirtualMachine") : Promise.resolve([]),
    target ? ctx.kube.list<VirtualMachineInstance>(KUBEVIRT_API, "VirtualMachineInstance") : Promise.resolve([]),
  ]);
  const observed: PreflightObserved = {
    ...(kubevirt ? { kubevirt } : {}),
    ...(vm ? { vm } : {}),
    ...(vmi ? { vmi } : {}),
    namespaceExists: namespace !== undefined,
    pvcs,
    dataVolumes,
    secrets,
    configMaps,
    storageClasses: storageClasses.map((c) => c.metadata.name ?? ""),
    classCapacities: classCapacities(capacities),
    networks: networks.map((n) => ({ namespace: n.metadata.namespace ?? "", name: n.metadata.name ?? "" })),
    nodes,
    vms,
    vmis,
  };
  const result = preflightResult(preflightIssues(req, observed));
  return { ...result, apiVersion: BUS_API_VERSION };
}
