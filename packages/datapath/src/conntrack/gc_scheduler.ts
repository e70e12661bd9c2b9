import { type ConntrackGcOptions, type ConntrackGcResult, gcConntrack } from "./gc.ts";
import { CT_GC_INTERVALS, nextConntrackGcInterval } from "./gc_interval.ts";
import type { ConntrackMaps } from "./maps.ts";

/** Options for {@link ConntrackGcScheduler}. */
export interface ConntrackGcSchedulerOptions {
  /**
   * Stops the scheduler when aborted.
   *
   * @default never
   */
  readonly signal?: AbortSignal;
  /**
   * A fixed interval in ms (`conntrack-gc-interval`) instead of the adaptive one.
   *
   * @default adaptive
   */
  readonly interval?: number;
  /**
   * The first interval in ms.
   *
   * @default CT_GC_INTERVALS.starting
   */
  readonly startingInterval?: number;
  /**
   * The smallest adaptive interval in ms.
   *
   * @default CT_GC_INTERVALS.min
   */
  readonly minInterval?: number;
  /**
   * The largest adaptive interval in ms (`conntrack-gc-max-interval`).
   *
   * @default CT_GC_INTERVALS.max
   */
  readonly maxInterval?: number;
  /**
   * Called after each pass with its result and the interval until the next one.
   *
   * @default none
   */
  readonly onResult?: (result: ConntrackGcResult, nextInterval: number) => void;
  /**
   * Called when a scheduled pass throws; the scheduler goes on with the same interval.
   *
   * @default none: the error is kept in {@link ConntrackGcScheduler.lastError}
   */
  readonly onError?: (error: unknown) => void;
  /**
   * The pass to run.
   *
   * @default gcConntrack
   */
  readonly collect?: (maps: ConntrackMaps, options: ConntrackGcOptions) => ConntrackGcResult;
}

/**
 * Runs {@link gcConntrack} over a node's conntrack maps periodically, with
 * the interval adapting to how much each pass deleted
 * ({@link nextConntrackGcInterval}), as Cilium's conntrack GC does. The
 * first pass runs on {@link ConntrackGcScheduler.start}; a pass can be run
 * early with {@link ConntrackGcScheduler.runNow} (for example when the
 * datapath reports a full conntrack map), which shortens the next interval
 * when it found much to delete. The timer does not keep the process alive.
 *
 * @example Starting and stopping
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 * import { ConntrackGcScheduler } from "@dp/datapath";
 *
 * const spec = { type: "hash", keySize: 40, valueSize: 64, maxEntries: 64 } as const;
 * using tcp = createMap(spec);
 * using any = createMap(spec);
 * const stop = new AbortController();
 * const gc = new ConntrackGcScheduler({ tcp, any }, { signal: stop.signal }).start();
 * assert.equal(gc.lastResult?.tcp.removed, 0);
 * assert.equal(gc.interval, 300_000); // nothing deleted: the starting interval stays
 * stop.abort();
 * assert.equal(gc.running, false);
 * ```
 */
export class ConntrackGcScheduler {
  #maps: ConntrackMaps;
  #options: ConntrackGcSchedulerOptions;
  #collect: (maps: ConntrackMaps, options: ConntrackGcOptions) => ConntrackGcResult;
  #interval = 0;
  #lastRun: number | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #running = false;
  #lastResult: ConntrackGcResult | undefined;
  #lastError: unknown;
  #onAbort = (): void => this.stop();

  /**
   * Prepares a scheduler; nothing runs before {@link ConntrackGcScheduler.start}.
   *
   * @param maps The conntrack maps (not closed by the scheduler).
   * @param options Intervals, callbacks and the stop signal.
   * @throws {RangeError} When an interval option is negative or not finite.
   * @throws {TypeError} When an interval option is not a number.
   */
  constructor(maps: ConntrackMaps, options: ConntrackGcSchedulerOptions = {}) {
    this.#maps = maps;
    this.#options = options;
    this.#collect = options.collect ?? gcConntrack;
    // Validates the interval options now rather than in a timer.
    nextConntrackGcInterval(this.#intervalOptions(0));
  }

  /** Whether the scheduler is started and not stopped. */
  get running(): boolean {
    return this.#running;
  }

  /** The current interval in ms (0 before the first pass). */
  get interval(): number {
    return this.#interval;
  }

  /** The result of the last pass. */
  get lastResult(): ConntrackGcResult | undefined {
    return this.#lastResult;
  }

  /** The error of the last scheduled pass that failed, when no `onError` was given. */
  get lastError(): unknown {
    return this.#lastError;
  }

  /**
   * Runs the first pass now and schedules the next ones. Does nothing when
   * already running or when the signal is aborted.
   *
   * @returns This scheduler.
   * @throws {SyscallError} When the first pass fails (the scheduler is not started).
   */
  start(): this {
    if (this.#running || this.#options.signal?.aborted === true) return this;
    this.#pass();
    this.#running = true;
    this.#options.signal?.addEventListener("abort", this.#onAbort, { once: true });
    this.#schedule();
    return this;
  }

  /**
   * Runs a pass now and schedules the next one from its result.
   *
   * @returns The pass's result.
   * @throws {SyscallError} When the pass fails.
   */
  runNow(): ConntrackGcResult {
    const result = this.#pass();
    if (this.#running) this.#schedule();
    return result;
  }

  /** Stops the scheduler; a pass already running finishes. Calling it again does nothing. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#running) return;
    this.#running = false;
    this.#options.signal?.removeEventListener("abort", this.#onAbort);
  }

  /** Stops the scheduler (for `using`). */
  [Symbol.dispose](): void {
    this.stop();
  }

  #intervalOptions(deleteRatio: number, elapsed?: number): Parameters<typeof nextConntrackGcInterval>[0] {
    const o = this.#options;
    return {
      deleteRatio,
      previous: this.#interval,
      ...(elapsed === undefined ? {} : { elapsed }),
      ...(o.interval === undefined ? {} : { fixed: o.interval }),
      min: o.minInterval ?? CT_GC_INTERVALS.min,
      max: o.maxInterval ?? CT_GC_INTERVALS.max,
      starting: o.startingInterval ?? CT_GC_INTERVALS.starting,
    };
  }

  #pass(): ConntrackGcResult {
    const started = Date.now();
    const elapsed = this.#lastRun === undefined ? undefined : started - this.#lastRun;
    const result = this.#collect(this.#maps, {});
    this.#lastRun = started;
    this.#lastResult = result;
    this.#interval = nextConntrackGcInterval(this.#intervalOptions(result.deleteRatio, elapsed));
    this.#options.onResult?.(result, this.#interval);
    return result;
  }

  #schedule(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (!this.#running) return;
      try {
        this.#pass();
      } catch (err) {
        if (this.#options.onError === undefined) this.#lastError = err;
        else this.#options.onError(err);
      }
      if (this.#running) this.#schedule();
    }, this.#interval);
    this.#timer.unref?.();
  }
}
