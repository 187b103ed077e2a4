// Small helpers shared by the bus tests (and usable by e2e): capture logs, wait for conditions,
// collect the errors a NATS server sends to a connection.
import type { NatsConnection } from "@nats-io/transport-node";
import { pino, type Logger } from "pino";

export interface CapturedLog {
  logger: Logger;
  lines: Record<string, unknown>[];
  /** Lines whose msg equals `msg`. */
  count(msg: string): number;
}

/** A pino logger that keeps every line in memory instead of printing it. */
export function captureLogs(level: pino.Level = "debug"): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const logger = pino(
    { level },
    {
      write(s: string) {
        lines.push(JSON.parse(s) as Record<string, unknown>);
      },
    },
  );
  return { logger, lines, count: (msg) => lines.filter((l) => l["msg"] === msg).length };
}

/** Errors the server sent to `nc` (-ERR: permission violations, auth errors), in order. */
export function serverErrors(nc: NatsConnection): Error[] {
  const errors: Error[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === "error") errors.push(s.error);
  })();
  return errors;
}

/** Poll `fn` until it returns a truthy value; throws after `timeoutMs` naming `what`. */
export async function waitFor<T>(fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
