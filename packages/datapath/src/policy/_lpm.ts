// The LPM arithmetic of policy entries (see PolicyEntry).
import type { PolicyEntry } from "./entry.ts";

/** The LPM prefix length of an entry for every protocol: identity (32) + direction (8). */
export const PREFIX_ANY_PROTOCOL = 40;
/** The LPM prefix length of an entry for every port of one protocol. */
export const PREFIX_ANY_PORT = 48;
/** The LPM prefix length of an entry for one port. */
export const PREFIX_FULL = 64;

/**
 * Whether entry `outer` covers every packet `inner` covers (same identity and direction assumed).
 *
 * @param outer The wider entry.
 * @param inner The narrower one.
 * @returns `true` when `inner` lies within `outer`.
 */
export function entryContains(
  outer: Pick<PolicyEntry, "protocol" | "port" | "prefixLength">,
  inner: Pick<PolicyEntry, "protocol" | "port" | "prefixLength">,
): boolean {
  if (outer.prefixLength === PREFIX_ANY_PROTOCOL) return true;
  if (outer.protocol !== inner.protocol || inner.prefixLength < outer.prefixLength) return false;
  const shift = PREFIX_FULL - outer.prefixLength;
  return inner.port >>> shift === outer.port >>> shift;
}
