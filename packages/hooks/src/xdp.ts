// XDP attachments: through a bpf_link (Linux 5.9+) or through netlink
// (RTM_SETLINK with IFLA_XDP), in generic (skb), native (drv) or offloaded
// (hw) mode. Netlink attachments outlive the process; a ledger records them.
import {
  attrString,
  attrU32,
  attrU8,
  type BpfLink,
  BpfProgram,
  ClosedError,
  compareKernelVersions,
  createLink,
  hasLinkType,
  kernelVersion,
  NetlinkError,
  type NetlinkSocket,
  Netns,
  netlinkAttributeMap,
  NLM_F,
  NotSupportedError,
  openNetlink,
  parseKernelVersion,
  programById,
  SyscallError,
  unpin,
  withNetns,
  XDP_FLAGS,
} from "@dp/core";
import { IFLA, IFLA_XDP, RTM, rawFd } from "@dp/core/internal";
import { checkInterfaceRef } from "./_iface.ts";
import { Ledger, netnsInode, type XdpLedgerEntry } from "./ledger.ts";
import type { Link } from "./link.ts";

/**
 * Where an XDP program runs: `"skb"` is generic XDP (any device, after the
 * kernel built the socket buffer), `"drv"` native XDP in the driver,
 * `"hw"` offloaded to the NIC.
 *
 * @useDeclaredType
 */
export type XdpMode = "skb" | "drv" | "hw";

/** Options for {@link attachXdp}. */
export interface XdpOptions {
  /**
   * The mode. `"auto"` lets the kernel choose: native when the driver
   * supports XDP, generic otherwise.
   *
   * @default "auto"
   */
  readonly mode?: "auto" | XdpMode;
  /**
   * What to do when a program is already attached in the mode:
   *
   * - `false`: fail (EBUSY) and leave it alone;
   * - `true`: replace a program set through netlink (`ip link set xdp`,
   *   another library); a program held by a bpf_link cannot be replaced;
   * - an {@link XdpLink}: swap the program of that attachment atomically
   *   (`XDP_FLAGS_REPLACE` with the expected program, or `BPF_LINK_UPDATE`);
   *   the returned link takes the attachment over and the old handle becomes
   *   inert (`attached` is `false`, `detach()` does nothing).
   *
   * @default false
   */
  readonly replace?: Link | boolean;
  /**
   * The network namespace the interface lives in.
   *
   * @default the calling thread's namespace
   */
  readonly netns?: Netns;
  /**
   * How to attach: `"link"` through a bpf_link (Linux 5.9+; detached when the
   * last handle closes unless pinned), `"netlink"` through `IFLA_XDP` (stays
   * until removed, even after the process exits). `"auto"` uses a link when
   * the kernel has XDP links, and netlink when `replace: true` meets a
   * program set through netlink (a link cannot replace it).
   *
   * @default "auto"
   */
  readonly via?: "auto" | "link" | "netlink";
  /**
   * Records netlink attachments here, so that a restarted process can find
   * and reconcile them; `detach()` forgets the entry.
   *
   * @default none
   */
  readonly ledger?: Ledger;
}

/**
 * The XDP programs attached to an interface, by mode, as the kernel reports
 * them in `IFLA_XDP` (whether set through netlink or held by a bpf_link).
 */
export interface XdpState {
  /** The program id in generic mode. */
  readonly skb?: number;
  /** The program id in native mode. */
  readonly drv?: number;
  /** The program id in offloaded mode. */
  readonly hw?: number;
}

/** Where a netlink XDP attachment is: see {@link detachXdpNetlink}. */
export interface XdpNetlinkPlace {
  /** The interface index. */
  readonly ifindex: number;
  /** The mode the program runs in. */
  readonly mode: XdpMode;
  /**
   * The interface's network namespace.
   *
   * @default the calling thread's namespace
   */
  readonly netns?: Netns | undefined;
}

const XDP_FLAGS_UPDATE_IF_NOEXIST = XDP_FLAGS.updateIfNoExist;
const XDP_FLAGS_REPLACE = XDP_FLAGS.replace;
const MODE_FLAGS: Readonly<Record<XdpMode, number>> = { skb: XDP_FLAGS.skbMode, drv: XDP_FLAGS.drvMode, hw: XDP_FLAGS.hwMode };
// enum XDP_ATTACHED_*: NONE, DRV, SKB, HW, MULTI.
const ATTACHED_MODES: readonly (XdpMode | undefined)[] = [undefined, "drv", "skb", "hw", undefined];
const MODE_NAMES: readonly string[] = ["auto", "skb", "drv", "hw"];
const VIA_NAMES: readonly string[] = ["auto", "link", "netlink"];

const IFINFOMSG_LEN = 16;
const EINVAL = 22;
const EBUSY = 16;
const EEXIST = 17;
const ENODEV = 19;
const ENOENT = 2;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524;

/** An interface as this module needs it: index, name and XDP programs. */
interface IfaceView {
  readonly index: number;
  readonly name: string;
  readonly xdp: XdpState;
}

function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return v === null ? "null" : typeof v;
}

function programLabel(program: BpfProgram): string {
  return program.name === "" ? "XDP program" : `XDP program "${program.name}"`;
}

function checkProgram(program: unknown): asserts program is BpfProgram {
  if (!(program instanceof BpfProgram)) throw new TypeError(`Invalid program: expected a BpfProgram, got ${describe(program)}`);
  if (program.type !== "xdp") {
    throw new TypeError(`Cannot attach ${program.name === "" ? "program" : `program "${program.name}"`} to XDP: its type is ${program.type}, expected xdp`);
  }
  const eat = program.expectedAttachType;
  if (eat !== undefined && eat !== "xdp") {
    throw new TypeError(`Cannot attach ${programLabel(program)} to an interface: it was loaded for ${eat} (a devmap or cpumap entry)`);
  }
}

function checkOptions(options: XdpOptions): void {
  if (typeof options !== "object" || options === null) throw new TypeError(`Invalid XDP options: expected an object, got ${describe(options)}`);
  const { mode, via, replace, netns, ledger } = options;
  if (mode !== undefined && !MODE_NAMES.includes(mode)) {
    throw new TypeError(`Invalid XDP mode ${describe(mode)}: use "auto", "skb", "drv" or "hw"`);
  }
  if (via !== undefined && !VIA_NAMES.includes(via)) throw new TypeError(`Invalid XDP via ${describe(via)}: use "auto", "link" or "netlink"`);
  if (netns !== undefined && !(netns instanceof Netns)) throw new TypeError(`Invalid netns: expected a Netns, got ${describe(netns)}`);
  if (ledger !== undefined && !(ledger instanceof Ledger)) throw new TypeError(`Invalid ledger: expected a Ledger, got ${describe(ledger)}`);
  if (replace === undefined || typeof replace === "boolean") return;
  if (!(replace instanceof XdpLink)) {
    const kind = typeof replace === "object" && replace !== null && "kind" in replace ? ` (a ${String(replace.kind)} link)` : "";
    throw new TypeError(`Invalid replace: expected a boolean or an XdpLink, got ${describe(replace)}${kind}`);
  }
  if (via !== undefined && via !== "auto" && (via === "link") !== (replace.kind === "xdp")) {
    throw new TypeError(`Cannot replace a ${replace.kind === "xdp" ? "bpf_link" : "netlink"} XDP attachment via ${via}`);
  }
  if (mode !== undefined && mode !== "auto" && mode !== replace.mode) {
    throw new TypeError(`Cannot replace the XDP attachment on "${replace.ifname}" in ${mode} mode: it runs in ${replace.mode} mode`);
  }
}

/**
 * Reads `IFLA_XDP` (a nested attribute's payload) of an `RTM_NEWLINK` message.
 *
 * @internal Exported for tests.
 * @param data The nested attributes.
 * @returns The program ids by mode.
 */
export function parseXdpState(data: Uint8Array): XdpState {
  const attrs = netlinkAttributeMap(data);
  const state: { skb?: number; drv?: number; hw?: number } = {};
  const ids: [XdpMode, number][] = [
    ["skb", IFLA_XDP.SKB_PROG_ID],
    ["drv", IFLA_XDP.DRV_PROG_ID],
    ["hw", IFLA_XDP.HW_PROG_ID],
  ];
  for (const [mode, type] of ids) {
    const v = attrs.get(type);
    if (v !== undefined) state[mode] = attrU32(v);
  }
  // Kernels before 4.19 report one program and its mode only.
  const attached = attrs.get(IFLA_XDP.ATTACHED);
  const id = attrs.get(IFLA_XDP.PROG_ID);
  if (attached !== undefined && id !== undefined) {
    const mode = ATTACHED_MODES[attrU8(attached)];
    if (mode !== undefined && state[mode] === undefined) state[mode] = attrU32(id);
  }
  return state;
}

function modeOf(state: XdpState, programId: number): XdpMode | undefined {
  if (state.skb === programId) return "skb";
  if (state.drv === programId) return "drv";
  if (state.hw === programId) return "hw";
  return undefined;
}

function netnsLabel(netns: Netns | undefined): string {
  return netns === undefined ? "" : ` in network namespace "${netns.name ?? netns.path}"`;
}

/** Looks an interface up by name or index (RTM_GETLINK) in the socket's namespace. */
function getIface(nl: NetlinkSocket, iface: string | number, netns: Netns | undefined, what: string): IfaceView {
  const w = nl.writer();
  w.begin(RTM.GETLINK, NLM_F.REQUEST | NLM_F.ACK, nl.nextSeq())
    .u8(0)
    .u8(0)
    .u16(0)
    .s32(typeof iface === "number" ? iface : 0)
    .u32(0)
    .u32(0);
  if (typeof iface === "string") w.attrString(IFLA.IFNAME, iface);
  w.end();
  let replies;
  try {
    replies = nl.request(w, `find interface ${describe(iface)}`, "RTM_GETLINK");
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === ENODEV) {
      throw new NetlinkError(`${what}: no interface ${describe(iface)}${netnsLabel(netns)}`, { op: "RTM_GETLINK", errno: ENODEV, cause: err });
    }
    throw err;
  }
  const reply = replies.find((m) => m.type === RTM.NEWLINK);
  if (reply === undefined) {
    throw new NetlinkError(`${what}: no interface ${describe(iface)}${netnsLabel(netns)}`, { op: "RTM_GETLINK", errno: ENODEV });
  }
  const dv = new DataView(reply.payload.buffer, reply.payload.byteOffset, reply.payload.byteLength);
  const attrs = netlinkAttributeMap(reply.payload.subarray(IFINFOMSG_LEN));
  const name = attrs.get(IFLA.IFNAME);
  const xdp = attrs.get(IFLA.XDP);
  return {
    index: dv.getInt32(4, true),
    name: name === undefined ? String(iface) : attrString(name),
    xdp: xdp === undefined ? {} : parseXdpState(xdp),
  };
}

/**
 * Sets (or, with fd -1, removes) an XDP program with `RTM_SETLINK` and
 * waits for the kernel's answer.
 *
 * @param nl The socket, bound to the interface's namespace.
 * @param ifindex The interface.
 * @param fd The program descriptor, or -1 to remove.
 * @param flags `XDP_FLAGS_*`.
 * @param expectedFd With `XDP_FLAGS_REPLACE`: the program that must be attached now, -1 for none.
 * @param what What is being done, for the error.
 * @throws {NetlinkError} The kernel's refusal, with its extended ack.
 */
function setXdp(nl: NetlinkSocket, ifindex: number, fd: number, flags: number, expectedFd: number | undefined, what: string): void {
  const w = nl.writer();
  w.begin(RTM.SETLINK, NLM_F.REQUEST | NLM_F.ACK, nl.nextSeq())
    .u8(0)
    .u8(0)
    .u16(0)
    .s32(ifindex)
    .u32(0)
    .u32(0);
  w.nest(
    IFLA.XDP,
    () => {
      w.attrS32(IFLA_XDP.FD, fd);
      if (flags !== 0) w.attrU32(IFLA_XDP.FLAGS, flags);
      if (expectedFd !== undefined) w.attrS32(IFLA_XDP.EXPECTED_FD, expectedFd);
    },
    true,
  );
  w.end();
  nl.request(w, what, "RTM_SETLINK");
}

/** Whether the kernel has XDP links: from its BTF, else from its version (5.9). */
function hasXdpLinks(): boolean {
  try {
    return hasLinkType("xdp");
  } catch {
    return compareKernelVersions(kernelVersion(), parseKernelVersion("5.9")) >= 0;
  }
}

function occupant(state: XdpState, mode: XdpMode | "auto"): { mode: XdpMode; id: number } | undefined {
  const order: readonly XdpMode[] = mode === "auto" ? ["drv", "skb", "hw"] : [mode];
  for (const m of order) {
    const id = state[m];
    if (id !== undefined) return { mode: m, id };
  }
  return undefined;
}

function stateText(state: XdpState): string {
  const parts = (["skb", "drv", "hw"] as const).filter((m) => state[m] !== undefined).map((m) => `program ${state[m]} in ${m} mode`);
  return parts.length === 0 ? "nothing is attached" : `${parts.join(" and ")} ${parts.length === 1 ? "is" : "are"} attached`;
}

/** Explains a refused attach: the same error class, naming what is attached and what to do. */
function explain(err: unknown, what: string, mode: XdpMode | "auto", iface: IfaceView): unknown {
  if (!(err instanceof SyscallError)) return err;
  const errno = err.errno;
  if (mode === "hw" && (errno === EINVAL || errno === EOPNOTSUPP || errno === ENOTSUPP)) {
    return new NotSupportedError(`XDP offload (hw mode) on "${iface.name}"`, { cause: err });
  }
  const state = iface.xdp;
  let detail = "";
  let hint: string | undefined;
  if (errno === EBUSY) {
    const byLink = err instanceof NetlinkError && /link/i.test(err.extAck ?? "");
    detail = byLink
      ? ` (${stateText(state)} through a bpf_link, which only its owner can replace or detach)`
      : ` (${stateText(state)}; detach it, or pass replace: true to swap a program set through netlink)`;
    hint = "an XDP program is already attached in that mode";
  } else if (errno === EEXIST) {
    detail = ` (${stateText(state)}; native and generic XDP cannot be active at the same time)`;
    hint = "another XDP program is attached";
  } else if (errno === EOPNOTSUPP || errno === ENOTSUPP) {
    hint = `the driver of "${iface.name}" has no native XDP: use mode "skb"`;
  }
  if (err instanceof NetlinkError) {
    return new NetlinkError(`${what}${detail}`, { op: err.op, errno, extAck: err.extAck ?? hint, cause: err });
  }
  return new SyscallError(`${what}${detail}`, { syscall: err.syscall, op: err.op, errno, hint: hint ?? err.hint, cause: err });
}

interface XdpLinkInit {
  readonly kind: "xdp" | "xdpNetlink";
  readonly ifindex: number;
  readonly ifname: string;
  readonly mode: XdpMode;
  readonly programId: number;
  readonly netns: Netns | undefined;
  readonly link: BpfLink | undefined;
  readonly ledger: Ledger | undefined;
  readonly entry: XdpLedgerEntry | undefined;
}

let takeOver: (old: XdpLink, program: BpfProgram) => XdpLink;

function openRoute(netns: Netns | undefined): NetlinkSocket {
  return openNetlink("route", netns === undefined ? {} : { netns });
}

/**
 * An XDP attachment made by {@link attachXdp}: a bpf_link (`kind: "xdp"`)
 * or a program set through netlink (`kind: "xdpNetlink"`).
 *
 * Lifetime:
 * - `detach()` removes exactly this attachment (a netlink one only while
 *   this program is still the one attached) and is idempotent;
 * - `close()` releases the handle without detaching: a bpf_link then goes
 *   away with its last reference unless it is pinned, a netlink attachment
 *   stays (it outlives the process; see the ledger);
 * - `[Symbol.dispose]` detaches, except a pinned link, which it only closes.
 *
 * A netlink attachment in another namespace needs that `Netns` handle
 * open for `update()` and `detach()`.
 *
 * @example Generic XDP on a veth end, detached at the end of the scope
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { attachXdp } from "@dp/hooks";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * ns.exec("ip", ["link", "add", "x0", "type", "veth", "peer", "name", "x1"]);
 * // r0 = XDP_PASS; exit
 * using prog = loadProgram({ type: "xdp", license: "GPL", instructions: new Uint8Array([0xb7, 0, 0, 0, 2, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]) });
 * using link = attachXdp("x0", prog, { mode: "skb", netns: ns.ns });
 * assert.equal(link.mode, "skb");
 * assert.equal(link.programId, prog.info().id);
 * ```
 */
export class XdpLink implements Link {
  /** `"xdp"` for a bpf_link, `"xdpNetlink"` for a program set through netlink. */
  readonly kind: "xdp" | "xdpNetlink";
  /** The interface index (in {@link XdpLink.netns}). */
  readonly ifindex: number;
  /** The interface name when the program was attached. */
  readonly ifname: string;
  /** The mode the program runs in. */
  readonly mode: XdpMode;
  /** The interface's network namespace, `undefined` for the caller's. */
  readonly netns: Netns | undefined;
  #programId: number;
  #attached = true;
  #closed = false;
  #link: BpfLink | undefined;
  #ledger: Ledger | undefined;
  #entry: XdpLedgerEntry | undefined;
  #pin: string | undefined;

  static {
    takeOver = (old: XdpLink, program: BpfProgram): XdpLink => {
      old.update(program);
      const next = new XdpLink({
        kind: old.kind,
        ifindex: old.ifindex,
        ifname: old.ifname,
        mode: old.mode,
        programId: old.#programId,
        netns: old.netns,
        link: old.#link,
        ledger: old.#ledger,
        entry: old.#entry,
      });
      next.#pin = old.#pin;
      old.#link = undefined;
      old.#entry = undefined;
      old.#pin = undefined;
      old.#attached = false;
      old.#closed = true;
      return next;
    };
  }

  /**
   * Wraps an attachment.
   *
   * @internal Made by {@link attachXdp}.
   * @param init What was attached where.
   */
  constructor(init: XdpLinkInit) {
    this.kind = init.kind;
    this.ifindex = init.ifindex;
    this.ifname = init.ifname;
    this.mode = init.mode;
    this.netns = init.netns;
    this.#programId = init.programId;
    this.#link = init.link;
    this.#ledger = init.ledger;
    this.#entry = init.entry;
  }

  /** The attached program's kernel id. */
  get programId(): number {
    return this.#programId;
  }

  /** Whether this handle holds the attachment: not detached, replaced or closed. */
  get attached(): boolean {
    return this.#attached && !this.#closed;
  }

  /** Whether the handle was released ({@link XdpLink.close}, {@link XdpLink.detach} or a replacement). */
  get closed(): boolean {
    return this.#closed;
  }

  /** The bpf_link id, for `kind: "xdp"` while the handle is open. */
  get linkId(): number | undefined {
    return this.#link?.id;
  }

  /** The ledger entry of a netlink attachment made with a ledger. */
  get ledgerEntry(): XdpLedgerEntry | undefined {
    return this.#entry;
  }

  /** The pin path, when {@link XdpLink.pin} pinned the link. */
  get pinned(): string | undefined {
    return this.#pin;
  }

  /**
   * Replaces the program atomically, in the same place and mode: through
   * `BPF_LINK_UPDATE`, or netlink with `XDP_FLAGS_REPLACE` and the current
   * program as the expected one (so a program someone else attached
   * meanwhile is never overwritten).
   *
   * @param program The new program, of type xdp.
   * @throws {TypeError} When `program` is not an XDP program (before any system call).
   * @throws {ClosedError} When this handle was detached, replaced or closed.
   * @throws {NetlinkError} EEXIST when our program is no longer the one attached.
   * @throws {SyscallError} When the kernel refuses the update.
   */
  update(program: BpfProgram): void {
    checkProgram(program);
    if (!this.attached) throw new ClosedError(`XDP attachment on "${this.ifname}"`);
    const what = `Cannot replace the program of the XDP attachment on "${this.ifname}" with ${programLabel(program)}`;
    const newId = program.info().id;
    if (this.#link !== undefined) {
      this.#link.update(program);
    } else {
      using nl = openRoute(this.netns);
      withProgram(this.#programId, what, (expected) => {
        setXdp(nl, this.ifindex, rawFd(program.fd), MODE_FLAGS[this.mode] | XDP_FLAGS_REPLACE, expected, what);
      });
      this.#rerecord(program);
    }
    this.#programId = newId;
  }

  /**
   * Removes the attachment: a bpf_link is detached (`BPF_LINK_DETACH`) and
   * unpinned if this handle pinned it; a netlink program is removed only
   * while it is still ours (`XDP_FLAGS_REPLACE` with it as the expected
   * program), and its ledger entry is forgotten. Calling it again, after
   * `close()`, or after the program was replaced by someone else does
   * nothing.
   *
   * @throws {SyscallError} When the kernel refuses for another reason.
   */
  detach(): void {
    if (this.attached) {
      if (this.#link !== undefined) {
        this.#link.detach();
        if (this.#pin !== undefined) unpin(this.#pin);
        this.#pin = undefined;
      } else {
        using nl = openRoute(this.netns);
        detachNetlink(nl, this.ifindex, this.mode, this.#programId, `Cannot detach XDP program ${this.#programId} from "${this.ifname}"`);
        if (this.#entry !== undefined) this.#ledger?.forget(this.#entry);
        this.#entry = undefined;
      }
      this.#attached = false;
    }
    this.close();
  }

  /**
   * Pins the bpf_link on bpffs, so the attachment outlives this process
   * (until {@link XdpLink.unpin} or `detach()`).
   *
   * @param path An absolute path on bpffs.
   * @throws {TypeError} For a netlink attachment, which needs no pin to persist.
   * @throws {ClosedError} When the handle was released.
   * @throws {SyscallError} EEXIST when the path is taken.
   */
  pin(path: string): void {
    if (this.kind !== "xdp") {
      throw new TypeError(`Cannot pin the XDP attachment on "${this.ifname}": it was made through netlink and persists without a pin`);
    }
    if (this.#link === undefined) throw new ClosedError(`XDP link on "${this.ifname}"`);
    this.#link.pin(path);
    this.#pin = path;
  }

  /**
   * Removes the pin made by {@link XdpLink.pin}; the attachment then lives
   * as long as this handle.
   *
   * @returns Whether there was a pin to remove.
   * @throws {SyscallError} When the pin cannot be removed.
   */
  unpin(): boolean {
    const path = this.#pin;
    if (path === undefined) return false;
    this.#pin = undefined;
    if (this.#closed) this.#attached = false;
    return unpin(path);
  }

  /**
   * Releases the handle without detaching: a bpf_link goes away with its
   * last reference (so it stays only when pinned), a netlink program stays
   * attached. Calling it again does nothing.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const link = this.#link;
    this.#link = undefined;
    link?.close();
  }

  /** Detaches, unless the link is pinned; then only closes the handle. */
  [Symbol.dispose](): void {
    if (this.#pin !== undefined) this.close();
    else this.detach();
  }

  #rerecord(program: BpfProgram): void {
    const ledger = this.#ledger;
    const old = this.#entry;
    if (ledger === undefined || old === undefined) return;
    // Recording the same place again replaces the entry (forgetting the old one after would drop the new one).
    this.#entry = ledger.recordXdp({ netnsInode: old.netnsInode, ifindex: this.ifindex, ifname: this.ifname, mode: this.mode }, program);
  }
}

/** Runs `fn` with a descriptor of the program with this id; -1 when it no longer exists. */
function withProgram<T>(id: number, what: string, fn: (fd: number) => T): T {
  let prog: BpfProgram;
  try {
    prog = programById(id);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOENT) return fn(-1);
    throw new SyscallError(what, { syscall: "bpf", op: "BPF_PROG_GET_FD_BY_ID", errno: err instanceof SyscallError ? err.errno : EINVAL, cause: err });
  }
  try {
    return fn(rawFd(prog.fd));
  } finally {
    prog.close();
  }
}

/** Removes program `id` from `mode` if it is still attached there; false when it was not. */
function detachNetlink(nl: NetlinkSocket, ifindex: number, mode: XdpMode, id: number, what: string): boolean {
  return withProgram(id, what, (expected) => {
    if (expected < 0) return false;
    try {
      setXdp(nl, ifindex, -1, MODE_FLAGS[mode] | XDP_FLAGS_REPLACE, expected, what);
      return true;
    } catch (err) {
      // EEXIST: another program is attached now; ENODEV: the interface is gone.
      if (err instanceof NetlinkError && (err.errno === EEXIST || err.errno === ENODEV)) return false;
      throw err;
    }
  });
}

/**
 * Attaches an XDP program to a network interface.
 *
 * By default (`via: "auto"`) the attachment is a bpf_link (Linux 5.9+): it
 * goes away with the last handle unless pinned, and nobody can replace it
 * by accident. `via: "netlink"` sets the program the way `ip link set xdp`
 * does: it stays until removed, also after the process exits, so record it
 * in a {@link Ledger}. Without `replace`, attaching where a program already
 * runs fails with EBUSY (EEXIST when the other one runs in the other of
 * generic and native mode); the error names the program that is there.
 *
 * @param iface The interface name or index (in `options.netns`).
 * @param program A program of type xdp.
 * @param options Mode, replacement, namespace, mechanism and ledger.
 * @returns The attachment.
 * @throws {TypeError} Before any system call, when `program` is not an XDP program or an option is invalid.
 * @throws {RangeError} Before any system call, when `iface` is not a valid name or index.
 * @throws {NetlinkError} ENODEV naming the interface when it does not exist; for netlink attachments, the kernel's refusal with its explanation (EOPNOTSUPP "Underlying driver does not support XDP in native mode", EBUSY when a program is attached).
 * @throws {SyscallError} For link attachments, the kernel's refusal (EBUSY, EEXIST, EOPNOTSUPP) with a hint.
 * @throws {NotSupportedError} In hw mode, when the device cannot offload the program.
 * @kernel 5.9 XDP links; older kernels use netlink
 * @capability CAP_NET_ADMIN
 * @example Dropping everything arriving on a veth end
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { attachXdp } from "@dp/hooks";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
 * // r0 = XDP_DROP; exit
 * using drop = loadProgram({ name: "drop", type: "xdp", license: "GPL", instructions: new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]) });
 * using link = attachXdp("d0", drop, { mode: "skb", via: "netlink", netns: ns.ns });
 * assert.equal(link.kind, "xdpNetlink");
 * assert.match(ns.exec("ip", ["link", "show", "d0"]), /xdpgeneric/);
 * ```
 */
export function attachXdp(iface: string | number, program: BpfProgram, options: XdpOptions = {}): XdpLink {
  checkInterfaceRef(iface);
  checkProgram(program);
  checkOptions(options);
  const replace = options.replace ?? false;
  if (replace instanceof XdpLink) {
    if (typeof iface === "number" ? iface !== replace.ifindex : iface !== replace.ifname) {
      throw new RangeError(`Cannot replace the XDP attachment on "${replace.ifname}" with one on ${describe(iface)}: pass the same interface`);
    }
    if (!replace.attached) throw new ClosedError(`XDP attachment on "${replace.ifname}" (the one to replace)`);
  }
  if (program.closed) throw new ClosedError(programLabel(program));
  if (replace instanceof XdpLink) return takeOver(replace, program);
  const netns = options.netns;
  const requested = options.mode ?? "auto";
  const base = `Cannot attach ${programLabel(program)} to ${describe(iface)}`;
  using nl = openRoute(netns);
  const target = getIface(nl, iface, netns, base);
  const there = occupant(target.xdp, requested);
  // replace: true swaps a netlink program in the mode it runs in.
  const mode = replace && there !== undefined && requested === "auto" ? there.mode : requested;
  const via = options.via ?? "auto";
  const useLink = via === "link" || (via === "auto" && !(replace && there !== undefined) && hasXdpLinks());
  const what = `Cannot attach ${programLabel(program)} to "${target.name}"${mode === "auto" ? "" : ` in ${mode} mode`}`;
  const id = program.info().id;
  const modeFlags = mode === "auto" ? 0 : MODE_FLAGS[mode];
  if (useLink) {
    let link: BpfLink;
    try {
      const make = (): BpfLink => createLink(program, { ifindex: target.index }, "xdp", { flags: modeFlags });
      link = netns === undefined ? make() : withNetns(netns, make);
    } catch (err) {
      throw explain(err, what, mode, target);
    }
    try {
      const actual = mode === "auto" ? (modeOf(getIface(nl, target.index, netns, what).xdp, id) ?? "skb") : mode;
      return new XdpLink({ kind: "xdp", ifindex: target.index, ifname: target.name, mode: actual, programId: id, netns, link, ledger: undefined, entry: undefined });
    } catch (err) {
      link.close();
      throw err;
    }
  }
  try {
    setXdp(nl, target.index, rawFd(program.fd), modeFlags | (replace ? 0 : XDP_FLAGS_UPDATE_IF_NOEXIST), undefined, what);
  } catch (err) {
    throw explain(err, what, mode, target);
  }
  let actual: XdpMode = mode === "auto" ? "skb" : mode;
  try {
    if (mode === "auto") actual = modeOf(getIface(nl, target.index, netns, what).xdp, id) ?? "skb";
    const ledger = options.ledger;
    const entry = ledger?.recordXdp({ netnsInode: netnsInode(netns), ifindex: target.index, ifname: target.name, mode: actual }, program);
    return new XdpLink({ kind: "xdpNetlink", ifindex: target.index, ifname: target.name, mode: actual, programId: id, netns, link: undefined, ledger, entry });
  } catch (err) {
    // Nothing may stay attached that no handle or ledger knows about.
    detachNetlink(nl, target.index, actual, id, what);
    throw err;
  }
}

/**
 * Reads the XDP programs attached to an interface (`IFLA_XDP` of
 * `RTM_GETLINK`), by mode.
 *
 * @internal For the ledger and `listAttachments()`.
 * @param ifindex The interface index.
 * @param netns The interface's namespace, default the caller's.
 * @returns The program ids by mode; empty when nothing is attached.
 * @throws {NetlinkError} ENODEV when there is no such interface.
 */
export function xdpState(ifindex: number, netns?: Netns): XdpState {
  checkInterfaceRef(ifindex);
  using nl = openRoute(netns);
  return getIface(nl, ifindex, netns, `Cannot read XDP state of interface ${ifindex}`).xdp;
}

/**
 * Removes an XDP program set through netlink. With `expected`, only while
 * that program is the one attached in the mode (`XDP_FLAGS_REPLACE` with
 * `IFLA_XDP_EXPECTED_FD`), so a program someone else attached since is
 * left alone.
 *
 * @internal For the ledger's reconcile.
 * @param place The interface, mode and namespace.
 * @param expected The program that must be attached, or a program id.
 * @returns `true` when a program was removed, `false` when none (or another one) was attached.
 * @throws {NetlinkError} ENODEV when there is no such interface; EBUSY when a bpf_link holds the mode.
 */
export function detachXdpNetlink(place: XdpNetlinkPlace, expected?: BpfProgram | number): boolean {
  checkInterfaceRef(place.ifindex);
  if (!Object.hasOwn(MODE_FLAGS, place.mode)) throw new TypeError(`Invalid XDP mode ${describe(place.mode)}: use "skb", "drv" or "hw"`);
  const what = `Cannot detach the XDP program in ${place.mode} mode from interface ${place.ifindex}${netnsLabel(place.netns)}`;
  using nl = openRoute(place.netns);
  if (typeof expected === "number") return detachNetlink(nl, place.ifindex, place.mode, expected, what);
  if (expected !== undefined) {
    try {
      setXdp(nl, place.ifindex, -1, MODE_FLAGS[place.mode] | XDP_FLAGS_REPLACE, rawFd(expected.fd), what);
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === EEXIST) return false;
      throw err;
    }
  }
  const state = getIface(nl, place.ifindex, place.netns, what).xdp;
  if (state[place.mode] === undefined) return false;
  setXdp(nl, place.ifindex, -1, MODE_FLAGS[place.mode], undefined, what);
  return true;
}
