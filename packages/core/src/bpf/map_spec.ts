import { BPF_MAP_TYPE } from "../_gen/uapi.ts";
import type { Fd } from "./fd.ts";

/**
 * A BPF map type, named as in the kernel's `enum bpf_map_type` in camelCase
 * (`BPF_MAP_TYPE_LRU_HASH` is `"lruHash"`).
 *
 * @useDeclaredType
 */
export type MapType = keyof typeof BPF_MAP_TYPE;

/**
 * Map creation flags (`BPF_F_*`), to combine with `|` in
 * {@link MapSpec.flags}.
 *
 * @example A memory-mappable array
 * ```ts no-run
 * import { MAP_FLAGS, type MapSpec } from "@dp/core";
 *
 * const spec: MapSpec = {
 *   type: "array", keySize: 4, valueSize: 8, maxEntries: 64, flags: MAP_FLAGS.mmapable,
 * };
 * ```
 */
export const MAP_FLAGS: {
  /** `BPF_F_NO_PREALLOC`: allocate hash elements on update instead of all `maxEntries` up front (required by LPM tries). */
  readonly noPrealloc: 1;
  /** `BPF_F_NO_COMMON_LRU`: give each CPU its own LRU list instead of one shared list (LRU hash maps). */
  readonly noCommonLru: 2;
  /** `BPF_F_NUMA_NODE`: allocate the map on {@link MapSpec.numaNode}. */
  readonly numaNode: 4;
  /** `BPF_F_RDONLY`: the descriptor can only read the map from user space. */
  readonly rdonly: 8;
  /** `BPF_F_WRONLY`: the descriptor can only write the map from user space. */
  readonly wronly: 16;
  /** `BPF_F_ZERO_SEED`: hash with a zero seed instead of a random one, for reproducible layouts. */
  readonly zeroSeed: 64;
  /** `BPF_F_RDONLY_PROG`: programs can only read the map. */
  readonly rdonlyProg: 128;
  /** `BPF_F_WRONLY_PROG`: programs can only write the map. */
  readonly wronlyProg: 256;
  /** `BPF_F_MMAPABLE`: user space can `mmap()` the values of an array map. */
  readonly mmapable: 1024;
  /** `BPF_F_INNER_MAP`: an inner array map whose `maxEntries` may differ from the outer map's template. */
  readonly innerMap: 4096;
  /** `BPF_F_LINK`: a `structOps` map registered through a bpf_link rather than by its update. */
  readonly link: 8192;
} = {
  noPrealloc: 1,
  noCommonLru: 2,
  numaNode: 4,
  rdonly: 8,
  wronly: 16,
  zeroSeed: 64,
  rdonlyProg: 128,
  wronlyProg: 256,
  mmapable: 1024,
  innerMap: 4096,
  link: 8192,
};

/** BTF type information attached to a map (optional). */
export interface MapBtf {
  /** The loaded BTF object, as a descriptor owner. */
  readonly fd: Fd;
  /** The BTF type id of the key. */
  readonly keyTypeId: number;
  /** The BTF type id of the value. */
  readonly valueTypeId: number;
}

/**
 * What a map is: plain, serialisable data. {@link createMap} turns it into a
 * kernel object.
 *
 * @example A hash map of 4-byte keys to 8-byte values
 * ```ts no-run
 * import type { MapSpec } from "@dp/core";
 *
 * const spec: MapSpec = { name: "counts", type: "hash", keySize: 4, valueSize: 8, maxEntries: 1024 };
 * ```
 */
export interface MapSpec {
  /**
   * The kernel-visible name: at most 15 characters of `[A-Za-z0-9_.]`.
   *
   * @default ""
   */
  readonly name?: string;
  /** The map type. */
  readonly type: MapType;
  /** Key size in bytes; 0 for queue, stack, ringbuf and bloom filter maps. */
  readonly keySize: number;
  /** Value size in bytes (per CPU for per-CPU maps); 0 for ringbuf maps. */
  readonly valueSize: number;
  /** Capacity; for ringbuf maps the buffer size in bytes, a power of two and a multiple of the page size. */
  readonly maxEntries: number;
  /**
   * `BPF_F_*` flags, see {@link MAP_FLAGS}. `lpmTrie` maps need `noPrealloc`.
   *
   * @default 0
   */
  readonly flags?: number;
  /**
   * The template for inner maps of `arrayOfMaps` and `hashOfMaps`.
   *
   * @default undefined
   */
  readonly innerMap?: MapSpec;
  /**
   * NUMA node to allocate on (requires `MAP_FLAGS.numaNode`).
   *
   * @default undefined
   */
  readonly numaNode?: number;
  /**
   * The `map_extra` field: the number of hash functions of a bloom filter.
   *
   * @default 0n
   */
  readonly mapExtra?: bigint;
  /**
   * `btf_vmlinux_value_type_id`: for `structOps` maps, the id of the
   * value's type (`struct bpf_struct_ops_<name>`) in vmlinux BTF.
   *
   * @default undefined
   */
  readonly vmlinuxValueTypeId?: number;
  /**
   * BTF for the key and value, so `bpftool map dump` prints typed values.
   *
   * @default undefined
   */
  readonly btf?: MapBtf;
}

const TYPE_NAMES: ReadonlyMap<number, MapType> = new Map(
  (Object.entries(BPF_MAP_TYPE) as [MapType, number][]).reverse().map(([k, v]) => [v, k]),
);

/** Returns the name of a kernel map type number, or undefined when this library does not know it. */
export function mapTypeName(type: number): MapType | undefined {
  return TYPE_NAMES.get(type);
}

const NAME = /^[A-Za-z0-9_.]{0,15}$/;
const U32_MAX = 0xffff_ffff;

const KEYLESS: ReadonlySet<MapType> = new Set(["queue", "stack", "ringbuf", "userRingbuf", "bloomFilter", "arena"]);
const ARRAYS: ReadonlySet<MapType> = new Set([
  "array",
  "percpuArray",
  "progArray",
  "perfEventArray",
  "arrayOfMaps",
  "cgroupArray",
  "devmap",
  "cpumap",
  "xskmap",
  "sockmap",
  "reuseportSockarray",
]);
const FD_VALUES: ReadonlySet<MapType> = new Set([
  "progArray",
  "perfEventArray",
  "arrayOfMaps",
  "hashOfMaps",
  "cgroupArray",
  "xskmap",
]);
/** Map types whose values are kept per possible CPU. */
export const PER_CPU: ReadonlySet<MapType> = new Set([
  "percpuHash",
  "percpuArray",
  "lruPercpuHash",
  "percpuCgroupStorage",
]);

function checkU32(value: unknown, field: string, min: number): void {
  if (typeof value !== "number" || !Number.isInteger(value)) {
    throw new TypeError(`Invalid map spec: ${field} must be an integer, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > U32_MAX) {
    throw new RangeError(`Invalid map spec: ${field} must be between ${min} and ${U32_MAX}, got ${value}`);
  }
}

/**
 * Checks a map spec without touching the kernel.
 *
 * @param spec The spec to check.
 * @param path How to name the spec in errors.
 * @throws {TypeError} When a field has the wrong type or `type` is unknown.
 * @throws {RangeError} When a size, count or name is out of range for the map type.
 */
export function validateMapSpec(spec: MapSpec, path = "spec"): void {
  if (typeof spec !== "object" || spec === null) throw new TypeError(`Invalid map spec: ${path} must be an object`);
  const type = spec.type;
  if (typeof type !== "string" || !Object.hasOwn(BPF_MAP_TYPE, type)) {
    throw new TypeError(`Invalid map spec: ${path}.type ${JSON.stringify(type)} is not a known map type`);
  }
  if (spec.name !== undefined && (typeof spec.name !== "string" || !NAME.test(spec.name))) {
    throw new RangeError(
      `Invalid map spec: ${path}.name ${JSON.stringify(spec.name)} must be at most 15 characters of [A-Za-z0-9_.]`,
    );
  }
  checkU32(spec.keySize, `${path}.keySize`, 0);
  checkU32(spec.valueSize, `${path}.valueSize`, 0);
  checkU32(spec.maxEntries, `${path}.maxEntries`, 1);
  if (spec.flags !== undefined) checkU32(spec.flags, `${path}.flags`, 0);
  if (KEYLESS.has(type)) {
    if (spec.keySize !== 0) throw new RangeError(`Invalid map spec: ${path}.keySize must be 0 for ${type} maps`);
  } else if (spec.keySize === 0) {
    throw new RangeError(`Invalid map spec: ${path}.keySize must be at least 1 for ${type} maps`);
  }
  if (ARRAYS.has(type) && spec.keySize !== 4) {
    throw new RangeError(`Invalid map spec: ${path}.keySize must be 4 for ${type} maps, got ${spec.keySize}`);
  }
  if (type === "arena") {
    // Pages shared through mmap(): no key, no value, max_entries pages.
    if (spec.valueSize !== 0) throw new RangeError(`Invalid map spec: ${path}.valueSize must be 0 for arena maps`);
    if (((spec.flags ?? 0) & MAP_FLAGS.mmapable) === 0) {
      throw new RangeError(`Invalid map spec: ${path}.flags must include MAP_FLAGS.mmapable for arena maps`);
    }
  } else if (type === "ringbuf" || type === "userRingbuf") {
    if (spec.valueSize !== 0) throw new RangeError(`Invalid map spec: ${path}.valueSize must be 0 for ${type} maps`);
    const n = spec.maxEntries;
    if ((n & (n - 1)) !== 0 || n < 4096) {
      throw new RangeError(
        `Invalid map spec: ${path}.maxEntries must be a power of two of at least 4096 for ${type} maps, got ${n}`,
      );
    }
  } else if (spec.valueSize === 0) {
    throw new RangeError(`Invalid map spec: ${path}.valueSize must be at least 1 for ${type} maps`);
  }
  if (FD_VALUES.has(type) && spec.valueSize !== 4) {
    throw new RangeError(`Invalid map spec: ${path}.valueSize must be 4 for ${type} maps, got ${spec.valueSize}`);
  }
  if ((type === "sockmap" || type === "sockhash") && spec.valueSize !== 4 && spec.valueSize !== 8) {
    throw new RangeError(`Invalid map spec: ${path}.valueSize must be 4 or 8 for ${type} maps, got ${spec.valueSize}`);
  }
  if (type === "lpmTrie") {
    if (spec.keySize < 5) {
      throw new RangeError(
        `Invalid map spec: ${path}.keySize must be at least 5 for lpmTrie maps (u32 prefix length and data)`,
      );
    }
    if (((spec.flags ?? 0) & MAP_FLAGS.noPrealloc) === 0) {
      throw new RangeError(`Invalid map spec: ${path}.flags must include MAP_FLAGS.noPrealloc for lpmTrie maps`);
    }
  }
  if (type === "arrayOfMaps" || type === "hashOfMaps") {
    if (spec.innerMap === undefined) {
      throw new TypeError(`Invalid map spec: ${path}.innerMap is required for ${type} maps`);
    }
    validateMapSpec(spec.innerMap, `${path}.innerMap`);
  } else if (spec.innerMap !== undefined) {
    throw new TypeError(`Invalid map spec: ${path}.innerMap is only valid for arrayOfMaps and hashOfMaps maps`);
  }
  if (spec.numaNode !== undefined) checkU32(spec.numaNode, `${path}.numaNode`, 0);
  if (spec.mapExtra !== undefined && typeof spec.mapExtra !== "bigint") {
    throw new TypeError(`Invalid map spec: ${path}.mapExtra must be a bigint`);
  }
}
