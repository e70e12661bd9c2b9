import { beforeEach, describe, expect, test } from "vitest";
import { type BpfMap, type BpfProgram, ClosedError, createMap, loadProgram } from "@dp/core";
import { asm, rawFd } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";
import { RingBuffer, struct, u32 } from "@dp/maps";

beforeEach((t) => requireRoot(t));

const RINGBUF_RESERVE = 131;
const RINGBUF_SUBMIT = 132;
const RINGBUF_DISCARD = 133;

const Quad = struct({ a: u32, b: u32, c: u32, d: u32 });
const QUAD = { a: 0x11111111, b: 0x22222222, c: 0x33333333, d: 0x44444444 };

/**
 * An XDP program that reserves a record of `size` bytes, fills its first
 * four u32 words with QUAD (as far as they fit) and submits it, or
 * discards it when `discard` is set.
 */
function producer(ring: BpfMap, size: number, discard: boolean): BpfProgram {
  const words = [QUAD.a, QUAD.b, QUAD.c, QUAD.d].slice(0, size / 4);
  const insns = asm.program(
    asm.ldMapFd(1, rawFd(ring.fd)),
    asm.movImm(2, size),
    asm.movImm(3, 0),
    asm.call(RINGBUF_RESERVE),
    asm.jeqImm(0, 0, words.length + 4),
    ...words.map((w, i) => asm.stW(0, i * 4, w | 0)),
    asm.movReg(1, 0),
    asm.movImm(2, 0),
    asm.call(discard ? RINGBUF_DISCARD : RINGBUF_SUBMIT),
    asm.movImm(0, 2),
    asm.exit(),
  );
  return loadProgram({ type: "xdp", license: "GPL", instructions: insns });
}

function run(prog: BpfProgram, times = 1): void {
  prog.testRun({ data: new Uint8Array(64), repeat: times });
}

function ring(size = 4096): BpfMap {
  return createMap({ name: "t_ring", type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: size });
}

describe("RingBuffer", () => {
  test("drain() decodes records that straddle the end of the ring", () => {
    using events = new RingBuffer(ring(), Quad);
    using submit = producer(events.map, 16, false);
    // 24 bytes per record: over 4096 bytes the records straddle the end.
    let total = 0;
    for (let round = 0; round < 20; round++) {
      run(submit, 100);
      const got = events.drain();
      expect(got).toHaveLength(100);
      for (const r of got) expect(r).toEqual(QUAD);
      total += got.length;
    }
    expect(total).toBe(2000);
  });

  test("discarded records are skipped and counted; without a codec records are bytes", () => {
    using events = new RingBuffer(ring());
    using keep = producer(events.map, 8, false);
    using drop = producer(events.map, 8, true);
    run(drop);
    run(keep);
    run(drop, 2);
    const got = events.drain();
    expect(got).toEqual([new Uint8Array([0x11, 0x11, 0x11, 0x11, 0x22, 0x22, 0x22, 0x22])]);
    expect(events.discarded).toBe(3);
  });

  test("a record shorter than the codec throws RangeError once, after the records before it", () => {
    using events = new RingBuffer(ring(), Quad);
    using full = producer(events.map, 16, false);
    using short = producer(events.map, 8, false);
    run(full);
    run(short);
    run(full);
    expect(events.drain()).toEqual([QUAD]);
    expect(() => events.drain()).toThrow(new RangeError('Invalid record in ring buffer "t_ring": 8 bytes, struct needs 16'));
    expect(events.drain()).toEqual([QUAD]);
  });

  test("records() waits without blocking the event loop and ends when its signal aborts", async () => {
    using events = new RingBuffer(ring(), Quad);
    using submit = producer(events.map, 16, false);
    const controller = new AbortController();
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    setTimeout(() => run(submit), 50);
    const got: unknown[] = [];
    try {
      for await (const r of events.records({ signal: controller.signal })) {
        got.push(r);
        if (got.length === 1) setTimeout(() => run(submit, 2), 20);
        if (got.length === 3) setTimeout(() => controller.abort(), 20);
      }
    } finally {
      clearInterval(timer);
    }
    expect(got).toEqual([QUAD, QUAD, QUAD]);
    // Timers kept firing while the iteration waited.
    expect(ticks).toBeGreaterThan(5);
  });

  test("close() ends a waiting iteration; later reads throw ClosedError", async () => {
    const events = new RingBuffer(ring(), Quad);
    const done = (async () => {
      const got: unknown[] = [];
      for await (const r of events) got.push(r);
      return got;
    })();
    await new Promise((resolve) => setTimeout(resolve, 30));
    events.close();
    expect(await done).toEqual([]);
    expect(events.closed).toBe(true);
    expect(events.map.closed).toBe(true);
    expect(() => events.drain()).toThrow(ClosedError);
  });

  test("breaking out of records() keeps the records not yet yielded", async () => {
    using events = new RingBuffer(ring(), Quad);
    using submit = producer(events.map, 16, false);
    run(submit, 3);
    for await (const r of events.records()) {
      expect(r).toEqual(QUAD);
      break;
    }
    expect(events.drain()).toHaveLength(2);
  });

  test("the constructor refuses other map types", () => {
    using arr = createMap({ name: "t_notring", type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    expect(() => new RingBuffer(arr)).toThrow(/its type is array, expected ringbuf/);
  });
});
