/**
 * The key prefixes dp uses in etcd, one per kind of state, versioned like
 * Cilium's `cilium/state/.../v1/`:
 *
 * - `dp/state/identities/v1/id/<id>`: the labels of identity `<id>` (a
 *   JSON array of label strings); no lease.
 * - `dp/state/identities/v1/value/<labels>`: the identity number of a
 *   label set (its canonical `k8s:a=b,k8s:c=d` form); no lease. Created
 *   together with `id/<id>` in one transaction, only if both are absent.
 * - `dp/state/identities/v1/refs/<id>/<node>`: node `<node>` uses
 *   `<id>`; under that node's lease.
 * - `dp/state/nodes/v1/<cluster>/<node>`: a node's record (JSON); under
 *   its lease.
 * - `dp/state/ip/v1/<cluster>/<prefix>`: an ipcache entry (JSON: identity,
 *   host IP, node); under the publishing node's lease.
 *
 * @example Listing the nodes with etcdctl
 * ```ts
 * import assert from "node:assert/strict";
 * import { KVSTORE_PREFIXES } from "@dp/kvstore";
 *
 * assert.equal(KVSTORE_PREFIXES.nodes, "dp/state/nodes/v1/");
 * // etcdctl get --prefix dp/state/nodes/v1/
 * ```
 */
export const KVSTORE_PREFIXES: {
  /** Identity allocation: `id/`, `value/` and `refs/` below it. */
  readonly identities: "dp/state/identities/v1/";
  /** Node records, by cluster name and node name. */
  readonly nodes: "dp/state/nodes/v1/";
  /** ipcache entries, by cluster name and prefix. */
  readonly ip: "dp/state/ip/v1/";
} = Object.freeze({
  identities: "dp/state/identities/v1/",
  nodes: "dp/state/nodes/v1/",
  ip: "dp/state/ip/v1/",
} as const);
