import { attr, bpfError, bpfErrorOrNotSupported, bpfShared, cName, Native, objInfo } from "./_bpf.ts";
import { E } from "../_errno.ts";
import { ATTR_BATCH, ATTR_MAP_CREATE, BPF_CMD, BPF_MAP_INFO, BPF_MAP_TYPE } from "../_gen/uapi.ts";
import { ClosedError, NotSupportedError, SyscallError } from "../errors.ts";
import { Fd, rawFd } from "./fd.ts";
import { possibleCpus } from "../features/cpus.ts";
import { type MapSpec, type MapType, mapTypeName, PER_CPU, validateMapSpec } from "./map_spec.ts";
import { openPinnedFd, pinFd } from "./pin.ts";
import { type Sys, sys } from "../_sys/sys.ts";

/** How {@link BpfMap.set} treats an existing key. */
export type UpdateMode = "any" | "noExist" | "exist";

/** Options for {@link BpfMap.set} and {@link BpfMap.updateBatch}. */
export interface MapUpdateOptions {
  /**
   * `"any"` creates or replaces, `"noExist"` only creates (EEXIST
   * otherwise), `"exist"` only replaces (ENOENT otherwise).
   *
   * @default "any"
   */
  readonly mode?: UpdateMode;
  /**
   * Take the value's `bpf_spin_lock` while updating (`BPF_F_LOCK`).
   *
   * @default false
   */
  readonly lock?: boolean;
}

/** Options for {@link BpfMap.updateBatch}. */
export interface MapBatchUpdateOptions {
  /**
   * Take each value's `bpf_spin_lock` while updating (`BPF_F_LOCK`).
   *
   * @default false
   */
  readonly lock?: boolean;
}

/** Anything that owns a descriptor a map can store: a map, a program or an `Fd`. */
export type FdOwner =
  | Fd
  | {
      /** The descriptor the object owns; the map stores a reference to it. */
      readonly fd: Fd;
    };

/** A map value: raw bytes, or for fd-valued maps the object to store. */
export type MapValue = Uint8Array | FdOwner;

/** Where a batch operation stopped; pass it to the next call. */
export interface BatchCursor {
  /** The kernel's opaque batch position. */
  readonly bytes: Uint8Array;
}

/** Options for {@link BpfMap.lookupBatch}. */
export interface MapBatchOptions {
  /**
   * Continue after this position.
   *
   * @default the start of the map
   */
  readonly cursor?: BatchCursor;
  /**
   * How many entries to read at most.
   *
   * @default as many as `keys` holds
   */
  readonly count?: number;
}

/** The outcome of {@link BpfMap.lookupBatch}. */
export interface MapBatchResult {
  /** How many entries were written to the key and value buffers. */
  readonly count: number;
  /** Where to continue, or `undefined` when the map has no more entries. */
  readonly cursor: BatchCursor | undefined;
}

/** What the kernel reports about a map (`struct bpf_map_info`). */
export interface MapInfo {
  /** The map type, or its number when this library does not know it. */
  readonly type: MapType | number;
  /** The kernel-wide map id. */
  readonly id: number;
  /** The kernel-visible name. */
  readonly name: string;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** Capacity. */
  readonly maxEntries: number;
  /** `BPF_F_*` flags. */
  readonly flags: number;
  /** The id of the map's BTF, 0 when it has none. */
  readonly btfId: number;
  /** The `map_extra` field. */
  readonly mapExtra: bigint;
}

const MODE_FLAGS: Readonly<Record<UpdateMode, number>> = { any: 0, noExist: 1, exist: 2 };
const BPF_F_LOCK = 4;

const ELEM = 32;
const A_LOOKUP = 0;
const A_UPDATE = 32;
const A_NEXT = 64;
const A_FIRST = 96;
const A_NULLKEY = 128;
const A_PUSH = 160;
const A_END = 192;

function align8(n: number): number {
  return Math.max(8, Math.ceil(n / 8) * 8);
}

/** Copies `n` bytes; a plain loop beats `TypedArray.set` for the few bytes of keys and values. */
function copySmall(to: Uint8Array, from: Uint8Array, n: number): void {
  if (n > 32) {
    to.set(from.length === n ? from : from.subarray(0, n));
    return;
  }
  for (let i = 0; i < n; i++) to[i] = from[i] as number;
}

function isFdOwner(value: unknown): value is FdOwner {
  return (
    value instanceof Fd || (typeof value === "object" && value !== null && (value as { fd?: unknown }).fd instanceof Fd)
  );
}

/**
 * A map's native key and value buffers with lookup and update over them.
 *
 * @internal Returned by {@link mapDirect} for `@dp/maps`.
 */
export interface MapDirect {
  /** The key buffer (`keySize` bytes): write the key here before a call. */
  readonly key: DataView;
  /** The value buffer (`valueBytes` bytes): the value is read here after `lookup`, written here before `update`. */
  readonly value: DataView;
  /**
   * BPF_MAP_LOOKUP_ELEM of the key in {@link MapDirect.key} into {@link MapDirect.value}.
   *
   * @returns `false` when the key is missing.
   */
  lookup(): boolean;
  /**
   * BPF_MAP_UPDATE_ELEM of {@link MapDirect.key} to {@link MapDirect.value}.
   *
   * @param flags `BPF_ANY` (0), `BPF_NOEXIST` (1), `BPF_EXIST` (2), `BPF_F_LOCK` (4).
   */
  update(flags: number): void;
}

const DIRECT = new WeakMap<BpfMap, () => MapDirect>();

/**
 * Direct access to a map's native key and value buffers, for typed
 * wrappers that encode keys and decode values in place (no copies).
 *
 * @internal For `@dp/maps`.
 * @param map The map.
 * @returns The buffers and the element calls over them (the same object on every call).
 */
export function mapDirect(map: BpfMap): MapDirect {
  const make = DIRECT.get(map);
  if (make === undefined) throw new TypeError("mapDirect() needs a BpfMap");
  return make();
}

/**
 * A BPF map: bytes in, bytes out.
 *
 * Keys and values are `Uint8Array`s in host byte order exactly as the
 * kernel stores them; `@dp/maps` adds typed views. Methods mirror `Map`:
 * `get` returns `undefined` for a missing key. Per-CPU maps take and
 * return {@link BpfMap.valueBytes} bytes: one value per possible CPU, each
 * padded to 8 bytes.
 *
 * `close()` releases this process's reference; the kernel frees the map
 * when no program, pin or descriptor still holds it.
 *
 * @example Counting with a hash map
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap } from "@dp/core";
 *
 * using map = createMap({ name: "counts", type: "hash", keySize: 4, valueSize: 8, maxEntries: 16 });
 * const key = new Uint8Array([1, 0, 0, 0]);
 * map.set(key, new Uint8Array([42, 0, 0, 0, 0, 0, 0, 0]));
 * assert.equal(map.get(key)?.[0], 42);
 * assert.equal(map.get(new Uint8Array(4)), undefined);
 * ```
 */
export class BpfMap {
  /** The kernel-visible name. */
  readonly name: string;
  /** The map type. */
  readonly type: MapType;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes, per CPU for per-CPU maps. */
  readonly valueSize: number;
  /** Capacity. */
  readonly maxEntries: number;
  /** `BPF_F_*` flags. */
  readonly flags: number;
  /** Bytes of a value as user space reads and writes it (all CPUs for per-CPU maps). */
  readonly valueBytes: number;

  #fd: Fd;
  #closed = false;
  #sys: Sys;
  #mem: Native;
  // Native addresses of the prebuilt attributes, kept as fields so that no
  // heap number is allocated per call (addresses exceed the small-int range).
  #lookupAttr: number;
  #updateAttr: number;
  #nextAttr: number;
  #firstAttr: number;
  #nullKeyAttr: number;
  #pushAttr: number;
  #key: Uint8Array;
  #value: Uint8Array;
  #next: Uint8Array;
  #valueView: DataView;
  #batch: boolean | undefined;
  #direct: MapDirect | undefined;

  /**
   * Wraps a map descriptor.
   *
   * @internal Maps are made by {@link createMap} and {@link openPinnedMap}.
   * @param fd The map's descriptor, now owned by the map.
   * @param spec What the map is.
   */
  constructor(fd: Fd, spec: MapSpec) {
    this.#fd = fd;
    this.name = spec.name ?? "";
    this.type = spec.type;
    this.keySize = spec.keySize;
    this.valueSize = spec.valueSize;
    this.maxEntries = spec.maxEntries;
    this.flags = spec.flags ?? 0;
    this.valueBytes = PER_CPU.has(spec.type) ? align8(spec.valueSize) * possibleCpus() : spec.valueSize;
    this.#sys = sys();

    const k8 = align8(this.keySize);
    const v8 = align8(this.valueBytes);
    const mem = new Native(A_END + k8 + v8 + k8);
    const keyOff = A_END;
    const valueOff = keyOff + k8;
    const nextOff = valueOff + v8;
    const raw = rawFd(fd);
    for (const off of [A_LOOKUP, A_UPDATE, A_NEXT, A_FIRST, A_NULLKEY, A_PUSH]) mem.dv.setUint32(off, raw, true);
    mem.setPtr(A_LOOKUP + 8, mem.addr + keyOff);
    mem.setPtr(A_LOOKUP + 16, mem.addr + valueOff);
    mem.setPtr(A_UPDATE + 8, mem.addr + keyOff);
    mem.setPtr(A_UPDATE + 16, mem.addr + valueOff);
    mem.setPtr(A_NEXT + 8, mem.addr + keyOff);
    mem.setPtr(A_NEXT + 16, mem.addr + nextOff);
    mem.setPtr(A_FIRST + 16, mem.addr + nextOff);
    mem.setPtr(A_NULLKEY + 16, mem.addr + valueOff);
    mem.setPtr(A_PUSH + 16, mem.addr + valueOff);
    this.#mem = mem;
    this.#lookupAttr = mem.addr + A_LOOKUP;
    this.#updateAttr = mem.addr + A_UPDATE;
    this.#nextAttr = mem.addr + A_NEXT;
    this.#firstAttr = mem.addr + A_FIRST;
    this.#nullKeyAttr = mem.addr + A_NULLKEY;
    this.#pushAttr = mem.addr + A_PUSH;
    this.#key = mem.u8.subarray(keyOff, keyOff + this.keySize);
    this.#value = mem.u8.subarray(valueOff, valueOff + this.valueBytes);
    this.#next = mem.u8.subarray(nextOff, nextOff + this.keySize);
    this.#valueView = new DataView(mem.u8.buffer, valueOff, v8);
    DIRECT.set(this, () => this.#makeDirect());
  }

  /** The map's descriptor, owned by the map. */
  get fd(): Fd {
    if (this.#closed) throw new ClosedError(this.#what());
    return this.#fd;
  }

  /** Whether {@link BpfMap.close} was called. */
  get closed(): boolean {
    return this.#closed;
  }

  #makeDirect(): MapDirect {
    if (this.#direct !== undefined) return this.#direct;
    const s = this.#sys;
    const lookupAttr = this.#lookupAttr;
    const updateAttr = this.#updateAttr;
    const dv = this.#mem.dv;
    const check = (): void => {
      if (this.#closed) throw new ClosedError(this.#what());
    };
    this.#direct = {
      key: new DataView(this.#key.buffer, this.#key.byteOffset, this.keySize),
      value: this.#valueView,
      lookup: (): boolean => {
        check();
        const ret = s.bpf(BPF_CMD.MAP_LOOKUP_ELEM, lookupAttr, ELEM);
        if (ret >= 0) return true;
        if (ret === -E.ENOENT) return false;
        throw this.#error("look up key in", BPF_CMD.MAP_LOOKUP_ELEM, -ret);
      },
      update: (flags: number): void => {
        check();
        dv.setUint32(A_UPDATE + 24, flags, true);
        const ret = s.bpf(BPF_CMD.MAP_UPDATE_ELEM, updateAttr, ELEM);
        if (ret < 0) throw this.#error("update key in", BPF_CMD.MAP_UPDATE_ELEM, -ret);
      },
    };
    return this.#direct;
  }

  /**
   * Looks up a key.
   *
   * @param key `keySize` bytes.
   * @param out Where to write the value (at least `valueBytes` long); a new array when omitted.
   * @returns The value, or `undefined` when the key is missing.
   * @throws {ClosedError} When the map is closed.
   * @throws {RangeError} When `key` has the wrong length.
   * @throws {SyscallError} When the kernel refuses the lookup.
   */
  get(key: Uint8Array, out?: Uint8Array): Uint8Array | undefined {
    this.#setKey(key);
    const ret = this.#sys.bpf(BPF_CMD.MAP_LOOKUP_ELEM, this.#lookupAttr, ELEM);
    if (ret < 0) {
      if (ret === -E.ENOENT) return undefined;
      throw this.#error("look up key in", BPF_CMD.MAP_LOOKUP_ELEM, -ret);
    }
    return this.#copyValue(out);
  }

  /**
   * Tells whether a key is present.
   *
   * @param key `keySize` bytes.
   * @returns `true` when a lookup finds the key.
   * @throws {ClosedError} When the map is closed.
   */
  has(key: Uint8Array): boolean {
    this.#setKey(key);
    const ret = this.#sys.bpf(BPF_CMD.MAP_LOOKUP_ELEM, this.#lookupAttr, ELEM);
    if (ret === -E.ENOENT) return false;
    if (ret < 0) throw this.#error("look up key in", BPF_CMD.MAP_LOOKUP_ELEM, -ret);
    return true;
  }

  /**
   * Creates or replaces an entry.
   *
   * @param key `keySize` bytes.
   * @param value `valueBytes` bytes, or for fd-valued maps (prog array, map
   *   of maps, sockmap, devmap by fd) the object whose descriptor to store.
   * @param options Whether the key must exist or not.
   * @returns This map.
   * @throws {SyscallError} E2BIG when the map is full, EEXIST/ENOENT when `mode` forbids the update.
   */
  set(key: Uint8Array, value: MapValue, options?: MapUpdateOptions): this {
    this.#setKey(key);
    this.#setValue(value);
    const flags = options === undefined ? 0 : MODE_FLAGS[options.mode ?? "any"] | (options.lock ? BPF_F_LOCK : 0);
    this.#mem.dv.setUint32(A_UPDATE + 24, flags, true);
    const ret = this.#sys.bpf(BPF_CMD.MAP_UPDATE_ELEM, this.#updateAttr, ELEM);
    if (ret < 0) throw this.#error("update key in", BPF_CMD.MAP_UPDATE_ELEM, -ret);
    return this;
  }

  /**
   * Deletes a key.
   *
   * @param key `keySize` bytes.
   * @returns `false` when the key was missing.
   * @throws {SyscallError} EINVAL for array maps, whose entries cannot be deleted.
   */
  delete(key: Uint8Array): boolean {
    this.#setKey(key);
    // Only map_fd and key: the kernel wants every later field zero.
    const ret = this.#sys.bpf(BPF_CMD.MAP_DELETE_ELEM, this.#lookupAttr, 16);
    if (ret === -E.ENOENT) return false;
    if (ret < 0) throw this.#error("delete key from", BPF_CMD.MAP_DELETE_ELEM, -ret);
    return true;
  }

  /**
   * Looks up and deletes a key in one step.
   *
   * @param key `keySize` bytes.
   * @param out Where to write the value.
   * @returns The value it had, or `undefined` when it was missing.
   * @throws {SyscallError} When the map type does not support it.
   */
  lookupAndDelete(key: Uint8Array, out?: Uint8Array): Uint8Array | undefined {
    this.#setKey(key);
    const ret = this.#sys.bpf(BPF_CMD.MAP_LOOKUP_AND_DELETE_ELEM, this.#lookupAttr, ELEM);
    if (ret === -E.ENOENT) return undefined;
    if (ret < 0) throw this.#error("look up and delete key in", BPF_CMD.MAP_LOOKUP_AND_DELETE_ELEM, -ret);
    return this.#copyValue(out);
  }

  /**
   * Returns the key after `key` in the kernel's iteration order.
   *
   * @param key The current key, or `undefined` for the first key.
   * @param out Where to write the next key.
   * @returns The next key, or `undefined` at the end.
   * @throws {SyscallError} When the kernel refuses the operation.
   */
  nextKey(key: Uint8Array | undefined, out?: Uint8Array): Uint8Array | undefined {
    let ret: number;
    if (key === undefined) {
      this.#check();
      ret = this.#sys.bpf(BPF_CMD.MAP_GET_NEXT_KEY, this.#firstAttr, ELEM);
    } else {
      this.#setKey(key);
      ret = this.#sys.bpf(BPF_CMD.MAP_GET_NEXT_KEY, this.#nextAttr, ELEM);
    }
    if (ret === -E.ENOENT) return undefined;
    if (ret < 0) throw this.#error("get next key of", BPF_CMD.MAP_GET_NEXT_KEY, -ret);
    const next = out ?? new Uint8Array(this.keySize);
    next.set(this.#next);
    return next;
  }

  /**
   * Iterates over the keys (next-key walk).
   *
   * @returns A fresh copy of each key.
   */
  *keys(): IterableIterator<Uint8Array> {
    let key = this.nextKey(undefined);
    while (key !== undefined) {
      yield key;
      key = this.nextKey(key);
    }
  }

  /**
   * Iterates over the values.
   *
   * @returns A fresh copy of each value.
   */
  *values(): IterableIterator<Uint8Array> {
    for (const [, value] of this.entries()) yield value;
  }

  /**
   * Iterates over the entries, reading them in batches where the kernel
   * supports batch lookups for this map type and walking keys otherwise.
   *
   * @returns Fresh copies of each key and value.
   */
  *entries(): IterableIterator<[Uint8Array, Uint8Array]> {
    if (this.#batch !== false) {
      let chunk = Math.min(256, this.maxEntries);
      let keys = new Uint8Array(chunk * this.keySize);
      let values = new Uint8Array(chunk * this.valueBytes);
      let cursor: BatchCursor | undefined;
      let first = true;
      for (;;) {
        let result: MapBatchResult;
        try {
          result = this.lookupBatch(keys, values, cursor === undefined ? {} : { cursor });
        } catch (err) {
          if (first && err instanceof NotSupportedError) {
            this.#batch = false;
            break;
          }
          if (err instanceof SyscallError && err.errno === E.ENOSPC && chunk < this.maxEntries) {
            chunk = Math.min(chunk * 4, this.maxEntries);
            keys = new Uint8Array(chunk * this.keySize);
            values = new Uint8Array(chunk * this.valueBytes);
            continue;
          }
          throw err;
        }
        first = false;
        this.#batch = true;
        for (let i = 0; i < result.count; i++) {
          yield [
            keys.slice(i * this.keySize, (i + 1) * this.keySize),
            values.slice(i * this.valueBytes, (i + 1) * this.valueBytes),
          ];
        }
        if (result.cursor === undefined) return;
        cursor = result.cursor;
      }
    }
    for (const key of this.keys()) {
      const value = this.get(key);
      if (value !== undefined) yield [key, value];
    }
  }

  /**
   * Iterates over the entries.
   *
   * @returns The same as {@link BpfMap.entries}.
   */
  [Symbol.iterator](): IterableIterator<[Uint8Array, Uint8Array]> {
    return this.entries();
  }

  /**
   * Pushes a value onto a queue or stack map.
   *
   * @param value `valueSize` bytes.
   * @param options `mode: "exist"` overwrites the oldest value when full (`BPF_EXIST`).
   * @throws {SyscallError} E2BIG when full.
   */
  push(value: Uint8Array, options?: MapUpdateOptions): void {
    this.#setValue(value);
    this.#mem.dv.setUint32(A_PUSH + 24, MODE_FLAGS[options?.mode ?? "any"], true);
    const ret = this.#sys.bpf(BPF_CMD.MAP_UPDATE_ELEM, this.#pushAttr, ELEM);
    if (ret < 0) throw this.#error("push value onto", BPF_CMD.MAP_UPDATE_ELEM, -ret);
  }

  /**
   * Removes and returns the next value of a queue or stack map.
   *
   * @param out Where to write the value.
   * @returns The value, or `undefined` when the map is empty.
   */
  pop(out?: Uint8Array): Uint8Array | undefined {
    return this.#nullKey(BPF_CMD.MAP_LOOKUP_AND_DELETE_ELEM, "pop value from", out);
  }

  /**
   * Returns the next value of a queue or stack map without removing it.
   *
   * @param out Where to write the value.
   * @returns The value, or `undefined` when the map is empty.
   */
  peek(out?: Uint8Array): Uint8Array | undefined {
    return this.#nullKey(BPF_CMD.MAP_LOOKUP_ELEM, "peek into", out);
  }

  /**
   * Reads many entries with one system call (BPF_MAP_LOOKUP_BATCH).
   *
   * @param keys Receives `count` keys back to back.
   * @param values Receives `count` values back to back (`valueBytes` each).
   * @param options Where to continue and how many to read.
   * @returns How many entries were read and where to continue.
   * @throws {NotSupportedError} When the map type has no batch operations.
   * @throws {SyscallError} ENOSPC when a hash bucket holds more entries than `count`.
   */
  lookupBatch(keys: Uint8Array, values: Uint8Array, options: MapBatchOptions = {}): MapBatchResult {
    return this.#lookupBatch(BPF_CMD.MAP_LOOKUP_BATCH, keys, values, options);
  }

  /**
   * Reads and deletes many entries with one system call
   * (BPF_MAP_LOOKUP_AND_DELETE_BATCH).
   *
   * @param keys Receives `count` keys back to back.
   * @param values Receives `count` values back to back.
   * @param options Where to continue and how many to read.
   * @returns How many entries were read and where to continue.
   * @throws {NotSupportedError} When the map type does not support it.
   */
  lookupAndDeleteBatch(keys: Uint8Array, values: Uint8Array, options: MapBatchOptions = {}): MapBatchResult {
    return this.#lookupBatch(BPF_CMD.MAP_LOOKUP_AND_DELETE_BATCH, keys, values, options);
  }

  /**
   * Writes many entries with one system call (BPF_MAP_UPDATE_BATCH).
   *
   * The kernel applies no create/replace mode to batch updates: every entry
   * is created or replaced.
   *
   * @param keys `count` keys back to back.
   * @param values `count` values back to back.
   * @param options Whether to take each value's spin lock.
   * @returns How many entries were written (all of them, or an error is thrown).
   * @throws {NotSupportedError} When the map type has no batch operations.
   * @throws {SyscallError} When an entry is refused; entries before it were written.
   */
  updateBatch(keys: Uint8Array, values: Uint8Array, options?: MapBatchUpdateOptions): number {
    const count = this.#batchCount(keys, values);
    const flags = options?.lock ? BPF_F_LOCK : 0;
    return this.#batchWrite(BPF_CMD.MAP_UPDATE_BATCH, "update entries in", keys, values, count, flags);
  }

  /**
   * Deletes many keys with one system call (BPF_MAP_DELETE_BATCH).
   *
   * @param keys Keys back to back.
   * @returns How many keys were deleted.
   * @throws {NotSupportedError} When the map type has no batch operations.
   * @throws {SyscallError} ENOENT when a key is missing; keys before it were deleted.
   */
  deleteBatch(keys: Uint8Array): number {
    const count = this.#batchCount(keys, undefined);
    return this.#batchWrite(BPF_CMD.MAP_DELETE_BATCH, "delete entries from", keys, undefined, count, 0);
  }

  /**
   * Makes the map read-only for user space (BPF_MAP_FREEZE); programs can still write it.
   *
   * @throws {SyscallError} EBUSY when the map is memory-mapped writable.
   */
  freeze(): void {
    const a = attr(4);
    a.dv.setUint32(0, rawFd(this.fd), true);
    const ret = bpfShared(BPF_CMD.MAP_FREEZE, 4);
    if (ret < 0) throw this.#error("freeze", BPF_CMD.MAP_FREEZE, -ret);
  }

  /**
   * Asks the kernel about the map (BPF_OBJ_GET_INFO_BY_FD).
   *
   * @returns The kernel's view, including the map id.
   */
  info(): MapInfo {
    return decodeMapInfo(objInfo(rawFd(this.fd), BPF_MAP_INFO.SIZE, this.#what()));
  }

  /**
   * Pins the map on bpffs so it outlives this process. bpffs is mounted at
   * `/sys/fs/bpf` first when the path is below it and it is missing.
   *
   * @param path An absolute path on bpffs; missing parent directories are created.
   * @throws {SyscallError} EEXIST when the path is taken.
   */
  pin(path: string): void {
    pinFd(this.fd, path, this.#what());
  }

  /** Closes this process's reference to the map. Calling it again does nothing. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#fd.close();
  }

  /** Closes the map (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }

  #what(): string {
    return `map "${this.name}"`;
  }

  #check(): void {
    if (this.#closed) throw new ClosedError(this.#what());
  }

  #setKey(key: Uint8Array): void {
    if (this.#closed) throw new ClosedError(this.#what());
    if (!(key instanceof Uint8Array) || key.length !== this.keySize) {
      throw new RangeError(
        `Invalid key for ${this.#what()}: expected ${this.keySize} bytes, got ${key instanceof Uint8Array ? key.length : typeof key}`,
      );
    }
    copySmall(this.#key, key, this.keySize);
  }

  #setValue(value: MapValue): void {
    if (this.#closed) throw new ClosedError(this.#what());
    if (value instanceof Uint8Array) {
      if (value.length !== this.valueBytes) {
        throw new RangeError(
          `Invalid value for ${this.#what()}: expected ${this.valueBytes} bytes, got ${value.length}`,
        );
      }
      copySmall(this.#value, value, this.valueBytes);
      return;
    }
    if (!isFdOwner(value))
      throw new TypeError(`Invalid value for ${this.#what()}: expected a Uint8Array or an fd owner`);
    const raw = rawFd(value instanceof Fd ? value : value.fd);
    if (this.valueSize === 4) this.#valueView.setUint32(0, raw, true);
    else if (this.valueSize === 8) this.#valueView.setBigUint64(0, BigInt(raw), true);
    else throw new TypeError(`Invalid value for ${this.#what()}: descriptors need a 4 or 8 byte value`);
  }

  #copyValue(out: Uint8Array | undefined): Uint8Array {
    const v = out ?? new Uint8Array(this.valueBytes);
    if (v.length < this.valueBytes) {
      throw new RangeError(
        `Invalid output buffer for ${this.#what()}: needs ${this.valueBytes} bytes, got ${v.length}`,
      );
    }
    copySmall(v, this.#value, this.valueBytes);
    return v;
  }

  #nullKey(cmd: number, verb: string, out: Uint8Array | undefined): Uint8Array | undefined {
    this.#check();
    const ret = this.#sys.bpf(cmd, this.#nullKeyAttr, ELEM);
    if (ret === -E.ENOENT) return undefined;
    if (ret < 0) throw this.#error(verb, cmd, -ret);
    return this.#copyValue(out);
  }

  #error(verb: string, cmd: number, errno: number): Error {
    const what = `Cannot ${verb} ${this.#what()}`;
    if (errno === E.ENOTSUPP || errno === E.EOPNOTSUPP) {
      return bpfErrorOrNotSupported(what, `${verb.split(" ")[0]} on ${this.type} maps`, cmd, errno);
    }
    return bpfError(what, cmd, errno);
  }

  #batchCount(keys: Uint8Array, values: Uint8Array | undefined, count?: number): number {
    this.#check();
    if (!(keys instanceof Uint8Array)) throw new TypeError(`Invalid keys for ${this.#what()}: expected a Uint8Array`);
    const n = count ?? Math.floor(keys.length / this.keySize);
    if (!Number.isInteger(n) || n < 1)
      throw new RangeError(`Invalid batch for ${this.#what()}: count must be at least 1`);
    if (keys.length < n * this.keySize) {
      throw new RangeError(
        `Invalid keys for ${this.#what()}: ${n} keys need ${n * this.keySize} bytes, got ${keys.length}`,
      );
    }
    if (values !== undefined && (!(values instanceof Uint8Array) || values.length < n * this.valueBytes)) {
      throw new RangeError(
        `Invalid values for ${this.#what()}: ${n} values need ${n * this.valueBytes} bytes, got ${values instanceof Uint8Array ? values.length : typeof values}`,
      );
    }
    return n;
  }

  #lookupBatch(cmd: number, keys: Uint8Array, values: Uint8Array, options: MapBatchOptions): MapBatchResult {
    const count = this.#batchCount(keys, values, options.count);
    const cursorSize = align8(this.keySize);
    const cursorMem = this.#cursorMem(cursorSize);
    if (options.cursor !== undefined) cursorMem.u8.set(options.cursor.bytes.subarray(0, cursorSize));
    const a = attr(ATTR_BATCH.SIZE);
    if (options.cursor !== undefined) a.setPtr(ATTR_BATCH.in_batch, cursorMem.addr);
    a.setPtr(ATTR_BATCH.out_batch, cursorMem.addr + cursorSize);
    a.setPtr(ATTR_BATCH.keys, this.#sys.addressOf(keys));
    a.setPtr(ATTR_BATCH.values, this.#sys.addressOf(values));
    a.dv.setUint32(ATTR_BATCH.count, count, true);
    a.dv.setUint32(ATTR_BATCH.map_fd, rawFd(this.#fd), true);
    const ret = bpfShared(cmd, ATTR_BATCH.SIZE);
    const done = a.dv.getUint32(ATTR_BATCH.count, true);
    if (ret < 0 && ret !== -E.ENOENT) {
      throw this.#error(cmd === BPF_CMD.MAP_LOOKUP_BATCH ? "batch look up" : "batch look up and delete", cmd, -ret);
    }
    const cursor = ret === -E.ENOENT ? undefined : { bytes: cursorMem.u8.slice(cursorSize, cursorSize * 2) };
    return { count: done, cursor };
  }

  #batchWrite(
    cmd: number,
    verb: string,
    keys: Uint8Array,
    values: Uint8Array | undefined,
    count: number,
    flags: number,
  ): number {
    const a = attr(ATTR_BATCH.SIZE);
    a.setPtr(ATTR_BATCH.keys, this.#sys.addressOf(keys));
    if (values !== undefined) a.setPtr(ATTR_BATCH.values, this.#sys.addressOf(values));
    a.dv.setUint32(ATTR_BATCH.count, count, true);
    a.dv.setUint32(ATTR_BATCH.map_fd, rawFd(this.#fd), true);
    a.dv.setUint32(ATTR_BATCH.elem_flags, flags, true);
    const ret = bpfShared(cmd, ATTR_BATCH.SIZE);
    if (ret < 0) {
      // The kernel reports how far it got, except when it refused the
      // request before starting (then the count is still ours).
      const done = a.dv.getUint32(ATTR_BATCH.count, true);
      const err = this.#error(`batch ${verb}`, cmd, -ret);
      if (err instanceof SyscallError && done < count) {
        throw new SyscallError(`Cannot batch ${verb} ${this.#what()} after ${done} of ${count} entries`, {
          syscall: err.syscall,
          op: err.op,
          errno: err.errno,
          hint: err.hint,
        });
      }
      throw err;
    }
    return a.dv.getUint32(ATTR_BATCH.count, true);
  }

  #cursors: Native | undefined;

  #cursorMem(size: number): Native {
    return (this.#cursors ??= new Native(size * 2));
  }
}

function decodeMapInfo(info: Native): MapInfo {
  const dv = info.dv;
  const type = dv.getUint32(BPF_MAP_INFO.type, true);
  return {
    type: mapTypeName(type) ?? type,
    id: dv.getUint32(BPF_MAP_INFO.id, true),
    name: cName(info.u8.subarray(BPF_MAP_INFO.name, BPF_MAP_INFO.name + 16)),
    keySize: dv.getUint32(BPF_MAP_INFO.key_size, true),
    valueSize: dv.getUint32(BPF_MAP_INFO.value_size, true),
    maxEntries: dv.getUint32(BPF_MAP_INFO.max_entries, true),
    flags: dv.getUint32(BPF_MAP_INFO.map_flags, true),
    btfId: dv.getUint32(BPF_MAP_INFO.btf_id, true),
    mapExtra: dv.getBigUint64(BPF_MAP_INFO.map_extra, true),
  };
}

/**
 * Creates a map in the kernel (BPF_MAP_CREATE).
 *
 * The spec is checked before any system call. For maps of maps, a
 * temporary inner map is created from `spec.innerMap` and closed again.
 *
 * @param spec What to create.
 * @returns The new map, owned by the caller.
 * @throws {TypeError} When the spec has a wrong field type or unknown map type.
 * @throws {RangeError} When a size or count is out of range for the type.
 * @throws {SyscallError} When the kernel refuses (EPERM without CAP_BPF, EINVAL for parameters it rejects).
 * @capability CAP_BPF
 * @example An LPM trie keyed by IPv4 prefixes
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap, MAP_FLAGS } from "@dp/core";
 *
 * using trie = createMap({
 *   name: "prefixes", type: "lpmTrie", keySize: 8, valueSize: 4, maxEntries: 64, flags: MAP_FLAGS.noPrealloc,
 * });
 * trie.set(new Uint8Array([24, 0, 0, 0, 10, 0, 1, 0]), new Uint8Array([7, 0, 0, 0]));
 * // A /32 lookup key inside 10.0.1.0/24 finds the prefix.
 * assert.equal(trie.get(new Uint8Array([32, 0, 0, 0, 10, 0, 1, 9]))?.[0], 7);
 * ```
 */
export function createMap(spec: MapSpec): BpfMap {
  validateMapSpec(spec);
  const name = spec.name ?? "";
  let inner: BpfMap | undefined;
  let ret: number;
  try {
    if (spec.innerMap !== undefined) inner = createMap(spec.innerMap);
    const a = attr(ATTR_MAP_CREATE.SIZE);
    const dv = a.dv;
    dv.setUint32(ATTR_MAP_CREATE.map_type, BPF_MAP_TYPE[spec.type], true);
    dv.setUint32(ATTR_MAP_CREATE.key_size, spec.keySize, true);
    dv.setUint32(ATTR_MAP_CREATE.value_size, spec.valueSize, true);
    dv.setUint32(ATTR_MAP_CREATE.max_entries, spec.maxEntries, true);
    dv.setUint32(ATTR_MAP_CREATE.map_flags, spec.flags ?? 0, true);
    if (inner !== undefined) dv.setUint32(ATTR_MAP_CREATE.inner_map_fd, rawFd(inner.fd), true);
    if (spec.numaNode !== undefined) dv.setUint32(ATTR_MAP_CREATE.numa_node, spec.numaNode, true);
    a.u8.set(new TextEncoder().encode(name), ATTR_MAP_CREATE.map_name);
    if (spec.btf !== undefined) {
      dv.setUint32(ATTR_MAP_CREATE.btf_fd, rawFd(spec.btf.fd), true);
      dv.setUint32(ATTR_MAP_CREATE.btf_key_type_id, spec.btf.keyTypeId, true);
      dv.setUint32(ATTR_MAP_CREATE.btf_value_type_id, spec.btf.valueTypeId, true);
    }
    if (spec.mapExtra !== undefined) dv.setBigUint64(ATTR_MAP_CREATE.map_extra, spec.mapExtra, true);
    if (spec.vmlinuxValueTypeId !== undefined) {
      dv.setUint32(ATTR_MAP_CREATE.btf_vmlinux_value_type_id, spec.vmlinuxValueTypeId, true);
    }
    ret = bpfShared(BPF_CMD.MAP_CREATE, ATTR_MAP_CREATE.SIZE);
  } finally {
    inner?.close();
  }
  if (ret < 0) throw bpfError(`Cannot create ${spec.type} map "${name}"`, BPF_CMD.MAP_CREATE, -ret);
  return new BpfMap(new Fd(ret, `map "${name}"`), spec);
}

/**
 * Opens a map pinned on bpffs (BPF_OBJ_GET). Its spec is read back from the kernel.
 *
 * @param path The pinned path.
 * @returns A new handle to the pinned map.
 * @throws {SyscallError} ENOENT when nothing is pinned there.
 * @throws {TypeError} When the pinned object is not a map.
 * @example Reopening a pinned map
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createMap, openPinnedMap, unpin } from "@dp/core";
 *
 * const path = `/sys/fs/bpf/dp-doc-${process.pid}`;
 * using map = createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 4 });
 * map.pin(path);
 * try {
 *   using again = openPinnedMap(path);
 *   assert.equal(again.info().id, map.info().id);
 * } finally {
 *   unpin(path);
 * }
 * ```
 */
export function openPinnedMap(path: string): BpfMap {
  return mapFromFd(openPinnedFd(path, "map"), `pinned map "${path}"`);
}

/**
 * Wraps a map descriptor opened some other way (a pin, an id), its spec
 * read back from the kernel.
 *
 * @param fd The descriptor, owned by the result (closed on failure).
 * @param what How to name the map in errors, such as `map 42`.
 * @returns The map handle.
 * @throws {TypeError} When the map's type is unknown to this library.
 */
export function mapFromFd(fd: Fd, what: string): BpfMap {
  try {
    const info = decodeMapInfo(objInfo(rawFd(fd), BPF_MAP_INFO.SIZE, what));
    if (typeof info.type === "number") throw new TypeError(`Cannot open ${what}: unknown map type ${info.type}`);
    return new BpfMap(fd, {
      name: info.name,
      type: info.type,
      keySize: info.keySize,
      valueSize: info.valueSize,
      maxEntries: info.maxEntries,
      flags: info.flags,
    });
  } catch (err) {
    fd.close();
    throw err;
  }
}
