// ferryctl's entry: run the command tree, print errors as one line (plus violations), exit 0 / 1 / 2.
import { readFileSync } from "node:fs";
import { CommanderError } from "commander";
import { BrokerCallError } from "./broker.js";
import { CliError, EXIT_ERROR, EXIT_OK, EXIT_USAGE } from "./errors.js";
import { buildProgram, type Io } from "./program.js";

/** Runs ferryctl with `argv` (without node and script); resolves with the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv, { from: "user" });
    return EXIT_OK;
  } catch (e) {
    if (e instanceof CommanderError) {
      // Help and version print to stdout and are not errors; commander already printed the rest.
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return EXIT_OK;
      if (e.exitCode === 0) return EXIT_OK;
      io.stderr.write("Run with --help for usage.\n");
      return EXIT_USAGE;
    }
    const err = e instanceof BrokerCallError ? e.cli : e;
    if (err instanceof CliError) {
      io.stderr.write(`error: ${err.message}\n`);
      for (const line of err.lines) io.stderr.write(`  ${line}\n`);
      return err.exitCode;
    }
    io.stderr.write(`error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return EXIT_ERROR;
  }
}

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
