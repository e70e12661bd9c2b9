/**
 * IP protocol numbers of policy entries; `ANY` (0) is an entry for every
 * protocol.
 *
 * @example Protocol numbers
 * ```ts
 * import assert from "node:assert/strict";
 * import { IP_PROTOCOLS } from "@dp/datapath";
 *
 * assert.equal(IP_PROTOCOLS.TCP, 6);
 * assert.equal(IP_PROTOCOLS.ICMPv6, 58);
 * ```
 */
export const IP_PROTOCOLS: {
  /** Every protocol. */
  readonly ANY: 0;
  /** `IPPROTO_ICMP`. */
  readonly ICMP: 1;
  /** `IPPROTO_TCP`. */
  readonly TCP: 6;
  /** `IPPROTO_UDP`. */
  readonly UDP: 17;
  /** `IPPROTO_ICMPV6`. */
  readonly ICMPv6: 58;
  /** `IPPROTO_SCTP`. */
  readonly SCTP: 132;
} = Object.freeze({ ANY: 0, ICMP: 1, TCP: 6, UDP: 17, ICMPv6: 58, SCTP: 132 } as const);

/**
 * One entry of an endpoint's policy map, in the layout the datapath
 * looks up: the key is (`prefixLength`, `identity`, `egress`, `protocol`,
 * `port`), the value (`deny`, `proxyPort`, `ruleCookie`).
 *
 * `prefixLength` counts the key bits from `identity` on: 40 for every
 * protocol (then `protocol` and `port` are 0), 48 for every port of
 * `protocol` (`port` 0), and 48 + b for the aligned block of 2^(16-b)
 * ports starting at `port`; 64 is one port. For ICMP/ICMPv6 the port is
 * the ICMP type.
 *
 * @example An entry allowing TCP 80 from identity 1000
 * ```ts
 * import assert from "node:assert/strict";
 * import { lookupPolicy, type PolicyEntry } from "@dp/datapath";
 *
 * const entry: PolicyEntry = {
 *   identity: 1000, egress: false, protocol: 6, port: 80, prefixLength: 64,
 *   deny: false, proxyPort: 0, ruleCookie: 1,
 * };
 * assert.equal(lookupPolicy([entry], { identity: 1000, egress: false, protocol: 6, port: 80 }).verdict, "allow");
 * ```
 */
export interface PolicyEntry {
  /** The remote identity; 0 for any identity. */
  readonly identity: number;
  /** `false` for ingress (the remote is the source), `true` for egress (the remote is the destination). */
  readonly egress: boolean;
  /** The IP protocol; 0 for any (with `prefixLength` 40). */
  readonly protocol: number;
  /** The first port (or ICMP type) of the block; 0 when the block is every port. */
  readonly port: number;
  /** The LPM prefix length: 40, or 48 to 64. */
  readonly prefixLength: number;
  /** A deny entry: matching traffic is dropped whatever allows it. */
  readonly deny: boolean;
  /** The L7 proxy port to redirect to; 0 for none. */
  readonly proxyPort: number;
  /** The rule section that made the entry (see `PolicyEngine.ruleOfCookie`); 0 for none. */
  readonly ruleCookie: number;
}

/**
 * An aligned block of ports: `2^(16 - bits)` ports from `port`.
 *
 * @example The entry prefix length of a block
 * ```ts
 * import assert from "node:assert/strict";
 * import { type PortBlock, splitPortRange } from "@dp/datapath";
 *
 * const [block] = splitPortRange(1024, 2047) as [PortBlock];
 * assert.deepEqual(block, { port: 1024, bits: 6 });
 * assert.equal(48 + block.bits, 54); // the entry's prefixLength
 * ```
 */
export interface PortBlock {
  /** The first port, a multiple of the block size. */
  readonly port: number;
  /** The number of leading port bits that count (0-16): 16 is a single port. */
  readonly bits: number;
}

/**
 * Splits an inclusive port range into the fewest aligned power-of-two
 * blocks, the form an LPM trie can hold.
 *
 * @param first The first port (0-65535).
 * @param last The last port (`first`-65535).
 * @returns The blocks in port order.
 * @throws {RangeError} When the range is not within 0-65535 or `last < first`.
 * @example 8000-8080
 * ```ts
 * import assert from "node:assert/strict";
 * import { splitPortRange } from "@dp/datapath";
 *
 * assert.deepEqual(splitPortRange(8000, 8080), [
 *   { port: 8000, bits: 10 }, // 8000-8063
 *   { port: 8064, bits: 12 }, // 8064-8079
 *   { port: 8080, bits: 16 }, // 8080
 * ]);
 * assert.deepEqual(splitPortRange(0, 65535), [{ port: 0, bits: 0 }]);
 * ```
 */
export function splitPortRange(first: number, last: number): PortBlock[] {
  if (!Number.isInteger(first) || !Number.isInteger(last) || first < 0 || last > 65535 || last < first) {
    throw new RangeError(`Invalid port range ${String(first)}-${String(last)}: must be within 0-65535, first <= last`);
  }
  const out: PortBlock[] = [];
  let at = first;
  while (at <= last) {
    let size = 1;
    let bits = 16;
    // Grow while `at` stays aligned and the block stays inside the range.
    while (bits > 0 && at % (size * 2) === 0 && at + size * 2 - 1 <= last) {
      size *= 2;
      bits--;
    }
    out.push({ port: at, bits });
    at += size;
  }
  return out;
}
