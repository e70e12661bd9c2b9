// Prefix helpers shared by CIDR identities and CIDR policy rules.
import { formatIp, type IpFamily, parseCidr } from "@dp/core";

/** A checked prefix. */
export interface Prefix {
  readonly family: IpFamily;
  readonly bytes: Uint8Array;
  readonly prefixLength: number;
  /** Canonical text: `10.0.0.0/8`, `fd00::/8`. */
  readonly text: string;
}

/**
 * Clears the bits after `len`.
 *
 * @param bytes The address.
 * @param len The prefix length.
 * @returns A masked copy.
 */
export function masked(bytes: Uint8Array, len: number): Uint8Array {
  const out = new Uint8Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) {
    const bits = Math.max(0, Math.min(8, len - i * 8));
    out[i] = (bytes[i] as number) & ((0xff << (8 - bits)) & 0xff);
  }
  return out;
}

/**
 * Parses a CIDR prefix for policy and identities. A bare address is a
 * host prefix. Host bits must be zero: `10.0.0.1/8` is an error that
 * names the prefix meant (`10.0.0.0/8`), rather than silently widening.
 *
 * @param text The prefix.
 * @returns The prefix with its canonical text.
 * @throws {SyntaxError} When the text is not a prefix or has host bits set.
 */
export function parsePrefix(text: string): Prefix {
  const p = parseCidr(text);
  const m = masked(p.bytes, p.prefixLength);
  const canonical = `${formatIp(m)}/${p.prefixLength}`;
  if (!m.every((b, i) => b === p.bytes[i])) {
    throw new SyntaxError(
      `Invalid CIDR ${JSON.stringify(text)}: host bits are set (the prefix is ${JSON.stringify(canonical)})`,
    );
  }
  return { family: p.family, bytes: m, prefixLength: p.prefixLength, text: canonical };
}

/**
 * Whether `outer` contains `inner` (same family, shorter or equal prefix, same leading bits).
 *
 * @param outer The wider prefix.
 * @param inner The narrower prefix.
 * @returns `true` when contained.
 */
export function prefixContains(outer: Prefix, inner: Prefix): boolean {
  if (outer.family !== inner.family || outer.prefixLength > inner.prefixLength) return false;
  const m = masked(inner.bytes, outer.prefixLength);
  return m.every((b, i) => b === outer.bytes[i]);
}

/**
 * The `cidr:` label of a prefix. IPv6 writes `-` for `:` (a label key
 * cannot hold `:`), with a `0` added where the text would start or end
 * with `-`, as Cilium does.
 *
 * @param p The prefix.
 * @returns Such as `cidr:10.0.0.0/8` or `cidr:fd00--0/8`.
 */
export function cidrLabel(p: { family: IpFamily; bytes: Uint8Array; prefixLength: number }): string {
  let addr = formatIp(p.bytes);
  if (p.family === 6) {
    addr = addr.replaceAll(":", "-");
    if (addr.startsWith("-")) addr = `0${addr}`;
    if (addr.endsWith("-")) addr = `${addr}0`;
  }
  return `cidr:${addr}/${p.prefixLength}`;
}
