// Chaining (Cilium's generic-veth chaining): dp-cni after another plugin in
// a conflist (`bridge`, `ptp`, ...). That plugin made the container's veth,
// its addresses and routes and reported them in `prevResult`; dp-cni asks
// the agent for an endpoint on that veth (`existing: true`), so dp's
// programs police the container, and passes `prevResult` on unchanged.
import type { ApiClient } from "@dp/agent/client";
import { toCniError } from "./_errors.ts";
import { cniLabels } from "./labels.ts";
import { CNI_ERROR_CODES, CniError } from "./spec/cni_error.ts";
import type { CniEnv } from "./spec/env.ts";
import type { NetConf } from "./spec/netconf.ts";
import type { CniResult } from "./spec/result.ts";

/** The index in `prevResult.interfaces` of the container interface dp-cni attaches to. */
function containerInterface(prev: CniResult, env: CniEnv): number {
  const interfaces = prev.interfaces ?? [];
  const inSandbox = (i: number): boolean => {
    const sandbox = interfaces[i]?.sandbox;
    return sandbox !== undefined && sandbox !== "";
  };
  const named = interfaces.findIndex((itf, i) => itf.name === env.ifname && inSandbox(i));
  if (named >= 0) return named;
  throw new CniError(
    CNI_ERROR_CODES.invalidNetworkConfig,
    `Cannot chain after the previous plugin: its prevResult has no interface ${JSON.stringify(env.ifname)} in the container`,
    {
      field: "prevResult.interfaces",
      details: `interfaces: ${JSON.stringify(interfaces.map((i) => ({ name: i.name, sandbox: i.sandbox })))}`,
    },
  );
}

/**
 * The first IPv4 and IPv6 address `prevResult` gives the interface (or gives
 * with no interface index, as 0.4.0/1.0 results may), without the prefix.
 */
function addressesOf(prev: CniResult, index: number): { ipv4?: string; ipv6?: string } {
  const out: { ipv4?: string; ipv6?: string } = {};
  for (const ip of prev.ips ?? []) {
    if (ip.interface !== undefined && ip.interface !== index) continue;
    if (typeof ip.address !== "string") continue;
    const address = ip.address.split("/")[0] ?? "";
    if (address.includes(":")) out.ipv6 ??= address;
    else if (address !== "") out.ipv4 ??= address;
  }
  return out;
}

/**
 * Whether dp-cni runs as a chained plugin: the config carries a
 * `prevResult` with a container interface (one with a `sandbox`), made by a
 * plugin before it in the chain.
 *
 * @param netconf The network config.
 * @returns Whether the previous plugin made a container interface.
 * @example A config after the bridge plugin
 * ```ts
 * import assert from "node:assert/strict";
 * import { isChained, type NetConf } from "@dp/cni";
 * const conf: NetConf = {
 *   cniVersion: "1.0.0",
 *   name: "podnet",
 *   type: "dp-cni",
 *   prevResult: { cniVersion: "1.0.0", interfaces: [{ name: "cni0" }, { name: "eth0", sandbox: "/run/netns/c1" }], ips: [] },
 * };
 * assert.equal(isChained(conf), true);
 * assert.equal(isChained({ cniVersion: "1.0.0", name: "podnet", type: "dp-cni" }), false);
 * ```
 */
export function isChained(netconf: NetConf): boolean {
  const interfaces: unknown = netconf.prevResult?.interfaces;
  if (!Array.isArray(interfaces)) return false;
  return interfaces.some((i: unknown) => {
    const sandbox = typeof i === "object" && i !== null ? (i as { sandbox?: unknown }).sandbox : undefined;
    return typeof sandbox === "string" && sandbox !== "";
  });
}

/**
 * ADD as a chained plugin (Cilium's generic-veth chaining): takes the
 * container interface (`CNI_IFNAME`) and its addresses from `prevResult`,
 * asks the agent for an endpoint on that veth with `existing: true`, the
 * addresses and the container's labels (see `cniLabels`), and returns
 * `prevResult` unchanged, as the specification asks of a plugin that adds
 * no interface or address. The agent creates, deletes and changes no link,
 * address or route; it attaches its programs to the veth's host side,
 * which must be in the node's namespace. An endpoint the agent still has
 * for the same container (an ADD retried without DEL) is replaced.
 *
 * @param netconf The network config with `prevResult`.
 * @param env The invocation (`CNI_NETNS`, `CNI_IFNAME`, `CNI_CONTAINERID`).
 * @param client The agent API client.
 * @returns `prevResult`, unchanged.
 * @throws {CniError} 7 (field `prevResult.interfaces` or `prevResult.ips`) when `prevResult` has no such interface or no IPv4 address for it; 4 when `CNI_NETNS` is missing; 100 when the agent does not answer; 101 (or 4, 7, 11 by field) when it refuses.
 * @example After the bridge plugin in a conflist
 * ```ts no-run
 * import { chainedAdd, isChained, type CniEnv, type NetConf } from "@dp/cni";
 * import { ApiClient } from "@dp/agent/client";
 *
 * declare const netconf: NetConf; // with the bridge plugin's prevResult
 * declare const env: CniEnv;
 * const client = new ApiClient({ socketPath: "/var/run/dp/dp.sock" });
 * if (isChained(netconf)) console.log(await chainedAdd(netconf, env, client)); // the bridge's result
 * ```
 */
export async function chainedAdd(netconf: NetConf, env: CniEnv, client: ApiClient): Promise<CniResult> {
  const what = `Cannot add container ${JSON.stringify(env.containerId)} as a chained plugin`;
  const prev = netconf.prevResult;
  if (prev === undefined)
    throw new CniError(CNI_ERROR_CODES.invalidNetworkConfig, `${what}: the config has no prevResult`, {
      field: "prevResult",
    });
  if (env.netns === undefined || env.netns === "")
    throw new CniError(CNI_ERROR_CODES.invalidEnvironment, `${what}: CNI_NETNS is not set`, { field: "CNI_NETNS" });
  const index = containerInterface(prev, env);
  const { ipv4, ipv6 } = addressesOf(prev, index);
  if (ipv4 === undefined)
    throw new CniError(
      CNI_ERROR_CODES.invalidNetworkConfig,
      `${what}: prevResult gives ${JSON.stringify(env.ifname)} no IPv4 address (dp endpoints need one)`,
      { field: "prevResult.ips", details: `ips: ${JSON.stringify(prev.ips ?? [])}` },
    );
  const labels = cniLabels(netconf, env);
  try {
    const stale = await client.endpoints({ containerId: env.containerId });
    if (stale.length > 0) await client.deleteContainerEndpoints(env.containerId);
    await client.createEndpoint({
      netns: env.netns,
      ifname: env.ifname,
      ipv4,
      ...(ipv6 === undefined ? {} : { ipv6 }),
      labels,
      containerId: env.containerId,
      existing: true,
    });
  } catch (err) {
    throw toCniError(err, what);
  }
  return prev;
}

/**
 * DEL as a chained plugin: the agent removes the container's endpoint (its
 * programs, map entries and identity reference), leaving the veth to the
 * plugin before dp-cni, whose DEL runs after this one. Idempotent: a
 * container without an endpoint (never added, deleted already, lost by
 * the agent) succeeds.
 *
 * @param _netconf The network config (its `prevResult` is not needed).
 * @param env The invocation (`CNI_CONTAINERID`).
 * @param client The agent API client.
 * @returns Resolves when the container has no endpoint.
 * @throws {CniError} 100 when the agent does not answer; 101 when it refuses.
 * @example DEL of a chained container
 * ```ts no-run
 * import { chainedDel, type CniEnv, type NetConf } from "@dp/cni";
 * import { ApiClient } from "@dp/agent/client";
 *
 * declare const netconf: NetConf;
 * declare const env: CniEnv;
 * await chainedDel(netconf, env, new ApiClient({ socketPath: "/var/run/dp/dp.sock" }));
 * ```
 */
export async function chainedDel(_netconf: NetConf, env: CniEnv, client: ApiClient): Promise<void> {
  try {
    await client.deleteContainerEndpoints(env.containerId);
  } catch (err) {
    throw toCniError(err, `Cannot delete container ${JSON.stringify(env.containerId)} as a chained plugin`);
  }
}
