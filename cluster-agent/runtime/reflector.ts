// A watched cache of one kind of object (client-node's ListWatch: list once, then watch from the
// resourceVersion, relist after 410 Gone), restarted with back-off after errors, and a `synced`
// flag for /readyz and the heartbeat. Never polls: after the first list, only watch events arrive.
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from "@kubernetes/client-node";
import type { Logger } from "pino";
import { errText } from "./identity.js";

export type EventType = "add" | "update" | "delete";

export interface ReflectorOptions<T extends KubernetesObject> {
  kubeConfig: KubeConfig;
  /** e.g. "virtualmachines" (logs and metrics). */
  name: string;
  /** Watch path, e.g. "/apis/kubevirt.io/v1/virtualmachines". */
  path: string;
  list: () => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
  onEvent?: (type: EventType, obj: T) => void;
  /** Back-off after an error: initial and cap (ms). */
  backoff?: { initialMs: number; maxMs: number };
}

export class Reflector<T extends KubernetesObject> {
  private readonly lw: ListWatch<T>;
  private healthy = false;
  private stopped = false;
  private failures = 0;
  private retry: NodeJS.Timeout | undefined;
  lastError: string | undefined;

  constructor(private readonly o: ReflectorOptions<T>) {
    this.lw = new ListWatch<T>(o.path, new Watch(o.kubeConfig), o.list, false, o.labelSelector, o.fieldSelector);
    for (const type of ["add", "update", "delete"] as const) this.lw.on(type, (obj: T) => o.onEvent?.(type, obj));
    this.lw.on("error", (err: unknown) => this.failed(err));
  }

  /** Resolves once the first list is done and the watch is open (or the first attempt failed; it keeps retrying). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.attempt();
  }

  private async attempt(): Promise<void> {
    const before = this.failures;
    await this.lw.start();
    if (this.failures === before && !this.stopped) {
      if (!this.healthy) this.o.log.debug({ watch: this.o.name }, "watch established");
      this.healthy = true;
      this.lastError = undefined;
    }
  }

  private failed(err: unknown): void {
    this.healthy = false;
    this.failures++;
    this.lastError = errText(err);
    if (this.stopped) return;
    const b = this.o.backoff ?? { initialMs: 500, maxMs: 30_000 };
    const ms = Math.min(b.maxMs, b.initialMs * 2 ** Math.min(this.failures - 1, 20));
    this.o.log.warn({ watch: this.o.name, err: this.lastError, retryInMs: ms }, "watch failed; restarting");
    clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (!this.stopped) void this.attempt();
    }, ms);
    this.retry.unref();
  }

  get name(): string {
    return this.o.name;
  }

  /** The list succeeded and the watch is open (no error since). */
  get synced(): boolean {
    return this.healthy;
  }

  list(): readonly T[] {
    return this.lw.list();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.lw.get(name, namespace);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.healthy = false;
    clearTimeout(this.retry);
    await this.lw.stop();
  }
}
