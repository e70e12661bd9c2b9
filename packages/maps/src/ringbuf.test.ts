import { describe, expect, test } from "vitest";
import { RingReader } from "./ringbuf.ts";

const BUSY = 0x8000_0000;
const DISCARD = 0x4000_0000;

/** A ring in plain memory: positions, and the data area mapped "twice" by writing every byte to both copies. */
class FakeRing {
  readonly consumer = new BigUint64Array(1);
  readonly producer = new BigUint64Array(1);
  readonly data: Uint32Array;
  readonly bytes: Uint8Array;
  readonly size: number;

  constructor(size: number, start = 0) {
    this.size = size;
    this.data = new Uint32Array((2 * size) / 4);
    this.bytes = new Uint8Array(this.data.buffer);
    this.consumer[0] = BigInt(start);
    this.producer[0] = BigInt(start);
  }

  reader(): RingReader {
    return new RingReader(this.consumer, this.producer, this.data, this.size);
  }

  /** Appends a record (header flags, then the payload) and returns where its header is. */
  append(payload: Uint8Array, flags = 0): number {
    const pos = Number(this.producer[0]);
    const header = new Uint8Array(8);
    new DataView(header.buffer).setUint32(0, (payload.length | flags) >>> 0, true);
    this.#write(pos, header);
    this.#write(pos + 8, payload);
    this.producer[0] = BigInt(pos + ((payload.length + 8 + 7) & ~7));
    return pos;
  }

  setFlags(pos: number, length: number, flags: number): void {
    const at = pos % this.size;
    this.data[at / 4] = (length | flags) >>> 0;
    this.data[(at + this.size) / 4] = (length | flags) >>> 0;
  }

  #write(pos: number, bytes: Uint8Array): void {
    bytes.forEach((b, i) => {
      const at = (pos + i) % this.size;
      this.bytes[at] = b;
      this.bytes[at + this.size] = b;
    });
  }
}

function readAll(ring: FakeRing, reader: RingReader): number[][] {
  const out: number[][] = [];
  while (reader.next()) {
    out.push([...ring.bytes.subarray(reader.offset, reader.offset + reader.length)]);
    reader.advance();
  }
  return out;
}

describe("RingReader", () => {
  test("next() and advance() read committed records in order and move the consumer position", () => {
    const ring = new FakeRing(64);
    const reader = ring.reader();
    expect(reader.next()).toBe(false);
    ring.append(new Uint8Array([1, 2, 3]));
    ring.append(new Uint8Array([4, 5, 6, 7, 8, 9, 10, 11, 12]));
    expect(readAll(ring, reader)).toEqual([
      [1, 2, 3],
      [4, 5, 6, 7, 8, 9, 10, 11, 12],
    ]);
    // 3 bytes + header → 16; 9 bytes + header → 24.
    expect(ring.consumer[0]).toBe(40n);
  });

  test("a busy record stops the reader until it is committed", () => {
    const ring = new FakeRing(64);
    const reader = ring.reader();
    const first = ring.append(new Uint8Array([1, 1, 1, 1]), BUSY);
    ring.append(new Uint8Array([2, 2, 2, 2]));
    expect(reader.next()).toBe(false);
    expect(ring.consumer[0]).toBe(0n);
    ring.setFlags(first, 4, 0);
    expect(readAll(ring, reader)).toEqual([
      [1, 1, 1, 1],
      [2, 2, 2, 2],
    ]);
  });

  test("discarded records are skipped, counted and released", () => {
    const ring = new FakeRing(64);
    const reader = ring.reader();
    ring.append(new Uint8Array([9]), DISCARD);
    ring.append(new Uint8Array([1]));
    ring.append(new Uint8Array([9, 9]), DISCARD);
    expect(readAll(ring, reader)).toEqual([[1]]);
    expect(reader.discarded).toBe(2);
    expect(ring.consumer[0]).toBe(ring.producer[0]);
  });

  test("records straddling the end of the data area read in one piece, past 2^32 bytes of positions", () => {
    const start = 2 ** 32 - 40;
    const ring = new FakeRing(64, start);
    const reader = ring.reader();
    const seen: number[][] = [];
    for (let i = 0; i < 20; i++) {
      ring.append(
        new Uint8Array([
          i,
          i + 1,
          i + 2,
          i + 3,
          i + 4,
          i + 5,
          i + 6,
          i + 7,
          i + 8,
          i + 9,
          i + 10,
          i + 11,
          i + 12,
          i + 13,
          i + 14,
          i + 15,
        ]),
      );
      seen.push(...readAll(ring, reader));
    }
    expect(seen).toHaveLength(20);
    seen.forEach((r, i) => expect(r).toEqual(Array.from({ length: 16 }, (_, j) => i + j)));
    expect(Number(ring.consumer[0])).toBe(start + 20 * 24);
  });
});
