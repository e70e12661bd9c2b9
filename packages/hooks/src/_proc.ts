// Small /proc reads through the core gateway (hooks sources import no node:
// modules): mount tables and the inode numbers of open descriptors.
import { type Fd, NotSupportedError } from "@dp/core";
import { rawFd, readFileText } from "@dp/core/internal";

/**
 * Reads a /proc file whole.
 *
 * @param path The file, such as `/proc/self/mountinfo`.
 * @returns Its text.
 * @throws {SyscallError} When it cannot be opened or read.
 */
export function readProc(path: string): string {
  return readFileText(path);
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
