// The agent's IPAM: addresses for endpoints that came without ones, from
// the pod ranges (`ipv4-range`, `ipv6-range`), skipping the network
// address, the IPv4 broadcast address, the router and addresses in use.
import { formatIp, parseCidr, parseIp } from "@dp/core";

interface Pool {
  readonly family: 4 | 6;
  readonly range: string;
  readonly base: bigint;
  readonly size: bigint;
  readonly bits: number;
  readonly used: Set<bigint>;
  next: bigint;
}

function toBig(bytes: Uint8Array): bigint {
  let n = 0n;
  for (const b of bytes) n = (n << 8n) | BigInt(b);
  return n;
}

function fromBig(n: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = length - 1; i >= 0; i--) {
    out[i] = Number(n & 0xffn);
    n >>= 8n;
  }
  return out;
}

function pool(range: string, family: 4 | 6): Pool {
  const p = parseCidr(range);
  if (p.family !== family)
    throw new TypeError(`Invalid IPv${family} range ${JSON.stringify(range)}: not an IPv${family} prefix`);
  const bits = family === 4 ? 32 : 128;
  const size = 1n << BigInt(bits - p.prefixLength);
  const base = toBig(p.bytes) & ~(size - 1n);
  return { family, range, base, size, bits, used: new Set(), next: 1n };
}

/**
 * Hands out endpoint addresses from the pod ranges.
 *
 * @internal
 */
export class Ipam {
  readonly #pools = new Map<4 | 6, Pool>();

  /**
   * Creates the pools.
   *
   * @param ranges The IPv4 and IPv6 pod ranges (a family without a range allocates nothing).
   * @param reserved Addresses never handed out (the router's).
   * @throws {SyntaxError} When a range is not a CIDR prefix.
   * @throws {TypeError} When a range has the wrong family.
   */
  constructor(
    ranges: { readonly ipv4?: string | undefined; readonly ipv6?: string | undefined },
    reserved: readonly string[] = [],
  ) {
    if (ranges.ipv4 !== undefined) this.#pools.set(4, pool(ranges.ipv4, 4));
    if (ranges.ipv6 !== undefined) this.#pools.set(6, pool(ranges.ipv6, 6));
    for (const ip of reserved) this.claim(ip);
  }

  #offset(ip: string): { pool: Pool; offset: bigint } | undefined {
    const a = parseIp(ip);
    const p = this.#pools.get(a.family);
    if (p === undefined) return undefined;
    const offset = toBig(a.bytes) - p.base;
    return offset >= 0n && offset < p.size ? { pool: p, offset } : undefined;
  }

  /**
   * Whether the family has a range.
   *
   * @param family 4 or 6.
   * @returns Whether addresses of that family can be allocated.
   */
  has(family: 4 | 6): boolean {
    return this.#pools.has(family);
  }

  /**
   * Marks an address as in use (an endpoint restored after a restart, or one given in a request); addresses outside the ranges are ignored.
   *
   * @param ip The address.
   * @throws {SyntaxError} When it is not an address.
   */
  claim(ip: string): void {
    const at = this.#offset(ip);
    if (at !== undefined) at.pool.used.add(at.offset);
  }

  /**
   * Whether an address is taken.
   *
   * @param ip The address.
   * @returns Whether it was claimed or allocated.
   */
  inUse(ip: string): boolean {
    const at = this.#offset(ip);
    return at !== undefined && at.pool.used.has(at.offset);
  }

  /**
   * Frees an address.
   *
   * @param ip The address.
   */
  release(ip: string): void {
    const at = this.#offset(ip);
    if (at !== undefined) at.pool.used.delete(at.offset);
  }

  /**
   * Allocates the next free address after the last one handed out (so a freed address is not reused at once).
   *
   * @param family 4 or 6.
   * @returns The address.
   * @throws {RangeError} When the family has no range or the range is full.
   */
  allocate(family: 4 | 6): string {
    const p = this.#pools.get(family);
    if (p === undefined)
      throw new RangeError(`Cannot allocate an IPv${family} address: no IPv${family} range is configured`);
    // Offset 0 is the network address; for IPv4 the last is the broadcast address.
    const last = p.family === 4 && p.size > 2n ? p.size - 2n : p.size - 1n;
    const span = last;
    for (let i = 0n; i < span; i++) {
      const offset = ((p.next - 1n + i) % span) + 1n;
      if (p.used.has(offset)) continue;
      p.used.add(offset);
      p.next = offset + 1n > last ? 1n : offset + 1n;
      return formatIp(fromBig(p.base + offset, p.family === 4 ? 4 : 16));
    }
    throw new RangeError(`Cannot allocate an IPv${family} address: ${p.range} is full (${p.used.size} in use)`);
  }
}
