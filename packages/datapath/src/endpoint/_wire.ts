// The kernel side of an endpoint outside the BPF maps: the veth pair (the
// peer straight into the pod's namespace), addresses, the pod's routes via
// the router address, the host-side router address and endpoint route,
// per-device forwarding. All through @dp/routing (rtnetlink), never `ip`.
import type { Netns } from "@dp/core";
import { openRouting, type Routing } from "@dp/routing";
import { EndpointError } from "./endpoint.ts";

/** What {@link wireEndpoint} needs. */
export interface WireSpec {
  /** The node's routing handle. */
  readonly node: Routing;
  /** The pod's namespace. */
  readonly podNetns: Netns;
  /** The interface name in the pod. */
  readonly ifname: string;
  /** The host-side name. */
  readonly hostIfname: string;
  /** Pod addresses. */
  readonly ipv4: string;
  /** Pod IPv6 address. */
  readonly ipv6: string | undefined;
  /** Router addresses. */
  readonly router: { readonly ipv4: string; readonly ipv6: string | undefined };
}

/** What {@link wireEndpoint} made. */
export interface Wired {
  /** Host-side index. */
  readonly hostIfindex: number;
  /** Host-side MAC. */
  readonly hostMac: string;
  /** Pod-side MAC. */
  readonly mac: string;
}

/**
 * Creates the veth pair and the addresses and routes of both ends. On
 * failure the pair is deleted again (which takes the addresses and routes
 * with it) and the error rethrown.
 *
 * @param w The endpoint's wiring.
 * @returns The host-side index and both MACs.
 */
export function wireEndpoint(w: WireSpec): Wired {
  const { node } = w;
  const host = node.links.add({ kind: "veth", name: w.hostIfname, peer: { name: w.ifname, netns: w.podNetns } });
  try {
    using pod = openRouting({ netns: w.podNetns });
    // Forwarding on the input device as well (the FIB lookup of BPF host routing checks it).
    node.sysctl.set(`net.ipv4.conf.${w.hostIfname}.forwarding`, 1);
    if (w.ipv6 !== undefined) node.sysctl.set(`net.ipv6.conf.${w.hostIfname}.forwarding`, 1);
    node.links.set(host.index, { up: true });
    pod.links.set(w.ifname, { up: true });
    // The router address on the host side answers the pod's ARP / NDP for its gateway.
    node.addresses.add(`${w.router.ipv4}/32`, { dev: host.index });
    node.routes.add({ dst: `${w.ipv4}/32`, dev: host.index });
    pod.addresses.add(`${w.ipv4}/32`, { dev: w.ifname });
    pod.routes.add({ dst: `${w.router.ipv4}/32`, dev: w.ifname, scope: "link" });
    pod.routes.add({ dst: "default", via: w.router.ipv4, dev: w.ifname });
    if (w.ipv6 !== undefined && w.router.ipv6 !== undefined) {
      node.addresses.add(`${w.router.ipv6}/128`, { dev: host.index, flags: ["nodad"] });
      node.routes.add({ dst: `${w.ipv6}/128`, dev: host.index });
      pod.addresses.add(`${w.ipv6}/128`, { dev: w.ifname, flags: ["nodad"] });
      pod.routes.add({ dst: `${w.router.ipv6}/128`, dev: w.ifname });
      pod.routes.add({ dst: "default", via: w.router.ipv6, dev: w.ifname });
    }
    const hostMac = node.links.get(host.index)?.mac;
    const mac = pod.links.get(w.ifname)?.mac;
    if (hostMac === undefined || mac === undefined)
      throw new TypeError(`Cannot wire endpoint: the veth pair ${w.hostIfname} has no MAC`);
    return { hostIfindex: host.index, hostMac, mac };
  } catch (err) {
    node.links.delete(host.index);
    throw err;
  }
}

/**
 * Deletes the veth pair (its peer, addresses and routes go with it).
 *
 * @param node The node's routing handle.
 * @param hostIfindex The host side.
 * @param hostIfname Its name, checked so that a reused index is left alone.
 * @returns Whether it was there.
 */
export function unwireEndpoint(node: Routing, hostIfindex: number, hostIfname: string): boolean {
  const link = node.links.get(hostIfindex);
  if (link === undefined || link.name !== hostIfname) return false;
  return node.links.delete(hostIfindex);
}

/** What {@link findExisting} found of an interface another plugin made. */
export interface Existing extends Wired {
  /** The host-side veth's name. */
  readonly hostIfname: string;
  /** The sysctls the node had to turn on (set back to 0 on removal). */
  readonly changed: readonly string[];
}

/**
 * Finds the host side of a veth another plugin made (chained mode): `ifname`
 * in the pod must be a veth whose peer is in the node's namespace (the
 * node-side veth at the pod side's `IFLA_LINK` index names the pod side as
 * its own peer), and it must already carry the pod's addresses. Changes no
 * link, address or route; turns forwarding on for the host side when it is
 * off (the FIB lookup of BPF host routing checks the input device), and
 * says so.
 *
 * @param w The endpoint's wiring (the router is not used).
 * @param who The endpoint, for errors (its address).
 * @returns The host side, both MACs and the sysctls it changed.
 * @throws {EndpointError} Naming `ifname`, `ipv4` or `ipv6` when the interface is not such a veth or lacks an address.
 */
export function findExisting(w: Omit<WireSpec, "hostIfname" | "router">, who: string): Existing {
  const fail = (field: "ifname" | "ipv4" | "ipv6", problem: string): never => {
    throw new EndpointError("add", who, field, problem);
  };
  using pod = openRouting({ netns: w.podNetns });
  const inner = pod.links.get(w.ifname);
  if (inner === undefined)
    return fail(
      "ifname",
      `${JSON.stringify(w.ifname)} does not exist in the pod's namespace (existing: true needs the interface another plugin made)`,
    );
  if (inner.rawKind !== "veth" || inner.linkIndex === undefined || inner.linkNetnsId === undefined)
    return fail("ifname", `${JSON.stringify(w.ifname)} is not a veth whose peer is in another namespace`);
  const host = w.node.links.get(inner.linkIndex);
  if (host === undefined || host.rawKind !== "veth" || host.linkIndex !== inner.index || host.linkNetnsId === undefined)
    return fail("ifname", `${JSON.stringify(w.ifname)} is a veth whose peer is not in the node's namespace`);
  const have = new Set(pod.addresses.list({ dev: inner.index }).map((a) => a.address.split("/")[0]));
  if (!have.has(w.ipv4)) fail("ipv4", `${w.ipv4} is not an address of ${w.ifname} in the pod`);
  if (w.ipv6 !== undefined && !have.has(w.ipv6)) fail("ipv6", `${w.ipv6} is not an address of ${w.ifname} in the pod`);
  if (host.mac === undefined || inner.mac === undefined)
    return fail("ifname", `${JSON.stringify(w.ifname)} or its peer has no MAC`);
  const changed: string[] = [];
  const families = w.ipv6 === undefined ? ["ipv4"] : ["ipv4", "ipv6"];
  for (const f of families) {
    const key = `net.${f}.conf.${host.name}.forwarding`;
    if (w.node.sysctl.get(key).trim() !== "0") continue;
    w.node.sysctl.set(key, 1);
    changed.push(key);
  }
  return { hostIfindex: host.index, hostIfname: host.name, hostMac: host.mac, mac: inner.mac, changed };
}

/**
 * Undoes {@link findExisting}: the sysctls it turned on are set back to 0,
 * when the host side is still the same link. The veth stays.
 *
 * @param node The node's routing handle.
 * @param hostIfindex The host side.
 * @param hostIfname Its name, checked so that a reused index is left alone.
 * @param changed The sysctls {@link findExisting} turned on.
 */
export function releaseExisting(
  node: Routing,
  hostIfindex: number,
  hostIfname: string,
  changed: readonly string[],
): void {
  const link = node.links.get(hostIfindex);
  if (link === undefined || link.name !== hostIfname) return;
  for (const key of changed) node.sysctl.set(key, 0);
}
