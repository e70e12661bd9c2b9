// Input checks shared by routes.ts and rules.ts: typed errors that name the
// field, before anything is sent to the kernel.
import { formatIp, type IpPrefix, parseCidr } from "@dp/core";
import { RT_TABLE } from "@dp/core/internal";

/** Route table names. */
const TABLES: Readonly<Record<string, number>> = { main: RT_TABLE.MAIN, local: RT_TABLE.LOCAL, default: RT_TABLE.DEFAULT };

/** Route protocol names (`RTPROT_*`, include/uapi/linux/rtnetlink.h). */
const PROTOCOLS: Readonly<Record<string, number>> = {
  unspec: 0,
  redirect: 1,
  kernel: 2,
  boot: 3,
  static: 4,
  gated: 8,
  ra: 9,
  mrt: 10,
  zebra: 11,
  bird: 12,
  dnrouted: 13,
  xorp: 14,
  ntk: 15,
  dhcp: 16,
  mrouted: 17,
  keepalived: 18,
  babel: 42,
  openr: 99,
  bgp: 186,
  isis: 187,
  ospf: 188,
  rip: 189,
  eigrp: 192,
};

/**
 * Quotes a value for an error message.
 *
 * @param v The value.
 * @returns Its JSON form.
 */
export function quote(v: unknown): string {
  return JSON.stringify(v) ?? String(v);
}

/** The part of an error message after its first ": " (the cause without the "Cannot ..." prefix). */
function detail(err: unknown): string {
  const m = err instanceof Error ? err.message : String(err);
  const i = m.indexOf(": ");
  return i < 0 ? m : m.slice(i + 2);
}

/**
 * Throws a TypeError unless `v` is a plain object.
 *
 * @param v The value.
 * @param what What it is, for errors.
 * @throws {TypeError} When `v` is not an object.
 */
export function checkObject(v: unknown, what: string): void {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TypeError(`Invalid ${what}: expected an object, got ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v}`);
  }
}

/**
 * Checks an integer field.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @param min The smallest allowed value.
 * @param max The largest allowed value.
 * @returns `v`.
 * @throws {TypeError} When `v` is not a number.
 * @throws {RangeError} When `v` is not an integer from `min` to `max`.
 */
export function checkInteger(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== "number") throw new TypeError(`Invalid ${what}: expected a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max) throw new RangeError(`Invalid ${what} ${v}: must be an integer from ${min} to ${max}`);
  return v;
}

/**
 * Checks an optional boolean field.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns `v`, or false when undefined.
 * @throws {TypeError} When `v` is not a boolean.
 */
export function checkBoolean(v: unknown, what: string): boolean {
  if (v === undefined) return false;
  if (typeof v !== "boolean") throw new TypeError(`Invalid ${what}: expected a boolean, got ${typeof v}`);
  return v;
}

/** Resolves a name from `names` or checks a number from 0 to `max`. */
export function named(v: unknown, what: string, names: Readonly<Record<string, number>>, max: number): number {
  if (typeof v === "string") {
    const n = names[v];
    if (n === undefined || !Object.hasOwn(names, v)) {
      throw new TypeError(`Invalid ${what} ${quote(v)}: use a number or one of ${Object.keys(names).map(quote).join(", ")}`);
    }
    return n;
  }
  return checkInteger(v, what, 0, max);
}

/**
 * Resolves a table name or number.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns The table number, 1 to 2³²−1.
 * @throws {TypeError} For an unknown name or a non-number.
 * @throws {RangeError} For 0 (unspecified) or a number out of range.
 */
export function tableNumber(v: unknown, what: string): number {
  if (typeof v === "string") return named(v, what, TABLES, 0);
  return checkInteger(v, what, 1, 0xffffffff);
}

/**
 * Resolves a protocol name or number.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns The protocol number, 0-255.
 * @throws {TypeError} For an unknown name or a non-number.
 * @throws {RangeError} For a number out of range.
 */
export function protocolNumber(v: unknown, what: string): number {
  return named(v, what, PROTOCOLS, 255);
}

/**
 * Parses a prefix that must not have host bits set.
 *
 * @param v The value, such as `"10.0.0.0/24"` or a bare address (a host prefix).
 * @param what The field, for errors.
 * @returns The family, the address bytes and the prefix length.
 * @throws {TypeError} When `v` is not a string.
 * @throws {SyntaxError} When `v` is not a prefix or has host bits set.
 */
export function parsePrefix(v: unknown, what: string): IpPrefix {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected a prefix string, got ${typeof v}`);
  let p: IpPrefix;
  try {
    p = parseCidr(v);
  } catch (err) {
    throw new SyntaxError(`Invalid ${what} ${quote(v)}: ${detail(err)}`, { cause: err });
  }
  const bytes = p.bytes;
  const len = p.prefixLength;
  for (let i = len >> 3; i < bytes.length; i++) {
    const keep = i === len >> 3 ? (0xff00 >> (len & 7)) & 0xff : 0;
    if (((bytes[i] as number) & ~keep & 0xff) !== 0) {
      const masked = bytes.slice();
      for (let j = len >> 3; j < masked.length; j++) masked[j] = j === len >> 3 ? (masked[j] as number) & ((0xff00 >> (len & 7)) & 0xff) : 0;
      throw new SyntaxError(`Invalid ${what} ${quote(v)}: host bits are set (the prefix is "${formatIp(masked)}/${len}")`);
    }
  }
  return p;
}
