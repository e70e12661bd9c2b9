// Address helpers over @dp/core's parsers: canonical text and overlap.
import { formatIp, type IpPrefix, parseCidr, parseIp } from "@dp/core";

/** The canonical form of an address (`fd00::1`, not `fd00:0::1`); SyntaxError when invalid. */
export function canonicalIp(text: string, family?: 4 | 6): string {
  const ip = parseIp(text);
  if (family !== undefined && ip.family !== family) {
    throw new SyntaxError(`Invalid IPv${family} address ${JSON.stringify(text)}`);
  }
  return formatIp(ip.bytes);
}

/** A prefix with zero host bits, in canonical form; an address alone is a /32 or /128. */
export function canonicalPrefix(text: string): { text: string; prefix: IpPrefix } {
  const p = parseCidr(text);
  const bits = p.prefixLength;
  for (let i = 0; i < p.bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, bits - i * 8));
    const mask = keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
    if ((p.bytes[i] as number) & ~mask & 0xff) {
      throw new SyntaxError(`Invalid prefix ${JSON.stringify(text)}: host bits are set`);
    }
  }
  return { text: `${formatIp(p.bytes)}/${bits}`, prefix: p };
}

/** Whether two prefixes share an address. */
export function prefixesOverlap(a: IpPrefix, b: IpPrefix): boolean {
  if (a.family !== b.family) return false;
  const bits = Math.min(a.prefixLength, b.prefixLength);
  for (let i = 0; i * 8 < bits; i++) {
    const keep = Math.min(8, bits - i * 8);
    const mask = (0xff << (8 - keep)) & 0xff;
    if ((((a.bytes[i] as number) ^ (b.bytes[i] as number)) & mask) !== 0) return false;
  }
  return true;
}
