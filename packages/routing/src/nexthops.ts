import { type IpFamily, NetlinkError, type NetlinkWriter, NLM_F, parseIp } from "@dp/core";
import { RTM } from "@dp/core/internal";
import {
  checkBoolean,
  checkInteger,
  checkObject,
  protocolNumber,
  quote,
  type RawAttribute,
  rawAttributes,
} from "./_check.ts";
import { type LinkRef, linkIndex, type RoutingContext } from "./_context.ts";
import { formatAddress } from "./_text.ts";
import { decodeEncap, parseEncap, type RouteEncap, type RouteProtocol, writeEncap } from "./routes.ts";

// include/linux/socket.h
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
// include/uapi/linux/nexthop.h
const NHA = {
  ID: 1,
  GROUP: 2,
  GROUP_TYPE: 3,
  BLACKHOLE: 4,
  OIF: 5,
  GATEWAY: 6,
  ENCAP_TYPE: 7,
  ENCAP: 8,
  GROUPS: 9,
  MASTER: 10,
  FDB: 11,
  RES_GROUP: 12,
  RES_BUCKET: 13,
  OP_FLAGS: 14,
  GROUP_STATS: 15,
  HW_STATS_ENABLE: 16,
  HW_STATS_USED: 17,
} as const;
const NHA_RES_GROUP = { PAD: 0, BUCKETS: 1, IDLE_TIMER: 2, UNBALANCED_TIMER: 3, UNBALANCED_TIME: 4 } as const;
const NEXTHOP_GRP_TYPE = { MPATH: 0, RES: 1 } as const;
// include/uapi/linux/rtnetlink.h
const RTNH_F_DEAD = 1;
const RTNH_F_ONLINK = 4;
const RTNH_F_LINKDOWN = 16;
/** Sizes of struct nhmsg, struct nexthop_grp and the nlattr header. */
const NHMSG_LEN = 8;
const NH_GRP_LEN = 8;
const NLA_HDRLEN = 4;
/** `USER_HZ`: the kernel reports the resilient group timers in clock ticks of 1/100 s. */
const USER_HZ = 100;
// include/uapi/asm-generic/errno-base.h
const ENOENT = 2;

/** A member of a nexthop group. */
export interface NexthopGroupEntry {
  /** The id of a single nexthop object. */
  readonly id: number;
  /**
   * Its relative weight, 1-256 (1-65536 from kernel 6.12).
   *
   * @default 1
   */
  readonly weight?: number;
}

/** The settings of a resilient nexthop group (`type resilient`): a fixed table of buckets. */
export interface ResilientGroup {
  /**
   * The number of buckets.
   *
   * @default the kernel's, 128
   */
  readonly buckets?: number;
  /**
   * Seconds a bucket must be idle before it can move to another next hop.
   *
   * @default the kernel's, 120
   */
  readonly idleTimer?: number;
  /**
   * Seconds the group may stay unbalanced before busy buckets move too (0: never).
   *
   * @default the kernel's, 0
   */
  readonly unbalancedTimer?: number;
  /** Seconds the group has been unbalanced (read only). */
  readonly unbalancedTime?: number;
}

/**
 * A nexthop object (`ip nexthop`), decoded from the kernel's
 * `RTM_NEWNEXTHOP` message: a single next hop (a gateway and or a device,
 * or a blackhole), or a group of them that routes refer to by `nhid`.
 */
export interface NexthopObject {
  /** The id routes refer to. */
  readonly id: number;
  /** 4 or 6 for a single next hop; undefined for a group (`AF_UNSPEC`). */
  readonly family: IpFamily | undefined;
  /** The gateway. */
  readonly via?: string;
  /** The output interface index. */
  readonly dev?: number;
  /** Whether the gateway is assumed to be on link (`onlink`). */
  readonly onlink: boolean;
  /** Whether it drops packets (`blackhole`). */
  readonly blackhole: boolean;
  /** Whether it is for a bridge's forwarding database (`fdb`, vxlan remotes), not for routes. */
  readonly fdb: boolean;
  /** Whether the kernel marked it dead or its link down (`RTNH_F_DEAD`, `RTNH_F_LINKDOWN`). */
  readonly dead: boolean;
  /** Who installed it (`RTPROT_*`). */
  readonly protocol: number;
  /** The scope (`RT_SCOPE_*`; 253 link for a gateway, 0 for groups). */
  readonly scope: number;
  /** The members of a group. */
  readonly group?: readonly Required<NexthopGroupEntry>[];
  /** The group type: `"mpath"` (hash-threshold) or `"resilient"`. */
  readonly groupType?: "mpath" | "resilient";
  /** The resilient group settings. */
  readonly resilient?: ResilientGroup;
  /** A lightweight tunnel encapsulation (`encap`). */
  readonly encap?: RouteEncap;
  /** Attributes dp does not decode, as the kernel sent them: kept, never dropped. */
  readonly unknown?: readonly RawAttribute[];
}

/**
 * A nexthop object to add or replace. Give `group` for a group, or
 * `blackhole`, or `via` and or `dev` for a single next hop. The defaults
 * are those of iproute2's `ip nexthop add`.
 */
export interface NexthopObjectSpec {
  /** The id (1 to 2³²−1). */
  readonly id: number;
  /**
   * The family of a next hop without a gateway (`-4`/`-6`).
   *
   * @default the gateway's, else 4 for a blackhole, none for a group or a device alone
   */
  readonly family?: IpFamily;
  /**
   * The gateway.
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
   * Treat the gateway as on link.
   *
   * @default false
   */
  readonly onlink?: boolean;
  /**
   * Drop packets.
   *
   * @default false
   */
  readonly blackhole?: boolean;
  /**
   * A next hop for a bridge's forwarding database (vxlan), which routes cannot use.
   *
   * @default false
   */
  readonly fdb?: boolean;
  /**
   * Who installs it.
   *
   * @default none sent: the kernel records "unspec"
   */
  readonly protocol?: RouteProtocol;
  /**
   * The members of a group.
   *
   * @default none (a single next hop)
   */
  readonly group?: readonly NexthopGroupEntry[];
  /**
   * The group type.
   *
   * @default "mpath"
   */
  readonly groupType?: "mpath" | "resilient";
  /**
   * Resilient group settings (with `groupType: "resilient"`).
   *
   * @default the kernel's
   */
  readonly resilient?: ResilientGroup;
  /**
   * A lightweight tunnel encapsulation.
   *
   * @default none
   */
  readonly encap?: RouteEncap;
  /** Read-only fields of a listed object, accepted so that it can be passed back: ignored. */
  readonly scope?: number;
  /** Read only: ignored. */
  readonly dead?: boolean;
  /**
   * Attributes to send as they are (what {@link NexthopObject.unknown} kept).
   *
   * @default none
   */
  readonly unknown?: readonly RawAttribute[];
}

/** Options for {@link Nexthops.list}. */
export interface ListNexthopsOptions {
  /**
   * Only next hops of this family (groups are `AF_UNSPEC` and left out).
   *
   * @default every object
   */
  readonly family?: IpFamily;
  /**
   * Only next hops through this interface.
   *
   * @default any
   */
  readonly dev?: LinkRef;
  /**
   * Only groups.
   *
   * @default false
   */
  readonly groups?: boolean;
}

/** A nexthop request for {@link encodeNexthopRequest}. */
export interface NexthopRequest {
  /** `"add"` (fail if the id exists), `"replace"` (create or replace) or `"delete"` (by id). */
  readonly op: "add" | "replace" | "delete";
  /** The message's sequence number. */
  readonly seq: number;
  /** The object; for `"delete"` only its `id` counts. Its `dev` must be an interface index. */
  readonly spec: NexthopObjectSpec;
}

interface ParsedNexthop {
  readonly id: number;
  readonly family: number;
  readonly via: Uint8Array | undefined;
  readonly dev: LinkRef | undefined;
  readonly onlink: boolean;
  readonly blackhole: boolean;
  readonly fdb: boolean;
  readonly protocol: number | undefined;
  readonly group: readonly Required<NexthopGroupEntry>[] | undefined;
  readonly groupType: number | undefined;
  readonly resilient: ResilientGroup | undefined;
  readonly encap: RouteEncap | undefined;
  readonly unknown: readonly RawAttribute[] | undefined;
}

const SPEC_KEYS = new Set([
  "id",
  "family",
  "via",
  "dev",
  "onlink",
  "blackhole",
  "fdb",
  "protocol",
  "group",
  "groupType",
  "resilient",
  "encap",
  "scope",
  "dead",
  "unknown",
]);

function parseNexthopSpec(spec: NexthopObjectSpec, op: NexthopRequest["op"]): ParsedNexthop {
  checkObject(spec, "nexthop spec");
  for (const key of Object.keys(spec))
    if (!SPEC_KEYS.has(key)) throw new TypeError(`Invalid nexthop ${key}: not a nexthop field`);
  const id = checkInteger(spec.id, "nexthop id", 1, 0xffffffff);
  if (op === "delete") {
    return {
      id,
      family: AF_UNSPEC,
      via: undefined,
      dev: undefined,
      onlink: false,
      blackhole: false,
      fdb: false,
      protocol: undefined,
      group: undefined,
      groupType: undefined,
      resilient: undefined,
      encap: undefined,
      unknown: undefined,
    };
  }
  let family: number = AF_UNSPEC;
  if (spec.family !== undefined) {
    if (spec.family !== 4 && spec.family !== 6)
      throw new TypeError(`Invalid nexthop family ${quote(spec.family)}: use 4 or 6`);
    family = spec.family === 4 ? AF_INET : AF_INET6;
  }
  let via: Uint8Array | undefined;
  if (spec.via !== undefined) {
    if (typeof spec.via !== "string")
      throw new TypeError(`Invalid nexthop via: expected an IP address string, got ${typeof spec.via}`);
    let ip;
    try {
      ip = parseIp(spec.via);
    } catch (err) {
      throw new SyntaxError(`Invalid nexthop via ${quote(spec.via)}: not an IPv4 or IPv6 address`, { cause: err });
    }
    const f = ip.family === 4 ? AF_INET : AF_INET6;
    if (family !== AF_UNSPEC && family !== f)
      throw new RangeError(`Invalid nexthop via ${quote(spec.via)}: the next hop is IPv${spec.family}`);
    family = f;
    via = ip.bytes;
  }
  const dev = spec.dev === undefined ? undefined : spec.dev;
  if (dev !== undefined && typeof dev !== "string" && typeof dev !== "number")
    throw new TypeError("Invalid nexthop dev: expected an interface name or index");
  const blackhole = checkBoolean(spec.blackhole, "nexthop blackhole");
  const fdb = checkBoolean(spec.fdb, "nexthop fdb");
  const onlink = checkBoolean(spec.onlink, "nexthop onlink");
  let group: Required<NexthopGroupEntry>[] | undefined;
  if (spec.group !== undefined) {
    if (!Array.isArray(spec.group) || spec.group.length === 0)
      throw new TypeError("Invalid nexthop group: expected a non-empty array of { id, weight }");
    group = (spec.group as readonly NexthopGroupEntry[]).map((e, i) => {
      checkObject(e, `nexthop group[${i}]`);
      return {
        id: checkInteger(e.id, `nexthop group[${i}].id`, 1, 0xffffffff),
        weight: e.weight === undefined ? 1 : checkInteger(e.weight, `nexthop group[${i}].weight`, 1, 65536),
      };
    });
    if (via !== undefined || dev !== undefined || blackhole)
      throw new TypeError("Invalid nexthop group: a group has members, not via, dev or blackhole");
  }
  let groupType: number | undefined;
  if (spec.groupType !== undefined) {
    if (spec.groupType !== "mpath" && spec.groupType !== "resilient")
      throw new TypeError(`Invalid nexthop groupType ${quote(spec.groupType)}: use "mpath" or "resilient"`);
    if (group === undefined) throw new TypeError("Invalid nexthop groupType: only a group has a type");
    groupType = spec.groupType === "mpath" ? NEXTHOP_GRP_TYPE.MPATH : NEXTHOP_GRP_TYPE.RES;
  }
  let resilient: ResilientGroup | undefined;
  if (spec.resilient !== undefined) {
    checkObject(spec.resilient, "nexthop resilient");
    if (groupType !== NEXTHOP_GRP_TYPE.RES)
      throw new TypeError('Invalid nexthop resilient: give groupType "resilient" too');
    const r = spec.resilient;
    resilient = {
      ...(r.buckets === undefined ? {} : { buckets: checkInteger(r.buckets, "nexthop resilient.buckets", 1, 0xffff) }),
      ...(r.idleTimer === undefined
        ? {}
        : { idleTimer: checkInteger(r.idleTimer, "nexthop resilient.idleTimer", 0, 0xffffffff / USER_HZ) }),
      ...(r.unbalancedTimer === undefined
        ? {}
        : {
            unbalancedTimer: checkInteger(
              r.unbalancedTimer,
              "nexthop resilient.unbalancedTimer",
              0,
              0xffffffff / USER_HZ,
            ),
          }),
    };
  } else if (groupType === NEXTHOP_GRP_TYPE.RES) {
    resilient = {};
  }
  // iproute2 makes a blackhole IPv4 unless told otherwise.
  if (blackhole && family === AF_UNSPEC) family = AF_INET;
  if (group === undefined && !blackhole && via === undefined && dev === undefined) {
    throw new TypeError("Invalid nexthop: give via, dev, blackhole or group");
  }
  return {
    id,
    family,
    via,
    dev,
    onlink,
    blackhole,
    fdb,
    protocol: spec.protocol === undefined ? undefined : protocolNumber(spec.protocol, "nexthop protocol"),
    group,
    groupType,
    resilient,
    encap: parseEncap(spec.encap, "nexthop encap"),
    unknown: rawAttributes(spec.unknown, "nexthop unknown"),
  };
}

const FLAGS = {
  add: NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL,
  replace: NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.REPLACE,
  delete: NLM_F.REQUEST | NLM_F.ACK,
} as const;

/** Writes one request the way iproute2's `ip nexthop add/replace/del` builds it. */
function writeNexthop(
  w: NetlinkWriter,
  op: NexthopRequest["op"],
  seq: number,
  n: ParsedNexthop,
  dev: number | undefined,
): void {
  w.begin(op === "delete" ? RTM.DELNEXTHOP : RTM.NEWNEXTHOP, FLAGS[op], seq);
  // struct nhmsg: family, scope, protocol, resvd, flags
  w.u8(n.family)
    .u8(0)
    .u8(n.protocol ?? 0)
    .u8(0)
    .u32(n.onlink ? RTNH_F_ONLINK : 0);
  w.attrU32(NHA.ID, n.id);
  if (n.blackhole) w.attr(NHA.BLACKHOLE, new Uint8Array(0));
  if (n.via !== undefined) w.attr(NHA.GATEWAY, n.via);
  if (dev !== undefined) w.attrU32(NHA.OIF, dev);
  if (n.fdb) w.attr(NHA.FDB, new Uint8Array(0));
  const group = n.group;
  if (group !== undefined) {
    // struct nexthop_grp: id, weight - 1 (low byte), its high byte (kernel 6.12+), reserved.
    const bytes = new Uint8Array(NH_GRP_LEN * group.length);
    const dv = new DataView(bytes.buffer);
    group.forEach((e, i) => {
      dv.setUint32(i * NH_GRP_LEN, e.id, true);
      dv.setUint8(i * NH_GRP_LEN + 4, (e.weight - 1) & 0xff);
      dv.setUint8(i * NH_GRP_LEN + 5, (e.weight - 1) >> 8);
    });
    w.attr(NHA.GROUP, bytes);
  }
  const res = n.resilient;
  if (res !== undefined) {
    w.nest(
      NHA.RES_GROUP,
      () => {
        if (res.buckets !== undefined) w.attrU16(NHA_RES_GROUP.BUCKETS, res.buckets);
        if (res.idleTimer !== undefined) w.attrU32(NHA_RES_GROUP.IDLE_TIMER, res.idleTimer * USER_HZ);
        if (res.unbalancedTimer !== undefined) w.attrU32(NHA_RES_GROUP.UNBALANCED_TIMER, res.unbalancedTimer * USER_HZ);
      },
      true,
    );
  }
  if (n.groupType !== undefined) w.attrU16(NHA.GROUP_TYPE, n.groupType);
  if (n.encap !== undefined) writeEncap(w, n.encap, NHA.ENCAP, NHA.ENCAP_TYPE);
  for (const a of n.unknown ?? []) w.attr(a.type, a.data);
  w.end();
}

/**
 * Encodes a nexthop object request (`RTM_NEWNEXTHOP` or
 * `RTM_DELNEXTHOP`, with `NLM_F_ACK`) the way iproute2's `ip nexthop
 * add`, `replace` and `del` do: `NHA_ID`, `NHA_BLACKHOLE`, `NHA_GATEWAY`,
 * `NHA_OIF`, `NHA_FDB`, `NHA_GROUP`, `NHA_RES_GROUP`, `NHA_GROUP_TYPE`,
 * then the encapsulation. Pure: `dev` must be an interface index.
 *
 * @param w The writer to append the message to.
 * @param request The operation, sequence number and object.
 * @throws {SyntaxError} When the gateway is malformed.
 * @throws {TypeError} When a field has the wrong type, or the fields do not make one kind of object.
 * @throws {RangeError} When a number is out of range or the families disagree.
 * @example Encoding a group of two next hops
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 * import { decodeNexthop, encodeNexthopRequest } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * encodeNexthopRequest(w, { op: "add", seq: 1, spec: { id: 10, group: [{ id: 1 }, { id: 2, weight: 3 }] } });
 * const nh = decodeNexthop(parseNetlinkMessages(w.bytes())[0]!.payload);
 * assert.deepEqual(nh.group, [{ id: 1, weight: 1 }, { id: 2, weight: 3 }]);
 * ```
 */
export function encodeNexthopRequest(w: NetlinkWriter, request: NexthopRequest): void {
  checkObject(request, "nexthop request");
  if (!Object.hasOwn(FLAGS, request.op))
    throw new TypeError(`Invalid nexthop request op ${quote(request.op)}: use "add", "replace" or "delete"`);
  checkInteger(request.seq, "nexthop request seq", 0, 0xffffffff);
  const n = parseNexthopSpec(request.spec, request.op);
  if (typeof n.dev === "string")
    throw new TypeError(
      `Invalid nexthop dev ${quote(n.dev)}: encodeNexthopRequest() takes interface indexes; resolve names first`,
    );
  writeNexthop(
    w,
    request.op,
    request.seq,
    n,
    n.dev === undefined ? undefined : checkInteger(n.dev, "nexthop dev", 1, 0x7fffffff),
  );
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Decodes the payload of an `RTM_NEWNEXTHOP` message: `struct nhmsg` and
 * its `NHA_*` attributes. Attributes dp does not decode are kept in
 * {@link NexthopObject.unknown}.
 *
 * @param payload The message payload after `struct nlmsghdr`.
 * @returns The nexthop object.
 * @throws {SyntaxError} When the payload is truncated or an attribute overruns it.
 * @example Decoding a blackhole
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 * import { decodeNexthop, encodeNexthopRequest } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * encodeNexthopRequest(w, { op: "add", seq: 1, spec: { id: 4, blackhole: true } });
 * const nh = decodeNexthop(parseNetlinkMessages(w.bytes())[0]!.payload);
 * assert.equal(nh.blackhole, true);
 * assert.equal(nh.family, 4);
 * ```
 */
export function decodeNexthop(payload: Uint8Array): NexthopObject {
  if (payload.length < NHMSG_LEN)
    throw new SyntaxError(`Invalid nexthop message: ${payload.length} bytes, struct nhmsg needs ${NHMSG_LEN}`);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const af = payload[0] as number;
  const flags = dv.getUint32(4, true);
  const nh: Mutable<NexthopObject> = {
    id: 0,
    family: af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined,
    onlink: (flags & RTNH_F_ONLINK) !== 0,
    blackhole: false,
    fdb: false,
    dead: (flags & (RTNH_F_DEAD | RTNH_F_LINKDOWN)) !== 0,
    protocol: payload[2] as number,
    scope: payload[1] as number,
  };
  let encapType: number | undefined;
  let encap: Uint8Array | undefined;
  const unknown: RawAttribute[] = [];
  for (let off = NHMSG_LEN; off + NLA_HDRLEN <= payload.length;) {
    const len = dv.getUint16(off, true);
    const rawType = dv.getUint16(off + 2, true);
    const type = rawType & 0x3fff;
    if (len < NLA_HDRLEN || off + len > payload.length) {
      throw new SyntaxError(
        `Invalid nexthop attribute at offset ${off}: length ${len} with ${payload.length - off} bytes left`,
      );
    }
    const d = payload.subarray(off + NLA_HDRLEN, off + len);
    const ddv = new DataView(d.buffer, d.byteOffset, d.byteLength);
    switch (type) {
      case NHA.ID:
        if (d.length >= 4) nh.id = ddv.getUint32(0, true);
        break;
      case NHA.GATEWAY:
        if (d.length === 4 || d.length === 16) nh.via = formatAddress(d);
        break;
      case NHA.OIF:
        if (d.length >= 4) nh.dev = ddv.getInt32(0, true);
        break;
      case NHA.BLACKHOLE:
        nh.blackhole = true;
        break;
      case NHA.FDB:
        nh.fdb = true;
        break;
      case NHA.GROUP: {
        const group: Required<NexthopGroupEntry>[] = [];
        for (let g = 0; g + NH_GRP_LEN <= d.length; g += NH_GRP_LEN) {
          group.push({ id: ddv.getUint32(g, true), weight: (ddv.getUint8(g + 4) | (ddv.getUint8(g + 5) << 8)) + 1 });
        }
        nh.group = group;
        break;
      }
      case NHA.GROUP_TYPE:
        if (d.length >= 2) nh.groupType = ddv.getUint16(0, true) === NEXTHOP_GRP_TYPE.RES ? "resilient" : "mpath";
        break;
      case NHA.RES_GROUP: {
        const r: Mutable<ResilientGroup> = {};
        for (let a = 0; a + NLA_HDRLEN <= d.length;) {
          const alen = ddv.getUint16(a, true);
          const atype = ddv.getUint16(a + 2, true) & 0x3fff;
          if (alen < NLA_HDRLEN || a + alen > d.length)
            throw new SyntaxError(`Invalid NHA_RES_GROUP attribute at offset ${a}`);
          const vlen = alen - NLA_HDRLEN;
          const at = a + NLA_HDRLEN;
          if (atype === NHA_RES_GROUP.BUCKETS && vlen >= 2) r.buckets = ddv.getUint16(at, true);
          else if (atype === NHA_RES_GROUP.IDLE_TIMER && vlen >= 4) r.idleTimer = ddv.getUint32(at, true) / USER_HZ;
          else if (atype === NHA_RES_GROUP.UNBALANCED_TIMER && vlen >= 4)
            r.unbalancedTimer = ddv.getUint32(at, true) / USER_HZ;
          else if (atype === NHA_RES_GROUP.UNBALANCED_TIME && vlen >= 8)
            r.unbalancedTime = Number(ddv.getBigUint64(at, true)) / USER_HZ;
          a += (alen + 3) & ~3;
        }
        nh.resilient = r;
        break;
      }
      case NHA.ENCAP_TYPE:
        if (d.length >= 2) encapType = ddv.getUint16(0, true);
        break;
      case NHA.ENCAP:
        encap = d;
        break;
      case NHA.OP_FLAGS:
        // The kernel's note on the reply's format (reserved group bytes are zero): nothing about the object.
        break;
      default:
        unknown.push({ type: rawType, data: d.slice() });
        break;
    }
    off += (len + 3) & ~3;
  }
  if (nh.group !== undefined) nh.groupType ??= "mpath";
  if (encapType !== undefined && encap !== undefined) nh.encap = decodeEncap(encapType, encap);
  if (unknown.length > 0) nh.unknown = unknown;
  return nh;
}

/**
 * The nexthop objects of a {@link Routing} handle's namespace (`ip
 * nexthop`): single next hops and groups that routes share by id
 * ({@link RouteSpec.nhid}), so that changing a next hop changes every
 * route using it at once.
 *
 * @example A group behind a route
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * rt.links.add({ kind: "veth", name: "d0", peer: { name: "d1" } });
 * rt.links.set("d0", { up: true });
 * rt.links.set("d1", { up: true });
 * rt.addresses.add("10.1.0.2/24", { dev: "d0" });
 * rt.nexthops.add({ id: 1, via: "10.1.0.1", dev: "d0" });
 * rt.nexthops.add({ id: 2, via: "10.1.0.3", dev: "d0" });
 * rt.nexthops.add({ id: 10, group: [{ id: 1 }, { id: 2, weight: 3 }] });
 * rt.routes.add({ dst: "10.7.0.0/24", nhid: 10 });
 * assert.equal(rt.routes.get("10.7.0.0/24")?.nhid, 10);
 * assert.deepEqual(rt.nexthops.get(10)?.group, [{ id: 1, weight: 1 }, { id: 2, weight: 3 }]);
 * ```
 */
export class Nexthops {
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
   * Adds a nexthop object (`ip nexthop add`).
   *
   * @param spec The object.
   * @throws {SyntaxError} When the gateway is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type or the fields do not make one kind of object.
   * @throws {RangeError} When a number is out of range, `dev` is not a valid link, or the families disagree.
   * @throws {NetlinkError} EEXIST when the id is taken; ENODEV for a missing `dev`; EINVAL with the kernel's reason (such as "Nexthop device is not up").
   * @example A blackhole next hop
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.links.set("lo", { up: true });
   * rt.nexthops.add({ id: 4, blackhole: true });
   * assert.equal(rt.nexthops.get(4)?.blackhole, true);
   * ```
   */
  add(spec: NexthopObjectSpec): void {
    this.#modify("add", spec);
  }

  /**
   * Adds a nexthop object or replaces the one with the same id (`ip
   * nexthop replace`); the routes using it follow.
   *
   * @param spec The object.
   * @throws {SyntaxError} When the gateway is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type or the fields do not make one kind of object.
   * @throws {RangeError} When a number is out of range, `dev` is not a valid link, or the families disagree.
   * @throws {NetlinkError} ENODEV for a missing `dev`; EINVAL with the kernel's reason (such as replacing a group by a single next hop).
   * @example Moving a next hop to another gateway
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.links.add({ kind: "veth", name: "d0", peer: { name: "d1" } });
   * rt.links.set("d0", { up: true });
   * rt.links.set("d1", { up: true });
   * rt.addresses.add("10.1.0.2/24", { dev: "d0" });
   * rt.nexthops.add({ id: 1, via: "10.1.0.1", dev: "d0" });
   * rt.nexthops.replace({ id: 1, via: "10.1.0.3", dev: "d0" });
   * assert.equal(rt.nexthops.get(1)?.via, "10.1.0.3");
   * ```
   */
  replace(spec: NexthopObjectSpec): void {
    this.#modify("replace", spec);
  }

  /**
   * Deletes a nexthop object by id (`ip nexthop del id N`); the kernel
   * deletes the routes that use it too.
   *
   * @param id The id.
   * @returns Whether it existed.
   * @throws {TypeError} When `id` is not a number.
   * @throws {RangeError} When `id` is not from 1 to 2³²−1.
   * @throws {NetlinkError} When the kernel refuses for another reason.
   * @example Deleting twice
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.links.set("lo", { up: true });
   * rt.nexthops.add({ id: 4, blackhole: true });
   * assert.equal(rt.nexthops.delete(4), true);
   * assert.equal(rt.nexthops.delete(4), false);
   * ```
   */
  delete(id: number): boolean {
    const n = parseNexthopSpec({ id }, "delete");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeNexthop(w, "delete", nl.nextSeq(), n, undefined);
    try {
      nl.request(w, `delete nexthop ${id}`, "RTM_DELNEXTHOP");
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  /**
   * Looks a nexthop object up by id.
   *
   * @param id The id.
   * @returns The object, or undefined when there is none.
   * @throws {TypeError} When `id` is not a number.
   * @throws {RangeError} When `id` is not from 1 to 2³²−1.
   * @throws {NetlinkError} When the kernel refuses for another reason.
   * @example A missing id
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.nexthops.get(99), undefined);
   * ```
   */
  get(id: number): NexthopObject | undefined {
    checkInteger(id, "nexthop id", 1, 0xffffffff);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    w.begin(RTM.GETNEXTHOP, NLM_F.REQUEST, nl.nextSeq()).zeros(NHMSG_LEN);
    w.attrU32(NHA.ID, id);
    w.end();
    let replies;
    try {
      replies = nl.request(w, `get nexthop ${id}`, "RTM_GETNEXTHOP");
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENOENT) return undefined;
      throw err;
    }
    const reply = replies.find((m) => m.type === RTM.NEWNEXTHOP);
    return reply === undefined ? undefined : decodeNexthop(reply.payload);
  }

  /**
   * Lists nexthop objects in id order (`ip nexthop show`); the kernel
   * filters by family, interface and groups.
   *
   * @param options The family, interface and whether only groups.
   * @returns The objects.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When `dev` is not a valid link name or index.
   * @throws {NetlinkError} ENODEV when `dev` does not exist; others when the dump fails.
   * @example An empty namespace has none
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.deepEqual(rt.nexthops.list(), []);
   * ```
   */
  list(options: ListNexthopsOptions = {}): NexthopObject[] {
    checkObject(options, "nexthop list options");
    const family = options.family;
    if (family !== undefined && family !== 4 && family !== 6)
      throw new TypeError(`Invalid nexthop list family ${quote(family)}: use 4 or 6`);
    const groups = checkBoolean(options.groups, "nexthop list groups");
    const dev = options.dev === undefined ? undefined : linkIndex(this.#ctx, options.dev, "nexthop list dev", true);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    w.begin(RTM.GETNEXTHOP, NLM_F.REQUEST | NLM_F.DUMP, 0)
      .u8(family === undefined ? AF_UNSPEC : family === 4 ? AF_INET : AF_INET6)
      .zeros(NHMSG_LEN - 1);
    if (dev !== undefined) w.attrU32(NHA.OIF, dev);
    if (groups) w.attr(NHA.GROUPS, new Uint8Array(0));
    w.end();
    return nl
      .dump(w, "list nexthops", "RTM_GETNEXTHOP")
      .filter((m) => m.type === RTM.NEWNEXTHOP)
      .map((m) => decodeNexthop(m.payload));
  }

  #modify(op: "add" | "replace", spec: NexthopObjectSpec): void {
    const n = parseNexthopSpec(spec, op);
    const what = `${op} nexthop ${n.id}`;
    let dev: number | undefined;
    if (n.dev !== undefined) {
      try {
        dev = linkIndex(this.#ctx, n.dev, "nexthop dev");
      } catch (err) {
        if (err instanceof NetlinkError)
          throw new NetlinkError(`Cannot ${what}: no link ${quote(n.dev)}`, {
            op: err.op,
            errno: err.errno,
            extAck: err.extAck,
          });
        throw err;
      }
    }
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeNexthop(w, op, nl.nextSeq(), n, dev);
    nl.request(w, what, "RTM_NEWNEXTHOP");
  }
}
