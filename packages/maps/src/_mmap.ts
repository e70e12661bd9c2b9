// Shared memory of maps: mmap() of BPF_F_MMAPABLE arrays and ring buffers
// through core's gateway, with a safety net that unmaps a mapping whose
// owner was collected without close().
import { type BpfMap, SyscallError } from "@dp/core";
import { rawFd, sys } from "@dp/core/internal";

const PROT_READ = 1;
const PROT_WRITE = 2;
const MAP_SHARED = 1;
const EINVAL = 22;

interface Held {
  addr: number;
  length: number;
}

const registry = new FinalizationRegistry<Held>((held) => {
  sys().munmap(held.addr, held.length);
});

/** A shared mapping of a map's memory. */
export interface Mapping {
  /** The mapped bytes. */
  readonly buffer: ArrayBuffer;
  /** Unmaps; the buffer must not be touched afterwards. Calling it again does nothing. */
  unmap(): void;
}

/**
 * Maps `length` bytes of a map at `offset` (a multiple of the page size).
 * `owner` is the object whose collection unmaps the memory if `unmap()` was
 * never called.
 *
 * @throws {SyscallError} When mmap(2) fails.
 */
export function mapMemory(owner: object, map: BpfMap, length: number, writable: boolean, offset: number): Mapping {
  const s = sys();
  const addr = s.mmap(length, writable ? PROT_READ | PROT_WRITE : PROT_READ, MAP_SHARED, rawFd(map.fd), offset);
  if (addr < 0) {
    throw new SyscallError(`Cannot map the memory of map "${map.name}"`, {
      syscall: "mmap",
      op: "mmap",
      errno: -addr,
      hint: -addr === 1 && writable ? "the map is frozen or read-only; map it read-only" : undefined,
    });
  }
  const held: Held = { addr, length };
  const token = {};
  registry.register(owner, held, token);
  let mapped = true;
  return {
    buffer: s.view(addr, length),
    unmap(): void {
      if (!mapped) return;
      mapped = false;
      registry.unregister(token);
      const ret = s.munmap(addr, length);
      if (ret < 0)
        throw new SyscallError(`Cannot unmap the memory of map "${map.name}"`, {
          syscall: "munmap",
          op: "munmap",
          errno: -ret,
        });
    },
  };
}

let pageSize: number | undefined;

/**
 * Maps the producer side of a ring buffer (read-only: the producer page,
 * then the data pages twice) and learns the page size on the way: the
 * kernel refuses (EINVAL) an offset that is not a multiple of it.
 */
export function mapRingProducer(owner: object, map: BpfMap): { mapping: Mapping; pageSize: number } {
  const candidates = pageSize === undefined ? [4096, 16384, 65536] : [pageSize];
  let last: unknown;
  for (const size of candidates) {
    try {
      const mapping = mapMemory(owner, map, size + 2 * map.maxEntries, false, size);
      pageSize = size;
      return { mapping, pageSize: size };
    } catch (err) {
      if (!(err instanceof SyscallError && err.errno === EINVAL)) throw err;
      last = err;
    }
  }
  throw last;
}
