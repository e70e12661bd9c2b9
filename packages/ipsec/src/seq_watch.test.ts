import { describe, expect, test, vi } from "vitest";
import { pollSequenceNumbers, SequenceWatch, type SequenceUsage, sequenceUsage } from "./seq_watch.ts";
import type { XfrmState } from "./types.ts";

/** A state with fabricated replay counters. */
function state(
  oseq: number,
  options: { oseqHi?: number; esn?: boolean; spi?: number; replay?: boolean } = {},
): XfrmState {
  const s: Record<string, unknown> = {
    src: "192.168.0.1",
    dst: "192.168.0.2",
    proto: "esp",
    spi: options.spi ?? 3,
    family: 4,
    reqid: 1,
    mode: "tunnel",
    replayWindow: 0,
    flags: options.esn === true ? ["esn"] : [],
    selector: { family: 4 },
    mark: { value: 0x23e00, mask: 0xffffff00 },
    current: { bytes: 0n, packets: 0n, addTime: 0n, useTime: 0n },
    stats: { replayWindow: 0, replay: 0, integrityFailed: 0 },
    seq: 0,
  };
  if (options.replay !== false) s.replay = { oseq, seq: 0, oseqHi: options.oseqHi ?? 0, seqHi: 0, window: 0 };
  return s as unknown as XfrmState;
}

describe("sequenceUsage", () => {
  test("without ESN the space is 2^32", () => {
    const u = sequenceUsage(state(0x80000000));
    expect(u?.used).toBe(0x80000000n);
    expect(u?.space).toBe(1n << 32n);
    expect(u?.fraction).toBe(0.5);
    expect(sequenceUsage(state(0xffffffff))?.fraction).toBeGreaterThan(0.9999);
  });

  test("with ESN the space is 2^64 and oseqHi counts", () => {
    const u = sequenceUsage(state(5, { esn: true, oseqHi: 0x80000000 }));
    expect(u?.used).toBe((0x80000000n << 32n) | 5n);
    expect(u?.space).toBe(1n << 64n);
    expect(u?.fraction).toBe(0.5);
    // The same counters without ESN would be nearly exhausted by oseq alone, not by oseqHi.
    expect(sequenceUsage(state(0xf0000000, { esn: true }))?.fraction).toBeLessThan(1e-6);
  });

  test("no replay counters: undefined", () => {
    expect(sequenceUsage(state(0, { replay: false }))).toBeUndefined();
  });
});

describe("SequenceWatch", () => {
  test("rotates once per state when it crosses the threshold", () => {
    const rotated: SequenceUsage[] = [];
    const warnings: string[] = [];
    const watch = new SequenceWatch({
      threshold: 0.75,
      onRotate: (u) => rotated.push(u),
      onWarning: (m) => warnings.push(m),
    });
    expect(watch.check([state(1000), state(0x10, { spi: 4 })])).toEqual([]);
    const crossed = watch.check([state(0xc0000000), state(0x10, { spi: 4 })]);
    expect(crossed.map((u) => u.state.spi)).toEqual([3]);
    expect(rotated.map((u) => u.state.spi)).toEqual([3]);
    // Still over the threshold: no second call.
    expect(watch.check([state(0xc0000100)])).toEqual([]);
    expect(rotated).toHaveLength(1);
    expect(warnings).toEqual([]);
    // Replaced (counter back to low), then crossing again fires again.
    watch.check([state(5)]);
    watch.check([state(0xd0000000)]);
    expect(rotated).toHaveLength(2);
  });

  test("without onRotate it warns loudly, naming the state and the percentage", () => {
    const warnings: string[] = [];
    const watch = new SequenceWatch({ onWarning: (m) => warnings.push(m) });
    watch.check([state(0xe8000000)]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^xfrm state 192\.168\.0\.1 -> 192\.168\.0\.2 esp spi 0x3 mark 0x23e00 has used 90\.6% of its 32-bit sequence numbers/,
    );
    expect(warnings[0]).toMatch(/rotate its key/);
  });

  test("the default warning is a process warning", () => {
    // Captured, so the test run prints nothing.
    const emit = vi.spyOn(process, "emitWarning").mockImplementation(() => {});
    try {
      new SequenceWatch().check([state(0xffff0000)]);
      expect(emit).toHaveBeenCalledTimes(1);
      const [message, options] = emit.mock.calls[0]!;
      expect(options).toEqual({ type: "DpIpsecSequenceWarning" });
      expect(String(message)).toMatch(/spi 0x3 .* has used 100\.0% of its 32-bit sequence numbers/);
    } finally {
      emit.mockRestore();
    }
  });

  test("the default threshold is 0.9", () => {
    const rotated: number[] = [];
    const watch = new SequenceWatch({ onRotate: (u) => rotated.push(u.state.spi) });
    watch.check([state(Math.floor(0.89 * 2 ** 32))]);
    expect(rotated).toEqual([]);
    watch.check([state(Math.ceil(0.9 * 2 ** 32))]);
    expect(rotated).toEqual([3]);
  });

  test.each([0, 1, -0.5, 2, Number.NaN])("threshold %s is a RangeError", (t) => {
    expect(() => new SequenceWatch({ threshold: t })).toThrow(RangeError);
  });
});

describe("pollSequenceNumbers", () => {
  test("polls on the injected timer until the signal aborts, rotating once", async () => {
    const ac = new AbortController();
    const counters = [100, 0x50000000, 0xf0000000, 0xf0000001, 0xf0000002];
    let polls = 0;
    const sleeps: number[] = [];
    const rotated: number[] = [];
    await pollSequenceNumbers(
      () => {
        const oseq = counters[polls++]!;
        if (polls === counters.length) ac.abort();
        return [state(oseq)];
      },
      {
        intervalMs: 1234,
        signal: ac.signal,
        onRotate: (u) => rotated.push(Number(u.used)),
        sleep: async (ms, signal) => {
          expect(signal).toBe(ac.signal);
          sleeps.push(ms);
        },
      },
    );
    expect(polls).toBe(5);
    expect(sleeps).toEqual([1234, 1234, 1234, 1234]);
    expect(rotated).toEqual([0xf0000000]);
  });

  test("an already aborted signal returns without polling; the default timer wakes on abort", async () => {
    const ac = new AbortController();
    ac.abort();
    let polls = 0;
    await pollSequenceNumbers(() => (polls++, []), { signal: ac.signal });
    expect(polls).toBe(0);
    const ac2 = new AbortController();
    const done = pollSequenceNumbers(() => (polls++, []), { signal: ac2.signal, intervalMs: 3_600_000 });
    await new Promise((r) => setImmediate(r));
    ac2.abort();
    await done;
    expect(polls).toBe(1);
  });

  test("errors of the listing stop the loop; a bad interval is a RangeError", async () => {
    await expect(
      pollSequenceNumbers(
        () => {
          throw new Error("dump failed");
        },
        { sleep: async () => {} },
      ),
    ).rejects.toThrow("dump failed");
    await expect(pollSequenceNumbers(() => [], { intervalMs: -1 })).rejects.toThrow(RangeError);
  });
});
