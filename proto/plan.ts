// The MigrationPlan document (`ferryctl plan create -f plan.yaml`, PlanService.CreatePlan).
// Strict like `kubectl --validate=strict`: an unknown field is an error, never silently ignored,
// because a typo in `sourcePolicy` or `storageMap` would otherwise move VMs the wrong way.
import { LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { fail, parseWith, type FieldError, type Result } from "./issues.js";
import { networkMappingShape, SourcePolicy, storageMappingShape } from "./kube.js";
import { ClusterName, LabelKey, LabelValue, NamespaceName, ObjectName, PlanName, quote } from "./names.js";

export const PLAN_API_VERSION = "ferry.dev/v1alpha1";
export const PLAN_KIND = "MigrationPlan";
export const PLAN_MAX_BYTES = 1024 * 1024;

const LabelSelectorRequirement = z
  .strictObject({
    key: LabelKey,
    operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"]),
    values: z.array(LabelValue).max(256).optional(),
  })
  .superRefine((r, ctx) => {
    const needsValues = r.operator === "In" || r.operator === "NotIn";
    if (needsValues && !r.values?.length) {
      ctx.addIssue({ code: "custom", path: ["values"], message: `operator ${r.operator} needs a non-empty values list` });
    }
    if (!needsValues && r.values !== undefined) {
      ctx.addIssue({ code: "custom", path: ["values"], message: `operator ${r.operator} takes no values; remove the field` });
    }
  });

/** Kubernetes metav1.LabelSelector: every matchLabels pair and every expression must hold. */
export const LabelSelector = z.strictObject({
  matchLabels: z.record(LabelKey, LabelValue).optional(),
  matchExpressions: z.array(LabelSelectorRequirement).max(64).optional(),
});

/** VMs picked by rule rather than by name: `allVMs`, or namespaces and/or a label selector (all must match). */
const Selector = z
  .strictObject({
    namespaces: z.array(NamespaceName).min(1).max(1000).optional(),
    labelSelector: LabelSelector.optional(),
    allVMs: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    const narrowed = s.namespaces !== undefined || s.labelSelector !== undefined;
    if (s.allVMs && narrowed) {
      ctx.addIssue({ code: "custom", path: ["allVMs"], message: "allVMs selects every VM of the source cluster; remove it or remove namespaces/labelSelector" });
    } else if (!s.allVMs && !narrowed) {
      ctx.addIssue({ code: "custom", path: [], message: "selects nothing: set namespaces, labelSelector, or allVMs: true" });
    }
  });

const Target = z
  .strictObject({
    /** Move every VM to this cluster. */
    cluster: ClusterName.optional(),
    /** With `cluster`: the target namespace; default: the VM's own namespace. */
    namespace: NamespaceName.optional(),
    /** Let the broker place each VM (capacity, storage/network compatibility, health, cordons). */
    evacuate: z.boolean().optional(),
    /** With `evacuate`: only these clusters; default: every available, uncordoned one. */
    candidates: z.array(ClusterName).min(1).max(1000).optional(),
  })
  .superRefine((t, ctx) => {
    if (t.cluster !== undefined && t.evacuate) {
      ctx.addIssue({ code: "custom", path: ["evacuate"], message: "choose one: target.cluster (a fixed cluster) or target.evacuate: true (the broker places VMs)" });
    } else if (t.cluster === undefined && !t.evacuate) {
      ctx.addIssue({ code: "custom", path: [], message: "set target.cluster, or target.evacuate: true to let the broker place the VMs" });
    }
    if (t.candidates !== undefined && !t.evacuate) {
      ctx.addIssue({ code: "custom", path: ["candidates"], message: "candidates only apply with evacuate: true; remove it or set evacuate" });
    }
    if (t.namespace !== undefined && t.cluster === undefined) {
      ctx.addIssue({ code: "custom", path: ["namespace"], message: "namespace only applies with target.cluster; evacuation keeps each VM's namespace" });
    }
  });

const HHMM = z.string().regex(/^(?:[01]\d|2[0-3]):[0-5]\d$/, {
  error: (issue) => `time ${quote(issue.input)} must be HH:MM on a 24-hour clock, e.g. "22:00" (quote it in YAML)`,
});

/** IANA time zone name, as Intl knows them. */
export const TimeZone = z
  .string()
  .max(64)
  .refine(isTimeZone, { error: (issue) => `time zone ${quote(issue.input)} is not an IANA time zone name such as "UTC" or "Europe/Berlin"` });

/**
 * A daily window in which new migrations may start, e.g. 22:00–06:00 Europe/Berlin. `end` before
 * `start` crosses midnight. Migrations already running when it closes continue.
 */
export const Window = z
  .strictObject({
    start: HHMM,
    end: HHMM,
    timeZone: TimeZone.default("UTC"),
  })
  .refine((w) => w.start !== w.end, { path: ["end"], error: "end must differ from start (omit window to allow any time)" });
export type Window = z.output<typeof Window>;

function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const StorageMapping = z.strictObject(storageMappingShape);
const NetworkMapping = z.strictObject(networkMappingShape);

const Spec = z
  .strictObject({
    source: z.strictObject({ cluster: ClusterName }),
    /** Explicit VMs of the source cluster. Exactly one of vms and selector. */
    vms: z.array(z.strictObject({ namespace: NamespaceName, name: ObjectName })).min(1).max(10_000).optional(),
    selector: Selector.optional(),
    target: Target,
    /** Source storage class → target storage class; every volume's class must be mapped (or exist on the target). */
    storageMap: z.array(StorageMapping).max(256).default([]),
    /** Source network → target network (`pod` for the pod network). */
    networkMap: z.array(NetworkMapping).max(256).default([]),
    sourcePolicy: SourcePolicy.default("halt"),
    limits: z
      .strictObject({
        /** Migrations of this plan running at once (cluster limits apply on top). */
        maxInFlight: z.int().min(1).max(1000).default(5),
        maxInFlightPerSourceNode: z.int().min(1).max(100).optional(),
      })
      .prefault({}),
    retry: z
      .strictObject({
        /** Attempts per VM, including the first. */
        maxAttempts: z.int().min(1).max(100).default(3),
        backoff: z
          .strictObject({
            initialSeconds: z.int().min(1).max(86_400).default(30),
            maxSeconds: z.int().min(1).max(86_400).default(600),
            factor: z.number().min(1).max(10).default(2),
          })
          .refine((b) => b.maxSeconds >= b.initialSeconds, { path: ["maxSeconds"], error: "maxSeconds must be at least initialSeconds" })
          .prefault({}),
      })
      .prefault({}),
    window: Window.optional(),
    /** An attempt with neither a phase change nor byte progress for this long is failed and retried. */
    stallTimeoutSeconds: z.int().min(60).max(86_400).default(600),
  })
  // Runs even when fields below have errors, so one round reports everything; hence `unknown` input.
  .superRefine((spec, ctx) => checkSpec(spec, ctx), { when: () => true });

function checkSpec(spec: unknown, ctx: z.RefinementCtx): void {
  const s = record(spec);
  if (!s) return;
  if ((s.vms === undefined) === (s.selector === undefined)) {
    ctx.addIssue({
      code: "custom",
      path: s.vms === undefined ? [] : ["selector"],
      message: s.vms === undefined ? "set vms (a list of {namespace, name}) or selector (namespaces, labelSelector or allVMs)" : "set either vms or selector, not both",
    });
  }
  duplicates(s.vms, (v) => (typeof v.namespace === "string" && typeof v.name === "string" ? `${v.namespace}/${v.name}` : undefined), "vms", "VM", ctx);
  duplicates(s.storageMap, (m) => m.source, "storageMap", "storage class", ctx, "source");
  duplicates(s.networkMap, (m) => m.source, "networkMap", "network", ctx, "source");
  const source = record(s.source)?.cluster;
  const candidates = record(s.target)?.candidates;
  if (typeof source === "string" && Array.isArray(candidates) && candidates.includes(source)) {
    ctx.addIssue({ code: "custom", path: ["target", "candidates"], message: `the source cluster "${source}" cannot be an evacuation candidate` });
  }
}

function record(v: unknown): Record<string, unknown> | undefined {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

function duplicates(items: unknown, key: (item: Record<string, unknown>) => unknown, field: string, what: string, ctx: z.RefinementCtx, sub?: string): void {
  if (!Array.isArray(items)) return;
  const first = new Map<unknown, number>();
  items.forEach((item: unknown, i) => {
    const r = record(item);
    const k = r && key(r);
    if (typeof k !== "string") return;
    const j = first.get(k);
    if (j === undefined) first.set(k, i);
    else ctx.addIssue({ code: "custom", path: [field, i, ...(sub ? [sub] : [])], message: `duplicate ${what} "${k}" (first at spec.${field}[${j}]); list each once` });
  });
}

export const MigrationPlan = z.strictObject({
  apiVersion: z.literal(PLAN_API_VERSION, { error: `apiVersion must be "${PLAN_API_VERSION}"` }),
  kind: z.literal(PLAN_KIND, { error: `kind must be "${PLAN_KIND}"` }),
  metadata: z.strictObject({
    name: PlanName,
    labels: z.record(LabelKey, LabelValue).optional(),
  }),
  spec: Spec,
});
/** A parsed plan with every default filled in. */
export type MigrationPlan = z.output<typeof MigrationPlan>;
/** A plan as written, defaults optional. */
export type MigrationPlanInput = z.input<typeof MigrationPlan>;

/** Validates an already-parsed document (e.g. the google.protobuf.Struct of CreatePlanRequest). */
export function parsePlanObject(data: unknown): Result<MigrationPlan> {
  return parseWith(MigrationPlan, data);
}

/**
 * Parses a plan from YAML or JSON text (JSON is YAML). Errors carry the field path and, where the
 * field exists in the text, its line.
 */
export function parsePlan(text: string): Result<MigrationPlan> {
  if (text.length > PLAN_MAX_BYTES) {
    return fail([{ path: "(document)", message: `the document is ${text.length} characters; the limit is ${PLAN_MAX_BYTES}. Split the plan.` }]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    return fail(
      doc.errors.map((e): FieldError => {
        const line = e.linePos?.[0].line;
        const message = (e.message.split("\n")[0] ?? "").replace(/ at line \d+, column \d+:?$/, "");
        return { path: "(document)", message: `not valid YAML or JSON: ${message}`, ...(line ? { line } : {}) };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return fail([{ path: "(document)", message: e instanceof Error ? e.message : String(e) }]);
  }
  if (data === null || data === undefined) {
    return fail([{ path: "(document)", message: `empty document: expected a ${PLAN_KIND} (apiVersion ${PLAN_API_VERSION})` }]);
  }
  return parseWith(MigrationPlan, data, [], (path) => {
    const node: unknown = doc.getIn(path, true);
    const offset = node && typeof node === "object" && "range" in node && Array.isArray(node.range) ? node.range[0] : undefined;
    return typeof offset === "number" ? lineCounter.linePos(offset).line : undefined;
  });
}

/** Whether new migrations may start at `at` under `window` (always, without one). */
export function windowContains(window: Window | undefined, at: Date): boolean {
  if (!window) return true;
  const parts = new Intl.DateTimeFormat("en-GB", { timeZone: window.timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).formatToParts(at);
  const get = (type: string) => parts.find((p) => p.type === type)?.value ?? "00";
  const now = `${get("hour")}:${get("minute")}`;
  return window.start < window.end ? now >= window.start && now < window.end : now >= window.start || now < window.end;
}
