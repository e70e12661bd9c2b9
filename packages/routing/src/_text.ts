// Text forms shared by every decoder: addresses as iproute2 prints them.
import { formatIp } from "@dp/core";

/**
 * Formats 4 or 16 address bytes the way iproute2 (glibc's `inet_ntop`)
 * and RFC 5952 §5 do: an IPv4-mapped IPv6 address ends in dotted form
 * (`::ffff:10.0.0.0`), and so does an IPv4-compatible one (`::10.0.0.1`,
 * first 96 bits zero and not `::` or `::1`-like, that is the 7th group is
 * not zero). Everything else is RFC 5952 text.
 *
 * @param bytes The address.
 * @returns Its text.
 */
export function formatAddress(bytes: Uint8Array): string {
  if (bytes.length !== 16) return formatIp(bytes);
  for (let i = 0; i < 10; i++) if (bytes[i] !== 0) return formatIp(bytes);
  const w5 = ((bytes[10] as number) << 8) | (bytes[11] as number);
  const w6 = ((bytes[12] as number) << 8) | (bytes[13] as number);
  const dotted = `${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  if (w5 === 0xffff) return `::ffff:${dotted}`;
  if (w5 === 0 && w6 !== 0) return `::${dotted}`;
  return formatIp(bytes);
}
