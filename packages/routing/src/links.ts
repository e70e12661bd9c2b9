import {
  attrBe16,
  attrS32,
  attrString,
  attrU32,
  attrU8,
  formatMac,
  NLM_F,
  NetlinkError,
  type NetlinkWriter,
  Netns,
  netlinkAttributeMap,
  parseIp,
  parseMac,
  parseNetlinkAttributes,
} from "@dp/core";
import {
  IFF,
  IFLA,
  IFLA_INFO,
  IFLA_MACVLAN,
  IFLA_VXLAN,
  MACVLAN_MODE,
  RTM,
  RTNL_LINK_STATS64,
  VETH_INFO,
  rawFd,
} from "@dp/core/internal";
import { checkLinkIndex, checkLinkName, checkLinkRef } from "./_check.ts";
import { type LinkRef, type RoutingContext, writeLinkName } from "./_context.ts";
import { formatAddress } from "./_text.ts";

/** Size of `struct ifinfomsg`. */
const IFINFOMSG_LEN = 16;
const ENODEV = 19;
/** The port IANA assigned to VXLAN; the kernel's own default is 8472. */
const VXLAN_PORT = 4789;
/** `VXLAN_N_VID` (net/vxlan.h): VNIs are 24 bits. */
const VXLAN_N_VID = 1 << 24;
const MTU_MAX = 0x7fff_ffff;

/**
 * The link kinds dp recognises by name. It creates veth, vxlan, bridge,
 * macvlan, macvtap and ifb links; the others it reads (a `"tap"` is a tun
 * device in tap mode; `"loopback"` is `lo`, which has no kind of its own).
 */
export type LinkKind =
  | "veth"
  | "vxlan"
  | "bridge"
  | "macvlan"
  | "macvtap"
  | "ifb"
  | "tun"
  | "tap"
  | "vlan"
  | "ipip"
  | "gre"
  | "gretap"
  | "dummy"
  | "vrf"
  | "geneve"
  | "ipvlan"
  | "netkit"
  | "loopback";

/** RFC 2863 operational state (`IFLA_OPERSTATE`, `enum IF_OPER_*` in linux/if.h), lower-cased. */
export type LinkOperState = "unknown" | "notpresent" | "down" | "lowerlayerdown" | "testing" | "dormant" | "up";

/** How a macvlan talks to its siblings on the same parent (`MACVLAN_MODE_*`). */
export type MacvlanMode = "private" | "vepa" | "bridge" | "passthru" | "source";

// enum IF_OPER_* in linux/if.h, by value.
const OPER_STATES: readonly LinkOperState[] = [
  "unknown",
  "notpresent",
  "down",
  "lowerlayerdown",
  "testing",
  "dormant",
  "up",
];

const MACVLAN_MODES: Readonly<Record<MacvlanMode, number>> = {
  private: MACVLAN_MODE.PRIVATE,
  vepa: MACVLAN_MODE.VEPA,
  bridge: MACVLAN_MODE.BRIDGE,
  passthru: MACVLAN_MODE.PASSTHRU,
  source: MACVLAN_MODE.SOURCE,
};

const KNOWN_KINDS: ReadonlySet<string> = new Set([
  "veth",
  "vxlan",
  "bridge",
  "macvlan",
  "macvtap",
  "ifb",
  "tun",
  "vlan",
  "ipip",
  "gre",
  "gretap",
  "dummy",
  "vrf",
  "geneve",
  "ipvlan",
  "netkit",
]);

// Link kinds' IFLA_INFO_DATA attributes (include/uapi/linux/if_link.h, if_tunnel.h).
const IFLA_TUN = {
  OWNER: 1,
  GROUP: 2,
  TYPE: 3,
  PI: 4,
  VNET_HDR: 5,
  PERSIST: 6,
  MULTI_QUEUE: 7,
  NUM_QUEUES: 8,
  NUM_DISABLED_QUEUES: 9,
} as const;
const IFF_TAP = 2;
const IFLA_VLAN = { ID: 1, PROTOCOL: 5 } as const;
const IFLA_VRF_TABLE = 1;
const IFLA_IPVLAN = { MODE: 1, FLAGS: 2 } as const;
const IFLA_GENEVE = { ID: 1, REMOTE: 2, TTL: 3, PORT: 5, COLLECT_METADATA: 6, REMOTE6: 7 } as const;
const IFLA_IPTUN = { LINK: 1, LOCAL: 2, REMOTE: 3, TTL: 4, COLLECT_METADATA: 18 } as const;
const IFLA_GRE = { LINK: 1, IKEY: 4, OKEY: 5, LOCAL: 6, REMOTE: 7, TTL: 8, COLLECT_METADATA: 18 } as const;
const IFLA_NETKIT = { PRIMARY: 2, POLICY: 3, PEER_POLICY: 4, MODE: 5 } as const;
const ETH_P_8021Q = 0x8100;
const ETH_P_8021AD = 0x88a8;

/** A link's counters (`IFLA_STATS64`, `struct rtnl_link_stats64`). */
export interface LinkStats {
  /** Packets received. */
  readonly rxPackets: bigint;
  /** Packets sent. */
  readonly txPackets: bigint;
  /** Bytes received. */
  readonly rxBytes: bigint;
  /** Bytes sent. */
  readonly txBytes: bigint;
  /** Receive errors. */
  readonly rxErrors: bigint;
  /** Transmit errors. */
  readonly txErrors: bigint;
  /** Received packets dropped (no buffer, no handler, filtered). */
  readonly rxDropped: bigint;
  /** Packets dropped on transmit. */
  readonly txDropped: bigint;
}

/** A vxlan link's settings (`IFLA_VXLAN_*`). */
export interface VxlanInfo {
  /** The VXLAN network identifier; 0 in external (collect_md) mode. */
  readonly vni: number;
  /** The UDP destination port. */
  readonly port: number;
  /** The local (source) address, when set. */
  readonly local: string | undefined;
  /** Whether remote MACs are learnt from received packets. */
  readonly learning: boolean;
  /** External control (collect_md): the VNI and remote come per packet from a BPF program or tc. */
  readonly external: boolean;
  /** Index of the device the tunnel is bound to, when set. */
  readonly dev: number | undefined;
  /** The outer TTL; 0 means the route's default. */
  readonly ttl: number;
}

/** A macvlan link's settings (`IFLA_MACVLAN_*`). */
export interface MacvlanInfo {
  /** How it talks to its siblings. */
  readonly mode: MacvlanMode | undefined;
}

/** A tun or tap device's settings (`IFLA_TUN_*`). */
export interface TunInfo {
  /** `"tun"` (IP packets) or `"tap"` (Ethernet frames). */
  readonly type: "tun" | "tap";
  /** Whether packets carry the packet information header (`pi`, not `IFF_NO_PI`). */
  readonly pi: boolean;
  /** Whether packets carry a virtio-net header (`vnet_hdr`). */
  readonly vnetHdr: boolean;
  /** Whether the device outlives its file descriptors (`persist`). */
  readonly persist: boolean;
  /** Whether it has several queues (`multi_queue`). */
  readonly multiQueue: boolean;
  /** The attached queues of a multi-queue device. */
  readonly numQueues?: number;
  /** The disabled queues of a multi-queue device. */
  readonly numDisabledQueues?: number;
  /** The uid allowed to attach, when restricted. */
  readonly owner?: number;
  /** The gid allowed to attach, when restricted. */
  readonly group?: number;
}

/** A VLAN link's settings (`IFLA_VLAN_*`). */
export interface VlanInfo {
  /** The VLAN id. */
  readonly id: number;
  /** The tag protocol: `"802.1Q"`, `"802.1ad"`, or its EtherType. */
  readonly protocol: "802.1Q" | "802.1ad" | number;
}

/** A VRF's settings. */
export interface VrfInfo {
  /** The routing table of the VRF. */
  readonly table: number;
}

/** An ipvlan link's settings (`IFLA_IPVLAN_*`). */
export interface IpvlanInfo {
  /** The mode. */
  readonly mode: "l2" | "l3" | "l3s" | undefined;
  /** How it talks to its siblings. */
  readonly flags: "bridge" | "private" | "vepa" | undefined;
}

/** A geneve tunnel's settings (`IFLA_GENEVE_*`). */
export interface GeneveInfo {
  /** The virtual network identifier; 0 in external mode. */
  readonly vni: number;
  /** The remote address, when set. */
  readonly remote: string | undefined;
  /** The UDP destination port. */
  readonly port: number;
  /** The outer TTL (0: the route's default). */
  readonly ttl: number;
  /** External control (collect_md). */
  readonly external: boolean;
}

/** An ipip, gre or gretap tunnel's settings (`IFLA_IPTUN_*`, `IFLA_GRE_*`). */
export interface IpTunnelInfo {
  /** The local (source) address, when set. */
  readonly local: string | undefined;
  /** The remote address, when set. */
  readonly remote: string | undefined;
  /** The outer TTL (0: inherit). */
  readonly ttl: number;
  /** Index of the device the tunnel is bound to, when set. */
  readonly dev: number | undefined;
  /** External control (collect_md). */
  readonly external: boolean;
  /** The GRE input key, when set. */
  readonly ikey?: number;
  /** The GRE output key, when set. */
  readonly okey?: number;
}

/** A netkit link's settings (`IFLA_NETKIT_*`). */
export interface NetkitInfo {
  /** The mode. */
  readonly mode: "l2" | "l3" | undefined;
  /** Whether this is the primary device of the pair (the one its BPF programs are attached through). */
  readonly primary: boolean;
  /** What happens to packets without a program: `"pass"`, `"drop"`, or the number. */
  readonly policy: "pass" | "drop" | number | undefined;
}

/** A link as the kernel describes it (an `RTM_NEWLINK` message). */
export interface Link {
  /** The interface index in its namespace. */
  readonly index: number;
  /** The interface name. */
  readonly name: string;
  /** The kind, when dp knows it (`"loopback"` for `lo`, which has no kind of its own). */
  readonly kind: LinkKind | undefined;
  /** The kernel's kind string (`IFLA_INFO_KIND`), such as `"veth"` or `"tun"`, when the link has one. */
  readonly rawKind: string | undefined;
  /** Whether it is administratively up (`IFF_UP`). */
  readonly up: boolean;
  /** The operational state. */
  readonly operState: LinkOperState;
  /** The MTU. */
  readonly mtu: number;
  /** The link-layer address, such as `"02:00:00:aa:bb:cc"`, when the link has one. */
  readonly mac: string | undefined;
  /** Index of the master (a bridge), when the link is enslaved. */
  readonly master: number | undefined;
  /** The `IFF_*` flags (`ifi_flags`). */
  readonly flags: number;
  /** `IFLA_LINK`: a veth's peer, a macvlan's parent (in the namespace named by {@link Link.linkNetnsId} when set). */
  readonly linkIndex: number | undefined;
  /** The namespace id (as this namespace numbers it) of {@link Link.linkIndex}'s namespace, when that is another one. */
  readonly linkNetnsId: number | undefined;
  /** Vxlan settings, for vxlan links. */
  readonly vxlan: VxlanInfo | undefined;
  /** Macvlan settings, for macvlan links. */
  readonly macvlan: MacvlanInfo | undefined;
  /** Counters, when the kernel sent them. */
  readonly stats: LinkStats | undefined;
  /** Alternative names (`ip link property add ... altname`), of any length up to 127 bytes. */
  readonly altnames?: readonly string[];
  /** Tun or tap settings, for `"tun"` and `"tap"` links. */
  readonly tun?: TunInfo;
  /** VLAN settings. */
  readonly vlan?: VlanInfo;
  /** VRF settings. */
  readonly vrf?: VrfInfo;
  /** Ipvlan settings. */
  readonly ipvlan?: IpvlanInfo;
  /** Geneve settings. */
  readonly geneve?: GeneveInfo;
  /** Ipip, gre and gretap settings. */
  readonly tunnel?: IpTunnelInfo;
  /** Netkit settings. */
  readonly netkit?: NetkitInfo;
}

/** The far end of a new veth pair. */
export interface VethPeerSpec {
  /** Its name. */
  readonly name: string;
  /**
   * The namespace to create it in, directly (it never appears in the handle's namespace).
   *
   * @default the handle's namespace
   */
  readonly netns?: Netns;
  /**
   * Its MAC address.
   *
   * @default random
   */
  readonly mac?: string;
}

/** A veth pair: two links, each delivering what the other sends. */
export interface VethSpec {
  /** The kind. */
  readonly kind: "veth";
  /** The name of the end in the handle's namespace. */
  readonly name: string;
  /** The other end. */
  readonly peer: VethPeerSpec;
  /**
   * The MTU of both ends.
   *
   * @default 1500
   */
  readonly mtu?: number;
  /**
   * The MAC address of this end.
   *
   * @default random
   */
  readonly mac?: string;
}

/** A VXLAN tunnel endpoint. */
export interface VxlanSpec {
  /** The kind. */
  readonly kind: "vxlan";
  /** The name. */
  readonly name: string;
  /**
   * The VXLAN network identifier (0 to 2^24-1). Required unless `external`.
   *
   * @default none
   */
  readonly vni?: number;
  /**
   * External control (collect_md): one device carries every VNI, set per
   * packet by BPF (`bpf_skb_set_tunnel_key`) or tc; this is how an overlay
   * carries a security identity in the VNI. Excludes `vni`.
   *
   * @default false
   */
  readonly external?: boolean;
  /**
   * The UDP destination port.
   *
   * @default 4789
   */
  readonly port?: number;
  /**
   * The local (source) IPv4 or IPv6 address.
   *
   * @default chosen by routing
   */
  readonly local?: string;
  /**
   * The device the tunnel sends through.
   *
   * @default any
   */
  readonly dev?: LinkRef;
  /**
   * Learn remote MACs from received packets.
   *
   * @default false
   */
  readonly learning?: boolean;
  /**
   * The outer TTL (0 to 255; 0 uses the route's default).
   *
   * @default 0
   */
  readonly ttl?: number;
  /**
   * The MTU.
   *
   * @default 1500, or the device's MTU minus the encapsulation overhead
   */
  readonly mtu?: number;
}

/** A Linux bridge. */
export interface BridgeSpec {
  /** The kind. */
  readonly kind: "bridge";
  /** The name. */
  readonly name: string;
  /**
   * The MTU.
   *
   * @default 1500
   */
  readonly mtu?: number;
}

/** A macvlan: a second MAC address on a parent Ethernet device. */
export interface MacvlanSpec {
  /** The kind. */
  readonly kind: "macvlan";
  /** The name. */
  readonly name: string;
  /** The parent device. */
  readonly parent: LinkRef;
  /**
   * How it talks to its siblings on the same parent.
   *
   * @default "bridge"
   */
  readonly mode?: "bridge" | "private" | "vepa" | "passthru";
  /**
   * Its MAC address.
   *
   * @default random
   */
  readonly mac?: string;
  /**
   * The MTU (at most the parent's).
   *
   * @default the parent's MTU
   */
  readonly mtu?: number;
}

/** A macvtap: a macvlan with a character device (`/dev/tapN`) for a VM or a user-space datapath. */
export interface MacvtapSpec {
  /** The kind. */
  readonly kind: "macvtap";
  /** The name. */
  readonly name: string;
  /** The parent device. */
  readonly parent: LinkRef;
  /**
   * How it talks to its siblings on the same parent.
   *
   * @default "bridge"
   */
  readonly mode?: "bridge" | "private" | "vepa" | "passthru";
  /**
   * Its MAC address.
   *
   * @default random
   */
  readonly mac?: string;
  /**
   * The MTU (at most the parent's).
   *
   * @default the parent's MTU
   */
  readonly mtu?: number;
}

/** An intermediate functional block: a device that ingress traffic can be redirected to (tc `mirred`), to shape it as egress. */
export interface IfbSpec {
  /** The kind. */
  readonly kind: "ifb";
  /** The name. */
  readonly name: string;
  /**
   * The MTU.
   *
   * @default 1500
   */
  readonly mtu?: number;
}

/** What {@link Links.add} creates, by `kind`. */
export type LinkSpec = VethSpec | VxlanSpec | BridgeSpec | MacvlanSpec | MacvtapSpec | IfbSpec;

/** Changes for {@link Links.set}; each is left alone when omitted. */
export interface LinkChanges {
  /**
   * Bring the link up or down.
   *
   * @default unchanged
   */
  readonly up?: boolean;
  /**
   * The MTU.
   *
   * @default unchanged
   */
  readonly mtu?: number;
  /**
   * The MAC address.
   *
   * @default unchanged
   */
  readonly mac?: string;
  /**
   * A new name (after the move, when `netns` is given too).
   *
   * @default unchanged
   */
  readonly name?: string;
  /**
   * Enslave to this bridge, or release from its master with `null`. Cannot be combined with `netns`.
   *
   * @default unchanged
   */
  readonly master?: LinkRef | null;
  /**
   * Move the link into this namespace (it leaves the handle's namespace and goes down).
   *
   * @default unchanged
   */
  readonly netns?: Netns;
}

/** Interface indexes and descriptors {@link encodeLinkAdd} needs, already looked up. */
export interface LinkAddResolved {
  /** Index of a macvlan's `parent` or a vxlan's `dev`; needed when given by name. */
  readonly parent?: number | undefined;
  /** Descriptor of the veth peer's namespace; taken from `peer.netns` when omitted. */
  readonly peerNetnsFd?: number | undefined;
}

/** Interface indexes and descriptors {@link encodeLinkSet} needs, already looked up. */
export interface LinkSetResolved {
  /** Index of the new master (0 releases); needed when `master` is a name. */
  readonly master?: number | undefined;
  /** Descriptor of the target namespace; taken from `changes.netns` when omitted. */
  readonly netnsFd?: number | undefined;
}

// --- validation (pure, before any system call) --------------------------------

const encoder = new TextEncoder();

function describe(v: unknown): string {
  return typeof v === "string"
    ? JSON.stringify(v)
    : typeof v === "number" || typeof v === "boolean"
      ? String(v)
      : typeof v;
}

function checkObject(field: string, v: unknown): void {
  if (typeof v !== "object" || v === null)
    throw new TypeError(`${field} must be an object, got ${v === null ? "null" : typeof v}`);
}

function checkName(field: string, v: unknown): void {
  checkLinkName(v, field, "new");
}

function checkInt(field: string, v: unknown, min: number, max: number): void {
  if (typeof v !== "number") throw new TypeError(`${field} must be a number, got ${describe(v)}`);
  if (!Number.isInteger(v)) throw new TypeError(`${field} must be an integer, got ${v}`);
  if (v < min || v > max) throw new RangeError(`${field} must be between ${min} and ${max}, got ${v}`);
}

function checkBool(field: string, v: unknown): void {
  if (typeof v !== "boolean") throw new TypeError(`${field} must be a boolean, got ${describe(v)}`);
}

function toMac(field: string, v: unknown): Uint8Array {
  if (typeof v !== "string") throw new TypeError(`${field} must be a string, got ${describe(v)}`);
  try {
    return parseMac(v);
  } catch {
    throw new SyntaxError(`Invalid ${field} ${JSON.stringify(v)}: expected six hex bytes like "02:00:00:aa:bb:cc"`);
  }
}

function toIp(field: string, v: unknown): Uint8Array {
  if (typeof v !== "string") throw new TypeError(`${field} must be a string, got ${describe(v)}`);
  try {
    return parseIp(v).bytes;
  } catch {
    throw new SyntaxError(`Invalid ${field} ${JSON.stringify(v)}: expected an IPv4 or IPv6 address`);
  }
}

function checkRef(field: string, v: unknown): void {
  checkLinkRef(v, field);
}

function checkNetns(field: string, v: unknown): void {
  if (!(v instanceof Netns)) throw new TypeError(`${field} must be a Netns, got ${describe(v)}`);
}

function validateSpec(spec: LinkSpec): void {
  checkObject("spec", spec);
  checkName("spec.name", spec.name);
  if (spec.mtu !== undefined) checkInt("spec.mtu", spec.mtu, 0, MTU_MAX);
  switch (spec.kind) {
    case "veth":
      if (spec.mac !== undefined) toMac("spec.mac", spec.mac);
      checkObject("spec.peer", spec.peer);
      checkName("spec.peer.name", spec.peer.name);
      if (spec.peer.mac !== undefined) toMac("spec.peer.mac", spec.peer.mac);
      if (spec.peer.netns !== undefined) checkNetns("spec.peer.netns", spec.peer.netns);
      break;
    case "vxlan":
      if (spec.external !== undefined) checkBool("spec.external", spec.external);
      if (spec.external === true) {
        if (spec.vni !== undefined)
          throw new TypeError(
            "spec.vni cannot be combined with spec.external: an external vxlan takes the VNI per packet",
          );
      } else if (spec.vni === undefined) {
        throw new TypeError("spec.vni is required unless spec.external is true");
      } else {
        checkInt("spec.vni", spec.vni, 0, VXLAN_N_VID - 1);
      }
      if (spec.port !== undefined) checkInt("spec.port", spec.port, 1, 0xffff);
      if (spec.local !== undefined) toIp("spec.local", spec.local);
      if (spec.dev !== undefined) checkRef("spec.dev", spec.dev);
      if (spec.learning !== undefined) checkBool("spec.learning", spec.learning);
      if (spec.ttl !== undefined) checkInt("spec.ttl", spec.ttl, 0, 255);
      break;
    case "bridge":
    case "ifb":
      break;
    case "macvlan":
    case "macvtap":
      checkRef("spec.parent", spec.parent);
      if (spec.mode !== undefined && ((spec.mode as string) === "source" || !Object.hasOwn(MACVLAN_MODES, spec.mode))) {
        throw new TypeError(
          `spec.mode ${describe(spec.mode)} is not a macvlan mode: use "bridge", "private", "vepa" or "passthru"`,
        );
      }
      if (spec.mac !== undefined) toMac("spec.mac", spec.mac);
      break;
    default:
      throw new TypeError(
        `spec.kind ${describe((spec as { kind: unknown }).kind)} is not a link kind dp creates: use "veth", "vxlan", "bridge", "macvlan", "macvtap" or "ifb"`,
      );
  }
}

function validateChanges(changes: LinkChanges): void {
  checkObject("changes", changes);
  if (changes.up !== undefined) checkBool("changes.up", changes.up);
  if (changes.mtu !== undefined) checkInt("changes.mtu", changes.mtu, 0, MTU_MAX);
  if (changes.mac !== undefined) toMac("changes.mac", changes.mac);
  if (changes.name !== undefined) checkName("changes.name", changes.name);
  if (changes.master !== undefined && changes.master !== null) checkRef("changes.master", changes.master);
  if (changes.netns !== undefined) {
    checkNetns("changes.netns", changes.netns);
    if (changes.master !== undefined) {
      throw new TypeError(
        "changes.master cannot be combined with changes.netns: set the master inside the target namespace",
      );
    }
  }
}

function refText(ref: LinkRef): string {
  return typeof ref === "string" ? JSON.stringify(ref) : `with index ${ref}`;
}

// --- encoders ------------------------------------------------------------------

/** Writes `struct ifinfomsg`: family, pad, type, index, flags, change. */
function ifinfomsg(w: NetlinkWriter, index: number, flags: number, change: number): void {
  w.u8(0).u8(0).u16(0).s32(index).u32(flags).u32(change);
}

function resolvedIndex(field: string, ref: LinkRef, resolved: number | undefined): number {
  if (resolved !== undefined) return resolved;
  if (typeof ref === "number") return ref;
  throw new TypeError(`${field} ${JSON.stringify(ref)} is a name: pass its index in resolved`);
}

/**
 * Writes the `RTM_NEWLINK` request (`NLM_F_CREATE | NLM_F_EXCL | NLM_F_ACK`)
 * that creates a link, byte for byte as iproute2's `ip link add` does:
 * `IFLA_ADDRESS`, `IFLA_MTU`, `IFLA_LINK`, `IFLA_IFNAME`, then
 * `IFLA_LINKINFO` with the kind's data. A veth's `mtu` is given to both
 * ends; its peer is described by its own `ifinfomsg` and attributes inside
 * `VETH_INFO_PEER`, with `IFLA_NET_NS_FD` when it goes into another
 * namespace, so the kernel creates both ends or neither.
 *
 * @param w The writer; one message is appended.
 * @param seq The sequence number.
 * @param spec The link.
 * @param resolved Indexes of links given by name, and the peer namespace descriptor.
 * @throws {TypeError} When the spec has the wrong shape, or a link given by name was not resolved.
 * @throws {RangeError} When a name is not a valid new interface name (1-15 bytes; no NUL, whitespace, "/", ":" or "%"), a link index is not from 1 to 2³¹−1, or the MTU, VNI, port or TTL is out of range.
 * @throws {SyntaxError} When a MAC or IP address cannot be parsed.
 * @example Sending a request by hand
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openNetlink } from "@dp/core";
 * import { encodeLinkAdd, openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using nl = openNetlink("route", { netns: ns.ns });
 * const w = nl.writer();
 * encodeLinkAdd(w, nl.nextSeq(), { kind: "bridge", name: "br0", mtu: 9000 });
 * nl.request(w, 'add bridge "br0"', "RTM_NEWLINK");
 * using rt = openRouting({ netns: ns.ns });
 * assert.equal(rt.links.get("br0")?.mtu, 9000);
 * ```
 */
export function encodeLinkAdd(w: NetlinkWriter, seq: number, spec: LinkSpec, resolved: LinkAddResolved = {}): void {
  validateSpec(spec);
  let parent: number | undefined;
  if (spec.kind === "macvlan" || spec.kind === "macvtap")
    parent = resolvedIndex("spec.parent", spec.parent, resolved.parent);
  else if (spec.kind === "vxlan" && spec.dev !== undefined)
    parent = resolvedIndex("spec.dev", spec.dev, resolved.parent);
  let peerNetnsFd: number | undefined;
  if (spec.kind === "veth" && spec.peer.netns !== undefined)
    peerNetnsFd = resolved.peerNetnsFd ?? rawFd(spec.peer.netns.fd);

  w.begin(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK | NLM_F.EXCL | NLM_F.CREATE, seq);
  ifinfomsg(w, 0, 0, 0);
  if ((spec.kind === "veth" || spec.kind === "macvlan" || spec.kind === "macvtap") && spec.mac !== undefined)
    w.attr(IFLA.ADDRESS, parseMac(spec.mac));
  if (spec.mtu !== undefined) w.attrU32(IFLA.MTU, spec.mtu);
  if ((spec.kind === "macvlan" || spec.kind === "macvtap") && parent !== undefined) w.attrU32(IFLA.LINK, parent);
  w.attrString(IFLA.IFNAME, spec.name);
  w.nest(IFLA.LINKINFO, () => {
    // iproute2 sends the kind without its NUL (the kernel takes either).
    w.attr(IFLA_INFO.KIND, encoder.encode(spec.kind));
    switch (spec.kind) {
      case "veth":
        w.nest(IFLA_INFO.DATA, () => {
          w.nest(VETH_INFO.PEER, () => {
            ifinfomsg(w, 0, 0, 0);
            if (spec.peer.mac !== undefined) w.attr(IFLA.ADDRESS, parseMac(spec.peer.mac));
            if (spec.mtu !== undefined) w.attrU32(IFLA.MTU, spec.mtu);
            if (peerNetnsFd !== undefined) w.attrU32(IFLA.NET_NS_FD, peerNetnsFd);
            w.attrString(IFLA.IFNAME, spec.peer.name);
          });
        });
        break;
      case "vxlan":
        w.nest(IFLA_INFO.DATA, () => {
          if (parent !== undefined) w.attrU32(IFLA_VXLAN.LINK, parent);
          if (spec.ttl !== undefined) w.attrU8(IFLA_VXLAN.TTL, spec.ttl);
          if (spec.external === true) w.attrU8(IFLA_VXLAN.COLLECT_METADATA, 1);
          else w.attrU32(IFLA_VXLAN.ID, spec.vni ?? 0);
          if (spec.local !== undefined) {
            const local = parseIp(spec.local);
            w.attr(local.family === 4 ? IFLA_VXLAN.LOCAL : IFLA_VXLAN.LOCAL6, local.bytes);
          }
          w.attrU8(IFLA_VXLAN.LEARNING, spec.learning === true ? 1 : 0);
          w.attrBe16(IFLA_VXLAN.PORT, spec.port ?? VXLAN_PORT);
        });
        break;
      case "macvlan":
      case "macvtap":
        w.nest(IFLA_INFO.DATA, () => {
          w.attrU32(IFLA_MACVLAN.MODE, MACVLAN_MODES[spec.mode ?? "bridge"]);
        });
        break;
      case "bridge":
      case "ifb":
        break;
    }
  });
  w.end();
}

/**
 * Writes the `RTM_NEWLINK` request (`NLM_F_ACK`, no create) that changes a
 * link, as iproute2's `ip link set` does: up/down in `ifi_flags` and
 * `ifi_change`, then `IFLA_ADDRESS`, `IFLA_MTU`, `IFLA_MASTER` (0 releases),
 * `IFLA_NET_NS_FD` and `IFLA_IFNAME` (the new name).
 *
 * @param w The writer; one message is appended.
 * @param seq The sequence number.
 * @param index The link's interface index.
 * @param changes What to change.
 * @param resolved The master's index when given by name, and the namespace descriptor.
 * @throws {TypeError} When the changes have the wrong shape, or a master given by name was not resolved.
 * @throws {RangeError} When the index is not from 1 to 2³¹−1, a new name is not valid (1-15 bytes; no NUL, whitespace, "/", ":" or "%") or the MTU is out of range.
 * @throws {SyntaxError} When the MAC address cannot be parsed.
 * @example Bringing a link up by index
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openNetlink } from "@dp/core";
 * import { encodeLinkSet, openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * const br = rt.links.add({ kind: "bridge", name: "br0" });
 * using nl = openNetlink("route", { netns: ns.ns });
 * const w = nl.writer();
 * encodeLinkSet(w, nl.nextSeq(), br.index, { up: true });
 * nl.request(w, 'set link "br0"', "RTM_NEWLINK");
 * assert.equal(rt.links.get("br0")?.up, true);
 * ```
 */
export function encodeLinkSet(
  w: NetlinkWriter,
  seq: number,
  index: number,
  changes: LinkChanges,
  resolved: LinkSetResolved = {},
): void {
  checkLinkIndex(index, "index");
  validateChanges(changes);
  let master: number | undefined;
  if (changes.master === null) master = 0;
  else if (changes.master !== undefined) master = resolvedIndex("changes.master", changes.master, resolved.master);
  const netnsFd = changes.netns === undefined ? undefined : (resolved.netnsFd ?? rawFd(changes.netns.fd));

  w.begin(RTM.NEWLINK, NLM_F.REQUEST | NLM_F.ACK, seq);
  ifinfomsg(w, index, changes.up === true ? IFF.UP : 0, changes.up === undefined ? 0 : IFF.UP);
  if (changes.mac !== undefined) w.attr(IFLA.ADDRESS, parseMac(changes.mac));
  if (changes.mtu !== undefined) w.attrU32(IFLA.MTU, changes.mtu);
  if (master !== undefined) w.attrU32(IFLA.MASTER, master);
  if (netnsFd !== undefined) w.attrU32(IFLA.NET_NS_FD, netnsFd);
  if (changes.name !== undefined) w.attrString(IFLA.IFNAME, changes.name);
  w.end();
}

/**
 * Writes the `RTM_DELLINK` request (`NLM_F_ACK`) that deletes a link by
 * index, as iproute2's `ip link del` does.
 *
 * @param w The writer; one message is appended.
 * @param seq The sequence number.
 * @param index The link's interface index.
 * @throws {RangeError} When the index is not from 1 to 2³¹−1.
 * @example Deleting a bridge by index
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openNetlink } from "@dp/core";
 * import { encodeLinkDelete, openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * const br = rt.links.add({ kind: "bridge", name: "br0" });
 * using nl = openNetlink("route", { netns: ns.ns });
 * const w = nl.writer();
 * encodeLinkDelete(w, nl.nextSeq(), br.index);
 * nl.request(w, 'delete link "br0"', "RTM_DELLINK");
 * assert.equal(rt.links.get("br0"), undefined);
 * ```
 */
export function encodeLinkDelete(w: NetlinkWriter, seq: number, index: number): void {
  checkLinkIndex(index, "index");
  w.begin(RTM.DELLINK, NLM_F.REQUEST | NLM_F.ACK, seq);
  ifinfomsg(w, index, 0, 0);
  w.end();
}

// --- decoder -----------------------------------------------------------------

function decodeStats(data: Uint8Array): LinkStats | undefined {
  if (data.length < RTNL_LINK_STATS64.tx_dropped + 8) return undefined;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u64 = (off: number): bigint => dv.getBigUint64(off, true);
  return {
    rxPackets: u64(RTNL_LINK_STATS64.rx_packets),
    txPackets: u64(RTNL_LINK_STATS64.tx_packets),
    rxBytes: u64(RTNL_LINK_STATS64.rx_bytes),
    txBytes: u64(RTNL_LINK_STATS64.tx_bytes),
    rxErrors: u64(RTNL_LINK_STATS64.rx_errors),
    txErrors: u64(RTNL_LINK_STATS64.tx_errors),
    rxDropped: u64(RTNL_LINK_STATS64.rx_dropped),
    txDropped: u64(RTNL_LINK_STATS64.tx_dropped),
  };
}

function decodeVxlan(data: Uint8Array): VxlanInfo {
  const a = netlinkAttributeMap(data);
  const u8 = (t: number): number | undefined => {
    const v = a.get(t);
    return v === undefined || v.length < 1 ? undefined : attrU8(v);
  };
  const u32 = (t: number): number | undefined => {
    const v = a.get(t);
    return v === undefined || v.length < 4 ? undefined : attrU32(v);
  };
  const port = a.get(IFLA_VXLAN.PORT);
  const local4 = a.get(IFLA_VXLAN.LOCAL);
  const local6 = a.get(IFLA_VXLAN.LOCAL6);
  let local: string | undefined;
  if (local4 !== undefined && local4.length === 4) local = formatAddress(local4);
  else if (local6 !== undefined && local6.length === 16) local = formatAddress(local6);
  const dev = u32(IFLA_VXLAN.LINK);
  return {
    vni: u32(IFLA_VXLAN.ID) ?? 0,
    port: port !== undefined && port.length >= 2 ? attrBe16(port) : 0,
    local,
    learning: (u8(IFLA_VXLAN.LEARNING) ?? 0) !== 0,
    external: (u8(IFLA_VXLAN.COLLECT_METADATA) ?? 0) !== 0,
    dev: dev === 0 ? undefined : dev,
    ttl: u8(IFLA_VXLAN.TTL) ?? 0,
  };
}

function decodeMacvlan(data: Uint8Array): MacvlanInfo {
  const mode = netlinkAttributeMap(data).get(IFLA_MACVLAN.MODE);
  const value = mode === undefined || mode.length < 4 ? undefined : attrU32(mode);
  const name = (Object.keys(MACVLAN_MODES) as MacvlanMode[]).find((k) => MACVLAN_MODES[k] === value);
  return { mode: name };
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** A u8, u16 or u32 attribute by its length; undefined when absent. */
function attrNumber(a: ReadonlyMap<number, Uint8Array>, type: number): number | undefined {
  const v = a.get(type);
  if (v === undefined || v.length === 0) return undefined;
  const dv = new DataView(v.buffer, v.byteOffset, v.byteLength);
  return v.length >= 4 ? dv.getUint32(0, true) : v.length >= 2 ? dv.getUint16(0, true) : dv.getUint8(0);
}

function attrAddress(a: ReadonlyMap<number, Uint8Array>, ...types: number[]): string | undefined {
  for (const t of types) {
    const v = a.get(t);
    if (v !== undefined && (v.length === 4 || v.length === 16) && v.some((b) => b !== 0)) return formatAddress(v);
  }
  return undefined;
}

function decodeTun(data: Uint8Array): TunInfo {
  const a = netlinkAttributeMap(data);
  const flag = (t: number): boolean => (attrNumber(a, t) ?? 0) !== 0;
  const tun: Mutable<TunInfo> = {
    type: attrNumber(a, IFLA_TUN.TYPE) === IFF_TAP ? "tap" : "tun",
    pi: flag(IFLA_TUN.PI),
    vnetHdr: flag(IFLA_TUN.VNET_HDR),
    persist: flag(IFLA_TUN.PERSIST),
    multiQueue: flag(IFLA_TUN.MULTI_QUEUE),
  };
  const numQueues = attrNumber(a, IFLA_TUN.NUM_QUEUES);
  const numDisabledQueues = attrNumber(a, IFLA_TUN.NUM_DISABLED_QUEUES);
  const owner = attrNumber(a, IFLA_TUN.OWNER);
  const group = attrNumber(a, IFLA_TUN.GROUP);
  if (numQueues !== undefined) tun.numQueues = numQueues;
  if (numDisabledQueues !== undefined) tun.numDisabledQueues = numDisabledQueues;
  if (owner !== undefined) tun.owner = owner;
  if (group !== undefined) tun.group = group;
  return tun;
}

function decodeVlan(data: Uint8Array): VlanInfo {
  const a = netlinkAttributeMap(data);
  const proto = a.get(IFLA_VLAN.PROTOCOL);
  const p = proto === undefined || proto.length < 2 ? ETH_P_8021Q : attrBe16(proto);
  return {
    id: attrNumber(a, IFLA_VLAN.ID) ?? 0,
    protocol: p === ETH_P_8021Q ? "802.1Q" : p === ETH_P_8021AD ? "802.1ad" : p,
  };
}

function decodeIpvlan(data: Uint8Array): IpvlanInfo {
  const a = netlinkAttributeMap(data);
  const mode = attrNumber(a, IFLA_IPVLAN.MODE);
  const flags = attrNumber(a, IFLA_IPVLAN.FLAGS);
  return {
    mode: mode === undefined ? undefined : (["l2", "l3", "l3s"] as const)[mode],
    // IPVLAN_F_PRIVATE 1, IPVLAN_F_VEPA 2; neither is bridge.
    flags:
      flags === undefined
        ? undefined
        : flags === 0
          ? "bridge"
          : (flags & 1) !== 0
            ? "private"
            : (flags & 2) !== 0
              ? "vepa"
              : undefined,
  };
}

function decodeGeneve(data: Uint8Array): GeneveInfo {
  const a = netlinkAttributeMap(data);
  const port = a.get(IFLA_GENEVE.PORT);
  return {
    vni: attrNumber(a, IFLA_GENEVE.ID) ?? 0,
    remote: attrAddress(a, IFLA_GENEVE.REMOTE, IFLA_GENEVE.REMOTE6),
    port: port === undefined || port.length < 2 ? 0 : attrBe16(port),
    ttl: attrNumber(a, IFLA_GENEVE.TTL) ?? 0,
    external: a.has(IFLA_GENEVE.COLLECT_METADATA),
  };
}

function decodeTunnel(data: Uint8Array, k: typeof IFLA_IPTUN | typeof IFLA_GRE): IpTunnelInfo {
  const a = netlinkAttributeMap(data);
  const dev = attrNumber(a, k.LINK);
  const tunnel: Mutable<IpTunnelInfo> = {
    local: attrAddress(a, k.LOCAL),
    remote: attrAddress(a, k.REMOTE),
    ttl: attrNumber(a, k.TTL) ?? 0,
    dev: dev === 0 ? undefined : dev,
    external: a.has(k.COLLECT_METADATA),
  };
  if ("IKEY" in k) {
    const be32 = (t: number): number | undefined => {
      const v = a.get(t);
      return v === undefined || v.length < 4
        ? undefined
        : new DataView(v.buffer, v.byteOffset, v.byteLength).getUint32(0, false);
    };
    const ikey = be32(k.IKEY);
    const okey = be32(k.OKEY);
    if (ikey !== undefined && ikey !== 0) tunnel.ikey = ikey;
    if (okey !== undefined && okey !== 0) tunnel.okey = okey;
  }
  return tunnel;
}

function decodeNetkit(data: Uint8Array): NetkitInfo {
  const a = netlinkAttributeMap(data);
  const mode = attrNumber(a, IFLA_NETKIT.MODE);
  const policy = attrNumber(a, IFLA_NETKIT.POLICY);
  return {
    mode: mode === undefined ? undefined : mode === 0 ? "l2" : mode === 1 ? "l3" : undefined,
    primary: (attrNumber(a, IFLA_NETKIT.PRIMARY) ?? 0) !== 0,
    // NETKIT_PASS 0, NETKIT_DROP 2 (the TC_ACT_* values).
    policy: policy === undefined ? undefined : policy === 0 ? "pass" : policy === 2 ? "drop" : policy,
  };
}

/**
 * Decodes an `RTM_NEWLINK` (or `RTM_DELLINK`) message payload: the
 * `ifinfomsg` header and its attributes. Attributes dp does not know are
 * skipped.
 *
 * @param payload The message payload after the netlink header.
 * @returns The link.
 * @throws {SyntaxError} When the payload is shorter than `struct ifinfomsg` or an attribute overruns it.
 * @example Decoding a dump done by hand
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { NLM_F, openNetlink } from "@dp/core";
 * import { decodeLink } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using nl = openNetlink("route", { netns: ns.ns });
 * const w = nl.writer();
 * w.begin(18, NLM_F.REQUEST | NLM_F.DUMP).zeros(16); // RTM_GETLINK, struct ifinfomsg
 * w.end();
 * const links = nl.dump(w, "list links", "RTM_GETLINK").map((m) => decodeLink(m.payload));
 * const lo = links.find((l) => l.name === "lo");
 * assert.equal(lo?.kind, "loopback");
 * assert.equal(lo?.up, true);
 * ```
 */
export function decodeLink(payload: Uint8Array): Link {
  if (payload.length < IFINFOMSG_LEN) {
    throw new SyntaxError(
      `Invalid link message: ${payload.length} bytes, shorter than struct ifinfomsg (${IFINFOMSG_LEN})`,
    );
  }
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const index = dv.getInt32(4, true);
  const flags = dv.getUint32(8, true);
  const a = netlinkAttributeMap(payload.subarray(IFINFOMSG_LEN));
  const u32 = (t: number): number | undefined => {
    const v = a.get(t);
    return v === undefined || v.length < 4 ? undefined : attrU32(v);
  };
  const name = a.get(IFLA.IFNAME);
  const address = a.get(IFLA.ADDRESS);
  const oper = a.get(IFLA.OPERSTATE);
  const stats = a.get(IFLA.STATS64);
  const netnsId = a.get(IFLA.LINK_NETNSID);
  const master = u32(IFLA.MASTER);

  let rawKind: string | undefined;
  let vxlan: VxlanInfo | undefined;
  let macvlan: MacvlanInfo | undefined;
  const extra: Mutable<Pick<Link, "altnames" | "tun" | "vlan" | "vrf" | "ipvlan" | "geneve" | "tunnel" | "netkit">> =
    {};
  const linkinfo = a.get(IFLA.LINKINFO);
  if (linkinfo !== undefined) {
    const info = netlinkAttributeMap(linkinfo);
    const kind = info.get(IFLA_INFO.KIND);
    if (kind !== undefined) rawKind = attrString(kind);
    const data = info.get(IFLA_INFO.DATA) ?? new Uint8Array(0);
    if (rawKind === "vxlan") vxlan = decodeVxlan(data);
    else if (rawKind === "macvlan" || rawKind === "macvtap") macvlan = decodeMacvlan(data);
    else if (rawKind === "tun") extra.tun = decodeTun(data);
    else if (rawKind === "vlan") extra.vlan = decodeVlan(data);
    else if (rawKind === "vrf") extra.vrf = { table: attrNumber(netlinkAttributeMap(data), IFLA_VRF_TABLE) ?? 0 };
    else if (rawKind === "ipvlan") extra.ipvlan = decodeIpvlan(data);
    else if (rawKind === "geneve") extra.geneve = decodeGeneve(data);
    else if (rawKind === "ipip") extra.tunnel = decodeTunnel(data, IFLA_IPTUN);
    else if (rawKind === "gre" || rawKind === "gretap") extra.tunnel = decodeTunnel(data, IFLA_GRE);
    else if (rawKind === "netkit") extra.netkit = decodeNetkit(data);
  }
  let kind: LinkKind | undefined;
  if (rawKind === "tun" && extra.tun?.type === "tap") kind = "tap";
  else if (rawKind !== undefined && KNOWN_KINDS.has(rawKind)) kind = rawKind as LinkKind;
  else if (rawKind === undefined && (flags & IFF.LOOPBACK) !== 0) kind = "loopback";
  const props = a.get(IFLA.PROP_LIST);
  if (props !== undefined) {
    const altnames = parseNetlinkAttributes(props)
      .filter((p) => (p.type & 0x3fff) === IFLA.ALT_IFNAME)
      .map((p) => attrString(p.data));
    if (altnames.length > 0) extra.altnames = altnames;
  }

  return {
    index,
    name: name === undefined ? "" : attrString(name),
    kind,
    rawKind,
    up: (flags & IFF.UP) !== 0,
    operState: (oper === undefined ? undefined : OPER_STATES[attrU8(oper)]) ?? "unknown",
    mtu: u32(IFLA.MTU) ?? 0,
    mac: address === undefined || address.length === 0 ? undefined : formatMac(address),
    master: master === 0 ? undefined : master,
    flags,
    linkIndex: u32(IFLA.LINK),
    linkNetnsId: netnsId === undefined || netnsId.length < 4 ? undefined : attrS32(netnsId),
    vxlan,
    macvlan,
    stats: stats === undefined ? undefined : decodeStats(stats),
    ...extra,
  };
}

// --- the class -----------------------------------------------------------------

function isNoDevice(err: unknown): boolean {
  return err instanceof NetlinkError && err.errno === ENODEV;
}

/**
 * The links of a {@link Routing} handle's namespace: list and look them up,
 * create veth pairs (with the peer directly in another namespace), vxlan
 * tunnels (also in external/collect_md mode), bridges and macvlans, change
 * their state, MTU, MAC, name, master and namespace, and delete them.
 *
 * Every call is one synchronous request on the handle's socket. A create is
 * one `RTM_NEWLINK` message that the kernel applies entirely or not at all;
 * a change ({@link Links.set}) is one message too, but the kernel applies
 * its parts one after the other and keeps those done before a failing one.
 *
 * @example A veth pair across two namespaces
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using a = netns();
 * using b = netns();
 * using rtA = openRouting({ netns: a.ns });
 * using rtB = openRouting({ netns: b.ns });
 * const va = rtA.links.add({ kind: "veth", name: "va", peer: { name: "vb", netns: b.ns } });
 * rtA.links.set("va", { up: true });
 * rtB.links.set("vb", { up: true });
 * assert.equal(rtB.links.get("vb")?.linkIndex, va.index);
 * assert.equal(rtA.links.get("vb"), undefined);
 * ```
 */
export class Links {
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
   * Lists every link of the namespace, with counters.
   *
   * @returns The links, in the kernel's order (by index).
   * @throws {NetlinkError} When the kernel refuses the dump.
   * @example A fresh namespace has only the loopback link
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.deepEqual(rt.links.list().map((l) => [l.index, l.name, l.kind]), [[1, "lo", "loopback"]]);
   * ```
   */
  list(): Link[] {
    const nl = this.#ctx.nl;
    const w = nl.writer();
    w.begin(RTM.GETLINK, NLM_F.REQUEST | NLM_F.DUMP);
    ifinfomsg(w, 0, 0, 0);
    w.end();
    return nl
      .dump(w, "list links", "RTM_GETLINK")
      .filter((m) => m.type === RTM.NEWLINK)
      .map((m) => decodeLink(m.payload));
  }

  /**
   * Looks a link up by name or index.
   *
   * @param ref The name or interface index.
   * @returns The link, or undefined when there is none.
   * @throws {RangeError} When the name or index is invalid (a name over 127 bytes or with a NUL, an index above 2³¹−1).
   * @throws {TypeError} When `ref` is neither a string nor a number.
   * @throws {NetlinkError} When the kernel refuses the request for another reason.
   * @example By name and by index
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.links.get("lo")?.index, 1);
   * assert.equal(rt.links.get(1)?.name, "lo");
   * assert.equal(rt.links.get("nope"), undefined);
   * ```
   */
  get(ref: LinkRef): Link | undefined {
    checkRef("ref", ref);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    w.begin(RTM.GETLINK, NLM_F.REQUEST, nl.nextSeq());
    ifinfomsg(w, typeof ref === "number" ? ref : 0, 0, 0);
    if (typeof ref === "string") writeLinkName(w, ref);
    w.end();
    let replies;
    try {
      replies = nl.request(w, `get link ${typeof ref === "string" ? JSON.stringify(ref) : ref}`, "RTM_GETLINK");
    } catch (err) {
      if (isNoDevice(err)) return undefined;
      throw err;
    }
    const reply = replies.find((m) => m.type === RTM.NEWLINK);
    return reply === undefined ? undefined : decodeLink(reply.payload);
  }

  /**
   * Tells whether a link exists.
   *
   * @param ref The name or interface index.
   * @returns Whether {@link Links.get} finds it.
   * @throws {RangeError} When the name or index is invalid.
   * @throws {TypeError} When `ref` is neither a string nor a number.
   * @throws {NetlinkError} When the kernel refuses the request for another reason.
   * @example The loopback link always exists
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.links.has("lo"), true);
   * assert.equal(rt.links.has("eth9"), false);
   * ```
   */
  has(ref: LinkRef): boolean {
    return this.get(ref) !== undefined;
  }

  /**
   * Creates a link with one `RTM_NEWLINK` request (`NLM_F_CREATE |
   * NLM_F_EXCL`): a veth pair (the peer optionally straight into another
   * namespace), a vxlan, a bridge or a macvlan. The link is created down.
   * The kernel creates all of it or nothing: a veth whose peer name is
   * taken leaves neither end behind.
   *
   * @param spec The link, by `kind`.
   * @returns The new link, read back from the kernel.
   * @throws {TypeError} When the spec has the wrong shape (unknown kind, vxlan without `vni` nor `external`).
   * @throws {RangeError} When a name is empty, over 15 bytes or has a NUL, whitespace, "/", ":" or "%" (the kernel would expand `%d`), or the MTU, VNI, port or TTL is out of range.
   * @throws {SyntaxError} When a MAC or the vxlan `local` address cannot be parsed.
   * @throws {NetlinkError} ENODEV naming the macvlan `parent` or vxlan `dev` when it does not exist;
   *   EEXIST when the name (or a vxlan's VNI and port) is taken; other refusals with the kernel's explanation.
   * @example A vxlan in external mode, for identity-in-VNI overlays
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * const vx = rt.links.add({ kind: "vxlan", name: "vx0", external: true });
   * assert.equal(vx.kind, "vxlan");
   * assert.equal(vx.vxlan?.external, true);
   * assert.equal(vx.vxlan?.port, 4789);
   * assert.equal(vx.vxlan?.learning, false);
   * ```
   */
  add(spec: LinkSpec): Link {
    validateSpec(spec);
    const what = `add ${spec.kind} ${JSON.stringify(spec.name)}`;
    let parent: number | undefined;
    if (spec.kind === "macvlan" || spec.kind === "macvtap") parent = this.#resolve(spec.parent, what, "parent link");
    else if (spec.kind === "vxlan" && spec.dev !== undefined) parent = this.#resolve(spec.dev, what, "device");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    encodeLinkAdd(w, nl.nextSeq(), spec, { parent });
    nl.request(w, what, "RTM_NEWLINK");
    const link = this.get(spec.name);
    if (link === undefined) {
      throw new NetlinkError(`Cannot ${what}: it was gone right after it was created`, {
        op: "RTM_GETLINK",
        errno: ENODEV,
      });
    }
    return link;
  }

  /**
   * Changes a link with one `RTM_NEWLINK` request, as `ip link set` does:
   * up or down, MTU, MAC, name, master (a bridge; `null` releases) and
   * namespace. The kernel moves the link first, then renames it, so a link
   * can be moved and renamed at once.
   *
   * Not atomic: the kernel applies the parts in the order namespace, MAC,
   * MTU, name, up/down, master, and a failing part leaves the ones before
   * it applied (a new MAC stays when the MTU in the same request is
   * refused), exactly as with `ip link set`. dp checks everything it can
   * before sending (shapes, ranges, names, that the link and the master
   * exist), but does not split the request and roll back: a rollback is
   * more requests that can fail in turn, other processes would see the
   * intermediate states anyway, and a namespace move cannot be undone from
   * this handle. After an error, read the link back ({@link Links.get}) to
   * see what was applied, or send one change per call to know which part
   * failed.
   *
   * @param ref The link's name or index.
   * @param changes What to change.
   * @throws {TypeError} When the changes have the wrong shape, or `master` is combined with `netns`.
   * @throws {RangeError} When a name or index is invalid (see {@link Links.add}) or the MTU is out of range.
   * @throws {SyntaxError} When the MAC address cannot be parsed.
   * @throws {NetlinkError} ENODEV when the link or the master does not exist (the message names it);
   *   other refusals with the kernel's explanation (such as an MTU under the device's minimum).
   * @example Enslave a veth to a bridge, then release it
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * const br = rt.links.add({ kind: "bridge", name: "br0" });
   * rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
   * rt.links.set("va", { master: "br0", up: true, mtu: 1400 });
   * assert.equal(rt.links.get("va")?.master, br.index);
   * rt.links.set("va", { master: null });
   * assert.equal(rt.links.get("va")?.master, undefined);
   * ```
   */
  set(ref: LinkRef, changes: LinkChanges): void {
    checkRef("ref", ref);
    validateChanges(changes);
    const what = `set link ${typeof ref === "string" ? JSON.stringify(ref) : ref}`;
    const link = this.get(ref);
    if (link === undefined) throw new NetlinkError(`Cannot ${what}`, { op: "RTM_NEWLINK", errno: ENODEV });
    let master: number | undefined;
    if (changes.master === null) master = 0;
    else if (changes.master !== undefined) master = this.#resolve(changes.master, what, "master link");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    encodeLinkSet(w, nl.nextSeq(), link.index, changes, { master });
    nl.request(w, what, "RTM_NEWLINK");
  }

  /**
   * Deletes a link. Deleting either end of a veth pair deletes both.
   *
   * @param ref The link's name or index.
   * @returns Whether it existed.
   * @throws {RangeError} When the name or index is invalid.
   * @throws {TypeError} When `ref` is neither a string nor a number.
   * @throws {NetlinkError} When the kernel refuses (such as ENOTSUP, alias EOPNOTSUPP, for `lo`).
   * @example Deleting twice
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.links.add({ kind: "veth", name: "va", peer: { name: "vb" } });
   * assert.equal(rt.links.delete("va"), true);
   * assert.equal(rt.links.has("vb"), false);
   * assert.equal(rt.links.delete("va"), false);
   * ```
   */
  delete(ref: LinkRef): boolean {
    checkRef("ref", ref);
    let index: number;
    if (typeof ref === "number") {
      index = ref;
    } else {
      const link = this.get(ref);
      if (link === undefined) return false;
      index = link.index;
    }
    const nl = this.#ctx.nl;
    const w = nl.writer();
    encodeLinkDelete(w, nl.nextSeq(), index);
    try {
      nl.request(w, `delete link ${typeof ref === "string" ? JSON.stringify(ref) : ref}`, "RTM_DELLINK");
    } catch (err) {
      if (isNoDevice(err)) return false;
      throw err;
    }
    return true;
  }

  /** Looks up a link another one refers to; ENODEV naming it when missing. */
  #resolve(ref: LinkRef, what: string, role: string): number {
    const link = this.get(ref);
    if (link === undefined) {
      throw new NetlinkError(`Cannot ${what}: no ${role} ${refText(ref)}`, { op: "RTM_GETLINK", errno: ENODEV });
    }
    return link.index;
  }
}
