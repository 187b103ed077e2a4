// virt-api's admission webhooks for the kinds ferry writes, with KubeVirt's messages:
// migration-create-validator / migration-update-validator / migrations-mutator
// (pkg/virt-api/webhooks/{validating,mutating}-webhook/...migration-*.go), virtualmachine-validator
// (vms-admitter.go, vmi-create-admitter.go subset, storage admitters), and the DataVolume template
// checks. Webhook refusals come back as kube-apiserver wraps them:
//   admission webhook "<name>" denied the request: <message>
import { ApiError, type StatusCause, invalid } from "../apiserver/errors.js";
import { R } from "../apiserver/resources.js";
import type { AdmissionRequest, KObject } from "../apiserver/store.js";
import { Cond, DecentralizedLiveMigration, MigrationFinalizer, MigrationSelectorLabel, Reason, RunStrategies } from "./constants.js";
import { isDecentralized, isFinal } from "./migration-util.js";
import type { KubeVirtSim } from "./sim.js";
import { deepEqual } from "./util.js";
import { isFinalPhase } from "./vmi-controller.js";

/* eslint-disable @typescript-eslint/no-explicit-any -- admission sees free-form JSON */

/** webhookutils.ToAdmissionResponse: 422 Invalid, causes joined with ", ". */
function denyCauses(webhook: string, causes: StatusCause[]): ApiError {
  const shown = causes.slice(0, 10);
  let msg = shown.map((c) => c.message).join(", ");
  if (causes.length > 10) msg += `, and ${causes.length - 10} more validation errors`;
  return new ApiError(422, "Invalid", `admission webhook "${webhook}" denied the request: ${msg}`, {
    causes: shown.map((c) => ({ reason: c.reason, message: c.message, field: c.field })),
  });
}

/** webhookutils.ToAdmissionResponseError: code 400 and no reason, as kube-apiserver relays it. */
function denyError(webhook: string, message: string): ApiError {
  return new ApiError(400, "" as "BadRequest", `admission webhook "${webhook}" denied the request: ${message}`);
}

const MIG_CREATE = "migration-create-validator.kubevirt.io";
const MIG_UPDATE = "migration-update-validator.kubevirt.io";
const VM_VALIDATOR = "virtualmachine-validator.kubevirt.io";
const VMI_VALIDATOR = "virtualmachineinstances-create-validator.kubevirt.io";

export function registerWebhooks(sim: KubeVirtSim): void {
  const store = sim.store;

  // migrations-mutator.kubevirt.io: selector label and finalizer.
  store.addMutatingHook(R.VirtualMachineInstanceMigration, (req) => {
    if (req.operation !== "CREATE" || !req.object) return;
    const m = req.object;
    m.metadata.labels = { ...m.metadata.labels, [MigrationSelectorLabel]: m.spec?.vmiName ?? "" };
    m.metadata.finalizers = [...(m.metadata.finalizers ?? []), MigrationFinalizer];
  });

  store.addValidatingHook(R.VirtualMachineInstanceMigration, (req) => {
    if (req.operation === "CREATE" && req.object) validateMigrationCreate(sim, req);
    if (req.operation === "UPDATE" && req.object && req.oldObject && req.subresource !== "status") validateMigrationUpdate(req.object, req.oldObject);
  });

  store.addValidatingHook(R.VirtualMachine, (req) => {
    if ((req.operation !== "CREATE" && req.operation !== "UPDATE") || !req.object || req.subresource === "status") return;
    const vm = req.object;
    if (vm.metadata.deletionTimestamp) return;
    const causes = validateVirtualMachineSpec(sim, vm);
    if (causes.length) throw denyCauses(VM_VALIDATOR, causes);
    // storage admitter: embedded DataVolume namespaces
    const oldTemplates = req.oldObject?.spec?.dataVolumeTemplates;
    if (req.operation === "CREATE" || !deepEqual(oldTemplates, vm.spec?.dataVolumeTemplates)) {
      const nsCauses: StatusCause[] = [];
      (vm.spec?.dataVolumeTemplates ?? []).forEach((t: any, i: number) => {
        const ns = t.metadata?.namespace;
        if (ns && ns !== vm.metadata.namespace) {
          nsCauses.push({ reason: "FieldValueInvalid", message: `Embedded DataVolume namespace ${ns} differs from VM namespace ${vm.metadata.namespace}`, field: `spec.dataVolumeTemplates[${i}]` });
        }
      });
      if (nsCauses.length) throw denyCauses(VM_VALIDATOR, nsCauses);
    }
  });

  store.addValidatingHook(R.VirtualMachineInstance, (req) => {
    if (req.operation !== "CREATE" || !req.object || req.internal) return;
    const causes = validateVMISpec("spec", req.object.spec ?? {});
    causes.push(...volumesHaveDisks("spec", req.object.spec ?? {}));
    if (causes.length) throw denyCauses(VMI_VALIDATOR, causes);
  });
}

function validateMigrationCreate(sim: KubeVirtSim, req: AdmissionRequest): void {
  const m = req.object!;
  const ns = m.metadata.namespace!;
  // CRD schema (validations_generated.go): sendTo.{connectURL,migrationID}, receive.migrationID
  const schema: StatusCause[] = [];
  if (m.spec?.sendTo) {
    if (typeof m.spec.sendTo.connectURL !== "string") schema.push({ field: "spec.sendTo.connectURL", reason: "FieldValueRequired", message: "Required value" });
    if (typeof m.spec.sendTo.migrationID !== "string") schema.push({ field: "spec.sendTo.migrationID", reason: "FieldValueRequired", message: "Required value" });
  }
  if (m.spec?.receive && typeof m.spec.receive.migrationID !== "string") {
    schema.push({ field: "spec.receive.migrationID", reason: "FieldValueRequired", message: "Required value" });
  }
  if (m.spec?.priority !== undefined && !["system-critical", "user-triggered", "system-maintenance"].includes(m.spec.priority)) {
    schema.push({ field: "spec.priority", reason: "FieldValueNotSupported", message: `Unsupported value: "${m.spec.priority}": supported values: "system-critical", "user-triggered", "system-maintenance"` });
  }
  if (schema.length) throw invalid("VirtualMachineInstanceMigration", "kubevirt.io", m.metadata.name, schema);

  if (!m.spec?.vmiName) {
    throw denyCauses(MIG_CREATE, [{ reason: "FieldValueRequired", message: "vmiName is missing", field: "spec.vmiName" }]);
  }
  if (m.spec.priority !== undefined && !req.internal) {
    throw denyCauses(MIG_CREATE, [
      { reason: "FieldValueForbidden", message: "Migration priority queue, only virt-controller is allowed to set priority field", field: "spec.migrationPriority" },
    ]);
  }
  const vmi = sim.store.tryGet(R.VirtualMachineInstance, ns, m.spec.vmiName);
  if (!vmi) throw denyError(MIG_CREATE, `the VMI "${ns}/${m.spec.vmiName}" does not exist`);
  if (isFinalPhase(vmi.status?.phase)) throw denyError(MIG_CREATE, "Cannot migrate VMI in finalized state.");
  for (const c of vmi.status?.conditions ?? []) {
    if (c.type === Cond.LiveMigratable && c.status === "False") {
      if (c.reason === Reason.DisksNotMigratable && isDecentralized(m)) continue;
      throw denyError(MIG_CREATE, `Cannot migrate VMI, Reason: ${c.reason ?? ""}, Message: ${c.message ?? ""}`);
    }
  }
  const others = sim.store.list(R.VirtualMachineInstanceMigration, { namespace: ns, labelSelector: `${MigrationSelectorLabel} in (${m.spec.vmiName})` }).items;
  for (const o of others) {
    if (isFinal(o)) continue;
    throw denyError(MIG_CREATE, `in-flight migration detected. Active migration job (${o.metadata.uid}) is currently already in progress for VMI ${o.spec?.vmiName}.`);
  }
  if (m.spec.sendTo || m.spec.receive) {
    if (!sim.config().isEnabled(DecentralizedLiveMigration)) {
      throw denyCauses(MIG_CREATE, [{ reason: "FieldValueNotSupported", message: `${DecentralizedLiveMigration} feature gate is not enabled in kubevirt resource` }]);
    }
    if (m.spec.sendTo && m.spec.receive && m.spec.sendTo.migrationID !== m.spec.receive.migrationID) {
      throw denyCauses(MIG_CREATE, [
        { reason: "FieldValueInvalid", message: `sendTo migrationID ${m.spec.sendTo.migrationID} does not match receive migrationID ${m.spec.receive.migrationID}` },
      ]);
    }
  }
}

function validateMigrationUpdate(m: KObject, old: KObject): void {
  if (!deepEqual(m.spec ?? {}, old.spec ?? {})) {
    throw denyCauses(MIG_UPDATE, [{ reason: "FieldValueNotSupported", message: "update of Migration object's spec is restricted" }]);
  }
  const phase = m.status?.phase;
  if (phase !== "Succeeded" && phase !== "Failed" && old.metadata.labels) {
    const had = old.metadata.labels[MigrationSelectorLabel];
    if (had !== undefined) {
      if (!m.metadata.labels) throw denyCauses(MIG_UPDATE, [{ reason: "FieldValueNotSupported", message: "selector label can't be removed from an in-flight migration" }]);
      if (m.metadata.labels[MigrationSelectorLabel] !== had) {
        throw denyCauses(MIG_UPDATE, [{ reason: "FieldValueNotSupported", message: "selector label can't be modified on an in-flight migration" }]);
      }
    }
  }
}

const VOLUME_SOURCES = [
  "persistentVolumeClaim", "sysprep", "cloudInitNoCloud", "cloudInitConfigDrive", "containerDisk", "ephemeral", "emptyDisk",
  "hostDisk", "dataVolume", "configMap", "secret", "downwardAPI", "serviceAccount", "downwardMetrics", "memoryDump", "containerPath",
];

/** The parts of ValidateVirtualMachineInstanceSpec that catch wrong references (networks, disks, volumes, memory). */
function validateVMISpec(field: string, spec: any): StatusCause[] {
  const causes: StatusCause[] = [];
  const domain = spec.domain ?? {};
  const devices = domain.devices ?? {};
  const mem = domain.resources?.requests?.memory;
  if (typeof mem === "string" && mem.startsWith("-")) {
    causes.push({ reason: "FieldValueInvalid", message: `${field}.domain.resources.requests.memory '${mem}': must be greater than or equal to 0.`, field: `${field}.domain.resources.requests.memory` });
  }
  // network admitter: networks <-> interfaces
  const ifaces: any[] = devices.interfaces ?? [];
  const nets: any[] = spec.networks ?? [];
  nets.forEach((n, i) => {
    if (!ifaces.some((x) => x.name === n.name)) {
      causes.push({ reason: "FieldValueRequired", message: `${field}.networks[${i}].name '${n.name}' not found.`, field: `${field}.networks[${i}].name` });
    }
  });
  ifaces.forEach((x, i) => {
    if (!nets.some((n) => n.name === x.name)) {
      causes.push({ reason: "FieldValueInvalid", message: `${field}.domain.devices.interfaces[${i}].name '${x.name}' not found.`, field: `${field}.domain.devices.interfaces[${i}].name` });
    }
  });
  const seenNets = new Set<string>();
  for (const n of nets) {
    if (seenNets.has(n.name)) causes.push({ reason: "FieldValueDuplicate", message: `Network with name "${n.name}" already exists, every network must have a unique name`, field: `${field}.networks` });
    seenNets.add(n.name);
  }
  // validateBootOrder: every disk names a volume
  const volumes: any[] = spec.volumes ?? [];
  const volNames = new Set(volumes.map((v) => v.name));
  (devices.disks ?? []).forEach((d: any, i: number) => {
    if (!volNames.has(d.name) && !d.cdrom) {
      causes.push({ reason: "FieldValueInvalid", message: `${field}.domain.devices.disks[${i}].Name '${d.name}' not found.`, field: `${field}.domain.devices.disks[${i}].name` });
    }
    const vol = volumes.find((v) => v.name === d.name);
    if (d.lun && vol && !vol.persistentVolumeClaim && !vol.dataVolume) {
      causes.push({ reason: "FieldValueInvalid", message: `${field}.domain.devices.disks[${i}].lun can only be mapped to a DataVolume or PersistentVolumeClaim volume.`, field: `${field}.domain.devices.disks[${i}].lun` });
    }
  });
  // validateVolumes
  const first = new Map<string, number>();
  volumes.forEach((v, i) => {
    const prev = first.get(v.name);
    if (prev === undefined) first.set(v.name, i);
    else causes.push({ reason: "FieldValueInvalid", message: `${field}.volumes[${i}] and ${field}.volumes[${prev}] must not have the same Name.`, field: `${field}.volumes[${i}].name` });
    let count = 0;
    for (const s of VOLUME_SOURCES) if (v[s] != null) count++;
    if (v.dataVolume && !v.dataVolume.name) causes.push({ reason: "FieldValueRequired", message: "DataVolume 'name' must be set", field: `${field}.volumes[${i}].name` });
    if (count !== 1) causes.push({ reason: "FieldValueInvalid", message: `${field}.volumes[${i}] must have exactly one source type set`, field: `${field}.volumes[${i}]` });
  });
  return causes;
}

/** validateVirtualMachineInstanceSpecVolumeDisks (VMI create only). */
function volumesHaveDisks(field: string, spec: any): StatusCause[] {
  const devices = spec.domain?.devices ?? {};
  const names = new Set([...(devices.disks ?? []), ...(devices.filesystems ?? [])].map((d: any) => d.name));
  const causes: StatusCause[] = [];
  (spec.volumes ?? []).forEach((v: any, i: number) => {
    if (!v.memoryDump && !names.has(v.name)) {
      causes.push({ reason: "FieldValueInvalid", message: `${field}.domain.volumes[${i}].name '${v.name}' not found.`, field: `${field}.domain.volumes[${i}].name` });
    }
  });
  return causes;
}

function validateVirtualMachineSpec(sim: KubeVirtSim, vm: KObject): StatusCause[] {
  const spec = vm.spec ?? {};
  if (!spec.template) return [{ reason: "FieldValueRequired", message: "missing virtual machine template.", field: "spec.template" }];
  const causes = validateVMISpec("spec.template.spec", spec.template.spec ?? {});
  // ValidateDataVolumeTemplate
  (spec.dataVolumeTemplates ?? []).forEach((t: any, i: number) => {
    const f = `spec.dataVolumeTemplate[${i}]`;
    const c = validateDataVolumeTemplate(f, t);
    if (c) {
      causes.push(c);
      return;
    }
    const used = (spec.template.spec?.volumes ?? []).some(
      (v: any) => v.persistentVolumeClaim?.claimName === t.metadata?.name || v.dataVolume?.name === t.metadata?.name,
    );
    if (!used) causes.push({ reason: "FieldValueRequired", message: `DataVolumeTemplate entry ${f} must be referenced in the VMI template's 'volumes' list`, field: f });
  });
  // validateRunStrategy
  if (spec.running != null && spec.runStrategy != null) {
    causes.push({ reason: "FieldValueInvalid", message: "Running and RunStrategy are mutually exclusive. Note that Running is deprecated, please use RunStrategy instead", field: "spec.running" });
  }
  if (spec.running == null && spec.runStrategy == null) causes.push({ reason: "FieldValueInvalid", message: "RunStrategy must be specified", field: "spec.running" });
  if (spec.runStrategy != null) {
    if (spec.runStrategy === "WaitAsReceiver") {
      if (!sim.config().isEnabled(DecentralizedLiveMigration)) {
        causes.push({
          reason: "FieldValueInvalid",
          message: `Invalid RunStrategy (${spec.runStrategy}), ${DecentralizedLiveMigration} feature gate is not enabled in kubevirt resource`,
          field: "spec.runStrategy",
        });
      }
    } else if (!(RunStrategies as readonly string[]).includes(spec.runStrategy) || spec.runStrategy === "WaitAsReceiver") {
      causes.push({ reason: "FieldValueInvalid", message: `Invalid RunStrategy (${spec.runStrategy})`, field: "spec.runStrategy" });
    }
  }
  return causes;
}

const DV_SOURCES = ["http", "s3", "gcs", "registry", "pvc", "upload", "blank", "imageio", "vddk", "snapshot"];

function validateDataVolumeTemplate(f: string, t: any): StatusCause | undefined {
  if (!t.metadata?.name) return { reason: "FieldValueRequired", message: `'name' field must not be empty for DataVolumeTemplate entry ${f}.name.`, field: `${f}.name` };
  const s = t.spec ?? {};
  if (!s.pvc && !s.storage) return { reason: "FieldValueInvalid", message: "Missing Data volume PVC or Storage", field: `${f}.PVC.Storage` };
  if (s.pvc && s.storage) return { reason: "FieldValueInvalid", message: "Duplicate storage definition, both target storage and target pvc defined", field: `${f}.PVC.Storage` };
  const ref = s.pvc?.dataSourceRef ?? s.storage?.dataSourceRef ?? s.pvc?.dataSource ?? s.storage?.dataSource;
  if (ref && (s.source || s.sourceRef)) return { reason: "FieldValueInvalid", message: "External population is incompatible with Source and SourceRef", field: `${f}.source` };
  if (!ref && !s.source && !s.sourceRef) return { reason: "FieldValueInvalid", message: "Data volume should have either Source, SourceRef, or be externally populated", field: `${f}.source.sourceRef` };
  if (s.source) {
    const n = DV_SOURCES.filter((k) => s.source[k] != null).length;
    if (n === 0) return { reason: "FieldValueInvalid", message: "Missing dataVolume valid source", field: `${f}.source` };
    if (n > 1) return { reason: "FieldValueInvalid", message: "Multiple dataVolume sources", field: `${f}.source` };
  }
  return undefined;
}

