// Cgroup attachments through bpf_link (Linux 5.7+): sock_ops, cgroup_skb,
// sock_addr, sock, sockopt, sysctl and device hooks; and finding or
// mounting the cgroup v2 hierarchy they need.
import { type BpfLink, BpfProgram, ClosedError, createLink, type ProgramType, SyscallError, unpin } from "@dp/core";
import { sys } from "@dp/core/internal";
import type { Link } from "./link.ts";
import { readProc } from "./_proc.ts";

/**
 * A cgroup hook, named as its `BPF_CGROUP_*` attach type in camelCase:
 * `"cgroupSockOps"` (sock_ops), `"cgroupInetIngress"`/`"cgroupInetEgress"`
 * (cgroup_skb), `"cgroupInet4Connect"` and the other sock_addr hooks,
 * `"cgroupInetSockCreate"` and the other sock hooks, `"cgroupGetsockopt"`,
 * `"cgroupSetsockopt"`, `"cgroupSysctl"` and `"cgroupDevice"`.
 *
 * @useDeclaredType
 */
export type CgroupAttachType =
  | "cgroupInetIngress"
  | "cgroupInetEgress"
  | "cgroupInetSockCreate"
  | "cgroupInetSockRelease"
  | "cgroupInet4PostBind"
  | "cgroupInet6PostBind"
  | "cgroupSockOps"
  | "cgroupInet4Bind"
  | "cgroupInet6Bind"
  | "cgroupInet4Connect"
  | "cgroupInet6Connect"
  | "cgroupUdp4Sendmsg"
  | "cgroupUdp6Sendmsg"
  | "cgroupUdp4Recvmsg"
  | "cgroupUdp6Recvmsg"
  | "cgroupInet4Getpeername"
  | "cgroupInet6Getpeername"
  | "cgroupInet4Getsockname"
  | "cgroupInet6Getsockname"
  | "cgroupUnixConnect"
  | "cgroupUnixSendmsg"
  | "cgroupUnixRecvmsg"
  | "cgroupUnixGetpeername"
  | "cgroupUnixGetsockname"
  | "cgroupDevice"
  | "cgroupSysctl"
  | "cgroupGetsockopt"
  | "cgroupSetsockopt";

/** The program type each cgroup hook runs. */
const CGROUP_HOOKS: Readonly<Record<CgroupAttachType, ProgramType>> = {
  cgroupInetIngress: "cgroupSkb",
  cgroupInetEgress: "cgroupSkb",
  cgroupInetSockCreate: "cgroupSock",
  cgroupInetSockRelease: "cgroupSock",
  cgroupInet4PostBind: "cgroupSock",
  cgroupInet6PostBind: "cgroupSock",
  cgroupSockOps: "sockOps",
  cgroupInet4Bind: "cgroupSockAddr",
  cgroupInet6Bind: "cgroupSockAddr",
  cgroupInet4Connect: "cgroupSockAddr",
  cgroupInet6Connect: "cgroupSockAddr",
  cgroupUdp4Sendmsg: "cgroupSockAddr",
  cgroupUdp6Sendmsg: "cgroupSockAddr",
  cgroupUdp4Recvmsg: "cgroupSockAddr",
  cgroupUdp6Recvmsg: "cgroupSockAddr",
  cgroupInet4Getpeername: "cgroupSockAddr",
  cgroupInet6Getpeername: "cgroupSockAddr",
  cgroupInet4Getsockname: "cgroupSockAddr",
  cgroupInet6Getsockname: "cgroupSockAddr",
  cgroupUnixConnect: "cgroupSockAddr",
  cgroupUnixSendmsg: "cgroupSockAddr",
  cgroupUnixRecvmsg: "cgroupSockAddr",
  cgroupUnixGetpeername: "cgroupSockAddr",
  cgroupUnixGetsockname: "cgroupSockAddr",
  cgroupDevice: "cgroupDevice",
  cgroupSysctl: "cgroupSysctl",
  cgroupGetsockopt: "cgroupSockopt",
  cgroupSetsockopt: "cgroupSockopt",
};

/** Program types that must have been loaded for exactly the hook they attach to. */
const EXPECTED_ENFORCED: ReadonlySet<ProgramType> = new Set(["cgroupSock", "cgroupSockAddr", "cgroupSockopt"]);

const CGROUP2_SUPER_MAGIC = 0x63677270;
const SYSFS_MAGIC = 0x62656572;
const TMPFS_MAGIC = 0x01021994;
const MS_NOSUID = 2;
const MS_NODEV = 4;
const MS_NOEXEC = 8;
const EBADF = 9;
const ENOENT = 2;
const EPERM = 1;
const DEFAULT_ROOT = "/sys/fs/cgroup";
/** Where systemd's hybrid layout mounts cgroup2 next to the v1 hierarchies. */
const HYBRID_ROOT = "/sys/fs/cgroup/unified";

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return v === null ? "null" : typeof v;
}

function checkPath(path: unknown, what: string): asserts path is string {
  if (typeof path !== "string") throw new TypeError(`${what}: the path must be a string, got ${describe(path)}`);
  if (!path.startsWith("/") || path.includes("\0"))
    throw new RangeError(`${what}: the path must be absolute, got ${JSON.stringify(path)}`);
}

function programText(program: BpfProgram): string {
  return program.name === "" ? `${program.type} program` : `${program.type} program "${program.name}"`;
}

/** Checks that `program` may run on the hook (no system call). */
function checkProgram(program: unknown, attachType: CgroupAttachType, what: string): asserts program is BpfProgram {
  if (!(program instanceof BpfProgram)) throw new TypeError(`${what}: expected a BpfProgram, got ${describe(program)}`);
  const type = CGROUP_HOOKS[attachType];
  if (program.type !== type) throw new TypeError(`${what}: "${attachType}" runs ${type} programs, not ${program.type}`);
  // The kernel fills in cgroupInetSockCreate for cgroup_sock programs loaded without one.
  const expected = program.expectedAttachType ?? (type === "cgroupSock" ? "cgroupInetSockCreate" : undefined);
  if (expected !== undefined && expected !== attachType && (EXPECTED_ENFORCED.has(type) || type === "cgroupSkb")) {
    throw new TypeError(`${what}: the program was loaded for "${expected}"`);
  }
}

function checkAttachType(attachType: unknown, what: string): asserts attachType is CgroupAttachType {
  if (typeof attachType !== "string" || !Object.hasOwn(CGROUP_HOOKS, attachType)) {
    throw new TypeError(
      `${what}: ${describe(attachType)} is not a cgroup hook (such as "cgroupSockOps" or "cgroupInetEgress")`,
    );
  }
}

interface CgroupLinkInit {
  readonly path: string;
  readonly attachType: CgroupAttachType;
  readonly programId: number;
  readonly cgroupId: bigint;
  readonly link: BpfLink;
}

/**
 * A program attached to a cgroup through a bpf_link by
 * {@link attachCgroup}. It runs for the sockets (or devices, sysctls) of
 * the cgroup and its descendants, alongside other programs on the same hook.
 *
 * `detach()` removes exactly this attachment (and its pin) and is
 * idempotent; `close()` releases the handle, which detaches unless the link
 * is pinned; `[Symbol.dispose]` detaches, except a pinned link, which it
 * only closes.
 *
 * @example A sock_ops program for the sockets of one cgroup
 * ```ts no-run
 * import type { BpfProgram } from "@dp/core";
 * import { attachCgroup } from "@dp/hooks";
 *
 * declare const sockOps: BpfProgram;
 * using link = attachCgroup("/sys/fs/cgroup/app", sockOps, "cgroupSockOps");
 * console.log(link.cgroupId);
 * ```
 */
export class CgroupLink implements Link {
  /** Always `"cgroup"`. */
  readonly kind = "cgroup" as const;
  /** The cgroup directory. */
  readonly path: string;
  /** The hook. */
  readonly attachType: CgroupAttachType;
  /** The cgroup's id (its inode number in cgroupfs), as `bpftool cgroup` and link info show it. */
  readonly cgroupId: bigint;
  #programId: number;
  #link: BpfLink | undefined;
  #attached = true;
  #pin: string | undefined;

  /**
   * Wraps a cgroup link.
   *
   * @internal Made by {@link attachCgroup}.
   * @param init The link and where it is.
   */
  constructor(init: CgroupLinkInit) {
    this.path = init.path;
    this.attachType = init.attachType;
    this.cgroupId = init.cgroupId;
    this.#programId = init.programId;
    this.#link = init.link;
  }

  /** The attached program's kernel id. */
  get programId(): number {
    return this.#programId;
  }

  /** Whether this handle holds the attachment: not detached or closed. */
  get attached(): boolean {
    return this.#attached && this.#link !== undefined;
  }

  /** Whether the handle was released by {@link CgroupLink.close} or {@link CgroupLink.detach}. */
  get closed(): boolean {
    return this.#link === undefined;
  }

  /** The bpf_link id while the handle is open. */
  get linkId(): number | undefined {
    return this.#link?.id;
  }

  /** The pin path, when {@link CgroupLink.pin} pinned the link. */
  get pinned(): string | undefined {
    return this.#pin;
  }

  /**
   * Replaces the program atomically (`BPF_LINK_UPDATE`), keeping its place
   * among the hook's programs.
   *
   * @param program The new program, of the type the hook runs.
   * @throws {TypeError} When the program cannot run on the hook (before any system call).
   * @throws {ClosedError} When the handle was released.
   * @throws {SyscallError} When the kernel refuses the update.
   */
  update(program: BpfProgram): void {
    const what = `Cannot update the "${this.attachType}" link of cgroup "${this.path}"`;
    checkProgram(program, this.attachType, what);
    const link = this.#link;
    if (link === undefined || !this.#attached)
      throw new ClosedError(`"${this.attachType}" link of cgroup "${this.path}"`);
    const id = program.info().id;
    link.update(program);
    this.#programId = id;
  }

  /**
   * Removes the attachment now (`BPF_LINK_DETACH`, also when pinned),
   * removes the pin this handle made and closes the handle. Calling it
   * again does nothing.
   *
   * @throws {SyscallError} When the kernel refuses.
   */
  detach(): void {
    const link = this.#link;
    if (link !== undefined && this.#attached) {
      link.detach();
      if (this.#pin !== undefined) unpin(this.#pin);
      this.#pin = undefined;
    }
    this.#attached = false;
    this.close();
  }

  /**
   * Pins the link on bpffs: the attachment then outlives this process
   * until it is unpinned or detached.
   *
   * @param path An absolute path on bpffs.
   * @throws {ClosedError} When the handle was released.
   * @throws {SyscallError} EEXIST when the path is taken.
   */
  pin(path: string): void {
    const link = this.#link;
    if (link === undefined) throw new ClosedError(`"${this.attachType}" link of cgroup "${this.path}"`);
    link.pin(path);
    this.#pin = path;
  }

  /**
   * Removes the pin made by {@link CgroupLink.pin}.
   *
   * @returns Whether there was a pin to remove.
   * @throws {SyscallError} When the pin cannot be removed.
   */
  unpin(): boolean {
    const path = this.#pin;
    if (path === undefined) return false;
    this.#pin = undefined;
    return unpin(path);
  }

  /**
   * Releases the handle: the kernel detaches the program unless the link
   * is pinned (or held elsewhere). Calling it again does nothing.
   */
  close(): void {
    const link = this.#link;
    if (link === undefined) return;
    this.#link = undefined;
    if (this.#pin === undefined) this.#attached = false;
    link.close();
  }

  /** Detaches, unless the link is pinned; then only closes the handle. */
  [Symbol.dispose](): void {
    if (this.#pin !== undefined) this.close();
    else this.detach();
  }
}

/**
 * Attaches a program to a cgroup v2 directory through a bpf_link
 * (`BPF_LINK_CREATE`). Several programs may share a hook (each link adds
 * one); the attachment ends with the link (see {@link CgroupLink}).
 *
 * Program types and hooks must match: sock_ops runs on `"cgroupSockOps"`,
 * cgroup_skb on `"cgroupInetIngress"`/`"cgroupInetEgress"`, sock_addr,
 * sock and sockopt programs only on the hook they were loaded for
 * (`expectedAttachType`).
 *
 * @param path The cgroup directory, on the cgroup2 hierarchy (see {@link findCgroup2Mount}).
 * @param program The program.
 * @param attachType The hook.
 * @returns The attachment.
 * @throws {TypeError} Before any system call, when the hook is unknown or the program cannot run on it.
 * @throws {RangeError} Before any system call, when the path is not absolute.
 * @throws {SyscallError} ENOENT when the directory does not exist, EBADF when it is not a cgroup v2 directory, EPERM without privileges.
 * @kernel 5.7 cgroup bpf_links
 * @capability CAP_NET_ADMIN
 * @capability CAP_BPF
 * @example Attaching a sock_ops program to a new cgroup
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { mkdirSync, rmdirSync } from "node:fs";
 * import { loadProgram } from "@dp/core";
 * import { attachCgroup, findCgroup2Mount } from "@dp/hooks";
 *
 * const root = findCgroup2Mount();
 * if (root !== undefined) {
 *   const dir = `${root}/dp-doc-${process.pid}`;
 *   mkdirSync(dir);
 *   // r0 = 1; exit
 *   using prog = loadProgram({ type: "sockOps", license: "GPL", instructions: new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]) });
 *   {
 *     using link = attachCgroup(dir, prog, "cgroupSockOps");
 *     assert.equal(link.programId, prog.info().id);
 *   }
 *   rmdirSync(dir);
 * }
 * ```
 */
export function attachCgroup(path: string, program: BpfProgram, attachType: CgroupAttachType): CgroupLink {
  const label = program instanceof BpfProgram ? programText(program) : "program";
  const what = `Cannot attach ${label} to cgroup ${describe(path)} as ${describe(attachType)}`;
  checkPath(path, what);
  checkAttachType(attachType, what);
  checkProgram(program, attachType, what);
  if (program.closed) throw new ClosedError(label);
  const id = program.info().id;
  let link: BpfLink;
  try {
    link = createLink(program, { path }, attachType);
  } catch (err) {
    if (!(err instanceof SyscallError)) throw err;
    let hint = err.hint;
    if (err.errno === EBADF) {
      const root = findCgroup2Mount();
      hint = `${JSON.stringify(path)} is not a cgroup v2 directory: use one under ${root === undefined ? "a cgroup2 mount (mountCgroup2())" : JSON.stringify(root)}`;
    } else if (err.errno === ENOENT) {
      hint = "no such cgroup directory";
    }
    throw new SyscallError(what, { syscall: err.syscall, op: err.op, errno: err.errno, hint, cause: err });
  }
  try {
    const info = link.info();
    return new CgroupLink({ path, attachType, programId: id, cgroupId: info.cgroupId ?? 0n, link });
  } catch (err) {
    link.close();
    throw err;
  }
}

/** Undoes the octal escapes (`\040` for a space) of /proc/self/mountinfo. */
function unescapeMountPath(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

/**
 * Finds the cgroup2 mount points in the text of `/proc/self/mountinfo`.
 *
 * @internal Exported for tests.
 * @param mountinfo The file's text.
 * @returns The mount points of cgroup2 file systems, whole-hierarchy mounts first.
 */
export function parseCgroup2Mounts(mountinfo: string): string[] {
  const whole: string[] = [];
  const partial: string[] = [];
  for (const line of mountinfo.split("\n")) {
    const sep = line.indexOf(" - ");
    if (sep < 0) continue;
    const fields = line.slice(0, sep).split(" ");
    const fstype = line.slice(sep + 3).split(" ")[0];
    const root = fields[3];
    const mountPoint = fields[4];
    if (fstype !== "cgroup2" || mountPoint === undefined) continue;
    (root === "/" ? whole : partial).push(unescapeMountPath(mountPoint));
  }
  return [...whole, ...partial];
}

/**
 * Finds where the cgroup v2 hierarchy is mounted, from
 * `/proc/self/mountinfo`: `/sys/fs/cgroup` on unified hosts,
 * `/sys/fs/cgroup/unified` on systemd's hybrid layout.
 *
 * @returns The mount point, or `undefined` when cgroup2 is not mounted.
 * @throws {SyscallError} When `/proc/self/mountinfo` cannot be read.
 * @example Finding the hierarchy
 * ```ts
 * import assert from "node:assert/strict";
 * import { findCgroup2Mount } from "@dp/hooks";
 *
 * const root = findCgroup2Mount();
 * assert.ok(root === undefined || root.startsWith("/"));
 * ```
 */
export function findCgroup2Mount(): string | undefined {
  return parseCgroup2Mounts(readProc("/proc/self/mountinfo"))[0];
}

function mountError(what: string, syscall: string, ret: number, hint?: string): SyscallError {
  return new SyscallError(what, {
    syscall,
    op: syscall,
    errno: -ret,
    hint:
      hint ??
      (-ret === EPERM ? "mounting needs CAP_SYS_ADMIN" : -ret === ENOENT ? "create the directory first" : undefined),
  });
}

/**
 * Mounts the cgroup v2 hierarchy (cgroup BPF programs attach only there)
 * unless it is mounted.
 *
 * Without a path: does nothing when cgroup2 is mounted anywhere; otherwise
 * mounts it on `/sys/fs/cgroup`, or on `/sys/fs/cgroup/unified` when cgroup
 * v1 hierarchies occupy `/sys/fs/cgroup` (a tmpfs). With a path: mounts it
 * there unless that directory already is on cgroup2. The directory must
 * exist.
 *
 * @param path The mount point.
 * @returns `true` when this call mounted cgroup2, `false` when it was there.
 * @throws {RangeError} When the path is not absolute.
 * @throws {SyscallError} ENOENT when the directory does not exist; EPERM without CAP_SYS_ADMIN; ENOTSUP when `/sys/fs/cgroup` holds an unexpected file system.
 * @capability CAP_SYS_ADMIN
 * @example Making sure cgroup2 is available
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { findCgroup2Mount, mountCgroup2 } from "@dp/hooks";
 *
 * mountCgroup2();
 * assert.notEqual(findCgroup2Mount(), undefined);
 * ```
 */
export function mountCgroup2(path?: string): boolean {
  const s = sys();
  let target: string;
  if (path === undefined) {
    if (findCgroup2Mount() !== undefined) return false;
    const kind = s.statfsType(DEFAULT_ROOT);
    if (kind < 0) throw mountError(`Cannot mount cgroup2 on "${DEFAULT_ROOT}"`, "statfs", kind);
    if (kind === SYSFS_MAGIC || kind === CGROUP2_SUPER_MAGIC) target = DEFAULT_ROOT;
    else if (kind === TMPFS_MAGIC) target = HYBRID_ROOT;
    else {
      throw new SyscallError(`Cannot mount cgroup2 on "${DEFAULT_ROOT}"`, {
        syscall: "statfs",
        op: "statfs",
        errno: 95,
        hint: `an unexpected file system (magic 0x${kind.toString(16)}) is mounted there: pass a directory`,
      });
    }
  } else {
    checkPath(path, "Cannot mount cgroup2");
    target = path;
  }
  const kind = s.statfsType(target);
  if (kind === CGROUP2_SUPER_MAGIC) return false;
  if (kind < 0) throw mountError(`Cannot mount cgroup2 on "${target}"`, "statfs", kind);
  const ret = s.mount("cgroup2", target, "cgroup2", MS_NOSUID | MS_NODEV | MS_NOEXEC, null);
  if (ret < 0) throw mountError(`Cannot mount cgroup2 on "${target}"`, "mount", ret);
  return true;
}
