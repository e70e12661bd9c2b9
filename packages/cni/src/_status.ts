// CNI STATUS and GC (CNI 1.1).
import type { ApiClient } from "@dp/agent/client";
import { toCniError } from "./_errors.ts";
import { CNI_ERROR_CODES, CniError } from "./spec/cni_error.ts";
import { networkLabel } from "./labels.ts";
import type { NetConf } from "./spec/netconf.ts";

/**
 * STATUS: the plugin can serve ADD when the agent answers on its socket
 * and says it is healthy.
 *
 * @param client The agent API client.
 * @returns Resolves when it is ready.
 * @throws {CniError} Code 50 naming why not.
 */
export async function cniStatus(client: ApiClient): Promise<void> {
  let ok: boolean;
  try {
    ok = (await client.healthz()).ok;
  } catch (err) {
    const cause = toCniError(err, "The dp agent cannot take containers");
    throw new CniError(CNI_ERROR_CODES.notAvailable, cause.message, { details: cause.details, cause: err });
  }
  if (!ok)
    throw new CniError(CNI_ERROR_CODES.notAvailable, `The dp agent cannot take containers: it says it is not healthy`);
}

/**
 * GC: the agent removes every endpoint a container made on this network
 * (one with a container id and the network's label `cni:network=NAME`)
 * whose container has no attachment in `cni.dev/valid-attachments`. Endpoints
 * made without a container id (through the API directly) are left alone.
 *
 * @param netconf The network config with the valid attachments.
 * @param client The agent API client.
 * @returns Resolves when the stale endpoints are gone.
 * @throws {CniError} When the agent cannot be reached or fails.
 */
export async function cniGc(netconf: NetConf, client: ApiClient): Promise<void> {
  const valid = new Set((netconf["cni.dev/valid-attachments"] ?? []).map((a) => a.containerID));
  const network = networkLabel(netconf.name);
  try {
    const stale = new Set<string>();
    for (const ep of await client.endpoints()) {
      if (ep.containerId === undefined || valid.has(ep.containerId)) continue;
      if (network === undefined || ep.labels.includes(network)) stale.add(ep.containerId);
    }
    for (const containerId of stale) await client.deleteContainerEndpoints(containerId);
  } catch (err) {
    throw toCniError(err, "Cannot collect stale containers");
  }
}
