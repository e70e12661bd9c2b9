// The datapath's address layout: 16 bytes everywhere, IPv4 as IPv4-mapped
// (::ffff:a.b.c.d) next to a family byte (bpf/datapath/README.md "Maps").
import { formatIp, type IpFamily, parseCidr, parseIp } from "@dp/core";

/**
 * The 16-byte datapath form of an address.
 *
 * @param bytes A 4- or 16-byte address.
 * @returns IPv6 as is, IPv4 mapped.
 */
export function toAddr16(bytes: Uint8Array): Uint8Array {
  if (bytes.length === 16) return bytes;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

/**
 * Parses an address into the datapath form.
 *
 * @param ip The address.
 * @returns Its family and 16 bytes.
 * @throws {SyntaxError} When it is no address.
 */
export function addr16(ip: string): { family: IpFamily; addr: Uint8Array } {
  const { family, bytes } = parseIp(ip);
  return { family, addr: toAddr16(bytes) };
}

/**
 * The text of a datapath address.
 *
 * @param family 4 or 6.
 * @param addr The 16 bytes.
 * @returns The address as text.
 */
export function formatAddr16(family: number, addr: Uint8Array): string {
  return formatIp(family === 4 ? addr.subarray(12, 16) : addr);
}

/**
 * Parses a prefix and checks that no host bit is set.
 *
 * @param cidr The prefix (a bare address is a host prefix).
 * @returns The family, bytes and length, with the canonical text.
 * @throws {SyntaxError} When it is no prefix or has host bits set.
 */
export function parsePrefix16(cidr: string): {
  family: IpFamily;
  addr: Uint8Array;
  prefixLength: number;
  text: string;
} {
  const p = parseCidr(cidr);
  for (let bit = p.prefixLength; bit < p.bytes.length * 8; bit++) {
    if (((p.bytes[bit >> 3] ?? 0) & (0x80 >> (bit & 7))) !== 0)
      throw new SyntaxError(`Invalid CIDR ${JSON.stringify(cidr)}: host bits are set`);
  }
  return {
    family: p.family,
    addr: toAddr16(p.bytes),
    prefixLength: p.prefixLength,
    text: `${formatIp(p.bytes)}/${p.prefixLength}`,
  };
}
