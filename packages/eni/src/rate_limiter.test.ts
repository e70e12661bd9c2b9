import assert from "node:assert/strict";
import { test } from "vitest";
import { type Clock, RateLimiter, REAL_CLOCK } from "./_rate_limiter.ts";

/** A manual clock: time moves only when the test says so; sleeps are recorded and return at once. */
function manualClock(): Clock & { t: number; readonly sleeps: number[] } {
  const clock = {
    t: 0,
    sleeps: [] as number[],
    now: () => clock.t,
    sleep: (ms: number) => {
      clock.sleeps.push(ms);
      return Promise.resolve();
    },
  };
  return clock;
}

test("RateLimiter.reserve() lets the burst through, then spaces calls at 1/qps", () => {
  const clock = manualClock();
  const limiter = new RateLimiter(4, 20, clock);
  const waits = Array.from({ length: 24 }, () => limiter.reserve());
  assert.deepEqual(waits.slice(0, 20), new Array(20).fill(0));
  assert.deepEqual(waits.slice(20), [250, 500, 750, 1000]);
});

test("RateLimiter.reserve() refills at qps, capped at the burst", () => {
  const clock = manualClock();
  const limiter = new RateLimiter(10, 3, clock);
  for (let i = 0; i < 3; i++) assert.equal(limiter.reserve(), 0);
  assert.equal(limiter.reserve(), 100);
  // 100 ms later the token borrowed above is paid back; 200 ms more bring two.
  clock.t = 300;
  assert.equal(limiter.reserve(), 0);
  assert.equal(limiter.reserve(), 0);
  assert.equal(limiter.reserve(), 100);
  // A long idle period refills no more than the burst.
  clock.t = 60_000;
  assert.deepEqual([limiter.reserve(), limiter.reserve(), limiter.reserve(), limiter.reserve()], [0, 0, 0, 100]);
});

test("RateLimiter.take() sleeps for the reserved wait and reports it", async () => {
  const clock = manualClock();
  const limiter = new RateLimiter(2, 1, clock);
  assert.equal(await limiter.take(), 0);
  assert.equal(await limiter.take(), 500);
  assert.equal(await limiter.take(), 1000);
  assert.deepEqual(clock.sleeps, [500, 1000]);
});

test("RateLimiter with qps Infinity never waits", () => {
  const limiter = new RateLimiter(Infinity, 1, manualClock());
  for (let i = 0; i < 100; i++) assert.equal(limiter.reserve(), 0);
});

test("RateLimiter throws RangeError for a non-positive qps or burst", () => {
  for (const [qps, burst] of [
    [0, 1],
    [-1, 1],
    [Number.NaN, 1],
    [1, 0],
    [1, 2.5],
  ] as const) {
    assert.throws(() => new RateLimiter(qps, burst, manualClock()), RangeError);
  }
});

test("RateLimiter.take() on the real clock spaces calls after the burst", async () => {
  const limiter = new RateLimiter(100, 2, REAL_CLOCK);
  const start = performance.now();
  for (let i = 0; i < 5; i++) await limiter.take();
  const elapsed = performance.now() - start;
  // Two at once, then three at 10 ms intervals.
  assert.ok(elapsed >= 28, `took ${elapsed} ms, expected about 30`);
  assert.ok(elapsed < 1000, `took ${elapsed} ms, expected about 30`);
});
