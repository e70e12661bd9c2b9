import { beforeEach, describe, expect, test } from "vitest";
import { createMap } from "@dp/core";
import { requireRoot } from "@dp/core/testing";
import { LpmTrieMap, u32 } from "@dp/maps";
import { bpftoolDump } from "./_test_fixtures.ts";

beforeEach((t) => requireRoot(t));

describe("LpmTrieMap", () => {
  test("IPv4: exact prefixes with get/set/delete, longest match with lookup()", () => {
    using routes = LpmTrieMap.create(u32, { name: "t_lpm4", maxEntries: 16 });
    expect(routes.family).toBe(4);
    routes
      .set("0.0.0.0/0", 0)
      .set("10.0.0.0/8", 1)
      .set({ prefixLen: 24, addr: new Uint8Array([10, 1, 2, 0]) }, 3);
    expect(routes.lookup("10.1.2.200")).toBe(3);
    expect(routes.lookup(new Uint8Array([10, 9, 9, 9]))).toBe(1);
    expect(routes.lookup("192.0.2.1")).toBe(0);
    expect(routes.get("10.0.0.0/8")).toBe(1);
    expect(routes.get("10.0.0.0/9")).toBeUndefined();
    expect(routes.has({ prefixLen: 8, addr: "10.0.0.0" })).toBe(true);
    // Covered by stored prefixes, but not stored themselves.
    for (const p of ["10.1.0.0/16", "10.1.2.128/25", "11.0.0.0/8"]) {
      expect(routes.has(p)).toBe(false);
      expect(routes.get(p)).toBeUndefined();
    }
    for (const [p, v] of [
      ["0.0.0.0/0", 0],
      ["10.0.0.0/8", 1],
      ["10.1.2.0/24", 3],
    ] as const)
      expect(routes.get(p)).toBe(v);
    expect(routes.delete("0.0.0.0/0")).toBe(true);
    expect(routes.lookup("192.0.2.1")).toBeUndefined();
    expect(new Map(routes)).toEqual(
      new Map([
        ["10.0.0.0/8", 1],
        ["10.1.2.0/24", 3],
      ]),
    );
    expect(
      bpftoolDump(routes.map)
        .map((e) => e.key)
        .sort(),
    ).toEqual(["080000000a000000", "180000000a010200"]);
  });

  test("IPv6 tries take 20-byte keys", () => {
    using routes = LpmTrieMap.create(u32, { family: 6, maxEntries: 16 });
    expect(routes.map.keySize).toBe(20);
    routes.setMany([
      ["fd00::/8", 1],
      ["fd00:1::/32", 2],
      ["::/0", 9],
    ]);
    expect(routes.lookup("fd00:1::5")).toBe(2);
    expect(routes.lookup("fd22::1")).toBe(1);
    expect(routes.lookup("2001:db8::1")).toBe(9);
    expect(new Set(routes.keys())).toEqual(new Set(["fd00::/8", "fd00:1::/32", "::/0"]));
  });

  test("bad prefixes throw RangeError or TypeError naming the key", () => {
    using routes = LpmTrieMap.create(u32, { maxEntries: 4 });
    expect(() => routes.set("10.0.0.0/33", 1)).toThrow(RangeError);
    expect(() => routes.set("10.0.0.0/33", 1)).toThrow(
      /^Invalid value for key \(IPv4 CIDR\): "10.0.0.0\/33" is not a CIDR prefix$/,
    );
    expect(() => routes.set("10.0.0.1/8", 1)).toThrow(
      'Invalid value for key (IPv4 CIDR): "10.0.0.1/8" has host bits set beyond /8',
    );
    expect(() => routes.set("fd00::/8", 1)).toThrow(/is an IPv6 prefix/);
    expect(() => routes.set({ prefixLen: 40, addr: "10.0.0.0" }, 1)).toThrow(
      /key\.prefixLen \(u32\): 40 is outside 0\.\.32/,
    );
    expect(() => routes.set({ prefixLen: 8, addr: new Uint8Array(3) }, 1)).toThrow(
      /key\.addr \(IPv4\): expected 4 bytes, got 3/,
    );
    expect(() => routes.set(8 as unknown as string, 1)).toThrow(TypeError);
    expect(() => routes.lookup("fd00::1")).toThrow(/is an IPv6 address/);
    expect([...routes]).toEqual([]);
  });

  test("iteration visits each prefix once while the loop deletes them", () => {
    using routes = LpmTrieMap.create(u32, { maxEntries: 300 });
    const prefixes = Array.from({ length: 256 }, (_, i) => `10.${i}.0.0/16`);
    routes.setMany(prefixes.map((p, i) => [p, i]));
    const seen: string[] = [];
    for (const [p] of routes) {
      seen.push(p);
      routes.delete(p);
    }
    expect(seen.sort()).toEqual([...prefixes].sort());
    expect([...routes]).toEqual([]);
  });

  test("wrapping refuses tries whose keys are not IP prefixes", () => {
    using raw = createMap({ name: "t_lpm_odd", type: "lpmTrie", keySize: 12, valueSize: 4, maxEntries: 4, flags: 1 });
    expect(() => new LpmTrieMap(raw, u32)).toThrow(/the key type IPv4 CIDR is 8 bytes, the map's keys are 12 bytes/);
  });
});
