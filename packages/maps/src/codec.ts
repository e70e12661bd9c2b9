// Struct codecs: C layouts described in TypeScript, encoded into and
// decoded from preallocated buffers.
//
// Every codec made here is compiled once, when it is defined: a struct or an
// array becomes a flat list of steps (offset, operation, property), nested
// structs and arrays included, which _codec_steps.ts turns into straight-line
// code, so encoding and decoding allocate nothing besides the decoded value.
// Unions and codecs written by users are single "custom" steps that call the
// codec.

import {
  checkBounds,
  compileLayout,
  type Container,
  describe,
  type Layout,
  makeStep,
  OP_BE16,
  OP_BE32,
  OP_BE64,
  OP_BOOL,
  OP_BYTES,
  OP_CSTRING,
  OP_CUSTOM,
  OP_F32,
  OP_F64,
  OP_I16,
  OP_I32,
  OP_I64,
  OP_I8,
  OP_IPV4,
  OP_IPV6,
  OP_LEAVES,
  OP_MAC,
  OP_OBJECT,
  OP_ARRAY,
  OP_PAD,
  OP_U16,
  OP_U32,
  OP_U64,
  OP_U8,
  readLeaf,
  type Step,
  writeLeaf,
  zero,
} from "./_codec_steps.ts";

/**
 * Encodes and decodes one C type at an offset of a buffer. Codecs are
 * immutable and shareable; encoding writes every byte of the type
 * (padding as zeros) so a reused buffer never leaks old bytes.
 *
 * @typeParam T The TypeScript value type.
 */
export interface Codec<T> {
  /** The C name, for errors and generated code: `"u32"`, `"struct policy_key"`, `"u8[16]"`. */
  readonly name: string;
  /** `sizeof`: bytes the type occupies, padding included. */
  readonly size: number;
  /** `_Alignof`: the alignment the type needs inside a struct. */
  readonly align: number;
  /**
   * Writes a value.
   *
   * @param value The value.
   * @param view The buffer.
   * @param offset Where the type starts in `view`.
   * @param path How to name the value in errors (`"key.addr"`); defaults to {@link Codec.name}.
   * @throws {TypeError} When the value has the wrong type (the message names `path`).
   * @throws {RangeError} When the value does not fit (the message names `path`).
   */
  encode(value: T, view: DataView, offset: number, path?: string): void;
  /**
   * Reads a value.
   *
   * @param view The buffer.
   * @param offset Where the type starts in `view`.
   * @returns A new value.
   */
  decode(view: DataView, offset: number): T;
}

/**
 * The value type of a codec: `Infer<typeof PolicyKey>`.
 *
 * @typeParam C A {@link Codec}.
 */
export type Infer<C> = C extends Codec<infer T> ? T : never;

/** The members of a {@link struct} or {@link union}, in C order: property name → codec. */
export type StructFields = Readonly<Record<string, Codec<unknown>>>;

/**
 * The value type of a {@link struct} with fields `F`: one property per field.
 *
 * @typeParam F The {@link StructFields}.
 */
export type StructValue<F extends StructFields> = { -readonly [K in keyof F]: Infer<F[K]> };

/**
 * The value type of a {@link union} with members `F`: exactly one member
 * set, the others absent or `undefined`. (A decoded union carries every
 * member; the type shows the one a writer sets.)
 *
 * @typeParam F The {@link StructFields}.
 */
export type UnionValue<F extends StructFields> = {
  [K in keyof F]: { -readonly [P in keyof F as P extends K ? P : never]: Infer<F[P]> } & {
    -readonly [P in keyof F as P extends K ? never : P]?: undefined;
  } extends infer U
    ? { [P in keyof U]: U[P] }
    : never;
}[keyof F];

/** One member of a {@link StructCodec} or {@link UnionCodec}. */
export interface StructField {
  /** The property name. */
  readonly name: string;
  /** The byte offset from the start of the struct (0 in a union). */
  readonly offset: number;
  /** The member's codec. */
  readonly codec: Codec<unknown>;
}

/**
 * A {@link Codec} for a C struct, made by {@link struct}.
 *
 * @typeParam T The value type.
 */
export interface StructCodec<T> extends Codec<T> {
  /** The fields in C order with their offsets. */
  readonly fields: readonly StructField[];
  /**
   * Returns a field's offset: C `offsetof`.
   *
   * @param name The field.
   * @returns The byte offset from the start of the struct.
   * @throws {TypeError} When the struct has no such field.
   */
  offsetOf(name: keyof T & string): number;
}

/**
 * A {@link Codec} for a C union, made by {@link union}.
 *
 * @typeParam T The value type.
 */
export interface UnionCodec<T> extends Codec<T> {
  /** The members (all at offset 0). */
  readonly fields: readonly StructField[];
}

/**
 * A {@link Codec} for a fixed-length C array, made by {@link array}.
 *
 * @typeParam T The element value type.
 */
export interface ArrayCodec<T> extends Codec<T[]> {
  /** The element codec. */
  readonly element: Codec<T>;
  /** The number of elements. */
  readonly length: number;
}

/**
 * Options for {@link struct}.
 *
 * @typeParam F The {@link StructFields}.
 */
export interface StructOptions<F extends StructFields> {
  /**
   * The C name, used as {@link Codec.name} in errors: `"struct policy_key"`.
   *
   * @default "struct"
   */
  readonly name?: string;
  /**
   * The expected `sizeof`. Without `offsets` it must equal the computed
   * size; with `offsets` it may add trailing bytes (the size is then this
   * value).
   *
   * @default the computed size
   */
  readonly size?: number;
  /**
   * `__attribute__((packed))`: no padding, alignment 1.
   *
   * @default false
   */
  readonly packed?: boolean;
  /**
   * Explicit offsets for some fields (from BTF, or for layouts C attributes
   * make); the fields after a pinned one continue from it. Fields may not
   * overlap or go backwards.
   *
   * @default natural C offsets
   */
  readonly offsets?: { readonly [K in keyof F]?: number };
}

/** Options for {@link union}. */
export interface UnionOptions {
  /**
   * The C name, used as {@link Codec.name} in errors: `"union v6addr"`.
   *
   * @default "union"
   */
  readonly name?: string;
  /**
   * The expected `sizeof`, checked against the computed one.
   *
   * @default the computed size
   */
  readonly size?: number;
}

// --- compiling layouts --------------------------------------------------------

type Plan =
  | { readonly kind: "leaf"; readonly op: number; readonly n: number }
  | {
      readonly kind: "struct";
      readonly fields: readonly StructField[];
      readonly pads: readonly (readonly [number, number])[];
    }
  | { readonly kind: "array"; readonly element: Codec<unknown>; readonly length: number };

/** How the codecs made here are laid out, for flattening them into their parents. */
const PLANS = new WeakMap<Codec<unknown>, Plan>();

interface Program {
  readonly encode: Step[];
  readonly decode: Step[];
  /** The path suffixes of the custom steps, by `Step.custom`. */
  readonly customPaths: string[];
}

/** Appends the steps that encode and decode `codec` at `offset` as property `key` of the current value. */
function emit(p: Program, codec: Codec<unknown>, offset: number, key: string | number, path: string): void {
  const plan = PLANS.get(codec);
  if (plan === undefined) {
    const s = makeStep({ op: OP_CUSTOM, offset, key, codec, custom: p.customPaths.length, path, name: codec.name });
    p.customPaths.push(path);
    p.encode.push(s);
    p.decode.push(s);
    return;
  }
  switch (plan.kind) {
    case "leaf": {
      const s = makeStep({ op: plan.op, offset, key, n: plan.n, path, name: codec.name });
      p.encode.push(s);
      p.decode.push(s);
      return;
    }
    case "struct": {
      // Padding makes the encode list longer: each list gets its own step with its own `end`.
      const s = makeStep({ op: OP_OBJECT, offset, key, path, name: codec.name });
      const d = { ...s };
      p.encode.push(s);
      p.decode.push(d);
      emitContents(p, codec, offset, path);
      s.end = p.encode.length;
      d.end = p.decode.length;
      return;
    }
    case "array": {
      const ep = PLANS.get(plan.element);
      if (ep?.kind === "leaf") {
        const s = makeStep({
          op: OP_LEAVES,
          offset,
          key,
          n: plan.length,
          elem: ep.op,
          size: ep.n,
          stride: plan.element.size,
          path,
          name: plan.element.name,
        });
        p.encode.push(s);
        p.decode.push(s);
        return;
      }
      const s = makeStep({ op: OP_ARRAY, offset, key, n: plan.length, path, name: codec.name });
      const d = { ...s };
      p.encode.push(s);
      p.decode.push(d);
      emitContents(p, codec, offset, path);
      s.end = p.encode.length;
      d.end = p.decode.length;
      return;
    }
  }
}

/** Appends the steps for the members of a struct or the elements of an array (the value itself is the current one). */
function emitContents(p: Program, codec: Codec<unknown>, offset: number, path: string): void {
  const plan = PLANS.get(codec);
  if (plan?.kind === "struct") {
    let pad = 0;
    for (const f of plan.fields) {
      for (; pad < plan.pads.length && (plan.pads[pad] as readonly [number, number])[0] < f.offset; pad++) {
        const [at, n] = plan.pads[pad] as readonly [number, number];
        p.encode.push(makeStep({ op: OP_PAD, offset: offset + at, n }));
      }
      emit(p, f.codec, offset + f.offset, f.name, `${path}.${f.name}`);
    }
    for (; pad < plan.pads.length; pad++) {
      const [at, n] = plan.pads[pad] as readonly [number, number];
      p.encode.push(makeStep({ op: OP_PAD, offset: offset + at, n }));
    }
  } else if (plan?.kind === "array") {
    for (let j = 0; j < plan.length; j++) emit(p, plan.element, offset + j * plan.element.size, j, `${path}[${j}]`);
  }
}

/** The full paths of a program's custom steps for one root path, cached for the last root. */
class CustomPaths {
  readonly #suffixes: readonly string[];
  #root: string | undefined;
  #paths: readonly string[] = [];

  constructor(suffixes: readonly string[]) {
    this.#suffixes = suffixes;
  }

  for(root: string): readonly string[] {
    if (root !== this.#root) {
      this.#paths = this.#suffixes.map((s) => root + s);
      this.#root = root;
    }
    return this.#paths;
  }
}

function roundUp(n: number, align: number): number {
  return Math.ceil(n / align) * align;
}

function checkCodec(owner: string, field: string, c: unknown): Codec<unknown> {
  const x = c as Partial<Codec<unknown>> | null | undefined;
  if (
    typeof x !== "object" ||
    x === null ||
    typeof x.encode !== "function" ||
    typeof x.decode !== "function" ||
    typeof x.name !== "string" ||
    !Number.isInteger(x.size) ||
    (x.size as number) < 0 ||
    !Number.isInteger(x.align) ||
    (x.align as number) < 1 ||
    ((x.align as number) & ((x.align as number) - 1)) !== 0
  ) {
    throw new TypeError(
      `Invalid ${owner}: ${field} is not a codec (expected name, size, a power-of-two align, encode and decode)`,
    );
  }
  return x as Codec<unknown>;
}

/** Property names that JS keeps in insertion order and C can spell. */
const FIELD_NAME = /^[A-Za-z_$][\w$]*$/;

function checkFields(owner: string, fields: unknown): [string, Codec<unknown>][] {
  if (typeof fields !== "object" || fields === null || Array.isArray(fields)) {
    throw new TypeError(`Invalid ${owner}: expected an object of field codecs, got ${describe(fields)}`);
  }
  return Object.entries(fields).map(([name, c]) => {
    if (!FIELD_NAME.test(name))
      throw new TypeError(`Invalid ${owner}: field name ${JSON.stringify(name)} is not an identifier`);
    return [name, checkCodec(owner, `field "${name}"`, c)];
  });
}

function checkSize(owner: string, size: unknown): number | undefined {
  if (size === undefined) return undefined;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 0) {
    throw new TypeError(`Invalid ${owner}: size must be a non-negative integer, got ${describe(size)}`);
  }
  return size;
}

function layoutText(fields: readonly StructField[], size: number, align: number): string {
  return `size ${size}, align ${align}: ${fields.map((f) => `${f.name} ${f.codec.name} @${f.offset}`).join(", ") || "no fields"}`;
}

// --- codec classes ------------------------------------------------------------

class LeafCodec<T> implements Codec<T> {
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly #op: number;
  readonly #n: number;
  readonly #step: Step;

  constructor(name: string, op: number, size: number, align: number, n = size) {
    this.name = name;
    this.size = size;
    this.align = align;
    this.#op = op;
    this.#n = n;
    this.#step = makeStep({ op, offset: 0, n, name });
    PLANS.set(this, { kind: "leaf", op, n });
    Object.freeze(this);
  }

  encode(value: T, view: DataView, offset: number, path: string = this.name): void {
    writeLeaf(view, offset, this.#op, this.#n, value, path, this.#step, -1);
  }

  decode(view: DataView, offset: number): T {
    return readLeaf(view, offset, this.#op, this.#n) as T;
  }
}

/** A struct, or an array of non-leaf elements: a compiled step program. */
class CompiledCodec<T> {
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly #layout: Layout;
  readonly #paths: CustomPaths;
  readonly #array: number;

  /** `array` is the element count when the value is an array, else -1. */
  constructor(name: string, size: number, align: number, plan: Plan, array: number) {
    this.name = name;
    this.size = size;
    this.align = align;
    this.#array = array;
    PLANS.set(this, plan);
    const p: Program = { encode: [], decode: [], customPaths: [] };
    emitContents(p, this, 0, "");
    this.#layout = compileLayout(p.encode, p.decode, array >= 0);
    this.#paths = new CustomPaths(p.customPaths);
  }

  encode(value: T, view: DataView, offset: number, path: string = this.name): void {
    checkBounds("encode", this, view, offset);
    const v: unknown = value;
    if (this.#array >= 0) {
      if (!Array.isArray(v))
        throw new TypeError(
          `Invalid value for ${path} (${this.name}): expected an array of ${this.#array}, got ${describe(v)}`,
        );
      if (v.length !== this.#array)
        throw new RangeError(
          `Invalid value for ${path} (${this.name}): expected ${this.#array} elements, got ${v.length}`,
        );
    } else if (typeof v !== "object" || v === null) {
      throw new TypeError(`Invalid value for ${path} (${this.name}): expected an object, got ${describe(v)}`);
    }
    this.#layout.encode(v as Container, view, offset, path, this.#paths.for(path));
  }

  decode(view: DataView, offset: number): T {
    checkBounds("decode", this, view, offset);
    return this.#layout.decode(view, offset) as T;
  }
}

class StructCodecImpl<T> extends CompiledCodec<T> implements StructCodec<T> {
  readonly fields: readonly StructField[];

  constructor(
    name: string,
    size: number,
    align: number,
    fields: readonly StructField[],
    pads: readonly (readonly [number, number])[],
  ) {
    super(name, size, align, { kind: "struct", fields, pads }, -1);
    this.fields = fields;
    Object.freeze(this);
  }

  offsetOf(name: keyof T & string): number {
    const f = this.fields.find((x) => x.name === name);
    if (f === undefined)
      throw new TypeError(
        `Cannot find field ${JSON.stringify(name)} in ${this.name}: it has ${this.fields.map((x) => x.name).join(", ") || "no fields"}`,
      );
    return f.offset;
  }
}

class ArrayStepCodec<T> extends CompiledCodec<T[]> implements ArrayCodec<T> {
  readonly element: Codec<T>;
  readonly length: number;

  constructor(element: Codec<T>, length: number) {
    super(
      `${element.name}[${length}]`,
      element.size * length,
      element.align,
      { kind: "array", element, length },
      length,
    );
    this.element = element;
    this.length = length;
    Object.freeze(this);
  }
}

/** An array of leaves: one loop, no steps. */
class LeafArrayCodec<T> implements ArrayCodec<T> {
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly element: Codec<T>;
  readonly length: number;
  readonly #op: number;
  readonly #n: number;
  readonly #step: Step;

  constructor(element: Codec<T>, length: number, leaf: { readonly op: number; readonly n: number }) {
    this.name = `${element.name}[${length}]`;
    this.size = element.size * length;
    this.align = element.align;
    this.element = element;
    this.length = length;
    this.#op = leaf.op;
    this.#n = leaf.n;
    this.#step = makeStep({ op: leaf.op, offset: 0, n: leaf.n, name: element.name });
    PLANS.set(this, { kind: "array", element, length });
    Object.freeze(this);
  }

  encode(value: T[], view: DataView, offset: number, path: string = this.name): void {
    checkBounds("encode", this, view, offset);
    const v: unknown = value;
    if (!Array.isArray(v))
      throw new TypeError(
        `Invalid value for ${path} (${this.name}): expected an array of ${this.length}, got ${describe(v)}`,
      );
    if (v.length !== this.length)
      throw new RangeError(
        `Invalid value for ${path} (${this.name}): expected ${this.length} elements, got ${v.length}`,
      );
    const stride = this.element.size;
    for (let j = 0; j < this.length; j++)
      writeLeaf(view, offset + j * stride, this.#op, this.#n, v[j], path, this.#step, j);
  }

  decode(view: DataView, offset: number): T[] {
    checkBounds("decode", this, view, offset);
    const out: unknown[] = [];
    const stride = this.element.size;
    for (let j = 0; j < this.length; j++) out.push(readLeaf(view, offset + j * stride, this.#op, this.#n));
    return out as T[];
  }
}

class UnionCodecImpl<T> implements UnionCodec<T> {
  readonly name: string;
  readonly size: number;
  readonly align: number;
  readonly fields: readonly StructField[];
  readonly #paths: CustomPaths;

  constructor(name: string, size: number, align: number, fields: readonly StructField[]) {
    this.name = name;
    this.size = size;
    this.align = align;
    this.fields = fields;
    this.#paths = new CustomPaths(fields.map((f) => `.${f.name}`));
    Object.freeze(this);
  }

  encode(value: T, view: DataView, offset: number, path: string = this.name): void {
    checkBounds("encode", this, view, offset);
    const v: unknown = value;
    if (typeof v !== "object" || v === null)
      throw new TypeError(`Invalid value for ${path} (${this.name}): expected an object, got ${describe(v)}`);
    const fields = this.fields;
    let chosen = -1;
    for (let i = 0; i < fields.length; i++) {
      if ((v as Container)[(fields[i] as StructField).name] === undefined) continue;
      if (chosen >= 0) {
        throw new TypeError(
          `Invalid value for ${path} (${this.name}): expected exactly one member, got "${(fields[chosen] as StructField).name}" and "${(fields[i] as StructField).name}"`,
        );
      }
      chosen = i;
    }
    if (chosen < 0) {
      throw new TypeError(
        `Invalid value for ${path} (${this.name}): expected exactly one member of ${fields.map((f) => f.name).join(", ")}, got none`,
      );
    }
    const f = fields[chosen] as StructField;
    zero(view, offset, this.size);
    f.codec.encode((v as Container)[f.name], view, offset, this.#paths.for(path)[chosen]);
  }

  decode(view: DataView, offset: number): T {
    checkBounds("decode", this, view, offset);
    const out: Container = {};
    for (const f of this.fields) out[f.name] = f.codec.decode(view, offset);
    return out as T;
  }
}

// --- scalars --------------------------------------------------------------------

/**
 * `__u8`: an unsigned 8-bit integer.
 *
 * @example Encoding into a buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { u8 } from "@dp/maps";
 *
 * const view = new DataView(new ArrayBuffer(1));
 * u8.encode(200, view, 0);
 * assert.equal(u8.decode(view, 0), 200);
 * assert.throws(() => u8.encode(256, view, 0), RangeError);
 * ```
 */
export const u8: Codec<number> = new LeafCodec<number>("u8", OP_U8, 1, 1);
/** `__u16` in host byte order. */
export const u16: Codec<number> = new LeafCodec<number>("u16", OP_U16, 2, 2);
/** `__u32` in host byte order. */
export const u32: Codec<number> = new LeafCodec<number>("u32", OP_U32, 4, 4);
/**
 * `__u64` in host byte order, as a `bigint`.
 *
 * @example 64-bit values are bigints
 * ```ts
 * import assert from "node:assert/strict";
 * import { u64 } from "@dp/maps";
 *
 * const view = new DataView(new ArrayBuffer(8));
 * u64.encode(2n ** 64n - 1n, view, 0);
 * assert.equal(u64.decode(view, 0), 18446744073709551615n);
 * assert.throws(() => u64.encode(1 as unknown as bigint, view, 0), TypeError);
 * ```
 */
export const u64: Codec<bigint> = new LeafCodec<bigint>("u64", OP_U64, 8, 8);
/** `__s8`: a signed 8-bit integer. */
export const i8: Codec<number> = new LeafCodec<number>("i8", OP_I8, 1, 1);
/** `__s16` in host byte order. */
export const i16: Codec<number> = new LeafCodec<number>("i16", OP_I16, 2, 2);
/** `__s32` in host byte order. */
export const i32: Codec<number> = new LeafCodec<number>("i32", OP_I32, 4, 4);
/** `__s64` in host byte order, as a `bigint`. */
export const i64: Codec<bigint> = new LeafCodec<bigint>("i64", OP_I64, 8, 8);
/**
 * `__be16`: a 16-bit integer in network byte order (ports); the value is
 * the host number (`80`, not `0x5000`).
 *
 * @example A port in network order
 * ```ts
 * import assert from "node:assert/strict";
 * import { be16 } from "@dp/maps";
 *
 * const bytes = new Uint8Array(2);
 * be16.encode(8080, new DataView(bytes.buffer), 0);
 * assert.deepEqual(bytes, new Uint8Array([0x1f, 0x90]));
 * ```
 */
export const be16: Codec<number> = new LeafCodec<number>("be16", OP_BE16, 2, 2);
/** `__be32`: a 32-bit integer in network byte order. */
export const be32: Codec<number> = new LeafCodec<number>("be32", OP_BE32, 4, 4);
/** `__be64`: a 64-bit integer in network byte order, as a `bigint`. */
export const be64: Codec<bigint> = new LeafCodec<bigint>("be64", OP_BE64, 8, 8);
/** `bool` (`_Bool`): one byte, 0 or 1; any non-zero byte decodes as `true`. */
export const bool: Codec<boolean> = new LeafCodec<boolean>("bool", OP_BOOL, 1, 1);
/** `float` in host byte order. */
export const f32: Codec<number> = new LeafCodec<number>("f32", OP_F32, 4, 4);
/** `double` in host byte order. */
export const f64: Codec<number> = new LeafCodec<number>("f64", OP_F64, 8, 8);

/**
 * An IPv4 address as dotted-quad text, stored as 4 bytes in network order
 * and aligned as `__be32` (4). Decoding gives the canonical text.
 *
 * @example An address in network order
 * ```ts
 * import assert from "node:assert/strict";
 * import { ipv4 } from "@dp/maps";
 *
 * const bytes = new Uint8Array(4);
 * ipv4.encode("10.0.0.1", new DataView(bytes.buffer), 0);
 * assert.deepEqual(bytes, new Uint8Array([10, 0, 0, 1]));
 * assert.throws(() => ipv4.encode("10.0.0.256", new DataView(bytes.buffer), 0), TypeError);
 * ```
 */
export const ipv4: Codec<string> = new LeafCodec<string>("ipv4", OP_IPV4, 4, 4);
/**
 * An IPv6 address as text, stored as 16 bytes in network order and aligned
 * as `struct in6_addr` (4). Decoding gives the RFC 5952 form.
 *
 * @example Canonical text
 * ```ts
 * import assert from "node:assert/strict";
 * import { ipv6 } from "@dp/maps";
 *
 * const view = new DataView(new ArrayBuffer(16));
 * ipv6.encode("FD00:0:0::0:1", view, 0);
 * assert.equal(ipv6.decode(view, 0), "fd00::1");
 * ```
 */
export const ipv6: Codec<string> = new LeafCodec<string>("ipv6", OP_IPV6, 16, 4);
/** An IPv4 address as 4 bytes in network order, aligned as `__be32` (4). */
export const ipv4Bytes: Codec<Uint8Array> = new LeafCodec<Uint8Array>("ipv4Bytes", OP_BYTES, 4, 4);
/** An IPv6 address as 16 bytes in network order, aligned as `struct in6_addr` (4). */
export const ipv6Bytes: Codec<Uint8Array> = new LeafCodec<Uint8Array>("ipv6Bytes", OP_BYTES, 16, 4);
/**
 * A MAC address (`__u8[6]`) as lower-case text `"02:00:00:aa:bb:cc"`;
 * encoding accepts either case.
 *
 * @example Round trip
 * ```ts
 * import assert from "node:assert/strict";
 * import { mac } from "@dp/maps";
 *
 * const view = new DataView(new ArrayBuffer(6));
 * mac.encode("02:00:00:AA:BB:CC", view, 0);
 * assert.equal(mac.decode(view, 0), "02:00:00:aa:bb:cc");
 * ```
 */
export const mac: Codec<string> = new LeafCodec<string>("mac", OP_MAC, 6, 1);

function checkLength(what: string, n: unknown, min: number): number {
  if (typeof n !== "number" || !Number.isInteger(n) || n < min) {
    throw new RangeError(`Invalid ${what} length: expected an integer of at least ${min}, got ${describe(n)}`);
  }
  return n;
}

/**
 * `__u8[n]` as a `Uint8Array` of exactly `n` bytes (decoding copies).
 *
 * @param n The byte length.
 * @returns The codec.
 * @throws {RangeError} When `n` is not a non-negative integer.
 * @example Fixed-size bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { bytes } from "@dp/maps";
 *
 * const key = bytes(3);
 * const view = new DataView(new ArrayBuffer(3));
 * key.encode(new Uint8Array([1, 2, 3]), view, 0);
 * assert.deepEqual(key.decode(view, 0), new Uint8Array([1, 2, 3]));
 * assert.throws(() => key.encode(new Uint8Array(2), view, 0), /expected 3 bytes, got 2/);
 * ```
 */
export function bytes(n: number): Codec<Uint8Array> {
  return new LeafCodec<Uint8Array>(`u8[${checkLength("bytes", n, 0)}]`, OP_BYTES, n, 1);
}

/**
 * `char[n]` holding a NUL-terminated UTF-8 string. Encoding pads with NULs
 * and needs room for the terminator (at most `n - 1` bytes of text);
 * decoding stops at the first NUL (or after `n` bytes).
 *
 * @param n The array length, terminator included.
 * @returns The codec.
 * @throws {RangeError} When `n` is not a positive integer.
 * @example A name field
 * ```ts
 * import assert from "node:assert/strict";
 * import { cstring } from "@dp/maps";
 *
 * const name = cstring(5);
 * const bytes = new Uint8Array(5).fill(0xff);
 * name.encode("odd", new DataView(bytes.buffer), 0);
 * assert.deepEqual(bytes, new Uint8Array([0x6f, 0x64, 0x64, 0, 0]));
 * assert.equal(name.decode(new DataView(bytes.buffer), 0), "odd");
 * assert.throws(() => name.encode("toolong", new DataView(bytes.buffer), 0), RangeError);
 * ```
 */
export function cstring(n: number): Codec<string> {
  return new LeafCodec<string>(`char[${checkLength("cstring", n, 1)}]`, OP_CSTRING, n, 1);
}

/**
 * A fixed-length C array, `T[n]`, as a JS array of exactly `n` elements.
 * It takes the element's alignment.
 *
 * @typeParam T The element value type.
 * @param element The element codec.
 * @param length The element count.
 * @returns The codec.
 * @throws {TypeError} When `element` is not a codec.
 * @throws {RangeError} When `length` is not a non-negative integer.
 * @example Three flags
 * ```ts
 * import assert from "node:assert/strict";
 * import { array, u8 } from "@dp/maps";
 *
 * const flags = array(u8, 3);
 * const view = new DataView(new ArrayBuffer(3));
 * flags.encode([1, 2, 3], view, 0);
 * assert.deepEqual(flags.decode(view, 0), [1, 2, 3]);
 * assert.throws(() => flags.encode([1, 2], view, 0, "flags"), /flags \(u8\[3\]\): expected 3 elements, got 2/);
 * ```
 */
export function array<T>(element: Codec<T>, length: number): ArrayCodec<T> {
  const e = checkCodec("array", "the element", element) as Codec<T>;
  checkLength("array", length, 0);
  const plan = PLANS.get(e);
  return plan?.kind === "leaf" ? new LeafArrayCodec(e, length, plan) : new ArrayStepCodec(e, length);
}

/**
 * A C struct. Fields are listed in C order; offsets, padding, alignment and
 * size follow the C rules of x86-64 and BPF (a scalar aligns to its size, an
 * array to its element, a struct to its largest member; the size is rounded
 * up to the alignment), or none of them when `packed`. Encoding writes the
 * padding as zeros. Nested structs and arrays are compiled into one flat
 * list of steps, so a struct encodes and decodes without allocating beyond
 * the decoded value.
 *
 * @typeParam F The fields: property name → codec.
 * @param fields The fields in C order.
 * @param options The C name, the expected size, packing, pinned offsets.
 * @returns The codec; the value type is {@link StructValue}.
 * @throws {TypeError} When a field is not a codec or its name is not an identifier, or `offsets` names an unknown field.
 * @throws {RangeError} When `size` does not match the layout, or pinned offsets overlap or exceed `size`.
 * @example A map key with padding checked against C
 * ```ts
 * import assert from "node:assert/strict";
 * import { be16, type Infer, struct, u32, u8 } from "@dp/maps";
 *
 * const PolicyKey = struct({ identity: u32, dport: be16, proto: u8 }, { name: "struct policy_key", size: 8 });
 * type PolicyKey = Infer<typeof PolicyKey>;
 *
 * const key: PolicyKey = { identity: 7, dport: 80, proto: 6 };
 * const bytes = new Uint8Array(8).fill(0xff);
 * PolicyKey.encode(key, new DataView(bytes.buffer), 0, "key");
 * assert.deepEqual(bytes, new Uint8Array([7, 0, 0, 0, 0, 80, 6, 0]));
 * assert.deepEqual(PolicyKey.decode(new DataView(bytes.buffer), 0), key);
 * assert.equal(PolicyKey.offsetOf("proto"), 6);
 * assert.throws(
 *   () => PolicyKey.encode({ ...key, dport: 70000 }, new DataView(bytes.buffer), 0, "key"),
 *   { name: "RangeError", message: "Invalid value for key.dport (be16): 70000 is outside 0..65535" },
 * );
 * ```
 */
export function struct<F extends StructFields>(fields: F, options: StructOptions<F> = {}): StructCodec<StructValue<F>> {
  const name = options.name ?? "struct";
  const entries = checkFields(name, fields);
  const wanted = checkSize(name, options.size);
  const packed = options.packed === true;
  const offsets: Readonly<Record<string, unknown>> = options.offsets ?? {};
  for (const k of Object.keys(offsets)) {
    if (!entries.some(([n]) => n === k))
      throw new TypeError(`Invalid ${name}: offsets names ${JSON.stringify(k)}, which is not a field`);
  }
  const out: StructField[] = [];
  const pads: [number, number][] = [];
  let end = 0;
  let align = 1;
  let pinned = false;
  for (const [field, codec] of entries) {
    const a = packed ? 1 : codec.align;
    const natural = roundUp(end, a);
    let offset = natural;
    const pin = offsets[field];
    if (pin !== undefined) {
      if (typeof pin !== "number" || !Number.isInteger(pin) || pin < 0) {
        throw new TypeError(
          `Invalid ${name}: the offset of ${field} must be a non-negative integer, got ${describe(pin)}`,
        );
      }
      if (pin < end) {
        const prev = out[out.length - 1] as StructField;
        throw new RangeError(
          `Invalid ${name}: ${field} at offset ${pin} overlaps ${prev.name} (${prev.codec.name} at ${prev.offset}..${end})`,
        );
      }
      offset = pin;
      pinned = true;
    }
    if (offset > end) pads.push([end, offset - end]);
    out.push(Object.freeze({ name: field, offset, codec }));
    end = offset + codec.size;
    align = Math.max(align, a);
  }
  let size = roundUp(end, align);
  if (wanted !== undefined) {
    if (pinned ? wanted < end : wanted !== size) {
      const need = pinned ? `the fields end at ${end}` : `the computed layout differs`;
      throw new RangeError(`Invalid ${name}: size ${wanted} was given but ${need} (${layoutText(out, size, align)})`);
    }
    size = wanted;
  }
  if (size > end) pads.push([end, size - end]);
  Object.freeze(out);
  return new StructCodecImpl<StructValue<F>>(name, size, align, out, pads);
}

/**
 * A C union: every member at offset 0, size and alignment of the largest.
 * Encoding takes an object with exactly one member set (not `undefined`)
 * and zeros the bytes that member does not cover; decoding reads every
 * member from the same bytes.
 *
 * @typeParam F The members: property name → codec.
 * @param fields The members.
 * @param options The C name and the expected size.
 * @returns The codec; the value type is {@link UnionValue}.
 * @throws {TypeError} When a member is not a codec or its name is not an identifier.
 * @throws {RangeError} When `size` does not match the layout.
 * @example A weight or four raw bytes
 * ```ts
 * import assert from "node:assert/strict";
 * import { array, u32, u8, union } from "@dp/maps";
 *
 * const U = union({ weight: u32, raw: array(u8, 4) });
 * const view = new DataView(new ArrayBuffer(4));
 * U.encode({ weight: 0x04030201 }, view, 0);
 * assert.deepEqual(U.decode(view, 0), { weight: 0x04030201, raw: [1, 2, 3, 4] });
 * assert.throws(() => U.encode({} as { weight: number }, view, 0, "u"), /u \(union\): expected exactly one member/);
 * ```
 */
export function union<F extends StructFields>(fields: F, options: UnionOptions = {}): UnionCodec<UnionValue<F>> {
  const name = options.name ?? "union";
  const entries = checkFields(name, fields);
  const wanted = checkSize(name, options.size);
  let max = 0;
  let align = 1;
  for (const [, codec] of entries) {
    max = Math.max(max, codec.size);
    align = Math.max(align, codec.align);
  }
  const out = Object.freeze(entries.map(([field, codec]) => Object.freeze({ name: field, offset: 0, codec })));
  const size = roundUp(max, align);
  if (wanted !== undefined && wanted !== size) {
    throw new RangeError(
      `Invalid ${name}: size ${wanted} was given but the computed layout differs (${layoutText(out, size, align)})`,
    );
  }
  return new UnionCodecImpl<UnionValue<F>>(name, size, align, out);
}
