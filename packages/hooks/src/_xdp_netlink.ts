// The netlink side of XDP: reading which programs an interface runs
// (IFLA_XDP of RTM_GETLINK) and setting or removing a program with
// RTM_SETLINK. Used by attachXdp, the ledger's reconcile and
// listAttachments(); kept apart so that the ledger does not import xdp.ts.
import {
  attrString,
  attrU32,
  attrU8,
  BpfProgram,
  NetlinkError,
  type NetlinkSocket,
  Netns,
  netlinkAttributeMap,
  NLM_F,
  openNetlink,
  programById,
  SyscallError,
  XDP_FLAGS,
} from "@dp/core";
import { IFLA, IFLA_XDP, RTM, rawFd } from "@dp/core/internal";
import { checkInterfaceRef } from "./_iface.ts";

/**
 * Where an XDP program runs: `"skb"` is generic XDP (any device, after the
 * kernel built the socket buffer), `"drv"` native XDP in the driver,
 * `"hw"` offloaded to the NIC.
 *
 * @useDeclaredType
 */
export type XdpMode = "skb" | "drv" | "hw";

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

export const XDP_FLAGS_REPLACE: number = XDP_FLAGS.replace;
export const MODE_FLAGS: Readonly<Record<XdpMode, number>> = {
  skb: XDP_FLAGS.skbMode,
  drv: XDP_FLAGS.drvMode,
  hw: XDP_FLAGS.hwMode,
};
// enum XDP_ATTACHED_*: NONE, DRV, SKB, HW, MULTI.
const ATTACHED_MODES: readonly (XdpMode | undefined)[] = [undefined, "drv", "skb", "hw", undefined];
const IFINFOMSG_LEN = 16;
export const EINVAL = 22;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
const ENOENT = 2;
export const EOPNOTSUPP = 95;
export const ENOTSUPP = 524;

/** An interface as this module needs it: index, name and XDP programs. */
export interface IfaceView {
  readonly index: number;
  readonly name: string;
  readonly xdp: XdpState;
}

export function describe(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return v === null ? "null" : typeof v;
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

function netnsLabel(netns: Netns | undefined): string {
  return netns === undefined ? "" : ` in network namespace "${netns.name ?? netns.path}"`;
}

/** Looks an interface up by name or index (RTM_GETLINK) in the socket's namespace. */
export function getIface(nl: NetlinkSocket, iface: string | number, netns: Netns | undefined, what: string): IfaceView {
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
      throw new NetlinkError(`${what}: no interface ${describe(iface)}${netnsLabel(netns)}`, {
        op: "RTM_GETLINK",
        errno: ENODEV,
        cause: err,
      });
    }
    throw err;
  }
  const reply = replies.find((m) => m.type === RTM.NEWLINK);
  if (reply === undefined) {
    throw new NetlinkError(`${what}: no interface ${describe(iface)}${netnsLabel(netns)}`, {
      op: "RTM_GETLINK",
      errno: ENODEV,
    });
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
export function setXdp(
  nl: NetlinkSocket,
  ifindex: number,
  fd: number,
  flags: number,
  expectedFd: number | undefined,
  what: string,
): void {
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

export function openRoute(netns: Netns | undefined): NetlinkSocket {
  return openNetlink("route", netns === undefined ? {} : { netns });
}

/** Runs `fn` with a descriptor of the program with this id; -1 when it no longer exists. */
export function withProgram<T>(id: number, what: string, fn: (fd: number) => T): T {
  let prog: BpfProgram;
  try {
    prog = programById(id);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOENT) return fn(-1);
    throw new SyscallError(what, {
      syscall: "bpf",
      op: "BPF_PROG_GET_FD_BY_ID",
      errno: err instanceof SyscallError ? err.errno : EINVAL,
      cause: err,
    });
  }
  try {
    return fn(rawFd(prog.fd));
  } finally {
    prog.close();
  }
}

/** Removes program `id` from `mode` if it is still attached there; false when it was not. */
export function detachNetlink(nl: NetlinkSocket, ifindex: number, mode: XdpMode, id: number, what: string): boolean {
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
  if (!Object.hasOwn(MODE_FLAGS, place.mode))
    throw new TypeError(`Invalid XDP mode ${describe(place.mode)}: use "skb", "drv" or "hw"`);
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
