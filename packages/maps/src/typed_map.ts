import {
  type BatchCursor,
  type BpfMap,
  type FdOwner,
  type MapBatchResult,
  type MapType,
  type MapUpdateOptions,
  NotSupportedError,
  SyscallError,
} from "@dp/core";
import { mapDirect, type MapDirect } from "@dp/core/internal";
import { checkMap, deleteBatch, keyString, type Layout, type MapKind } from "./_typed.ts";

/** Entries per batch system call. */
const CHUNK = 4096;
const ENOSPC = 28;

/**
 * Map types whose batch cursor is a position (a hash bucket, an array
 * index) that deleting entries does not move: batch iteration over them
 * never sees an entry twice.
 */
const POSITION_CURSOR: ReadonlySet<MapType> = new Set<MapType>([
  "hash",
  "lruHash",
  "percpuHash",
  "lruPercpuHash",
  "hashOfMaps",
  "array",
  "percpuArray",
  "arrayOfMaps",
  "progArray",
]);

/** Array-like map types: next-key walks go through indexes, which never go missing. */
const INDEXED: ReadonlySet<MapType> = new Set<MapType>(["array", "percpuArray", "arrayOfMaps", "progArray", "sockmap"]);

/** Options for the `create()` factories of the typed map classes. */
export interface TypedMapOptions {
  /**
   * The kernel-visible name: at most 15 characters of `[A-Za-z0-9_.]`.
   *
   * @default ""
   */
  readonly name?: string;
  /** Capacity. */
  readonly maxEntries: number;
  /**
   * `BPF_F_*` flags, see `MAP_FLAGS` in `@dp/core`.
   *
   * @default 0
   */
  readonly flags?: number;
}

/**
 * What the typed map classes pass to {@link TypedMap}'s constructor.
 *
 * @internal
 */
export interface TypedMapInit<VIn> {
  /** Which map types the class wraps. */
  readonly kind: MapKind;
  /** The layout whose size the map's `valueSize` must equal; `null` skips the check. */
  readonly valueCheck?: Layout<unknown, never> | null;
  /** For maps of descriptors: the object whose descriptor `set` stores. */
  readonly store?: (value: VIn, path: string) => FdOwner;
}

function atEntry(err: unknown, index: number): unknown {
  if (err instanceof RangeError) return new RangeError(`${err.message} (entry ${index})`, { cause: err });
  if (err instanceof TypeError) return new TypeError(`${err.message} (entry ${index})`, { cause: err });
  return err;
}

/**
 * A BPF map with typed keys and values, mirroring `Map`: {@link TypedMap.get}
 * returns `undefined` for a missing key, {@link TypedMap.set} returns the
 * map, and iteration yields decoded `[key, value]` pairs.
 *
 * Keys and values are encoded into buffers allocated once per map, so a
 * `get` or `set` costs one system call and the decoded result. Iteration
 * reads entries in batches (`BPF_MAP_LOOKUP_BATCH`) where the kernel
 * supports it for the map type, and walks keys (`BPF_MAP_GET_NEXT_KEY`)
 * otherwise; both stay correct while entries are deleted, including by the
 * loop itself, and yield each key at most once.
 *
 * `close()` closes the underlying {@link TypedMap.map}.
 *
 * @typeParam K The key type iteration returns.
 * @typeParam V The value type `get` returns.
 * @typeParam KIn The key type methods accept.
 * @typeParam VIn The value type `set` accepts.
 * @example Reading back what was written
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { ArrayMap, u32 } from "@dp/maps";
 *
 * using ports = ArrayMap.create(u32, { maxEntries: 2 });
 * ports.set(1, 8080);
 * assert.deepEqual([...ports], [[0, 0], [1, 8080]]);
 * ```
 */
export class TypedMap<K, V, KIn = K, VIn = V> implements Iterable<[K, V]> {
  /** The raw map underneath. */
  readonly map: BpfMap;
  #key: Layout<K, KIn>;
  #value: Layout<V, VIn>;
  #keyView: DataView;
  #keyBytes: Uint8Array;
  #store: ((value: VIn, path: string) => FdOwner) | undefined;
  #direct: MapDirect;
  #batchLookup: boolean | undefined;
  #batchUpdate: boolean | undefined;

  /**
   * Wraps a map with key and value layouts.
   *
   * @internal Each class has its own constructor.
   * @param map The map; the typed map closes it on `close()`.
   * @param key The key layout.
   * @param value The value layout.
   * @param init The class's map types and value checks.
   */
  constructor(map: BpfMap, key: Layout<K, KIn>, value: Layout<V, VIn>, init: TypedMapInit<VIn>) {
    checkMap(map, init.kind, key, init.valueCheck === undefined ? value : (init.valueCheck ?? undefined));
    this.map = map;
    this.#key = key;
    this.#value = value;
    this.#keyBytes = new Uint8Array(map.keySize);
    this.#keyView = new DataView(this.#keyBytes.buffer);

    this.#store = init.store;
    this.#direct = mapDirect(map);
  }

  /** Whether {@link TypedMap.close} was called (or the map was closed directly). */
  get closed(): boolean {
    return this.map.closed;
  }

  /**
   * Looks up a key.
   *
   * @param key The key.
   * @returns The decoded value, or `undefined` when the key is missing.
   * @throws {TypeError} When the key has the wrong shape (the message names the field).
   * @throws {RangeError} When a key field is out of range.
   * @throws {ClosedError} When the map is closed.
   * @throws {SyscallError} When the kernel refuses the lookup.
   */
  get(key: KIn): V | undefined {
    // Encode and decode in the map's own native buffers: no copies.
    const direct = this.#direct;
    this.#key.encode(key, direct.key, 0, "key");
    if (!direct.lookup()) return undefined;
    return this.#value.decode(direct.value, 0);
  }

  /**
   * Tells whether a key is present.
   *
   * @param key The key.
   * @returns `true` when a lookup finds it.
   * @throws {TypeError} When the key has the wrong shape.
   * @throws {RangeError} When a key field is out of range.
   * @throws {ClosedError} When the map is closed.
   */
  has(key: KIn): boolean {
    const direct = this.#direct;
    this.#key.encode(key, direct.key, 0, "key");
    return direct.lookup();
  }

  /**
   * Creates or replaces an entry.
   *
   * @param key The key.
   * @param value The value.
   * @param options Whether the key must exist or not, and `BPF_F_LOCK`.
   * @returns This map.
   * @throws {TypeError} When the key or value has the wrong shape (the message names the field).
   * @throws {RangeError} When a field is out of range.
   * @throws {SyscallError} E2BIG when the map is full, EEXIST/ENOENT when `mode` forbids the update.
   */
  set(key: KIn, value: VIn, options?: MapUpdateOptions): this {
    if (this.#store === undefined) {
      const direct = this.#direct;
      this.#key.encode(key, direct.key, 0, "key");
      this.#value.encode(value, direct.value, 0, "value");
      direct.update(options === undefined ? 0 : updateFlags(options));
    } else {
      this.#key.encode(key, this.#keyView, 0, "key");
      this.map.set(this.#keyBytes, this.#store(value, "value"), options);
    }
    return this;
  }

  /**
   * Writes many entries: with `BPF_MAP_UPDATE_BATCH` (up to 4096 entries per
   * call) where the kernel supports it for the map type and the options
   * allow it (`mode: "any"`), one update per entry otherwise.
   *
   * @param entries `[key, value]` pairs.
   * @param options Whether keys must exist or not, and `BPF_F_LOCK`.
   * @returns This map.
   * @throws {TypeError} When a key or value has the wrong shape (the message names the entry and field).
   * @throws {RangeError} When a field is out of range.
   * @throws {SyscallError} When the kernel refuses an entry; the entries before it were written.
   */
  setMany(entries: Iterable<readonly [KIn, VIn]>, options: MapUpdateOptions = {}): this {
    if (this.#store !== undefined || this.#batchUpdate === false || (options.mode ?? "any") !== "any") {
      for (const entry of entries) this.set(entry[0], entry[1], options);
      return this;
    }
    const map = this.map;
    const ks = map.keySize;
    const vs = map.valueBytes;
    const cap = Math.max(1, Math.min(CHUNK, map.maxEntries, Array.isArray(entries) ? entries.length : CHUNK));
    const keys = new Uint8Array(cap * ks);
    const values = new Uint8Array(cap * vs);
    const kv = new DataView(keys.buffer);
    const vv = new DataView(values.buffer);
    let n = 0;
    let index = 0;
    for (const entry of entries) {
      try {
        this.#key.encode(entry[0], kv, n * ks, "key");
        this.#value.encode(entry[1], vv, n * vs, "value");
      } catch (err) {
        throw atEntry(err, index);
      }
      n++;
      index++;
      if (n === cap) {
        this.#writeBatch(keys, values, n, options);
        n = 0;
      }
    }
    if (n > 0) this.#writeBatch(keys.slice(0, n * ks), values.slice(0, n * vs), n, options);
    return this;
  }

  /**
   * Iterates over the keys.
   *
   * @returns Each key once, decoded.
   */
  *keys(): IterableIterator<K> {
    for (const [key] of this.entries()) yield key;
  }

  /**
   * Iterates over the values.
   *
   * @returns Each entry's value, decoded.
   */
  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  /**
   * Iterates over the entries: in batches of up to 4096 where the kernel
   * supports batch lookups for the map type, by walking keys otherwise.
   * Entries deleted during the iteration are not revisited; with batches,
   * an entry deleted after its batch was read may still be yielded.
   *
   * @returns Decoded `[key, value]` pairs, each key once.
   * @throws {SyscallError} When the kernel refuses a lookup.
   */
  *entries(): IterableIterator<[K, V]> {
    if (this.#batchLookup !== false) {
      // Ends without yielding when the kernel has no batch lookups for the type.
      if (yield* this.#batched()) return;
    }
    yield* this.#walk();
  }

  /**
   * Iterates over the entries.
   *
   * @returns The same as {@link TypedMap.entries}.
   */
  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }

  /** Closes the underlying map. Calling it again does nothing. */
  close(): void {
    this.map.close();
  }

  /** Closes the map (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Decodes the key and value at offsets of two views. */
  #entry(keys: DataView, keyOffset: number, values: DataView, valueOffset: number): [K, V] {
    return [this.#key.decode(keys, keyOffset), this.#value.decode(values, valueOffset)];
  }

  *#batched(): Generator<[K, V], boolean, undefined> {
    const map = this.map;
    const ks = map.keySize;
    const vs = map.valueBytes;
    let chunk = Math.max(1, Math.min(CHUNK, map.maxEntries));
    let keys = new Uint8Array(chunk * ks);
    let values = new Uint8Array(chunk * vs);
    let kv = new DataView(keys.buffer);
    let vv = new DataView(values.buffer);
    const seen = POSITION_CURSOR.has(map.type) ? undefined : new Set<string>();
    let cursor: BatchCursor | undefined;
    for (;;) {
      let result: MapBatchResult;
      try {
        result = map.lookupBatch(keys, values, cursor === undefined ? {} : { cursor });
      } catch (err) {
        if (this.#batchLookup === undefined && err instanceof NotSupportedError) {
          this.#batchLookup = false;
          return false;
        }
        // A hash bucket holds more entries than the chunk: grow it.
        if (err instanceof SyscallError && err.errno === ENOSPC && chunk < map.maxEntries) {
          chunk = Math.min(chunk * 4, map.maxEntries);
          keys = new Uint8Array(chunk * ks);
          values = new Uint8Array(chunk * vs);
          kv = new DataView(keys.buffer);
          vv = new DataView(values.buffer);
          continue;
        }
        throw err;
      }
      this.#batchLookup = true;
      for (let i = 0; i < result.count; i++) {
        if (seen !== undefined) {
          const s = keyString(keys, i * ks, ks);
          if (seen.has(s)) continue;
          seen.add(s);
        }
        yield this.#entry(kv, i * ks, vv, i * vs);
      }
      if (result.cursor === undefined) return true;
      cursor = result.cursor;
    }
  }

  *#walk(): Generator<[K, V], void, undefined> {
    const map = this.map;
    const ks = map.keySize;
    let cur = new Uint8Array(ks);
    let next = new Uint8Array(ks);
    let curView = new DataView(cur.buffer);
    let nextView = new DataView(next.buffer);
    const value = new Uint8Array(map.valueBytes);
    const valueView = new DataView(value.buffer);
    const seen = INDEXED.has(map.type) ? undefined : new Set<string>();
    let more = map.nextKey(undefined, cur) !== undefined;
    while (more) {
      // Find the next key before yielding, so deleting the current one
      // (which makes the kernel restart from the first key) is harmless.
      more = map.nextKey(cur, next) !== undefined;
      let fresh = true;
      if (seen !== undefined) {
        const s = keyString(cur, 0, ks);
        fresh = !seen.has(s);
        seen.add(s);
      }
      if (fresh && map.get(cur, value) !== undefined) yield this.#entry(curView, 0, valueView, 0);
      [cur, next] = [next, cur];
      [curView, nextView] = [nextView, curView];
    }
  }

  #writeBatch(keys: Uint8Array, values: Uint8Array, n: number, options: MapUpdateOptions): void {
    const map = this.map;
    if (this.#batchUpdate !== false) {
      try {
        map.updateBatch(keys, values, options.lock ? { lock: true } : undefined);
        this.#batchUpdate = true;
        return;
      } catch (err) {
        if (!(this.#batchUpdate === undefined && err instanceof NotSupportedError)) throw err;
        this.#batchUpdate = false;
      }
    }
    const ks = map.keySize;
    const vs = map.valueBytes;
    for (let i = 0; i < n; i++) {
      map.set(keys.subarray(i * ks, (i + 1) * ks), values.subarray(i * vs, (i + 1) * vs), options);
    }
  }
}

/**
 * A {@link TypedMap} whose entries can be deleted (every type but plain
 * and per-CPU arrays).
 *
 * @typeParam K The key type iteration returns.
 * @typeParam V The value type `get` returns.
 * @typeParam KIn The key type methods accept.
 * @typeParam VIn The value type `set` accepts.
 * @example Deleting while iterating
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { HashMap, u32 } from "@dp/maps";
 *
 * using m = HashMap.create(u32, u32, { maxEntries: 16 });
 * m.setMany([[1, 10], [2, 20], [3, 30]]);
 * for (const [k, v] of m) if (v > 10) m.delete(k);
 * assert.deepEqual([...m], [[1, 10]]);
 * ```
 */
export class DeletableMap<K, V, KIn = K, VIn = V> extends TypedMap<K, V, KIn, VIn> {
  #key: Layout<K, KIn>;
  #keyView: DataView;
  #keyBytes: Uint8Array;
  #batchDelete: boolean | undefined;

  /**
   * Wraps a map with key and value layouts.
   *
   * @internal Each class has its own constructor.
   * @param map The map; the typed map closes it on `close()`.
   * @param key The key layout.
   * @param value The value layout.
   * @param init The class's map types and value checks.
   */
  constructor(map: BpfMap, key: Layout<K, KIn>, value: Layout<V, VIn>, init: TypedMapInit<VIn>) {
    super(map, key, value, init);
    this.#key = key;
    this.#keyBytes = new Uint8Array(map.keySize);
    this.#keyView = new DataView(this.#keyBytes.buffer);
  }

  /**
   * Deletes a key.
   *
   * @param key The key.
   * @returns `false` when the key was missing.
   * @throws {TypeError} When the key has the wrong shape.
   * @throws {RangeError} When a key field is out of range.
   * @throws {SyscallError} When the kernel refuses the deletion.
   */
  delete(key: KIn): boolean {
    this.#key.encode(key, this.#keyView, 0, "key");
    return this.map.delete(this.#keyBytes);
  }

  /**
   * Deletes many keys: with `BPF_MAP_DELETE_BATCH` (up to 4096 keys per
   * call) where the kernel supports it for the map type, one by one
   * otherwise. Missing keys are skipped.
   *
   * @param keys The keys.
   * @returns How many keys were deleted.
   * @throws {TypeError} When a key has the wrong shape (the message names the entry and field).
   * @throws {RangeError} When a key field is out of range.
   * @throws {SyscallError} When the kernel refuses a deletion; the keys before it were deleted.
   */
  deleteMany(keys: Iterable<KIn>): number {
    const ks = this.map.keySize;
    const cap = Math.max(1, Math.min(CHUNK, Array.isArray(keys) ? keys.length : CHUNK));
    const bytes = new Uint8Array(cap * ks);
    const view = new DataView(bytes.buffer);
    let n = 0;
    let index = 0;
    let deleted = 0;
    for (const key of keys) {
      try {
        this.#key.encode(key, view, n * ks, "key");
      } catch (err) {
        throw atEntry(err, index);
      }
      n++;
      index++;
      if (n === cap) {
        deleted += this.#deleteBatch(bytes, n);
        n = 0;
      }
    }
    if (n > 0) deleted += this.#deleteBatch(bytes, n);
    return deleted;
  }

  /**
   * Deletes every entry.
   *
   * @throws {SyscallError} When the kernel refuses a deletion.
   */
  clear(): void {
    const ks = this.map.keySize;
    const keys: Uint8Array[] = [];
    for (const [key] of this.map.entries()) keys.push(key);
    if (keys.length === 0) return;
    const bytes = new Uint8Array(keys.length * ks);
    keys.forEach((k, i) => bytes.set(k, i * ks));
    this.#deleteBatch(bytes, keys.length);
  }

  #deleteBatch(keys: Uint8Array, n: number): number {
    const map = this.map;
    if (this.#batchDelete !== false) {
      try {
        const deleted = deleteBatch(map, keys, n);
        this.#batchDelete = true;
        return deleted;
      } catch (err) {
        if (!(err instanceof NotSupportedError)) throw err;
        this.#batchDelete = false;
      }
    }
    const ks = map.keySize;
    let deleted = 0;
    for (let i = 0; i < n; i++) if (map.delete(keys.subarray(i * ks, (i + 1) * ks))) deleted++;
    return deleted;
  }
}

const MODE_FLAGS = { any: 0, noExist: 1, exist: 2 } as const;
const BPF_F_LOCK = 4;

function updateFlags(options: MapUpdateOptions): number {
  return MODE_FLAGS[options.mode ?? "any"] | (options.lock === true ? BPF_F_LOCK : 0);
}
