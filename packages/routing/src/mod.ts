/**
 * Routing state over rtnetlink, per network namespace: links (veth, vxlan,
 * bridge, macvlan), addresses, routes, nexthop objects, FIB rules,
 * neighbours, sysctls and change events. The counterpart of vishvananda/netlink for dp.
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
export type { RawAttribute, Realms } from "./_check.ts";
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
  GeneveInfo,
  IfbSpec,
  IpTunnelInfo,
  IpvlanInfo,
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
  MacvtapSpec,
  NetkitInfo,
  TunInfo,
  VethPeerSpec,
  VethSpec,
  VlanInfo,
  VrfInfo,
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
  BpfEncap,
  GetRouteOptions,
  Ip6Encap,
  IpEncap,
  ListRoutesOptions,
  LwtProgram,
  MplsEncap,
  NextHop,
  NextHopSpec,
  OtherEncap,
  Route,
  RouteEncap,
  RouteMetricName,
  RouteMetrics,
  RoutePref,
  RouteProtocol,
  RouteRequest,
  RouteScope,
  RouteSpec,
  RouteTable,
  RouteType,
} from "./routes.ts";
export { decodeNexthop, encodeNexthopRequest, Nexthops } from "./nexthops.ts";
export type {
  ListNexthopsOptions,
  NexthopGroupEntry,
  NexthopObject,
  NexthopObjectSpec,
  NexthopRequest,
  ResilientGroup,
} from "./nexthops.ts";
export { decodeRule, encodeRuleRequest, RuleShadowedError } from "./rules.ts";
export type {
  IpProtoName,
  ListRulesOptions,
  PortRange,
  Rule,
  RuleAction,
  RuleRequest,
  RuleSpec,
  UidRange,
} from "./rules.ts";
