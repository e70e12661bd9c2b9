// Netlink message and attribute codec: pure functions over bytes, no kernel.

/** `nlmsghdr.nlmsg_flags` bits (`NLM_F_*`). Several share a value and differ by request type. */
export const NLM_F = {
  /** A request. */
  REQUEST: 0x1,
  /** Part of a multipart reply, ended by `NLMSG_DONE`. */
  MULTI: 0x2,
  /** Asks for an acknowledgement. */
  ACK: 0x4,
  /** Echo this request back. */
  ECHO: 0x8,
  /** The dump was interrupted by a change: its contents may be inconsistent. */
  DUMP_INTR: 0x10,
  /** The dump was filtered as requested. */
  DUMP_FILTERED: 0x20,
  /** GET: return the whole table. */
  ROOT: 0x100,
  /** GET: return all matching entries. */
  MATCH: 0x200,
  /** GET: `ROOT | MATCH`, a dump. */
  DUMP: 0x300,
  /** NEW: replace an existing object. */
  REPLACE: 0x100,
  /** NEW: fail when the object exists. */
  EXCL: 0x200,
  /** NEW: create the object when it does not exist. */
  CREATE: 0x400,
  /** NEW: add to the end of the list. */
  APPEND: 0x800,
  /** ACK: the request was capped (only its header is echoed). */
  CAPPED: 0x100,
  /** ACK: extended-ack attributes follow. */
  ACK_TLVS: 0x200,
} as const;

/** Control message types shared by every netlink family (`NLMSG_*`). */
export const NLMSG = {
  /** Nothing; skip it. */
  NOOP: 1,
  /** An error or, with error 0, an acknowledgement. */
  ERROR: 2,
  /** The end of a multipart reply. */
  DONE: 3,
  /** Data was lost. */
  OVERRUN: 4,
} as const;

/** Size of `struct nlmsghdr`. */
export const NLMSG_HDRLEN = 16;
/** Size of `struct nlattr`. */
export const NLA_HDRLEN = 4;
/** Attribute type flag: the payload is nested attributes. */
export const NLA_F_NESTED = 0x8000;
/** Attribute type flag: the payload is in network byte order. */
export const NLA_F_NET_BYTEORDER = 0x4000;
const NLA_TYPE_MASK = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xffff;

/** Rounds up to the 4-byte netlink alignment. */
export function nlAlign(n: number): number {
  return (n + 3) & ~3;
}

/** One received netlink message. */
export interface NetlinkMessage {
  /** `nlmsg_type`. */
  readonly type: number;
  /** `nlmsg_flags`. */
  readonly flags: number;
  /** `nlmsg_seq`. */
  readonly seq: number;
  /** `nlmsg_pid`. */
  readonly pid: number;
  /** The payload after the header (a view into the receive buffer: copy what you keep). */
  readonly payload: Uint8Array;
}

/** One attribute: its type (flags stripped) and payload. */
export interface NetlinkAttribute {
  /** The attribute type without the nested and byte-order flags. */
  readonly type: number;
  /** Whether `NLA_F_NESTED` was set. */
  readonly nested: boolean;
  /** The payload (a view: copy what you keep). */
  readonly data: Uint8Array;
}

/**
 * Splits a buffer into netlink messages.
 *
 * @param buf Received bytes.
 * @param length How many bytes of `buf` are valid.
 * @returns The messages, whose payloads are views into `buf`.
 * @throws {SyntaxError} When a message header is truncated or its length is inconsistent.
 * @example Splitting a NLMSG_DONE message
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 *
 * const w = new NetlinkWriter();
 * w.begin(3, 0x2, 7).u32(0);
 * w.end();
 * const [msg] = parseNetlinkMessages(w.bytes());
 * assert.equal(msg?.type, 3);
 * assert.equal(msg?.seq, 7);
 * ```
 */
export function parseNetlinkMessages(buf: Uint8Array, length: number = buf.length): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let off = 0;
  while (off + NLMSG_HDRLEN <= length) {
    const len = dv.getUint32(off, true);
    if (len < NLMSG_HDRLEN || off + len > length) {
      throw new SyntaxError(`Invalid netlink message at offset ${off}: length ${len} with ${length - off} bytes left`);
    }
    out.push({
      type: dv.getUint16(off + 4, true),
      flags: dv.getUint16(off + 6, true),
      seq: dv.getUint32(off + 8, true),
      pid: dv.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + len),
    });
    off += nlAlign(len);
  }
  if (off < length && length - off >= NLMSG_HDRLEN) {
    throw new SyntaxError(`Invalid netlink message at offset ${off}`);
  }
  return out;
}

/**
 * Parses a run of attributes.
 *
 * @param data Attribute bytes (a message payload after its fixed header, or a nested attribute's data).
 * @returns Every attribute in order, unknown ones included.
 * @throws {SyntaxError} When an attribute overruns the buffer.
 * @example Reading attributes
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkAttributes } from "@dp/core";
 *
 * const w = new NetlinkWriter();
 * w.attrU32(4, 1500).attrString(3, "eth0");
 * const attrs = parseNetlinkAttributes(w.bytes());
 * assert.deepEqual(attrs.map((a) => a.type), [4, 3]);
 * ```
 */
export function parseNetlinkAttributes(data: Uint8Array): NetlinkAttribute[] {
  const out: NetlinkAttribute[] = [];
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let off = 0;
  while (off + NLA_HDRLEN <= data.length) {
    const len = dv.getUint16(off, true);
    const type = dv.getUint16(off + 2, true);
    if (len < NLA_HDRLEN || off + len > data.length) {
      throw new SyntaxError(
        `Invalid netlink attribute at offset ${off}: length ${len} with ${data.length - off} bytes left`,
      );
    }
    out.push({
      type: type & NLA_TYPE_MASK,
      nested: (type & NLA_F_NESTED) !== 0,
      data: data.subarray(off + NLA_HDRLEN, off + len),
    });
    off += nlAlign(len);
  }
  return out;
}

/**
 * Indexes attributes by type (the last one of a type wins).
 *
 * @param data Attribute bytes.
 * @returns A map from attribute type to payload.
 */
export function netlinkAttributeMap(data: Uint8Array): Map<number, Uint8Array> {
  const map = new Map<number, Uint8Array>();
  for (const a of parseNetlinkAttributes(data)) map.set(a.type, a.data);
  return map;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Decodes a NUL-terminated string attribute. */
export function attrString(data: Uint8Array): string {
  const end = data.indexOf(0);
  return decoder.decode(end < 0 ? data : data.subarray(0, end));
}

/** Decodes a u8 attribute. */
export function attrU8(data: Uint8Array): number {
  return data[0] ?? 0;
}

/** Decodes a host-order u16 attribute. */
export function attrU16(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint16(0, true);
}

/** Decodes a host-order u32 attribute. */
export function attrU32(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, true);
}

/** Decodes a host-order s32 attribute. */
export function attrS32(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getInt32(0, true);
}

/** Decodes a host-order u64 attribute. */
export function attrU64(data: Uint8Array): bigint {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getBigUint64(0, true);
}

/** Decodes a network-order u16 attribute. */
export function attrBe16(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint16(0, false);
}

/** Decodes a network-order u32 attribute. */
export function attrBe32(data: Uint8Array): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(0, false);
}

/**
 * Builds netlink messages into one growable buffer: several messages can be
 * written back to back and sent in one datagram.
 *
 * @example A message with a nested attribute
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages, parseNetlinkAttributes } from "@dp/core";
 *
 * const w = new NetlinkWriter();
 * w.begin(16, 0x1, 1).zeros(16);
 * w.nest(18, () => w.attrString(1, "veth"), true);
 * w.end();
 * const [msg] = parseNetlinkMessages(w.bytes());
 * const [linkinfo] = parseNetlinkAttributes(msg!.payload.subarray(16));
 * assert.equal(linkinfo?.type, 18);
 * assert.equal(linkinfo?.nested, true);
 * ```
 */
export class NetlinkWriter {
  #buf: Uint8Array;
  #dv: DataView;
  #len = 0;
  #msgStart = -1;
  #count = 0;

  /**
   * Creates an empty writer.
   *
   * @param capacity Initial buffer size in bytes.
   */
  constructor(capacity = 4096) {
    this.#buf = new Uint8Array(capacity);
    this.#dv = new DataView(this.#buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.#len;
  }

  /** Messages completed with {@link NetlinkWriter.end}. */
  get count(): number {
    return this.#count;
  }

  /** Forgets everything written, keeping the buffer. */
  reset(): this {
    this.#len = 0;
    this.#msgStart = -1;
    this.#count = 0;
    return this;
  }

  /**
   * Starts a message; finish it with {@link NetlinkWriter.end}.
   *
   * @param type `nlmsg_type`.
   * @param flags `nlmsg_flags`.
   * @param seq `nlmsg_seq`.
   * @param pid `nlmsg_pid` (0: the kernel).
   * @returns This writer.
   */
  begin(type: number, flags: number, seq = 0, pid = 0): this {
    if (this.#msgStart >= 0) throw new Error("Cannot begin a netlink message: the previous one was not ended");
    this.#pad();
    this.#msgStart = this.#len;
    this.#reserve(NLMSG_HDRLEN);
    const o = this.#len;
    this.#dv.setUint32(o, 0, true);
    this.#dv.setUint16(o + 4, type, true);
    this.#dv.setUint16(o + 6, flags, true);
    this.#dv.setUint32(o + 8, seq, true);
    this.#dv.setUint32(o + 12, pid, true);
    this.#len += NLMSG_HDRLEN;
    return this;
  }

  /**
   * Finishes the current message by writing its length.
   *
   * @returns The message's offset in the buffer.
   */
  end(): number {
    const start = this.#msgStart;
    if (start < 0) throw new Error("Cannot end a netlink message: none was begun");
    this.#dv.setUint32(start, this.#len - start, true);
    this.#msgStart = -1;
    this.#count++;
    return start;
  }

  /** The sequence number of the message that starts at `offset`. */
  seqAt(offset: number): number {
    return this.#dv.getUint32(offset + 8, true);
  }

  /** Sets the sequence number of the message that starts at `offset`. */
  setSeqAt(offset: number, seq: number): void {
    this.#dv.setUint32(offset + 8, seq, true);
  }

  /** Writes `n` zero bytes (a fixed header to fill in later, or padding). */
  zeros(n: number): this {
    this.#reserve(n);
    this.#buf.fill(0, this.#len, this.#len + n);
    this.#len += n;
    return this;
  }

  /** Writes raw bytes. */
  raw(bytes: Uint8Array): this {
    this.#reserve(bytes.length);
    this.#buf.set(bytes, this.#len);
    this.#len += bytes.length;
    return this;
  }

  /** Writes a u8. */
  u8(v: number): this {
    this.#reserve(1);
    this.#dv.setUint8(this.#len, v);
    this.#len += 1;
    return this;
  }

  /** Writes a host-order u16. */
  u16(v: number): this {
    this.#reserve(2);
    this.#dv.setUint16(this.#len, v, true);
    this.#len += 2;
    return this;
  }

  /** Writes a host-order u32. */
  u32(v: number): this {
    this.#reserve(4);
    this.#dv.setUint32(this.#len, v >>> 0, true);
    this.#len += 4;
    return this;
  }

  /** Writes a host-order s32. */
  s32(v: number): this {
    this.#reserve(4);
    this.#dv.setInt32(this.#len, v, true);
    this.#len += 4;
    return this;
  }

  /** Writes a host-order u64. */
  u64(v: bigint): this {
    this.#reserve(8);
    this.#dv.setBigUint64(this.#len, v, true);
    this.#len += 8;
    return this;
  }

  /** Writes an attribute with raw payload bytes. */
  attr(type: number, data: Uint8Array): this {
    this.#pad();
    this.#reserve(NLA_HDRLEN + data.length);
    this.#dv.setUint16(this.#len, NLA_HDRLEN + data.length, true);
    this.#dv.setUint16(this.#len + 2, type, true);
    this.#buf.set(data, this.#len + NLA_HDRLEN);
    this.#len += NLA_HDRLEN + data.length;
    this.#pad();
    return this;
  }

  /** Writes an attribute with no payload (a flag). */
  attrFlag(type: number): this {
    return this.attr(type, new Uint8Array(0));
  }

  /** Writes a u8 attribute. */
  attrU8(type: number, v: number): this {
    return this.#scalar(type, 1, (o) => this.#dv.setUint8(o, v));
  }

  /** Writes a host-order u16 attribute. */
  attrU16(type: number, v: number): this {
    return this.#scalar(type, 2, (o) => this.#dv.setUint16(o, v, true));
  }

  /** Writes a host-order u32 attribute. */
  attrU32(type: number, v: number): this {
    return this.#scalar(type, 4, (o) => this.#dv.setUint32(o, v >>> 0, true));
  }

  /** Writes a host-order s32 attribute. */
  attrS32(type: number, v: number): this {
    return this.#scalar(type, 4, (o) => this.#dv.setInt32(o, v, true));
  }

  /** Writes a host-order u64 attribute. */
  attrU64(type: number, v: bigint): this {
    return this.#scalar(type, 8, (o) => this.#dv.setBigUint64(o, v, true));
  }

  /** Writes a network-order u16 attribute. */
  attrBe16(type: number, v: number): this {
    return this.#scalar(type, 2, (o) => this.#dv.setUint16(o, v, false));
  }

  /** Writes a network-order u32 attribute. */
  attrBe32(type: number, v: number): this {
    return this.#scalar(type, 4, (o) => this.#dv.setUint32(o, v >>> 0, false));
  }

  /** Writes a NUL-terminated string attribute. */
  attrString(type: number, s: string): this {
    const bytes = encoder.encode(s);
    const data = new Uint8Array(bytes.length + 1);
    data.set(bytes);
    return this.attr(type, data);
  }

  /**
   * Writes a nested attribute whose payload `fill` writes.
   *
   * @param type The attribute type (`NLA_F_NESTED` is added unless `flag` is false).
   * @param fill Writes the nested attributes.
   * @param flag Whether to set `NLA_F_NESTED` (iproute2 does not for most rtnetlink nests).
   * @returns This writer.
   */
  nest(type: number, fill: () => void, flag = false): this {
    this.#pad();
    const start = this.#len;
    this.#reserve(NLA_HDRLEN);
    this.#dv.setUint16(start + 2, flag ? type | NLA_F_NESTED : type, true);
    this.#len += NLA_HDRLEN;
    fill();
    this.#dv.setUint16(start, this.#len - start, true);
    this.#pad();
    return this;
  }

  /** The bytes written so far (a copy). */
  bytes(): Uint8Array {
    return this.#buf.slice(0, this.#len);
  }

  /** The bytes written so far (a view, valid until the next write). */
  view(): Uint8Array {
    return this.#buf.subarray(0, this.#len);
  }

  #scalar(type: number, size: number, write: (offset: number) => void): this {
    this.#pad();
    this.#reserve(NLA_HDRLEN + 4 + size);
    this.#dv.setUint16(this.#len, NLA_HDRLEN + size, true);
    this.#dv.setUint16(this.#len + 2, type, true);
    write(this.#len + NLA_HDRLEN);
    this.#len += NLA_HDRLEN + size;
    this.#pad();
    return this;
  }

  #pad(): void {
    const aligned = nlAlign(this.#len);
    if (aligned !== this.#len) {
      this.#reserve(aligned - this.#len);
      this.#buf.fill(0, this.#len, aligned);
      this.#len = aligned;
    }
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < this.#len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
    this.#dv = new DataView(next.buffer);
  }
}
