import { beforeEach, describe, expect, expectTypeOf, test } from "vitest";
import { ClosedError, createMap, MAP_FLAGS, SyscallError } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { ArrayMap, MappedArray, struct, u16, u32, u64, u8 } from "@dp/maps";
import { bpftoolDump } from "./_test_fixtures.ts";

beforeEach((t) => requireRoot(t));

const Slot = struct({ port: u16, proto: u8, weight: u32 }, { name: "struct slot", size: 8 });
const Wide = struct({ a: u64, b: u32 }, { name: "struct wide", size: 16 });
const Odd = struct({ a: u32, b: u16 }, { name: "struct odd", size: 8 });

describe("ArrayMap", () => {
  test("every index holds a value; get() out of range is undefined; entries() lists all indexes", () => {
    using arr = ArrayMap.create(Slot, { name: "t_arr", maxEntries: 3 });
    expect(arr.size).toBe(3);
    expect(arr.get(0)).toEqual({ port: 0, proto: 0, weight: 0 });
    arr.set(2, { port: 80, proto: 6, weight: 9 });
    expect(arr.get(2)).toEqual({ port: 80, proto: 6, weight: 9 });
    expect(arr.get(3)).toBeUndefined();
    expect(arr.has(2)).toBe(true);
    expect(arr.has(3)).toBe(false);
    expect([...arr.keys()]).toEqual([0, 1, 2]);
    expect(() => arr.set(3, { port: 1, proto: 1, weight: 1 })).toThrow(
      new RangeError('Invalid index 3 for array map "t_arr": use an integer from 0 to 2'),
    );
    expect(() => arr.get(-1)).toThrow(new RangeError("Invalid value for key (u32): -1 is outside 0..4294967295"));
    expect(() => arr.get(1.5)).toThrow(RangeError);
    expectTypeOf(arr).not.toHaveProperty("delete");
  });

  test("set() and setMany() refuse an index outside 0..size-1 with RangeError before writing anything", () => {
    using arr = ArrayMap.create(u32, { name: "t_arr_idx", maxEntries: 4 });
    for (const bad of [4, -1, 1.5, Number.NaN, 2 ** 32]) {
      expect(() => arr.set(bad, 1)).toThrow(RangeError);
    }
    expect(() => arr.set(4, 1)).toThrow(/Invalid index 4 for array map "t_arr_idx": use an integer from 0 to 3/);
    expect(() =>
      arr.setMany([
        [0, 7],
        [9, 8],
      ]),
    ).toThrow(RangeError);
    expect(arr.get(0)).toBe(0);
    arr.set(3, 5);
    expect(arr.get(3)).toBe(5);
  });

  test("setMany() writes indexes in one batch; bpftool sees the bytes", () => {
    using arr = ArrayMap.create(u32, { name: "t_arr_many", maxEntries: 8 });
    arr.setMany([
      [1, 10],
      [5, 50],
    ]);
    expect([...arr.values()]).toEqual([0, 10, 0, 0, 0, 50, 0, 0]);
    const dump = bpftoolDump(arr.map);
    expect(dump.find((e) => e.key === "05000000")?.value).toBe("32000000");
  });
});

describe("ArrayMap.mmap()", () => {
  test("get() and set() go through memory shared with bpf(2), for values of every stride", () => {
    using counters = ArrayMap.create(u32, { maxEntries: 1000, flags: MAP_FLAGS.mmapable });
    using mem = counters.mmap();
    expect(mem).toBeInstanceOf(MappedArray);
    expect(mem.size).toBe(1000);
    mem.set(999, 7);
    expect(counters.get(999)).toBe(7);
    counters.set(500, 0xffffffff);
    expect(mem.get(500)).toBe(0xffffffff);

    using wide = ArrayMap.create(Wide, { maxEntries: 4, flags: MAP_FLAGS.mmapable });
    using wideMem = wide.mmap();
    wideMem.set(3, { a: 2n ** 63n, b: 5 });
    expect(wide.get(3)).toEqual({ a: 2n ** 63n, b: 5 });
    wide.set(1, { a: 1n, b: 2 });
    expect(wideMem.get(1)).toEqual({ a: 1n, b: 2 });

    using odd = ArrayMap.create(Odd, { maxEntries: 4, flags: MAP_FLAGS.mmapable });
    using oddMem = odd.mmap();
    oddMem.set(2, { a: 1, b: 2 });
    expect([...odd]).toEqual([0, 1, 2, 3].map((i) => [i, i === 2 ? { a: 1, b: 2 } : { a: 0, b: 0 }]));
  });

  test("bad indexes throw RangeError, writes to read-only memory TypeError, use after close() ClosedError", () => {
    using arr = ArrayMap.create(u64, { name: "t_mm", maxEntries: 4, flags: MAP_FLAGS.mmapable });
    const mem = arr.mmap();
    for (const bad of [-1, 4, 1.5, Number.NaN]) {
      expect(() => mem.get(bad)).toThrow(RangeError);
      expect(() => mem.set(bad, 1n)).toThrow(RangeError);
    }
    expect(() => mem.get(4)).toThrow('Invalid index 4 for mapped array "t_mm": expected an integer from 0 to 3');
    expect(() => mem.set(0, -1n)).toThrow(RangeError);
    using ro = arr.mmap({ readOnly: true });
    mem.set(1, 11n);
    expect(ro.get(1)).toBe(11n);
    expect(() => ro.set(1, 1n)).toThrow(new TypeError('Cannot write mapped array "t_mm": it is mapped read-only'));
    mem.close();
    mem.close();
    expect(mem.closed).toBe(true);
    expect(() => mem.get(0)).toThrow(ClosedError);
    expect(() => mem.set(0, 1n)).toThrow(ClosedError);
    expect(ro.get(1)).toBe(11n);
  });

  test("mmap() refuses arrays without BPF_F_MMAPABLE; frozen arrays map read-only only", () => {
    using plain = ArrayMap.create(u32, { name: "t_plain", maxEntries: 4 });
    expect(() => plain.mmap()).toThrow(/Cannot map array "t_plain": it was created without BPF_F_MMAPABLE/);
    using frozen = new ArrayMap(
      createMap({
        name: "t_frozen",
        type: "array",
        keySize: 4,
        valueSize: 4,
        maxEntries: 4,
        flags: MAP_FLAGS.mmapable,
      }),
      u32,
    );
    frozen.set(0, 3);
    frozen.map.freeze();
    expect(() => frozen.mmap()).toThrow(SyscallError);
    using ro = frozen.mmap({ readOnly: true });
    expect(ro.get(0)).toBe(3);
  });

  test("a mapping stays valid after the map is closed", () => {
    const arr = ArrayMap.create(u32, { maxEntries: 2, flags: MAP_FLAGS.mmapable });
    using mem = arr.mmap();
    mem.set(1, 5);
    arr.close();
    expect(mem.get(1)).toBe(5);
  });
});
