import { type BpfMap, createMap, possibleCpus } from "@dp/core";
import type { Codec } from "./codec.ts";
import { INDEX, perCpuLayout } from "./_typed.ts";
import { DeletableMap, TypedMap, type TypedMapOptions } from "./typed_map.ts";

function add(a: unknown, b: unknown, path: string): unknown {
  if (typeof a === "number" && typeof b === "number") return a + b;
  if (typeof a === "bigint" && typeof b === "bigint") return a + b;
  if (Array.isArray(a) && Array.isArray(b) && a.length === b.length)
    return a.map((x: unknown, i) => add(x, b[i], `${path}[${i}]`));
  if (
    typeof a === "object" &&
    a !== null &&
    !ArrayBuffer.isView(a) &&
    !Array.isArray(a) &&
    typeof b === "object" &&
    b !== null
  ) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a))
      out[k] = add(v, (b as Record<string, unknown>)[k], path === "" ? k : `${path}.${k}`);
    return out;
  }
  const kind =
    a instanceof Uint8Array ? "bytes" : Array.isArray(a) ? "arrays of different lengths" : `${typeof a} values`;
  throw new TypeError(`Cannot sum ${path === "" ? "the values" : path}: ${kind} do not add up`);
}

/**
 * Adds up per-CPU values: numbers and bigints are summed, arrays element by
 * element, objects (structs) field by field.
 *
 * @typeParam V The value type.
 * @param values One value per CPU, as a per-CPU map's `get` returns them.
 * @returns The total.
 * @throws {RangeError} When `values` is empty.
 * @throws {TypeError} When a field cannot be added (strings, bytes, booleans); the message names it.
 * @example Totals of per-CPU counters
 * ```ts
 * import assert from "node:assert/strict";
 * import { sumValues } from "@dp/maps";
 *
 * assert.equal(sumValues([1n, 2n, 3n]), 6n);
 * assert.deepEqual(sumValues([{ packets: 1n, bytes: 60n }, { packets: 2n, bytes: 80n }]), { packets: 3n, bytes: 140n });
 * ```
 */
export function sumValues<V>(values: readonly V[]): V {
  if (values.length === 0) throw new RangeError("Cannot sum per-CPU values: there are none");
  let total: unknown = values[0];
  for (let i = 1; i < values.length; i++) total = add(total, values[i], "");
  return total as V;
}

/**
 * A per-CPU hash map (`BPF_MAP_TYPE_PERCPU_HASH` or
 * `BPF_MAP_TYPE_LRU_PERCPU_HASH`): each key holds one value per possible
 * CPU. `get` returns them all; `set` takes one value for every CPU or one
 * per CPU; {@link PerCpuHashMap.sum} adds them up.
 *
 * @typeParam K The key type.
 * @typeParam V The value type of one CPU.
 * @example Writing the same value on every CPU
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { possibleCpus } from "@dp/core";
 * import { PerCpuHashMap, u32, u64 } from "@dp/maps";
 *
 * using hits = PerCpuHashMap.create(u32, u64, { maxEntries: 16 });
 * hits.set(1, 2n);
 * assert.equal(hits.get(1)?.length, possibleCpus());
 * assert.equal(hits.sum(1), 2n * BigInt(possibleCpus()));
 * ```
 */
export class PerCpuHashMap<K, V> extends DeletableMap<K, V[], K, V | readonly V[]> {
  /** The number of values per key: the possible CPUs. */
  readonly cpus: number;

  /**
   * Wraps an existing per-CPU hash map.
   *
   * @param map The map; `close()` closes it.
   * @param key The key codec.
   * @param value The codec of one CPU's value.
   * @throws {TypeError} When the map is not a per-CPU hash or the codec sizes differ from its key and value sizes.
   */
  constructor(map: BpfMap, key: Codec<K>, value: Codec<V>) {
    super(map, key, perCpuLayout(value), {
      kind: { className: "PerCpuHashMap", types: ["percpuHash", "lruPercpuHash"] },
      valueCheck: value,
    });
    this.cpus = possibleCpus();
  }

  /**
   * Creates a per-CPU hash map sized for the codecs.
   *
   * @typeParam K The key type.
   * @typeParam V The value type of one CPU.
   * @param key The key codec.
   * @param value The codec of one CPU's value.
   * @param options Name, capacity and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<K, V>(key: Codec<K>, value: Codec<V>, options: TypedMapOptions): PerCpuHashMap<K, V> {
    return new PerCpuHashMap(
      createMap({ ...options, type: "percpuHash", keySize: key.size, valueSize: value.size }),
      key,
      value,
    );
  }

  /**
   * Looks up a key and adds up its per-CPU values ({@link sumValues}).
   *
   * @param key The key.
   * @returns The total, or `undefined` when the key is missing.
   * @throws {TypeError} When the value has fields that do not add up.
   */
  sum(key: K): V | undefined {
    const values = this.get(key);
    return values === undefined ? undefined : sumValues(values);
  }
}

/**
 * A per-CPU array map (`BPF_MAP_TYPE_PERCPU_ARRAY`): each index holds one
 * value per possible CPU. `get` returns them all; `set` takes one value for
 * every CPU or one per CPU; {@link PerCpuArrayMap.sum} adds them up.
 *
 * @typeParam V The value type of one CPU.
 * @example Per-CPU counters
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { PerCpuArrayMap, struct, u64 } from "@dp/maps";
 *
 * const Counters = struct({ packets: u64, bytes: u64 });
 * using stats = PerCpuArrayMap.create(Counters, { maxEntries: 1 });
 * stats.set(0, stats.get(0)!.map((c, cpu) => ({ packets: 1n, bytes: BigInt(cpu) })));
 * assert.equal(stats.sum(0)?.packets, BigInt(stats.cpus));
 * ```
 */
export class PerCpuArrayMap<V> extends TypedMap<number, V[], number, V | readonly V[]> {
  /** The number of values per index: the possible CPUs. */
  readonly cpus: number;

  /**
   * Wraps an existing per-CPU array map.
   *
   * @param map The map; `close()` closes it.
   * @param value The codec of one CPU's value.
   * @throws {TypeError} When the map is not a per-CPU array or the codec size differs from its value size.
   */
  constructor(map: BpfMap, value: Codec<V>) {
    super(map, INDEX, perCpuLayout(value), {
      kind: { className: "PerCpuArrayMap", types: ["percpuArray"] },
      valueCheck: value,
    });
    this.cpus = possibleCpus();
  }

  /**
   * Creates a per-CPU array map sized for the codec.
   *
   * @typeParam V The value type of one CPU.
   * @param value The codec of one CPU's value.
   * @param options Name, length and flags.
   * @returns The new map, owned by the caller.
   * @throws {SyscallError} When the kernel refuses to create it.
   * @capability CAP_BPF
   */
  static create<V>(value: Codec<V>, options: TypedMapOptions): PerCpuArrayMap<V> {
    return new PerCpuArrayMap(createMap({ ...options, type: "percpuArray", keySize: 4, valueSize: value.size }), value);
  }

  /** The number of entries: `maxEntries`. */
  get size(): number {
    return this.map.maxEntries;
  }

  /**
   * Reads an index and adds up its per-CPU values ({@link sumValues}).
   *
   * @param index The index.
   * @returns The total, or `undefined` when the index is out of range.
   * @throws {TypeError} When the value has fields that do not add up.
   */
  sum(index: number): V | undefined {
    const values = this.get(index);
    return values === undefined ? undefined : sumValues(values);
  }
}
