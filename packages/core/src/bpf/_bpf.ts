// bpf(2) plumbing shared by maps, programs and probes: native scratch
// memory, the shared attribute buffer and error construction.
import { BPF_CMD } from "../_gen/uapi.ts";
import { E } from "../_errno.ts";
import { NotSupportedError, SyscallError, VerifierError } from "../errors.ts";
import { sys } from "../_sys/sys.ts";

/** A block of memory with a stable native address (an ArrayBuffer's backing store). */
export class Native {
  readonly u8: Uint8Array;
  readonly dv: DataView;
  readonly addr: number;

  constructor(size: number) {
    const buf = new ArrayBuffer(Math.max(8, size));
    this.u8 = new Uint8Array(buf);
    this.dv = new DataView(buf);
    this.addr = sys().addressOf(this.u8);
  }

  /** Writes a pointer-sized field. */
  setPtr(offset: number, addr: number): void {
    this.dv.setBigUint64(offset, BigInt(addr), true);
  }
}

let shared: Native | undefined;

/** The attribute buffer used by every non-hot bpf(2) command, zeroed per call. */
export function attr(size: number): Native {
  shared ??= new Native(256);
  shared.u8.fill(0, 0, size);
  return shared;
}

const encoder = new TextEncoder();

/** Encodes a NUL-terminated C string into native memory owned by the caller. */
export function cString(text: string): Native {
  const bytes = encoder.encode(text);
  const n = new Native(bytes.length + 1);
  n.u8.set(bytes);
  return n;
}

const CMD_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(BPF_CMD)
    .reverse()
    .map(([name, value]) => [value, `BPF_${name}`]),
);

/** Returns the kernel name of a bpf command, such as `"BPF_MAP_CREATE"`. */
export function cmdName(cmd: number): string {
  return CMD_NAMES.get(cmd) ?? `bpf command ${cmd}`;
}

/** Calls bpf(2) with the shared attribute buffer. */
export function bpfShared(cmd: number, size: number): number {
  return sys().bpf(cmd, (shared as Native).addr, size);
}

/** Returns a hint for a known bpf(2) failure. */
export function bpfHint(cmd: number, errno: number): string | undefined {
  switch (errno) {
    case E.EPERM:
      if (cmd === BPF_CMD.MAP_UPDATE_ELEM || cmd === BPF_CMD.MAP_DELETE_ELEM || cmd === BPF_CMD.MAP_UPDATE_BATCH) {
        return "the map is frozen or read-only for user space";
      }
      return "run as root or grant CAP_BPF (plus CAP_NET_ADMIN for networking programs, CAP_PERFMON for tracing)";
    case E.E2BIG:
      if (cmd === BPF_CMD.MAP_UPDATE_ELEM || cmd === BPF_CMD.MAP_UPDATE_BATCH)
        return "the map is full (max entries reached)";
      if (cmd === BPF_CMD.PROG_LOAD) return "the program has too many instructions";
      return undefined;
    case E.EEXIST:
      if (cmd === BPF_CMD.MAP_UPDATE_ELEM) return "the key exists and the update allowed only a new key";
      if (cmd === BPF_CMD.OBJ_PIN) return "the pin path is taken";
      return undefined;
    case E.ENOENT:
      if (cmd === BPF_CMD.MAP_UPDATE_ELEM) return "the key does not exist and the update allowed only an existing key";
      if (cmd === BPF_CMD.OBJ_GET || cmd === BPF_CMD.OBJ_PIN) return "no such path on bpffs";
      return undefined;
    case E.EFAULT:
      return "the kernel could not read or write a buffer: a bug in dp or the verifier";
    case E.EBUSY:
      if (cmd === BPF_CMD.MAP_FREEZE) return "the map is memory-mapped writable or already frozen";
      return undefined;
    case E.ENOTSUPP:
    case E.EOPNOTSUPP:
      return "the operation is not supported for this object type";
    case E.EINVAL:
      if (cmd === BPF_CMD.MAP_CREATE) return "the kernel rejected the map's parameters for its type";
      if (cmd === BPF_CMD.OBJ_PIN || cmd === BPF_CMD.OBJ_GET) return "the path is not on a bpffs mount";
      return undefined;
    default:
      return undefined;
  }
}

/** Builds the error for a failed bpf(2) command. */
export function bpfError(what: string, cmd: number, errno: number, cause?: unknown): SyscallError {
  return new SyscallError(what, {
    syscall: "bpf",
    op: cmdName(cmd),
    errno,
    hint: bpfHint(cmd, errno),
    cause,
  });
}

/** Throws NotSupportedError for ENOTSUPP/EOPNOTSUPP, else a SyscallError. */
export function bpfErrorOrNotSupported(what: string, feature: string, cmd: number, errno: number): Error {
  const err = bpfError(what, cmd, errno);
  if (errno === E.ENOTSUPP || errno === E.EOPNOTSUPP) return new NotSupportedError(feature, { cause: err });
  return err;
}

/** Reads `struct bpf_*_info` of an object (BPF_OBJ_GET_INFO_BY_FD) into a fresh buffer. */
export function objInfo(rawFd: number, size: number, what: string, prepare?: (info: Native) => void): Native {
  const info = new Native(size);
  prepare?.(info);
  const a = attr(24);
  a.dv.setUint32(0, rawFd, true);
  a.dv.setUint32(4, size, true);
  a.setPtr(8, info.addr);
  const ret = bpfShared(BPF_CMD.OBJ_GET_INFO_BY_FD, 16);
  if (ret < 0) throw bpfError(`Cannot get info of ${what}`, BPF_CMD.OBJ_GET_INFO_BY_FD, -ret);
  return info;
}

const decoder = new TextDecoder();

/** Decodes a NUL-padded fixed-size name field. */
export function cName(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return decoder.decode(end < 0 ? bytes : bytes.subarray(0, end));
}

/** Verifier log settings shared by program and BTF loads. */
export interface LogRetryOptions {
  readonly logLevel?: 1 | 2;
  readonly logSize?: number;
  readonly maxLogSize?: number;
}

/** One load attempt: the syscall's result and the log size the kernel asked for (`log_true_size`). */
export interface LoadAttempt {
  readonly ret: number;
  readonly trueSize: number;
}

const MAX_LOG_ATTEMPTS = 5;
const DEFAULT_LOG = 64 * 1024;
const MAX_LOG = 0x0fff_ffff;

function splitLog(log: Native, size: number): string[] {
  const bytes = log.u8.subarray(0, size);
  const end = bytes.indexOf(0);
  const lines = new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end)).split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines;
}

/**
 * Runs a load (program or BTF) that already failed once without a log
 * again with a log, growing the buffer on ENOSPC (to `log_true_size` where
 * the kernel gives it), a bounded number of times.
 *
 * @returns The new descriptor when a retry succeeds.
 * @throws {VerifierError} With the log, when there is one.
 * @throws {SyscallError} When the kernel wrote no log.
 */
export function retryWithLog(
  what: string,
  cmd: number,
  firstErrno: number,
  options: LogRetryOptions,
  attempt: (log: Native, size: number, level: number) => LoadAttempt,
): number {
  const maxLog = options.maxLogSize ?? MAX_LOG;
  let logSize = Math.min(options.logSize ?? DEFAULT_LOG, maxLog);
  let log = new Native(logSize);
  let truncated = false;
  let ret = -firstErrno;
  for (let i = 0; i < MAX_LOG_ATTEMPTS; i++) {
    const r = attempt(log, logSize, options.logLevel ?? 1);
    ret = r.ret;
    if (ret >= 0) return ret;
    truncated = -ret === E.ENOSPC;
    if (!truncated || logSize >= maxLog) break;
    logSize = Math.min(maxLog, r.trueSize > logSize ? r.trueSize : logSize * 4);
    log = new Native(logSize);
  }
  const errno = truncated ? firstErrno : -ret;
  const lines = splitLog(log, logSize);
  if (lines.length === 0) throw bpfError(what, cmd, errno);
  throw new VerifierError(what, { syscall: "bpf", op: cmdName(cmd), errno, log: lines, truncated });
}
