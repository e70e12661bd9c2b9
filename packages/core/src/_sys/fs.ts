// File-system reads and writes core needs besides system calls: sysfs and
// procfs files, bpffs and /run/netns directories.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
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

/** Creates a directory and its parents. */
export function mkdirp(path: string, mode = 0o755): void {
  mkdirSync(path, { recursive: true, mode });
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
