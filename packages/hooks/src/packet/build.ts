// Packet builders: one function per protocol layer returning a validated,
// plain description of the header, and packet() that lays the layers out
// in one buffer and fills in what depends on the others (EtherType, IP
// protocol, lengths, checksums). Headers are written last to first so every
// checksum is computed over bytes that are already final.

import { formatIp, formatMac, parseIp, parseMac } from "@dp/core";
import { internetChecksum, pseudoHeaderSum } from "./checksum.ts";
import { TCP_FLAGS } from "./headers.ts";
import type {
  EthHeader,
  IcmpHeader,
  Ipv4Header,
  Ipv6Header,
  TcpFlag,
  TcpHeader,
  TcpHeaderOption,
  VlanTag,
  VxlanHeader,
} from "./headers.ts";

/** The UDP port VXLAN uses (IANA, RFC 7348). */
export const VXLAN_PORT = 4789;

/** A VLAN tag for {@link EthOptions.vlan}: only the id is required. */
export interface VlanOptions {
  /** The VLAN identifier, 0 to 4095. */
  readonly id: number;
  /**
   * The priority code point, 0 to 7.
   *
   * @default 0
   */
  readonly pcp?: number;
  /**
   * The drop eligible indicator.
   *
   * @default false
   */
  readonly dei?: boolean;
  /**
   * The tag protocol identifier: 0x8100 (802.1Q) or 0x88a8 (802.1ad).
   *
   * @default 0x8100
   */
  readonly tpid?: number;
}

/** Options for {@link eth}. */
export interface EthOptions {
  /**
   * The source MAC address.
   *
   * @default "02:00:00:00:00:01"
   */
  readonly src?: string;
  /**
   * The destination MAC address.
   *
   * @default "02:00:00:00:00:02"
   */
  readonly dst?: string;
  /**
   * The EtherType of what follows.
   *
   * @default 0x0800 before {@link ipv4}, 0x86dd before {@link ipv6}; required before raw payload
   */
  readonly type?: number;
  /**
   * A VLAN tag: its id, or the whole tag.
   *
   * @default none
   */
  readonly vlan?: number | VlanOptions;
}

/** Options for {@link ipv4}. */
export interface Ipv4Options {
  /**
   * The source address.
   *
   * @default "10.0.0.1"
   */
  readonly src?: string;
  /**
   * The destination address.
   *
   * @default "10.0.0.2"
   */
  readonly dst?: string;
  /**
   * The type-of-service byte (DSCP << 2 | ECN).
   *
   * @default 0
   */
  readonly tos?: number;
  /**
   * The identification field.
   *
   * @default 0
   */
  readonly id?: number;
  /**
   * The don't-fragment flag.
   *
   * @default false
   */
  readonly df?: boolean;
  /**
   * The more-fragments flag.
   *
   * @default false
   */
  readonly mf?: boolean;
  /**
   * The fragment offset in 8-byte units, as in the header (0 to 8191).
   *
   * @default 0
   */
  readonly fragmentOffset?: number;
  /**
   * The time to live.
   *
   * @default 64
   */
  readonly ttl?: number;
  /**
   * The protocol number of what follows.
   *
   * @default 6 before {@link tcp}, 17 before {@link udp}, 1 before {@link icmp}, 4 before ipv4, 41 before ipv6; required before raw payload
   */
  readonly protocol?: number;
  /**
   * IP options as raw bytes, zero-padded to a multiple of 4 (at most 40).
   *
   * @default none
   */
  readonly options?: Uint8Array;
  /**
   * A header checksum to write instead of the right one (to build a broken packet).
   *
   * @default computed
   */
  readonly forceChecksum?: number;
}

/** Options for {@link ipv6}. */
export interface Ipv6Options {
  /**
   * The source address.
   *
   * @default "fd00::1"
   */
  readonly src?: string;
  /**
   * The destination address.
   *
   * @default "fd00::2"
   */
  readonly dst?: string;
  /**
   * The traffic class byte.
   *
   * @default 0
   */
  readonly trafficClass?: number;
  /**
   * The 20-bit flow label.
   *
   * @default 0
   */
  readonly flowLabel?: number;
  /**
   * The hop limit.
   *
   * @default 64
   */
  readonly hopLimit?: number;
  /**
   * The next header number.
   *
   * @default 6 before {@link tcp}, 17 before {@link udp}, 58 before {@link icmpv6}, 4 before ipv4, 41 before ipv6; required before raw payload
   */
  readonly nextHeader?: number;
}

/** Options for {@link tcp}. */
export interface TcpOptions {
  /**
   * The source port.
   *
   * @default 49152
   */
  readonly sport?: number;
  /** The destination port. */
  readonly dport: number;
  /**
   * The sequence number.
   *
   * @default 0
   */
  readonly seq?: number;
  /**
   * The acknowledgment number.
   *
   * @default 0
   */
  readonly ack?: number;
  /**
   * The flags to set, in any order.
   *
   * @default []
   */
  readonly flags?: readonly TcpFlag[];
  /**
   * The receive window.
   *
   * @default 65535
   */
  readonly window?: number;
  /**
   * The urgent pointer.
   *
   * @default 0
   */
  readonly urgent?: number;
  /**
   * Header options, written in order and zero-padded to a multiple of 4 (at most 40 bytes).
   *
   * @default []
   */
  readonly options?: readonly TcpHeaderOption[];
  /**
   * A checksum to write instead of the right one.
   *
   * @default computed
   */
  readonly forceChecksum?: number;
}

/** Options for {@link udp}. */
export interface UdpOptions {
  /**
   * The source port.
   *
   * @default 49152
   */
  readonly sport?: number;
  /**
   * The destination port.
   *
   * @default 4789 before {@link vxlan}; required otherwise
   */
  readonly dport?: number;
  /**
   * A checksum to write instead of the right one (0 over IPv4: no checksum).
   *
   * @default computed (0xffff when the sum is 0)
   */
  readonly forceChecksum?: number;
}

/** Options for {@link icmp} and {@link icmpv6}. */
export interface IcmpOptions {
  /**
   * The message type, by name or number (ICMP: 8 echo request, 0 echo
   * reply; ICMPv6: 128 echo request, 129 echo reply).
   *
   * @default "echoRequest"
   */
  readonly type?: "echoRequest" | "echoReply" | number;
  /**
   * The message code.
   *
   * @default 0
   */
  readonly code?: number;
  /**
   * The echo identifier (bytes 4 and 5 of the header).
   *
   * @default 0
   */
  readonly id?: number;
  /**
   * The echo sequence number (bytes 6 and 7 of the header).
   *
   * @default 0
   */
  readonly seq?: number;
  /**
   * A checksum to write instead of the right one.
   *
   * @default computed
   */
  readonly forceChecksum?: number;
}

/** Options for {@link vxlan}. */
export interface VxlanOptions {
  /** The 24-bit VXLAN network identifier. */
  readonly vni: number;
  /**
   * The flags byte.
   *
   * @default 0x08 (the I flag: the VNI is valid)
   */
  readonly flags?: number;
}

/** An Ethernet header as {@link eth} describes it. */
export interface EthLayer extends Omit<EthHeader, "type"> {
  /** Which layer this is. */
  readonly layer: "eth";
  /** The EtherType, when given. */
  readonly type?: number;
}

/** An IPv4 header as {@link ipv4} describes it. */
export interface Ipv4Layer extends Omit<
  Ipv4Header,
  "protocol" | "headerLength" | "totalLength" | "checksum" | "checksumValid"
> {
  /** Which layer this is. */
  readonly layer: "ipv4";
  /** The protocol number, when given. */
  readonly protocol?: number;
  /** The checksum to write instead of the right one, when given. */
  readonly forceChecksum?: number;
}

/** An IPv6 header as {@link ipv6} describes it. */
export interface Ipv6Layer extends Omit<Ipv6Header, "nextHeader" | "payloadLength"> {
  /** Which layer this is. */
  readonly layer: "ipv6";
  /** The next header number, when given. */
  readonly nextHeader?: number;
}

/** A TCP header as {@link tcp} describes it. */
export interface TcpLayer extends Omit<TcpHeader, "headerLength" | "checksum" | "checksumValid"> {
  /** Which layer this is. */
  readonly layer: "tcp";
  /** The checksum to write instead of the right one, when given. */
  readonly forceChecksum?: number;
}

/** A UDP header as {@link udp} describes it. */
export interface UdpLayer {
  /** Which layer this is. */
  readonly layer: "udp";
  /** The source port. */
  readonly sport: number;
  /** The destination port, when given. */
  readonly dport?: number;
  /** The checksum to write instead of the right one, when given. */
  readonly forceChecksum?: number;
}

/** An ICMP or ICMPv6 header as {@link icmp} or {@link icmpv6} describes it. */
export interface IcmpLayer extends Omit<IcmpHeader, "checksum" | "checksumValid"> {
  /** Which layer this is. */
  readonly layer: "icmp" | "icmpv6";
  /** The checksum to write instead of the right one, when given. */
  readonly forceChecksum?: number;
}

/** A VXLAN header as {@link vxlan} describes it. */
export interface VxlanLayer extends VxlanHeader {
  /** Which layer this is. */
  readonly layer: "vxlan";
}

/**
 * One protocol header for {@link packet}.
 *
 * @useDeclaredType
 */
export type Layer = EthLayer | Ipv4Layer | Ipv6Layer | TcpLayer | UdpLayer | IcmpLayer | VxlanLayer;

/**
 * What {@link packet} takes: headers, then payload bytes (a string is
 * encoded as UTF-8).
 *
 * @useDeclaredType
 */
export type PacketPart = Layer | Uint8Array | string;

const ICMP_TYPES = { echoRequest: 8, echoReply: 0 } as const;
const ICMPV6_TYPES = { echoRequest: 128, echoReply: 129 } as const;
const NEXT_PROTOCOL: Readonly<Record<string, number>> = { tcp: 6, udp: 17, icmp: 1, icmpv6: 58, ipv4: 4, ipv6: 41 };
const ETH_TYPE: Readonly<Record<string, number>> = { ipv4: 0x0800, ipv6: 0x86dd };
/** Which layers may follow each layer; payload may follow any. */
const FOLLOWS: Readonly<Record<Layer["layer"], readonly Layer["layer"][]>> = {
  eth: ["ipv4", "ipv6"],
  ipv4: ["tcp", "udp", "icmp", "ipv4", "ipv6"],
  ipv6: ["tcp", "udp", "icmpv6", "ipv4", "ipv6"],
  tcp: [],
  udp: ["vxlan"],
  icmp: [],
  icmpv6: [],
  vxlan: ["eth"],
};
const FIRST: readonly Layer["layer"][] = ["eth", "ipv4", "ipv6"];
const UTF8 = new TextEncoder();

function integer(what: string, value: unknown, max: number): number {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(
      `Invalid ${what}: expected an integer, got ${typeof value === "number" ? value : typeof value}`,
    );
  }
  if (value < 0 || value > max) throw new RangeError(`Invalid ${what}: expected 0 to ${max}, got ${value}`);
  return value;
}

function optionalInteger(what: string, value: unknown, max: number, fallback: number): number {
  return value === undefined ? fallback : integer(what, value, max);
}

function boolean(what: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw new TypeError(`Invalid ${what}: expected a boolean, got ${typeof value}`);
  return value;
}

function object<T>(what: string, value: T | undefined): T | Record<string, never> {
  if (value === undefined) return {};
  if (typeof value !== "object" || value === null) throw new TypeError(`Invalid ${what} options: expected an object`);
  return value;
}

function mac(what: string, value: unknown, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string")
    throw new TypeError(`Invalid ${what}: expected a MAC address string, got ${typeof value}`);
  return formatMac(parseMac(value));
}

function ip(what: string, value: unknown, family: 4 | 6, fallback: string): string {
  if (value === undefined) return fallback;
  if (typeof value !== "string")
    throw new TypeError(`Invalid ${what}: expected an IPv${family} address string, got ${typeof value}`);
  const parsed = parseIp(value);
  if (parsed.family !== family)
    throw new SyntaxError(`Invalid ${what} ${JSON.stringify(value)}: expected an IPv${family} address`);
  return formatIp(parsed.bytes);
}

/** `{ forceChecksum }` when one is given, for spreading into a layer. */
function forced(what: string, value: unknown): { readonly forceChecksum?: number } {
  return value === undefined ? {} : { forceChecksum: integer(`${what} forceChecksum`, value, 0xffff) };
}

function vlanTag(value: number | VlanOptions): VlanTag {
  if (typeof value !== "number" && (typeof value !== "object" || value === null)) {
    throw new TypeError("Invalid eth vlan: expected a VLAN id or a tag object");
  }
  const tag: VlanOptions = typeof value === "number" ? { id: value } : value;
  const tpid = optionalInteger("eth vlan tpid", tag.tpid, 0xffff, 0x8100);
  if (tpid !== 0x8100 && tpid !== 0x88a8) {
    throw new RangeError(`Invalid eth vlan tpid: expected 0x8100 or 0x88a8, got 0x${tpid.toString(16)}`);
  }
  return {
    id: integer("eth vlan id", tag.id, 4095),
    pcp: optionalInteger("eth vlan pcp", tag.pcp, 7, 0),
    dei: boolean("eth vlan dei", tag.dei, false),
    tpid,
  };
}

/**
 * Describes an Ethernet header, optionally with one VLAN tag.
 *
 * @param options Addresses, EtherType and VLAN tag.
 * @returns The header, for {@link packet}.
 * @throws {SyntaxError} When an address is not a MAC address.
 * @throws {RangeError} When a number is out of range.
 * @example A tagged frame
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, packet } from "@dp/hooks";
 *
 * const frame = packet(eth({ dst: "ff:ff:ff:ff:ff:ff", type: 0x88b5, vlan: 10 }), new Uint8Array([1, 2]));
 * assert.deepEqual(frame.subarray(12), new Uint8Array([0x81, 0x00, 0x00, 0x0a, 0x88, 0xb5, 1, 2]));
 * ```
 */
export function eth(options?: EthOptions): EthLayer {
  const o = object("eth", options);
  let layer: EthLayer = {
    layer: "eth",
    src: mac("eth src", o.src, "02:00:00:00:00:01"),
    dst: mac("eth dst", o.dst, "02:00:00:00:00:02"),
  };
  if (o.type !== undefined) layer = { ...layer, type: integer("eth type", o.type, 0xffff) };
  if (o.vlan !== undefined) layer = { ...layer, vlan: vlanTag(o.vlan) };
  return layer;
}

/**
 * Describes an IPv4 header. The total length, the protocol (from the next
 * layer) and the header checksum are filled in by {@link packet}.
 *
 * @param options Addresses and header fields.
 * @returns The header, for {@link packet}.
 * @throws {SyntaxError} When an address is not an IPv4 address.
 * @throws {RangeError} When a number is out of range or the options are longer than 40 bytes.
 * @example A UDP datagram with DF set
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, ipv4, packet, parsePacket, udp } from "@dp/hooks";
 *
 * const bytes = packet(eth(), ipv4({ src: "192.0.2.1", dst: "192.0.2.2", df: true, ttl: 1 }), udp({ dport: 53 }));
 * const { ipv4: header } = parsePacket(bytes);
 * assert.equal(header?.protocol, 17);
 * assert.equal(header?.df, true);
 * assert.equal(header?.checksumValid, true);
 * ```
 */
export function ipv4(options?: Ipv4Options): Ipv4Layer {
  const o = object("ipv4", options);
  const ipOptions = o.options ?? new Uint8Array(0);
  if (!(ipOptions instanceof Uint8Array)) throw new TypeError("Invalid ipv4 options bytes: expected a Uint8Array");
  if (ipOptions.length > 40)
    throw new RangeError(`Invalid ipv4 options bytes: at most 40 bytes fit, got ${ipOptions.length}`);
  const padded = new Uint8Array((ipOptions.length + 3) & ~3);
  padded.set(ipOptions);
  let layer: Ipv4Layer = {
    layer: "ipv4",
    src: ip("ipv4 src", o.src, 4, "10.0.0.1"),
    dst: ip("ipv4 dst", o.dst, 4, "10.0.0.2"),
    tos: optionalInteger("ipv4 tos", o.tos, 0xff, 0),
    id: optionalInteger("ipv4 id", o.id, 0xffff, 0),
    df: boolean("ipv4 df", o.df, false),
    mf: boolean("ipv4 mf", o.mf, false),
    fragmentOffset: optionalInteger("ipv4 fragmentOffset", o.fragmentOffset, 0x1fff, 0),
    ttl: optionalInteger("ipv4 ttl", o.ttl, 0xff, 64),
    options: padded,
  };
  if (o.protocol !== undefined) layer = { ...layer, protocol: integer("ipv4 protocol", o.protocol, 0xff) };
  return { ...layer, ...forced("ipv4", o.forceChecksum) };
}

/**
 * Describes an IPv6 fixed header. The payload length and the next header
 * (from the next layer) are filled in by {@link packet}.
 *
 * @param options Addresses and header fields.
 * @returns The header, for {@link packet}.
 * @throws {SyntaxError} When an address is not an IPv6 address.
 * @throws {RangeError} When a number is out of range.
 * @example An ICMPv6 echo request
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, icmpv6, ipv6, packet, parsePacket } from "@dp/hooks";
 *
 * const parsed = parsePacket(packet(eth(), ipv6({ dst: "fd00::9", hopLimit: 255 }), icmpv6({ id: 1, seq: 2 })));
 * assert.equal(parsed.ipv6?.nextHeader, 58);
 * assert.equal(parsed.icmpv6?.type, 128);
 * assert.equal(parsed.icmpv6?.checksumValid, true);
 * ```
 */
export function ipv6(options?: Ipv6Options): Ipv6Layer {
  const o = object("ipv6", options);
  let layer: Ipv6Layer = {
    layer: "ipv6",
    src: ip("ipv6 src", o.src, 6, "fd00::1"),
    dst: ip("ipv6 dst", o.dst, 6, "fd00::2"),
    trafficClass: optionalInteger("ipv6 trafficClass", o.trafficClass, 0xff, 0),
    flowLabel: optionalInteger("ipv6 flowLabel", o.flowLabel, 0xfffff, 0),
    hopLimit: optionalInteger("ipv6 hopLimit", o.hopLimit, 0xff, 64),
  };
  if (o.nextHeader !== undefined) layer = { ...layer, nextHeader: integer("ipv6 nextHeader", o.nextHeader, 0xff) };
  return layer;
}

function tcpOption(option: TcpHeaderOption, index: number): TcpHeaderOption {
  const what = `tcp options[${index}]`;
  if (typeof option !== "object" || option === null) throw new TypeError(`Invalid ${what}: expected an object`);
  switch (option.kind) {
    case "nop":
    case "sackPermitted":
      return { kind: option.kind };
    case "mss":
      return { kind: "mss", value: integer(`${what} value`, option.value, 0xffff) };
    case "windowScale":
      return { kind: "windowScale", shift: integer(`${what} shift`, option.shift, 0xff) };
    case "timestamp":
      return {
        kind: "timestamp",
        value: integer(`${what} value`, option.value, 0xffffffff),
        echo: integer(`${what} echo`, option.echo, 0xffffffff),
      };
    default: {
      const kind = integer(`${what} kind`, option.kind, 0xff);
      const data = "data" in option ? option.data : undefined;
      if (!(data instanceof Uint8Array)) throw new TypeError(`Invalid ${what} data: expected a Uint8Array`);
      if (kind <= 1 && data.length > 0)
        throw new RangeError(`Invalid ${what}: kind ${kind} is a single byte and takes no data`);
      if (data.length > 38) throw new RangeError(`Invalid ${what} data: at most 38 bytes fit, got ${data.length}`);
      return { kind, data: data.slice() };
    }
  }
}

function tcpOptionsLength(options: readonly TcpHeaderOption[]): number {
  let n = 0;
  for (const o of options) {
    switch (o.kind) {
      case "nop":
        n += 1;
        break;
      case "mss":
        n += 4;
        break;
      case "windowScale":
        n += 3;
        break;
      case "sackPermitted":
        n += 2;
        break;
      case "timestamp":
        n += 10;
        break;
      default:
        n += "data" in o && o.kind > 1 ? 2 + o.data.length : 1;
    }
  }
  return n;
}

/**
 * Describes a TCP header. The data offset and the checksum (over the
 * pseudo-header of the IP layer before it) are filled in by {@link packet}.
 *
 * @param options Ports, sequence numbers, flags, window and options.
 * @returns The header, for {@link packet}.
 * @throws {TypeError} When a flag or option is unknown or malformed.
 * @throws {RangeError} When a number is out of range or the options are longer than 40 bytes.
 * @example A SYN with an MSS option
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, ipv4, packet, parsePacket, tcp } from "@dp/hooks";
 *
 * const syn = parsePacket(packet(eth(), ipv4(), tcp({ dport: 80, flags: ["syn"], options: [{ kind: "mss", value: 1460 }] })));
 * assert.deepEqual(syn.tcp?.flags, ["syn"]);
 * assert.deepEqual(syn.tcp?.options, [{ kind: "mss", value: 1460 }]);
 * assert.equal(syn.tcp?.headerLength, 24);
 * assert.equal(syn.tcp?.checksumValid, true);
 * ```
 */
export function tcp(options: TcpOptions): TcpLayer {
  const o = object("tcp", options);
  if (o.dport === undefined) throw new TypeError("Invalid tcp options: dport is required");
  const flags = o.flags ?? [];
  if (!Array.isArray(flags)) throw new TypeError("Invalid tcp flags: expected an array of flag names");
  for (const f of flags as readonly unknown[]) {
    if (!TCP_FLAGS.includes(f as TcpFlag))
      throw new TypeError(`Invalid tcp flag ${JSON.stringify(f)}: expected one of ${TCP_FLAGS.join(", ")}`);
  }
  const headerOptions = o.options ?? [];
  if (!Array.isArray(headerOptions)) throw new TypeError("Invalid tcp options list: expected an array");
  const checked = headerOptions.map(tcpOption);
  const length = tcpOptionsLength(checked);
  if (length > 40) throw new RangeError(`Invalid tcp options list: at most 40 bytes fit, got ${length}`);
  const layer: TcpLayer = {
    layer: "tcp",
    sport: optionalInteger("tcp sport", o.sport, 0xffff, 49152),
    dport: integer("tcp dport", o.dport, 0xffff),
    seq: optionalInteger("tcp seq", o.seq, 0xffffffff, 0),
    ack: optionalInteger("tcp ack", o.ack, 0xffffffff, 0),
    flags: TCP_FLAGS.filter((f) => flags.includes(f)),
    window: optionalInteger("tcp window", o.window, 0xffff, 65535),
    urgent: optionalInteger("tcp urgent", o.urgent, 0xffff, 0),
    options: checked,
    ...forced("tcp", o.forceChecksum),
  };
  return layer;
}

/**
 * Describes a UDP header. The length and the checksum are filled in by
 * {@link packet}; before {@link vxlan}, the destination port defaults to
 * {@link VXLAN_PORT}.
 *
 * @param options Ports and an optional forced checksum.
 * @returns The header, for {@link packet}.
 * @throws {RangeError} When a number is out of range.
 * @example A DNS-sized datagram
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, ipv4, packet, parsePacket, udp } from "@dp/hooks";
 *
 * const parsed = parsePacket(packet(eth(), ipv4(), udp({ sport: 5353, dport: 53 }), "hello"));
 * assert.equal(parsed.udp?.length, 13);
 * assert.equal(new TextDecoder().decode(parsed.payload), "hello");
 * ```
 */
export function udp(options?: UdpOptions): UdpLayer {
  const o = object("udp", options);
  return {
    layer: "udp",
    sport: optionalInteger("udp sport", o.sport, 0xffff, 49152),
    ...(o.dport === undefined ? {} : { dport: integer("udp dport", o.dport, 0xffff) }),
    ...forced("udp", o.forceChecksum),
  };
}

function icmpLayer(
  layer: "icmp" | "icmpv6",
  names: Readonly<Record<string, number>>,
  options: IcmpOptions | undefined,
): IcmpLayer {
  const o = object(layer, options);
  let type: number;
  if (o.type === undefined) type = names["echoRequest"] as number;
  else if (typeof o.type === "string") {
    const named = Object.hasOwn(names, o.type) ? names[o.type] : undefined;
    if (named === undefined)
      throw new TypeError(
        `Invalid ${layer} type ${JSON.stringify(o.type)}: expected "echoRequest", "echoReply" or a number`,
      );
    type = named;
  } else type = integer(`${layer} type`, o.type, 0xff);
  return {
    layer,
    type,
    code: optionalInteger(`${layer} code`, o.code, 0xff, 0),
    id: optionalInteger(`${layer} id`, o.id, 0xffff, 0),
    seq: optionalInteger(`${layer} seq`, o.seq, 0xffff, 0),
    ...forced(layer, o.forceChecksum),
  };
}

/**
 * Describes an ICMP header (over IPv4); the checksum is filled in by
 * {@link packet}.
 *
 * @param options Type, code, echo id and sequence number.
 * @returns The header, for {@link packet}.
 * @throws {TypeError} When the type name is unknown.
 * @throws {RangeError} When a number is out of range.
 * @example An echo request like the one ping sends
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, icmp, ipv4, packet } from "@dp/hooks";
 *
 * const bytes = packet(eth(), ipv4(), icmp({ type: "echoRequest", id: 0x1234, seq: 1 }));
 * assert.deepEqual(bytes.subarray(34), new Uint8Array([8, 0, 0xe5, 0xca, 0x12, 0x34, 0, 1]));
 * ```
 */
export function icmp(options?: IcmpOptions): IcmpLayer {
  return icmpLayer("icmp", ICMP_TYPES, options);
}

/**
 * Describes an ICMPv6 header; the checksum (over the IPv6 pseudo-header)
 * is filled in by {@link packet}.
 *
 * @param options Type, code, echo id and sequence number.
 * @returns The header, for {@link packet}.
 * @throws {TypeError} When the type name is unknown.
 * @throws {RangeError} When a number is out of range.
 * @example An echo reply
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, icmpv6, ipv6, packet, parsePacket } from "@dp/hooks";
 *
 * const parsed = parsePacket(packet(eth(), ipv6(), icmpv6({ type: "echoReply", id: 7 })));
 * assert.equal(parsed.icmpv6?.type, 129);
 * ```
 */
export function icmpv6(options?: IcmpOptions): IcmpLayer {
  return icmpLayer("icmpv6", ICMPV6_TYPES, options);
}

/**
 * Describes a VXLAN header. Put it after {@link udp} (whose destination
 * port then defaults to 4789) and before the inner frame's layers.
 *
 * @param options The VNI and flags.
 * @returns The header, for {@link packet}.
 * @throws {RangeError} When a number is out of range.
 * @example An encapsulated ping
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, icmp, ipv4, packet, parsePacket, udp, vxlan } from "@dp/hooks";
 *
 * const bytes = packet(eth(), ipv4(), udp(), vxlan({ vni: 42 }), eth(), ipv4({ src: "192.168.0.1" }), icmp());
 * const parsed = parsePacket(bytes);
 * assert.equal(parsed.udp?.dport, 4789);
 * assert.equal(parsed.vxlan?.vni, 42);
 * assert.equal(parsed.inner?.ipv4?.src, "192.168.0.1");
 * ```
 */
export function vxlan(options: VxlanOptions): VxlanLayer {
  const o = object("vxlan", options);
  return {
    layer: "vxlan",
    flags: optionalInteger("vxlan flags", o.flags, 0xff, 0x08),
    vni: integer("vxlan vni", o.vni, 0xffffff),
  };
}

function headerSize(layer: Layer): number {
  switch (layer.layer) {
    case "eth":
      return layer.vlan === undefined ? 14 : 18;
    case "ipv4":
      return 20 + layer.options.length;
    case "ipv6":
      return 40;
    case "tcp":
      return 20 + ((tcpOptionsLength(layer.options) + 3) & ~3);
    case "udp":
    case "icmp":
    case "icmpv6":
    case "vxlan":
      return 8;
  }
}

function isLayer(part: unknown): part is Layer {
  return (
    typeof part === "object" && part !== null && Object.hasOwn(FOLLOWS, (part as { layer?: unknown }).layer as string)
  );
}

function checkOrder(layers: readonly Layer[], hasPayload: boolean): void {
  const first = layers[0];
  if (first !== undefined && !FIRST.includes(first.layer)) {
    throw new TypeError(`Invalid packet: it cannot start with ${first.layer}: expected eth, ipv4 or ipv6 first`);
  }
  for (let i = 0; i + 1 < layers.length; i++) {
    const a = (layers[i] as Layer).layer;
    const b = (layers[i + 1] as Layer).layer;
    if (!FOLLOWS[a].includes(b)) {
      const allowed = FOLLOWS[a].length === 0 ? "only payload" : `${FOLLOWS[a].join(", ")} or payload`;
      throw new TypeError(`Invalid packet: ${b} cannot follow ${a} (layer ${i + 1}): ${a} takes ${allowed}`);
    }
  }
  const last = layers[layers.length - 1];
  if (last === undefined) return;
  // What a layer infers from the next one must be given when only payload follows.
  const need =
    last.layer === "eth" && last.type === undefined
      ? "eth type"
      : last.layer === "ipv4" && last.protocol === undefined
        ? "ipv4 protocol"
        : last.layer === "ipv6" && last.nextHeader === undefined
          ? "ipv6 nextHeader"
          : last.layer === "udp" && last.dport === undefined
            ? "udp dport"
            : undefined;
  if (need !== undefined) {
    throw new TypeError(`Invalid packet: ${need} is required when ${hasPayload ? "payload" : "nothing"} follows`);
  }
}

function setAddress(out: Uint8Array, at: number, text: string): Uint8Array {
  const bytes = parseIp(text).bytes;
  out.set(bytes, at);
  return bytes;
}

function writeTcpOptions(out: Uint8Array, at: number, options: readonly TcpHeaderOption[]): void {
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const o of options) {
    switch (o.kind) {
      case "nop":
        out[at++] = 1;
        break;
      case "mss":
        out.set([2, 4], at);
        dv.setUint16(at + 2, o.value, false);
        at += 4;
        break;
      case "windowScale":
        out.set([3, 3, o.shift], at);
        at += 3;
        break;
      case "sackPermitted":
        out.set([4, 2], at);
        at += 2;
        break;
      case "timestamp":
        out.set([8, 10], at);
        dv.setUint32(at + 2, o.value, false);
        dv.setUint32(at + 6, o.echo, false);
        at += 10;
        break;
      default:
        if ("data" in o && o.kind > 1) {
          out.set([o.kind, 2 + o.data.length], at);
          out.set(o.data, at + 2);
          at += 2 + o.data.length;
        } else {
          out[at++] = o.kind;
        }
    }
  }
}

/**
 * Lays out the layers in one buffer, last to first, and fills in what
 * depends on the layers around them: EtherType, IP protocol or next
 * header, lengths and checksums (IPv4 header; TCP, UDP and ICMPv6 with the
 * pseudo-header of the IP layer before them; ICMP). Payload (bytes or
 * UTF-8 text) comes after the last layer.
 *
 * The layers must nest: an Ethernet, IPv4 or IPv6 header first; then IP,
 * then TCP, UDP or ICMP (ICMP over IPv4, ICMPv6 over IPv6; IP over IP is
 * allowed); VXLAN after UDP, followed by the inner frame's layers.
 *
 * @param parts The layers, outermost first, then payload.
 * @returns The packet's bytes.
 * @throws {TypeError} When the layers do not nest, something that is not a layer or payload is given, or a layer comes after payload.
 * @throws {RangeError} When the packet is too long for a length field.
 * @example A TCP SYN in an Ethernet frame
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, ipv4, packet, tcp } from "@dp/hooks";
 *
 * const syn = packet(
 *   eth({ src: "02:00:00:00:00:01", dst: "02:00:00:00:00:02" }),
 *   ipv4({ src: "10.0.0.1", dst: "10.0.0.2" }),
 *   tcp({ sport: 40000, dport: 80, flags: ["syn"] }),
 * );
 * assert.equal(syn.length, 14 + 20 + 20);
 * assert.equal(syn[47], 0x02); // the SYN flag
 * ```
 */
export function packet(...parts: PacketPart[]): Uint8Array {
  const layers: Layer[] = [];
  const payload: Uint8Array[] = [];
  for (const [i, part] of parts.entries()) {
    if (typeof part === "string" || part instanceof Uint8Array) {
      payload.push(typeof part === "string" ? UTF8.encode(part) : part);
    } else if (isLayer(part)) {
      if (payload.length > 0)
        throw new TypeError(`Invalid packet: ${part.layer} (part ${i}) comes after payload: payload must come last`);
      layers.push(part);
    } else {
      throw new TypeError(
        `Invalid packet part ${i}: expected a layer from eth(), ipv4(), ... or payload bytes or text`,
      );
    }
  }
  checkOrder(layers, payload.length > 0);
  const offsets: number[] = [];
  let total = 0;
  for (const layer of layers) {
    offsets.push(total);
    total += headerSize(layer);
  }
  for (const p of payload) total += p.length;
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  let at = total;
  for (let i = payload.length - 1; i >= 0; i--) {
    const p = payload[i] as Uint8Array;
    at -= p.length;
    out.set(p, at);
  }
  // Addresses of each IP layer, for the pseudo-header of the layer after it.
  const addresses: ({ src: Uint8Array; dst: Uint8Array } | undefined)[] = layers.map((l) =>
    l.layer === "ipv4" || l.layer === "ipv6" ? { src: parseIp(l.src).bytes, dst: parseIp(l.dst).bytes } : undefined,
  );
  for (let i = layers.length - 1; i >= 0; i--) {
    const layer = layers[i] as Layer;
    const next = layers[i + 1];
    const off = offsets[i] as number;
    const length = total - off;
    switch (layer.layer) {
      case "eth": {
        out.set(parseMac(layer.dst), off);
        out.set(parseMac(layer.src), off + 6);
        let typeAt = off + 12;
        if (layer.vlan !== undefined) {
          dv.setUint16(typeAt, layer.vlan.tpid, false);
          dv.setUint16(typeAt + 2, (layer.vlan.pcp << 13) | (layer.vlan.dei ? 0x1000 : 0) | layer.vlan.id, false);
          typeAt += 4;
        }
        dv.setUint16(typeAt, layer.type ?? (ETH_TYPE[next?.layer ?? ""] as number), false);
        break;
      }
      case "ipv4": {
        const headerLength = 20 + layer.options.length;
        if (length > 0xffff)
          throw new RangeError(`Invalid packet: the IPv4 datagram is ${length} bytes, more than 65535`);
        out[off] = 0x40 | (headerLength >> 2);
        out[off + 1] = layer.tos;
        dv.setUint16(off + 2, length, false);
        dv.setUint16(off + 4, layer.id, false);
        dv.setUint16(off + 6, (layer.df ? 0x4000 : 0) | (layer.mf ? 0x2000 : 0) | layer.fragmentOffset, false);
        out[off + 8] = layer.ttl;
        out[off + 9] = layer.protocol ?? (NEXT_PROTOCOL[next?.layer ?? ""] as number);
        setAddress(out, off + 12, layer.src);
        setAddress(out, off + 16, layer.dst);
        out.set(layer.options, off + 20);
        dv.setUint16(off + 10, layer.forceChecksum ?? internetChecksum(out.subarray(off, off + headerLength)), false);
        break;
      }
      case "ipv6": {
        if (length - 40 > 0xffff)
          throw new RangeError(`Invalid packet: the IPv6 payload is ${length - 40} bytes, more than 65535`);
        dv.setUint32(off, (6 << 28) | (layer.trafficClass << 20) | layer.flowLabel, false);
        dv.setUint16(off + 4, length - 40, false);
        out[off + 6] = layer.nextHeader ?? (NEXT_PROTOCOL[next?.layer ?? ""] as number);
        out[off + 7] = layer.hopLimit;
        setAddress(out, off + 8, layer.src);
        setAddress(out, off + 24, layer.dst);
        break;
      }
      case "tcp": {
        const headerLength = headerSize(layer);
        dv.setUint16(off, layer.sport, false);
        dv.setUint16(off + 2, layer.dport, false);
        dv.setUint32(off + 4, layer.seq, false);
        dv.setUint32(off + 8, layer.ack, false);
        out[off + 12] = (headerLength >> 2) << 4;
        out[off + 13] = layer.flags.reduce((bits, f) => bits | (1 << TCP_FLAGS.indexOf(f)), 0);
        dv.setUint16(off + 14, layer.window, false);
        dv.setUint16(off + 18, layer.urgent, false);
        writeTcpOptions(out, off + 20, layer.options);
        const ip = addresses[i - 1] as { src: Uint8Array; dst: Uint8Array };
        const sum = pseudoHeaderSum(ip.src, ip.dst, 6, length);
        dv.setUint16(off + 16, layer.forceChecksum ?? internetChecksum(out.subarray(off), sum), false);
        break;
      }
      case "udp": {
        if (length > 0xffff)
          throw new RangeError(`Invalid packet: the UDP datagram is ${length} bytes, more than 65535`);
        dv.setUint16(off, layer.sport, false);
        dv.setUint16(off + 2, layer.dport ?? VXLAN_PORT, false);
        dv.setUint16(off + 4, length, false);
        const ip = addresses[i - 1] as { src: Uint8Array; dst: Uint8Array };
        // A computed 0 is sent as 0xffff: 0 means "no checksum" (RFC 768).
        const sum = internetChecksum(out.subarray(off), pseudoHeaderSum(ip.src, ip.dst, 17, length)) || 0xffff;
        dv.setUint16(off + 6, layer.forceChecksum ?? sum, false);
        break;
      }
      case "icmp":
      case "icmpv6": {
        out[off] = layer.type;
        out[off + 1] = layer.code;
        dv.setUint16(off + 4, layer.id, false);
        dv.setUint16(off + 6, layer.seq, false);
        let initial = 0;
        if (layer.layer === "icmpv6") {
          const ip = addresses[i - 1] as { src: Uint8Array; dst: Uint8Array };
          initial = pseudoHeaderSum(ip.src, ip.dst, 58, length);
        }
        dv.setUint16(off + 2, layer.forceChecksum ?? internetChecksum(out.subarray(off), initial), false);
        break;
      }
      case "vxlan":
        out[off] = layer.flags;
        dv.setUint32(off + 4, layer.vni << 8, false);
        break;
    }
  }
  return out;
}
