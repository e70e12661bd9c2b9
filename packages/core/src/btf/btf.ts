import { BtfStringBuilder, BtfStringTable } from "./_btf_strings.ts";

/**
 * A BTF type kind, named as in the kernel's `BTF_KIND_*` in camelCase
 * (`BTF_KIND_FUNC_PROTO` is `"funcProto"`); `"void"` is type id 0.
 */
export type BtfKind =
  | "void"
  | "int"
  | "ptr"
  | "array"
  | "struct"
  | "union"
  | "enum"
  | "fwd"
  | "typedef"
  | "volatile"
  | "const"
  | "restrict"
  | "func"
  | "funcProto"
  | "var"
  | "datasec"
  | "float"
  | "declTag"
  | "typeTag"
  | "enum64";

/** The linkage of a BTF function or variable (`BTF_FUNC_*`, `BTF_VAR_*`). */
export type BtfLinkage = "static" | "global" | "extern";

/** Type id 0: `void`, the target of `void *` and the return type of `void` functions. */
export interface BtfVoid {
  /** Always `"void"`. */
  readonly kind: "void";
  /** Always 0. */
  readonly id: 0;
  /** Always `""`. */
  readonly name: "";
}

/** `BTF_KIND_INT`: an integer, `char` or `_Bool`. */
export interface BtfInt {
  /** Always `"int"`. */
  readonly kind: "int";
  /** The type id. */
  readonly id: number;
  /** The C name, such as `"unsigned int"`. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** `BTF_INT_SIGNED`. */
  readonly signed: boolean;
  /** `BTF_INT_CHAR`. */
  readonly char: boolean;
  /** `BTF_INT_BOOL`. */
  readonly bool: boolean;
  /** `BTF_INT_OFFSET`: the value's first bit (0 except in legacy bitfields). */
  readonly bitOffset: number;
  /** `BTF_INT_BITS`: the number of value bits. */
  readonly bits: number;
}

/** `BTF_KIND_PTR`: a pointer (8 bytes). */
export interface BtfPtr {
  /** Always `"ptr"`. */
  readonly kind: "ptr";
  /** The type id. */
  readonly id: number;
  /** Always `""` in valid BTF. */
  readonly name: string;
  /** The pointee's type id (0 for `void *`). */
  readonly typeId: number;
}

/** `BTF_KIND_ARRAY`: a fixed-length array. */
export interface BtfArray {
  /** Always `"array"`. */
  readonly kind: "array";
  /** The type id. */
  readonly id: number;
  /** Always `""` in valid BTF. */
  readonly name: string;
  /** The element type id. */
  readonly elementTypeId: number;
  /** The index type id (an integer type). */
  readonly indexTypeId: number;
  /** The number of elements. */
  readonly length: number;
}

/** A member of a {@link BtfStruct} or {@link BtfUnion}. */
export interface BtfMember {
  /** The member name; `""` for an anonymous struct or union member. */
  readonly name: string;
  /** The member's type id. */
  readonly typeId: number;
  /** Offset from the start of the struct in bits. */
  readonly bitOffset: number;
  /** Bitfield width in bits; 0 when the member is not a bitfield (or `kindFlag` is off). */
  readonly bitSize: number;
}

/** `BTF_KIND_STRUCT`: a struct with members. */
export interface BtfStruct {
  /** Always `"struct"`. */
  readonly kind: "struct";
  /** The type id. */
  readonly id: number;
  /** The struct tag, `""` when anonymous. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** The BTF `kind_flag`: member offsets carry bitfield sizes (`bitSize`). */
  readonly kindFlag: boolean;
  /** The members in declaration order. */
  readonly members: readonly BtfMember[];
}

/** `BTF_KIND_UNION`: a union with members (all usually at offset 0). */
export interface BtfUnion {
  /** Always `"union"`. */
  readonly kind: "union";
  /** The type id. */
  readonly id: number;
  /** The union tag, `""` when anonymous. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** The BTF `kind_flag`: member offsets carry bitfield sizes (`bitSize`). */
  readonly kindFlag: boolean;
  /** The members in declaration order. */
  readonly members: readonly BtfMember[];
}

/** One enumerator of a {@link BtfEnum}. */
export interface BtfEnumValue {
  /** The enumerator name. */
  readonly name: string;
  /** Its value (signed when the enum is signed). */
  readonly value: number;
}

/** `BTF_KIND_ENUM`: an enum of at most 32-bit values. */
export interface BtfEnum {
  /** Always `"enum"`. */
  readonly kind: "enum";
  /** The type id. */
  readonly id: number;
  /** The enum tag, `""` when anonymous. */
  readonly name: string;
  /** Size in bytes (1, 2, 4 or 8). */
  readonly size: number;
  /** Whether the values are signed (the `kind_flag`, Linux 6.0+). */
  readonly signed: boolean;
  /** The enumerators. */
  readonly values: readonly BtfEnumValue[];
}

/** `BTF_KIND_FWD`: a forward declaration of a struct or union. */
export interface BtfFwd {
  /** Always `"fwd"`. */
  readonly kind: "fwd";
  /** The type id. */
  readonly id: number;
  /** The declared tag. */
  readonly name: string;
  /** Whether it declares a union (else a struct). */
  readonly union: boolean;
}

/** `BTF_KIND_TYPEDEF`: a type alias. */
export interface BtfTypedef {
  /** Always `"typedef"`. */
  readonly kind: "typedef";
  /** The type id. */
  readonly id: number;
  /** The alias, such as `"__u32"`. */
  readonly name: string;
  /** The aliased type id. */
  readonly typeId: number;
}

/** `BTF_KIND_VOLATILE`: the `volatile` qualifier. */
export interface BtfVolatile {
  /** Always `"volatile"`. */
  readonly kind: "volatile";
  /** The type id. */
  readonly id: number;
  /** Always `""` in valid BTF. */
  readonly name: string;
  /** The qualified type id. */
  readonly typeId: number;
}

/** `BTF_KIND_CONST`: the `const` qualifier. */
export interface BtfConst {
  /** Always `"const"`. */
  readonly kind: "const";
  /** The type id. */
  readonly id: number;
  /** Always `""` in valid BTF. */
  readonly name: string;
  /** The qualified type id. */
  readonly typeId: number;
}

/** `BTF_KIND_RESTRICT`: the `restrict` qualifier. */
export interface BtfRestrict {
  /** Always `"restrict"`. */
  readonly kind: "restrict";
  /** The type id. */
  readonly id: number;
  /** Always `""` in valid BTF. */
  readonly name: string;
  /** The qualified type id. */
  readonly typeId: number;
}

/** `BTF_KIND_FUNC`: a function (a name for a {@link BtfFuncProto}). */
export interface BtfFunc {
  /** Always `"func"`. */
  readonly kind: "func";
  /** The type id. */
  readonly id: number;
  /** The function name. */
  readonly name: string;
  /** The id of its {@link BtfFuncProto}. */
  readonly typeId: number;
  /** Its linkage. */
  readonly linkage: BtfLinkage;
}

/** A parameter of a {@link BtfFuncProto}. */
export interface BtfParam {
  /** The parameter name, `""` when unnamed. */
  readonly name: string;
  /** The parameter's type id; 0 (with no name) marks `...` as the last parameter. */
  readonly typeId: number;
}

/** `BTF_KIND_FUNC_PROTO`: a function signature. */
export interface BtfFuncProto {
  /** Always `"funcProto"`. */
  readonly kind: "funcProto";
  /** The type id. */
  readonly id: number;
  /** Always `""` in valid BTF. */
  readonly name: string;
  /** The return type id (0 for `void`). */
  readonly returnTypeId: number;
  /** The parameters. */
  readonly params: readonly BtfParam[];
}

/** `BTF_KIND_VAR`: a global variable. */
export interface BtfVar {
  /** Always `"var"`. */
  readonly kind: "var";
  /** The type id. */
  readonly id: number;
  /** The variable name. */
  readonly name: string;
  /** The variable's type id. */
  readonly typeId: number;
  /** Its linkage. */
  readonly linkage: BtfLinkage;
}

/** One variable of a {@link BtfDatasec} (`struct btf_var_secinfo`). */
export interface BtfVarSecinfo {
  /** The id of the {@link BtfVar} (or, in `.ksyms`, {@link BtfFunc}). */
  readonly typeId: number;
  /** Offset in the section in bytes. */
  readonly offset: number;
  /** Size in bytes. */
  readonly size: number;
}

/** `BTF_KIND_DATASEC`: an ELF data section and the variables in it. */
export interface BtfDatasec {
  /** Always `"datasec"`. */
  readonly kind: "datasec";
  /** The type id. */
  readonly id: number;
  /** The section name, such as `".maps"` or `".rodata"`. */
  readonly name: string;
  /** The section size in bytes (0 in objects fresh from clang; see `fixupDatasecs`). */
  readonly size: number;
  /** The variables in it. */
  readonly vars: readonly BtfVarSecinfo[];
}

/** `BTF_KIND_FLOAT`: a floating-point type. */
export interface BtfFloat {
  /** Always `"float"`. */
  readonly kind: "float";
  /** The type id. */
  readonly id: number;
  /** The C name, such as `"double"`. */
  readonly name: string;
  /** Size in bytes (2, 4, 8, 12 or 16). */
  readonly size: number;
}

/** `BTF_KIND_DECL_TAG`: a `btf_decl_tag` annotation of a declaration or one of its members or parameters. */
export interface BtfDeclTag {
  /** Always `"declTag"`. */
  readonly kind: "declTag";
  /** The type id. */
  readonly id: number;
  /** The tag text, such as `"bpf_kfunc"`. */
  readonly name: string;
  /** The tagged type id. */
  readonly typeId: number;
  /** The tagged member or parameter index, -1 for the type itself. */
  readonly componentIndex: number;
  /** The `kind_flag`: the tag is a C attribute rather than a `btf_decl_tag` string. */
  readonly attribute: boolean;
}

/** `BTF_KIND_TYPE_TAG`: a `btf_type_tag` annotation of a pointee type. */
export interface BtfTypeTag {
  /** Always `"typeTag"`. */
  readonly kind: "typeTag";
  /** The type id. */
  readonly id: number;
  /** The tag text, such as `"rcu"`. */
  readonly name: string;
  /** The tagged type id. */
  readonly typeId: number;
  /** The `kind_flag`: the tag is a C attribute rather than a `btf_type_tag` string. */
  readonly attribute: boolean;
}

/** One enumerator of a {@link BtfEnum64}. */
export interface BtfEnum64Value {
  /** The enumerator name. */
  readonly name: string;
  /** Its value (signed when the enum is signed). */
  readonly value: bigint;
}

/** `BTF_KIND_ENUM64`: an enum with 64-bit values (Linux 6.0+). */
export interface BtfEnum64 {
  /** Always `"enum64"`. */
  readonly kind: "enum64";
  /** The type id. */
  readonly id: number;
  /** The enum tag, `""` when anonymous. */
  readonly name: string;
  /** Size in bytes. */
  readonly size: number;
  /** Whether the values are signed (the `kind_flag`). */
  readonly signed: boolean;
  /** The enumerators. */
  readonly values: readonly BtfEnum64Value[];
}

/** Any BTF type; `kind` tells which. */
export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfPtr
  | BtfArray
  | BtfStruct
  | BtfUnion
  | BtfEnum
  | BtfFwd
  | BtfTypedef
  | BtfVolatile
  | BtfConst
  | BtfRestrict
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag
  | BtfTypeTag
  | BtfEnum64;

/** A variable of a data section, as {@link Btf.datasecVariables} lists it. */
export interface BtfDatasecVariable {
  /** The variable (or extern function) name. */
  readonly name: string;
  /** The {@link BtfVar} (or {@link BtfFunc} in `.ksyms`). */
  readonly type: BtfVar | BtfFunc;
  /** Offset in the section in bytes. */
  readonly offset: number;
  /** Size in bytes. */
  readonly size: number;
}

/**
 * BTF or .BTF.ext bytes are malformed: the message names the byte offset
 * and what was expected there.
 *
 * @example Catching a bad magic number
 * ```ts
 * import assert from "node:assert/strict";
 * import { BtfSyntaxError, parseBtf } from "@dp/core/internal";
 *
 * assert.throws(() => parseBtf(new Uint8Array(24)), (err) => {
 *   assert.ok(err instanceof BtfSyntaxError);
 *   assert.equal(err.offset, 0);
 *   assert.match(err.message, /^Invalid BTF at offset 0: bad magic 0x0000, expected 0xeb9f/);
 *   return true;
 * });
 * ```
 */
export class BtfSyntaxError extends SyntaxError {
  /** Always `"BtfSyntaxError"`, the class name. */
  override readonly name: string = "BtfSyntaxError";
  /** What was being parsed: `"BTF"` or `".BTF.ext"`. */
  readonly section: string;
  /** The byte offset of the problem in the parsed bytes. */
  readonly offset: number;

  /**
   * Creates an error whose message is `Invalid <section> at offset <offset>: <detail>`.
   *
   * @param section What was being parsed, such as `"BTF"`.
   * @param offset The byte offset of the problem.
   * @param detail What is wrong and what was expected.
   */
  constructor(section: string, offset: number, detail: string) {
    super(`Invalid ${section} at offset ${offset}: ${detail}`);
    this.section = section;
    this.offset = offset;
  }
}

/** Options for {@link parseBtf}. */
export interface ParseBtfOptions {
  /**
   * The base BTF of split BTF (kernel module BTF builds on vmlinux's): type
   * ids and string offsets continue where the base's end.
   *
   * @default undefined
   */
  readonly base?: Btf;
}

/** Options for {@link buildBtf}. */
export interface BuildBtfOptions {
  /**
   * The base BTF the new types extend (split BTF); their ids start at its `typeCount`.
   *
   * @default undefined
   */
  readonly base?: Btf;
}

const MAGIC = 0xeb9f;
const HEADER_LEN = 24;
const MAX_RESOLVE_DEPTH = 32;
const POINTER_SIZE = 8;
const MAX_U32 = 0xffff_ffff;

const KIND_NAMES: readonly (BtfKind | undefined)[] = [
  undefined,
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
  "func",
  "funcProto",
  "var",
  "datasec",
  "float",
  "declTag",
  "typeTag",
  "enum64",
];
const KIND_NUMBERS: Readonly<Record<Exclude<BtfKind, "void">, number>> = {
  int: 1,
  ptr: 2,
  array: 3,
  struct: 4,
  union: 5,
  enum: 6,
  fwd: 7,
  typedef: 8,
  volatile: 9,
  const: 10,
  restrict: 11,
  func: 12,
  funcProto: 13,
  var: 14,
  datasec: 15,
  float: 16,
  declTag: 17,
  typeTag: 18,
  enum64: 19,
};
const LINKAGES: readonly BtfLinkage[] = ["static", "global", "extern"];
const VOID: BtfVoid = Object.freeze({ kind: "void", id: 0, name: "" });

let stringsOf: (btf: Btf) => BtfStringTable;
let lazyBtf: (types: LazyTypes, strings: BtfStringTable, base: Btf | undefined) => Btf;
let idsByEssentialName: (btf: Btf, essential: string) => readonly number[];

/**
 * A type name without its CO-RE flavour suffix, as libbpf's
 * `bpf_core_essential_name_len` cuts it: before the last `___` that has no
 * underscore on either side (`task_struct___old` → `task_struct`).
 *
 * @param name A type name.
 * @returns The essential name.
 */
export function essentialName(name: string): string {
  for (let i = name.length - 5; i >= 0; i--) {
    if (name[i] !== "_" && name[i + 1] === "_" && name[i + 2] === "_" && name[i + 3] === "_" && name[i + 4] !== "_") {
      return name.slice(0, i + 1);
    }
  }
  return name;
}

/**
 * The ids of the types whose essential name (the name without a
 * `___flavour` suffix, as CO-RE compares names) is `essential`, the base
 * BTF's first. On the kernel's lazily decoded BTF this decodes only the
 * types with such a name.
 *
 * @param btf The BTF to search.
 * @param essential A name without a flavour suffix.
 * @returns Type ids in increasing order.
 */
export function typeIdsByEssentialName(btf: Btf, essential: string): readonly number[] {
  return idsByEssentialName(btf, essential);
}

/**
 * Parsed BTF: the types of a BPF object or of the kernel, by id and by name.
 *
 * Types are plain readonly objects ({@link BtfType}); ids are dense from 1
 * (or from the base's `typeCount` in split BTF) and id 0 is `void`.
 * Lookups by name build their index on first use.
 *
 * @example Looking types up
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildBtf } from "@dp/core/internal";
 *
 * const btf = buildBtf([
 *   { kind: "int", id: 1, name: "unsigned int", size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 },
 *   { kind: "typedef", id: 2, name: "__u32", typeId: 1 },
 *   { kind: "array", id: 3, name: "", elementTypeId: 2, indexTypeId: 1, length: 4 },
 * ]);
 * assert.equal(btf.typesByName("__u32")[0]?.id, 2);
 * assert.equal(btf.resolve(2).name, "unsigned int");
 * assert.equal(btf.sizeOf(3), 16);
 * ```
 */
export class Btf {
  /** The base BTF when this is split BTF, else `undefined`. */
  readonly base: Btf | undefined;
  /** The first type id this BTF defines: 1, or the base's `typeCount`. */
  readonly firstTypeId: number;
  #list: readonly BtfType[] | undefined;
  #lazy: LazyTypes | undefined;
  #strings: BtfStringTable;
  #byName: Map<string, BtfType[]> | undefined;
  #byEssentialName: Map<string, number[]> | undefined;

  static {
    stringsOf = (btf: Btf): BtfStringTable => btf.#strings;
    lazyBtf = (types: LazyTypes, strings: BtfStringTable, base: Btf | undefined): Btf => {
      const btf = new Btf([], strings, base);
      btf.#list = undefined;
      btf.#lazy = types;
      return btf;
    };
    idsByEssentialName = (btf: Btf, essential: string): readonly number[] => btf.#idsByEssentialName(essential);
  }

  /**
   * Wraps parsed or built types.
   *
   * @internal BTF is made by {@link parseBtf} and {@link buildBtf}.
   * @param types The types, ids dense from `base.typeCount` (or 1).
   * @param strings The string table names and .BTF.ext offsets refer to.
   * @param base The base BTF of split BTF.
   */
  constructor(types: readonly BtfType[], strings: BtfStringTable, base: Btf | undefined) {
    this.base = base;
    this.firstTypeId = base === undefined ? 1 : base.typeCount;
    this.#list = types;
    this.#strings = strings;
  }

  /**
   * The types this BTF defines, in id order (without `void` and the base's
   * types). The kernel's BTF ({@link kernelBtf}) decodes types on demand:
   * reading this decodes every one of them, so prefer
   * {@link Btf.typeById} and {@link Btf.typesByName} there.
   */
  get types(): readonly BtfType[] {
    if (this.#list === undefined) this.#list = (this.#lazy as LazyTypes).all();
    return this.#list;
  }

  /** One past the largest type id (counting `void` and the base's types), like libbpf's `btf__type_cnt`. */
  get typeCount(): number {
    return this.firstTypeId + (this.#lazy === undefined ? this.types.length : this.#lazy.count);
  }

  /**
   * Returns the type with an id (0 is `void`; the base's ids go to the base).
   *
   * @param id The type id.
   * @returns The type, or `undefined` when there is no such id.
   */
  typeById(id: number): BtfType | undefined {
    if (id >= this.firstTypeId) {
      const lazy = this.#lazy;
      if (lazy === undefined) return (this.#list as readonly BtfType[])[id - this.firstTypeId];
      return id - this.firstTypeId < lazy.count ? lazy.get(id - this.firstTypeId) : undefined;
    }
    if (id === 0) return VOID;
    return this.base?.typeById(id);
  }

  /**
   * Returns the types with a name, in id order (the base's first), optionally of one kind.
   *
   * @param name The name, such as `"sk_buff"`.
   * @param kind Only types of this kind.
   * @returns The matching types; empty when there are none.
   */
  typesByName(name: string, kind?: BtfKind): readonly BtfType[] {
    const lazy = this.#lazy;
    if (lazy !== undefined) {
      const own = lazy
        .withEssentialName(essentialName(name))
        .filter((i) => lazy.nameOf(i) === name)
        .map((i) => lazy.get(i));
      const all = this.base === undefined ? own : [...this.base.typesByName(name), ...own];
      return kind === undefined ? all : all.filter((t) => t.kind === kind);
    }
    if (this.#byName === undefined) {
      const index = new Map<string, BtfType[]>();
      for (const t of this.types) {
        if (t.name === "") continue;
        const list = index.get(t.name);
        if (list === undefined) index.set(t.name, [t]);
        else list.push(t);
      }
      this.#byName = index;
    }
    const own = this.#byName.get(name) ?? [];
    const all = this.base === undefined ? own : [...this.base.typesByName(name), ...own];
    return kind === undefined ? all : all.filter((t) => t.kind === kind);
  }

  /**
   * Follows typedefs, `const`, `volatile`, `restrict` and type tags to the
   * underlying type.
   *
   * @param id The type id.
   * @returns The first type that is none of those (possibly `void`).
   * @throws {RangeError} When `id` does not exist or the chain is longer than 32 (a cycle).
   */
  resolve(id: number): BtfType {
    let t = this.#get(id);
    for (let depth = 0; depth < MAX_RESOLVE_DEPTH; depth++) {
      switch (t.kind) {
        case "typedef":
        case "const":
        case "volatile":
        case "restrict":
        case "typeTag":
          t = this.#get(t.typeId);
          break;
        default:
          return t;
      }
    }
    throw new RangeError(`Cannot resolve BTF type ${id}: more than ${MAX_RESOLVE_DEPTH} typedefs and qualifiers`);
  }

  /**
   * The size in bytes of a value of a type, like libbpf's `btf__resolve_size`:
   * pointers are 8 bytes, arrays multiply, typedefs, qualifiers and
   * variables follow their target.
   *
   * @param id The type id.
   * @returns The size in bytes.
   * @throws {TypeError} When the type has no size (`void`, a function, a forward declaration).
   * @throws {RangeError} When `id` does not exist, the chain is longer than 32, or the size exceeds 2^32 - 1.
   */
  sizeOf(id: number): number {
    let t = this.#get(id);
    let count = 1;
    for (let depth = 0; depth < MAX_RESOLVE_DEPTH; depth++) {
      let size: number;
      switch (t.kind) {
        case "int":
        case "struct":
        case "union":
        case "enum":
        case "enum64":
        case "datasec":
        case "float":
          size = t.size;
          break;
        case "ptr":
          size = POINTER_SIZE;
          break;
        case "typedef":
        case "const":
        case "volatile":
        case "restrict":
        case "var":
        case "declTag":
        case "typeTag":
          t = this.#get(t.typeId);
          continue;
        case "array":
          count *= t.length;
          if (count > MAX_U32) throw new RangeError(`Cannot size BTF type ${id}: the array is too large`);
          t = this.#get(t.elementTypeId);
          continue;
        default:
          throw new TypeError(
            `Cannot size BTF type ${id}: ${t.kind} ${JSON.stringify(t.name)} (id ${t.id}) has no size`,
          );
      }
      const total = size * count;
      if (total > MAX_U32) throw new RangeError(`Cannot size BTF type ${id}: ${total} bytes is too large`);
      return total;
    }
    throw new RangeError(`Cannot size BTF type ${id}: more than ${MAX_RESOLVE_DEPTH} levels of indirection`);
  }

  /**
   * Lists the variables of a data section (`BTF_KIND_DATASEC`) with their
   * names, offsets and sizes.
   *
   * @param section The section name, such as `".maps"` or `".rodata"`.
   * @returns The variables in offset order, or `undefined` when there is no such section.
   * @throws {RangeError} When a section entry does not refer to a variable or function.
   */
  datasecVariables(section: string): readonly BtfDatasecVariable[] | undefined {
    const sec = this.typesByName(section, "datasec")[0];
    if (sec === undefined || sec.kind !== "datasec") return undefined;
    const out = sec.vars.map((v): BtfDatasecVariable => {
      const type = this.#get(v.typeId);
      if (type.kind !== "var" && type.kind !== "func") {
        throw new RangeError(
          `Invalid BTF datasec ${JSON.stringify(section)}: entry type ${v.typeId} is a ${type.kind}`,
        );
      }
      return { name: type.name, type, offset: v.offset, size: v.size };
    });
    return out.sort((a, b) => a.offset - b.offset);
  }

  /**
   * The string at an offset of the string table (names, and the file names
   * and source lines .BTF.ext refers to).
   *
   * @param offset A byte offset into the string table (split BTF: continuing the base's).
   * @returns The string, or `undefined` when the offset is outside the table.
   */
  stringAt(offset: number): string | undefined {
    const s = this.#strings;
    if (offset >= s.start && offset < s.end) return s.at(offset);
    if (offset < s.start) return this.base?.stringAt(offset);
    return undefined;
  }

  /** Type ids whose essential name (the name without a `___flavour` suffix) is `essential`, the base's first. */
  #idsByEssentialName(essential: string): readonly number[] {
    const inBase = this.base === undefined ? [] : this.base.#idsByEssentialName(essential);
    let own: readonly number[];
    if (this.#lazy !== undefined) {
      const lazy = this.#lazy;
      own = lazy
        .withEssentialName(essential)
        .filter((i) => essentialName(lazy.nameOf(i)) === essential)
        .map((i) => this.firstTypeId + i);
    } else {
      if (this.#byEssentialName === undefined) {
        const index = new Map<string, number[]>();
        for (const t of this.types) {
          if (t.name === "") continue;
          const key = essentialName(t.name);
          const list = index.get(key);
          if (list === undefined) index.set(key, [t.id]);
          else list.push(t.id);
        }
        this.#byEssentialName = index;
      }
      own = this.#byEssentialName.get(essential) ?? [];
    }
    return inBase.length === 0 ? own : [...inBase, ...own];
  }

  #get(id: number): BtfType {
    const t = this.typeById(id);
    if (t === undefined) throw new RangeError(`Invalid BTF type id ${id}: the BTF has ${this.typeCount - 1} types`);
    return t;
  }
}

function fail(offset: number, detail: string): never {
  throw new BtfSyntaxError("BTF", offset, detail);
}

function hex(n: number, width: number): string {
  return `0x${n.toString(16).padStart(width, "0")}`;
}

/**
 * Parses BTF (the `.BTF` section of an object or `/sys/kernel/btf/*`).
 *
 * Checks the header (magic `0xeb9f`, version 1, section bounds), decodes
 * every type record and checks that names are in the string table and type
 * references point at existing ids. Only little-endian BTF is supported.
 *
 * @param bytes The BTF bytes.
 * @param options The base BTF for split BTF.
 * @returns The parsed BTF.
 * @throws {BtfSyntaxError} When the bytes are truncated or malformed, or big-endian; `offset` says where.
 * @example Parsing a one-type BTF blob
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseBtf } from "@dp/core/internal";
 *
 * const bytes = new Uint8Array([
 *   0x9f, 0xeb, 1, 0, 24, 0, 0, 0, // magic, version, flags, hdr_len
 *   0, 0, 0, 0, 16, 0, 0, 0, 16, 0, 0, 0, 5, 0, 0, 0, // type_off/len, str_off/len
 *   1, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 32, 0, 0, 1, // [1] INT "int" size 4, 32 bits, signed
 *   0, 0x69, 0x6e, 0x74, 0, // "\0int\0"
 * ]);
 * const btf = parseBtf(bytes);
 * assert.deepEqual(btf.typeById(1), {
 *   kind: "int", id: 1, name: "int", size: 4, signed: true, char: false, bool: false, bitOffset: 0, bits: 32,
 * });
 * ```
 */
export function parseBtf(bytes: Uint8Array, options: ParseBtfOptions = {}): Btf {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("Invalid BTF: bytes must be a Uint8Array");
  const base = options.base;
  const { dv, typeStart, typeLen, strings } = btfSections(bytes, base);
  const types = decodeTypes(dv, typeStart, typeLen, strings, base);
  const btf = new Btf(types.list, strings, base);
  checkReferences(btf, types.offsets);
  return btf;
}

/**
 * Parses BTF that is decoded on demand, the way cilium/ebpf reads the
 * kernel's: the header and string table are checked and the offset of
 * every type record is indexed now; a type is decoded the first time it is
 * asked for, and names are looked up through an index of name offsets
 * built on the first lookup. References between types are not checked up
 * front (the kernel checked them when it made this BTF).
 *
 * @param bytes The BTF, such as `/sys/kernel/btf/vmlinux`.
 * @param options The base BTF for split BTF (kernel module BTF).
 * @returns The BTF.
 * @throws {BtfSyntaxError} When the header, the string table or a type record's size is malformed.
 */
export function parseLazyBtf(bytes: Uint8Array, options: ParseBtfOptions = {}): Btf {
  const base = options.base;
  const { dv, typeStart, typeLen, strings } = btfSections(bytes, base);
  return lazyBtf(new LazyTypes(dv, typeStart, typeLen, strings, base), strings, base);
}

function btfSections(
  bytes: Uint8Array,
  base: Btf | undefined,
): { dv: DataView; typeStart: number; typeLen: number; strings: BtfStringTable } {
  if (bytes.length < HEADER_LEN)
    fail(bytes.length, `truncated header: ${bytes.length} bytes, expected at least ${HEADER_LEN}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint16(0, true);
  if (magic === 0x9feb) fail(0, "big-endian BTF is not supported");
  if (magic !== MAGIC) fail(0, `bad magic ${hex(magic, 4)}, expected 0xeb9f`);
  const version = bytes[2] as number;
  if (version !== 1) fail(2, `unsupported version ${version}, expected 1`);
  const hdrLen = dv.getUint32(4, true);
  if (hdrLen < HEADER_LEN || hdrLen > bytes.length) {
    fail(4, `header length ${hdrLen} is outside [${HEADER_LEN}, ${bytes.length}]`);
  }
  const typeOff = dv.getUint32(8, true);
  const typeLen = dv.getUint32(12, true);
  const strOff = dv.getUint32(16, true);
  const strLen = dv.getUint32(20, true);
  const avail = bytes.length - hdrLen;
  if (typeOff % 4 !== 0) fail(8, `type section offset ${typeOff} is not 4-byte aligned`);
  if (typeOff > avail || typeLen > avail - typeOff) {
    fail(8, `type section [${typeOff}, +${typeLen}) is outside the ${avail} bytes after the header`);
  }
  if (strOff > avail || strLen > avail - strOff) {
    fail(16, `string section [${strOff}, +${strLen}) is outside the ${avail} bytes after the header`);
  }
  if (typeLen > 0 && strLen > 0 && typeOff < strOff + strLen && strOff < typeOff + typeLen) {
    fail(16, "the type and string sections overlap");
  }
  const strStart = hdrLen + strOff;
  const strBytes = bytes.subarray(strStart, strStart + strLen);
  if (base === undefined) {
    if (strLen === 0 || strBytes[0] !== 0) fail(strStart, "the string section must start with a NUL byte");
  }
  if (strLen > 0 && strBytes[strLen - 1] !== 0)
    fail(strStart + strLen - 1, "the string section must end with a NUL byte");
  const strings = new BtfStringTable(strBytes, base === undefined ? 0 : stringsOf(base).end);
  return { dv, typeStart: hdrLen + typeOff, typeLen, strings };
}

/** A function that reads a name offset of the record at `at`. */
type NameReader = (off: number, at: number) => string;

function nameReader(strings: BtfStringTable, base: Btf | undefined): NameReader {
  const strStart = strings.start;
  const strEnd = strings.end;
  return (off: number, at: number): string => {
    if (off >= strStart) {
      if (off >= strEnd) fail(at, `name offset ${off} is outside the string table (${strEnd} bytes)`);
      return strings.at(off);
    }
    if (base === undefined) return "";
    const s = base.stringAt(off);
    if (s === undefined) fail(at, `name offset ${off} is outside the string table`);
    return s;
  };
}

/** The bytes a type record has after its 12-byte header, or -1 for an unknown kind. */
function recordExtra(kindNo: number, vlen: number): number {
  switch (KIND_NAMES[kindNo]) {
    case undefined:
      return -1;
    case "int":
    case "var":
    case "declTag":
      return 4;
    case "array":
      return 12;
    case "struct":
    case "union":
    case "datasec":
    case "enum64":
      return vlen * 12;
    case "enum":
    case "funcProto":
      return vlen * 8;
    default:
      return 0;
  }
}

/** Checks the record of type `id` at `at` fits before `end`; returns the offset after it. */
function recordEnd(dv: DataView, at: number, end: number, id: number): number {
  if (end - at < 12) fail(at, `truncated type ${id}: ${end - at} bytes left, expected a 12-byte header`);
  const info = dv.getUint32(at + 4, true);
  const kindNo = (info >>> 24) & 0x1f;
  const extra = recordExtra(kindNo, info & 0xffff);
  if (extra < 0) fail(at + 4, `type ${id} has unknown kind ${kindNo}`);
  if (end - at - 12 < extra)
    fail(
      at,
      `truncated type ${id} (${KIND_NAMES[kindNo] as string}): needs ${extra} more bytes, ${end - at - 12} left`,
    );
  return at + 12 + extra;
}

function decodeTypes(
  dv: DataView,
  start: number,
  length: number,
  strings: BtfStringTable,
  base: Btf | undefined,
): { list: BtfType[]; offsets: number[] } {
  const list: BtfType[] = [];
  const offsets: number[] = [];
  const end = start + length;
  const name = nameReader(strings, base);
  let id = base === undefined ? 1 : base.typeCount;
  let off = start;
  // Bounded: every iteration consumes at least 12 bytes.
  while (off < end) {
    const next = recordEnd(dv, off, end, id);
    list.push(decodeType(dv, off, id, name));
    offsets.push(off);
    off = next;
    id++;
  }
  return { list, offsets };
}

/** Decodes the type record at `at` (its size already checked by {@link recordEnd}). */
function decodeType(dv: DataView, at: number, id: number, name: NameReader): BtfType {
  const nameOff = dv.getUint32(at, true);
  const info = dv.getUint32(at + 4, true);
  const sizeOrType = dv.getUint32(at + 8, true);
  const off = at + 12;
  const kindNo = (info >>> 24) & 0x1f;
  const vlen = info & 0xffff;
  const kflag = info >>> 31 === 1;
  const kind = KIND_NAMES[kindNo];
  if (kind === undefined) fail(at + 4, `type ${id} has unknown kind ${kindNo}`);
  const n = name(nameOff, at);
  let t: BtfType;
  switch (kind) {
    case "int": {
      const v = dv.getUint32(off, true);
      const enc = (v >>> 24) & 0x0f;
      t = {
        kind,
        id,
        name: n,
        size: sizeOrType,
        signed: (enc & 1) !== 0,
        char: (enc & 2) !== 0,
        bool: (enc & 4) !== 0,
        bitOffset: (v >>> 16) & 0xff,
        bits: v & 0xff,
      };
      break;
    }
    case "ptr":
    case "typedef":
    case "volatile":
    case "const":
    case "restrict":
      t = { kind, id, name: n, typeId: sizeOrType };
      break;
    case "typeTag":
      t = { kind, id, name: n, typeId: sizeOrType, attribute: kflag };
      break;
    case "array":
      t = {
        kind,
        id,
        name: n,
        elementTypeId: dv.getUint32(off, true),
        indexTypeId: dv.getUint32(off + 4, true),
        length: dv.getUint32(off + 8, true),
      };
      break;
    case "struct":
    case "union": {
      const members: BtfMember[] = new Array<BtfMember>(vlen);
      for (let i = 0, p = off; i < vlen; i++, p += 12) {
        const raw = dv.getUint32(p + 8, true);
        members[i] = {
          name: name(dv.getUint32(p, true), p),
          typeId: dv.getUint32(p + 4, true),
          bitOffset: kflag ? raw & 0xffffff : raw,
          bitSize: kflag ? raw >>> 24 : 0,
        };
      }
      t = { kind, id, name: n, size: sizeOrType, kindFlag: kflag, members };
      break;
    }
    case "enum": {
      const values: BtfEnumValue[] = new Array<BtfEnumValue>(vlen);
      for (let i = 0, p = off; i < vlen; i++, p += 8) {
        values[i] = {
          name: name(dv.getUint32(p, true), p),
          value: kflag ? dv.getInt32(p + 4, true) : dv.getUint32(p + 4, true),
        };
      }
      t = { kind, id, name: n, size: sizeOrType, signed: kflag, values };
      break;
    }
    case "enum64": {
      const values: BtfEnum64Value[] = new Array<BtfEnum64Value>(vlen);
      for (let i = 0, p = off; i < vlen; i++, p += 12) {
        const u = (BigInt(dv.getUint32(p + 8, true)) << 32n) | BigInt(dv.getUint32(p + 4, true));
        values[i] = { name: name(dv.getUint32(p, true), p), value: kflag ? BigInt.asIntN(64, u) : u };
      }
      t = { kind, id, name: n, size: sizeOrType, signed: kflag, values };
      break;
    }
    case "fwd":
      t = { kind, id, name: n, union: kflag };
      break;
    case "func": {
      const linkage = LINKAGES[vlen];
      if (linkage === undefined) fail(at + 4, `func ${id} has unknown linkage ${vlen}`);
      t = { kind, id, name: n, typeId: sizeOrType, linkage };
      break;
    }
    case "funcProto": {
      const params: BtfParam[] = new Array<BtfParam>(vlen);
      for (let i = 0, p = off; i < vlen; i++, p += 8) {
        params[i] = { name: name(dv.getUint32(p, true), p), typeId: dv.getUint32(p + 4, true) };
      }
      t = { kind, id, name: n, returnTypeId: sizeOrType, params };
      break;
    }
    case "var": {
      const l = dv.getUint32(off, true);
      const linkage = LINKAGES[l];
      if (linkage === undefined) fail(off, `var ${id} has unknown linkage ${l}`);
      t = { kind, id, name: n, typeId: sizeOrType, linkage };
      break;
    }
    case "datasec": {
      const vars: BtfVarSecinfo[] = new Array<BtfVarSecinfo>(vlen);
      for (let i = 0, p = off; i < vlen; i++, p += 12) {
        vars[i] = { typeId: dv.getUint32(p, true), offset: dv.getUint32(p + 4, true), size: dv.getUint32(p + 8, true) };
      }
      t = { kind, id, name: n, size: sizeOrType, vars };
      break;
    }
    case "float":
      t = { kind, id, name: n, size: sizeOrType };
      break;
    case "declTag":
      t = { kind, id, name: n, typeId: sizeOrType, componentIndex: dv.getInt32(off, true), attribute: kflag };
      break;
    default:
      fail(at + 4, `type ${id} has unknown kind ${kindNo}`);
  }
  return t;
}

/**
 * The types of lazily decoded BTF ({@link parseLazyBtf}): record offsets
 * indexed up front, types decoded on first use, an index from name offset
 * to types built on the first name lookup.
 */
class LazyTypes {
  /** How many types the BTF defines. */
  readonly count: number;
  readonly #dv: DataView;
  readonly #offsets: Uint32Array;
  readonly #nameOffsets: Uint32Array;
  readonly #firstId: number;
  readonly #name: NameReader;
  readonly #decoded: (BtfType | undefined)[];
  readonly #ownStrings: BtfStringTable;
  readonly #baseStrings: BtfStringTable | undefined;
  /** Open-addressing hash of essential names: slot → 1 + index of the first type in its chain. */
  #heads: Int32Array | undefined;
  /** 1 + index of the next type whose essential name has the same hash, by index; indexes increase along a chain. */
  #next: Int32Array | undefined;
  /** The hash of each type's essential name (0 for anonymous types). */
  #hashes: Int32Array | undefined;

  constructor(dv: DataView, start: number, length: number, strings: BtfStringTable, base: Btf | undefined) {
    const end = start + length;
    const firstId = base === undefined ? 1 : base.typeCount;
    // Every record is at least 12 bytes.
    const offsets = new Uint32Array(Math.floor(length / 12));
    const nameOffsets = new Uint32Array(offsets.length);
    let count = 0;
    // Bounded: every iteration consumes at least 12 bytes. The sizes come
    // from tables rather than recordEnd() to keep this loop cheap (it is
    // run over ~100k kernel types at start-up); recordEnd() reports errors.
    for (let off = start; off < end; count++) {
      if (end - off < 12) recordEnd(dv, off, end, firstId + count);
      const info = dv.getUint32(off + 4, true);
      const kindNo = (info >>> 24) & 0x1f;
      const fixed = FIXED_EXTRA[kindNo] as number;
      const next = off + 12 + fixed + (VLEN_EXTRA[kindNo] as number) * (info & 0xffff);
      if (fixed < 0 || next > end) recordEnd(dv, off, end, firstId + count);
      offsets[count] = off;
      nameOffsets[count] = dv.getUint32(off, true);
      off = next;
    }
    this.count = count;
    this.#dv = dv;
    this.#offsets = offsets.subarray(0, count);
    this.#nameOffsets = nameOffsets.subarray(0, count);
    this.#firstId = firstId;
    this.#name = nameReader(strings, base);
    this.#decoded = new Array<BtfType | undefined>(count);
    this.#ownStrings = strings;
    this.#baseStrings = base === undefined ? undefined : stringsOf(base);
  }

  /** The name of the type at `index`, without decoding the type. */
  nameOf(index: number): string {
    return this.#name(this.#nameOffsets[index] as number, this.#offsets[index] as number);
  }

  /** The type at `index` (its id minus the first id), decoded once. */
  get(index: number): BtfType {
    let t = this.#decoded[index];
    if (t === undefined) {
      t = decodeType(this.#dv, this.#offsets[index] as number, this.#firstId + index, this.#name);
      this.#decoded[index] = t;
    }
    return t;
  }

  /** Every type, decoded. */
  all(): BtfType[] {
    const out = new Array<BtfType>(this.count);
    for (let i = 0; i < this.count; i++) out[i] = this.get(i);
    return out;
  }

  /**
   * The indexes of the types whose essential name may be `essential`
   * (same hash), in increasing order; the caller compares the names.
   */
  withEssentialName(essential: string): number[] {
    if (this.#heads === undefined) this.#indexNames();
    const heads = this.#heads as Int32Array;
    const next = this.#next as Int32Array;
    const hashes = this.#hashes as Int32Array;
    const bytes = utf8Encoder.encode(essential);
    const hash = fnv1a(bytes, 0, bytes.length);
    const mask = heads.length - 1;
    const out: number[] = [];
    // Bounded: the table is at most half full.
    for (let h = hashSlot(hash, mask); heads[h] !== 0; h = (h + 1) & mask) {
      const first = (heads[h] as number) - 1;
      if (hashes[first] !== hash) continue;
      for (let i = first + 1; i !== 0; i = next[i - 1] as number) out.push(i - 1);
      break;
    }
    return out;
  }

  /**
   * Hashes every type's essential name straight from the string table's
   * bytes (no strings are made), into chains by hash: the index that
   * cilium/ebpf builds of type names, for a few milliseconds.
   */
  #indexNames(): void {
    const names = this.#nameOffsets;
    const count = names.length;
    let size = 1024;
    while (size < count * 2) size *= 2;
    const heads = new Int32Array(size);
    const next = new Int32Array(count);
    const hashes = new Int32Array(count);
    const mask = size - 1;
    const own = this.#ownStrings;
    const base = this.#baseStrings;
    // Backwards, so that prepending leaves each chain in increasing order.
    for (let i = count - 1; i >= 0; i--) {
      const off = names[i] as number;
      if (off === 0) continue;
      const table = off >= own.start ? own : base;
      if (table === undefined || off >= table.end) continue;
      const b = table.bytes;
      // One pass: FNV-1a over the name, remembering the hash of the prefix
      // before the last flavour separator "x___y" (libbpf's
      // bpf_core_essential_name_len), which is the essential name's hash.
      let h = 0x811c9dc5 | 0;
      let essential = 0;
      let cut = false;
      // Bounded: the table ends with a NUL (checked when parsed).
      for (let k = off - table.start, c = b[k] as number; c !== 0; c = b[++k] as number) {
        h = Math.imul(h ^ c, 0x01000193);
        if (c !== 0x5f && b[k + 1] === 0x5f && b[k + 2] === 0x5f && b[k + 3] === 0x5f) {
          const after = b[k + 4] as number;
          if (after !== 0x5f && after !== 0) {
            essential = h;
            cut = true;
          }
        }
      }
      let hash = cut ? essential : h;
      if (hash === 0) hash = 1;
      hashes[i] = hash;
      let slot = hashSlot(hash, mask);
      // Bounded: the table is at most half full.
      while (heads[slot] !== 0 && hashes[(heads[slot] as number) - 1] !== hash) slot = (slot + 1) & mask;
      next[i] = heads[slot] as number;
      heads[slot] = i + 1;
    }
    this.#heads = heads;
    this.#next = next;
    this.#hashes = hashes;
  }
}

const utf8Encoder = new TextEncoder();

/** 32-bit FNV-1a of `bytes[from, to)`, never 0 (0 marks anonymous types). */
function fnv1a(bytes: Uint8Array, from: number, to: number): number {
  let h = 0x811c9dc5 | 0;
  for (let i = from; i < to; i++) h = Math.imul(h ^ (bytes[i] as number), 0x01000193);
  return h === 0 ? 1 : h;
}

/** Bytes after the 12-byte header of a record by kind number: fixed (-1: unknown kind), and per vlen entry. */
const FIXED_EXTRA = new Int32Array(32).fill(-1);
const VLEN_EXTRA = new Int32Array(32);
for (let kindNo = 1; kindNo < KIND_NAMES.length; kindNo++) {
  FIXED_EXTRA[kindNo] = recordExtra(kindNo, 0);
  VLEN_EXTRA[kindNo] = recordExtra(kindNo, 1) - recordExtra(kindNo, 0);
}

function hashSlot(off: number, mask: number): number {
  return (Math.imul(off, 0x9e3779b1) >>> 7) & mask;
}

function forEachReference(t: BtfType, visit: (id: number) => void): void {
  switch (t.kind) {
    case "ptr":
    case "typedef":
    case "volatile":
    case "const":
    case "restrict":
    case "typeTag":
    case "func":
    case "var":
    case "declTag":
      visit(t.typeId);
      break;
    case "array":
      visit(t.elementTypeId);
      visit(t.indexTypeId);
      break;
    case "struct":
    case "union":
      for (const m of t.members) visit(m.typeId);
      break;
    case "funcProto":
      visit(t.returnTypeId);
      for (const p of t.params) visit(p.typeId);
      break;
    case "datasec":
      for (const v of t.vars) visit(v.typeId);
      break;
    default:
      break;
  }
}

function checkReferences(btf: Btf, offsets: readonly number[] | undefined): void {
  const count = btf.typeCount;
  const types = btf.types;
  for (let i = 0; i < types.length; i++) {
    const t = types[i] as BtfType;
    forEachReference(t, (ref) => {
      if (ref >= count) {
        const detail = `type ${t.id} (${t.kind}) refers to type ${ref}, but the largest id is ${count - 1}`;
        if (offsets === undefined) throw new RangeError(`Invalid BTF: ${detail}`);
        fail(offsets[i] as number, detail);
      }
    });
  }
}

/**
 * Makes BTF from type objects, for tests and probes (and to write BTF with
 * {@link encodeBtf}).
 *
 * @param types The types, with ids dense from 1 (or from `options.base.typeCount`).
 * @param options The base BTF for split BTF.
 * @returns The BTF.
 * @throws {TypeError} When an entry is not a type object with a known kind.
 * @throws {RangeError} When ids are not dense or a type refers to a missing id.
 * @example A struct with two members
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildBtf } from "@dp/core/internal";
 *
 * const btf = buildBtf([
 *   { kind: "int", id: 1, name: "long long", size: 8, signed: true, char: false, bool: false, bitOffset: 0, bits: 64 },
 *   { kind: "struct", id: 2, name: "pair", size: 16, kindFlag: false, members: [
 *     { name: "a", typeId: 1, bitOffset: 0, bitSize: 0 },
 *     { name: "b", typeId: 1, bitOffset: 64, bitSize: 0 },
 *   ] },
 * ]);
 * assert.equal(btf.sizeOf(2), 16);
 * ```
 */
export function buildBtf(types: readonly BtfType[], options: BuildBtfOptions = {}): Btf {
  const base = options.base;
  let id = base === undefined ? 1 : base.typeCount;
  for (const t of types) {
    if (typeof t !== "object" || t === null || typeof t.kind !== "string" || !Object.hasOwn(KIND_NUMBERS, t.kind)) {
      throw new TypeError(`Invalid BTF type at id ${id}: expected an object with a known kind other than "void"`);
    }
    if (t.id !== id) throw new RangeError(`Invalid BTF type ${JSON.stringify(t.name)}: id ${t.id}, expected ${id}`);
    id++;
  }
  const strings =
    base === undefined
      ? new BtfStringTable(new Uint8Array(1), 0)
      : new BtfStringTable(new Uint8Array(0), stringsOf(base).end);
  const btf = new Btf([...types], strings, base);
  checkReferences(btf, undefined);
  return btf;
}

/**
 * Replaces some types of a BTF, keeping every id and the string table (so
 * .BTF.ext offsets stay valid); types may be appended after the last id.
 *
 * @internal For `sanitizeBtf` and `fixupDatasecs`.
 * @param btf The BTF to change.
 * @param types The new own types, ids dense from `btf.firstTypeId`.
 * @returns A new BTF.
 */
export function replaceBtfTypes(btf: Btf, types: readonly BtfType[]): Btf {
  const out = new Btf(types, stringsOf(btf), btf.base);
  checkReferences(out, undefined);
  return out;
}

function recordSize(t: BtfType): number {
  switch (t.kind) {
    case "int":
    case "var":
    case "declTag":
      return 16;
    case "array":
      return 24;
    case "struct":
    case "union":
      return 12 + 12 * t.members.length;
    case "datasec":
      return 12 + 12 * t.vars.length;
    case "enum64":
      return 12 + 12 * t.values.length;
    case "enum":
      return 12 + 8 * t.values.length;
    case "funcProto":
      return 12 + 8 * t.params.length;
    default:
      return 12;
  }
}

function checkVlen(t: BtfType, n: number): number {
  if (n > 0xffff) throw new RangeError(`Cannot encode BTF type ${t.id}: ${n} entries, at most 65535`);
  return n;
}

function u32(t: BtfType, what: string, v: number): number {
  if (!Number.isInteger(v) || v < 0 || v > MAX_U32) {
    throw new RangeError(`Cannot encode BTF type ${t.id}: ${what} ${v} is not a u32`);
  }
  return v;
}

/**
 * Encodes BTF as the kernel and libbpf read it (header, types, strings).
 *
 * The original string table is kept as a prefix and new names are
 * appended, so string offsets from the object's .BTF.ext (func_info and
 * line_info file names and source lines) stay valid. Split BTF encodes
 * only its own types, with names found in the base's table referring to it.
 *
 * @param btf The BTF to encode.
 * @returns The bytes; `parseBtf(encodeBtf(btf))` has the same types as `btf`.
 * @throws {RangeError} When a value does not fit its field (a u32, a 24-bit member offset, more than 65535 members).
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildBtf, encodeBtf, parseBtf } from "@dp/core/internal";
 *
 * const btf = buildBtf([{ kind: "float", id: 1, name: "double", size: 8 }]);
 * const again = parseBtf(encodeBtf(btf));
 * assert.deepEqual(again.types, btf.types);
 * ```
 */
export function encodeBtf(btf: Btf): Uint8Array {
  const own = stringsOf(btf);
  const base = btf.base === undefined ? undefined : stringsOf(btf.base);
  const sb = new BtfStringBuilder(own.bytes.length > 0 ? own : undefined, base, own.start);
  let typeLen = 0;
  for (const t of btf.types) typeLen += recordSize(t);
  const types = new Uint8Array(typeLen);
  const dv = new DataView(types.buffer);
  let p = 0;
  for (const t of btf.types) {
    if (t.kind === "void") throw new RangeError("Cannot encode BTF: void is type id 0, not a type record");
    const kind = KIND_NUMBERS[t.kind];
    let vlen = 0;
    let kflag = false;
    let sizeOrType = 0;
    switch (t.kind) {
      case "int":
      case "float":
        sizeOrType = t.size;
        break;
      case "ptr":
      case "typedef":
      case "volatile":
      case "const":
      case "restrict":
        sizeOrType = t.typeId;
        break;
      case "typeTag":
      case "declTag":
        sizeOrType = t.typeId;
        kflag = t.attribute;
        break;
      case "struct":
      case "union":
        sizeOrType = t.size;
        kflag = t.kindFlag;
        vlen = checkVlen(t, t.members.length);
        break;
      case "enum":
      case "enum64":
        sizeOrType = t.size;
        kflag = t.signed;
        vlen = checkVlen(t, t.values.length);
        break;
      case "fwd":
        kflag = t.union;
        break;
      case "func":
        sizeOrType = t.typeId;
        vlen = LINKAGES.indexOf(t.linkage);
        if (vlen < 0)
          throw new RangeError(`Cannot encode BTF type ${t.id}: unknown linkage ${JSON.stringify(t.linkage)}`);
        break;
      case "funcProto":
        sizeOrType = t.returnTypeId;
        vlen = checkVlen(t, t.params.length);
        break;
      case "var":
        sizeOrType = t.typeId;
        break;
      case "datasec":
        sizeOrType = t.size;
        vlen = checkVlen(t, t.vars.length);
        break;
      case "array":
        break;
    }
    dv.setUint32(p, sb.add(t.name), true);
    dv.setUint32(p + 4, ((kflag ? 1 : 0) << 31) | (kind << 24) | vlen, true);
    dv.setUint32(p + 8, u32(t, "size or type", sizeOrType), true);
    p += 12;
    switch (t.kind) {
      case "int": {
        const enc = (t.signed ? 1 : 0) | (t.char ? 2 : 0) | (t.bool ? 4 : 0);
        if (t.bits > 0xff || t.bitOffset > 0xff)
          throw new RangeError(`Cannot encode BTF type ${t.id}: int bits out of range`);
        dv.setUint32(p, ((enc << 24) | (t.bitOffset << 16) | t.bits) >>> 0, true);
        p += 4;
        break;
      }
      case "array":
        dv.setUint32(p, u32(t, "element type", t.elementTypeId), true);
        dv.setUint32(p + 4, u32(t, "index type", t.indexTypeId), true);
        dv.setUint32(p + 8, u32(t, "length", t.length), true);
        p += 12;
        break;
      case "struct":
      case "union":
        for (const m of t.members) {
          dv.setUint32(p, sb.add(m.name), true);
          dv.setUint32(p + 4, u32(t, "member type", m.typeId), true);
          if (t.kindFlag) {
            if (m.bitOffset > 0xffffff || m.bitSize > 0xff) {
              throw new RangeError(
                `Cannot encode BTF type ${t.id}: member ${JSON.stringify(m.name)} offset or bitfield size out of range`,
              );
            }
            dv.setUint32(p + 8, ((m.bitSize << 24) | m.bitOffset) >>> 0, true);
          } else {
            if (m.bitSize !== 0) {
              throw new RangeError(
                `Cannot encode BTF type ${t.id}: member ${JSON.stringify(m.name)} is a bitfield but kindFlag is off`,
              );
            }
            dv.setUint32(p + 8, u32(t, "member offset", m.bitOffset), true);
          }
          p += 12;
        }
        break;
      case "enum":
        for (const v of t.values) {
          dv.setUint32(p, sb.add(v.name), true);
          if (!Number.isInteger(v.value) || v.value < -0x8000_0000 || v.value > MAX_U32) {
            throw new RangeError(
              `Cannot encode BTF type ${t.id}: enumerator ${JSON.stringify(v.name)} value ${v.value} does not fit 32 bits`,
            );
          }
          dv.setUint32(p + 4, v.value >>> 0, true);
          p += 8;
        }
        break;
      case "enum64":
        for (const v of t.values) {
          dv.setUint32(p, sb.add(v.name), true);
          const u = BigInt.asUintN(64, v.value);
          dv.setUint32(p + 4, Number(u & 0xffff_ffffn), true);
          dv.setUint32(p + 8, Number(u >> 32n), true);
          p += 12;
        }
        break;
      case "funcProto":
        for (const param of t.params) {
          dv.setUint32(p, sb.add(param.name), true);
          dv.setUint32(p + 4, u32(t, "parameter type", param.typeId), true);
          p += 8;
        }
        break;
      case "var": {
        const linkage = LINKAGES.indexOf(t.linkage);
        if (linkage < 0)
          throw new RangeError(`Cannot encode BTF type ${t.id}: unknown linkage ${JSON.stringify(t.linkage)}`);
        dv.setUint32(p, linkage, true);
        p += 4;
        break;
      }
      case "datasec":
        for (const v of t.vars) {
          dv.setUint32(p, u32(t, "variable type", v.typeId), true);
          dv.setUint32(p + 4, u32(t, "variable offset", v.offset), true);
          dv.setUint32(p + 8, u32(t, "variable size", v.size), true);
          p += 12;
        }
        break;
      case "declTag":
        dv.setInt32(p, t.componentIndex, true);
        p += 4;
        break;
      default:
        break;
    }
  }
  const strings = sb.finish();
  const out = new Uint8Array(HEADER_LEN + typeLen + strings.length);
  const h = new DataView(out.buffer);
  h.setUint16(0, MAGIC, true);
  out[2] = 1;
  h.setUint32(4, HEADER_LEN, true);
  h.setUint32(8, 0, true);
  h.setUint32(12, typeLen, true);
  h.setUint32(16, typeLen, true);
  h.setUint32(20, strings.length, true);
  out.set(types, HEADER_LEN);
  out.set(strings, HEADER_LEN + typeLen);
  return out;
}
