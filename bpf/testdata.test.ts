// The BPF test corpus (bpf/testdata/*.c), checked with LLVM's and bpftool's
// view of the compiled objects. These tests document what each object holds
// for the ELF/BTF loader: section names, symbols, relocation types, BTF map
// definitions, .BTF.ext CO-RE records. They need clang-19/llvm-19 and bpftool
// but no root; loading the objects is the loader's kernel tests' job.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, test } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const testdata = join(root, "bpf/testdata");
const built = join(root, "bpf/build/testdata");

const hasLlvm = ["clang-19", "llvm-readobj-19", "llvm-objdump-19"].every(
  (tool) => spawnSync(tool, ["--version"]).status === 0,
);
const hasBpftool = spawnSync("bpftool", ["version"]).status === 0;
// CO-RE sources include vmlinux.h, which bpf/build.sh makes from the kernel's BTF.
const hasVmlinux = existsSync("/sys/kernel/btf/vmlinux") || existsSync(join(root, "bpf/build/vmlinux.h"));

const EM_BPF = 247;
const BPF_MAP_TYPE = {
  hash: 1,
  array: 2,
  progArray: 3,
  percpuArray: 6,
  arrayOfMaps: 12,
  hashOfMaps: 13,
  ringbuf: 27,
} as const;
const LIBBPF_PIN_BY_NAME = 1;

/** CO-RE relocation kinds (enum bpf_core_relo_kind). */
const CORE = {
  fieldByteOffset: 0,
  fieldByteSize: 1,
  fieldExists: 2,
  typeIdLocal: 6,
  typeIdTarget: 7,
  typeExists: 8,
  typeSize: 9,
  enumvalExists: 10,
  enumvalValue: 11,
} as const;

interface ElfSection {
  index: number;
  name: string;
  type: string;
  offset: number;
  size: number;
  flags: string[];
  info: number;
}

interface ElfSymbol {
  name: string;
  value: number;
  size: number;
  bind: string;
  type: string;
  /** Name of the section the symbol is defined in ("Undefined" for externs). */
  section: string;
}

interface ElfRelocation {
  /** The section the relocation applies to (sh_info of the REL section). */
  target: string;
  offset: number;
  type: string;
  symbol: string;
}

interface Elf {
  bytes: Buffer;
  sections: ElfSection[];
  symbols: ElfSymbol[];
  relocations: ElfRelocation[];
}

interface NameValue {
  Name: string;
  Value: number;
}

interface ReadobjJson {
  Sections: {
    Section: {
      Index: number;
      Name: NameValue;
      Type: NameValue;
      Flags: { Flags: NameValue[] };
      Offset: number;
      Size: number;
      Info: number;
    };
  }[];
  Symbols: {
    Symbol: { Name: NameValue; Value: number; Size: number; Binding: NameValue; Type: NameValue; Section: NameValue };
  }[];
  Relocations: {
    SectionIndex: number;
    Relocs: { Relocation: { Offset: number; Type: NameValue; Symbol: NameValue } }[];
  }[];
}

interface BtfMember {
  name: string;
  type_id: number;
  bits_offset: number;
}

interface BtfType {
  id: number;
  kind: string;
  name: string;
  size?: number;
  type_id?: number;
  nr_elems?: number;
  linkage?: string;
  encoding?: string;
  members?: BtfMember[];
  vars?: { type_id: number; offset: number; size: number }[];
}

/** A BTF map definition as read by btfMap(). */
interface BtfMapDef {
  /** The `__uint()` members: type, max_entries, map_flags, pinning, ... */
  uints: Record<string, number>;
  keySize?: number;
  valueSize?: number;
  /** What `__array(values, T)` points at: an inner map definition or a FUNC_PROTO. */
  values?: BtfType;
}

function objectPath(name: string): string {
  return join(built, `${name}.o`);
}

function readElf(name: string): Elf {
  const path = objectPath(name);
  const out = execFileSync(
    "llvm-readobj-19",
    ["--elf-output-style=JSON", "--sections", "--symbols", "--relocations", path],
    {
      encoding: "utf8",
      maxBuffer: 64 << 20,
    },
  );
  const [json] = JSON.parse(out) as ReadobjJson[];
  if (json === undefined) throw new Error(`No llvm-readobj output for "${path}"`);
  const sections = json.Sections.map(({ Section: s }) => ({
    index: s.Index,
    name: s.Name.Name,
    type: s.Type.Name,
    offset: s.Offset,
    size: s.Size,
    flags: s.Flags.Flags.map((f) => f.Name),
    info: s.Info,
  }));
  const byIndex = new Map(sections.map((s) => [s.index, s]));
  return {
    bytes: readFileSync(path),
    sections,
    symbols: json.Symbols.map(({ Symbol: s }) => ({
      name: s.Name.Name,
      value: s.Value,
      size: s.Size,
      bind: s.Binding.Name,
      type: s.Type.Name,
      section: s.Section.Name,
    })),
    relocations: json.Relocations.flatMap((r) =>
      r.Relocs.map(({ Relocation: rel }) => ({
        target: byIndex.get(byIndex.get(r.SectionIndex)?.info ?? -1)?.name ?? "?",
        offset: rel.Offset,
        type: rel.Type.Name,
        symbol: rel.Symbol.Name,
      })),
    ),
  };
}

function readBtf(name: string): BtfType[] {
  const out = execFileSync("bpftool", ["-j", "btf", "dump", "file", objectPath(name), "format", "raw"], {
    encoding: "utf8",
    maxBuffer: 64 << 20,
  });
  return (JSON.parse(out) as { types: BtfType[] }).types;
}

function section(elf: Elf, name: string): ElfSection {
  const s = elf.sections.find((x) => x.name === name);
  if (s === undefined) throw new Error(`No section "${name}"`);
  return s;
}

function sectionNames(elf: Elf): string[] {
  return elf.sections.map((s) => s.name);
}

/** The program sections: executable, allocated, not ".text". */
function programSections(elf: Elf): string[] {
  return elf.sections
    .filter((s) => s.type === "SHT_PROGBITS" && s.flags.includes("SHF_EXECINSTR") && s.name !== ".text")
    .map((s) => s.name);
}

function functions(elf: Elf, sectionName: string): ElfSymbol[] {
  return elf.symbols
    .filter((s) => s.type === "Function" && s.section === sectionName)
    .sort((a, b) => a.value - b.value);
}

function symbol(elf: Elf, name: string): ElfSymbol {
  const s = elf.symbols.find((x) => x.name === name);
  if (s === undefined) throw new Error(`No symbol "${name}"`);
  return s;
}

/** Relocations of code and map sections (not of DWARF, .BTF or .BTF.ext, which a loader ignores). */
function codeRelocations(elf: Elf): ElfRelocation[] {
  return elf.relocations.filter((r) => !r.target.startsWith(".debug") && !r.target.startsWith(".BTF"));
}

function btfType(types: BtfType[], id: number): BtfType {
  const t = types.find((x) => x.id === id);
  if (t === undefined) throw new Error(`No BTF type ${id}`);
  return t;
}

function btfNamed(types: BtfType[], kind: string, name: string): BtfType {
  const t = types.find((x) => x.kind === kind && x.name === name);
  if (t === undefined) throw new Error(`No BTF ${kind} "${name}"`);
  return t;
}

function skipTypedefs(types: BtfType[], id: number): BtfType {
  let t = btfType(types, id);
  for (let i = 0; i < 32 && (t.kind === "TYPEDEF" || t.kind === "VOLATILE" || t.kind === "CONST"); i++) {
    t = btfType(types, t.type_id ?? 0);
  }
  return t;
}

/**
 * Reads a BTF-defined map (a VAR in DATASEC ".maps") the way a loader does:
 * `__uint(name, N)` is a member `int (*name)[N]` (PTR to ARRAY with nr_elems N);
 * `__type(name, T)` is a member `T *name`; `__array(values, T)` is a member
 * `T *values[]` (ARRAY of 0 PTRs).
 */
function btfMap(types: BtfType[], name: string): BtfMapDef {
  const variable = btfNamed(types, "VAR", name);
  const def = btfType(types, variable.type_id ?? 0);
  expect(def.kind).toBe("STRUCT");
  const uints: Record<string, number> = {};
  const result: BtfMapDef = { uints };
  for (const m of def.members ?? []) {
    const ptr = btfType(types, m.type_id);
    if (m.name === "values") {
      expect(ptr.kind).toBe("ARRAY");
      expect(ptr.nr_elems).toBe(0);
      const elem = btfType(types, ptr.type_id ?? 0);
      expect(elem.kind).toBe("PTR");
      result.values = skipTypedefs(types, elem.type_id ?? 0);
      continue;
    }
    expect(ptr.kind).toBe("PTR");
    const target = btfType(types, ptr.type_id ?? 0);
    if (m.name === "key" || m.name === "value") {
      const size = skipTypedefs(types, target.id).size;
      if (m.name === "key") result.keySize = size ?? 0;
      else result.valueSize = size ?? 0;
    } else {
      expect(target.kind).toBe("ARRAY");
      uints[m.name] = target.nr_elems ?? -1;
    }
  }
  return result;
}

/** The kinds of the CO-RE records in .BTF.ext (core_relo_off/len of its header). */
function coreReloKinds(elf: Elf): number[] {
  const ext = section(elf, ".BTF.ext");
  const b = elf.bytes.subarray(ext.offset, ext.offset + ext.size);
  expect(b.readUInt16LE(0)).toBe(0xeb9f);
  const hdrLen = b.readUInt32LE(4);
  if (hdrLen < 32) return [];
  const start = hdrLen + b.readUInt32LE(24);
  const end = start + b.readUInt32LE(28);
  const kinds: number[] = [];
  if (end === start) return kinds;
  const recSize = b.readUInt32LE(start);
  for (let off = start + 4; off + 8 <= end;) {
    const count = b.readUInt32LE(off + 4);
    off += 8;
    for (let i = 0; i < count && off + recSize <= end; i++, off += recSize) kinds.push(b.readUInt32LE(off + 12));
  }
  return kinds;
}

function disassemble(name: string, sectionName: string): string {
  return execFileSync("llvm-objdump-19", ["-d", "--no-show-raw-insn", `--section=${sectionName}`, objectPath(name)], {
    encoding: "utf8",
  });
}

function usesVmlinuxH(name: string): boolean {
  return readFileSync(join(testdata, `${name}.c`), "utf8").includes('#include "vmlinux.h"');
}

const OBJECTS = [
  "sections",
  "subprog",
  "globals",
  "tailcall",
  "map_in_map",
  "core",
  "pinned_a",
  "pinned_b",
  "pinned_bad",
  "kconfig",
  "libbpf_style",
  "verifier_fail",
  "btf_kinds",
] as const;

/** Runs bpf/build.sh when an object is missing or older than its source or a header. */
function ensureBuilt(): void {
  const newest = Math.max(
    statSync(join(root, "bpf/build.sh")).mtimeMs,
    ...readdirSync(join(root, "bpf/include")).map((f) => statSync(join(root, "bpf/include", f)).mtimeMs),
  );
  const stale = OBJECTS.some((name) => {
    if (!hasVmlinux && usesVmlinuxH(name)) return false;
    const obj = objectPath(name);
    if (!existsSync(obj)) return true;
    const objTime = statSync(obj).mtimeMs;
    return objTime < newest || objTime < statSync(join(testdata, `${name}.c`)).mtimeMs;
  });
  if (stale) execFileSync("bash", [join(root, "bpf/build.sh")], { stdio: "pipe" });
}

describe.skipIf(!hasLlvm)("bpf/testdata objects", () => {
  beforeAll(() => ensureBuilt(), 120_000);

  test("every object is a little-endian ELF64 for EM_BPF with a license and BTF", () => {
    for (const name of OBJECTS) {
      if (!hasVmlinux && usesVmlinuxH(name)) continue;
      const elf = readElf(name);
      expect(elf.bytes.subarray(0, 6)).toEqual(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1]));
      expect(elf.bytes.readUInt16LE(18)).toBe(EM_BPF);
      expect(sectionNames(elf)).toEqual(expect.arrayContaining(["license", ".BTF", ".BTF.ext", ".symtab", ".strtab"]));
      const license = section(elf, "license");
      expect(elf.bytes.subarray(license.offset, license.offset + license.size).toString()).toBe("Dual BSD/GPL\0");
    }
  });

  test("sections.o has one program per libbpf section name and two programs in xdp and tc", () => {
    const elf = readElf("sections");
    expect(programSections(elf).sort()).toEqual(
      [
        "xdp",
        "tc",
        "classifier",
        "tcx/ingress",
        "tcx/egress",
        "sockops",
        "sk_msg",
        "sk_skb/stream_parser",
        "sk_skb/stream_verdict",
        "cgroup/connect4",
        "cgroup/connect6",
        "cgroup/sendmsg4",
        "cgroup/recvmsg4",
        "cgroup_skb/ingress",
        "cgroup_skb/egress",
        "socket",
        "kprobe/do_nanosleep",
        "tracepoint/syscalls/sys_enter_getpid",
        "raw_tp/sys_enter",
      ].sort(),
    );
    for (const [sec, first, second] of [
      ["xdp", "xdp_pass", "xdp_drop_counted"],
      ["tc", "tc_ok", "tc_shot_counted"],
    ] as const) {
      const progs = functions(elf, sec);
      expect(progs.map((p) => p.name)).toEqual([first, second]);
      expect(progs.every((p) => p.bind === "Global" && p.size > 0)).toBe(true);
      const start = progs[1]?.value ?? 0;
      expect(start).toBeGreaterThan(0);
      // The map reference sits in the second program: its r_offset counts from
      // the section start, not the program start.
      const [rel] = codeRelocations(elf).filter((r) => r.target === sec);
      expect(rel).toMatchObject({ type: "R_BPF_64_64", symbol: "section_hits" });
      expect(rel?.offset).toBeGreaterThanOrEqual(start);
    }
    expect(functions(elf, "tcx/ingress").map((p) => p.name)).toEqual(["tcx_ingress_pass"]);
  });

  test("subprog.o has .text subprograms reached through R_BPF_64_32 call relocations", () => {
    const elf = readElf("subprog");
    const text = functions(elf, ".text");
    expect(text.map((f) => [f.name, f.bind]).sort()).toEqual(
      [
        ["add", "Local"],
        ["count_call", "Local"],
        ["global_len", "Global"],
        ["global_scale", "Global"],
        ["twice", "Local"],
      ].sort(),
    );
    const rels = codeRelocations(elf);
    // Calls to static functions are relative to the .text section symbol (the
    // target is in the call's imm); calls to global functions name the function.
    for (const prog of ["tc", "xdp"]) {
      expect(rels.filter((r) => r.target === prog && r.type === "R_BPF_64_32" && r.symbol === ".text").length).toBe(2);
    }
    expect(rels.filter((r) => r.target === "tc" && r.type === "R_BPF_64_32").map((r) => r.symbol)).toEqual(
      expect.arrayContaining(["global_len", "global_scale"]),
    );
    // twice() calls add() inside .text: a pc-relative call with no relocation.
    expect(rels.filter((r) => r.target === ".text")).toEqual([
      { target: ".text", offset: expect.any(Number), type: "R_BPF_64_64", symbol: "subprog_calls" },
    ]);
    expect(disassemble("subprog", ".text")).toMatch(/<twice>:[\s\S]*call 0x1\n/);
  });

  test.skipIf(!hasBpftool)("subprog.o's BTF gives the global functions global linkage and the others static", () => {
    const types = readBtf("subprog");
    const linkage = Object.fromEntries(types.filter((t) => t.kind === "FUNC").map((t) => [t.name, t.linkage]));
    expect(linkage).toEqual({
      add: "static",
      twice: "static",
      count_call: "static",
      global_scale: "global",
      global_len: "global",
      subprog_tc: "global",
      subprog_xdp: "global",
    });
  });

  test("globals.o has .rodata, .data, .bss and named .rodata.*/.data.* sections referenced by ld_imm64", () => {
    const elf = readElf("globals");
    expect(sectionNames(elf)).toEqual(
      expect.arrayContaining([".rodata", ".rodata.custom", ".rodata.str1.1", ".data", ".data.custom", ".bss"]),
    );
    expect(section(elf, ".bss").type).toBe("SHT_NOBITS");
    expect(section(elf, ".rodata").flags).not.toContain("SHF_WRITE");
    expect(section(elf, ".data.custom").flags).toContain("SHF_WRITE");
    const where = Object.fromEntries(
      elf.symbols.filter((s) => s.type === "Object").map((s) => [s.name, [s.section, s.value, s.size]]),
    );
    expect(where).toMatchObject({
      magic: [".rodata", 0, 4],
      small_signed: [".rodata", 4, 2],
      big_const: [".rodata", 8, 8],
      enabled: [".rodata", 16, 1],
      custom_step: [".rodata.custom", 0, 4],
      data_counter: [".data", 0, 8],
      data_pair: [".data", 8, 8],
      custom_counter: [".data.custom", 0, 4],
      bss_magic_plus_one: [".bss", 0, 4],
      bss_len: [".bss", 4, 4],
      bss_big: [".bss", 8, 8],
      bss_message: [".bss", 16, 16],
    });
    const rels = codeRelocations(elf).filter((r) => r.target === "tc");
    expect(rels.every((r) => r.type === "R_BPF_64_64")).toBe(true);
    // Variables are referenced by their own symbol; the string literal by the
    // section symbol, with its offset in the instruction's imm.
    expect(new Set(rels.map((r) => r.symbol))).toEqual(
      new Set([
        "magic",
        "small_signed",
        "big_const",
        "enabled",
        "custom_step",
        "data_counter",
        "data_pair",
        "custom_counter",
        "bss_magic_plus_one",
        "bss_len",
        "bss_big",
        "bss_message",
        ".rodata.str1.1",
      ]),
    );
    const str = section(elf, ".rodata.str1.1");
    expect(elf.bytes.subarray(str.offset, str.offset + str.size).toString()).toBe("magic=%u\0");
  });

  test.skipIf(!hasBpftool)("globals.o has a DATASEC per named data section, none for .rodata.str1.1", () => {
    const types = readBtf("globals");
    const datasecs = types.filter((t) => t.kind === "DATASEC");
    expect(datasecs.map((t) => t.name).sort()).toEqual(
      [".bss", ".data", ".data.custom", ".rodata", ".rodata.custom", "license"].sort(),
    );
    // clang leaves DATASEC sizes and variable offsets at 0: the loader takes
    // them from the ELF section sizes and symbol values (like libbpf).
    expect(datasecs.every((t) => t.size === 0 && (t.vars ?? []).every((v) => v.offset === 0))).toBe(true);
    const rodata = btfNamed(types, "DATASEC", ".rodata");
    const vars = (rodata.vars ?? []).map((v) => btfType(types, v.type_id));
    expect(vars.map((v) => v.name)).toEqual(["magic", "small_signed", "big_const", "enabled"]);
    // `volatile const` is VOLATILE -> CONST -> INT (or the other way round).
    const ints = vars.map((v) => skipTypedefs(types, v.type_id ?? 0));
    expect(ints.map((t) => [t.kind, t.size, t.encoding])).toEqual([
      ["INT", 4, "(none)"],
      ["INT", 2, "SIGNED"],
      ["INT", 8, "(none)"],
      ["INT", 1, "BOOL"],
    ]);
  });

  test("tailcall.o initialises its prog array with R_BPF_64_ABS64 relocations in .rel.maps", () => {
    const elf = readElf("tailcall");
    // The definition is 24 bytes (type, max_entries, key) plus 8 per slot up to the last initialised one.
    const table = symbol(elf, "jump_table");
    expect([table.section, table.value, table.size]).toEqual([".maps", 0, 48]);
    // `values` follows 3 pointer-sized members: slot i is at offset 24 + 8 * i.
    expect(codeRelocations(elf).filter((r) => r.target === ".maps")).toEqual([
      { target: ".maps", offset: 24, type: "R_BPF_64_ABS64", symbol: "tail_target_a" },
      { target: ".maps", offset: 40, type: "R_BPF_64_ABS64", symbol: "tail_target_b" },
    ]);
    expect(functions(elf, "tc").map((f) => f.name)).toEqual([
      "tail_target_a",
      "tail_target_b",
      "tail_entry",
      "tail_entry_static",
    ]);
    // bpf_tail_call is helper 12.
    expect(disassemble("tailcall", "tc").match(/call 0xc\n/g)?.length).toBe(2);
  });

  test.skipIf(!hasBpftool)("tailcall.o's jump_table is a prog array whose values are function pointers", () => {
    const types = readBtf("tailcall");
    const map = btfMap(types, "jump_table");
    expect(map.uints).toEqual({ type: BPF_MAP_TYPE.progArray, max_entries: 4 });
    expect(map.keySize).toBe(4);
    expect(map.valueSize).toBeUndefined();
    expect(map.values?.kind).toBe("FUNC_PROTO");
  });

  test("map_in_map.o initialises its outer maps with relocations against the inner maps' symbols", () => {
    const elf = readElf("map_in_map");
    const at = (name: string): number => symbol(elf, name).value;
    // `values` follows 3 pointer-sized members (type, max_entries, key): slot i is at + 24 + 8 * i.
    expect(codeRelocations(elf).filter((r) => r.target === ".maps")).toEqual([
      { target: ".maps", offset: at("outer_array") + 24, type: "R_BPF_64_ABS64", symbol: "inner_a" },
      { target: ".maps", offset: at("outer_array") + 32, type: "R_BPF_64_ABS64", symbol: "inner_b" },
      { target: ".maps", offset: at("outer_hash") + 24 + 8, type: "R_BPF_64_ABS64", symbol: "inner_h" },
    ]);
    for (const name of ["inner_a", "inner_b", "inner_h", "outer_array", "outer_hash", "outer_empty"]) {
      expect(symbol(elf, name)).toMatchObject({ section: ".maps", type: "Object" });
    }
  });

  test.skipIf(!hasBpftool)("map_in_map.o's outer maps carry their inner map definitions in BTF", () => {
    const types = readBtf("map_in_map");
    const outerArray = btfMap(types, "outer_array");
    expect(outerArray.uints).toEqual({ type: BPF_MAP_TYPE.arrayOfMaps, max_entries: 2 });
    expect(outerArray.values?.name).toBe("inner_array");
    const outerHash = btfMap(types, "outer_hash");
    expect(outerHash.uints).toEqual({ type: BPF_MAP_TYPE.hashOfMaps, max_entries: 4 });
    expect(outerHash.values?.name).toBe("inner_hash");
    const outerEmpty = btfMap(types, "outer_empty");
    expect(outerEmpty.uints).toEqual({ type: BPF_MAP_TYPE.hashOfMaps, max_entries: 4 });
    expect(outerEmpty.values).toMatchObject({ kind: "STRUCT", name: "(anon)" });
    expect(outerEmpty.values?.members?.map((m) => m.name)).toEqual(["type", "max_entries", "key", "value"]);
    const inner = btfMap(types, "inner_a");
    expect(inner).toMatchObject({ uints: { type: BPF_MAP_TYPE.array, max_entries: 1 }, keySize: 4, valueSize: 8 });
  });

  test.skipIf(!hasVmlinux)("core.o has CO-RE relocations of every kind the loader supports", () => {
    const elf = readElf("core");
    const kinds = new Set(coreReloKinds(elf));
    expect([...kinds].sort((a, b) => a - b)).toEqual(Object.values(CORE).sort((a, b) => a - b));
    // BPF_CORE_READ() goes through bpf_probe_read_kernel (helper 113).
    expect(disassemble("core", "tc")).toMatch(/call 0x71\n/);
  });

  test.skipIf(!hasVmlinux || !hasBpftool)("core.o's local flavour types are in its BTF", () => {
    const types = readBtf("core");
    for (const name of [
      "sk_buff___dp_small",
      "sk_buff___dp_missing",
      "__sk_buff___dp",
      "task_struct___dp",
      "dp_no_such_type",
    ]) {
      expect(btfNamed(types, "STRUCT", name).kind).toBe("STRUCT");
    }
    expect(btfNamed(types, "ENUM", "bpf_map_type___dp").kind).toBe("ENUM");
    expect(btfMap(types, "core_out")).toMatchObject({ uints: { type: BPF_MAP_TYPE.array }, keySize: 4, valueSize: 72 });
  });

  test.skipIf(!hasBpftool)("pinned_*.o declare one map pinned by name, compatible in a and b, not in bad", () => {
    const maps = Object.fromEntries(
      (["pinned_a", "pinned_b", "pinned_bad"] as const).map((name) => [
        name,
        btfMap(readBtf(name), "dp_testdata_pinned"),
      ]),
    );
    for (const map of Object.values(maps)) {
      expect(map.uints).toEqual({ type: BPF_MAP_TYPE.hash, max_entries: 16, pinning: LIBBPF_PIN_BY_NAME });
      expect(map.keySize).toBe(4);
    }
    expect(maps.pinned_a?.valueSize).toBe(8);
    expect(maps.pinned_b?.valueSize).toBe(8);
    expect(maps.pinned_bad?.valueSize).toBe(4);
  });

  test("kconfig.o references .kconfig externs through undefined symbols", () => {
    const elf = readElf("kconfig");
    expect(sectionNames(elf)).not.toContain(".kconfig");
    const externs = elf.symbols.filter((s) => s.section === "Undefined" && s.name !== "");
    expect(externs.map((s) => [s.name, s.bind]).sort()).toEqual(
      [
        ["CONFIG_BPF_SYSCALL", "Global"],
        ["CONFIG_DP_NO_SUCH_OPTION", "Weak"],
        ["CONFIG_HZ", "Global"],
        ["LINUX_KERNEL_VERSION", "Global"],
      ].sort(),
    );
    const rels = codeRelocations(elf).filter(
      (r) => r.symbol.startsWith("CONFIG_") || r.symbol === "LINUX_KERNEL_VERSION",
    );
    expect(rels.map((r) => r.type)).toEqual(["R_BPF_64_64", "R_BPF_64_64", "R_BPF_64_64", "R_BPF_64_64"]);
  });

  test.skipIf(!hasBpftool)("kconfig.o's externs are VARs with extern linkage in a .kconfig DATASEC", () => {
    const types = readBtf("kconfig");
    const kconfig = btfNamed(types, "DATASEC", ".kconfig");
    const vars = (kconfig.vars ?? []).map((v) => btfType(types, v.type_id));
    expect(vars.map((v) => [v.name, v.linkage, skipTypedefs(types, v.type_id ?? 0).size])).toEqual([
      ["LINUX_KERNEL_VERSION", "extern", 4],
      ["CONFIG_BPF_SYSCALL", "extern", 1],
      ["CONFIG_HZ", "extern", 4],
      ["CONFIG_DP_NO_SUCH_OPTION", "extern", 1],
    ]);
  });

  test.skipIf(!hasVmlinux || !hasBpftool)(
    "libbpf_style.o has a ring buffer, a .rodata setting and CO-RE relocations",
    () => {
      const elf = readElf("libbpf_style");
      expect(programSections(elf)).toEqual(["tc"]);
      expect(symbol(elf, "only_protocol")).toMatchObject({ section: ".rodata", size: 1 });
      const types = readBtf("libbpf_style");
      expect(btfMap(types, "events")).toEqual({ uints: { type: BPF_MAP_TYPE.ringbuf, max_entries: 256 * 1024 } });
      expect(btfMap(types, "lost")).toMatchObject({ uints: { type: BPF_MAP_TYPE.percpuArray, max_entries: 1 } });
      expect(coreReloKinds(elf)).toContain(CORE.fieldByteOffset);
      // bpf_ringbuf_reserve (131), bpf_ringbuf_submit (132), bpf_probe_read_kernel (113).
      const code = disassemble("libbpf_style", "tc");
      for (const helper of ["0x83", "0x84", "0x71"]) expect(code).toContain(`call ${helper}\n`);
    },
  );

  test("verifier_fail.o carries the failing source line in its BTF line info", () => {
    const elf = readElf("verifier_fail");
    expect(functions(elf, "tc").map((f) => f.name)).toEqual(["deref_unchecked", "ok"]);
    const source = readFileSync(join(testdata, "verifier_fail.c"), "utf8").split("\n");
    const line = source.find((l) => /\/\* VERIFIER_FAIL_LINE/.test(l));
    expect(line).toBeDefined();
    // line_info's line_off points at the source line's text (indentation
    // included; the kernel's log trims it) in the .BTF string table, and
    // file_name_off at "./bpf/testdata/verifier_fail.c" (relative to the repository).
    const btf = section(elf, ".BTF");
    const strings = elf.bytes.subarray(btf.offset, btf.offset + btf.size);
    expect(strings.includes(Buffer.from(`\0${line}\0`))).toBe(true);
    expect(strings.includes(Buffer.from("\0./bpf/testdata/verifier_fail.c\0"))).toBe(true);
  });

  test.skipIf(!hasBpftool)("btf_kinds.o has the BTF kinds that sanitisation rewrites", () => {
    const types = readBtf("btf_kinds");
    const kinds = new Set(types.map((t) => t.kind));
    for (const kind of ["FLOAT", "DECL_TAG", "TYPE_TAG", "ENUM64", "DATASEC", "VAR"]) expect(kinds).toContain(kind);
    expect(btfNamed(types, "FUNC", "btf_kinds_len").linkage).toBe("global");
    expect(
      types
        .filter((t) => t.kind === "DECL_TAG")
        .map((t) => t.name)
        .sort(),
    ).toEqual(["dp_counter", "dp_helper", "dp_runs"].sort());
  });
});
