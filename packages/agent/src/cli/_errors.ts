// How the dp command ends: errors carry the exit code and a hint what to do.
import { isNotSupported, SyscallError } from "@dp/core";
import { AgentUnreachableError, ApiError } from "../api/errors.ts";

/** The exit codes of `dp` (documented in docs/cli.md and `dp --help`). */
export const EXIT = {
  /** Success. */
  ok: 0,
  /** The operation failed: a kernel or API error, a scenario that differed. */
  failed: 1,
  /** Bad usage or bad config. */
  usage: 2,
  /** The agent is not reachable (for commands that need it). */
  unreachable: 3,
  /** Interrupted (SIGINT). */
  interrupted: 130,
} as const;

/** An error of the command line itself: its exit code and a hint. */
export class CliError extends Error {
  /** Always `"CliError"`. */
  override readonly name: string = "CliError";
  /** The exit code. */
  readonly exitCode: number;
  /** What to do about it. */
  readonly hint: string | undefined;

  /**
   * Creates the error.
   *
   * @param message What went wrong.
   * @param exitCode The exit code.
   * @param hint What to do.
   * @param options The cause.
   */
  constructor(message: string, exitCode: number, hint?: string, options?: ErrorOptions) {
    super(message, options);
    this.exitCode = exitCode;
    this.hint = hint;
  }
}

/** A bad argument or option (exit 2). */
export function usageError(message: string, hint?: string): CliError {
  return new CliError(message, EXIT.usage, hint);
}

function hasName(err: unknown, name: string): boolean {
  return err instanceof Error && err.name === name;
}

/** The command that lists what a command names (`dp bpf policy get 7` → `dp endpoint list`). */
function listCommand(command: string): string {
  if (command.startsWith("identity")) return "dp identity list";
  if (command.startsWith("policy")) return "dp policy get";
  return "dp endpoint list";
}

/** The exit code and hint for any error a command threw. */
export function describeError(err: unknown, command: string): { message: string; exitCode: number; hint?: string } {
  if (err instanceof CliError)
    return { message: err.message, exitCode: err.exitCode, ...(err.hint === undefined ? {} : { hint: err.hint }) };
  if (err instanceof AgentUnreachableError) return { message: err.message, exitCode: EXIT.unreachable };
  if (hasName(err, "ConfigError"))
    return { message: (err as Error).message, exitCode: EXIT.usage, hint: "see docs/config.md for every key" };
  if (err instanceof ApiError) {
    const hint =
      err.code === "not-found"
        ? `list what exists with \`${listCommand(command)}\``
        : err.code === "bad-request"
          ? `check the request${err.field === undefined ? "" : ` (field ${err.field})`}; see \`dp ${command} --help\``
          : err.code === "conflict"
            ? "retry after the conflicting change, or remove what is in the way"
            : "see the agent's log";
    return { message: err.message, exitCode: err.code === "bad-request" ? EXIT.usage : EXIT.failed, hint };
  }
  if (err instanceof SyscallError) {
    const hint =
      err.code === "EPERM" || err.code === "EACCES"
        ? "run as root (reading BPF maps needs CAP_BPF and CAP_SYS_ADMIN)"
        : (err.hint ?? undefined);
    return { message: err.message, exitCode: EXIT.failed, ...(hint === undefined ? {} : { hint }) };
  }
  if (isNotSupported(err)) return { message: (err as Error).message, exitCode: EXIT.failed };
  if (err instanceof SyntaxError || err instanceof RangeError)
    return { message: err.message, exitCode: EXIT.usage, hint: `see \`dp ${command} --help\`` };
  if (err instanceof Error) return { message: err.message, exitCode: EXIT.failed };
  return { message: String(err), exitCode: EXIT.failed };
}
