import {
  attrString,
  attrU32,
  type IpFamily,
  NetlinkError,
  type NetlinkWriter,
  NLM_F,
  parseCidr,
  parseIp,
  parseNetlinkAttributes,
} from "@dp/core";
import { IFA, RT_SCOPE, RTM } from "@dp/core/internal";
import { checkLinkIndex, checkLinkRef } from "./_check.ts";
import { type LinkRef, linkIndex, type RoutingContext } from "./_context.ts";
import { formatAddress } from "./_text.ts";

const AF_INET = 2;
const AF_INET6 = 10;
/** `sizeof(struct ifaddrmsg)`: family, prefixlen, flags, scope, index. */
const IFADDRMSG = 8;
const EADDRNOTAVAIL = 99;
const FOREVER = 0xffffffff;

// IFA_F_* from <linux/if_addr.h> (#defines, so not in the generated enums).
const IFA_F_SECONDARY = 0x01; // IFA_F_TEMPORARY for IPv6
const IFA_F_NODAD = 0x02;
const IFA_F_OPTIMISTIC = 0x04;
const IFA_F_DADFAILED = 0x08;
const IFA_F_HOMEADDRESS = 0x10;
const IFA_F_DEPRECATED = 0x20;
const IFA_F_TENTATIVE = 0x40;
const IFA_F_PERMANENT = 0x80;
const IFA_F_MANAGETEMPADDR = 0x100;
const IFA_F_NOPREFIXROUTE = 0x200;
const IFA_F_MCAUTOJOIN = 0x400;
const IFA_F_STABLE_PRIVACY = 0x800;

/** The name of an address scope, as `ip addr` prints it. */
export type AddressScopeName = "global" | "site" | "link" | "host" | "nowhere";

/**
 * An address flag (`IFA_F_*`), named as `ip addr` prints it. Bit 0x01 is
 * `"secondary"` on IPv4 and `"temporary"` on IPv6.
 */
export type AddressFlag =
  | "secondary"
  | "temporary"
  | "nodad"
  | "optimistic"
  | "dadfailed"
  | "home"
  | "deprecated"
  | "tentative"
  | "permanent"
  | "mngtmpaddr"
  | "noprefixroute"
  | "autojoin"
  | "stable-privacy";

/** The flags {@link Addresses.add} accepts (those `ip addr add` accepts). */
export type AddressAddFlag = "nodad" | "optimistic" | "home" | "mngtmpaddr" | "noprefixroute" | "autojoin";

const SCOPES: Readonly<Record<AddressScopeName, number>> = {
  global: RT_SCOPE.UNIVERSE,
  site: RT_SCOPE.SITE,
  link: RT_SCOPE.LINK,
  host: RT_SCOPE.HOST,
  nowhere: RT_SCOPE.NOWHERE,
};

const FLAG_BITS: readonly (readonly [number, AddressFlag])[] = [
  [IFA_F_NODAD, "nodad"],
  [IFA_F_OPTIMISTIC, "optimistic"],
  [IFA_F_DADFAILED, "dadfailed"],
  [IFA_F_HOMEADDRESS, "home"],
  [IFA_F_DEPRECATED, "deprecated"],
  [IFA_F_TENTATIVE, "tentative"],
  [IFA_F_PERMANENT, "permanent"],
  [IFA_F_MANAGETEMPADDR, "mngtmpaddr"],
  [IFA_F_NOPREFIXROUTE, "noprefixroute"],
  [IFA_F_MCAUTOJOIN, "autojoin"],
  [IFA_F_STABLE_PRIVACY, "stable-privacy"],
];

const ADD_FLAGS: Readonly<Record<AddressAddFlag, number>> = {
  nodad: IFA_F_NODAD,
  optimistic: IFA_F_OPTIMISTIC,
  home: IFA_F_HOMEADDRESS,
  mngtmpaddr: IFA_F_MANAGETEMPADDR,
  noprefixroute: IFA_F_NOPREFIXROUTE,
  autojoin: IFA_F_MCAUTOJOIN,
};

/**
 * An interface address, decoded from the kernel's `RTM_NEWADDR`
 * (`struct ifaddrmsg` plus `IFA_*` attributes).
 *
 * On a point-to-point address the kernel's `IFA_ADDRESS` is the peer and
 * `IFA_LOCAL` the local address, as `ip addr` reads them: `address` is
 * always the local one, `peer` the other end.
 */
export interface Address {
  /** The interface index. */
  readonly index: number;
  /** 4 or 6. */
  readonly family: IpFamily;
  /** The local address with its prefix length, such as `"10.0.0.1/24"`. */
  readonly address: string;
  /** The prefix length. */
  readonly prefixLength: number;
  /** The peer address of a point-to-point address (absent when it equals the local one). */
  readonly peer?: string;
  /** The IPv4 broadcast address, when one is set. */
  readonly broadcast?: string;
  /** The IPv4 label, such as `"eth0"` or `"eth0:1"`. */
  readonly label?: string;
  /** The scope number (`RT_SCOPE_*`): 0 global, 200 site, 253 link, 254 host, 255 nowhere. */
  readonly scope: number;
  /** The scope's name, absent for numbers without one. */
  readonly scopeName?: AddressScopeName;
  /** The flags (`IFA_FLAGS` when present, else `ifa_flags`). */
  readonly flags: readonly AddressFlag[];
  /** Seconds the address stays valid (`IFA_CACHEINFO`); `Infinity` for forever. */
  readonly validLifetime?: number;
  /** Seconds the address stays preferred (`IFA_CACHEINFO`); `Infinity` for forever. */
  readonly preferredLifetime?: number;
}

/** Options for {@link Addresses.add}. */
export interface AddressAddOptions {
  /** The link, by name or index. */
  readonly dev: LinkRef;
  /**
   * The peer of a point-to-point address (an address without a prefix
   * length; the prefix length of the CIDR applies to it).
   *
   * @default none: the address is not point-to-point
   */
  readonly peer?: string;
  /**
   * The IPv4 broadcast address.
   *
   * @default none
   */
  readonly broadcast?: string;
  /**
   * The IPv4 label (at most 15 characters, conventionally the link name
   * followed by `:` and a suffix).
   *
   * @default the link's name
   */
  readonly label?: string;
  /**
   * The scope, by name or number (0-255).
   *
   * @default "host" for 127.0.0.0/8, else "global" (as `ip addr add`)
   */
  readonly scope?: AddressScopeName | number;
  /**
   * Flags, such as `["nodad"]` so an IPv6 address is usable at once.
   *
   * @default none
   */
  readonly flags?: readonly AddressAddFlag[];
}

/** Options for {@link Addresses.delete}. */
export interface AddressDeleteOptions {
  /** The link, by name or index. */
  readonly dev: LinkRef;
  /**
   * The peer, to delete a point-to-point address.
   *
   * @default none
   */
  readonly peer?: string;
}

/** Options for {@link Addresses.list}. */
export interface AddressListOptions {
  /**
   * Only the addresses of this link.
   *
   * @default every link
   */
  readonly dev?: LinkRef;
  /**
   * Only this family.
   *
   * @default both
   */
  readonly family?: IpFamily;
}

/** An address request with its link resolved, for {@link encodeAddressRequest}. */
export interface AddressRequest extends Omit<AddressAddOptions, "dev"> {
  /** The address and prefix length, such as `"10.0.0.1/24"`. */
  readonly cidr: string;
  /** The interface index. */
  readonly index: number;
}

/** A validated request, before its link is resolved. */
interface ParsedAddress {
  readonly family: IpFamily;
  readonly local: Uint8Array;
  readonly prefixLength: number;
  /** Whether the CIDR had a prefix length (an IPv4 delete without one matches any). */
  readonly hasPrefix: boolean;
  readonly peer: Uint8Array | undefined;
  readonly broadcast: Uint8Array | undefined;
  readonly label: string | undefined;
  readonly scope: number | undefined;
  readonly flags: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function fieldIp(field: string, text: unknown, family: IpFamily): Uint8Array {
  if (typeof text !== "string") throw new TypeError(`Invalid ${field}: expected a string, got ${typeof text}`);
  let ip;
  try {
    ip = parseIp(text);
  } catch (err) {
    throw new SyntaxError(`Invalid ${field} ${JSON.stringify(text)}: not an IP address`, { cause: err });
  }
  if (ip.family !== family) {
    throw new SyntaxError(
      `Invalid ${field} ${JSON.stringify(text)}: not an IPv${family} address like the address itself`,
    );
  }
  return ip.bytes;
}

function parseScope(scope: unknown): number {
  if (typeof scope === "number") {
    if (!Number.isInteger(scope) || scope < 0 || scope > 255) throw new RangeError(`Invalid scope ${scope}: use 0-255`);
    return scope;
  }
  if (typeof scope === "string" && Object.hasOwn(SCOPES, scope)) return SCOPES[scope as AddressScopeName];
  throw new TypeError(`Invalid scope ${JSON.stringify(scope)}: use ${Object.keys(SCOPES).join(", ")} or a number`);
}

/** Validates an address and its options (everything but the link). */
function parseAddress(cidr: unknown, options: Omit<AddressAddOptions, "dev">, forDelete: boolean): ParsedAddress {
  if (typeof cidr !== "string") throw new TypeError(`Invalid address: expected a CIDR string, got ${typeof cidr}`);
  let prefix;
  try {
    prefix = parseCidr(cidr);
  } catch (err) {
    throw new SyntaxError(
      `Invalid address ${JSON.stringify(cidr)}: expected a CIDR such as "10.0.0.1/24" or "fd00::1/64"`,
      {
        cause: err,
      },
    );
  }
  const family = prefix.family;
  const peer = options.peer === undefined ? undefined : fieldIp("peer", options.peer, family);
  const broadcast = options.broadcast === undefined ? undefined : fieldIp("broadcast", options.broadcast, family);
  if (broadcast !== undefined && family !== 4)
    throw new TypeError(`Invalid broadcast for "${cidr}": only IPv4 addresses have one`);
  const label = options.label;
  if (label !== undefined) {
    if (typeof label !== "string") throw new TypeError(`Invalid label: expected a string, got ${typeof label}`);
    if (family !== 4) throw new TypeError(`Invalid label for "${cidr}": only IPv4 addresses have one`);
    if (label.length === 0 || new TextEncoder().encode(label).length > 15) {
      throw new RangeError(`Invalid label ${JSON.stringify(label)}: use 1-15 characters`);
    }
  }
  const scope = options.scope === undefined ? undefined : parseScope(options.scope);
  let flags = 0;
  if (options.flags !== undefined) {
    if (!Array.isArray(options.flags)) throw new TypeError("Invalid flags: expected an array of flag names");
    for (const f of options.flags as readonly unknown[]) {
      if (typeof f !== "string" || !Object.hasOwn(ADD_FLAGS, f)) {
        throw new TypeError(`Invalid address flag ${JSON.stringify(f)}: use ${Object.keys(ADD_FLAGS).join(", ")}`);
      }
      flags |= ADD_FLAGS[f as AddressAddFlag];
    }
  }
  const defaultScope = family === 4 && prefix.bytes[0] === 127 ? RT_SCOPE.HOST : RT_SCOPE.UNIVERSE;
  return {
    family,
    local: prefix.bytes,
    prefixLength: prefix.prefixLength,
    hasPrefix: cidr.includes("/"),
    peer,
    broadcast,
    label,
    scope: scope ?? (forDelete ? undefined : defaultScope),
    flags,
  };
}

function writeAddress(
  w: NetlinkWriter,
  type: number,
  flags: number,
  seq: number,
  a: ParsedAddress,
  index: number,
): void {
  // iproute2 (ipaddr_modify) puts flags that fit in ifa_flags there and
  // larger ones in IFA_FLAGS; it sends IFA_LOCAL, then the peer as
  // IFA_ADDRESS, IFA_BROADCAST, IFA_LABEL, IFA_FLAGS and, without a peer,
  // the local address again as IFA_ADDRESS.
  w.begin(type, flags, seq)
    .u8(a.family === 4 ? AF_INET : AF_INET6)
    .u8(a.prefixLength)
    .u8(a.flags <= 0xff ? a.flags : 0)
    .u8(a.scope ?? 0)
    .u32(index);
  w.attr(IFA.LOCAL, a.local);
  if (a.peer !== undefined) w.attr(IFA.ADDRESS, a.peer);
  if (a.broadcast !== undefined) w.attr(IFA.BROADCAST, a.broadcast);
  if (a.label !== undefined) w.attrString(IFA.LABEL, a.label);
  if (a.flags > 0xff) w.attrU32(IFA.FLAGS, a.flags);
  // An IPv4 delete without a prefix length matches any (iproute2's wildcard deletion).
  const wildcard = type === RTM.DELADDR && a.family === 4 && !a.hasPrefix;
  if (a.peer === undefined && !wildcard) w.attr(IFA.ADDRESS, a.local);
  w.end();
}

/**
 * Encodes an `RTM_NEWADDR` or `RTM_DELADDR` request the way `ip addr add`
 * and `ip addr del` do. Pure: the link is already resolved to its index.
 *
 * @param w The writer to append the message to.
 * @param type `RTM.NEWADDR` or `RTM.DELADDR`.
 * @param flags `nlmsg_flags`, such as `NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL`.
 * @param seq The sequence number.
 * @param request The address, its link index and options.
 * @throws {SyntaxError} When the CIDR, peer or broadcast is malformed.
 * @throws {TypeError} When an option has the wrong type or does not apply to the family.
 * @throws {RangeError} When the scope or label is out of range.
 * @example Encoding what ip addr add sends
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, NLM_F, parseNetlinkMessages } from "@dp/core";
 * import { encodeAddressRequest, decodeAddress } from "@dp/routing";
 *
 * const RTM_NEWADDR = 20;
 * const w = new NetlinkWriter();
 * encodeAddressRequest(w, RTM_NEWADDR, NLM_F.REQUEST | NLM_F.ACK, 1, { cidr: "10.1.0.2/24", index: 3 });
 * const [msg] = parseNetlinkMessages(w.bytes());
 * assert.equal(decodeAddress(msg!.payload).address, "10.1.0.2/24");
 * ```
 */
export function encodeAddressRequest(
  w: NetlinkWriter,
  type: number,
  flags: number,
  seq: number,
  request: AddressRequest,
): void {
  if (!isObject(request)) throw new TypeError("Invalid address request: expected an object");
  checkLinkIndex(request.index, "link index");
  writeAddress(w, type, flags, seq, parseAddress(request.cidr, request, type === RTM.DELADDR), request.index);
}

function addressText(bytes: Uint8Array): string {
  return bytes.length === 4 || bytes.length === 16
    ? formatAddress(bytes)
    : Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join(":");
}

function lifetime(v: number): number {
  return v === FOREVER ? Infinity : v;
}

/**
 * Decodes an `RTM_NEWADDR` (or `RTM_DELADDR`) payload: `struct ifaddrmsg`
 * and its attributes. Unknown attributes are ignored.
 *
 * @param payload The message payload after the netlink header.
 * @returns The address.
 * @throws {SyntaxError} When the payload is truncated, is not IPv4 or IPv6, or has no address.
 * @example Decoding what the kernel would send
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter } from "@dp/core";
 * import { decodeAddress } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * w.u8(2).u8(24).u8(0x80).u8(0).u32(3); // AF_INET, /24, permanent, global, ifindex 3
 * w.attr(1, new Uint8Array([10, 1, 0, 2])).attr(2, new Uint8Array([10, 1, 0, 2])).attrString(3, "d0");
 * const a = decodeAddress(w.bytes());
 * assert.equal(a.address, "10.1.0.2/24");
 * assert.deepEqual(a.flags, ["permanent"]);
 * assert.equal(a.scopeName, "global");
 * ```
 */
export function decodeAddress(payload: Uint8Array): Address {
  if (payload.length < IFADDRMSG) throw new SyntaxError(`Invalid RTM_NEWADDR message: ${payload.length} bytes`);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const af = dv.getUint8(0);
  if (af !== AF_INET && af !== AF_INET6)
    throw new SyntaxError(`Invalid RTM_NEWADDR message: address family ${af} is not IPv4 or IPv6`);
  const family: IpFamily = af === AF_INET ? 4 : 6;
  const prefixLength = dv.getUint8(1);
  let flagBits = dv.getUint8(2);
  const scope = dv.getUint8(3);
  const index = dv.getUint32(4, true);
  let address: Uint8Array | undefined;
  let local: Uint8Array | undefined;
  let broadcast: Uint8Array | undefined;
  let label: string | undefined;
  let cache: DataView | undefined;
  for (const a of parseNetlinkAttributes(payload.subarray(IFADDRMSG))) {
    switch (a.type) {
      case IFA.ADDRESS:
        address = a.data;
        break;
      case IFA.LOCAL:
        local = a.data;
        break;
      case IFA.BROADCAST:
        broadcast = a.data;
        break;
      case IFA.LABEL:
        label = attrString(a.data);
        break;
      case IFA.FLAGS:
        if (a.data.length >= 4) flagBits = attrU32(a.data);
        break;
      case IFA.CACHEINFO:
        if (a.data.length >= 8) cache = new DataView(a.data.buffer, a.data.byteOffset, a.data.byteLength);
        break;
      default:
        break;
    }
  }
  const mine = local ?? address;
  if (mine === undefined) throw new SyntaxError("Invalid RTM_NEWADDR message: no IFA_LOCAL or IFA_ADDRESS");
  const flags: AddressFlag[] = [];
  if (flagBits & IFA_F_SECONDARY) flags.push(family === 4 ? "secondary" : "temporary");
  for (const [bit, name] of FLAG_BITS) if (flagBits & bit) flags.push(name);
  const scopeName = (Object.keys(SCOPES) as AddressScopeName[]).find((n) => SCOPES[n] === scope);
  const localText = addressText(mine);
  const peerText = local !== undefined && address !== undefined ? addressText(address) : undefined;
  return {
    index,
    family,
    address: `${localText}/${prefixLength}`,
    prefixLength,
    ...(peerText !== undefined && peerText !== localText ? { peer: peerText } : {}),
    ...(broadcast !== undefined ? { broadcast: addressText(broadcast) } : {}),
    ...(label !== undefined ? { label } : {}),
    scope,
    ...(scopeName !== undefined ? { scopeName } : {}),
    flags,
    ...(cache !== undefined
      ? { preferredLifetime: lifetime(cache.getUint32(0, true)), validLifetime: lifetime(cache.getUint32(4, true)) }
      : {}),
  };
}

function linkText(dev: LinkRef): string {
  return typeof dev === "number" ? `link ${dev}` : JSON.stringify(dev);
}

function checkDev(options: unknown, method: string): LinkRef {
  if (!isObject(options)) throw new TypeError(`Invalid options for ${method}: expected an object with "dev"`);
  return checkLinkRef(options["dev"], `${method} dev`);
}

/**
 * The IPv4 and IPv6 addresses of a {@link Routing} handle's namespace: add,
 * delete and list, with point-to-point peers, scopes, labels and flags.
 *
 * @example Adding, listing and deleting an address
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
 * using rt = openRouting({ netns: ns.ns });
 * rt.addresses.add("10.1.0.2/24", { dev: "d0" });
 * assert.deepEqual(rt.addresses.list({ dev: "d0", family: 4 }).map((a) => a.address), ["10.1.0.2/24"]);
 * assert.equal(rt.addresses.delete("10.1.0.2/24", { dev: "d0" }), true);
 * ```
 */
export class Addresses {
  #ctx: RoutingContext;

  /**
   * Binds to a handle's context.
   *
   * @internal Reached through {@link Routing}.
   * @param ctx The handle's socket and namespace.
   */
  constructor(ctx: RoutingContext) {
    this.#ctx = ctx;
  }

  /**
   * Adds an address to a link (`ip addr add`). It fails if the link
   * already has it.
   *
   * @param cidr The address and prefix length, such as `"10.1.0.2/24"` or `"fd00::2/64"`.
   * @param options The link, and optionally a peer, broadcast, label, scope and flags.
   * @throws {SyntaxError} When the CIDR, peer or broadcast is malformed (before any system call).
   * @throws {TypeError} When an option has the wrong type or does not apply to the family.
   * @throws {RangeError} When `dev` is not a valid link name or index (1 to 2³¹−1; a name has no NUL), before any system call.
   * @throws {RangeError} When the scope or label is out of range.
   * @throws {NetlinkError} ENODEV when the link does not exist; EEXIST when the address is already assigned; other kernel refusals, with the kernel's explanation.
   * @example A point-to-point address and an IPv6 address without DAD
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
   * using rt = openRouting({ netns: ns.ns });
   * rt.addresses.add("10.1.0.2/32", { dev: "d0", peer: "10.1.0.1" });
   * rt.addresses.add("fd00::2/64", { dev: "d0", flags: ["nodad"] });
   * const [p2p] = rt.addresses.list({ dev: "d0", family: 4 });
   * assert.equal(p2p?.peer, "10.1.0.1");
   * const v6 = rt.addresses.list({ dev: "d0", family: 6 }).find((a) => a.address === "fd00::2/64");
   * assert.ok(v6?.flags.includes("nodad"));
   * assert.ok(!v6?.flags.includes("tentative"));
   * ```
   */
  add(cidr: string, options: AddressAddOptions): void {
    const dev = checkDev(options, "add()");
    const parsed = parseAddress(cidr, options, false);
    const index = linkIndex(this.#ctx, dev);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeAddress(w, RTM.NEWADDR, NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL, nl.nextSeq(), parsed, index);
    nl.request(w, `add address "${cidr}" to ${linkText(dev)}`, "RTM_NEWADDR");
  }

  /**
   * Deletes an address from a link (`ip addr del`). The prefix length must
   * match; an IPv4 address given without one matches any prefix length,
   * as with `ip addr del`. A point-to-point address needs its `peer`.
   *
   * @param cidr The address and prefix length.
   * @param options The link, and the peer of a point-to-point address.
   * @returns Whether it was deleted: false when the link has no such address.
   * @throws {SyntaxError} When the CIDR or peer is malformed (before any system call).
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When `dev` is not a valid link name or index (1 to 2³¹−1; a name has no NUL), before any system call.
   * @throws {NetlinkError} ENODEV when the link does not exist; other kernel refusals.
   * @example Deleting twice
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
   * ns.exec("ip", ["addr", "add", "10.1.0.2/24", "dev", "d0"]);
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.addresses.delete("10.1.0.2/24", { dev: "d0" }), true);
   * assert.equal(rt.addresses.delete("10.1.0.2/24", { dev: "d0" }), false);
   * ```
   */
  delete(cidr: string, options: AddressDeleteOptions): boolean {
    const dev = checkDev(options, "delete()");
    const parsed = parseAddress(cidr, options.peer === undefined ? {} : { peer: options.peer }, true);
    const index = linkIndex(this.#ctx, dev);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeAddress(w, RTM.DELADDR, NLM_F.REQUEST | NLM_F.ACK, nl.nextSeq(), parsed, index);
    try {
      nl.request(w, `delete address "${cidr}" from ${linkText(dev)}`, "RTM_DELADDR");
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === EADDRNOTAVAIL) return false;
      throw err;
    }
  }

  /**
   * Lists addresses (`ip addr show`): IPv4 first, then IPv6, in the
   * kernel's order.
   *
   * @param options Only one link, only one family.
   * @returns The addresses.
   * @throws {TypeError} When `options` is not an object, or `family` is neither 4 nor 6.
   * @throws {RangeError} When `dev` is not a valid link name or index (1 to 2³¹−1; a name has no NUL), before any system call.
   * @throws {NetlinkError} ENODEV when `dev` does not exist; a failed dump.
   * @example The loopback addresses
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * const [lo] = rt.addresses.list({ dev: "lo", family: 4 });
   * assert.equal(lo?.address, "127.0.0.1/8");
   * assert.equal(lo?.scopeName, "host");
   * ```
   */
  list(options: AddressListOptions = {}): Address[] {
    if (typeof options !== "object" || options === null)
      throw new TypeError(
        `Invalid options for list(): expected an object, got ${options === null ? "null" : typeof options}`,
      );
    const family = options.family;
    if (family !== undefined && family !== 4 && family !== 6) {
      throw new TypeError(`Invalid family ${JSON.stringify(family)}: use 4 or 6`);
    }
    const index = options.dev === undefined ? 0 : linkIndex(this.#ctx, options.dev, "list() dev", true);
    const nl = this.#ctx.nl;
    const out: Address[] = [];
    for (const f of family === undefined ? ([4, 6] as const) : [family]) {
      const w = nl.writer();
      // A strictly checked dump takes only the family and index filters.
      w.begin(RTM.GETADDR, NLM_F.REQUEST | NLM_F.DUMP, 0)
        .u8(f === 4 ? AF_INET : AF_INET6)
        .u8(0)
        .u8(0)
        .u8(0)
        .u32(index);
      w.end();
      for (const m of nl.dump(w, `list IPv${f} addresses`, "RTM_GETADDR")) {
        if (m.type !== RTM.NEWADDR) continue;
        const a = decodeAddress(m.payload);
        if (index === 0 || a.index === index) out.push(a);
      }
    }
    return out;
  }
}
