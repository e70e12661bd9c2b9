import {
  attrString,
  type BpfProgram,
  type IpAddress,
  type IpFamily,
  NLA_F_NESTED,
  NetlinkError,
  netlinkAttributeMap,
  NetlinkWriter,
  NLM_F,
  parseIp,
} from "@dp/core";
import { RT_SCOPE, RT_TABLE, RTA, RTAX, RTM, RTN, rawFd } from "@dp/core/internal";
import {
  checkBoolean,
  checkInteger,
  checkLinkRef,
  checkObject,
  named,
  parsePrefix,
  protocolNumber,
  quote,
  type RawAttribute,
  rawAttributes,
  type Realms,
  tableNumber,
} from "./_check.ts";
import { type LinkRef, linkIndex, type RoutingContext } from "./_context.ts";
import { formatAddress } from "./_text.ts";

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
  /** The realms of this next hop (`RTA_FLOW`). */
  readonly realms?: Realms;
  /** The encapsulation of this next hop. */
  readonly encap?: RouteEncap;
}

/** An IPv6 route's preference (`RTA_PREF`, RFC 4191): how a host picks among default routers. */
export type RoutePref = "low" | "medium" | "high";

/** The names of the route metrics ({@link RouteMetrics}). */
export type RouteMetricName =
  | "mtu"
  | "window"
  | "rtt"
  | "rttvar"
  | "ssthresh"
  | "cwnd"
  | "advmss"
  | "reordering"
  | "hoplimit"
  | "initcwnd"
  | "features"
  | "rtoMin"
  | "initrwnd"
  | "quickack"
  | "congctl"
  | "fastopenNoCookie";

/**
 * A route's metrics (`RTA_METRICS`, `RTAX_*`): per-destination TCP and
 * path parameters, as `ip route ... mtu lock 1400 advmss 1360 ...` sets
 * them. Times are in milliseconds (the kernel keeps `rtt` in 1/8 ms and
 * `rttvar` in 1/4 ms, as iproute2 converts them).
 */
export interface RouteMetrics {
  /** The path MTU. */
  readonly mtu?: number;
  /** The TCP window clamp. */
  readonly window?: number;
  /** The initial round-trip time estimate, in ms. */
  readonly rtt?: number;
  /** The initial round-trip time variance, in ms. */
  readonly rttvar?: number;
  /** The initial slow-start threshold. */
  readonly ssthresh?: number;
  /** The congestion window clamp. */
  readonly cwnd?: number;
  /** The MSS advertised to peers. */
  readonly advmss?: number;
  /** The maximal reordering. */
  readonly reordering?: number;
  /** The hop limit (TTL) of packets sent. */
  readonly hoplimit?: number;
  /** The initial congestion window. */
  readonly initcwnd?: number;
  /** Feature bits (`RTAX_FEATURE_*`; 1 is ECN). */
  readonly features?: number;
  /** The minimal TCP retransmission timeout, in ms (locked when set, as iproute2 does: the kernel uses it only then). */
  readonly rtoMin?: number;
  /** The initial receive window. */
  readonly initrwnd?: number;
  /** Whether TCP quick acks are on (1) or off (0). */
  readonly quickack?: number;
  /** The TCP congestion control algorithm, such as `"bbr"`. */
  readonly congctl?: string;
  /** Whether TCP Fast Open works without a cookie (1). */
  readonly fastopenNoCookie?: number;
  /** The metrics locked against changes by the kernel (`lock`, `RTAX_LOCK`), in `RTAX_*` order. */
  readonly lock?: readonly RouteMetricName[];
}

/** A lightweight tunnel that encapsulates in IPv4 (`encap ip`, collect_md tunnels). */
export interface IpEncap {
  /** The kind. */
  readonly type: "ip";
  /** The tunnel id (VNI, key). */
  readonly id?: bigint;
  /** The outer destination. */
  readonly dst?: string;
  /** The outer source. */
  readonly src?: string;
  /** The outer TTL. */
  readonly ttl?: number;
  /** The outer TOS. */
  readonly tos?: number;
  /** `TUNNEL_*` flags (such as checksum and key present). */
  readonly flags?: number;
}

/** A lightweight tunnel that encapsulates in IPv6 (`encap ip6`). */
export interface Ip6Encap {
  /** The kind. */
  readonly type: "ip6";
  /** The tunnel id. */
  readonly id?: bigint;
  /** The outer destination. */
  readonly dst?: string;
  /** The outer source. */
  readonly src?: string;
  /** The outer hop limit. */
  readonly hoplimit?: number;
  /** The outer traffic class. */
  readonly tc?: number;
  /** `TUNNEL_*` flags. */
  readonly flags?: number;
}

/** MPLS encapsulation (`encap mpls LABEL/LABEL`; needs `CONFIG_MPLS_IPTUNNEL`). */
export interface MplsEncap {
  /** The kind. */
  readonly type: "mpls";
  /** The label stack, outermost first (20-bit labels). */
  readonly labels: readonly number[];
  /** The TTL to set, when not propagated. */
  readonly ttl?: number;
}

/**
 * A BPF program run on a route's packets (`encap bpf in|out|xmit`). The
 * kernel reports only its name; to add a route, give the loaded program.
 */
export interface LwtProgram {
  /** The name the kernel shows (`ip route` prints it); iproute2 uses `FILE:[SECTION]`. */
  readonly name: string;
  /**
   * The loaded program (type `lwtIn`, `lwtOut` or `lwtXmit`); required to add or replace.
   *
   * @default none (as read back)
   */
  readonly program?: BpfProgram;
}

/**
 * BPF lightweight tunnel (`encap bpf`): programs run on input (`in`,
 * `lwtIn`), output (`out`, `lwtOut`) and transmit (`xmit`, `lwtXmit`,
 * which may push headers within `headroom` bytes) of the route's packets.
 */
export interface BpfEncap {
  /** The kind. */
  readonly type: "bpf";
  /**
   * The program run on input.
   *
   * @default none
   */
  readonly in?: LwtProgram;
  /**
   * The program run on output.
   *
   * @default none
   */
  readonly out?: LwtProgram;
  /**
   * The program run on transmit.
   *
   * @default none
   */
  readonly xmit?: LwtProgram;
  /**
   * Bytes the transmit program may push (`headroom`); the kernel does not report it back.
   *
   * @default none (0)
   */
  readonly headroom?: number;
}

/** An encapsulation dp does not decode (`LWTUNNEL_ENCAP_*` number and the raw `RTA_ENCAP` payload), kept as sent. */
export interface OtherEncap {
  /** The kind. */
  readonly type: "other";
  /** The `LWTUNNEL_ENCAP_*` number (such as 5 for seg6). */
  readonly encapType: number;
  /** The nested attributes of `RTA_ENCAP`, as the kernel sent them. */
  readonly data: Uint8Array;
}

/** A lightweight tunnel encapsulation on a route (`RTA_ENCAP_TYPE` and `RTA_ENCAP`). */
export type RouteEncap = IpEncap | Ip6Encap | MplsEncap | BpfEncap | OtherEncap;

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
  /** The source prefix the route is for (`from`, `RTA_SRC`; IPv6 source-specific routes). */
  readonly from?: string;
  /** The gateway address. */
  readonly via?: string;
  /** The output interface index. */
  readonly dev?: number;
  /** The preferred source address (`RTA_PREFSRC`). */
  readonly src?: string;
  /** The path MTU (`RTAX_MTU`), when set on the route. */
  readonly mtu?: number;
  /** The next hops of a multipath route (also of a route through a nexthop group, unless `nexthop_compat_mode` is 0). */
  readonly nexthops?: readonly NextHop[];
  /** The nexthop object the route uses (`nhid`, `RTA_NH_ID`). */
  readonly nhid?: number;
  /** The metrics set on the route (`RTA_METRICS`); {@link Route.mtu} repeats the MTU. */
  readonly metrics?: RouteMetrics;
  /** Seconds until an IPv6 route expires (from `RTA_CACHEINFO`), when it does. */
  readonly expires?: number;
  /** The preference of an IPv6 route (`RTA_PREF`). */
  readonly pref?: RoutePref;
  /** The realms of the route (`realm`, `RTA_FLOW`). */
  readonly realms?: Realms;
  /** The lightweight tunnel encapsulation (`encap`). */
  readonly encap?: RouteEncap;
  /** Attributes dp does not decode, as the kernel sent them: kept, never dropped. */
  readonly unknown?: readonly RawAttribute[];
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
  /**
   * The realms of this next hop (IPv4).
   *
   * @default none
   */
  readonly realms?: Realms;
  /**
   * A lightweight tunnel encapsulation for this next hop.
   *
   * @default none
   */
  readonly encap?: RouteEncap;
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
   * The source prefix the route is for (`ip -6 route add DST from PREFIX`,
   * `RTA_SRC`): IPv6 source-specific routing. Part of the route's identity.
   *
   * @default any source
   */
  readonly from?: string;
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
  /**
   * The nexthop object (or group) to use (see {@link Nexthops}). With it,
   * `via`, `dev` and `nexthops` are not sent: they are the object's, as a
   * listing shows them under `nexthop_compat_mode` 1, so a listed route can
   * be passed back.
   *
   * @default none
   */
  readonly nhid?: number;
  /**
   * Metrics (`mtu` here wins over {@link RouteSpec.mtu}'s absence; give one of the two).
   *
   * @default none
   */
  readonly metrics?: RouteMetrics;
  /**
   * Seconds until an IPv6 route expires (`expires`).
   *
   * @default never
   */
  readonly expires?: number;
  /**
   * The preference of an IPv6 route (`pref`).
   *
   * @default none sent: the kernel records "medium"
   */
  readonly pref?: RoutePref;
  /**
   * The realms (`realm`/`realms`, IPv4).
   *
   * @default none
   */
  readonly realms?: Realms;
  /**
   * A lightweight tunnel encapsulation. Deleting ignores it (the kernel
   * cannot rebuild a BPF encapsulation from names).
   *
   * @default none
   */
  readonly encap?: RouteEncap;
  /**
   * Attributes to send as they are, after the others (what {@link Route.unknown} kept).
   *
   * @default none
   */
  readonly unknown?: readonly RawAttribute[];
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
  readonly from: { readonly bytes: Uint8Array; readonly len: number } | undefined;
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
  readonly nhid: number | undefined;
  /** `RTAX_*` and value, in `RTAX_*` order, `RTAX_LOCK` last. */
  readonly metrics: readonly (readonly [number, number | string])[];
  readonly expires: number | undefined;
  readonly pref: number | undefined;
  readonly realms: number | undefined;
  readonly encap: RouteEncap | undefined;
  readonly unknown: readonly RawAttribute[] | undefined;
  /** The spec it came from, for messages (see {@link describeRoute}). */
  readonly spec: RouteSpec;
}

interface ParsedNextHop {
  readonly via: Uint8Array | undefined;
  readonly dev: LinkRef | undefined;
  readonly weight: number;
  readonly onlink: boolean;
  readonly realms: number | undefined;
  readonly encap: RouteEncap | undefined;
}

function optionalLinkRef(v: unknown, what: string): LinkRef | undefined {
  return v === undefined ? undefined : checkLinkRef(v, what);
}

function parseAddress(v: unknown, what: string): IpAddress {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an IP address string, got ${typeof v}`);
  try {
    return parseIp(v);
  } catch (err) {
    throw new SyntaxError(`Invalid ${what} ${quote(v)}: not an IPv4 or IPv6 address`, { cause: err });
  }
}

const SPEC_KEYS = new Set([
  "dst",
  "from",
  "family",
  "via",
  "dev",
  "src",
  "table",
  "type",
  "protocol",
  "scope",
  "metric",
  "mtu",
  "onlink",
  "nexthops",
  "nhid",
  "metrics",
  "expires",
  "pref",
  "realms",
  "encap",
  "unknown",
]);

// include/uapi/linux/lwtunnel.h, mpls_iptunnel.h
const LWTUNNEL_ENCAP = { MPLS: 1, IP: 2, IP6: 4, BPF: 6 } as const;
const LWTUNNEL_IP = { ID: 1, DST: 2, SRC: 3, TTL: 4, TOS: 5, FLAGS: 6, PAD: 7, OPTS: 8 } as const;
const LWTUNNEL_IP6 = { ID: 1, DST: 2, SRC: 3, HOPLIMIT: 4, TC: 5, FLAGS: 6, PAD: 7, OPTS: 8 } as const;
const LWT_BPF = { IN: 1, OUT: 2, XMIT: 3, XMIT_HEADROOM: 4 } as const;
const LWT_BPF_PROG = { FD: 1, NAME: 2 } as const;
const MPLS_IPTUNNEL = { DST: 1, TTL: 2 } as const;
/** `LWT_BPF_MAX_HEADROOM` (include/uapi/linux/lwtunnel.h). */
const LWT_BPF_MAX_HEADROOM = 256;
// include/uapi/linux/icmpv6.h
const ICMPV6_ROUTER_PREF = { low: 3, medium: 0, high: 1 } as const;
/** `USER_HZ`: the kernel reports `rta_expires` in clock ticks of 1/100 s. */
const USER_HZ = 100;

/** Metric names by `RTAX_*` value; index 0 (unspec) and 1 (lock) have none. */
const METRIC_NAMES: readonly (RouteMetricName | undefined)[] = [
  undefined,
  undefined,
  "mtu",
  "window",
  "rtt",
  "rttvar",
  "ssthresh",
  "cwnd",
  "advmss",
  "reordering",
  "hoplimit",
  "initcwnd",
  "features",
  "rtoMin",
  "initrwnd",
  "quickack",
  "congctl",
  "fastopenNoCookie",
];
/** What the kernel keeps per millisecond of `rtt` and `rttvar` (iproute2's conversion). */
const METRIC_SCALE: Partial<Record<RouteMetricName, number>> = { rtt: 8, rttvar: 4 };
const METRIC_KEYS = new Set<string>([...METRIC_NAMES.filter((n) => n !== undefined), "lock"]);
const NEXTHOP_KEYS = new Set(["via", "dev", "weight", "onlink", "realms", "encap"]);

/** Validates a spec and parses its addresses; `at` prefixes field names ("route " or "specs[3]."). */
function parseRouteSpec(spec: RouteSpec, at: string): ParsedRoute {
  checkObject(spec, at === "route " ? "route spec" : at.slice(0, -1));
  for (const key in spec) {
    if (!SPEC_KEYS.has(key)) throw new TypeError(`Invalid ${at}${key}: not a route field`);
  }
  let family: IpFamily | undefined;
  if (spec.family !== undefined) {
    if (spec.family !== 4 && spec.family !== 6)
      throw new TypeError(`Invalid ${at}family ${quote(spec.family)}: use 4 or 6`);
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
  let from: { bytes: Uint8Array; len: number } | undefined;
  if (spec.from !== undefined) {
    const p = parsePrefix(spec.from, `${at}from`);
    if (family !== undefined && family !== p.family)
      throw new RangeError(`Invalid ${at}from ${quote(spec.from)}: the route is IPv${family}`);
    family = p.family;
    if (p.prefixLength > 0) from = { bytes: p.bytes, len: p.prefixLength };
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
      const dev = optionalLinkRef(nh.dev, `${f}.dev`);
      if (nhVia === undefined && dev === undefined) throw new TypeError(`Invalid ${f}: give via, dev or both`);
      return {
        via: nhVia?.bytes,
        dev,
        weight: nh.weight === undefined ? 1 : checkInteger(nh.weight, `${f}.weight`, 1, 256),
        onlink: checkBoolean(nh.onlink, `${f}.onlink`),
        realms: parseRealms(nh.realms, `${f}.realms`),
        encap: parseEncap(nh.encap, `${f}.encap`),
      };
    });
  }
  family ??= via?.family ?? nhFamilies[0] ?? src?.family ?? 4;
  if (family === 6) {
    if (via !== undefined && via.family !== 6)
      throw new RangeError(`Invalid ${at}via ${quote(spec.via)}: an IPv6 route needs an IPv6 gateway`);
    if (nhFamilies.includes(4)) throw new RangeError(`Invalid ${at}nexthops: an IPv6 route needs IPv6 gateways`);
  }
  if (src !== undefined && src.family !== family) {
    throw new RangeError(`Invalid ${at}src ${quote(spec.src)}: the route is IPv${family}`);
  }
  let type: number | undefined;
  if (spec.type !== undefined) {
    const t = ROUTE_TYPES.indexOf(spec.type);
    if (t < 0)
      throw new TypeError(`Invalid ${at}type ${quote(spec.type)}: use one of ${ROUTE_TYPES.map(quote).join(", ")}`);
    type = t;
  }
  const dev = optionalLinkRef(spec.dev, `${at}dev`);
  const table = spec.table === undefined ? undefined : tableNumber(spec.table, `${at}table`);
  return {
    family,
    dst,
    dstLen,
    from,
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
    nhid: spec.nhid === undefined ? undefined : checkInteger(spec.nhid, `${at}nhid`, 1, 0xffffffff),
    metrics: parseMetrics(spec, at),
    expires: spec.expires === undefined ? undefined : checkInteger(spec.expires, `${at}expires`, 0, 0x7fffffff),
    pref: parsePref(spec.pref, `${at}pref`),
    realms: parseRealms(spec.realms, `${at}realms`),
    encap: parseEncap(spec.encap, `${at}encap`),
    unknown: rawAttributes(spec.unknown, `${at}unknown`),
    spec,
  };
}

function parsePref(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || !Object.hasOwn(ICMPV6_ROUTER_PREF, v))
    throw new TypeError(`Invalid ${what} ${quote(v)}: use "low", "medium" or "high"`);
  return ICMPV6_ROUTER_PREF[v as RoutePref];
}

function parseRealms(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  checkObject(v, what);
  const r = v as Realms;
  return ((checkInteger(r.from, `${what}.from`, 0, 0xffff) << 16) | checkInteger(r.to, `${what}.to`, 0, 0xffff)) >>> 0;
}

/** Checks the metrics (and the older `mtu` field) and lists them in `RTAX_*` order. */
function parseMetrics(spec: RouteSpec, at: string): (readonly [number, number | string])[] {
  const out: (readonly [number, number | string])[] = [];
  const m = spec.metrics;
  if (m !== undefined) checkObject(m, `${at}metrics`);
  if (m !== undefined) {
    for (const key of Object.keys(m))
      if (!METRIC_KEYS.has(key)) throw new TypeError(`Invalid ${at}metrics.${key}: not a route metric`);
  }
  if (spec.mtu !== undefined && m?.mtu !== undefined && spec.mtu !== m.mtu) {
    throw new TypeError(`Invalid ${at}mtu: give the MTU once, as mtu or as metrics.mtu`);
  }
  METRIC_NAMES.forEach((name, type) => {
    if (name === undefined) return;
    const v = name === "mtu" ? (m?.mtu ?? spec.mtu) : m?.[name];
    if (v === undefined) return;
    if (name === "congctl") {
      if (typeof v !== "string" || v.length === 0 || v.length > 15)
        throw new TypeError(`Invalid ${at}metrics.congctl ${quote(v)}: use a congestion control name such as "bbr"`);
      out.push([type, v]);
      return;
    }
    const what = name === "mtu" && m?.mtu === undefined ? `${at}mtu` : `${at}metrics.${name}`;
    const scale = METRIC_SCALE[name] ?? 1;
    const n = typeof v === "number" ? Math.round(v * scale) : v;
    checkInteger(n, what, name === "mtu" ? 1 : 0, 0xffffffff);
    out.push([type, n]);
  });
  // iproute2 locks rto_min whenever it sets it (the kernel uses it only when locked).
  let mask = m?.rtoMin === undefined ? 0 : 1 << RTAX.RTO_MIN;
  if (m?.lock !== undefined) {
    if (!Array.isArray(m.lock)) throw new TypeError(`Invalid ${at}metrics.lock: expected an array of metric names`);
    for (const name of m.lock as readonly unknown[]) {
      const type = typeof name === "string" ? METRIC_NAMES.indexOf(name as RouteMetricName) : -1;
      if (type < 2) throw new TypeError(`Invalid ${at}metrics.lock ${quote(name)}: not a route metric`);
      mask |= 1 << type;
    }
  }
  if (mask !== 0) out.push([RTAX.LOCK, mask >>> 0]);
  return out;
}

function optionalAddress(v: unknown, what: string, family: IpFamily): Uint8Array | undefined {
  if (v === undefined) return undefined;
  const a = parseAddress(v, what);
  if (a.family !== family) throw new RangeError(`Invalid ${what} ${quote(v)}: expected an IPv${family} address`);
  return a.bytes;
}

function optionalBigint(v: unknown, what: string): bigint | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "bigint") throw new TypeError(`Invalid ${what}: expected a bigint, got ${typeof v}`);
  if (v < 0n || v > 0xffff_ffff_ffff_ffffn) throw new RangeError(`Invalid ${what} ${v}: must be from 0 to 2⁶⁴−1`);
  return v;
}

const ENCAP_KEYS: Readonly<Record<RouteEncap["type"], ReadonlySet<string>>> = {
  ip: new Set(["type", "id", "dst", "src", "ttl", "tos", "flags"]),
  ip6: new Set(["type", "id", "dst", "src", "hoplimit", "tc", "flags"]),
  mpls: new Set(["type", "labels", "ttl"]),
  bpf: new Set(["type", "in", "out", "xmit", "headroom"]),
  other: new Set(["type", "encapType", "data"]),
};

/**
 * Checks an encapsulation; the value is kept (writeEncap reads it).
 *
 * @internal Shared with nexthops.ts.
 */
export function parseEncap(v: unknown, what: string): RouteEncap | undefined {
  if (v === undefined) return undefined;
  checkObject(v, what);
  const e = v as RouteEncap;
  if (typeof e.type !== "string" || !Object.hasOwn(ENCAP_KEYS, e.type)) {
    throw new TypeError(`Invalid ${what}.type ${quote(e.type)}: use "ip", "ip6", "mpls", "bpf" or "other"`);
  }
  for (const key of Object.keys(e))
    if (!ENCAP_KEYS[e.type].has(key))
      throw new TypeError(`Invalid ${what}.${key}: not a field of ${e.type} encapsulation`);
  switch (e.type) {
    case "ip":
    case "ip6": {
      const family = e.type === "ip" ? 4 : 6;
      optionalBigint(e.id, `${what}.id`);
      optionalAddress(e.dst, `${what}.dst`, family);
      optionalAddress(e.src, `${what}.src`, family);
      if (e.type === "ip") {
        if (e.ttl !== undefined) checkInteger(e.ttl, `${what}.ttl`, 0, 255);
        if (e.tos !== undefined) checkInteger(e.tos, `${what}.tos`, 0, 255);
      } else {
        if (e.hoplimit !== undefined) checkInteger(e.hoplimit, `${what}.hoplimit`, 0, 255);
        if (e.tc !== undefined) checkInteger(e.tc, `${what}.tc`, 0, 255);
      }
      if (e.flags !== undefined) checkInteger(e.flags, `${what}.flags`, 0, 0xffff);
      break;
    }
    case "mpls":
      if (!Array.isArray(e.labels) || e.labels.length === 0)
        throw new TypeError(`Invalid ${what}.labels: expected a non-empty array of labels`);
      (e.labels as readonly unknown[]).forEach((l, i) => checkInteger(l, `${what}.labels[${i}]`, 0, 0xfffff));
      if (e.ttl !== undefined) checkInteger(e.ttl, `${what}.ttl`, 0, 255);
      break;
    case "bpf":
      for (const dir of ["in", "out", "xmit"] as const) {
        const prog = e[dir];
        if (prog === undefined) continue;
        checkObject(prog, `${what}.${dir}`);
        if (typeof prog.name !== "string" || prog.name.length === 0 || prog.name.includes("\0")) {
          throw new TypeError(`Invalid ${what}.${dir}.name: expected a non-empty string without NUL`);
        }
        if (
          prog.program !== undefined &&
          (typeof prog.program !== "object" || prog.program === null || !("fd" in prog.program))
        ) {
          throw new TypeError(`Invalid ${what}.${dir}.program: expected a loaded BpfProgram`);
        }
      }
      if (e.in === undefined && e.out === undefined && e.xmit === undefined)
        throw new TypeError(`Invalid ${what}: give in, out or xmit`);
      if (e.headroom !== undefined) checkInteger(e.headroom, `${what}.headroom`, 0, LWT_BPF_MAX_HEADROOM);
      break;
    case "other":
      checkInteger(e.encapType, `${what}.encapType`, 1, 0xffff);
      if (!(e.data instanceof Uint8Array)) throw new TypeError(`Invalid ${what}.data: expected a Uint8Array`);
      break;
  }
  return e;
}

/** Names a route for messages: `blackhole route "10.0.0.0/24" via "10.1.0.1" dev "d0" table 100`. */
function describeRoute(r: ParsedRoute): string {
  const spec = r.spec;
  const typeName = spec.type === undefined || spec.type === "unicast" ? "" : `${spec.type} `;
  let label = `${typeName}route ${quote(spec.dst)}`;
  if (spec.from !== undefined) label += ` from ${quote(spec.from)}`;
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
  const table =
    r.table ??
    (type === RTN.LOCAL || type === RTN.BROADCAST || type === RTN.NAT || type === RTN.ANYCAST
      ? RT_TABLE.LOCAL
      : RT_TABLE.MAIN);
  let scope = r.scope;
  if (scope === undefined) {
    if (r.family === 6) scope = RT_SCOPE.UNIVERSE;
    else if (type === RTN.LOCAL || type === RTN.NAT) scope = RT_SCOPE.HOST;
    else if (type === RTN.BROADCAST || type === RTN.MULTICAST || type === RTN.ANYCAST) scope = RT_SCOPE.LINK;
    else if (type === RTN.UNICAST || type === RTN.UNSPEC) {
      if (del) scope = RT_SCOPE.NOWHERE;
      else
        scope =
          r.via === undefined && r.nexthops === undefined && r.nhid === undefined ? RT_SCOPE.LINK : RT_SCOPE.UNIVERSE;
    } else scope = del ? RT_SCOPE.NOWHERE : RT_SCOPE.UNIVERSE;
  }
  w.begin(del ? RTM.DELROUTE : RTM.NEWROUTE, ack ? FLAGS[op] : FLAGS[op] & ~NLM_F.ACK, seq);
  // struct rtmsg
  w.u8(r.family === 4 ? AF_INET : AF_INET6)
    .u8(r.dstLen)
    .u8(r.from?.len ?? 0)
    .u8(0)
    .u8(table < 256 ? table : RT_TABLE.UNSPEC)
    .u8(r.protocol ?? (del ? 0 : RTPROT_BOOT))
    .u8(scope)
    .u8(type)
    .u32(r.onlink ? RTNH_F_ONLINK : 0);
  if (r.dst !== undefined) w.attr(RTA.DST, r.dst);
  if (r.from !== undefined) w.attr(RTA.SRC, r.from.bytes);
  // With a nexthop object, the gateway, device and next hops the kernel lists
  // (nexthop_compat_mode 1) are its, not the route's: they are not sent.
  const own = r.nhid === undefined;
  if (r.via !== undefined && own) writeGateway(w, r.family, r.via);
  if (r.src !== undefined) w.attr(RTA.PREFSRC, r.src);
  if (table >= 256) w.attrU32(RTA.TABLE, table);
  if (r.metric !== undefined) w.attrU32(RTA.PRIORITY, r.metric);
  if (r.realms !== undefined) w.attrU32(RTA.FLOW, r.realms);
  if (r.encap !== undefined && !del) writeEncap(w, r.encap);
  if (r.nhid !== undefined) w.attrU32(RTA.NH_ID, r.nhid);
  if (r.pref !== undefined) w.attrU8(RTA.PREF, r.pref);
  if (r.expires !== undefined) w.attrU32(RTA.EXPIRES, r.expires);
  for (const a of r.unknown ?? []) w.attr(a.type, a.data);
  // iproute2 resolves dev after the other words: RTA_OIF comes last, before the metrics.
  if (dev !== undefined && own) w.attrU32(RTA.OIF, dev);
  const metrics = r.metrics;
  if (metrics.length > 0) {
    w.nest(RTA.METRICS, () => {
      for (const [type, v] of metrics) {
        // iproute2 sends the algorithm name without its NUL.
        if (typeof v === "string") w.attr(type, utf8.encode(v));
        else w.attrU32(type, v);
      }
    });
  }
  const nexthops = r.nexthops;
  if (nexthops !== undefined && own) {
    w.nest(RTA.MULTIPATH, () => {
      nexthops.forEach((nh, i) => {
        // The next hop's attributes first, to know struct rtnexthop's length.
        const attrs = new NetlinkWriter();
        if (nh.via !== undefined) writeGateway(attrs, r.family, nh.via);
        if (nh.realms !== undefined) attrs.attrU32(RTA.FLOW, nh.realms);
        if (nh.encap !== undefined && !del) writeEncap(attrs, nh.encap);
        const bytes = attrs.bytes();
        // struct rtnexthop: len, flags, hops, ifindex
        w.u16(RTNH_LEN + bytes.length)
          .u8(nh.onlink ? RTNH_F_ONLINK : 0)
          .u8(nh.weight - 1)
          .s32(nhDevs?.[i] ?? 0)
          .raw(bytes);
      });
    });
  }
  w.end();
}

const utf8 = new TextEncoder();

function be64(v: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, v, false);
  return b;
}

/**
 * Writes `RTA_ENCAP` (with `NLA_F_NESTED`) then `RTA_ENCAP_TYPE`, as
 * iproute2's lwt_parse_encap does (`NHA_ENCAP` and `NHA_ENCAP_TYPE` for a
 * nexthop object).
 *
 * @internal Shared with nexthops.ts.
 */
export function writeEncap(
  w: NetlinkWriter,
  e: RouteEncap,
  encapAttr: number = RTA.ENCAP,
  typeAttr: number = RTA.ENCAP_TYPE,
): void {
  let type: number;
  switch (e.type) {
    case "ip":
    case "ip6": {
      const k = e.type === "ip" ? LWTUNNEL_IP : LWTUNNEL_IP6;
      type = e.type === "ip" ? LWTUNNEL_ENCAP.IP : LWTUNNEL_ENCAP.IP6;
      w.nest(
        encapAttr,
        () => {
          if (e.id !== undefined) w.attr(k.ID, be64(e.id));
          if (e.dst !== undefined) w.attr(k.DST, parseIp(e.dst).bytes);
          if (e.src !== undefined) w.attr(k.SRC, parseIp(e.src).bytes);
          if (e.type === "ip") {
            if (e.ttl !== undefined) w.attrU8(LWTUNNEL_IP.TTL, e.ttl);
            if (e.tos !== undefined) w.attrU8(LWTUNNEL_IP.TOS, e.tos);
          } else {
            if (e.hoplimit !== undefined) w.attrU8(LWTUNNEL_IP6.HOPLIMIT, e.hoplimit);
            if (e.tc !== undefined) w.attrU8(LWTUNNEL_IP6.TC, e.tc);
          }
          if (e.flags !== undefined) w.attrBe16(k.FLAGS, e.flags);
        },
        true,
      );
      break;
    }
    case "mpls": {
      type = LWTUNNEL_ENCAP.MPLS;
      const labels = new Uint8Array(4 * e.labels.length);
      const dv = new DataView(labels.buffer);
      // struct mpls_label: label (20 bits), traffic class, bottom of stack, TTL (0 here), big-endian.
      e.labels.forEach((l, i) =>
        dv.setUint32(4 * i, ((l << 12) | (i === e.labels.length - 1 ? 0x100 : 0)) >>> 0, false),
      );
      w.nest(
        encapAttr,
        () => {
          w.attr(MPLS_IPTUNNEL.DST, labels);
          if (e.ttl !== undefined) w.attrU8(MPLS_IPTUNNEL.TTL, e.ttl);
        },
        true,
      );
      break;
    }
    case "bpf":
      type = LWTUNNEL_ENCAP.BPF;
      w.nest(
        encapAttr,
        () => {
          for (const [attr, prog] of [
            [LWT_BPF.IN, e.in],
            [LWT_BPF.OUT, e.out],
            [LWT_BPF.XMIT, e.xmit],
          ] as const) {
            if (prog === undefined) continue;
            const program = prog.program;
            if (program === undefined)
              throw new TypeError(
                `Invalid route encap: the bpf program "${prog.name}" needs its loaded program to be attached`,
              );
            w.nest(
              attr,
              () => {
                w.attrU32(LWT_BPF_PROG.FD, rawFd(program.fd));
                w.attrString(LWT_BPF_PROG.NAME, prog.name);
              },
              true,
            );
          }
          if (e.headroom !== undefined) w.attrU32(LWT_BPF.XMIT_HEADROOM, e.headroom);
        },
        true,
      );
      break;
    case "other":
      type = e.encapType;
      w.attr(encapAttr | NLA_F_NESTED, e.data);
      break;
  }
  w.attrU16(typeAttr, type);
}

function requireIndex(v: LinkRef | undefined, what: string): number | undefined {
  if (typeof v === "string")
    throw new TypeError(
      `Invalid ${what} ${quote(v)}: encodeRouteRequest() takes interface indexes; resolve names first`,
    );
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
  if (!Object.hasOwn(FLAGS, request.op))
    throw new TypeError(`Invalid route request op ${quote(request.op)}: use "add", "replace" or "delete"`);
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
export function encodeRouteDump(
  w: NetlinkWriter,
  family: IpFamily | undefined,
  table: number | undefined,
  dev: number | undefined,
): void {
  w.begin(RTM.GETROUTE, NLM_F.REQUEST | NLM_F.DUMP, 0)
    .u8(family === undefined ? AF_UNSPEC : family === 4 ? AF_INET : AF_INET6)
    .zeros(RTMSG_LEN - 1);
  if (table !== undefined) w.attrU32(RTA.TABLE, table);
  if (dev !== undefined) w.attrU32(RTA.OIF, dev);
  w.end();
}

function u32(d: Uint8Array, off: number): number {
  return (
    ((d[off] as number) |
      ((d[off + 1] as number) << 8) |
      ((d[off + 2] as number) << 16) |
      ((d[off + 3] as number) << 24)) >>>
    0
  );
}

// The last IPv4 address formatted: the routes of a dump often share a gateway or source.
let lastFormatted = -1;
let lastFormattedText = "";

/** Formats 4 or 16 address bytes; IPv4 without going through an array. */
function addressText(d: Uint8Array): string | undefined {
  if (d.length === 16) return formatAddress(d);
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
    if (len < RTNH_LEN || off + len > d.length)
      throw new SyntaxError(`Invalid RTA_MULTIPATH next hop at offset ${off}: length ${len}`);
    const nh: Mutable<NextHop> = {
      dev: u32(d, off + 4) | 0,
      weight: (d[off + 3] as number) + 1,
      onlink: ((d[off + 2] as number) & RTNH_F_ONLINK) !== 0,
    };
    let encapType: number | undefined;
    let encap: Uint8Array | undefined;
    for (let a = off + RTNH_LEN; a + NLA_HDRLEN <= off + len;) {
      const alen = (d[a] as number) | ((d[a + 1] as number) << 8);
      const atype = ((d[a + 2] as number) | ((d[a + 3] as number) << 8)) & 0x3fff;
      if (alen < NLA_HDRLEN || a + alen > off + len)
        throw new SyntaxError(`Invalid next-hop attribute at offset ${a}: length ${alen}`);
      const v = d.subarray(a + NLA_HDRLEN, a + alen);
      if (atype === RTA.GATEWAY || atype === RTA.VIA) {
        const gw = decodeGateway(v, atype);
        if (gw !== undefined) nh.via = gw;
      } else if (atype === RTA.FLOW && v.length >= 4) {
        const n = u32(v, 0);
        nh.realms = { from: n >>> 16, to: n & 0xffff };
      } else if (atype === RTA.ENCAP_TYPE && v.length >= 2) {
        encapType = (v[0] as number) | ((v[1] as number) << 8);
      } else if (atype === RTA.ENCAP) {
        encap = v;
      }
      a += (alen + 3) & ~3;
    }
    if (encapType !== undefined && encap !== undefined) nh.encap = decodeEncap(encapType, encap);
    out.push(nh);
    off += (len + 3) & ~3;
  }
  return out;
}

/** Decodes `RTA_METRICS`: every `RTAX_*` the kernel has, `rtt` and `rttvar` in ms. */
function decodeMetrics(d: Uint8Array): Mutable<RouteMetrics> {
  const m: Mutable<RouteMetrics> = {};
  let lock = 0;
  for (let off = 0; off + NLA_HDRLEN <= d.length;) {
    const len = (d[off] as number) | ((d[off + 1] as number) << 8);
    if (len < NLA_HDRLEN || off + len > d.length)
      throw new SyntaxError(`Invalid RTA_METRICS attribute at offset ${off}`);
    const type = ((d[off + 2] as number) | ((d[off + 3] as number) << 8)) & 0x3fff;
    const v = d.subarray(off + NLA_HDRLEN, off + len);
    const name = METRIC_NAMES[type];
    if (type === RTAX.LOCK && v.length >= 4) lock = u32(v, 0);
    else if (name === "congctl") m.congctl = attrString(v);
    else if (name !== undefined && v.length >= 4) m[name] = u32(v, 0) / (METRIC_SCALE[name] ?? 1);
    off += (len + 3) & ~3;
  }
  if (lock !== 0)
    m.lock = METRIC_NAMES.filter((n, i): n is RouteMetricName => n !== undefined && (lock & (1 << i)) !== 0);
  return m;
}

/**
 * Decodes `RTA_ENCAP` by its `RTA_ENCAP_TYPE`; kinds dp does not know are kept raw.
 *
 * @internal Shared with nexthops.ts.
 */
export function decodeEncap(type: number, d: Uint8Array): RouteEncap {
  const a = netlinkAttributeMap(d);
  const dvOf = (v: Uint8Array): DataView => new DataView(v.buffer, v.byteOffset, v.byteLength);
  const u8 = (t: number): number | undefined => a.get(t)?.[0];
  const id = (t: number): bigint | undefined => {
    const v = a.get(t);
    return v === undefined || v.length < 8 ? undefined : dvOf(v).getBigUint64(0, false);
  };
  const addr = (t: number): string | undefined => {
    const v = a.get(t);
    return v === undefined || (v.length !== 4 && v.length !== 16) ? undefined : formatAddress(v);
  };
  const be16 = (t: number): number | undefined => {
    const v = a.get(t);
    return v === undefined || v.length < 2 ? undefined : dvOf(v).getUint16(0, false);
  };
  type Loose<T> = { [K in keyof T]: T[K] | undefined };
  const defined = <T extends object>(o: Loose<T>): T =>
    Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
  switch (type) {
    case LWTUNNEL_ENCAP.IP:
      return defined<IpEncap>({
        type: "ip",
        id: id(LWTUNNEL_IP.ID),
        dst: addr(LWTUNNEL_IP.DST),
        src: addr(LWTUNNEL_IP.SRC),
        ttl: u8(LWTUNNEL_IP.TTL),
        tos: u8(LWTUNNEL_IP.TOS),
        flags: be16(LWTUNNEL_IP.FLAGS),
      });
    case LWTUNNEL_ENCAP.IP6:
      return defined<Ip6Encap>({
        type: "ip6",
        id: id(LWTUNNEL_IP6.ID),
        dst: addr(LWTUNNEL_IP6.DST),
        src: addr(LWTUNNEL_IP6.SRC),
        hoplimit: u8(LWTUNNEL_IP6.HOPLIMIT),
        tc: u8(LWTUNNEL_IP6.TC),
        flags: be16(LWTUNNEL_IP6.FLAGS),
      });
    case LWTUNNEL_ENCAP.MPLS: {
      const v = a.get(MPLS_IPTUNNEL.DST) ?? new Uint8Array(0);
      const labels: number[] = [];
      for (let off = 0; off + 4 <= v.length; off += 4) labels.push(dvOf(v).getUint32(off, false) >>> 12);
      return defined<MplsEncap>({ type: "mpls", labels, ttl: u8(MPLS_IPTUNNEL.TTL) });
    }
    case LWTUNNEL_ENCAP.BPF: {
      const prog = (t: number): LwtProgram | undefined => {
        const v = a.get(t);
        if (v === undefined) return undefined;
        const name = netlinkAttributeMap(v).get(LWT_BPF_PROG.NAME);
        return { name: name === undefined ? "" : attrString(name) };
      };
      const headroom = a.get(LWT_BPF.XMIT_HEADROOM);
      return defined<BpfEncap>({
        type: "bpf",
        in: prog(LWT_BPF.IN),
        out: prog(LWT_BPF.OUT),
        xmit: prog(LWT_BPF.XMIT),
        headroom:
          headroom === undefined || headroom.length < 4 || u32(headroom, 0) === 0 ? undefined : u32(headroom, 0),
      });
    }
    default:
      return { type: "other", encapType: type, data: d.slice() };
  }
}

/**
 * Decodes the payload of an `RTM_NEWROUTE` (or `RTM_DELROUTE`) message from
 * the kernel: `struct rtmsg` and its attributes. `RTA_TABLE` wins over
 * `rtm_table`; attributes dp does not decode are kept in
 * {@link Route.unknown}, never dropped.
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
  if (payload.length < RTMSG_LEN)
    throw new SyntaxError(`Invalid route message: ${payload.length} bytes, struct rtmsg needs ${RTMSG_LEN}`);
  const af = payload[0] as number;
  if (af !== AF_INET && af !== AF_INET6)
    throw new SyntaxError(`Invalid route message: address family ${af} is neither IPv4 nor IPv6`);
  const family: IpFamily = af === AF_INET ? 4 : 6;
  const dstLen = payload[1] as number;
  const srcLen = payload[2] as number;
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
  let encapType: number | undefined;
  let encap: Uint8Array | undefined;
  const unknown: RawAttribute[] = [];
  for (let off = RTMSG_LEN; off + NLA_HDRLEN <= payload.length;) {
    const len = (payload[off] as number) | ((payload[off + 1] as number) << 8);
    const rawType = (payload[off + 2] as number) | ((payload[off + 3] as number) << 8);
    const type = rawType & 0x3fff;
    if (len < NLA_HDRLEN || off + len > payload.length) {
      throw new SyntaxError(
        `Invalid route attribute at offset ${off}: length ${len} with ${payload.length - off} bytes left`,
      );
    }
    const d = payload.subarray(off + NLA_HDRLEN, off + len);
    switch (type) {
      case RTA.DST:
        dst = d;
        break;
      case RTA.SRC:
        if (srcLen > 0 && (d.length === 4 || d.length === 16)) route.from = `${formatAddress(d)}/${srcLen}`;
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
      case RTA.METRICS: {
        const metrics = decodeMetrics(d);
        if (metrics.mtu !== undefined) route.mtu = metrics.mtu;
        if (Object.keys(metrics).length > 0) route.metrics = metrics;
        break;
      }
      case RTA.MULTIPATH:
        route.nexthops = decodeNextHops(d);
        break;
      case RTA.NH_ID:
        if (d.length >= 4) route.nhid = u32(d, 0);
        break;
      case RTA.CACHEINFO:
        // struct rta_cacheinfo: clntref, lastuse, expires (clock ticks), ...
        if (d.length >= 12) {
          const ticks = new DataView(d.buffer, d.byteOffset, d.byteLength).getInt32(8, true);
          if (ticks !== 0) route.expires = Math.trunc(ticks / USER_HZ);
        }
        break;
      case RTA.EXPIRES:
        if (d.length >= 4) route.expires = u32(d, 0);
        break;
      case RTA.PREF: {
        const pref = d[0];
        route.pref = pref === ICMPV6_ROUTER_PREF.high ? "high" : pref === ICMPV6_ROUTER_PREF.low ? "low" : "medium";
        break;
      }
      case RTA.FLOW:
        if (d.length >= 4) {
          const n = u32(d, 0);
          route.realms = { from: n >>> 16, to: n & 0xffff };
        }
        break;
      case RTA.ENCAP_TYPE:
        if (d.length >= 2) encapType = (d[0] as number) | ((d[1] as number) << 8);
        break;
      case RTA.ENCAP:
        encap = d;
        break;
      case RTA.PAD:
        break;
      default:
        unknown.push({ type: rawType, data: d.slice() });
        break;
    }
    off += (len + 3) & ~3;
  }
  if (encapType !== undefined && encap !== undefined) route.encap = decodeEncap(encapType, encap);
  if (unknown.length > 0) route.unknown = unknown;
  if (dstLen > 0) {
    if (family === 4 && dst !== undefined && dst.length >= 4)
      route.dst = `${dst[0]}.${dst[1]}.${dst[2]}.${dst[3]}/${dstLen}`;
    else {
      const bytes = new Uint8Array(family === 4 ? 4 : 16);
      if (dst !== undefined) bytes.set(dst.subarray(0, bytes.length));
      route.dst = `${formatAddress(bytes)}/${dstLen}`;
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
   * @throws {RangeError} When a number is out of range (an interface index above 2³¹−1), an interface name is invalid, or the families disagree.
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
   * @throws {RangeError} When a number is out of range (an interface index above 2³¹−1), an interface name is invalid, or the families disagree.
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
    if (family !== undefined && family !== 4 && family !== 6)
      throw new TypeError(`Invalid route list family ${quote(family)}: use 4 or 6`);
    const devRef = optionalLinkRef(options.dev, "route list dev");
    const what = `list routes${table === undefined ? "" : ` in table ${table}`}`;
    let dev: number | undefined;
    if (devRef !== undefined) {
      try {
        dev = linkIndex(this.#ctx, devRef, "route list dev", true);
      } catch (err) {
        if (err instanceof NetlinkError)
          throw new NetlinkError(`Cannot ${what} dev ${quote(devRef)}`, {
            op: err.op,
            errno: err.errno,
            extAck: err.extAck,
          });
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
      want = p.prefixLength === 0 ? "default" : `${formatAddress(p.bytes)}/${p.prefixLength}`;
    }
    const metric =
      options.metric === undefined ? undefined : checkInteger(options.metric, "route metric", 0, 0xffffffff);
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
        throw new NetlinkError(
          `Cannot ${op} ${describeRoute(parsed[i] as ParsedRoute)} (specs[${i}] of ${parsed.length})`,
          {
            op: err.op,
            errno: err.errno,
            extAck: err.extAck,
            extAckOffset: err.extAckOffset,
            seq: err.seq,
            cause: err,
          },
        );
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
          throw new NetlinkError(`Cannot ${op} ${describeRoute(r)}: no link ${quote(ref)}`, {
            op: err.op,
            errno: err.errno,
            extAck: err.extAck,
          });
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
