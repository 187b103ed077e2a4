// Prometheus metrics of the broker shell. One registry per broker; the controller registers its
// migration metrics on `metrics.registry` (names under `ferry_`).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

/** A labelled count, read when Prometheus scrapes. */
export interface Sample<L extends string> {
  labels: Record<L, string>;
  value: number;
}

export class BrokerMetrics {
  readonly registry = new Registry();
  /** Set by the cluster registry: counts it keeps itself, exported at scrape time. */
  sources: {
    clusters?: () => Sample<"state" | "cordoned">[];
    reportsReceived?: () => Sample<"kind">[];
    reportsDropped?: () => Sample<"kind" | "reason">[];
  } = {};

  readonly clusters: Gauge<"state" | "cordoned"> = new Gauge({
    name: "ferry_clusters",
    help: "Clusters by state (PendingEnrollment, Available, Unknown = enrolled without a recent heartbeat, Removed) and cordon",
    labelNames: ["state", "cordoned"] as const,
    registers: [this.registry],
    collect: (): void => fill(this.clusters, this.sources.clusters?.()),
  });

  readonly reportsReceived: Counter<"kind"> = new Counter({
    name: "ferry_reports_received_total",
    help: "Agent reports accepted, by kind (hello, heartbeat, inventory, status)",
    labelNames: ["kind"] as const,
    registers: [this.registry],
    collect: (): void => fill(this.reportsReceived, this.sources.reportsReceived?.()),
  });

  readonly reportsDropped: Counter<"kind" | "reason"> = new Counter({
    name: "ferry_reports_dropped_total",
    help: "Agent reports dropped, by kind and reason (stale, removed-cluster, and the bus's oversize, not-json, invalid, rejected)",
    labelNames: ["kind", "reason"] as const,
    registers: [this.registry],
    collect: (): void => fill(this.reportsDropped, this.sources.reportsDropped?.()),
  });

  readonly grpcRequests = new Counter({
    name: "ferry_grpc_requests_total",
    help: "gRPC requests by method and status code",
    labelNames: ["method", "code"] as const,
    registers: [this.registry],
  });

  readonly grpcDuration = new Histogram({
    name: "ferry_grpc_request_duration_seconds",
    help: "gRPC request handling time by method (streams: until the stream ends)",
    labelNames: ["method"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly leader = new Gauge({
    name: "ferry_broker_leader",
    help: "1 while this replica holds the leader lease, else 0",
    registers: [this.registry],
  });

  readonly leaderTransitions = new Counter({
    name: "ferry_broker_leader_transitions_total",
    help: "Times this replica became leader (elected) or stopped being leader (demoted)",
    labelNames: ["transition"] as const,
    registers: [this.registry],
  });

  readonly revocationPushes = new Counter({
    name: "ferry_revocation_pushes_total",
    help: "Account JWT pushes carrying the revocation list, by result (ok, error)",
    labelNames: ["result"] as const,
    registers: [this.registry],
  });

  readonly enrollments = new Counter({
    name: "ferry_enrollments_total",
    help: "Enrollment and renewal attempts by operation (enroll, renew) and result (ok or the refusal reason)",
    labelNames: ["operation", "result"] as const,
    registers: [this.registry],
  });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
  }
}

function fill<L extends string>(metric: Gauge<L> | Counter<L>, samples: Sample<L>[] | undefined): void {
  if (!samples) return;
  metric.reset();
  for (const s of samples) {
    if (metric instanceof Gauge) metric.set(s.labels, s.value);
    else if (s.value > 0) metric.inc(s.labels, s.value);
  }
}
