// The BTF string table: NUL-terminated strings addressed by byte offset.
// Decoding is lazy and fast for the common all-ASCII table (one decode of
// the whole table, then substrings); other tables decode per string with a
// cache. Encoding keeps an existing table as a prefix, so offsets that other
// sections (.BTF.ext line_info) hold stay valid, and appends new strings.

const utf8 = new TextDecoder("utf-8", { fatal: false });
const encoder = new TextEncoder();

/** A parsed string table; `start` is the first offset it owns (non-zero in split BTF). */
export class BtfStringTable {
  /** The table's bytes (each string NUL-terminated). */
  readonly bytes: Uint8Array;
  /** The first offset the table owns: 0, or the base table's end in split BTF. */
  readonly start: number;
  #ascii: string | undefined;
  #cache: Map<number, string> | undefined;
  #index: Map<string, number> | undefined;

  constructor(bytes: Uint8Array, start: number) {
    this.bytes = bytes;
    this.start = start;
    let ascii = true;
    for (let i = 0; i < bytes.length; i++) {
      if ((bytes[i] as number) >= 0x80) {
        ascii = false;
        break;
      }
    }
    // Pure ASCII: one decode, then offsets are string indexes.
    if (ascii) this.#ascii = utf8.decode(bytes);
    else this.#cache = new Map();
  }

  /** One past the last offset the table owns. */
  get end(): number {
    return this.start + this.bytes.length;
  }

  /** The string at an absolute offset in `[start, end)`; the caller checks the range. */
  at(offset: number): string {
    const local = offset - this.start;
    const ascii = this.#ascii;
    if (ascii !== undefined) {
      const end = ascii.indexOf("\0", local);
      return ascii.slice(local, end < 0 ? ascii.length : end);
    }
    const cache = this.#cache as Map<number, string>;
    let s = cache.get(local);
    if (s === undefined) {
      let end = this.bytes.indexOf(0, local);
      if (end < 0) end = this.bytes.length;
      s = utf8.decode(this.bytes.subarray(local, end));
      cache.set(local, s);
    }
    return s;
  }

  /** The absolute offset of a whole string in the table, if it is there. */
  find(text: string): number | undefined {
    if (this.#index === undefined) {
      const index = new Map<string, number>();
      const b = this.bytes;
      let i = 0;
      // Bounded: every iteration advances past one NUL or the end.
      while (i < b.length) {
        let end = b.indexOf(0, i);
        if (end < 0) end = b.length;
        const s = this.at(this.start + i);
        if (!index.has(s)) index.set(s, this.start + i);
        i = end + 1;
      }
      this.#index = index;
    }
    return this.#index.get(text);
  }
}

/** Builds a string table for encoding: an optional existing table as prefix plus appended strings. */
export class BtfStringBuilder {
  readonly #prefix: BtfStringTable | undefined;
  readonly #base: BtfStringTable | undefined;
  readonly #start: number;
  readonly #added = new Map<string, number>();
  readonly #chunks: Uint8Array[] = [];
  #length: number;

  /**
   * @param prefix The table to keep as it is (offsets stay valid).
   * @param base The base BTF's table, searched first in split BTF.
   * @param start The first offset this table owns.
   */
  constructor(prefix: BtfStringTable | undefined, base: BtfStringTable | undefined, start: number) {
    this.#prefix = prefix;
    this.#base = base;
    this.#start = start;
    if (prefix !== undefined && prefix.bytes.length > 0) {
      this.#length = prefix.bytes.length;
    } else if (start === 0) {
      // Offset 0 is the empty string.
      this.#chunks.push(new Uint8Array(1));
      this.#length = 1;
      this.#added.set("", 0);
    } else {
      this.#length = 0;
    }
  }

  /** Returns the offset of `text`, adding it when missing. */
  add(text: string): number {
    if (text === "" && this.#start === 0) return 0;
    const inBase = this.#base?.find(text);
    if (inBase !== undefined) return inBase;
    const inPrefix = this.#prefix?.find(text);
    if (inPrefix !== undefined) return inPrefix;
    let off = this.#added.get(text);
    if (off !== undefined) return off;
    const bytes = encoder.encode(text);
    if (bytes.includes(0)) throw new RangeError(`Invalid BTF string ${JSON.stringify(text)}: it contains a NUL byte`);
    off = this.#start + this.#length;
    const chunk = new Uint8Array(bytes.length + 1);
    chunk.set(bytes);
    this.#chunks.push(chunk);
    this.#length += chunk.length;
    this.#added.set(text, off);
    return off;
  }

  /** The table's bytes. */
  finish(): Uint8Array {
    const out = new Uint8Array(this.#length);
    let pos = 0;
    const prefix = this.#prefix;
    if (prefix !== undefined && prefix.bytes.length > 0) {
      out.set(prefix.bytes);
      pos = prefix.bytes.length;
    }
    for (const c of this.#chunks) {
      out.set(c, pos);
      pos += c.length;
    }
    return out;
  }
}
