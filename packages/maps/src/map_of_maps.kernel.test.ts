import { beforeEach, describe, expect, test } from "vitest";
import { createMap, type MapSpec } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { ArrayMap, ArrayOfMaps, HashMap, HashOfMaps, struct, u16, u32 } from "@dp/maps";
import { bpftoolDump } from "./_test_fixtures.ts";

beforeEach((t) => requireRoot(t));

const INNER: MapSpec = { type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 };
const TenantKey = struct({ tenant: u32, zone: u16 });

describe("maps of maps", () => {
  test("ArrayOfMaps stores raw and typed maps and returns their ids", () => {
    using outer = ArrayOfMaps.create(INNER, { name: "t_aom", maxEntries: 4 });
    using a = HashMap.create(u32, u32, { maxEntries: 8 });
    using b = createMap(INNER);
    outer.set(0, a).set(2, b);
    expect(outer.get(0)).toBe(a.map.info().id);
    expect(outer.get(2)).toBe(b.info().id);
    expect(outer.get(1)).toBeUndefined();
    expect([...outer.keys()]).toEqual([0, 2]);
    expect(bpftoolDump(outer.map).filter((e) => e.value !== undefined)).toHaveLength(2);
    expect(outer.delete(0)).toBe(true);
    expect([...outer.values()]).toEqual([b.info().id]);
    expect(() => outer.set(3, 5 as never)).toThrow(
      new TypeError("Invalid value for value: expected a BpfMap or a typed map"),
    );
  });

  test("HashOfMaps stores maps under typed keys; entries() and deleteMany() work in batches", () => {
    using outer = HashOfMaps.create(
      TenantKey,
      { type: "array", keySize: 4, valueSize: 4, maxEntries: 2 },
      { maxEntries: 16 },
    );
    using x = ArrayMap.create(u32, { maxEntries: 2 });
    using y = ArrayMap.create(u32, { maxEntries: 2 });
    outer.setMany([
      [{ tenant: 1, zone: 1 }, x],
      [{ tenant: 2, zone: 1 }, y],
    ]);
    expect(new Map([...outer].map(([k, id]) => [k.tenant, id]))).toEqual(
      new Map([
        [1, x.map.info().id],
        [2, y.map.info().id],
      ]),
    );
    expect(
      outer.deleteMany([
        { tenant: 1, zone: 1 },
        { tenant: 3, zone: 1 },
      ]),
    ).toBe(1);
    expect([...outer.keys()]).toEqual([{ tenant: 2, zone: 1 }]);
  });
});
