// Unit tests of the layouts the typed map classes build, and of their
// constructor checks (with a gateway that refuses every system call).
import { afterEach, describe, expect, test } from "vitest";
import { BpfMap, Fd, type MapSpec } from "@dp/core";
import { setSys, type Sys } from "@dp/core/internal";
import {
  ArrayMap,
  HashMap,
  LpmTrieMap,
  PerCpuHashMap,
  RingBuffer,
  array,
  struct,
  sumValues,
  u16,
  u32,
  u64,
  u8,
} from "@dp/maps";
import { INDEX, perCpuLayout } from "./_typed.ts";
import { lpmKeyLayout } from "./lpm.ts";

function view(n: number): DataView {
  return new DataView(new ArrayBuffer(n));
}

describe("INDEX", () => {
  test.each([
    [-1, RangeError, "Invalid value for key (u32): -1 is outside 0..4294967295"],
    [2 ** 32, RangeError, "Invalid value for key (u32): 4294967296 is outside 0..4294967295"],
    [0.5, RangeError, "Invalid value for key (u32): 0.5 is outside 0..4294967295"],
    ["1", TypeError, 'Invalid value for key (u32): expected a number, got "1"'],
  ])("encode(%s) throws %s", (value, type, message) => {
    expect(() => INDEX.encode(value as number, view(4), 0, "key")).toThrow(new type(message));
  });
});

describe("perCpuLayout()", () => {
  const Pair = struct({ a: u8, b: u16 });

  test("pads each CPU's value to 8 bytes and repeats a single value on every CPU", () => {
    const layout = perCpuLayout(Pair, 3);
    expect(layout.size).toBe(24);
    const v = view(24);
    new Uint8Array(v.buffer).fill(0xee);
    layout.encode({ a: 1, b: 0x0302 }, v, 0, "value");
    expect([...new Uint8Array(v.buffer)]).toEqual([
      1, 0, 2, 3, 0, 0, 0, 0, 1, 0, 2, 3, 0, 0, 0, 0, 1, 0, 2, 3, 0, 0, 0, 0,
    ]);
    expect(layout.decode(v, 0)).toEqual([
      { a: 1, b: 0x0302 },
      { a: 1, b: 0x0302 },
      { a: 1, b: 0x0302 },
    ]);
  });

  test("takes one value per CPU and names the CPU in errors", () => {
    const layout = perCpuLayout(u64, 2);
    const v = view(16);
    layout.encode([1n, 2n], v, 0, "value");
    expect(layout.decode(v, 0)).toEqual([1n, 2n]);
    expect(() => layout.encode([1n], v, 0, "value")).toThrow(
      new RangeError("Invalid value for value: expected one value per possible CPU (2), got 1"),
    );
    expect(() => layout.encode([1n, -1n], v, 0, "value")).toThrow(/value\[1\]/);
  });

  test("array values: a flat array is one value, an array of arrays one per CPU", () => {
    const layout = perCpuLayout(array(u32, 2), 2);
    const v = view(16);
    layout.encode([5, 6], v, 0, "value");
    expect(layout.decode(v, 0)).toEqual([
      [5, 6],
      [5, 6],
    ]);
    layout.encode(
      [
        [1, 2],
        [3, 4],
      ],
      v,
      0,
      "value",
    );
    expect(layout.decode(v, 0)).toEqual([
      [1, 2],
      [3, 4],
    ]);
  });
});

describe("sumValues()", () => {
  test("adds numbers, bigints, arrays and structs field by field", () => {
    expect(sumValues([1, 2, 3])).toBe(6);
    expect(
      sumValues([
        { p: 1n, d: [1, 2], n: { x: 1 } },
        { p: 2n, d: [3, 4], n: { x: 2 } },
      ]),
    ).toEqual({ p: 3n, d: [4, 6], n: { x: 3 } });
  });

  test("refuses values that do not add up, naming the field", () => {
    expect(() => sumValues([])).toThrow(RangeError);
    expect(() => sumValues([{ name: "a" }, { name: "b" }])).toThrow(
      new TypeError("Cannot sum name: string values do not add up"),
    );
    expect(() => sumValues([{ mac: new Uint8Array(6) }, { mac: new Uint8Array(6) }])).toThrow(/Cannot sum mac: bytes/);
    expect(() => sumValues([1, 2n] as unknown[])).toThrow(TypeError);
  });
});

describe("LPM trie keys", () => {
  const v4 = lpmKeyLayout(4);
  const v6 = lpmKeyLayout(6);

  test("encode CIDR strings and objects as a host-order prefix length and network-order address", () => {
    const v = view(8);
    v4.encode("10.1.0.0/16", v, 0, "key");
    expect([...new Uint8Array(v.buffer)]).toEqual([16, 0, 0, 0, 10, 1, 0, 0]);
    expect(v4.decode(v, 0)).toBe("10.1.0.0/16");
    v4.encode({ prefixLen: 32, addr: new Uint8Array([1, 2, 3, 4]) }, v, 0, "key");
    expect(v4.decode(v, 0)).toBe("1.2.3.4/32");
    v4.encode("192.0.2.7", v, 0, "key");
    expect(v4.decode(v, 0)).toBe("192.0.2.7/32");
    const w = view(20);
    v6.encode({ prefixLen: 64, addr: "fd00:0:0:1::" }, w, 0, "key");
    expect(v6.decode(w, 0)).toBe("fd00:0:0:1::/64");
  });

  test.each([
    ["10.0.0.0/33", RangeError, /"10\.0\.0\.0\/33" is not a CIDR prefix/],
    ["10.0.0/8", RangeError, /is not a CIDR prefix/],
    ["10.0.0.1/8", RangeError, /has host bits set beyond \/8/],
    ["fd00::/8", RangeError, /is an IPv6 prefix/],
    [{ prefixLen: -1, addr: "10.0.0.0" }, RangeError, /key\.prefixLen \(u32\): -1 is outside 0\.\.32/],
    [{ prefixLen: "8", addr: "10.0.0.0" }, TypeError, /key\.prefixLen \(u32\): expected a number/],
    [{ prefixLen: 8, addr: "fd00::" }, RangeError, /key\.addr \(IPv4\): "fd00::" is an IPv6 address/],
    [{ prefixLen: 8, addr: 10 }, TypeError, /key\.addr \(IPv4\): expected a string or a Uint8Array/],
    [null, TypeError, /expected a CIDR string or \{ prefixLen, addr \}, got null/],
  ])("encode(%j) throws %s", (value, type, message) => {
    expect(() => v4.encode(value as string, view(8), 0, "key")).toThrow(type);
    expect(() => v4.encode(value as string, view(8), 0, "key")).toThrow(message);
  });
});

describe("constructors", () => {
  let restore: Sys | undefined;
  afterEach(() => {
    setSys(restore);
  });

  /** A raw map over a fake descriptor; only native memory addresses and close() reach the (fake) gateway. */
  function fakeMap(spec: MapSpec): BpfMap {
    const fake = new Proxy({} as Sys, {
      get(_, name) {
        if (name === "addressOf") return () => 0x1000;
        if (name === "close") return () => 0;
        return () => {
          throw new Error(`unexpected system call ${String(name)}`);
        };
      },
    });
    restore = setSys(fake);
    return new BpfMap(new Fd(9999, `map "${spec.name ?? ""}"`), spec);
  }

  test("check the map type and the codec sizes before any system call", () => {
    using map = fakeMap({ name: "fake", type: "hash", keySize: 4, valueSize: 8, maxEntries: 1 });
    expect(() => new HashMap(map, u32, u32)).toThrow(
      new TypeError('Cannot wrap map "fake" in HashMap: the value type u32 is 4 bytes, the map\'s values are 8 bytes'),
    );
    expect(() => new ArrayMap(map, u64)).toThrow(
      new TypeError('Cannot wrap map "fake" in ArrayMap: its type is hash, expected array'),
    );
    expect(() => new PerCpuHashMap(map, u32, u64)).toThrow(/expected percpuHash or lruPercpuHash/);
    expect(() => new LpmTrieMap(map, u64)).toThrow(/expected lpmTrie/);
    expect(() => new RingBuffer(map)).toThrow(/expected ringbuf/);
    expect(new HashMap(map, u32, u64).map).toBe(map);
  });
});
