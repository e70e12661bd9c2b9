import { IP_PROTOCOLS } from "../policy/entry.ts";
import { type AddressMatcher, addressMatches, parseAddressMatcher } from "./_addr.ts";
import type { ConntrackEntry, ConntrackScope } from "./entry.ts";

/** A protocol by name, as policy rules name them. */
export type ConntrackProtocolName = "TCP" | "UDP" | "SCTP" | "ICMP" | "ICMPv6";

/**
 * Which conntrack entries to list or flush. Every field given must match
 * (AND); an empty filter matches everything. Addresses are IPs or CIDR
 * prefixes (`10.0.1.0/24`, `fd00::/64`).
 */
export interface ConntrackFilter {
  /**
   * Either side's address is in this address or prefix.
   *
   * @default any
   */
  readonly address?: string;
  /**
   * The initiator's address is in this address or prefix.
   *
   * @default any
   */
  readonly saddr?: string;
  /**
   * The responder's address is in this address or prefix.
   *
   * @default any
   */
  readonly daddr?: string;
  /**
   * Either side's port.
   *
   * @default any
   */
  readonly port?: number;
  /**
   * The initiator's port.
   *
   * @default any
   */
  readonly sport?: number;
  /**
   * The responder's port.
   *
   * @default any
   */
  readonly dport?: number;
  /**
   * The L4 protocol, by number or name.
   *
   * @default any
   */
  readonly protocol?: number | ConntrackProtocolName;
  /**
   * The policy scope: the initiator's egress or the responder's ingress entry.
   *
   * @default both
   */
  readonly scope?: ConntrackScope;
  /**
   * The address family.
   *
   * @default both
   */
  readonly family?: 4 | 6;
}

/**
 * The tuple fields a filter looks at, with 16-byte addresses.
 *
 * @internal
 */
export interface FilterTuple {
  readonly saddr: Uint8Array;
  readonly daddr: Uint8Array;
  readonly sport: number;
  readonly dport: number;
  readonly nexthdr: number;
  readonly family: number;
  readonly scope: number;
}

function port(value: unknown, field: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "number")
    throw new TypeError(`Invalid conntrack filter "${field}": expected a port number, got ${typeof value}`);
  if (!Number.isInteger(value) || value < 0 || value > 65535)
    throw new RangeError(`Invalid conntrack filter "${field}": expected a port from 0 to 65535, got ${value}`);
  return value;
}

function protocol(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "number") {
    if (!Number.isInteger(value) || value < 0 || value > 255)
      throw new RangeError(
        `Invalid conntrack filter "protocol": expected a protocol number from 0 to 255, got ${value}`,
      );
    return value;
  }
  const names: readonly ConntrackProtocolName[] = ["TCP", "UDP", "SCTP", "ICMP", "ICMPv6"];
  if (typeof value !== "string" || !names.includes(value as ConntrackProtocolName)) {
    throw new TypeError(
      `Invalid conntrack filter "protocol": expected a number or one of ${names.join(", ")}, got ${JSON.stringify(value)}`,
    );
  }
  return IP_PROTOCOLS[value as ConntrackProtocolName];
}

function address(value: unknown, field: string): AddressMatcher | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string")
    throw new TypeError(`Invalid conntrack filter "${field}": expected an address or prefix, got ${typeof value}`);
  return parseAddressMatcher(value, `conntrack filter "${field}"`);
}

/**
 * Checks a filter and turns it into a predicate over tuples.
 *
 * @internal
 */
export function compileConntrackFilter(filter: ConntrackFilter = {}): (t: FilterTuple) => boolean {
  if (typeof filter !== "object" || filter === null)
    throw new TypeError(`Invalid conntrack filter: expected an object, got ${String(filter)}`);
  const any = address(filter.address, "address");
  const src = address(filter.saddr, "saddr");
  const dst = address(filter.daddr, "daddr");
  const either = port(filter.port, "port");
  const sport = port(filter.sport, "sport");
  const dport = port(filter.dport, "dport");
  const proto = protocol(filter.protocol);
  const scope = filter.scope;
  if (scope !== undefined && scope !== "ingress" && scope !== "egress") {
    throw new TypeError(
      `Invalid conntrack filter "scope": expected "ingress" or "egress", got ${JSON.stringify(scope)}`,
    );
  }
  const scopeNumber = scope === undefined ? undefined : scope === "ingress" ? 1 : 2;
  const family = filter.family;
  if (family !== undefined && family !== 4 && family !== 6) {
    throw new TypeError(`Invalid conntrack filter "family": expected 4 or 6, got ${JSON.stringify(family)}`);
  }
  return (t) =>
    (family === undefined || t.family === family) &&
    (proto === undefined || t.nexthdr === proto) &&
    (scopeNumber === undefined || t.scope === scopeNumber) &&
    (sport === undefined || t.sport === sport) &&
    (dport === undefined || t.dport === dport) &&
    (either === undefined || t.sport === either || t.dport === either) &&
    (src === undefined || addressMatches(src, t.saddr, t.family)) &&
    (dst === undefined || addressMatches(dst, t.daddr, t.family)) &&
    (any === undefined || addressMatches(any, t.saddr, t.family) || addressMatches(any, t.daddr, t.family));
}

/**
 * Tells whether a decoded conntrack entry matches a filter.
 *
 * @param entry The entry.
 * @param filter The filter; `{}` matches everything.
 * @returns `true` when every field of the filter matches.
 * @throws {TypeError} When a filter field has the wrong type.
 * @throws {RangeError} When a port or protocol number is out of range.
 * @throws {SyntaxError} When an address or prefix cannot be parsed.
 * @example Connections to port 80 of a subnet
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeConntrackEntry, matchesConntrackFilter } from "@dp/datapath";
 *
 * const key = new Uint8Array(40);
 * key.set([0xff, 0xff, 10, 0, 0, 1], 10);
 * key.set([0xff, 0xff, 10, 0, 1, 2], 26);
 * key.set([0x9c, 0x40, 0, 80, 6, 4, 2], 32); // 40000 → 80, TCP, IPv4, egress
 * const entry = decodeConntrackEntry(key, new Uint8Array(64));
 * assert.equal(matchesConntrackFilter(entry, { daddr: "10.0.1.0/24", dport: 80, protocol: "TCP" }), true);
 * assert.equal(matchesConntrackFilter(entry, { address: "10.0.2.0/24" }), false);
 * ```
 */
export function matchesConntrackFilter(entry: ConntrackEntry, filter: ConntrackFilter): boolean {
  const m = compileConntrackFilter(filter);
  const bytes = (text: string): Uint8Array => parseAddressMatcher(text, "entry address").bytes;
  return m({
    saddr: bytes(entry.saddr),
    daddr: bytes(entry.daddr),
    sport: entry.sport,
    dport: entry.dport,
    nexthdr: entry.protocol,
    family: entry.family,
    scope: entry.scope === "ingress" ? 1 : 2,
  });
}
