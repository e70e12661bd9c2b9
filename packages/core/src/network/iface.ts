import { sys } from "../_sys/sys.ts";

/**
 * Returns the index of a network interface in the calling thread's network
 * namespace (`if_nametoindex`).
 *
 * @param name The interface name, such as `"lo"`.
 * @returns The index, or `undefined` when there is no such interface.
 * @example Looking up loopback
 * ```ts
 * import assert from "node:assert/strict";
 * import { interfaceIndex } from "@dp/core";
 *
 * assert.equal(interfaceIndex("lo"), 1);
 * ```
 */
export function interfaceIndex(name: string): number | undefined {
  if (typeof name !== "string" || name.length === 0 || name.length > 15) {
    throw new RangeError(`Invalid interface name ${JSON.stringify(name)}: use 1-15 characters`);
  }
  const index = sys().ifNameToIndex(name);
  return index === 0 ? undefined : index;
}

/**
 * Returns the name of a network interface in the calling thread's network
 * namespace (`if_indextoname`).
 *
 * @param index The interface index.
 * @returns The name, or `undefined` when there is no such interface.
 * @example Naming index 1
 * ```ts
 * import assert from "node:assert/strict";
 * import { interfaceName } from "@dp/core";
 *
 * assert.equal(interfaceName(1), "lo");
 * ```
 */
export function interfaceName(index: number): string | undefined {
  if (!Number.isInteger(index) || index < 1) throw new RangeError(`Invalid interface index ${index}`);
  return sys().ifIndexToName(index) ?? undefined;
}
