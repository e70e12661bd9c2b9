/**
 * Routing state over rtnetlink, per network namespace: links (veth, vxlan,
 * bridge, macvlan), addresses, routes, FIB rules, neighbours, sysctls and
 * change events. The counterpart of vishvananda/netlink for dp.
 *
 * @example Open a handle on a namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * assert.equal(rt.closed, false);
 * ```
 *
 * @module @dp/routing
 */
export { openRouting, Routing } from "./routing.ts";
export type { OpenRoutingOptions } from "./routing.ts";
export type { LinkRef } from "./_context.ts";
export { Addresses } from "./addresses.ts";
export { Links } from "./links.ts";
export { Neighbors } from "./neighbors.ts";
export { Routes } from "./routes.ts";
export { Rules } from "./rules.ts";
export { Sysctl } from "./sysctl.ts";
