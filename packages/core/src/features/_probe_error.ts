// The error a feature probe throws when it cannot answer; shared by the
// probes of features.ts and the BTF probes of btf_load.ts.
import { SyscallError } from "../errors.ts";

const EPERM = 1;

/**
 * The error of an inconclusive probe: a refused system call stays a
 * `SyscallError` with its errno and hint (EPERM: missing privileges, not a
 * missing feature), anything else is an `Error` with the cause.
 *
 * @param what "Cannot detect support for X".
 * @param err The failure.
 * @returns The error to throw.
 */
export function probeError(what: string, err: unknown): Error {
  const cause =
    err instanceof SyscallError
      ? err
      : err instanceof Error && err.cause instanceof SyscallError
        ? err.cause
        : undefined;
  if (cause !== undefined && cause.errno === EPERM) {
    return new SyscallError(what, {
      syscall: cause.syscall,
      op: cause.op,
      errno: cause.errno,
      hint: cause.hint ?? "run as root or grant CAP_BPF",
      cause: err,
    });
  }
  return new Error(what, { cause: err });
}
