import { NetlinkError, SyscallError, withNetns } from "@dp/core";
import { readFileText, sys } from "@dp/core/internal";
import { checkLinkRef } from "./_check.ts";
import { type LinkRef, linkNameOf, type RoutingContext } from "./_context.ts";

const O_WRONLY = 1;
const O_CLOEXEC = 0o2000000;
const EINTR = 4;
const EIO = 5;
const ENODEV = 19;
const MAX_VALUE = 1 << 20;

/** Options for {@link Sysctl.setIpForward}. */
export interface SetIpForwardOptions {
  /**
   * Which family: 4 sets `net.ipv4.ip_forward`, 6 sets
   * `net.ipv6.conf.all.forwarding`, `"both"` sets both.
   *
   * @default 4
   */
  readonly family?: 4 | 6 | "both";
}

/** Options for {@link Sysctl.ipForward}. */
export interface IpForwardOptions {
  /**
   * Which family: 4 reads `net.ipv4.ip_forward`, 6 reads
   * `net.ipv6.conf.all.forwarding`.
   *
   * @default 4
   */
  readonly family?: 4 | 6;
}

/**
 * A reverse-path filter mode (`rp_filter`): 0 off, 1 strict (RFC 3704),
 * 2 loose.
 */
export type RpFilterMode = 0 | 1 | 2;

function checkPart(part: string, what: string): void {
  if (part.length === 0 || part === "." || part === ".." || part.includes("/") || part.includes("\0")) {
    throw new RangeError(`Invalid ${what}: ${JSON.stringify(part)} is not a sysctl name component`);
  }
}

/** Splits and checks a dotted `net.*` name. */
function nameParts(name: unknown): string[] {
  if (typeof name !== "string") throw new TypeError(`Invalid sysctl name: expected a string, got ${typeof name}`);
  const parts = name.split(".");
  if (parts[0] !== "net" || parts.length < 2) {
    throw new RangeError(`Invalid sysctl name ${JSON.stringify(name)}: only names under "net." are per namespace`);
  }
  for (const p of parts) {
    if (p.length === 0 || p.includes("/") || p.includes("\0")) {
      throw new RangeError(
        `Invalid sysctl name ${JSON.stringify(name)}: empty parts, "..", "/" and NUL are not allowed`,
      );
    }
  }
  return parts;
}

function valueText(name: string, value: unknown): string {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value))
      throw new RangeError(`Invalid value ${value} for sysctl "${name}": use an integer`);
    return String(value);
  }
  if (typeof value !== "string")
    throw new TypeError(`Invalid value for sysctl "${name}": expected a string or number, got ${typeof value}`);
  if (value.includes("\0")) throw new RangeError(`Invalid value for sysctl "${name}": NUL is not allowed`);
  return value;
}

function fail(what: string, syscall: string, ret: number): never {
  throw new SyscallError(what, { syscall, op: syscall, errno: -ret });
}

function writeFile(path: string, text: string, what: string): void {
  const s = sys();
  let fd: number;
  do fd = s.open(path, O_WRONLY | O_CLOEXEC, 0);
  while (fd === -EINTR);
  if (fd < 0) fail(what, "open", fd);
  try {
    // One write: procfs handlers parse the whole value from a single call.
    const bytes = new TextEncoder().encode(`${text}\n`);
    let n: number;
    do n = s.write(fd, bytes, bytes.length);
    while (n === -EINTR);
    if (n < 0) fail(what, "write", n);
    if (n !== bytes.length) fail(`${what}: only ${n} of ${bytes.length} bytes were written`, "write", -EIO);
  } finally {
    s.close(fd);
  }
}

/**
 * The per-namespace `net.*` sysctls of a {@link Routing} handle's
 * namespace, read and written through `/proc/sys/net`.
 *
 * The kernel serves `/proc/sys/net` from the network namespace of the
 * thread that opens the file, so each access briefly enters the handle's
 * namespace (`setns`) on the calling thread, opens, reads or writes, and
 * returns. Values in other namespaces, the host's included, are never
 * touched.
 *
 * Names are dotted, as with `sysctl(8)`: `"net.ipv4.ip_forward"`. An
 * interface whose name contains a dot is reachable through the per-link
 * helpers ({@link Sysctl.setRpFilter}, {@link Sysctl.setProxyArp}), which
 * take the interface name as one component.
 *
 * @example Forwarding in a namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * rt.sysctl.setIpForward(true);
 * assert.equal(rt.sysctl.get("net.ipv4.ip_forward"), "1");
 * assert.equal(ns.exec("sysctl", ["-n", "net.ipv4.ip_forward"]).trim(), "1");
 * ```
 */
export class Sysctl {
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
   * Reads a sysctl.
   *
   * @param name A dotted name under `net.`, such as `"net.ipv4.conf.all.rp_filter"`.
   * @returns The value without surrounding white space (multi-value sysctls keep their inner tabs).
   * @throws {TypeError} When `name` is not a string.
   * @throws {RangeError} When `name` is not under `net.` or has empty parts, `/` or NUL (before any system call).
   * @throws {SyscallError} ENOENT when there is no such sysctl (such as a missing interface); other failures of open or read.
   * @example Reading a value
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.match(rt.sysctl.get("net.ipv4.ip_local_port_range"), /^\d+\s+\d+$/);
   * ```
   */
  get(name: string): string {
    return this.#read(nameParts(name), name);
  }

  /**
   * Writes a sysctl.
   *
   * @param name A dotted name under `net.`, such as `"net.ipv4.ip_forward"`.
   * @param value The value; numbers must be integers.
   * @throws {TypeError} When `name` or `value` has the wrong type.
   * @throws {RangeError} When `name` is not under `net.` or is malformed, or `value` is not an integer (before any system call).
   * @throws {SyscallError} ENOENT when there is no such sysctl; EINVAL when the kernel rejects the value; other failures of open or write.
   * @example Writing a value
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.sysctl.set("net.ipv4.conf.all.arp_ignore", 1);
   * assert.equal(rt.sysctl.get("net.ipv4.conf.all.arp_ignore"), "1");
   * ```
   */
  set(name: string, value: string | number): void {
    const parts = nameParts(name);
    this.#write(parts, name, valueText(name, value));
  }

  /**
   * Whether IP forwarding is on (`net.ipv4.ip_forward`, or
   * `net.ipv6.conf.all.forwarding` for family 6).
   *
   * @param options The family.
   * @returns True when the value is not 0.
   * @throws {TypeError} When `family` is neither 4 nor 6.
   * @throws {SyscallError} When the sysctl cannot be read (ENOENT for IPv6 when IPv6 is disabled).
   * @example A new namespace does not forward
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.sysctl.ipForward({ family: 6 }), false);
   * ```
   */
  ipForward(options: IpForwardOptions = {}): boolean {
    const family = options.family ?? 4;
    if (family !== 4 && family !== 6) throw new TypeError(`Invalid family ${JSON.stringify(family)}: use 4 or 6`);
    return this.get(forwardName(family)) !== "0";
  }

  /**
   * Turns IP forwarding on or off.
   *
   * @param enabled On or off.
   * @param options The family, or both.
   * @throws {TypeError} When `enabled` is not a boolean or `family` is unknown.
   * @throws {SyscallError} When the sysctl cannot be written.
   * @example IPv4 and IPv6 forwarding
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.sysctl.setIpForward(true, { family: "both" });
   * assert.equal(rt.sysctl.ipForward({ family: 4 }), true);
   * assert.equal(rt.sysctl.ipForward({ family: 6 }), true);
   * ```
   */
  setIpForward(enabled: boolean, options: SetIpForwardOptions = {}): void {
    if (typeof enabled !== "boolean")
      throw new TypeError(`Invalid ip forwarding ${JSON.stringify(enabled)}: use true or false`);
    const family = options.family ?? 4;
    if (family !== 4 && family !== 6 && family !== "both") {
      throw new TypeError(`Invalid family ${JSON.stringify(family)}: use 4, 6 or "both"`);
    }
    for (const f of family === "both" ? ([4, 6] as const) : [family]) this.set(forwardName(f), enabled ? 1 : 0);
  }

  /**
   * Reads a link's reverse-path filter mode
   * (`net.ipv4.conf.<dev>.rp_filter`). The kernel applies the larger of
   * the link's value and `all`'s.
   *
   * @param dev The link by name or index, or `"all"` or `"default"`.
   * @returns The mode (the kernel accepts other numbers too, returned as they are).
   * @throws {TypeError} When `dev` has the wrong type.
   * @throws {RangeError} When `dev` is not a valid interface name.
   * @throws {SyscallError} ENOENT when there is no such link.
   * @throws {NetlinkError} ENODEV when `dev` is an index no link has.
   * @example Loose mode on one link
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.sysctl.setRpFilter("lo", 2);
   * assert.equal(rt.sysctl.rpFilter("lo"), 2);
   * ```
   */
  rpFilter(dev: LinkRef): number {
    const parts = ["net", "ipv4", "conf", this.#linkPart(dev), "rp_filter"];
    return Number(this.#read(parts, parts.join(".")));
  }

  /**
   * Sets a link's reverse-path filter mode.
   *
   * @param dev The link by name or index, or `"all"` or `"default"` (for links created later).
   * @param mode 0 off, 1 strict, 2 loose.
   * @throws {TypeError} When `dev` has the wrong type.
   * @throws {RangeError} When `mode` is not 0, 1 or 2, or `dev` is not a valid interface name (before any system call).
   * @throws {SyscallError} ENOENT when there is no such link.
   * @throws {NetlinkError} ENODEV when `dev` is an index no link has.
   * @example Loose mode for every link
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.sysctl.setRpFilter("all", 2);
   * assert.equal(rt.sysctl.get("net.ipv4.conf.all.rp_filter"), "2");
   * ```
   */
  setRpFilter(dev: LinkRef, mode: RpFilterMode): void {
    if (mode !== 0 && mode !== 1 && mode !== 2)
      throw new RangeError(`Invalid rp_filter mode ${JSON.stringify(mode)}: use 0, 1 or 2`);
    const parts = ["net", "ipv4", "conf", this.#linkPart(dev), "rp_filter"];
    this.#write(parts, parts.join("."), String(mode));
  }

  /**
   * Whether a link answers ARP requests for addresses it routes elsewhere
   * (`net.ipv4.conf.<dev>.proxy_arp`).
   *
   * @param dev The link by name or index, or `"all"` or `"default"`.
   * @returns True when the value is not 0.
   * @throws {TypeError} When `dev` has the wrong type.
   * @throws {RangeError} When `dev` is not a valid interface name.
   * @throws {SyscallError} ENOENT when there is no such link.
   * @throws {NetlinkError} ENODEV when `dev` is an index no link has.
   * @example Off by default
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.equal(rt.sysctl.proxyArp("lo"), false);
   * ```
   */
  proxyArp(dev: LinkRef): boolean {
    const parts = ["net", "ipv4", "conf", this.#linkPart(dev), "proxy_arp"];
    return this.#read(parts, parts.join(".")) !== "0";
  }

  /**
   * Turns proxy ARP on or off for a link.
   *
   * @param dev The link by name or index, or `"all"` or `"default"`.
   * @param enabled On or off.
   * @throws {TypeError} When `enabled` is not a boolean or `dev` has the wrong type.
   * @throws {RangeError} When `dev` is not a valid interface name (before any system call).
   * @throws {SyscallError} ENOENT when there is no such link.
   * @throws {NetlinkError} ENODEV when `dev` is an index no link has.
   * @example Proxy ARP on a veth
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * ns.exec("ip", ["link", "add", "d0", "type", "veth", "peer", "name", "d1"]);
   * using rt = openRouting({ netns: ns.ns });
   * rt.sysctl.setProxyArp("d0", true);
   * assert.equal(ns.exec("sysctl", ["-n", "net.ipv4.conf.d0.proxy_arp"]).trim(), "1");
   * ```
   */
  setProxyArp(dev: LinkRef, enabled: boolean): void {
    if (typeof enabled !== "boolean")
      throw new TypeError(`Invalid proxy_arp ${JSON.stringify(enabled)}: use true or false`);
    const parts = ["net", "ipv4", "conf", this.#linkPart(dev), "proxy_arp"];
    this.#write(parts, parts.join("."), enabled ? "1" : "0");
  }

  /** A link's directory name under conf/ (an index is resolved to its name). */
  #linkPart(dev: LinkRef): string {
    checkLinkRef(dev, "link", "match");
    if (typeof dev === "number") {
      const name = linkNameOf(this.#ctx, dev);
      if (name === undefined) throw new NetlinkError(`Cannot find link ${dev}`, { op: "RTM_GETLINK", errno: ENODEV });
      return name;
    }
    checkPart(dev, "link name");
    return dev;
  }

  #read(parts: readonly string[], name: string): string {
    const path = `/proc/sys/${parts.join("/")}`;
    const what = `Cannot read sysctl "${name}"`;
    return this.#inNetns(() => readFileText(path, { what, maxBytes: MAX_VALUE })).trim();
  }

  #write(parts: readonly string[], name: string, value: string): void {
    const path = `/proc/sys/${parts.join("/")}`;
    const what = `Cannot set sysctl "${name}" to ${JSON.stringify(value)}`;
    this.#inNetns(() => writeFile(path, value, what));
  }

  #inNetns<T>(fn: () => T): T {
    const ns = this.#ctx.netns;
    return ns === undefined ? fn() : withNetns(ns, fn);
  }
}

function forwardName(family: 4 | 6): string {
  return family === 4 ? "net.ipv4.ip_forward" : "net.ipv6.conf.all.forwarding";
}
