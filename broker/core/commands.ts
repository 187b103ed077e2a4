// Commands: the read-only RPCs (describe-vm, preflight) a pure function asks the shell to perform.
// The shell sends each command (at most one in flight per id), then passes the reply back as a
// CommandResult with the same id on the next call. A transport failure (timeout, no responders)
// comes back as an RpcError reply, so the core sees one shape.
import type { DescribeVmReply, PreflightReply, PreflightRequest, RpcError, VmKey } from "../../proto/bus/index.js";
import { BUS_API_VERSION } from "../../proto/bus/index.js";

/**
 * A PreflightRequest without the apiVersion, cluster and deadline the shell adds when it sends it.
 * (Its `kind` field is the migration kind: the schema's `kind` overrides the envelope's literal.)
 */
export type PreflightRequestBody = Omit<PreflightRequest, "apiVersion" | "cluster" | "deadline">;

export type Command =
  | { id: string; type: "describe-vm"; cluster: string; vm: VmKey }
  | { id: string; type: "preflight"; cluster: string; request: PreflightRequestBody };

export type CommandResult =
  | { id: string; type: "describe-vm"; reply: DescribeVmReply }
  | { id: string; type: "preflight"; reply: PreflightReply };

/** The result the shell reports when a command could not be delivered or answered in time. */
export function transportFailure(command: Pick<Command, "id" | "type">, code: "Unavailable" | "DeadlineExceeded", message: string): CommandResult {
  const reply: RpcError = { apiVersion: BUS_API_VERSION, kind: "RpcError", code, message };
  return command.type === "describe-vm" ? { id: command.id, type: "describe-vm", reply } : { id: command.id, type: "preflight", reply };
}

export function resultFor<T extends Command["type"]>(results: readonly CommandResult[], id: string, type: T): Extract<CommandResult, { type: T }> | undefined {
  for (let i = results.length - 1; i >= 0; i--) {
    const r = results[i];
    if (r && r.id === id && r.type === type) return r as Extract<CommandResult, { type: T }>;
  }
  return undefined;
}

/** An RpcError as one line: "Unavailable: agent east did not answer within 10 s (fix …)". */
export function rpcErrorText(e: RpcError): string {
  return `${e.code}: ${e.message}${e.fix ? ` (${e.fix})` : ""}`;
}
