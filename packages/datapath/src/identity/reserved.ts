/**
 * Cilium's reserved identities by name. Each has the single label
 * `reserved:<name>`.
 *
 * @example Reserved numbers
 * ```ts
 * import assert from "node:assert/strict";
 * import { RESERVED_IDENTITIES } from "@dp/datapath";
 *
 * assert.equal(RESERVED_IDENTITIES.host, 1);
 * assert.equal(RESERVED_IDENTITIES.world, 2);
 * assert.equal(RESERVED_IDENTITIES["remote-node"], 6);
 * ```
 */
export const RESERVED_IDENTITIES: {
  /** This node (`reserved:host`). */
  readonly host: 1;
  /** Outside the cluster (`reserved:world`). */
  readonly world: 2;
  /** Endpoints not managed by the datapath (`reserved:unmanaged`). */
  readonly unmanaged: 3;
  /** The health-check endpoint (`reserved:health`). */
  readonly health: 4;
  /** Endpoints whose labels are not known yet (`reserved:init`). */
  readonly init: 5;
  /** Other nodes of the cluster (`reserved:remote-node`). */
  readonly "remote-node": 6;
  /** The Kubernetes API server (`reserved:kube-apiserver`). */
  readonly "kube-apiserver": 7;
  /** The ingress proxy (`reserved:ingress`). */
  readonly ingress: 8;
} = Object.freeze({
  host: 1,
  world: 2,
  unmanaged: 3,
  health: 4,
  init: 5,
  "remote-node": 6,
  "kube-apiserver": 7,
  ingress: 8,
} as const);

/**
 * The name of a reserved identity: a key of {@link RESERVED_IDENTITIES}.
 *
 * @example Names to numbers
 * ```ts
 * import assert from "node:assert/strict";
 * import { RESERVED_IDENTITIES, type ReservedIdentityName } from "@dp/datapath";
 *
 * const name: ReservedIdentityName = "health";
 * assert.equal(RESERVED_IDENTITIES[name], 4);
 * ```
 */
export type ReservedIdentityName = keyof typeof RESERVED_IDENTITIES;
