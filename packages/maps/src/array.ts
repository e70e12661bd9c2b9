import { type BpfMap, ClosedError, createMap, MAP_FLAGS, type MapUpdateOptions } from "@dp/core";
import type { Codec } from "./codec.ts";
import { mapMemory, type Mapping } from "./_mmap.ts";
import { align8, INDEX } from "./_typed.ts";
import { TypedMap, type TypedMapOptions } from "./typed_map.ts";

/** Options for {@link ArrayMap.mmap}. */
export interface MmapOptions {
  /**
   * Map the memory read-only: needed for frozen maps (such as `.rodata`),
   * and {@link MappedArray.set} throws.
   *
   * @default false
   */
  readonly readOnly?: boolean;
}

/**
 * An array map (`BPF_MAP_TYPE_ARRAY`) with typed values; keys are indexes
 * from 0 to `size - 1`. Every index always holds a value (zeros until
 * written), so entries cannot be deleted.
 *
 * @typeParam V The value type.
 * @example Indexes and values
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { ArrayMap, u64 } from "@dp/maps";
 *
 * using slots = ArrayMap.create(u64, { maxEntries: 4 });
 * slots.set(2, 42n);
 * assert.equal(slots.get(2), 42n);
 * assert.equal(slots.get(0), 0n);
 * assert.equal(slots.size, 4);
 * ```
 */
export class ArrayMap<V> extends TypedMap<number, V> {
  #value: Codec<V>;

  /**
   * Wraps an existing array map.
   *
   * @param map The map; `close()` closes it.
   * @param value The value codec.
   * @throws {TypeError} When the map is not an array or the codec size differs from its value size.
   */
  constructor(map: BpfMap, value: Codec<V>) {
    super(map, INDEX, value, { kind: { className: "ArrayMap", types: ["array"] } });
    this.#value = value;
  }

  /**
   * Creates an array map sized for the codec.
   *
   * @typeParam V The value type.
   * @param value The value codec.
   * @param options Name, length and flags (`MAP_FLAGS.mmapable` for {@link ArrayMap.mmap}).
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<V>(value: Codec<V>, options: TypedMapOptions): ArrayMap<V> {
    return new ArrayMap(createMap({ ...options, type: "array", keySize: 4, valueSize: value.size }), value);
  }

  /** The number of entries: `maxEntries`. */
  get size(): number {
    return this.map.maxEntries;
  }

  /**
   * Writes the value at an index.
   *
   * @param index The index, from 0 to `size - 1`.
   * @param value The value.
   * @param options `BPF_F_LOCK`; `mode: "create"` always fails on an array (every index exists).
   * @returns This map.
   * @throws {RangeError} Before any system call, when `index` is not an integer from 0 to `size - 1`, or a field of the value is out of range.
   * @throws {TypeError} When the value has the wrong shape (the message names the field).
   * @throws {SyscallError} When the kernel refuses the update.
   */
  override set(index: number, value: V, options?: MapUpdateOptions): this {
    this.#checkIndex(index);
    return super.set(index, value, options);
  }

  /**
   * Writes many values; every index is checked before the first is written.
   *
   * @param entries `[index, value]` pairs.
   * @param options `BPF_F_LOCK` and the update mode.
   * @returns This map.
   * @throws {RangeError} Before any write, when an index is not an integer from 0 to `size - 1`.
   * @throws {TypeError} When a value has the wrong shape (the message names the entry and field).
   * @throws {SyscallError} When the kernel refuses an entry; the entries before it were written.
   */
  override setMany(entries: Iterable<readonly [number, V]>, options: MapUpdateOptions = {}): this {
    const list = Array.isArray(entries) ? (entries as readonly (readonly [number, V])[]) : [...entries];
    for (const entry of list) this.#checkIndex(entry[0]);
    return super.setMany(list, options);
  }

  #checkIndex(index: number): void {
    if (!Number.isInteger(index) || index < 0 || index >= this.map.maxEntries) {
      const name = this.map.name === "" ? "" : ` "${this.map.name}"`;
      throw new RangeError(
        `Invalid index ${String(index)} for array map${name}: use an integer from 0 to ${this.map.maxEntries - 1}`,
      );
    }
  }

  /**
   * Maps the values into this process (the map needs `BPF_F_MMAPABLE`):
   * reads and writes then go through shared memory, with no system call.
   *
   * @param options Whether to map read-only.
   * @returns The mapped array; close it to unmap. The mapping keeps the map alive in the kernel.
   * @throws {TypeError} When the map was created without `BPF_F_MMAPABLE`.
   * @throws {SyscallError} EPERM when mapping a frozen map writable.
   * @example Counting without system calls
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { MAP_FLAGS } from "@dp/core";
   * import { ArrayMap, u32 } from "@dp/maps";
   *
   * using counters = ArrayMap.create(u32, { maxEntries: 8, flags: MAP_FLAGS.mmapable });
   * using mem = counters.mmap();
   * mem.set(3, mem.get(3) + 1);
   * assert.equal(counters.get(3), 1);
   * ```
   */
  mmap(options: MmapOptions = {}): MappedArray<V> {
    if ((this.map.flags & MAP_FLAGS.mmapable) === 0) {
      throw new TypeError(
        `Cannot map array "${this.map.name}": it was created without BPF_F_MMAPABLE (MAP_FLAGS.mmapable)`,
      );
    }
    return new MappedArray(this.map, this.#value, options);
  }
}

/**
 * The values of a `BPF_F_MMAPABLE` array map, mapped into this process
 * (made by {@link ArrayMap.mmap}). `get` and `set` read and write the
 * shared memory programs use, with no system call; values wider than 8
 * bytes are not read or written atomically.
 *
 * `close()` unmaps the memory (the map stays open).
 *
 * @typeParam V The value type.
 * @example Reading what a write through the map stored
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { MAP_FLAGS } from "@dp/core";
 * import { ArrayMap, u64 } from "@dp/maps";
 *
 * using counters = ArrayMap.create(u64, { maxEntries: 4, flags: MAP_FLAGS.mmapable });
 * using mem = counters.mmap({ readOnly: true });
 * counters.set(1, 5n);
 * assert.equal(mem.get(1), 5n);
 * ```
 */
export class MappedArray<V> {
  /** The number of entries. */
  readonly size: number;
  /** Whether the memory is mapped read-only. */
  readonly readOnly: boolean;
  #codec: Codec<V>;
  #view: DataView;
  #stride: number;
  #length: number;
  #mapping: Mapping;
  #name: string;
  #closed = false;

  /**
   * Maps an array's values.
   *
   * @internal Made by {@link ArrayMap.mmap}.
   * @param map A `BPF_F_MMAPABLE` array.
   * @param codec The value codec.
   * @param options Whether to map read-only.
   */
  constructor(map: BpfMap, codec: Codec<V>, options: MmapOptions) {
    this.size = map.maxEntries;
    this.readOnly = options.readOnly ?? false;
    this.#codec = codec;
    this.#stride = align8(map.valueSize);
    this.#name = map.name;
    const bytes = this.#stride * map.maxEntries;
    this.#mapping = mapMemory(this, map, bytes, !this.readOnly, 0);
    this.#view = new DataView(this.#mapping.buffer, 0, bytes);
    this.#length = map.maxEntries;
  }

  /** Whether {@link MappedArray.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Reads a value from shared memory.
   *
   * @param index From 0 to `size - 1`.
   * @returns The decoded value.
   * @throws {RangeError} When `index` is not an index of the array.
   * @throws {ClosedError} When the memory was unmapped.
   */
  get(index: number): V {
    if (index >>> 0 !== index || index >= this.#length) throw this.#badIndex(index);
    return this.#codec.decode(this.#view, index * this.#stride);
  }

  /**
   * Writes a value to shared memory.
   *
   * @param index From 0 to `size - 1`.
   * @param value The value.
   * @returns This array.
   * @throws {RangeError} When `index` is not an index of the array, or a field is out of range.
   * @throws {TypeError} When the memory is read-only or the value has the wrong shape.
   * @throws {ClosedError} When the memory was unmapped.
   */
  set(index: number, value: V): this {
    if (index >>> 0 !== index || index >= this.#length || this.readOnly) throw this.#badIndex(index);
    this.#codec.encode(value, this.#view, index * this.#stride, "value");
    return this;
  }

  /** Unmaps the memory. Calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#length = 0;
    this.#view = new DataView(new ArrayBuffer(0));
    this.#mapping.unmap();
  }

  /** Unmaps the memory (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #badIndex(index: number): Error {
    if (this.#closed) return new ClosedError(`mapped array "${this.#name}"`);
    if (index >>> 0 === index && index < this.#length)
      return new TypeError(`Cannot write mapped array "${this.#name}": it is mapped read-only`);
    return new RangeError(
      `Invalid index ${String(index)} for mapped array "${this.#name}": expected an integer from 0 to ${this.size - 1}`,
    );
  }
}
