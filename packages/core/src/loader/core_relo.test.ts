import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { type Btf, type BtfMember, type BtfType, buildBtf, parseBtf } from "../btf/btf.ts";
import { type BtfCoreRelo, type BtfCoreReloKind, parseBtfExt } from "../btf/btf_ext.ts";
import {
  applyCoreRelocations,
  CORE_POISON,
  CoreRelocationError,
  type CoreRelocationInput,
  type CoreRelocationResult,
} from "./core_relo.ts";
import { parseElf } from "./elf.ts";
import { HAS_BPFTOOL, ROOT } from "../btf/_test_btf.ts";

const VMLINUX = "/sys/kernel/btf/vmlinux";
const CORE_O = join(ROOT, "bpf/build/testdata/core.o");

// --- instructions -------------------------------------------------------------

function insn(code: number, dst: number, src: number, off: number, imm: number): number[] {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  b[0] = code;
  b[1] = (dst & 0xf) | ((src & 0xf) << 4);
  dv.setInt16(2, off, true);
  dv.setInt32(4, imm, true);
  return [...b];
}

function movImm(dst: number, imm: number): number[] {
  return insn(0xb7, dst, 0, 0, imm);
}

function addImm(dst: number, imm: number): number[] {
  return insn(0x07, dst, 0, 0, imm);
}

function movReg(dst: number, src: number): number[] {
  return insn(0xbf, dst, src, 0, 0);
}

function ldxB(dst: number, src: number, off: number): number[] {
  return insn(0x71, dst, src, off, 0);
}

function ldxW(dst: number, src: number, off: number): number[] {
  return insn(0x61, dst, src, off, 0);
}

function ldxDw(dst: number, src: number, off: number): number[] {
  return insn(0x79, dst, src, off, 0);
}

function stxW(dst: number, src: number, off: number): number[] {
  return insn(0x63, dst, src, off, 0);
}

function exit(): number[] {
  return insn(0x95, 0, 0, 0, 0);
}

function ldImm64(dst: number, imm: bigint): number[] {
  const u = BigInt.asUintN(64, imm);
  return [
    ...insn(0x18, dst, 0, 0, Number(BigInt.asIntN(32, u & 0xffff_ffffn))),
    ...insn(0, 0, 0, 0, Number(BigInt.asIntN(32, u >> 32n))),
  ];
}

function program(...insns: number[][]): Uint8Array {
  return new Uint8Array(insns.flat());
}

function view(insns: Uint8Array): DataView {
  return new DataView(insns.buffer, insns.byteOffset, insns.byteLength);
}

function codeAt(insns: Uint8Array, i: number): number {
  return insns[i * 8] as number;
}

function offAt(insns: Uint8Array, i: number): number {
  return view(insns).getInt16(i * 8 + 2, true);
}

function immAt(insns: Uint8Array, i: number): number {
  return view(insns).getInt32(i * 8 + 4, true);
}

function imm64At(insns: Uint8Array, i: number): bigint {
  return BigInt(view(insns).getUint32(i * 8 + 4, true)) | (BigInt(view(insns).getUint32(i * 8 + 12, true)) << 32n);
}

function relo(typeId: number, accessString: string, kind: BtfCoreReloKind): BtfCoreRelo {
  return { insnOffset: 0, typeId, accessString, kind };
}

function at(instruction: number, r: BtfCoreRelo): CoreRelocationInput {
  return { instruction, relo: r };
}

// --- hand-made BTF ------------------------------------------------------------

type MemberSpec = readonly [name: string, typeId: number, bitOffset: number, bitSize?: number];

function members(list: readonly MemberSpec[]): BtfMember[] {
  return list.map(([name, typeId, bitOffset, bitSize]) => ({ name, typeId, bitOffset, bitSize: bitSize ?? 0 }));
}

function int(id: number, name: string, size: number, signed: boolean): BtfType {
  return { kind: "int", id, name, size, signed, char: false, bool: false, bitOffset: 0, bits: size * 8 };
}

function struct(id: number, name: string, size: number, list: readonly MemberSpec[]): BtfType {
  return { kind: "struct", id, name, size, kindFlag: list.some((m) => (m[3] ?? 0) > 0), members: members(list) };
}

function union(id: number, name: string, size: number, list: readonly MemberSpec[]): BtfType {
  return { kind: "union", id, name, size, kindFlag: false, members: members(list) };
}

function array(id: number, elementTypeId: number, length: number): BtfType {
  return { kind: "array", id, name: "", elementTypeId, indexTypeId: 1, length };
}

/** Ids 1-4 of every hand-made BTF: int, unsigned int, long long, unsigned long long. */
const BASIC: readonly BtfType[] = [
  int(1, "int", 4, true),
  int(2, "unsigned int", 4, false),
  int(3, "long long", 8, true),
  int(4, "unsigned long long", 8, false),
];

function btf(...types: BtfType[]): Btf {
  return buildBtf([...BASIC, ...types]);
}

function expectError(fn: () => unknown, pattern: RegExp): CoreRelocationError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(CoreRelocationError);
  const err = caught as CoreRelocationError;
  expect(err.name).toBe("CoreRelocationError");
  expect(err.message).toMatch(pattern);
  return err;
}

// --- the compiled object against the running kernel ---------------------------

/** Facts about kernel types, from bpftool's raw dump or, without bpftool, from the parsed BTF. */
interface Oracle {
  typeId(kind: string, name: string): number;
  size(struct: string): number;
  /** The bit offset of a direct member. */
  memberBits(struct: string, member: string): number;
  enumValue(name: string, enumerator: string): number;
}

/** Reads `bpftool btf dump file X format raw`: `[id] KIND 'name' size=N ...` lines and their tab-indented members. */
function bpftoolOracle(path: string): Oracle {
  const text = execFileSync("bpftool", ["btf", "dump", "file", path, "format", "raw"], {
    maxBuffer: 1 << 30,
    encoding: "utf8",
  });
  const types = new Map<string, { id: number; size: number; lines: string[] }>();
  let current: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\[(\d+)\] (\w+) '([^']*)'(?: .*?size=(\d+))?/.exec(line);
    if (m !== null) {
      current = [];
      const key = `${m[2]} ${m[3]}`;
      if (!types.has(key)) types.set(key, { id: Number(m[1]), size: Number(m[4] ?? 0), lines: current });
    } else if (line.startsWith("\t")) {
      current.push(line.trim());
    }
  }
  const get = (kind: string, name: string): { id: number; size: number; lines: string[] } => {
    const t = types.get(`${kind} ${name}`);
    if (t === undefined) throw new Error(`bpftool: no ${kind} ${name}`);
    return t;
  };
  return {
    typeId: (kind, name) => get(kind, name).id,
    size: (name) => get("STRUCT", name).size,
    memberBits(name, member) {
      const line = get("STRUCT", name).lines.find((l) => l.startsWith(`'${member}' `));
      const bits = /bits_offset=(\d+)/.exec(line ?? "")?.[1];
      if (bits === undefined) throw new Error(`bpftool: no member ${name}.${member}`);
      return Number(bits);
    },
    enumValue(name, enumerator) {
      const line = get("ENUM", name).lines.find((l) => l.startsWith(`'${enumerator}' `));
      const value = /val=(-?\d+)/.exec(line ?? "")?.[1];
      if (value === undefined) throw new Error(`bpftool: no enumerator ${enumerator}`);
      return Number(value);
    },
  };
}

function btfOracle(kernel: Btf): Oracle {
  const byName = (kind: string, name: string): BtfType => {
    const t = kernel.typesByName(name).find((x) => x.kind.toUpperCase() === kind);
    if (t === undefined) throw new Error(`no ${kind} ${name}`);
    return t;
  };
  return {
    typeId: (kind, name) => byName(kind, name).id,
    size: (name) => kernel.sizeOf(byName("STRUCT", name).id),
    memberBits(name, member) {
      const t = byName("STRUCT", name);
      const m = t.kind === "struct" ? t.members.find((x) => x.name === member) : undefined;
      if (m === undefined) throw new Error(`no member ${name}.${member}`);
      return m.bitOffset;
    },
    enumValue(name, enumerator) {
      const t = byName("ENUM", name);
      const v = t.kind === "enum" ? t.values.find((x) => x.name === enumerator) : undefined;
      if (v === undefined) throw new Error(`no enumerator ${enumerator}`);
      return v.value;
    },
  };
}

describe.skipIf(!existsSync(VMLINUX) || !existsSync(CORE_O))(
  "applyCoreRelocations() on core.o against the running kernel",
  () => {
    const elf = parseElf(readFileSync(CORE_O));
    const data = (name: string): Uint8Array => {
      const s = elf.sectionByName(name);
      if (s === undefined) throw new Error(`core.o has no ${name}`);
      return s.data();
    };
    const local = parseBtf(data(".BTF"));
    const ext = parseBtfExt(data(".BTF.ext"), local);
    const kernel = parseBtf(new Uint8Array(readFileSync(VMLINUX)));
    const original = data("tc");
    const relos = (ext.coreRelos.get("tc") ?? []).map((r) => at(r.insnOffset / 8, r));

    function relocate(): { insns: Uint8Array; results: CoreRelocationResult[] } {
      const insns = new Uint8Array(original);
      return { insns, results: applyCoreRelocations(insns, relos, local, kernel) };
    }

    /** The value a relocated instruction holds now: the offset of a load or store, else the (64-bit) immediate. */
    function valueAt(insns: Uint8Array, i: number): number | bigint {
      const cls = codeAt(insns, i) & 7;
      if (cls === 1 || cls === 2 || cls === 3) return offAt(insns, i);
      if (codeAt(insns, i) === 0x18) return imm64At(insns, i);
      return immAt(insns, i);
    }

    function expected(o: Oracle): Map<string, number> {
      const bytes = (bits: number): number => bits / 8;
      const skbLen = bytes(o.memberBits("sk_buff", "len"));
      const tgid = bytes(o.memberBits("task_struct", "tgid"));
      return new Map([
        ["struct sk_buff.len exists", 1],
        ["struct sk_buff___dp_missing.dp_no_such_field exists", 0],
        ["struct sk_buff.len byte size", 4],
        ["struct sk_buff___dp_small.len byte offset", skbLen],
        ["struct sk_buff exists", 1],
        ["struct dp_no_such_type exists", 0],
        ["struct sk_buff___dp_small size", o.size("sk_buff")],
        ["struct sk_buff target type id", o.typeId("STRUCT", "sk_buff")],
        ["struct sk_buff local type id", local.typesByName("sk_buff", "struct")[0]?.id ?? -1],
        ["enum bpf_map_type___dp::BPF_MAP_TYPE_RINGBUF___dp exists", 1],
        ["enum bpf_map_type___dp::BPF_MAP_TYPE_DP_NO_SUCH_TYPE___dp exists", 0],
        [
          "enum bpf_map_type___dp::BPF_MAP_TYPE_RINGBUF___dp value",
          o.enumValue("bpf_map_type", "BPF_MAP_TYPE_RINGBUF"),
        ],
        ["struct task_struct.tgid byte offset", tgid],
        ["struct task_struct___dp.tgid byte offset", tgid],
        ["struct task_struct.nsproxy byte offset", bytes(o.memberBits("task_struct", "nsproxy"))],
        ["struct nsproxy.net_ns byte offset", bytes(o.memberBits("nsproxy", "net_ns"))],
        ["struct net.ns.inum byte offset", bytes(o.memberBits("net", "ns") + o.memberBits("ns_common", "inum"))],
        ["struct __sk_buff___dp.len byte offset", bytes(o.memberBits("__sk_buff", "len"))],
      ]);
    }

    function check(o: Oracle): void {
      const want = expected(o);
      const { insns, results } = relocate();
      expect(results).toHaveLength(relos.length);
      const seen = new Set<string>();
      for (const r of results) {
        const key = r.description.replace(/ \([\d:]+\)/, "");
        const value = want.get(key);
        expect(value, `unexpected relocation ${r.description}`).toBeDefined();
        seen.add(key);
        expect(Number(r.targetValue), r.description).toBe(value);
        expect(Number(valueAt(insns, r.instruction)), r.description).toBe(value);
        expect(Number(valueAt(original, r.instruction)), r.description).toBe(Number(r.localValue));
      }
      expect([...seen].sort()).toEqual([...want.keys()].sort());
      // Nothing but the relocated instructions changed.
      const patched = new Set(
        results.flatMap((r) =>
          codeAt(original, r.instruction) === 0x18 ? [r.instruction, r.instruction + 1] : [r.instruction],
        ),
      );
      for (let i = 0; i < original.length / 8; i++) {
        if (!patched.has(i))
          expect([...insns.subarray(i * 8, i * 8 + 8)], `instruction ${i}`).toEqual([
            ...original.subarray(i * 8, i * 8 + 8),
          ]);
      }
    }

    test.skipIf(!HAS_BPFTOOL)(
      "applyCoreRelocations() gives every core.o relocation the value bpftool reads from vmlinux",
      () => {
        check(bpftoolOracle(VMLINUX));
      },
    );

    test("applyCoreRelocations() gives every core.o relocation the value the kernel BTF's types give", () => {
      expect(relos.length).toBe(19);
      check(btfOracle(kernel));
    });

    test("applyCoreRelocations() reports the flavour reads and the local layouts they replace", () => {
      const { results } = relocate();
      const byKey = (d: string): CoreRelocationResult | undefined =>
        results.find((r) => r.description.replace(/ \([\d:]+\)/, "") === d);
      expect(byKey("struct __sk_buff___dp.len byte offset")).toMatchObject({ localValue: 8, targetValue: 0 });
      expect(byKey("struct sk_buff___dp_small size")).toMatchObject({ localValue: 4 });
      expect(byKey("enum bpf_map_type___dp::BPF_MAP_TYPE_RINGBUF___dp value")).toMatchObject({
        localValue: 99,
        targetValue: 27,
      });
      expect(results.find((r) => r.description.startsWith("struct task_struct.tgid"))?.description).toMatch(
        /^struct task_struct\.tgid \(0:\d+\) byte offset$/,
      );
    });
  },
);

// --- hand-made BTF ------------------------------------------------------------

describe("applyCoreRelocations() with hand-made BTF", () => {
  test("applyCoreRelocations() relocates field offsets through a flavour and poisons a load of a missing field", () => {
    const local = btf(
      struct(5, "task___old", 8, [
        ["pid", 2, 0],
        ["gone", 2, 32],
      ]),
    );
    const target = btf(
      struct(5, "task", 16, [
        ["flags", 4, 0],
        ["pid", 2, 64],
      ]),
    );
    const insns = program(ldxW(1, 2, 0), ldxW(3, 2, 4), exit());
    const results = applyCoreRelocations(
      insns,
      [at(0, relo(5, "0:0", "fieldByteOffset")), at(1, relo(5, "0:1", "fieldByteOffset"))],
      local,
      target,
    );
    expect(offAt(insns, 0)).toBe(8);
    expect(codeAt(insns, 0)).toBe(0x61);
    expect([...insns.subarray(8, 16)]).toEqual(insn(0x85, 0, 0, 0, CORE_POISON));
    expect(CORE_POISON).toBe(0xbad2310);
    expect(results).toEqual([
      {
        instruction: 0,
        relo: relo(5, "0:0", "fieldByteOffset"),
        localValue: 0,
        targetValue: 8,
        description: "struct task___old.pid (0:0) byte offset",
      },
      {
        instruction: 1,
        relo: relo(5, "0:1", "fieldByteOffset"),
        localValue: 4,
        targetValue: "poisoned",
        description: "struct task___old.gone (0:1) byte offset",
      },
    ]);
  });

  test("applyCoreRelocations() gives 0 for missing fields, types and enumerators of the existence kinds and type relocations", () => {
    const local = btf(struct(5, "thing___l", 4, [["x", 1, 0]]), {
      kind: "enum",
      id: 6,
      name: "colour___l",
      size: 4,
      signed: false,
      values: [{ name: "PURPLE", value: 5 }],
    });
    const target = btf(struct(5, "other", 4, [["x", 1, 0]]), {
      kind: "enum",
      id: 6,
      name: "colour",
      size: 4,
      signed: false,
      values: [{ name: "RED", value: 0 }],
    });
    const insns = program(
      movImm(1, 1),
      movImm(1, 1),
      movImm(1, 4),
      movImm(1, 5),
      ldImm64(1, 1n),
      movImm(1, 1),
      movImm(1, 5),
      exit(),
    );
    const results = applyCoreRelocations(
      insns,
      [
        at(0, relo(5, "0:0", "fieldExists")),
        at(1, relo(5, "0", "typeExists")),
        at(2, relo(5, "0", "typeSize")),
        at(3, relo(5, "0", "typeIdTarget")),
        at(4, relo(6, "0", "enumvalExists")),
        at(6, relo(5, "0", "typeMatches")),
        at(7, relo(6, "0", "enumvalValue")),
      ],
      local,
      target,
    );
    expect(results.map((r) => r.targetValue)).toEqual([0, 0, 0, 0, 0, 0, "poisoned"]);
    expect([immAt(insns, 0), immAt(insns, 1), immAt(insns, 2), immAt(insns, 3), immAt(insns, 6)]).toEqual([
      0, 0, 0, 0, 0,
    ]);
    expect(imm64At(insns, 4)).toBe(0n);
    expect(immAt(insns, 7)).toBe(CORE_POISON);
  });

  test("applyCoreRelocations() poisons both halves of a 64-bit immediate load", () => {
    const local = btf({
      kind: "enum",
      id: 5,
      name: "mode___l",
      size: 4,
      signed: false,
      values: [{ name: "FAST", value: 7 }],
    });
    const target = btf({
      kind: "enum",
      id: 5,
      name: "mode",
      size: 4,
      signed: false,
      values: [{ name: "SLOW", value: 1 }],
    });
    const insns = program(ldImm64(1, 7n), exit());
    const [r] = applyCoreRelocations(insns, [at(0, relo(5, "0", "enumvalValue"))], local, target);
    expect(r?.targetValue).toBe("poisoned");
    expect([...insns.subarray(0, 16)]).toEqual([
      ...insn(0x85, 0, 0, 0, CORE_POISON),
      ...insn(0x85, 0, 0, 0, CORE_POISON),
    ]);
  });

  test("applyCoreRelocations() computes bitfield offsets, sizes, shifts and signedness like libbpf", () => {
    const local = btf(
      struct(5, "bits___l", 4, [
        ["x", 2, 0, 0],
        ["b", 2, 3, 5],
        ["c", 1, 8, 4],
        ["d", 2, 12, 6],
        ["e", 4, 18, 40],
      ]),
    );
    const u8: BtfType = int(6, "unsigned char", 1, false);
    const target = buildBtf([
      ...BASIC,
      struct(5, "bits", 24, [
        ["x", 2, 32, 0],
        ["b", 2, 45, 5],
        ["c", 2, 50, 4],
        ["d", 6, 77, 6],
        ["e", 4, 72, 60],
      ]),
      u8,
    ]);
    // Bitfield byte offsets, sizes and left shifts are not checked against the instruction (as in libbpf).
    const cases: [access: string, kind: BtfCoreReloKind, local: number, target: number][] = [
      ["0:1", "fieldByteOffset", 0, 4],
      ["0:1", "fieldByteSize", 4, 4],
      ["0:1", "fieldLshiftU64", 56, 46],
      ["0:1", "fieldRshiftU64", 59, 59],
      ["0:2", "fieldSigned", 1, 0],
      ["0:2", "fieldRshiftU64", 60, 60],
      // d: 6 bits at bit 77 of an unsigned char crosses a byte, then a 2-byte boundary: a 4-byte load at byte 8.
      ["0:3", "fieldByteOffset", 0, 8],
      ["0:3", "fieldByteSize", 4, 4],
      ["0:3", "fieldLshiftU64", 46, 45],
      // x is no bitfield: shifts isolate all its 32 bits.
      ["0:0", "fieldLshiftU64", 32, 32],
      ["0:0", "fieldRshiftU64", 32, 32],
      ["0:0", "fieldSigned", 0, 0],
      ["0:0", "fieldByteOffset", 0, 4],
    ];
    for (const [access, kind, before, after] of cases) {
      const validated = !(
        access !== "0:0" &&
        (kind === "fieldByteOffset" || kind === "fieldByteSize" || kind === "fieldLshiftU64")
      );
      const insns = program(movImm(1, validated ? before : 99), exit());
      const [r] = applyCoreRelocations(insns, [at(0, relo(5, access, kind))], local, target);
      expect([access, kind, r?.localValue, r?.targetValue, immAt(insns, 0)]).toEqual([
        access,
        kind,
        before,
        after,
        after,
      ]);
    }
    // e: 60 bits at bit 72 of a u64 need more than one 64-bit load.
    expectError(
      () =>
        applyCoreRelocations(program(movImm(1, 0), exit()), [at(0, relo(5, "0:4", "fieldByteOffset"))], local, target),
      /^Cannot apply CO-RE relocation at instruction 0 \(struct bits___l\.e \(0:4\) byte offset\): bitfield "e" cannot be read with one 64-bit load$/,
    );
  });

  test("applyCoreRelocations() follows array indexes in access strings, including the root index and flexible arrays", () => {
    const local = btf(
      struct(5, "item___l", 8, [
        ["v", 1, 0],
        ["w", 1, 32],
      ]),
      array(6, 1, 4),
      array(7, 5, 3),
      array(8, 1, 0),
      struct(9, "arr___l", 48, [
        ["pad", 1, 0],
        ["a", 6, 32],
        ["items", 7, 160],
        ["tail", 8, 352],
      ]),
    );
    const target = btf(
      struct(5, "item", 8, [
        ["w", 1, 0],
        ["v", 1, 32],
      ]),
      array(6, 1, 8),
      array(7, 5, 2),
      array(8, 1, 0),
      struct(9, "arr", 64, [
        ["pre", 3, 0],
        ["a", 6, 64],
        ["items", 7, 320],
        ["tail", 8, 448],
      ]),
    );
    const cases: [access: string, kind: BtfCoreReloKind, local: number, target: number | "poisoned"][] = [
      ["0:1:2", "fieldByteOffset", 12, 16],
      ["0:2:1:0", "fieldByteOffset", 28, 52],
      ["0:1", "fieldByteSize", 16, 32],
      ["0:1:3", "fieldByteSize", 4, 4],
      ["1:1", "fieldByteOffset", 52, 72],
      ["0:3:5", "fieldByteOffset", 64, 76],
      ["0:2:2:0", "fieldByteOffset", 36, "poisoned"],
      ["0:2:2", "fieldExists", 1, 0],
    ];
    for (const [access, kind, before, after] of cases) {
      const insns = program(addImm(1, before), exit());
      const [r] = applyCoreRelocations(insns, [at(0, relo(9, access, kind))], local, target);
      expect([access, kind, r?.localValue, r?.targetValue]).toEqual([access, kind, before, after]);
      if (after !== "poisoned") expect(immAt(insns, 0)).toBe(after);
      else expect(immAt(insns, 0)).toBe(CORE_POISON);
    }
    const [r] = applyCoreRelocations(
      program(addImm(1, 28)),
      [at(0, relo(9, "0:2:1:0", "fieldByteOffset"))],
      local,
      target,
    );
    expect(r?.description).toBe("struct arr___l.items[1].v (0:2:1:0) byte offset");
    const [root] = applyCoreRelocations(
      program(addImm(1, 52)),
      [at(0, relo(9, "1:1", "fieldByteOffset"))],
      local,
      target,
    );
    expect(root?.description).toBe("struct arr___l[1].a (1:1) byte offset");
  });

  test("applyCoreRelocations() finds fields through anonymous structs and unions laid out differently", () => {
    // local: struct nest___l { int a; union { int b; struct { short c; short d; }; }; };
    const local = buildBtf([
      ...BASIC,
      int(5, "short", 2, true),
      struct(6, "", 4, [
        ["c", 5, 0],
        ["d", 5, 16],
      ]),
      union(7, "", 4, [
        ["b", 1, 0],
        ["", 6, 0],
      ]),
      struct(8, "nest___l", 8, [
        ["a", 1, 0],
        ["", 7, 32],
      ]),
    ]);
    // target: struct nest { long long x; struct { int a; }; union { struct { short d; short c; }; int b; }; };
    const target = buildBtf([
      ...BASIC,
      int(5, "short", 2, true),
      struct(6, "", 4, [
        ["d", 5, 0],
        ["c", 5, 16],
      ]),
      union(7, "", 4, [
        ["", 6, 0],
        ["b", 1, 0],
      ]),
      struct(8, "", 4, [["a", 1, 0]]),
      struct(9, "nest", 16, [
        ["x", 3, 0],
        ["", 8, 64],
        ["", 7, 96],
      ]),
    ]);
    const insns = program(addImm(1, 6), addImm(1, 0), addImm(1, 4), addImm(1, 4), exit());
    const results = applyCoreRelocations(
      insns,
      [
        at(0, relo(8, "0:1:1:1", "fieldByteOffset")),
        at(1, relo(8, "0:0", "fieldByteOffset")),
        at(2, relo(8, "0:1:0", "fieldByteOffset")),
        at(3, relo(8, "0:1:1:0", "fieldByteOffset")),
      ],
      local,
      target,
    );
    expect(results.map((r) => [r.description, r.targetValue])).toEqual([
      ["struct nest___l.d (0:1:1:1) byte offset", 12],
      ["struct nest___l.a (0:0) byte offset", 8],
      ["struct nest___l.b (0:1:0) byte offset", 12],
      ["struct nest___l.c (0:1:1:0) byte offset", 14],
    ]);
    expect([immAt(insns, 0), immAt(insns, 1), immAt(insns, 2), immAt(insns, 3)]).toEqual([12, 8, 12, 14]);
  });

  test("applyCoreRelocations() matches names without their ___flavour suffix", () => {
    const cases: [local: string, target: string, matches: boolean][] = [
      ["foo___v2", "foo", true],
      ["foo", "foo___2", true],
      ["foo___a", "foo___b", true],
      ["foo___a___b", "foo___a___c", true],
      ["foo___a___b", "foo___a", false],
      ["foo___", "foo", false],
      ["foo___", "foo___", true],
      ["a____b", "a", false],
      ["foo", "foobar", false],
    ];
    for (const [localName, targetName, matches] of cases) {
      const local = btf(struct(5, localName, 4, [["x", 1, 0]]));
      const target = btf(struct(5, targetName, 4, [["x", 1, 0]]));
      const insns = program(movImm(1, 1));
      applyCoreRelocations(insns, [at(0, relo(5, "0", "typeExists"))], local, target);
      expect([localName, targetName, immAt(insns, 0)]).toEqual([localName, targetName, matches ? 1 : 0]);
    }
  });

  test("applyCoreRelocations() fails when candidates put a field at different offsets", () => {
    const local = btf(
      struct(5, "pair___l", 8, [
        ["a", 1, 0],
        ["b", 1, 32],
      ]),
    );
    const target = btf(
      struct(5, "pair", 8, [
        ["a", 1, 0],
        ["b", 1, 32],
      ]),
      struct(6, "pair___2", 8, [
        ["b", 1, 0],
        ["a", 1, 32],
      ]),
    );
    const before = program(addImm(1, 4), exit());
    const insns = before.slice();
    const err = expectError(
      () => applyCoreRelocations(insns, [at(0, relo(5, "0:1", "fieldByteOffset"))], local, target),
      /^Cannot apply CO-RE relocation at instruction 0 \(struct pair___l\.b \(0:1\) byte offset\): ambiguous: target types \[5\] struct pair and \[6\] struct pair___2 put the field at bit offsets 32 and 0$/,
    );
    expect(err.instruction).toBe(0);
    expect(err.relo).toEqual(relo(5, "0:1", "fieldByteOffset"));
    expect(err.description).toBe("struct pair___l.b (0:1) byte offset");
    expect(insns).toEqual(before);
  });

  test("applyCoreRelocations() accepts candidates that agree and drops the ones that did not match for later relocations", () => {
    const local = btf(
      struct(5, "pair___l", 12, [
        ["a", 1, 0],
        ["b", 1, 32],
        ["c", 1, 64],
      ]),
    );
    const target = btf(
      { kind: "ptr", id: 5, name: "", typeId: 1 },
      { kind: "ptr", id: 6, name: "", typeId: 2 },
      struct(7, "pair", 16, [
        ["p", 5, 0],
        ["a", 1, 64],
        ["b", 1, 96],
      ]),
      struct(8, "pair___2", 16, [
        ["p", 6, 0],
        ["a", 1, 64],
        ["c", 1, 96],
      ]),
    );
    const insns = program(addImm(1, 0), movImm(1, 1), movImm(1, 1), exit());
    const results = applyCoreRelocations(
      insns,
      [
        at(0, relo(5, "0:0", "fieldByteOffset")),
        at(1, relo(5, "0:1", "fieldExists")),
        at(2, relo(5, "0:2", "fieldExists")),
      ],
      local,
      target,
    );
    // a: both candidates agree on offset 8. b: only pair matches, so pair___2 is dropped and c is not found.
    expect(results.map((r) => r.targetValue)).toEqual([8, 1, 0]);
    const alone = program(movImm(1, 1));
    applyCoreRelocations(alone, [at(0, relo(5, "0:2", "fieldExists"))], local, target);
    expect(immAt(alone, 0)).toBe(1);
  });

  test("applyCoreRelocations() fails on a type id relocation with two compatible target types, as libbpf does", () => {
    const local = btf(struct(5, "dup", 4, [["x", 1, 0]]));
    const target = btf(struct(5, "dup", 4, [["x", 1, 0]]), struct(6, "dup", 4, [["x", 1, 0]]));
    expectError(
      () => applyCoreRelocations(program(movImm(1, 5)), [at(0, relo(5, "0", "typeIdTarget"))], local, target),
      /ambiguous: target types \[5\] struct dup and \[6\] struct dup give 5 and 6$/,
    );
  });

  test("applyCoreRelocations() resizes loads of unsigned fields and pointers and poisons loads of signed fields that change size", () => {
    const local = btf(
      { kind: "ptr", id: 5, name: "", typeId: 0 },
      struct(6, "sizes___l", 16, [
        ["u", 2, 0],
        ["s", 1, 32],
        ["p", 5, 64],
      ]),
    );
    const target = btf(
      { kind: "ptr", id: 5, name: "", typeId: 0 },
      struct(6, "sizes", 24, [
        ["u", 4, 0],
        ["s", 3, 64],
        ["p", 5, 128],
      ]),
    );
    const insns = program(ldxW(1, 2, 0), ldxW(1, 2, 4), stxW(2, 1, 0), ldxDw(1, 2, 8), exit());
    const results = applyCoreRelocations(
      insns,
      [
        at(0, relo(6, "0:0", "fieldByteOffset")),
        at(1, relo(6, "0:1", "fieldByteOffset")),
        at(2, relo(6, "0:0", "fieldByteOffset")),
        at(3, relo(6, "0:2", "fieldByteOffset")),
      ],
      local,
      target,
    );
    expect(results.map((r) => r.targetValue)).toEqual([0, "poisoned", 0, 16]);
    expect([codeAt(insns, 0), offAt(insns, 0)]).toEqual([0x79, 0]);
    expect([...insns.subarray(8, 16)]).toEqual(insn(0x85, 0, 0, 0, CORE_POISON));
    expect(codeAt(insns, 2)).toBe(0x7b);
    expect([codeAt(insns, 3), offAt(insns, 3)]).toEqual([0x79, 16]);
    // The load's size must be the local field's to be resized.
    expectError(
      () => applyCoreRelocations(program(ldxB(1, 2, 0)), [at(0, relo(6, "0:0", "fieldByteOffset"))], local, target),
      /: the instruction accesses 1 bytes, expected 4$/,
    );
  });

  test("applyCoreRelocations() patches 64-bit enum values and sign-extends negative 32-bit ones", () => {
    const local = btf(
      { kind: "enum64", id: 5, name: "big___l", size: 8, signed: false, values: [{ name: "HUGE", value: 1n << 40n }] },
      { kind: "enum", id: 6, name: "neg___l", size: 4, signed: true, values: [{ name: "MINUS", value: -2 }] },
    );
    const target = btf(
      { kind: "enum64", id: 5, name: "big", size: 8, signed: false, values: [{ name: "HUGE", value: 1n << 41n }] },
      { kind: "enum", id: 6, name: "neg", size: 4, signed: true, values: [{ name: "MINUS", value: -1 }] },
    );
    const insns = program(ldImm64(1, 1n << 40n), movImm(2, -2), ldImm64(3, -2n), exit());
    const results = applyCoreRelocations(
      insns,
      [at(0, relo(5, "0", "enumvalValue")), at(2, relo(6, "0", "enumvalValue")), at(3, relo(6, "0", "enumvalValue"))],
      local,
      target,
    );
    expect(imm64At(insns, 0)).toBe(1n << 41n);
    expect(immAt(insns, 2)).toBe(-1);
    expect(imm64At(insns, 3)).toBe(0xffff_ffff_ffff_ffffn);
    expect(results.map((r) => [r.localValue, r.targetValue])).toEqual([
      [1n << 40n, 1n << 41n],
      [0xffff_ffff_ffff_fffen, 0xffff_ffff_ffff_ffffn],
      [0xffff_ffff_ffff_fffen, 0xffff_ffff_ffff_ffffn],
    ]);
    expectError(
      () => applyCoreRelocations(program(movImm(1, 0)), [at(0, relo(5, "0", "enumvalValue"))], local, target),
      /: the instruction's immediate is 0, expected 1099511627776$/,
    );
  });

  test("applyCoreRelocations() checks types for typeMatches and gives the local id for typeIdLocal without a target", () => {
    const local = btf(struct(5, "m___l", 4, [["a", 1, 0]]));
    const insns = program(movImm(1, 1), movImm(1, 1), movImm(1, 123), movImm(1, 4));
    const results = applyCoreRelocations(
      insns,
      [at(0, relo(5, "0", "typeMatches")), at(2, relo(5, "0", "typeIdLocal")), at(3, relo(5, "0", "typeSize"))],
      local,
      btf(
        struct(5, "m", 8, [
          ["b", 1, 0],
          ["a", 1, 32],
        ]),
      ),
    );
    expect(results.map((r) => [r.description, r.localValue, r.targetValue])).toEqual([
      ["struct m___l matches", 1, 1],
      ["struct m___l local type id", 5, 5],
      ["struct m___l size", 4, 8],
    ]);
    expect([immAt(insns, 0), immAt(insns, 2), immAt(insns, 3)]).toEqual([1, 5, 8]);
    const mismatch = program(movImm(1, 1));
    applyCoreRelocations(mismatch, [at(0, relo(5, "0", "typeMatches"))], local, btf(struct(5, "m", 8, [["a", 3, 0]])));
    expect(immAt(mismatch, 0)).toBe(0);
  });

  test("applyCoreRelocations() fails when the instruction does not hold the local value or cannot be relocated", () => {
    const local = btf(
      struct(5, "s___l", 8, [
        ["a", 1, 0],
        ["b", 1, 32],
      ]),
    );
    const target = btf(
      struct(5, "s", 8, [
        ["b", 1, 0],
        ["a", 1, 32],
      ]),
    );
    const b = relo(5, "0:1", "fieldByteOffset");
    const cases: [insns: number[][], instruction: number, pattern: RegExp][] = [
      [[addImm(1, 8)], 0, /: the instruction's immediate is 8, expected 4$/],
      [[ldxW(1, 2, 0)], 0, /: the instruction's offset is 0, expected 4$/],
      [[ldImm64(1, 5n)], 0, /: the instruction's immediate is 5, expected 4$/],
      [[movReg(1, 2)], 0, /: instruction 0xbf takes a register, not an immediate$/],
      [[insn(0x05, 0, 0, 4, 0)], 0, /: instruction 0x05 cannot be relocated/],
      [[insn(0xd4, 1, 0, 0, 4)], 0, /: a byte swap instruction cannot be relocated$/],
      [[insn(0x18, 1, 0, 0, 4)], 0, /: the instruction is not a plain 64-bit immediate load$/],
      [[addImm(1, 4)], 1, /: instruction index 1 is outside the 1 instructions$/],
      [[addImm(1, 4)], -1, /: instruction index -1 is outside the 1 instructions$/],
    ];
    for (const [list, instruction, pattern] of cases) {
      const insns = program(...list);
      const before = insns.slice();
      const err = expectError(() => applyCoreRelocations(insns, [at(instruction, b)], local, target), pattern);
      expect(err.message).toContain(`at instruction ${instruction} (struct s___l.b (0:1) byte offset)`);
      expect(insns).toEqual(before);
    }
  });

  test("applyCoreRelocations() writes nothing when a later relocation fails", () => {
    const local = btf(
      struct(5, "s___l", 8, [
        ["a", 1, 0],
        ["b", 1, 32],
      ]),
    );
    const target = btf(
      struct(5, "s", 8, [
        ["b", 1, 0],
        ["a", 1, 32],
      ]),
    );
    const insns = program(addImm(1, 0), addImm(1, 0));
    const before = insns.slice();
    expectError(
      () =>
        applyCoreRelocations(
          insns,
          [at(0, relo(5, "0:0", "fieldByteOffset")), at(1, relo(5, "0:1", "fieldByteOffset"))],
          local,
          target,
        ),
      /expected 4$/,
    );
    expect(insns).toEqual(before);
  });

  test("applyCoreRelocations() rejects malformed records with CoreRelocationError", () => {
    const local = btf(
      struct(5, "s___l", 8, [
        ["a", 1, 0],
        ["arr", 7, 32],
      ]),
      { kind: "enum", id: 6, name: "e___l", size: 4, signed: false, values: [{ name: "A", value: 0 }] },
      array(7, 1, 1),
      struct(8, "", 4, [["x", 1, 0]]),
      { kind: "fwd", id: 9, name: "opaque", union: false },
    );
    const target = btf(
      struct(5, "s", 8, [
        ["a", 1, 0],
        ["arr", 7, 32],
      ]),
      { kind: "enum", id: 6, name: "e", size: 4, signed: false, values: [] },
      array(7, 1, 1),
    );
    const cases: [typeId: number, access: string, kind: BtfCoreReloKind, pattern: RegExp][] = [
      [
        5,
        "",
        "fieldByteOffset",
        /^Cannot apply CO-RE relocation at instruction 0 \(struct s___l \(\) byte offset\): access string "" is not colon-separated indexes$/,
      ],
      [5, "0:", "fieldByteOffset", /access string "0:" is not colon-separated indexes$/],
      [5, ":0", "fieldByteOffset", /access string ":0" is not colon-separated indexes$/],
      [5, "0:-1", "fieldByteOffset", /access string "0:-1" is not colon-separated indexes$/],
      [5, "0:x", "fieldByteOffset", /is not colon-separated indexes$/],
      [5, "0:1", "typeSize", /access string "0:1" must be "0" for a type relocation$/],
      [
        5,
        "0:2",
        "fieldByteOffset",
        /\(struct s___l \(0:2\) byte offset\): member index 2 is out of range: struct s___l has 2 members$/,
      ],
      [5, "0:99999999999", "fieldByteOffset", /access index 99999999999 is too large$/],
      [5, "0:1:1", "fieldByteOffset", /array index 1 is out of range: the array has 1 elements$/],
      [
        5,
        "0:0:0",
        "fieldByteOffset",
        /access index 2 \(0\) goes into int "int", which is not a struct, union or array$/,
      ],
      [5, ["0", ...new Array<string>(64).fill("0")].join(":"), "fieldByteOffset", /has 65 indexes, at most 64$/],
      [5, "0:1:0", "fieldSigned", /a signed relocation cannot apply to an array element$/],
      [6, "1", "enumvalValue", /enumerator index 1 is out of range: enum e___l has 1$/],
      [6, "0:0", "enumvalValue", /must be one enumerator index$/],
      [5, "0", "enumvalExists", /struct s___l is not an enum$/],
      [8, "0:0", "fieldByteOffset", /struct \(anon\) \[8\] is anonymous: CO-RE relocates named types only$/],
      [9, "0:0", "fieldByteOffset", /cannot size type 9: Cannot size BTF type 9/],
      [
        99,
        "0:0",
        "fieldByteOffset",
        /^Cannot apply CO-RE relocation at instruction 0 \(type 99 \(0:0\) byte offset\): local type id 99 does not exist$/,
      ],
    ];
    for (const [typeId, access, kind, pattern] of cases) {
      const r = relo(typeId, access, kind);
      const err = expectError(() => applyCoreRelocations(program(addImm(1, 0)), [at(0, r)], local, target), pattern);
      expect(err.relo).toBe(r);
    }
  });

  test("applyCoreRelocations() patches a Buffer in place without touching the memory around it", () => {
    const local = btf(struct(5, "s___l", 4, [["a", 1, 0]]));
    const target = btf(
      struct(5, "s", 8, [
        ["x", 1, 0],
        ["a", 1, 32],
      ]),
    );
    const file = Buffer.from([0xff, ...program(addImm(1, 0)), 0xff]);
    const insns = file.subarray(1, 9);
    applyCoreRelocations(insns, [at(0, relo(5, "0:0", "fieldByteOffset"))], local, target);
    expect([...file]).toEqual([0xff, ...addImm(1, 4), 0xff]);
  });

  test("applyCoreRelocations() rejects a buffer that is not whole instructions", () => {
    const local = btf();
    expect(() => applyCoreRelocations(new Uint8Array(12), [], local, local)).toThrow(RangeError);
    expect(() => applyCoreRelocations([] as unknown as Uint8Array, [], local, local)).toThrow(TypeError);
    expect(applyCoreRelocations(new Uint8Array(0), [], local, local)).toEqual([]);
  });
});
