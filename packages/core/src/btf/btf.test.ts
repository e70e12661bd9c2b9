import { existsSync, readFileSync } from "node:fs";
import { basename } from "node:path";
import { describe, expect, test } from "vitest";
import {
  type Btf,
  BtfSyntaxError,
  type BtfType,
  buildBtf,
  encodeBtf,
  parseBtf,
  parseLazyBtf,
  typeIdsByEssentialName,
} from "./btf.ts";
import { fixupDatasecs } from "./btf_load.ts";
import {
  type BpftoolType,
  bpftoolTypes,
  btfKindsObject,
  HAS_BPFTOOL,
  HAS_CLANG,
  readObjectFile,
  ROOT,
  testdataObjects,
} from "./_test_btf.ts";

const XDP_COUNT = `${ROOT}bpf/build/testdata/xdp_count.o`;
const VMLINUX = "/sys/kernel/btf/vmlinux";
const hasVmlinux = existsSync(VMLINUX);
const objects = HAS_CLANG ? [...testdataObjects(), btfKindsObject()] : testdataObjects();

const BPFTOOL_KIND: Record<Exclude<BtfType["kind"], "void">, string> = {
  int: "INT",
  ptr: "PTR",
  array: "ARRAY",
  struct: "STRUCT",
  union: "UNION",
  enum: "ENUM",
  fwd: "FWD",
  typedef: "TYPEDEF",
  volatile: "VOLATILE",
  const: "CONST",
  restrict: "RESTRICT",
  func: "FUNC",
  funcProto: "FUNC_PROTO",
  var: "VAR",
  datasec: "DATASEC",
  float: "FLOAT",
  declTag: "DECL_TAG",
  typeTag: "TYPE_TAG",
  enum64: "ENUM64",
};

function anon(name: string): string {
  return name === "" ? "(anon)" : name;
}

/** Our type in the shape of bpftool's JSON dump. */
function asBpftool(t: BtfType): Record<string, unknown> {
  if (t.kind === "void") throw new Error("void");
  const base = { id: t.id, kind: BPFTOOL_KIND[t.kind], name: anon(t.name) };
  switch (t.kind) {
    case "int": {
      const enc = (t.signed ? 1 : 0) | (t.char ? 2 : 0) | (t.bool ? 4 : 0);
      const encoding = ["(none)", "SIGNED", "CHAR", "UNKN", "BOOL"][enc] ?? "UNKN";
      return { ...base, size: t.size, bits_offset: t.bitOffset, nr_bits: t.bits, encoding };
    }
    case "ptr":
    case "typedef":
    case "volatile":
    case "const":
    case "restrict":
    case "typeTag":
      return { ...base, type_id: t.typeId };
    case "array":
      return { ...base, type_id: t.elementTypeId, index_type_id: t.indexTypeId, nr_elems: t.length };
    case "struct":
    case "union":
      return {
        ...base,
        size: t.size,
        vlen: t.members.length,
        members: t.members.map((m) => ({
          name: anon(m.name),
          type_id: m.typeId,
          bits_offset: m.bitOffset,
          ...(m.bitSize ? { bitfield_size: m.bitSize } : {}),
        })),
      };
    case "enum":
    case "enum64":
      return {
        ...base,
        encoding: t.signed ? "SIGNED" : "UNSIGNED",
        size: t.size,
        vlen: t.values.length,
        values: t.values.map((v) => ({ name: v.name, val: String(v.value) })),
      };
    case "fwd":
      return { ...base, fwd_kind: t.union ? "union" : "struct" };
    case "func":
      return { ...base, type_id: t.typeId, linkage: t.linkage };
    case "funcProto":
      return {
        ...base,
        ret_type_id: t.returnTypeId,
        vlen: t.params.length,
        params: t.params.map((p) => ({ name: anon(p.name), type_id: p.typeId })),
      };
    case "var":
      return { ...base, type_id: t.typeId, linkage: t.linkage };
    case "datasec":
      return {
        ...base,
        size: t.size,
        vlen: t.vars.length,
        vars: t.vars.map((v) => ({ type_id: v.typeId, offset: v.offset, size: v.size })),
      };
    case "float":
      return { ...base, size: t.size };
    case "declTag":
      return { ...base, type_id: t.typeId, component_idx: t.componentIndex };
  }
}

function compareWithBpftool(btf: Btf, expected: readonly BpftoolType[]): string[] {
  const mismatches: string[] = [];
  if (btf.types.length !== expected.length) mismatches.push(`count ${btf.types.length} != ${expected.length}`);
  for (const want of expected) {
    const t = btf.typeById(want.id);
    const got = t === undefined ? undefined : JSON.stringify(asBpftool(t));
    // bpftool's key order is not ours: compare as sorted objects.
    const norm = (o: unknown): string =>
      JSON.stringify(o, (_k, v: unknown) =>
        v !== null && typeof v === "object" && !Array.isArray(v)
          ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
          : v,
      );
    if (got === undefined || norm(JSON.parse(got)) !== norm(want)) {
      mismatches.push(`[${want.id}] ours ${got} bpftool ${JSON.stringify(want)}`);
      if (mismatches.length > 10) break;
    }
  }
  return mismatches;
}

function parseObject(path: string): Btf {
  return parseBtf(readObjectFile(path).btf);
}

function sameTypes(a: Btf, b: Btf): void {
  expect(b.types.length).toBe(a.types.length);
  expect(b.types).toEqual(a.types);
}

describe("parseBtf()", () => {
  test("decodes xdp_count.o: struct counters, the .maps datasec and count_packets", () => {
    const btf = parseObject(XDP_COUNT);
    const counters = btf.typesByName("counters", "struct")[0];
    expect(counters).toMatchObject({ kind: "struct", size: 16, kindFlag: false });
    if (counters?.kind !== "struct") throw new Error("no struct counters");
    expect(counters.members.map((m) => [m.name, m.bitOffset / 8, m.bitSize])).toEqual([
      ["packets", 0, 0],
      ["bytes", 8, 0],
    ]);
    expect(btf.resolve(counters.members[0]?.typeId ?? 0)).toMatchObject({
      kind: "int",
      name: "unsigned long long",
      size: 8,
      signed: false,
    });
    expect(btf.sizeOf(counters.id)).toBe(16);

    const maps = btf.datasecVariables(".maps");
    expect(maps?.map((v) => [v.name, v.offset, v.size, v.type.linkage])).toEqual(
      [["xdp_counters", 0, 32]].map((e) => [...e, "global"]),
    );
    const def = btf.resolve(maps?.[0]?.type.typeId ?? 0);
    if (def.kind !== "struct") throw new Error("map definition is not a struct");
    expect(def.members.map((m) => m.name)).toEqual(["type", "max_entries", "key", "value"]);
    // __type(value, struct counters) is a pointer to the value type.
    const value = btf.typeById(def.members[3]?.typeId ?? 0);
    expect(value?.kind === "ptr" && value.typeId).toBe(counters.id);
    // __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY) is a pointer to an array of 6 ints.
    const type = btf.typeById(def.members[0]?.typeId ?? 0);
    const arr = type?.kind === "ptr" ? btf.typeById(type.typeId) : undefined;
    expect(arr).toMatchObject({ kind: "array", length: 6 });

    const func = btf.typesByName("count_packets", "func")[0];
    expect(func).toMatchObject({ kind: "func", linkage: "global" });
    const proto = btf.typeById(func?.kind === "func" ? func.typeId : 0);
    if (proto?.kind !== "funcProto") throw new Error("no func proto");
    expect(btf.typeById(proto.returnTypeId)?.name).toBe("int");
    expect(proto.params.map((p) => p.name)).toEqual(["ctx"]);
    const ctx = btf.typeById(proto.params[0]?.typeId ?? 0);
    expect(ctx?.kind === "ptr" && btf.typeById(ctx.typeId)?.name).toBe("xdp_md");
    expect(btf.datasecVariables("license")?.[0]).toMatchObject({ name: "LICENSE", size: 13 });
  });

  test.skipIf(!HAS_CLANG)(
    "decodes every kind in btf_kinds.o: bitfields, float, enum64, signed enums, tags, fwd, qualifiers",
    () => {
      const btf = parseObject(btfKindsObject());
      const kinds = new Set(btf.types.map((t) => t.kind));
      for (const k of Object.keys(BPFTOOL_KIND)) expect(kinds, k).toContain(k);

      const flags = btf.typesByName("flags", "struct")[0];
      if (flags?.kind !== "struct") throw new Error("no struct flags");
      expect(flags.kindFlag).toBe(true);
      expect(flags.members.slice(0, 4).map((m) => [m.name, m.bitOffset, m.bitSize])).toEqual([
        ["a", 0, 3],
        ["b", 3, 5],
        ["c", 8, 12],
        ["wide", 64, 0],
      ]);
      expect(btf.sizeOf(flags.id)).toBe(104);
      const grid = flags.members.find((m) => m.name === "grid");
      expect(btf.sizeOf(grid?.typeId ?? 0)).toBe(24);
      const cv = flags.members.find((m) => m.name === "cv");
      expect(btf.resolve(cv?.typeId ?? 0)).toMatchObject({ kind: "int", name: "int" });
      const up = btf.typeById(flags.members.find((m) => m.name === "up")?.typeId ?? 0);
      expect(up?.kind === "ptr" && btf.typeById(up.typeId)).toMatchObject({ kind: "typeTag", name: "user" });
      expect(up?.kind === "ptr" && btf.resolve(up.typeId)).toMatchObject({ kind: "int", name: "int" });
      const op = btf.typeById(flags.members.find((m) => m.name === "op")?.typeId ?? 0);
      expect(op?.kind === "ptr" && btf.typeById(op.typeId)).toMatchObject({
        kind: "fwd",
        name: "opaque",
        union: false,
      });

      expect(btf.typesByName("big", "enum64")[0]).toMatchObject({
        signed: false,
        size: 8,
        values: [
          { name: "BIG_A", value: 0x1_0000_0000n },
          { name: "BIG_B", value: 1n },
        ],
      });
      expect(btf.typesByName("neg", "enum")[0]).toMatchObject({
        signed: true,
        values: [
          { name: "NEG_A", value: -1 },
          { name: "NEG_B", value: 1 },
        ],
      });
      expect(btf.typesByName("double")[0]).toMatchObject({ kind: "float", size: 8 });
      expect(btf.typesByName("flags_tag")[0]).toMatchObject({ kind: "declTag", typeId: flags.id, componentIndex: -1 });
      const helper = btf.typesByName("helper", "func")[0];
      expect(helper).toMatchObject({ linkage: "static" });
      expect(btf.typesByName("param_tag")[0]).toMatchObject({ kind: "declTag", typeId: helper?.id, componentIndex: 1 });
      expect(() => btf.sizeOf(helper?.id ?? 0)).toThrow(TypeError);
    },
  );

  test.skipIf(!HAS_BPFTOOL || objects.length === 0)(
    "agrees with bpftool btf dump on every type of every test object",
    () => {
      for (const path of objects) {
        const btf = parseObject(path);
        expect(compareWithBpftool(btf, bpftoolTypes(path)), basename(path)).toEqual([]);
      }
    },
  );

  test.skipIf(!hasVmlinux)("parses /sys/kernel/btf/vmlinux in well under a second", () => {
    const bytes = new Uint8Array(readFileSync(VMLINUX));
    parseBtf(bytes); // warm up
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const t0 = performance.now();
      parseBtf(bytes);
      best = Math.min(best, performance.now() - t0);
    }
    console.log(`parseBtf(vmlinux): ${best.toFixed(0)} ms for ${bytes.length} bytes`);
    expect(best).toBeLessThan(1000);
  });

  test.skipIf(!hasVmlinux || !HAS_BPFTOOL)(
    "agrees with bpftool on vmlinux, including the offset of sk_buff.len",
    () => {
      const btf = parseBtf(new Uint8Array(readFileSync(VMLINUX)));
      const expected = bpftoolTypes(VMLINUX);
      const skb = btf.typesByName("sk_buff", "struct")[0];
      if (skb?.kind !== "struct") throw new Error("no struct sk_buff");
      const want = expected.find((t) => t.kind === "STRUCT" && t.name === "sk_buff") as unknown as {
        members: { name: string; bits_offset: number }[];
      };
      const len = skb.members.find((m) => m.name === "len");
      expect(len?.bitOffset).toBe(want.members.find((m) => m.name === "len")?.bits_offset);
      expect(btf.resolve(len?.typeId ?? 0)).toMatchObject({ kind: "int", name: "unsigned int" });
      expect(btf.sizeOf(skb.id)).toBe(skb.size);
      expect(compareWithBpftool(btf, expected)).toEqual([]);
    },
  );

  test("rejects malformed headers with the offset of the bad field", () => {
    const good = encodeBtf(
      buildBtf([
        { kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
      ]),
    );
    const cases: [string, (b: Uint8Array, dv: DataView) => void, number, RegExp][] = [
      ["bad magic", (b) => (b[0] = 0), 0, /bad magic 0xeb00, expected 0xeb9f/],
      ["big-endian", (b) => ((b[0] = 0xeb), (b[1] = 0x9f)), 0, /big-endian BTF is not supported/],
      ["version 2", (b) => (b[2] = 2), 2, /unsupported version 2/],
      ["short hdr_len", (_b, dv) => dv.setUint32(4, 8, true), 4, /header length 8/],
      ["huge hdr_len", (_b, dv) => dv.setUint32(4, 0xffff_fff0, true), 4, /header length/],
      ["unaligned types", (_b, dv) => dv.setUint32(8, 2, true), 8, /not 4-byte aligned/],
      ["types beyond the end", (_b, dv) => dv.setUint32(12, 0xffff_fff0, true), 8, /type section/],
      ["strings beyond the end", (_b, dv) => dv.setUint32(20, 100, true), 16, /string section/],
      ["overlap", (_b, dv) => dv.setUint32(16, 8, true), 16, /overlap/],
      ["strings without NUL start", (b) => (b[24 + 16] = 0x41), 40, /start with a NUL/],
      ["strings without NUL end", (b) => (b[b.length - 1] = 0x41), good.length - 1, /end with a NUL/],
      ["unknown kind", (_b, dv) => dv.setUint32(28, 25 << 24, true), 28, /type 1 has unknown kind 25/],
      [
        "name outside strings",
        (_b, dv) => dv.setUint32(24, 999, true),
        24,
        /name offset 999 is outside the string table/,
      ],
    ];
    for (const [what, corrupt, offset, message] of cases) {
      const b = good.slice();
      corrupt(b, new DataView(b.buffer));
      let err: unknown;
      try {
        parseBtf(b);
      } catch (e) {
        err = e;
      }
      expect(err, what).toBeInstanceOf(BtfSyntaxError);
      expect((err as BtfSyntaxError).offset, what).toBe(offset);
      expect((err as Error).message, what).toMatch(message);
      expect((err as Error).name).toBe("BtfSyntaxError");
      expect(err).toBeInstanceOf(SyntaxError);
    }
  });

  test("rejects a type that refers to a missing id, an unknown linkage and a truncated member list", () => {
    const btf = buildBtf([
      { kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
      { kind: "ptr", id: 2, name: "", typeId: 1 },
      { kind: "var", id: 3, name: "v", typeId: 1, linkage: "global" },
    ]);
    const bytes = encodeBtf(btf);
    const dv = new DataView(bytes.buffer);
    const ptr = 24 + 16;
    const bad = bytes.slice();
    new DataView(bad.buffer).setUint32(ptr + 8, 7, true);
    expect(() => parseBtf(bad)).toThrow(/at offset 40: type 2 \(ptr\) refers to type 7, but the largest id is 3/);
    const linkage = bytes.slice();
    new DataView(linkage.buffer).setUint32(ptr + 12 + 12, 9, true);
    expect(() => parseBtf(linkage)).toThrow(/var 3 has unknown linkage 9/);
    const short = bytes.slice();
    // Claim the var's 4 extra bytes are 40 struct members.
    new DataView(short.buffer).setUint32(ptr + 12 + 4, (4 << 24) | 40, true);
    expect(() => parseBtf(short)).toThrow(/truncated type 3 \(struct\): needs 480 more bytes/);
    expect(dv.getUint32(12, true)).toBe(16 + 12 + 16);
  });

  test("parses split BTF on top of a base: ids and string offsets continue the base's", () => {
    const base = parseObject(XDP_COUNT);
    const u32 = base.typesByName("__u32")[0]?.id ?? 0;
    const split = buildBtf(
      [
        {
          kind: "struct",
          id: base.typeCount,
          name: "pair",
          size: 8,
          kindFlag: false,
          members: [
            { name: "packets", typeId: u32, bitOffset: 0, bitSize: 0 },
            { name: "fresh_name", typeId: u32, bitOffset: 32, bitSize: 0 },
          ],
        },
        { kind: "ptr", id: base.typeCount + 1, name: "", typeId: base.typeCount },
      ],
      { base },
    );
    const bytes = encodeBtf(split);
    const parsed = parseBtf(bytes, { base });
    expect(parsed.firstTypeId).toBe(base.typeCount);
    expect(parsed.typeCount).toBe(base.typeCount + 2);
    sameTypes(split, parsed);
    expect(parsed.typeById(u32)).toBe(base.typeById(u32));
    expect(
      parsed.resolve(parsed.types[0]?.kind === "struct" ? (parsed.types[0].members[0]?.typeId ?? 0) : 0).name,
    ).toBe("unsigned int");
    expect(parsed.typesByName("__u32")).toHaveLength(1);
    // "packets" is in the base's string table, so only the new name is in ours.
    const strLen = new DataView(bytes.buffer).getUint32(20, true);
    expect(strLen).toBe("fresh_name".length + 1 + "pair".length + 1);
    expect(() => parseBtf(bytes)).toThrow(BtfSyntaxError);
  });
});

describe("Btf", () => {
  const int = {
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

  test("typeById() returns void for 0 and undefined for a missing id", () => {
    const btf = buildBtf([int]);
    expect(btf.typeById(0)).toEqual({ kind: "void", id: 0, name: "" });
    expect(btf.typeById(2)).toBeUndefined();
    expect(btf.typesByName("nothing")).toEqual([]);
  });

  test("resolve() and sizeOf() stop at a typedef cycle with a RangeError", () => {
    const btf = buildBtf([
      int,
      { kind: "typedef", id: 2, name: "a", typeId: 3 },
      { kind: "typedef", id: 3, name: "b", typeId: 2 },
    ]);
    expect(() => btf.resolve(2)).toThrow(RangeError);
    expect(() => btf.sizeOf(2)).toThrow(RangeError);
    expect(() => btf.resolve(9)).toThrow(/Invalid BTF type id 9/);
  });

  test("sizeOf() multiplies nested arrays and refuses sizes beyond 2^32 - 1", () => {
    const btf = buildBtf([
      int,
      { kind: "array", id: 2, name: "", elementTypeId: 1, indexTypeId: 1, length: 3 },
      { kind: "array", id: 3, name: "", elementTypeId: 2, indexTypeId: 1, length: 5 },
      { kind: "array", id: 4, name: "", elementTypeId: 1, indexTypeId: 1, length: 0x4000_0000 },
      { kind: "ptr", id: 5, name: "", typeId: 0 },
      { kind: "var", id: 6, name: "v", typeId: 3, linkage: "static" },
    ]);
    expect(btf.sizeOf(3)).toBe(60);
    expect(btf.sizeOf(5)).toBe(8);
    expect(btf.sizeOf(6)).toBe(60);
    expect(() => btf.sizeOf(4)).toThrow(RangeError);
    expect(() => btf.sizeOf(0)).toThrow(TypeError);
  });

  test.skipIf(!HAS_CLANG)(
    "datasecVariables() lists the variables of btf_kinds.o's .bss at their symbol offsets after fixupDatasecs()",
    () => {
      const obj = readObjectFile(btfKindsObject());
      const btf = fixupDatasecs(parseBtf(obj.btf), obj.layouts);
      const bss = btf.datasecVariables(".bss");
      const symbols = new Map(obj.symbols.filter((s) => s.section === ".bss").map((s) => [s.name, s.value]));
      expect(bss?.map((v) => v.name).sort()).toEqual(["counter", "e_big", "e_neg", "e_small"]);
      for (const v of bss ?? []) expect(v.offset, v.name).toBe(symbols.get(v.name));
      expect(bss?.map((v) => v.offset)).toEqual([...(bss ?? [])].map((v) => v.offset).sort((a, b) => a - b));
      expect(btf.typesByName(".bss", "datasec")[0]).toMatchObject({ size: obj.sections.get(".bss")?.size });
      expect(btf.datasecVariables(".nope")).toBeUndefined();
    },
  );
});

describe("encodeBtf()", () => {
  test.skipIf(objects.length === 0)(
    "round-trips every test object: parse(encode(parse(x))) equals parse(x), byte for byte",
    () => {
      for (const path of objects) {
        const raw = readObjectFile(path).btf;
        const btf = parseBtf(raw);
        const bytes = encodeBtf(btf);
        sameTypes(btf, parseBtf(bytes));
        expect(Buffer.from(bytes).equals(Buffer.from(raw)), basename(path)).toBe(true);
      }
    },
  );

  test.skipIf(!hasVmlinux)("round-trips vmlinux byte for byte", () => {
    const raw = new Uint8Array(readFileSync(VMLINUX));
    const bytes = encodeBtf(parseBtf(raw));
    expect(Buffer.from(bytes).equals(Buffer.from(raw))).toBe(true);
  });

  test("rejects values that do not fit their fields", () => {
    const member = (bitSize: number) =>
      buildBtf([
        { kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32 },
        {
          kind: "struct",
          id: 2,
          name: "s",
          size: 4,
          kindFlag: false,
          members: [{ name: "m", typeId: 1, bitOffset: 0, bitSize }],
        },
      ]);
    expect(() => encodeBtf(member(3))).toThrow(/is a bitfield but kindFlag is off/);
    expect(() => encodeBtf(buildBtf([{ kind: "float", id: 1, name: "f", size: -1 }]))).toThrow(RangeError);
    expect(() => buildBtf([{ kind: "float", id: 2, name: "f", size: 4 }])).toThrow(/id 2, expected 1/);
    expect(() => buildBtf([{ kind: "ptr", id: 1, name: "", typeId: 5 }])).toThrow(RangeError);
  });
});

/** A small deterministic PRNG (mulberry32). */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function exercise(btf: Btf): void {
  for (const t of btf.types) {
    for (const f of [() => btf.resolve(t.id), () => btf.sizeOf(t.id)]) {
      try {
        f();
      } catch (err) {
        if (!(err instanceof RangeError || err instanceof TypeError)) throw err;
      }
    }
  }
  try {
    encodeBtf(btf);
  } catch (err) {
    if (!(err instanceof RangeError)) throw err;
  }
}

describe("parseBtf() fuzzing", () => {
  const inputs = [XDP_COUNT, ...(HAS_CLANG ? [btfKindsObject()] : [])].map(
    (p) => [basename(p), readObjectFile(p).btf] as const,
  );

  test.each(inputs)("every truncation of %s throws a BtfSyntaxError quickly", (_name, raw) => {
    const t0 = performance.now();
    for (let len = 0; len < raw.length; len++) {
      const start = performance.now();
      expect(() => parseBtf(raw.subarray(0, len))).toThrow(BtfSyntaxError);
      // Hang detectors with room for a loaded machine, not speed targets.
      expect(performance.now() - start).toBeLessThan(1000);
    }
    expect(performance.now() - t0).toBeLessThan(60_000);
  });

  test.each(inputs)("bit flips of %s give a BTF or a BtfSyntaxError, never another error or a hang", (_name, raw) => {
    const rand = prng(0xb7f);
    let parsed = 0;
    for (let i = 0; i < 3000; i++) {
      const b = raw.slice();
      const flips = 1 + Math.floor(rand() * 4);
      for (let f = 0; f < flips; f++) {
        const pos = Math.floor(rand() * b.length);
        b[pos] = (b[pos] as number) ^ (1 << Math.floor(rand() * 8));
      }
      const start = performance.now();
      try {
        exercise(parseBtf(b));
        parsed++;
      } catch (err) {
        if (!(err instanceof BtfSyntaxError)) throw err;
      }
      expect(performance.now() - start).toBeLessThan(1000);
    }
    expect(parsed).toBeGreaterThan(0);
  });
});

describe("parseLazyBtf()", () => {
  test.skipIf(!hasVmlinux)(
    "decodes vmlinux on demand to the same types, names and CO-RE candidates as parseBtf()",
    () => {
      const bytes = new Uint8Array(readFileSync(VMLINUX));
      const eager = parseBtf(bytes);
      const lazy = parseLazyBtf(bytes);
      expect(lazy.typeCount).toBe(eager.typeCount);
      // Lookups first, while nothing else is decoded.
      for (const name of [
        "sk_buff",
        "task_struct",
        "bpf_iter_tcp",
        "btf_trace_sched_switch",
        "__x64_sys_bpf",
        "pid_t",
        "int",
        "no_such_type",
      ]) {
        expect(lazy.typesByName(name), name).toEqual(eager.typesByName(name));
        expect(typeIdsByEssentialName(lazy, name), name).toEqual(typeIdsByEssentialName(eager, name));
      }
      for (const id of [1, 2, 1000, eager.typeCount - 1]) expect(lazy.typeById(id)).toEqual(eager.typeById(id));
      expect(lazy.typeById(eager.typeCount)).toBeUndefined();
      // A name that is the tail of another string ("sk_buff" inside "__sk_buff").
      expect(lazy.typesByName("__sk_buff", "struct")).toEqual(eager.typesByName("__sk_buff", "struct"));
      expect(lazy.types).toEqual(eager.types);
    },
  );

  test("finds flavoured names by their essential name, in both BTF forms", () => {
    const int = {
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
    const types: BtfType[] = [
      int,
      {
        kind: "struct",
        id: 2,
        name: "task",
        size: 4,
        kindFlag: false,
        members: [{ name: "pid", typeId: 1, bitOffset: 0, bitSize: 0 }],
      },
      { kind: "struct", id: 3, name: "task___old", size: 4, kindFlag: false, members: [] },
      { kind: "typedef", id: 4, name: "task", typeId: 2 },
      { kind: "struct", id: 5, name: "task_struct", size: 4, kindFlag: false, members: [] },
      { kind: "struct", id: 6, name: "my_task", size: 4, kindFlag: false, members: [] },
    ];
    const eager = parseBtf(encodeBtf(buildBtf(types)));
    const lazy = parseLazyBtf(encodeBtf(buildBtf(types)));
    expect(typeIdsByEssentialName(eager, "task")).toEqual([2, 3, 4]);
    expect(typeIdsByEssentialName(lazy, "task")).toEqual([2, 3, 4]);
    expect(lazy.typesByName("task").map((t) => t.id)).toEqual([2, 4]);
    expect(lazy.typesByName("task", "typedef").map((t) => t.id)).toEqual([4]);
    expect(lazy.types).toEqual(eager.types);
  });

  test("reports a truncated record with the same error as parseBtf()", () => {
    const bytes = encodeBtf(buildBtf([{ kind: "struct", id: 1, name: "s", size: 0, kindFlag: false, members: [] }]));
    const dv = new DataView(bytes.buffer);
    dv.setUint32(24 + 4, (4 << 24) | 3, true); // vlen 3: 36 bytes of members that are not there
    expect(() => parseLazyBtf(bytes)).toThrow(BtfSyntaxError);
    expect(() => parseLazyBtf(bytes)).toThrow(/truncated type 1 \(struct\): needs 36 more bytes/);
  });
});
