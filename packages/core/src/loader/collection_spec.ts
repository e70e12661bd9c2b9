// A BPF object file as plain data, the way libbpf and cilium/ebpf read it:
// programs split out of their ELF sections and linked with the `.text`
// subprograms they call, map references kept by name (the loader fills in
// descriptors), global data sections as one-entry array maps, `.kconfig`
// externs, and the BTF with func/line info and CO-RE records per program.
import { readBytes } from "../_sys/fs.ts";
import { SyscallError } from "../errors.ts";
import { type Btf, parseBtf, replaceBtfTypes } from "../btf/btf.ts";
import { type BtfCoreRelo, type BtfExt, type BtfLineInfo, parseBtfExt } from "../btf/btf_ext.ts";
import { type DatasecLayout, fixupDatasecs } from "../btf/btf_load.ts";
import {
  BPF_RELOCATION_TYPE,
  ELF_SECTION_FLAGS,
  type ElfFile,
  type ElfSection,
  type ElfSymbol,
  parseElf,
} from "./elf.ts";
import { MAP_FLAGS } from "../bpf/map_spec.ts";
import { type KconfigExtern, kconfigExterns } from "./kconfig.ts";
import { type KsymExtern, ksymExterns } from "./ksym.ts";
import { MapDefinitionError, mapSpecsFromObject } from "./object_maps.ts";
import { LEGACY_MAPS_SECTION, legacyMapSpecsFromObject } from "./legacy_maps.ts";
import { structOpsFromObject } from "./struct_ops.ts";
import type { AttachType, ProgramType } from "../bpf/program.ts";
import { programTypeForSection } from "./section_names.ts";

const ENOENT = 2;
import { ConstantSet, type VariableSpec } from "./variables.ts";
import type { CollectionMapSpec } from "./collection_map_spec.ts";

export type { CollectionMapSpec } from "./collection_map_spec.ts";

/**
 * An instruction that refers to a map, a global variable, a `.kconfig`
 * extern or a `__ksym` extern (a kernel function or variable); resolved when
 * loading.
 */
export type InstructionReference =
  | {
      /** The `ld_imm64` instruction's index in {@link CollectionProgramSpec.instructions}. */
      readonly instruction: number;
      /** A map descriptor (`BPF_PSEUDO_MAP_FD`). */
      readonly kind: "map";
      /** The map's name in {@link CollectionSpec.maps}. */
      readonly map: string;
    }
  | {
      /** The `ld_imm64` instruction's index in {@link CollectionProgramSpec.instructions}. */
      readonly instruction: number;
      /** An address inside a map's value (`BPF_PSEUDO_MAP_VALUE`): a global variable. */
      readonly kind: "mapValue";
      /** The data map's name in {@link CollectionSpec.maps}. */
      readonly map: string;
      /** The byte offset in the value. */
      readonly offset: number;
    }
  | {
      /** The `ld_imm64` instruction's index in {@link CollectionProgramSpec.instructions}. */
      readonly instruction: number;
      /** A `.kconfig` extern: the loader lays out `.kconfig` and turns this into a `mapValue`. */
      readonly kind: "kconfig";
      /** The extern's name, such as `"CONFIG_HZ"`. */
      readonly extern: string;
      /** A byte offset added to the extern's address. */
      readonly offset: number;
    }
  | {
      /** The `call` instruction's index in {@link CollectionProgramSpec.instructions}. */
      readonly instruction: number;
      /** A call of a kernel function (kfunc): the loader makes it a `BPF_PSEUDO_KFUNC_CALL` of the function's BTF id. */
      readonly kind: "kfunc";
      /** The extern's name in {@link CollectionSpec.ksyms}. */
      readonly extern: string;
    }
  | {
      /** The `ld_imm64` instruction's index in {@link CollectionProgramSpec.instructions}. */
      readonly instruction: number;
      /**
       * The address of a `__ksym` extern: a kernel variable (by BTF id,
       * `BPF_PSEUDO_BTF_ID`, or for `void` ones by address) or a kernel
       * function (`bpf_ksym_exists()`); 0 for a `__weak` one the kernel lacks.
       */
      readonly kind: "ksym";
      /** The extern's name in {@link CollectionSpec.ksyms}. */
      readonly extern: string;
    };

/** A function's BTF for one program (a `bpf_func_info` record before loading). */
export interface ProgramFuncInfo {
  /** The function's first instruction in {@link CollectionProgramSpec.instructions}. */
  readonly instruction: number;
  /** The function's `BTF_KIND_FUNC` id in the object's BTF. */
  readonly typeId: number;
  /** The function's name. */
  readonly name: string;
}

/** A source line of one program (a `bpf_line_info` record before loading). */
export interface ProgramLineInfo extends BtfLineInfo {
  /** The instruction in {@link CollectionProgramSpec.instructions}. */
  readonly instruction: number;
}

/** A CO-RE relocation of one program. */
export interface ProgramCoreRelo {
  /** The instruction in {@link CollectionProgramSpec.instructions}. */
  readonly instruction: number;
  /** The record from `.BTF.ext`. */
  readonly relo: BtfCoreRelo;
}

/** A program of a {@link CollectionSpec}: linked instructions, references to resolve, BTF records. */
export interface CollectionProgramSpec {
  /** The function name (the kernel name is cut to 15 characters). */
  readonly name: string;
  /** The ELF section, such as `"tc"` or `"kprobe/do_unlinkat"`. */
  readonly sectionName: string;
  /** The program type the section name stands for. */
  readonly type: ProgramType;
  /** The expected attach type the section name implies, if any. */
  readonly expectedAttachType: AttachType | undefined;
  /** What the section name says to attach to (`"do_unlinkat"`), if anything. */
  readonly attachTo: string | undefined;
  /** `BPF_F_*` load flags the section implies. */
  readonly flags: number;
  /** `false` for `SEC("?...")` programs: {@link loadCollection} skips them unless named. */
  readonly autoload: boolean;
  /** The object's license (`SEC("license")`). */
  readonly license: string;
  /** The object's `SEC("version")`, 0 without one. */
  readonly kernelVersion: number;
  /**
   * The program followed by every subprogram it calls, calls already
   * pointing at their place; map references still hold zeros. Copy before
   * changing: the loader patches a copy.
   */
  readonly instructions: Uint8Array;
  /** The instructions the loader must point at maps and variables. */
  readonly references: readonly InstructionReference[];
  /** One record per function (the program first, then its subprograms). */
  readonly funcInfo: readonly ProgramFuncInfo[];
  /** Source lines, in instruction order. */
  readonly lineInfo: readonly ProgramLineInfo[];
  /** CO-RE relocations, applied against the kernel's BTF when loading. */
  readonly coreRelos: readonly ProgramCoreRelo[];
}

/**
 * A parsed BPF object, made by {@link parseCollectionSpec} or
 * {@link readCollectionSpec}: plain data that {@link loadCollection} turns
 * into kernel objects. Set `.rodata` constants through
 * {@link CollectionSpec.constants} before loading.
 */
export interface CollectionSpec {
  /** The object name (the file name without `.o`), the prefix of data map names. */
  readonly name: string;
  /** Every map by name: `.maps` maps, struct_ops maps, legacy `maps` ones, then data sections, then `.kconfig`. */
  readonly maps: ReadonlyMap<string, CollectionMapSpec>;
  /** Every program by function name. */
  readonly programs: ReadonlyMap<string, CollectionProgramSpec>;
  /**
   * The global variables of the data sections, by name: not `static` ones
   * nor hidden (`__hidden`) globals, which stay the object's own, as in
   * libbpf and cilium/ebpf.
   */
  readonly variables: ReadonlyMap<string, VariableSpec>;
  /** The `.rodata*` variables, to set before loading. */
  readonly constants: ConstantSet;
  /** The `.kconfig` externs. */
  readonly kconfig: readonly KconfigExtern[];
  /** The `__ksym` externs: kernel functions and variables, resolved per program when loading. */
  readonly ksyms: readonly KsymExtern[];
  /** The object's BTF (data section sizes and offsets filled in), if it has one. */
  readonly btf: Btf | undefined;
  /** The parsed `.BTF.ext`, if the object has one. */
  readonly btfExt: BtfExt | undefined;
  /** The license. */
  readonly license: string;
}

/** Options for {@link parseCollectionSpec}. */
export interface ParseCollectionOptions {
  /**
   * The object name: the prefix of data map names (libbpf uses the file name).
   *
   * @default "obj"
   */
  readonly name?: string;
}

/**
 * A BPF object cannot be turned into programs and maps: a relocation
 * points somewhere it cannot, a call leaves the code, a section is missing.
 * The message names the object, the section and the instruction.
 *
 * @example What a bad object reports
 * ```ts
 * import assert from "node:assert/strict";
 * import { ObjectError } from "@dp/core";
 *
 * const err = new ObjectError("xdp_count", 'section "xdp" instruction 3: call outside the code');
 * assert.ok(err instanceof SyntaxError);
 * assert.equal(err.message, 'Invalid BPF object "xdp_count": section "xdp" instruction 3: call outside the code');
 * ```
 */
export class ObjectError extends SyntaxError {
  /** Always `"ObjectError"`, the class name. */
  override readonly name: string = "ObjectError";
  /** The object's name. */
  readonly object: string;

  /**
   * Creates the error.
   *
   * @param object The object's name.
   * @param detail What is wrong and where.
   * @param options The underlying error, if any.
   */
  constructor(object: string, detail: string, options?: ErrorOptions) {
    super(`Invalid BPF object ${JSON.stringify(object)}: ${detail}`, options);
    this.object = object;
  }
}

const INSN = 8;
const OP_LD_IMM64 = 0x18;
const OP_CALL = 0x85;
const PSEUDO_CALL = 1;
const PSEUDO_FUNC = 4;
const DATA_SECTION = /^\.(rodata|data|bss)(\..+)?$/;
const KCONFIG = ".kconfig";
const KCONFIG_MAP_SIZE_MIN = 1;
/** The largest data section made into a map (the kernel caps values at KMALLOC_MAX_SIZE, 4 MiB to 64 MiB). */
const MAX_DATA_SECTION = 64 << 20;

/** A function in an executable section: a program or a subprogram. */
interface Func {
  readonly name: string;
  readonly section: ElfSection;
  /** First instruction in the section. */
  readonly start: number;
  /** One past the last instruction in the section. */
  readonly end: number;
  readonly global: boolean;
  /** Hidden or internal visibility (`__hidden`): never called from another object. */
  readonly hidden: boolean;
}

/**
 * Reads a BPF object file (clang `-target bpf` output) into a
 * {@link CollectionSpec}.
 *
 * @param path The `.o` file.
 * @returns The spec, named after the file.
 * @throws {SyscallError} `code: "ENOENT"` naming the path when there is no such file.
 * @throws {Error} When the file cannot be read for another reason (Node's file system error).
 * @throws {ObjectError} When the object is malformed, or an executable section has a name libbpf 1.x does not know (also {@link ElfError}, {@link BtfSyntaxError}, {@link MapDefinitionError}).
 * @example Listing an object's programs
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCollectionSpec } from "@dp/core";
 *
 * const spec = readCollectionSpec("bpf/build/testdata/xdp_count.o");
 * assert.deepEqual([...spec.programs.keys()], ["count_packets"]);
 * assert.equal(spec.programs.get("count_packets")?.type, "xdp");
 * assert.deepEqual([...spec.maps.keys()], ["xdp_counters"]);
 * ```
 */
export function readCollectionSpec(path: string): CollectionSpec {
  const bytes = readBytes(path);
  if (bytes === undefined) {
    throw new SyscallError(`Cannot read BPF object ${JSON.stringify(path)}`, {
      syscall: "open",
      op: "open",
      errno: ENOENT,
    });
  }
  const base = path.slice(path.lastIndexOf("/") + 1).replace(/\.o$/, "");
  return parseCollectionSpec(bytes, { name: base === "" ? "obj" : base });
}

/**
 * Parses the bytes of a BPF object into a {@link CollectionSpec}: programs
 * from libbpf section names (several per section), linked with the `.text`
 * subprograms they call; maps from BTF-defined `.maps` (a definition with
 * non-zero bytes is refused, as cilium/ebpf does) and from legacy
 * `SEC("maps")` definitions (iproute2's `struct bpf_elf_map`, libbpf's old
 * `struct bpf_map_def`); struct_ops maps from the variables of
 * `SEC(".struct_ops")` and `SEC(".struct_ops.link")`; one map per global
 * data section; `.kconfig` externs; `__ksym` externs (kernel functions and
 * variables, resolved only when loading, so an object whose programs call
 * kernel functions some kernels lack parses everywhere); BTF and
 * `.BTF.ext` records per program.
 * As in libbpf, global functions with hidden visibility get static linkage
 * in {@link CollectionSpec.btf}, and an object without a `license` section
 * has the empty license.
 *
 * @param bytes The ELF file.
 * @param options The object name.
 * @returns The spec; nothing is created in the kernel.
 * @throws {ObjectError} When the object is malformed, or an executable section has a name libbpf 1.x does not know (also {@link ElfError}, {@link BtfSyntaxError}, {@link MapDefinitionError}).
 */
export function parseCollectionSpec(bytes: Uint8Array, options: ParseCollectionOptions = {}): CollectionSpec {
  const object = options.name ?? "obj";
  try {
    return parse(bytes, object);
  } catch (err) {
    // BTF lookups report inconsistent types as range and type errors; in a file, they are malformed input.
    if (err instanceof RangeError || err instanceof TypeError)
      throw new ObjectError(object, err.message, { cause: err });
    if (err instanceof MapDefinitionError) {
      const detail = err.message.slice(`Invalid map ${JSON.stringify(err.mapName)} in ${err.section}: `.length);
      throw new MapDefinitionError(err.mapName, `${detail} (object ${JSON.stringify(object)})`, {
        cause: err,
        section: err.section,
      });
    }
    throw err;
  }
}

function parse(bytes: Uint8Array, object: string): CollectionSpec {
  const elf = parseElf(bytes);
  const fail = (detail: string): never => {
    throw new ObjectError(object, detail);
  };

  const license = readLicense(elf);
  const versionSection = elf.sectionByName("version");
  let kernelVersion = 0;
  if (versionSection !== undefined) {
    const d = versionSection.data();
    if (d.length !== 4) fail(`section "version" has ${d.length} bytes, expected 4`);
    kernelVersion = new DataView(d.buffer, d.byteOffset, 4).getUint32(0, true);
  }

  // Data sections: their sizes and variable offsets fix up the BTF.
  const dataSections = elf.sections.filter(
    (s) =>
      DATA_SECTION.test(s.name) &&
      (s.type === "progbits" || s.type === "nobits") &&
      (s.flags & ELF_SECTION_FLAGS.alloc) !== 0,
  );
  for (const s of dataSections) {
    if (s.size > MAX_DATA_SECTION)
      fail(
        `section ${JSON.stringify(s.name)} is ${s.size} bytes, more than the ${MAX_DATA_SECTION} a data map can hold`,
      );
  }
  const btfSection = elf.sectionByName(".BTF");
  let btf: Btf | undefined;
  if (btfSection !== undefined) {
    const raw = parseBtf(btfSection.data());
    // Every DATASEC with an ELF section of its name (data, .maps, license, ...).
    const layouts = new Map<string, DatasecLayout>();
    const withDatasec = new Set(raw.types.filter((t) => t.kind === "datasec").map((t) => t.name));
    for (const s of elf.sections.filter((sec) => withDatasec.has(sec.name))) {
      const offsets = new Map<string, number>();
      for (const sym of elf.symbols) {
        if (sym.sectionIndex === s.index && sym.type === "object" && sym.name !== "") offsets.set(sym.name, sym.value);
      }
      layouts.set(s.name, { size: s.size, offsets });
    }
    btf = staticHiddenFuncs(fixupDatasecs(raw, layouts), elf);
  }
  const extSection = elf.sectionByName(".BTF.ext");
  const btfExt = extSection !== undefined && btf !== undefined ? parseBtfExt(extSection.data(), btf) : undefined;

  // Maps.
  const maps = new Map<string, CollectionMapSpec>();
  if (btf !== undefined) {
    for (const m of mapSpecsFromObject(elf, btf)) {
      maps.set(m.name, { ...m, kind: "map", contents: undefined, freeze: false });
    }
  } else if (elf.sectionByName(".maps") !== undefined) {
    fail('section ".maps" needs BTF (build with -g)');
  }
  for (const m of structOpsFromObject(elf, btf)) {
    if (maps.has(m.name)) fail(`map ${JSON.stringify(m.name)} is defined twice`);
    maps.set(m.name, {
      name: m.name,
      spec: m.spec,
      kind: "structOps",
      pinning: "none",
      keyTypeId: undefined,
      valueTypeId: m.valueTypeId,
      initialValues: m.initialValues,
      contents: m.contents,
      freeze: false,
    });
  }
  const legacy = legacyMapSpecsFromObject(elf);
  for (const m of legacy.maps) {
    if (maps.has(m.name)) fail(`map ${JSON.stringify(m.name)} is defined in both .maps and ${LEGACY_MAPS_SECTION}`);
    maps.set(m.name, { ...m, kind: "map", contents: undefined, freeze: false });
  }
  const variables = new Map<string, VariableSpec>();
  // As libbpf and cilium/ebpf: static variables and hidden globals belong to
  // the object, not to its users.
  const hiddenVariables = new Set(
    elf.symbols
      .filter((sym) => sym.type === "object" && (sym.visibility === "hidden" || sym.visibility === "internal"))
      .map((sym) => sym.name),
  );
  for (const s of dataSections) {
    const readOnly = s.name.startsWith(".rodata");
    const datasec = btf?.typesByName(s.name, "datasec")[0];
    const contents = new Uint8Array(s.size);
    if (s.type === "progbits") contents.set(s.data());
    maps.set(s.name, {
      name: s.name,
      spec: {
        name: dataMapName(object, s.name),
        type: "array",
        keySize: 4,
        valueSize: Math.max(s.size, 1),
        maxEntries: 1,
        flags: (readOnly ? MAP_FLAGS.rdonlyProg : 0) | MAP_FLAGS.mmapable,
      },
      kind: "data",
      pinning: "none",
      keyTypeId: undefined,
      valueTypeId: datasec?.id,
      initialValues: [],
      contents,
      freeze: readOnly,
    });
    if (btf === undefined || datasec === undefined) continue;
    for (const v of btf.datasecVariables(s.name) ?? []) {
      if (v.type.kind !== "var" || v.type.linkage === "static" || hiddenVariables.has(v.name)) continue;
      if (variables.has(v.name)) fail(`variable ${JSON.stringify(v.name)} is defined in two sections`);
      if (v.offset + v.size > s.size)
        fail(`variable ${JSON.stringify(v.name)} lies outside section ${JSON.stringify(s.name)}`);
      variables.set(v.name, {
        name: v.name,
        section: s.name,
        offset: v.offset,
        size: v.size,
        typeId: v.type.typeId,
        readOnly,
      });
    }
  }

  // .kconfig externs: undefined symbols whose BTF VAR sits in the .kconfig DATASEC.
  const kconfig = btf === undefined ? [] : kconfigExterns(elf, btf);
  if (kconfig.length > 0) {
    maps.set(KCONFIG, {
      name: KCONFIG,
      spec: {
        name: dataMapName(object, KCONFIG),
        type: "array",
        keySize: 4,
        valueSize: KCONFIG_MAP_SIZE_MIN,
        maxEntries: 1,
        flags: MAP_FLAGS.rdonlyProg | MAP_FLAGS.mmapable,
      },
      kind: "kconfig",
      pinning: "none",
      keyTypeId: undefined,
      valueTypeId: undefined,
      initialValues: [],
      contents: undefined,
      freeze: true,
    });
  }

  const ksyms = btf === undefined ? [] : ksymExterns(elf, btf);
  const programs = linkPrograms(elf, btfExt, maps, kconfig, ksyms, legacy.offsets, {
    object,
    license,
    kernelVersion,
    fail,
  });
  for (const m of maps.values()) {
    if (m.kind !== "structOps") continue;
    for (const v of m.initialValues) {
      if (programs.get(v.symbol)?.type !== "structOps")
        fail(
          `struct_ops map ${JSON.stringify(m.name)} refers to ${JSON.stringify(v.symbol)}, which is not a struct_ops program`,
        );
    }
  }
  const spec: CollectionSpec = {
    name: object,
    maps,
    programs,
    variables,
    constants: new ConstantSet(btf, variables, maps),
    kconfig,
    ksyms,
    btf,
    btfExt,
    license,
  };
  return spec;
}

/**
 * Global functions with hidden or internal visibility (`__hidden`, also
 * when weak) get static linkage in the BTF, as libbpf does: no other object
 * can call them, so the verifier may check them in their caller's context
 * instead of on their own.
 */
function staticHiddenFuncs(btf: Btf, elf: ElfFile): Btf {
  const hidden = new Set(
    elf.symbols
      .filter(
        (s) =>
          s.type === "func" &&
          (s.bind === "global" || s.bind === "weak") &&
          (s.visibility === "hidden" || s.visibility === "internal"),
      )
      .map((s) => s.name),
  );
  if (hidden.size === 0) return btf;
  return replaceBtfTypes(
    btf,
    btf.types.map((t) =>
      t.kind === "func" && t.linkage === "global" && hidden.has(t.name) ? { ...t, linkage: "static" } : t,
    ),
  );
}

function readLicense(elf: ElfFile): string {
  const s = elf.sectionByName("license");
  if (s === undefined) return "";
  const d = s.data();
  const nul = d.indexOf(0);
  return new TextDecoder().decode(nul < 0 ? d : d.subarray(0, nul));
}

/**
 * libbpf's internal map names: the object name cut to 8 characters and the
 * section name (`globals.rodata`); custom `.rodata.*`/`.data.*` sections
 * keep their own name; all cut to 15 characters.
 */
function dataMapName(object: string, section: string): string {
  const custom = /^\.(rodata|data|bss)\./.test(section);
  const prefix = custom ? "" : object.slice(0, 8).replace(/[^A-Za-z0-9_.]/g, "_");
  return (prefix + section).slice(0, 15);
}

interface LinkContext {
  readonly object: string;
  readonly license: string;
  readonly kernelVersion: number;
  readonly fail: (detail: string) => never;
}

function linkPrograms(
  elf: ElfFile,
  ext: BtfExt | undefined,
  maps: ReadonlyMap<string, CollectionMapSpec>,
  kconfig: readonly KconfigExtern[],
  ksyms: readonly KsymExtern[],
  legacyOffsets: ReadonlyMap<string, number>,
  ctx: LinkContext,
): Map<string, CollectionProgramSpec> {
  const { fail } = ctx;
  const funcs = new Map<number, Func[]>(); // by section index, sorted by start
  const execSections = elf.sections.filter(
    (s) => s.type === "progbits" && (s.flags & ELF_SECTION_FLAGS.execInstr) !== 0 && s.size > 0,
  );
  for (const section of execSections) {
    if (section.size % INSN !== 0)
      fail(`section ${JSON.stringify(section.name)} is ${section.size} bytes, not whole instructions`);
    const count = section.size / INSN;
    const syms = elf.symbols
      .filter((s) => s.sectionIndex === section.index && s.type === "func" && s.name !== "")
      .sort((a, b) => a.value - b.value);
    const list: Func[] = [];
    for (let i = 0; i < syms.length; i++) {
      const s = syms[i] as ElfSymbol;
      if (s.value % INSN !== 0)
        fail(`function ${JSON.stringify(s.name)} starts at byte ${s.value}, not an instruction`);
      const start = s.value / INSN;
      const next = syms[i + 1];
      const end = s.size > 0 ? start + s.size / INSN : next !== undefined ? next.value / INSN : count;
      if (start >= count || end > count || end <= start) {
        fail(
          `function ${JSON.stringify(s.name)} (${s.value}+${s.size}) lies outside section ${JSON.stringify(section.name)}`,
        );
      }
      list.push({
        name: s.name,
        section,
        start,
        end,
        global: s.bind === "global" || s.bind === "weak",
        hidden: s.visibility === "hidden" || s.visibility === "internal",
      });
    }
    funcs.set(section.index, list);
  }
  const funcAt = (section: ElfSection, insn: number): Func | undefined =>
    funcs.get(section.index)?.find((f) => insn >= f.start && insn < f.end);

  const dataMapNames = new Set([...maps.values()].filter((m) => m.kind === "data").map((m) => m.name));
  const kconfigNames = new Set(kconfig.map((k) => k.name));
  const ksymKinds = new Map(ksyms.map((k) => [k.name, k.kind]));
  const mapsSection = elf.sectionByName(".maps");
  const legacySection = elf.sectionByName(LEGACY_MAPS_SECTION);
  const legacyAt = new Map([...legacyOffsets].map(([name, offset]) => [offset, name]));

  const programs = new Map<string, CollectionProgramSpec>();
  for (const section of execSections) {
    if (section.name === ".text") continue;
    const kind = programTypeForSection(section.name);
    if (kind === undefined) {
      // libbpf 1.x: every executable section holds programs, and a name it does not know is an error.
      const names = (funcs.get(section.index) ?? []).filter((f) => f.global).map((f) => JSON.stringify(f.name));
      fail(
        `section ${JSON.stringify(section.name)}${names.length === 0 ? "" : ` (program ${names.join(", ")})`} is not a libbpf program section name`,
      );
    }
    for (const entry of funcs.get(section.index) ?? []) {
      if (!entry.global) continue;
      programs.set(entry.name, link(entry));
    }
  }
  return programs;

  function link(entry: Func): CollectionProgramSpec {
    const kind = programTypeForSection(entry.section.name) as NonNullable<ReturnType<typeof programTypeForSection>>;
    const order: Func[] = [entry];
    const position = new Map<Func, number>([[entry, 0]]);
    let length = entry.end - entry.start;
    const references: InstructionReference[] = [];
    const funcInfo: ProgramFuncInfo[] = [];
    const lineInfo: ProgramLineInfo[] = [];
    const coreRelos: ProgramCoreRelo[] = [];
    const calls: { at: number; target: Func; targetInsn: number }[] = [];
    const code: Uint8Array[] = [];

    for (let k = 0; k < order.length; k++) {
      const f = order[k] as Func;
      const base = position.get(f) as number;
      const where = (i: number): string => `section ${JSON.stringify(f.section.name)} instruction ${i}`;
      const data = f.section.data().slice(f.start * INSN, f.end * INSN);
      code.push(data);
      const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
      const relocated = new Set<number>();

      for (const rel of elf.relocations.get(f.section.index) ?? []) {
        if (rel.offset % INSN !== 0)
          fail(`${where(rel.offset / INSN)}: relocation at byte ${rel.offset} is not on an instruction`);
        const i = rel.offset / INSN;
        if (i < f.start || i >= f.end) continue;
        relocated.add(i);
        const local = i - f.start;
        const op = data[local * INSN] as number;
        const sym = elf.symbols[rel.symbolIndex];
        if (sym === undefined) fail(`${where(i)}: relocation to missing symbol #${rel.symbolIndex}`);
        const s = sym as ElfSymbol;
        const symName = s.type === "section" ? (elf.sections[s.sectionIndex]?.name ?? "") : s.name;
        const imm = dv.getInt32(local * INSN + 4, true);

        if (op === OP_CALL) {
          if (rel.type !== BPF_RELOCATION_TYPE.call32) {
            fail(`${where(i)}: call relocation of type ${rel.type} to ${JSON.stringify(symName)}`);
          }
          if (s.sectionIndex === 0 && ksymKinds.get(s.name) === "func") {
            references.push({ instruction: base + local, kind: "kfunc", extern: s.name });
            continue;
          }
          const targetSection = elf.sections[s.sectionIndex];
          if (targetSection === undefined || !funcs.has(targetSection.index)) {
            fail(
              `${where(i)}: call to ${JSON.stringify(symName)}, which is neither a function in the object nor a kernel function (an extern in .ksyms)`,
            );
          }
          addCall(f, local, targetSection as ElfSection, s.value / INSN + imm + 1, where(i));
          continue;
        }
        if (op !== OP_LD_IMM64)
          fail(
            `${where(i)}: relocation to ${JSON.stringify(symName)} on opcode 0x${op.toString(16)}, expected ld_imm64 or call`,
          );
        if (local + 1 >= f.end - f.start) fail(`${where(i)}: ld_imm64 cut short by the end of the function`);
        if (rel.type !== BPF_RELOCATION_TYPE.ldImm64)
          fail(`${where(i)}: ld_imm64 relocation of type ${rel.type} to ${JSON.stringify(symName)}`);
        const at = base + local;

        if (s.sectionIndex === 0) {
          if (ksymKinds.has(s.name)) {
            if (imm !== 0) fail(`${where(i)}: reference to ${JSON.stringify(s.name)} at offset ${imm}, expected 0`);
            references.push({ instruction: at, kind: "ksym", extern: s.name });
            continue;
          }
          if (!kconfigNames.has(s.name))
            fail(
              `${where(i)}: reference to undefined symbol ${JSON.stringify(s.name)}, which is neither a .kconfig nor a __ksym extern`,
            );
          references.push({ instruction: at, kind: "kconfig", extern: s.name, offset: imm });
          continue;
        }
        const targetSection = elf.sections[s.sectionIndex];
        if (targetSection === undefined)
          fail(`${where(i)}: reference to ${JSON.stringify(symName)} in missing section #${s.sectionIndex}`);
        const ts = targetSection as ElfSection;
        if (mapsSection !== undefined && ts.index === mapsSection.index) {
          if (!maps.has(s.name))
            fail(`${where(i)}: reference to ${JSON.stringify(symName)} in .maps, which is not a map`);
          references.push({ instruction: at, kind: "map", map: s.name });
          continue;
        }
        if (legacySection !== undefined && ts.index === legacySection.index) {
          // A static map is referenced through the section symbol and its offset.
          const name = legacyAt.get((s.type === "section" ? 0 : s.value) + imm);
          if (name === undefined)
            fail(`${where(i)}: reference to ${JSON.stringify(symName)} in ${LEGACY_MAPS_SECTION}, which is not a map`);
          references.push({ instruction: at, kind: "map", map: name as string });
          continue;
        }
        if (dataMapNames.has(ts.name)) {
          const offset = (s.type === "section" ? 0 : s.value) + imm;
          if (offset < 0 || offset >= Math.max(ts.size, 1))
            fail(`${where(i)}: reference to ${JSON.stringify(symName)} at offset ${offset}, outside ${ts.name}`);
          references.push({ instruction: at, kind: "mapValue", map: ts.name, offset });
          continue;
        }
        if (funcs.has(ts.index)) {
          // ld_imm64 of a function's address (a callback for bpf_loop and friends).
          const target = (s.type === "section" ? 0 : s.value) / INSN + imm / INSN;
          data[local * INSN + 1] = ((data[local * INSN + 1] as number) & 0x0f) | (PSEUDO_FUNC << 4);
          addCall(f, local, ts, target, where(i));
          continue;
        }
        fail(
          `${where(i)}: reference to ${JSON.stringify(symName)} in section ${JSON.stringify(ts.name)}, which is neither a map, global data nor code`,
        );
      }

      // Calls between functions of one section carry no relocation.
      for (let local = 0; local < f.end - f.start; local++) {
        const i = f.start + local;
        const op = data[local * INSN];
        if (op === OP_LD_IMM64) {
          local++;
          continue;
        }
        if (op !== OP_CALL || relocated.has(i) || (data[local * INSN + 1] as number) >> 4 !== PSEUDO_CALL) continue;
        addCall(f, local, f.section, i + dv.getInt32(local * INSN + 4, true) + 1, where(i));
      }

      const shift = (insnOffset: number): number | undefined => {
        const i = insnOffset / INSN;
        return i >= f.start && i < f.end ? base + i - f.start : undefined;
      };
      for (const r of ext?.funcInfo.get(f.section.name) ?? []) {
        const at = shift(r.insnOffset);
        if (at !== undefined) funcInfo.push({ instruction: at, typeId: r.typeId, name: r.name });
      }
      for (const r of ext?.lineInfo.get(f.section.name) ?? []) {
        const at = shift(r.insnOffset);
        if (at !== undefined) lineInfo.push({ ...r, instruction: at });
      }
      for (const r of ext?.coreRelos.get(f.section.name) ?? []) {
        const at = shift(r.insnOffset);
        if (at !== undefined) coreRelos.push({ instruction: at, relo: r });
      }
    }

    const instructions = new Uint8Array(length * INSN);
    order.forEach((f, k) => instructions.set(code[k] as Uint8Array, (position.get(f) as number) * INSN));
    const out = new DataView(instructions.buffer);
    for (const c of calls) {
      const target = (position.get(c.target) as number) + c.targetInsn - c.target.start;
      out.setInt32(c.at * INSN + 4, target - c.at - 1, true);
    }
    lineInfo.sort((a, b) => a.instruction - b.instruction);
    return {
      name: entry.name,
      sectionName: entry.section.name,
      type: kind.type,
      expectedAttachType: kind.expectedAttachType,
      attachTo: kind.attachTo,
      flags: kind.flags,
      autoload: kind.autoload,
      license: ctx.license,
      kernelVersion: ctx.kernelVersion,
      instructions,
      references,
      funcInfo,
      lineInfo,
      coreRelos,
    };

    function addCall(from: Func, local: number, section: ElfSection, targetInsn: number, where: string): void {
      const target = funcAt(section, targetInsn);
      if (target === undefined) {
        fail(
          `${where}: call to instruction ${targetInsn} of section ${JSON.stringify(section.name)}, which is not inside a function`,
        );
      }
      const t = target as Func;
      if (!position.has(t)) {
        position.set(t, length);
        length += t.end - t.start;
        order.push(t);
      }
      calls.push({ at: (position.get(from) as number) + local, target: t, targetInsn });
    }
  }
}
