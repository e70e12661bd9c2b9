// The packet parser: Ethernet (with one VLAN tag), IPv4, IPv6, TCP, UDP,
// ICMP, ICMPv6 and VXLAN with its inner frame, checking every checksum.
// Offsets are absolute so errors point into the packet as given; every
// read is bounds-checked first, so bad input ends in a PacketParseError.

import { formatIp, formatMac } from "@dp/core";
import { internetChecksum, l4Check } from "./checksum.ts";
import { TCP_FLAGS } from "./headers.ts";
import type {
  EthHeader,
  IcmpHeader,
  Ipv4Header,
  Ipv6Header,
  ParsedPacket,
  TcpHeader,
  TcpHeaderOption,
  UdpHeader,
  VlanTag,
} from "./headers.ts";

/**
 * A protocol layer, as named in errors and in {@link ParsedPacket}.
 *
 * @useDeclaredType
 */
export type PacketLayerName = "eth" | "ipv4" | "ipv6" | "tcp" | "udp" | "icmp" | "icmpv6" | "vxlan";

/** Options for {@link PacketParseError}. */
export interface PacketParseErrorOptions extends ErrorOptions {
  /** The layer whose header could not be read. */
  readonly layer: PacketLayerName;
  /** Where that header starts in the packet. */
  readonly offset: number;
  /** Whether the packet ends too early (as opposed to holding an impossible value). */
  readonly truncated: boolean;
}

/**
 * A packet that {@link parsePacket} cannot take apart: it ends inside a
 * header or a length field points past its end (`truncated`), or a header
 * holds an impossible value such as a wrong IP version.
 */
export class PacketParseError extends SyntaxError {
  /** Always `"PacketParseError"`, the class name. */
  override readonly name: string = "PacketParseError";
  /** The layer whose header could not be read. */
  readonly layer: PacketLayerName;
  /** Where that header starts in the packet. */
  readonly offset: number;
  /** Whether the packet ends too early. */
  readonly truncated: boolean;

  /**
   * Makes the error.
   *
   * @param message The message.
   * @param options Layer, offset and whether the packet was truncated.
   */
  constructor(message: string, options: PacketParseErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.layer = options.layer;
    this.offset = options.offset;
    this.truncated = options.truncated;
  }
}

/** Options for {@link parsePacket}. */
export interface ParsePacketOptions {
  /**
   * UDP destination ports whose payload is parsed as VXLAN.
   *
   * @default [4789]
   */
  readonly vxlanPorts?: readonly number[];
}

interface Cursor {
  readonly bytes: Uint8Array;
  readonly dv: DataView;
  readonly vxlanPorts: readonly number[];
}

function need(c: Cursor, layer: PacketLayerName, offset: number, length: number, end: number, what = "header"): void {
  if (offset + length > end) {
    throw new PacketParseError(
      `Cannot parse packet: the ${layer} ${what} at offset ${offset} is truncated: it needs ${length} bytes, ${Math.max(0, end - offset)} are left`,
      { layer, offset, truncated: true },
    );
  }
}

function malformed(layer: PacketLayerName, offset: number, detail: string): PacketParseError {
  return new PacketParseError(`Cannot parse packet: the ${layer} header at offset ${offset} is malformed: ${detail}`, {
    layer,
    offset,
    truncated: false,
  });
}

function parseEth(c: Cursor, off: number, end: number): { eth: EthHeader; next: number } {
  need(c, "eth", off, 14, end);
  const dst = formatMac(c.bytes.subarray(off, off + 6));
  const src = formatMac(c.bytes.subarray(off + 6, off + 12));
  let type = c.dv.getUint16(off + 12, false);
  if (type === 0x8100 || type === 0x88a8) {
    need(c, "eth", off, 18, end, "VLAN-tagged header");
    const tci = c.dv.getUint16(off + 14, false);
    const vlan: VlanTag = { id: tci & 0xfff, pcp: tci >> 13, dei: (tci & 0x1000) !== 0, tpid: type };
    type = c.dv.getUint16(off + 16, false);
    return { eth: { src, dst, type, vlan }, next: off + 18 };
  }
  return { eth: { src, dst, type }, next: off + 14 };
}

function parseTcpOptions(c: Cursor, off: number, end: number): TcpHeaderOption[] {
  const options: TcpHeaderOption[] = [];
  let at = off;
  while (at < end) {
    const kind = c.bytes[at] as number;
    if (kind === 0) break;
    if (kind === 1) {
      options.push({ kind: "nop" });
      at++;
      continue;
    }
    if (at + 2 > end) throw malformed("tcp", off - 20, `option ${kind} at offset ${at} has no length byte`);
    const length = c.bytes[at + 1] as number;
    if (length < 2 || at + length > end) {
      throw malformed(
        "tcp",
        off - 20,
        `option ${kind} at offset ${at} has length ${length}, which does not fit the header`,
      );
    }
    if (kind === 2 && length === 4) options.push({ kind: "mss", value: c.dv.getUint16(at + 2, false) });
    else if (kind === 3 && length === 3) options.push({ kind: "windowScale", shift: c.bytes[at + 2] as number });
    else if (kind === 4 && length === 2) options.push({ kind: "sackPermitted" });
    else if (kind === 8 && length === 10) {
      options.push({ kind: "timestamp", value: c.dv.getUint32(at + 2, false), echo: c.dv.getUint32(at + 6, false) });
    } else options.push({ kind, data: c.bytes.slice(at + 2, at + length) });
    at += length;
  }
  return options;
}

interface Network {
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly family: 4 | 6;
}

/** Where the payload of the last header starts and ends. */
interface Span {
  readonly start: number;
  readonly end: number;
}

function parseTransport(
  c: Cursor,
  protocol: number,
  ip: Network,
  off: number,
  end: number,
  out: Record<string, unknown>,
): Span {
  const segment = c.bytes.subarray(off, end);
  if (protocol === 6) {
    need(c, "tcp", off, 20, end);
    const headerLength = ((c.bytes[off + 12] as number) >> 4) << 2;
    if (headerLength < 20) throw malformed("tcp", off, `data offset ${headerLength / 4} is below 5`);
    need(c, "tcp", off, headerLength, end, `header with options (${headerLength} bytes)`);
    const bits = c.bytes[off + 13] as number;
    const tcp: TcpHeader = {
      sport: c.dv.getUint16(off, false),
      dport: c.dv.getUint16(off + 2, false),
      seq: c.dv.getUint32(off + 4, false),
      ack: c.dv.getUint32(off + 8, false),
      flags: TCP_FLAGS.filter((_, i) => (bits & (1 << i)) !== 0),
      window: c.dv.getUint16(off + 14, false),
      urgent: c.dv.getUint16(off + 18, false),
      headerLength,
      options: parseTcpOptions(c, off + 20, off + headerLength),
      checksum: c.dv.getUint16(off + 16, false),
      checksumValid: l4Check(ip.src, ip.dst, 6, segment) === 0,
    };
    out["tcp"] = tcp;
    return { start: off + headerLength, end };
  }
  if (protocol === 17) {
    need(c, "udp", off, 8, end);
    const length = c.dv.getUint16(off + 4, false);
    if (length < 8) throw malformed("udp", off, `length ${length} is below 8`);
    need(c, "udp", off, length, end, `datagram (length field ${length})`);
    const checksum = c.dv.getUint16(off + 6, false);
    const udp: UdpHeader = {
      sport: c.dv.getUint16(off, false),
      dport: c.dv.getUint16(off + 2, false),
      length,
      checksum,
      checksumValid:
        checksum === 0 ? ip.family === 4 : l4Check(ip.src, ip.dst, 17, c.bytes.subarray(off, off + length)) === 0,
    };
    out["udp"] = udp;
    if (c.vxlanPorts.includes(udp.dport)) {
      const at = off + 8;
      need(c, "vxlan", at, 8, off + length);
      out["vxlan"] = { flags: c.bytes[at] as number, vni: c.dv.getUint32(at + 4, false) >>> 8 };
      out["inner"] = parseFrame(c, at + 8, off + length);
      return { start: at + 8, end: off + length };
    }
    // UDP's own length bounds its payload.
    return { start: off + 8, end: off + length };
  }
  const layer = protocol === 1 ? "icmp" : "icmpv6";
  need(c, layer, off, 8, end);
  const header: IcmpHeader = {
    type: c.bytes[off] as number,
    code: c.bytes[off + 1] as number,
    id: c.dv.getUint16(off + 4, false),
    seq: c.dv.getUint16(off + 6, false),
    checksum: c.dv.getUint16(off + 2, false),
    checksumValid: (layer === "icmp" ? internetChecksum(segment) : l4Check(ip.src, ip.dst, 58, segment)) === 0,
  };
  out[layer] = header;
  return { start: off + 8, end };
}

function parseFrame(c: Cursor, start: number, end: number): ParsedPacket {
  const { eth, next } = parseEth(c, start, end);
  const out: Record<string, unknown> = { eth };
  let off = next;
  let datagramEnd = end;
  let payload: Span | undefined;
  if (eth.type === 0x0800) {
    need(c, "ipv4", off, 20, end);
    const first = c.bytes[off] as number;
    if (first >> 4 !== 4) throw malformed("ipv4", off, `version ${first >> 4} is not 4`);
    const headerLength = (first & 0xf) << 2;
    if (headerLength < 20) throw malformed("ipv4", off, `header length ${headerLength / 4} is below 5`);
    need(c, "ipv4", off, headerLength, end, `header with options (${headerLength} bytes)`);
    const totalLength = c.dv.getUint16(off + 2, false);
    if (totalLength < headerLength)
      throw malformed("ipv4", off, `total length ${totalLength} is below the header length ${headerLength}`);
    need(c, "ipv4", off, totalLength, end, `datagram (total length ${totalLength})`);
    const fragment = c.dv.getUint16(off + 6, false);
    const src = c.bytes.slice(off + 12, off + 16);
    const dst = c.bytes.slice(off + 16, off + 20);
    const ipv4: Ipv4Header = {
      src: formatIp(src),
      dst: formatIp(dst),
      tos: c.bytes[off + 1] as number,
      id: c.dv.getUint16(off + 4, false),
      df: (fragment & 0x4000) !== 0,
      mf: (fragment & 0x2000) !== 0,
      fragmentOffset: fragment & 0x1fff,
      ttl: c.bytes[off + 8] as number,
      protocol: c.bytes[off + 9] as number,
      headerLength,
      totalLength,
      checksum: c.dv.getUint16(off + 10, false),
      checksumValid: internetChecksum(c.bytes.subarray(off, off + headerLength)) === 0,
      options: c.bytes.slice(off + 20, off + headerLength),
    };
    out["ipv4"] = ipv4;
    datagramEnd = off + totalLength;
    off += headerLength;
    // Only an unfragmented datagram has a transport header whose checksum can be checked.
    if (!ipv4.mf && ipv4.fragmentOffset === 0 && (ipv4.protocol === 6 || ipv4.protocol === 17 || ipv4.protocol === 1)) {
      payload = parseTransport(c, ipv4.protocol, { src, dst, family: 4 }, off, datagramEnd, out);
    }
  } else if (eth.type === 0x86dd) {
    need(c, "ipv6", off, 40, end);
    const word = c.dv.getUint32(off, false);
    if (word >>> 28 !== 6) throw malformed("ipv6", off, `version ${word >>> 28} is not 6`);
    const payloadLength = c.dv.getUint16(off + 4, false);
    need(c, "ipv6", off, 40 + payloadLength, end, `packet (payload length ${payloadLength})`);
    const src = c.bytes.slice(off + 8, off + 24);
    const dst = c.bytes.slice(off + 24, off + 40);
    const ipv6: Ipv6Header = {
      src: formatIp(src),
      dst: formatIp(dst),
      trafficClass: (word >>> 20) & 0xff,
      flowLabel: word & 0xfffff,
      hopLimit: c.bytes[off + 7] as number,
      nextHeader: c.bytes[off + 6] as number,
      payloadLength,
    };
    out["ipv6"] = ipv6;
    datagramEnd = off + 40 + payloadLength;
    off += 40;
    if (ipv6.nextHeader === 6 || ipv6.nextHeader === 17 || ipv6.nextHeader === 58) {
      payload = parseTransport(c, ipv6.nextHeader, { src, dst, family: 6 }, off, datagramEnd, out);
    }
  }
  payload ??= { start: off, end: datagramEnd };
  out["payload"] = c.bytes.slice(payload.start, payload.end);
  if (datagramEnd < end) out["trailer"] = c.bytes.slice(datagramEnd, end);
  return out as unknown as ParsedPacket;
}

/**
 * Takes an Ethernet frame apart: Ethernet (with one VLAN tag), IPv4 or
 * IPv6, then TCP, UDP, ICMP or ICMPv6, and VXLAN with its inner frame.
 * Every checksum is checked and reported (`checksumValid`) rather than
 * thrown about. What is not understood (other EtherTypes or protocols, IPv6
 * extension headers, IPv4 fragments) is left in `payload`.
 *
 * @param bytes The frame, starting with the Ethernet header.
 * @param options Which UDP ports carry VXLAN.
 * @returns The headers of every layer found, and the bytes after them.
 * @throws {PacketParseError} When the frame ends inside a header or before a length field says it does, or a header holds an impossible value.
 * @throws {TypeError} When `bytes` is not a Uint8Array.
 * @example Round trip through the builders
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, ipv4, packet, parsePacket, PacketParseError, tcp } from "@dp/hooks";
 *
 * const bytes = packet(eth(), ipv4({ dst: "10.0.0.9" }), tcp({ dport: 443, flags: ["syn"] }));
 * const parsed = parsePacket(bytes);
 * assert.equal(parsed.ipv4?.dst, "10.0.0.9");
 * assert.equal(parsed.tcp?.dport, 443);
 * assert.equal(parsed.tcp?.checksumValid, true);
 * assert.throws(() => parsePacket(bytes.subarray(0, 40)), PacketParseError);
 * ```
 */
export function parsePacket(bytes: Uint8Array, options: ParsePacketOptions = {}): ParsedPacket {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("Invalid packet: expected a Uint8Array");
  const cursor: Cursor = {
    bytes,
    dv: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    vxlanPorts: options.vxlanPorts ?? [4789],
  };
  return parseFrame(cursor, 0, bytes.length);
}
