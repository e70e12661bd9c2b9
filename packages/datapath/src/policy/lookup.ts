import { entryContains, PREFIX_ANY_PROTOCOL } from "./_lpm.ts";
import type { PolicyEntry } from "./entry.ts";

/**
 * What {@link lookupPolicy} found: the verdict and the entries that gave it.
 *
 * @example A deny for any identity beats an allow for one
 * ```ts
 * import assert from "node:assert/strict";
 * import { lookupPolicy, type PolicyEntry } from "@dp/datapath";
 *
 * const base = { egress: false, proxyPort: 0, ruleCookie: 0 };
 * const entries: PolicyEntry[] = [
 *   { ...base, identity: 1000, protocol: 0, port: 0, prefixLength: 40, deny: false },
 *   { ...base, identity: 0, protocol: 6, port: 22, prefixLength: 64, deny: true },
 * ];
 * const r = lookupPolicy(entries, { identity: 1000, egress: false, protocol: 6, port: 22 });
 * assert.equal(r.verdict, "deny");
 * assert.equal(r.identityMatch?.deny, false);
 * assert.equal(r.anyMatch?.deny, true);
 * ```
 */
export interface PolicyLookupResult {
  /** `"deny"` when a deny entry matched, else `"allow"` when any entry matched, else `"none"` (the endpoint's default applies). */
  readonly verdict: "allow" | "deny" | "none";
  /** The entry that decided (the deny one, or the identity's entry before the any-identity one), if any. */
  readonly entry: PolicyEntry | undefined;
  /** The longest match among the remote identity's entries (lookup A). */
  readonly identityMatch: PolicyEntry | undefined;
  /** The longest match among the any-identity (0) entries (lookup B). */
  readonly anyMatch: PolicyEntry | undefined;
}

function longest(
  entries: Iterable<PolicyEntry>,
  identity: number,
  egress: boolean,
  protocol: number,
  port: number,
): PolicyEntry | undefined {
  let best: PolicyEntry | undefined;
  const probe = { protocol, port, prefixLength: 64 };
  for (const e of entries) {
    if (e.identity !== identity || e.egress !== egress) continue;
    if (e.prefixLength !== PREFIX_ANY_PROTOCOL && !entryContains(e, probe)) continue;
    if (best === undefined || e.prefixLength > best.prefixLength) best = e;
  }
  return best;
}

/**
 * A packet as the policy lookup sees it, from one endpoint's side.
 *
 * @example Egress TCP 443 to identity 2 (world)
 * ```ts
 * import assert from "node:assert/strict";
 * import { lookupPolicy, type PolicyPacket } from "@dp/datapath";
 *
 * const packet: PolicyPacket = { identity: 2, egress: true, protocol: 6, port: 443 };
 * assert.equal(lookupPolicy([], packet).verdict, "none");
 * ```
 */
export interface PolicyPacket {
  /** The remote identity (the source on ingress, the destination on egress). */
  readonly identity: number;
  /** `true` for the egress direction. */
  readonly egress: boolean;
  /** The IP protocol number. */
  readonly protocol: number;
  /** The destination port, or the ICMP type for ICMP/ICMPv6. */
  readonly port: number;
}

/**
 * Evaluates the datapath's policy lookup over a set of entries, exactly as
 * the BPF program does it: A = the longest-prefix match for the remote
 * identity, B = the longest-prefix match for identity 0 (any); the verdict
 * is deny when A or B is a deny entry, allow when either exists, and
 * `"none"` otherwise, where the endpoint's enforcement decides (default
 * deny when enforced, allow when not).
 *
 * @param entries The endpoint's entries (both directions may be mixed in).
 * @param packet The remote identity, direction, protocol and port.
 * @returns The verdict and the matched entries.
 * @example A port range
 * ```ts
 * import assert from "node:assert/strict";
 * import { lookupPolicy, type PolicyEntry } from "@dp/datapath";
 *
 * // TCP 8000-8063 from identity 300: one entry with 10 port bits.
 * const entries: PolicyEntry[] = [
 *   { identity: 300, egress: false, protocol: 6, port: 8000, prefixLength: 58, deny: false, proxyPort: 0, ruleCookie: 7 },
 * ];
 * assert.equal(lookupPolicy(entries, { identity: 300, egress: false, protocol: 6, port: 8063 }).verdict, "allow");
 * assert.equal(lookupPolicy(entries, { identity: 300, egress: false, protocol: 6, port: 8064 }).verdict, "none");
 * assert.equal(lookupPolicy(entries, { identity: 300, egress: false, protocol: 17, port: 8000 }).verdict, "none");
 * ```
 */
export function lookupPolicy(entries: Iterable<PolicyEntry>, packet: PolicyPacket): PolicyLookupResult {
  const { identity, egress, protocol, port } = packet;
  const list = Array.isArray(entries) ? (entries as readonly PolicyEntry[]) : [...entries];
  const a = longest(list, identity, egress, protocol, port);
  const b = identity === 0 ? a : longest(list, 0, egress, protocol, port);
  if (a?.deny === true) return { verdict: "deny", entry: a, identityMatch: a, anyMatch: b };
  if (b?.deny === true) return { verdict: "deny", entry: b, identityMatch: a, anyMatch: b };
  const entry = a ?? b;
  return { verdict: entry === undefined ? "none" : "allow", entry, identityMatch: a, anyMatch: b };
}
