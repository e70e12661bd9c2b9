import { type Btf, BtfSyntaxError } from "./btf.ts";

/** A `struct bpf_func_info` record of .BTF.ext: where a function starts and its BTF. */
export interface BtfFuncInfo {
  /** Byte offset of the function's first instruction in its ELF section (a multiple of 8). */
  readonly insnOffset: number;
  /** The id of the function's `BTF_KIND_FUNC`. */
  readonly typeId: number;
  /** The function's name, from its BTF. */
  readonly name: string;
}

/** A `struct bpf_line_info` record of .BTF.ext: the source line an instruction came from. */
export interface BtfLineInfo {
  /** Byte offset of the instruction in its ELF section (a multiple of 8). */
  readonly insnOffset: number;
  /** The source file name, as the compiler saw it (such as `"bpf/testdata/xdp_count.c"`). */
  readonly fileName: string;
  /** The source line's text. */
  readonly sourceLine: string;
  /** The 1-based line number (`line_col >> 10`); 0 when unknown. */
  readonly line: number;
  /** The 1-based column (`line_col & 0x3ff`); 0 when unknown. */
  readonly column: number;
  /** The BTF string offset of `fileName` (`file_name_off`), for the kernel. */
  readonly fileNameOffset: number;
  /** The BTF string offset of `sourceLine` (`line_off`), for the kernel. */
  readonly sourceLineOffset: number;
}

/**
 * A CO-RE relocation kind, named as in libbpf's `enum bpf_core_relo_kind`
 * in camelCase (`BPF_CORE_FIELD_BYTE_OFFSET` is `"fieldByteOffset"`).
 */
export type BtfCoreReloKind =
  | "fieldByteOffset"
  | "fieldByteSize"
  | "fieldExists"
  | "fieldSigned"
  | "fieldLshiftU64"
  | "fieldRshiftU64"
  | "typeIdLocal"
  | "typeIdTarget"
  | "typeExists"
  | "typeSize"
  | "enumvalExists"
  | "enumvalValue"
  | "typeMatches";

/** A `struct bpf_core_relo` record of .BTF.ext: an instruction to adjust to the target kernel's types. */
export interface BtfCoreRelo {
  /** Byte offset of the instruction in its ELF section (a multiple of 8). */
  readonly insnOffset: number;
  /** The id of the local root type (in the object's BTF). */
  readonly typeId: number;
  /** The access string, such as `"0:1:2"` (member indexes from the root type). */
  readonly accessString: string;
  /** What to compute. */
  readonly kind: BtfCoreReloKind;
}

/** Parsed .BTF.ext: per ELF section name, function starts, source lines and CO-RE relocations. */
export interface BtfExt {
  /** func_info records by ELF section name (such as `"xdp"` or `".text"`). */
  readonly funcInfo: ReadonlyMap<string, readonly BtfFuncInfo[]>;
  /** line_info records by ELF section name. */
  readonly lineInfo: ReadonlyMap<string, readonly BtfLineInfo[]>;
  /** CO-RE relocation records by ELF section name. */
  readonly coreRelos: ReadonlyMap<string, readonly BtfCoreRelo[]>;
  /** The func_info record size in the file (at least 8), 0 when there are none. */
  readonly funcInfoRecordSize: number;
  /** The line_info record size in the file (at least 16), 0 when there are none. */
  readonly lineInfoRecordSize: number;
  /** The CO-RE relocation record size in the file (at least 16), 0 when there are none. */
  readonly coreReloRecordSize: number;
}

/** A func_info record for the kernel (`struct bpf_func_info`), see {@link encodeFuncInfo}. */
export interface FuncInfoRecord {
  /** The function's first instruction, as an index into the program's instructions. */
  readonly instruction: number;
  /** The id of the function's `BTF_KIND_FUNC` in the loaded BTF. */
  readonly typeId: number;
}

/** A line_info record for the kernel (`struct bpf_line_info`), see {@link encodeLineInfo}. */
export interface LineInfoRecord {
  /** The instruction, as an index into the program's instructions. */
  readonly instruction: number;
  /** String offset of the file name in the loaded BTF. */
  readonly fileNameOffset: number;
  /** String offset of the source line in the loaded BTF. */
  readonly sourceLineOffset: number;
  /** The 1-based line number (at most 2^22 - 1). */
  readonly line: number;
  /** The 1-based column (at most 1023). */
  readonly column: number;
}

const MAGIC = 0xeb9f;
const HEADER_MIN = 24;
const HEADER_CORE = 32;
const FUNC_INFO_MIN = 8;
const LINE_INFO_MIN = 16;
const CORE_RELO_MIN = 16;
const CORE_KINDS: readonly BtfCoreReloKind[] = [
  "fieldByteOffset",
  "fieldByteSize",
  "fieldExists",
  "fieldSigned",
  "fieldLshiftU64",
  "fieldRshiftU64",
  "typeIdLocal",
  "typeIdTarget",
  "typeExists",
  "typeSize",
  "enumvalExists",
  "enumvalValue",
  "typeMatches",
];

function fail(offset: number, detail: string): never {
  throw new BtfSyntaxError(".BTF.ext", offset, detail);
}

interface InfoSection {
  readonly name: string;
  /** Offset of the first record. */
  readonly start: number;
  readonly count: number;
}

/** Walks one info block (`record_size` then `btf_ext_info_sec`s) and returns its sections. */
function infoSections(
  dv: DataView,
  start: number,
  length: number,
  what: string,
  minRecord: number,
  btf: Btf,
): { recordSize: number; sections: InfoSection[] } {
  if (length === 0) return { recordSize: 0, sections: [] };
  if (length < 4) fail(start, `${what} block of ${length} bytes has no record size`);
  const end = start + length;
  const recordSize = dv.getUint32(start, true);
  if (recordSize < minRecord || recordSize % 4 !== 0) {
    fail(start, `${what} record size ${recordSize} is invalid, expected a multiple of 4 of at least ${minRecord}`);
  }
  const sections: InfoSection[] = [];
  let off = start + 4;
  // Bounded: every iteration consumes at least 8 + recordSize bytes.
  while (off < end) {
    if (end - off < 8) fail(off, `truncated ${what} section header: ${end - off} bytes left, expected 8`);
    const nameOff = dv.getUint32(off, true);
    const count = dv.getUint32(off + 4, true);
    const name = btf.stringAt(nameOff);
    if (name === undefined) fail(off, `${what} section name offset ${nameOff} is outside the BTF string table`);
    if (count === 0) fail(off + 4, `${what} section ${JSON.stringify(name)} has no records`);
    const avail = end - off - 8;
    if (count > Math.floor(avail / recordSize)) {
      fail(
        off + 4,
        `${what} section ${JSON.stringify(name)} has ${count} records of ${recordSize} bytes, but only ${avail} bytes are left`,
      );
    }
    sections.push({ name, start: off + 8, count });
    off += 8 + count * recordSize;
  }
  return { recordSize, sections };
}

function insnOffset(dv: DataView, at: number, what: string): number {
  const v = dv.getUint32(at, true);
  if (v % 8 !== 0) fail(at, `${what} instruction offset ${v} is not a multiple of 8`);
  return v;
}

function push<T>(map: Map<string, T[]>, key: string, items: T[]): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, items);
  else list.push(...items);
}

/**
 * Parses .BTF.ext: func_info, line_info and CO-RE relocation records,
 * grouped by the ELF section they describe, with names and source text
 * looked up in the object's BTF.
 *
 * @param bytes The `.BTF.ext` section's bytes.
 * @param btf The object's parsed `.BTF` (string offsets and type ids refer to it).
 * @returns The records by section name.
 * @throws {BtfSyntaxError} When the bytes are truncated or malformed (bad header, record size, string offset, type id or relocation kind); `offset` says where.
 * @example An empty .BTF.ext
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildBtf, parseBtfExt } from "@dp/core/internal";
 *
 * const header = new Uint8Array([0x9f, 0xeb, 1, 0, 24, 0, 0, 0, ...new Array<number>(16).fill(0)]);
 * const ext = parseBtfExt(header, buildBtf([]));
 * assert.equal(ext.funcInfo.size, 0);
 * assert.equal(ext.coreRelos.size, 0);
 * ```
 */
export function parseBtfExt(bytes: Uint8Array, btf: Btf): BtfExt {
  if (!(bytes instanceof Uint8Array)) throw new TypeError("Invalid .BTF.ext: bytes must be a Uint8Array");
  if (bytes.length < HEADER_MIN)
    fail(bytes.length, `truncated header: ${bytes.length} bytes, expected at least ${HEADER_MIN}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = dv.getUint16(0, true);
  if (magic === 0x9feb) fail(0, "big-endian .BTF.ext is not supported");
  if (magic !== MAGIC) fail(0, `bad magic 0x${magic.toString(16).padStart(4, "0")}, expected 0xeb9f`);
  if (bytes[2] !== 1) fail(2, `unsupported version ${bytes[2]}, expected 1`);
  const hdrLen = dv.getUint32(4, true);
  if (hdrLen < HEADER_MIN || hdrLen > bytes.length)
    fail(4, `header length ${hdrLen} is outside [${HEADER_MIN}, ${bytes.length}]`);
  const avail = bytes.length - hdrLen;
  const block = (at: number, what: string): { start: number; length: number } => {
    const off = dv.getUint32(at, true);
    const len = dv.getUint32(at + 4, true);
    if (len === 0) return { start: hdrLen, length: 0 };
    if (off % 4 !== 0) fail(at, `${what} offset ${off} is not 4-byte aligned`);
    if (off > avail || len > avail - off)
      fail(at, `${what} block [${off}, +${len}) is outside the ${avail} bytes after the header`);
    return { start: hdrLen + off, length: len };
  };
  const fb = block(8, "func_info");
  const lb = block(16, "line_info");
  const cb = hdrLen >= HEADER_CORE ? block(24, "core_relo") : { start: hdrLen, length: 0 };

  const funcInfo = new Map<string, BtfFuncInfo[]>();
  const fs = infoSections(dv, fb.start, fb.length, "func_info", FUNC_INFO_MIN, btf);
  for (const sec of fs.sections) {
    const list: BtfFuncInfo[] = [];
    for (let i = 0, p = sec.start; i < sec.count; i++, p += fs.recordSize) {
      const typeId = dv.getUint32(p + 4, true);
      const t = btf.typeById(typeId);
      if (t === undefined || t.kind !== "func") {
        fail(p + 4, `func_info type ${typeId} is ${t === undefined ? "missing" : `a ${t.kind}`}, expected a func`);
      }
      list.push({ insnOffset: insnOffset(dv, p, "func_info"), typeId, name: t.name });
    }
    push(funcInfo, sec.name, list);
  }

  const lineInfo = new Map<string, BtfLineInfo[]>();
  const ls = infoSections(dv, lb.start, lb.length, "line_info", LINE_INFO_MIN, btf);
  for (const sec of ls.sections) {
    const list: BtfLineInfo[] = [];
    for (let i = 0, p = sec.start; i < sec.count; i++, p += ls.recordSize) {
      const fileNameOffset = dv.getUint32(p + 4, true);
      const sourceLineOffset = dv.getUint32(p + 8, true);
      const lineCol = dv.getUint32(p + 12, true);
      const fileName = btf.stringAt(fileNameOffset);
      if (fileName === undefined)
        fail(p + 4, `line_info file name offset ${fileNameOffset} is outside the BTF string table`);
      const sourceLine = btf.stringAt(sourceLineOffset);
      if (sourceLine === undefined)
        fail(p + 8, `line_info line offset ${sourceLineOffset} is outside the BTF string table`);
      list.push({
        insnOffset: insnOffset(dv, p, "line_info"),
        fileName,
        sourceLine,
        line: lineCol >>> 10,
        column: lineCol & 0x3ff,
        fileNameOffset,
        sourceLineOffset,
      });
    }
    push(lineInfo, sec.name, list);
  }

  const coreRelos = new Map<string, BtfCoreRelo[]>();
  const cs = infoSections(dv, cb.start, cb.length, "core_relo", CORE_RELO_MIN, btf);
  for (const sec of cs.sections) {
    const list: BtfCoreRelo[] = [];
    for (let i = 0, p = sec.start; i < sec.count; i++, p += cs.recordSize) {
      const typeId = dv.getUint32(p + 4, true);
      if (btf.typeById(typeId) === undefined) fail(p + 4, `core_relo type ${typeId} is missing from the BTF`);
      const accessOffset = dv.getUint32(p + 8, true);
      const accessString = btf.stringAt(accessOffset);
      if (accessString === undefined)
        fail(p + 8, `core_relo access string offset ${accessOffset} is outside the BTF string table`);
      const k = dv.getUint32(p + 12, true);
      const kind = CORE_KINDS[k];
      if (kind === undefined) fail(p + 12, `core_relo kind ${k} is unknown, expected 0 to ${CORE_KINDS.length - 1}`);
      list.push({ insnOffset: insnOffset(dv, p, "core_relo"), typeId, accessString, kind });
    }
    push(coreRelos, sec.name, list);
  }

  return {
    funcInfo,
    lineInfo,
    coreRelos,
    funcInfoRecordSize: fs.recordSize,
    lineInfoRecordSize: ls.recordSize,
    coreReloRecordSize: cs.recordSize,
  };
}

function checkU32(what: string, i: number, v: number): void {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff_ffff)
    throw new RangeError(`Invalid ${what} record ${i}: ${v} is not a u32`);
}

/**
 * Encodes func_info records for BPF_PROG_LOAD (`ProgramBtf.funcInfo`, 8 bytes each).
 *
 * @param records The functions of one program, by instruction index, in ascending order.
 * @returns The records, host byte order.
 * @throws {RangeError} When a field is not a u32.
 * @example Two functions
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeFuncInfo } from "@dp/core/internal";
 *
 * const bytes = encodeFuncInfo([{ instruction: 0, typeId: 7 }, { instruction: 12, typeId: 9 }]);
 * assert.deepEqual([...bytes], [0, 0, 0, 0, 7, 0, 0, 0, 12, 0, 0, 0, 9, 0, 0, 0]);
 * ```
 */
export function encodeFuncInfo(records: readonly FuncInfoRecord[]): Uint8Array {
  const out = new Uint8Array(records.length * 8);
  const dv = new DataView(out.buffer);
  records.forEach((r, i) => {
    checkU32("func_info", i, r.instruction);
    checkU32("func_info", i, r.typeId);
    dv.setUint32(i * 8, r.instruction, true);
    dv.setUint32(i * 8 + 4, r.typeId, true);
  });
  return out;
}

/**
 * Encodes line_info records for BPF_PROG_LOAD (`ProgramBtf.lineInfo`, 16 bytes each).
 *
 * @param records The source lines of one program, by instruction index, in ascending order.
 * @returns The records, host byte order.
 * @throws {RangeError} When a field is out of range (a u32; line below 2^22; column below 1024).
 * @example One line
 * ```ts
 * import assert from "node:assert/strict";
 * import { encodeLineInfo } from "@dp/core/internal";
 *
 * const bytes = encodeLineInfo([{ instruction: 0, fileNameOffset: 10, sourceLineOffset: 40, line: 3, column: 2 }]);
 * assert.equal(new DataView(bytes.buffer).getUint32(12, true), (3 << 10) | 2);
 * ```
 */
export function encodeLineInfo(records: readonly LineInfoRecord[]): Uint8Array {
  const out = new Uint8Array(records.length * 16);
  const dv = new DataView(out.buffer);
  records.forEach((r, i) => {
    checkU32("line_info", i, r.instruction);
    checkU32("line_info", i, r.fileNameOffset);
    checkU32("line_info", i, r.sourceLineOffset);
    if (!Number.isInteger(r.line) || r.line < 0 || r.line >= 1 << 22) {
      throw new RangeError(`Invalid line_info record ${i}: line ${r.line} is outside [0, 4194303]`);
    }
    if (!Number.isInteger(r.column) || r.column < 0 || r.column > 0x3ff) {
      throw new RangeError(`Invalid line_info record ${i}: column ${r.column} is outside [0, 1023]`);
    }
    const p = i * 16;
    dv.setUint32(p, r.instruction, true);
    dv.setUint32(p + 4, r.fileNameOffset, true);
    dv.setUint32(p + 8, r.sourceLineOffset, true);
    dv.setUint32(p + 12, ((r.line << 10) | r.column) >>> 0, true);
  });
  return out;
}
