import {
  attrU16,
  attrU32,
  formatMac,
  type IpFamily,
  NetlinkError,
  type NetlinkMessage,
  type NetlinkWriter,
  NLM_F,
  parseIp,
  parseMac,
  parseNetlinkAttributes,
} from "@dp/core";
import { NDA, RTM } from "@dp/core/internal";
import { checkLinkIndex, checkLinkRef } from "./_check.ts";
import { type LinkRef, linkIndex, type RoutingContext } from "./_context.ts";
import { formatAddress } from "./_text.ts";

const AF_INET = 2;
const AF_INET6 = 10;
const AF_BRIDGE = 7;
/** `sizeof(struct ndmsg)`: family, pad1, pad2, ifindex, state, flags, type. */
const NDMSG = 12;
const ENOENT = 2;

// NUD_* and NTF_* from <linux/neighbour.h> (#defines, so not in the generated enums).
const NUD: Readonly<Record<Exclude<NeighborState, "none">, number>> = {
  incomplete: 0x01,
  reachable: 0x02,
  stale: 0x04,
  delay: 0x08,
  probe: 0x10,
  failed: 0x20,
  noarp: 0x40,
  permanent: 0x80,
};
const NTF_BITS: readonly (readonly [number, NeighborFlag])[] = [
  [0x01, "use"], // NTF_USE
  [0x02, "self"], // NTF_SELF
  [0x04, "master"], // NTF_MASTER
  [0x08, "proxy"], // NTF_PROXY
  [0x10, "extern_learn"], // NTF_EXT_LEARNED
  [0x20, "offload"], // NTF_OFFLOADED
  [0x40, "sticky"], // NTF_STICKY
  [0x80, "router"], // NTF_ROUTER
];
const NTF_EXT_BITS: readonly (readonly [number, NeighborFlag])[] = [
  [0x01, "managed"], // NTF_EXT_MANAGED
  [0x02, "locked"], // NTF_EXT_LOCKED
];

/**
 * A neighbour entry's state (`NUD_*`), named as `ip neigh` prints it in
 * lower case.
 */
export type NeighborState =
  "permanent" | "reachable" | "stale" | "noarp" | "failed" | "incomplete" | "delay" | "probe" | "none";

/** A neighbour entry flag (`NTF_*` and `NTF_EXT_*`), named as `ip neigh` prints it. */
export type NeighborFlag =
  "use" | "self" | "master" | "proxy" | "extern_learn" | "offload" | "sticky" | "router" | "managed" | "locked";

/**
 * The table an entry belongs to: IPv4 (ARP), IPv6 (NDP), or `"bridge"` for
 * a bridge or VXLAN forwarding database entry (`AF_BRIDGE`), which the
 * event stream reports too; `"other"` for anything else.
 */
export type NeighborFamily = IpFamily | "bridge" | "other";

/**
 * A neighbour entry, decoded from the kernel's `RTM_NEWNEIGH`
 * (`struct ndmsg` plus `NDA_*` attributes).
 */
export interface Neighbor {
  /** The interface index. */
  readonly index: number;
  /** 4 or 6; `"bridge"` for forwarding database entries. */
  readonly family: NeighborFamily;
  /** The IP address (`NDA_DST`); always present for IPv4 and IPv6 entries, the remote VTEP of a VXLAN FDB entry. */
  readonly ip?: string;
  /** The link-layer address (`NDA_LLADDR`), absent while unresolved. */
  readonly mac?: string;
  /** The state. */
  readonly state: NeighborState;
  /** The flags. */
  readonly flags: readonly NeighborFlag[];
  /** The VLAN of a bridge FDB entry (`NDA_VLAN`). */
  readonly vlan?: number;
  /** The master (bridge) index of a bridge FDB entry (`NDA_MASTER`). */
  readonly master?: number;
}

/** Options for {@link Neighbors.add} and {@link Neighbors.replace}. */
export interface NeighborAddOptions {
  /** The IP address, such as `"10.0.0.1"` or `"fd00::1"`. */
  readonly ip: string;
  /** The link-layer address, such as `"02:00:00:00:00:01"`. */
  readonly mac: string;
  /** The link, by name or index. */
  readonly dev: LinkRef;
  /**
   * The state; `"permanent"` entries never expire, `"noarp"` entries are
   * valid without probing, `"stale"` and `"reachable"` ones are checked by
   * the kernel as usual.
   *
   * @default "permanent"
   */
  readonly state?: NeighborState;
}

/** Options for {@link Neighbors.delete} and {@link Neighbors.get}: which entry. */
export interface NeighborKey {
  /** The IP address. */
  readonly ip: string;
  /** The link, by name or index. */
  readonly dev: LinkRef;
}

/** Options for {@link Neighbors.list}. */
export interface NeighborListOptions {
  /**
   * Only the entries of this link.
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

/** A neighbour request with its link resolved, for {@link encodeNeighborRequest}. */
export interface NeighborRequest {
  /** The IP address. */
  readonly ip: string;
  /**
   * The link-layer address.
   *
   * @default none (as for a delete)
   */
  readonly mac?: string;
  /** The interface index. */
  readonly index: number;
  /**
   * The state.
   *
   * @default "permanent"
   */
  readonly state?: NeighborState;
}

interface ParsedNeighbor {
  readonly family: IpFamily;
  readonly ip: Uint8Array;
  readonly mac: Uint8Array | undefined;
  readonly state: number;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function parseState(state: unknown): number {
  if (state === undefined) return NUD.permanent;
  if (state === "none") return 0;
  if (typeof state === "string" && Object.hasOwn(NUD, state)) return NUD[state as keyof typeof NUD];
  throw new TypeError(
    `Invalid neighbour state ${JSON.stringify(state)}: use ${[...Object.keys(NUD), "none"].join(", ")}`,
  );
}

function parseNeighbor(ip: unknown, mac: unknown, state: unknown, needMac: boolean): ParsedNeighbor {
  if (typeof ip !== "string") throw new TypeError(`Invalid ip: expected a string, got ${typeof ip}`);
  let addr;
  try {
    addr = parseIp(ip);
  } catch (err) {
    throw new SyntaxError(`Invalid ip ${JSON.stringify(ip)}: not an IP address`, { cause: err });
  }
  let lladdr: Uint8Array | undefined;
  if (mac !== undefined || needMac) {
    if (typeof mac !== "string") throw new TypeError(`Invalid mac: expected a string, got ${typeof mac}`);
    try {
      lladdr = parseMac(mac);
    } catch (err) {
      throw new SyntaxError(`Invalid mac ${JSON.stringify(mac)}: expected six hex bytes like "02:00:00:aa:bb:cc"`, {
        cause: err,
      });
    }
  }
  return { family: addr.family, ip: addr.bytes, mac: lladdr, state: parseState(state) };
}

function writeNeighbor(
  w: NetlinkWriter,
  type: number,
  flags: number,
  seq: number,
  n: ParsedNeighbor,
  index: number,
): void {
  // struct ndmsg, then NDA_DST and NDA_LLADDR, as `ip neigh` sends them.
  w.begin(type, flags, seq)
    .u8(n.family === 4 ? AF_INET : AF_INET6)
    .u8(0)
    .u16(0)
    .s32(index)
    .u16(n.state)
    .u8(0)
    .u8(0);
  w.attr(NDA.DST, n.ip);
  if (n.mac !== undefined) w.attr(NDA.LLADDR, n.mac);
  w.end();
}

/**
 * Encodes an `RTM_NEWNEIGH` or `RTM_DELNEIGH` request the way `ip neigh
 * add`, `replace` and `del` do. Pure: the link is already resolved.
 *
 * @param w The writer to append the message to.
 * @param type `RTM.NEWNEIGH` or `RTM.DELNEIGH`.
 * @param flags `nlmsg_flags`, such as `NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL`.
 * @param seq The sequence number.
 * @param request The entry and its link index.
 * @throws {SyntaxError} When the IP or MAC address is malformed.
 * @throws {TypeError} When the state is unknown or a field has the wrong type.
 * @throws {RangeError} When the index is not a positive integer.
 * @example Encoding what ip neigh add sends
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, NLM_F, parseNetlinkMessages } from "@dp/core";
 * import { decodeNeighbor, encodeNeighborRequest } from "@dp/routing";
 *
 * const RTM_NEWNEIGH = 28;
 * const w = new NetlinkWriter();
 * encodeNeighborRequest(w, RTM_NEWNEIGH, NLM_F.REQUEST | NLM_F.ACK, 1, { ip: "10.1.0.1", mac: "02:00:00:00:00:01", index: 3 });
 * const [msg] = parseNetlinkMessages(w.bytes());
 * const n = decodeNeighbor(msg!.payload);
 * assert.equal(n.mac, "02:00:00:00:00:01");
 * assert.equal(n.state, "permanent");
 * ```
 */
export function encodeNeighborRequest(
  w: NetlinkWriter,
  type: number,
  flags: number,
  seq: number,
  request: NeighborRequest,
): void {
  if (!isObject(request)) throw new TypeError("Invalid neighbour request: expected an object");
  checkLinkIndex(request.index, "link index");
  writeNeighbor(w, type, flags, seq, parseNeighbor(request.ip, request.mac, request.state, false), request.index);
}

function stateName(bits: number): NeighborState {
  for (const [name, bit] of Object.entries(NUD) as [NeighborState, number][]) if (bits === bit) return name;
  // Not a single known bit: name the lowest one that is set.
  for (const [name, bit] of Object.entries(NUD) as [NeighborState, number][]) if (bits & bit) return name;
  return "none";
}

/**
 * Decodes an `RTM_NEWNEIGH` (or `RTM_DELNEIGH`) payload: `struct ndmsg` and
 * its attributes. Unknown attributes are ignored; bridge FDB entries
 * (`AF_BRIDGE`) decode with `family: "bridge"`.
 *
 * @param payload The message payload after the netlink header.
 * @returns The entry.
 * @throws {SyntaxError} When the payload is shorter than `struct ndmsg`.
 * @example Decoding what the kernel would send
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter } from "@dp/core";
 * import { decodeNeighbor } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * w.u8(2).u8(0).u16(0).s32(3).u16(0x02).u8(0x80).u8(1); // AF_INET, ifindex 3, reachable, router
 * w.attr(1, new Uint8Array([10, 1, 0, 1])).attr(2, new Uint8Array([2, 0, 0, 0, 0, 1]));
 * const n = decodeNeighbor(w.bytes());
 * assert.deepEqual(n, { index: 3, family: 4, ip: "10.1.0.1", mac: "02:00:00:00:00:01", state: "reachable", flags: ["router"] });
 * ```
 */
export function decodeNeighbor(payload: Uint8Array): Neighbor {
  if (payload.length < NDMSG) throw new SyntaxError(`Invalid RTM_NEWNEIGH message: ${payload.length} bytes`);
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const af = dv.getUint8(0);
  const family: NeighborFamily = af === AF_INET ? 4 : af === AF_INET6 ? 6 : af === AF_BRIDGE ? "bridge" : "other";
  const index = dv.getInt32(4, true);
  const state = dv.getUint16(8, true);
  const ntf = dv.getUint8(10);
  let ip: string | undefined;
  let mac: string | undefined;
  let vlan: number | undefined;
  let master: number | undefined;
  let ext = 0;
  for (const a of parseNetlinkAttributes(payload.subarray(NDMSG))) {
    switch (a.type) {
      case NDA.DST:
        if (a.data.length === 4 || a.data.length === 16) ip = formatAddress(a.data);
        break;
      case NDA.LLADDR:
        if (a.data.length > 0) mac = formatMac(a.data);
        break;
      case NDA.VLAN:
        if (a.data.length >= 2) vlan = attrU16(a.data);
        break;
      case NDA.MASTER:
        if (a.data.length >= 4) master = attrU32(a.data);
        break;
      case NDA.FLAGS_EXT:
        if (a.data.length >= 4) ext = attrU32(a.data);
        break;
      default:
        break;
    }
  }
  const flags: NeighborFlag[] = [];
  for (const [bit, name] of NTF_BITS) if (ntf & bit) flags.push(name);
  for (const [bit, name] of NTF_EXT_BITS) if (ext & bit) flags.push(name);
  return {
    index,
    family,
    ...(ip !== undefined ? { ip } : {}),
    ...(mac !== undefined ? { mac } : {}),
    state: stateName(state),
    flags,
    ...(vlan !== undefined ? { vlan } : {}),
    ...(master !== undefined ? { master } : {}),
  };
}

function checkKey(options: unknown, method: string): LinkRef {
  if (!isObject(options)) throw new TypeError(`Invalid options for ${method}: expected an object with "ip" and "dev"`);
  return checkLinkRef(options["dev"], `${method} dev`);
}

function entryText(ip: string, dev: LinkRef): string {
  return `neighbour "${ip}" on ${typeof dev === "number" ? `link ${dev}` : JSON.stringify(dev)}`;
}

/**
 * The neighbour (ARP and NDP) entries of a {@link Routing} handle's
 * namespace: add, replace, delete, look up and list, permanent entries
 * included.
 *
 * @example A static ARP entry
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
 * using rt = openRouting({ netns: ns.ns });
 * rt.neighbors.add({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "d0" });
 * assert.equal(rt.neighbors.get({ ip: "10.1.0.1", dev: "d0" })?.state, "permanent");
 * assert.equal(rt.neighbors.delete({ ip: "10.1.0.1", dev: "d0" }), true);
 * ```
 */
export class Neighbors {
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
   * Adds an entry (`ip neigh add`); it fails if the link already has one
   * for the address.
   *
   * @param options The address, MAC, link and state.
   * @throws {SyntaxError} When the IP or MAC address is malformed (before any system call).
   * @throws {TypeError} When the state is unknown or a field has the wrong type.
   * @throws {RangeError} When `dev` is not a valid link name or index (1 to 2³¹−1; a name has no NUL), before any system call.
   * @throws {NetlinkError} ENODEV when the link does not exist; EEXIST when the entry exists; other kernel refusals.
   * @example An IPv6 entry
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
   * using rt = openRouting({ netns: ns.ns });
   * rt.neighbors.add({ ip: "fd00::1", mac: "02:00:00:00:00:03", dev: "d0" });
   * const [n] = rt.neighbors.list({ dev: "d0", family: 6 }).filter((e) => e.state === "permanent");
   * assert.equal(n?.ip, "fd00::1");
   * ```
   */
  add(options: NeighborAddOptions): void {
    this.#modify(options, NLM_F.CREATE | NLM_F.EXCL, "add");
  }

  /**
   * Adds an entry or replaces the existing one (`ip neigh replace`).
   *
   * @param options The address, MAC, link and state.
   * @throws {SyntaxError} When the IP or MAC address is malformed (before any system call).
   * @throws {TypeError} When the state is unknown or a field has the wrong type.
   * @throws {RangeError} When `dev` is not a valid link name or index (1 to 2³¹−1; a name has no NUL), before any system call.
   * @throws {NetlinkError} ENODEV when the link does not exist; other kernel refusals.
   * @example Changing a MAC address
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
   * using rt = openRouting({ netns: ns.ns });
   * rt.neighbors.replace({ ip: "10.1.0.1", mac: "02:00:00:00:00:01", dev: "d0" });
   * rt.neighbors.replace({ ip: "10.1.0.1", mac: "02:00:00:00:00:02", dev: "d0" });
   * assert.equal(rt.neighbors.get({ ip: "10.1.0.1", dev: "d0" })?.mac, "02:00:00:00:00:02");
   * ```
   */
  replace(options: NeighborAddOptions): void {
    this.#modify(options, NLM_F.CREATE | NLM_F.REPLACE, "replace");
  }

  /**
   * Deletes an entry (`ip neigh del`).
   *
   * @param key The address and link.
   * @returns Whether it was deleted: false when there was no such entry.
   * @throws {SyntaxError} When the IP address is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type.
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
   * ns.exec("ip", ["neigh", "add", "10.1.0.1", "lladdr", "02:00:00:00:00:01", "dev", "d0"]);
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.neighbors.delete({ ip: "10.1.0.1", dev: "d0" }), true);
   * assert.equal(rt.neighbors.delete({ ip: "10.1.0.1", dev: "d0" }), false);
   * ```
   */
  delete(key: NeighborKey): boolean {
    const dev = checkKey(key, "delete()");
    const parsed = parseNeighbor(key.ip, undefined, undefined, false);
    const index = linkIndex(this.#ctx, dev);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeNeighbor(w, RTM.DELNEIGH, NLM_F.REQUEST | NLM_F.ACK, nl.nextSeq(), parsed, index);
    try {
      nl.request(w, `delete ${entryText(key.ip, dev)}`, "RTM_DELNEIGH");
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  /**
   * Looks up one entry (`ip neigh get`), whatever its state.
   *
   * @param key The address and link.
   * @returns The entry, or undefined when there is none.
   * @throws {SyntaxError} When the IP address is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {RangeError} When `dev` is not a valid link name or index (1 to 2³¹−1; a name has no NUL), before any system call.
   * @throws {NetlinkError} ENODEV when the link does not exist; other kernel refusals.
   * @example A missing entry
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.neighbors.get({ ip: "10.1.0.9", dev: "lo" }), undefined);
   * ```
   */
  get(key: NeighborKey): Neighbor | undefined {
    const dev = checkKey(key, "get()");
    const parsed = parseNeighbor(key.ip, undefined, "none", false);
    const index = linkIndex(this.#ctx, dev);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    // No NLM_F_ACK: the reply (or the error) is the answer.
    writeNeighbor(w, RTM.GETNEIGH, NLM_F.REQUEST, nl.nextSeq(), parsed, index);
    let replies: NetlinkMessage[];
    try {
      replies = nl.request(w, `get ${entryText(key.ip, dev)}`, "RTM_GETNEIGH");
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENOENT) return undefined;
      throw err;
    }
    const reply = replies.find((m) => m.type === RTM.NEWNEIGH);
    return reply === undefined ? undefined : decodeNeighbor(reply.payload);
  }

  /**
   * Lists the IPv4 and IPv6 entries (`ip neigh show nud all`): IPv4 first.
   * Unlike `ip neigh show`, `noarp` entries (multicast, loopback) are
   * included; proxy entries (`ip neigh add proxy`) and bridge FDB entries
   * are not.
   *
   * @param options Only one link, only one family.
   * @returns The entries.
   * @throws {TypeError} When `options` is not an object, or `family` is neither 4 nor 6.
   * @throws {RangeError} When `dev` is not a valid link name or index (1 to 2³¹−1; a name has no NUL), before any system call.
   * @throws {NetlinkError} ENODEV when `dev` does not exist; a failed dump.
   * @example Only permanent IPv4 entries
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
   * ns.exec("ip", ["neigh", "add", "10.1.0.1", "lladdr", "02:00:00:00:00:01", "dev", "d0"]);
   * using rt = openRouting({ netns: ns.ns });
   * const entries = rt.neighbors.list({ dev: "d0", family: 4 });
   * assert.deepEqual(entries.map((n) => [n.ip, n.mac, n.state]), [["10.1.0.1", "02:00:00:00:00:01", "permanent"]]);
   * ```
   */
  list(options: NeighborListOptions = {}): Neighbor[] {
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
    const out: Neighbor[] = [];
    for (const f of family === undefined ? ([4, 6] as const) : [family]) {
      const w = nl.writer();
      // A strictly checked dump takes only NDA_IFINDEX and NDA_MASTER filters.
      w.begin(RTM.GETNEIGH, NLM_F.REQUEST | NLM_F.DUMP, 0)
        .u8(f === 4 ? AF_INET : AF_INET6)
        .u8(0)
        .u16(0)
        .s32(0)
        .u16(0)
        .u8(0)
        .u8(0);
      if (index !== 0) w.attrU32(NDA.IFINDEX, index);
      w.end();
      for (const m of nl.dump(w, `list IPv${f} neighbours`, "RTM_GETNEIGH")) {
        if (m.type !== RTM.NEWNEIGH) continue;
        const n = decodeNeighbor(m.payload);
        if (index === 0 || n.index === index) out.push(n);
      }
    }
    return out;
  }

  #modify(options: NeighborAddOptions, create: number, verb: string): void {
    const dev = checkKey(options, `${verb}()`);
    const parsed = parseNeighbor(options.ip, options.mac, options.state, true);
    const index = linkIndex(this.#ctx, dev);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeNeighbor(w, RTM.NEWNEIGH, NLM_F.REQUEST | NLM_F.ACK | create, nl.nextSeq(), parsed, index);
    nl.request(w, `${verb} ${entryText(options.ip, dev)}`, "RTM_NEWNEIGH");
  }
}
