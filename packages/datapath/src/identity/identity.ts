import type { LabelSet } from "../labels/label_set.ts";

/**
 * A security identity: a number the datapath carries for a set of labels.
 * Endpoints with the same labels share it; policy selects identities by
 * their labels.
 *
 * @example The host's reserved identity
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator } from "@dp/datapath";
 *
 * const host = await createLocalIdentityAllocator().lookup(1);
 * assert.equal(host?.labels.key, "reserved:host");
 * ```
 */
export interface Identity {
  /** The number: 1-255 reserved, 256-65535 label-based (cluster-wide), from `1 << 24` CIDR (node-local). */
  readonly id: number;
  /** The labels the identity stands for. */
  readonly labels: LabelSet;
  /** For a CIDR identity, its prefix in canonical form (`10.0.0.0/8`, `fd00::/8`). */
  readonly cidr?: string;
}

/**
 * The kind of an identity number: see {@link classifyIdentity}.
 *
 * @example Kinds
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyIdentity, type IdentityKind } from "@dp/datapath";
 *
 * const kinds: IdentityKind[] = [0, 1, 256, 1 << 24].map(classifyIdentity);
 * assert.deepEqual(kinds, ["any", "reserved", "cluster", "cidr"]);
 * ```
 */
export type IdentityKind = "any" | "reserved" | "cluster" | "cidr";

/**
 * The first CIDR (node-local) identity, as in Cilium: `1 << 24`.
 *
 * @example The value
 * ```ts
 * import assert from "node:assert/strict";
 * import { CIDR_IDENTITY_MIN, createLocalIdentityAllocator } from "@dp/datapath";
 *
 * assert.equal((await createLocalIdentityAllocator().allocateCidr("10.0.0.0/8")).id, CIDR_IDENTITY_MIN);
 * ```
 */
export const CIDR_IDENTITY_MIN: number = 1 << 24;

/**
 * The last CIDR identity: `(1 << 24) | 0xffffff`.
 *
 * @example The value
 * ```ts
 * import assert from "node:assert/strict";
 * import { CIDR_IDENTITY_MAX, CIDR_IDENTITY_MIN } from "@dp/datapath";
 *
 * assert.equal(CIDR_IDENTITY_MAX - CIDR_IDENTITY_MIN + 1, 1 << 24);
 * ```
 */
export const CIDR_IDENTITY_MAX: number = (1 << 25) - 1;

/**
 * The first label-based identity.
 *
 * @example The value
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLUSTER_IDENTITY_MIN, createLocalIdentityAllocator } from "@dp/datapath";
 *
 * assert.equal((await createLocalIdentityAllocator().allocate(["k8s:app=web"])).id, CLUSTER_IDENTITY_MIN);
 * ```
 */
export const CLUSTER_IDENTITY_MIN: number = 256;

/**
 * The last label-based identity.
 *
 * @example The value
 * ```ts
 * import assert from "node:assert/strict";
 * import { CLUSTER_IDENTITY_MAX } from "@dp/datapath";
 *
 * assert.equal(CLUSTER_IDENTITY_MAX, 65535);
 * ```
 */
export const CLUSTER_IDENTITY_MAX: number = 65535;

/**
 * Says which kind (range) an identity number is in: `"any"` for 0 (no identity:
 * policy entries for 0 apply to every identity), `"reserved"` for 1-255,
 * `"cluster"` for label-based identities and `"cidr"` for node-local CIDR
 * identities (from {@link CIDR_IDENTITY_MIN}).
 *
 * @param id The identity number.
 * @returns The kind.
 * @throws {RangeError} When `id` is not an integer in any identity range.
 * @example The ranges
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifyIdentity } from "@dp/datapath";
 *
 * assert.equal(classifyIdentity(2), "reserved");
 * assert.equal(classifyIdentity(1000), "cluster");
 * assert.equal(classifyIdentity(1 << 24), "cidr");
 * ```
 */
export function classifyIdentity(id: number): IdentityKind {
  if (id === 0) return "any";
  if (Number.isInteger(id) && id > 0 && id < CLUSTER_IDENTITY_MIN) return "reserved";
  if (Number.isInteger(id) && id >= CLUSTER_IDENTITY_MIN && id <= CLUSTER_IDENTITY_MAX) return "cluster";
  if (Number.isInteger(id) && id >= CIDR_IDENTITY_MIN && id <= CIDR_IDENTITY_MAX) return "cidr";
  throw new RangeError(
    `Invalid identity ${String(id)}: not in 0-255, ${CLUSTER_IDENTITY_MIN}-${CLUSTER_IDENTITY_MAX} or ${CIDR_IDENTITY_MIN}-${CIDR_IDENTITY_MAX}`,
  );
}
