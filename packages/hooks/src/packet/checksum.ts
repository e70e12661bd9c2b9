// The Internet checksum (RFC 1071) and the pseudo-header sums TCP, UDP and
// ICMPv6 fold into theirs (RFC 9293 §3.1, RFC 768, RFC 8200 §8.1).

/**
 * Computes the Internet checksum (RFC 1071) of `bytes`: the one's
 * complement of the one's complement sum of its 16-bit big-endian words,
 * an odd last byte padded with zero.
 *
 * A header whose checksum field holds this value sums (checksum field
 * included) to `0xffff`, so computing it over such a header gives 0.
 *
 * @param bytes The data, checksum field included (zeroed when computing a new checksum).
 * @param initial A partial sum to start from, such as a pseudo-header sum.
 * @returns The checksum, 0 to 0xffff.
 * @example The RFC 1071 example and a check of a valid header
 * ```ts
 * import assert from "node:assert/strict";
 * import { internetChecksum } from "@dp/hooks";
 *
 * // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2.
 * assert.equal(internetChecksum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7])), 0xffff - 0xddf2);
 * // Summing a header that carries its checksum gives 0.
 * assert.equal(internetChecksum(new Uint8Array([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7, 0x22, 0x0d])), 0);
 * ```
 */
export function internetChecksum(bytes: Uint8Array, initial: number = 0): number {
  return ~foldSum(sumWords(bytes, initial)) & 0xffff;
}

/**
 * Adds the 16-bit big-endian words of `bytes` to `sum` without folding.
 *
 * @internal For the packet builders and parsers.
 * @param bytes The data; an odd last byte is padded with zero.
 * @param sum The running sum.
 * @returns The new running sum (may exceed 16 bits).
 */
export function sumWords(bytes: Uint8Array, sum: number = 0): number {
  const end = bytes.length & ~1;
  for (let i = 0; i < end; i += 2) {
    sum += ((bytes[i] as number) << 8) | (bytes[i + 1] as number);
    // Fold now and then so the sum stays a small integer.
    if (sum > 0x7fffffff) sum = (sum & 0xffff) + (sum >>> 16);
  }
  if (end < bytes.length) sum += (bytes[end] as number) << 8;
  return sum;
}

/**
 * Folds a running sum to 16 bits with end-around carry.
 *
 * @internal For the packet builders and parsers.
 * @param sum The running sum.
 * @returns The one's complement sum, 0 to 0xffff.
 */
export function foldSum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return sum;
}

/**
 * The running sum of the TCP/UDP/ICMPv6 pseudo-header: source and
 * destination address, the upper-layer protocol and its length
 * (IPv4: RFC 9293 §3.1; IPv6: RFC 8200 §8.1).
 *
 * @internal For the packet builders and parsers.
 * @param src The source address (4 or 16 bytes).
 * @param dst The destination address (same length).
 * @param protocol The protocol number (6, 17, 58).
 * @param length The upper-layer length: header plus payload.
 * @returns The running sum, to pass as `initial` to {@link internetChecksum}.
 */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, protocol: number, length: number): number {
  let sum = sumWords(src, 0);
  sum = sumWords(dst, sum);
  // IPv6 writes the length as 32 bits and the protocol as the last of 4 bytes;
  // as 16-bit words both forms sum to the same value.
  return sum + protocol + (length & 0xffff) + Math.floor(length / 0x10000);
}

/**
 * Checks a TCP, UDP or ICMPv6 segment against its pseudo-header.
 *
 * @internal For the parser.
 * @param src Source address bytes.
 * @param dst Destination address bytes.
 * @param protocol The protocol number.
 * @param segment The header (checksum included) and payload.
 * @returns 0 when the checksum is right.
 */
export function l4Check(src: Uint8Array, dst: Uint8Array, protocol: number, segment: Uint8Array): number {
  return internetChecksum(segment, pseudoHeaderSum(src, dst, protocol, segment.length));
}
