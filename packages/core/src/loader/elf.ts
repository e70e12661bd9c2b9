// ELF64 little-endian parser for BPF relocatable objects (what clang
// -target bpf writes): sections, symbols, string tables and relocation
// sections. Pure code over a Uint8Array. Every offset, size and count read
// from the file is checked against the buffer before it is used, and every
// loop is bounded by the buffer length, so corrupt input ends in an ElfError
// instead of a crash, a hang or a huge allocation.

/**
 * ELF section types (`SHT_*`) by name. {@link ElfSection.type} is one of
 * these names, or the raw number for types not listed here.
 *
 * @example Finding the string tables
 * ```ts
 * import assert from "node:assert/strict";
 * import { ELF_SECTION_TYPE } from "@dp/core/internal";
 *
 * assert.equal(ELF_SECTION_TYPE.strtab, 3);
 * ```
 */
export const ELF_SECTION_TYPE = {
  /** `SHT_NULL`: an unused header (always section 0). */
  null: 0,
  /** `SHT_PROGBITS`: bytes defined by the program (code, data, BTF). */
  progbits: 1,
  /** `SHT_SYMTAB`: the symbol table. */
  symtab: 2,
  /** `SHT_STRTAB`: NUL-terminated strings. */
  strtab: 3,
  /** `SHT_RELA`: relocations with explicit addends. */
  rela: 4,
  /** `SHT_HASH`: a symbol hash table. */
  hash: 5,
  /** `SHT_DYNAMIC`: dynamic linking information. */
  dynamic: 6,
  /** `SHT_NOTE`: notes. */
  note: 7,
  /** `SHT_NOBITS`: zero-initialised data that takes no file space (`.bss`). */
  nobits: 8,
  /** `SHT_REL`: relocations whose addends are in the patched bytes. */
  rel: 9,
  /** `SHT_SHLIB`: reserved. */
  shlib: 10,
  /** `SHT_DYNSYM`: the dynamic symbol table. */
  dynsym: 11,
  /** `SHT_INIT_ARRAY`: constructor pointers. */
  initArray: 14,
  /** `SHT_FINI_ARRAY`: destructor pointers. */
  finiArray: 15,
  /** `SHT_PREINIT_ARRAY`: pre-constructor pointers. */
  preinitArray: 16,
  /** `SHT_GROUP`: a section group. */
  group: 17,
  /** `SHT_SYMTAB_SHNDX`: extended section indexes of symbols. */
  symtabShndx: 18,
  /** `SHT_LLVM_ADDRSIG`: LLVM's address-significance table. */
  llvmAddrsig: 0x6fff4c03,
} as const;

/**
 * The name of an ELF section type, a key of {@link ELF_SECTION_TYPE}.
 *
 * @useDeclaredType
 */
export type ElfSectionType = keyof typeof ELF_SECTION_TYPE;

/**
 * ELF section flag bits (`SHF_*`), to test against {@link ElfSection.flags}.
 *
 * @example Telling code sections apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { ELF_SECTION_FLAGS } from "@dp/core/internal";
 *
 * const flags = ELF_SECTION_FLAGS.alloc | ELF_SECTION_FLAGS.execInstr;
 * assert.ok((flags & ELF_SECTION_FLAGS.execInstr) !== 0);
 * ```
 */
export const ELF_SECTION_FLAGS = {
  /** `SHF_WRITE`: writable at run time. */
  write: 0x1,
  /** `SHF_ALLOC`: occupies memory when loaded. */
  alloc: 0x2,
  /** `SHF_EXECINSTR`: holds instructions. */
  execInstr: 0x4,
  /** `SHF_MERGE`: may be merged to remove duplicates. */
  merge: 0x10,
  /** `SHF_STRINGS`: holds NUL-terminated strings. */
  strings: 0x20,
  /** `SHF_INFO_LINK`: `info` holds a section index. */
  infoLink: 0x40,
  /** `SHF_LINK_ORDER`: ordering follows the linked section. */
  linkOrder: 0x80,
  /** `SHF_GROUP`: a member of a section group. */
  group: 0x200,
  /** `SHF_TLS`: thread-local storage. */
  tls: 0x400,
  /** `SHF_COMPRESSED`: compressed data. */
  compressed: 0x800,
  /** `SHF_EXCLUDE`: left out of linked output. */
  exclude: 0x80000000,
} as const;

/**
 * ELF file types (`ET_*`). BPF loaders expect `"relocatable"`.
 *
 * @example The type of a clang-built object
 * ```ts
 * import assert from "node:assert/strict";
 * import { ELF_FILE_TYPE } from "@dp/core/internal";
 *
 * assert.equal(ELF_FILE_TYPE.relocatable, 1);
 * ```
 */
export const ELF_FILE_TYPE = {
  /** `ET_NONE`. */
  none: 0,
  /** `ET_REL`: a relocatable object, what `clang -c` writes. */
  relocatable: 1,
  /** `ET_EXEC`: an executable. */
  executable: 2,
  /** `ET_DYN`: a shared object. */
  shared: 3,
  /** `ET_CORE`: a core dump. */
  core: 4,
} as const;

/**
 * The name of an ELF file type, a key of {@link ELF_FILE_TYPE}.
 *
 * @useDeclaredType
 */
export type ElfFileType = keyof typeof ELF_FILE_TYPE;

/**
 * ELF symbol types (`STT_*`).
 *
 * @example Functions are programs or subprograms
 * ```ts
 * import assert from "node:assert/strict";
 * import { ELF_SYMBOL_TYPE } from "@dp/core/internal";
 *
 * assert.equal(ELF_SYMBOL_TYPE.func, 2);
 * ```
 */
export const ELF_SYMBOL_TYPE = {
  /** `STT_NOTYPE`: unspecified (also externs such as `.kconfig` variables). */
  notype: 0,
  /** `STT_OBJECT`: a variable or map definition. */
  object: 1,
  /** `STT_FUNC`: a function. */
  func: 2,
  /** `STT_SECTION`: stands for a section (relocations against it). */
  section: 3,
  /** `STT_FILE`: the source file name. */
  file: 4,
  /** `STT_COMMON`: an uninitialised common block. */
  common: 5,
  /** `STT_TLS`: thread-local storage. */
  tls: 6,
} as const;

/**
 * The name of an ELF symbol type, a key of {@link ELF_SYMBOL_TYPE}.
 *
 * @useDeclaredType
 */
export type ElfSymbolType = keyof typeof ELF_SYMBOL_TYPE;

/**
 * ELF symbol bindings (`STB_*`).
 *
 * @example Globals are visible to other objects
 * ```ts
 * import assert from "node:assert/strict";
 * import { ELF_SYMBOL_BIND } from "@dp/core/internal";
 *
 * assert.equal(ELF_SYMBOL_BIND.global, 1);
 * ```
 */
export const ELF_SYMBOL_BIND = {
  /** `STB_LOCAL`: visible in this object only (`static`). */
  local: 0,
  /** `STB_GLOBAL`: visible to every object. */
  global: 1,
  /** `STB_WEAK`: global, but may be overridden. */
  weak: 2,
} as const;

/**
 * The name of an ELF symbol binding, a key of {@link ELF_SYMBOL_BIND}.
 *
 * @useDeclaredType
 */
export type ElfSymbolBind = keyof typeof ELF_SYMBOL_BIND;

/**
 * ELF symbol visibilities (`STV_*`, the low 2 bits of `st_other`).
 *
 * @example Hidden symbols stay inside the linked object
 * ```ts
 * import assert from "node:assert/strict";
 * import { ELF_SYMBOL_VISIBILITY } from "@dp/core/internal";
 *
 * assert.equal(ELF_SYMBOL_VISIBILITY.hidden, 2);
 * ```
 */
export const ELF_SYMBOL_VISIBILITY = {
  /** `STV_DEFAULT`: as the binding says. */
  default: 0,
  /** `STV_INTERNAL`: processor-specific hidden. */
  internal: 1,
  /** `STV_HIDDEN`: not visible outside the linked object. */
  hidden: 2,
  /** `STV_PROTECTED`: visible but not preemptible. */
  protected: 3,
} as const;

/**
 * The name of an ELF symbol visibility, a key of {@link ELF_SYMBOL_VISIBILITY}.
 *
 * @useDeclaredType
 */
export type ElfSymbolVisibility = keyof typeof ELF_SYMBOL_VISIBILITY;

/**
 * Reserved section indexes (`SHN_*`) that {@link ElfSymbol.sectionIndex}
 * can hold instead of a real section.
 *
 * @example Externs are undefined symbols
 * ```ts
 * import assert from "node:assert/strict";
 * import { ELF_SPECIAL_SECTION_INDEX } from "@dp/core/internal";
 *
 * assert.equal(ELF_SPECIAL_SECTION_INDEX.undefined, 0);
 * ```
 */
export const ELF_SPECIAL_SECTION_INDEX = {
  /** `SHN_UNDEF`: the symbol is defined elsewhere (an extern). */
  undefined: 0,
  /** `SHN_ABS`: the value is absolute, not relative to a section. */
  absolute: 0xfff1,
  /** `SHN_COMMON`: a common block; the value is its alignment. */
  common: 0xfff2,
} as const;

/**
 * BPF relocation types (`R_BPF_*`), the values of {@link ElfRelocation.type}.
 *
 * @example Map references patch a 64-bit immediate load
 * ```ts
 * import assert from "node:assert/strict";
 * import { BPF_RELOCATION_TYPE } from "@dp/core/internal";
 *
 * assert.equal(BPF_RELOCATION_TYPE.ldImm64, 1);
 * ```
 */
export const BPF_RELOCATION_TYPE = {
  /** `R_BPF_NONE`: nothing to do. */
  none: 0,
  /** `R_BPF_64_64`: the 64-bit immediate of an `ld_imm64` instruction pair (maps, global data). */
  ldImm64: 1,
  /** `R_BPF_64_ABS64`: a 64-bit absolute address in data (debug info). */
  abs64: 2,
  /** `R_BPF_64_ABS32`: a 32-bit absolute address in data (debug info). */
  abs32: 3,
  /** `R_BPF_64_NODYLD32`: a 32-bit section offset in `.BTF` and `.BTF.ext`. */
  noDyld32: 4,
  /** `R_BPF_64_32`: the immediate of a call instruction (bpf-to-bpf calls). */
  call32: 10,
} as const;

/** The ELF file header (`Elf64_Ehdr`) fields a loader looks at. */
export interface ElfHeader {
  /** `e_type`: a key of {@link ELF_FILE_TYPE}, or the raw number when unknown. */
  readonly type: ElfFileType | number;
  /** `e_machine`: always 247 (`EM_BPF`) here. */
  readonly machine: number;
  /** `e_ident[EI_OSABI]`. */
  readonly osAbi: number;
  /** `e_ident[EI_ABIVERSION]`. */
  readonly abiVersion: number;
  /** `e_entry`: the entry point (0 in relocatable objects). */
  readonly entry: bigint;
  /** `e_flags`: processor-specific flags. */
  readonly flags: number;
  /** `e_shoff`: where the section header table starts (0 when there is none). */
  readonly sectionHeaderOffset: number;
  /** The number of sections, including the null section 0. */
  readonly sectionCount: number;
  /** `e_shstrndx`: the section that holds the section names (0 when there are no sections). */
  readonly sectionNameIndex: number;
}

/**
 * One section: its header (`Elf64_Shdr`) and a view of its bytes.
 */
export interface ElfSection {
  /** The position in the section header table (0 is the null section). */
  readonly index: number;
  /** The name from the section name string table. */
  readonly name: string;
  /** `sh_type`: a key of {@link ELF_SECTION_TYPE}, or the raw number when unknown. */
  readonly type: ElfSectionType | number;
  /** `sh_flags`: {@link ELF_SECTION_FLAGS} bits (ELF defines none above bit 31). */
  readonly flags: number;
  /** `sh_addr`: the load address (0 in relocatable objects). */
  readonly addr: bigint;
  /** `sh_offset`: where the bytes start in the file. */
  readonly offset: number;
  /** `sh_size`: the size in bytes; for `"nobits"` sections, the size in memory. */
  readonly size: number;
  /** `sh_link`: a related section (the string table of a symbol table, the symbol table of a relocation section). */
  readonly link: number;
  /** `sh_info`: extra information (the patched section of a relocation section, the first global of a symbol table). */
  readonly info: number;
  /** `sh_addralign`: the required alignment (0 or 1 for none). */
  readonly addralign: number;
  /** `sh_entsize`: the size of one entry in table sections, else 0. */
  readonly entsize: number;
  /**
   * The section's bytes: a view into the parsed buffer (no copy), so copy
   * what you change. Empty for `"null"` and `"nobits"` sections, whose
   * {@link ElfSection.size} has no bytes in the file.
   *
   * @returns A view of `size` bytes at `offset` in the parsed buffer.
   */
  data(): Uint8Array;
}

/** One symbol table entry (`Elf64_Sym`). */
export interface ElfSymbol {
  /** The position in the symbol table (0 is the null symbol). */
  readonly index: number;
  /** The name from the symbol string table; `""` for section symbols, whose name is their section's. */
  readonly name: string;
  /** `st_value`: for defined symbols, the byte offset in their section. */
  readonly value: number;
  /** `st_size`: the size in bytes (of a function, a variable or a map definition). */
  readonly size: number;
  /** The type from `st_info`: a key of {@link ELF_SYMBOL_TYPE}, or the raw number when unknown. */
  readonly type: ElfSymbolType | number;
  /** The binding from `st_info`: a key of {@link ELF_SYMBOL_BIND}, or the raw number when unknown. */
  readonly bind: ElfSymbolBind | number;
  /** The visibility from `st_other`. */
  readonly visibility: ElfSymbolVisibility;
  /**
   * `st_shndx`: the section the symbol is defined in, or one of
   * {@link ELF_SPECIAL_SECTION_INDEX} (0 for an undefined symbol).
   */
  readonly sectionIndex: number;
}

/** One relocation entry (`Elf64_Rel` or `Elf64_Rela`). */
export interface ElfRelocation {
  /** `r_offset`: the byte offset in the patched section. */
  readonly offset: number;
  /** The symbol index from `r_info`: a position in {@link ElfFile.symbols}. */
  readonly symbolIndex: number;
  /** The relocation type from `r_info`, one of {@link BPF_RELOCATION_TYPE}. */
  readonly type: number;
  /** `r_addend`, only for `SHT_RELA` entries. */
  readonly addend?: bigint;
}

/** A parsed ELF object, made by {@link parseElf}. */
export interface ElfFile {
  /** The file header. */
  readonly header: ElfHeader;
  /** Every section, indexed by section number (section 0 is the null section). */
  readonly sections: readonly ElfSection[];
  /** The symbol table, indexed by symbol number (symbol 0 is the null symbol); empty without one. */
  readonly symbols: readonly ElfSymbol[];
  /**
   * The relocations of every `SHT_REL` and `SHT_RELA` section, keyed by the
   * index of the section they patch, in file order.
   */
  readonly relocations: ReadonlyMap<number, readonly ElfRelocation[]>;
  /**
   * Finds a section by name.
   *
   * @param name The section name, such as `".maps"`.
   * @returns The first section with that name, or `undefined`.
   */
  sectionByName(name: string): ElfSection | undefined;
}

/**
 * A byte sequence is not a valid ELF64 little-endian BPF object.
 *
 * `offset` is the file offset of the field or table entry that is wrong;
 * the message says what was expected there.
 *
 * @example Where the file went wrong
 * ```ts
 * import assert from "node:assert/strict";
 * import { ElfError, parseElf } from "@dp/core/internal";
 *
 * // The magic is right, but the 64-byte file header is cut short.
 * assert.throws(() => parseElf(new Uint8Array([0x7f, 0x45, 0x4c, 0x46])), (err) => {
 *   assert.ok(err instanceof ElfError && err instanceof SyntaxError);
 *   assert.equal(err.offset, 4);
 *   assert.equal(err.message, "Invalid ELF at offset 0x4: file header truncated: expected 64 bytes, the file has 4");
 *   return true;
 * });
 * ```
 */
export class ElfError extends SyntaxError {
  /** Always `"ElfError"`, the class name. */
  override readonly name: string = "ElfError";
  /** The byte offset in the file of the field or entry that is wrong. */
  readonly offset: number;

  /**
   * Creates an error whose message is `Invalid ELF at offset 0x…: detail`.
   *
   * @param detail What was expected and what was found.
   * @param offset The byte offset in the file.
   */
  constructor(detail: string, offset: number) {
    super(`Invalid ELF at offset 0x${offset.toString(16)}: ${detail}`);
    this.offset = offset;
  }
}

const EHDR_SIZE = 64;
const SHDR_SIZE = 64;
const SYM_SIZE = 24;
const REL_SIZE = 16;
const RELA_SIZE = 24;
const EM_BPF = 247;
const SHT_NULL = 0;
const SHT_SYMTAB = 2;
const SHT_STRTAB = 3;
const SHT_RELA = 4;
const SHT_NOBITS = 8;
const SHT_REL = 9;
const SHN_LORESERVE = 0xff00;
const SHN_XINDEX = 0xffff;
const TWO_32 = 0x1_0000_0000;

const UTF8 = new TextDecoder();

/** How many bytes each BPF relocation type patches. */
const BPF_RELOCATION_WIDTH: ReadonlyMap<number, number> = new Map([
  [BPF_RELOCATION_TYPE.none, 0],
  [BPF_RELOCATION_TYPE.ldImm64, 16],
  [BPF_RELOCATION_TYPE.abs64, 8],
  [BPF_RELOCATION_TYPE.abs32, 4],
  [BPF_RELOCATION_TYPE.noDyld32, 4],
  [BPF_RELOCATION_TYPE.call32, 8],
]);

/** What is left of the bytes that name decoding may still scan and copy. */
interface StringBudget {
  left: number;
}

/** A string table section: NUL-terminated names, decoded once per offset. */
class StringTable {
  readonly #bytes: Uint8Array;
  readonly #label: string;
  readonly #budget: StringBudget;
  readonly #cache = new Map<number, string>();

  constructor(bytes: Uint8Array, label: string, budget: StringBudget) {
    this.#bytes = bytes;
    this.#label = label;
    this.#budget = budget;
  }

  /**
   * Returns the string at `offset`; `what` and `at` name the referring
   * field in errors.
   */
  get(offset: number, what: string, at: number): string {
    const hit = this.#cache.get(offset);
    if (hit !== undefined) return hit;
    const b = this.#bytes;
    if (offset === 0 && b.length === 0) return "";
    if (offset >= b.length) {
      throw new ElfError(
        `${what}: offset ${offset} is past the end of the string table ${this.#label} (size ${b.length})`,
        at,
      );
    }
    const end = b.indexOf(0, offset);
    if (end < 0) {
      throw new ElfError(`${what}: the string at offset ${offset} of ${this.#label} is not NUL-terminated`, at);
    }
    this.#budget.left -= end - offset;
    if (this.#budget.left < 0) {
      throw new ElfError(`${what}: the names take far more bytes than the file has (overlapping strings)`, at);
    }
    const s = end === offset ? "" : UTF8.decode(b.subarray(offset, end));
    this.#cache.set(offset, s);
    return s;
  }
}

function reverse(table: Readonly<Record<string, number>>): ReadonlyMap<number, string> {
  return new Map(Object.entries(table).map(([k, v]) => [v, k]));
}

const SECTION_TYPE_NAMES = reverse(ELF_SECTION_TYPE) as ReadonlyMap<number, ElfSectionType>;
const FILE_TYPE_NAMES = reverse(ELF_FILE_TYPE) as ReadonlyMap<number, ElfFileType>;
const SYMBOL_TYPE_NAMES = reverse(ELF_SYMBOL_TYPE) as ReadonlyMap<number, ElfSymbolType>;
const SYMBOL_BIND_NAMES = reverse(ELF_SYMBOL_BIND) as ReadonlyMap<number, ElfSymbolBind>;
const VISIBILITY_NAMES: readonly ElfSymbolVisibility[] = ["default", "internal", "hidden", "protected"];

const SECTION_TYPE_LABELS: ReadonlyMap<number, string> = new Map([
  [SHT_NULL, "SHT_NULL"],
  [1, "SHT_PROGBITS"],
  [SHT_SYMTAB, "SHT_SYMTAB"],
  [SHT_STRTAB, "SHT_STRTAB"],
  [SHT_RELA, "SHT_RELA"],
  [SHT_NOBITS, "SHT_NOBITS"],
  [SHT_REL, "SHT_REL"],
]);

function typeLabel(type: number): string {
  return `${SECTION_TYPE_LABELS.get(type) ?? "type"} (${type})`;
}

class Section implements ElfSection {
  readonly index: number;
  readonly name: string;
  readonly type: ElfSectionType | number;
  readonly flags: number;
  readonly addr: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
  readonly #bytes: Uint8Array;

  constructor(raw: RawSection, name: string, bytes: Uint8Array) {
    this.index = raw.index;
    this.name = name;
    this.type = SECTION_TYPE_NAMES.get(raw.type) ?? raw.type;
    this.flags = raw.flags;
    this.addr = raw.addr;
    this.offset = raw.offset;
    this.size = raw.size;
    this.link = raw.link;
    this.info = raw.info;
    this.addralign = raw.addralign;
    this.entsize = raw.entsize;
    this.#bytes = bytes;
  }

  data(): Uint8Array {
    return this.#bytes;
  }
}

class File implements ElfFile {
  readonly header: ElfHeader;
  readonly sections: readonly ElfSection[];
  readonly symbols: readonly ElfSymbol[];
  readonly relocations: ReadonlyMap<number, readonly ElfRelocation[]>;
  readonly #byName: ReadonlyMap<string, ElfSection>;

  constructor(
    header: ElfHeader,
    sections: readonly ElfSection[],
    symbols: readonly ElfSymbol[],
    relocations: ReadonlyMap<number, readonly ElfRelocation[]>,
  ) {
    this.header = header;
    this.sections = sections;
    this.symbols = symbols;
    this.relocations = relocations;
    const byName = new Map<string, ElfSection>();
    for (const s of sections) if (!byName.has(s.name)) byName.set(s.name, s);
    this.#byName = byName;
  }

  sectionByName(name: string): ElfSection | undefined {
    return this.#byName.get(name);
  }
}

/** A section header as read, before names are resolved. */
interface RawSection {
  readonly index: number;
  /** File offset of the header itself. */
  readonly at: number;
  readonly nameOffset: number;
  readonly type: number;
  readonly flags: number;
  readonly addr: bigint;
  readonly offset: number;
  readonly size: number;
  readonly link: number;
  readonly info: number;
  readonly addralign: number;
  readonly entsize: number;
}

/**
 * Parses an ELF64 little-endian BPF object (`e_machine` 247, `EM_BPF`), as
 * written by `clang -target bpf -c`.
 *
 * The result lists every section (with a view of its bytes), the symbol
 * table and the relocations of every `SHT_REL`/`SHT_RELA` section, keyed by
 * the section they patch. Nothing is copied: section data are views into
 * `bytes`. Parsing is pure and checks every offset, size and index against
 * the buffer: corrupt or truncated input throws {@link ElfError} naming the
 * file offset and what was expected there.
 *
 * @param bytes The object file's contents.
 * @returns The sections, symbols and relocations.
 * @throws {TypeError} When `bytes` is not a `Uint8Array`.
 * @throws {ElfError} When `bytes` is not a valid ELF64 little-endian BPF
 * object: a wrong magic, class, byte order (big-endian objects are not
 * supported) or machine; a truncated header; a section header table, section,
 * string, symbol or relocation out of bounds; a wrong table entry size; a
 * symbol in a missing section; a relocation of a missing symbol or outside
 * its section.
 *
 * @example A header without sections
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseElf } from "@dp/core/internal";
 *
 * const bytes = new Uint8Array(64);
 * bytes.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]); // magic, ELFCLASS64, little-endian, EV_CURRENT
 * const view = new DataView(bytes.buffer);
 * view.setUint16(16, 1, true); // e_type: ET_REL
 * view.setUint16(18, 247, true); // e_machine: EM_BPF
 * view.setUint32(20, 1, true); // e_version
 * view.setUint16(52, 64, true); // e_ehsize
 *
 * const elf = parseElf(bytes);
 * assert.equal(elf.header.type, "relocatable");
 * assert.equal(elf.sections.length, 0);
 * assert.equal(elf.sectionByName(".text"), undefined);
 * ```
 *
 * @example Reading a compiled object
 * ```ts no-run
 * import { readFileSync } from "node:fs";
 * import { parseElf } from "@dp/core/internal";
 *
 * const elf = parseElf(readFileSync("bpf/build/testdata/xdp_count.o"));
 * const xdp = elf.sectionByName("xdp");
 * console.log(xdp?.data().length, elf.relocations.get(xdp?.index ?? -1));
 * ```
 */
export function parseElf(bytes: Uint8Array): ElfFile {
  if (!(bytes instanceof Uint8Array)) {
    throw new TypeError(`Invalid ELF input: expected a Uint8Array, got ${bytes === null ? "null" : typeof bytes}`);
  }
  return new Parser(bytes).parse();
}

class Parser {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #length: number;
  readonly #budget: StringBudget;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#length = bytes.byteLength;
    // Decoded names may repeat bytes (tail-merged strings), but never by
    // much: a generous multiple of the file size bounds the work.
    this.#budget = { left: 8 * bytes.byteLength + 65536 };
  }

  /** Reads a u64 as a number (inexact above 2^53; callers check). */
  #u64(at: number): number {
    return this.#view.getUint32(at, true) + this.#view.getUint32(at + 4, true) * TWO_32;
  }

  /** Reads a u64 that must be a safe integer. */
  #safeU64(at: number, what: string, errorAt: number): number {
    const n = this.#u64(at);
    if (!Number.isSafeInteger(n)) {
      throw new ElfError(`${what} ${this.#view.getBigUint64(at, true)} is too large`, errorAt);
    }
    return n;
  }

  parse(): ElfFile {
    const { header, shoff, shnum, shstrndx } = this.#header();
    const raw = this.#sectionHeaders(shoff, shnum);
    const sections = this.#names(raw, shstrndx);
    const { symbols, symtab } = this.#symbols(raw, sections);
    const relocations = this.#relocations(raw, sections, symbols, symtab);
    return new File({ ...header, sectionCount: shnum, sectionNameIndex: shstrndx }, sections, symbols, relocations);
  }

  #header(): {
    header: Omit<ElfHeader, "sectionCount" | "sectionNameIndex">;
    shoff: number;
    shnum: number;
    shstrndx: number;
  } {
    const b = this.#bytes;
    const len = this.#length;
    const magic = [0x7f, 0x45, 0x4c, 0x46];
    for (let i = 0; i < 4; i++) {
      if (i >= len) {
        throw new ElfError(`file header truncated: expected ${EHDR_SIZE} bytes, the file has ${len}`, len);
      }
      if (b[i] !== magic[i]) {
        const got = Array.from(b.subarray(0, 4), (x) => x.toString(16).padStart(2, "0")).join(" ");
        throw new ElfError(`expected the ELF magic 7f 45 4c 46 ("\\x7fELF"), got ${got}`, 0);
      }
    }
    if (len < EHDR_SIZE) {
      throw new ElfError(`file header truncated: expected ${EHDR_SIZE} bytes, the file has ${len}`, len);
    }
    const v = this.#view;
    const cls = v.getUint8(4);
    if (cls !== 2) {
      throw new ElfError(
        `expected e_ident[EI_CLASS] ELFCLASS64 (2), got ${cls}${cls === 1 ? " (ELFCLASS32): only 64-bit objects are supported" : ""}`,
        4,
      );
    }
    const data = v.getUint8(5);
    if (data === 2) throw new ElfError("big-endian BPF objects are not supported (e_ident[EI_DATA] is ELFDATA2MSB)", 5);
    if (data !== 1) throw new ElfError(`expected e_ident[EI_DATA] ELFDATA2LSB (1), got ${data}`, 5);
    const identVersion = v.getUint8(6);
    if (identVersion !== 1) throw new ElfError(`expected e_ident[EI_VERSION] EV_CURRENT (1), got ${identVersion}`, 6);
    const machine = v.getUint16(18, true);
    if (machine !== EM_BPF) {
      throw new ElfError(`expected e_machine EM_BPF (247), got ${machine}: not a BPF object`, 18);
    }
    const version = v.getUint32(20, true);
    if (version !== 1) throw new ElfError(`expected e_version EV_CURRENT (1), got ${version}`, 20);
    const type = v.getUint16(16, true);
    const entry = v.getBigUint64(24, true);
    const shoff = this.#safeU64(40, "e_shoff", 40);
    const flags = v.getUint32(48, true);
    const shentsize = v.getUint16(58, true);
    let shnum = v.getUint16(60, true);
    let shstrndx = v.getUint16(62, true);

    if (shoff === 0) {
      if (shnum !== 0)
        throw new ElfError(`e_shnum is ${shnum} but e_shoff is 0: the section header table is missing`, 60);
      if (shstrndx !== 0) throw new ElfError(`e_shstrndx is ${shstrndx} but the file has no section header table`, 62);
    } else {
      if (shentsize !== SHDR_SIZE) {
        throw new ElfError(`expected e_shentsize ${SHDR_SIZE} (sizeof(Elf64_Shdr)), got ${shentsize}`, 58);
      }
      if (shoff > len || len - shoff < SHDR_SIZE) {
        throw new ElfError(
          `the section header table at e_shoff ${shoff} points past the end of the file (file ${len})`,
          40,
        );
      }
      // Extended numbering: counts too large for the header live in section 0.
      if (shnum === 0) {
        shnum = this.#safeU64(shoff + 32, "section 0 sh_size (the extended section count)", shoff + 32);
      }
      if (shstrndx === SHN_XINDEX) shstrndx = v.getUint32(shoff + 40, true);
      if (shnum > (len - shoff) / SHDR_SIZE) {
        throw new ElfError(
          `the section header table points past the end of the file (offset ${shoff}, ${shnum} headers of ${SHDR_SIZE} bytes, file ${len})`,
          40,
        );
      }
    }
    return {
      header: {
        type: FILE_TYPE_NAMES.get(type) ?? type,
        machine,
        osAbi: v.getUint8(7),
        abiVersion: v.getUint8(8),
        entry,
        flags,
        sectionHeaderOffset: shoff,
      },
      shoff,
      shnum,
      shstrndx,
    };
  }

  #sectionHeaders(shoff: number, shnum: number): RawSection[] {
    const v = this.#view;
    const len = this.#length;
    // shnum * SHDR_SIZE fits in the file: checked by #header.
    const out: RawSection[] = [];
    for (let i = 0; i < shnum; i++) {
      const at = shoff + i * SHDR_SIZE;
      const type = v.getUint32(at + 4, true);
      const flagsHigh = v.getUint32(at + 12, true);
      if (flagsHigh !== 0) {
        throw new ElfError(
          `section header ${i}: sh_flags 0x${v.getBigUint64(at + 8, true).toString(16)} has bits above 31 set, which ELF does not define`,
          at + 8,
        );
      }
      const offset = this.#safeU64(at + 24, `section header ${i}: sh_offset`, at);
      const size = this.#safeU64(at + 32, `section header ${i}: sh_size`, at);
      const section: RawSection = {
        index: i,
        at,
        nameOffset: v.getUint32(at, true),
        type,
        flags: v.getUint32(at + 8, true),
        addr: v.getBigUint64(at + 16, true),
        offset,
        size,
        link: v.getUint32(at + 40, true),
        info: v.getUint32(at + 44, true),
        addralign: this.#safeU64(at + 48, `section header ${i}: sh_addralign`, at),
        entsize: this.#safeU64(at + 56, `section header ${i}: sh_entsize`, at),
      };
      if (type !== SHT_NULL && type !== SHT_NOBITS && (offset > len || size > len - offset)) {
        throw new ElfError(
          `section header ${i} points past the end of the file (offset ${offset}, size ${size}, file ${len})`,
          at,
        );
      }
      out.push(section);
    }
    return out;
  }

  #hasData(s: RawSection): boolean {
    return s.type !== SHT_NULL && s.type !== SHT_NOBITS;
  }

  #strings(s: RawSection, label: string): StringTable {
    return new StringTable(this.#bytes.subarray(s.offset, s.offset + s.size), label, this.#budget);
  }

  #names(raw: readonly RawSection[], shstrndx: number): Section[] {
    if (raw.length === 0) {
      if (shstrndx !== 0) throw new ElfError(`e_shstrndx is ${shstrndx} but the file has no sections`, 62);
      return [];
    }
    if (shstrndx === 0 || shstrndx >= raw.length) {
      throw new ElfError(
        `e_shstrndx ${shstrndx} is not a section index: expected 1 to ${raw.length - 1} (the section name string table)`,
        62,
      );
    }
    const table = raw[shstrndx] as RawSection;
    if (table.type !== SHT_STRTAB) {
      throw new ElfError(
        `e_shstrndx ${shstrndx} names section ${shstrndx}, which is ${typeLabel(table.type)}, not a string table (SHT_STRTAB)`,
        62,
      );
    }
    const names = this.#strings(table, `section ${shstrndx}`);
    const empty = this.#bytes.subarray(0, 0);
    return raw.map((s) => {
      const name = names.get(s.nameOffset, `section header ${s.index} name`, s.at);
      const data = this.#hasData(s) ? this.#bytes.subarray(s.offset, s.offset + s.size) : empty;
      return new Section(s, name, data);
    });
  }

  #symbols(
    raw: readonly RawSection[],
    sections: readonly Section[],
  ): { symbols: ElfSymbol[]; symtab: RawSection | undefined } {
    let symtab: RawSection | undefined;
    for (const s of raw) {
      if (s.type !== SHT_SYMTAB) continue;
      if (symtab !== undefined) {
        throw new ElfError(
          `section ${s.index} is a second symbol table (SHT_SYMTAB); section ${symtab.index} is the first and only one allowed`,
          s.at,
        );
      }
      symtab = s;
    }
    if (symtab === undefined) return { symbols: [], symtab };
    const label = this.#label(symtab, sections);
    if (symtab.entsize !== SYM_SIZE) {
      throw new ElfError(
        `${label}: expected sh_entsize ${SYM_SIZE} (sizeof(Elf64_Sym)), got ${symtab.entsize}`,
        symtab.at,
      );
    }
    if (symtab.size % SYM_SIZE !== 0) {
      throw new ElfError(`${label}: sh_size ${symtab.size} is not a multiple of the entry size ${SYM_SIZE}`, symtab.at);
    }
    const strtabSection = raw[symtab.link];
    if (strtabSection === undefined || strtabSection.index === 0 || strtabSection.type !== SHT_STRTAB) {
      throw new ElfError(
        `${label}: sh_link ${symtab.link} is not a string table (expected the index of an SHT_STRTAB section)`,
        symtab.at,
      );
    }
    const count = symtab.size / SYM_SIZE;
    if (symtab.info > count) {
      throw new ElfError(
        `${label}: sh_info ${symtab.info} (the first global symbol) is past the ${count} symbols of the table`,
        symtab.at,
      );
    }
    const strings = this.#strings(strtabSection, this.#label(strtabSection, sections));
    const v = this.#view;
    const shnum = raw.length;
    const symbols: ElfSymbol[] = [];
    for (let i = 0; i < count; i++) {
      const at = symtab.offset + i * SYM_SIZE;
      const name = strings.get(v.getUint32(at, true), `symbol ${i} name`, at);
      const info = v.getUint8(at + 4);
      const other = v.getUint8(at + 5);
      const shndx = v.getUint16(at + 6, true);
      const value = this.#safeU64(at + 8, `symbol ${i} ("${name}"): st_value`, at);
      const size = this.#safeU64(at + 16, `symbol ${i} ("${name}"): st_size`, at);
      if (shndx === SHN_XINDEX) {
        throw new ElfError(
          `symbol ${i} ("${name}") uses an extended section index (SHN_XINDEX), which BPF objects do not use`,
          at + 6,
        );
      }
      if (shndx !== 0 && shndx < SHN_LORESERVE) {
        if (shndx >= shnum) {
          throw new ElfError(
            `symbol ${i} ("${name}") is defined in section ${shndx}, but the file has ${shnum} sections`,
            at + 6,
          );
        }
        const target = raw[shndx] as RawSection;
        if (value > target.size || size > target.size - value) {
          throw new ElfError(
            `symbol ${i} ("${name}") spans bytes ${value} to ${value + size}, past the end of ${this.#label(target, sections)} (size ${target.size})`,
            at + 8,
          );
        }
      }
      symbols.push({
        index: i,
        name,
        value,
        size,
        type: SYMBOL_TYPE_NAMES.get(info & 0xf) ?? info & 0xf,
        bind: SYMBOL_BIND_NAMES.get(info >> 4) ?? info >> 4,
        visibility: VISIBILITY_NAMES[other & 3] as ElfSymbolVisibility,
        sectionIndex: shndx,
      });
    }
    return { symbols, symtab };
  }

  #relocations(
    raw: readonly RawSection[],
    sections: readonly Section[],
    symbols: readonly ElfSymbol[],
    symtab: RawSection | undefined,
  ): Map<number, ElfRelocation[]> {
    const v = this.#view;
    const out = new Map<number, ElfRelocation[]>();
    // Relocation sections never share bytes in a valid file, so together
    // they fit in it; without this check, many headers pointing at the same
    // bytes would multiply the work.
    let total = 0;
    for (const s of raw) {
      if (s.type !== SHT_REL && s.type !== SHT_RELA) continue;
      const label = this.#label(s, sections);
      const rela = s.type === SHT_RELA;
      const entsize = rela ? RELA_SIZE : REL_SIZE;
      const struct = rela ? "Elf64_Rela" : "Elf64_Rel";
      if (s.entsize !== entsize) {
        throw new ElfError(`${label}: expected sh_entsize ${entsize} (sizeof(${struct})), got ${s.entsize}`, s.at);
      }
      if (s.size % entsize !== 0) {
        throw new ElfError(`${label}: sh_size ${s.size} is not a multiple of the entry size ${entsize}`, s.at);
      }
      total += s.size;
      if (total > this.#length) {
        throw new ElfError(
          `${label}: the relocation sections together take ${total} bytes, more than the file's ${this.#length} (overlapping sections)`,
          s.at,
        );
      }
      if (symtab === undefined) {
        throw new ElfError(`${label}: the file has relocations but no symbol table (SHT_SYMTAB)`, s.at);
      }
      if (s.link !== symtab.index) {
        throw new ElfError(`${label}: sh_link ${s.link} is not the symbol table (expected ${symtab.index})`, s.at);
      }
      const target = raw[s.info];
      if (s.info === 0 || target === undefined) {
        throw new ElfError(
          `${label}: sh_info ${s.info} is not a section to patch (expected 1 to ${raw.length - 1})`,
          s.at,
        );
      }
      if (!this.#hasData(target)) {
        throw new ElfError(
          `${label}: patches ${this.#label(target, sections)}, which is ${typeLabel(target.type)} and has no bytes`,
          s.at,
        );
      }
      const targetLabel = this.#label(target, sections);
      let list = out.get(target.index);
      if (list === undefined) {
        list = [];
        out.set(target.index, list);
      }
      const count = s.size / entsize;
      for (let i = 0; i < count; i++) {
        const at = s.offset + i * entsize;
        const offset = this.#safeU64(at, `${label}: relocation ${i} r_offset`, at);
        const type = v.getUint32(at + 8, true);
        const symbolIndex = v.getUint32(at + 12, true);
        if (symbolIndex >= symbols.length) {
          throw new ElfError(
            `${label}: relocation ${i} refers to symbol ${symbolIndex}, but the symbol table has ${symbols.length} symbols`,
            at + 12,
          );
        }
        const width = BPF_RELOCATION_WIDTH.get(type) ?? 1;
        if (offset > target.size || width > target.size - offset) {
          throw new ElfError(
            `${label}: relocation ${i} patches bytes ${offset} to ${offset + width} of ${targetLabel}, which has ${target.size} bytes`,
            at,
          );
        }
        list.push(
          rela ? { offset, symbolIndex, type, addend: v.getBigInt64(at + 16, true) } : { offset, symbolIndex, type },
        );
      }
    }
    return out;
  }

  #label(s: RawSection, sections: readonly Section[]): string {
    const name = sections[s.index]?.name;
    return name === undefined || name === "" ? `section ${s.index}` : `section ${s.index} ("${name}")`;
  }
}
