// Assertions over parsed packets: expectRewrite() checks that a program
// changed exactly the named fields (and left valid checksums), and
// expectPacket() checks named fields of one packet. Both collect every
// difference before throwing, so one failure shows the whole picture.

import { formatIp, formatMac, parseIp, parseMac } from "@dp/core";
import type { VlanOptions } from "./build.ts";
import { TCP_FLAGS } from "./headers.ts";
import type {
  EthHeader,
  IcmpHeader,
  Ipv4Header,
  Ipv6Header,
  ParsedPacket,
  TcpFlag,
  TcpHeader,
  UdpHeader,
  VxlanHeader,
} from "./headers.ts";
import { parsePacket } from "./parse.ts";

/**
 * Expected values for some fields of one header: a named field must have
 * that value; `undefined` means the field must be absent.
 *
 * @typeParam T The header type.
 */
export type LayerExpectation<T> = { readonly [K in keyof T]?: T[K] | undefined };

/** Expected values for some Ethernet fields; the VLAN tag may be given as in `eth()`. */
export interface EthExpectation extends LayerExpectation<Omit<EthHeader, "vlan">> {
  /** The VLAN tag (an id, or a tag whose missing fields take `eth()`'s defaults); `undefined` for untagged. */
  readonly vlan?: number | VlanOptions | undefined;
}

/**
 * Expected values, layer by layer, as {@link ParsedPacket} names them. A
 * layer set to `undefined` must be absent; `inner` describes the frame
 * inside VXLAN; `payload` may be given as text.
 */
export interface PacketExpectation {
  /** Ethernet fields. */
  readonly eth?: EthExpectation;
  /** IPv4 fields. */
  readonly ipv4?: LayerExpectation<Ipv4Header> | undefined;
  /** IPv6 fields. */
  readonly ipv6?: LayerExpectation<Ipv6Header> | undefined;
  /** TCP fields; `flags` in any order. */
  readonly tcp?: LayerExpectation<TcpHeader> | undefined;
  /** UDP fields. */
  readonly udp?: LayerExpectation<UdpHeader> | undefined;
  /** ICMP fields. */
  readonly icmp?: LayerExpectation<IcmpHeader> | undefined;
  /** ICMPv6 fields. */
  readonly icmpv6?: LayerExpectation<IcmpHeader> | undefined;
  /** VXLAN fields. */
  readonly vxlan?: LayerExpectation<VxlanHeader> | undefined;
  /** The inner frame of a VXLAN packet. */
  readonly inner?: PacketExpectation | undefined;
  /** The payload bytes, or text encoded as UTF-8. */
  readonly payload?: Uint8Array | string;
  /** The bytes after the IP datagram; `undefined` for none. */
  readonly trailer?: Uint8Array | undefined;
}

/** Options for {@link expectRewrite} and {@link expectPacket}. */
export interface ExpectPacketOptions {
  /**
   * `"valid"`: every checksum must be right, unless an expectation names
   * `checksumValid`; `"ignore"`: checksums are not checked.
   *
   * @default "valid"
   */
  readonly checksums?: "valid" | "ignore";
}

/** One way a packet differs from what was expected. */
export interface PacketDifference {
  /** The field, such as `"ipv4.dst"` or `"inner.tcp.checksum"`; a layer name alone for a missing or extra layer. */
  readonly path: string;
  /** What was expected. */
  readonly expected: unknown;
  /** What the packet holds. */
  readonly actual: unknown;
  /** The difference in words, as the error message lists it. */
  readonly description: string;
}

/**
 * Thrown by {@link expectRewrite} and {@link expectPacket}: the message
 * lists every difference, and `actual` and `expected` map each differing
 * path to its values (so test runners can show a diff).
 */
export class PacketAssertionError extends Error {
  /** Always `"PacketAssertionError"`, the class name. */
  override readonly name: string = "PacketAssertionError";
  /** Every difference found. */
  readonly differences: readonly PacketDifference[];
  /** The packet's values at the differing paths. */
  readonly actual: Readonly<Record<string, unknown>>;
  /** The expected values at the differing paths. */
  readonly expected: Readonly<Record<string, unknown>>;

  /**
   * Makes the error.
   *
   * @param summary What was being checked, such as "Packet was not rewritten as expected".
   * @param differences The differences, at least one.
   */
  constructor(summary: string, differences: readonly PacketDifference[]) {
    const count = differences.length === 1 ? "1 difference" : `${differences.length} differences`;
    super(`${summary}: ${count}\n${differences.map((d) => `  ${d.description}`).join("\n")}`);
    this.differences = differences;
    this.actual = Object.fromEntries(differences.map((d) => [d.path, d.actual]));
    this.expected = Object.fromEntries(differences.map((d) => [d.path, d.expected]));
  }
}

type LayerName = "eth" | "ipv4" | "ipv6" | "tcp" | "udp" | "icmp" | "icmpv6" | "vxlan";

const FIELDS: Readonly<Record<LayerName, readonly string[]>> = {
  eth: ["src", "dst", "type", "vlan"],
  ipv4: [
    "src",
    "dst",
    "tos",
    "id",
    "df",
    "mf",
    "fragmentOffset",
    "ttl",
    "protocol",
    "headerLength",
    "totalLength",
    "checksum",
    "checksumValid",
    "options",
  ],
  ipv6: ["src", "dst", "trafficClass", "flowLabel", "hopLimit", "nextHeader", "payloadLength"],
  tcp: [
    "sport",
    "dport",
    "seq",
    "ack",
    "flags",
    "window",
    "urgent",
    "headerLength",
    "options",
    "checksum",
    "checksumValid",
  ],
  udp: ["sport", "dport", "length", "checksum", "checksumValid"],
  icmp: ["type", "code", "id", "seq", "checksum", "checksumValid"],
  icmpv6: ["type", "code", "id", "seq", "checksum", "checksumValid"],
  vxlan: ["flags", "vni"],
};
const LAYERS = Object.keys(FIELDS) as LayerName[];
const TOP = [...LAYERS, "inner", "payload", "trailer"];
const UTF8 = new TextEncoder();

function checkNames(expectation: PacketExpectation, prefix: string): void {
  if (typeof expectation !== "object" || expectation === null) {
    throw new TypeError(
      `Invalid packet expectation${prefix === "" ? "" : ` ${prefix.slice(0, -1)}`}: expected an object`,
    );
  }
  for (const key of Object.keys(expectation)) {
    if (!TOP.includes(key)) {
      throw new TypeError(
        `Invalid packet expectation: unknown layer "${prefix}${key}": expected one of ${TOP.join(", ")}`,
      );
    }
  }
  for (const layer of LAYERS) {
    const fields = expectation[layer] as Record<string, unknown> | undefined;
    if (fields === undefined) continue;
    if (typeof fields !== "object" || fields === null) {
      throw new TypeError(`Invalid packet expectation ${prefix}${layer}: expected an object of fields or undefined`);
    }
    for (const key of Object.keys(fields)) {
      if (!FIELDS[layer].includes(key)) {
        throw new TypeError(
          `Invalid packet expectation: unknown field "${prefix}${layer}.${key}": ${layer} has ${FIELDS[layer].join(", ")}`,
        );
      }
    }
  }
  if (expectation.inner !== undefined) checkNames(expectation.inner, `${prefix}inner.`);
}

/** Brings an expected value into the form the parser reports. */
function normalize(layer: LayerName, field: string, value: unknown): unknown {
  if (value === undefined) return undefined;
  if ((field === "src" || field === "dst") && typeof value === "string") {
    return layer === "eth" ? formatMac(parseMac(value)) : formatIp(parseIp(value).bytes);
  }
  if (layer === "eth" && field === "vlan") {
    const tag: VlanOptions = typeof value === "number" ? { id: value } : (value as VlanOptions);
    return { id: tag.id, pcp: tag.pcp ?? 0, dei: tag.dei ?? false, tpid: tag.tpid ?? 0x8100 };
  }
  if (layer === "tcp" && field === "flags" && Array.isArray(value)) {
    const flags = value as TcpFlag[];
    const unknown = flags.find((f) => !TCP_FLAGS.includes(f));
    if (unknown !== undefined)
      throw new TypeError(`Invalid packet expectation tcp.flags: unknown flag ${JSON.stringify(unknown)}`);
    return TCP_FLAGS.filter((f) => flags.includes(f));
  }
  return value;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (a instanceof Uint8Array || b instanceof Uint8Array) {
    return a instanceof Uint8Array && b instanceof Uint8Array && a.length === b.length && a.every((x, i) => x === b[i]);
  }
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => equal(x, b[i]));
  }
  if (typeof a === "object" && typeof b === "object" && a !== null && b !== null) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys)
      if (!equal((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k])) return false;
    return true;
  }
  return false;
}

function show(value: unknown, field = ""): string {
  if (value === undefined) return "none";
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number")
    return field === "checksum" || field === "ethType" ? `0x${value.toString(16).padStart(4, "0")}` : String(value);
  if (typeof value === "bigint") return `${value}n`;
  if (value instanceof Uint8Array) {
    const hex = Array.from(value.subarray(0, 64), (b) => b.toString(16).padStart(2, "0")).join("");
    return `${value.length} bytes ${hex}${value.length > 64 ? "..." : ""}`;
  }
  if (Array.isArray(value)) return `[${value.map((v) => show(v)).join(", ")}]`;
  if (typeof value === "object" && value !== null) {
    return `{ ${Object.entries(value)
      .map(([k, v]) => `${k}: ${show(v, k)}`)
      .join(", ")} }`;
  }
  return typeof value === "boolean" || value === null ? String(value) : typeof value;
}

interface Comparison {
  readonly mode: "rewrite" | "packet";
  readonly checksums: "valid" | "ignore";
  readonly differences: PacketDifference[];
}

function differ(c: Comparison, path: string, expected: unknown, actual: unknown, description: string): void {
  c.differences.push({ path, expected, actual, description });
}

function compareField(
  c: Comparison,
  path: string,
  field: string,
  expected: unknown,
  actual: unknown,
  unchanged: boolean,
): void {
  if (equal(expected, actual)) return;
  const want = unchanged ? `expected it unchanged (${show(expected, field)})` : `expected ${show(expected, field)}`;
  differ(c, path, expected, actual, `${path}: ${want}, got ${show(actual, field)}`);
}

function compareLayer(
  c: Comparison,
  layer: LayerName,
  prefix: string,
  before: Record<string, unknown> | undefined,
  after: Record<string, unknown> | undefined,
  expectation: PacketExpectation,
): void {
  const path = `${prefix}${layer}`;
  const named = Object.hasOwn(expectation, layer);
  const expected = expectation[layer] as Record<string, unknown> | undefined;
  if (named && expected === undefined) {
    if (after !== undefined) differ(c, path, undefined, after, `${path}: expected no ${layer} header, got one`);
    return;
  }
  if (after === undefined) {
    if (named || (c.mode === "rewrite" && before !== undefined)) {
      differ(c, path, expected ?? before, undefined, `${path}: expected a ${layer} header, got none`);
    }
    return;
  }
  if (c.mode === "rewrite" && before === undefined && !named) {
    differ(c, path, undefined, after, `${path}: expected no ${layer} header (the input has none), got one`);
    return;
  }
  for (const field of FIELDS[layer]) {
    if (field === "checksumValid") continue;
    const shown = layer === "eth" && field === "type" ? "ethType" : field;
    if (expected !== undefined && Object.hasOwn(expected, field)) {
      compareField(c, `${path}.${field}`, shown, normalize(layer, field, expected[field]), after[field], false);
    } else if (c.mode === "rewrite" && before !== undefined && field !== "checksum") {
      compareField(c, `${path}.${field}`, shown, before[field], after[field], true);
    }
  }
  if (!FIELDS[layer].includes("checksumValid")) return;
  const wantValid =
    expected !== undefined && Object.hasOwn(expected, "checksumValid")
      ? expected["checksumValid"]
      : c.checksums === "valid"
        ? true
        : undefined;
  if (wantValid !== undefined && after["checksumValid"] !== wantValid) {
    const got = show(after["checksum"], "checksum");
    differ(
      c,
      `${path}.checksumValid`,
      wantValid,
      after["checksumValid"],
      `${path}.checksum: expected ${wantValid ? "a valid" : "an invalid"} checksum, got ${got}, which is ${wantValid ? "wrong" : "right"}`,
    );
  }
}

function comparePacket(
  c: Comparison,
  prefix: string,
  before: ParsedPacket | undefined,
  after: ParsedPacket,
  expectation: PacketExpectation,
): void {
  for (const layer of LAYERS) {
    compareLayer(
      c,
      layer,
      prefix,
      before?.[layer] as Record<string, unknown> | undefined,
      after[layer] as Record<string, unknown> | undefined,
      expectation,
    );
  }
  const innerPath = `${prefix}inner`;
  if (Object.hasOwn(expectation, "inner") && expectation.inner === undefined) {
    if (after.inner !== undefined)
      differ(c, innerPath, undefined, after.inner, `${innerPath}: expected no inner frame, got one`);
  } else if (after.inner !== undefined) {
    comparePacket(c, `${innerPath}.`, before?.inner, after.inner, expectation.inner ?? {});
  } else if (expectation.inner !== undefined || (c.mode === "rewrite" && before?.inner !== undefined)) {
    differ(
      c,
      innerPath,
      expectation.inner ?? before?.inner,
      undefined,
      `${innerPath}: expected an inner frame, got none`,
    );
  }
  const payloadPath = `${prefix}payload`;
  if (expectation.payload !== undefined) {
    const want = typeof expectation.payload === "string" ? UTF8.encode(expectation.payload) : expectation.payload;
    compareField(c, payloadPath, "payload", want, after.payload, false);
  } else if (c.mode === "rewrite" && before !== undefined && after.inner === undefined) {
    // With an inner frame the payload is that frame, compared field by field above.
    compareField(c, payloadPath, "payload", before.payload, after.payload, true);
  }
  const trailerPath = `${prefix}trailer`;
  if (Object.hasOwn(expectation, "trailer"))
    compareField(c, trailerPath, "trailer", expectation.trailer, after.trailer, false);
  else if (c.mode === "rewrite" && before !== undefined)
    compareField(c, trailerPath, "trailer", before.trailer, after.trailer, true);
}

function parsed(packet: Uint8Array | ParsedPacket): ParsedPacket {
  return packet instanceof Uint8Array ? parsePacket(packet) : packet;
}

/**
 * Asserts that `after` is `before` with exactly the named fields changed
 * to the named values: every other field of every layer, the payload and
 * the set of layers must be unchanged, and every checksum in `after` must
 * be valid (checksum fields themselves may change). Lengths are fields
 * too: name them when the program resizes the packet.
 *
 * @param before The packet given to the program (bytes or parsed).
 * @param after The packet the program returned (bytes or parsed).
 * @param changes The fields expected to differ, with their new values.
 * @param options Whether checksums are checked.
 * @throws {PacketAssertionError} When anything else changed, a named field has another value, or a checksum is wrong; the message lists every difference.
 * @throws {PacketParseError} When a packet given as bytes cannot be parsed.
 * @throws {TypeError} When `changes` names an unknown layer or field.
 * @example Checking a destination rewrite
 * ```ts
 * import assert from "node:assert/strict";
 * import { eth, expectRewrite, ipv4, packet, PacketAssertionError, udp } from "@dp/hooks";
 *
 * const before = packet(eth(), ipv4({ dst: "10.0.0.2" }), udp({ dport: 53 }), "q");
 * const after = packet(eth(), ipv4({ dst: "10.0.0.9" }), udp({ dport: 53 }), "q");
 * expectRewrite(before, after, { ipv4: { dst: "10.0.0.9" } });
 * assert.throws(() => expectRewrite(before, after, {}), PacketAssertionError);
 * ```
 */
export function expectRewrite(
  before: Uint8Array | ParsedPacket,
  after: Uint8Array | ParsedPacket,
  changes: PacketExpectation,
  options: ExpectPacketOptions = {},
): void {
  checkNames(changes, "");
  const c: Comparison = { mode: "rewrite", checksums: options.checksums ?? "valid", differences: [] };
  comparePacket(c, "", parsed(before), parsed(after), changes);
  if (c.differences.length > 0) throw new PacketAssertionError("Packet was not rewritten as expected", c.differences);
}

/**
 * Asserts that a packet has the named layers with the named field values
 * and that every checksum in it is valid. Fields and layers not named are
 * not checked.
 *
 * @param actual The packet (bytes or parsed).
 * @param expected The expected layers and field values.
 * @param options Whether checksums are checked.
 * @throws {PacketAssertionError} When a named field or layer differs or a checksum is wrong; the message lists every difference.
 * @throws {PacketParseError} When a packet given as bytes cannot be parsed.
 * @throws {TypeError} When `expected` names an unknown layer or field.
 * @example Checking an echo request
 * ```ts
 * import { eth, expectPacket, icmp, ipv4, packet } from "@dp/hooks";
 *
 * const bytes = packet(eth(), ipv4({ dst: "10.0.0.2" }), icmp({ id: 9, seq: 1 }), "ping");
 * expectPacket(bytes, { ipv4: { dst: "10.0.0.2", protocol: 1 }, icmp: { type: 8, id: 9 }, payload: "ping" });
 * ```
 */
export function expectPacket(
  actual: Uint8Array | ParsedPacket,
  expected: PacketExpectation,
  options: ExpectPacketOptions = {},
): void {
  checkNames(expected, "");
  const c: Comparison = { mode: "packet", checksums: options.checksums ?? "valid", differences: [] };
  comparePacket(c, "", undefined, parsed(actual), expected);
  if (c.differences.length > 0) throw new PacketAssertionError("Packet does not match", c.differences);
}
