// CNI DEL: idempotent; the agent removes the container's endpoint if it
// still has one.
import type { ApiClient } from "@dp/agent/client";
import { toCniError } from "./_errors.ts";
import { chainedDel } from "./chained.ts";
import { delegateIpam } from "./ipam_delegate.ts";
import type { CniEnv } from "./spec/env.ts";
import type { NetConf } from "./spec/netconf.ts";

/**
 * DEL: an endpoint made in chained mode (the agent's record says
 * `existing`) goes to the chaining hook; otherwise the agent removes the
 * container's endpoint (nothing to remove is success: DEL twice, or after
 * the agent lost it), then the delegated IPAM plugin releases the
 * addresses.
 *
 * @param netconf The network config.
 * @param env The invocation.
 * @param client The agent API client.
 * @returns Resolves when the container is off the network.
 * @throws {CniError} When the agent cannot be reached or fails (code 100, 101), or the IPAM plugin fails.
 */
export async function cniDel(netconf: NetConf, env: CniEnv, client: ApiClient): Promise<void> {
  const what = `Cannot delete container ${JSON.stringify(env.containerId)}`;
  let chained: boolean;
  try {
    const eps = await client.endpoints({ containerId: env.containerId });
    chained = eps.some((ep) => ep.existing === true);
    if (!chained) await client.deleteContainerEndpoints(env.containerId);
  } catch (err) {
    throw toCniError(err, what);
  }
  if (chained) await chainedDel(netconf, env, client);
  else if (netconf.ipam?.type !== undefined) await delegateIpam("DEL", netconf, env);
}
