// The cluster agent process: `npm run agent -- [flags]` (node --import tsx cluster-agent/main.ts).
// A thin wrapper around startAgent (cluster-agent/runtime/agent.ts). Exits 0 after SIGTERM/SIGINT,
// 1 on a fatal error (refused or missing token, unusable credentials, NATS closed for good), 2 on a
// usage error (unknown flag, missing required setting).
import { pino } from "pino";
import { ConfigError, loadConfig, USAGE } from "./config.js";
import { startAgent, type AgentHandle } from "./runtime/agent.js";
import { createExecutor } from "./tasks/index.js";

async function main(): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`ferry-agent: ${(e as Error).message}\n`);
    return e instanceof ConfigError && e.usage ? 2 : 1;
  }
  if (loaded.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { config } = loaded;
  const log = pino({ level: config.logLevel, base: { component: "ferry-agent", ...(config.identity ? { identity: config.identity } : {}) } });

  let agent: AgentHandle | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const done = agent ? agent.stop() : Promise.resolve();
    void done.then(
      () => process.exit(0),
      (e: unknown) => {
        log.error({ err: String(e) }, "unclean shutdown");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => shutdown("SIGTERM"));
  process.once("SIGINT", () => shutdown("SIGINT"));
  process.on("unhandledRejection", (e) => {
    log.fatal({ err: e instanceof Error ? e.stack : JSON.stringify(e) }, "unhandled rejection");
    process.exit(1);
  });

  try {
    agent = await startAgent(config, { executor: createExecutor, logger: log });
  } catch (e) {
    const err = e as Error & { reason?: string };
    log.fatal({ err: err.message, ...(err.reason ? { reason: err.reason } : {}) }, "agent failed to start");
    process.stderr.write(`ferry-agent: ${err.message}\n`);
    return 1;
  }
  if (stopping) await agent.stop();
  // Credentials revoked or expired: NATS gives up; let the supervisor restart us (and the admin re-enroll).
  void agent.failed.then((err) => {
    if (stopping) return;
    log.fatal({ err: err.message }, "NATS connection closed for good (credentials revoked or expired?)");
    process.exit(1);
  });
  return -1; // keep running
}

void main().then((code) => {
  if (code >= 0) process.exit(code);
});
