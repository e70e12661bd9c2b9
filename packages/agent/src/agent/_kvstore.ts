// The agent's kvstore (`kvstore: etcd`): the etcd connection, this node's
// record in the node registry and, with `identity-allocation-mode:
// kvstore`, the cluster-wide identity allocator given to the node.
// @dp/kvstore (and the etcd client) is imported only when the kvstore is
// on, so `dp` starts as fast as before without it.
import type { IdentityAllocator } from "@dp/datapath";
import type { KvstoreIdentityAllocator, KvstoreNode, NodeRegistry } from "@dp/kvstore";
import type { ApiKvstoreStatus } from "../api/types.ts";
import type { AgentConfig } from "../config/agent_config.ts";
import type { Logger } from "./logger.ts";

/** How long the agent waits for etcd at start before it gives up. */
const CONNECT_TIMEOUT_MS = 10_000;

/** The kvstore parts the agent holds while it runs. */
export interface AgentKvstore {
  /** The identity allocator for the node, with `identity-allocation-mode: kvstore`. */
  readonly allocator: IdentityAllocator | undefined;
  /** The status for `dp status`. */
  status(): ApiKvstoreStatus;
  /** Closes the allocator and the registry and revokes the lease (this node leaves). */
  close(): Promise<void>;
}

/**
 * Opens the kvstore of `config` (undefined without `kvstore: etcd`): reads
 * the etcd config, waits up to 10 s for etcd, registers the node and
 * creates the identity allocator when asked for. Nothing stays open when
 * it throws.
 *
 * @param config The agent's config.
 * @param logger Where to log.
 * @param nodeIps The node's IPv4 and IPv6 addresses (the uplink's), for its record.
 * @returns The kvstore, or undefined when it is off.
 * @throws {EtcdConfigError} When `etcd-config` or the `etcd-config-path` file is invalid.
 * @throws {KvstoreError} When etcd does not answer within 10 s (naming the endpoints), or a request fails.
 */
export async function openAgentKvstore(
  config: AgentConfig,
  logger: Logger,
  nodeIps: { readonly ipv4?: string; readonly ipv6?: string } = {},
): Promise<AgentKvstore | undefined> {
  if (config.kvstore !== "etcd") return undefined;
  const kvs = await import("@dp/kvstore");
  const path = config["etcd-config-path"];
  const etcdConfig = path !== "" ? kvs.readEtcdConfigFile(path) : kvs.parseEtcdConfig(config["etcd-config"]);
  const endpoints = etcdConfig.endpoints.join(", ");
  const nodeName = config["node-name"] === "" ? undefined : config["node-name"];
  logger.info("Connecting to etcd", { endpoints, nodeName: nodeName ?? "(host name)" });
  // Unlike Cilium, which retries forever, fail after CONNECT_TIMEOUT_MS: a KvstoreError naming the endpoints.
  const kv = await kvs.openKvstore(etcdConfig, {
    ...(nodeName === undefined ? {} : { nodeName }),
    connectTimeout: CONNECT_TIMEOUT_MS,
  });
  let nodes: NodeRegistry | undefined;
  let allocator: KvstoreIdentityAllocator | undefined;
  try {
    nodes = await kvs.openNodeRegistry(kv, { clusterName: config["cluster-name"] });
    const podCidrs = [config["ipv4-range"], ...(config["enable-ipv6"] ? [config["ipv6-range"]] : [])];
    const record: KvstoreNode = {
      name: kv.nodeName,
      cluster: { name: config["cluster-name"], id: config["cluster-id"] },
      ...(nodeIps.ipv4 === undefined ? {} : { ipv4: nodeIps.ipv4 }),
      ...(nodeIps.ipv6 === undefined || !config["enable-ipv6"] ? {} : { ipv6: nodeIps.ipv6 }),
      podCidrs,
    };
    await nodes.register(record);
    if (config["identity-allocation-mode"] === "kvstore") {
      allocator = await kvs.createKvstoreIdentityAllocator(kv, { clusterId: config["cluster-id"] });
    }
  } catch (err) {
    await allocator?.close().catch(() => undefined);
    await nodes?.close().catch(() => undefined);
    await kv.close().catch(() => undefined);
    throw err;
  }
  const registry = nodes;
  const mode = allocator === undefined ? "node" : "kvstore";
  let last = kv.status.state;
  kv.onStatus((s) => {
    if (s.state === last) return;
    last = s.state;
    if (s.state === "unhealthy") logger.warn("Kvstore unhealthy", { endpoints, reason: s.reason ?? "" });
    else if (s.state === "connected") logger.info("Kvstore connected", { endpoints });
  });
  logger.info("Kvstore ready", { endpoints, node: kv.nodeName, identities: mode, nodes: registry.list().length });
  const alloc = allocator;
  return {
    allocator: alloc,
    status: () => {
      const s = kv.status;
      const count = registry.list().length;
      const message =
        s.state === "connected"
          ? `etcd: ${etcdConfig.endpoints.length === 1 ? "1/1 " : ""}connected (endpoints ${endpoints}); ${count} node${count === 1 ? "" : "s"}; identities ${mode === "kvstore" ? "in the kvstore" : "on the node"}`
          : (s.reason ?? s.state);
      return {
        state: s.state,
        message,
        endpoints: [...etcdConfig.endpoints],
        node: kv.nodeName,
        nodes: count,
        identityAllocation: mode,
      };
    },
    close: async () => {
      const errors: unknown[] = [];
      for (const step of [() => alloc?.close(), () => registry.close(), () => kv.close()]) {
        try {
          await step();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length === 1) throw errors[0];
      if (errors.length > 1) throw new AggregateError(errors, "Cannot close the kvstore cleanly");
    },
  };
}
