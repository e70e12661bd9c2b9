/**
 * Cluster state on etcd, as Cilium keeps it with `kvstore: etcd` and
 * `identity-allocation-mode: kvstore`: security identities allocated with
 * compare-and-swap and referenced per node under leases (and
 * garbage-collected when no node uses them), a node registry kept alive by
 * a lease, and ipcache entries published by each node and applied
 * incrementally on the others. Every watch resyncs fully after it is lost
 * or its revision compacted. The key layout is in {@link KVSTORE_PREFIXES}.
 *
 * @example Connecting with an etcd-config file's text
 * ```ts no-run
 * import { createKvstoreIdentityAllocator, openKvstore, parseEtcdConfig } from "@dp/kvstore";
 *
 * const config = parseEtcdConfig("endpoints:\n- http://127.0.0.1:2379\n");
 * await using kv = await openKvstore(config, { nodeName: "node-a" });
 * await using identities = await createKvstoreIdentityAllocator(kv);
 * const web = await identities.allocate(["k8s:app=web"]);
 * console.log(web.id);
 * ```
 *
 * @module @dp/kvstore
 */
export { EtcdConfigError, parseEtcdConfig, readEtcdConfigFile, validateEtcdConfig } from "./config.ts";
export type { EtcdConfig } from "./config.ts";
export { Kvstore, KvstoreError, openKvstore } from "./kvstore.ts";
export type { KvstoreStatus, KvstoreStatusListener, OpenKvstoreOptions } from "./kvstore.ts";
export type { KvstoreCondition } from "./condition.ts";
export type { ResyncStats } from "./resync_stats.ts";
export { KVSTORE_PREFIXES } from "./keys.ts";
export { KvstoreIdentityAllocator, createKvstoreIdentityAllocator } from "./identities.ts";
export type { KvstoreIdentityAllocatorOptions } from "./identities.ts";
export { InvalidNodeError, NodeRegistry, openNodeRegistry, validateNode } from "./nodes.ts";
export type { KvstoreNode, NodeEvent, NodeListener, NodeRegistryOptions } from "./nodes.ts";
export { IpcacheSync, openIpcacheSync } from "./ipcache.ts";
export type { IpcacheEntry, IpcacheSink, IpcacheSyncOptions, LocalIpcacheEntry } from "./ipcache.ts";
