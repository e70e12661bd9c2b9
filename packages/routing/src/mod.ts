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
export { watchRouting } from "./watch.ts";
export type {
  AddressChange,
  LinkChange,
  NeighborChange,
  RouteChange,
  RoutingAction,
  RoutingChange,
  RoutingChangeBase,
  RoutingEvent,
  RoutingObjectKind,
  RoutingResync,
  RoutingSynced,
  RuleChange,
  WatchRoutingOptions,
} from "./watch.ts";
export { decodeLink, encodeLinkAdd, encodeLinkDelete, encodeLinkSet } from "./links.ts";
export type {
  BridgeSpec,
  Link,
  LinkAddResolved,
  LinkChanges,
  LinkKind,
  LinkOperState,
  LinkSetResolved,
  LinkSpec,
  LinkStats,
  MacvlanInfo,
  MacvlanMode,
  MacvlanSpec,
  VethPeerSpec,
  VethSpec,
  VxlanInfo,
  VxlanSpec,
} from "./links.ts";
export { decodeAddress, encodeAddressRequest } from "./addresses.ts";
export type {
  Address,
  AddressAddFlag,
  AddressAddOptions,
  AddressDeleteOptions,
  AddressFlag,
  AddressListOptions,
  AddressRequest,
  AddressScopeName,
} from "./addresses.ts";
export { decodeNeighbor, encodeNeighborRequest } from "./neighbors.ts";
export type {
  Neighbor,
  NeighborAddOptions,
  NeighborFamily,
  NeighborFlag,
  NeighborKey,
  NeighborListOptions,
  NeighborRequest,
  NeighborState,
} from "./neighbors.ts";
export type { IpForwardOptions, RpFilterMode, SetIpForwardOptions } from "./sysctl.ts";
export { decodeRoute, encodeRouteRequest } from "./routes.ts";
export type {
  AddRoutesOptions,
  GetRouteOptions,
  ListRoutesOptions,
  NextHop,
  NextHopSpec,
  Route,
  RouteProtocol,
  RouteRequest,
  RouteScope,
  RouteSpec,
  RouteTable,
  RouteType,
} from "./routes.ts";
export { decodeRule, encodeRuleRequest } from "./rules.ts";
export type { ListRulesOptions, Rule, RuleAction, RuleRequest, RuleSpec } from "./rules.ts";
