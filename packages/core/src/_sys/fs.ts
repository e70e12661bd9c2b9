// File-system reads and writes core needs besides system calls: sysfs and
// procfs files, bpffs and /run/netns directories.
import { existsSync, mkdirSync, readFileSync, renameSync, rmdirSync } from "node:fs";
import { release } from "node:os";
import { gunzipSync } from "node:zlib";

/** Reads a text file, or returns undefined when it does not exist. */
export function readText(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Creates a directory and its parents; returns the first directory it created, undefined when it existed. */
export function mkdirp(path: string, mode = 0o755): string | undefined {
  return mkdirSync(path, { recursive: true, mode });
}

/** Removes an empty directory; false when it was not there. */
export function rmdir(path: string): boolean {
  try {
    rmdirSync(path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

/** Tells whether a path exists. */
export function exists(path: string): boolean {
  return existsSync(path);
}

/** The kernel release string, such as `"6.18.44"`. */
export function kernelRelease(): string {
  return release();
}

/** Reads a whole file as bytes, or returns undefined when it does not exist. */
export function readBytes(path: string): Uint8Array | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Reads a gzip-compressed text file, or returns undefined when it does not exist. */
export function readGzipText(path: string): string | undefined {
  const bytes = readBytes(path);
  return bytes === undefined ? undefined : gunzipSync(bytes).toString("utf8");
}

/** Renames `from` to `to`, atomically replacing `to`; returns 0 or the negated errno. */
export function rename(from: string, to: string): number {
  try {
    renameSync(from, to);
    return 0;
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).errno;
    return typeof errno === "number" ? (errno < 0 ? errno : -errno) : -5;
  }
}
