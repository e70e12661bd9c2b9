// Struct codecs: C layouts described in TypeScript, encoded into and
// decoded from preallocated buffers.

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
