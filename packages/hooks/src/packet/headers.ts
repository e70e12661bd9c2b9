// What parsePacket() returns: one plain object per protocol layer, with
// addresses as text and every header field as a number, flag or list. The
// builders in build.ts accept the same field names, so a parsed header can
// be fed back into them (with changes).

/** An IEEE 802.1Q (or 802.1ad) VLAN tag. */
export interface VlanTag {
  /** The VLAN identifier, 0 to 4095. */
  readonly id: number;
  /** The priority code point, 0 to 7. */
  readonly pcp: number;
  /** The drop eligible indicator. */
  readonly dei: boolean;
  /** The tag protocol identifier: 0x8100 (802.1Q) or 0x88a8 (802.1ad). */
  readonly tpid: number;
}

/** An Ethernet II header. */
export interface EthHeader {
  /** The source MAC address, lower-case (`"02:00:00:00:00:01"`). */
  readonly src: string;
  /** The destination MAC address, lower-case. */
  readonly dst: string;
  /** The EtherType of what follows (after the VLAN tag, when there is one): 0x0800 IPv4, 0x86dd IPv6. */
  readonly type: number;
  /** The VLAN tag, when the frame carries one. */
  readonly vlan?: VlanTag;
}

/** An IPv4 header (RFC 791). */
export interface Ipv4Header {
  /** The source address (`"10.0.0.1"`). */
  readonly src: string;
  /** The destination address. */
  readonly dst: string;
  /** The type-of-service byte (DSCP and ECN). */
  readonly tos: number;
  /** The identification field. */
  readonly id: number;
  /** The don't-fragment flag. */
  readonly df: boolean;
  /** The more-fragments flag. */
  readonly mf: boolean;
  /** The fragment offset in 8-byte units, as in the header. */
  readonly fragmentOffset: number;
  /** The time to live. */
  readonly ttl: number;
  /** The protocol of what follows: 1 ICMP, 6 TCP, 17 UDP. */
  readonly protocol: number;
  /** The header length in bytes (20 without options). */
  readonly headerLength: number;
  /** The total length field: header plus payload in bytes. */
  readonly totalLength: number;
  /** The header checksum field. */
  readonly checksum: number;
  /** Whether {@link Ipv4Header.checksum} is right for the header. */
  readonly checksumValid: boolean;
  /** The options as raw bytes (empty for a 20-byte header). */
  readonly options: Uint8Array;
}

/** An IPv6 fixed header (RFC 8200). */
export interface Ipv6Header {
  /** The source address, in RFC 5952 form (`"fd00::1"`). */
  readonly src: string;
  /** The destination address. */
  readonly dst: string;
  /** The traffic class byte. */
  readonly trafficClass: number;
  /** The 20-bit flow label. */
  readonly flowLabel: number;
  /** The hop limit. */
  readonly hopLimit: number;
  /** The next header: 6 TCP, 17 UDP, 58 ICMPv6. */
  readonly nextHeader: number;
  /** The payload length field in bytes. */
  readonly payloadLength: number;
}

/**
 * A TCP flag, lowest bit first: `fin`, `syn`, `rst`, `psh`, `ack`, `urg`,
 * `ece`, `cwr`.
 *
 * @useDeclaredType
 */
export type TcpFlag = "fin" | "syn" | "rst" | "psh" | "ack" | "urg" | "ece" | "cwr";

/**
 * The TCP flags by bit, lowest first.
 *
 * @internal For the builders and the parser.
 */
export const TCP_FLAGS: readonly TcpFlag[] = ["fin", "syn", "rst", "psh", "ack", "urg", "ece", "cwr"];

/**
 * One TCP header option. The ones TCP stacks commonly send have names;
 * anything else (SACK blocks, MD5, ...) is `{ kind, data }` with the
 * option's kind number and the bytes after its length byte.
 *
 * @useDeclaredType
 */
export type TcpHeaderOption =
  | { readonly kind: "nop" }
  | { readonly kind: "mss"; readonly value: number }
  | { readonly kind: "windowScale"; readonly shift: number }
  | { readonly kind: "sackPermitted" }
  | { readonly kind: "timestamp"; readonly value: number; readonly echo: number }
  | { readonly kind: number; readonly data: Uint8Array };

/** A TCP header (RFC 9293). */
export interface TcpHeader {
  /** The source port. */
  readonly sport: number;
  /** The destination port. */
  readonly dport: number;
  /** The sequence number. */
  readonly seq: number;
  /** The acknowledgment number. */
  readonly ack: number;
  /** The flags that are set, lowest bit first. */
  readonly flags: readonly TcpFlag[];
  /** The receive window. */
  readonly window: number;
  /** The urgent pointer. */
  readonly urgent: number;
  /** The header length in bytes (data offset × 4). */
  readonly headerLength: number;
  /** The options, up to the end-of-list option or the end of the header. */
  readonly options: readonly TcpHeaderOption[];
  /** The checksum field. */
  readonly checksum: number;
  /** Whether {@link TcpHeader.checksum} is right for the segment and its pseudo-header. */
  readonly checksumValid: boolean;
}

/** A UDP header (RFC 768). */
export interface UdpHeader {
  /** The source port. */
  readonly sport: number;
  /** The destination port. */
  readonly dport: number;
  /** The length field: header plus payload in bytes. */
  readonly length: number;
  /** The checksum field (0 over IPv4 means "no checksum"). */
  readonly checksum: number;
  /** Whether {@link UdpHeader.checksum} is right (a zero checksum over IPv4 is valid, over IPv6 it is not). */
  readonly checksumValid: boolean;
}

/**
 * An ICMP (RFC 792) or ICMPv6 (RFC 4443) header. `id` and `seq` are the
 * echo identifier and sequence number; for other messages they are the
 * first and second half of the four bytes after the checksum.
 */
export interface IcmpHeader {
  /** The message type: ICMP 8 echo request, 0 echo reply; ICMPv6 128 echo request, 129 echo reply. */
  readonly type: number;
  /** The message code. */
  readonly code: number;
  /** The echo identifier (bytes 4 and 5). */
  readonly id: number;
  /** The echo sequence number (bytes 6 and 7). */
  readonly seq: number;
  /** The checksum field. */
  readonly checksum: number;
  /** Whether {@link IcmpHeader.checksum} is right (ICMPv6 includes the pseudo-header). */
  readonly checksumValid: boolean;
}

/** A VXLAN header (RFC 7348). */
export interface VxlanHeader {
  /** The flags byte: 0x08 (the I flag) when the VNI is valid. */
  readonly flags: number;
  /** The 24-bit VXLAN network identifier. */
  readonly vni: number;
}

/**
 * A packet taken apart by `parsePacket()`: one header object per layer
 * present, the inner frame of a VXLAN packet, and the bytes after the last
 * header that was understood.
 */
export interface ParsedPacket {
  /** The Ethernet header. */
  readonly eth: EthHeader;
  /** The IPv4 header, when the frame carries IPv4. */
  readonly ipv4?: Ipv4Header;
  /** The IPv6 header, when the frame carries IPv6. */
  readonly ipv6?: Ipv6Header;
  /** The TCP header. */
  readonly tcp?: TcpHeader;
  /** The UDP header. */
  readonly udp?: UdpHeader;
  /** The ICMP header (over IPv4). */
  readonly icmp?: IcmpHeader;
  /** The ICMPv6 header (over IPv6). */
  readonly icmpv6?: IcmpHeader;
  /** The VXLAN header, when UDP goes to a VXLAN port. */
  readonly vxlan?: VxlanHeader;
  /** The frame inside the VXLAN header. */
  readonly inner?: ParsedPacket;
  /**
   * The bytes after the last header that was understood, up to the end of
   * the IP datagram (for VXLAN: the inner frame's bytes).
   */
  readonly payload: Uint8Array;
  /** Bytes after the end of the IP datagram (such as Ethernet padding), when there are any. */
  readonly trailer?: Uint8Array;
}
