// CNI ADD: the agent creates the endpoint (veth, addresses, routes,
// identity, programs) in the container's namespace.
import type { ApiClient } from "@dp/agent/client";
import { toCniError } from "./_errors.ts";
import { chainedAdd, isChained } from "./chained.ts";
import { delegateIpam } from "./ipam_delegate.ts";
import { endpointResult, mergeResults } from "./_result.ts";
import { cniLabels } from "./labels.ts";
import type { CniEnv } from "./spec/env.ts";
import type { NetConf } from "./spec/netconf.ts";
import type { CniResult, IpamResult } from "./spec/result.ts";

/** The first address of each family an IPAM plugin answered, without the prefix length. */
function addressesOf(ipam: IpamResult | undefined): { ipv4?: string; ipv6?: string } {
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const ip of ipam?.ips ?? []) {
    const slash = ip.address.indexOf("/");
    const address = slash < 0 ? ip.address : ip.address.slice(0, slash);
    if (address.includes(":")) out.ipv6 ??= address;
    else out.ipv4 ??= address;
  }
  return out;
}

/**
 * ADD: a chained config (the previous plugin made `CNI_IFNAME`) goes to
 * the chaining hook; otherwise the addresses come from the delegated IPAM
 * plugin (`ipam.type`) or the agent's IPAM, and the agent creates the
 * endpoint. An endpoint the agent still has for the same container (an ADD
 * retried without DEL) is replaced. When the agent fails, delegated
 * addresses are released again. A `prevResult` of a plugin that made other
 * interfaces (`loopback`) is passed on with the endpoint's interfaces,
 * addresses and routes added.
 *
 * @param netconf The network config.
 * @param env The invocation.
 * @param client The agent API client.
 * @returns The result.
 * @throws {CniError} What failed, with its CNI code.
 */
export async function cniAdd(netconf: NetConf, env: CniEnv, client: ApiClient): Promise<CniResult> {
  const what = `Cannot add container ${JSON.stringify(env.containerId)}`;
  const prev = netconf.prevResult;
  // Chained when the plugin before made CNI_IFNAME in the container; a
  // `loopback` before dp-cni reports only `lo`, which dp-cni passes on.
  if (isChained(netconf) && (prev?.interfaces ?? []).some((i) => i.name === env.ifname && i.sandbox !== undefined))
    return chainedAdd(netconf, env, client);
  const labels = cniLabels(netconf, env);
  const ipam = netconf.ipam?.type === undefined ? undefined : await delegateIpam("ADD", netconf, env);
  try {
    const stale = await client.endpoints({ containerId: env.containerId });
    if (stale.length > 0) await client.deleteContainerEndpoints(env.containerId);
    const ep = await client.createEndpoint({
      netns: env.netns ?? "",
      ifname: env.ifname,
      labels,
      containerId: env.containerId,
      ...addressesOf(ipam),
    });
    const result = endpointResult(ep, netconf, env, ipam);
    return prev === undefined ? result : mergeResults(prev, result);
  } catch (err) {
    if (ipam !== undefined) await delegateIpam("DEL", netconf, env).catch(() => undefined);
    throw toCniError(err, what);
  }
}
