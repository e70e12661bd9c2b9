// Reading a whole small file (procfs, sysfs) through the system call
// gateway, for packages that import no node: modules and for reads that
// must happen on the calling thread (inside withNetns()).
import { SyscallError } from "../errors.ts";
import { sys } from "../_sys/sys.ts";

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;
const EINTR = 4;
const EIO = 5;
const CHUNK = 16384;

/** Options for {@link readFileText}. */
export interface ReadFileTextOptions {
  /**
   * The message of errors.
   *
   * @default `Cannot read "<path>"`
   */
  readonly what?: string;
  /**
   * Refuse files larger than this (EIO), for values that are never large.
   *
   * @default no limit
   */
  readonly maxBytes?: number;
}

/**
 * Reads a whole file as UTF-8 text with open/read/close through the
 * gateway, retrying on EINTR.
 *
 * @param path The file, such as `/proc/self/mountinfo`.
 * @param options The error message and a size limit.
 * @returns The text.
 * @throws {SyscallError} When the file cannot be opened or read, or is larger than `maxBytes` (EIO).
 */
export function readFileText(path: string, options: ReadFileTextOptions = {}): string {
  const what = options.what ?? `Cannot read "${path}"`;
  const s = sys();
  let fd: number;
  do fd = s.open(path, O_RDONLY | O_CLOEXEC, 0);
  while (fd === -EINTR);
  if (fd < 0) throw new SyscallError(what, { syscall: "open", op: "open", errno: -fd });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const buf = new Uint8Array(CHUNK);
      const n = s.read(fd, buf, buf.length);
      if (n === -EINTR) continue;
      if (n < 0) throw new SyscallError(what, { syscall: "read", op: "read", errno: -n });
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
      if (options.maxBytes !== undefined && total > options.maxBytes) {
        throw new SyscallError(`${what}: larger than ${options.maxBytes} bytes`, {
          syscall: "read",
          op: "read",
          errno: EIO,
        });
      }
    }
  } finally {
    s.close(fd);
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  return new TextDecoder().decode(all);
}
