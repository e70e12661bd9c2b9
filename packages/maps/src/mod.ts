/**
 * Typed BPF maps over `@dp/core`: struct codecs for C layouts, `Map`-like
 * classes per map type (hash, LRU, array, per-CPU, LPM trie, prog array,
 * maps of maps, queue, stack, ring buffer, sockmap), batch and mmap paths,
 * and `dp-gen`, which writes TypeScript bindings from an object's BTF.
 *
 * @module \@dp/maps
 */
export type { Codec, Infer } from "./codec.ts";
export {
  array,
  be16,
  be32,
  be64,
  bool,
  bytes,
  cstring,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  ipv4,
  ipv4Bytes,
  ipv6,
  ipv6Bytes,
  mac,
  struct,
  u16,
  u32,
  u64,
  u8,
  union,
} from "./codec.ts";
export type {
  ArrayCodec,
  StructCodec,
  StructField,
  StructFields,
  StructOptions,
  StructValue,
  UnionCodec,
  UnionOptions,
  UnionValue,
} from "./codec.ts";
export { generateBindings } from "./gen.ts";
export type { GenerateBindingsOptions } from "./gen.ts";
export { DeletableMap, TypedMap } from "./typed_map.ts";
export type { TypedMapOptions } from "./typed_map.ts";
export { HashMap, LruHashMap } from "./hash.ts";
export { ArrayMap, MappedArray } from "./array.ts";
export type { MmapOptions } from "./array.ts";
export { PerCpuArrayMap, PerCpuHashMap, sumValues } from "./percpu.ts";
export { LpmTrieMap } from "./lpm.ts";
export type { LpmPrefix, LpmTrieMapOptions } from "./lpm.ts";
export { ProgArrayMap } from "./prog_array.ts";
export type { ProgArrayMapOptions } from "./prog_array.ts";
export { ArrayOfMaps, HashOfMaps } from "./map_of_maps.ts";
export type { InnerMap } from "./map_of_maps.ts";
export { KeylessMap, QueueMap, StackMap } from "./queue.ts";
export type { KeylessMapOptions, PushOptions } from "./queue.ts";
export { RingBuffer } from "./ringbuf.ts";
export type { RingBufferRecordsOptions } from "./ringbuf.ts";
export { SockHash, SockMap } from "./sockmap.ts";
