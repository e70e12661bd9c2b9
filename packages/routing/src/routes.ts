import { formatIp, type IpAddress, type IpFamily, NetlinkError, type NetlinkWriter, NLM_F, parseIp } from "@dp/core";
import { RT_SCOPE, RT_TABLE, RTA, RTAX, RTM, RTN } from "@dp/core/internal";
import { checkBoolean, checkInteger, checkObject, named, parsePrefix, protocolNumber, quote, tableNumber } from "./_check.ts";
import { type LinkRef, linkIndex, type RoutingContext } from "./_context.ts";

// include/linux/socket.h
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
// include/uapi/linux/rtnetlink.h
const RTNH_F_ONLINK = 4;
const RTPROT_BOOT = 3;
// Sizes of struct rtmsg, struct rtnexthop and the nlattr header.
const RTMSG_LEN = 12;
const RTNH_LEN = 8;
const NLA_HDRLEN = 4;
// include/uapi/asm-generic/errno-base.h
const ENOENT = 2;
const ESRCH = 3;
const ENODEV = 19;

/**
 * How many requests {@link Routes.addMany} puts into one datagram. The
 * kernel queues its answers on the socket before the first is read: 128
 * refusals (each about 1 KiB of buffer with its ext-ack) fit the default
 * 208 KiB receive buffer; about 270 do not.
 */
const BATCH = 128;

/**
 * A route's type (`RTN_*`): what the kernel does with matching packets.
 * `"unicast"` forwards, `"local"` delivers locally, `"blackhole"` drops
 * silently, `"unreachable"` and `"prohibit"` drop with an ICMP error,
 * `"throw"` ends the lookup in this table.
 */
export type RouteType =
  | "unspec"
  | "unicast"
  | "local"
  | "broadcast"
  | "anycast"
  | "multicast"
  | "blackhole"
  | "unreachable"
  | "prohibit"
  | "throw"
  | "nat"
  | "xresolve";

// Indexed by RTN_* value.
const ROUTE_TYPES: readonly RouteType[] = [
  "unspec",
  "unicast",
  "local",
  "broadcast",
  "anycast",
  "multicast",
  "blackhole",
  "unreachable",
  "prohibit",
  "throw",
  "nat",
  "xresolve",
];

/** A routing table: its number (1 to 2³²−1) or one of the reserved names. */
export type RouteTable = number | "main" | "local" | "default";

/** A route scope (`RT_SCOPE_*`): a number (0-255) or its name. */
export type RouteScope = number | "universe" | "site" | "link" | "host" | "nowhere";

/**
 * Who installed a route or rule (`RTPROT_*`): a number (0-255) or one of
 * the names iproute2 knows. The kernel does not interpret values from
 * `"static"` (4) up.
 */
export type RouteProtocol =
  | number
  | "unspec"
  | "redirect"
  | "kernel"
  | "boot"
  | "static"
  | "gated"
  | "ra"
  | "mrt"
  | "zebra"
  | "bird"
  | "dnrouted"
  | "xorp"
  | "ntk"
  | "dhcp"
  | "mrouted"
  | "keepalived"
  | "babel"
  | "openr"
  | "bgp"
  | "isis"
  | "ospf"
  | "rip"
  | "eigrp";

const SCOPES: Readonly<Record<string, number>> = {
  universe: RT_SCOPE.UNIVERSE,
  site: RT_SCOPE.SITE,
  link: RT_SCOPE.LINK,
  host: RT_SCOPE.HOST,
  nowhere: RT_SCOPE.NOWHERE,
};

/** One next hop of a multipath route, as the kernel reports it. */
export interface NextHop {
  /** The gateway address, when the next hop has one. */
  readonly via?: string;
  /** The interface index (0 when the kernel gave none). */
  readonly dev: number;
  /** The relative weight, 1-256 (`rtnh_hops + 1`). */
  readonly weight: number;
  /** Whether the gateway is assumed to be on link (`RTNH_F_ONLINK`). */
  readonly onlink: boolean;
}

/** A route, decoded from the kernel's `RTM_NEWROUTE` message. */
export interface Route {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** The destination prefix, such as `"10.0.0.0/24"`, or `"default"` for a zero-length prefix. */
  readonly dst: string;
  /** The table number (254 is main, 255 local). */
  readonly table: number;
  /** What the route does. */
  readonly type: RouteType;
  /** Who installed it (`RTPROT_*`; 2 kernel, 3 boot, 4 static). */
  readonly protocol: number;
  /** The scope (`RT_SCOPE_*`; 0 universe, 253 link, 254 host). */
  readonly scope: number;
  /** The metric (priority); 0 when the kernel gave none. */
  readonly metric: number;
  /** Whether the gateway is assumed to be on link (`RTNH_F_ONLINK`). */
  readonly onlink: boolean;
  /** The gateway address. */
  readonly via?: string;
  /** The output interface index. */
  readonly dev?: number;
  /** The preferred source address (`RTA_PREFSRC`). */
  readonly src?: string;
  /** The path MTU (`RTAX_MTU`), when set on the route. */
  readonly mtu?: number;
  /** The next hops of a multipath route. */
  readonly nexthops?: readonly NextHop[];
}

/** One next hop of a multipath {@link RouteSpec}. */
export interface NextHopSpec {
  /**
   * The gateway address; an IPv6 gateway of an IPv4 route is sent as `RTA_VIA`.
   *
   * @default none (a direct next hop through `dev`)
   */
  readonly via?: string;
  /**
   * The output interface.
   *
   * @default none (the kernel finds it from `via`)
   */
  readonly dev?: LinkRef;
  /**
   * The relative weight, 1-256.
   *
   * @default 1
   */
  readonly weight?: number;
  /**
   * Treat the gateway as on link even when no address covers it.
   *
   * @default false
   */
  readonly onlink?: boolean;
}

/**
 * A route to add, replace or delete. The defaults are those of iproute2's
 * `ip route`, so a spec and the matching `ip route add` command send the
 * same request.
 */
export interface RouteSpec {
  /** The destination: a prefix such as `"10.0.0.0/24"` (a bare address is a host route) or `"default"`. */
  readonly dst: string;
  /**
   * The address family, needed only for a `"default"` route without a gateway.
   *
   * @default the family of `dst`, else of `via`, the first next hop or `src`, else 4
   */
  readonly family?: IpFamily;
  /**
   * The gateway address; an IPv6 gateway of an IPv4 route is sent as `RTA_VIA`.
   *
   * @default none
   */
  readonly via?: string;
  /**
   * The output interface.
   *
   * @default none
   */
  readonly dev?: LinkRef;
  /**
   * The preferred source address (`RTA_PREFSRC`).
   *
   * @default none
   */
  readonly src?: string;
  /**
   * The table. Tables above 255 travel in `RTA_TABLE`.
   *
   * @default "main", or "local" for types local, broadcast, anycast and nat
   */
  readonly table?: RouteTable;
  /**
   * The route type.
   *
   * @default "unicast" (when deleting: any type)
   */
  readonly type?: RouteType;
  /**
   * Who installs the route.
   *
   * @default "boot" (when deleting: any protocol)
   */
  readonly protocol?: RouteProtocol;
  /**
   * The scope.
   *
   * @default as iproute2: universe for IPv6 and for routes with a gateway, host for local routes, link for broadcast, multicast, anycast and direct unicast routes (when deleting: any scope)
   */
  readonly scope?: RouteScope;
  /**
   * The metric (priority); lower wins.
   *
   * @default none: 0 for IPv4, 1024 for IPv6 (when deleting: any metric)
   */
  readonly metric?: number;
  /**
   * The path MTU (`RTAX_MTU`).
   *
   * @default none
   */
  readonly mtu?: number;
  /**
   * Treat the gateway as on link even when no address covers it.
   *
   * @default false
   */
  readonly onlink?: boolean;
  /**
   * The next hops of a multipath route, instead of `via` and `dev`.
   *
   * @default none
   */
  readonly nexthops?: readonly NextHopSpec[];
}

/** Options for {@link Routes.list}. */
export interface ListRoutesOptions {
  /**
   * The table to list, or `"all"` for every table.
   *
   * @default "main"
   */
  readonly table?: RouteTable | "all";
  /**
   * Only routes of this family.
   *
   * @default both
   */
  readonly family?: IpFamily;
  /**
   * Only routes through this interface.
   *
   * @default any
   */
  readonly dev?: LinkRef;
}

/** Options for {@link Routes.get}. */
export interface GetRouteOptions {
  /**
   * The table to look in.
   *
   * @default "main"
   */
  readonly table?: RouteTable;
  /**
   * Only a route with this metric.
   *
   * @default the first route for the prefix (the lowest metric)
   */
  readonly metric?: number;
}

/** Options for {@link Routes.addMany}. */
export interface AddRoutesOptions {
  /**
   * Replace routes that exist (`ip route replace`) instead of failing with EEXIST.
   *
   * @default false
   */
  readonly replace?: boolean;
}

/** A route request for {@link encodeRouteRequest}. */
export interface RouteRequest {
  /** `"add"` (create, fail if it exists), `"replace"` (create or replace) or `"delete"`. */
  readonly op: "add" | "replace" | "delete";
  /** The message's sequence number. */
  readonly seq: number;
  /** The route; its `dev` and next-hop `dev`s must be interface indexes. */
  readonly spec: RouteSpec;
}

/** A validated route spec with its addresses parsed. */
interface ParsedRoute {
  readonly family: IpFamily;
  readonly dst: Uint8Array | undefined;
  readonly dstLen: number;
  readonly via: Uint8Array | undefined;
  readonly dev: LinkRef | undefined;
  readonly src: Uint8Array | undefined;
  readonly table: number | undefined;
  readonly type: number | undefined;
  readonly protocol: number | undefined;
  readonly scope: number | undefined;
  readonly metric: number | undefined;
  readonly mtu: number | undefined;
  readonly onlink: boolean;
  readonly nexthops: readonly ParsedNextHop[] | undefined;
  /** The spec it came from, for messages (see {@link describeRoute}). */
  readonly spec: RouteSpec;
}

interface ParsedNextHop {
  readonly via: Uint8Array | undefined;
  readonly dev: LinkRef | undefined;
  readonly weight: number;
  readonly onlink: boolean;
}






function checkLinkRef(v: unknown, what: string): LinkRef | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "number") return checkInteger(v, what, 1, 0x7fffffff);
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an interface name or index, got ${typeof v}`);
  if (v.length === 0 || v.length > 15 || /[\s/]/.test(v)) {
    throw new RangeError(`Invalid ${what} ${quote(v)}: use 1-15 characters without spaces or "/"`);
  }
  return v;
}




function parseAddress(v: unknown, what: string): IpAddress {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an IP address string, got ${typeof v}`);
  try {
    return parseIp(v);
  } catch (err) {
    throw new SyntaxError(`Invalid ${what} ${quote(v)}: not an IPv4 or IPv6 address`, { cause: err });
  }
}


const SPEC_KEYS = new Set(["dst", "family", "via", "dev", "src", "table", "type", "protocol", "scope", "metric", "mtu", "onlink", "nexthops"]);
const NEXTHOP_KEYS = new Set(["via", "dev", "weight", "onlink"]);

/** Validates a spec and parses its addresses; `at` prefixes field names ("route " or "specs[3]."). */
function parseRouteSpec(spec: RouteSpec, at: string): ParsedRoute {
  checkObject(spec, at === "route " ? "route spec" : at.slice(0, -1));
  for (const key in spec) {
    if (!SPEC_KEYS.has(key)) throw new TypeError(`Invalid ${at}${key}: not a route field`);
  }
  let family: IpFamily | undefined;
  if (spec.family !== undefined) {
    if (spec.family !== 4 && spec.family !== 6) throw new TypeError(`Invalid ${at}family ${quote(spec.family)}: use 4 or 6`);
    family = spec.family;
  }
  let dst: Uint8Array | undefined;
  let dstLen = 0;
  if (spec.dst === "default") {
    // The family comes from the addresses below.
  } else {
    if (spec.dst === undefined) throw new TypeError(`Invalid ${at}dst: a prefix or "default" is required`);
    const p = parsePrefix(spec.dst, `${at}dst`);
    if (family !== undefined && family !== p.family) {
      throw new RangeError(`Invalid ${at}family ${family}: dst ${quote(spec.dst)} is IPv${p.family}`);
    }
    family = p.family;
    dst = p.bytes;
    dstLen = p.prefixLength;
  }
  const via = spec.via === undefined ? undefined : parseAddress(spec.via, `${at}via`);
  const src = spec.src === undefined ? undefined : parseAddress(spec.src, `${at}src`);
  let nexthops: ParsedNextHop[] | undefined;
  const nhFamilies: IpFamily[] = [];
  if (spec.nexthops !== undefined) {
    if (!Array.isArray(spec.nexthops)) throw new TypeError(`Invalid ${at}nexthops: expected an array`);
    if (spec.nexthops.length === 0) throw new RangeError(`Invalid ${at}nexthops: give at least one next hop`);
    if (spec.via !== undefined || spec.dev !== undefined || spec.onlink === true) {
      throw new TypeError(`Invalid ${at}nexthops: give via, dev and onlink in each next hop, not on the route`);
    }
    nexthops = (spec.nexthops as readonly NextHopSpec[]).map((nh, i) => {
      const f = `${at}nexthops[${i}]`;
      checkObject(nh, f);
      for (const key of Object.keys(nh)) {
        if (!NEXTHOP_KEYS.has(key)) throw new TypeError(`Invalid ${f}.${key}: not a next-hop field`);
      }
      const nhVia = nh.via === undefined ? undefined : parseAddress(nh.via, `${f}.via`);
      if (nhVia !== undefined) nhFamilies.push(nhVia.family);
      const dev = checkLinkRef(nh.dev, `${f}.dev`);
      if (nhVia === undefined && dev === undefined) throw new TypeError(`Invalid ${f}: give via, dev or both`);
      return {
        via: nhVia?.bytes,
        dev,
        weight: nh.weight === undefined ? 1 : checkInteger(nh.weight, `${f}.weight`, 1, 256),
        onlink: checkBoolean(nh.onlink, `${f}.onlink`),
      };
    });
  }
  family ??= via?.family ?? nhFamilies[0] ?? src?.family ?? 4;
  if (family === 6) {
    if (via !== undefined && via.family !== 6) throw new RangeError(`Invalid ${at}via ${quote(spec.via)}: an IPv6 route needs an IPv6 gateway`);
    if (nhFamilies.includes(4)) throw new RangeError(`Invalid ${at}nexthops: an IPv6 route needs IPv6 gateways`);
  }
  if (src !== undefined && src.family !== family) {
    throw new RangeError(`Invalid ${at}src ${quote(spec.src)}: the route is IPv${family}`);
  }
  let type: number | undefined;
  if (spec.type !== undefined) {
    const t = ROUTE_TYPES.indexOf(spec.type);
    if (t < 0) throw new TypeError(`Invalid ${at}type ${quote(spec.type)}: use one of ${ROUTE_TYPES.map(quote).join(", ")}`);
    type = t;
  }
  const dev = checkLinkRef(spec.dev, `${at}dev`);
  const table = spec.table === undefined ? undefined : tableNumber(spec.table, `${at}table`);
  return {
    family,
    dst,
    dstLen,
    via: via?.bytes,
    dev,
    src: src?.bytes,
    table,
    type,
    protocol: spec.protocol === undefined ? undefined : protocolNumber(spec.protocol, `${at}protocol`),
    scope: spec.scope === undefined ? undefined : named(spec.scope, `${at}scope`, SCOPES, 255),
    metric: spec.metric === undefined ? undefined : checkInteger(spec.metric, `${at}metric`, 0, 0xffffffff),
    mtu: spec.mtu === undefined ? undefined : checkInteger(spec.mtu, `${at}mtu`, 1, 0xffffffff),
    onlink: checkBoolean(spec.onlink, `${at}onlink`),
    nexthops,
    spec,
  };
}

/** Names a route for messages: `blackhole route "10.0.0.0/24" via "10.1.0.1" dev "d0" table 100`. */
function describeRoute(r: ParsedRoute): string {
  const spec = r.spec;
  const typeName = spec.type === undefined || spec.type === "unicast" ? "" : `${spec.type} `;
  let label = `${typeName}route ${quote(spec.dst)}`;
  if (spec.via !== undefined) label += ` via ${quote(spec.via)}`;
  if (r.dev !== undefined) label += ` dev ${quote(r.dev)}`;
  if (r.table !== undefined && r.table !== RT_TABLE.MAIN) label += ` table ${r.table}`;
  return label;
}

function writeGateway(w: NetlinkWriter, family: IpFamily, gw: Uint8Array): void {
  if ((gw.length === 4 ? 4 : 6) === family) {
    w.attr(RTA.GATEWAY, gw);
    return;
  }
  // struct rtvia: the address family (host order), then the address.
  const via = new Uint8Array(2 + gw.length);
  new DataView(via.buffer).setUint16(0, gw.length === 4 ? AF_INET : AF_INET6, true);
  via.set(gw, 2);
  w.attr(RTA.VIA, via);
}

const FLAGS = {
  add: NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL,
  replace: NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE,
  delete: NLM_F.REQUEST | NLM_F.ACK,
} as const;

/** Writes one request the way iproute2's `ip route add/replace/del` builds it. */
function writeRoute(
  w: NetlinkWriter,
  op: RouteRequest["op"],
  seq: number,
  r: ParsedRoute,
  dev: number | undefined,
  nhDevs: readonly (number | undefined)[] | undefined,
  ack = true,
): void {
  const del = op === "delete";
  const type = r.type ?? (del ? RTN.UNSPEC : RTN.UNICAST);
  const table = r.table ?? (type === RTN.LOCAL || type === RTN.BROADCAST || type === RTN.NAT || type === RTN.ANYCAST ? RT_TABLE.LOCAL : RT_TABLE.MAIN);
  let scope = r.scope;
  if (scope === undefined) {
    if (r.family === 6) scope = RT_SCOPE.UNIVERSE;
    else if (type === RTN.LOCAL || type === RTN.NAT) scope = RT_SCOPE.HOST;
    else if (type === RTN.BROADCAST || type === RTN.MULTICAST || type === RTN.ANYCAST) scope = RT_SCOPE.LINK;
    else if (type === RTN.UNICAST || type === RTN.UNSPEC) {
      if (del) scope = RT_SCOPE.NOWHERE;
      else scope = r.via === undefined && r.nexthops === undefined ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE;
    } else scope = del ? RT_SCOPE.NOWHERE : RT_SCOPE.UNIVERSE;
  }
  w.begin(del ? RTM.DELROUTE : RTM.NEWROUTE, ack ? FLAGS[op] : FLAGS[op] & ~NLM_F.ACK, seq);
  // struct rtmsg
  w.u8(r.family === 4 ? AF_INET : AF_INET6)
    .u8(r.dstLen)
    .u8(0)
    .u8(0)
    .u8(table < 256 ? table : RT_TABLE.UNSPEC)
    .u8(r.protocol ?? (del ? 0 : RTPROT_BOOT))
    .u8(scope)
    .u8(type)
    .u32(r.onlink ? RTNH_F_ONLINK : 0);
  if (r.dst !== undefined) w.attr(RTA.DST, r.dst);
  if (r.via !== undefined) writeGateway(w, r.family, r.via);
  if (r.src !== undefined) w.attr(RTA.PREFSRC, r.src);
  if (table >= 256) w.attrU32(RTA.TABLE, table);
  if (r.metric !== undefined) w.attrU32(RTA.PRIORITY, r.metric);
  if (dev !== undefined) w.attrU32(RTA.OIF, dev);
  const mtu = r.mtu;
  if (mtu !== undefined) w.nest(RTA.METRICS, () => w.attrU32(RTAX.MTU, mtu));
  const nexthops = r.nexthops;
  if (nexthops !== undefined) {
    w.nest(RTA.MULTIPATH, () => {
      nexthops.forEach((nh, i) => {
        const gwLen = nh.via === undefined ? 0 : NLA_HDRLEN + ((nh.via.length === 4 ? 4 : 6) === r.family ? nh.via.length : nh.via.length + 2);
        // struct rtnexthop: len, flags, hops, ifindex
        w.u16(RTNH_LEN + ((gwLen + 3) & ~3))
          .u8(nh.onlink ? RTNH_F_ONLINK : 0)
          .u8(nh.weight - 1)
          .s32(nhDevs?.[i] ?? 0);
        if (nh.via !== undefined) writeGateway(w, r.family, nh.via);
      });
    });
  }
  w.end();
}

function requireIndex(v: LinkRef | undefined, what: string): number | undefined {
  if (typeof v === "string") throw new TypeError(`Invalid ${what} ${quote(v)}: encodeRouteRequest() takes interface indexes; resolve names first`);
  return v;
}

/**
 * Encodes a route request (`RTM_NEWROUTE` or `RTM_DELROUTE`, with
 * `NLM_F_ACK`) the way iproute2's `ip route add`, `ip route replace` and
 * `ip route del` do: the same header defaults (protocol boot, the scope
 * rules, table local for local routes) and the same attribute order. Pure:
 * interfaces must already be indexes.
 *
 * @param w The writer to append the message to.
 * @param request The operation, sequence number and route.
 * @throws {SyntaxError} When an address or prefix is malformed.
 * @throws {TypeError} When a field has the wrong type, or `dev` is a name.
 * @throws {RangeError} When a number is out of range or families disagree.
 * @example Encoding a route and reading its header back
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 * import { encodeRouteRequest } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * encodeRouteRequest(w, { op: "add", seq: 1, spec: { dst: "10.2.0.0/24", via: "10.1.0.1", dev: 3, table: 100 } });
 * const [msg] = parseNetlinkMessages(w.bytes());
 * assert.equal(msg?.type, 24); // RTM_NEWROUTE
 * assert.equal(msg?.payload[4], 100); // rtm_table
 * ```
 */
export function encodeRouteRequest(w: NetlinkWriter, request: RouteRequest): void {
  checkObject(request, "route request");
  if (!Object.hasOwn(FLAGS, request.op)) throw new TypeError(`Invalid route request op ${quote(request.op)}: use "add", "replace" or "delete"`);
  checkInteger(request.seq, "route request seq", 0, 0xffffffff);
  const r = parseRouteSpec(request.spec, "route ");
  const dev = requireIndex(r.dev, "route dev");
  const nhDevs = r.nexthops?.map((nh, i) => requireIndex(nh.dev, `route nexthops[${i}].dev`));
  writeRoute(w, request.op, request.seq, r, dev, nhDevs);
}

/**
 * Encodes a route dump request (`RTM_GETROUTE` with `NLM_F_DUMP`) as
 * iproute2's `ip route show table N` does: the table and interface travel
 * in `RTA_TABLE` and `RTA_OIF`, which the kernel applies as filters when
 * the socket has strict checking on.
 *
 * @internal Used by {@link Routes.list} and its tests.
 * @param w The writer.
 * @param family 4, 6 or undefined for both.
 * @param table The table filter, or undefined for every table.
 * @param dev The interface index filter.
 */
export function encodeRouteDump(w: NetlinkWriter, family: IpFamily | undefined, table: number | undefined, dev: number | undefined): void {
  w.begin(RTM.GETROUTE, NLM_F.REQUEST | NLM_F.DUMP, 0)
    .u8(family === undefined ? AF_UNSPEC : family === 4 ? AF_INET : AF_INET6)
    .zeros(RTMSG_LEN - 1);
  if (table !== undefined) w.attrU32(RTA.TABLE, table);
  if (dev !== undefined) w.attrU32(RTA.OIF, dev);
  w.end();
}

function u32(d: Uint8Array, off: number): number {
  return ((d[off] as number) | ((d[off + 1] as number) << 8) | ((d[off + 2] as number) << 16) | ((d[off + 3] as number) << 24)) >>> 0;
}

// The last IPv4 address formatted: the routes of a dump often share a gateway or source.
let lastFormatted = -1;
let lastFormattedText = "";

/** Formats 4 or 16 address bytes; IPv4 without going through an array. */
function addressText(d: Uint8Array): string | undefined {
  if (d.length === 16) return formatIp(d);
  if (d.length !== 4) return undefined;
  const n = u32(d, 0);
  if (n !== lastFormatted) {
    lastFormatted = n;
    lastFormattedText = `${d[0]}.${d[1]}.${d[2]}.${d[3]}`;
  }
  return lastFormattedText;
}

function decodeGateway(d: Uint8Array, type: number): string | undefined {
  // RTA_VIA carries struct rtvia: the family, then the address.
  return addressText(type === RTA.GATEWAY ? d : d.subarray(2));
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

function decodeNextHops(d: Uint8Array): NextHop[] {
  const out: NextHop[] = [];
  let off = 0;
  while (off + RTNH_LEN <= d.length) {
    const len = (d[off] as number) | ((d[off + 1] as number) << 8);
    if (len < RTNH_LEN || off + len > d.length) throw new SyntaxError(`Invalid RTA_MULTIPATH next hop at offset ${off}: length ${len}`);
    const nh: Mutable<NextHop> = { dev: u32(d, off + 4) | 0, weight: (d[off + 3] as number) + 1, onlink: ((d[off + 2] as number) & RTNH_F_ONLINK) !== 0 };
    for (let a = off + RTNH_LEN; a + NLA_HDRLEN <= off + len; ) {
      const alen = (d[a] as number) | ((d[a + 1] as number) << 8);
      const atype = ((d[a + 2] as number) | ((d[a + 3] as number) << 8)) & 0x3fff;
      if (alen < NLA_HDRLEN || a + alen > off + len) throw new SyntaxError(`Invalid next-hop attribute at offset ${a}: length ${alen}`);
      if (atype === RTA.GATEWAY || atype === RTA.VIA) {
        const gw = decodeGateway(d.subarray(a + NLA_HDRLEN, a + alen), atype);
        if (gw !== undefined) nh.via = gw;
      }
      a += (alen + 3) & ~3;
    }
    out.push(nh);
    off += (len + 3) & ~3;
  }
  return out;
}

/**
 * Decodes the payload of an `RTM_NEWROUTE` (or `RTM_DELROUTE`) message from
 * the kernel: `struct rtmsg` and its attributes. `RTA_TABLE` wins over
 * `rtm_table`; attributes it does not know are skipped.
 *
 * @param payload The message payload after `struct nlmsghdr`.
 * @returns The route.
 * @throws {SyntaxError} When the payload is truncated, an attribute overruns it, or the family is neither IPv4 nor IPv6 (multicast routing or MPLS routes).
 * @example Decoding what encodeRouteRequest wrote
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 * import { decodeRoute, encodeRouteRequest } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * encodeRouteRequest(w, { op: "add", seq: 1, spec: { dst: "10.2.0.0/24", via: "10.1.0.1", dev: 3, metric: 5 } });
 * const route = decodeRoute(parseNetlinkMessages(w.bytes())[0]!.payload);
 * assert.equal(route?.dst, "10.2.0.0/24");
 * assert.equal(route?.via, "10.1.0.1");
 * assert.equal(route?.dev, 3);
 * assert.equal(route?.metric, 5);
 * ```
 */
export function decodeRoute(payload: Uint8Array): Route {
  if (payload.length < RTMSG_LEN) throw new SyntaxError(`Invalid route message: ${payload.length} bytes, struct rtmsg needs ${RTMSG_LEN}`);
  const af = payload[0] as number;
  if (af !== AF_INET && af !== AF_INET6) throw new SyntaxError(`Invalid route message: address family ${af} is neither IPv4 nor IPv6`);
  const family: IpFamily = af === AF_INET ? 4 : 6;
  const dstLen = payload[1] as number;
  const flags = u32(payload, 8);
  const route: Mutable<Route> = {
    family,
    dst: "default",
    table: payload[4] as number,
    type: ROUTE_TYPES[payload[7] as number] ?? "unspec",
    protocol: payload[5] as number,
    scope: payload[6] as number,
    metric: 0,
    onlink: (flags & RTNH_F_ONLINK) !== 0,
  };
  let dst: Uint8Array | undefined;
  for (let off = RTMSG_LEN; off + NLA_HDRLEN <= payload.length; ) {
    const len = (payload[off] as number) | ((payload[off + 1] as number) << 8);
    const type = ((payload[off + 2] as number) | ((payload[off + 3] as number) << 8)) & 0x3fff;
    if (len < NLA_HDRLEN || off + len > payload.length) {
      throw new SyntaxError(`Invalid route attribute at offset ${off}: length ${len} with ${payload.length - off} bytes left`);
    }
    const d = payload.subarray(off + NLA_HDRLEN, off + len);
    switch (type) {
      case RTA.DST:
        dst = d;
        break;
      case RTA.GATEWAY:
      case RTA.VIA: {
        const gw = decodeGateway(d, type);
        if (gw !== undefined) route.via = gw;
        break;
      }
      case RTA.OIF:
        if (d.length >= 4) route.dev = u32(d, 0) | 0;
        break;
      case RTA.PREFSRC: {
        const src = addressText(d);
        if (src !== undefined) route.src = src;
        break;
      }
      case RTA.PRIORITY:
        if (d.length >= 4) route.metric = u32(d, 0);
        break;
      case RTA.TABLE:
        if (d.length >= 4) route.table = u32(d, 0);
        break;
      case RTA.METRICS:
        for (let m = 0; m + NLA_HDRLEN <= d.length; ) {
          const mlen = (d[m] as number) | ((d[m + 1] as number) << 8);
          if (mlen < NLA_HDRLEN || m + mlen > d.length) throw new SyntaxError(`Invalid RTA_METRICS attribute at offset ${m}`);
          if ((((d[m + 2] as number) | ((d[m + 3] as number) << 8)) & 0x3fff) === RTAX.MTU && mlen >= 8) route.mtu = u32(d, m + NLA_HDRLEN);
          m += (mlen + 3) & ~3;
        }
        break;
      case RTA.MULTIPATH:
        route.nexthops = decodeNextHops(d);
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  if (dstLen > 0) {
    if (family === 4 && dst !== undefined && dst.length >= 4) route.dst = `${dst[0]}.${dst[1]}.${dst[2]}.${dst[3]}/${dstLen}`;
    else {
      const bytes = new Uint8Array(family === 4 ? 4 : 16);
      if (dst !== undefined) bytes.set(dst.subarray(0, bytes.length));
      route.dst = `${formatIp(bytes)}/${dstLen}`;
    }
  }
  return route;
}

/**
 * The routes in any table of a {@link Routing} handle's namespace: add,
 * replace, delete and list them, one at a time or many per datagram.
 *
 * @example A route through a veth, read back
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
 * ns.exec("ip", ["link", "set", "d0", "up"]);
 * ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
 * using rt = openRouting({ netns: ns.ns });
 * rt.routes.add({ dst: "10.2.0.0/24", via: "10.1.0.1", table: 100 });
 * const [route] = rt.routes.list({ table: 100 });
 * assert.equal(route?.via, "10.1.0.1");
 * ```
 */
export class Routes {
  #ctx: RoutingContext;

  /**
   * Binds to a handle's context.
   *
   * @internal Reached through {@link Routing}.
   * @param ctx The handle's socket and namespace.
   */
  constructor(ctx: RoutingContext) {
    this.#ctx = ctx;
  }

  /**
   * Adds a route (`ip route add`): fails if a route with the same
   * destination, table and metric exists.
   *
   * @param spec The route.
   * @throws {SyntaxError} When an address or prefix is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {RangeError} When a number is out of range or the families disagree.
   * @throws {NetlinkError} EEXIST when the route exists; ENODEV when `dev` does not exist; ENETUNREACH, EINVAL and others with the kernel's explanation (such as "Nexthop has invalid gateway").
   * @example Adding a route twice
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { NetlinkError } from "@dp/core";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.routes.add({ dst: "10.9.0.0/24", type: "blackhole" });
   * assert.throws(() => rt.routes.add({ dst: "10.9.0.0/24", type: "blackhole" }), (e) => e instanceof NetlinkError && e.code === "EEXIST");
   * ```
   */
  add(spec: RouteSpec): void {
    this.#modify("add", spec);
  }

  /**
   * Adds a route or replaces the one with the same destination, table and
   * metric (`ip route replace`).
   *
   * @param spec The route.
   * @throws {SyntaxError} When an address or prefix is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {RangeError} When a number is out of range or the families disagree.
   * @throws {NetlinkError} ENODEV when `dev` does not exist; others with the kernel's explanation.
   * @example Replacing a blackhole route by an unreachable one
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.routes.replace({ dst: "10.9.0.0/24", type: "blackhole" });
   * rt.routes.replace({ dst: "10.9.0.0/24", type: "unreachable" });
   * assert.deepEqual(rt.routes.list().map((r) => r.type), ["unreachable"]);
   * ```
   */
  replace(spec: RouteSpec): void {
    this.#modify("replace", spec);
  }

  /**
   * Deletes a route (`ip route del`). Fields left out match any value, so
   * `{ dst }` deletes the first route for that prefix in the main table.
   *
   * @param spec The route to match.
   * @returns Whether a route was deleted (false when none matched, or `dev` does not exist).
   * @throws {SyntaxError} When an address or prefix is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {RangeError} When a number is out of range.
   * @throws {NetlinkError} When the kernel refuses for another reason.
   * @example Deleting a route that exists, then again
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.routes.add({ dst: "10.9.0.0/24", type: "blackhole", table: 100 });
   * assert.equal(rt.routes.delete({ dst: "10.9.0.0/24", table: 100 }), true);
   * assert.equal(rt.routes.delete({ dst: "10.9.0.0/24", table: 100 }), false);
   * ```
   */
  delete(spec: RouteSpec): boolean {
    const r = parseRouteSpec(spec, "route ");
    let links;
    try {
      links = this.#resolve(r, new Map());
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENODEV) return false;
      throw err;
    }
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeRoute(w, "delete", nl.nextSeq(), r, links.dev, links.nhDevs);
    try {
      nl.request(w, `delete ${describeRoute(r)}`, "RTM_DELROUTE");
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ESRCH) return false;
      throw err;
    }
  }

  /**
   * Lists routes, by default those of the main table in both families. The
   * kernel filters by table and interface (the socket checks dump requests
   * strictly); a table that does not exist has no routes.
   *
   * @param options The table (or `"all"`), family and interface.
   * @returns The routes in the kernel's order.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When the table is out of range.
   * @throws {NetlinkError} ENODEV when `dev` does not exist; others when the dump fails.
   * @example Listing IPv6 routes of one table
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.routes.add({ dst: "fd00:9::/64", type: "unreachable", table: 1000 });
   * const routes = rt.routes.list({ table: 1000, family: 6 });
   * assert.deepEqual(routes.map((r) => [r.dst, r.table, r.metric]), [["fd00:9::/64", 1000, 1024]]);
   * ```
   */
  list(options: ListRoutesOptions = {}): Route[] {
    checkObject(options, "route list options");
    const table = options.table === "all" ? undefined : tableNumber(options.table ?? "main", "route list table");
    const family = options.family;
    if (family !== undefined && family !== 4 && family !== 6) throw new TypeError(`Invalid route list family ${quote(family)}: use 4 or 6`);
    const devRef = checkLinkRef(options.dev, "route list dev");
    const what = `list routes${table === undefined ? "" : ` in table ${table}`}`;
    let dev: number | undefined;
    if (devRef !== undefined) {
      try {
        dev = linkIndex(this.#ctx, devRef);
      } catch (err) {
        if (err instanceof NetlinkError) throw new NetlinkError(`Cannot ${what} dev ${quote(devRef)}`, { op: err.op, errno: err.errno, extAck: err.extAck });
        throw err;
      }
    }
    const nl = this.#ctx.nl;
    const w = nl.writer();
    encodeRouteDump(w, family, table, dev);
    let messages;
    try {
      messages = nl.dump(w, what, "RTM_GETROUTE");
    } catch (err) {
      // A table that was never created: the kernel says ENOENT for a one-family dump.
      if (err instanceof NetlinkError && err.errno === ENOENT && table !== undefined) return [];
      throw err;
    }
    const out: Route[] = [];
    for (const m of messages) {
      const af = m.payload[0];
      if (m.type !== RTM.NEWROUTE || (af !== AF_INET && af !== AF_INET6)) continue;
      const route = decodeRoute(m.payload);
      if (family !== undefined && route.family !== family) continue;
      if (table !== undefined && route.table !== table) continue;
      out.push(route);
    }
    return out;
  }

  /**
   * Returns the route for exactly this prefix in a table (not a longest-
   * prefix lookup), or undefined.
   *
   * @param dst The prefix, such as `"10.0.0.0/24"`, or `"default"` (IPv4; use `"::/0"` for IPv6).
   * @param options The table and metric.
   * @returns The route with the lowest metric, or the one with `metric`; undefined when there is none.
   * @throws {SyntaxError} When `dst` is malformed.
   * @throws {NetlinkError} When the dump fails.
   * @example Getting a route by prefix
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.routes.add({ dst: "10.9.0.0/24", type: "prohibit" });
   * assert.equal(rt.routes.get("10.9.0.0/24")?.type, "prohibit");
   * assert.equal(rt.routes.get("10.8.0.0/24"), undefined);
   * ```
   */
  get(dst: string, options: GetRouteOptions = {}): Route | undefined {
    checkObject(options, "route get options");
    let family: IpFamily = 4;
    let want = "default";
    if (dst !== "default") {
      const p = parsePrefix(dst, "route dst");
      family = p.family;
      want = p.prefixLength === 0 ? "default" : `${formatIp(p.bytes)}/${p.prefixLength}`;
    }
    const metric = options.metric === undefined ? undefined : checkInteger(options.metric, "route metric", 0, 0xffffffff);
    let best: Route | undefined;
    for (const r of this.list({ table: options.table ?? "main", family })) {
      if (r.dst !== want || (metric !== undefined && r.metric !== metric)) continue;
      if (best === undefined || r.metric < best.metric) best = r;
    }
    return best;
  }

  /**
   * Adds (or replaces) many routes with few system calls: the requests go
   * to the kernel in datagrams of 128, and only the last request of each
   * asks for an acknowledgement (the kernel reports every refusal anyway).
   * Every spec is validated before anything is sent, and each interface
   * name is looked up once.
   *
   * On a refusal the routes of earlier datagrams stay, and so do the other
   * routes of the failing datagram (the kernel processes each request of a
   * datagram); routes of later datagrams are not sent. The error names the
   * refused route and its index (every request carries its own sequence
   * number, which the kernel's answer repeats).
   *
   * @param specs The routes.
   * @param options Whether to replace existing routes.
   * @throws {SyntaxError} When an address or prefix of any spec is malformed (before any system call).
   * @throws {TypeError} When a field of any spec has the wrong type.
   * @throws {RangeError} When a number is out of range.
   * @throws {NetlinkError} ENODEV when an interface does not exist (before any route is sent); otherwise the first refusal, naming the route.
   * @example Adding a thousand routes
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * const specs = Array.from({ length: 1000 }, (_, i) => ({ dst: `10.${i >> 8}.${i & 255}.0/24`, type: "blackhole" as const, table: 100 }));
   * rt.routes.addMany(specs);
   * assert.equal(rt.routes.list({ table: 100 }).length, 1000);
   * ```
   */
  addMany(specs: readonly RouteSpec[], options: AddRoutesOptions = {}): void {
    if (!Array.isArray(specs)) throw new TypeError(`Invalid route specs: expected an array, got ${typeof specs}`);
    checkObject(options, "addMany options");
    const op = checkBoolean(options.replace, "addMany options.replace") ? "replace" : "add";
    const parsed = (specs as readonly RouteSpec[]).map((s, i) => parseRouteSpec(s, `specs[${i}].`));
    const cache = new Map<string, number>();
    const links = parsed.map((r) => this.#resolve(r, cache, op));
    const nl = this.#ctx.nl;
    const opName = "RTM_NEWROUTE";
    for (let start = 0; start < parsed.length; start += BATCH) {
      const end = Math.min(start + BATCH, parsed.length);
      const w = nl.writer();
      // NLM_F_ACK on the datagram's last request only: the kernel answers
      // every refused request anyway, so success costs one acknowledgement
      // per datagram instead of one per route (half the time of a batch).
      // Each request has its own sequence number, which names a refused one.
      const first = nl.nextSeq();
      for (let i = start; i < end; i++) {
        const l = links[i] as ResolvedLinks;
        writeRoute(w, op, i === start ? first : nl.nextSeq(), parsed[i] as ParsedRoute, l.dev, l.nhDevs, i === end - 1);
      }
      try {
        nl.request(w, `${op} routes ${start}-${end - 1} of ${parsed.length}`, opName);
      } catch (err) {
        if (!(err instanceof NetlinkError) || err.seq === undefined) throw err;
        const i = start + ((err.seq - first) >>> 0);
        throw new NetlinkError(`Cannot ${op} ${describeRoute(parsed[i] as ParsedRoute)} (specs[${i}] of ${parsed.length})`, {
          op: err.op,
          errno: err.errno,
          extAck: err.extAck,
          extAckOffset: err.extAckOffset,
          seq: err.seq,
          cause: err,
        });
      }
    }
  }

  #modify(op: "add" | "replace", spec: RouteSpec): void {
    const r = parseRouteSpec(spec, "route ");
    const links = this.#resolve(r, new Map(), op);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeRoute(w, op, nl.nextSeq(), r, links.dev, links.nhDevs);
    nl.request(w, `${op} ${describeRoute(r)}`, "RTM_NEWROUTE");
  }

  /** Resolves the interface names of a parsed route (ENODEV names the route). */
  #resolve(r: ParsedRoute, cache: Map<string, number>, op = "delete"): ResolvedLinks {
    const one = (ref: LinkRef | undefined): number | undefined => {
      if (ref === undefined || typeof ref === "number") return ref;
      const hit = cache.get(ref);
      if (hit !== undefined) return hit;
      try {
        const index = linkIndex(this.#ctx, ref);
        cache.set(ref, index);
        return index;
      } catch (err) {
        if (err instanceof NetlinkError) {
          throw new NetlinkError(`Cannot ${op} ${describeRoute(r)}: no link ${quote(ref)}`, { op: err.op, errno: err.errno, extAck: err.extAck });
        }
        throw err;
      }
    };
    return { dev: one(r.dev), nhDevs: r.nexthops?.map((nh) => one(nh.dev)) };
  }
}

interface ResolvedLinks {
  readonly dev: number | undefined;
  readonly nhDevs: readonly (number | undefined)[] | undefined;
}
