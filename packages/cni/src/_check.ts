// CNI CHECK: the agent's endpoint against the result the runtime kept.
import type { ApiClient, ApiEndpoint } from "@dp/agent/client";
import { toCniError } from "./_errors.ts";
import { delegateIpam } from "./ipam_delegate.ts";
import { CNI_ERROR_CODES, CniError } from "./spec/cni_error.ts";
import type { CniEnv } from "./spec/env.ts";
import type { NetConf } from "./spec/netconf.ts";
import type { CniResult } from "./spec/result.ts";

function bare(address: string): string {
  const slash = address.indexOf("/");
  return slash < 0 ? address : address.slice(0, slash);
}

/** What differs between the endpoint and the result, in words (none: empty). */
function differences(ep: ApiEndpoint, prev: CniResult, env: CniEnv): string[] {
  const out: string[] = [];
  if (ep.ifname !== env.ifname) out.push(`the endpoint's interface is ${ep.ifname}, CNI_IFNAME is ${env.ifname}`);
  if (env.netns !== undefined && ep.netns !== env.netns)
    out.push(`the endpoint is in ${ep.netns}, CNI_NETNS is ${env.netns}`);
  // The addresses prevResult gives the container's interface (or no interface: 0.4.0 style).
  const mine = new Set<number>();
  (prev.interfaces ?? []).forEach((itf, i) => {
    if (itf.name === ep.ifname && itf.sandbox !== undefined) mine.add(i);
  });
  const want = new Set(
    (prev.ips ?? []).filter((ip) => ip.interface === undefined || mine.has(ip.interface)).map((ip) => bare(ip.address)),
  );
  const have = [ep.ipv4, ...(ep.ipv6 === undefined ? [] : [ep.ipv6])];
  for (const ip of have) if (!want.has(ip)) out.push(`the endpoint has ${ip}, prevResult does not`);
  const names = new Set((prev.interfaces ?? []).map((i) => i.name));
  if (!names.has(ep.ifname)) out.push(`prevResult has no interface ${ep.ifname}`);
  if (ep.existing !== true) {
    for (const ip of want) if (!have.includes(ip)) out.push(`prevResult has ${ip}, the endpoint does not`);
    if (!names.has(ep.hostIfname)) out.push(`prevResult has no host interface ${ep.hostIfname}`);
  }
  return out;
}

/**
 * CHECK: the agent must have an endpoint for the container, matching the
 * runtime's `prevResult` (interface, namespace, addresses; for a chained
 * endpoint only the addresses dp took over), and the delegated IPAM plugin
 * must agree.
 *
 * @param netconf The network config, with `prevResult`.
 * @param env The invocation.
 * @param client The agent API client.
 * @returns Resolves when everything matches.
 * @throws {CniError} Code 7 without `prevResult`, 3 when the agent has no
 *   endpoint for the container, 102 naming the differences, 100/101 when the
 *   agent cannot answer.
 */
export async function cniCheck(netconf: NetConf, env: CniEnv, client: ApiClient): Promise<void> {
  const what = `Cannot check container ${JSON.stringify(env.containerId)}`;
  const prev = netconf.prevResult;
  if (prev === undefined)
    throw new CniError(CNI_ERROR_CODES.invalidNetworkConfig, `${what}: the network config has no "prevResult"`, {
      field: "prevResult",
    });
  let eps: ApiEndpoint[];
  try {
    eps = await client.endpoints({ containerId: env.containerId });
  } catch (err) {
    throw toCniError(err, what);
  }
  const ep = eps.find((e) => e.ifname === env.ifname) ?? eps[0];
  if (ep === undefined)
    throw new CniError(CNI_ERROR_CODES.unknownContainer, `${what}: the agent has no endpoint for it`);
  const diff = differences(ep, prev, env);
  if (diff.length > 0)
    throw new CniError(CNI_ERROR_CODES.checkFailed, `${what}: endpoint ${ep.id} does not match: ${diff.join("; ")}`);
  if (ep.existing !== true && netconf.ipam?.type !== undefined) await delegateIpam("CHECK", netconf, env);
}
