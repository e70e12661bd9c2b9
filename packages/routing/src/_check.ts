// Input checks shared by routes.ts and rules.ts: typed errors that name the
// field, before anything is sent to the kernel.
import { type IpPrefix, parseCidr } from "@dp/core";
import { RT_TABLE } from "@dp/core/internal";
import { formatAddress } from "./_text.ts";

/** Route table names. */
const TABLES: Readonly<Record<string, number>> = {
  main: RT_TABLE.MAIN,
  local: RT_TABLE.LOCAL,
  default: RT_TABLE.DEFAULT,
};

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
    throw new TypeError(
      `Invalid ${what}: expected an object, got ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v}`,
    );
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
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`Invalid ${what} ${v}: must be an integer from ${min} to ${max}`);
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
      throw new TypeError(
        `Invalid ${what} ${quote(v)}: use a number or one of ${Object.keys(names).map(quote).join(", ")}`,
      );
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

/** The largest interface index: the kernel's `ifindex` is a signed 32-bit integer. */
export const IFINDEX_MAX = 0x7fff_ffff;
/** The longest interface name in bytes (`IFNAMSIZ` less its NUL). */
export const IFNAME_MAX = 15;
/** The longest alternative interface name in bytes (`ALTIFNAMSIZ` less its NUL). */
export const ALTNAME_MAX = 127;

const utf8 = new TextEncoder();

/**
 * Checks an interface index before it reaches the kernel, which reads it
 * as a signed 32-bit integer: a larger number would wrap and name another
 * link.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns `v`.
 * @throws {TypeError} When `v` is not an integer.
 * @throws {RangeError} When `v` is not from 1 to 2³¹−1.
 */
export function checkLinkIndex(v: unknown, what: string): number {
  if (typeof v !== "number") throw new TypeError(`Invalid ${what}: expected an interface index, got ${typeOf(v)}`);
  if (!Number.isInteger(v)) throw new TypeError(`Invalid ${what} ${v}: an interface index is an integer`);
  if (v < 1 || v > IFINDEX_MAX)
    throw new RangeError(`Invalid ${what} ${v}: an interface index is from 1 to ${IFINDEX_MAX}`);
  return v;
}

/**
 * How a name is used: `"lookup"` names an existing link (its name or an
 * alternative name, up to 127 bytes), `"new"` is given to a link (15 bytes,
 * no `%`, which the kernel would expand into a number), `"match"` is
 * compared with link names by the kernel (a rule's `iif`/`oif`: 15 bytes).
 */
export type LinkNameUse = "lookup" | "new" | "match";

/**
 * Checks an interface name before it reaches the kernel: the kernel stops
 * at a NUL (`"v0\u0000x"` would name `v0`), expands `%d` in a new name, and
 * refuses empty names, `"."`, `".."`, whitespace, `/` and `:`.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @param use How the name is used.
 * @returns `v`.
 * @throws {TypeError} When `v` is not a string.
 * @throws {RangeError} When `v` is empty, too long (in UTF-8 bytes) or has a character the kernel would misread.
 */
export function checkLinkName(v: unknown, what: string, use: LinkNameUse = "lookup"): string {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an interface name, got ${typeOf(v)}`);
  const max = use === "lookup" ? ALTNAME_MAX : IFNAME_MAX;
  const bytes = utf8.encode(v).length;
  if (bytes === 0 || bytes > max)
    throw new RangeError(`Invalid ${what} ${quote(v)}: an interface name is 1-${max} bytes, this one ${bytes}`);
  if (v.includes("\0"))
    throw new RangeError(
      `Invalid ${what} ${quote(v)}: an interface name cannot contain NUL (the kernel would stop there)`,
    );
  if (/[\s/:]/.test(v) || v === "." || v === "..") {
    throw new RangeError(
      `Invalid ${what} ${quote(v)}: an interface name has no whitespace, "/" or ":", and is not "." or ".."`,
    );
  }
  if (use === "new" && v.includes("%")) {
    throw new RangeError(
      `Invalid ${what} ${quote(v)}: a new interface name cannot contain "%" (the kernel would expand "%d" into a number)`,
    );
  }
  return v;
}

/**
 * Checks a link given by name or index ({@link checkLinkName} or
 * {@link checkLinkIndex}).
 *
 * @param v The value.
 * @param what The field, for errors.
 * @param use How a name is used.
 * @returns `v`.
 * @throws {TypeError} When `v` is neither a string nor an integer.
 * @throws {RangeError} When the name or index is out of range.
 */
export function checkLinkRef(v: unknown, what: string, use: LinkNameUse = "lookup"): string | number {
  if (typeof v === "number") return checkLinkIndex(v, what);
  if (typeof v === "string") return checkLinkName(v, what, use);
  throw new TypeError(`Invalid ${what}: expected an interface name or index, got ${typeOf(v)}`);
}

function typeOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : typeof v;
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
      for (let j = len >> 3; j < masked.length; j++)
        masked[j] = j === len >> 3 ? (masked[j] as number) & ((0xff00 >> (len & 7)) & 0xff) : 0;
      throw new SyntaxError(
        `Invalid ${what} ${quote(v)}: host bits are set (the prefix is "${formatAddress(masked)}/${len}")`,
      );
    }
  }
  return p;
}

/**
 * A netlink attribute dp does not decode, kept as the kernel sent it: a
 * listing never silently drops what it cannot read, and passing the
 * attribute back sends it unchanged.
 */
export interface RawAttribute {
  /** The attribute type, with its `NLA_F_NESTED` and `NLA_F_NET_BYTEORDER` bits. */
  readonly type: number;
  /** The payload, without the attribute header. */
  readonly data: Uint8Array;
}

/** Routing realms (`FRA_FLOW`, `ip rule ... realms FROM/TO`): 16 bits each. */
export interface Realms {
  /** The source realm (0 when only a destination realm was given). */
  readonly from: number;
  /** The destination realm. */
  readonly to: number;
}

/**
 * Checks raw attributes to send as they are.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns The attributes.
 * @throws {TypeError} When `v` is not an array of `{ type, data }`.
 * @throws {RangeError} When a type or length is out of range.
 */
export function rawAttributes(v: unknown, what: string): readonly RawAttribute[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v)) throw new TypeError(`Invalid ${what}: expected an array of { type, data }`);
  return (v as readonly unknown[]).map((a, i) => {
    checkObject(a, `${what}[${i}]`);
    const attr = a as RawAttribute;
    const type = checkInteger(attr.type, `${what}[${i}].type`, 1, 0xffff);
    if (!(attr.data instanceof Uint8Array)) throw new TypeError(`Invalid ${what}[${i}].data: expected a Uint8Array`);
    if (attr.data.length > 0xffff - 4)
      throw new RangeError(`Invalid ${what}[${i}].data: ${attr.data.length} bytes do not fit an attribute`);
    return { type, data: attr.data };
  });
}
