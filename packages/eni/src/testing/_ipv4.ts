// IPv4 arithmetic for the fake's address accounting.

/** An IPv4 CIDR as numbers. */
export interface Cidr4 {
  /** The network address. */
  readonly base: number;
  /** The prefix length. */
  readonly bits: number;
  /** How many addresses it spans. */
  readonly size: number;
}

/** Parses dotted-quad IPv4 text; `undefined` when malformed. */
export function ipv4ToInt(text: string): number | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** Formats a 32-bit number as dotted-quad text. */
export function intToIpv4(n: number): string {
  return `${Math.floor(n / 2 ** 24) % 256}.${Math.floor(n / 2 ** 16) % 256}.${Math.floor(n / 2 ** 8) % 256}.${n % 256}`;
}

/** Parses `a.b.c.d/n` with no host bits set; `undefined` when malformed. */
export function parseCidr4(text: string): Cidr4 | undefined {
  const [addr, len, extra] = text.split("/");
  if (addr === undefined || len === undefined || extra !== undefined || !/^\d{1,2}$/.test(len)) return undefined;
  const base = ipv4ToInt(addr);
  const bits = Number(len);
  if (base === undefined || bits > 32) return undefined;
  const size = 2 ** (32 - bits);
  if (base % size !== 0) return undefined;
  return { base, bits, size };
}

/** Whether `inner` lies within `outer`. */
export function cidrContains(outer: Cidr4, inner: Cidr4): boolean {
  return inner.base >= outer.base && inner.base + inner.size <= outer.base + outer.size;
}
