/**
 * A problem found in the cluster state that needs an operator, reported
 * in a status rather than thrown because no single call caused it: two
 * nodes claiming overlapping pod CIDRs, a node record that cannot be
 * parsed, an identity this node held that another label set took over
 * while etcd was out of reach.
 *
 * @example An overlap condition
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KvstoreCondition } from "@dp/kvstore";
 *
 * const c: KvstoreCondition = {
 *   type: "PodCidrOverlap",
 *   message: 'Pod CIDR 10.1.0.0/16 of node "a" overlaps 10.1.2.0/24 of node "b"',
 *   nodes: ["a", "b"],
 *   keys: [],
 * };
 * assert.deepEqual(c.nodes, ["a", "b"]);
 * ```
 */
export interface KvstoreCondition {
  /** The kind: `"PodCidrOverlap"`, `"InvalidNodeRecord"`, `"InvalidIpcacheEntry"`, `"IdentityLost"`. */
  readonly type: "PodCidrOverlap" | "InvalidNodeRecord" | "InvalidIpcacheEntry" | "IdentityLost";
  /** A sentence naming the nodes and keys. */
  readonly message: string;
  /** The nodes involved. */
  readonly nodes: readonly string[];
  /** The etcd keys involved. */
  readonly keys: readonly string[];
}
