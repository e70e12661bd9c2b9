import { execFileSync } from "node:child_process";
import { pbkdf2 } from "node:crypto";
import { lookup } from "node:dns/promises";
import { readdirSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { beforeEach, describe, expect, test } from "vitest";
import {
  type BpfMap,
  type BpfProgram,
  ClosedError,
  createMap,
  loadProgram,
  type NetlinkReceived,
  type NetlinkSocket,
  openNetlink,
} from "@dp/core";
import { asm, rawFd, reactorState, RTNLGRP } from "@dp/core/internal";
import { netns, requireRoot } from "@dp/core/testing";
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

/** Runs the program `times` times, once per call: a `repeat` a signal interrupts would be retried and emit twice. */
function run(prog: BpfProgram, times = 1): void {
  for (let i = 0; i < times; i++) prog.testRun({ data: new Uint8Array(64) });
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
    expect(() => events.drain()).toThrow(
      new RangeError('Invalid record in ring buffer "t_ring": 8 bytes, struct needs 16'),
    );
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

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Settles with `p`, or rejects when it takes longer than `ms`. */
async function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** The first item of an async iteration, which then ends. */
async function first<T>(it: AsyncGenerator<T, void, undefined>): Promise<T | undefined> {
  const r = await it.next();
  await it.return();
  return r.done ? undefined : r.value;
}

/** Threads of this process blocked in poll/ppoll/epoll_wait/epoll_pwait/epoll_pwait2 (x86-64 numbers); the caller's thread is running. */
function threadsParkedInPoll(): number {
  const waits = new Set([7, 232, 271, 281, 441]);
  let n = 0;
  for (const tid of readdirSync("/proc/self/task")) {
    try {
      const nr = Number(readFileSync(`/proc/self/task/${tid}/syscall`, "utf8").split(" ")[0]);
      if (waits.has(nr)) n++;
    } catch {
      // the thread exited
    }
  }
  return n;
}

/** fs, dns and crypto work that needs libuv thread-pool threads. */
function threadPoolWork(): Promise<unknown> {
  const self = fileURLToPath(import.meta.url);
  return Promise.all([
    ...Array.from({ length: 8 }, () => readFile(self)),
    ...Array.from({ length: 4 }, () => lookup("localhost")),
    ...Array.from({ length: 4 }, (_, i) => promisify(pbkdf2)("secret", `salt${i}`, 1000, 32, "sha256")),
  ]);
}

describe("waiting readers", () => {
  test("64 ring buffer readers and 64 netlink event readers wait on one thread: fs, dns and crypto stay prompt, and every reader wakes", async () => {
    const READERS = 64;
    using ns = netns();
    const rings: RingBuffer<{ a: number; b: number; c: number; d: number }>[] = [];
    const programs: BpfProgram[] = [];
    const sockets: NetlinkSocket[] = [];
    const stop = new AbortController();
    const parkedBefore = threadsParkedInPoll();
    try {
      for (let i = 0; i < READERS; i++) {
        const events = new RingBuffer(ring(), Quad);
        rings.push(events);
        programs.push(producer(events.map, 16, false));
        sockets.push(openNetlink("route", { netns: ns.ns, groups: [RTNLGRP.LINK] }));
      }
      const ringFirst = rings.map((r) => first(r.records({ signal: stop.signal })));
      const socketFirst = sockets.map((s) => first<NetlinkReceived>(s.receive({ signal: stop.signal })));
      await sleep(100);
      expect(reactorState()).toEqual({ sources: 2 * READERS, waiting: 2 * READERS, armed: true });
      if (process.arch === "x64") expect(threadsParkedInPoll() - parkedBefore).toBeLessThanOrEqual(1);

      // The thread pool still serves everyone else, twice in a row.
      for (let round = 0; round < 2; round++) {
        const t0 = performance.now();
        await within(threadPoolWork(), 5_000, "fs.readFile, dns.lookup and crypto.pbkdf2 with 128 idle readers");
        expect(performance.now() - t0).toBeLessThan(5_000);
      }

      // Every reader wakes: a record in each ring, a link event for every socket.
      for (const p of programs) run(p);
      ns.exec("ip", ["link", "add", "rw0", "type", "bridge"]);
      const records = await within(Promise.all(ringFirst), 5_000, "waking 64 ring buffer readers");
      expect(records).toEqual(Array.from({ length: READERS }, () => QUAD));
      const batches = await within(Promise.all(socketFirst), 5_000, "waking 64 netlink readers");
      for (const b of batches) expect(b?.kind === "messages" && b.messages.length).toBeGreaterThan(0);
      await sleep(20);
      // Nobody waits any more: no epoll_wait() call is left on a worker thread.
      expect(reactorState()).toMatchObject({ waiting: 0, armed: false });
    } finally {
      stop.abort();
      for (const p of programs) p.close();
      for (const r of rings) r.close();
      for (const s of sockets) s.close();
    }
    expect(reactorState()).toEqual({ sources: 0, waiting: 0, armed: false });
  });

  test("a process whose waiting readers were aborted exits on its own", () => {
    const script = `
      import { createMap, openNetlink } from "@dp/core";
      import { RingBuffer } from "@dp/maps";
      const ring = new RingBuffer(createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 }));
      const nl = openNetlink("route");
      const stop = new AbortController();
      const waits = [];
      for (let i = 0; i < 8; i++) {
        waits.push((async () => { for await (const r of ring.records({ signal: stop.signal })) void r; })());
        waits.push((async () => { for await (const r of nl.receive({ signal: stop.signal })) void r; })());
      }
      setTimeout(() => stop.abort(), 100);
      await Promise.all(waits);
      console.log("ended");
    `;
    const t0 = performance.now();
    const out = execFileSync(
      process.execPath,
      ["--conditions=@dp/source", "--import", "tsx", "--input-type=module", "-e", script],
      {
        encoding: "utf8",
        cwd: fileURLToPath(new URL("../../..", import.meta.url)),
        timeout: 20_000,
      },
    );
    expect(out.trim()).toBe("ended");
    expect(performance.now() - t0).toBeLessThan(20_000);
  });
});
