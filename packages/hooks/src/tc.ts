// attachTc: a tc program on a network interface's ingress or egress, held
// by a tcx bpf_link (Linux 6.6+) or by a netlink cls_bpf filter in
// direct-action mode on a clsact qdisc.
import {
  type BpfLink,
  BpfProgram,
  createLink,
  hasTcx,
  type LinkAnchor,
  NetlinkError,
  type NetlinkSocket,
  Netns,
  NotSupportedError,
  openNetlink,
  SyscallError,
  unpin,
  withNetns,
} from "@dp/core";
import { rawFd } from "@dp/core/internal";
import { checkInterfaceRef, netnsText, type ResolvedInterface, resolveInterface } from "./_iface.ts";
import {
  checkFilterName,
  choosePlace,
  deleteClsactIfUnused,
  dumpFilters,
  encodeFilterAdd,
  ensureClsact,
  hookText,
  MAX_HANDLE,
  MAX_PRIORITY,
  type PlaceRequest,
  removeFilter,
  type TcFilter,
  type TcFilterPlace,
} from "./_tc_netlink.ts";
import { Ledger, netnsInode, type TcLedgerEntry } from "./ledger.ts";
import type { Link } from "./link.ts";

export { deleteTcFilter, findTcFilter, listTcFilters } from "./_tc_netlink.ts";
export type { DeleteTcFilterOptions, TcFilter, TcFilterPlace } from "./_tc_netlink.ts";

/** The tc hook: packets arriving at the interface, or leaving it. */
export type TcDirection = "ingress" | "egress";

/** Options for {@link attachTc}. */
export interface TcOptions {
  /** The hook: packets the interface receives (`"ingress"`) or sends (`"egress"`). */
  readonly direction: TcDirection;
  /**
   * How to attach: `"tcx"` (a bpf_link, Linux 6.6+), `"netlink"` (a cls_bpf
   * filter on a clsact qdisc) or `"auto"`: tcx when the kernel has it, else
   * netlink. With `before`, `after` or `replace` naming a {@link TcLink},
   * `"auto"` follows that link's kind.
   *
   * @default "auto"
   */
  readonly mode?: "auto" | "tcx" | "netlink";
  /**
   * Run right before this attached program or link on the same hook.
   * tcx: `BPF_F_BEFORE` relative to it. netlink: the filter takes a
   * priority between that program's filter and the one before it (halfway,
   * leaving room for more); a RangeError when they are adjacent.
   *
   * @default appended after the hook's other programs
   */
  readonly before?: BpfProgram | Link;
  /**
   * Run right after this attached program or link on the same hook (see `before`).
   *
   * @default appended after the hook's other programs
   */
  readonly after?: BpfProgram | Link;
  /**
   * Atomically replace the program of this attachment, keeping its place:
   * tcx updates the link (`BPF_LINK_UPDATE`); netlink replaces the filter's
   * program at the same priority and handle. The returned link takes the
   * place over; `replace` is left detached and owning nothing.
   *
   * @default a new attachment
   */
  readonly replace?: Link;
  /**
   * The network namespace the interface lives in.
   *
   * @default the calling thread's
   */
  readonly netns?: Netns;
  /**
   * netlink: the filter priority (1-65535; lower runs first). Ignored by
   * tcx under `mode: "auto"`.
   *
   * @default after every filter on the hook: the highest priority + 256 (+ 1 near the top), or 32768 on an empty hook
   */
  readonly priority?: number;
  /**
   * netlink: the filter handle (1-0xffffffff), unique within a priority.
   *
   * @default the lowest handle free at that priority (1 at a new priority)
   */
  readonly handle?: number;
  /**
   * netlink: the filter name `tc filter show` prints (`TCA_BPF_NAME`).
   *
   * @default the program's name
   */
  readonly name?: string;
  /**
   * netlink: record the filter in this ledger, so that a restarted process
   * can `reconcile()` it after a crash. Detaching forgets the entry. tcx
   * links end with the process (unless pinned) and are not recorded.
   *
   * @default not recorded
   */
  readonly ledger?: Ledger;
}

/** A clsact qdisc's users in this process, by namespace and interface. */
interface ClsactUse {
  /** Whether a dp attachment in this process created the qdisc. */
  created: boolean;
  /** How many netlink TcLinks in this process hold a filter on it. */
  users: number;
}

const clsactUses = new Map<string, ClsactUse>();

interface TcxState {
  readonly kind: "tcx";
  readonly link: BpfLink;
  pinned: boolean;
}

interface NetlinkState {
  readonly kind: "tc";
  readonly nl: NetlinkSocket;
  readonly place: TcFilterPlace;
  readonly name: string;
  readonly netnsInode: number;
  readonly clsactKey: string;
  ledger: Ledger | undefined;
  entry: TcLedgerEntry | undefined;
}

/**
 * What a {@link TcLink} is made of.
 *
 * @internal
 */
interface TcLinkInit {
  readonly ifindex: number;
  readonly ifname: string;
  readonly direction: TcDirection;
  readonly netnsText: string;
  readonly programId: number;
  readonly state: TcxState | NetlinkState;
}

const ENOENT = 2;
const EEXIST = 17;

// Module-private access to a link's state (ordering against it, taking it over on replace).
let stateOf: (link: TcLink) => TcxState | NetlinkState | undefined;
let takeStateOf: (link: TcLink) => TcxState | NetlinkState;

/**
 * A tc program attached to an interface by {@link attachTc}: a tcx link
 * (`kind: "tcx"`) or a netlink cls_bpf filter (`kind: "tc"`).
 *
 * - `detach()` removes exactly this attachment: the tcx link, or the filter
 *   at this priority and handle while it still runs this link's program
 *   (a filter someone replaced is left alone). The clsact qdisc goes too
 *   when dp created it in this process and no filter is left on it.
 *   Detaching again does nothing.
 * - `[Symbol.dispose]` detaches, except a pinned tcx link, which it only closes.
 * - `close()` lets go of the handle without detaching a netlink filter
 *   (which outlives the process: record it in a ledger) or a pinned tcx
 *   link; an unpinned tcx link ends with its handle.
 *
 * @example Attaching to a namespace's loopback, then detaching
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 * import { attachTc } from "@dp/hooks";
 *
 * using ns = netns();
 * using prog = loadProgram({
 *   type: "schedCls", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0]), // TC_ACT_UNSPEC
 * });
 * const link = attachTc("lo", prog, { direction: "ingress", netns: ns.ns, mode: "netlink" });
 * assert.equal(link.kind, "tc");
 * assert.equal(link.priority, 32768); // the first filter on an empty hook
 * link.detach();
 * assert.equal(link.attached, false);
 * ```
 */
export class TcLink implements Link {
  /** `"tcx"` for a tcx link, `"tc"` for a netlink cls_bpf filter. */
  readonly kind: "tcx" | "tc";
  /** The interface index in its namespace. */
  readonly ifindex: number;
  /** The interface name at attach time. */
  readonly ifname: string;
  /** The hook. */
  readonly direction: TcDirection;
  #netnsText: string;
  #programId: number;
  #state: TcxState | NetlinkState | undefined;
  // What stays readable after detach: the filter's place and name, or the link id.
  #netlink: NetlinkState | undefined;
  #linkId: number | undefined;

  /**
   * Wraps an attachment.
   *
   * @internal Made by {@link attachTc}.
   * @param init The attachment.
   */
  constructor(init: TcLinkInit) {
    const state = init.state;
    this.kind = state.kind;
    this.ifindex = init.ifindex;
    this.ifname = init.ifname;
    this.direction = init.direction;
    this.#netnsText = init.netnsText;
    this.#programId = init.programId;
    this.#state = state;
    this.#netlink = state.kind === "tc" ? state : undefined;
    this.#linkId = state.kind === "tcx" ? state.link.id : undefined;
  }

  /** The attached program's kernel id (follows {@link TcLink.update}). */
  get programId(): number {
    return this.#programId;
  }

  /** Whether this handle still holds the attachment: false after `detach()`, `close()` or being replaced. */
  get attached(): boolean {
    return this.#state !== undefined;
  }

  /** netlink: the filter priority; `undefined` for tcx. */
  get priority(): number | undefined {
    return this.#netlink?.place.priority;
  }

  /** netlink: the filter handle; `undefined` for tcx. */
  get handle(): number | undefined {
    return this.#netlink?.place.handle;
  }

  /** netlink: the filter name `tc filter show` prints; `undefined` for tcx. */
  get filterName(): string | undefined {
    return this.#netlink?.name;
  }

  /** tcx: the bpf_link id; `undefined` for netlink. */
  get linkId(): number | undefined {
    return this.#linkId;
  }

  /**
   * Replaces the program atomically, keeping the place: tcx `BPF_LINK_UPDATE`,
   * netlink a filter change at the same priority and handle. With a ledger,
   * the new program is recorded (pending) before the request and the entry
   * committed after it, so a crash at any point leaves a recorded entry.
   *
   * @param program The new program, a `schedCls` one.
   * @throws {TypeError} For another program type, or when the link is not attached.
   * @throws {SyscallError} When the kernel refuses (netlink ENOENT: the filter is gone).
   */
  update(program: BpfProgram): void {
    const what = `Cannot update tc ${this.#where()} to program "${program instanceof BpfProgram ? program.name : ""}"`;
    checkProgram(program, what);
    const state = this.#state;
    if (state === undefined) throw new TypeError(`${what}: the link is not attached`);
    const id = program.info().id;
    if (state.kind === "tcx") {
      try {
        state.link.update(program);
      } catch (err) {
        throw rewrap(what, err);
      }
    } else {
      const pending = recordPending(state.ledger, state, program, this.ifname);
      try {
        replaceFilter(state, program, state.name, this.ifname, what);
      } catch (err) {
        forget(state.ledger, pending);
        throw err;
      }
      state.entry = commit(state.ledger, pending);
    }
    this.#programId = id;
  }

  /**
   * Removes the attachment: the tcx link (even when pinned), or exactly this
   * filter. Calling it again does nothing.
   *
   * @throws {SyscallError} When the kernel refuses (the handle stays attached, so it can be retried).
   */
  detach(): void {
    const state = this.#state;
    if (state === undefined) return;
    if (state.kind === "tcx") {
      state.link.detach();
      state.link.close();
    } else {
      removeFilter(state.nl, state.place, this.ifname, this.#programId);
      forget(state.ledger, state.entry);
      releaseClsact(state, this.ifname, true);
      state.nl.close();
    }
    this.#state = undefined;
  }

  /**
   * tcx: pins the link on bpffs, so it outlives this process; dispose then
   * only closes the handle. Remove the pin with `unpin(path)`.
   *
   * @param path An absolute path on bpffs.
   * @throws {TypeError} For a netlink filter (it outlives the process anyway: record it in a ledger) or a detached link.
   * @throws {SyscallError} EEXIST when the path is taken.
   */
  pin(path: string): void {
    const state = this.#state;
    if (state === undefined) throw new TypeError(`Cannot pin tc ${this.#where()}: the link is not attached`);
    if (state.kind !== "tcx") {
      throw new TypeError(`Cannot pin tc ${this.#where()}: netlink filters are not links; record them in a ledger`);
    }
    state.link.pin(path);
    state.pinned = true;
  }

  /**
   * Lets go of the handle: an unpinned tcx link ends with it; a pinned one
   * and a netlink filter stay attached. Calling it again does nothing.
   */
  close(): void {
    const state = this.#state;
    if (state === undefined) return;
    if (state.kind === "tcx") {
      state.link.close();
    } else {
      releaseClsact(state, this.ifname, false);
      state.nl.close();
    }
    this.#state = undefined;
  }

  /** Detaches, except a pinned tcx link, which is only closed. */
  [Symbol.dispose](): void {
    if (this.#state?.kind === "tcx" && this.#state.pinned) this.close();
    else this.detach();
  }

  #where(): string {
    return `${this.kind === "tcx" ? "link" : "filter"} on ${hookText(this.ifname, this.direction)}${this.#netnsText}`;
  }

  static {
    stateOf = (link) => link.#state;
    takeStateOf = (link) => {
      const state = link.#state;
      if (state === undefined) throw new TypeError(`Cannot replace tc ${link.#where()}: the link is not attached`);
      link.#state = undefined;
      return state;
    };
  }
}

function checkProgram(program: unknown, what: string): asserts program is BpfProgram {
  if (!(program instanceof BpfProgram)) throw new TypeError(`${what}: program must be a BpfProgram`);
  if (program.type === "schedAct") {
    throw new TypeError(`${what}: a schedAct program is a tc action, not a classifier: load it as schedCls`);
  }
  if (program.type !== "schedCls") {
    throw new TypeError(`${what}: a ${program.type} program cannot attach to tc (it needs a schedCls program)`);
  }
}

function rewrap(what: string, err: unknown): unknown {
  if (err instanceof SyscallError) {
    return new SyscallError(what, { syscall: err.syscall, op: err.op, errno: err.errno, hint: err.hint, cause: err });
  }
  return err;
}

function integerIn(value: unknown, min: number, max: number, name: string, what: string): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${what}: ${name} must be an integer from ${min} to ${max}, got ${String(value)}`);
  }
  return value;
}

/** The options, checked without any system call. */
interface Checked {
  readonly direction: TcDirection;
  readonly mode: "auto" | "tcx" | "netlink";
  readonly relative: { readonly side: "before" | "after"; readonly ref: BpfProgram | TcLink } | undefined;
  readonly replace: TcLink | undefined;
  readonly netns: Netns | undefined;
  readonly priority: number | undefined;
  readonly handle: number | undefined;
  readonly name: string | undefined;
  readonly ledger: Ledger | undefined;
}

function checkOptions(options: TcOptions, what: string): Checked {
  if (typeof options !== "object" || options === null)
    throw new TypeError(`${what}: options with a direction are required`);
  const direction = options.direction;
  if (direction !== "ingress" && direction !== "egress") {
    throw new TypeError(`${what}: direction must be "ingress" or "egress", got ${JSON.stringify(direction)}`);
  }
  const mode = options.mode ?? "auto";
  if (mode !== "auto" && mode !== "tcx" && mode !== "netlink") {
    throw new TypeError(`${what}: mode must be "auto", "tcx" or "netlink", got ${JSON.stringify(mode)}`);
  }
  const given = [options.before !== undefined, options.after !== undefined, options.replace !== undefined].filter(
    Boolean,
  ).length;
  if (given > 1) throw new TypeError(`${what}: before, after and replace exclude each other`);
  let relative: Checked["relative"];
  for (const side of ["before", "after"] as const) {
    const ref = options[side];
    if (ref === undefined) continue;
    if (!(ref instanceof BpfProgram) && !(ref instanceof TcLink)) {
      throw new TypeError(`${what}: ${side} must be a BpfProgram or a TcLink`);
    }
    relative = { side, ref };
  }
  const replace = options.replace;
  if (replace !== undefined && !(replace instanceof TcLink)) throw new TypeError(`${what}: replace must be a TcLink`);
  const link = replace ?? (relative?.ref instanceof TcLink ? relative.ref : undefined);
  if (link !== undefined) {
    if (link.direction !== direction) {
      throw new TypeError(
        `${what}: ${replace ? "replace" : relative?.side} is a link on ${link.direction}, not ${direction}`,
      );
    }
    const linkMode = link.kind === "tcx" ? "tcx" : "netlink";
    if (mode !== "auto" && mode !== linkMode) {
      throw new TypeError(
        `${what}: ${replace ? "replace" : relative?.side} is a ${linkMode} attachment, but mode is "${mode}"`,
      );
    }
    if (!link.attached) throw new TypeError(`${what}: ${replace ? "replace" : relative?.side} is not attached`);
  }
  const netns = options.netns;
  if (netns !== undefined && !(netns instanceof Netns)) throw new TypeError(`${what}: netns must be a Netns`);
  const priority =
    options.priority === undefined ? undefined : integerIn(options.priority, 1, MAX_PRIORITY, "priority", what);
  const handle = options.handle === undefined ? undefined : integerIn(options.handle, 1, MAX_HANDLE, "handle", what);
  const name = options.name === undefined ? undefined : checkFilterName(options.name);
  if (priority !== undefined && (relative !== undefined || replace !== undefined)) {
    throw new TypeError(`${what}: priority excludes before, after and replace`);
  }
  if (handle !== undefined && replace !== undefined) throw new TypeError(`${what}: handle excludes replace`);
  if (mode === "tcx" && (priority !== undefined || handle !== undefined || name !== undefined)) {
    throw new TypeError(`${what}: priority, handle and name are for netlink filters, not tcx links`);
  }
  const ledger = options.ledger;
  if (ledger !== undefined && !(ledger instanceof Ledger))
    throw new TypeError(`${what}: ledger must be a Ledger from openLedger()`);
  return {
    direction,
    mode: link === undefined ? mode : link.kind === "tcx" ? "tcx" : "netlink",
    relative,
    replace,
    netns,
    priority,
    handle,
    name,
    ledger,
  };
}

/**
 * Attaches a tc program (`schedCls`, direct-action) to a network
 * interface's ingress or egress.
 *
 * - tcx (Linux 6.6+): a bpf_link; programs run in link order, which
 *   `before`/`after` choose; the attachment ends with the link unless it
 *   is pinned. The same program twice on one hook fails (EEXIST).
 * - netlink: a cls_bpf filter (`bpf da`, every protocol) on the interface's
 *   clsact qdisc, created when missing; an explicit priority and handle
 *   (by default after every other filter) and a name (the program's).
 *   The filter outlives the process: pass a `ledger` so a restarted process
 *   can clean up. The same program twice on one hook fails (EEXIST) too,
 *   like tcx; use `replace` or `update()` to swap programs.
 *
 * Detaching removes exactly this attachment, never others' filters, and
 * the clsact qdisc only when dp created it and nothing else uses it.
 *
 * @param iface The interface name or index, in `options.netns`.
 * @param program A `schedCls` program. Returning `TC_ACT_UNSPEC` (-1, tcx's `TCX_NEXT`) lets later programs run.
 * @param options Direction, mode, place and namespace.
 * @returns The attachment.
 * @throws {TypeError} Before any system call: a program that is not `schedCls` (XDP, `schedAct`, ...), bad options or a link of another mode or direction in `before`/`after`/`replace`.
 * @throws {RangeError} Before any system call for a malformed interface name or index, priority, handle or name; later when no priority is free where `before`/`after` ask.
 * @throws {SyscallError} ENODEV naming the interface when there is none; EEXIST when the program is attached there already or the place is taken; ENOENT when the `before`/`after` program is not attached there.
 * @throws {NotSupportedError} `mode: "tcx"` on a kernel without tcx.
 * @throws {ClosedError} When the program (or a `before`/`after` program) was closed.
 * @capability CAP_NET_ADMIN
 * @capability CAP_BPF
 * @kernel 6.6 tcx links; netlink cls_bpf direct-action works on 4.4+
 * @example Running one program before another one on egress
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { netns } from "@dp/core/testing";
 * import { attachTc } from "@dp/hooks";
 *
 * const instructions = new Uint8Array([0xb7, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x95, 0, 0, 0, 0, 0, 0, 0]); // TC_ACT_UNSPEC
 * using ns = netns();
 * using a = loadProgram({ name: "a", type: "schedCls", license: "GPL", instructions });
 * using b = loadProgram({ name: "b", type: "schedCls", license: "GPL", instructions });
 * using first = attachTc("lo", a, { direction: "egress", netns: ns.ns, mode: "netlink" });
 * using second = attachTc("lo", b, { direction: "egress", netns: ns.ns, mode: "netlink", before: a });
 * assert.ok(second.priority! < first.priority!);
 * ```
 */
export function attachTc(iface: string | number, program: BpfProgram, options: TcOptions): TcLink {
  const progText = program instanceof BpfProgram ? `${program.type} program "${program.name}"` : "program";
  const early = `Cannot attach ${progText} to tc ${typeof iface === "string" ? JSON.stringify(iface) : `interface ${String(iface)}`}`;
  checkProgram(program, early);
  const o = checkOptions(options, early);
  checkInterfaceRef(iface);
  const nsText = netnsText(o.netns);
  const dev = resolveInterface(iface, o.netns, `${early.slice("Cannot ".length)} ${o.direction}`);
  const action = `attach ${progText} to tc ${hookText(dev.name, o.direction)}${nsText}`;
  const what = `Cannot ${action}`;
  const other = o.replace ?? (o.relative?.ref instanceof TcLink ? o.relative.ref : undefined);
  if (other !== undefined && other.ifindex !== dev.index) {
    throw new TypeError(`${what}: ${o.replace ? "replace" : o.relative?.side} is a link on "${other.ifname}"`);
  }
  let mode = o.mode;
  if (mode === "auto") mode = hasTcx() ? "tcx" : "netlink";
  else if (mode === "tcx" && !hasTcx()) throw new NotSupportedError("tcx links", { minKernel: "6.6" });
  const programId = program.info().id;
  const state = mode === "tcx" ? attachTcx(dev, program, o, what) : attachNetlink(dev, program, programId, o, action);
  return new TcLink({
    ifindex: dev.index,
    ifname: dev.name,
    direction: o.direction,
    netnsText: nsText,
    programId,
    state,
  });
}

function attachTcx(dev: ResolvedInterface, program: BpfProgram, o: Checked, what: string): TcxState {
  if (o.replace !== undefined) {
    const state = stateOf(o.replace);
    if (state?.kind !== "tcx") throw new TypeError(`${what}: replace is not an attached tcx link`);
    try {
      state.link.update(program);
    } catch (err) {
      throw rewrap(what, err);
    }
    takeStateOf(o.replace);
    return state;
  }
  let anchor: LinkAnchor | undefined;
  if (o.relative !== undefined) {
    const ref = o.relative.ref;
    let target: BpfProgram | BpfLink;
    if (ref instanceof TcLink) {
      const s = stateOf(ref);
      if (s?.kind !== "tcx") throw new TypeError(`${what}: ${o.relative.side} is not an attached tcx link`);
      target = s.link;
    } else {
      target = ref;
    }
    anchor = o.relative.side === "before" ? { before: target } : { after: target };
  }
  const attachType = o.direction === "ingress" ? "tcxIngress" : "tcxEgress";
  const create = (): BpfLink =>
    createLink(program, { ifindex: dev.index }, attachType, anchor === undefined ? {} : { anchor });
  try {
    const link = o.netns === undefined ? create() : withNetns(o.netns, create);
    return { kind: "tcx", link, pinned: false };
  } catch (err) {
    throw rewrap(`${what} (tcx)`, err);
  }
}

/** Turns before/after into the priority of the filter to go next to. */
function placeRequest(filters: readonly TcFilter[], o: Checked, dev: ResolvedInterface, what: string): PlaceRequest {
  const rel = o.relative;
  if (rel === undefined) return { priority: o.priority, handle: o.handle };
  let matches: TcFilter[];
  let label: string;
  if (rel.ref instanceof TcLink) {
    const s = stateOf(rel.ref);
    if (s?.kind !== "tc") throw new TypeError(`${what}: ${rel.side} is not an attached netlink filter`);
    matches = filters.filter((f) => f.priority === s.place.priority && f.handle === s.place.handle);
    label = `filter priority ${s.place.priority} handle ${s.place.handle}`;
  } else {
    const id = rel.ref.info().id;
    matches = filters.filter((f) => f.kind === "bpf" && f.programId === id);
    label = `program "${rel.ref.name}" (id ${id})`;
  }
  const anchor = rel.side === "before" ? matches[0] : matches[matches.length - 1];
  if (anchor === undefined) {
    throw new SyscallError(what, {
      syscall: "netlink",
      op: "RTM_GETTFILTER",
      errno: ENOENT,
      hint: `${label} is not attached to ${hookText(dev.name, o.direction)}`,
    });
  }
  return rel.side === "before"
    ? { before: anchor.priority, handle: o.handle }
    : { after: anchor.priority, handle: o.handle };
}

function attachNetlink(
  dev: ResolvedInterface,
  program: BpfProgram,
  programId: number,
  o: Checked,
  action: string,
): NetlinkState {
  const what = `Cannot ${action}`;
  const name = o.name ?? program.name;
  if (o.replace !== undefined) {
    const state = stateOf(o.replace);
    if (state?.kind !== "tc") throw new TypeError(`${what}: replace is not an attached netlink filter`);
    const ledger = o.ledger ?? state.ledger;
    // Intent first: the new program is recorded (pending) before the request.
    const pending = recordPending(ledger, state, program, dev.name);
    try {
      replaceFilter(state, program, name, dev.name, what);
    } catch (err) {
      forget(ledger, pending);
      throw err;
    }
    takeStateOf(o.replace);
    if (ledger !== state.ledger) forget(state.ledger, state.entry);
    return { ...state, name, ledger, entry: commit(ledger, pending) };
  }
  const nl = openNetlink("route", o.netns === undefined ? {} : { netns: o.netns });
  let use: ClsactUse | undefined;
  let key = "";
  try {
    const inode = netnsInode(o.netns);
    key = `${inode}:${dev.index}`;
    const created = ensureClsact(nl, dev.index, dev.name);
    use = clsactUses.get(key);
    if (use === undefined) {
      use = { created, users: 0 };
      clsactUses.set(key, use);
    } else if (created) {
      use.created = true;
    }
    use.users++;
    const filters = dumpFilters(nl, dev.index, o.direction, dev.name);
    const same = filters.find((f) => f.kind === "bpf" && f.programId === programId);
    if (same !== undefined) {
      throw new SyscallError(what, {
        syscall: "netlink",
        op: "RTM_NEWTFILTER",
        errno: EEXIST,
        hint: `the program is attached there already (filter priority ${same.priority} handle ${same.handle}): use replace or update() to swap programs`,
      });
    }
    let placed: { priority: number; handle: number };
    try {
      placed = choosePlace(filters, placeRequest(filters, o, dev, what));
    } catch (err) {
      if (err instanceof RangeError) throw new RangeError(`${what}: ${err.message}`, { cause: err });
      throw err;
    }
    const place: TcFilterPlace = { ifindex: dev.index, direction: o.direction, ...placed };
    // Intent first: a process killed anywhere after this leaves an entry
    // whose place reconcile() checks (pending while the request is out).
    const pending = recordPending(o.ledger, { netnsInode: inode, place }, program, dev.name);
    const w = nl.writer();
    encodeFilterAdd(w, nl.nextSeq(), { ...place, fd: rawFd(program.fd), name }, "create");
    try {
      nl.request(w, `${action} (priority ${place.priority}, handle ${place.handle})`, "RTM_NEWTFILTER");
    } catch (err) {
      forget(o.ledger, pending);
      if (err instanceof NetlinkError && err.errno === EEXIST) {
        throw new SyscallError(`${what} (priority ${place.priority}, handle ${place.handle})`, {
          syscall: "netlink",
          op: "RTM_NEWTFILTER",
          errno: EEXIST,
          hint: `another filter holds that place${err.extAck ? ` (${err.extAck})` : ""}`,
          cause: err,
        });
      }
      throw err;
    }
    let entry: TcLedgerEntry | undefined;
    try {
      entry = commit(o.ledger, pending);
    } catch (err) {
      removeFilter(nl, place, dev.name, programId);
      forget(o.ledger, pending);
      throw err;
    }
    return { kind: "tc", nl, place, name, netnsInode: inode, clsactKey: key, ledger: o.ledger, entry };
  } catch (err) {
    if (use !== undefined) {
      use.users--;
      try {
        if (use.users === 0 && use.created) deleteClsactIfUnused(nl, dev.index, dev.name);
      } catch {
        // The attach error matters more than a leftover empty qdisc.
      }
      if (use.users === 0) clsactUses.delete(key);
    }
    nl.close();
    throw err;
  }
}

/** Records the filter's program at its place as a pending ledger entry, before the request; undefined without a ledger. */
function recordPending(
  ledger: Ledger | undefined,
  at: { readonly netnsInode: number; readonly place: TcFilterPlace },
  program: BpfProgram,
  ifname: string,
): TcLedgerEntry | undefined {
  if (ledger === undefined) return undefined;
  const { place } = at;
  return ledger.recordTc(
    {
      netnsInode: at.netnsInode,
      ifindex: place.ifindex,
      ifname,
      direction: place.direction,
      priority: place.priority,
      handle: place.handle,
    },
    program,
    { pending: true },
  );
}

/** Commits a pending entry once the kernel has the filter (replacing the place's earlier entry). */
function commit(ledger: Ledger | undefined, pending: TcLedgerEntry | undefined): TcLedgerEntry | undefined {
  return ledger === undefined || pending === undefined ? undefined : ledger.commit(pending);
}

/** Drops the filter's ledger entry (its pin alone when the ledger was closed meanwhile). */
function forget(ledger: Ledger | undefined, entry: TcLedgerEntry | undefined): void {
  if (ledger === undefined || entry === undefined) return;
  if (ledger.closed) unpin(entry.path);
  else ledger.forget(entry);
}

function replaceFilter(state: NetlinkState, program: BpfProgram, name: string, ifname: string, what: string): void {
  const w = state.nl.writer();
  encodeFilterAdd(w, state.nl.nextSeq(), { ...state.place, fd: rawFd(program.fd), name }, "replace");
  try {
    state.nl.request(
      w,
      `replace the program of tc filter ${hookText(ifname, state.place.direction)} priority ${state.place.priority} handle ${state.place.handle}`,
      "RTM_NEWTFILTER",
    );
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === ENOENT) {
      throw new SyscallError(what, {
        syscall: "netlink",
        op: "RTM_NEWTFILTER",
        errno: ENOENT,
        hint: `the filter at priority ${state.place.priority} handle ${state.place.handle} is gone`,
        cause: err,
      });
    }
    throw err;
  }
}

function releaseClsact(state: NetlinkState, ifname: string, detaching: boolean): void {
  const use = clsactUses.get(state.clsactKey);
  if (use === undefined) return;
  use.users--;
  if (use.users > 0) return;
  clsactUses.delete(state.clsactKey);
  if (detaching && use.created) deleteClsactIfUnused(state.nl, state.place.ifindex, ifname);
}
