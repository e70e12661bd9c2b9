// The kernel side of an endpoint outside the BPF maps: the veth pair (the
// peer straight into the pod's namespace), addresses, the pod's routes via
// the router address, the host-side router address and endpoint route,
// per-device forwarding. All through @dp/routing (rtnetlink), never `ip`.
import type { Netns } from "@dp/core";
import { openRouting, type Routing } from "@dp/routing";

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
