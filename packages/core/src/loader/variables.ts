// Global variables of a BPF object typed by their BTF: encoding and
// decoding a variable's bytes, constants set before load.
import type { Btf, BtfType } from "../btf/btf.ts";
import type { CollectionMapSpec } from "./collection_map_spec.ts";

/** A global variable of an object's data section, from its BTF. */
export interface VariableSpec {
  /** The variable's name. */
  readonly name: string;
  /** The data section (and map) it lives in, such as `".rodata"` or `".bss"`. */
  readonly section: string;
  /** Its byte offset in the section. */
  readonly offset: number;
  /** Its size in bytes. */
  readonly size: number;
  /** The BTF type id of its type. */
  readonly typeId: number;
  /** `true` in `.rodata*` sections: a constant, settable only before load. */
  readonly readOnly: boolean;
}

/**
 * A variable's value in TypeScript: `boolean` for `_Bool`, `number` for
 * integers and enums up to 32 bits and floats, `bigint` for 64-bit (and
 * 128-bit) integers, enums and pointers, the raw bytes for anything else
 * (structs, unions, arrays). Setting a 64-bit integer also takes a safe
 * integer `number`.
 */
export type VariableValue = boolean | number | bigint | Uint8Array;

interface Scalar {
  readonly kind: "bool" | "int" | "float" | "bytes";
  readonly size: number;
  readonly signed: boolean;
  readonly label: string;
}

function scalarOf(btf: Btf, typeId: number, size: number): Scalar {
  const t: BtfType = btf.resolve(typeId);
  switch (t.kind) {
    case "int":
      if (t.bool) return { kind: "bool", size: t.size, signed: false, label: "bool" };
      if (t.bitOffset !== 0 || t.bits !== t.size * 8) return { kind: "bytes", size, signed: false, label: t.name };
      return { kind: "int", size: t.size, signed: t.signed, label: `${t.signed ? "s" : "u"}${t.size * 8} (${t.name})` };
    case "enum":
    case "enum64":
      return { kind: "int", size: t.size, signed: t.signed, label: `enum ${t.name === "" ? "(anonymous)" : t.name}` };
    case "ptr":
      return { kind: "int", size: 8, signed: false, label: "pointer" };
    case "float":
      return { kind: "float", size: t.size, signed: true, label: t.name };
    default:
      return { kind: "bytes", size, signed: false, label: `${t.kind} ${t.name === "" ? "(anonymous)" : t.name}` };
  }
}

/**
 * Writes a value into a variable's bytes, checked against its BTF type.
 *
 * @param btf The object's BTF.
 * @param variable The variable.
 * @param value The value (see {@link VariableValue}).
 * @param out The variable's bytes (`variable.size` long).
 * @param what How to name the variable in errors, such as `constant "magic"`.
 * @throws {TypeError} When the value's type does not fit the variable's.
 * @throws {RangeError} When a number is out of the variable's range or the bytes have the wrong length.
 */
export function encodeVariable(
  btf: Btf,
  variable: VariableSpec,
  value: VariableValue,
  out: Uint8Array,
  what: string,
): void {
  const s = scalarOf(btf, variable.typeId, variable.size);
  const bad = (expected: string): never => {
    throw new TypeError(`Cannot set ${what} (${s.label}): expected ${expected}, got ${describe(value)}`);
  };
  const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
  switch (s.kind) {
    case "bool":
      if (typeof value !== "boolean") bad("a boolean");
      out.fill(0);
      out[0] = value ? 1 : 0;
      return;
    case "float":
      if (typeof value !== "number") bad("a number");
      if (s.size === 4) dv.setFloat32(0, value as number, true);
      else if (s.size === 8) dv.setFloat64(0, value as number, true);
      else bad("bytes");
      return;
    case "int": {
      let v: bigint;
      if (typeof value === "bigint") v = value;
      else if (typeof value === "number" && Number.isSafeInteger(value)) v = BigInt(value);
      else if (typeof value === "boolean" && s.size === 1) v = value ? 1n : 0n;
      else return bad(s.size >= 8 ? "a bigint or a safe integer" : "an integer");
      const bits = BigInt(s.size * 8);
      const min = s.signed ? -(1n << (bits - 1n)) : 0n;
      const max = s.signed ? (1n << (bits - 1n)) - 1n : (1n << bits) - 1n;
      if (v < min || v > max) throw new RangeError(`Cannot set ${what} (${s.label}): ${v} is outside ${min}..${max}`);
      let u = BigInt.asUintN(Number(bits), v);
      for (let i = 0; i < s.size; i++) {
        out[i] = Number(u & 0xffn);
        u >>= 8n;
      }
      return;
    }
    case "bytes":
      if (!(value instanceof Uint8Array)) bad(`${variable.size} bytes (a Uint8Array)`);
      if ((value as Uint8Array).length !== variable.size) {
        throw new RangeError(
          `Cannot set ${what} (${s.label}): expected ${variable.size} bytes, got ${(value as Uint8Array).length}`,
        );
      }
      out.set(value as Uint8Array);
  }
}

/**
 * Reads a variable's value from its bytes, typed by its BTF.
 *
 * @param btf The object's BTF.
 * @param variable The variable.
 * @param bytes The variable's bytes (`variable.size` long).
 * @returns The value (see {@link VariableValue}); bytes are copied.
 */
export function decodeVariable(btf: Btf, variable: VariableSpec, bytes: Uint8Array): VariableValue {
  const s = scalarOf(btf, variable.typeId, variable.size);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (s.kind) {
    case "bool":
      return bytes[0] !== 0;
    case "float":
      if (s.size === 4) return dv.getFloat32(0, true);
      if (s.size === 8) return dv.getFloat64(0, true);
      return bytes.slice();
    case "int": {
      let u = 0n;
      for (let i = s.size - 1; i >= 0; i--) u = (u << 8n) | BigInt(bytes[i] as number);
      const v = s.signed ? BigInt.asIntN(s.size * 8, u) : u;
      return s.size <= 4 ? Number(v) : v;
    }
    case "bytes":
      return bytes.slice();
  }
}

function describe(value: unknown): string {
  if (value instanceof Uint8Array) return `${value.length} bytes`;
  if (typeof value === "bigint") return `${value}n`;
  if (typeof value === "number" || typeof value === "boolean") return `${typeof value} ${value}`;
  return typeof value;
}

/**
 * The `.rodata` constants of a {@link CollectionSpec} (`volatile const`
 * globals), set before loading. Values are checked against each
 * constant's BTF type (size and signedness) and written into the spec's
 * copy of the section, which the loader puts in the frozen map.
 *
 * @example Setting a constant
 * ```ts
 * import assert from "node:assert/strict";
 * import { readCollectionSpec } from "@dp/core";
 *
 * const spec = readCollectionSpec("bpf/build/testdata/globals.o");
 * assert.equal(spec.constants.get("magic"), 7);
 * spec.constants.set("magic", 42).set("enabled", false);
 * assert.equal(spec.constants.get("magic"), 42);
 * assert.throws(() => spec.constants.set("magic", -1), RangeError);
 * ```
 */
export class ConstantSet {
  #btf: Btf | undefined;
  #variables: ReadonlyMap<string, VariableSpec>;
  #maps: ReadonlyMap<string, CollectionMapSpec>;

  /**
   * Creates the set over a spec's variables and data maps.
   *
   * @param btf The object's BTF.
   * @param variables The object's variables (only read-only ones are constants).
   * @param maps The object's maps, whose `contents` hold the values.
   */
  constructor(
    btf: Btf | undefined,
    variables: ReadonlyMap<string, VariableSpec>,
    maps: ReadonlyMap<string, CollectionMapSpec>,
  ) {
    this.#btf = btf;
    this.#variables = variables;
    this.#maps = maps;
  }

  /**
   * Whether the object has a constant of this name.
   *
   * @param name The variable name.
   * @returns `true` for a `.rodata*` variable.
   */
  has(name: string): boolean {
    return this.#variables.get(name)?.readOnly === true;
  }

  /**
   * The constants' names.
   *
   * @returns Every `.rodata*` variable name, in section order.
   */
  names(): string[] {
    return [...this.#variables.values()].filter((v) => v.readOnly).map((v) => v.name);
  }

  /**
   * Reads a constant's current value.
   *
   * @param name The variable name.
   * @returns The value.
   * @throws {RangeError} When there is no such constant.
   */
  get(name: string): VariableValue {
    const { variable, bytes, btf } = this.#find(name);
    return decodeVariable(btf, variable, bytes);
  }

  /**
   * Sets a constant before loading.
   *
   * @param name The variable name.
   * @param value The value; see {@link VariableValue}.
   * @returns This set, for chaining.
   * @throws {RangeError} When there is no such constant or the value is out of range.
   * @throws {TypeError} When the value's type does not fit the constant's BTF type.
   */
  set(name: string, value: VariableValue): this {
    const { variable, bytes, btf } = this.#find(name);
    const scratch = bytes.slice();
    encodeVariable(btf, variable, value, scratch, `constant ${JSON.stringify(name)}`);
    bytes.set(scratch);
    return this;
  }

  #find(name: string): { variable: VariableSpec; bytes: Uint8Array; btf: Btf } {
    const variable = this.#variables.get(name);
    const contents = variable === undefined ? undefined : this.#maps.get(variable.section)?.contents;
    if (variable === undefined || !variable.readOnly || contents === undefined || this.#btf === undefined) {
      const known = this.names();
      const why =
        variable !== undefined && !variable.readOnly
          ? `it is in ${variable.section}, not .rodata (write it through the loaded collection's variables)`
          : `no such constant (constants: ${known.length === 0 ? "none" : known.join(", ")})`;
      throw new RangeError(`Cannot use constant ${JSON.stringify(name)}: ${why}`);
    }
    return { variable, bytes: contents.subarray(variable.offset, variable.offset + variable.size), btf: this.#btf };
  }
}
