import { describe, expect, test } from "vitest";
import { CT_GC_INTERVALS, nextConntrackGcInterval } from "@dp/datapath";

describe("nextConntrackGcInterval()", () => {
  test.each([
    // ratio, previous, expected (Cilium's calculateInterval table)
    [0, 300_000, 300_000], // nothing deleted: unchanged
    [0.01, 300_000, 450_000], // < 5%: 1.5x
    [0.049, 60_000, 90_000],
    [0.05, 300_000, 300_000], // 5%..25%: unchanged
    [0.25, 300_000, 300_000],
    [0.26, 100_000, 74_000], // > 25%: x (1 - ratio), rounded to seconds
    [0.5, 300_000, 150_000],
    [0.9, 300_000, 30_000],
    [1, 300_000, 30_000], // capped at 90%
    [0.9, 50_000, 10_000], // not below the minimum
  ])("nextConntrackGcInterval() gives %d deleted after %d ms → %d ms", (ratio, previous, expected) => {
    expect(nextConntrackGcInterval({ deleteRatio: ratio, previous })).toBe(expected);
  });

  test("nextConntrackGcInterval() starts from the starting interval when there was none", () => {
    expect(nextConntrackGcInterval({ deleteRatio: 0 })).toBe(CT_GC_INTERVALS.starting);
    expect(nextConntrackGcInterval({ deleteRatio: 0.5 })).toBe(150_000);
    expect(nextConntrackGcInterval({ deleteRatio: 0.5, starting: 60_000 })).toBe(30_000);
    // The first pass never scales by elapsed time.
    expect(nextConntrackGcInterval({ deleteRatio: 0.1, elapsed: 1000 })).toBe(300_000);
  });

  test("nextConntrackGcInterval() grows up to the maximum", () => {
    let interval = 0;
    const seen: number[] = [];
    for (let i = 0; i < 8; i++) {
      interval = nextConntrackGcInterval({ deleteRatio: 0.001, previous: interval });
      seen.push(interval);
    }
    expect(seen).toEqual([450_000, 675_000, 1_013_000, 1_520_000, 1_800_000, 1_800_000, 1_800_000, 1_800_000]);
    expect(nextConntrackGcInterval({ deleteRatio: 0.001, previous: 40_000_000, max: 0 })).toBe(CT_GC_INTERVALS.maxLru);
    expect(nextConntrackGcInterval({ deleteRatio: 0.001, previous: 100_000, max: 120_000 })).toBe(120_000);
  });

  test("nextConntrackGcInterval() scales the ratio of a pass that ran early", () => {
    // 10% deleted in a tenth of the interval: as if 100% in a whole one.
    expect(nextConntrackGcInterval({ deleteRatio: 0.1, previous: 300_000, elapsed: 30_000 })).toBe(30_000);
    // A late pass is not scaled down.
    expect(nextConntrackGcInterval({ deleteRatio: 0.1, previous: 300_000, elapsed: 600_000 })).toBe(300_000);
  });

  test("nextConntrackGcInterval() returns a fixed interval as is", () => {
    expect(nextConntrackGcInterval({ deleteRatio: 0.9, previous: 300_000, fixed: 42_000 })).toBe(42_000);
  });

  test("nextConntrackGcInterval() rejects bad numbers", () => {
    expect(() => nextConntrackGcInterval({ deleteRatio: -1 })).toThrow(RangeError);
    expect(() => nextConntrackGcInterval({ deleteRatio: Number.NaN })).toThrow(RangeError);
    expect(() => nextConntrackGcInterval({ deleteRatio: 0, previous: "1" as unknown as number })).toThrow(TypeError);
  });
});
