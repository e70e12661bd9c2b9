/** An IP address family: 4 or 6. */
export type IpFamily = 4 | 6;

/** A parsed IP address. */
export interface IpAddress {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** 4 or 16 bytes in network order. */
  readonly bytes: Uint8Array;
}

/** A parsed CIDR prefix. */
export interface IpPrefix extends IpAddress {
  /** The prefix length. */
  readonly prefixLength: number;
}

function parseIpv4(text: string, start = 0, end: number = text.length): Uint8Array | undefined {
  const out = new Uint8Array(4);
  return parseIpv4Into(text, start, end, out, 0) ? out : undefined;
}

function parseIpv6(text: string): Uint8Array | undefined {
  const out = new Uint8Array(16);
  return parseIpv6Into(text, out) ? out : undefined;
}

/**
 * Parses dotted-quad IPv4 in `text[start, end)` into `out[at..at+4)` (no leading zeros).
 *
 * @internal Allocation-free parsing for `@dp/maps`; see {@link parseIp}.
 * @param text The text.
 * @param start First character.
 * @param end One past the last character.
 * @param out Where the 4 bytes go.
 * @param at Offset in `out`.
 * @returns `false` when the text is not an address.
 */
export function parseIpv4Into(text: string, start: number, end: number, out: Uint8Array, at: number): boolean {
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || part === 3) return false;
      out[at + part++] = value;
      value = 0;
      digits = 0;
    } else {
      if (c < 48 || c > 57 || (digits > 0 && value === 0)) return false;
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return false;
    }
  }
  if (part !== 3 || digits === 0) return false;
  out[at + 3] = value;
  return true;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

/**
 * Parses an IPv6 address (with `::` and an optional dotted IPv4 tail) into `out[0..16)`.
 *
 * @internal Allocation-free parsing for `@dp/maps`; see {@link parseIp}.
 * @param text The text.
 * @param out Where the 16 bytes go.
 * @returns `false` when the text is not an address.
 */
export function parseIpv6Into(text: string, out: Uint8Array): boolean {
  const len = text.length;
  if (len < 2 || len > 45) return false;
  let i = 0;
  let groups = 0;
  let gap = -1;
  if (text.charCodeAt(0) === 58 /* : */) {
    if (text.charCodeAt(1) !== 58) return false;
    gap = 0;
    i = 2;
  }
  while (i < len) {
    if (groups === 8) return false;
    const start = i;
    let value = 0;
    let digits = 0;
    for (; i < len; i++) {
      const d = hexDigit(text.charCodeAt(i));
      if (d < 0) break;
      if (++digits > 4) return false;
      value = value * 16 + d;
    }
    if (i < len && text.charCodeAt(i) === 46 /* . */) {
      if (groups > 6 || !parseIpv4Into(text, start, len, out, groups * 2)) return false;
      groups += 2;
      break;
    }
    if (digits === 0) return false;
    out[groups * 2] = value >> 8;
    out[groups * 2 + 1] = value & 0xff;
    groups++;
    if (i === len) break;
    if (text.charCodeAt(i) !== 58) return false;
    i++;
    if (i < len && text.charCodeAt(i) === 58) {
      if (gap >= 0) return false;
      gap = groups;
      i++;
    } else if (i === len) {
      return false;
    }
  }
  if (gap < 0) return groups === 8;
  if (groups > 7) return false;
  // Move the groups after "::" to the end and zero the gap.
  const tail = (groups - gap) * 2;
  for (let k = tail - 1; k >= 0; k--) out[16 - tail + k] = out[gap * 2 + k] as number;
  for (let k = gap * 2; k < 16 - tail; k++) out[k] = 0;
  return true;
}

/**
 * Parses an IPv4 or IPv6 address.
 *
 * @param text Such as `"10.0.0.1"` or `"fd00::1"`.
 * @returns The family and the bytes in network order.
 * @throws {SyntaxError} When `text` is not an address.
 * @example Parsing both families
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseIp } from "@dp/core";
 *
 * assert.deepEqual(parseIp("10.0.0.1"), { family: 4, bytes: new Uint8Array([10, 0, 0, 1]) });
 * assert.equal(parseIp("fd00::1").bytes[15], 1);
 * assert.throws(() => parseIp("10.0.0.256"), SyntaxError);
 * ```
 */
export function parseIp(text: string): IpAddress {
  if (typeof text !== "string") throw new TypeError(`Invalid IP address: expected a string, got ${typeof text}`);
  const v4 = parseIpv4(text);
  if (v4 !== undefined) return { family: 4, bytes: v4 };
  const v6 = text.includes(":") ? parseIpv6(text) : undefined;
  if (v6 !== undefined) return { family: 6, bytes: v6 };
  throw new SyntaxError(`Invalid IP address ${JSON.stringify(text)}`);
}

/**
 * Parses a CIDR prefix; a bare address is a host prefix (/32 or /128).
 *
 * @param text Such as `"10.0.0.0/24"` or `"fd00::/64"`.
 * @returns The family, address bytes and prefix length.
 * @throws {SyntaxError} When `text` is not a prefix.
 * @example Parsing a prefix
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCidr } from "@dp/core";
 *
 * assert.equal(parseCidr("10.1.0.0/16").prefixLength, 16);
 * assert.equal(parseCidr("fd00::1").prefixLength, 128);
 * assert.throws(() => parseCidr("10.0.0.0/33"), /Invalid CIDR "10.0.0.0\/33"/);
 * ```
 */
export function parseCidr(text: string): IpPrefix {
  if (typeof text !== "string") throw new TypeError(`Invalid CIDR: expected a string, got ${typeof text}`);
  const slash = text.indexOf("/");
  let family: IpFamily = 4;
  let bytes = parseIpv4(text, 0, slash < 0 ? text.length : slash);
  if (bytes === undefined) {
    try {
      const ip = parseIp(slash < 0 ? text : text.slice(0, slash));
      family = ip.family;
      bytes = ip.bytes;
    } catch {
      throw new SyntaxError(`Invalid CIDR ${JSON.stringify(text)}: bad address`);
    }
  }
  const max = family === 4 ? 32 : 128;
  if (slash < 0) return { family, bytes, prefixLength: max };
  const digits = text.length - slash - 1;
  let ok = digits >= 1 && digits <= 3;
  let len = 0;
  for (let i = slash + 1; ok && i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 48 || c > 57) ok = false;
    else len = len * 10 + (c - 48);
  }
  if (!ok || len > max) {
    throw new SyntaxError(`Invalid CIDR ${JSON.stringify(text)}: prefix length must be 0-${max}`);
  }
  return { family, bytes, prefixLength: len };
}

/**
 * Formats 4 or 16 address bytes (IPv6 in RFC 5952 form).
 *
 * @param bytes The address in network order.
 * @returns The text form.
 * @throws {RangeError} When `bytes` is neither 4 nor 16 long.
 * @example Formatting
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatIp } from "@dp/core";
 *
 * assert.equal(formatIp(new Uint8Array([192, 168, 0, 1])), "192.168.0.1");
 * assert.equal(formatIp(new Uint8Array([0xfd, 0, ...new Array(13).fill(0), 1])), "fd00::1");
 * ```
 */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join(".");
  if (bytes.length !== 16) throw new RangeError(`Invalid IP address: expected 4 or 16 bytes, got ${bytes.length}`);
  return formatIpv6(new DataView(bytes.buffer, bytes.byteOffset, 16), 0);
}

/**
 * Formats 16 bytes at `off` in RFC 5952 form (the longest run of two or more zero groups becomes `::`).
 *
 * @internal For `@dp/maps`; see {@link formatIp}.
 * @param view The buffer.
 * @param off Where the address starts.
 * @returns The text.
 */
export function formatIpv6(view: DataView, off: number): string {
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (view.getUint16(off + i * 2, false) !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && view.getUint16(off + j * 2, false) === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  let text = "";
  for (let i = 0; i < 8; i++) {
    if (i === best) {
      text += "::";
      i += bestLen - 1;
      continue;
    }
    if (text !== "" && !text.endsWith(":")) text += ":";
    text += view.getUint16(off + i * 2, false).toString(16);
  }
  return text;
}

/**
 * Parses a MAC address such as `"02:00:00:aa:bb:cc"`.
 *
 * @param text Six hex bytes separated by colons.
 * @returns 6 bytes.
 * @throws {SyntaxError} When `text` is not a MAC address.
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatMac, parseMac } from "@dp/core";
 *
 * assert.equal(formatMac(parseMac("02:00:00:AA:bb:cc")), "02:00:00:aa:bb:cc");
 * assert.throws(() => parseMac("02:00:00:aa:bb"), SyntaxError);
 * ```
 */
export function parseMac(text: string): Uint8Array {
  const out = new Uint8Array(6);
  if (typeof text !== "string" || !parseMacInto(text, out)) {
    throw new SyntaxError(
      `Invalid MAC address ${JSON.stringify(text)}: expected six hex bytes like "02:00:00:aa:bb:cc"`,
    );
  }
  return out;
}

/**
 * Formats a link-layer address as lower-case hex bytes joined by colons.
 *
 * @param bytes The address (6 bytes for Ethernet).
 * @returns The text form.
 */
export function formatMac(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}

/**
 * Parses `"aa:bb:cc:dd:ee:ff"` (either case) into `out[0..6)`.
 *
 * @internal For `@dp/maps`; see {@link parseMac}.
 * @param text The text.
 * @param out Where the 6 bytes go.
 * @returns `false` when the text is not a MAC address.
 */
export function parseMacInto(text: string, out: Uint8Array): boolean {
  if (text.length !== 17) return false;
  for (let i = 0; i < 6; i++) {
    const p = i * 3;
    if (i > 0 && text.charCodeAt(p - 1) !== 58) return false;
    const hi = hexDigit(text.charCodeAt(p));
    const lo = hexDigit(text.charCodeAt(p + 1));
    if (hi < 0 || lo < 0) return false;
    out[i] = hi * 16 + lo;
  }
  return true;
}
