// What the datapath's counters and policy maps hold, decoded the same way
// for a running node (Node) and for its pins (PinnedNode).
import type { DpMetricsValue, DpPolicyKey, DpPolicyValue } from "./_gen/datapath.ts";
import { DROP_REASONS, type DropReasonName, nameOf, type UnknownName } from "./monitor/reasons.ts";
import type { PolicyEntry } from "./policy/entry.ts";

/**
 * A `dp_metrics` counter.
 *
 * @example Drops by default deny
 * ```ts no-run
 * import type { NodeCounter } from "@dp/datapath";
 * const c: NodeCounter = { reason: 2, reasonName: "policy-default-deny", direction: "ingress", packets: 3n, bytes: 252n };
 * ```
 */
export interface NodeCounter {
  /** The reason number (0 forwarded, else a drop reason). */
  readonly reason: number;
  /** Its name (`DROP_REASONS`). */
  readonly reasonName: DropReasonName | UnknownName;
  /** The policy direction. */
  readonly direction: "ingress" | "egress";
  /** Packets, summed over the CPUs. */
  readonly packets: bigint;
  /** Bytes, summed over the CPUs. */
  readonly bytes: bigint;
}

/**
 * An entry of an endpoint's policy map as the kernel holds it: the entry
 * and the datapath's counters of the packets it matched.
 *
 * @example An allow entry that matched three packets
 * ```ts no-run
 * import type { PolicyMapEntry } from "@dp/datapath";
 * const e: PolicyMapEntry = { identity: 256, egress: false, protocol: 6, port: 80, prefixLength: 64, deny: false, proxyPort: 0, ruleCookie: 1, packets: 3n, bytes: 180n };
 * ```
 */
export interface PolicyMapEntry extends PolicyEntry {
  /** Packets that matched the entry. */
  readonly packets: bigint;
  /** Bytes that matched the entry. */
  readonly bytes: bigint;
}

/**
 * The `dp_metrics` counters summed over the CPUs, sorted by reason and
 * direction. The counter of a reason and direction is at index
 * `reason + 256 * direction` (0 ingress, 1 egress); counters that never
 * counted are left out.
 *
 * @param entries The per-CPU array's entries.
 * @returns The counters.
 * @internal
 */
export function sumMetrics(entries: Iterable<[number, DpMetricsValue[]]>): NodeCounter[] {
  const metrics: NodeCounter[] = [];
  for (const [index, perCpu] of entries) {
    let packets = 0n;
    let bytes = 0n;
    for (const v of perCpu) {
      packets += v.packets;
      bytes += v.bytes;
    }
    if (packets === 0n && bytes === 0n) continue;
    const reason = index & 0xff;
    metrics.push({
      reason,
      reasonName: nameOf(DROP_REASONS, reason),
      direction: index >> 8 === 1 ? "egress" : "ingress",
      packets,
      bytes,
    });
  }
  return metrics.sort((a, b) => a.reason - b.reason || a.direction.localeCompare(b.direction));
}

/**
 * An endpoint's policy map entries, sorted by direction, identity, protocol, port and prefix length.
 *
 * @param entries The map's entries.
 * @returns The decoded entries.
 * @internal
 */
export function readPolicyMap(entries: Iterable<[DpPolicyKey, DpPolicyValue]>): PolicyMapEntry[] {
  const out: PolicyMapEntry[] = [];
  for (const [k, v] of entries) {
    out.push({
      identity: k.identity,
      egress: k.egress !== 0,
      protocol: k.protocol,
      port: k.dport,
      prefixLength: k.prefixlen,
      deny: (v.flags & 1) !== 0,
      proxyPort: v.proxy_port,
      ruleCookie: v.rule_cookie,
      packets: v.packets,
      bytes: v.bytes,
    });
  }
  return out.sort(
    (a, b) =>
      Number(a.egress) - Number(b.egress) ||
      a.identity - b.identity ||
      a.protocol - b.protocol ||
      a.port - b.port ||
      a.prefixLength - b.prefixLength,
  );
}
