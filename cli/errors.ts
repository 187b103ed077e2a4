// Every failure ferryctl reports is one line that says what went wrong and what to do (plus one
// indented line per field or precondition violation the broker listed). Pure: gRPC errors come in
// as data (code, message, decoded google.rpc details).
import { status } from "@grpc/grpc-js";
import type { Detail } from "../proto/grpc-status.js";

export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

/** An error to print as is; `exitCode` 2 for usage errors (wrong flags or arguments). */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT_ERROR,
    /** Further lines (violations), printed indented under the message. */
    readonly lines: readonly string[] = [],
  ) {
    super(message);
    this.name = "CliError";
  }
}

/** --debug, or FERRY_DEBUG set to anything but "" or "0": print stack traces of unexpected errors. */
export function debugRequested(env: NodeJS.ProcessEnv, flag: boolean | undefined): boolean {
  const v = env["FERRY_DEBUG"];
  return flag === true || (v !== undefined && v !== "" && v !== "0");
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT_USAGE);
}

/** A gRPC failure as ferryctl sees it: code, the server's message, its details, and where it went. */
export interface RpcFailure {
  code: status;
  message: string;
  details: Detail[];
  /** The broker address the call went to. */
  address: string;
  /** The config file in use, named in fixes. */
  configPath: string;
}

const TLS_WORDS = /certificate|self[- ]signed|unable to verify|handshake|SSL|TLS|altnames|Hostname\/IP/i;

/** The server's own text, without grpc-js's "14 UNAVAILABLE: " prefix. */
function serverText(message: string): string {
  return message.replace(/^\d+ [A-Z_]+: /, "");
}

function detailLines(details: Detail[]): string[] {
  const lines: string[] = [];
  for (const d of details) {
    if (d.$case === "badRequest") for (const v of d.value.fieldViolations) lines.push(v.field ? `${v.field}: ${v.description}` : v.description);
    if (d.$case === "preconditionFailure") for (const v of d.value.violations) lines.push(`${v.subject ? `${v.subject}: ` : ""}${v.description}${v.type ? ` [${v.type}]` : ""}`);
  }
  return lines;
}

/** Maps a failed RPC to the one line (and violation lines) ferryctl prints. */
export function describeRpcFailure(f: RpcFailure): CliError {
  const text = serverText(f.message);
  const lines = detailLines(f.details);
  const info = f.details.find((d) => d.$case === "errorInfo")?.value;
  switch (f.code) {
    case status.UNAVAILABLE:
      if (info?.reason === "NOT_LEADER") {
        return new CliError(`broker ${f.address} is a standby and the leader ${info.metadata["leaderAddress"] ?? "(unknown)"} did not answer; retry shortly, or check the brokers list in ${f.configPath}`);
      }
      if (TLS_WORDS.test(text)) {
        return new CliError(`TLS with broker ${f.address} failed (${text}); check that caFile in ${f.configPath} is the ferry CA and that the broker certificate names this address (or set tlsServerName)`);
      }
      return new CliError(`cannot reach the broker at ${f.address} (${text}); check that it runs and that brokers in ${f.configPath} lists its gRPC address`);
    case status.UNAUTHENTICATED:
      return new CliError(`broker ${f.address} refused the client certificate (${text}); set certFile/keyFile in ${f.configPath} to a valid admin certificate from this ferry CA`);
    case status.PERMISSION_DENIED:
      return new CliError(`broker ${f.address} denied the request (${text}); ferryctl needs an admin certificate (OU=ferry-admin) in certFile/keyFile of ${f.configPath}`);
    case status.UNIMPLEMENTED:
      return new CliError(`broker ${f.address} does not implement this yet (${text}); upgrade the broker to a version with plan support`);
    case status.DEADLINE_EXCEEDED:
      return new CliError(`broker ${f.address} did not answer in time (${text}); retry, or check the broker's health (/readyz)`);
    case status.INVALID_ARGUMENT:
      return new CliError(`invalid request: ${text}`, EXIT_ERROR, lines);
    case status.FAILED_PRECONDITION:
      return new CliError(text, EXIT_ERROR, lines);
    default:
      return new CliError(text || `${f.code}`, EXIT_ERROR, lines);
  }
}
