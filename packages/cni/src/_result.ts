// The result JSON of an ADD from the agent's endpoint, and results as the
// config's cniVersion wants them.
import type { ApiEndpoint } from "@dp/agent/client";
import type { CniEnv } from "./spec/env.ts";
import type { NetConf } from "./spec/netconf.ts";
import type { CniDns, CniIpConfig, CniResult, CniRoute, IpamResult } from "./spec/result.ts";

/**
 * The result of an ADD that made the interface: the host-side veth, the
 * container's interface in its namespace, its addresses (a /32 and a /128
 * behind the router address, as the datapath configures them) and the
 * default routes through the router.
 *
 * @param ep The endpoint the agent created.
 * @param netconf The network config (its `dns`).
 * @param env The invocation (`CNI_NETNS` is the sandbox).
 * @param ipam The delegated IPAM's answer (its `dns`), if any.
 * @returns The result.
 */
export function endpointResult(ep: ApiEndpoint, netconf: NetConf, env: CniEnv, ipam?: IpamResult): CniResult {
  const ips: CniIpConfig[] = [];
  const routes: CniRoute[] = [];
  const gw4 = ep.router?.ipv4;
  ips.push({ address: `${ep.ipv4}/32`, ...(gw4 === undefined ? {} : { gateway: gw4 }), interface: 1 });
  if (gw4 !== undefined) routes.push({ dst: "0.0.0.0/0", gw: gw4 });
  if (ep.ipv6 !== undefined) {
    const gw6 = ep.router?.ipv6;
    ips.push({ address: `${ep.ipv6}/128`, ...(gw6 === undefined ? {} : { gateway: gw6 }), interface: 1 });
    if (gw6 !== undefined) routes.push({ dst: "::/0", gw: gw6 });
  }
  const dns: CniDns = netconf.dns ?? ipam?.dns ?? {};
  return {
    cniVersion: netconf.cniVersion,
    interfaces: [
      { name: ep.hostIfname, mac: ep.hostMac },
      { name: ep.ifname, mac: ep.mac, sandbox: env.netns ?? ep.netns },
    ],
    ips,
    routes,
    dns,
  };
}

/**
 * A result in the shape of the config's `cniVersion`: 0.4.0 results carry
 * `ips[].version`; 1.x results do not.
 *
 * @param result The result.
 * @param cniVersion The version to answer in.
 * @returns The result in that version.
 */
export function resultForVersion(result: CniResult, cniVersion: string): CniResult {
  const ips = result.ips?.map((ip) => {
    const { version: _version, ...rest } = ip;
    return cniVersion === "0.4.0" ? { ...rest, version: rest.address.includes(":") ? "6" : "4" } : rest;
  });
  return { ...result, cniVersion, ...(ips === undefined ? {} : { ips }) };
}

/**
 * The result of a plugin that comes after another which made other
 * interfaces (`loopback`): the previous result with this plugin's
 * interfaces, addresses (their interface indexes moved past the previous
 * interfaces) and routes added; this plugin's DNS when it has any.
 *
 * @param prev The previous plugin's result.
 * @param own This plugin's result.
 * @returns The merged result, in `own`'s version.
 */
export function mergeResults(prev: CniResult, own: CniResult): CniResult {
  const before = prev.interfaces ?? [];
  const ownDns = own.dns ?? {};
  return {
    cniVersion: own.cniVersion,
    interfaces: [...before, ...(own.interfaces ?? [])],
    ips: [
      ...(prev.ips ?? []),
      ...(own.ips ?? []).map((ip) =>
        ip.interface === undefined ? ip : { ...ip, interface: ip.interface + before.length },
      ),
    ],
    routes: [...(prev.routes ?? []), ...(own.routes ?? [])],
    dns: Object.keys(ownDns).length > 0 ? ownDns : (prev.dns ?? {}),
  };
}
