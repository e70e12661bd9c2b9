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

/** Parses dotted-quad IPv4 between `start` and `end` without allocating strings (no leading zeros). */
function parseIpv4(text: string, start = 0, end: number = text.length): Uint8Array | undefined {
  const out = new Uint8Array(4);
  let part = 0;
  let value = 0;
  let digits = 0;
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 46 /* . */) {
      if (digits === 0 || part === 3) return undefined;
      out[part++] = value;
      value = 0;
      digits = 0;
    } else {
      if (c < 48 || c > 57 || (digits > 0 && value === 0)) return undefined;
      value = value * 10 + (c - 48);
      if (++digits > 3 || value > 255) return undefined;
    }
  }
  if (part !== 3 || digits === 0) return undefined;
  out[3] = value;
  return out;
}

function parseIpv6(text: string): Uint8Array | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return undefined;
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (s: string): number[] | undefined => {
    if (s === "") return [];
    const out: number[] = [];
    const parts = s.split(":");
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as string;
      if (i === parts.length - 1 && p.includes(".")) {
        const v4 = parseIpv4(p);
        if (v4 === undefined) return undefined;
        out.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined;
      out.push(parseInt(p, 16));
    }
    return out;
  };
  const head = groups(halves[0] as string);
  const tail = halves.length === 2 ? groups(halves[1] as string) : [];
  if (head === undefined || tail === undefined) return undefined;
  const missing = 8 - head.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head, ...new Array<number>(halves.length === 2 ? missing : 0).fill(0), ...tail];
  const out = new Uint8Array(16);
  all.forEach((g, i) => {
    out[i * 2] = g >> 8;
    out[i * 2 + 1] = g & 0xff;
  });
  return out;
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
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] as number) << 8) | (bytes[i + 1] as number));
  // The longest run of zero groups (at least two) becomes "::".
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
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
  if (typeof text !== "string" || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(text)) {
    throw new SyntaxError(`Invalid MAC address ${JSON.stringify(text)}: expected six hex bytes like "02:00:00:aa:bb:cc"`);
  }
  return new Uint8Array(text.split(":").map((b) => parseInt(b, 16)));
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
