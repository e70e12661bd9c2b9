// A token bucket (golang.org/x/time/rate semantics, as Cilium's API
// limiter uses): `burst` calls go at once, then `qps` per second. A call
// that finds the bucket empty reserves the next token and sleeps until it
// is due, so concurrent callers are spaced fairly, in arrival order.

/** Time for the limiter and the retries: injectable so tests need no real waiting. */
export interface Clock {
  /** The current time in milliseconds. */
  now(): number;
  /** Resolves after `ms` milliseconds. */
  sleep(ms: number): Promise<void>;
}

/** The real clock: `performance.now()` and `setTimeout`. */
export const REAL_CLOCK: Clock = {
  now: () => performance.now(),
  sleep: (ms) => new Promise<void>((resolve) => setTimeout(resolve, ms)),
};

/** A token bucket over a {@link Clock}. */
export class RateLimiter {
  readonly #qps: number;
  readonly #burst: number;
  readonly #clock: Clock;
  #tokens: number;
  #last: number;

  /**
   * @param qps Tokens added per second (`Infinity` for no limit).
   * @param burst The bucket's size.
   * @param clock Time.
   * @throws {RangeError} When `qps` is not positive or `burst` is not a positive integer.
   */
  constructor(qps: number, burst: number, clock: Clock) {
    if (!(qps > 0)) throw new RangeError(`Invalid qps ${qps}: expected a positive number`);
    if (!(Number.isSafeInteger(burst) && burst >= 1))
      throw new RangeError(`Invalid burst ${burst}: expected a positive integer`);
    this.#qps = qps;
    this.#burst = burst;
    this.#clock = clock;
    this.#tokens = burst;
    this.#last = clock.now();
  }

  /**
   * Takes a token, waiting when none is left.
   *
   * @returns How long the caller had to wait, in milliseconds.
   */
  async take(): Promise<number> {
    const wait = this.reserve();
    if (wait > 0) await this.#clock.sleep(wait);
    return wait;
  }

  /**
   * Takes a token now, possibly on credit.
   *
   * @returns How long to wait before using it, in milliseconds (0 when it was available).
   */
  reserve(): number {
    if (this.#qps === Infinity) return 0;
    const now = this.#clock.now();
    const elapsed = Math.max(0, now - this.#last);
    this.#last = Math.max(this.#last, now);
    this.#tokens = Math.min(this.#burst, this.#tokens + (elapsed * this.#qps) / 1000);
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens * 1000) / this.#qps;
  }
}
