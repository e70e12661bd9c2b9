import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import { type ConntrackGcResult, ConntrackGcScheduler, type ConntrackMaps } from "@dp/datapath";

// The scheduler's timing with a stand-in pass (gcConntrack itself is
// tested against the kernel in conntrack.kernel.test.ts).
const MAPS = { tcp: {}, any: {} } as unknown as ConntrackMaps;

function result(removed: number, maxEntries = 1000): ConntrackGcResult {
  const m = { removed, kept: 0, maxEntries };
  return { tcp: m, any: { removed: 0, kept: 0, maxEntries }, deleteRatio: removed / maxEntries, now: 0n };
}

describe("ConntrackGcScheduler", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  test("ConntrackGcScheduler runs a pass on start and adapts the interval to each pass", () => {
    const removed = [500, 500, 0, 10];
    const intervals: number[] = [];
    const gc = new ConntrackGcScheduler(MAPS, {
      collect: () => result(removed.shift() ?? 0),
      onResult: (_, next) => intervals.push(next),
    }).start();
    expect(intervals).toEqual([150_000]);
    vi.advanceTimersByTime(149_999);
    expect(intervals).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(intervals).toEqual([150_000, 75_000]);
    vi.advanceTimersByTime(75_000);
    expect(intervals).toEqual([150_000, 75_000, 75_000]);
    vi.advanceTimersByTime(75_000);
    expect(intervals).toEqual([150_000, 75_000, 75_000, 113_000]);
    expect(gc.interval).toBe(113_000);
    gc.stop();
    vi.advanceTimersByTime(1_000_000);
    expect(intervals).toHaveLength(4);
    expect(gc.running).toBe(false);
  });

  test("ConntrackGcScheduler stops when its signal aborts", () => {
    const ac = new AbortController();
    let passes = 0;
    const gc = new ConntrackGcScheduler(MAPS, {
      signal: ac.signal,
      interval: 1000,
      collect: () => (passes++, result(0)),
    }).start();
    vi.advanceTimersByTime(3000);
    expect(passes).toBe(4);
    ac.abort();
    expect(gc.running).toBe(false);
    vi.advanceTimersByTime(3000);
    expect(passes).toBe(4);
    // An aborted signal keeps it from starting again.
    gc.start();
    expect(passes).toBe(4);
  });

  test("ConntrackGcScheduler.runNow() scales the ratio of an early pass and reschedules", () => {
    const removed = [0, 100];
    const gc = new ConntrackGcScheduler(MAPS, { collect: () => result(removed.shift() ?? 0) }).start();
    expect(gc.interval).toBe(300_000);
    vi.advanceTimersByTime(30_000);
    // 10% deleted after a tenth of the interval: scaled to 100%, capped at 90%.
    expect(gc.runNow().tcp.removed).toBe(100);
    expect(gc.interval).toBe(30_000);
    expect(gc.lastResult?.tcp.removed).toBe(100);
    gc.stop();
  });

  test("ConntrackGcScheduler keeps going after a failed pass and reports it", () => {
    const errors: unknown[] = [];
    let passes = 0;
    const gc = new ConntrackGcScheduler(MAPS, {
      interval: 1000,
      onError: (e) => errors.push(e),
      collect: () => {
        passes++;
        if (passes === 2) throw new RangeError("boom");
        return result(0);
      },
    }).start();
    vi.advanceTimersByTime(2000);
    expect(passes).toBe(3);
    expect(errors).toEqual([new RangeError("boom")]);
    gc.stop();
  });

  test("ConntrackGcScheduler rejects bad intervals when created", () => {
    expect(() => new ConntrackGcScheduler(MAPS, { interval: -1 })).toThrow(RangeError);
    expect(() => new ConntrackGcScheduler(MAPS, { maxInterval: Number.POSITIVE_INFINITY })).toThrow(RangeError);
  });
});
