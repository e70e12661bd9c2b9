// Pure decisions of the ENI pool: how many addresses to add or release,
// which subnet a new ENI goes to, which device index it takes, and the VPC
// router of a subnet.
import { formatIp, parseCidr } from "@dp/core";
import type { PoolSubnet } from "./_pool_state.ts";

/** What {@link planResize} looks at. */
export interface ResizeInput {
  /** Addresses in use plus addresses callers are waiting for. */
  readonly demand: number;
  /** Secondary addresses the pool holds. */
  readonly total: number;
  /** The most addresses the pool may hold (max-allocate and the instance limit). */
  readonly cap: number;
  readonly preAllocate: number;
  readonly minAllocate: number;
  readonly maxAboveWatermark: number;
}

/**
 * Cilium's watermarks: the pool wants `max(demand + preAllocate,
 * minAllocate)` addresses, capped. Below that it grows to the target plus
 * max-above-watermark (within the cap); above target + max-above-watermark
 * it shrinks back to target + max-above-watermark.
 *
 * @returns Addresses to add (> 0), to release (< 0), or 0.
 */
export function planResize(input: ResizeInput): number {
  const target = Math.min(Math.max(input.demand + input.preAllocate, input.minAllocate), input.cap);
  if (input.total < target) return Math.min(target - input.total + input.maxAboveWatermark, input.cap - input.total);
  const keep = Math.min(target + input.maxAboveWatermark, input.cap);
  return input.total > keep ? keep - input.total : 0;
}

/** Where a new ENI may go. */
export interface SubnetFilter {
  readonly vpcId: string;
  readonly availabilityZone: string;
  readonly tags: Readonly<Record<string, string>>;
}

/**
 * Subnets a new ENI can go to, best first: same VPC and zone as the
 * instance, at least one free address; those with every wanted tag first,
 * then the most free addresses, then by id.
 */
export function rankSubnets(subnets: Iterable<PoolSubnet>, filter: SubnetFilter): PoolSubnet[] {
  const wanted = Object.entries(filter.tags);
  const tagged = (s: PoolSubnet): number => (wanted.every(([k, v]) => s.subnet.tags[k] === v) ? 1 : 0);
  return [...subnets]
    .filter(
      (s) =>
        s.subnet.vpcId === filter.vpcId && s.subnet.availabilityZone === filter.availabilityZone && s.available > 0,
    )
    .sort(
      (a, b) =>
        tagged(b) - tagged(a) ||
        b.available - a.available ||
        (a.subnet.id < b.subnet.id ? -1 : a.subnet.id > b.subnet.id ? 1 : 0),
    );
}

/** The lowest device index from `max(first, 1)` that is neither taken nor excluded. */
export function nextDeviceIndex(taken: ReadonlySet<number>, first: number, excluded: ReadonlySet<number>): number {
  let i = Math.max(first, 1);
  while (taken.has(i) || excluded.has(i)) i++;
  return i;
}

/** The VPC router of an IPv4 subnet: its network address plus one. */
export function routerIp(cidr: string): string | undefined {
  let prefix;
  try {
    prefix = parseCidr(cidr);
  } catch {
    return undefined;
  }
  if (prefix.family !== 4 || prefix.prefixLength > 30) return undefined;
  const b = prefix.bytes;
  const n =
    (((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0) &
    (prefix.prefixLength === 0 ? 0 : (~0 << (32 - prefix.prefixLength)) >>> 0);
  const r = (n + 1) >>> 0;
  return formatIp(new Uint8Array([r >>> 24, (r >>> 16) & 255, (r >>> 8) & 255, r & 255]));
}
