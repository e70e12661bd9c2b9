import { beforeEach, describe, expect, test } from "vitest";
import { createMap, loadProgram } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { ProgArrayMap } from "@dp/maps";
import { bpftoolDump } from "./_test_fixtures.ts";

beforeEach((t) => requireRoot(t));

// r0 = 0; exit
const EXIT0 = new Uint8Array([0xb7, 0, 0, 0, 0, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]);

describe("ProgArrayMap", () => {
  test("set() stores programs, get() returns their ids, delete() empties a slot", () => {
    using jumps = ProgArrayMap.create({ name: "t_jumps", maxEntries: 4 });
    using a = loadProgram({ name: "a", type: "xdp", license: "GPL", instructions: EXIT0 });
    using b = loadProgram({ name: "b", type: "xdp", license: "GPL", instructions: EXIT0 });
    jumps.setMany([
      [0, a],
      [3, b],
    ]);
    expect(jumps.get(0)).toBe(a.info().id);
    expect(jumps.get(1)).toBeUndefined();
    expect(new Map(jumps)).toEqual(
      new Map([
        [0, a.info().id],
        [3, b.info().id],
      ]),
    );
    expect(
      bpftoolDump(jumps.map)
        .filter((e) => e.value !== undefined)
        .map((e) => e.key),
    ).toEqual(["00000000", "03000000"]);
    expect(jumps.delete(0)).toBe(true);
    expect(jumps.delete(0)).toBe(false);
    expect(jumps.has(3)).toBe(true);
    jumps.clear();
    expect([...jumps]).toEqual([]);
  });

  test("set() refuses anything but a program; the constructor anything but a program array", () => {
    using jumps = ProgArrayMap.create({ maxEntries: 1 });
    using other = createMap({ type: "array", keySize: 4, valueSize: 4, maxEntries: 1 });
    expect(() => jumps.set(0, other as never)).toThrow(new TypeError("Invalid value for value: expected a BpfProgram"));
    expect(() => new ProgArrayMap(other)).toThrow(/its type is array, expected progArray/);
  });
});
