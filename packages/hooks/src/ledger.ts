// The ownership ledger: the attachments an application made that outlive
// its process (netlink tc filters, netlink XDP programs, pinned bpf_links),
// recorded on bpffs so that a restarted process can take them over or
// remove them, and never touch anyone else's.
//
// bpffs holds only pins, so each entry is a pin whose name says where the
// attachment is: the attached program for netlink attachments (ownership is
// then checked by program id), the link itself for bpf_links. bpffs
// directories cannot be listed through the core gateway, so a pinned hash
// map (`index`) lists the entry names; it is written before a pin is made
// and after one is removed, so a crash leaves at worst a name without a
// pin, which reconcile() drops.
//
// Netlink attachments are recorded before the attach request, as pending
// entries (the place's name with `-next`, pinning the program to attach),
// and committed after it: the pin is renamed over the place's name, then the
// pending name is dropped. Whatever system call a crash interrupts, every
// program attached by the process is pinned under a name for its place, so
// reconcile() finds it; entries whose place does not run their program are
// forgotten.
import {
  type BpfLink,
  type BpfMap,
  type BpfProgram,
  createMap,
  currentNetns,
  DEFAULT_BPFFS,
  isBpffs,
  MAP_FLAGS,
  mountBpffs,
  type Netns,
  openNetlink,
  openNetns,
  openPinnedLink,
  openPinnedMap,
  openPinnedProgram,
  isNotSupported,
  NLM_F,
  SyscallError,
  unpin,
  XDP_FLAGS,
} from "@dp/core";
import { IFLA, IFLA_XDP, RTM, rawFd, renamePin, sys } from "@dp/core/internal";
import type { Link, LinkKind } from "./link.ts";
import { fdInode, readProc } from "./_proc.ts";
import { deleteTcFilter, encodeFilterAdd, findTcFilter } from "./_tc_netlink.ts";
import { detachXdpNetlink, xdpState } from "./_xdp_netlink.ts";

const INDEX = "index";
const KEY_SIZE = 64;
const VALUE_SIZE = 16;
const MAX_ENTRIES = 4096;
const ENOENT = 2;
const EACCES = 13;
const E2BIG = 7;
const EEXIST = 17;
const ENODEV = 19;
const EOPNOTSUPP = 95;

const TC_NAME = /^tc-(\d+)-(\d+)-(ingress|egress)-(\d+)-([0-9a-f]{8})(-next)?$/;
const XDP_NAME = /^xdp-(\d+)-(\d+)-(skb|drv|hw)(-next)?$/;
/** The suffix of a pending entry's name: recorded before the attach request, committed after it. */
const PENDING = "-next";
const LINK_NAME = /^link-([A-Za-z0-9_-]{1,59})$/;
const ENTRY_NAME = /^[A-Za-z0-9_-]{1,59}$/;

/** Where a netlink cls_bpf filter sits. */
export interface TcPlace {
  /** The network namespace's inode number (see {@link netnsInode}). */
  readonly netnsInode: number;
  /** The interface index in that namespace. */
  readonly ifindex: number;
  /** The interface name when the filter was attached, for messages; at most 15 bytes. */
  readonly ifname: string;
  /** The clsact hook. */
  readonly direction: "ingress" | "egress";
  /** The filter priority, 1-65535. */
  readonly priority: number;
  /** The filter handle, 1-0xffffffff. */
  readonly handle: number;
}

/** Where an XDP program set through netlink sits. */
export interface XdpPlace {
  /** The network namespace's inode number (see {@link netnsInode}). */
  readonly netnsInode: number;
  /** The interface index in that namespace. */
  readonly ifindex: number;
  /** The interface name when the program was attached, for messages; at most 15 bytes. */
  readonly ifname: string;
  /** The XDP mode the program runs in (never "auto": the mode the kernel chose). */
  readonly mode: "skb" | "drv" | "hw";
}

/** A netlink tc filter recorded in a {@link Ledger}. */
export interface TcLedgerEntry extends TcPlace {
  /** The entry kind. */
  readonly kind: "tc";
  /** The recorded program's kernel id; 0 when its pin is missing (a name left by a crash). */
  readonly programId: number;
  /** The pin that holds the attached program, such as `/sys/fs/bpf/app/tc-4026531833-2-ingress-1-00000001`. */
  readonly path: string;
  /**
   * Whether the entry is pending: recorded before the attach request and not
   * yet committed (its pin name ends in `-next`). A process that died between
   * the two leaves it behind; {@link reconcile} treats it like any entry.
   */
  readonly pending: boolean;
}

/** An XDP program set through netlink, recorded in a {@link Ledger}. */
export interface XdpLedgerEntry extends XdpPlace {
  /** The entry kind. */
  readonly kind: "xdpNetlink";
  /** The recorded program's kernel id; 0 when its pin is missing (a name left by a crash). */
  readonly programId: number;
  /** The pin that holds the attached program, such as `/sys/fs/bpf/app/xdp-4026531833-2-skb`. */
  readonly path: string;
  /** Whether the entry is pending (see {@link TcLedgerEntry.pending}). */
  readonly pending: boolean;
}

/** Options for {@link Ledger.recordTc} and {@link Ledger.recordXdp}. */
export interface RecordOptions {
  /**
   * Record the entry as pending, under the place's name with `-next`:
   * before the attach request, so that a process killed at any point of the
   * attach leaves an entry {@link reconcile} can act on. {@link Ledger.commit}
   * turns it into the place's entry once the kernel has the attachment.
   *
   * @default false
   */
  readonly pending?: boolean;
}

/** A bpf_link pinned in a {@link Ledger}. */
export interface LinkLedgerEntry {
  /** The entry kind. */
  readonly kind: "link";
  /** The name the link was recorded under. */
  readonly name: string;
  /** The pin that holds the link, such as `/sys/fs/bpf/app/link-NAME`. */
  readonly path: string;
}

/**
 * One attachment recorded in a {@link Ledger}: a netlink tc filter, a
 * netlink XDP program, or a pinned bpf_link.
 */
export type LedgerEntry = TcLedgerEntry | XdpLedgerEntry | LinkLedgerEntry;

/**
 * A link that {@link Ledger.recordLink} can pin: a `BpfLink` from
 * `@dp/core`, or a hook {@link Link} held by a bpf_link (kind `"tcx"`,
 * `"xdp"` or `"cgroup"`) that can pin itself.
 */
export type PinnableLink =
  | BpfLink
  | (Link & {
      /**
       * Pins the link on bpffs.
       *
       * @param path An absolute path on bpffs.
       */
      pin(path: string): void;
    });

const LINK_KINDS: Readonly<Record<string, LinkKind>> = { tcx: "tcx", xdp: "xdp", cgroup: "cgroup", sockmap: "sockmap" };

function encodeText(text: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  const bytes = new TextEncoder().encode(text);
  out.set(bytes.subarray(0, size - 1));
  return out;
}

function decodeText(bytes: Uint8Array): string {
  const end = bytes.indexOf(0);
  return new TextDecoder().decode(end < 0 ? bytes : bytes.subarray(0, end));
}

function checkInteger(value: unknown, name: string, min: number, max: number, what: string): void {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what}: ${name} must be an integer in ${min}-${max}, got ${String(value)}`);
  }
}

function checkCommonPlace(place: TcPlace | XdpPlace, what: string): void {
  if (typeof place !== "object" || place === null) throw new TypeError(`${what}: the place must be an object`);
  checkInteger(place.netnsInode, "netnsInode", 1, Number.MAX_SAFE_INTEGER, what);
  checkInteger(place.ifindex, "ifindex", 1, 0x7fff_ffff, what);
  if (typeof place.ifname !== "string" || new TextEncoder().encode(place.ifname).length > VALUE_SIZE - 1) {
    throw new TypeError(`${what}: ifname must be a string of at most ${VALUE_SIZE - 1} bytes`);
  }
}

function checkTcPlace(place: TcPlace, what: string): void {
  checkCommonPlace(place, what);
  if (place.direction !== "ingress" && place.direction !== "egress") {
    throw new TypeError(`${what}: direction must be "ingress" or "egress", got ${JSON.stringify(place.direction)}`);
  }
  checkInteger(place.priority, "priority", 1, 0xffff, what);
  checkInteger(place.handle, "handle", 1, 0xffff_ffff, what);
}

function checkXdpPlace(place: XdpPlace, what: string): void {
  checkCommonPlace(place, what);
  if (place.mode !== "skb" && place.mode !== "drv" && place.mode !== "hw") {
    throw new TypeError(`${what}: mode must be "skb", "drv" or "hw", got ${JSON.stringify(place.mode)}`);
  }
}

function tcName(p: TcPlace): string {
  return `tc-${p.netnsInode}-${p.ifindex}-${p.direction}-${p.priority}-${p.handle.toString(16).padStart(8, "0")}`;
}

function xdpName(p: XdpPlace): string {
  return `xdp-${p.netnsInode}-${p.ifindex}-${p.mode}`;
}

function entryName(entry: LedgerEntry): string {
  switch (entry.kind) {
    case "tc":
      return tcName(entry) + (entry.pending ? PENDING : "");
    case "xdpNetlink":
      return xdpName(entry) + (entry.pending ? PENDING : "");
    case "link":
      return `link-${entry.name}`;
  }
}

/** Turns an index name back into an entry (program id still 0); undefined for a name this version does not write. */
function parseEntry(dir: string, name: string, ifname: string): LedgerEntry | undefined {
  const path = `${dir}/${name}`;
  let m = TC_NAME.exec(name);
  if (m !== null) {
    return {
      kind: "tc",
      path,
      programId: 0,
      netnsInode: Number(m[1]),
      ifindex: Number(m[2]),
      ifname,
      direction: m[3] as "ingress" | "egress",
      priority: Number(m[4]),
      handle: Number.parseInt(m[5] as string, 16),
      pending: m[6] !== undefined,
    };
  }
  m = XDP_NAME.exec(name);
  if (m !== null) {
    return {
      kind: "xdpNetlink",
      path,
      programId: 0,
      netnsInode: Number(m[1]),
      ifindex: Number(m[2]),
      ifname,
      mode: m[3] as "skb" | "drv" | "hw",
      pending: m[4] !== undefined,
    };
  }
  m = LINK_NAME.exec(name);
  if (m !== null) return { kind: "link", name: m[1] as string, path };
  return undefined;
}

function isErrno(err: unknown, errno: number): boolean {
  return err instanceof SyscallError && err.errno === errno;
}

/** Adds what the ledger was doing to a failed system call, keeping its errno; other errors pass unchanged. */
function wrap(err: unknown, what: string, hint?: string): unknown {
  if (err instanceof SyscallError) {
    return new SyscallError(what, {
      syscall: err.syscall,
      op: err.op,
      errno: err.errno,
      hint: hint ?? err.hint,
      cause: err,
    });
  }
  return err;
}

/**
 * A record, on bpffs, of the attachments an application made that outlive
 * its process: netlink tc filters, netlink XDP programs and pinned
 * bpf_links. `attachTc()` and `attachXdp()` record and forget their
 * netlink attachments when given `{ ledger }`; {@link reconcile} takes
 * over or removes what a crashed process left.
 *
 * Each entry is a pin in the ledger directory: the attached program (for
 * netlink attachments) or the link. A recorded program stays loaded until
 * its entry is forgotten. One ledger belongs to one application instance:
 * two live processes sharing a directory would reconcile each other's
 * attachments away.
 *
 * @example Recording a pinned link and listing it
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createLink, loadProgram, XDP_FLAGS } from "@dp/core";
 * import { openLedger } from "@dp/hooks";
 * import { bpffsDir, netns } from "@dp/core/testing";
 *
 * using dir = bpffsDir();
 * using ns = netns();
 * using ledger = openLedger(dir.join("ledger"));
 * using prog = loadProgram({
 *   type: "xdp", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * });
 * using link = ns.run(() => createLink(prog, { ifindex: 1 }, "xdp", { flags: XDP_FLAGS.skbMode }));
 * const entry = ledger.recordLink("lo-xdp", link);
 * assert.deepEqual(ledger.entries(), [entry]);
 * ledger.forget(entry);
 * ```
 */
export class Ledger {
  /** The ledger's directory on bpffs. */
  readonly path: string;
  #index: BpfMap;

  /**
   * Wraps an opened ledger.
   *
   * @internal Ledgers are opened by {@link openLedger}.
   * @param path The directory.
   * @param index The pinned index map, now owned by the ledger.
   */
  constructor(path: string, index: BpfMap) {
    this.path = path;
    this.#index = index;
  }

  /** Whether {@link Ledger.close} was called. */
  get closed(): boolean {
    return this.#index.closed;
  }

  /**
   * Records a netlink cls_bpf filter by pinning its program under a name
   * that says where the filter is. Recording the same place again replaces
   * the entry (after an in-place replace of the filter).
   *
   * `attachTc()` records the filter pending before its request and commits
   * it after, so a process killed at any point leaves an entry.
   *
   * @param place Namespace, interface, hook, priority and handle.
   * @param program The program the filter runs.
   * @param options Whether the entry is pending.
   * @returns The entry, for {@link Ledger.forget} on detach.
   * @throws {TypeError} When the place is malformed.
   * @throws {RangeError} When a number in it is out of range.
   * @throws {ClosedError} After `close()`.
   * @throws {SyscallError} When the index is full (E2BIG) or the program cannot be pinned.
   */
  recordTc(place: TcPlace, program: BpfProgram, options: RecordOptions = {}): TcLedgerEntry {
    const what = `Cannot record a tc filter in ledger "${this.path}"`;
    checkTcPlace(place, what);
    const pending = options.pending ?? false;
    const entry: TcLedgerEntry = {
      kind: "tc",
      path: `${this.path}/${tcName(place)}${pending ? PENDING : ""}`,
      programId: program.info().id,
      netnsInode: place.netnsInode,
      ifindex: place.ifindex,
      ifname: place.ifname,
      direction: place.direction,
      priority: place.priority,
      handle: place.handle,
      pending,
    };
    this.#record(entry, place.ifname, (path) => program.pin(path), true, what);
    return entry;
  }

  /**
   * Records an XDP program set through netlink by pinning it under a name
   * that says where it is attached. Recording the same place again
   * replaces the entry.
   *
   * `attachXdp()` records the program pending before its request (in each
   * mode the kernel may choose) and commits the entry of the mode it chose.
   *
   * @param place Namespace, interface and the mode the program runs in.
   * @param program The attached program.
   * @param options Whether the entry is pending.
   * @returns The entry, for {@link Ledger.forget} on detach.
   * @throws {TypeError} When the place is malformed.
   * @throws {RangeError} When a number in it is out of range.
   * @throws {ClosedError} After `close()`.
   * @throws {SyscallError} When the index is full (E2BIG) or the program cannot be pinned.
   */
  recordXdp(place: XdpPlace, program: BpfProgram, options: RecordOptions = {}): XdpLedgerEntry {
    const what = `Cannot record an XDP program in ledger "${this.path}"`;
    checkXdpPlace(place, what);
    const pending = options.pending ?? false;
    const entry: XdpLedgerEntry = {
      kind: "xdpNetlink",
      path: `${this.path}/${xdpName(place)}${pending ? PENDING : ""}`,
      programId: program.info().id,
      netnsInode: place.netnsInode,
      ifindex: place.ifindex,
      ifname: place.ifname,
      mode: place.mode,
      pending,
    };
    this.#record(entry, place.ifname, (path) => program.pin(path), true, what);
    return entry;
  }

  /**
   * Commits a pending entry once the kernel has the attachment: its pin
   * moves to the place's name (atomically replacing an earlier entry of the
   * place), then the pending name is dropped. At every step the ledger holds
   * an entry whose pin is the attached program, so a crash in between leaves
   * an attachment {@link reconcile} finds.
   *
   * @typeParam E The entry kind.
   * @param entry A pending entry of this ledger; a committed one is returned as it is.
   * @returns The committed entry.
   * @throws {TypeError} When the entry belongs to another ledger.
   * @throws {ClosedError} After `close()`.
   * @throws {SyscallError} When the index is full or the pin cannot be moved.
   */
  commit<E extends TcLedgerEntry | XdpLedgerEntry>(entry: E): E {
    const name = entryName(entry);
    if (entry.path !== `${this.path}/${name}`) {
      throw new TypeError(`Cannot commit "${String(entry.path)}": not an entry of ledger "${this.path}"`);
    }
    if (!entry.pending) return entry;
    const committed = { ...entry, pending: false, path: entry.path.slice(0, -PENDING.length) };
    const what = `Cannot commit "${entry.path}" in ledger "${this.path}"`;
    const key = encodeText(entryName(committed), KEY_SIZE);
    try {
      this.#index.set(key, encodeText(entry.ifname, VALUE_SIZE));
      renamePin(entry.path, committed.path);
    } catch (err) {
      throw wrap(err, what);
    }
    this.#index.delete(encodeText(name, KEY_SIZE));
    return committed;
  }

  /**
   * Pins a bpf_link in the ledger, so the attachment outlives the process
   * and a restarted one can adopt it ({@link reconcile}). The link stays
   * attached after `close()` until its entry is forgotten (the pin
   * removed) or it is detached.
   *
   * @param name The entry name: 1-59 characters of `[A-Za-z0-9_-]`.
   * @param link A `BpfLink` or a hook link held by a bpf_link.
   * @returns The entry.
   * @throws {RangeError} When the name is invalid.
   * @throws {TypeError} When the link is not held by a bpf_link (netlink attachments are recorded through the `ledger` option of `attachTc()`/`attachXdp()`).
   * @throws {ClosedError} After `close()`.
   * @throws {SyscallError} EEXIST when an entry with this name is recorded.
   */
  recordLink(name: string, link: PinnableLink): LinkLedgerEntry {
    const what = `Cannot record link "${String(name)}" in ledger "${this.path}"`;
    if (typeof name !== "string" || !ENTRY_NAME.test(name)) {
      throw new RangeError(`${what}: use 1-59 characters of [A-Za-z0-9_-]`);
    }
    const pinnable = link as { pin?: unknown; kind?: unknown };
    if (typeof link !== "object" || link === null || typeof pinnable.pin !== "function") {
      throw new TypeError(`${what}: not a link that can be pinned`);
    }
    if (
      typeof pinnable.kind === "string" &&
      pinnable.kind !== "tcx" &&
      pinnable.kind !== "xdp" &&
      pinnable.kind !== "cgroup"
    ) {
      throw new TypeError(
        `${what}: a "${pinnable.kind}" attachment is not a bpf_link; record netlink attachments with the ledger option of attachTc() or attachXdp()`,
      );
    }
    const entry: LinkLedgerEntry = { kind: "link", name, path: `${this.path}/link-${name}` };
    this.#record(entry, "", (path) => link.pin(path), false, what);
    return entry;
  }

  /**
   * Drops an entry without touching the attachment: removes the pin (a
   * pinned link goes away with it unless something else holds it) and the
   * index name. Detaching code calls it after removing the
   * attachment. Forgetting twice does nothing, and so does forgetting a
   * netlink entry whose place was recorded again since with another
   * program.
   *
   * @param entry An entry of this ledger.
   * @returns Whether the entry was recorded.
   * @throws {TypeError} When the entry belongs to another ledger.
   * @throws {ClosedError} After `close()`.
   * @throws {SyscallError} When the pin cannot be removed.
   */
  forget(entry: LedgerEntry): boolean {
    const name = entryName(entry);
    if (entry.path !== `${this.path}/${name}`) {
      throw new TypeError(`Cannot forget "${String(entry.path)}": not an entry of ledger "${this.path}"`);
    }
    const key = encodeText(name, KEY_SIZE);
    if (entry.kind !== "link" && entry.programId !== 0) {
      const now = pinnedProgramId(entry.path);
      if (now !== 0 && now !== entry.programId) return false;
    }
    const had = this.#index.has(key);
    const pinned = unpin(entry.path);
    this.#index.delete(key);
    return had || pinned;
  }

  /**
   * Lists the recorded entries.
   *
   * @returns The entries, in no particular order.
   * @throws {ClosedError} After `close()`.
   */
  entries(): LedgerEntry[] {
    const out: LedgerEntry[] = [];
    for (const [key, value] of this.#index.entries()) {
      const entry = parseEntry(this.path, decodeText(key), decodeText(value));
      if (entry === undefined) continue;
      out.push(entry.kind === "link" ? entry : { ...entry, programId: pinnedProgramId(entry.path) });
    }
    return out;
  }

  /** Closes the ledger's index; the entries stay recorded. Calling it again does nothing. */
  close(): void {
    this.#index.close();
  }

  /** Closes the ledger (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Writes the index name first, then the pin; undoes the name when pinning fails. */
  #record(entry: LedgerEntry, ifname: string, pin: (path: string) => void, replace: boolean, what: string): void {
    const key = encodeText(entryName(entry), KEY_SIZE);
    const had = this.#index.has(key);
    try {
      this.#index.set(key, encodeText(ifname, VALUE_SIZE));
    } catch (err) {
      throw wrap(err, what, isErrno(err, E2BIG) ? `the ledger holds ${MAX_ENTRIES} entries already` : undefined);
    }
    try {
      if (replace) unpin(entry.path);
      pin(entry.path);
    } catch (err) {
      if (!had) this.#index.delete(key);
      throw wrap(err, what, isErrno(err, EEXIST) ? "an entry with this name is recorded: forget it first" : undefined);
    }
  }
}

function nearestExisting(path: string): string {
  let p = path;
  while (p.length > 1 && sys().statfsType(p) === -ENOENT) p = p.slice(0, Math.max(1, p.lastIndexOf("/")));
  return p;
}

/**
 * Opens the ledger in a bpffs directory, creating the directory and its
 * index when missing. Under `/sys/fs/bpf`, bpffs is mounted first when
 * needed.
 *
 * @param dir An absolute path on bpffs, such as `/sys/fs/bpf/myapp/ledger`. bpffs refuses names with dots.
 * @returns The ledger; `close()` it (or `using`) when done, the entries stay.
 * @throws {TypeError} When `dir` is not absolute, is not on bpffs, or holds something else than a ledger index.
 * @throws {SyscallError} When the directory cannot be looked at or created (EACCES without root, with a hint).
 * @throws {SyscallError} When the index cannot be created or pinned (EPERM without CAP_BPF).
 * @capability CAP_BPF
 * @example Opening an application's ledger at start-up
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openLedger, reconcile } from "@dp/hooks";
 * import { bpffsDir } from "@dp/core/testing";
 *
 * using dir = bpffsDir();
 * using ledger = openLedger(dir.join("ledger"));
 * const result = reconcile(ledger);
 * assert.deepEqual(result.removed, []);
 * ```
 */
export function openLedger(dir: string): Ledger {
  const what = `Cannot open ledger "${String(dir)}"`;
  if (typeof dir !== "string" || !dir.startsWith("/") || dir.length < 2) {
    throw new TypeError(`${what}: use an absolute path on bpffs`);
  }
  const path = dir.replace(/\/+$/, "");
  if (path === DEFAULT_BPFFS || path.startsWith(`${DEFAULT_BPFFS}/`)) mountBpffs();
  const probe = nearestExisting(path);
  if (!isBpffs(probe)) {
    // statfs failing for another reason than ENOENT (EACCES in a 0700
    // bpffs directory without root) is that error, not "not on bpffs".
    const t = sys().statfsType(probe);
    if (t < 0) {
      throw new SyscallError(`${what}: cannot look at "${probe}"`, {
        syscall: "statfs",
        op: "statfs",
        errno: -t,
        hint: -t === EACCES ? "bpffs directories are usually mode 0700: run as root" : undefined,
      });
    }
    throw new TypeError(`${what}: not on bpffs (mount one with mountBpffs())`);
  }
  const indexPath = `${path}/${INDEX}`;
  for (let attempt = 0; ; attempt++) {
    let index: BpfMap;
    try {
      index = openPinnedMap(indexPath);
    } catch (err) {
      if (err instanceof SyscallError && err.errno !== ENOENT) throw wrap(err, what);
      // Something else than a map is pinned there.
      if (!(err instanceof SyscallError))
        throw new TypeError(`${what}: "${indexPath}" is not a ledger index`, { cause: err });
      index = createMap({
        name: "dp_ledger",
        type: "hash",
        keySize: KEY_SIZE,
        valueSize: VALUE_SIZE,
        maxEntries: MAX_ENTRIES,
        flags: MAP_FLAGS.noPrealloc,
      });
      try {
        index.pin(indexPath);
      } catch (pinErr) {
        index.close();
        // Another process created it meanwhile: open theirs.
        if (isErrno(pinErr, EEXIST) && attempt < 2) continue;
        throw wrap(pinErr, what);
      }
    }
    if (index.type !== "hash" || index.keySize !== KEY_SIZE || index.valueSize !== VALUE_SIZE) {
      index.close();
      throw new TypeError(`${what}: "${indexPath}" is not a ledger index`);
    }
    return new Ledger(path, index);
  }
}

/**
 * Returns the inode number of a network namespace: its identity, as
 * `ls -iL /proc/self/ns/net`, `ip netns identify` and `bpftool` use it.
 * Ledger entries name namespaces by it.
 *
 * @param netns The namespace, default the calling thread's.
 * @returns The inode number.
 * @throws {NotSupportedError} On kernels before 5.14, whose fdinfo lacks it.
 * @throws {SyscallError} When /proc cannot be read.
 * @example The current namespace keeps its identity
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { netnsInode } from "@dp/hooks";
 *
 * assert.equal(netnsInode(), netnsInode());
 * assert.ok(netnsInode() > 0);
 * ```
 */
export function netnsInode(netns?: Netns): number {
  if (netns !== undefined) return fdInode(netns.fd);
  const current = currentNetns();
  try {
    return fdInode(current.fd);
  } finally {
    current.close();
  }
}

/** Undoes the octal escapes of /proc/self/mountinfo paths (`\040` for a space). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/**
 * Opens the network namespace with this inode: the calling thread's, or
 * one bind-mounted somewhere (`/run/netns/NAME`, container runtimes'
 * directories), found through /proc/self/mountinfo.
 */
function findNetns(inode: number): Netns | undefined {
  const current = currentNetns();
  if (fdInode(current.fd) === inode) return current;
  current.close();
  const root = `net:[${inode}]`;
  for (const line of readProc("/proc/self/mountinfo").split("\n")) {
    const fields = line.split(" ");
    const sep = fields.indexOf("-");
    if (sep < 0 || fields[sep + 1] !== "nsfs" || fields[3] !== root || fields[4] === undefined) continue;
    let ns: Netns;
    try {
      ns = openNetns(unescapeMountPath(fields[4]));
    } catch (err) {
      if (isErrno(err, ENOENT)) continue;
      throw err;
    }
    if (fdInode(ns.fd) === inode) return ns;
    ns.close();
  }
  return undefined;
}

function openProgram(path: string): BpfProgram | undefined {
  try {
    return openPinnedProgram(path);
  } catch (err) {
    if (isErrno(err, ENOENT)) return undefined;
    throw err;
  }
}

/** The id of the program pinned at `path`, 0 when nothing is pinned there. */
function pinnedProgramId(path: string): number {
  const program = openProgram(path);
  if (program === undefined) return 0;
  try {
    return program.info().id;
  } finally {
    program.close();
  }
}

/** Shared by the links {@link reconcile} adopts for netlink attachments: the namespace handle and the ledger entry. */
abstract class AdoptedNetlinkLink<E extends TcLedgerEntry | XdpLedgerEntry> {
  #entry: E;
  protected readonly ledger: Ledger;
  protected readonly netns: Netns;
  #attached = true;

  constructor(entry: E, ledger: Ledger, netns: Netns) {
    this.#entry = entry;
    this.ledger = ledger;
    this.netns = netns;
  }

  /** The ledger entry, re-recorded by `update()`. */
  get entry(): E {
    return this.#entry;
  }

  /** The attached program's kernel id (follows `update()`). */
  get programId(): number {
    return this.entry.programId;
  }

  /** Whether the attachment is held: false after `detach()` or `close()`. */
  get attached(): boolean {
    return this.#attached;
  }

  /** Removes the attachment while it still runs our program, and forgets its entry. Idempotent. */
  detach(): void {
    if (!this.#attached) return;
    try {
      this.remove();
    } catch (err) {
      // The interface is gone, and what was attached to it with it.
      if (!isErrno(err, ENODEV)) throw err;
    }
    this.#attached = false;
    if (this.ledger.closed) unpin(this.entry.path);
    else this.ledger.forget(this.entry);
    this.netns.close();
  }

  /** Lets go of the handle, leaving the attachment and its entry in place. Idempotent. */
  close(): void {
    this.#attached = false;
    this.netns.close();
  }

  /** Detaches. */
  [Symbol.dispose](): void {
    this.detach();
  }

  protected check(what: string): void {
    if (!this.#attached) throw new TypeError(`${what}: the attachment was detached or closed`);
  }

  protected rerecord(program: BpfProgram): void {
    const old = this.#entry;
    this.#entry = this.ledger.closed ? { ...old, programId: program.info().id } : this.record(program);
  }

  protected abstract remove(): void;
  protected abstract record(program: BpfProgram): E;
}

/** A netlink cls_bpf filter that {@link reconcile} took over from a previous process. */
class AdoptedTcLink extends AdoptedNetlinkLink<TcLedgerEntry> implements AdoptedLink {
  readonly kind: LinkKind = "tc";

  update(program: BpfProgram): void {
    const e = this.entry;
    const what = `Cannot update tc filter "${e.ifname}" ${e.direction} priority ${e.priority} handle ${e.handle}`;
    if (program.type !== "schedCls" && program.type !== "schedAct") {
      throw new TypeError(`${what}: a ${program.type} program cannot run as a tc filter (use schedCls)`);
    }
    this.check(what);
    const current = findTcFilter(e, this.netns);
    if (current === undefined || current.programId !== e.programId) {
      throw new SyscallError(what, {
        syscall: "netlink",
        op: "RTM_NEWTFILTER",
        errno: ENOENT,
        hint: "the filter is gone or runs another program",
      });
    }
    using nl = openNetlink("route", { netns: this.netns });
    const w = nl.writer();
    encodeFilterAdd(w, nl.nextSeq(), { ...e, fd: rawFd(program.fd), name: current.name }, "replace");
    nl.request(w, what.slice("Cannot ".length), "RTM_NEWTFILTER");
    this.rerecord(program);
  }

  protected remove(): void {
    deleteTcFilter(this.entry, { programId: this.entry.programId, netns: this.netns });
  }

  protected record(program: BpfProgram): TcLedgerEntry {
    return this.ledger.recordTc(this.entry, program);
  }
}

/** An XDP program set through netlink that {@link reconcile} took over from a previous process. */
class AdoptedXdpLink extends AdoptedNetlinkLink<XdpLedgerEntry> implements AdoptedLink {
  readonly kind: LinkKind = "xdpNetlink";

  update(program: BpfProgram): void {
    const e = this.entry;
    const what = `Cannot update the XDP program on "${e.ifname}" in ${e.mode} mode`;
    if (program.type !== "xdp") throw new TypeError(`${what}: a ${program.type} program cannot run as XDP`);
    this.check(what);
    const old = openProgram(e.path);
    if (old === undefined) {
      throw new SyscallError(what, {
        syscall: "bpf",
        op: "BPF_OBJ_GET",
        errno: ENOENT,
        hint: "the ledger entry's pin is gone",
      });
    }
    try {
      using nl = openNetlink("route", { netns: this.netns });
      const w = nl.writer();
      w.begin(RTM.SETLINK, NLM_F.REQUEST | NLM_F.ACK, nl.nextSeq())
        .u8(0)
        .u8(0)
        .u16(0)
        .s32(e.ifindex)
        .u32(0)
        .u32(0);
      w.nest(
        IFLA.XDP,
        () => {
          w.attrS32(IFLA_XDP.FD, rawFd(program.fd));
          w.attrU32(IFLA_XDP.FLAGS, XDP_FLAGS[`${e.mode}Mode`] | XDP_FLAGS.replace);
          w.attrS32(IFLA_XDP.EXPECTED_FD, rawFd(old.fd));
        },
        true,
      );
      w.end();
      nl.request(w, what.slice("Cannot ".length), "RTM_SETLINK");
    } finally {
      old.close();
    }
    this.rerecord(program);
  }

  protected remove(): void {
    const e = this.entry;
    detachXdpNetlink({ ifindex: e.ifindex, mode: e.mode, netns: this.netns }, e.programId);
  }

  protected record(program: BpfProgram): XdpLedgerEntry {
    return this.ledger.recordXdp(this.entry, program);
  }
}

/** A pinned bpf_link that {@link reconcile} took over. */
class AdoptedPinnedLink implements AdoptedLink {
  readonly kind: LinkKind;
  #link: BpfLink;
  #entry: LinkLedgerEntry;
  #ledger: Ledger;
  #programId: number;
  #attached = true;

  get entry(): LinkLedgerEntry {
    return this.#entry;
  }

  constructor(link: BpfLink, kind: LinkKind, programId: number, entry: LinkLedgerEntry, ledger: Ledger) {
    this.#link = link;
    this.kind = kind;
    this.#programId = programId;
    this.#entry = entry;
    this.#ledger = ledger;
  }

  get programId(): number {
    return this.#programId;
  }

  get attached(): boolean {
    return this.#attached;
  }

  update(program: BpfProgram): void {
    this.#link.update(program);
    this.#programId = program.info().id;
  }

  /** Detaches the link, removes its pin and forgets its entry. Idempotent. */
  detach(): void {
    if (!this.#attached) return;
    this.#link.detach();
    this.#attached = false;
    if (this.#ledger.closed) unpin(this.#entry.path);
    else this.#ledger.forget(this.#entry);
    this.#link.close();
  }

  /** Closes this handle; the link stays attached through its pin. */
  close(): void {
    this.#attached = false;
    this.#link.close();
  }

  /** Closes this handle; the link stays attached through its pin. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * An attachment {@link reconcile} took over: `detach()` removes it and
 * forgets its entry; `close()` lets go of the handle only, leaving the
 * attachment recorded. Disposing detaches a netlink attachment and only
 * closes a pinned link.
 */
export interface AdoptedLink extends Link {
  /** The ledger entry it was recorded under (re-recorded by `update()`). */
  readonly entry: LedgerEntry;
  /** Lets go of the handle without detaching; the entry stays recorded. Idempotent. */
  close(): void;
}

/** What {@link reconcile} did with each entry. */
export interface ReconcileResult {
  /** Attachments taken over, still recorded. */
  readonly adopted: AdoptedLink[];
  /** Entries whose attachment was still ours and was removed. */
  readonly removed: LedgerEntry[];
  /**
   * Entries dropped without touching anything: the attachment, its
   * interface or its namespace is gone, or the place now holds a program
   * that is not ours.
   */
  readonly forgotten: LedgerEntry[];
}

/** Options for {@link reconcile}. */
export interface ReconcileOptions {
  /**
   * Called for each entry whose attachment is still ours: `true` takes it
   * over (it appears in {@link ReconcileResult.adopted} and stays
   * recorded), `false` removes it.
   *
   * @default remove everything
   */
  readonly adopt?: (entry: LedgerEntry) => boolean;
}

type Outcome = { readonly adopted: AdoptedLink } | "removed" | "forgotten";

/** Runs `fn` with the entry's namespace, or returns "forgotten" when it is gone; `fn` keeps the namespace by returning an adopted link. */
function inNetns(inode: number, fn: (netns: Netns) => Outcome): Outcome {
  const netns = findNetns(inode);
  if (netns === undefined) return "forgotten";
  let keep = false;
  try {
    const outcome = fn(netns);
    keep = typeof outcome === "object";
    return outcome;
  } catch (err) {
    // The interface is gone: nothing is attached any more.
    if (isErrno(err, ENODEV)) return "forgotten";
    throw err;
  } finally {
    if (!keep) netns.close();
  }
}

function reconcileTc(ledger: Ledger, entry: TcLedgerEntry, adopt: (entry: LedgerEntry) => boolean): Outcome {
  const programId = entry.programId;
  if (programId === 0) return "forgotten";
  return inNetns(entry.netnsInode, (netns) => {
    const filter = findTcFilter(entry, netns);
    if (filter === undefined || filter.kind !== "bpf" || filter.programId !== programId) return "forgotten";
    // A pending entry whose program is attached: the attach went through, commit it first.
    if (adopt(entry)) return { adopted: new AdoptedTcLink(ledger.commit(entry), ledger, netns) };
    return deleteTcFilter(entry, { programId, netns }) ? "removed" : "forgotten";
  });
}

function reconcileXdp(ledger: Ledger, entry: XdpLedgerEntry, adopt: (entry: LedgerEntry) => boolean): Outcome {
  const programId = entry.programId;
  if (programId === 0) return "forgotten";
  return inNetns(entry.netnsInode, (netns) => {
    if (xdpState(entry.ifindex, netns)[entry.mode] !== programId) return "forgotten";
    if (adopt(entry)) return { adopted: new AdoptedXdpLink(ledger.commit(entry), ledger, netns) };
    return detachXdpNetlink({ ifindex: entry.ifindex, mode: entry.mode, netns }, programId) ? "removed" : "forgotten";
  });
}

function reconcileLink(ledger: Ledger, entry: LinkLedgerEntry, adopt: (entry: LedgerEntry) => boolean): Outcome {
  let link: BpfLink;
  try {
    link = openPinnedLink(entry.path);
  } catch (err) {
    // Gone, or something else than a link pinned under our name.
    if (isErrno(err, ENOENT) || err instanceof TypeError) return "forgotten";
    throw err;
  }
  let keep = false;
  try {
    const info = link.info();
    // A link whose interface or cgroup went away stays pinned but is attached nowhere.
    if (info.programId === 0 || info.ifindex === 0 || info.cgroupId === 0n) return "forgotten";
    const kind = typeof info.type === "string" ? LINK_KINDS[info.type] : undefined;
    if (kind !== undefined && adopt(entry)) {
      keep = true;
      return { adopted: new AdoptedPinnedLink(link, kind, info.programId, entry, ledger) };
    }
    try {
      link.detach();
    } catch (err) {
      // Link types that cannot be detached go when their pin, the last reference, does.
      if (!isNotSupported(err) && !isErrno(err, EOPNOTSUPP)) throw err;
    }
    return "removed";
  } finally {
    if (!keep) link.close();
  }
}

/**
 * Takes over or removes what a previous process recorded in the ledger.
 * Call it at start-up, before attaching, from the only process that uses
 * this ledger.
 *
 * Each netlink entry is checked to still be ours: the tc filter or XDP
 * program at the recorded place must run the very program pinned in the
 * entry (same kernel id). Then `adopt(entry)` decides: take it over (a
 * {@link Link} in `adopted`; the entry stays recorded) or remove it
 * (exactly that filter or program, then the entry). Entries whose place
 * is empty, whose interface or namespace is gone, or whose place holds
 * another program are forgotten without touching the kernel. Pinned links
 * are adopted (tcx, XDP and cgroup links) or detached and unpinned.
 *
 * Namespaces are found by inode among the calling thread's and the
 * bind-mounted ones (`ip netns`, container runtimes); one that only a
 * process holds cannot be found and counts as gone. A clsact qdisc the
 * previous process created stays, empty.
 *
 * @param ledger The ledger.
 * @param options Which attachments to adopt.
 * @returns What was adopted, removed and forgotten.
 * @throws {TypeError} When `adopt` is not a function.
 * @throws {ClosedError} When the ledger is closed.
 * @throws {SyscallError} When a netlink or bpf call fails for another reason than the attachment being gone.
 * @capability CAP_NET_ADMIN
 * @capability CAP_BPF
 * @example Nothing to do in a fresh ledger
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openLedger, reconcile } from "@dp/hooks";
 * import { bpffsDir } from "@dp/core/testing";
 *
 * using dir = bpffsDir();
 * using ledger = openLedger(dir.join("ledger"));
 * const { adopted, removed, forgotten } = reconcile(ledger, { adopt: () => false });
 * assert.equal(adopted.length + removed.length + forgotten.length, 0);
 * ```
 */
export function reconcile(ledger: Ledger, options: ReconcileOptions = {}): ReconcileResult {
  const adopt = options.adopt ?? ((): boolean => false);
  if (typeof adopt !== "function") throw new TypeError("Cannot reconcile: adopt must be a function");
  const adopted: AdoptedLink[] = [];
  const removed: LedgerEntry[] = [];
  const forgotten: LedgerEntry[] = [];
  for (const entry of ledger.entries()) {
    let outcome: Outcome;
    try {
      switch (entry.kind) {
        case "tc":
          outcome = reconcileTc(ledger, entry, adopt);
          break;
        case "xdpNetlink":
          outcome = reconcileXdp(ledger, entry, adopt);
          break;
        case "link":
          outcome = reconcileLink(ledger, entry, adopt);
          break;
      }
    } catch (err) {
      for (const link of adopted) link.close();
      throw wrap(err, `Cannot reconcile "${entry.path}"`);
    }
    if (typeof outcome === "object") {
      adopted.push(outcome.adopted);
    } else {
      ledger.forget(entry);
      (outcome === "removed" ? removed : forgotten).push(entry);
    }
  }
  return { adopted, removed, forgotten };
}
