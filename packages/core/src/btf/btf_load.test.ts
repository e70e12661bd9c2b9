import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { type Btf, type BtfType, buildBtf, encodeBtf, parseBtf } from "./btf.ts";
import { type BtfFeatures, fixupDatasecs, sanitizeBtf } from "./btf_load.ts";
import { btfKindsObject, HAS_CLANG, readObjectFile, ROOT } from "./_test_btf.ts";

const ALL: BtfFeatures = {
  func: true,
  funcGlobal: true,
  datasec: true,
  float: true,
  declTag: true,
  typeTag: true,
  enum64: true,
};
const NONE: BtfFeatures = {
  func: false,
  funcGlobal: false,
  datasec: false,
  float: false,
  declTag: false,
  typeTag: false,
  enum64: false,
};
const INT = {
  kind: "int",
  id: 1,
  name: "int",
  size: 4,
  signed: true,
  char: false,
  bool: false,
  bitOffset: 0,
  bits: 32,
} as const;
const BYTE = { kind: "int", size: 1, signed: false, char: false, bool: false, bitOffset: 0, bits: 8 } as const;

/** One type of every kind a kernel may lack. */
const sample: Btf = buildBtf([
  INT,
  { kind: "var", id: 2, name: "counter", typeId: 1, linkage: "global" },
  { kind: "datasec", id: 3, name: ".data.hot", size: 8, vars: [{ typeId: 2, offset: 4, size: 4 }] },
  { kind: "declTag", id: 4, name: "tag", typeId: 2, componentIndex: -1, attribute: false },
  {
    kind: "funcProto",
    id: 5,
    name: "",
    returnTypeId: 1,
    params: [
      { name: "x", typeId: 1 },
      { name: "", typeId: 1 },
    ],
  },
  { kind: "func", id: 6, name: "global_fn", typeId: 5, linkage: "global" },
  { kind: "float", id: 7, name: "double", size: 8 },
  { kind: "typeTag", id: 8, name: "user", typeId: 1, attribute: false },
  { kind: "enum", id: 9, name: "neg", size: 4, signed: true, values: [{ name: "MINUS", value: -1 }] },
  {
    kind: "enum64",
    id: 10,
    name: "big",
    size: 8,
    signed: false,
    values: [
      { name: "HUGE", value: 1n << 40n },
      { name: "ONE", value: 1n },
    ],
  },
]);

describe("sanitizeBtf()", () => {
  test("returns the same BTF when the kernel has every feature", () => {
    expect(sanitizeBtf(sample, ALL)).toBe(sample);
  });

  const cases: [keyof BtfFeatures, [number, BtfType][]][] = [
    [
      "datasec",
      [
        [2, { ...BYTE, id: 2, name: "counter" }],
        [
          3,
          {
            kind: "struct",
            id: 3,
            name: "_data_hot",
            size: 8,
            kindFlag: false,
            members: [{ name: "counter", typeId: 2, bitOffset: 32, bitSize: 0 }],
          },
        ],
      ],
    ],
    ["declTag", [[4, { ...BYTE, id: 4, name: "tag" }]]],
    [
      "func",
      [
        [
          5,
          {
            kind: "enum",
            id: 5,
            name: "",
            size: 4,
            signed: false,
            values: [
              { name: "x", value: 1 },
              { name: "arg1", value: 1 },
            ],
          },
        ],
        [6, { kind: "typedef", id: 6, name: "global_fn", typeId: 5 }],
      ],
    ],
    ["funcGlobal", [[6, { kind: "func", id: 6, name: "global_fn", typeId: 5, linkage: "static" }]]],
    ["float", [[7, { kind: "struct", id: 7, name: "", size: 8, kindFlag: false, members: [] }]]],
    ["typeTag", [[8, { kind: "const", id: 8, name: "", typeId: 1 }]]],
    [
      "enum64",
      [
        [
          9,
          { kind: "enum", id: 9, name: "neg", size: 4, signed: false, values: [{ name: "MINUS", value: 0xffff_ffff }] },
        ],
        [
          10,
          {
            kind: "union",
            id: 10,
            name: "big",
            size: 8,
            kindFlag: false,
            members: [
              { name: "HUGE", typeId: 11, bitOffset: 0, bitSize: 0 },
              { name: "ONE", typeId: 11, bitOffset: 0, bitSize: 0 },
            ],
          },
        ],
        [11, { ...BYTE, id: 11, name: "enum64_placeholder" }],
      ],
    ],
  ];

  test.each(cases)("rewrites the types a kernel without %s rejects, keeping every id", (feature, expected) => {
    const out = sanitizeBtf(sample, { ...ALL, [feature]: false });
    const changed = new Map(expected);
    for (let id = 1; id < out.typeCount; id++) {
      expect(out.typeById(id), `type ${id}`).toEqual(changed.get(id) ?? sample.typeById(id));
    }
    // The result still encodes and parses.
    expect(parseBtf(encodeBtf(out)).types).toEqual(out.types);
  });

  test.skipIf(!HAS_CLANG)("leaves only pre-5.0 kinds in btf_kinds.o with every feature off", () => {
    const obj = readObjectFile(btfKindsObject());
    const btf = fixupDatasecs(parseBtf(obj.btf), obj.layouts);
    const out = sanitizeBtf(btf, NONE);
    expect(out.typeCount).toBe(btf.typeCount + 1);
    const old = new Set([
      "int",
      "ptr",
      "array",
      "struct",
      "union",
      "enum",
      "fwd",
      "typedef",
      "volatile",
      "const",
      "restrict",
    ]);
    for (const t of out.types) expect(old, `${t.kind} ${t.id}`).toContain(t.kind);
    for (const t of btf.types)
      expect(
        out.typeById(t.id)?.name === t.name || t.kind === "datasec" || t.kind === "typeTag" || t.kind === "float",
      ).toBe(true);
    expect(out.typesByName("_data_flags", "struct")[0]).toMatchObject({
      size: 104,
      members: [{ name: "flags_var", bitOffset: 0 }],
    });
  });

  test("keeps the original string table and appends new names, so .BTF.ext offsets stay valid", () => {
    const raw = readObjectFile(join(ROOT, "bpf/build/testdata/xdp_count.o")).btf;
    const btf = fixupDatasecs(
      parseBtf(raw),
      new Map([
        [".maps", { size: 32 }],
        ["license", { size: 13 }],
      ]),
    );
    const bytes = encodeBtf(sanitizeBtf(btf, { ...ALL, datasec: false }));
    const strings = (b: Uint8Array): Uint8Array => {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      const start = dv.getUint32(4, true) + dv.getUint32(16, true);
      return b.subarray(start, start + dv.getUint32(20, true));
    };
    const before = strings(raw);
    const after = strings(bytes);
    expect(after.subarray(0, before.length)).toEqual(before);
    expect(new TextDecoder().decode(after.subarray(before.length))).toBe("_maps\0");
  });

  test("rejects features that are not booleans", () => {
    expect(() => sanitizeBtf(sample, { ...ALL, float: 1 } as unknown as BtfFeatures)).toThrow(
      /float must be a boolean/,
    );
  });
});

describe("fixupDatasecs()", () => {
  const btf = buildBtf([
    INT,
    { kind: "var", id: 2, name: "a", typeId: 1, linkage: "global" },
    { kind: "var", id: 3, name: "b", typeId: 1, linkage: "static" },
    {
      kind: "datasec",
      id: 4,
      name: ".bss",
      size: 0,
      vars: [
        { typeId: 2, offset: 0, size: 4 },
        { typeId: 3, offset: 0, size: 4 },
      ],
    },
    { kind: "datasec", id: 5, name: ".data", size: 16, vars: [{ typeId: 2, offset: 0, size: 4 }] },
  ]);

  test("sets a zero size and the given offsets, and sorts the variables by offset", () => {
    const out = fixupDatasecs(btf, new Map([[".bss", { size: 8, offsets: new Map([["a", 4]]) }]]));
    expect(out.typeById(4)).toEqual({
      kind: "datasec",
      id: 4,
      name: ".bss",
      size: 8,
      vars: [
        { typeId: 3, offset: 0, size: 4 },
        { typeId: 2, offset: 4, size: 4 },
      ],
    });
    expect(out.typeById(5)).toBe(btf.typeById(5));
  });

  test("keeps a size that is already set and returns the same BTF when nothing changes", () => {
    expect(fixupDatasecs(btf, new Map([[".data", { size: 99 }]]))).toBe(btf);
    expect(fixupDatasecs(btf, new Map())).toBe(btf);
  });

  test("rejects sizes and offsets that are not u32", () => {
    expect(() => fixupDatasecs(btf, new Map([[".bss", { size: -1 }]]))).toThrow(RangeError);
    expect(() => fixupDatasecs(btf, new Map([[".bss", { size: 8, offsets: new Map([["a", 2 ** 33]]) }]]))).toThrow(
      /offset of "a"/,
    );
  });
});
