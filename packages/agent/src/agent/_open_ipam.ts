// Picks the agent's IPAM from the config.
import type { Endpoint } from "@dp/datapath";
import type { AgentConfig } from "../config/agent_config.ts";
import type { ResolvedConfig } from "../config/resolve_config.ts";
import { ClusterPoolIpam, type EndpointIpam } from "./_endpoint_ipam.ts";

/**
 * Opens the IPAM the config asks for, with the node's endpoints in use.
 *
 * @internal
 * @param config The config.
 * @param resolved The config decided against the kernel.
 * @param endpoints The node's endpoints (adopted after a restart).
 * @returns The IPAM.
 */
export async function openEndpointIpam(
  config: AgentConfig,
  resolved: ResolvedConfig,
  endpoints: readonly Endpoint[],
): Promise<EndpointIpam> {
  if (config.ipam === "eni") {
    // Loaded only in eni mode: it pulls in the AWS SDK, which every `dp`
    // command would otherwise load at start.
    const { openEniIpam } = await import("./_eni_ipam.ts");
    return openEniIpam(config, endpoints);
  }
  return new ClusterPoolIpam(resolved, endpoints);
}
