// CO-RE (compile once, run everywhere) relocations: the instructions clang
// marks in .BTF.ext are rewritten for the target kernel's types, the way
// libbpf's relo_core.c does it (bpf_core_calc_relo_insn and
// bpf_core_patch_insn).
//
// Outline, per relocation:
// 1. The access string is parsed against the local (object) BTF into a
//    "spec": the raw indexes, the named fields and array indexes among them
//    ("accessors") and the bit offset they add up to.
// 2. Candidates are the target types whose kind matches the local root's and
//    whose "essential" name (the name without a `___flavour` suffix) equals
//    the local root's essential name.
// 3. Each candidate is matched: named fields are looked up by name (through
//    anonymous members), array indexes are checked against the target's
//    bounds, and field types must be compatible. Every matching candidate
//    must give the same result, else the relocation is ambiguous. Candidates
//    that do not match are dropped for the later relocations of the same
//    local type, as libbpf does.
// 4. The instruction is checked against the local value and patched, or
//    poisoned when the target lacks what it refers to.
import {
  type Btf,
  type BtfEnum,
  type BtfEnum64,
  type BtfStruct,
  type BtfType,
  type BtfUnion,
  essentialName,
  typeIdsByEssentialName,
} from "../btf/btf.ts";
import type { BtfCoreRelo, BtfCoreReloKind } from "../btf/btf_ext.ts";

/** One relocation to apply: the instruction index (into the program's 8-byte instructions) and the record. */
export interface CoreRelocationInput {
  /** The index of the instruction to patch in the buffer given to {@link applyCoreRelocations}. */
  readonly instruction: number;
  /** The .BTF.ext record; its `insnOffset` is not used (the caller gives `instruction`). */
  readonly relo: BtfCoreRelo;
}

/** What happened to one relocation. */
export interface CoreRelocationResult {
  /** The index of the patched instruction. */
  readonly instruction: number;
  /** The .BTF.ext record. */
  readonly relo: BtfCoreRelo;
  /**
   * The value the instruction was compiled with (computed from the local
   * BTF): a `number` when it fits in 32 bits unsigned, else a `bigint` (the
   * 64-bit two's complement libbpf writes, as for negative enum values).
   */
  readonly localValue: number | bigint;
  /**
   * The value written for the target, like `localValue`, or `"poisoned"`
   * when the instruction was replaced by `call` {@link CORE_POISON}.
   */
  readonly targetValue: number | bigint | "poisoned";
  /** Human description such as `struct task_struct.tgid (0:57) byte offset` for diagnostics. */
  readonly description: string;
}

/**
 * A CO-RE relocation cannot be applied: the record is malformed (bad
 * access string, out-of-range index, anonymous root type), the instruction
 * does not match the record or its local value, candidates in the target
 * disagree (ambiguous), or the result does not fit the instruction.
 *
 * @example What a mismatch reports
 * ```ts
 * import assert from "node:assert/strict";
 * import { CoreRelocationError } from "@dp/core/internal";
 *
 * const relo = { insnOffset: 16, typeId: 3, accessString: "0:1", kind: "fieldByteOffset" } as const;
 * const err = new CoreRelocationError(2, relo, "struct pair.b (0:1) byte offset", "the instruction's immediate is 0, expected 4");
 * assert.equal(err.name, "CoreRelocationError");
 * assert.equal(err.instruction, 2);
 * assert.equal(
 *   err.message,
 *   "Cannot apply CO-RE relocation at instruction 2 (struct pair.b (0:1) byte offset): the instruction's immediate is 0, expected 4",
 * );
 * ```
 */
export class CoreRelocationError extends Error {
  /** Always `"CoreRelocationError"`, the class name. */
  override readonly name: string = "CoreRelocationError";
  /** The index of the instruction the relocation is for. */
  readonly instruction: number;
  /** The .BTF.ext record. */
  readonly relo: BtfCoreRelo;
  /** What the relocation refers to, such as `struct task_struct.tgid (0:57) byte offset`. */
  readonly description: string;

  /**
   * Creates an error whose message is `Cannot apply CO-RE relocation at instruction <instruction> (<description>): <detail>`.
   *
   * @param instruction The instruction index.
   * @param relo The record.
   * @param description What the relocation refers to.
   * @param detail What is wrong.
   * @param options The underlying error, if any.
   */
  constructor(instruction: number, relo: BtfCoreRelo, description: string, detail: string, options?: ErrorOptions) {
    super(`Cannot apply CO-RE relocation at instruction ${instruction} (${description}): ${detail}`, options);
    this.instruction = instruction;
    this.relo = relo;
    this.description = description;
  }
}

/** The call immediate libbpf writes into poisoned instructions (0xbad2310): `call unknown#195896080` in verifier logs. */
export const CORE_POISON: number = 0xbad2310;

/** A failure of one relocation, turned into a {@link CoreRelocationError} by the caller. */
class Invalid extends Error {}

const INSN_SIZE = 8;
/** libbpf's BPF_CORE_SPEC_MAX_LEN: the most indexes an access string may have. */
const MAX_SPEC_LEN = 64;
/** libbpf's recursion limit for type compatibility checks. */
const MAX_DEPTH = 32;
const MAX_INDEX = 0x7fff_ffff;
const MAX_S16 = 0x7fff;
const U32 = 0xffff_ffffn;

const CLASS_LD = 0x00;
const CLASS_LDX = 0x01;
const CLASS_ST = 0x02;
const CLASS_STX = 0x03;
const CLASS_ALU = 0x04;
const CLASS_ALU64 = 0x07;
const SRC_X = 0x08;
const ALU_END = 0xd0;
const MODE_MEMSX = 0x80;
const MODE_ATOMIC = 0xc0;
const LD_IMM64 = 0x18;
const JMP_CALL = 0x85;
const SIZE_BITS: Readonly<Record<number, number>> = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 };
const SIZE_BYTES: Readonly<Record<number, number>> = { 0x10: 1, 0x08: 2, 0x00: 4, 0x18: 8 };

const KIND_TEXT: Readonly<Record<BtfCoreReloKind, string>> = {
  fieldByteOffset: "byte offset",
  fieldByteSize: "byte size",
  fieldExists: "exists",
  fieldSigned: "signed",
  fieldLshiftU64: "left shift",
  fieldRshiftU64: "right shift",
  typeIdLocal: "local type id",
  typeIdTarget: "target type id",
  typeExists: "exists",
  typeSize: "size",
  enumvalExists: "exists",
  enumvalValue: "value",
  typeMatches: "matches",
};

type Composite = BtfStruct | BtfUnion;
type AnyEnum = BtfEnum | BtfEnum64;

/** A named field or an array index along an access path (libbpf's `bpf_core_accessor`). */
interface Accessor {
  /** The struct or union holding the field, or the array element type. */
  readonly typeId: number;
  /** The member, enumerator or array index. */
  readonly index: number;
  /** The field or enumerator name; `undefined` for an array index. */
  readonly name: string | undefined;
}

/** An access path resolved against one BTF (libbpf's `bpf_core_spec`). */
interface Spec {
  readonly btf: Btf;
  readonly rootId: number;
  /** Every index of the access string, anonymous members included. */
  readonly raw: number[];
  /** Named fields and array indexes only. */
  readonly accessors: Accessor[];
  bitOffset: number;
}

/** The computed relocation (libbpf's `bpf_core_relo_res`). */
interface Outcome {
  readonly localValue: bigint;
  readonly targetValue: bigint;
  readonly poison: boolean;
  /** Whether the instruction must hold `localValue` before patching. */
  readonly validate: boolean;
  /** A load or store of the field cannot change size safely. */
  readonly failSizeChange: boolean;
  /** The field's size in bytes in the local and target BTF (byte offsets only, else 0). */
  readonly localSize: number;
  readonly targetSize: number;
}

function isComposite(t: BtfType): t is Composite {
  return t.kind === "struct" || t.kind === "union";
}

function isAnyEnum(t: BtfType): t is AnyEnum {
  return t.kind === "enum" || t.kind === "enum64";
}

/** libbpf's btf_kind_core_compat: the same kind, or both enums. */
function kindsCompatible(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isAnyEnum(a) && isAnyEnum(b));
}

/** How C would name a type: `struct sk_buff`, `enum (anon)`, or the kind and the quoted name for others (`int "unsigned int"`). */
function label(t: BtfType): string {
  const name = t.name === "" ? "(anon)" : t.name;
  switch (t.kind) {
    case "struct":
    case "union":
    case "enum":
    case "typedef":
      return `${t.kind} ${name}`;
    case "enum64":
      return `enum ${name}`;
    case "fwd":
      return `${t.union ? "union" : "struct"} ${name}`;
    default:
      return t.name === "" ? t.kind : `${t.kind} ${JSON.stringify(t.name)}`;
  }
}

function typeAt(btf: Btf, id: number): BtfType {
  const t = btf.typeById(id);
  if (t === undefined) throw new Invalid(`type id ${id} does not exist`);
  return t;
}

/** Skips typedefs and qualifiers (libbpf's skip_mods_and_typedefs). */
function resolve(btf: Btf, id: number): BtfType {
  try {
    return btf.resolve(id);
  } catch (err) {
    throw new Invalid(`cannot resolve type ${id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function sizeOf(btf: Btf, id: number): number {
  try {
    return btf.sizeOf(id);
  } catch (err) {
    throw new Invalid(`cannot size type ${id}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

function isFieldKind(kind: BtfCoreReloKind): boolean {
  return kind.startsWith("field");
}

function isTypeKind(kind: BtfCoreReloKind): boolean {
  return kind.startsWith("type");
}

function isEnumvalKind(kind: BtfCoreReloKind): boolean {
  return kind.startsWith("enumval");
}

/** Adds to a bit offset, keeping it a safe integer. */
function addBits(spec: Spec, bits: number): void {
  spec.bitOffset += bits;
  if (!Number.isSafeInteger(spec.bitOffset) || spec.bitOffset > 0xffff_ffff * 8) {
    throw new Invalid("the field offset does not fit 32 bits");
  }
}

/** A zero-length array as the last member of a struct (libbpf's is_flex_arr). */
function isFlexibleArray(btf: Btf, previous: Accessor | undefined, length: number): boolean {
  if (previous?.name === undefined || length > 0) return false;
  const t = btf.typeById(previous.typeId);
  return t !== undefined && isComposite(t) && previous.index === t.members.length - 1;
}

/** Parses an access string against the local BTF (libbpf's bpf_core_parse_spec). */
function parseSpec(btf: Btf, relo: BtfCoreRelo): Spec {
  const text = relo.accessString;
  const spec: Spec = { btf, rootId: relo.typeId, raw: [], accessors: [], bitOffset: 0 };
  if (!/^\d+(?::\d+)*$/.test(text))
    throw new Invalid(`access string ${JSON.stringify(text)} is not colon-separated indexes`);
  if (isTypeKind(relo.kind)) {
    if (text !== "0") throw new Invalid(`access string ${JSON.stringify(text)} must be "0" for a type relocation`);
    return spec;
  }
  for (const part of text.split(":")) {
    const index = Number(part);
    if (index > MAX_INDEX) throw new Invalid(`access index ${part} is too large`);
    spec.raw.push(index);
  }
  if (spec.raw.length > MAX_SPEC_LEN)
    throw new Invalid(`access string has ${spec.raw.length} indexes, at most ${MAX_SPEC_LEN}`);
  const root = resolve(btf, relo.typeId);
  let id = root.id;
  const first = spec.raw[0] as number;

  if (isEnumvalKind(relo.kind)) {
    if (!isAnyEnum(root)) throw new Invalid(`${label(root)} is not an enum`);
    if (spec.raw.length > 1) throw new Invalid(`access string ${JSON.stringify(text)} must be one enumerator index`);
    const value = root.values[first];
    if (value === undefined)
      throw new Invalid(`enumerator index ${first} is out of range: ${label(root)} has ${root.values.length}`);
    spec.accessors.push({ typeId: id, index: first, name: value.name });
    return spec;
  }

  spec.accessors.push({ typeId: id, index: first, name: undefined });
  addBits(spec, first * sizeOf(btf, id) * 8);
  for (let i = 1; i < spec.raw.length; i++) {
    const t = resolve(btf, id);
    const index = spec.raw[i] as number;
    if (isComposite(t)) {
      const m = t.members[index];
      if (m === undefined)
        throw new Invalid(`member index ${index} is out of range: ${label(t)} has ${t.members.length} members`);
      addBits(spec, m.bitOffset);
      if (m.name !== "") spec.accessors.push({ typeId: t.id, index, name: m.name });
      id = m.typeId;
    } else if (t.kind === "array") {
      const element = resolve(btf, t.elementTypeId);
      if (!isFlexibleArray(btf, spec.accessors.at(-1), t.length) && index >= t.length) {
        throw new Invalid(`array index ${index} is out of range: the array has ${t.length} elements`);
      }
      id = element.id;
      spec.accessors.push({ typeId: id, index, name: undefined });
      addBits(spec, index * sizeOf(btf, id) * 8);
    } else {
      throw new Invalid(`access index ${i} (${index}) goes into ${label(t)}, which is not a struct, union or array`);
    }
  }
  return spec;
}

/** Whether a field's local and target types can be relocated into each other (libbpf's bpf_core_fields_are_compat). */
function fieldsCompatible(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const l = resolve(local, localId);
    const t = resolve(target, targetId);
    if (isComposite(l) && isComposite(t)) return true;
    if (!kindsCompatible(l, t)) return false;
    switch (l.kind) {
      case "ptr":
      case "float":
        return true;
      case "fwd":
      case "enum":
      case "enum64": {
        const ln = essentialName(l.name);
        const tn = essentialName(t.name);
        return ln === "" || tn === "" || ln === tn;
      }
      case "int":
        return l.bitOffset === 0 && t.kind === "int" && t.bitOffset === 0;
      case "array":
        if (t.kind !== "array") return false;
        localId = l.elementTypeId;
        targetId = t.elementTypeId;
        continue;
      default:
        return false;
    }
  }
  throw new Invalid(`field types nest more than ${MAX_DEPTH} arrays deep`);
}

/** Whether two types are compatible for type relocations (libbpf's __bpf_core_types_are_compat). */
function typesCompatible(local: Btf, localId: number, target: Btf, targetId: number, level: number): boolean {
  if (!kindsCompatible(typeAt(local, localId), typeAt(target, targetId))) return false;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const l = resolve(local, localId);
    const t = resolve(target, targetId);
    if (!kindsCompatible(l, t)) return false;
    switch (l.kind) {
      case "void":
      case "struct":
      case "union":
      case "enum":
      case "enum64":
      case "fwd":
        return true;
      case "int":
        return l.bitOffset === 0 && t.kind === "int" && t.bitOffset === 0;
      case "ptr":
        if (t.kind !== "ptr") return false;
        localId = l.typeId;
        targetId = t.typeId;
        continue;
      case "array":
        if (t.kind !== "array") return false;
        localId = l.elementTypeId;
        targetId = t.elementTypeId;
        continue;
      case "funcProto": {
        if (t.kind !== "funcProto" || l.params.length !== t.params.length) return false;
        for (let i = 0; i < l.params.length; i++) {
          if (level <= 0) throw new Invalid(`function prototypes nest more than ${MAX_DEPTH} levels deep`);
          const lp = resolve(local, l.params[i]?.typeId ?? 0);
          const tp = resolve(target, t.params[i]?.typeId ?? 0);
          if (!typesCompatible(local, lp.id, target, tp.id, level - 1)) return false;
        }
        localId = l.returnTypeId;
        targetId = t.returnTypeId;
        continue;
      }
      default:
        return false;
    }
  }
  throw new Invalid(`types nest more than ${MAX_DEPTH} levels deep`);
}

/**
 * Whether a type of the object and a kernel type are compatible the way
 * libbpf checks `__ksym` externs (bpf_core_types_are_compat): typedefs and
 * qualifiers skipped, the same kind (any two enums), integers of any size,
 * pointers and arrays by what they hold, function prototypes by the number
 * and compatibility of parameters and the return type; structs and unions
 * by kind only.
 *
 * @param local The object's BTF.
 * @param localId The object's type.
 * @param target The kernel's BTF.
 * @param targetId The kernel's type.
 * @returns `false` also when either type is malformed.
 */
export function typesAreCompatible(local: Btf, localId: number, target: Btf, targetId: number): boolean {
  try {
    return typesCompatible(local, resolve(local, localId).id, target, resolve(target, targetId).id, MAX_DEPTH);
  } catch (err) {
    if (err instanceof Invalid) return false;
    throw err;
  }
}

/** libbpf's bpf_core_names_match: an anonymous target matches only an anonymous local. */
function namesMatch(local: string, target: string): boolean {
  if (target === "") return local === "";
  return essentialName(local) === essentialName(target);
}

function enumsMatch(l: AnyEnum, t: AnyEnum): boolean {
  if (l.size !== t.size || l.values.length > t.values.length) return false;
  return l.values.every((lv) => t.values.some((tv) => namesMatch(lv.name, tv.name)));
}

/** Whether two types "match" for `bpf_core_type_matches` (libbpf's __bpf_core_types_match). */
function typesMatch(
  local: Btf,
  localId: number,
  target: Btf,
  targetId: number,
  behindPointer: boolean,
  level: number,
): boolean {
  if (level <= 0) throw new Invalid(`types nest more than ${MAX_DEPTH} levels deep`);
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const l = resolve(local, localId);
    const t = resolve(target, targetId);
    if (!namesMatch(l.name, t.name)) return false;
    switch (l.kind) {
      case "void":
        return t.kind === "void";
      case "fwd":
        if (behindPointer && t.kind !== "fwd")
          return (t.kind === "struct" && !l.union) || (t.kind === "union" && l.union);
        return t.kind === "fwd" && t.union === l.union;
      case "enum":
      case "enum64":
        return isAnyEnum(t) && enumsMatch(l, t);
      case "struct":
      case "union":
        if (behindPointer) {
          if (t.kind === l.kind) return true;
          return t.kind === "fwd" && (l.kind === "union") === t.union;
        }
        if (t.kind !== l.kind) return false;
        return compositesMatch(local, l, target, t, behindPointer, level);
      case "int":
        return t.kind === "int" && l.size === t.size && l.signed === t.signed;
      case "ptr":
        if (t.kind !== "ptr") return false;
        behindPointer = true;
        localId = l.typeId;
        targetId = t.typeId;
        continue;
      case "array":
        if (t.kind !== "array" || l.length !== t.length) return false;
        localId = l.elementTypeId;
        targetId = t.elementTypeId;
        continue;
      case "funcProto": {
        if (t.kind !== "funcProto" || l.params.length !== t.params.length) return false;
        for (let i = 0; i < l.params.length; i++) {
          if (!typesMatch(local, l.params[i]?.typeId ?? 0, target, t.params[i]?.typeId ?? 0, behindPointer, level - 1))
            return false;
        }
        localId = l.returnTypeId;
        targetId = t.returnTypeId;
        continue;
      }
      default:
        return false;
    }
  }
  throw new Invalid(`types nest more than ${MAX_DEPTH} levels deep`);
}

function compositesMatch(
  local: Btf,
  l: Composite,
  target: Btf,
  t: Composite,
  behindPointer: boolean,
  level: number,
): boolean {
  if (l.members.length > t.members.length) return false;
  return l.members.every((lm) =>
    t.members.some(
      (tm) => namesMatch(lm.name, tm.name) && typesMatch(local, lm.typeId, target, tm.typeId, behindPointer, level - 1),
    ),
  );
}

/**
 * Finds the local named field `localAcc` in a target struct or union,
 * through anonymous members, pushing the path onto `spec` (libbpf's
 * bpf_core_match_member). Returns the field's type id, or `undefined`.
 */
function matchMember(local: Btf, localAcc: Accessor, target: Btf, targetId: number, spec: Spec): number | undefined {
  const t = resolve(target, targetId);
  if (!isComposite(t)) return undefined;
  const owner = typeAt(local, localAcc.typeId) as Composite;
  const lm = owner.members[localAcc.index];
  if (lm === undefined) throw new Invalid(`member index ${localAcc.index} is out of range`);
  for (const [i, m] of t.members.entries()) {
    if (spec.raw.length === MAX_SPEC_LEN) throw new Invalid(`the target path is longer than ${MAX_SPEC_LEN} indexes`);
    addBits(spec, m.bitOffset);
    spec.raw.push(i);
    if (m.name === "") {
      const found = matchMember(local, localAcc, target, m.typeId, spec);
      if (found !== undefined) return found;
    } else if (m.name === lm.name) {
      if (fieldsCompatible(local, lm.typeId, target, m.typeId)) {
        spec.accessors.push({ typeId: t.id, index: i, name: m.name });
        return m.typeId;
      }
      spec.raw.pop();
      spec.bitOffset -= m.bitOffset;
      return undefined;
    }
    spec.raw.pop();
    spec.bitOffset -= m.bitOffset;
  }
  return undefined;
}

/** Matches the local spec against one candidate (libbpf's bpf_core_spec_match). */
function matchSpec(localSpec: Spec, kind: BtfCoreReloKind, target: Btf, candidateId: number): Spec | undefined {
  const local = localSpec.btf;
  const spec: Spec = { btf: target, rootId: candidateId, raw: [], accessors: [], bitOffset: 0 };
  if (isTypeKind(kind)) {
    const ok =
      kind === "typeMatches"
        ? typesMatch(local, localSpec.rootId, target, candidateId, false, MAX_DEPTH)
        : typesCompatible(local, localSpec.rootId, target, candidateId, MAX_DEPTH);
    return ok ? spec : undefined;
  }
  if (isEnumvalKind(kind)) {
    const t = resolve(target, candidateId);
    if (!isAnyEnum(t)) return undefined;
    const name = essentialName(localSpec.accessors[0]?.name ?? "");
    const index = t.values.findIndex((v) => essentialName(v.name) === name);
    if (index < 0) return undefined;
    spec.accessors.push({ typeId: t.id, index, name: (t.values[index] as { name: string }).name });
    spec.raw.push(index);
    return spec;
  }
  let id = candidateId;
  for (let i = 0; i < localSpec.accessors.length; i++) {
    const acc = localSpec.accessors[i] as Accessor;
    const t = resolve(target, id);
    id = t.id;
    if (acc.name !== undefined) {
      const next = matchMember(local, acc, target, id, spec);
      if (next === undefined) return undefined;
      id = next;
      continue;
    }
    if (i > 0) {
      if (t.kind !== "array") return undefined;
      if (!isFlexibleArray(target, spec.accessors[i - 1], t.length) && acc.index >= t.length) return undefined;
      id = resolve(target, t.elementTypeId).id;
    }
    if (spec.raw.length === MAX_SPEC_LEN) throw new Invalid(`the target path is longer than ${MAX_SPEC_LEN} indexes`);
    spec.accessors.push({ typeId: id, index: acc.index, name: undefined });
    spec.raw.push(acc.index);
    addBits(spec, acc.index * sizeOf(target, id) * 8);
  }
  return spec;
}

interface FieldValue {
  readonly value: bigint;
  /** Size of the field for load/store size changes (byte offsets of non-bitfields), else 0. */
  readonly size: number;
  /** The resolved field type, when `size` is set. */
  readonly typeId: number;
  readonly validate: boolean;
}

/** libbpf's bpf_core_calc_field_relo; `undefined` asks for poisoning. */
function fieldValue(kind: BtfCoreReloKind, spec: Spec | undefined): FieldValue | undefined {
  if (kind === "fieldExists") return { value: spec === undefined ? 0n : 1n, size: 0, typeId: 0, validate: true };
  if (spec === undefined) return undefined;
  const btf = spec.btf;
  const acc = spec.accessors.at(-1) as Accessor;
  if (acc.name === undefined) {
    const size = sizeOf(btf, acc.typeId);
    if (kind === "fieldByteOffset")
      return { value: BigInt(Math.floor(spec.bitOffset / 8)), size, typeId: acc.typeId, validate: true };
    if (kind === "fieldByteSize") return { value: BigInt(size), size: 0, typeId: 0, validate: true };
    throw new Invalid(`a ${KIND_TEXT[kind]} relocation cannot apply to an array element`);
  }
  const owner = typeAt(btf, acc.typeId) as Composite;
  const m = owner.members[acc.index];
  if (m === undefined) throw new Invalid(`member index ${acc.index} is out of range`);
  const mt = resolve(btf, m.typeId);
  const bitOffset = spec.bitOffset;
  let bitSize = owner.kindFlag ? m.bitSize : 0;
  const bitfield = bitSize > 0;
  let byteSize: number;
  let byteOffset: number;
  if (bitfield) {
    if ((mt.kind !== "int" && !isAnyEnum(mt)) || ![1, 2, 4, 8].includes(mt.size)) {
      throw new Invalid(
        `bitfield ${JSON.stringify(m.name)} has type ${label(mt)}, expected an integer or enum of 1, 2, 4 or 8 bytes`,
      );
    }
    byteSize = mt.size;
    byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    while (bitOffset + bitSize - byteOffset * 8 > byteSize * 8) {
      if (byteSize >= 8) throw new Invalid(`bitfield ${JSON.stringify(m.name)} cannot be read with one 64-bit load`);
      byteSize *= 2;
      byteOffset = Math.floor(bitOffset / 8 / byteSize) * byteSize;
    }
  } else {
    byteSize = sizeOf(btf, mt.id);
    byteOffset = Math.floor(bitOffset / 8);
    bitSize = byteSize * 8;
  }
  const u64 = (n: number): bigint => BigInt.asUintN(64, BigInt(n));
  switch (kind) {
    case "fieldByteOffset":
      return {
        value: u64(byteOffset),
        size: bitfield ? 0 : byteSize,
        typeId: bitfield ? 0 : mt.id,
        validate: !bitfield,
      };
    case "fieldByteSize":
      return { value: u64(byteSize), size: 0, typeId: 0, validate: !bitfield };
    case "fieldSigned": {
      const signed = (isAnyEnum(mt) || mt.kind === "int") && mt.signed;
      return { value: signed ? 1n : 0n, size: 0, typeId: 0, validate: true };
    }
    case "fieldLshiftU64":
      return { value: u64(64 - (bitOffset + bitSize - byteOffset * 8)), size: 0, typeId: 0, validate: !bitfield };
    case "fieldRshiftU64":
      return { value: u64(64 - bitSize), size: 0, typeId: 0, validate: true };
    default:
      throw new Invalid(`relocation kind ${JSON.stringify(kind)} is not a field relocation`);
  }
}

/** libbpf's bpf_core_calc_type_relo: type relocations give 0 when the type is missing. */
function typeValue(kind: BtfCoreReloKind, spec: Spec | undefined): bigint {
  if (spec === undefined) return 0n;
  switch (kind) {
    case "typeIdTarget":
      return BigInt(spec.rootId);
    case "typeExists":
    case "typeMatches":
      return 1n;
    case "typeSize":
      return BigInt(sizeOf(spec.btf, spec.rootId));
    default:
      throw new Invalid(`relocation kind ${JSON.stringify(kind)} is not a type relocation`);
  }
}

/** libbpf's bpf_core_calc_enumval_relo; `undefined` asks for poisoning. 32-bit values are sign-extended as in libbpf. */
function enumValue(kind: BtfCoreReloKind, spec: Spec | undefined): bigint | undefined {
  if (kind === "enumvalExists") return spec === undefined ? 0n : 1n;
  if (spec === undefined) return undefined;
  const acc = spec.accessors[0] as Accessor;
  const t = typeAt(spec.btf, acc.typeId) as AnyEnum;
  const v = t.values[acc.index];
  if (v === undefined) throw new Invalid(`enumerator index ${acc.index} is out of range`);
  if (t.kind === "enum64") return BigInt.asUintN(64, (v as { value: bigint }).value);
  return BigInt.asUintN(64, BigInt.asIntN(32, BigInt((v as { value: number }).value)));
}

/** libbpf's bpf_core_calc_relo for one candidate (`targetSpec`) or none. */
function computeOutcome(kind: BtfCoreReloKind, localSpec: Spec, targetSpec: Spec | undefined): Outcome {
  const none = { failSizeChange: false, localSize: 0, targetSize: 0 };
  if (isFieldKind(kind)) {
    const l = fieldValue(kind, localSpec);
    if (l === undefined) throw new Invalid("the local field cannot be computed");
    const t = fieldValue(kind, targetSpec);
    if (t === undefined || targetSpec === undefined) {
      return {
        localValue: l.value,
        targetValue: t?.value ?? 0n,
        poison: t === undefined,
        validate: l.validate,
        ...none,
      };
    }
    let failSizeChange = false;
    if (l.size !== t.size) {
      const lt = localSpec.btf.typeById(l.typeId);
      const tt = targetSpec.btf.typeById(t.typeId);
      const pointers = lt?.kind === "ptr" && tt?.kind === "ptr";
      const unsigned = lt?.kind === "int" && tt?.kind === "int" && !lt.signed && !tt.signed;
      failSizeChange = !pointers && !unsigned;
    }
    return {
      localValue: l.value,
      targetValue: t.value,
      poison: false,
      validate: l.validate,
      failSizeChange,
      localSize: l.size,
      targetSize: t.size,
    };
  }
  if (isTypeKind(kind)) {
    // A target type id need not be validated: linking may renumber local ids.
    const validate = kind !== "typeIdTarget";
    return {
      localValue: typeValue(kind, localSpec),
      targetValue: typeValue(kind, targetSpec),
      poison: false,
      validate,
      ...none,
    };
  }
  const l = enumValue(kind, localSpec);
  if (l === undefined) throw new Invalid("the local enumerator value cannot be computed");
  const t = enumValue(kind, targetSpec);
  return { localValue: l, targetValue: t ?? 0n, poison: t === undefined, validate: true, ...none };
}

/** Target types with the local root's essential name and a compatible kind (libbpf's bpf_core_add_cands). */
function findCandidates(root: BtfType, target: Btf): number[] {
  const ids = typeIdsByEssentialName(target, essentialName(root.name));
  return ids.filter((id) => {
    const t = target.typeById(id);
    return t !== undefined && kindsCompatible(t, root);
  });
}

function describe(local: Btf, relo: BtfCoreRelo, spec: Spec | undefined): string {
  const root = local.typeById(relo.typeId);
  const kind = KIND_TEXT[relo.kind] ?? relo.kind;
  const name = root === undefined ? `type ${relo.typeId}` : label(root);
  if (spec === undefined) return isTypeKind(relo.kind) ? `${name} ${kind}` : `${name} (${relo.accessString}) ${kind}`;
  if (isTypeKind(relo.kind)) return `${name} ${kind}`;
  if (isEnumvalKind(relo.kind)) return `${name}::${spec.accessors[0]?.name ?? "?"} ${kind}`;
  let path = "";
  spec.accessors.forEach((acc, i) => {
    if (acc.name !== undefined) path += `.${acc.name}`;
    else if (i > 0 || acc.index > 0) path += `[${acc.index}]`;
  });
  return `${name}${path} (${spec.raw.join(":")}) ${kind}`;
}

function describeCandidate(target: Btf, id: number): string {
  const t = target.typeById(id);
  return t === undefined ? `[${id}]` : `[${id}] ${label(t)}`;
}

/** Computes a relocation: candidate search, matching and the ambiguity checks of libbpf's bpf_core_calc_relo_insn. */
function calculate(
  relo: BtfCoreRelo,
  localSpec: Spec,
  local: Btf,
  target: Btf,
  cache: Map<number, readonly number[]>,
): Outcome {
  if (relo.kind === "typeIdLocal") {
    const id = BigInt(relo.typeId);
    return {
      localValue: id,
      targetValue: id,
      poison: false,
      validate: false,
      failSizeChange: false,
      localSize: 0,
      targetSize: 0,
    };
  }
  const root = typeAt(local, relo.typeId);
  if (root.name === "")
    throw new Invalid(`${label(root)} [${relo.typeId}] is anonymous: CO-RE relocates named types only`);
  let candidates = cache.get(relo.typeId);
  if (candidates === undefined) {
    candidates = findCandidates(root, target);
    cache.set(relo.typeId, candidates);
  }
  let chosen: { id: number; spec: Spec; outcome: Outcome } | undefined;
  const kept: number[] = [];
  for (const id of candidates) {
    const spec = matchSpec(localSpec, relo.kind, target, id);
    if (spec === undefined) continue;
    const outcome = computeOutcome(relo.kind, localSpec, spec);
    if (chosen === undefined) {
      chosen = { id, spec, outcome };
    } else if (spec.bitOffset !== chosen.spec.bitOffset) {
      throw new Invalid(
        `ambiguous: target types ${describeCandidate(target, chosen.id)} and ${describeCandidate(target, id)} put the field at bit offsets ${chosen.spec.bitOffset} and ${spec.bitOffset}`,
      );
    } else if (outcome.poison !== chosen.outcome.poison || outcome.targetValue !== chosen.outcome.targetValue) {
      const show = (o: Outcome): string => (o.poison ? "no value" : String(o.targetValue));
      throw new Invalid(
        `ambiguous: target types ${describeCandidate(target, chosen.id)} and ${describeCandidate(target, id)} give ${show(chosen.outcome)} and ${show(outcome)}`,
      );
    }
    kept.push(id);
  }
  if (chosen === undefined) return computeOutcome(relo.kind, localSpec, undefined);
  cache.set(relo.typeId, kept);
  return chosen.outcome;
}

function poison(dv: DataView, index: number): void {
  const p = index * INSN_SIZE;
  dv.setUint8(p, JMP_CALL);
  dv.setUint8(p + 1, 0);
  dv.setInt16(p + 2, 0, true);
  dv.setInt32(p + 4, CORE_POISON, true);
}

/** Patches one instruction (libbpf's bpf_core_patch_insn); returns whether it was poisoned. */
function patch(dv: DataView, count: number, index: number, o: Outcome): boolean {
  const p = index * INSN_SIZE;
  const code = dv.getUint8(p);
  const isLdImm64 = code === LD_IMM64;
  const doPoison = (): boolean => {
    if (isLdImm64 && index + 1 < count) poison(dv, index + 1);
    poison(dv, index);
    return true;
  };
  if (o.poison) return doPoison();
  const cls = code & 0x07;
  switch (cls) {
    case CLASS_ALU:
    case CLASS_ALU64: {
      if ((code & SRC_X) !== 0) throw new Invalid(`instruction 0x${hex(code)} takes a register, not an immediate`);
      if (cls === CLASS_ALU && (code & 0xf0) === ALU_END)
        throw new Invalid("a byte swap instruction cannot be relocated");
      const imm = dv.getInt32(p + 4, true);
      if (o.validate && BigInt.asUintN(64, BigInt(imm)) !== o.localValue) {
        throw new Invalid(`the instruction's immediate is ${imm}, expected ${o.localValue}`);
      }
      const signed = BigInt.asIntN(64, o.targetValue);
      if (o.targetValue > U32 && (signed < -0x8000_0000n || signed > 0x7fff_ffffn)) {
        throw new Invalid(`the value ${o.targetValue} does not fit a 32-bit immediate`);
      }
      dv.setInt32(p + 4, Number(BigInt.asIntN(32, o.targetValue)), true);
      return false;
    }
    case CLASS_LDX:
    case CLASS_ST:
    case CLASS_STX: {
      const off = dv.getInt16(p + 2, true);
      if (o.validate && BigInt.asUintN(64, BigInt(off)) !== o.localValue) {
        throw new Invalid(`the instruction's offset is ${off}, expected ${o.localValue}`);
      }
      if (o.targetValue > BigInt(MAX_S16))
        throw new Invalid(`the offset ${o.targetValue} does not fit a 16-bit instruction offset`);
      if (o.failSizeChange) return doPoison();
      dv.setInt16(p + 2, Number(o.targetValue), true);
      if (o.targetSize !== o.localSize) {
        const size = SIZE_BYTES[code & 0x18] as number;
        if (size !== o.localSize) throw new Invalid(`the instruction accesses ${size} bytes, expected ${o.localSize}`);
        const bits = SIZE_BITS[o.targetSize];
        if (bits === undefined)
          throw new Invalid(`the target field is ${o.targetSize} bytes, which no load or store can access`);
        const mode = code & 0xe0;
        if (mode === MODE_MEMSX)
          throw new Invalid(`a sign-extending load cannot change size from ${size} to ${o.targetSize} bytes`);
        if (mode === MODE_ATOMIC && o.targetSize < 4)
          throw new Invalid(`an atomic operation cannot access ${o.targetSize} bytes`);
        dv.setUint8(p, (code & ~0x18) | bits);
      }
      return false;
    }
    case CLASS_LD: {
      const q = p + INSN_SIZE;
      if (
        !isLdImm64 ||
        index + 1 >= count ||
        dv.getUint8(p + 1) >> 4 !== 0 ||
        dv.getInt16(p + 2, true) !== 0 ||
        dv.getUint8(q) !== 0 ||
        dv.getUint8(q + 1) !== 0 ||
        dv.getInt16(q + 2, true) !== 0
      ) {
        throw new Invalid("the instruction is not a plain 64-bit immediate load");
      }
      const imm = BigInt(dv.getUint32(p + 4, true)) | (BigInt(dv.getUint32(q + 4, true)) << 32n);
      if (o.validate && imm !== o.localValue)
        throw new Invalid(`the instruction's immediate is ${imm}, expected ${o.localValue}`);
      dv.setUint32(p + 4, Number(o.targetValue & U32), true);
      dv.setUint32(q + 4, Number((o.targetValue >> 32n) & U32), true);
      return false;
    }
    default:
      throw new Invalid(
        `instruction 0x${hex(code)} cannot be relocated: expected an ALU immediate, a load, a store or a 64-bit immediate load`,
      );
  }
}

function hex(code: number): string {
  return code.toString(16).padStart(2, "0");
}

function reported(v: bigint): number | bigint {
  return v <= U32 ? Number(v) : v;
}

/**
 * Applies CO-RE relocations in place to `instructions` (a copy the caller owns).
 *
 * `local` is the object's BTF; `target` is the kernel's (`kernelBtf()`)
 * or a user-given BTF. For each relocation the target types with the local
 * root's name, `___flavour` suffixes ignored, are candidates; every matching
 * candidate must agree. What is not found gives 0 for the `*Exists` kinds,
 * `typeIdTarget`, `typeSize` and `typeMatches` (as libbpf does), and poisons
 * the instruction for the others: it becomes `call` {@link CORE_POISON}
 * (both halves of a 64-bit immediate load), which the verifier rejects only
 * when the path is reachable. Before patching, the instruction must hold the
 * value computed from the local BTF (bitfield offsets and sizes and type
 * ids excepted, as in libbpf). A load or store whose field changes size is
 * resized for pointers and unsigned integers and poisoned otherwise.
 *
 * Candidates that do not match a relocation are dropped for the later
 * relocations of the same local type in this call, as libbpf does for an
 * object. Nothing is written when a relocation fails.
 *
 * @param instructions The program's instructions (8 bytes each, host byte order); patched in place.
 * @param relos The relocations, with instruction indexes into `instructions`.
 * @param local The object's BTF, which the records refer to.
 * @param target The BTF to relocate against.
 * @returns One result per relocation, in order.
 * @throws {TypeError} When `instructions` is not a `Uint8Array`.
 * @throws {RangeError} When the length of `instructions` is not a multiple of 8.
 * @throws {CoreRelocationError} When a relocation is malformed (bad access string, index out of range, anonymous or missing root type, instruction index outside the buffer), the instruction is not one CO-RE can patch or does not hold the local value, matching target types disagree, or the value does not fit the instruction.
 * @example Relocating a field offset
 * ```ts
 * import assert from "node:assert/strict";
 * import { applyCoreRelocations, buildBtf, type BtfType } from "@dp/core/internal";
 *
 * const u32: BtfType = { kind: "int", id: 1, name: "unsigned int", size: 4, signed: false, char: false, bool: false, bitOffset: 0, bits: 32 };
 * const local = buildBtf([u32, { kind: "struct", id: 2, name: "task___local", size: 4, kindFlag: false, members: [
 *   { name: "pid", typeId: 1, bitOffset: 0, bitSize: 0 },
 * ] }]);
 * const target = buildBtf([u32, { kind: "struct", id: 2, name: "task", size: 8, kindFlag: false, members: [
 *   { name: "flags", typeId: 1, bitOffset: 0, bitSize: 0 },
 *   { name: "pid", typeId: 1, bitOffset: 32, bitSize: 0 },
 * ] }]);
 * // r1 = *(u32 *)(r2 + 0), compiled against the local layout
 * const insns = new Uint8Array([0x61, 0x21, 0, 0, 0, 0, 0, 0]);
 * const relo = { insnOffset: 0, typeId: 2, accessString: "0:0", kind: "fieldByteOffset" } as const;
 * const [result] = applyCoreRelocations(insns, [{ instruction: 0, relo }], local, target);
 * assert.equal(insns[2], 4);
 * assert.equal(result?.targetValue, 4);
 * assert.equal(result?.description, "struct task___local.pid (0:0) byte offset");
 * ```
 */
export function applyCoreRelocations(
  instructions: Uint8Array,
  relos: readonly CoreRelocationInput[],
  local: Btf,
  target: Btf,
): CoreRelocationResult[] {
  if (!(instructions instanceof Uint8Array)) throw new TypeError("Invalid instructions: expected a Uint8Array");
  if (instructions.length % INSN_SIZE !== 0) {
    throw new RangeError(`Invalid instructions: ${instructions.length} bytes is not a multiple of ${INSN_SIZE}`);
  }
  // A copy, not slice(): Buffer.prototype.slice shares memory.
  const work = new Uint8Array(instructions);
  const dv = new DataView(work.buffer);
  const count = work.length / INSN_SIZE;
  const cache = new Map<number, readonly number[]>();
  const results: CoreRelocationResult[] = [];
  for (const { instruction, relo } of relos) {
    let description = describe(local, relo, undefined);
    try {
      if (local.typeById(relo.typeId) === undefined) throw new Invalid(`local type id ${relo.typeId} does not exist`);
      const localSpec = parseSpec(local, relo);
      description = describe(local, relo, localSpec);
      if (!Number.isInteger(instruction) || instruction < 0 || instruction >= count) {
        throw new Invalid(`instruction index ${instruction} is outside the ${count} instructions`);
      }
      const outcome = calculate(relo, localSpec, local, target, cache);
      const poisoned = patch(dv, count, instruction, outcome);
      results.push({
        instruction,
        relo,
        localValue: reported(outcome.localValue),
        targetValue: poisoned ? "poisoned" : reported(outcome.targetValue),
        description,
      });
    } catch (err) {
      if (err instanceof Invalid) {
        throw new CoreRelocationError(
          instruction,
          relo,
          description,
          err.message,
          err.cause === undefined ? undefined : { cause: err.cause },
        );
      }
      throw new CoreRelocationError(instruction, relo, description, err instanceof Error ? err.message : String(err), {
        cause: err,
      });
    }
  }
  instructions.set(work);
  return results;
}
