import { type BpfMap, createMap } from "@dp/core";
import type { Codec } from "./codec.ts";
import { checkMap, type MapKind } from "./_typed.ts";

/** Options for {@link QueueMap.push} and {@link StackMap.push}. */
export interface PushOptions {
  /**
   * When the map is full, drop the oldest value (queue) or the bottom
   * value (stack) instead of failing with E2BIG (`BPF_EXIST`).
   *
   * @default false
   */
  readonly overwrite?: boolean;
}

/** Options for {@link QueueMap.create} and {@link StackMap.create}. */
export interface KeylessMapOptions {
  /**
   * The kernel-visible name.
   *
   * @default ""
   */
  readonly name?: string;
  /** Capacity in values. */
  readonly maxEntries: number;
}

const OVERWRITE = { mode: "exist" } as const;

/**
 * What queues and stacks share: typed push, pop and peek over a keyless
 * map. {@link QueueMap} pops the oldest value, {@link StackMap} the newest.
 *
 * @typeParam V The value type.
 */
export class KeylessMap<V> {
  /** The raw map underneath. */
  readonly map: BpfMap;
  #codec: Codec<V>;
  #bytes: Uint8Array;
  #view: DataView;

  /**
   * Wraps a queue or stack.
   *
   * @internal Use {@link QueueMap} or {@link StackMap}.
   * @param map The map; `close()` closes it.
   * @param codec The value codec.
   * @param kind The class name and the map type it takes.
   */
  constructor(map: BpfMap, codec: Codec<V>, kind: MapKind) {
    checkMap(map, kind, undefined, codec);
    this.map = map;
    this.#codec = codec;
    this.#bytes = new Uint8Array(map.valueSize);
    this.#view = new DataView(this.#bytes.buffer);
  }

  /** Whether the map is closed. */
  get closed(): boolean {
    return this.map.closed;
  }

  /**
   * Adds a value (at a queue's tail, on a stack's top).
   *
   * @param value The value.
   * @param options Whether to drop the oldest (queue) or bottom (stack) value when full.
   * @throws {TypeError} When the value has the wrong shape.
   * @throws {RangeError} When a field is out of range.
   * @throws {SyscallError} E2BIG when the map is full.
   */
  push(value: V, options?: PushOptions): void {
    this.#codec.encode(value, this.#view, 0, "value");
    this.map.push(this.#bytes, options?.overwrite ? OVERWRITE : undefined);
  }

  /**
   * Removes and returns the next value (a queue's head, a stack's top).
   *
   * @returns The value, or `undefined` when the map is empty.
   * @throws {ClosedError} When the map is closed.
   */
  pop(): V | undefined {
    return this.map.pop(this.#bytes) === undefined ? undefined : this.#codec.decode(this.#view, 0);
  }

  /**
   * Returns the next value without removing it.
   *
   * @returns The value, or `undefined` when the map is empty.
   * @throws {ClosedError} When the map is closed.
   */
  peek(): V | undefined {
    return this.map.peek(this.#bytes) === undefined ? undefined : this.#codec.decode(this.#view, 0);
  }

  /** Closes the underlying map. Calling it again does nothing. */
  close(): void {
    this.map.close();
  }

  /** Closes the map (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A FIFO queue (`BPF_MAP_TYPE_QUEUE`) of typed values: programs push with
 * `bpf_map_push_elem()` and pop with `bpf_map_pop_elem()`, user space with
 * the methods here.
 *
 * @typeParam V The value type.
 * @example First in, first out
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { QueueMap, u32 } from "@dp/maps";
 *
 * using q = QueueMap.create(u32, { maxEntries: 4 });
 * q.push(1);
 * q.push(2);
 * assert.equal(q.peek(), 1);
 * assert.deepEqual([q.pop(), q.pop(), q.pop()], [1, 2, undefined]);
 * ```
 */
export class QueueMap<V> extends KeylessMap<V> {
  /**
   * Wraps an existing queue.
   *
   * @param map The map; `close()` closes it.
   * @param value The value codec.
   * @throws {TypeError} When the map is not a queue or the codec size differs from its value size.
   */
  constructor(map: BpfMap, value: Codec<V>) {
    super(map, value, { className: "QueueMap", types: ["queue"] });
  }

  /**
   * Creates a queue sized for the codec.
   *
   * @typeParam V The value type.
   * @param value The value codec.
   * @param options Name and capacity.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<V>(value: Codec<V>, options: KeylessMapOptions): QueueMap<V> {
    return new QueueMap(createMap({ ...options, type: "queue", keySize: 0, valueSize: value.size }), value);
  }
}

/**
 * A LIFO stack (`BPF_MAP_TYPE_STACK`) of typed values.
 *
 * @typeParam V The value type.
 * @example Last in, first out
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { StackMap, u32 } from "@dp/maps";
 *
 * using s = StackMap.create(u32, { maxEntries: 4 });
 * s.push(1);
 * s.push(2);
 * assert.deepEqual([s.pop(), s.pop(), s.pop()], [2, 1, undefined]);
 * ```
 */
export class StackMap<V> extends KeylessMap<V> {
  /**
   * Wraps an existing stack.
   *
   * @param map The map; `close()` closes it.
   * @param value The value codec.
   * @throws {TypeError} When the map is not a stack or the codec size differs from its value size.
   */
  constructor(map: BpfMap, value: Codec<V>) {
    super(map, value, { className: "StackMap", types: ["stack"] });
  }

  /**
   * Creates a stack sized for the codec.
   *
   * @typeParam V The value type.
   * @param value The value codec.
   * @param options Name and capacity.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<V>(value: Codec<V>, options: KeylessMapOptions): StackMap<V> {
    return new StackMap(createMap({ ...options, type: "stack", keySize: 0, valueSize: value.size }), value);
  }
}
