// Map-like behaviour shared by the typed map classes (through HashMap and
// LruHashMap): hot-path get/set, codec checks, batch and per-key bulk
// paths, and iteration that stays correct while entries are deleted.
import { afterEach, beforeEach, describe, expect, test } from "vitest";
import { BpfMap, ClosedError, createMap, SyscallError } from "@dp/core";
import { setSys, type Sys, sys } from "@dp/core/internal";
import { requireRoot } from "@dp/core/testing";
import { ArrayMap, be16, HashMap, LruHashMap, struct, u32, u64, u8 } from "@dp/maps";

beforeEach((t) => requireRoot(t));

const Key = struct({ identity: u32, dport: be16, proto: u8, pad: u8 }, { name: "struct policy_key", size: 8 });

const LOOKUP_ELEM = 1;
const UPDATE_ELEM = 2;
const DELETE_ELEM = 3;
const GET_NEXT_KEY = 4;
const LOOKUP_BATCH = 24;
const UPDATE_BATCH = 26;
const DELETE_BATCH = 27;
const ENOTSUPP = 524;

/**
 * Routes bpf(2) through a wrapper that counts commands and, with
 * `noBatch`, answers batch commands with ENOTSUPP as an old kernel would.
 * Maps capture the gateway when created, so create them after this.
 */
function interpose(noBatch: boolean): Map<number, number> {
  const real = sys();
  const counts = new Map<number, number>();
  const wrapped: Sys = {
    ...real,
    bpf(cmd, attr, size) {
      counts.set(cmd, (counts.get(cmd) ?? 0) + 1);
      if (noBatch && (cmd === LOOKUP_BATCH || cmd === UPDATE_BATCH || cmd === DELETE_BATCH)) return -ENOTSUPP;
      return real.bpf(cmd, attr, size);
    },
  };
  setSys(wrapped);
  restore = real;
  return counts;
}

let restore: Sys | undefined;
afterEach(() => {
  if (restore !== undefined) setSys(restore);
  restore = undefined;
});

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

describe("HashMap", () => {
  test("get() returns undefined for a missing key; set() chains; delete() and has() report presence", () => {
    using m = HashMap.create(Key, u64, { name: "t_basic", maxEntries: 16 });
    const k = { identity: 1, dport: 80, proto: 6, pad: 0 };
    expect(m.get(k)).toBeUndefined();
    expect(m.set(k, 1n).set({ ...k, identity: 2 }, 2n)).toBe(m);
    expect(m.get(k)).toBe(1n);
    expect(m.has(k)).toBe(true);
    expect(m.delete(k)).toBe(true);
    expect(m.delete(k)).toBe(false);
    expect(m.has(k)).toBe(false);
    expect([...m.keys()]).toEqual([{ ...k, identity: 2 }]);
    expect([...m.values()]).toEqual([2n]);
  });

  test("set() with mode noExist refuses an existing key with EEXIST", () => {
    using m = HashMap.create(u32, u32, { maxEntries: 4 });
    m.set(1, 1);
    expect(() => m.set(1, 2, { mode: "noExist" })).toThrow(expect.objectContaining({ code: "EEXIST" }));
    expect(m.get(1)).toBe(1);
  });

  test("constructor throws TypeError naming the class, the map and the mismatch", () => {
    using raw = createMap({ name: "t_sizes", type: "hash", keySize: 4, valueSize: 8, maxEntries: 4 });
    expect(() => new HashMap(raw, Key, u64)).toThrow(
      new TypeError(
        'Cannot wrap map "t_sizes" in HashMap: the key type struct policy_key is 8 bytes, the map\'s keys are 4 bytes',
      ),
    );
    expect(() => new HashMap(raw, u32, u32)).toThrow(/the value type u32 is 4 bytes, the map's values are 8 bytes/);
    expect(() => new LruHashMap(raw, u32, u64)).toThrow(
      new TypeError('Cannot wrap map "t_sizes" in LruHashMap: its type is hash, expected lruHash'),
    );
    expect(() => new ArrayMap(raw, u64)).toThrow(/its type is hash, expected array/);
  });

  test("bad keys and values throw before any system call, naming the field and the entry", () => {
    using m = HashMap.create(Key, u64, { maxEntries: 4 });
    expect(() => m.get({ identity: 1, dport: 70000, proto: 6, pad: 0 })).toThrow(RangeError);
    expect(() => m.get({ identity: 1, dport: 70000, proto: 6, pad: 0 })).toThrow(/key\.dport/);
    expect(() => m.set({ identity: 1, dport: 1, proto: 6, pad: 0 }, 1 as unknown as bigint)).toThrow(TypeError);
    expect(() =>
      m.setMany([
        [{ identity: 1, dport: 1, proto: 6, pad: 0 }, 1n],
        [{ identity: 2, dport: 1, proto: 256, pad: 0 }, 1n],
      ]),
    ).toThrow(/key\.proto.*\(entry 1\)$/);
    expect([...m]).toEqual([]);
  });

  test("close() closes the map; later calls throw ClosedError", () => {
    const m = HashMap.create(u32, u32, { maxEntries: 4 });
    m.close();
    m.close();
    expect(m.closed).toBe(true);
    expect(m.map.closed).toBe(true);
    expect(() => m.get(1)).toThrow(ClosedError);
  });

  test("wrapping a collection-owned or pinned map leaves the raw map usable until close()", () => {
    using raw = createMap({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 4 });
    const typed = new HashMap(raw, u32, u32);
    typed.set(7, 70);
    expect(raw.get(new Uint8Array([7, 0, 0, 0]))).toEqual(new Uint8Array([70, 0, 0, 0]));
    expect(typed.map).toBeInstanceOf(BpfMap);
  });
});

describe("bulk operations", () => {
  for (const noBatch of [false, true]) {
    const mode = noBatch ? "per key (no batch support)" : "batched";
    test(`setMany(), entries() and deleteMany() move 10000 entries ${mode}`, () => {
      const calls = interpose(noBatch);
      using m = HashMap.create(u32, u64, { name: "t_bulk", maxEntries: 16384 });
      const n = 10_000;
      m.setMany(range(n).map((i) => [i, BigInt(i) * 3n] as const));
      const seen = new Map(m.entries());
      expect(seen.size).toBe(n);
      for (const i of [0, 1, 4095, 4096, 9999]) expect(seen.get(i)).toBe(BigInt(i) * 3n);
      // Missing keys (10000..10099) are skipped and not counted.
      expect(m.deleteMany(range(n + 100).filter((i) => i % 2 === 0 || i >= n))).toBe(n / 2);
      expect([...m.keys()].every((k) => k % 2 === 1)).toBe(true);
      const before = new Map(calls);
      m.clear();
      expect([...m]).toEqual([]);
      calls.clear();
      for (const [cmd, n] of before) calls.set(cmd, n);
      if (noBatch) {
        expect(calls.get(UPDATE_ELEM)).toBe(n);
        expect(calls.get(DELETE_ELEM)).toBe(n / 2 + 100);
        expect(calls.get(GET_NEXT_KEY)).toBeGreaterThan(n);
        // One refused attempt each, then the map remembers.
        expect(calls.get(UPDATE_BATCH)).toBe(1);
      } else {
        expect(calls.get(UPDATE_ELEM) ?? 0).toBe(0);
        expect(calls.get(DELETE_ELEM) ?? 0).toBe(0);
        expect(calls.get(LOOKUP_ELEM) ?? 0).toBe(0);
        expect(calls.get(UPDATE_BATCH)).toBe(3);
        // Two full scans of 10000 entries and one of 5000, 4096 entries per call.
        expect(calls.get(LOOKUP_BATCH)).toBeLessThanOrEqual(10);
      }
    });

    test(`entries() visits each key once while the loop deletes every key it visits, ${mode}`, () => {
      interpose(noBatch);
      using m = HashMap.create(u32, u32, { maxEntries: 1024 });
      m.setMany(range(500).map((i) => [i, i] as const));
      const visited: number[] = [];
      for (const [k, v] of m) {
        expect(v).toBe(k);
        visited.push(k);
        expect(m.delete(k)).toBe(true);
      }
      expect(visited.sort((a, b) => a - b)).toEqual(range(500));
      expect([...m]).toEqual([]);
    });

    test(`entries() yields no key twice while the loop deletes other keys, ${mode}`, () => {
      interpose(noBatch);
      using m = HashMap.create(u32, u32, { maxEntries: 1024 });
      m.setMany(range(500).map((i) => [i, i] as const));
      const visited: number[] = [];
      const deletedAt = new Map<number, number>();
      for (const [k] of m) {
        visited.push(k);
        // Delete two keys that may not have been visited yet.
        for (const other of [(k * 7 + 3) % 500, (k * 13 + 5) % 500])
          if (m.delete(other)) deletedAt.set(other, visited.length - 1);
      }
      expect(new Set(visited).size).toBe(visited.length);
      // Every key that was never deleted was visited.
      for (const k of range(500)) if (!deletedAt.has(k)) expect(visited).toContain(k);
      if (noBatch) {
        // Key walks look each entry up just before yielding it: a deleted key is not yielded afterwards.
        visited.forEach((k, i) => expect(deletedAt.get(k) ?? i).toBeGreaterThanOrEqual(i));
      }
    });
  }

  test("setMany() with mode noExist writes entry by entry and stops at the first existing key", () => {
    const calls = interpose(false);
    using m = HashMap.create(u32, u32, { maxEntries: 16 });
    m.set(2, 20);
    expect(() =>
      m.setMany(
        [
          [1, 1],
          [2, 2],
          [3, 3],
        ],
        { mode: "noExist" },
      ),
    ).toThrow(SyscallError);
    expect(new Map(m)).toEqual(
      new Map([
        [1, 1],
        [2, 20],
      ]),
    );
    expect(calls.get(UPDATE_BATCH) ?? 0).toBe(0);
  });

  test("LruHashMap.setMany() beyond capacity evicts instead of failing", () => {
    using m = LruHashMap.create(u32, u32, { maxEntries: 128 });
    m.setMany(range(1000).map((i) => [i, i] as const));
    const size = [...m.keys()].length;
    expect(size).toBeGreaterThan(0);
    expect(size).toBeLessThanOrEqual(128);
  });
});
