import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import {
  BPF_RELOCATION_TYPE,
  ELF_SECTION_FLAGS,
  ELF_SECTION_TYPE,
  ELF_SYMBOL_BIND,
  ELF_SYMBOL_TYPE,
  ELF_SYMBOL_VISIBILITY,
  ElfError,
  type ElfFile,
  parseElf,
} from "@dp/core/internal";

// --- the compiled objects ------------------------------------------------------

const root = fileURLToPath(new URL("../../../..", import.meta.url));
const testdata = join(root, "bpf/build/testdata");
const hasClang = spawnSync("clang-19", ["--version"]).status === 0;
const hasReadelf = spawnSync("llvm-readelf-19", ["--version"]).status === 0;

function objects(): string[] {
  const list = (): string[] =>
    existsSync(testdata)
      ? readdirSync(testdata)
          .filter((f) => f.endsWith(".o"))
          .sort()
      : [];
  if (list().length === 0 && hasClang) execFileSync("bash", [join(root, "bpf/build.sh")], { stdio: "pipe" });
  return list();
}

const OBJECTS = objects();

function load(name: string): Uint8Array {
  return new Uint8Array(readFileSync(join(testdata, name)));
}

// --- a tiny ELF builder for targeted corruptions ------------------------------

interface BuildSection {
  readonly name: string;
  readonly type: number;
  readonly flags?: number;
  readonly data?: Uint8Array;
  /** For NOBITS sections: the size without data. */
  readonly size?: number;
  readonly link?: number;
  readonly info?: number;
  readonly entsize?: number;
  readonly addralign?: number;
}

interface Built {
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly shoff: number;
  /** File offset of section i's header. */
  header(i: number): number;
  /** File offset of section i's data. */
  readonly dataOffsets: readonly number[];
}

function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Lays out header, section data, the section name table, then the section headers. */
function buildElf(sections: readonly BuildSection[]): Built {
  const all: BuildSection[] = [{ name: "", type: 0 }, ...sections];
  const names = [0];
  let shstr = "\0";
  for (const s of sections) {
    names.push(shstr.length);
    shstr += `${s.name}\0`;
  }
  names.push(shstr.length);
  shstr += ".shstrtab\0";
  all.push({ name: ".shstrtab", type: ELF_SECTION_TYPE.strtab, data: new TextEncoder().encode(shstr) });

  const dataOffsets: number[] = [];
  let at = 64;
  for (const s of all) {
    at = align8(at);
    dataOffsets.push(s.type === 0 ? 0 : at);
    if (s.type !== ELF_SECTION_TYPE.nobits) at += s.data?.length ?? 0;
  }
  const shoff = align8(at);
  const bytes = new Uint8Array(shoff + all.length * 64);
  const view = new DataView(bytes.buffer);
  bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  view.setUint16(16, 1, true);
  view.setUint16(18, 247, true);
  view.setUint32(20, 1, true);
  view.setBigUint64(40, BigInt(shoff), true);
  view.setUint16(52, 64, true);
  view.setUint16(58, 64, true);
  view.setUint16(60, all.length, true);
  view.setUint16(62, all.length - 1, true);
  all.forEach((s, i) => {
    const h = shoff + i * 64;
    const off = dataOffsets[i] ?? 0;
    if (s.data && s.type !== ELF_SECTION_TYPE.nobits) bytes.set(s.data, off);
    view.setUint32(h, names[i] ?? 0, true);
    view.setUint32(h + 4, s.type, true);
    view.setBigUint64(h + 8, BigInt(s.flags ?? 0), true);
    view.setBigUint64(h + 24, BigInt(off), true);
    view.setBigUint64(h + 32, BigInt(s.size ?? s.data?.length ?? 0), true);
    view.setUint32(h + 40, s.link ?? 0, true);
    view.setUint32(h + 44, s.info ?? 0, true);
    view.setBigUint64(h + 48, BigInt(s.addralign ?? (s.type === 0 ? 0 : 1)), true);
    view.setBigUint64(h + 56, BigInt(s.entsize ?? 0), true);
  });
  return { bytes, view, shoff, header: (i) => shoff + i * 64, dataOffsets };
}

interface Sym {
  readonly name: number;
  readonly info: number;
  readonly shndx: number;
  readonly value?: number;
  readonly size?: number;
}

function symtab(symbols: readonly Sym[]): Uint8Array {
  const out = new Uint8Array(symbols.length * 24);
  const v = new DataView(out.buffer);
  symbols.forEach((s, i) => {
    v.setUint32(i * 24, s.name, true);
    v.setUint8(i * 24 + 4, s.info);
    v.setUint16(i * 24 + 6, s.shndx, true);
    v.setBigUint64(i * 24 + 8, BigInt(s.value ?? 0), true);
    v.setBigUint64(i * 24 + 16, BigInt(s.size ?? 0), true);
  });
  return out;
}

function rel(entries: readonly (readonly [offset: number, sym: number, type: number, addend?: bigint])[]): Uint8Array {
  const rela = entries.some((e) => e[3] !== undefined);
  const size = rela ? 24 : 16;
  const out = new Uint8Array(entries.length * size);
  const v = new DataView(out.buffer);
  entries.forEach(([offset, sym, type, addend], i) => {
    v.setBigUint64(i * size, BigInt(offset), true);
    v.setUint32(i * size + 8, type, true);
    v.setUint32(i * size + 12, sym, true);
    if (rela) v.setBigInt64(i * size + 16, addend ?? 0n, true);
  });
  return out;
}

const STT_FUNC_GLOBAL = (ELF_SYMBOL_BIND.global << 4) | ELF_SYMBOL_TYPE.func;
const STT_OBJECT_GLOBAL = (ELF_SYMBOL_BIND.global << 4) | ELF_SYMBOL_TYPE.object;
const STT_SECTION_LOCAL = ELF_SYMBOL_TYPE.section;

// Section indexes of the minimal object.
const XDP = 1;
const MAPS = 2;
const BSS = 3;
const STRTAB = 4;
const SYMTAB = 5;
const RELXDP = 6;
const RELAMAPS = 7;
const SHSTRTAB = 8;

/** An xdp program that loads a map (ld_imm64, relocated), returns 2, plus .maps, .bss and the tables. */
function minimal(): Built {
  const insns = new Uint8Array(32);
  insns.set([0x18, 0x01], 0); // r1 = map (ld_imm64, two slots)
  insns.set([0xb7, 0x00, 0, 0, 2, 0, 0, 0], 16); // r0 = 2
  insns.set([0x95], 24); // exit
  const strtab = new TextEncoder().encode("\0prog\0my_map\0ext\0");
  return buildElf([
    { name: "xdp", type: ELF_SECTION_TYPE.progbits, flags: 6, data: insns, addralign: 8 },
    { name: ".maps", type: ELF_SECTION_TYPE.progbits, flags: 3, data: new Uint8Array(8), addralign: 8 },
    { name: ".bss", type: ELF_SECTION_TYPE.nobits, flags: 3, size: 64, addralign: 8 },
    { name: ".strtab", type: ELF_SECTION_TYPE.strtab, data: strtab },
    {
      name: ".symtab",
      type: ELF_SECTION_TYPE.symtab,
      link: STRTAB,
      info: 2,
      entsize: 24,
      addralign: 8,
      data: symtab([
        { name: 0, info: 0, shndx: 0 },
        { name: 0, info: STT_SECTION_LOCAL, shndx: XDP },
        { name: 1, info: STT_FUNC_GLOBAL, shndx: XDP, size: 32 },
        { name: 6, info: STT_OBJECT_GLOBAL, shndx: MAPS, value: 0, size: 8 },
        { name: 13, info: ELF_SYMBOL_BIND.global << 4, shndx: 0 },
      ]),
    },
    {
      name: ".relxdp",
      type: ELF_SECTION_TYPE.rel,
      flags: 0x40,
      link: SYMTAB,
      info: XDP,
      entsize: 16,
      data: rel([[0, 3, 1]]),
    },
    {
      name: ".rela.maps",
      type: ELF_SECTION_TYPE.rela,
      link: SYMTAB,
      info: MAPS,
      entsize: 24,
      data: rel([[0, 2, BPF_RELOCATION_TYPE.abs64, -8n]]),
    },
  ]);
}

function elfError(fn: () => unknown): ElfError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ElfError);
    expect(err).toBeInstanceOf(SyntaxError);
    return err as ElfError;
  }
  throw new Error("expected an ElfError");
}

// --- tests ---------------------------------------------------------------------

describe("parseElf() on a hand-built object", () => {
  test("parseElf() reads sections, symbols and relocations of a minimal object", () => {
    const { bytes, dataOffsets } = minimal();
    const elf = parseElf(bytes);
    expect(elf.header).toEqual({
      type: "relocatable",
      machine: 247,
      osAbi: 0,
      abiVersion: 0,
      entry: 0n,
      flags: 0,
      sectionHeaderOffset: expect.any(Number) as number,
      sectionCount: 9,
      sectionNameIndex: SHSTRTAB,
    });
    expect(elf.sections.map((s) => [s.index, s.name, s.type])).toEqual([
      [0, "", "null"],
      [1, "xdp", "progbits"],
      [2, ".maps", "progbits"],
      [3, ".bss", "nobits"],
      [4, ".strtab", "strtab"],
      [5, ".symtab", "symtab"],
      [6, ".relxdp", "rel"],
      [7, ".rela.maps", "rela"],
      [8, ".shstrtab", "strtab"],
    ]);
    const xdp = elf.sectionByName("xdp");
    expect(xdp?.flags).toBe(ELF_SECTION_FLAGS.alloc | ELF_SECTION_FLAGS.execInstr);
    expect(xdp?.offset).toBe(dataOffsets[XDP]);
    expect(xdp?.data()).toEqual(bytes.subarray(dataOffsets[XDP], (dataOffsets[XDP] ?? 0) + 32));
    // A view, not a copy.
    expect(xdp?.data().buffer).toBe(bytes.buffer);
    const bss = elf.sections[BSS];
    expect(bss?.size).toBe(64);
    expect(bss?.data().length).toBe(0);
    expect(elf.sectionByName("nope")).toBeUndefined();

    expect(elf.symbols).toEqual([
      { index: 0, name: "", value: 0, size: 0, type: "notype", bind: "local", visibility: "default", sectionIndex: 0 },
      { index: 1, name: "", value: 0, size: 0, type: "section", bind: "local", visibility: "default", sectionIndex: 1 },
      {
        index: 2,
        name: "prog",
        value: 0,
        size: 32,
        type: "func",
        bind: "global",
        visibility: "default",
        sectionIndex: 1,
      },
      {
        index: 3,
        name: "my_map",
        value: 0,
        size: 8,
        type: "object",
        bind: "global",
        visibility: "default",
        sectionIndex: 2,
      },
      {
        index: 4,
        name: "ext",
        value: 0,
        size: 0,
        type: "notype",
        bind: "global",
        visibility: "default",
        sectionIndex: 0,
      },
    ]);
    expect([...elf.relocations]).toEqual([
      [XDP, [{ offset: 0, symbolIndex: 3, type: BPF_RELOCATION_TYPE.ldImm64 }]],
      [MAPS, [{ offset: 0, symbolIndex: 2, type: BPF_RELOCATION_TYPE.abs64, addend: -8n }]],
    ]);
  });

  test("parseElf() accepts a Buffer and a view at an offset in a larger buffer", () => {
    const { bytes } = minimal();
    const padded = new Uint8Array(bytes.length + 13);
    padded.set(bytes, 5);
    const elf = parseElf(padded.subarray(5, 5 + bytes.length));
    expect(elf.symbols.map((s) => s.name)).toEqual(["", "", "prog", "my_map", "ext"]);
    expect(parseElf(Buffer.from(bytes)).sections.length).toBe(9);
  });

  test("parseElf() follows extended section numbering in section 0", () => {
    const { bytes, view, shoff } = minimal();
    view.setUint16(60, 0, true); // e_shnum: in section 0's sh_size
    view.setBigUint64(shoff + 32, 9n, true);
    view.setUint16(62, 0xffff, true); // e_shstrndx: in section 0's sh_link
    view.setUint32(shoff + 40, SHSTRTAB, true);
    const elf = parseElf(bytes);
    expect(elf.header.sectionCount).toBe(9);
    expect(elf.sections[SHSTRTAB]?.name).toBe(".shstrtab");
  });

  test("parseElf() sets the symbol visibility and keeps unknown types as numbers", () => {
    const { bytes, view, dataOffsets } = minimal();
    const sym2 = (dataOffsets[SYMTAB] ?? 0) + 2 * 24;
    view.setUint8(sym2 + 4, (ELF_SYMBOL_BIND.weak << 4) | 12); // STT_LOOS
    view.setUint8(sym2 + 5, ELF_SYMBOL_VISIBILITY.hidden);
    view.setUint32(view.getUint32(40, true) + XDP * 64 + 4, 0x70000001, true); // a processor-specific type
    const elf = parseElf(bytes);
    expect(elf.symbols[2]).toMatchObject({ type: 12, bind: "weak", visibility: "hidden" });
    expect(elf.sections[XDP]?.type).toBe(0x70000001);
  });

  test("parseElf() rejects what is not a Uint8Array with a TypeError", () => {
    expect(() => parseElf("ELF" as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => parseElf(null as unknown as Uint8Array)).toThrow(/expected a Uint8Array, got null/);
  });

  // Each case corrupts the minimal object and names the offset and the message.
  const cases: [string, (b: Built) => Uint8Array | void, (b: Built) => number, RegExp][] = [
    ["an empty file", () => new Uint8Array(0), () => 0, /file header truncated: expected 64 bytes, the file has 0/],
    [
      "a wrong magic",
      (b) => void (b.bytes[1] = 0x45 + 1),
      () => 0,
      /expected the ELF magic 7f 45 4c 46 \("\\x7fELF"\), got 7f 46 4c 46/,
    ],
    [
      "a 32-bit object",
      (b) => void (b.bytes[4] = 1),
      () => 4,
      /expected e_ident\[EI_CLASS\] ELFCLASS64 \(2\), got 1 \(ELFCLASS32\)/,
    ],
    ["a big-endian object", (b) => void (b.bytes[5] = 2), () => 5, /big-endian BPF objects are not supported/],
    [
      "an unknown byte order",
      (b) => void (b.bytes[5] = 9),
      () => 5,
      /expected e_ident\[EI_DATA\] ELFDATA2LSB \(1\), got 9/,
    ],
    ["an unknown ident version", (b) => void (b.bytes[6] = 0), () => 6, /EI_VERSION/],
    [
      "another machine",
      (b) => b.view.setUint16(18, 62, true),
      () => 18,
      /expected e_machine EM_BPF \(247\), got 62: not a BPF object/,
    ],
    [
      "an unknown e_version",
      (b) => b.view.setUint32(20, 2, true),
      () => 20,
      /expected e_version EV_CURRENT \(1\), got 2/,
    ],
    [
      "a truncated header",
      (b) => b.bytes.slice(0, 40),
      () => 40,
      /file header truncated: expected 64 bytes, the file has 40/,
    ],
    [
      "a wrong e_shentsize",
      (b) => b.view.setUint16(58, 40, true),
      () => 58,
      /expected e_shentsize 64 \(sizeof\(Elf64_Shdr\)\), got 40/,
    ],
    [
      "e_shoff past the end",
      (b) => b.view.setBigUint64(40, 1n << 40n, true),
      () => 40,
      /section header table at e_shoff 1099511627776 points past the end of the file/,
    ],
    [
      "an e_shoff that is not a safe integer",
      (b) => b.view.setBigUint64(40, 1n << 62n, true),
      () => 40,
      /e_shoff 4611686018427387904 is too large/,
    ],
    [
      "too many section headers",
      (b) => b.view.setUint16(60, 1000, true),
      () => 40,
      /the section header table points past the end of the file \(offset \d+, 1000 headers of 64 bytes, file \d+\)/,
    ],
    [
      "a truncated section header table",
      (b) => b.bytes.slice(0, b.shoff + 64 * 4),
      () => 40,
      /section header table points past the end/,
    ],
    [
      "an absurd extended section count",
      (b) => {
        b.view.setUint16(60, 0, true);
        b.view.setBigUint64(b.shoff + 32, 1n << 50n, true);
      },
      () => 40,
      /1125899906842624 headers/,
    ],
    [
      "section headers without e_shoff",
      (b) => b.view.setBigUint64(40, 0n, true),
      () => 60,
      /e_shnum is 9 but e_shoff is 0/,
    ],
    [
      "section data past the end",
      (b) => b.view.setBigUint64(b.header(XDP) + 24, BigInt(b.bytes.length - 4), true),
      (b) => b.header(XDP),
      /section header 1 points past the end of the file \(offset \d+, size 32, file \d+\)/,
    ],
    [
      "section 0 with data past the end",
      (b) => {
        b.view.setUint32(b.shoff + 4, ELF_SECTION_TYPE.rel, true);
        b.view.setBigUint64(b.shoff + 24, BigInt(b.bytes.length), true);
        b.view.setBigUint64(b.shoff + 32, 16n, true);
      },
      (b) => b.shoff,
      /section header 0 points past the end of the file \(offset \d+, size 16, file \d+\)/,
    ],
    [
      "e_shstrndx with zero sections",
      (b) => b.view.setUint16(60, 0, true),
      () => 62,
      /e_shstrndx is 8 but the file has no sections/,
    ],
    [
      "an absurd section size",
      (b) => b.view.setBigUint64(b.header(MAPS) + 32, 1n << 63n, true),
      (b) => b.header(MAPS),
      /section header 2: sh_size 9223372036854775808 is too large/,
    ],
    [
      "sh_flags above bit 31",
      (b) => b.view.setUint32(b.header(MAPS) + 12, 1, true),
      (b) => b.header(MAPS) + 8,
      /sh_flags 0x100000003 has bits above 31 set/,
    ],
    [
      "e_shstrndx 0",
      (b) => b.view.setUint16(62, 0, true),
      () => 62,
      /e_shstrndx 0 is not a section index: expected 1 to 8/,
    ],
    [
      "e_shstrndx out of range",
      (b) => b.view.setUint16(62, 99, true),
      () => 62,
      /e_shstrndx 99 is not a section index/,
    ],
    [
      "e_shstrndx naming a non-string table",
      (b) => b.view.setUint16(62, XDP, true),
      () => 62,
      /e_shstrndx 1 names section 1, which is SHT_PROGBITS \(1\), not a string table/,
    ],
    [
      "a section name out of bounds",
      (b) => b.view.setUint32(b.header(MAPS), 5000, true),
      (b) => b.header(MAPS),
      /section header 2 name: offset 5000 is past the end of the string table section 8 \(size \d+\)/,
    ],
    [
      "an unterminated section name",
      (b) =>
        void (b.bytes[(b.dataOffsets[SHSTRTAB] ?? 0) + Number(b.view.getBigUint64(b.header(SHSTRTAB) + 32, true)) - 1] =
          0x41),
      (b) => b.header(SHSTRTAB),
      /section header 8 name: the string at offset \d+ of section 8 is not NUL-terminated/,
    ],
    [
      "a second symbol table",
      (b) => b.view.setUint32(b.header(MAPS) + 4, ELF_SECTION_TYPE.symtab, true),
      (b) => b.header(SYMTAB),
      /section 5 is a second symbol table \(SHT_SYMTAB\); section 2 is the first/,
    ],
    [
      "a wrong symbol entry size",
      (b) => b.view.setBigUint64(b.header(SYMTAB) + 56, 16n, true),
      (b) => b.header(SYMTAB),
      /section 5 \("\.symtab"\): expected sh_entsize 24 \(sizeof\(Elf64_Sym\)\), got 16/,
    ],
    [
      "a symbol table size that is not a multiple of 24",
      (b) => b.view.setBigUint64(b.header(SYMTAB) + 32, 119n, true),
      (b) => b.header(SYMTAB),
      /sh_size 119 is not a multiple of the entry size 24/,
    ],
    [
      "a symbol table linked to a non-string table",
      (b) => b.view.setUint32(b.header(SYMTAB) + 40, XDP, true),
      (b) => b.header(SYMTAB),
      /sh_link 1 is not a string table/,
    ],
    [
      "a symbol table linked past the sections",
      (b) => b.view.setUint32(b.header(SYMTAB) + 40, 77, true),
      (b) => b.header(SYMTAB),
      /sh_link 77 is not a string table/,
    ],
    [
      "a first global past the symbols",
      (b) => b.view.setUint32(b.header(SYMTAB) + 44, 6, true),
      (b) => b.header(SYMTAB),
      /sh_info 6 \(the first global symbol\) is past the 5 symbols/,
    ],
    [
      "a symbol name out of bounds",
      (b) => b.view.setUint32((b.dataOffsets[SYMTAB] ?? 0) + 2 * 24, 99, true),
      (b) => (b.dataOffsets[SYMTAB] ?? 0) + 48,
      /symbol 2 name: offset 99 is past the end of the string table section 4 \("\.strtab"\) \(size 17\)/,
    ],
    [
      "an unterminated symbol name",
      (b) => void (b.bytes[(b.dataOffsets[STRTAB] ?? 0) + 16] = 0x41),
      (b) => (b.dataOffsets[SYMTAB] ?? 0) + 4 * 24,
      /symbol 4 name: the string at offset 13 of section 4 \("\.strtab"\) is not NUL-terminated/,
    ],
    [
      "a symbol in a missing section",
      (b) => b.view.setUint16((b.dataOffsets[SYMTAB] ?? 0) + 2 * 24 + 6, 99, true),
      (b) => (b.dataOffsets[SYMTAB] ?? 0) + 48 + 6,
      /symbol 2 \("prog"\) is defined in section 99, but the file has 9 sections/,
    ],
    [
      "a symbol with an extended section index",
      (b) => b.view.setUint16((b.dataOffsets[SYMTAB] ?? 0) + 3 * 24 + 6, 0xffff, true),
      (b) => (b.dataOffsets[SYMTAB] ?? 0) + 72 + 6,
      /symbol 3 \("my_map"\) uses an extended section index \(SHN_XINDEX\)/,
    ],
    [
      "a symbol past its section",
      (b) => b.view.setBigUint64((b.dataOffsets[SYMTAB] ?? 0) + 2 * 24 + 16, 40n, true),
      (b) => (b.dataOffsets[SYMTAB] ?? 0) + 48 + 8,
      /symbol 2 \("prog"\) spans bytes 0 to 40, past the end of section 1 \("xdp"\) \(size 32\)/,
    ],
    [
      "an absurd symbol value",
      (b) => b.view.setBigUint64((b.dataOffsets[SYMTAB] ?? 0) + 4 * 24 + 8, 1n << 60n, true),
      (b) => (b.dataOffsets[SYMTAB] ?? 0) + 96,
      /symbol 4 \("ext"\): st_value 1152921504606846976 is too large/,
    ],
    [
      "a wrong relocation entry size",
      (b) => b.view.setBigUint64(b.header(RELXDP) + 56, 24n, true),
      (b) => b.header(RELXDP),
      /section 6 \("\.relxdp"\): expected sh_entsize 16 \(sizeof\(Elf64_Rel\)\), got 24/,
    ],
    [
      "a wrong rela entry size",
      (b) => b.view.setBigUint64(b.header(RELAMAPS) + 56, 16n, true),
      (b) => b.header(RELAMAPS),
      /expected sh_entsize 24 \(sizeof\(Elf64_Rela\)\), got 16/,
    ],
    [
      "a relocation size that is not a multiple of 16",
      (b) => b.view.setBigUint64(b.header(RELXDP) + 32, 15n, true),
      (b) => b.header(RELXDP),
      /sh_size 15 is not a multiple of the entry size 16/,
    ],
    [
      "relocations linked to a non-symbol table",
      (b) => b.view.setUint32(b.header(RELXDP) + 40, STRTAB, true),
      (b) => b.header(RELXDP),
      /sh_link 4 is not the symbol table \(expected 5\)/,
    ],
    [
      "relocations of section 0",
      (b) => b.view.setUint32(b.header(RELXDP) + 44, 0, true),
      (b) => b.header(RELXDP),
      /sh_info 0 is not a section to patch \(expected 1 to 8\)/,
    ],
    [
      "relocations of a missing section",
      (b) => b.view.setUint32(b.header(RELXDP) + 44, 50, true),
      (b) => b.header(RELXDP),
      /sh_info 50 is not a section to patch/,
    ],
    [
      "relocations of a NOBITS section",
      (b) => b.view.setUint32(b.header(RELXDP) + 44, BSS, true),
      (b) => b.header(RELXDP),
      /patches section 3 \("\.bss"\), which is SHT_NOBITS \(8\) and has no bytes/,
    ],
    [
      "relocations without a symbol table",
      (b) => b.view.setUint32(b.header(SYMTAB) + 4, ELF_SECTION_TYPE.progbits, true),
      (b) => b.header(RELXDP),
      /the file has relocations but no symbol table/,
    ],
    [
      "a relocation of a missing symbol",
      (b) => b.view.setUint32((b.dataOffsets[RELXDP] ?? 0) + 12, 5, true),
      (b) => (b.dataOffsets[RELXDP] ?? 0) + 12,
      /relocation 0 refers to symbol 5, but the symbol table has 5 symbols/,
    ],
    [
      "a relocation past its section",
      (b) => b.view.setBigUint64(b.dataOffsets[RELXDP] ?? 0, 24n, true),
      (b) => b.dataOffsets[RELXDP] ?? 0,
      /relocation 0 patches bytes 24 to 40 of section 1 \("xdp"\), which has 32 bytes/,
    ],
    [
      "an absurd relocation offset",
      (b) => b.view.setBigUint64(b.dataOffsets[RELAMAPS] ?? 0, 1n << 63n, true),
      (b) => b.dataOffsets[RELAMAPS] ?? 0,
      /relocation 0 r_offset 9223372036854775808 is too large/,
    ],
  ];

  test.each(cases)("parseElf() rejects %s", (_, corrupt, offset, message) => {
    const built = minimal();
    const bytes = corrupt(built) ?? built.bytes;
    const err = elfError(() => parseElf(bytes));
    expect(err.name).toBe("ElfError");
    expect(err.message).toMatch(/^Invalid ELF at offset 0x[0-9a-f]+: /);
    expect(err.message).toMatch(message);
    expect(err.offset).toBe(offset(built));
    expect(err.message.startsWith(`Invalid ELF at offset 0x${err.offset.toString(16)}: `)).toBe(true);
  });

  test("parseElf() rejects relocation sections that share bytes instead of multiplying the work", () => {
    const entries = Array.from({ length: 64 }, () => [0, 1, BPF_RELOCATION_TYPE.ldImm64] as const);
    const strtab = new TextEncoder().encode("\0f\0");
    const sections: BuildSection[] = [
      { name: "xdp", type: ELF_SECTION_TYPE.progbits, data: new Uint8Array(16) },
      { name: ".strtab", type: ELF_SECTION_TYPE.strtab, data: strtab },
      {
        name: ".symtab",
        type: ELF_SECTION_TYPE.symtab,
        link: 2,
        info: 1,
        entsize: 24,
        data: symtab([
          { name: 0, info: 0, shndx: 0 },
          { name: 1, info: STT_FUNC_GLOBAL, shndx: 1 },
        ]),
      },
      { name: ".relxdp", type: ELF_SECTION_TYPE.rel, link: 3, info: 1, entsize: 16, data: rel(entries) },
    ];
    const b = buildElf(sections);
    expect(parseElf(b.bytes).relocations.get(1)?.length).toBe(64);
    // Grow it with 40 more headers for the same relocation bytes.
    const copies = 40;
    const shnum = b.view.getUint16(60, true);
    const bigger = new Uint8Array(b.bytes.length + copies * 64);
    bigger.set(b.bytes);
    for (let i = 0; i < copies; i++) bigger.copyWithin(b.bytes.length + i * 64, b.header(4), b.header(4) + 64);
    new DataView(bigger.buffer).setUint16(60, shnum + copies, true);
    const err = elfError(() => parseElf(bigger));
    expect(err.message).toMatch(
      /the relocation sections together take \d+ bytes, more than the file's \d+ \(overlapping sections\)/,
    );
  });

  test("parseElf() stops decoding overlapping names that would take far more memory than the file", () => {
    // One long run of letters, and many symbols that each start one byte later in it.
    const run = 30000;
    const count = 4000;
    const strtab = new Uint8Array(run + 2).fill(0x61);
    strtab[0] = 0;
    strtab[run + 1] = 0;
    const syms: Sym[] = [{ name: 0, info: 0, shndx: 0 }];
    for (let i = 1; i < count; i++) syms.push({ name: i, info: 0, shndx: 0 });
    const b = buildElf([
      { name: ".strtab", type: ELF_SECTION_TYPE.strtab, data: strtab },
      { name: ".symtab", type: ELF_SECTION_TYPE.symtab, link: 1, info: 1, entsize: 24, data: symtab(syms) },
    ]);
    const start = performance.now();
    const err = elfError(() => parseElf(b.bytes));
    expect(performance.now() - start).toBeLessThan(1000);
    expect(err.message).toMatch(/the names take far more bytes than the file has/);
  });
});

// --- compiled objects against llvm-readelf ------------------------------------

interface ReadelfSection {
  Section: {
    Index: number;
    Name: { Name: string; Value: number };
    Type: { Value: number };
    Flags: { Value: number };
    Address: number;
    Offset: number;
    Size: number;
    Link: number;
    Info: number;
    AddressAlignment: number;
    EntrySize: number;
  };
}

interface ReadelfSymbol {
  Symbol: {
    Name: { Name: string; Value: number };
    Value: number;
    Size: number;
    Binding: { Value: number };
    Type: { Value: number };
    Other: { Value: number };
    Section: { Value: number };
  };
}

interface ReadelfRelocations {
  SectionIndex: number;
  Relocs: { Relocation: { Offset: number; Type: { Value: number }; Symbol: { Value: number }; Addend?: number } }[];
}

interface Readelf {
  Sections: ReadelfSection[];
  Symbols?: ReadelfSymbol[];
  Relocations?: ReadelfRelocations[];
}

function readelf(path: string): Readelf {
  const out = execFileSync("llvm-readelf-19", ["-S", "-s", "-r", "--elf-output-style=JSON", path], {
    encoding: "utf8",
    maxBuffer: 1 << 28,
  });
  return (JSON.parse(out) as Readelf[])[0] as Readelf;
}

function numeric(table: Readonly<Record<string, number>>, v: string | number): number {
  return typeof v === "number" ? v : (table[v] ?? -1);
}

describe.skipIf(OBJECTS.length === 0)("parseElf() on bpf/build/testdata", () => {
  test("there are compiled objects to parse", () => {
    expect(OBJECTS).toContain("xdp_count.o");
  });

  test.skipIf(!hasReadelf).each(OBJECTS)("parseElf() agrees with llvm-readelf-19 on %s", (name) => {
    const path = join(testdata, name);
    const elf = parseElf(load(name));
    const want = readelf(path);

    expect(
      elf.sections.map((s) => ({
        Index: s.index,
        Name: s.name,
        Type: numeric(ELF_SECTION_TYPE, s.type),
        Flags: s.flags,
        Address: Number(s.addr),
        Offset: s.offset,
        Size: s.size,
        Link: s.link,
        Info: s.info,
        AddressAlignment: s.addralign,
        EntrySize: s.entsize,
      })),
    ).toEqual(
      want.Sections.map(({ Section: s }) => ({ ...s, Name: s.Name.Name, Type: s.Type.Value, Flags: s.Flags.Value })),
    );

    expect(
      elf.symbols.map((s) => ({
        Name: s.name,
        Value: s.value,
        Size: s.size,
        Binding: numeric(ELF_SYMBOL_BIND, s.bind),
        Type: numeric(ELF_SYMBOL_TYPE, s.type),
        Visibility: ELF_SYMBOL_VISIBILITY[s.visibility],
        Section: s.sectionIndex,
      })),
    ).toEqual(
      (want.Symbols ?? []).map(({ Symbol: s }) => ({
        // llvm-readelf shows section symbols (name offset 0) by their section's name.
        Name: s.Name.Value === 0 ? "" : s.Name.Name,
        Value: s.Value,
        Size: s.Size,
        Binding: s.Binding.Value,
        Type: s.Type.Value,
        Visibility: s.Other.Value & 3,
        Section: s.Section.Value,
      })),
    );
    expect(elf.symbols.every((s, i) => s.index === i)).toBe(true);

    // llvm-readelf lists relocations per relocation section; we key them by the patched section.
    const expected = new Map<number, unknown[]>();
    for (const r of want.Relocations ?? []) {
      const target = want.Sections[r.SectionIndex]?.Section.Info ?? -1;
      const list = expected.get(target) ?? [];
      expected.set(target, list);
      for (const { Relocation: x } of r.Relocs) {
        list.push({
          offset: x.Offset,
          symbolIndex: x.Symbol.Value,
          type: x.Type.Value,
          ...(x.Addend === undefined ? {} : { addend: BigInt(x.Addend) }),
        });
      }
    }
    expect(new Map([...elf.relocations].map(([k, v]) => [k, [...v]]))).toEqual(expected);

    for (const s of elf.sections) {
      expect(elf.sectionByName(s.name)?.name).toBe(s.name);
      if (s.type !== "nobits" && s.type !== "null") expect(s.data().length).toBe(s.size);
    }
  });

  test.each(OBJECTS)("parseElf() reads the program, map and license of %s", (name) => {
    const elf = parseElf(load(name));
    expect(elf.header.type).toBe("relocatable");
    const license = elf.sectionByName("license");
    if (name === "libbpf_nolicense.o") expect(license).toBeUndefined();
    else expect(license?.data().at(-1)).toBe(0);
    const text = elf.sections.filter((s) => (s.flags & ELF_SECTION_FLAGS.execInstr) !== 0 && s.size > 0);
    expect(text.length).toBeGreaterThan(0);
    for (const s of text) expect(s.size % 8).toBe(0);
    expect(elf.symbols.some((s) => s.type === "func" && s.bind === "global")).toBe(true);
  });
});

// --- fuzz-style robustness -------------------------------------------------------

/** mulberry32: a small deterministic PRNG. */
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

/** Parses; returns how long it took and whether it was rejected. Anything but success or an ElfError fails. */
function parseTimed(bytes: Uint8Array): { ms: number; rejected: boolean } {
  const start = performance.now();
  let rejected = false;
  try {
    parseElf(bytes);
  } catch (err) {
    if (!(err instanceof ElfError)) throw err;
    expect(Number.isSafeInteger(err.offset) && err.offset >= 0 && err.offset <= bytes.length).toBe(true);
    rejected = true;
  }
  return { ms: performance.now() - start, rejected };
}

/** The byte ranges the parser reads: header, section header table, symbol, string and relocation tables. */
function structure(elf: ElfFile, length: number): [number, number][] {
  const ranges: [number, number][] = [[0, 64]];
  const shoff = elf.header.sectionHeaderOffset;
  if (shoff > 0) ranges.push([shoff, Math.min(length, shoff + elf.sections.length * 64)]);
  for (const s of elf.sections) {
    if (s.type === "symtab" || s.type === "strtab" || s.type === "rel" || s.type === "rela") {
      if (s.size > 0) ranges.push([s.offset, s.offset + s.size]);
    }
  }
  return ranges;
}

const FUZZ_INPUTS: [string, () => Uint8Array][] = [
  ["the minimal object", () => minimal().bytes],
  ...OBJECTS.map((name): [string, () => Uint8Array] => [name, () => load(name)]),
];

describe("parseElf() on truncated and bit-flipped input", () => {
  test.each(FUZZ_INPUTS)("parseElf() throws only ElfError, quickly, for every truncation of %s", (_, input) => {
    const bytes = input();
    const step = Math.max(1, Math.ceil(bytes.length / 3000));
    const start = performance.now();
    let worst = 0;
    for (let n = 0; n < bytes.length; n += step) {
      const { ms, rejected } = parseTimed(bytes.subarray(0, n));
      expect(rejected).toBe(true);
      worst = Math.max(worst, ms);
    }
    // Hang detectors, not speed targets: bounds far above a normal run
    // (a few ms) so a loaded machine does not fail them.
    expect(worst).toBeLessThan(1000);
    expect(performance.now() - start).toBeLessThan(30_000);
  });

  test.each(FUZZ_INPUTS)("parseElf() throws only ElfError, quickly, for random bit flips in %s", (name, input) => {
    const clean = input();
    const ranges = structure(parseElf(clean), clean.length);
    const random = prng(0x5eed ^ name.length ^ clean.length);
    const iterations = Math.max(500, Math.floor(3000 / FUZZ_INPUTS.length));
    const start = performance.now();
    let worst = 0;
    let rejected = 0;
    for (let i = 0; i < iterations; i++) {
      const bytes = clean.slice();
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) {
        // Mostly in the parts the parser reads; sometimes anywhere.
        let at: number;
        const range = ranges[Math.floor(random() * ranges.length)];
        if (range !== undefined && random() < 0.85) at = range[0] + Math.floor(random() * (range[1] - range[0]));
        else at = Math.floor(random() * bytes.length);
        bytes[at] = (bytes[at] ?? 0) ^ (1 << Math.floor(random() * 8));
      }
      const result = parseTimed(bytes);
      if (result.rejected) rejected++;
      worst = Math.max(worst, result.ms);
    }
    expect(worst).toBeLessThan(1000);
    expect(performance.now() - start).toBeLessThan(30_000);
    // The flips hit structure often enough to exercise the checks.
    expect(rejected).toBeGreaterThan(iterations / 10);
  });
});
