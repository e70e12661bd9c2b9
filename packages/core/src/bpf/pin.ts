import { attr, bpfError, bpfShared, cString } from "./_bpf.ts";
import { ATTR_OBJ, BPF_CMD } from "../_gen/uapi.ts";
import { SyscallError } from "../errors.ts";
import { Fd, rawFd } from "./fd.ts";
import { exists, mkdirp, readText, rename, rmdir } from "../_sys/fs.ts";
import { sys } from "../_sys/sys.ts";

const BPF_FS_MAGIC = 0xcafe4a11;

/** The conventional bpffs mount point. */
export const DEFAULT_BPFFS: string = "/sys/fs/bpf";

/**
 * Tells whether `dir` is on a bpffs mount.
 *
 * @param dir A directory.
 * @returns `true` when `statfs(dir)` reports the bpffs magic.
 * @example bpffs, and a directory that is not
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { isBpffs, mountBpffs } from "@dp/core";
 *
 * mountBpffs();
 * assert.equal(isBpffs("/sys/fs/bpf"), true);
 * assert.equal(isBpffs("/proc"), false);
 * ```
 */
export function isBpffs(dir: string): boolean {
  const t = sys().statfsType(dir);
  return t === BPF_FS_MAGIC;
}

/**
 * Mounts bpffs at `dir` unless it is already there.
 *
 * @param dir The mount point, created when missing (and removed again when the mount fails).
 * @returns `true` when this call mounted it, `false` when it was mounted.
 * @throws {SyscallError} When `mount(2)` fails (EPERM without CAP_SYS_ADMIN); directories this call created are removed first.
 * @capability CAP_SYS_ADMIN
 * @example Making sure /sys/fs/bpf is usable
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { isBpffs, mountBpffs } from "@dp/core";
 *
 * mountBpffs();
 * assert.ok(isBpffs("/sys/fs/bpf"));
 * ```
 */
export function mountBpffs(dir: string = DEFAULT_BPFFS): boolean {
  const created = exists(dir) ? undefined : mkdirp(dir, 0o700);
  if (isBpffs(dir)) return false;
  const ret = sys().mount("bpf", dir, "bpf", 0, "mode=0700");
  if (ret < 0) {
    // Leave nothing behind: remove the directories this call created.
    if (created !== undefined) {
      for (let d = dir.replace(/\/+$/, ""); d.length >= created.length; d = parentDir(d)) rmdir(d);
    }
    throw new SyscallError(`Cannot mount bpffs at "${dir}"`, {
      syscall: "mount",
      op: "mount",
      errno: -ret,
      hint: -ret === 1 ? "mounting needs CAP_SYS_ADMIN" : undefined,
    });
  }
  return true;
}

function parentDir(path: string): string {
  const i = path.lastIndexOf("/");
  return i <= 0 ? "/" : path.slice(0, i);
}

/** Makes sure the directory holding `path` is on bpffs, mounting the default one when needed. */
function ensurePinDir(path: string): void {
  if (!path.startsWith("/")) throw new TypeError(`Invalid pin path "${path}": must be absolute`);
  if (path === DEFAULT_BPFFS || path.startsWith(`${DEFAULT_BPFFS}/`)) mountBpffs();
}

/** Pins the object behind `fd` at `path` (BPF_OBJ_PIN). */
export function pinFd(fd: Fd, path: string, what: string): void {
  ensurePinDir(path);
  const dir = parentDir(path);
  if (!exists(dir)) mkdirp(dir, 0o700);
  const p = cString(path);
  const a = attr(ATTR_OBJ.SIZE);
  a.setPtr(ATTR_OBJ.pathname, p.addr);
  a.dv.setUint32(ATTR_OBJ.bpf_fd, rawFd(fd), true);
  const ret = bpfShared(BPF_CMD.OBJ_PIN, ATTR_OBJ.SIZE);
  if (ret < 0) throw bpfError(`Cannot pin ${what} at "${path}"`, BPF_CMD.OBJ_PIN, -ret);
}

const FDINFO_KIND: Readonly<Record<string, string>> = { map: "map", prog: "program", link: "link" };

/**
 * Opens a pinned object (BPF_OBJ_GET) and checks it is what the caller
 * wants (from /proc/self/fdinfo: `map_type`, `prog_type` or `link_type`).
 *
 * @throws {TypeError} When the pinned object is of another kind.
 */
export function openPinnedFd(path: string, what: "map" | "program" | "link", flags = 0): Fd {
  ensurePinDir(path);
  const p = cString(path);
  const a = attr(ATTR_OBJ.SIZE);
  a.setPtr(ATTR_OBJ.pathname, p.addr);
  a.dv.setUint32(ATTR_OBJ.file_flags, flags, true);
  const ret = bpfShared(BPF_CMD.OBJ_GET, ATTR_OBJ.SIZE);
  if (ret < 0) throw bpfError(`Cannot open pinned ${what} "${path}"`, BPF_CMD.OBJ_GET, -ret);
  const fd = new Fd(ret, `${what} "${path}"`);
  const m = /^(link|prog|map)_type:/m.exec(readText(`/proc/self/fdinfo/${ret}`) ?? "");
  const kind = m?.[1] === undefined ? undefined : FDINFO_KIND[m[1]];
  if (kind !== undefined && kind !== what) {
    fd.close();
    throw new TypeError(`Cannot open pinned ${what} "${path}": the pinned object is a ${kind}`);
  }
  return fd;
}

/**
 * Removes a pin. The object lives on while something else holds it.
 *
 * @param path The pinned path on bpffs.
 * @returns `false` when nothing was pinned there.
 * @throws {SyscallError} When `unlink(2)` fails for another reason.
 * @example A pinned map outlives its handle until unpinned
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap, openPinnedMap, unpin } from "@dp/core";
 *
 * const path = `/sys/fs/bpf/dp-doc-unpin-${process.pid}`;
 * {
 *   using map = createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
 *   map.pin(path);
 * } // the handle is closed; the pin holds the map
 * using again = openPinnedMap(path);
 * assert.equal(again.maxEntries, 1);
 * assert.equal(unpin(path), true);
 * assert.equal(unpin(path), false);
 * ```
 */
export function unpin(path: string): boolean {
  const ret = sys().unlink(path);
  if (ret === -2) return false;
  if (ret < 0) throw new SyscallError(`Cannot unpin "${path}"`, { syscall: "unlink", op: "unlink", errno: -ret });
  return true;
}

/**
 * Moves a pin to another name on the same bpffs, atomically replacing what
 * is pinned there: a reader sees the old object or the new one, never none.
 *
 * @param from The current pin.
 * @param to The new path, in the same bpffs mount.
 * @throws {SyscallError} When `rename(2)` fails (ENOENT when nothing is pinned at `from`).
 */
export function renamePin(from: string, to: string): void {
  const ret = rename(from, to);
  if (ret < 0) {
    throw new SyscallError(`Cannot move pin "${from}" to "${to}"`, { syscall: "rename", op: "rename", errno: -ret });
  }
}
