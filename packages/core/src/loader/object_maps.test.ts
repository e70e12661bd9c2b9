import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { type Btf, type BtfType, buildBtf, parseBtf } from "../btf/btf.ts";
import { BPF_RELOCATION_TYPE, type ElfFile, type ElfRelocation, parseElf } from "./elf.ts";
import { MapDefinitionError, mapSpecsFromObject, type ObjectMapSpec } from "./object_maps.ts";
import { ROOT } from "../btf/_test_btf.ts";
import { validateMapSpec } from "../bpf/map_spec.ts";

function load(name: string): { elf: ElfFile; btf: Btf } {
  const elf = parseElf(readFileSync(join(ROOT, "bpf/build/testdata", `${name}.o`)));
  const section = elf.sectionByName(".BTF");
  if (section === undefined) throw new Error(`${name}.o has no .BTF`);
  return { elf, btf: parseBtf(section.data()) };
}

function specsOf(name: string): ObjectMapSpec[] {
  const { elf, btf } = load(name);
  return mapSpecsFromObject(elf, btf);
}

function byName(specs: readonly ObjectMapSpec[], name: string): ObjectMapSpec {
  const found = specs.find((s) => s.name === name);
  if (found === undefined) throw new Error(`no map ${name}`);
  return found;
}

describe("mapSpecsFromObject() on compiled objects", () => {
  test("mapSpecsFromObject() reads a per-CPU array with typed key and value", () => {
    const { elf, btf } = load("xdp_count");
    const [map, ...rest] = mapSpecsFromObject(elf, btf);
    expect(rest).toEqual([]);
    expect(map).toEqual({
      name: "xdp_counters",
      spec: { name: "xdp_counters", type: "percpuArray", keySize: 4, valueSize: 16, maxEntries: 1 },
      pinning: "none",
      keyTypeId: expect.any(Number),
      valueTypeId: expect.any(Number),
      initialValues: [],
    });
    // bpftool btf dump: the key is TYPEDEF '__u32', the value STRUCT 'counters' size=16.
    expect(btf.typeById(map?.keyTypeId ?? 0)).toMatchObject({ kind: "typedef", name: "__u32" });
    expect(btf.typeById(map?.valueTypeId ?? 0)).toMatchObject({ kind: "struct", name: "counters", size: 16 });
  });

  test("mapSpecsFromObject() reads prog array initial values without BTF type ids", () => {
    expect(specsOf("tailcall")).toEqual([
      {
        name: "jump_table",
        spec: { name: "jump_table", type: "progArray", keySize: 4, valueSize: 4, maxEntries: 4 },
        pinning: "none",
        keyTypeId: undefined,
        valueTypeId: undefined,
        initialValues: [
          { slot: 0, symbol: "tail_target_a" },
          { slot: 2, symbol: "tail_target_b" },
        ],
      },
    ]);
  });

  test("mapSpecsFromObject() reads maps of maps with inner map specs and initial values", () => {
    const specs = specsOf("map_in_map");
    expect(specs.map((s) => s.name)).toEqual([
      "inner_a",
      "inner_b",
      "outer_array",
      "inner_h",
      "outer_hash",
      "outer_empty",
    ]);
    expect(byName(specs, "outer_array")).toEqual({
      name: "outer_array",
      spec: {
        name: "outer_array",
        type: "arrayOfMaps",
        keySize: 4,
        valueSize: 4,
        maxEntries: 2,
        innerMap: { name: "outer_array.inn", type: "array", keySize: 4, valueSize: 8, maxEntries: 1 },
      },
      pinning: "none",
      keyTypeId: undefined,
      valueTypeId: undefined,
      initialValues: [
        { slot: 0, symbol: "inner_a" },
        { slot: 1, symbol: "inner_b" },
      ],
    });
    const hash = byName(specs, "outer_hash");
    expect(hash.spec).toMatchObject({ type: "hashOfMaps", keySize: 4, valueSize: 4, maxEntries: 4 });
    expect(hash.spec.innerMap).toMatchObject({ type: "hash", keySize: 4, valueSize: 4, maxEntries: 8 });
    expect(hash.initialValues).toEqual([{ slot: 1, symbol: "inner_h" }]);
  });

  test("mapSpecsFromObject() reads an anonymous inner map struct defined inside __array()", () => {
    const empty = byName(specsOf("map_in_map"), "outer_empty");
    expect(empty.spec.type).toBe("hashOfMaps");
    expect(empty.spec.innerMap).toEqual({
      name: "outer_empty.inn",
      type: "array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 16,
    });
    expect(empty.initialValues).toEqual([]);
  });

  test.each([
    ["pinned_a", 8],
    ["pinned_b", 8],
    ["pinned_bad", 4],
  ])("mapSpecsFromObject() reads pinning by name in %s.o (value size %i)", (name, valueSize) => {
    const [map] = specsOf(name);
    expect(map?.name).toBe("dp_testdata_pinned");
    expect(map?.pinning).toBe("byName");
    expect(map?.spec).toEqual({ name: "dp_testdata_pin", type: "hash", keySize: 4, valueSize, maxEntries: 16 });
  });

  test("mapSpecsFromObject() reads a ring buffer without key or value", () => {
    const events = byName(specsOf("libbpf_style"), "events");
    expect(events).toEqual({
      name: "events",
      spec: { name: "events", type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 256 * 1024 },
      pinning: "none",
      keyTypeId: undefined,
      valueTypeId: undefined,
      initialValues: [],
    });
  });

  test("mapSpecsFromObject() reads the map of sections.o", () => {
    expect(
      specsOf("sections").map((s) => [s.name, s.spec.type, s.spec.keySize, s.spec.valueSize, s.spec.maxEntries]),
    ).toEqual([["section_hits", "array", 4, 8, 2]]);
  });

  test("mapSpecsFromObject() returns no maps for an object without .maps", () => {
    expect(specsOf("globals")).toEqual([]);
  });
});

// Hand-made BTF for the variable `xdp_counters`, whose symbol xdp_count.o has in .maps.
const INT = {
  kind: "int",
  name: "int",
  size: 4,
  signed: true,
  char: false,
  bool: false,
  bitOffset: 0,
  bits: 32,
} as const;

/** A BTF type before it gets its id. */
type Draft = BtfType extends infer T ? (T extends BtfType ? Omit<T, "id"> : never) : never;

type Member = readonly [name: string, shape: "uint" | "type" | "values" | "raw", arg: number];

/** Builds BTF with `xdp_counters` defined by `members`; ids 1-3 are int, u64 and a func proto. */
function mapBtf(members: readonly Member[], extra: readonly Draft[] = []): Btf {
  const types: Draft[] = [
    INT,
    { kind: "int", name: "u64", size: 8, signed: false, char: false, bool: false, bitOffset: 0, bits: 64 },
    { kind: "funcProto", name: "", returnTypeId: 1, params: [] },
    ...extra,
  ];
  function add(t: Draft): number {
    types.push(t);
    return types.length;
  }
  const out = members.map(([name, shape, arg], i) => {
    let typeId: number;
    if (shape === "uint") {
      typeId = add({
        kind: "ptr",
        name: "",
        typeId: add({ kind: "array", name: "", elementTypeId: 1, indexTypeId: 1, length: arg }),
      });
    } else if (shape === "type") {
      typeId = add({ kind: "ptr", name: "", typeId: arg });
    } else if (shape === "values") {
      typeId = add({
        kind: "array",
        name: "",
        elementTypeId: add({ kind: "ptr", name: "", typeId: arg }),
        indexTypeId: 1,
        length: 0,
      });
    } else {
      typeId = arg;
    }
    return { name, typeId, bitOffset: i * 64, bitSize: 0 };
  });
  const struct = add({ kind: "struct", name: "", size: members.length * 8, kindFlag: false, members: out });
  const v = add({ kind: "var", name: "xdp_counters", typeId: struct, linkage: "global" });
  add({ kind: "datasec", name: ".maps", size: 0, vars: [{ typeId: v, offset: 0, size: members.length * 8 }] });
  return buildBtf(types.map((t, i) => ({ ...t, id: i + 1 }) as BtfType));
}

const XDP = load("xdp_count").elf;

function withRelocations(elf: ElfFile, relocations: readonly ElfRelocation[]): ElfFile {
  const maps = elf.sectionByName(".maps");
  if (maps === undefined) throw new Error("no .maps");
  return {
    header: elf.header,
    sections: elf.sections,
    // Room for a few `values` slots after the 32-byte definition.
    symbols: elf.symbols.map((s) => (s.name === "xdp_counters" ? { ...s, size: 64 } : s)),
    relocations: new Map([[maps.index, relocations]]),
    sectionByName: (name) => elf.sectionByName(name),
  };
}

function definitionError(elf: ElfFile, btf: Btf): MapDefinitionError {
  try {
    mapSpecsFromObject(elf, btf);
  } catch (err) {
    if (err instanceof MapDefinitionError) return err;
    throw err;
  }
  throw new Error("no error");
}

describe("mapSpecsFromObject() on hand-made definitions", () => {
  test("mapSpecsFromObject() takes sizes from key_size and value_size without type ids", () => {
    const btf = mapBtf([
      ["type", "uint", 1],
      ["key_size", "uint", 4],
      ["value_size", "uint", 12],
      ["max_entries", "uint", 10],
      ["map_flags", "uint", 1],
      ["numa_node", "uint", 0],
      ["map_extra", "uint", 3],
    ]);
    expect(mapSpecsFromObject(XDP, btf)).toEqual([
      {
        name: "xdp_counters",
        spec: {
          name: "xdp_counters",
          type: "hash",
          keySize: 4,
          valueSize: 12,
          maxEntries: 10,
          flags: 1,
          numaNode: 0,
          mapExtra: 3n,
        },
        pinning: "none",
        keyTypeId: undefined,
        valueTypeId: undefined,
        initialValues: [],
      },
    ]);
  });

  test("mapSpecsFromObject() creates a ring buffer whose value type names its records with sizes 0, keeping the type id", () => {
    const record: Draft = { kind: "struct", name: "record", size: 16, kindFlag: false, members: [] };
    const btf = mapBtf(
      [
        ["type", "uint", 27], // BPF_MAP_TYPE_RINGBUF
        ["max_entries", "uint", 4096],
        ["value", "type", 4],
      ],
      [record],
    );
    const [map] = mapSpecsFromObject(XDP, btf);
    expect(map?.spec).toEqual({ name: "xdp_counters", type: "ringbuf", keySize: 0, valueSize: 0, maxEntries: 4096 });
    expect(map?.valueTypeId).toBe(4);
  });

  test("mapSpecsFromObject() accepts key_size equal to the key type's size", () => {
    const [map] = mapSpecsFromObject(
      XDP,
      mapBtf([
        ["type", "uint", 1],
        ["key", "type", 2],
        ["key_size", "uint", 8],
        ["value", "type", 1],
      ]),
    );
    expect(map?.spec).toMatchObject({ keySize: 8, valueSize: 4 });
    expect([map?.keyTypeId, map?.valueTypeId]).toEqual([2, 1]);
  });

  const cases: [string, readonly Member[], string][] = [
    [
      "an unknown member",
      [
        ["type", "uint", 1],
        ["colour", "uint", 3],
      ],
      'unknown member "colour"',
    ],
    ["a missing type", [["max_entries", "uint", 1]], 'member "type" is missing'],
    ["an unknown map type", [["type", "uint", 999]], "unknown map type 999"],
    [
      "values on a hash map",
      [
        ["type", "uint", 1],
        ["values", "values", 3],
      ],
      'member "values" on a hash map',
    ],
    [
      "values not last",
      [
        ["type", "uint", 3],
        ["values", "values", 3],
        ["key_size", "uint", 4],
      ],
      'member "values" must be the last member',
    ],
    [
      "a prog array of maps",
      [
        ["type", "uint", 3],
        ["values", "values", 1],
      ],
      'member "values" of a progArray map must point to programs, got int "int" (id 1)',
    ],
    [
      "an array of maps of functions",
      [
        ["type", "uint", 12],
        ["values", "values", 3],
      ],
      'member "values" of a arrayOfMaps map must point to map definitions',
    ],
    [
      "an array of maps without values",
      [
        ["type", "uint", 12],
        ["key_size", "uint", 4],
      ],
      'a arrayOfMaps map needs member "values"',
    ],
    [
      "conflicting key sizes",
      [
        ["type", "uint", 1],
        ["key", "type", 2],
        ["key_size", "uint", 4],
      ],
      "conflicting key size: key_size is 4 but key has 8 bytes",
    ],
    [
      "a bad pinning",
      [
        ["type", "uint", 1],
        ["pinning", "uint", 2],
      ],
      "pinning 2 is not supported",
    ],
    [
      "type not a pointer to an array",
      [["type", "raw", 1]],
      'member "type" must be __uint(type, N), a pointer to an array, got int "int" (id 1)',
    ],
    [
      "key not a pointer",
      [
        ["type", "uint", 1],
        ["key", "raw", 1],
      ],
      'member "key" must be __type(key, T), a pointer, got int "int" (id 1)',
    ],
    [
      "key of unsized type",
      [
        ["type", "uint", 1],
        ["key", "type", 3],
      ],
      'member "key": Cannot size BTF type 3',
    ],
    [
      "a value size other than 4 with values",
      [
        ["type", "uint", 3],
        ["value_size", "uint", 8],
        ["values", "values", 3],
      ],
      "value size 8 conflicts",
    ],
    [
      "a duplicate member",
      [
        ["type", "uint", 1],
        ["type", "uint", 2],
      ],
      'member "type" is defined twice',
    ],
  ];
  test.each(cases)("mapSpecsFromObject() throws MapDefinitionError for %s", (_, members, detail) => {
    const err = definitionError(XDP, mapBtf(members));
    expect(err).toBeInstanceOf(SyntaxError);
    expect(err.name).toBe("MapDefinitionError");
    expect(err.mapName).toBe("xdp_counters");
    expect(err.message).toContain(`Invalid map "xdp_counters" in .maps: ${detail}`);
  });

  test("mapSpecsFromObject() names the inner map in errors about it", () => {
    // Type 4: the inner struct, a hash with an unknown member.
    const inner: Draft[] = [
      { kind: "ptr", name: "", typeId: 5 },
      { kind: "array", name: "", elementTypeId: 1, indexTypeId: 1, length: 1 },
      {
        kind: "struct",
        name: "inner",
        size: 16,
        kindFlag: false,
        members: [
          { name: "type", typeId: 4, bitOffset: 0, bitSize: 0 },
          { name: "flavour", typeId: 4, bitOffset: 64, bitSize: 0 },
        ],
      },
    ];
    const err = definitionError(
      XDP,
      mapBtf(
        [
          ["type", "uint", 12],
          ["values", "values", 6],
        ],
        inner,
      ),
    );
    expect(err.mapName).toBe("xdp_counters.inner");
    expect(err.message).toBe('Invalid map "xdp_counters.inner" in .maps: unknown member "flavour"');
  });

  const progArray: readonly Member[] = [
    ["type", "uint", 3],
    ["max_entries", "uint", 2],
    ["key_size", "uint", 4],
    ["values", "values", 3],
  ];
  const func = XDP.symbols.findIndex((s) => s.name === "count_packets");
  const mapSym = XDP.symbols.findIndex((s) => s.name === "xdp_counters");

  test("mapSpecsFromObject() reads initial values from ABS64 relocations into values", () => {
    const elf = withRelocations(XDP, [{ offset: 32, symbolIndex: func, type: BPF_RELOCATION_TYPE.abs64 }]);
    expect(mapSpecsFromObject(elf, mapBtf(progArray))[0]?.initialValues).toEqual([
      { slot: 1, symbol: "count_packets" },
    ]);
  });

  const relocationCases: [string, ElfRelocation, string][] = [
    [
      "a non-ABS64 relocation",
      { offset: 24, symbolIndex: func, type: BPF_RELOCATION_TYPE.abs32 },
      "expected R_BPF_64_ABS64 (2)",
    ],
    [
      "a relocation before values",
      { offset: 8, symbolIndex: func, type: BPF_RELOCATION_TYPE.abs64 },
      'is not an element of member "values"',
    ],
    [
      "a misaligned relocation",
      { offset: 28, symbolIndex: func, type: BPF_RELOCATION_TYPE.abs64 },
      'is not an element of member "values"',
    ],
    [
      "a slot past max_entries",
      { offset: 40, symbolIndex: func, type: BPF_RELOCATION_TYPE.abs64 },
      "slot 2 is past max_entries 2",
    ],
    [
      "a prog array entry that is a map",
      { offset: 24, symbolIndex: mapSym, type: BPF_RELOCATION_TYPE.abs64 },
      '"xdp_counters", which is not a program',
    ],
  ];
  test.each(relocationCases)("mapSpecsFromObject() throws MapDefinitionError for %s", (_, rel, detail) => {
    const err = definitionError(withRelocations(XDP, [rel]), mapBtf(progArray));
    expect(err.message).toContain(detail);
  });

  test("mapSpecsFromObject() throws MapDefinitionError when a map of maps entry is not a map", () => {
    const inner: Draft[] = [
      { kind: "ptr", name: "", typeId: 5 },
      { kind: "array", name: "", elementTypeId: 1, indexTypeId: 1, length: 2 },
      {
        kind: "struct",
        name: "inner",
        size: 8,
        kindFlag: false,
        members: [{ name: "type", typeId: 4, bitOffset: 0, bitSize: 0 }],
      },
    ];
    const btf = mapBtf(
      [
        ["type", "uint", 12],
        ["max_entries", "uint", 4],
        ["values", "values", 6],
      ],
      inner,
    );
    expect(mapSpecsFromObject(XDP, btf)[0]?.spec.innerMap).toEqual({
      name: "xdp_counters.in",
      type: "array",
      keySize: 0,
      valueSize: 0,
      maxEntries: 0,
    });
    const err = definitionError(
      withRelocations(XDP, [{ offset: 16, symbolIndex: func, type: BPF_RELOCATION_TYPE.abs64 }]),
      btf,
    );
    expect(err.message).toContain('slot 0 refers to "count_packets", which is not a map in .maps');
  });

  test("mapSpecsFromObject() throws SyntaxError when .maps has symbols but no DATASEC", () => {
    expect(() => mapSpecsFromObject(XDP, buildBtf([{ ...INT, id: 1 }]))).toThrow(/no \.maps DATASEC/);
  });
});

describe("map_extra", () => {
  test("__ulong(map_extra, N) is an enum of one value, 64 bits wide; __uint(map_extra, N) the pointer form", () => {
    const specs = specsOf("arena");
    expect(byName(specs, "arena_fixed").spec).toEqual({
      name: "arena_fixed",
      type: "arena",
      keySize: 0,
      valueSize: 0,
      maxEntries: 4,
      flags: 1024,
      mapExtra: 1n << 32n,
    });
    expect(byName(specs, "arena").spec).toMatchObject({ type: "arena", maxEntries: 4, flags: 1024, mapExtra: 0n });
    const { btf } = load("arena");
    expect(btf.types.some((t) => t.kind === "enum64" && t.values[0]?.value === 1n << 32n)).toBe(true);
  });

  test("an arena map has no key or value and must be mmapable", () => {
    const arena = byName(specsOf("arena"), "arena").spec;
    validateMapSpec(arena);
    expect(() => validateMapSpec({ ...arena, flags: 0 })).toThrow(
      /flags must include MAP_FLAGS.mmapable for arena maps/,
    );
    expect(() => validateMapSpec({ ...arena, valueSize: 8 })).toThrow(/valueSize must be 0 for arena maps/);
    expect(() => validateMapSpec({ ...arena, keySize: 8 })).toThrow(/keySize must be 0 for arena maps/);
  });
});
