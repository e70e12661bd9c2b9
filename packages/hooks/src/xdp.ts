// XDP attachments: through a bpf_link (Linux 5.9+) or through netlink
// (RTM_SETLINK with IFLA_XDP), in generic (skb), native (drv) or offloaded
// (hw) mode. Netlink attachments outlive the process; a ledger records them.
import {
  type BpfLink,
  BpfProgram,
  ClosedError,
  compareKernelVersions,
  createLink,
  hasLinkType,
  kernelVersion,
  NetlinkError,
  Netns,
  NotSupportedError,
  parseKernelVersion,
  SyscallError,
  unpin,
  withNetns,
  XDP_FLAGS,
} from "@dp/core";
import { rawFd } from "@dp/core/internal";
import { checkInterfaceRef } from "./_iface.ts";
import { Ledger, netnsInode, type XdpLedgerEntry } from "./ledger.ts";
import type { Link } from "./link.ts";
import {
  EBUSY,
  EEXIST,
  EINVAL,
  ENOTSUPP,
  EOPNOTSUPP,
  MODE_FLAGS,
  XDP_FLAGS_REPLACE,
  describe,
  detachNetlink,
  getIface,
  openRoute,
  setXdp,
  withProgram,
  type IfaceView,
  type XdpMode,
  type XdpState,
} from "./_xdp_netlink.ts";

export type { XdpMode } from "./_xdp_netlink.ts";

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

const XDP_FLAGS_UPDATE_IF_NOEXIST = XDP_FLAGS.updateIfNoExist;
const MODE_NAMES: readonly string[] = ["auto", "skb", "drv", "hw"];
const VIA_NAMES: readonly string[] = ["auto", "link", "netlink"];

function programLabel(program: BpfProgram): string {
  return program.name === "" ? "XDP program" : `XDP program "${program.name}"`;
}

function checkProgram(program: unknown): asserts program is BpfProgram {
  if (!(program instanceof BpfProgram))
    throw new TypeError(`Invalid program: expected a BpfProgram, got ${describe(program)}`);
  if (program.type !== "xdp") {
    throw new TypeError(
      `Cannot attach ${program.name === "" ? "program" : `program "${program.name}"`} to XDP: its type is ${program.type}, expected xdp`,
    );
  }
  const eat = program.expectedAttachType;
  if (eat !== undefined && eat !== "xdp") {
    throw new TypeError(
      `Cannot attach ${programLabel(program)} to an interface: it was loaded for ${eat} (a devmap or cpumap entry)`,
    );
  }
}

function checkOptions(options: XdpOptions): void {
  if (typeof options !== "object" || options === null)
    throw new TypeError(`Invalid XDP options: expected an object, got ${describe(options)}`);
  const { mode, via, replace, netns, ledger } = options;
  if (mode !== undefined && !MODE_NAMES.includes(mode)) {
    throw new TypeError(`Invalid XDP mode ${describe(mode)}: use "auto", "skb", "drv" or "hw"`);
  }
  if (via !== undefined && !VIA_NAMES.includes(via))
    throw new TypeError(`Invalid XDP via ${describe(via)}: use "auto", "link" or "netlink"`);
  if (netns !== undefined && !(netns instanceof Netns))
    throw new TypeError(`Invalid netns: expected a Netns, got ${describe(netns)}`);
  if (ledger !== undefined && !(ledger instanceof Ledger))
    throw new TypeError(`Invalid ledger: expected a Ledger, got ${describe(ledger)}`);
  if (replace === undefined || typeof replace === "boolean") return;
  if (!(replace instanceof XdpLink)) {
    const kind =
      typeof replace === "object" && replace !== null && "kind" in replace ? ` (a ${String(replace.kind)} link)` : "";
    throw new TypeError(`Invalid replace: expected a boolean or an XdpLink, got ${describe(replace)}${kind}`);
  }
  if (via !== undefined && via !== "auto" && (via === "link") !== (replace.kind === "xdp")) {
    throw new TypeError(
      `Cannot replace a ${replace.kind === "xdp" ? "bpf_link" : "netlink"} XDP attachment via ${via}`,
    );
  }
  if (mode !== undefined && mode !== "auto" && mode !== replace.mode) {
    throw new TypeError(
      `Cannot replace the XDP attachment on "${replace.ifname}" in ${mode} mode: it runs in ${replace.mode} mode`,
    );
  }
}

function modeOf(state: XdpState, programId: number): XdpMode | undefined {
  if (state.skb === programId) return "skb";
  if (state.drv === programId) return "drv";
  if (state.hw === programId) return "hw";
  return undefined;
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
  const parts = (["skb", "drv", "hw"] as const)
    .filter((m) => state[m] !== undefined)
    .map((m) => `program ${state[m]} in ${m} mode`);
  return parts.length === 0
    ? "nothing is attached"
    : `${parts.join(" and ")} ${parts.length === 1 ? "is" : "are"} attached`;
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
  return new SyscallError(`${what}${detail}`, {
    syscall: err.syscall,
    op: err.op,
    errno,
    hint: hint ?? err.hint,
    cause: err,
  });
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
      // Intent first: the new program is recorded (pending) before the request.
      const ledger = this.#entry === undefined ? undefined : this.#ledger;
      const pending = ledger?.recordXdp(
        {
          netnsInode: (this.#entry as XdpLedgerEntry).netnsInode,
          ifindex: this.ifindex,
          ifname: this.ifname,
          mode: this.mode,
        },
        program,
        { pending: true },
      );
      try {
        withProgram(this.#programId, what, (expected) => {
          setXdp(nl, this.ifindex, rawFd(program.fd), MODE_FLAGS[this.mode] | XDP_FLAGS_REPLACE, expected, what);
        });
      } catch (err) {
        if (pending !== undefined) ledger?.forget(pending);
        throw err;
      }
      if (pending !== undefined && ledger !== undefined) this.#entry = ledger.commit(pending);
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
        detachNetlink(
          nl,
          this.ifindex,
          this.mode,
          this.#programId,
          `Cannot detach XDP program ${this.#programId} from "${this.ifname}"`,
        );
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
      throw new TypeError(
        `Cannot pin the XDP attachment on "${this.ifname}": it was made through netlink and persists without a pin`,
      );
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
      throw new RangeError(
        `Cannot replace the XDP attachment on "${replace.ifname}" with one on ${describe(iface)}: pass the same interface`,
      );
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
      return new XdpLink({
        kind: "xdp",
        ifindex: target.index,
        ifname: target.name,
        mode: actual,
        programId: id,
        netns,
        link,
        ledger: undefined,
        entry: undefined,
      });
    } catch (err) {
      link.close();
      throw err;
    }
  }
  // Intent first: the program is recorded (pending) in every mode the kernel
  // may choose before the request, so a process killed at any point leaves
  // an entry for the place where it runs; the chosen mode is committed after.
  const ledger = options.ledger;
  const inode = netnsInode(netns);
  const candidates: readonly XdpMode[] = mode === "auto" ? ["drv", "skb"] : [mode];
  const pending: XdpLedgerEntry[] = [];
  const forgetPending = (keep?: XdpLedgerEntry): void => {
    for (const p of pending) if (p !== keep) ledger?.forget(p);
  };
  try {
    for (const m of candidates) {
      const p = ledger?.recordXdp({ netnsInode: inode, ifindex: target.index, ifname: target.name, mode: m }, program, {
        pending: true,
      });
      if (p !== undefined) pending.push(p);
    }
  } catch (err) {
    forgetPending();
    throw err;
  }
  try {
    setXdp(
      nl,
      target.index,
      rawFd(program.fd),
      modeFlags | (replace ? 0 : XDP_FLAGS_UPDATE_IF_NOEXIST),
      undefined,
      what,
    );
  } catch (err) {
    forgetPending();
    throw explain(err, what, mode, target);
  }
  let actual: XdpMode = mode === "auto" ? "skb" : mode;
  let entry: XdpLedgerEntry | undefined;
  try {
    if (mode === "auto") actual = modeOf(getIface(nl, target.index, netns, what).xdp, id) ?? "skb";
    const chosen = pending.find((p) => p.mode === actual);
    entry = ledger === undefined || chosen === undefined ? undefined : ledger.commit(chosen);
    forgetPending(chosen);
    return new XdpLink({
      kind: "xdpNetlink",
      ifindex: target.index,
      ifname: target.name,
      mode: actual,
      programId: id,
      netns,
      link: undefined,
      ledger,
      entry,
    });
  } catch (err) {
    // Nothing may stay attached that no handle or ledger knows about.
    detachNetlink(nl, target.index, actual, id, what);
    forgetPending();
    if (entry !== undefined) ledger?.forget(entry);
    throw err;
  }
}
