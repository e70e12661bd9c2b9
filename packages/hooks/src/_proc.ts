// Small /proc reads through the core gateway (hooks sources import no node:
// modules): mount tables and the inode numbers of open descriptors.
import { type Fd, NotSupportedError, SyscallError } from "@dp/core";
import { rawFd, sys } from "@dp/core/internal";

const O_RDONLY = 0;
const O_CLOEXEC = 0o2000000;

/**
 * Reads a /proc file whole.
 *
 * @param path The file, such as `/proc/self/mountinfo`.
 * @returns Its text.
 * @throws {SyscallError} When it cannot be opened or read.
 */
export function readProc(path: string): string {
  const s = sys();
  const fd = s.open(path, O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) throw new SyscallError(`Cannot open "${path}"`, { syscall: "open", op: "open", errno: -fd });
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const buf = new Uint8Array(16384);
      const n = s.read(fd, buf, buf.length);
      if (n < 0) throw new SyscallError(`Cannot read "${path}"`, { syscall: "read", op: "read", errno: -n });
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
      total += n;
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

/**
 * The inode number of the file behind a descriptor, from
 * `/proc/self/fdinfo` (Linux 5.14+): a network namespace's identity, a
 * cgroup's id.
 *
 * @param fd The descriptor.
 * @returns The inode number.
 * @throws {NotSupportedError} When fdinfo has no `ino:` line (before Linux 5.14).
 * @throws {SyscallError} When /proc cannot be read.
 */
export function fdInode(fd: Fd): number {
  const text = readProc(`/proc/self/fdinfo/${rawFd(fd)}`);
  const m = /^ino:\s*(\d+)$/m.exec(text);
  if (m === null) throw new NotSupportedError("inode numbers in /proc/self/fdinfo", { minKernel: "5.14" });
  return Number(m[1]);
}
