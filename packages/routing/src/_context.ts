import {
  attrString,
  type NetlinkSocket,
  type NetlinkWriter,
  type Netns,
  NetlinkError,
  NLM_F,
  netlinkAttributeMap,
} from "@dp/core";
import { IFLA, RTM } from "@dp/core/internal";
import { checkLinkRef, IFNAME_MAX } from "./_check.ts";

/** A link named by its name or by its interface index. */
export type LinkRef = string | number;

/** What every part of a {@link Routing} handle shares. */
export interface RoutingContext {
  /** The request socket, bound to the handle's namespace. */
  readonly nl: NetlinkSocket;
  /** The namespace, or undefined for the caller's. */
  readonly netns: Netns | undefined;
}

const IFINFOMSG = 16;
const ENODEV = 19;
const utf8 = new TextEncoder();

/**
 * Resolves a link to its index in the context's namespace, after the shared
 * name and index check. A name is looked up by `IFLA_IFNAME`, or by
 * `IFLA_ALT_IFNAME` when it is longer than an interface name can be (an
 * alternative name). An index passes through unless `mustExist` asks to
 * look it up too (lists, where the kernel would just return nothing).
 *
 * @throws {NetlinkError} ENODEV when there is no such link.
 * @throws {TypeError} When `dev` is neither a name nor an integer.
 * @throws {RangeError} When the name or index is not valid.
 */
export function linkIndex(ctx: RoutingContext, dev: LinkRef, what = "link", mustExist = false): number {
  checkLinkRef(dev, what);
  if (typeof dev === "number") {
    if (mustExist && linkNameOf(ctx, dev) === undefined) {
      throw new NetlinkError(`Cannot find link ${dev}`, { op: "RTM_GETLINK", errno: ENODEV });
    }
    return dev;
  }
  const w = ctx.nl.writer();
  w.begin(RTM.GETLINK, NLM_F.REQUEST | NLM_F.ACK, ctx.nl.nextSeq()).zeros(IFINFOMSG);
  writeLinkName(w, dev);
  w.end();
  let replies;
  try {
    replies = ctx.nl.request(w, `find link "${dev}"`, "RTM_GETLINK");
  } catch (err) {
    if (err instanceof NetlinkError) {
      throw new NetlinkError(`Cannot find link "${dev}"`, { op: "RTM_GETLINK", errno: err.errno, extAck: err.extAck });
    }
    throw err;
  }
  const reply = replies.find((m) => m.type === RTM.NEWLINK);
  if (reply === undefined) throw new NetlinkError(`Cannot find link "${dev}"`, { op: "RTM_GETLINK", errno: ENODEV });
  return new DataView(reply.payload.buffer, reply.payload.byteOffset).getInt32(4, true);
}

/**
 * Writes the attribute that names a link in an `RTM_GETLINK` request:
 * `IFLA_IFNAME`, or `IFLA_ALT_IFNAME` for a name longer than 15 bytes.
 */
export function writeLinkName(w: NetlinkWriter, name: string): void {
  w.attrString(utf8.encode(name).length > IFNAME_MAX ? IFLA.ALT_IFNAME : IFLA.IFNAME, name);
}

/** Returns the name of a link index in the context's namespace, or undefined. */
export function linkNameOf(ctx: RoutingContext, index: number): string | undefined {
  const w = ctx.nl.writer();
  // struct ifinfomsg: family, pad, type, index, flags, change
  w.begin(RTM.GETLINK, NLM_F.REQUEST | NLM_F.ACK, ctx.nl.nextSeq())
    .u8(0)
    .u8(0)
    .u16(0)
    .s32(index)
    .u32(0)
    .u32(0);
  w.end();
  try {
    const [reply] = ctx.nl.request(w, `find link ${index}`, "RTM_GETLINK");
    if (reply === undefined) return undefined;
    const name = netlinkAttributeMap(reply.payload.subarray(IFINFOMSG)).get(IFLA.IFNAME);
    return name === undefined ? undefined : attrString(name);
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === ENODEV) return undefined;
    throw err;
  }
}
