/**
 * Test support for `@dp/kvstore`: a real etcd (Debian's `etcd-server`)
 * started on 127.0.0.1 with free ports and a temporary data directory,
 * one member or a cluster, stopped and removed when disposed.
 *
 * @example A throwaway etcd
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * assert.equal(etcd.members.length, 1);
 * assert.ok((await etcd.revision()) >= 1);
 * ```
 *
 * @module @dp/kvstore/testing
 */
export { startEtcd, startEtcdCluster } from "./etcd.ts";
export type { EtcdMember, StartEtcdOptions, TestEtcd } from "./etcd.ts";
