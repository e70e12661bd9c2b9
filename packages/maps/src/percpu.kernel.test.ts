import { beforeEach, describe, expect, test } from "vitest";
import { createMap, possibleCpus } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { array, PerCpuArrayMap, PerCpuHashMap, struct, u32, u64, u8 } from "@dp/maps";
import { bpftoolDump, hex } from "./_test_fixtures.ts";

beforeEach((t) => requireRoot(t));

const cpus = possibleCpus();
function perCpu<T>(f: (cpu: number) => T): T[] {
  return Array.from({ length: cpus }, (_, cpu) => f(cpu));
}

describe("PerCpuHashMap", () => {
  test("set() takes one value for every CPU or one per CPU; get() returns one per CPU; sum() adds them", () => {
    using m = PerCpuHashMap.create(u32, u64, { name: "t_pch", maxEntries: 16 });
    expect(m.cpus).toBe(cpus);
    m.set(1, 7n);
    expect(m.get(1)).toEqual(perCpu(() => 7n));
    m.set(
      2,
      perCpu((c) => BigInt(c + 1)),
    );
    expect(m.get(2)).toEqual(perCpu((c) => BigInt(c + 1)));
    expect(m.sum(2)).toBe(BigInt((cpus * (cpus + 1)) / 2));
    expect(m.sum(3)).toBeUndefined();
    expect(() => m.set(3, [1n])).toThrow(
      cpus === 1
        ? /never/
        : new RangeError(`Invalid value for value: expected one value per possible CPU (${cpus}), got 1`),
    );
    expect(new Map(m)).toEqual(
      new Map([
        [1, perCpu(() => 7n)],
        [2, perCpu((c) => BigInt(c + 1))],
      ]),
    );
  });

  test("values are padded to 8 bytes per CPU as bpftool shows them", () => {
    using m = PerCpuHashMap.create(u32, struct({ a: u8, b: u8 }), { name: "t_pch_pad", maxEntries: 4 });
    m.setMany([[5, perCpu((c) => ({ a: c, b: 0xff }))]]);
    const e = bpftoolDump(m.map)[0];
    expect(e?.values).toEqual(perCpu((c) => hex(new Uint8Array([c, 0xff]))));
    expect(m.get(5)).toEqual(perCpu((c) => ({ a: c, b: 0xff })));
  });

  test("array values: an array is one value for every CPU, an array of arrays one per CPU", () => {
    using m = PerCpuHashMap.create(u32, array(u32, 2), { maxEntries: 4 });
    m.set(1, [1, 2]);
    expect(m.get(1)).toEqual(perCpu(() => [1, 2]));
    m.set(
      1,
      perCpu((c) => [c, c * 2]),
    );
    expect(m.get(1)).toEqual(perCpu((c) => [c, c * 2]));
    expect(m.sum(1)).toEqual([(cpus * (cpus - 1)) / 2, cpus * (cpus - 1)]);
  });

  test("wraps LRU per-CPU hashes too, and deletes", () => {
    using m = new PerCpuHashMap(
      createMap({ type: "lruPercpuHash", keySize: 4, valueSize: 4, maxEntries: 8 }),
      u32,
      u32,
    );
    m.set(1, 1);
    expect(m.deleteMany([1, 2])).toBe(1);
    expect([...m]).toEqual([]);
  });
});

describe("PerCpuArrayMap", () => {
  test("each index holds one value per CPU; sum() adds structs field by field", () => {
    const Counters = struct({ packets: u64, bytes: u64 });
    using m = PerCpuArrayMap.create(Counters, { name: "t_pca", maxEntries: 2 });
    expect(m.size).toBe(2);
    expect(m.get(1)).toEqual(perCpu(() => ({ packets: 0n, bytes: 0n })));
    m.set(
      1,
      perCpu((c) => ({ packets: 1n, bytes: BigInt(c) })),
    );
    expect(m.sum(1)).toEqual({ packets: BigInt(cpus), bytes: BigInt((cpus * (cpus - 1)) / 2) });
    expect(m.sum(2)).toBeUndefined();
    expect([...m.keys()]).toEqual([0, 1]);
  });
});
