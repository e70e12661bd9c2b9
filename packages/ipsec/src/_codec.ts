// The structs shared by xfrm states and policies (include/uapi/linux/xfrm.h):
// checks that name the field, encoders that write what iproute2's `ip xfrm`
// writes for the same command, and decoders for the kernel's replies.
import { formatIp, type IpFamily, type NetlinkWriter } from "@dp/core";
import { parseIpv4Into, parseIpv6Into } from "@dp/core/internal";
import {
  AF_INET,
  AF_INET6,
  AF_UNSPEC,
  ID,
  IPPROTO_XFRM,
  SEL,
  SIZEOF,
  TMPL,
  XFRM_INF,
  XFRM_MODE,
  XFRMA,
} from "./_uapi.ts";
import type {
  XfrmLifetime,
  XfrmLifetimeCurrent,
  XfrmMark,
  XfrmMode,
  XfrmProto,
  XfrmSelector,
  XfrmTemplate,
} from "./types.ts";

// ---------------------------------------------------------------------------
// Generic checks

/**
 * Quotes a value for an error message.
 *
 * @param v The value.
 * @returns Its JSON form (bigints as decimal).
 */
export function quote(v: unknown): string {
  if (typeof v === "bigint") return `${v}n`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

function typeOf(v: unknown): string {
  return v === null ? "null" : Array.isArray(v) ? "an array" : v instanceof Uint8Array ? "a Uint8Array" : typeof v;
}

/**
 * Throws a TypeError unless `v` is a plain object.
 *
 * @param v The value.
 * @param what What it is, for errors (`"xfrm policy"`).
 * @throws {TypeError} When `v` is not an object.
 */
export function checkObject(v: unknown, what: string): asserts v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v) || v instanceof Uint8Array)
    throw new TypeError(`Invalid ${what}: expected an object, got ${typeOf(v)}`);
}

/**
 * Throws a TypeError naming the first field of `v` not in `allowed` (a
 * misspelt option would otherwise be ignored silently).
 *
 * @param v The object.
 * @param allowed The field names it may have.
 * @param what What it is, for errors.
 * @throws {TypeError} For an unknown field.
 */
export function checkKeys(v: object, allowed: ReadonlySet<string>, what: string): void {
  for (const k in v) {
    if (!allowed.has(k) && Object.hasOwn(v, k)) {
      throw new TypeError(`Invalid ${what}: unknown field ${quote(k)} (known: ${[...allowed].join(", ")})`);
    }
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
  if (typeof v !== "number") throw new TypeError(`Invalid ${what}: expected a number, got ${typeOf(v)}`);
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`Invalid ${what} ${v}: must be an integer from ${min} to ${max}`);
  return v;
}

/**
 * Checks an optional integer field.
 *
 * @param v The value or undefined.
 * @param what The field, for errors.
 * @param min The smallest allowed value.
 * @param max The largest allowed value.
 * @param dflt The value when `v` is undefined.
 * @returns `v` or `dflt`.
 * @throws {TypeError} When `v` is not a number.
 * @throws {RangeError} When `v` is out of range.
 */
export function optionalInteger(v: unknown, what: string, min: number, max: number, dflt: number): number {
  return v === undefined ? dflt : checkInteger(v, what, min, max);
}

/**
 * Checks an unsigned 32-bit field.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns `v`.
 * @throws {TypeError} When `v` is not a number.
 * @throws {RangeError} When `v` is not from 0 to 2³²−1.
 */
export function checkU32(v: unknown, what: string): number {
  return checkInteger(v, what, 0, 0xffff_ffff);
}

/**
 * Checks a 64-bit unsigned field, given as a bigint (or a safe integer).
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns The value as a bigint.
 * @throws {TypeError} When `v` is neither a bigint nor a number.
 * @throws {RangeError} When `v` is negative, above 2⁶⁴−1 or not an integer.
 */
export function checkU64(v: unknown, what: string): bigint {
  if (typeof v === "number") {
    if (!Number.isSafeInteger(v) || v < 0)
      throw new RangeError(`Invalid ${what} ${v}: must be a non-negative integer (use a bigint above 2^53)`);
    return BigInt(v);
  }
  if (typeof v !== "bigint") throw new TypeError(`Invalid ${what}: expected a bigint, got ${typeOf(v)}`);
  if (v < 0n || v > XFRM_INF) throw new RangeError(`Invalid ${what} ${v}: must be from 0 to 2^64-1`);
  return v;
}

/**
 * Checks a field that takes one of a set of names.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @param names The names and their numbers.
 * @returns The number of the name.
 * @throws {TypeError} When `v` is not one of the names.
 */
export function checkEnum<T extends string>(v: unknown, what: string, names: Readonly<Record<T, number>>): number {
  if (typeof v !== "string" || !Object.hasOwn(names, v))
    throw new TypeError(`Invalid ${what} ${quote(v)}: use ${Object.keys(names).map(quote).join(", ")}`);
  return names[v as T];
}

/**
 * Checks an optional array field.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns The array (empty when undefined).
 * @throws {TypeError} When `v` is not an array.
 */
export function checkArray(v: unknown, what: string): readonly unknown[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new TypeError(`Invalid ${what}: expected an array, got ${typeOf(v)}`);
  return v as readonly unknown[];
}

// ---------------------------------------------------------------------------
// Families and addresses

/**
 * The kernel's address family of 4 or 6.
 *
 * @param family 4 or 6.
 * @returns `AF_INET` or `AF_INET6`.
 */
export function afOf(family: IpFamily): number {
  return family === 6 ? AF_INET6 : AF_INET;
}

/**
 * 4 or 6 from the kernel's address family.
 *
 * @param af `AF_INET` or `AF_INET6`.
 * @returns 4, 6, or undefined for another family.
 */
export function ipFamilyOf(af: number): IpFamily | undefined {
  return af === AF_INET ? 4 : af === AF_INET6 ? 6 : undefined;
}

/**
 * Checks an optional family field.
 *
 * @param v The value.
 * @param what The field, for errors.
 * @returns 4, 6 or undefined.
 * @throws {TypeError} When `v` is neither 4 nor 6.
 */
export function checkFamily(v: unknown, what: string): IpFamily | undefined {
  if (v === undefined) return undefined;
  if (v !== 4 && v !== 6) throw new TypeError(`Invalid ${what} ${quote(v)}: use 4 or 6`);
  return v;
}

/** A parsed address: its family and 16 bytes as `xfrm_address_t` holds them (IPv4 in the first 4). */
export interface XfrmAddress {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** 16 bytes, network order. */
  readonly bytes: Uint8Array;
}

/** A parsed prefix. */
export interface XfrmPrefix extends XfrmAddress {
  /** The prefix length. */
  readonly len: number;
}

/**
 * Recently parsed addresses: a batch of policies repeats its tunnel
 * endpoints and local prefix thousands of times. The bytes are never
 * written to after parsing.
 */
const parsedAddresses = new Map<string, XfrmAddress>();
const PARSED_ADDRESSES_MAX = 1024;

/** Parses `text[start, end)` into the 16 bytes of an `xfrm_address_t`; undefined when it is no address. */
function parseAddr(text: string, start: number, end: number): XfrmAddress | undefined {
  const sub = start === 0 && end === text.length ? text : text.slice(start, end);
  const known = parsedAddresses.get(sub);
  if (known !== undefined) return known;
  const a = parseAddrUncached(sub);
  if (a !== undefined) {
    if (parsedAddresses.size >= PARSED_ADDRESSES_MAX) parsedAddresses.clear();
    parsedAddresses.set(sub, a);
  }
  return a;
}

function parseAddrUncached(sub: string): XfrmAddress | undefined {
  const out = new Uint8Array(16);
  if (parseIpv4Into(sub, 0, sub.length, out, 0)) return { family: 4, bytes: out };
  if (sub.includes(":") && parseIpv6Into(sub, out)) return { family: 6, bytes: out };
  return undefined;
}

/**
 * Parses an address field.
 *
 * @param v The value, such as `"10.0.0.1"` or `"fd00::1"`.
 * @param what The field, for errors.
 * @returns The family and the 16 bytes of `xfrm_address_t`.
 * @throws {TypeError} When `v` is not a string.
 * @throws {SyntaxError} When `v` is not an address.
 */
export function parseAddress(v: unknown, what: string): XfrmAddress {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an address string, got ${typeOf(v)}`);
  if (v.includes("/")) throw new SyntaxError(`Invalid ${what} ${quote(v)}: expected an address, not a prefix`);
  const a = parseAddr(v, 0, v.length);
  if (a === undefined) throw new SyntaxError(`Invalid ${what} ${quote(v)}: not an IPv4 or IPv6 address`);
  return a;
}

/**
 * Parses a prefix field as iproute2's `get_prefix()` does: a bare address
 * is a host prefix, and host bits may be set (the kernel compares only the
 * first `len` bits, and reports the address as given).
 *
 * @param v The value, such as `"10.0.0.0/24"`.
 * @param what The field, for errors.
 * @returns The family, the 16 bytes and the length.
 * @throws {TypeError} When `v` is not a string.
 * @throws {SyntaxError} When `v` is not a prefix.
 * @throws {RangeError} When the length is longer than the address.
 */
export function parsePrefix(v: unknown, what: string): XfrmPrefix {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected a prefix string, got ${typeOf(v)}`);
  const slash = v.indexOf("/");
  const a = parseAddr(v, 0, slash < 0 ? v.length : slash);
  if (a === undefined) throw new SyntaxError(`Invalid ${what} ${quote(v)}: not an IPv4 or IPv6 prefix`);
  const max = a.family === 4 ? 32 : 128;
  let len = max;
  if (slash >= 0) {
    const text = v.slice(slash + 1);
    if (!/^\d{1,3}$/.test(text))
      throw new SyntaxError(`Invalid ${what} ${quote(v)}: the prefix length is not a number`);
    len = Number(text);
    if (len > max) throw new RangeError(`Invalid ${what} ${quote(v)}: an IPv${a.family} prefix is at most /${max}`);
  }
  return { family: a.family, bytes: a.bytes, len };
}

/**
 * Formats the first 4 or all 16 bytes of an `xfrm_address_t` the way
 * iproute2 prints it (IPv4-mapped and IPv4-compatible IPv6 in dotted form).
 *
 * @param bytes 16 bytes (or 4).
 * @param family 4 or 6.
 * @returns The text.
 */
export function formatAddress(bytes: Uint8Array, family: IpFamily): string {
  if (family === 4) return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
  const b = bytes.subarray(0, 16);
  for (let i = 0; i < 10; i++) if (b[i] !== 0) return formatIp(b);
  const w5 = ((b[10] as number) << 8) | (b[11] as number);
  const w6 = ((b[12] as number) << 8) | (b[13] as number);
  const dotted = `${b[12]}.${b[13]}.${b[14]}.${b[15]}`;
  if (w5 === 0xffff) return `::ffff:${dotted}`;
  if (w5 === 0 && w6 !== 0) return `::${dotted}`;
  return formatIp(b);
}

/**
 * Whether 16 address bytes are all zero (the unspecified address).
 *
 * @param bytes The bytes.
 * @param off Where they start.
 * @returns True when all zero.
 */
export function isZeroAddress(bytes: Uint8Array, off = 0): boolean {
  for (let i = off; i < off + 16; i++) if (bytes[i] !== 0) return false;
  return true;
}

// ---------------------------------------------------------------------------
// Protocols and modes

/** IPsec protocol names and numbers. */
export const PROTOS: Readonly<Record<XfrmProto, number>> = IPPROTO_XFRM;
const PROTO_NAMES = new Map<number, XfrmProto>(Object.entries(PROTOS).map(([k, v]) => [v, k as XfrmProto]));

/** Mode names and numbers. */
export const MODES: Readonly<Record<XfrmMode, number>> = {
  transport: XFRM_MODE.transport,
  tunnel: XFRM_MODE.tunnel,
  beet: XFRM_MODE.beet,
};
const MODE_NAMES = new Map<number, XfrmMode>(Object.entries(MODES).map(([k, v]) => [v, k as XfrmMode]));

/**
 * Checks an optional protocol field.
 *
 * @param v `"esp"`, `"ah"`, `"comp"`, a protocol number (0-255) or undefined.
 * @param what The field, for errors.
 * @returns The protocol number (50 when undefined).
 * @throws {TypeError} For another value.
 */
export function protoNumber(v: unknown, what: string): number {
  if (typeof v === "number") return checkInteger(v, what, 0, 0xff);
  return v === undefined ? PROTOS.esp : checkEnum(v, what, PROTOS);
}

/**
 * The name of an IPsec protocol number.
 *
 * @param n The number.
 * @returns The name; the number itself when dp has no name for it.
 */
export function protoName(n: number): XfrmProto | number {
  return PROTO_NAMES.get(n) ?? n;
}

/**
 * Checks an optional mode field.
 *
 * @param v `"transport"`, `"tunnel"`, `"beet"`, a mode number (0-255) or undefined.
 * @param what The field, for errors.
 * @returns The mode number (transport when undefined).
 * @throws {TypeError} For another value.
 */
export function modeNumber(v: unknown, what: string): number {
  if (typeof v === "number") return checkInteger(v, what, 0, 0xff);
  return v === undefined ? MODES.transport : checkEnum(v, what, MODES);
}

/**
 * The name of a mode number.
 *
 * @param n The number.
 * @returns The name; the number itself when dp has no name for it.
 */
export function modeName(n: number): XfrmMode | number {
  return MODE_NAMES.get(n) ?? n;
}

// ---------------------------------------------------------------------------
// Selector

/** A checked selector, ready to encode. */
export interface ParsedSelector {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** Destination address (16 bytes). */
  readonly dst: Uint8Array;
  /** Destination prefix length. */
  readonly dstLen: number;
  /** Source address (16 bytes). */
  readonly src: Uint8Array;
  /** Source prefix length. */
  readonly srcLen: number;
  /** IP protocol (0: any). */
  readonly proto: number;
  /** Source port or ICMP type. */
  readonly sport: number;
  /** 0xffff when `sport` counts, else 0. */
  readonly sportMask: number;
  /** Destination port or ICMP code. */
  readonly dport: number;
  /** 0xffff when `dport` counts, else 0. */
  readonly dportMask: number;
  /** Interface index (0: any). */
  readonly ifindex: number;
}

const SELECTOR_KEYS = new Set(["family", "src", "dst", "proto", "sport", "dport", "ifindex"]);
/** Protocols with ports: TCP, UDP, DCCP, SCTP, UDP-Lite and any (0), as iproute2 allows. */
const PORT_PROTOS = new Set([0, 6, 17, 33, 132, 136]);
/** Protocols with a type and code: ICMP, ICMPv6, Mobility Header. */
const ICMP_PROTOS = new Set([1, 58, 135]);
/** GRE: `sport` and `dport` carry the high and low 16 bits of the GRE key (iproute2's `proto gre key K`). */
const GRE_PROTO = 47;

/**
 * Checks a selector: the family is `family`, else that of `src` or `dst`,
 * else `defaultFamily`; `src` and `dst` must agree with it.
 *
 * @param v The selector.
 * @param what The field, for errors (`"xfrm policy selector"`).
 * @param defaultFamily The family when nothing names one.
 * @param lenient Accept ports with any protocol: for selectors the kernel
 *   reported, which may carry what dp does not check (they are only compared).
 * @returns The parsed selector.
 * @throws {TypeError} When a field has the wrong type or ports are given with a protocol that has none.
 * @throws {SyntaxError} When a prefix is malformed.
 * @throws {RangeError} When a number is out of range or the families disagree.
 */
export function parseSelector(v: unknown, what: string, defaultFamily: IpFamily = 4, lenient = false): ParsedSelector {
  if (v === undefined) v = {};
  checkObject(v, what);
  checkKeys(v, SELECTOR_KEYS, what);
  const sel = v as XfrmSelector;
  const src = sel.src === undefined ? undefined : parsePrefix(sel.src, `${what}.src`);
  const dst = sel.dst === undefined ? undefined : parsePrefix(sel.dst, `${what}.dst`);
  const given = checkFamily(sel.family, `${what}.family`);
  const family = given ?? src?.family ?? dst?.family ?? defaultFamily;
  for (const [p, name] of [
    [src, "src"],
    [dst, "dst"],
  ] as const) {
    if (p !== undefined && p.family !== family) {
      throw new RangeError(
        `Invalid ${what}.${name} ${quote(sel[name])}: an IPv${p.family} prefix in an IPv${family} selector`,
      );
    }
  }
  const proto = optionalInteger(sel.proto, `${what}.proto`, 0, 255, 0);
  const sport = sel.sport === undefined ? undefined : checkInteger(sel.sport, `${what}.sport`, 0, 0xffff);
  const dport = sel.dport === undefined ? undefined : checkInteger(sel.dport, `${what}.dport`, 0, 0xffff);
  if (
    !lenient &&
    (sport !== undefined || dport !== undefined) &&
    !PORT_PROTOS.has(proto) &&
    !ICMP_PROTOS.has(proto) &&
    proto !== GRE_PROTO
  ) {
    throw new TypeError(
      `Invalid ${what}: ${sport !== undefined ? "sport" : "dport"} needs a proto with ports (6 TCP, 17 UDP, 132 SCTP, 33 DCCP, 136 UDP-Lite), ICMP (1, 58: type and code) or GRE (47: the key's high and low 16 bits), not ${proto}`,
    );
  }
  if (!lenient && ICMP_PROTOS.has(proto)) {
    if (sport !== undefined && sport > 0xff)
      throw new RangeError(`Invalid ${what}.sport ${sport}: an ICMP type is from 0 to 255`);
    if (dport !== undefined && dport > 0xff)
      throw new RangeError(`Invalid ${what}.dport ${dport}: an ICMP code is from 0 to 255`);
  }
  const ifindex = optionalInteger(sel.ifindex, `${what}.ifindex`, 0, 0x7fff_ffff, 0);
  const zero = new Uint8Array(16);
  return {
    family,
    src: src?.bytes ?? zero,
    srcLen: src?.len ?? 0,
    dst: dst?.bytes ?? zero,
    dstLen: dst?.len ?? 0,
    proto,
    sport: sport ?? 0,
    sportMask: sport === undefined ? 0 : 0xffff,
    dport: dport ?? 0,
    dportMask: dport === undefined ? 0 : 0xffff,
    ifindex,
  };
}

/**
 * Writes 16 address bytes (fewer are zero-filled) at `off`: through `u8`,
 * a view on the same bytes as `dv` when the caller has one, else byte by
 * byte (without allocating).
 */
function setAddress(dv: DataView, off: number, bytes: Uint8Array, u8?: Uint8Array): void {
  const n = bytes.length;
  if (u8 !== undefined && n === 16) {
    u8.set(bytes, off);
    return;
  }
  for (let i = 0; i < 16; i++) dv.setUint8(off + i, i < n ? (bytes[i] as number) : 0);
}

/**
 * Writes a `struct xfrm_selector` (56 bytes) at `off`.
 *
 * @param dv The buffer (zeroed).
 * @param off Where the struct starts.
 * @param s The selector.
 * @param u8 A view on the same bytes as `dv` (same offset), to copy addresses faster.
 */
export function encodeSelector(dv: DataView, off: number, s: ParsedSelector, u8?: Uint8Array): void {
  setAddress(dv, off + SEL.daddr, s.dst, u8);
  setAddress(dv, off + SEL.saddr, s.src, u8);
  dv.setUint16(off + SEL.dport, s.dport, false);
  dv.setUint16(off + SEL.dport_mask, s.dportMask, false);
  dv.setUint16(off + SEL.sport, s.sport, false);
  dv.setUint16(off + SEL.sport_mask, s.sportMask, false);
  dv.setUint16(off + SEL.family, afOf(s.family), true);
  dv.setUint8(off + SEL.prefixlen_d, s.dstLen);
  dv.setUint8(off + SEL.prefixlen_s, s.srcLen);
  dv.setUint8(off + SEL.proto, s.proto);
  dv.setInt32(off + SEL.ifindex, s.ifindex, true);
}

function be16(v: number): number {
  return ((v >> 8) | (v << 8)) & 0xffff;
}

/**
 * Appends a `struct xfrm_selector` (56 bytes) to the writer's current
 * message, as {@link encodeSelector} lays it out, without allocating.
 *
 * @param w The writer, at a 4-byte aligned position.
 * @param s The selector.
 */
export function writeSelector(w: NetlinkWriter, s: ParsedSelector): void {
  w.raw(s.dst).zeros(16 - s.dst.length);
  w.raw(s.src).zeros(16 - s.src.length);
  w.u16(be16(s.dport)).u16(be16(s.dportMask)).u16(be16(s.sport)).u16(be16(s.sportMask));
  w.u16(afOf(s.family)).u8(s.dstLen).u8(s.srcLen).u8(s.proto).zeros(3);
  w.s32(s.ifindex).u32(0);
}

/**
 * Reads a `struct xfrm_selector`. Absent parts (any address, any port,
 * protocol 0, interface 0) are left out.
 *
 * @param dv The buffer.
 * @param off Where the struct starts.
 * @param fallbackFamily The family when the selector's is `AF_UNSPEC` (a state's selector may have none).
 * @returns The selector with its family.
 */
export function decodeSelector(
  dv: DataView,
  off: number,
  fallbackFamily: IpFamily = 4,
): XfrmSelector & { readonly family: IpFamily } {
  const u8 = new Uint8Array(dv.buffer, dv.byteOffset, dv.byteLength);
  const family = ipFamilyOf(dv.getUint16(off + SEL.family, true)) ?? fallbackFamily;
  const dstLen = dv.getUint8(off + SEL.prefixlen_d);
  const srcLen = dv.getUint8(off + SEL.prefixlen_s);
  const out: {
    family: IpFamily;
    src?: string;
    dst?: string;
    proto?: number;
    sport?: number;
    dport?: number;
    ifindex?: number;
  } = { family };
  if (srcLen !== 0 || !isZeroAddress(u8, off + SEL.saddr))
    out.src = `${formatAddress(u8.subarray(off + SEL.saddr, off + SEL.saddr + 16), family)}/${srcLen}`;
  if (dstLen !== 0 || !isZeroAddress(u8, off + SEL.daddr))
    out.dst = `${formatAddress(u8.subarray(off + SEL.daddr, off + SEL.daddr + 16), family)}/${dstLen}`;
  const proto = dv.getUint8(off + SEL.proto);
  if (proto !== 0) out.proto = proto;
  if (dv.getUint16(off + SEL.sport_mask, false) !== 0) out.sport = dv.getUint16(off + SEL.sport, false);
  if (dv.getUint16(off + SEL.dport_mask, false) !== 0) out.dport = dv.getUint16(off + SEL.dport, false);
  const ifindex = dv.getInt32(off + SEL.ifindex, true);
  if (ifindex !== 0) out.ifindex = ifindex;
  return out;
}

/**
 * The text of a parsed selector for messages: `10.0.0.0/24 -> 10.1.0.0/24 proto 6 dport 80`.
 *
 * @param s The selector.
 * @returns The text.
 */
export function selectorText(s: ParsedSelector): string {
  const p = (b: Uint8Array, len: number): string => `${formatAddress(b, s.family)}/${len}`;
  let t = `${p(s.src, s.srcLen)} -> ${p(s.dst, s.dstLen)}`;
  if (s.proto !== 0) t += ` proto ${s.proto}`;
  if (s.sportMask !== 0) t += ` sport ${s.sport}`;
  if (s.dportMask !== 0) t += ` dport ${s.dport}`;
  if (s.ifindex !== 0) t += ` ifindex ${s.ifindex}`;
  return t;
}

// ---------------------------------------------------------------------------
// Lifetimes

const LIFETIME_KEYS = [
  "softBytes",
  "hardBytes",
  "softPackets",
  "hardPackets",
  "softAddSeconds",
  "hardAddSeconds",
  "softUseSeconds",
  "hardUseSeconds",
] as const;
const LIFETIME_KEY_SET = new Set<string>(LIFETIME_KEYS);

/** A checked lifetime: the eight limits in `struct xfrm_lifetime_cfg` order. */
export type ParsedLifetime = readonly bigint[];

/**
 * What an absent limit is sent as, as iproute2 starts its requests: the
 * byte and packet limits `XFRM_INF` (~0), the time limits 0 (the kernel
 * sets no timer for 0).
 */
function absentLimit(i: number): bigint {
  return i < 4 ? XFRM_INF : 0n;
}

/** No limits: what iproute2 sends when no `limit` is given. */
export const INFINITE_LIFETIME: ParsedLifetime = Object.freeze(LIFETIME_KEYS.map((_, i) => absentLimit(i)));

/**
 * Checks a lifetime; absent byte and packet limits are `XFRM_INF` (~0),
 * absent time limits 0, as iproute2 sends them.
 *
 * @param v The lifetime or undefined.
 * @param what The field, for errors.
 * @returns The eight limits.
 * @throws {TypeError} When a field has the wrong type or is unknown.
 * @throws {RangeError} When a limit is out of range.
 */
export function parseLifetime(v: unknown, what: string): ParsedLifetime {
  if (v === undefined) return INFINITE_LIFETIME;
  checkObject(v, what);
  checkKeys(v, LIFETIME_KEY_SET, what);
  const l = v;
  return LIFETIME_KEYS.map((k, i) => (l[k] === undefined ? absentLimit(i) : checkU64(l[k], `${what}.${k}`)));
}

/**
 * Writes a `struct xfrm_lifetime_cfg` (64 bytes).
 *
 * @param dv The buffer.
 * @param off Where the struct starts.
 * @param l The limits.
 */
export function encodeLifetime(dv: DataView, off: number, l: ParsedLifetime): void {
  for (let i = 0; i < 8; i++) dv.setBigUint64(off + i * 8, l[i] as bigint, true);
}

/**
 * Appends a `struct xfrm_lifetime_cfg` (64 bytes) to the writer's current message.
 *
 * @param w The writer.
 * @param l The limits.
 */
export function writeLifetime(w: NetlinkWriter, l: ParsedLifetime): void {
  for (let i = 0; i < 8; i++) w.u64(l[i] as bigint);
}

/**
 * Reads a `struct xfrm_lifetime_cfg`; absent limits are left out (byte and
 * packet limits of `XFRM_INF`, time limits of 0).
 *
 * @param dv The buffer.
 * @param off Where the struct starts.
 * @returns The limits.
 */
export function decodeLifetime(dv: DataView, off: number): XfrmLifetime {
  const out: Record<string, bigint> = {};
  LIFETIME_KEYS.forEach((k, i) => {
    const n = dv.getBigUint64(off + i * 8, true);
    if (n !== absentLimit(i) && n !== XFRM_INF) out[k] = n;
  });
  return out;
}

/**
 * Reads a `struct xfrm_lifetime_cur` (32 bytes).
 *
 * @param dv The buffer.
 * @param off Where the struct starts.
 * @returns The counters.
 */
export function decodeLifetimeCurrent(dv: DataView, off: number): XfrmLifetimeCurrent {
  return {
    bytes: dv.getBigUint64(off, true),
    packets: dv.getBigUint64(off + 8, true),
    addTime: dv.getBigUint64(off + 16, true),
    useTime: dv.getBigUint64(off + 24, true),
  };
}

// ---------------------------------------------------------------------------
// Marks

/** A checked mark. */
export interface ParsedMark {
  /** The value. */
  readonly value: number;
  /** The mask. */
  readonly mask: number;
}

const MARK_KEYS = new Set(["value", "mask"]);

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * Checks a mark: the mask defaults to 0xffffffff (iproute2's `mark V`),
 * and the value may have no bit outside the mask (the kernel compares
 * `skb->mark & mask` with the value, so such a mark never matches).
 *
 * @param v The mark or undefined.
 * @param what The field, for errors.
 * @returns The mark, or undefined.
 * @throws {TypeError} When a field has the wrong type.
 * @throws {RangeError} When a number is out of range or the value has bits outside the mask.
 */
export function parseMark(v: unknown, what: string): ParsedMark | undefined {
  if (v === undefined) return undefined;
  checkObject(v, what);
  checkKeys(v, MARK_KEYS, what);
  const m = v as unknown as XfrmMark;
  const value = checkU32(m.value, `${what}.value`);
  const mask = m.mask === undefined ? 0xffff_ffff : checkU32(m.mask, `${what}.mask`);
  if ((value & ~mask) >>> 0 !== 0) {
    throw new RangeError(
      `Invalid ${what}: value ${hex(value)} has bits outside mask ${hex(mask)} (it would never match; use value ${hex((value & mask) >>> 0)})`,
    );
  }
  return { value, mask };
}

/**
 * Writes `XFRMA_MARK` as iproute2 does: only when the mask is not 0.
 *
 * @param w The writer.
 * @param w.attr Writes one attribute.
 * @param m The mark or undefined.
 */
export function writeMark(w: { attr(type: number, data: Uint8Array): unknown }, m: ParsedMark | undefined): void {
  if (m === undefined || m.mask === 0) return;
  const data = new Uint8Array(SIZEOF.mark);
  const dv = new DataView(data.buffer);
  dv.setUint32(0, m.value, true);
  dv.setUint32(4, m.mask, true);
  w.attr(XFRMA.MARK, data);
}

/**
 * Checks that an attribute's payload holds at least `min` bytes.
 *
 * @param data The payload.
 * @param min The bytes the attribute's struct needs.
 * @param attr The attribute's name (`"XFRMA_MARK"`).
 * @throws {SyntaxError} When it is shorter, naming the attribute and both lengths.
 */
export function checkAttributeLength(data: Uint8Array, min: number, attr: string): void {
  if (data.length < min) {
    throw new SyntaxError(`Invalid ${attr} attribute: ${data.length} bytes, expected at least ${min}`);
  }
}

/**
 * Reads an `XFRMA_MARK` payload.
 *
 * @param data The payload (8 bytes).
 * @returns The mark, or undefined when the mask is 0.
 * @throws {SyntaxError} When the payload is shorter than 8 bytes.
 */
export function decodeMark(data: Uint8Array): XfrmMark | undefined {
  checkAttributeLength(data, SIZEOF.mark, "XFRMA_MARK");
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const mask = dv.getUint32(4, true);
  if (mask === 0) return undefined;
  return { value: dv.getUint32(0, true), mask };
}

/**
 * The text of a mark for messages: `mark 0xe00/0xf00`.
 *
 * @param m The mark.
 * @returns The text, empty when undefined.
 */
export function markText(m: ParsedMark | undefined): string {
  return m === undefined ? "" : ` mark ${hex(m.value)}/${hex(m.mask)}`;
}

// ---------------------------------------------------------------------------
// xfrm_id and templates

/**
 * Writes a `struct xfrm_id` (24 bytes).
 *
 * @param dv The buffer (zeroed).
 * @param off Where the struct starts.
 * @param daddr The destination (16 bytes).
 * @param spi The SPI (host order; written big-endian).
 * @param proto The protocol number.
 * @param u8 A view on the same bytes as `dv` (same offset), to copy addresses faster.
 */
export function encodeXfrmId(
  dv: DataView,
  off: number,
  daddr: Uint8Array,
  spi: number,
  proto: number,
  u8?: Uint8Array,
): void {
  setAddress(dv, off + ID.daddr, daddr, u8);
  dv.setUint32(off + ID.spi, spi, false);
  dv.setUint8(off + ID.proto, proto);
}

/** A decoded `struct xfrm_id`. */
export interface DecodedXfrmId {
  /** The destination bytes (16). */
  readonly daddr: Uint8Array;
  /** The SPI. */
  readonly spi: number;
  /** The protocol number. */
  readonly proto: number;
}

/**
 * Reads a `struct xfrm_id`.
 *
 * @param dv The buffer.
 * @param off Where the struct starts.
 * @returns The fields.
 */
export function decodeXfrmId(dv: DataView, off: number): DecodedXfrmId {
  return {
    daddr: new Uint8Array(dv.buffer, dv.byteOffset + off + ID.daddr, 16).slice(),
    spi: dv.getUint32(off + ID.spi, false),
    proto: dv.getUint8(off + ID.proto),
  };
}

/** A checked template. */
export interface ParsedTemplate {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** Tunnel source (16 bytes). */
  readonly src: Uint8Array;
  /** Tunnel destination (16 bytes). */
  readonly dst: Uint8Array;
  /** Protocol number. */
  readonly proto: number;
  /** SPI (0: any). */
  readonly spi: number;
  /** Request id (0: any). */
  readonly reqid: number;
  /** Mode number. */
  readonly mode: number;
  /** Whether the transformation is optional (`level use`). */
  readonly optional: boolean;
}

const TEMPLATE_KEYS = new Set(["src", "dst", "proto", "spi", "reqid", "mode", "level", "family"]);

/**
 * Checks a template. Its family is `family`, else that of `src` or `dst`,
 * else the policy's (as iproute2 fills it).
 *
 * @param v The template.
 * @param what The field, for errors (`"xfrm policy templates[0]"`).
 * @param policyFamily The family of the policy's selector.
 * @returns The parsed template.
 * @throws {TypeError} When a field has the wrong type.
 * @throws {SyntaxError} When an address is malformed.
 * @throws {RangeError} When a number is out of range or the families of `src` and `dst` differ.
 */
export function parseTemplate(v: unknown, what: string, policyFamily: IpFamily): ParsedTemplate {
  checkObject(v, what);
  checkKeys(v, TEMPLATE_KEYS, what);
  const t = v as XfrmTemplate;
  const src = t.src === undefined ? undefined : parseAddress(t.src, `${what}.src`);
  const dst = t.dst === undefined ? undefined : parseAddress(t.dst, `${what}.dst`);
  const given = checkFamily(t.family, `${what}.family`);
  const family = given ?? src?.family ?? dst?.family ?? policyFamily;
  for (const [a, name] of [
    [src, "src"],
    [dst, "dst"],
  ] as const) {
    if (a !== undefined && a.family !== family)
      throw new RangeError(
        `Invalid ${what}.${name} ${quote(t[name])}: an IPv${a.family} address in an IPv${family} template`,
      );
  }
  let optional = false;
  if (t.level !== undefined) {
    if (t.level !== "required" && t.level !== "use")
      throw new TypeError(`Invalid ${what}.level ${quote(t.level)}: use "required" or "use"`);
    optional = t.level === "use";
  }
  const zero = new Uint8Array(16);
  return {
    family,
    src: src?.bytes ?? zero,
    dst: dst?.bytes ?? zero,
    proto: protoNumber(t.proto, `${what}.proto`),
    spi: optionalInteger(t.spi, `${what}.spi`, 0, 0xffff_ffff, 0),
    reqid: optionalInteger(t.reqid, `${what}.reqid`, 0, 0xffff_ffff, 0),
    mode: modeNumber(t.mode, `${what}.mode`),
    optional,
  };
}

/**
 * Writes a `struct xfrm_user_tmpl` (64 bytes) with every algorithm
 * allowed (`aalgos`, `ealgos`, `calgos` ~0), as iproute2 does.
 *
 * @param dv The buffer (zeroed).
 * @param off Where the struct starts.
 * @param t The template.
 * @param u8 A view on the same bytes as `dv` (same offset), to copy addresses faster.
 */
export function encodeTemplate(dv: DataView, off: number, t: ParsedTemplate, u8?: Uint8Array): void {
  encodeXfrmId(dv, off + TMPL.id, t.dst, t.spi, t.proto, u8);
  dv.setUint16(off + TMPL.family, afOf(t.family), true);
  setAddress(dv, off + TMPL.saddr, t.src, u8);
  dv.setUint32(off + TMPL.reqid, t.reqid, true);
  dv.setUint8(off + TMPL.mode, t.mode);
  dv.setUint8(off + TMPL.optional, t.optional ? 1 : 0);
  dv.setUint32(off + TMPL.aalgos, 0xffff_ffff, true);
  dv.setUint32(off + TMPL.ealgos, 0xffff_ffff, true);
  dv.setUint32(off + TMPL.calgos, 0xffff_ffff, true);
}

/**
 * Appends a `struct xfrm_user_tmpl` (64 bytes) to the writer's current
 * message, as {@link encodeTemplate} lays it out.
 *
 * @param w The writer, at a 4-byte aligned position.
 * @param t The template.
 */
export function writeTemplate(w: NetlinkWriter, t: ParsedTemplate): void {
  w.raw(t.dst).zeros(16 - t.dst.length);
  w.u32(((t.spi >>> 24) | ((t.spi >>> 8) & 0xff00) | ((t.spi & 0xff00) << 8) | ((t.spi & 0xff) << 24)) >>> 0);
  w.u8(t.proto).zeros(3);
  w.u16(afOf(t.family)).zeros(2);
  w.raw(t.src).zeros(16 - t.src.length);
  w.u32(t.reqid)
    .u8(t.mode)
    .u8(0)
    .u8(t.optional ? 1 : 0)
    .u8(0);
  w.u32(0xffff_ffff).u32(0xffff_ffff).u32(0xffff_ffff);
}

/**
 * The `XFRMA_TMPL` payload of templates.
 *
 * @param ts The templates.
 * @returns The payload (64 bytes each).
 */
export function encodeTemplates(ts: readonly ParsedTemplate[]): Uint8Array {
  const data = new Uint8Array(ts.length * SIZEOF.user_tmpl);
  const dv = new DataView(data.buffer);
  ts.forEach((t, i) => encodeTemplate(dv, i * SIZEOF.user_tmpl, t));
  return data;
}

/**
 * Reads the templates of an `XFRMA_TMPL` payload. Unspecified addresses
 * are left out.
 *
 * @param data The payload.
 * @param fallbackFamily The family when a template's is `AF_UNSPEC`.
 * @returns The templates.
 * @throws {SyntaxError} When the payload is not a whole number of templates.
 */
export function decodeTemplates(data: Uint8Array, fallbackFamily: IpFamily): XfrmTemplate[] {
  if (data.length % SIZEOF.user_tmpl !== 0) {
    throw new SyntaxError(
      `Invalid XFRMA_TMPL attribute: ${data.length} bytes, not a multiple of the ${SIZEOF.user_tmpl}-byte template`,
    );
  }
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: XfrmTemplate[] = [];
  for (let off = 0; off + SIZEOF.user_tmpl <= data.length; off += SIZEOF.user_tmpl) {
    const id = decodeXfrmId(dv, off + TMPL.id);
    const af = dv.getUint16(off + TMPL.family, true);
    const family = af === AF_UNSPEC ? fallbackFamily : (ipFamilyOf(af) ?? fallbackFamily);
    const t: {
      src?: string;
      dst?: string;
      proto: XfrmProto | number;
      spi: number;
      reqid: number;
      mode: XfrmMode | number;
      level: "required" | "use";
      family: IpFamily;
    } = {
      proto: protoName(id.proto),
      spi: id.spi,
      reqid: dv.getUint32(off + TMPL.reqid, true),
      mode: modeName(dv.getUint8(off + TMPL.mode)),
      level: dv.getUint8(off + TMPL.optional) !== 0 ? "use" : "required",
      family,
    };
    if (!isZeroAddress(data, off + TMPL.saddr))
      t.src = formatAddress(data.subarray(off + TMPL.saddr, off + TMPL.saddr + 16), family);
    if (!isZeroAddress(id.daddr)) t.dst = formatAddress(id.daddr, family);
    out.push(t.src === undefined ? t : { src: t.src, ...t });
  }
  return out;
}
