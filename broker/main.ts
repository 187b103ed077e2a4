// The broker process: `node --import tsx broker/main.ts --config <file>` (npm run broker -- --config …).
// Exits 0 after a clean shutdown on SIGTERM/SIGINT (releasing the leader lease so a standby takes
// over at once), 1 on a configuration error or a fatal failure, 2 on a usage error.
import { pino } from "pino";
import { startBroker, type RunningBroker } from "./broker.js";
import { ConfigError, loadConfig, loadSecrets, USAGE } from "./config.js";
import { controllerFactory } from "./controller/index.js";

async function main(): Promise<number> {
  let loaded;
  try {
    loaded = loadConfig(process.argv.slice(2));
  } catch (e) {
    process.stderr.write(`ferry-broker: ${(e as Error).message}\n`);
    return e instanceof ConfigError && /required|usage/.test((e as Error).message) ? 2 : 1;
  }
  if (loaded.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { config } = loaded;
  const log = pino({ level: config.logLevel, base: { identity: config.identity } });
  let secrets;
  try {
    secrets = loadSecrets(config);
  } catch (e) {
    log.fatal({ err: (e as Error).message }, "invalid broker configuration");
    return 1;
  }

  let broker: RunningBroker | undefined;
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, "shutting down");
    const done = broker ? broker.stop() : Promise.resolve();
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
  // A bug must not leave a half-working leader behind: log it and let the supervisor restart us
  // (a standby takes over when the lease runs out).
  process.on("unhandledRejection", (e) => {
    log.fatal({ err: e instanceof Error ? e.stack : JSON.stringify(e) }, "unhandled rejection");
    process.exit(1);
  });

  try {
    broker = await startBroker(config, secrets, { logger: log, controller: controllerFactory() });
  } catch (e) {
    log.fatal({ err: e instanceof Error ? e.stack : String(e) }, "broker failed to start");
    return 1;
  }
  if (stopping) await broker.stop(); // a signal arrived during start-up
  // A NATS connection that closes for good (credentials revoked or expired) is fatal: let the
  // supervisor restart the process with fresh configuration.
  void broker.runtime.bus.closed().then((err) => {
    if (stopping) return;
    log.fatal({ err: err ? err.message : "closed" }, "NATS connection closed for good");
    process.exit(1);
  });
  return -1; // keep running
}

void main().then((code) => {
  if (code >= 0) process.exit(code);
});
