// ferryctl's entry (cli/bin/ferryctl.js imports it after registering tsx).
import { readFileSync } from "node:fs";
import type { Io } from "./program.js";
import { run } from "./run.js";

// grpc-js passes the broker's host as TLS SNI even when it is an IP address, which Node flags as
// DEP0123 on stderr; ferryctl still verifies the IP against the certificate, so drop that one warning.
const emitWarning = process.emitWarning.bind(process);
process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
  const code = typeof rest[0] === "object" && rest[0] !== null ? (rest[0] as { code?: string }).code : rest[1];
  if (code === "DEP0123") return;
  (emitWarning as (...a: unknown[]) => void)(warning, ...rest);
}) as typeof process.emitWarning;

const io: Io = {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
  now: () => new Date(),
  readStdin: () => readFileSync(0, "utf8"),
};

const code = await run(process.argv.slice(2), io);
// Let stdout drain before exiting (a pipe may still hold a large -o json).
process.stdout.write("", () => process.exit(code));
