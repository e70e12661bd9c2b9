import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIPv6 } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, expectTypeOf, test, vi } from "vitest";
import { type Btf, formatIp, parseIp, readCollectionSpec } from "@dp/core";
import {
  array,
  be16,
  be32,
  be64,
  bool,
  bytes,
  type Codec,
  cstring,
  f32,
  f64,
  i16,
  i32,
  i64,
  i8,
  type Infer,
  ipv4,
  ipv4Bytes,
  ipv6,
  ipv6Bytes,
  mac,
  struct,
  type StructCodec,
  u16,
  u32,
  u64,
  u8,
  union,
  type UnionCodec,
} from "./codec.ts";
import { setCodeGeneration } from "./_codec_steps.ts";

const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const TYPED_MAPS_C = join(ROOT, "bpf/testdata/typed_maps.c");
const TYPED_MAPS_O = join(ROOT, "bpf/build/testdata/typed_maps.o");

/** The structs of bpf/testdata/typed_maps.c, field names as in C. */
function defineStructs() {
  const Nested = struct({ a: i32, b: u16 }, { name: "struct nested", size: 8 });
  return {
    PolicyKey: struct({ identity: u32, dport: be16, proto: u8, pad: u8 }, { name: "struct policy_key", size: 8 }),
    PolicyEntry: struct(
      { packets: u64, bytes: u64, action: u8, flags: array(u8, 3), proxy_port: be16 },
      { name: "struct policy_entry", size: 24 },
    ),
    Nested,
    Backend: struct(
      { addr: ipv4, port: be16, mac, u: union({ weight: u32, raw: array(u8, 4) }), addr6: ipv6, nested: Nested },
      { name: "struct backend", size: 40 },
    ),
    Counters: struct({ packets: u64, bytes: u64 }, { name: "struct counters", size: 16 }),
    OddLayout: struct(
      { a: u8, b: u64, c: u16, d: array(u32, 3), name: cstring(5) },
      { name: "struct odd_layout", size: 40 },
    ),
    PackedPair: struct({ a: u8, b: u32 }, { name: "struct packed_pair", size: 5, packed: true }),
    LpmV4Key: struct({ prefixlen: u32, addr: ipv4Bytes }, { name: "struct lpm_v4_key", size: 8 }),
    Event: struct({ seed: u32, len: u32 }, { name: "struct event", size: 8 }),
  };
}

type Structs = ReturnType<typeof defineStructs>;

function byCName(d: Structs): Record<string, StructCodec<unknown>> {
  return {
    policy_key: d.PolicyKey,
    policy_entry: d.PolicyEntry,
    nested: d.Nested,
    backend: d.Backend,
    counters: d.Counters,
    odd_layout: d.OddLayout,
    packed_pair: d.PackedPair,
    lpm_v4_key: d.LpmV4Key,
    event: d.Event,
  };
}

function interpreted<T>(define: () => T): T {
  const was = setCodeGeneration(false);
  try {
    return define();
  } finally {
    setCodeGeneration(was);
  }
}

const GENERATED = defineStructs();
const { PolicyKey, Backend } = GENERATED;
const TYPED_MAPS_STRUCTS = byCName(GENERATED);
/** The same codecs run by the step interpreter (where code generation from strings is disabled). */
const MODES: [string, Structs][] = [
  ["generated", GENERATED],
  ["interpreted", interpreted(defineStructs)],
];

/** What fill_maps writes for seed `s` (bpf/testdata/typed_maps.c). */
function filled(s: number): Record<string, unknown> {
  return {
    policy_key: { identity: s, dport: 80, proto: 6, pad: 0 },
    policy_entry: {
      packets: BigInt(s) * 1000n,
      bytes: 0x1122334455667788n,
      action: 1,
      flags: [1, 2, 3],
      proxy_port: 15001,
    },
    nested: { a: 0 - s, b: s },
    backend: {
      addr: formatIp(new Uint8Array(new Uint32Array([0x0a000001 + s]).buffer).reverse()),
      port: 8080,
      mac: `02:00:00:00:00:${s.toString(16).padStart(2, "0")}`,
      u: { weight: s, raw: [s, 0, 0, 0] },
      addr6: formatIp(Uint8Array.of(0xfd, ...new Array<number>(14).fill(0), s)),
      nested: { a: 0 - s, b: s },
    },
    counters: { packets: 1n, bytes: 64n },
    odd_layout: { a: 1, b: 2n, c: 3, d: [4, 5, 6], name: "odd" },
    packed_pair: { a: 7, b: 0x01020304 },
    lpm_v4_key: { prefixlen: 32, addr: new Uint8Array([10, 1, 2, 3]) },
    event: { seed: s, len: 64 },
  };
}

function view(n: number, fill = 0): DataView {
  return new DataView(new Uint8Array(n).fill(fill).buffer);
}

function encodeBytes<T>(c: Codec<T>, value: T, fill = 0xaa): Uint8Array {
  const v = view(c.size, fill);
  c.encode(value, v, 0);
  return new Uint8Array(v.buffer);
}

function roundTrip<T>(c: Codec<T>, value: T): T {
  // At a non-zero offset in a larger buffer, to catch offset mistakes.
  const v = view(c.size + 16, 0xaa);
  c.encode(value, v, 8);
  return c.decode(v, 8);
}

function hex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

describe("scalar codecs", () => {
  const cases: [Codec<unknown>, number, number, unknown[]][] = [
    [u8, 1, 1, [0, 1, 127, 255]],
    [i8, 1, 1, [-128, -1, 0, 127]],
    [u16, 2, 2, [0, 1, 0x1234, 65535]],
    [i16, 2, 2, [-32768, -1, 0, 32767]],
    [u32, 4, 4, [0, 1, 0x12345678, 4294967295]],
    [i32, 4, 4, [-2147483648, -1, 0, 2147483647]],
    [u64, 8, 8, [0n, 1n, 0x1122334455667788n, 2n ** 64n - 1n]],
    [i64, 8, 8, [-(2n ** 63n), -1n, 0n, 2n ** 63n - 1n]],
    [be16, 2, 2, [0, 80, 65535]],
    [be32, 4, 4, [0, 0x0a000001, 4294967295]],
    [be64, 8, 8, [0n, 0x0102030405060708n, 2n ** 64n - 1n]],
    [bool, 1, 1, [false, true]],
    [f32, 4, 4, [0, -1.5, 3.25, Infinity, -Infinity]],
    [f64, 8, 8, [0, -1.5, Math.PI, Number.MAX_VALUE, Number.MIN_VALUE]],
  ];
  for (const [c, size, align, values] of cases) {
    test(`${c.name} round-trips ${values.length} values and is ${size} bytes aligned to ${align}`, () => {
      expect([c.size, c.align]).toEqual([size, align]);
      for (const v of values) expect(roundTrip(c, v)).toEqual(v);
    });
  }

  test("f32 and f64 round-trip NaN", () => {
    expect(roundTrip(f32, NaN)).toBeNaN();
    expect(roundTrip(f64, NaN)).toBeNaN();
  });

  test("host-order codecs write little-endian bytes and be* codecs network order", () => {
    expect(hex(encodeBytes(u16, 0x1234))).toBe("3412");
    expect(hex(encodeBytes(u32, 0x12345678))).toBe("78563412");
    expect(hex(encodeBytes(u64, 0x0102030405060708n))).toBe("0807060504030201");
    expect(hex(encodeBytes(i16, -2))).toBe("feff");
    expect(hex(encodeBytes(be16, 0x1234))).toBe("1234");
    expect(hex(encodeBytes(be32, 0x0a000001))).toBe("0a000001");
    expect(hex(encodeBytes(be64, 0x0102030405060708n))).toBe("0102030405060708");
    expect(hex(encodeBytes(bool, true))).toBe("01");
  });

  test("bool decodes any non-zero byte as true", () => {
    expect(bool.decode(new DataView(new Uint8Array([0x80]).buffer), 0)).toBe(true);
  });

  const bad: [Codec<unknown>, unknown, ErrorConstructor | RangeErrorConstructor | TypeErrorConstructor, string][] = [
    [u8, 256, RangeError, "Invalid value for v (u8): 256 is outside 0..255"],
    [u8, -1, RangeError, "Invalid value for v (u8): -1 is outside 0..255"],
    [u8, 1.5, RangeError, "Invalid value for v (u8): 1.5 is not an integer"],
    [u8, NaN, RangeError, "Invalid value for v (u8): NaN is not an integer"],
    [u8, "1", TypeError, 'Invalid value for v (u8): expected a number, got string "1"'],
    [u8, undefined, TypeError, "Invalid value for v (u8): expected a number, got undefined"],
    [i8, 128, RangeError, "Invalid value for v (i8): 128 is outside -128..127"],
    [i8, -129, RangeError, "Invalid value for v (i8): -129 is outside -128..127"],
    [u16, 65536, RangeError, "Invalid value for v (u16): 65536 is outside 0..65535"],
    [i16, -32769, RangeError, "Invalid value for v (i16): -32769 is outside -32768..32767"],
    [u32, 2 ** 32, RangeError, "Invalid value for v (u32): 4294967296 is outside 0..4294967295"],
    [u32, -1, RangeError, "Invalid value for v (u32): -1 is outside 0..4294967295"],
    [u32, 1n, TypeError, "Invalid value for v (u32): expected a number, got bigint 1n"],
    [i32, 2 ** 31, RangeError, "Invalid value for v (i32): 2147483648 is outside -2147483648..2147483647"],
    [i32, Infinity, RangeError, "Invalid value for v (i32): Infinity is not an integer"],
    [be16, 70000, RangeError, "Invalid value for v (be16): 70000 is outside 0..65535"],
    [be32, 0.5, RangeError, "Invalid value for v (be32): 0.5 is not an integer"],
    [u64, 1, TypeError, "Invalid value for v (u64): expected a bigint, got number 1"],
    [u64, -1n, RangeError, "Invalid value for v (u64): -1 is outside 0..18446744073709551615"],
    [u64, 2n ** 64n, RangeError, "Invalid value for v (u64): 18446744073709551616 is outside 0..18446744073709551615"],
    [
      i64,
      2n ** 63n,
      RangeError,
      "Invalid value for v (i64): 9223372036854775808 is outside -9223372036854775808..9223372036854775807",
    ],
    [be64, null, TypeError, "Invalid value for v (be64): expected a bigint, got null"],
    [bool, 1, TypeError, "Invalid value for v (bool): expected a boolean, got number 1"],
    [f64, "1.0", TypeError, 'Invalid value for v (f64): expected a number, got string "1.0"'],
  ];
  for (const [c, value, ctor, message] of bad) {
    test(`${c.name}.encode() throws ${ctor.name} for ${typeof value === "bigint" ? `${value}n` : String(value)}`, () => {
      expect(() => c.encode(value, view(8), 0, "v")).toThrow(new ctor(message));
      expect(() => c.encode(value, view(8), 0, "v")).toThrow(ctor);
    });
  }

  test("encode() names the codec when no path is given", () => {
    expect(() => u8.encode(300, view(1), 0)).toThrow("Invalid value for u8 (u8): 300 is outside 0..255");
  });
});

describe("address codecs", () => {
  test("ipv4 round-trips dotted quads in network order", () => {
    expect(hex(encodeBytes(ipv4, "10.0.0.1"))).toBe("0a000001");
    for (const a of ["0.0.0.0", "255.255.255.255", "192.168.1.10", "10.0.0.1"]) expect(roundTrip(ipv4, a)).toBe(a);
    expect([ipv4.size, ipv4.align]).toEqual([4, 4]);
  });

  test("ipv4 rejects what is not a dotted quad with a TypeError naming the path", () => {
    for (const a of [
      "10.0.0.256",
      "10.0.0",
      "10.0.0.1.2",
      "010.0.0.1",
      "10.0.0.-1",
      "",
      " 10.0.0.1",
      "fd00::1",
      "10..0.1",
    ]) {
      expect(() => ipv4.encode(a, view(4), 0, "key.addr")).toThrow(
        new TypeError(
          `Invalid value for key.addr (ipv4): expected an IPv4 address like "10.0.0.1", got string ${JSON.stringify(a)}`,
        ),
      );
    }
    expect(() => ipv4.encode(new Uint8Array(4) as unknown as string, view(4), 0, "a")).toThrow(
      "Invalid value for a (ipv4): expected an IPv4 address string, got a Uint8Array of 4 bytes",
    );
  });

  const v6: [string, string][] = [
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["fd00::1", "fd00::1"],
    ["FD00:0000:0000:0000:0000:0000:0000:0001", "fd00::1"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"],
    ["1:0:0:2:0:0:0:3", "1:0:0:2::3"],
    ["::ffff:10.1.2.3", "::ffff:a01:203"],
    ["1:2:3:4:5:6:1.2.3.4", "1:2:3:4:5:6:102:304"],
    ["1:2:3:4:5:6:7::", "1:2:3:4:5:6:7:0"],
    ["::2:3:4:5:6:7:8", "0:2:3:4:5:6:7:8"],
  ];
  for (const [text, canonical] of v6) {
    test(`ipv6 encodes ${text} like parseIp() and decodes it as ${canonical}`, () => {
      expect(encodeBytes(ipv6, text)).toEqual(parseIp(text).bytes);
      expect(roundTrip(ipv6, text)).toBe(canonical);
    });
  }

  test("ipv6 rejects what node:net does not call IPv6", () => {
    const bad = [
      ":",
      ":::",
      "1:::2",
      "1::2::3",
      ":1::2",
      "1::2:",
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1:2:3:4:5:6:7:8::",
      "::1:2:3:4:5:6:7:8",
      "12345::",
      "g::1",
      "::1.2.3",
      "::1.2.3.4.5",
      "1:2:3:4:5:6:7:1.2.3.4",
      "::01.2.3.4",
      "10.0.0.1",
      "",
    ];
    for (const a of bad) {
      expect(isIPv6(a), a).toBe(false);
      expect(() => ipv6.encode(a, view(16), 0, "addr6"), a).toThrow(
        /^Invalid value for addr6 \(ipv6\): expected an IPv6 address like "fd00::1"/,
      );
    }
    // Zone ids are text-only: no room in 16 bytes.
    expect(() => ipv6.encode("fe80::1%eth0", view(16), 0)).toThrow(TypeError);
  });

  test("ipv6 decodes 2000 random addresses like formatIp() and parses them back", () => {
    let seed = 1;
    const next = (): number => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    for (let n = 0; n < 2000; n++) {
      const b = new Uint8Array(16);
      // Mostly zero groups, so "::" runs of every length show up.
      for (let g = 0; g < 8; g++) {
        const r = next();
        if (r % 3 !== 0) continue;
        b[g * 2] = r & 0xff;
        b[g * 2 + 1] = (r >> 8) & 0xff;
      }
      const text = ipv6.decode(new DataView(b.buffer), 0);
      expect(text).toBe(formatIp(b));
      expect(isIPv6(text)).toBe(true);
      expect(encodeBytes(ipv6, text)).toEqual(b);
    }
  });

  test("ipv4Bytes and ipv6Bytes round-trip bytes and check the length", () => {
    expect(roundTrip(ipv4Bytes, new Uint8Array([10, 0, 0, 1]))).toEqual(new Uint8Array([10, 0, 0, 1]));
    const a6 = parseIp("fd00::7").bytes;
    expect(roundTrip(ipv6Bytes, a6)).toEqual(a6);
    expect([ipv6Bytes.size, ipv6Bytes.align, ipv6.align]).toEqual([16, 4, 4]);
    expect(() => ipv4Bytes.encode(new Uint8Array(16), view(4), 0, "addr")).toThrow(
      new RangeError("Invalid value for addr (ipv4Bytes): expected 4 bytes, got 16"),
    );
    expect(() => ipv6Bytes.encode("fd00::1" as unknown as Uint8Array, view(16), 0, "addr")).toThrow(
      new TypeError('Invalid value for addr (ipv6Bytes): expected a Uint8Array, got string "fd00::1"'),
    );
  });

  test("mac round-trips and decodes lower case", () => {
    expect(hex(encodeBytes(mac, "02:00:00:AA:bb:0C"))).toBe("020000aabb0c");
    expect(roundTrip(mac, "ff:ff:ff:ff:ff:ff")).toBe("ff:ff:ff:ff:ff:ff");
    expect(roundTrip(mac, "02:00:00:AA:bb:0C")).toBe("02:00:00:aa:bb:0c");
  });

  test("mac rejects malformed text with a TypeError naming the path", () => {
    for (const a of [
      "02:00:00:aa:bb",
      "02:00:00:aa:bb:cc:dd",
      "02-00-00-aa-bb-cc",
      "2:00:00:aa:bb:cc:",
      "02:00:00:aa:bb:cg",
      "0200.00aa.bbcc...",
    ]) {
      expect(() => mac.encode(a, view(6), 0, "value.mac"), a).toThrow(
        new TypeError(
          `Invalid value for value.mac (mac): expected a MAC address like "02:00:00:aa:bb:cc", got string ${JSON.stringify(a)}`,
        ),
      );
    }
  });
});

describe("bytes() and cstring()", () => {
  test("bytes(n) round-trips n bytes, short and long, and decodes a copy", () => {
    for (const n of [0, 1, 6, 64, 65, 300]) {
      const b = Uint8Array.from({ length: n }, (_, i) => (i * 7) & 0xff);
      const c = bytes(n);
      expect(c.name).toBe(`u8[${n}]`);
      expect(roundTrip(c, b)).toEqual(b);
    }
    const v = view(4);
    const out = bytes(4).decode(v, 0);
    v.setUint8(0, 9);
    expect(out[0]).toBe(0);
  });

  test("bytes(n) rejects the wrong length and non-bytes", () => {
    expect(() => bytes(6).encode(new Uint8Array(5), view(6), 0, "k.b")).toThrow(
      new RangeError("Invalid value for k.b (u8[6]): expected 6 bytes, got 5"),
    );
    expect(() => bytes(2).encode([1, 2] as unknown as Uint8Array, view(6), 0, "k.b")).toThrow(
      new TypeError("Invalid value for k.b (u8[2]): expected a Uint8Array, got an array of 2"),
    );
  });

  test("cstring(n) pads with NULs and decodes up to the first NUL", () => {
    const c = cstring(8);
    expect(hex(encodeBytes(c, "ab"))).toBe("6162000000000000");
    expect(roundTrip(c, "")).toBe("");
    expect(roundTrip(c, "1234567")).toBe("1234567");
    expect(roundTrip(c, "héllo")).toBe("héllo");
    expect(c.decode(new DataView(new Uint8Array([0x61, 0x62, 0, 0x63, 0, 0, 0, 0]).buffer), 0)).toBe("ab");
  });

  test("cstring(n) decodes all n bytes when there is no terminator", () => {
    expect(cstring(3).decode(new DataView(new TextEncoder().encode("abc").buffer), 0)).toBe("abc");
    expect(cstring(4).decode(new DataView(new TextEncoder().encode("ñab").buffer), 0)).toBe("ñab");
  });

  test("cstring(n) rejects text that leaves no room for the terminator, NULs and non-strings", () => {
    expect(() => cstring(5).encode("toolong", view(5), 0, "value.name")).toThrow(
      new RangeError(
        'Invalid value for value.name (char[5]): "toolong" is longer than 4 bytes (room for the NUL terminator)',
      ),
    );
    expect(() => cstring(5).encode("abcde", view(5), 0, "n")).toThrow(RangeError);
    expect(() => cstring(5).encode("ééé", view(5), 0, "n")).toThrow(
      new RangeError(
        'Invalid value for n (char[5]): "ééé" is 6 bytes in UTF-8; at most 4 fit (room for the NUL terminator)',
      ),
    );
    expect(() => cstring(5).encode("a\0b", view(5), 0, "n")).toThrow(
      new RangeError('Invalid value for n (char[5]): "a\\u0000b" contains a NUL character'),
    );
    expect(() => cstring(5).encode(5 as unknown as string, view(5), 0, "n")).toThrow(
      new TypeError("Invalid value for n (char[5]): expected a string, got number 5"),
    );
  });

  test("bytes() and cstring() reject bad lengths when defined", () => {
    expect(() => bytes(-1)).toThrow(RangeError);
    expect(() => bytes(1.5)).toThrow(RangeError);
    expect(() => cstring(0)).toThrow("Invalid cstring length: expected an integer of at least 1, got number 0");
    expect(() => array(u8, -1)).toThrow(RangeError);
  });
});

// Structs and arrays run as generated code or through the step interpreter:
// both must behave the same.
for (const [mode, d] of MODES) {
  describe(`${mode} layouts`, () => {
    const { PolicyKey, PolicyEntry, Nested, Backend, OddLayout, PackedPair } = d;
    const TYPED_MAPS_STRUCTS = byCName(d);
    let saved = true;
    beforeAll(() => {
      saved = setCodeGeneration(mode === "generated");
    });
    afterAll(() => {
      setCodeGeneration(saved);
    });

    describe("array()", () => {
      test("array() of leaves round-trips and takes the element's alignment", () => {
        const a = array(u32, 3);
        expect([a.name, a.size, a.align, a.length, a.element]).toEqual(["u32[3]", 12, 4, 3, u32]);
        expect(roundTrip(a, [1, 2, 0xffffffff])).toEqual([1, 2, 0xffffffff]);
        expect(roundTrip(array(ipv4, 2), ["10.0.0.1", "10.0.0.2"])).toEqual(["10.0.0.1", "10.0.0.2"]);
        expect(roundTrip(array(cstring(4), 2), ["ab", "cde"])).toEqual(["ab", "cde"]);
      });

      test("array() of structs and of arrays round-trips", () => {
        const pairs = array(Nested, 2);
        expect([pairs.size, pairs.align]).toEqual([16, 4]);
        const v = [
          { a: -1, b: 2 },
          { a: 3, b: 4 },
        ];
        expect(roundTrip(pairs, v)).toEqual(v);
        const grid = array(array(u16, 2), 3);
        expect(grid.size).toBe(12);
        expect(
          roundTrip(grid, [
            [1, 2],
            [3, 4],
            [5, 6],
          ]),
        ).toEqual([
          [1, 2],
          [3, 4],
          [5, 6],
        ]);
      });

      test("array() errors name the element path", () => {
        expect(() => array(u8, 3).encode([1, 2, 300], view(3), 0, "value.flags")).toThrow(
          new RangeError("Invalid value for value.flags[2] (u8): 300 is outside 0..255"),
        );
        expect(() =>
          array(Nested, 2).encode(
            [
              { a: 1, b: 2 },
              { a: 1, b: -2 },
            ],
            view(16),
            0,
            "v",
          ),
        ).toThrow(new RangeError("Invalid value for v[1].b (u16): -2 is outside 0..65535"));
        expect(() => array(Nested, 2).encode([{ a: 1, b: 2 }], view(16), 0, "v")).toThrow(
          new RangeError("Invalid value for v (struct nested[2]): expected 2 elements, got 1"),
        );
        expect(() => array(u8, 2).encode("ab" as unknown as number[], view(2), 0, "v")).toThrow(
          new TypeError('Invalid value for v (u8[2]): expected an array of 2, got string "ab"'),
        );
        expect(() => array(array(u8, 2), 2).encode([[1, 2], [3]], view(4), 0, "v")).toThrow(
          new RangeError("Invalid value for v[1] (u8): expected 2 elements, got 1"),
        );
      });
    });

    describe("struct()", () => {
      test("struct() lays out typed_maps.c's structs with C padding and alignment", () => {
        const layouts = Object.fromEntries(
          Object.entries(TYPED_MAPS_STRUCTS).map(([name, c]) => [
            name,
            [c.size, c.align, Object.fromEntries(c.fields.map((f) => [f.name, f.offset]))],
          ]),
        );
        expect(layouts).toEqual({
          policy_key: [8, 4, { identity: 0, dport: 4, proto: 6, pad: 7 }],
          policy_entry: [24, 8, { packets: 0, bytes: 8, action: 16, flags: 17, proxy_port: 20 }],
          nested: [8, 4, { a: 0, b: 4 }],
          backend: [40, 4, { addr: 0, port: 4, mac: 6, u: 12, addr6: 16, nested: 32 }],
          counters: [16, 8, { packets: 0, bytes: 8 }],
          odd_layout: [40, 8, { a: 0, b: 8, c: 16, d: 20, name: 32 }],
          packed_pair: [5, 1, { a: 0, b: 1 }],
          lpm_v4_key: [8, 4, { prefixlen: 0, addr: 4 }],
          event: [8, 4, { seed: 0, len: 4 }],
        });
        expect(OddLayout.offsetOf("name")).toBe(32);
        expect(() => OddLayout.offsetOf("nope" as "name")).toThrow(
          new TypeError('Cannot find field "nope" in struct odd_layout: it has a, b, c, d, name'),
        );
      });

      test("struct() round-trips every typed_maps.c struct", () => {
        for (const s of [0, 5, 255]) {
          const values = filled(s);
          for (const [name, c] of Object.entries(TYPED_MAPS_STRUCTS)) {
            let expected = values[name];
            if (name === "backend") {
              // A decoded union carries every member; an encoded one sets one.
              const b = expected as { u: { weight: number; raw: number[] } };
              const encoded = { ...b, u: { weight: b.u.weight } };
              expect(roundTrip(c, encoded), `${name} ${s}`).toEqual(expected);
              continue;
            }
            expected = values[name];
            expect(roundTrip(c, expected), `${name} ${s}`).toEqual(expected);
          }
        }
      });

      test("struct() writes padding as zeros over a dirty buffer", () => {
        const b = encodeBytes(OddLayout, { a: 1, b: 2n, c: 3, d: [4, 5, 6], name: "odd" }, 0xff);
        expect(hex(b)).toBe(
          [
            "01" + "00".repeat(7), // a, padding
            "0200000000000000", // b
            "0300" + "0000", // c, padding
            "040000000500000006000000", // d
            "6f64640000", // name
            "000000", // tail padding
          ].join(""),
        );
        expect(hex(encodeBytes(PackedPair, { a: 7, b: 0x01020304 }, 0xff))).toBe("0704030201");
      });

      test("struct() errors name the field path, nested and in arrays", () => {
        const good = { ...(filled(1)["backend"] as Infer<typeof Backend>), u: { weight: 1 } };
        const cases: [unknown, ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, string][] = [
          [{ ...good, port: 70000 }, RangeError, "Invalid value for value.port (be16): 70000 is outside 0..65535"],
          [
            { ...good, addr: "10.0.0.300" },
            TypeError,
            'Invalid value for value.addr (ipv4): expected an IPv4 address like "10.0.0.1", got string "10.0.0.300"',
          ],
          [
            { ...good, mac: "02:00:00:00:00" },
            TypeError,
            'Invalid value for value.mac (mac): expected a MAC address like "02:00:00:aa:bb:cc", got string "02:00:00:00:00"',
          ],
          [
            { ...good, nested: { a: 2 ** 31, b: 0 } },
            RangeError,
            "Invalid value for value.nested.a (i32): 2147483648 is outside -2147483648..2147483647",
          ],
          [
            { ...good, nested: { a: 1 } },
            TypeError,
            "Invalid value for value.nested.b (u16): expected a number, got undefined",
          ],
          [
            { ...good, nested: 5 },
            TypeError,
            "Invalid value for value.nested (struct nested): expected an object, got number 5",
          ],
          [
            { ...good, u: { weight: -1 } },
            RangeError,
            "Invalid value for value.u.weight (u32): -1 is outside 0..4294967295",
          ],
          [
            { ...good, u: { raw: [1, 2, 3, 256] } },
            RangeError,
            "Invalid value for value.u.raw[3] (u8): 256 is outside 0..255",
          ],
          [
            { ...good, u: {} },
            TypeError,
            "Invalid value for value.u (union): expected exactly one member of weight, raw, got none",
          ],
          [
            { ...good, u: { weight: 1, raw: [1, 0, 0, 0] } },
            TypeError,
            'Invalid value for value.u (union): expected exactly one member, got "weight" and "raw"',
          ],
          [
            { ...good, u: undefined },
            TypeError,
            "Invalid value for value.u (union): expected an object, got undefined",
          ],
          [null, TypeError, "Invalid value for value (struct backend): expected an object, got null"],
          ["x", TypeError, 'Invalid value for value (struct backend): expected an object, got string "x"'],
        ];
        for (const [value, ctor, message] of cases) {
          expect(() => Backend.encode(value as Infer<typeof Backend>, view(40), 0, "value"), message).toThrow(
            new ctor(message),
          );
        }
        expect(() =>
          PolicyEntry.encode(
            { ...(filled(1)["policy_entry"] as Infer<typeof PolicyEntry>), flags: [1, 2] },
            view(24),
            0,
            "value",
          ),
        ).toThrow(new RangeError("Invalid value for value.flags (u8): expected 3 elements, got 2"));
        expect(() =>
          PolicyEntry.encode(
            { ...(filled(1)["policy_entry"] as Infer<typeof PolicyEntry>), packets: 1 as unknown as bigint },
            view(24),
            0,
          ),
        ).toThrow(
          new TypeError("Invalid value for struct policy_entry.packets (u64): expected a bigint, got number 1"),
        );
      });

      test("struct() paths of nested arrays of structs and unions", () => {
        const S = struct({ items: array(struct({ u: union({ x: u8, y: u16 }) }), 2) });
        expect(S.size).toBe(4);
        expect(roundTrip(S, { items: [{ u: { x: 1 } }, { u: { y: 0x0203 } }] })).toEqual({
          items: [{ u: { x: 1, y: 1 } }, { u: { x: 3, y: 0x0203 } }],
        });
        expect(() => S.encode({ items: [{ u: { x: 1 } }, { u: { y: -1 } }] }, view(4), 0, "k")).toThrow(
          "Invalid value for k.items[1].u.y (u16): -1 is outside 0..65535",
        );
        // The same codec called with another path names that one.
        expect(() => S.encode({ items: [{ u: { x: 1 } }, { u: { y: -1 } }] }, view(4), 0, "v")).toThrow(
          "Invalid value for v.items[1].u.y (u16): -1 is outside 0..65535",
        );
        expect(() =>
          S.encode({ items: [{ u: { x: 1 } }, 7 as unknown as { u: { x: number } }] }, view(4), 0, "k"),
        ).toThrow("Invalid value for k.items[1] (struct): expected an object, got number 7");
      });

      test("struct() embeds codecs written by users and passes them the path", () => {
        const seen: (string | undefined)[] = [];
        const port: Codec<string> = {
          name: "port",
          size: 2,
          align: 2,
          encode(value, v, offset, path) {
            seen.push(path);
            v.setUint16(offset, Number(value), false);
          },
          decode(v, offset) {
            return String(v.getUint16(offset, false));
          },
        };
        const S = struct({ a: u8, p: port, q: array(port, 2) });
        expect([S.size, S.offsetOf("p"), S.offsetOf("q")]).toEqual([8, 2, 4]);
        expect(roundTrip(S, { a: 1, p: "80", q: ["1", "2"] })).toEqual({ a: 1, p: "80", q: ["1", "2"] });
        S.encode({ a: 1, p: "80", q: ["1", "2"] }, view(8), 0, "key");
        expect(seen).toEqual(["struct.p", "struct.q[0]", "struct.q[1]", "key.p", "key.q[0]", "key.q[1]"]);
      });

      test("struct() with packed: true has no padding and alignment 1, also when nested", () => {
        const P = struct({ a: u8, b: u64, c: u16 }, { packed: true });
        expect([P.size, P.align, P.offsetOf("b"), P.offsetOf("c")]).toEqual([11, 1, 1, 9]);
        const Outer = struct({ x: u8, p: P, y: u32 });
        expect([Outer.size, Outer.align, Outer.offsetOf("p"), Outer.offsetOf("y")]).toEqual([16, 4, 1, 12]);
        const v = { x: 1, p: { a: 2, b: 3n, c: 4 }, y: 5 };
        expect(roundTrip(Outer, v)).toEqual(v);
      });

      test("struct() with offsets pins fields and continues after them", () => {
        const S = struct({ a: u8, b: u32, c: u8 }, { offsets: { b: 2 }, size: 12 });
        expect([S.offsetOf("a"), S.offsetOf("b"), S.offsetOf("c"), S.size, S.align]).toEqual([0, 2, 6, 12, 4]);
        const v = { a: 1, b: 0xdeadbeef, c: 3 };
        expect(hex(encodeBytes(S, v, 0xff))).toBe("0100efbeadde030000000000");
        expect(roundTrip(S, v)).toEqual(v);
        expect(struct({ a: u8, b: u8 }, { offsets: { b: 4 } }).size).toBe(5);
      });

      test("struct() rejects overlapping, out-of-bounds and unknown offsets", () => {
        expect(() => struct({ a: u32, b: u8 }, { name: "struct s", offsets: { b: 3 } })).toThrow(
          new RangeError("Invalid struct s: b at offset 3 overlaps a (u32 at 0..4)"),
        );
        expect(() => struct({ a: u32, b: u32 }, { name: "struct s", offsets: { b: 8 }, size: 10 })).toThrow(
          new RangeError(
            "Invalid struct s: size 10 was given but the fields end at 12 (size 12, align 4: a u32 @0, b u32 @8)",
          ),
        );
        expect(() => struct({ a: u32 }, { name: "struct s", offsets: { b: 8 } as { a?: number } })).toThrow(
          new TypeError('Invalid struct s: offsets names "b", which is not a field'),
        );
        expect(() => struct({ a: u32 }, { name: "struct s", offsets: { a: -1 } })).toThrow(
          new TypeError("Invalid struct s: the offset of a must be a non-negative integer, got number -1"),
        );
      });

      test("struct() rejects a size that does not match the computed layout, naming the layout", () => {
        expect(() => struct({ identity: u32, dport: be16, proto: u8 }, { name: "struct policy_key", size: 7 })).toThrow(
          new RangeError(
            "Invalid struct policy_key: size 7 was given but the computed layout differs (size 8, align 4: identity u32 @0, dport be16 @4, proto u8 @6)",
          ),
        );
        expect(() => struct({ a: u8, b: u32 }, { size: 5 })).toThrow(RangeError);
        expect(() => struct({ a: u8, b: u32 }, { size: -5 })).toThrow(
          new TypeError("Invalid struct: size must be a non-negative integer, got number -5"),
        );
      });

      test("struct() rejects fields that are not codecs and names that are not identifiers", () => {
        expect(() => struct({ a: u8, b: 5 as unknown as Codec<number> }, { name: "struct s" })).toThrow(
          new TypeError(
            'Invalid struct s: field "b" is not a codec (expected name, size, a power-of-two align, encode and decode)',
          ),
        );
        const odd: Codec<number> = {
          name: "odd",
          size: 3,
          align: 3,
          encode: u8.encode.bind(u8),
          decode: u8.decode.bind(u8),
        };
        expect(() => struct({ a: odd })).toThrow(TypeError);
        expect(() => struct({ "1": u8 })).toThrow(new TypeError('Invalid struct: field name "1" is not an identifier'));
        expect(() => struct({ "a-b": u8 })).toThrow(TypeError);
        expect(() => struct([u8] as unknown as Record<string, Codec<number>>)).toThrow(TypeError);
      });

      test("struct() exposes frozen fields and an empty struct has size 0", () => {
        expect(PolicyKey.fields.map((f) => [f.name, f.offset, f.codec])).toEqual([
          ["identity", 0, u32],
          ["dport", 4, be16],
          ["proto", 6, u8],
          ["pad", 7, u8],
        ]);
        expect(Object.isFrozen(PolicyKey.fields)).toBe(true);
        expect(Object.isFrozen(PolicyKey)).toBe(true);
        const E = struct({});
        expect([E.size, E.align]).toEqual([0, 1]);
        expect(roundTrip(E, {})).toEqual({});
      });

      test("struct codecs check the view bounds", () => {
        expect(() => PolicyKey.encode({ identity: 1, dport: 2, proto: 3, pad: 0 }, view(10), 4, "key")).toThrow(
          new RangeError(
            "Cannot encode struct policy_key at offset 4: the view has 10 bytes and struct policy_key needs 8",
          ),
        );
        expect(() => PolicyKey.decode(view(8), 1)).toThrow(RangeError);
        expect(() => array(u8, 4).decode(view(3), 0)).toThrow(RangeError);
        expect(() => union({ a: u32 }).decode(view(3), 0)).toThrow(RangeError);
      });

      test("decoded structs of one codec share property order", () => {
        const a = roundTrip(Backend, { ...(filled(1)["backend"] as Infer<typeof Backend>), u: { weight: 1 } });
        expect(Object.keys(a)).toEqual(["addr", "port", "mac", "u", "addr6", "nested"]);
        expect(Object.keys(a.nested)).toEqual(["a", "b"]);
      });
    });

    describe("union()", () => {
      test("union() is as large and aligned as its largest member and zeros the rest", () => {
        const U = union({ a: u8, b: u64, c: array(u8, 12) }, { name: "union u", size: 16 });
        expect([U.name, U.size, U.align]).toEqual(["union u", 16, 8]);
        expect(U.fields.map((f) => f.offset)).toEqual([0, 0, 0]);
        expect(hex(encodeBytes(U, { a: 0x7f }, 0xff))).toBe(`7f${"00".repeat(15)}`);
        expect(
          U.decode(new DataView(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]).buffer), 0),
        ).toEqual({
          a: 1,
          b: 0x0807060504030201n,
          c: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12],
        });
        expect(() => union({ a: u8, b: u32 }, { name: "union v", size: 5 })).toThrow(
          new RangeError(
            "Invalid union v: size 5 was given but the computed layout differs (size 4, align 4: a u8 @0, b u32 @0)",
          ),
        );
      });

      test("union() rejects zero members, two members and non-objects", () => {
        const U = union({ weight: u32, raw: array(u8, 4) });
        expect(() => U.encode({} as Infer<typeof U>, view(4), 0, "u")).toThrow(
          new TypeError("Invalid value for u (union): expected exactly one member of weight, raw, got none"),
        );
        expect(() => U.encode({ weight: 1, raw: [1, 2, 3, 4] } as unknown as Infer<typeof U>, view(4), 0, "u")).toThrow(
          new TypeError('Invalid value for u (union): expected exactly one member, got "weight" and "raw"'),
        );
        expect(() => U.encode(7 as unknown as Infer<typeof U>, view(4), 0)).toThrow(
          new TypeError("Invalid value for union (union): expected an object, got number 7"),
        );
        expect(roundTrip(U, { weight: 5, raw: undefined })).toEqual({ weight: 5, raw: [5, 0, 0, 0] });
      });
    });
  });
}

describe("code generation", () => {
  const define = (): StructCodec<{ a: number; b: { c: bigint } }> => struct({ a: u16, b: struct({ c: i64 }) });

  test("struct() generates code for a layout unless code generation is off", () => {
    const spy = vi.spyOn(globalThis, "Function");
    try {
      define();
      expect(spy).toHaveBeenCalledTimes(4); // encode and decode of the inner and the outer struct
      spy.mockClear();
      interpreted(define);
      expect(spy).not.toHaveBeenCalled();
    } finally {
      spy.mockRestore();
    }
  });

  test("struct() interprets very long layouts", () => {
    const spy = vi.spyOn(globalThis, "Function");
    try {
      const Long = struct({ items: array(struct({ a: u8, b: u32 }), 600) });
      expect(spy).toHaveBeenCalledTimes(2); // only the element struct
      const items = Array.from({ length: 600 }, (_, i) => ({ a: i & 0xff, b: i * 1000 }));
      expect(roundTrip(Long, { items })).toEqual({ items });
      items[599] = { a: 1, b: -1 };
      expect(() => Long.encode({ items }, view(Long.size), 0, "v")).toThrow(
        "Invalid value for v.items[599].b (u32): -1 is outside 0..4294967295",
      );
    } finally {
      spy.mockRestore();
    }
  });

  test("struct() falls back to the interpreter when code generation from strings is disallowed", () => {
    const spy = vi.spyOn(globalThis, "Function").mockImplementation(function () {
      throw new EvalError("Code generation from strings disallowed for this context");
    });
    try {
      const S = define();
      expect(roundTrip(S, { a: 1, b: { c: -2n } })).toEqual({ a: 1, b: { c: -2n } });
      define();
      expect(spy).toHaveBeenCalledTimes(1);
    } finally {
      spy.mockRestore();
      setCodeGeneration(true);
    }
  });
});

describe("inferred value types", () => {
  test("Infer<> gives the value type of scalars, arrays, structs and unions", () => {
    expectTypeOf<Infer<typeof u8>>().toEqualTypeOf<number>();
    expectTypeOf<Infer<typeof u64>>().toEqualTypeOf<bigint>();
    expectTypeOf<Infer<typeof bool>>().toEqualTypeOf<boolean>();
    expectTypeOf<Infer<typeof ipv6>>().toEqualTypeOf<string>();
    expectTypeOf<Infer<typeof ipv6Bytes>>().toEqualTypeOf<Uint8Array>();
    expectTypeOf<Infer<ReturnType<typeof cstring>>>().toEqualTypeOf<string>();
    expectTypeOf<Infer<typeof PolicyKey>>().toEqualTypeOf<{
      identity: number;
      dport: number;
      proto: number;
      pad: number;
    }>();
    expectTypeOf<Infer<typeof GENERATED.PolicyEntry>>().toEqualTypeOf<{
      packets: bigint;
      bytes: bigint;
      action: number;
      flags: number[];
      proxy_port: number;
    }>();
    expectTypeOf<Infer<typeof Backend>>().toEqualTypeOf<{
      addr: string;
      port: number;
      mac: string;
      u: { weight: number; raw?: undefined } | { raw: number[]; weight?: undefined };
      addr6: string;
      nested: { a: number; b: number };
    }>();
    expectTypeOf<Infer<ReturnType<typeof array<{ a: number }>>>>().toEqualTypeOf<{ a: number }[]>();
    expectTypeOf(Backend).toExtend<StructCodec<Infer<typeof Backend>>>();
    expectTypeOf(union({ x: u8 })).toExtend<UnionCodec<{ x: number }>>();
    expectTypeOf<Parameters<typeof PolicyKey.offsetOf>[0]>().toEqualTypeOf<"identity" | "dport" | "proto" | "pad">();
    expectTypeOf(struct).parameter(1).exclude<undefined>().toHaveProperty("offsets");
  });

  test("encode() takes the inferred type", () => {
    // @ts-expect-error dport is a number
    expect(() => PolicyKey.encode({ identity: 1, dport: "80", proto: 6, pad: 0 }, view(8), 0)).toThrow(TypeError);
    const U = union({ weight: u32, raw: array(u8, 4) });
    // @ts-expect-error not both members
    expect(() => U.encode({ weight: 1, raw: [0, 0, 0, 0] }, view(4), 0)).toThrow(TypeError);
  });
});

// --- layouts against C ------------------------------------------------------------

function btfOf(): Btf {
  const btf = readCollectionSpec(TYPED_MAPS_O).btf;
  if (btf === undefined) throw new Error(`${TYPED_MAPS_O} has no BTF`);
  return btf;
}

/** Compares a codec with a BTF type recursively: sizes, and member names and offsets of structs and unions. */
function expectMatchesBtf(btf: Btf, codec: Codec<unknown>, typeId: number, where: string): void {
  const t = btf.resolve(typeId);
  expect(codec.size, `${where}: size`).toBe(btf.sizeOf(typeId));
  if (t.kind !== "struct" && t.kind !== "union") {
    expect(["int", "array", "enum"], `${where}: kind`).toContain(t.kind);
    return;
  }
  const fields = (codec as StructCodec<unknown> | UnionCodec<unknown>).fields;
  expect(fields, `${where}: ${codec.name} is a ${t.kind}`).toBeDefined();
  expect(
    fields.map((f) => [f.name, f.offset]),
    where,
  ).toEqual(t.members.map((m) => [m.name, m.bitOffset / 8]));
  t.members.forEach((m, i) =>
    expectMatchesBtf(btf, (fields[i] as { codec: Codec<unknown> }).codec, m.typeId, `${where}.${m.name}`),
  );
}

/** The struct definitions of typed_maps.c, by name. */
function structSources(): Map<string, string> {
  const text = readFileSync(TYPED_MAPS_C, "utf8");
  const out = new Map<string, string>();
  for (const name of Object.keys(TYPED_MAPS_STRUCTS)) {
    const m = new RegExp(`^struct ${name} \\{[\\s\\S]*?^\\}[^;]*;`, "m").exec(text);
    if (m === null) throw new Error(`typed_maps.c has no struct ${name}`);
    out.set(name, m[0]);
  }
  return out;
}

/** C member designators of every field, nested ones included: "nested.b", "u.raw". */
function designators(codec: Codec<unknown>, prefix = ""): [string, number][] {
  const fields = (codec as Partial<StructCodec<unknown>>).fields;
  if (fields === undefined) return [];
  return fields.flatMap((f) => [
    [`${prefix}${f.name}`, f.offset] as [string, number],
    ...designators(f.codec, `${prefix}${f.name}.`).map(([d, o]) => [d, f.offset + o] as [string, number]),
  ]);
}

function hostCompiler(): string | undefined {
  for (const cc of ["clang-19", "cc"]) {
    if (spawnSync(cc, ["--version"], { stdio: "ignore" }).status === 0) return cc;
  }
  return undefined;
}

const CC = hostCompiler();

/** Code that fills each struct like fill_maps does for seed `s`, over memset-zeroed storage. */
const FILL_C = `
	x.policy_key.identity = s; x.policy_key.dport = htons(80); x.policy_key.proto = 6;
	x.policy_entry.packets = (__u64)s * 1000; x.policy_entry.bytes = 0x1122334455667788ULL; x.policy_entry.action = 1;
	x.policy_entry.flags[0] = 1; x.policy_entry.flags[1] = 2; x.policy_entry.flags[2] = 3; x.policy_entry.proxy_port = htons(15001);
	x.nested.a = -(__s32)s; x.nested.b = (__u16)s;
	x.backend.addr = htonl(0x0a000001 + s); x.backend.port = htons(8080);
	x.backend.mac[0] = 2; x.backend.mac[5] = (__u8)s; x.backend.u.weight = s;
	x.backend.addr6[0] = 0xfd; x.backend.addr6[15] = (__u8)s;
	x.backend.nested.a = -(__s32)s; x.backend.nested.b = (__u16)s;
	x.counters.packets = 1; x.counters.bytes = 64;
	x.odd_layout.a = 1; x.odd_layout.b = 2; x.odd_layout.c = 3;
	x.odd_layout.d[0] = 4; x.odd_layout.d[1] = 5; x.odd_layout.d[2] = 6; memcpy(x.odd_layout.name, "odd", 4);
	x.packed_pair.a = 7; x.packed_pair.b = 0x01020304;
	x.lpm_v4_key.prefixlen = 32; x.lpm_v4_key.addr[0] = 10; x.lpm_v4_key.addr[1] = 1; x.lpm_v4_key.addr[2] = 2; x.lpm_v4_key.addr[3] = 3;
	x.event.seed = s; x.event.len = 64;
`;

interface HostLayout {
  size: number;
  align: number;
  offsets: Record<string, number>;
  bytes: string;
}

/** Compiles and runs a host program that prints sizeof, _Alignof, offsetof and filled bytes of each struct as JSON. */
function hostLayouts(cc: string, seed: number): Record<string, HostLayout> {
  const names = Object.keys(TYPED_MAPS_STRUCTS);
  const sources = structSources();
  const lines: string[] = [];
  names.forEach((name, i) => {
    const c = TYPED_MAPS_STRUCTS[name] as StructCodec<unknown>;
    lines.push(
      `\tprintf("%s\\"${name}\\": {\\"size\\": %zu, \\"align\\": %zu, \\"offsets\\": {", ${i ? '", "' : '""'}, sizeof(struct ${name}), _Alignof(struct ${name}));`,
    );
    designators(c).forEach(([d], j) =>
      lines.push(`\tprintf("%s\\"${d}\\": %zu", ${j ? '", "' : '""'}, offsetof(struct ${name}, ${d}));`),
    );
    lines.push(`\tprintf("}, \\"bytes\\": \\"");\n\thex(&x.${name}, sizeof(x.${name}));\n\tprintf("\\"}");`);
  });
  const program = [
    "#include <arpa/inet.h>",
    "#include <linux/types.h>",
    "#include <stddef.h>",
    "#include <stdio.h>",
    "#include <stdlib.h>",
    "#include <string.h>",
    ...names.map((n) => sources.get(n) as string),
    'static void hex(const void *p, size_t n) { for (size_t i = 0; i < n; i++) printf("%02x", ((const unsigned char *)p)[i]); }',
    `int main(int argc, char **argv) {`,
    `\t__u32 s = (__u32)strtoul(argv[argc - 1], NULL, 10);`,
    `\tstruct { ${names.map((n) => `struct ${n} ${n};`).join(" ")} } x;`,
    "\tmemset(&x, 0, sizeof(x));",
    FILL_C,
    '\tprintf("{");',
    ...lines,
    '\tprintf("}\\n");',
    "\treturn 0;",
    "}",
  ].join("\n");
  const dir = mkdtempSync(join(tmpdir(), "dp-maps-layout-"));
  try {
    writeFileSync(join(dir, "layout.c"), program);
    execFileSync(cc, ["-std=gnu11", "-Wall", "-Werror", "-o", join(dir, "layout"), join(dir, "layout.c")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    return JSON.parse(execFileSync(join(dir, "layout"), [String(seed)], { encoding: "utf8" })) as Record<
      string,
      HostLayout
    >;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("layouts against C", () => {
  test("struct codecs match the BTF of typed_maps.o: sizes, member names and offsets, recursively", () => {
    const btf = btfOf();
    const missing: string[] = [];
    for (const [name, codec] of Object.entries(TYPED_MAPS_STRUCTS)) {
      const types = btf.typesByName(name, "struct");
      if (types.length === 0) {
        missing.push(name);
        continue;
      }
      expect(types, name).toHaveLength(1);
      expectMatchesBtf(btf, codec, (types[0] as { id: number }).id, name);
    }
    // struct event is only the type of a local pointer (into the ring buffer), which clang leaves out of BTF.
    expect(missing).toEqual(["event"]);
  });

  test.skipIf(CC === undefined)("struct codecs match sizeof, _Alignof and offsetof of a host C program", () => {
    const host = hostLayouts(CC as string, 5);
    for (const [name, codec] of Object.entries(TYPED_MAPS_STRUCTS)) {
      const h = host[name] as HostLayout;
      expect({ size: codec.size, align: codec.align }, name).toEqual({ size: h.size, align: h.align });
      expect(Object.fromEntries(designators(codec)), name).toEqual(h.offsets);
    }
    expect(Object.keys(host["backend"]?.offsets ?? {})).toEqual([
      "addr",
      "port",
      "mac",
      "u",
      "u.weight",
      "u.raw",
      "addr6",
      "nested",
      "nested.a",
      "nested.b",
    ]);
  });

  test.skipIf(CC === undefined)("struct codecs decode C-filled structs and encode the same bytes", () => {
    for (const seed of [5, 200]) {
      const host = hostLayouts(CC as string, seed);
      const values = filled(seed);
      for (const [name, codec] of MODES.flatMap(([, d]) => Object.entries(byCName(d)))) {
        const cBytes = Uint8Array.from((host[name]?.bytes.match(/../g) ?? []).map((b) => parseInt(b, 16)));
        expect(codec.decode(new DataView(cBytes.buffer), 0), `${name} ${seed}`).toEqual(values[name]);
        const value = name === "backend" ? { ...(values[name] as object), u: { weight: seed } } : values[name];
        expect(hex(encodeBytes(codec, value, 0xee)), `${name} ${seed}`).toBe(hex(cBytes));
      }
    }
  });
});
