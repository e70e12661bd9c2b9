import { type BpfMap, ClosedError } from "@dp/core";
import { rawFd, type ReadySource, watchReadable } from "@dp/core/internal";
import type { Codec } from "./codec.ts";
import { mapMemory, mapRingProducer, type Mapping } from "./_mmap.ts";
import { checkMap } from "./_typed.ts";

const BUSY = 0x8000_0000;
const DISCARD = 0x4000_0000;
const LENGTH = 0x3fff_ffff;
const HEADER = 8;

/**
 * The consumer side of a BPF ring buffer over its shared memory: the
 * consumer position (which user space advances), the producer position and
 * the data area, mapped twice in a row so that a record that wraps around
 * the end reads as one piece.
 *
 * Positions are byte counts that only grow; a record starts with an 8-byte
 * header whose length word carries a busy bit (reserved, not yet committed)
 * and a discard bit (the program threw it away), and is padded to 8 bytes.
 */
export class RingReader {
  /** Records skipped because the program discarded them. */
  discarded = 0;
  /** Where the record found by {@link RingReader.next} starts in the data area. */
  offset = 0;
  /** Its length in bytes. */
  length = 0;
  #consumer: BigUint64Array;
  #producer: BigUint64Array;
  #headers: Uint32Array;
  #size: number;
  #pos: number;
  #total = 0;

  /**
   * @param consumer The consumer position (a u64 user space writes).
   * @param producer The producer position.
   * @param data The data area, `2 * size` bytes.
   * @param size The ring size, a power of two.
   */
  constructor(consumer: BigUint64Array, producer: BigUint64Array, data: Uint32Array, size: number) {
    this.#consumer = consumer;
    this.#producer = producer;
    this.#headers = data;
    this.#size = size;
    this.#pos = Number(Atomics.load(consumer, 0));
  }

  /**
   * Finds the next committed record, stepping over discarded ones. The
   * record stays in the ring until {@link RingReader.advance}.
   *
   * @returns `false` when the ring is empty or the next record is still being written.
   */
  next(): boolean {
    for (;;) {
      if (this.#pos >= Number(Atomics.load(this.#producer, 0))) return false;
      const at = this.#pos % this.#size;
      const header = Atomics.load(this.#headers, at >>> 2);
      if ((header & BUSY) !== 0) return false;
      const length = header & LENGTH;
      const total = (length + HEADER + 7) & ~7;
      if ((header & DISCARD) !== 0) {
        this.discarded++;
        this.#pos += total;
        Atomics.store(this.#consumer, 0, BigInt(this.#pos));
        continue;
      }
      this.offset = at + HEADER;
      this.length = length;
      this.#total = total;
      return true;
    }
  }

  /** Releases the record {@link RingReader.next} found, so the kernel can reuse its space. */
  advance(): void {
    this.#pos += this.#total;
    this.#total = 0;
    Atomics.store(this.#consumer, 0, BigInt(this.#pos));
  }
}

/** Options for {@link RingBuffer.records}. */
export interface RingBufferRecordsOptions {
  /**
   * Stops the iteration (it ends without an error).
   *
   * @default never
   */
  readonly signal?: AbortSignal;
}

/**
 * The user-space reader of a ring buffer map (`BPF_MAP_TYPE_RINGBUF`).
 *
 * The ring is mapped into this process as libbpf does: the consumer page
 * read-write, the producer page and the data (mapped twice, so records that
 * wrap are contiguous) read-only. Records are read straight from shared
 * memory and decoded with the record codec, or copied as bytes when there
 * is none. {@link RingBuffer.drain} reads what is there now;
 * {@link RingBuffer.records} (and `for await`) waits for more through the
 * process's reactor (one epoll set and at most one libuv worker thread for
 * every waiting reader of the process), so the event loop keeps running,
 * until its signal aborts or the reader is closed.
 *
 * Records a program discarded (`bpf_ringbuf_discard()`) are skipped and
 * counted in {@link RingBuffer.discarded}. Records a program could not
 * reserve because the ring was full never reach the ring: count them in
 * the program if they matter.
 *
 * `close()` unmaps the ring and closes the map.
 *
 * @typeParam T The decoded record type (`Uint8Array` without a codec).
 * @example Reading records a program submitted
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadCollection, readCollectionSpec } from "@dp/core";
 * import { RingBuffer, struct, u32 } from "@dp/maps";
 *
 * using coll = loadCollection(readCollectionSpec("bpf/build/testdata/typed_maps.o"));
 * using events = new RingBuffer(coll.map("events"), struct({ seed: u32, len: u32 }));
 * const ctx = new Uint8Array(12);
 * ctx[8] = 5; // skb->mark
 * coll.program("fill_maps").testRun({ data: new Uint8Array(64), ctx });
 * assert.deepEqual(events.drain(), [{ seed: 5, len: 64 }]);
 * ```
 */
export class RingBuffer<T = Uint8Array> implements AsyncIterable<T> {
  /** The ring buffer map. */
  readonly map: BpfMap;
  #record: Codec<T> | undefined;
  #consumer: Mapping;
  #producer: Mapping;
  #reader: RingReader;
  #data: DataView;
  #source: ReadySource | undefined;
  #closed = false;

  /**
   * Maps a ring buffer for reading.
   *
   * @param map The ring buffer map; `close()` closes it.
   * @param record The codec of a record; records shorter than it are an error. Without one, records are returned as bytes.
   * @throws {TypeError} When the map is not a ring buffer.
   * @throws {SyscallError} When the ring cannot be mapped.
   */
  constructor(map: BpfMap, record?: Codec<T>) {
    checkMap(map, { className: "RingBuffer", types: ["ringbuf"] }, undefined, undefined);
    this.map = map;
    this.#record = record;
    const size = map.maxEntries;
    const { mapping, pageSize } = mapRingProducer(this, map);
    this.#producer = mapping;
    try {
      this.#consumer = mapMemory(this, map, pageSize, true, 0);
    } catch (err) {
      mapping.unmap();
      throw err;
    }
    this.#data = new DataView(mapping.buffer, pageSize, 2 * size);
    this.#reader = new RingReader(
      new BigUint64Array(this.#consumer.buffer, 0, 1),
      new BigUint64Array(mapping.buffer, 0, 1),
      new Uint32Array(mapping.buffer, pageSize, (2 * size) / 4),
      size,
    );
  }

  /** Records skipped because the program discarded them. */
  get discarded(): number {
    return this.#reader.discarded;
  }

  /** Whether {@link RingBuffer.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Reads every record committed so far, without waiting.
   *
   * @returns The decoded records, oldest first.
   * @throws {ClosedError} When the reader is closed.
   * @throws {RangeError} When a record is shorter than the codec (the records before it are returned first, the next call throws and skips it).
   */
  drain(): T[] {
    const out: T[] = [];
    for (;;) {
      const r = this.#next(out.length > 0);
      if (r === undefined) return out;
      out.push(r.value);
    }
  }

  /**
   * Yields records as they are committed, waiting for more through the
   * process's reactor (the map's descriptor in the one epoll set every
   * reader of the process shares), so the event loop is never blocked and
   * any number of waiting readers take at most one libuv worker thread. A
   * record is released back to the kernel as it is yielded; breaking out of
   * the loop loses none. A signal that is already aborted yields nothing.
   *
   * @param options The signal that ends the iteration.
   * @returns Decoded records, oldest first.
   * @throws {RangeError} When a record is shorter than the codec (it is skipped; iterate again to go on).
   * @throws {SyscallError} When the map cannot be added to the reactor.
   * @example Waiting for records with a timeout
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { createMap } from "@dp/core";
   * import { RingBuffer } from "@dp/maps";
   *
   * using ring = new RingBuffer(createMap({ type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 }));
   * const records = [];
   * for await (const r of ring.records({ signal: AbortSignal.timeout(50) })) records.push(r);
   * assert.deepEqual(records, []);
   * ```
   */
  async *records(options: RingBufferRecordsOptions = {}): AsyncGenerator<T, void, undefined> {
    const signal = options.signal;
    if (signal?.aborted || this.#closed) return;
    const source = (this.#source ??= watchReadable(rawFd(this.map.fd), `records in ring buffer "${this.map.name}"`));
    while (!signal?.aborted && !this.#closed) {
      const r = this.#next(false);
      if (r !== undefined) {
        yield r.value;
        continue;
      }
      if (!(await source.wait(signal))) return;
    }
  }

  /**
   * The same as {@link RingBuffer.records} without a signal.
   *
   * @returns Decoded records as they arrive, until the reader is closed.
   */
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return this.records();
  }

  /** Unmaps the ring, wakes waiting iterations (they end) and closes the map. Calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#source?.close();
    this.#consumer.unmap();
    this.#producer.unmap();
    this.map.close();
  }

  /** Closes the reader (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Decodes and releases the next record; with `stopAtBad`, leaves a too-short record for the next call. */
  #next(stopAtBad: boolean): { value: T } | undefined {
    if (this.#closed) throw new ClosedError(`ring buffer "${this.map.name}"`);
    const reader = this.#reader;
    if (!reader.next()) return undefined;
    const record = this.#record;
    if (record === undefined) {
      const bytes = new Uint8Array(this.#data.buffer, this.#data.byteOffset + reader.offset, reader.length).slice();
      reader.advance();
      return { value: bytes as T };
    }
    if (reader.length < record.size) {
      if (stopAtBad) return undefined;
      const length = reader.length;
      reader.advance();
      throw new RangeError(
        `Invalid record in ring buffer "${this.map.name}": ${length} bytes, ${record.name} needs ${record.size}`,
      );
    }
    let value: T;
    try {
      value = record.decode(this.#data, reader.offset);
    } finally {
      reader.advance();
    }
    return { value };
  }
}
