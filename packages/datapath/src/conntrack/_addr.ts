// 16-byte datapath addresses (bpf/include/dp/common.h): IPv6 as is, IPv4
// mapped (::ffff:a.b.c.d) next to a family byte; text in and out.
import { formatIp, parseCidr, parseIp } from "@dp/core";

/** An address or prefix to match 16-byte datapath addresses against. */
export interface AddressMatcher {
  /** 4 or 6. */
  readonly family: 4 | 6;
  /** The prefix in the 16-byte form. */
  readonly bytes: Uint8Array;
  /** Bits of `bytes` that count (of 128). */
  readonly bits: number;
}

/** The text of a 16-byte datapath address of a family (4: the mapped IPv4 address). */
export function addressText(addr: Uint8Array, family: number): string {
  return family === 4 ? formatIp(addr.subarray(12, 16)) : formatIp(addr.subarray(0, 16));
}

/**
 * Parses an address (`10.0.0.1`, `fd00::1`) or a prefix (`10.0.0.0/24`)
 * into a matcher. `field` names the option in errors.
 */
export function parseAddressMatcher(text: string, field: string): AddressMatcher {
  try {
    const p = text.includes("/") ? parseCidr(text) : { ...parseIp(text), prefixLength: undefined };
    const bytes = new Uint8Array(16);
    if (p.family === 4) {
      bytes[10] = 0xff;
      bytes[11] = 0xff;
      bytes.set(p.bytes, 12);
      return { family: 4, bytes, bits: 96 + (p.prefixLength ?? 32) };
    }
    bytes.set(p.bytes);
    return { family: 6, bytes, bits: p.prefixLength ?? 128 };
  } catch (err) {
    throw new SyntaxError(`Invalid ${field} ${JSON.stringify(text)}: expected an IP address or a CIDR prefix`, {
      cause: err,
    });
  }
}

/** Whether a 16-byte address of a family lies in the matcher's prefix. */
export function addressMatches(m: AddressMatcher, addr: Uint8Array, family: number): boolean {
  if (family !== m.family) return false;
  const full = m.bits >> 3;
  for (let i = 0; i < full; i++) if (addr[i] !== m.bytes[i]) return false;
  const rest = m.bits & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((addr[full] ?? 0) & mask) === ((m.bytes[full] ?? 0) & mask);
}
