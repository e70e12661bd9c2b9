// A watch over the outbound sequence numbers of states. Without extended
// sequence numbers a state can send 2^32 - 1 packets; after that the kernel
// drops everything it would send (XfrmOutStateSeqError) until the state is
// replaced, the failure behind "connectivity lost after days" with IPsec.
import type { XfrmState } from "./types.ts";

const SPACE_32 = 1n << 32n;
const SPACE_64 = 1n << 64n;

/** How much of its sequence number space a state has used. */
export interface SequenceUsage {
  /** The state. */
  readonly state: XfrmState;
  /** The last outbound sequence number (`oseqHi << 32 | oseq` with ESN). */
  readonly used: bigint;
  /** The size of the space: 2^32 without ESN, 2^64 with it. */
  readonly space: bigint;
  /** `used / space`, from 0 to 1. */
  readonly fraction: number;
}

/**
 * How much of its sequence number space a state has used, from the
 * replay counters the kernel reports.
 *
 * @param state A state from `list()` or `get()`.
 * @returns The usage, or undefined when the kernel sent no replay counters.
 * @example A state near the end of its 32-bit space
 * ```ts
 * import assert from "node:assert/strict";
 * import { sequenceUsage, type XfrmState } from "@dp/ipsec";
 *
 * const state = { flags: [], replay: { oseq: 0xf0000000, seq: 0, oseqHi: 0, seqHi: 0, window: 0 } } as unknown as XfrmState;
 * assert.equal(sequenceUsage(state)?.fraction, 0.9375);
 * ```
 */
export function sequenceUsage(state: XfrmState): SequenceUsage | undefined {
  const r = state.replay;
  if (r === undefined) return undefined;
  const esn = state.esn === true || state.flags.includes("esn");
  const used = esn ? (BigInt(r.oseqHi >>> 0) << 32n) | BigInt(r.oseq >>> 0) : BigInt(r.oseq >>> 0);
  const space = esn ? SPACE_64 : SPACE_32;
  const fraction = Number(used) / Number(space);
  return { state, used, space, fraction };
}

/** Options for {@link SequenceWatch} and {@link pollSequenceNumbers}. */
export interface SequenceWatchOptions {
  /**
   * The fraction of the sequence space at which to act, above 0 and below 1.
   *
   * @default 0.9
   */
  readonly threshold?: number;
  /**
   * Called once per state when it crosses the threshold: rotate the key
   * here (install a new key id so new states replace the old ones).
   *
   * @default none: warn instead
   */
  readonly onRotate?: (usage: SequenceUsage) => void;
  /**
   * Called once per state when it crosses the threshold and there is no
   * `onRotate`.
   *
   * @default a process warning of type `"DpIpsecSequenceWarning"`
   */
  readonly onWarning?: (message: string, usage: SequenceUsage) => void;
}

function stateName(s: XfrmState): string {
  const mark = s.mark === undefined ? "" : ` mark 0x${(s.mark.value >>> 0).toString(16)}`;
  return `${s.src} -> ${s.dst} ${s.proto} spi 0x${(s.spi >>> 0).toString(16)}${mark}`;
}

function identity(s: XfrmState): string {
  return `${s.dst} ${s.proto} ${s.spi} ${s.mark?.value ?? ""}/${s.mark?.mask ?? ""}`;
}

function defaultWarning(message: string): void {
  globalThis.process.emitWarning(message, { type: "DpIpsecSequenceWarning" });
}

/**
 * Checks states against a threshold of their sequence number space and
 * acts once per state crossing it: calls `onRotate`, or warns loudly.
 * A state that falls back below the threshold (it was replaced) may fire
 * again later.
 *
 * @example Fabricated counters
 * ```ts
 * import assert from "node:assert/strict";
 * import { SequenceWatch, type XfrmState } from "@dp/ipsec";
 *
 * const rotated: number[] = [];
 * const watch = new SequenceWatch({ threshold: 0.5, onRotate: (u) => rotated.push(u.state.spi) });
 * const state = (oseq: number) =>
 *   ({ src: "10.0.0.1", dst: "10.0.0.2", proto: "esp", spi: 3, flags: [], replay: { oseq, seq: 0, oseqHi: 0, seqHi: 0, window: 0 } }) as unknown as XfrmState;
 * watch.check([state(10)]);
 * watch.check([state(0x90000000)]);
 * watch.check([state(0x90000001)]);
 * assert.deepEqual(rotated, [3]);
 * ```
 */
export class SequenceWatch {
  readonly #threshold: number;
  readonly #onRotate: ((usage: SequenceUsage) => void) | undefined;
  readonly #onWarning: (message: string, usage: SequenceUsage) => void;
  readonly #fired = new Set<string>();

  /**
   * Creates a watch.
   *
   * @param options The threshold and what to do.
   * @throws {RangeError} When the threshold is not above 0 and below 1.
   */
  constructor(options: SequenceWatchOptions = {}) {
    const t = options.threshold ?? 0.9;
    if (typeof t !== "number" || !(t > 0 && t < 1)) {
      throw new RangeError(`Invalid threshold ${String(t)}: must be a fraction above 0 and below 1`);
    }
    this.#threshold = t;
    this.#onRotate = options.onRotate;
    this.#onWarning = options.onWarning ?? defaultWarning;
  }

  /**
   * Checks the states, acting on those that newly crossed the threshold.
   *
   * @param states The states, such as `xfrm.states.list()`.
   * @returns The usage of the states that crossed the threshold in this call.
   */
  check(states: readonly XfrmState[]): SequenceUsage[] {
    const crossed: SequenceUsage[] = [];
    const over = new Set<string>();
    for (const s of states) {
      const u = sequenceUsage(s);
      if (u === undefined || u.fraction < this.#threshold) continue;
      const id = identity(s);
      over.add(id);
      if (this.#fired.has(id)) continue;
      this.#fired.add(id);
      crossed.push(u);
      if (this.#onRotate !== undefined) {
        this.#onRotate(u);
      } else {
        const pct = (u.fraction * 100).toFixed(1);
        this.#onWarning(
          `xfrm state ${stateName(s)} has used ${pct}% of its ${u.space === SPACE_32 ? "32" : "64"}-bit sequence numbers ` +
            `(${u.used} of ${u.space}); rotate its key before it runs out or its traffic will be dropped`,
          u,
        );
      }
    }
    for (const id of this.#fired) if (!over.has(id)) this.#fired.delete(id);
    return crossed;
  }
}

/** Options for {@link pollSequenceNumbers}. */
export interface PollSequenceNumbersOptions extends SequenceWatchOptions {
  /**
   * Milliseconds between checks.
   *
   * @default 60000
   */
  readonly intervalMs?: number;
  /** Stops the loop. */
  readonly signal?: AbortSignal;
  /**
   * Waits `ms` milliseconds or until `signal` aborts (injected by tests).
   *
   * @default a timer
   */
  readonly sleep?: (ms: number, signal: AbortSignal | undefined) => Promise<void>;
}

function sleepTimer(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted === true) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}

/**
 * Checks the states returned by `list` every `intervalMs` until `signal`
 * aborts, acting as {@link SequenceWatch} does.
 *
 * @param list Returns the current states, such as `() => xfrm.states.list()`.
 * @param options The threshold, actions, interval and signal.
 * @returns Resolves when the signal aborts.
 * @throws {RangeError} When the threshold or interval is invalid.
 * @throws Whatever `list` throws (the loop stops).
 * @example Polling with a fake timer
 * ```ts
 * import assert from "node:assert/strict";
 * import { pollSequenceNumbers, type XfrmState } from "@dp/ipsec";
 *
 * const ac = new AbortController();
 * let polls = 0;
 * await pollSequenceNumbers(() => (++polls === 3 && ac.abort(), [] as XfrmState[]), {
 *   signal: ac.signal,
 *   sleep: async () => {},
 * });
 * assert.equal(polls, 3);
 * ```
 */
export async function pollSequenceNumbers(
  list: () => readonly XfrmState[],
  options: PollSequenceNumbersOptions = {},
): Promise<void> {
  const interval = options.intervalMs ?? 60_000;
  if (typeof interval !== "number" || !Number.isFinite(interval) || interval < 0) {
    throw new RangeError(`Invalid intervalMs ${String(interval)}: must be a finite number of milliseconds, 0 or more`);
  }
  const watch = new SequenceWatch(options);
  const sleep = options.sleep ?? sleepTimer;
  const signal = options.signal;
  const aborted = (): boolean => signal?.aborted === true;
  while (!aborted()) {
    watch.check(list());
    if (aborted()) break;
    await sleep(interval, signal);
  }
}
