import { attrString, type NetlinkSocket, type Netns, NetlinkError, NLM_F, netlinkAttributeMap } from "@dp/core";
import { IFLA, RTM } from "@dp/core/internal";

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

/**
 * Resolves a link name to its index in the context's namespace (indexes
 * pass through unchecked).
 *
 * @throws {NetlinkError} ENODEV when there is no such link.
 * @throws {RangeError} When the name is not a valid interface name.
 */
export function linkIndex(ctx: RoutingContext, dev: LinkRef): number {
  if (typeof dev === "number") {
    if (!Number.isInteger(dev) || dev < 1) throw new RangeError(`Invalid link index ${dev}`);
    return dev;
  }
  if (typeof dev !== "string" || dev.length === 0 || dev.length > 15 || /[\s/]/.test(dev)) {
    throw new RangeError(`Invalid link name ${JSON.stringify(dev)}: use 1-15 characters without spaces or "/"`);
  }
  const w = ctx.nl.writer();
  w.begin(RTM.GETLINK, NLM_F.REQUEST | NLM_F.ACK, ctx.nl.nextSeq()).zeros(IFINFOMSG);
  w.attrString(IFLA.IFNAME, dev);
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
  if (reply === undefined) throw new NetlinkError(`Cannot find link "${dev}"`, { op: "RTM_GETLINK", errno: 19 });
  return new DataView(reply.payload.buffer, reply.payload.byteOffset).getInt32(4, true);
}

/** Returns the name of a link index in the context's namespace, or undefined. */
export function linkNameOf(ctx: RoutingContext, index: number): string | undefined {
  const w = ctx.nl.writer();
  // struct ifinfomsg: family, pad, type, index, flags, change
  w.begin(RTM.GETLINK, NLM_F.REQUEST | NLM_F.ACK, ctx.nl.nextSeq()).u8(0).u8(0).u16(0).s32(index).u32(0).u32(0);
  w.end();
  try {
    const [reply] = ctx.nl.request(w, `find link ${index}`, "RTM_GETLINK");
    if (reply === undefined) return undefined;
    const name = netlinkAttributeMap(reply.payload.subarray(IFINFOMSG)).get(IFLA.IFNAME);
    return name === undefined ? undefined : attrString(name);
  } catch (err) {
    if (err instanceof NetlinkError && err.errno === 19) return undefined;
    throw err;
  }
}
