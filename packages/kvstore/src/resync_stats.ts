/**
 * How often a watched copy had to be rebuilt: the count of full resyncs
 * (after a lost watch, a compacted revision, or a `resync()` call) and
 * why the last one ran.
 *
 * @example Reading a registry's resyncs
 * ```ts no-run
 * import type { NodeRegistry, ResyncStats } from "@dp/kvstore";
 *
 * declare const nodes: NodeRegistry;
 * const stats: ResyncStats = nodes.resyncs;
 * console.log(stats.count, stats.lastReason);
 * ```
 */
export interface ResyncStats {
  /** The number of full resyncs since the copy was first synced. */
  readonly count: number;
  /** Why the last one ran, such as `watch cancelled: revision 42 was compacted`. */
  readonly lastReason: string | undefined;
}
