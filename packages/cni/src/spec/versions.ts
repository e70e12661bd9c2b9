/**
 * The CNI spec versions dp-cni speaks, oldest first: 0.4.0 (whose results
 * differ only by `ips[].version`), 1.0.0 and 1.1.0 (STATUS, GC).
 *
 * @example Is 1.0.0 supported?
 * ```ts
 * import assert from "node:assert/strict";
 * import { CNI_VERSIONS } from "@dp/cni";
 * assert.ok(CNI_VERSIONS.includes("1.0.0"));
 * ```
 */
export const CNI_VERSIONS: readonly ["0.4.0", "1.0.0", "1.1.0"] = ["0.4.0", "1.0.0", "1.1.0"];

/**
 * The newest CNI spec version dp-cni speaks, the one of its VERSION answer.
 *
 * @example The version
 * ```ts
 * import assert from "node:assert/strict";
 * import { CNI_VERSION } from "@dp/cni";
 * assert.equal(CNI_VERSION, "1.1.0");
 * ```
 */
export const CNI_VERSION = "1.1.0";
