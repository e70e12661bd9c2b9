import type { NetlinkSocket, Netns } from "@dp/core";

/** What every part of an {@link Xfrm} handle shares. */
export interface XfrmContext {
  /** The request socket (`NETLINK_XFRM`), bound to the handle's namespace. */
  readonly nl: NetlinkSocket;
  /** The namespace, or undefined for the caller's. */
  readonly netns: Netns | undefined;
}
