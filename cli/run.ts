// Runs the command tree and turns every outcome into an exit code: 0 ok, 1 error (printed as one
// line, plus violations), 2 usage. In-process callable with any Io (tests); main.ts binds it to the process.
import { CommanderError } from "commander";
import { BrokerCallError } from "./broker.js";
import { CliError, debugRequested, EXIT_ERROR, EXIT_OK, EXIT_USAGE } from "./errors.js";
import { buildProgram, type Io } from "./program.js";

/** Runs ferryctl with `argv` (without node and script); resolves with the exit code. */
export async function run(argv: string[], io: Io): Promise<number> {
  const { program, close } = buildProgram(io);
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
    // Not a failure ferryctl knows how to explain: one line, the stack only on request.
    const message = (e instanceof Error ? e.message : String(e)).split("\n")[0];
    if (debugRequested(io.env, program.opts<{ debug?: boolean }>().debug)) {
      io.stderr.write(`error: ${message}\n${e instanceof Error ? e.stack : ""}\n`);
    } else {
      io.stderr.write(`error: ${message} (unexpected; rerun with --debug or FERRY_DEBUG=1 for the stack trace)\n`);
    }
    return EXIT_ERROR;
  } finally {
    close();
  }
}

