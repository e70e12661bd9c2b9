import { SyscallError } from "../errors.ts";
import { Fd, rawFd } from "../bpf/fd.ts";
import { exists, mkdirp } from "../_sys/fs.ts";
import { sys } from "../_sys/sys.ts";
import { isPathComponent } from "../_path_name.ts";

const CLONE_NEWNET = 0x4000_0000;
const O_RDONLY = 0;
const O_CREAT = 0o100;
const O_EXCL = 0o200;
const O_CLOEXEC = 0o2000000;
const MS_BIND = 4096;
const MS_REC = 16384;
const MS_SHARED = 1 << 20;
const MNT_DETACH = 2;
const EINVAL = 22;
const EEXIST = 17;
const ENOENT = 2;

/** Where `ip netns` keeps named namespaces. */
export const NETNS_RUN_DIR: string = "/run/netns";

const NAME = /^[A-Za-z0-9_.-]{1,200}$/;

function fail(what: string, syscall: string, ret: number, hint?: string): never {
  throw new SyscallError(what, {
    syscall,
    op: syscall,
    errno: -ret,
    hint: hint ?? (-ret === 1 ? "network namespaces need CAP_SYS_ADMIN" : undefined),
  });
}

/**
 * An open network namespace.
 *
 * Holding it keeps the namespace alive even after its name is deleted;
 * `close()` releases the descriptor, not the namespace.
 *
 * @example Running code inside a namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createNetns, deleteNetns, withNetns } from "@dp/core";
 *
 * const name = `dp-doc-${process.pid}`;
 * using ns = createNetns(name);
 * try {
 *   assert.equal(withNetns(ns, () => 42), 42);
 * } finally {
 *   deleteNetns(name);
 * }
 * ```
 */
export class Netns {
  /** The name under `/run/netns`, or undefined for namespaces opened by path. */
  readonly name: string | undefined;
  /** The path the namespace was opened from. */
  readonly path: string;
  #fd: Fd;

  /**
   * Wraps a namespace descriptor.
   *
   * @internal Namespaces are opened by {@link createNetns}, {@link openNetns} and {@link currentNetns}.
   * @param fd The descriptor, now owned by this object.
   * @param path Where it was opened.
   * @param name Its name under /run/netns.
   */
  constructor(fd: Fd, path: string, name?: string) {
    this.#fd = fd;
    this.path = path;
    this.name = name;
  }

  /** The namespace's descriptor. */
  get fd(): Fd {
    return this.#fd;
  }

  /** Whether {@link Netns.close} was called. */
  get closed(): boolean {
    return this.#fd.closed;
  }

  /** Closes the descriptor; the namespace lives on while it has a name or processes. */
  close(): void {
    this.#fd.close();
  }

  /** Closes the descriptor (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

function openPath(path: string, name?: string): Netns {
  const ret = sys().open(path, O_RDONLY | O_CLOEXEC, 0);
  if (ret < 0) fail(`Cannot open network namespace "${name ?? path}"`, "open", ret);
  return new Netns(new Fd(ret, `netns "${name ?? path}"`), path, name);
}

/** Opens the calling thread's current network namespace. */
function threadNetnsPath(): string {
  return `/proc/self/task/${sys().gettid()}/ns/net`;
}

/**
 * Opens the network namespace the calling thread is in.
 *
 * @returns A handle to it.
 * @throws {SyscallError} When `/proc` cannot be opened.
 * @example The namespace this thread is in
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { currentNetns } from "@dp/core";
 *
 * using here = currentNetns();
 * assert.match(here.path, /\/ns\/net$/);
 * assert.equal(here.closed, false);
 * ```
 */
export function currentNetns(): Netns {
  return openPath(threadNetnsPath());
}

function checkName(name: string): void {
  if (!isPathComponent(name) || !NAME.test(name)) {
    throw new RangeError(
      `Invalid network namespace name ${JSON.stringify(name)}: use 1-200 characters of [A-Za-z0-9_.-], not "." or ".."`,
    );
  }
}

/** Makes /run/netns a shared mount point, as `ip netns add` does, so names propagate between mount namespaces. */
function prepareRunDir(): void {
  const s = sys();
  mkdirp(NETNS_RUN_DIR);
  let ret = s.mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, null);
  if (ret === -EINVAL) {
    ret = s.mount(NETNS_RUN_DIR, NETNS_RUN_DIR, "none", MS_BIND | MS_REC, null);
    if (ret < 0) fail(`Cannot bind-mount "${NETNS_RUN_DIR}"`, "mount", ret);
    ret = s.mount("", NETNS_RUN_DIR, "none", MS_SHARED | MS_REC, null);
  }
  if (ret < 0) fail(`Cannot make "${NETNS_RUN_DIR}" a shared mount`, "mount", ret);
}

/**
 * Creates a named network namespace the way `ip netns add` does: a new
 * namespace bind-mounted at `/run/netns/NAME`, so `ip netns` lists it and
 * `ip netns exec` enters it. The calling thread stays where it was.
 *
 * @param name The name: 1-200 characters of `[A-Za-z0-9_.-]`, not `.` or `..`.
 * @returns A handle to the new namespace.
 * @throws {RangeError} When the name is invalid.
 * @throws {SyscallError} EEXIST when the name is taken; EPERM without CAP_SYS_ADMIN.
 * @capability CAP_SYS_ADMIN
 * @example A named namespace that ip netns lists, removed again
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { execFileSync } from "node:child_process";
 * import { createNetns, deleteNetns } from "@dp/core";
 *
 * const name = `dp-doc-create-${process.pid}`;
 * using ns = createNetns(name);
 * assert.match(execFileSync("ip", ["netns", "list"], { encoding: "utf8" }), new RegExp(name));
 * assert.equal(deleteNetns(name), true);
 * ```
 */
export function createNetns(name: string): Netns {
  checkName(name);
  const s = sys();
  prepareRunDir();
  const path = `${NETNS_RUN_DIR}/${name}`;
  const created = s.open(path, O_RDONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0);
  if (created < 0) {
    fail(
      `Cannot create network namespace "${name}"`,
      "open",
      created,
      -created === EEXIST ? "the name is taken" : undefined,
    );
  }
  s.close(created);
  let mounted = false;
  try {
    using origin = currentNetns();
    const ret = s.unshare(CLONE_NEWNET);
    if (ret < 0) fail(`Cannot create network namespace "${name}"`, "unshare", ret);
    try {
      const bound = s.mount(threadNetnsPath(), path, "none", MS_BIND, null);
      if (bound < 0) fail(`Cannot bind-mount network namespace "${name}"`, "mount", bound);
      mounted = true;
    } finally {
      const back = s.setns(rawFd(origin.fd), CLONE_NEWNET);
      if (back < 0) fail(`Cannot return to the original network namespace after creating "${name}"`, "setns", back);
    }
    return openPath(path, name);
  } catch (err) {
    if (mounted) s.umount2(path, MNT_DETACH);
    s.unlink(path);
    throw err;
  }
}

/**
 * Opens a network namespace by name (under `/run/netns`) or by path
 * (`/proc/PID/ns/net`, a bind mount).
 *
 * @param nameOrPath A name, or an absolute path.
 * @returns A handle to the namespace.
 * @throws {RangeError} When a name (not an absolute path) is invalid: see {@link createNetns}.
 * @throws {SyscallError} ENOENT when there is no such namespace.
 * @example Opening a namespace by name and by path
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createNetns, deleteNetns, openNetns } from "@dp/core";
 *
 * const name = `dp-doc-open-${process.pid}`;
 * createNetns(name).close();
 * try {
 *   using byName = openNetns(name);
 *   using byPath = openNetns(`/run/netns/${name}`);
 *   assert.equal(byName.name, name);
 *   assert.equal(byPath.path, `/run/netns/${name}`);
 * } finally {
 *   deleteNetns(name);
 * }
 * ```
 */
export function openNetns(nameOrPath: string): Netns {
  if (nameOrPath.startsWith("/")) return openPath(nameOrPath);
  checkName(nameOrPath);
  return openPath(`${NETNS_RUN_DIR}/${nameOrPath}`, nameOrPath);
}

/**
 * Deletes a named network namespace as `ip netns delete` does: unmounts and
 * removes `/run/netns/NAME`. The namespace itself goes away when no process
 * or open descriptor holds it any more.
 *
 * @param name The name.
 * @returns `false` when there was no such name.
 * @throws {RangeError} Before any system call, when the name is invalid (`.` and `..` included): see {@link createNetns}.
 * @throws {SyscallError} When the name cannot be unmounted or removed.
 * @example Deleting twice: the second call finds nothing
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createNetns, deleteNetns } from "@dp/core";
 *
 * const name = `dp-doc-delete-${process.pid}`;
 * createNetns(name).close();
 * assert.equal(deleteNetns(name), true);
 * assert.equal(deleteNetns(name), false);
 * assert.throws(() => deleteNetns(".."), RangeError);
 * ```
 */
export function deleteNetns(name: string): boolean {
  checkName(name);
  const path = `${NETNS_RUN_DIR}/${name}`;
  if (!exists(path)) return false;
  const s = sys();
  const ret = s.umount2(path, MNT_DETACH);
  if (ret < 0 && ret !== -EINVAL) fail(`Cannot unmount network namespace "${name}"`, "umount2", ret);
  const gone = s.unlink(path);
  if (gone < 0 && gone !== -ENOENT) fail(`Cannot remove network namespace "${name}"`, "unlink", gone);
  return true;
}

/**
 * Runs `fn` with the calling thread switched into `ns`, and switches back
 * afterwards, also when `fn` throws.
 *
 * Sockets (netlink included) opened inside stay in `ns` for their whole
 * life, so open them here and use them anywhere. `fn` must be
 * synchronous: anything awaited would run after the switch back.
 *
 * @typeParam T The callback's result.
 * @param ns The namespace to enter.
 * @param fn The code to run inside it.
 * @returns What `fn` returned.
 * @throws {TypeError} When `fn` returns a promise (the thread was already switched back).
 * @throws {SyscallError} When `setns(2)` fails.
 * @capability CAP_SYS_ADMIN
 * @example Interface indexes inside another namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createNetns, deleteNetns, interfaceIndex, withNetns } from "@dp/core";
 *
 * const name = `dp-doc-with-${process.pid}`;
 * using ns = createNetns(name);
 * try {
 *   // A new namespace has only lo, whose index is 1.
 *   assert.equal(withNetns(ns, () => interfaceIndex("lo")), 1);
 * } finally {
 *   deleteNetns(name);
 * }
 * ```
 */
export function withNetns<T>(ns: Netns, fn: () => T): T {
  const s = sys();
  using origin = currentNetns();
  const ret = s.setns(rawFd(ns.fd), CLONE_NEWNET);
  if (ret < 0) fail(`Cannot enter network namespace "${ns.name ?? ns.path}"`, "setns", ret);
  let result: T;
  try {
    result = fn();
  } finally {
    const back = s.setns(rawFd(origin.fd), CLONE_NEWNET);
    if (back < 0) fail(`Cannot return from network namespace "${ns.name ?? ns.path}"`, "setns", back);
  }
  if (typeof (result as { then?: unknown } | null)?.then === "function") {
    (result as PromiseLike<unknown>).then(undefined, () => {});
    throw new TypeError("withNetns() runs synchronous callbacks only: the callback returned a promise");
  }
  return result;
}
