// The agent's Prometheus metrics (prom-client), on its own registry.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export class AgentMetrics {
  readonly registry = new Registry();
  readonly reconciles = new Counter({ name: "ferry_agent_reconciles_total", help: "executor.reconcile calls by result (ok, error)", labelNames: ["role", "result"] as const, registers: [this.registry] });
  readonly reconcileDuration = new Histogram({
    name: "ferry_agent_reconcile_duration_seconds",
    help: "Duration of one executor.reconcile call",
    labelNames: ["role"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly trustReconciles = new Counter({ name: "ferry_agent_trust_reconciles_total", help: "executor.reconcileTrust calls by result", labelNames: ["result"] as const, registers: [this.registry] });
  readonly tasks = new Gauge({ name: "ferry_agent_tasks", help: "Tasks held (from the newest task set)", registers: [this.registry] });
  readonly taskSetGeneration = new Gauge({ name: "ferry_agent_task_set_generation", help: "Generation of the newest task set accepted", registers: [this.registry] });
  readonly taskSets = new Counter({ name: "ferry_agent_task_sets_total", help: "Task sets received by result (accepted, stale)", labelNames: ["result"] as const, registers: [this.registry] });
  readonly reports = new Counter({ name: "ferry_agent_reports_published_total", help: "Reports published by kind", labelNames: ["kind"] as const, registers: [this.registry] });
  readonly inventoryPublishes = new Counter({ name: "ferry_agent_inventory_publishes_total", help: "Inventory reports published by trigger (connect, change, periodic)", labelNames: ["trigger"] as const, registers: [this.registry] });
  readonly rpcs = new Counter({ name: "ferry_agent_rpc_requests_total", help: "Broker RPCs served by verb and result", labelNames: ["verb", "result"] as const, registers: [this.registry] });
  readonly watchSynced = new Gauge({ name: "ferry_agent_watch_synced", help: "1 when the watch is established", labelNames: ["watch"] as const, registers: [this.registry] });
  readonly busConnected = new Gauge({ name: "ferry_agent_bus_connected", help: "1 while connected to NATS", registers: [this.registry] });
  readonly certificateExpiry = new Gauge({ name: "ferry_agent_certificate_expiry_timestamp_seconds", help: "notAfter of the agent certificate (Unix seconds)", registers: [this.registry] });
  readonly renewals = new Counter({ name: "ferry_agent_certificate_renewals_total", help: "Certificate renewals by result", labelNames: ["result"] as const, registers: [this.registry] });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
