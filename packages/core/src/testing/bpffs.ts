import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import { DEFAULT_BPFFS, mountBpffs } from "../bpf/pin.ts";

/**
 * A directory on bpffs owned by a test, removed with everything pinned in
 * it on dispose.
 */
export class BpffsDir {
  /** The directory's absolute path. */
  readonly path: string;

  /**
   * Wraps a created directory.
   *
   * @internal Made by {@link bpffsDir}.
   * @param path The directory.
   */
  constructor(path: string) {
    this.path = path;
  }

  /**
   * Returns a path inside the directory.
   *
   * @param name A file name.
   * @returns The joined path.
   */
  join(name: string): string {
    return `${this.path}/${name}`;
  }

  /** Removes the directory and every pin in it. */
  close(): void {
    rmSync(this.path, { recursive: true, force: true });
  }

  /** Removes the directory (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Creates a uniquely named directory under `/sys/fs/bpf`, mounting bpffs
 * there first if needed.
 *
 * @returns The directory; dispose it with `using` or `close()`.
 */
export function bpffsDir(): BpffsDir {
  mountBpffs();
  const path = `${DEFAULT_BPFFS}/dpt-${process.pid}-${randomBytes(4).toString("hex")}`;
  mkdirSync(path, { mode: 0o700 });
  return new BpffsDir(path);
}
