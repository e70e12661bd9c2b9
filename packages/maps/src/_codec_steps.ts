// The machinery behind the struct codecs of codec.ts: leaf operations (one
// C scalar, address or string at an offset), the flat step lists that
// structs and arrays compile to, and two ways to run a step list: straight-
// line functions generated from it (the fast path: every property access
// is monomorphic), or an interpreter for very long layouts and where code
// generation from strings is disabled.
import { formatIpv6, parseIpv4Into, parseIpv6Into, parseMacInto } from "@dp/core/internal";

/** The codec shape steps call into (`Codec<unknown>` of codec.ts fits). */
export interface AnyCodec {
  readonly name: string;
  encode(value: unknown, view: DataView, offset: number, path?: string): void;
  decode(view: DataView, offset: number): unknown;
}

// --- operations ---------------------------------------------------------------

export const OP_U8 = 0;
export const OP_I8 = 1;
export const OP_U16 = 2;
export const OP_I16 = 3;
export const OP_U32 = 4;
export const OP_I32 = 5;
export const OP_U64 = 6;
export const OP_I64 = 7;
export const OP_BE16 = 8;
export const OP_BE32 = 9;
export const OP_BE64 = 10;
export const OP_BOOL = 11;
export const OP_F32 = 12;
export const OP_F64 = 13;
export const OP_BYTES = 14;
export const OP_CSTRING = 15;
export const OP_IPV4 = 16;
export const OP_IPV6 = 17;
export const OP_MAC = 18;
/** Any other codec: call its encode/decode. */
export const OP_CUSTOM = 19;
/** A nested struct: steps up to `end` work on `value[key]`. */
export const OP_OBJECT = 20;
/** A nested array of non-leaf elements: steps up to `end` work on `value[key]`. */
export const OP_ARRAY = 21;
/** An array of `n` leaves (operation `elem`, `size` bytes each, `stride` apart). */
export const OP_LEAVES = 22;
/** `n` zero bytes of padding (encode only). */
export const OP_PAD = 23;

/** Host byte order: map keys and values use it. */
const LITTLE: boolean = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

const U64_MAX = 0xffff_ffff_ffff_ffffn;
const I64_MIN = -0x8000_0000_0000_0000n;
const I64_MAX = 0x7fff_ffff_ffff_ffffn;

const ENCODER = new TextEncoder();
const DECODER = new TextDecoder();
const HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
/** Scratch for parsed addresses: validated before anything is written. */
const SCRATCH = new Uint8Array(16);

/** One step of a compiled layout. Every step has the same shape (one hidden class). */
export interface Step {
  readonly op: number;
  /** From the start of the outermost codec. */
  readonly offset: number;
  /** The property of the current value (a field name or an array index). */
  readonly key: string | number;
  /** Byte length (bytes, cstring, pad) or element count (arrays). */
  readonly n: number;
  /** `OP_LEAVES`: the element operation and byte length. */
  readonly elem: number;
  readonly size: number;
  readonly stride: number;
  /** `OP_OBJECT`/`OP_ARRAY`: one past the last nested step. */
  end: number;
  /** `OP_CUSTOM`: the codec and its index in the path table. */
  readonly codec: AnyCodec | undefined;
  readonly custom: number;
  /** The path from the outermost value, for errors: `".flags[2]"`. */
  readonly path: string;
  /** The codec name (the element's for arrays of leaves), for errors. */
  readonly name: string;
}

/** A struct value or an array value, indexed by a step's `key`. */
export type Container = Record<string | number, unknown>;

/** The fields of a {@link Step} to set; the others default to 0, `""` or `undefined`. */
export interface StepInit {
  op: number;
  offset: number;
  key?: string | number;
  n?: number;
  elem?: number;
  size?: number;
  stride?: number;
  codec?: AnyCodec;
  custom?: number;
  path?: string;
  name?: string;
}

/** Makes a step with every field present, so all steps share one shape. */
export function makeStep(s: StepInit): Step {
  return {
    op: s.op,
    offset: s.offset,
    key: s.key ?? "",
    n: s.n ?? 0,
    elem: s.elem ?? 0,
    size: s.size ?? 0,
    stride: s.stride ?? 0,
    end: 0,
    codec: s.codec,
    custom: s.custom ?? -1,
    path: s.path ?? "",
    name: s.name ?? "",
  };
}

// --- errors -------------------------------------------------------------------

/** A short description of a value for error messages. */
export function describe(v: unknown): string {
  switch (typeof v) {
    case "string":
      return `string ${JSON.stringify(v.length > 48 ? `${v.slice(0, 48)}…` : v)}`;
    case "number":
      return `number ${v}`;
    case "bigint":
      return `bigint ${v}n`;
    case "boolean":
      return `boolean ${v}`;
    case "undefined":
      return "undefined";
    case "object":
      if (v === null) return "null";
      if (Array.isArray(v)) return `an array of ${v.length}`;
      if (v instanceof Uint8Array) return `a Uint8Array of ${v.length} bytes`;
      return "an object";
    default:
      return typeof v;
  }
}

function where(path: string, s: Step, index: number): string {
  return index < 0 ? `${path}${s.path}` : `${path}${s.path}[${index}]`;
}

function typeError(path: string, s: Step, index: number, expected: string, v: unknown): TypeError {
  return new TypeError(
    `Invalid value for ${where(path, s, index)} (${s.name}): expected ${expected}, got ${describe(v)}`,
  );
}

function rangeError(path: string, s: Step, index: number, detail: string): RangeError {
  return new RangeError(`Invalid value for ${where(path, s, index)} (${s.name}): ${detail}`);
}

function outside(
  path: string,
  s: Step,
  index: number,
  v: number | bigint,
  lo: number | bigint,
  hi: number | bigint,
): RangeError {
  const detail =
    typeof v === "number" && !Number.isInteger(v) ? `${v} is not an integer` : `${v} is outside ${lo}..${hi}`;
  return rangeError(path, s, index, detail);
}

/** Throws a RangeError when `c` does not fit in `view` at `offset`. */
export function checkBounds(
  what: string,
  c: { readonly name: string; readonly size: number },
  view: DataView,
  offset: number,
): void {
  if (!(offset >= 0 && offset + c.size <= view.byteLength) || !Number.isInteger(offset)) {
    throw new RangeError(
      `Cannot ${what} ${c.name} at offset ${offset}: the view has ${view.byteLength} bytes and ${c.name} needs ${c.size}`,
    );
  }
}

// --- leaves -------------------------------------------------------------------

/** Writes `n` zero bytes. */
export function zero(view: DataView, offset: number, n: number): void {
  for (let i = 0; i < n; i++) view.setUint8(offset + i, 0);
}

/**
 * Validates and writes one leaf value; errors name `path` + the step's path
 * (+ `[index]` for an element of an array of leaves).
 */
export function writeLeaf(
  view: DataView,
  off: number,
  op: number,
  n: number,
  v: unknown,
  path: string,
  s: Step,
  index: number,
): void {
  switch (op) {
    case OP_U8:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      if ((v & 0xff) !== v) throw outside(path, s, index, v, 0, 255);
      view.setUint8(off, v);
      return;
    case OP_I8:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      if ((v << 24) >> 24 !== v) throw outside(path, s, index, v, -128, 127);
      view.setInt8(off, v);
      return;
    case OP_U16:
    case OP_BE16:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      if ((v & 0xffff) !== v) throw outside(path, s, index, v, 0, 65535);
      view.setUint16(off, v, op === OP_U16 && LITTLE);
      return;
    case OP_I16:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      if ((v << 16) >> 16 !== v) throw outside(path, s, index, v, -32768, 32767);
      view.setInt16(off, v, LITTLE);
      return;
    case OP_U32:
    case OP_BE32:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      if (v >>> 0 !== v) throw outside(path, s, index, v, 0, 4294967295);
      view.setUint32(off, v, op === OP_U32 && LITTLE);
      return;
    case OP_I32:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      if ((v | 0) !== v) throw outside(path, s, index, v, -2147483648, 2147483647);
      view.setInt32(off, v, LITTLE);
      return;
    case OP_U64:
    case OP_BE64:
      if (typeof v !== "bigint") throw typeError(path, s, index, "a bigint", v);
      if (v < 0n || v > U64_MAX) throw outside(path, s, index, v, 0n, U64_MAX);
      view.setBigUint64(off, v, op === OP_U64 && LITTLE);
      return;
    case OP_I64:
      if (typeof v !== "bigint") throw typeError(path, s, index, "a bigint", v);
      if (v < I64_MIN || v > I64_MAX) throw outside(path, s, index, v, I64_MIN, I64_MAX);
      view.setBigInt64(off, v, LITTLE);
      return;
    case OP_BOOL:
      if (typeof v !== "boolean") throw typeError(path, s, index, "a boolean", v);
      view.setUint8(off, v ? 1 : 0);
      return;
    case OP_F32:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      view.setFloat32(off, v, LITTLE);
      return;
    case OP_F64:
      if (typeof v !== "number") throw typeError(path, s, index, "a number", v);
      view.setFloat64(off, v, LITTLE);
      return;
    case OP_BYTES:
      if (!(v instanceof Uint8Array)) throw typeError(path, s, index, "a Uint8Array", v);
      if (v.length !== n) throw rangeError(path, s, index, `expected ${n} bytes, got ${v.length}`);
      if (n <= 64) {
        for (let i = 0; i < n; i++) view.setUint8(off + i, v[i] as number);
      } else {
        new Uint8Array(view.buffer, view.byteOffset + off, n).set(v);
      }
      return;
    case OP_CSTRING:
      if (typeof v !== "string") throw typeError(path, s, index, "a string", v);
      writeCString(view, off, n, v, path, s, index);
      return;
    case OP_IPV4:
      if (typeof v !== "string") throw typeError(path, s, index, "an IPv4 address string", v);
      if (!parseIpv4Into(v, 0, v.length, SCRATCH, 0))
        throw typeError(path, s, index, 'an IPv4 address like "10.0.0.1"', v);
      for (let i = 0; i < 4; i++) view.setUint8(off + i, SCRATCH[i] as number);
      return;
    case OP_IPV6:
      if (typeof v !== "string") throw typeError(path, s, index, "an IPv6 address string", v);
      if (!parseIpv6Into(v, SCRATCH)) throw typeError(path, s, index, 'an IPv6 address like "fd00::1"', v);
      for (let i = 0; i < 16; i++) view.setUint8(off + i, SCRATCH[i] as number);
      return;
    case OP_MAC:
      if (typeof v !== "string") throw typeError(path, s, index, "a MAC address string", v);
      if (!parseMacInto(v, SCRATCH)) throw typeError(path, s, index, 'a MAC address like "02:00:00:aa:bb:cc"', v);
      for (let i = 0; i < 6; i++) view.setUint8(off + i, SCRATCH[i] as number);
      return;
    default:
      throw new Error(`Cannot encode operation ${op}: unknown`);
  }
}

/** Reads one leaf value. */
export function readLeaf(view: DataView, off: number, op: number, n: number): unknown {
  switch (op) {
    case OP_U8:
      return view.getUint8(off);
    case OP_I8:
      return view.getInt8(off);
    case OP_U16:
      return view.getUint16(off, LITTLE);
    case OP_I16:
      return view.getInt16(off, LITTLE);
    case OP_U32:
      return view.getUint32(off, LITTLE);
    case OP_I32:
      return view.getInt32(off, LITTLE);
    case OP_U64:
      return view.getBigUint64(off, LITTLE);
    case OP_I64:
      return view.getBigInt64(off, LITTLE);
    case OP_BE16:
      return view.getUint16(off, false);
    case OP_BE32:
      return view.getUint32(off, false);
    case OP_BE64:
      return view.getBigUint64(off, false);
    case OP_BOOL:
      return view.getUint8(off) !== 0;
    case OP_F32:
      return view.getFloat32(off, LITTLE);
    case OP_F64:
      return view.getFloat64(off, LITTLE);
    case OP_BYTES: {
      const out = new Uint8Array(n);
      if (n <= 64) {
        for (let i = 0; i < n; i++) out[i] = view.getUint8(off + i);
      } else {
        out.set(new Uint8Array(view.buffer, view.byteOffset + off, n));
      }
      return out;
    }
    case OP_CSTRING:
      return readCString(view, off, n);
    case OP_IPV4:
      return `${view.getUint8(off)}.${view.getUint8(off + 1)}.${view.getUint8(off + 2)}.${view.getUint8(off + 3)}`;
    case OP_IPV6:
      return formatIpv6(view, off);
    case OP_MAC:
      return `${HEX[view.getUint8(off)]}:${HEX[view.getUint8(off + 1)]}:${HEX[view.getUint8(off + 2)]}:${HEX[view.getUint8(off + 3)]}:${HEX[view.getUint8(off + 4)]}:${HEX[view.getUint8(off + 5)]}`;
    default:
      throw new Error(`Cannot decode operation ${op}: unknown`);
  }
}

function writeCString(view: DataView, off: number, n: number, v: string, path: string, s: Step, index: number): void {
  // UTF-8 never takes fewer bytes than UTF-16 code units.
  if (v.length > n - 1)
    throw rangeError(
      path,
      s,
      index,
      `${JSON.stringify(v)} is longer than ${n - 1} bytes (room for the NUL terminator)`,
    );
  let len = 0;
  for (; len < v.length; len++) {
    const c = v.charCodeAt(len);
    if (c === 0 || c >= 0x80) break;
    view.setUint8(off + len, c);
  }
  if (len < v.length) {
    const bytes = ENCODER.encode(v);
    if (bytes.length > n - 1) {
      throw rangeError(
        path,
        s,
        index,
        `${JSON.stringify(v)} is ${bytes.length} bytes in UTF-8; at most ${n - 1} fit (room for the NUL terminator)`,
      );
    }
    if (bytes.includes(0)) throw rangeError(path, s, index, `${JSON.stringify(v)} contains a NUL character`);
    for (let i = len; i < bytes.length; i++) view.setUint8(off + i, bytes[i] as number);
    len = bytes.length;
  }
  zero(view, off + len, n - len);
}

function readCString(view: DataView, off: number, n: number): string {
  let end = 0;
  let ascii = true;
  let text = "";
  for (; end < n; end++) {
    const c = view.getUint8(off + end);
    if (c === 0) break;
    if (c >= 0x80) ascii = false;
    else if (ascii) text += String.fromCharCode(c);
  }
  return ascii ? text : DECODER.decode(new Uint8Array(view.buffer, view.byteOffset + off, end));
}

// --- step interpreter -----------------------------------------------------------

function encodeSteps(
  steps: readonly Step[],
  from: number,
  to: number,
  cur: Container,
  view: DataView,
  base: number,
  path: string,
  paths: readonly string[],
): void {
  for (let i = from; i < to; i++) {
    const s = steps[i] as Step;
    const off = base + s.offset;
    switch (s.op) {
      case OP_PAD:
        zero(view, off, s.n);
        break;
      case OP_OBJECT: {
        const v = cur[s.key];
        if (typeof v !== "object" || v === null) throw typeError(path, s, -1, "an object", v);
        encodeSteps(steps, i + 1, s.end, v as Container, view, base, path, paths);
        i = s.end - 1;
        break;
      }
      case OP_ARRAY: {
        const v = cur[s.key];
        if (!Array.isArray(v)) throw typeError(path, s, -1, `an array of ${s.n}`, v);
        if (v.length !== s.n) throw rangeError(path, s, -1, `expected ${s.n} elements, got ${v.length}`);
        encodeSteps(steps, i + 1, s.end, v as unknown as Container, view, base, path, paths);
        i = s.end - 1;
        break;
      }
      case OP_LEAVES: {
        const v = cur[s.key];
        if (!Array.isArray(v)) throw typeError(path, s, -1, `an array of ${s.n}`, v);
        if (v.length !== s.n) throw rangeError(path, s, -1, `expected ${s.n} elements, got ${v.length}`);
        for (let j = 0; j < s.n; j++) writeLeaf(view, off + j * s.stride, s.elem, s.size, v[j], path, s, j);
        break;
      }
      case OP_CUSTOM:
        (s.codec as AnyCodec).encode(cur[s.key], view, off, paths[s.custom]);
        break;
      default:
        writeLeaf(view, off, s.op, s.n, cur[s.key], path, s, -1);
    }
  }
}

function decodeSteps(
  steps: readonly Step[],
  from: number,
  to: number,
  cur: Container,
  view: DataView,
  base: number,
): void {
  for (let i = from; i < to; i++) {
    const s = steps[i] as Step;
    const off = base + s.offset;
    switch (s.op) {
      case OP_OBJECT: {
        const o: Container = {};
        cur[s.key] = o;
        decodeSteps(steps, i + 1, s.end, o, view, base);
        i = s.end - 1;
        break;
      }
      case OP_ARRAY: {
        const a: unknown[] = [];
        cur[s.key] = a;
        decodeSteps(steps, i + 1, s.end, a as unknown as Container, view, base);
        i = s.end - 1;
        break;
      }
      case OP_LEAVES: {
        const a: unknown[] = [];
        for (let j = 0; j < s.n; j++) a.push(readLeaf(view, off + j * s.stride, s.elem, s.size));
        cur[s.key] = a;
        break;
      }
      case OP_CUSTOM:
        cur[s.key] = (s.codec as AnyCodec).decode(view, off);
        break;
      default:
        cur[s.key] = readLeaf(view, off, s.op, s.n);
    }
  }
}

// --- compiled layouts -------------------------------------------------------------

/** A step list made runnable: writes or reads the whole value at `base`. */
export interface Layout {
  /** Encodes `value` (already checked to be an object or an array of the right length). */
  encode(value: Container, view: DataView, base: number, path: string, paths: readonly string[]): void;
  /** Decodes a new object or array. */
  decode(view: DataView, base: number): Container;
}

/** Throws the error for a nested value that is not the object or array its step needs. */
function failContainer(path: string, s: Step, v: unknown): never {
  if (s.op === OP_OBJECT) throw typeError(path, s, -1, "an object", v);
  if (!Array.isArray(v)) throw typeError(path, s, -1, `an array of ${s.n}`, v);
  throw rangeError(path, s, -1, `expected ${s.n} elements, got ${v.length}`);
}

let generate = true;

/**
 * Layouts with more steps than this (large arrays of structs) are
 * interpreted: V8 does not optimize very long functions.
 */
const MAX_GENERATED_STEPS = 1000;

/**
 * Turns generating code for layouts on or off (for tests of the
 * interpreter); codecs defined afterwards use the setting.
 *
 * @param on Whether to generate code.
 * @returns The previous setting.
 */
export function setCodeGeneration(on: boolean): boolean {
  const was = generate;
  generate = on;
  return was;
}

/**
 * Makes a layout runnable: as generated straight-line functions, or as the
 * step interpreter when code generation from strings is disabled
 * (`--disallow-code-generation-from-strings`) or the layout is very long.
 *
 * @param encode The encode steps (with padding).
 * @param decode The decode steps.
 * @param array Whether the value itself is an array (else an object).
 * @returns The layout.
 */
export function compileLayout(encode: readonly Step[], decode: readonly Step[], array: boolean): Layout {
  if (generate && encode.length <= MAX_GENERATED_STEPS) {
    try {
      return generateLayout(encode, decode, array);
    } catch (e) {
      if (!(e instanceof EvalError)) throw e;
      generate = false;
    }
  }
  return {
    encode(value, view, base, path, paths) {
      encodeSteps(encode, 0, encode.length, value, view, base, path, paths);
    },
    decode(view, base) {
      const out: Container = array ? ([] as unknown as Container) : {};
      decodeSteps(decode, 0, decode.length, out, view, base);
      return out;
    },
  };
}

// The generated code reads the steps and helpers it needs from these
// arguments; everything it embeds as text is a number or a JSON string.
const HELPERS = ["S", "W", "R", "F"] as const;

function key(k: string | number): string {
  return typeof k === "number" ? String(k) : JSON.stringify(k);
}

/** The DataView method suffix and endianness of a fixed-size scalar operation, or undefined for the others. */
function scalar(op: number): [string, string] | undefined {
  const le = String(LITTLE);
  switch (op) {
    case OP_U8:
      return ["Uint8", ""];
    case OP_I8:
      return ["Int8", ""];
    case OP_U16:
      return ["Uint16", le];
    case OP_I16:
      return ["Int16", le];
    case OP_U32:
      return ["Uint32", le];
    case OP_I32:
      return ["Int32", le];
    case OP_U64:
      return ["BigUint64", le];
    case OP_I64:
      return ["BigInt64", le];
    case OP_BE16:
      return ["Uint16", "false"];
    case OP_BE32:
      return ["Uint32", "false"];
    case OP_BE64:
      return ["BigUint64", "false"];
    case OP_F32:
      return ["Float32", le];
    case OP_F64:
      return ["Float64", le];
    default:
      return undefined;
  }
}

/** A JS condition that is true when `v` is not a valid value for a scalar operation. */
function invalid(op: number, v: string): string {
  switch (op) {
    case OP_U8:
      return `typeof ${v} !== "number" || (${v} & 255) !== ${v}`;
    case OP_I8:
      return `typeof ${v} !== "number" || ((${v} << 24) >> 24) !== ${v}`;
    case OP_U16:
    case OP_BE16:
      return `typeof ${v} !== "number" || (${v} & 65535) !== ${v}`;
    case OP_I16:
      return `typeof ${v} !== "number" || ((${v} << 16) >> 16) !== ${v}`;
    case OP_U32:
    case OP_BE32:
      return `typeof ${v} !== "number" || (${v} >>> 0) !== ${v}`;
    case OP_I32:
      return `typeof ${v} !== "number" || (${v} | 0) !== ${v}`;
    case OP_U64:
    case OP_BE64:
      return `typeof ${v} !== "bigint" || ${v} < 0n || ${v} > ${U64_MAX}n`;
    case OP_I64:
      return `typeof ${v} !== "bigint" || ${v} < ${I64_MIN}n || ${v} > ${I64_MAX}n`;
    case OP_BOOL:
      return `typeof ${v} !== "boolean"`;
    default:
      return `typeof ${v} !== "number"`;
  }
}

/** Statements that validate and write `v` (an expression evaluated once into a local) with a leaf operation. */
function writeCode(op: number, n: number, at: string, v: string, step: number, index: string): string {
  const sc = scalar(op);
  if (op === OP_BOOL) {
    return `if (${invalid(op, v)}) W(view, ${at}, ${op}, ${n}, ${v}, path, S[${step}], ${index}); view.setUint8(${at}, ${v} ? 1 : 0);`;
  }
  if (sc === undefined) return `W(view, ${at}, ${op}, ${n}, ${v}, path, S[${step}], ${index});`;
  const [method, le] = sc;
  return `if (${invalid(op, v)}) W(view, ${at}, ${op}, ${n}, ${v}, path, S[${step}], ${index}); view.set${method}(${at}, ${v}${le ? `, ${le}` : ""});`;
}

/** An expression that reads a leaf. */
function readCode(op: number, n: number, at: string): string {
  if (op === OP_BOOL) return `view.getUint8(${at}) !== 0`;
  const sc = scalar(op);
  if (sc === undefined) return `R(view, ${at}, ${op}, ${n})`;
  const [method, le] = sc;
  return `view.get${method}(${at}${le ? `, ${le}` : ""})`;
}

/** Arrays of more leaves than this are read and written in a loop rather than unrolled. */
const UNROLL = 16;

function encodeCode(steps: readonly Step[], from: number, to: number, cur: string, out: string[]): void {
  for (let i = from; i < to; i++) {
    const s = steps[i] as Step;
    const at = `base + ${s.offset}`;
    const get = `${cur}[${key(s.key)}]`;
    switch (s.op) {
      case OP_PAD:
        if (s.n <= 8) for (let k = 0; k < s.n; k++) out.push(`view.setUint8(base + ${s.offset + k}, 0);`);
        else out.push(`for (let k = 0; k < ${s.n}; k++) view.setUint8(${at} + k, 0);`);
        break;
      case OP_OBJECT:
        out.push(
          `{ const c${i} = ${get};`,
          `if (typeof c${i} !== "object" || c${i} === null) F(path, S[${i}], c${i});`,
        );
        encodeCode(steps, i + 1, s.end, `c${i}`, out);
        out.push("}");
        i = s.end - 1;
        break;
      case OP_ARRAY:
        out.push(
          `{ const c${i} = ${get};`,
          `if (!Array.isArray(c${i}) || c${i}.length !== ${s.n}) F(path, S[${i}], c${i});`,
        );
        encodeCode(steps, i + 1, s.end, `c${i}`, out);
        out.push("}");
        i = s.end - 1;
        break;
      case OP_LEAVES:
        out.push(
          `{ const c${i} = ${get};`,
          `if (!Array.isArray(c${i}) || c${i}.length !== ${s.n}) F(path, S[${i}], c${i});`,
          `for (let j = 0; j < ${s.n}; j++) { const v = c${i}[j]; ${writeCode(s.elem, s.size, `${at} + j * ${s.stride}`, "v", i, "j")} }`,
          "}",
        );
        break;
      case OP_CUSTOM:
        out.push(`S[${i}].codec.encode(${get}, view, ${at}, paths[${s.custom}]);`);
        break;
      default:
        out.push(`{ const v = ${get}; ${writeCode(s.op, s.n, at, "v", i, "-1")} }`);
    }
  }
}

function decodeCode(steps: readonly Step[], from: number, to: number, array: boolean): string {
  const parts: string[] = [];
  for (let i = from; i < to; i++) {
    const s = steps[i] as Step;
    const at = `base + ${s.offset}`;
    let value: string;
    switch (s.op) {
      case OP_OBJECT:
      case OP_ARRAY:
        value = decodeCode(steps, i + 1, s.end, s.op === OP_ARRAY);
        i = s.end - 1;
        break;
      case OP_LEAVES:
        value =
          s.n <= UNROLL
            ? `[${Array.from({ length: s.n }, (_, j) => readCode(s.elem, s.size, `base + ${s.offset + j * s.stride}`)).join(", ")}]`
            : `L(view, ${at}, S[${i}])`;
        break;
      case OP_CUSTOM:
        value = `S[${i}].codec.decode(view, ${at})`;
        break;
      default:
        value = readCode(s.op, s.n, at);
    }
    parts.push(array ? value : `${key(s.key)}: ${value}`);
  }
  return array ? `[${parts.join(", ")}]` : `{ ${parts.join(", ")} }`;
}

/** Reads an array of leaves in a loop (arrays too long to unroll). */
function readLeaves(view: DataView, at: number, s: Step): unknown[] {
  const out: unknown[] = [];
  for (let j = 0; j < s.n; j++) out.push(readLeaf(view, at + j * s.stride, s.elem, s.size));
  return out;
}

function generateLayout(encode: readonly Step[], decode: readonly Step[], array: boolean): Layout {
  const enc: string[] = [];
  encodeCode(encode, 0, encode.length, "value", enc);
  const encodeFn = makeFunction(
    [...HELPERS],
    `return function encode(value, view, base, path, paths) {\n${enc.join("\n")}\n};`,
  )(encode, writeLeaf, readLeaf, failContainer) as Layout["encode"];
  const decodeFn = makeFunction(
    [...HELPERS, "L"],
    `return function decode(view, base) {\nreturn ${decodeCode(decode, 0, decode.length, array)};\n};`,
  )(decode, writeLeaf, readLeaf, failContainer, readLeaves) as Layout["decode"];
  return { encode: encodeFn, decode: decodeFn };
}

function makeFunction(params: readonly string[], body: string): (...args: unknown[]) => unknown {
  // The body embeds only numbers, JSON-quoted property names and the
  // helpers passed as arguments, so no input can inject code.
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- straight-line code is the point: monomorphic property access
  return new Function(...params, body) as (...args: unknown[]) => unknown;
}
