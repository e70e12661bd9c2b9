/**
 * Cilium's conntrack garbage collection intervals, in milliseconds: the
 * first interval, the bounds the adaptive interval stays within, and the
 * rounding it applies.
 *
 * @example The bounds
 * ```ts
 * import assert from "node:assert/strict";
 * import { CT_GC_INTERVALS } from "@dp/datapath";
 *
 * assert.equal(CT_GC_INTERVALS.starting, 5 * 60_000);
 * assert.equal(CT_GC_INTERVALS.min, 10_000);
 * assert.equal(CT_GC_INTERVALS.max, 30 * 60_000);
 * ```
 */
export const CT_GC_INTERVALS = {
  /** `ConntrackGCStartingInterval`: the interval before the first pass has said anything. */
  starting: 300_000,
  /** `ConntrackGCMinInterval`: the interval never shrinks below this. */
  min: 10_000,
  /** `ConntrackGCMaxInterval`: the largest interval for maps that are not LRU (dp's are not). */
  max: 1_800_000,
  /** `ConntrackGCMaxLRUInterval`: the growth cap Cilium applies before the configured maximum. */
  maxLru: 43_200_000,
  /** Intervals are rounded to whole seconds. */
  rounding: 1_000,
} as const;

/** Input of {@link nextConntrackGcInterval}. */
export interface ConntrackGcIntervalOptions {
  /** The largest share of a map's capacity the last pass deleted (`ConntrackGcResult.deleteRatio`). */
  readonly deleteRatio: number;
  /**
   * The interval the last pass was scheduled with, in ms; `0` when there
   * was none yet (the starting interval is used).
   *
   * @default 0
   */
  readonly previous?: number;
  /**
   * The time that really passed since the pass before, in ms; a pass
   * triggered early (less than `previous`) scales the ratio up as if a
   * whole interval had passed.
   *
   * @default previous
   */
  readonly elapsed?: number;
  /**
   * A fixed interval (`conntrack-gc-interval`): returned as is.
   *
   * @default adaptive
   */
  readonly fixed?: number;
  /**
   * The lower bound.
   *
   * @default CT_GC_INTERVALS.min
   */
  readonly min?: number;
  /**
   * The upper bound (`conntrack-gc-max-interval`).
   *
   * @default CT_GC_INTERVALS.max
   */
  readonly max?: number;
  /**
   * The first interval.
   *
   * @default CT_GC_INTERVALS.starting
   */
  readonly starting?: number;
}

function ms(value: unknown, field: string): number {
  if (typeof value !== "number")
    throw new TypeError(`Invalid conntrack GC interval option "${field}": expected milliseconds, got ${typeof value}`);
  if (!Number.isFinite(value) || value < 0)
    throw new RangeError(
      `Invalid conntrack GC interval option "${field}": expected a finite number >= 0, got ${value}`,
    );
  return value;
}

function round(value: number): number {
  return Math.round(value / CT_GC_INTERVALS.rounding) * CT_GC_INTERVALS.rounding;
}

/**
 * The interval until the next conntrack garbage collection, adapted to
 * how much the last pass deleted, as Cilium's ctmap GC does: with more than
 * 25% of a map's capacity deleted the interval shrinks by that share
 * (capped at 90%, so at most 10× shorter) but not below `min`; with less
 * than 5% deleted (but some) it grows 1.5×, up to `max`; otherwise (and
 * when nothing was deleted) it stays. A pass that ran early scales the
 * ratio by `previous / elapsed` first. Intervals are rounded to seconds.
 *
 * @param options The last pass's delete ratio and timing, and the bounds.
 * @returns The next interval in milliseconds.
 * @throws {TypeError} When an option is not a number.
 * @throws {RangeError} When an option is negative or not finite.
 * @example Shrinking after a busy pass, growing after a quiet one
 * ```ts
 * import assert from "node:assert/strict";
 * import { nextConntrackGcInterval } from "@dp/datapath";
 *
 * assert.equal(nextConntrackGcInterval({ deleteRatio: 0.5, previous: 300_000 }), 150_000);
 * assert.equal(nextConntrackGcInterval({ deleteRatio: 0.01, previous: 300_000 }), 450_000);
 * assert.equal(nextConntrackGcInterval({ deleteRatio: 0.99, previous: 60_000 }), 10_000);
 * assert.equal(nextConntrackGcInterval({ deleteRatio: 0.01, previous: 1_500_000 }), 1_800_000);
 * ```
 */
export function nextConntrackGcInterval(options: ConntrackGcIntervalOptions): number {
  if (typeof options !== "object" || options === null)
    throw new TypeError(`Invalid conntrack GC interval options: expected an object, got ${String(options)}`);
  if (options.fixed !== undefined) return ms(options.fixed, "fixed");
  const ratio = ms(options.deleteRatio, "deleteRatio");
  const min = ms(options.min ?? CT_GC_INTERVALS.min, "min");
  const max = ms(options.max ?? CT_GC_INTERVALS.max, "max");
  const previous = ms(options.previous ?? 0, "previous");
  const elapsed = options.elapsed === undefined ? undefined : ms(options.elapsed, "elapsed");
  let expected = previous;
  let adjusted = ratio;
  if (expected === 0) {
    expected = ms(options.starting ?? CT_GC_INTERVALS.starting, "starting");
  } else if (elapsed !== undefined && elapsed > 0 && elapsed < expected) {
    adjusted *= expected / elapsed;
  }
  let next = expected;
  if (adjusted > 0.25) {
    next = Math.max(round(expected * (1 - Math.min(adjusted, 0.9))), min);
  } else if (adjusted > 0 && adjusted < 0.05) {
    next = Math.min(round(expected * 1.5), CT_GC_INTERVALS.maxLru);
  }
  return max > 0 ? Math.min(next, max) : next;
}
