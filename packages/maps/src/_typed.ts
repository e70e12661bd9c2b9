// Plumbing shared by the typed map classes: layout checks, the key and value
// layouts the classes build from codecs, per-CPU values and batch deletes.
import { type BpfMap, Fd, type FdOwner, type MapType, NotSupportedError, possibleCpus, SyscallError } from "@dp/core";
import { Native, rawFd, sys } from "@dp/core/internal";
import type { Codec } from "./codec.ts";

/**
 * How a typed map turns one side of an entry into bytes and back: a
 * {@link Codec}, or an adapter that accepts more shapes on input than it
 * returns (CIDR strings or objects, one value or one per CPU).
 */
export interface Layout<T, TIn = T> {
  /** The C name, for errors. */
  readonly name: string;
  /** Bytes per entry as the kernel reads and writes it. */
  readonly size: number;
  /** Writes a value at `offset`; errors name `path`. */
  encode(value: TIn, view: DataView, offset: number, path: string): void;
  /** Reads a value at `offset`. */
  decode(view: DataView, offset: number): T;
}

/** What a class accepts, for the checks in {@link checkMap}. */
export interface MapKind {
  /** The class name, for errors. */
  readonly className: string;
  /** The map types the class wraps. */
  readonly types: readonly MapType[];
}

/** Rounds up to a multiple of 8, the stride of per-CPU values and mmap'd array elements. */
export function align8(n: number): number {
  return Math.ceil(n / 8) * 8;
}

/**
 * Checks that a map is of a type the class wraps and that the codecs match
 * its key and value sizes.
 *
 * @throws {TypeError} Naming the mismatch.
 */
export function checkMap(
  map: BpfMap,
  kind: MapKind,
  key: Layout<unknown, never> | undefined,
  value: Layout<unknown, never> | undefined,
): void {
  const what = `Cannot wrap map "${map.name}" in ${kind.className}`;
  if (!kind.types.includes(map.type)) {
    throw new TypeError(`${what}: its type is ${map.type}, expected ${kind.types.join(" or ")}`);
  }
  if (key !== undefined && key.size !== map.keySize) {
    throw new TypeError(
      `${what}: the key type ${key.name} is ${key.size} bytes, the map's keys are ${map.keySize} bytes`,
    );
  }
  if (value !== undefined && value.size !== map.valueSize) {
    throw new TypeError(
      `${what}: the value type ${value.name} is ${value.size} bytes, the map's values are ${map.valueSize} bytes`,
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean" || value === undefined || value === null)
    return String(value);
  return Array.isArray(value) ? "an array" : `a ${typeof value}`;
}

/** A u32 index key (arrays, prog arrays, sockmaps): a number from 0 to 2^32 - 1. */
export const INDEX: Layout<number> = {
  name: "u32",
  size: 4,
  encode(value, view, offset, path) {
    if (typeof value !== "number")
      throw new TypeError(`Invalid value for ${path} (u32): expected a number, got ${describe(value)}`);
    if (value >>> 0 !== value)
      throw new RangeError(`Invalid value for ${path} (u32): ${describe(value)} is outside 0..4294967295`);
    view.setUint32(offset, value, true);
  },
  decode(view, offset) {
    return view.getUint32(offset, true);
  },
};

/** The id a prog array or map of maps returns on lookup. */
export const ID: Layout<number, never> = {
  name: "u32",
  size: 4,
  encode(_value, _view, _offset, path) {
    throw new TypeError(`Invalid value for ${path}: ids cannot be stored, store the object`);
  },
  decode(view, offset) {
    return view.getUint32(offset, true);
  },
};

/** The socket cookie a sockmap or sockhash returns on lookup (8-byte values). */
export const COOKIE: Layout<bigint, never> = {
  name: "u64",
  size: 8,
  encode(_value, _view, _offset, path) {
    throw new TypeError(`Invalid value for ${path}: cookies cannot be stored, store the socket`);
  },
  decode(view, offset) {
    return view.getBigUint64(offset, true);
  },
};

/** Whether `value` owns a descriptor a map can store. */
export function isFdOwner(value: unknown): value is FdOwner {
  return (
    value instanceof Fd || (typeof value === "object" && value !== null && (value as { fd?: unknown }).fd instanceof Fd)
  );
}

/**
 * The values of a per-CPU map: one per possible CPU, each padded to 8
 * bytes. `encode` takes one value for every CPU or an array with one per
 * CPU. When the value type is itself an array, a per-CPU input is an array
 * of arrays.
 */
export function perCpuLayout<V>(codec: Codec<V>, cpus: number = possibleCpus()): Layout<V[], V | readonly V[]> {
  const stride = align8(codec.size);
  const arrays = Array.isArray(codec.decode(new DataView(new ArrayBuffer(Math.max(codec.size, 1))), 0));
  const isPerCpu = (value: V | readonly V[]): value is readonly V[] =>
    Array.isArray(value) && (!arrays || value.length === 0 || Array.isArray(value[0]));
  return {
    name: `${codec.name} per CPU`,
    size: stride * cpus,
    encode(value, view, offset, path) {
      if (isPerCpu(value)) {
        if (value.length !== cpus) {
          throw new RangeError(
            `Invalid value for ${path}: expected one value per possible CPU (${cpus}), got ${value.length}`,
          );
        }
        for (let c = 0; c < cpus; c++)
          writePadded(codec, value[c] as V, view, offset + c * stride, stride, `${path}[${c}]`);
        return;
      }
      writePadded(codec, value, view, offset, stride, path);
      for (let c = 1; c < cpus; c++) {
        for (let i = 0; i < stride; i++) view.setUint8(offset + c * stride + i, view.getUint8(offset + i));
      }
    },
    decode(view, offset) {
      const out = new Array<V>(cpus);
      for (let c = 0; c < cpus; c++) out[c] = codec.decode(view, offset + c * stride);
      return out;
    },
  };
}

function writePadded<V>(codec: Codec<V>, value: V, view: DataView, offset: number, stride: number, path: string): void {
  codec.encode(value, view, offset, path);
  for (let i = codec.size; i < stride; i++) view.setUint8(offset + i, 0);
}

/** A key's bytes as a string, to remember which keys an iteration has seen. */
export function keyString(bytes: Uint8Array, offset: number, size: number): string {
  let s = "";
  for (let i = 0; i < size; i++) s += String.fromCharCode(bytes[offset + i] as number);
  return s;
}

const BPF_MAP_DELETE_BATCH = 27;
const BATCH_ATTR_SIZE = 56;
const ENOENT = 2;
const EOPNOTSUPP = 95;
const ENOTSUPP = 524;

/**
 * Deletes `count` keys with BPF_MAP_DELETE_BATCH, stepping over missing
 * keys: the kernel stops at the first missing key and reports how far it
 * got, so the batch continues after it.
 *
 * @returns How many keys were deleted.
 * @throws {NotSupportedError} When the map type has no batch deletes (nothing was deleted).
 * @throws {SyscallError} When the kernel refuses for another reason.
 */
export function deleteBatch(map: BpfMap, keys: Uint8Array, count: number): number {
  const attr = new Native(BATCH_ATTR_SIZE);
  const s = sys();
  const base = s.addressOf(keys);
  let deleted = 0;
  let at = 0;
  while (at < count) {
    attr.u8.fill(0);
    attr.setPtr(16, base + at * map.keySize);
    attr.dv.setUint32(32, count - at, true);
    attr.dv.setUint32(36, rawFd(map.fd), true);
    const ret = s.bpf(BPF_MAP_DELETE_BATCH, attr.addr, BATCH_ATTR_SIZE);
    const done = attr.dv.getUint32(32, true);
    if (ret >= 0) return deleted + done;
    if (ret === -ENOENT && done < count - at) {
      deleted += done;
      at += done + 1;
      continue;
    }
    const err = new SyscallError(`Cannot batch delete entries from map "${map.name}"`, {
      syscall: "bpf",
      op: "BPF_MAP_DELETE_BATCH",
      errno: -ret,
    });
    if ((ret === -ENOTSUPP || ret === -EOPNOTSUPP) && at === 0) {
      throw new NotSupportedError(`batch delete on ${map.type} maps`, { cause: err });
    }
    throw err;
  }
  return deleted;
}
