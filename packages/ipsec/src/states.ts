// Security associations (the SAD) over NETLINK_XFRM: the requests of
// `ip xfrm state add|update|delete|get|flush|list|allocspi`, byte for byte,
// and the decoding of the kernel's state messages.
import {
  type IpFamily,
  NetlinkError,
  type NetlinkWriter,
  NLM_F,
  NotSupportedError,
  parseNetlinkAttributes,
} from "@dp/core";
import type { XfrmContext } from "./_context.ts";
import {
  type AlgorithmKind,
  decodeAlgorithm,
  type ParsedAlgorithm,
  parseAlgorithm,
  writeAlgorithm,
} from "./_algorithms.ts";
import {
  afOf,
  checkArray,
  checkEnum,
  checkFamily,
  checkInteger,
  checkKeys,
  checkObject,
  checkU32,
  decodeLifetime,
  decodeLifetimeCurrent,
  checkAttributeLength,
  decodeMark,
  decodeSelector,
  formatAddress,
  ipFamilyOf,
  isZeroAddress,
  markText,
  modeName,
  modeNumber,
  optionalInteger,
  parseAddress,
  parseLifetime,
  parseMark,
  parseSelector,
  type ParsedLifetime,
  type ParsedMark,
  type ParsedSelector,
  protoName,
  protoNumber,
  quote,
  writeLifetime,
  writeSelector,
} from "./_codec.ts";
import { IPPROTO_XFRM, SA_INFO, SIZEOF, XFRM_MODE, XFRM_MSG, XFRM_STATE, XFRMA } from "./_uapi.ts";
import type {
  XfrmAeadAlgorithm,
  XfrmAuthAlgorithm,
  XfrmCryptAlgorithm,
  XfrmEncap,
  XfrmMark,
  XfrmMode,
  XfrmProto,
  XfrmReplayState,
  XfrmState,
  XfrmStateFlag,
  XfrmStateId,
  XfrmStateSpec,
} from "./types.ts";

// include/uapi/asm-generic/errno*.h
const ESRCH = 3;
const ENOENT = 2;
const ENOSYS = 38;
const EPROTONOSUPPORT = 93;
// include/uapi/linux/xfrm.h
const XFRMA_REPLAY_ESN_MAX = 4096;
const XFRM_SA_DIR = { in: 1, out: 2 } as const;
// include/uapi/linux/udp.h, tcp.h
const ENCAP_TYPES = { "espinudp-nonike": 1, espinudp: 2, espintcp: 7 } as const;
/** Bits of the classic replay bitmap (`struct xfrm_replay_state`): a larger window needs `XFRMA_REPLAY_ESN_VAL`. */
const CLASSIC_WINDOW = 32;
/** What iproute2 asks `XFRM_MSG_ALLOCSPI` for without `min`/`max` (PF_KEY's range). */
const SPI_MIN = 0x100;
const SPI_MAX = 0x0fff_ffff;
const CPI_MAX = 0xffff;

/**
 * How many requests {@link States.addMany} puts into one datagram, with one
 * acknowledgement for the datagram (a state request is about 300-400 bytes).
 */
const STATE_BATCH = 256;

const FLAG_NAMES = Object.entries(XFRM_STATE) as [XfrmStateFlag, number][];

/** A checked state, ready to encode. */
interface ParsedState {
  readonly family: IpFamily;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly proto: number;
  readonly spi: number;
  readonly reqid: number;
  readonly mode: number;
  readonly flags: number;
  readonly replayWindow: number;
  readonly esn: boolean;
  readonly sel: ParsedSelector | undefined;
  readonly lifetime: ParsedLifetime;
  readonly algorithms: readonly ParsedAlgorithm[];
  readonly encap: ParsedEncap | undefined;
  readonly mark: ParsedMark | undefined;
  readonly outputMark: { readonly value: number; readonly mask: number | undefined } | undefined;
  readonly ifId: number | undefined;
  readonly dir: number | undefined;
  readonly label: string;
}

interface ParsedEncap {
  readonly type: number;
  readonly sport: number;
  readonly dport: number;
  readonly oa: Uint8Array;
}

interface ParsedStateId {
  readonly family: IpFamily;
  readonly dst: Uint8Array;
  readonly src: Uint8Array;
  readonly spi: number;
  readonly proto: number;
  readonly mark: ParsedMark | undefined;
  readonly label: string;
}

interface ParsedAllocSpi {
  readonly family: IpFamily;
  readonly src: Uint8Array;
  readonly dst: Uint8Array;
  readonly proto: number;
  readonly reqid: number;
  readonly mode: number;
  readonly mark: ParsedMark | undefined;
  readonly min: number;
  readonly max: number;
  readonly label: string;
}

/** What {@link States.allocSpi} reserves an SPI for (`ip xfrm state allocspi`). */
export interface AllocSpiSpec {
  /** The source address. */
  readonly src: string;
  /** The destination address. */
  readonly dst: string;
  /**
   * The protocol.
   *
   * @default "esp"
   */
  readonly proto?: XfrmProto;
  /**
   * The request id.
   *
   * @default 0
   */
  readonly reqid?: number;
  /**
   * The mode.
   *
   * @default "transport"
   */
  readonly mode?: XfrmMode;
  /** The mark of the state. */
  readonly mark?: XfrmMark;
  /**
   * The smallest SPI to pick.
   *
   * @default 0x100
   */
  readonly min?: number;
  /**
   * The largest SPI to pick.
   *
   * @default 0x0fffffff (0xffff for "comp", whose CPI has 16 bits)
   */
  readonly max?: number;
}

/** Options for {@link States.addMany}. */
export interface AddStatesOptions {
  /**
   * Replace states that exist (`XFRM_MSG_UPDSA`, `ip xfrm state update`).
   *
   * @default false: an existing state fails with EEXIST
   */
  readonly update?: boolean;
}

/** Filters of {@link States.list}, applied to the kernel's dump as `ip xfrm state list` does. */
export interface ListStatesOptions {
  /**
   * Only states of this protocol.
   *
   * @default any
   */
  readonly proto?: XfrmProto;
  /**
   * Only states with this destination address.
   *
   * @default any
   */
  readonly dst?: string;
  /**
   * Only states with this source address.
   *
   * @default any
   */
  readonly src?: string;
  /**
   * Only states with this request id.
   *
   * @default any
   */
  readonly reqid?: number;
  /**
   * Only states with this SPI.
   *
   * @default any
   */
  readonly spi?: number;
  /**
   * Only states with this mark (value and mask, the mask 0xffffffff when left out).
   *
   * @default any
   */
  readonly mark?: XfrmMark;
}

/** A state request for {@link encodeStateRequest}. */
export type StateRequest =
  | {
      /** `"add"` (`XFRM_MSG_NEWSA`) or `"update"` (`XFRM_MSG_UPDSA`). */
      readonly op: "add" | "update";
      /** The message's sequence number. */
      readonly seq: number;
      /** The state. */
      readonly spec: XfrmStateSpec;
    }
  | {
      /** `"delete"` (`XFRM_MSG_DELSA`) or `"get"` (`XFRM_MSG_GETSA`). */
      readonly op: "delete" | "get";
      /** The message's sequence number. */
      readonly seq: number;
      /** The state. */
      readonly id: XfrmStateId;
    }
  | {
      /** `"flush"` (`XFRM_MSG_FLUSHSA`). */
      readonly op: "flush";
      /** The message's sequence number. */
      readonly seq: number;
      /**
       * Only states of this protocol.
       *
       * @default every protocol
       */
      readonly proto?: XfrmProto;
    }
  | {
      /** `"allocspi"` (`XFRM_MSG_ALLOCSPI`). */
      readonly op: "allocspi";
      /** The message's sequence number. */
      readonly seq: number;
      /** What to reserve an SPI for. */
      readonly spec: AllocSpiSpec;
    }
  | {
      /** `"list"` (`XFRM_MSG_GETSA` with `NLM_F_DUMP`). */
      readonly op: "list";
      /** The message's sequence number. */
      readonly seq: number;
    };

// ---------------------------------------------------------------------------
// Checks

const STATE_KEYS = new Set([
  "src",
  "dst",
  "proto",
  "spi",
  "reqid",
  "mode",
  "aead",
  "crypt",
  "auth",
  "replayWindow",
  "esn",
  "flags",
  "selector",
  "mark",
  "outputMark",
  "ifId",
  "lifetime",
  "encap",
  "dir",
  // What a listed state carries besides its spec: accepted and ignored, so that it can be passed back.
  "family",
  "current",
  "stats",
  "replay",
  "seq",
  "lastUsed",
]);
const ID_KEYS = new Set(["dst", "spi", "proto", "mark", "src"]);
const ALLOC_KEYS = new Set(["src", "dst", "proto", "reqid", "mode", "mark", "min", "max"]);
const LIST_KEYS = new Set(["proto", "dst", "src", "reqid", "spi", "mark"]);
const ENCAP_KEYS = new Set(["type", "sport", "dport", "oa"]);
const OUTPUT_MARK_KEYS = new Set(["value", "mask"]);

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function stateLabel(
  family: IpFamily,
  dst: Uint8Array,
  proto: number,
  spi: number,
  mark: ParsedMark | undefined,
): string {
  return `xfrm state ${formatAddress(dst, family)} ${protoName(proto)} spi ${hex(spi)}${markText(mark)}`;
}

/** Parses the two addresses of a state; they must be of one family. */
function parsePair(
  v: { readonly src?: unknown; readonly dst?: unknown; readonly family?: unknown },
  what: string,
): { family: IpFamily; src: Uint8Array; dst: Uint8Array } {
  if (v.dst === undefined) throw new TypeError(`Invalid ${what}: dst is required`);
  if (v.src === undefined) throw new TypeError(`Invalid ${what}: src is required`);
  const dst = parseAddress(v.dst, `${what}.dst`);
  const src = parseAddress(v.src, `${what}.src`);
  if (src.family !== dst.family)
    throw new RangeError(`Invalid ${what}: src ${quote(v.src)} and dst ${quote(v.dst)} are of different families`);
  const given = checkFamily(v.family, `${what}.family`);
  if (given !== undefined && given !== dst.family)
    throw new RangeError(`Invalid ${what}.family ${given}: src and dst are IPv${dst.family} addresses`);
  return { family: dst.family, src: src.bytes, dst: dst.bytes };
}

function parseEncap(v: unknown, what: string): ParsedEncap {
  checkObject(v, what);
  checkKeys(v, ENCAP_KEYS, what);
  const e = v as unknown as XfrmEncap;
  return {
    type: checkEnum(e.type, `${what}.type`, ENCAP_TYPES),
    sport: checkInteger(e.sport, `${what}.sport`, 1, 0xffff),
    dport: checkInteger(e.dport, `${what}.dport`, 1, 0xffff),
    oa: e.oa === undefined ? new Uint8Array(16) : parseAddress(e.oa, `${what}.oa`).bytes,
  };
}

function parseOutputMark(v: unknown, what: string): { value: number; mask: number | undefined } | undefined {
  if (v === undefined) return undefined;
  checkObject(v, what);
  checkKeys(v, OUTPUT_MARK_KEYS, what);
  const m = v as unknown as XfrmMark;
  const value = checkU32(m.value, `${what}.value`);
  const mask = m.mask === undefined ? undefined : checkU32(m.mask, `${what}.mask`);
  if (value === 0)
    throw new RangeError(`Invalid ${what}.value 0: the kernel sets no output mark without a value (XFRMA_SET_MARK)`);
  return { value, mask };
}

function parseFlags(v: unknown, what: string): number {
  let flags = 0;
  checkArray(v, what).forEach((f, i) => {
    flags |= checkEnum(f, `${what}[${i}]`, XFRM_STATE);
  });
  return flags;
}

/** Checks a state spec the way iproute2 and the kernel would refuse it, before anything is sent. */
function parseStateSpec(v: unknown, what: string): ParsedState {
  checkObject(v, what);
  checkKeys(v, STATE_KEYS, what);
  const s = v as unknown as XfrmStateSpec;
  const { family, src, dst } = parsePair(s, what);
  const proto = protoNumber(s.proto, `${what}.proto`);
  const spi = checkInteger(s.spi, `${what}.spi`, 0, 0xffff_ffff);
  if (spi === 0) throw new RangeError(`Invalid ${what}.spi 0: an SPI is from 1 to 0xffffffff (0 is reserved)`);
  if (proto === IPPROTO_XFRM.comp)
    throw new TypeError(
      `Invalid ${what}.proto "comp": IPcomp states need a compression algorithm, which dp does not install`,
    );
  const mode = modeNumber(s.mode, `${what}.mode`);
  if (mode === XFRM_MODE.beet && proto !== IPPROTO_XFRM.esp)
    throw new TypeError(`Invalid ${what}.mode "beet": only ESP states have the BEET mode`);
  const algorithms: ParsedAlgorithm[] = [];
  const kinds: AlgorithmKind[] = ["aead", "crypt", "auth"];
  for (const k of kinds) if (s[k] !== undefined) algorithms.push(parseAlgorithm(k, s[k], what));
  if (s.aead !== undefined && (s.crypt !== undefined || s.auth !== undefined))
    throw new TypeError(
      `Invalid ${what}: aead excludes ${s.crypt !== undefined ? "crypt" : "auth"} (an AEAD algorithm encrypts and authenticates)`,
    );
  if (proto === IPPROTO_XFRM.esp && s.aead === undefined && s.crypt === undefined)
    throw new TypeError(`Invalid ${what}: an ESP state needs aead, or crypt (with auth)`);
  if (proto === IPPROTO_XFRM.ah) {
    if (s.aead !== undefined || s.crypt !== undefined)
      throw new TypeError(
        `Invalid ${what}: an AH state only authenticates: give auth, not ${s.aead !== undefined ? "aead" : "crypt"}`,
      );
    if (s.auth === undefined) throw new TypeError(`Invalid ${what}: an AH state needs auth`);
  }
  let flags = parseFlags(s.flags, `${what}.flags`);
  if (s.esn !== undefined && typeof s.esn !== "boolean")
    throw new TypeError(`Invalid ${what}.esn: expected a boolean, got ${typeof s.esn}`);
  if (s.esn === true) flags |= XFRM_STATE.esn;
  const esn = (flags & XFRM_STATE.esn) !== 0;
  const replayWindow = optionalInteger(s.replayWindow, `${what}.replayWindow`, 0, XFRMA_REPLAY_ESN_MAX, 0);
  let dir: number | undefined;
  if (s.dir !== undefined) dir = checkEnum(s.dir, `${what}.dir`, XFRM_SA_DIR);
  if (esn && replayWindow === 0 && dir !== XFRM_SA_DIR.out)
    throw new RangeError(
      `Invalid ${what}: esn needs a replayWindow (1 to ${XFRMA_REPLAY_ESN_MAX}) on a state that may receive`,
    );
  const encap = s.encap === undefined ? undefined : parseEncap(s.encap, `${what}.encap`);
  if (encap !== undefined && proto !== IPPROTO_XFRM.esp)
    throw new TypeError(`Invalid ${what}.encap: only ESP states can be encapsulated`);
  const mark = parseMark(s.mark, `${what}.mark`);
  const ifId = s.ifId === undefined ? undefined : checkU32(s.ifId, `${what}.ifId`);
  return {
    family,
    src,
    dst,
    proto,
    spi,
    reqid: optionalInteger(s.reqid, `${what}.reqid`, 0, 0xffff_ffff, 0),
    mode,
    flags,
    replayWindow,
    esn,
    sel: s.selector === undefined ? undefined : parseSelector(s.selector, `${what}.selector`, family),
    lifetime: parseLifetime(s.lifetime, `${what}.lifetime`),
    algorithms,
    encap,
    mark,
    outputMark: parseOutputMark(s.outputMark, `${what}.outputMark`),
    ifId,
    dir,
    label: stateLabel(family, dst, proto, spi, mark),
  };
}

function parseStateId(v: unknown, what: string): ParsedStateId {
  checkObject(v, what);
  checkKeys(v, ID_KEYS, what);
  const s = v as unknown as XfrmStateId;
  if (s.dst === undefined) throw new TypeError(`Invalid ${what}: dst is required`);
  const dst = parseAddress(s.dst, `${what}.dst`);
  let src: Uint8Array = new Uint8Array(16);
  if (s.src !== undefined) {
    const a = parseAddress(s.src, `${what}.src`);
    if (a.family !== dst.family)
      throw new RangeError(`Invalid ${what}: src ${quote(s.src)} and dst ${quote(s.dst)} are of different families`);
    src = a.bytes;
  }
  const proto = protoNumber(s.proto, `${what}.proto`);
  const spi = checkInteger(s.spi, `${what}.spi`, 0, 0xffff_ffff);
  if (spi === 0) throw new RangeError(`Invalid ${what}.spi 0: an SPI is from 1 to 0xffffffff (0 is reserved)`);
  const mark = parseMark(s.mark, `${what}.mark`);
  return {
    family: dst.family,
    dst: dst.bytes,
    src,
    spi,
    proto,
    mark,
    label: stateLabel(dst.family, dst.bytes, proto, spi, mark),
  };
}

function parseAllocSpi(v: unknown, what: string): ParsedAllocSpi {
  checkObject(v, what);
  checkKeys(v, ALLOC_KEYS, what);
  const s = v as unknown as AllocSpiSpec;
  const { family, src, dst } = parsePair(s, what);
  const proto = protoNumber(s.proto, `${what}.proto`);
  const top = proto === IPPROTO_XFRM.comp ? CPI_MAX : 0xffff_ffff;
  const min = optionalInteger(s.min, `${what}.min`, 1, top, SPI_MIN);
  const max = optionalInteger(s.max, `${what}.max`, 1, top, proto === IPPROTO_XFRM.comp ? CPI_MAX : SPI_MAX);
  if (min > max) throw new RangeError(`Invalid ${what}: min ${hex(min)} is above max ${hex(max)}`);
  const mark = parseMark(s.mark, `${what}.mark`);
  return {
    family,
    src,
    dst,
    proto,
    reqid: optionalInteger(s.reqid, `${what}.reqid`, 0, 0xffff_ffff, 0),
    mode: modeNumber(s.mode, `${what}.mode`),
    mark,
    min,
    max,
    label: `an SPI for ${formatAddress(dst, family)} ${protoName(proto)}${markText(mark)}`,
  };
}

// ---------------------------------------------------------------------------
// Encoding

function bswap32(v: number): number {
  return ((v >>> 24) | ((v >>> 8) & 0xff00) | ((v & 0xff00) << 8) | ((v & 0xff) << 24)) >>> 0;
}

function bswap16(v: number): number {
  return ((v >> 8) | (v << 8)) & 0xffff;
}

/** Writes the 224 bytes of `struct xfrm_usersa_info`. */
function writeStateInfo(
  w: NetlinkWriter,
  s: {
    readonly sel: ParsedSelector | undefined;
    readonly dst: Uint8Array;
    readonly spi: number;
    readonly proto: number;
    readonly src: Uint8Array;
    readonly lifetime: ParsedLifetime | undefined;
    readonly reqid: number;
    readonly family: IpFamily;
    readonly mode: number;
    readonly replayWindow: number;
    readonly flags: number;
  },
): void {
  if (s.sel === undefined) w.zeros(SIZEOF.selector);
  else writeSelector(w, s.sel);
  w.raw(s.dst).u32(bswap32(s.spi)).u8(s.proto).zeros(3);
  w.raw(s.src);
  if (s.lifetime === undefined) w.zeros(SIZEOF.lifetime_cfg);
  else writeLifetime(w, s.lifetime);
  w.zeros(SIZEOF.lifetime_cur + SIZEOF.stats);
  w.u32(0).u32(s.reqid).u16(afOf(s.family)).u8(s.mode).u8(s.replayWindow).u8(s.flags).zeros(7);
}

function writeMarkAttr(w: NetlinkWriter, m: ParsedMark | undefined): void {
  w.u16(4 + SIZEOF.mark)
    .u16(XFRMA.MARK)
    .u32(m?.value ?? 0)
    .u32(m?.mask ?? 0);
}

/**
 * Writes an add or update request in iproute2's order: the algorithms and
 * the encapsulation (as given on its command line), then the replay state,
 * mark, interface id, output mark and direction.
 */
function writeState(w: NetlinkWriter, op: "add" | "update", seq: number, s: ParsedState, ack = true): void {
  w.begin(op === "add" ? XFRM_MSG.NEWSA : XFRM_MSG.UPDSA, NLM_F.REQUEST | (ack ? NLM_F.ACK : 0), seq);
  const bigWindow = s.esn || s.replayWindow > CLASSIC_WINDOW;
  writeStateInfo(w, { ...s, replayWindow: bigWindow ? 0 : s.replayWindow });
  for (const a of s.algorithms) writeAlgorithm(w, a);
  if (s.encap !== undefined) {
    const e = s.encap;
    w.u16(4 + SIZEOF.encap_tmpl).u16(XFRMA.ENCAP);
    w.u16(e.type).u16(bswap16(e.sport)).u16(bswap16(e.dport)).zeros(2).raw(e.oa);
  }
  if (bigWindow) {
    // struct xfrm_replay_state_esn without its bitmap, as iproute2 sends it.
    w.u16(4 + SIZEOF.replay_state_esn).u16(XFRMA.REPLAY_ESN_VAL);
    w.u32(Math.ceil(s.replayWindow / 32))
      .u32(0)
      .u32(0)
      .u32(0)
      .u32(0)
      .u32(s.replayWindow);
  }
  if (s.mark !== undefined && s.mark.mask !== 0) writeMarkAttr(w, s.mark);
  if (s.ifId !== undefined) w.attrU32(XFRMA.IF_ID, s.ifId);
  if (s.outputMark !== undefined) {
    w.attrU32(XFRMA.SET_MARK, s.outputMark.value);
    if (s.outputMark.mask !== undefined && s.outputMark.mask !== 0) w.attrU32(XFRMA.SET_MARK_MASK, s.outputMark.mask);
  }
  if (s.dir !== undefined) w.attrU8(XFRMA.SA_DIR, s.dir);
  w.end();
}

/** Writes a get or delete request: `struct xfrm_usersa_id`, `XFRMA_SRCADDR` (always, as iproute2), then the mark. */
function writeStateId(w: NetlinkWriter, op: "delete" | "get", seq: number, id: ParsedStateId): void {
  w.begin(
    op === "delete" ? XFRM_MSG.DELSA : XFRM_MSG.GETSA,
    op === "delete" ? NLM_F.REQUEST | NLM_F.ACK : NLM_F.REQUEST,
    seq,
  );
  w.raw(id.dst).u32(bswap32(id.spi)).u16(afOf(id.family)).u8(id.proto).u8(0);
  w.attr(XFRMA.SRCADDR, id.src);
  // iproute2 sends the mark only when value & mask is not 0.
  if (id.mark !== undefined && (id.mark.value & id.mark.mask) !== 0) writeMarkAttr(w, id.mark);
  w.end();
}

function writeAllocSpi(w: NetlinkWriter, seq: number, a: ParsedAllocSpi): void {
  w.begin(XFRM_MSG.ALLOCSPI, NLM_F.REQUEST, seq);
  writeStateInfo(w, { ...a, sel: undefined, spi: 0, lifetime: undefined, replayWindow: 0, flags: 0 });
  w.u32(a.min).u32(a.max);
  if (a.mark !== undefined && (a.mark.value & a.mark.mask) !== 0) writeMarkAttr(w, a.mark);
  w.end();
}

function writeFlush(w: NetlinkWriter, seq: number, proto: number): void {
  // struct xfrm_usersa_flush is one byte: the message is 17 bytes long, as iproute2 sends it.
  w.begin(XFRM_MSG.FLUSHSA, NLM_F.REQUEST | NLM_F.ACK, seq).u8(proto);
  w.end();
}

function writeList(w: NetlinkWriter, seq: number): void {
  // iproute2 sends an empty XFRMA_ADDRESS_FILTER (struct xfrm_address_filter, 36 bytes): no filtering.
  w.begin(XFRM_MSG.GETSA, NLM_F.REQUEST | NLM_F.DUMP, seq);
  w.attr(XFRMA.ADDRESS_FILTER, new Uint8Array(36));
  w.end();
}

/**
 * Encodes a state request as `ip xfrm state` sends it, after checking it
 * as the {@link States} methods do. Keys are copied into the request and
 * appear in no error message.
 *
 * @param w The writer to append the message to.
 * @param request The operation, sequence number and state.
 * @throws {TypeError} When a field has the wrong type or name, or an algorithm is not supported.
 * @throws {SyntaxError} When an address or prefix is malformed.
 * @throws {RangeError} When a number is out of range (SPI 0), a key or ICV length does not fit its algorithm, or families disagree.
 * @example The request of an AES-GCM state add
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter } from "@dp/core";
 * import { encodeStateRequest } from "@dp/ipsec";
 *
 * const w = new NetlinkWriter();
 * const key = new Uint8Array(20); // an AES-128 key and the 4-byte salt
 * encodeStateRequest(w, {
 *   op: "add",
 *   seq: 1,
 *   spec: { src: "10.0.0.1", dst: "10.0.0.2", spi: 3, aead: { name: "rfc4106(gcm(aes))", key, icvBits: 128 } },
 * });
 * assert.equal(w.length, 336);
 * ```
 */
export function encodeStateRequest(w: NetlinkWriter, request: StateRequest): void {
  checkObject(request, "state request");
  switch (request.op) {
    case "add":
    case "update":
      writeState(w, request.op, request.seq, parseStateSpec(request.spec, "xfrm state"));
      return;
    case "delete":
    case "get":
      writeStateId(w, request.op, request.seq, parseStateId(request.id, "xfrm state id"));
      return;
    case "flush":
      writeFlush(
        w,
        request.seq,
        request.proto === undefined ? 0 : protoNumber(request.proto, "xfrm state flush proto"),
      );
      return;
    case "allocspi":
      writeAllocSpi(w, request.seq, parseAllocSpi(request.spec, "xfrm allocspi"));
      return;
    case "list":
      writeList(w, request.seq);
      return;
    default:
      throw new TypeError(`Invalid state request op ${quote((request as { op: unknown }).op)}`);
  }
}

// ---------------------------------------------------------------------------
// Decoding

function u32At(data: Uint8Array, off: number): number {
  return new DataView(data.buffer, data.byteOffset, data.byteLength).getUint32(off, true);
}

/**
 * Decodes a state message (`XFRM_MSG_NEWSA`, `_UPDSA`, a dump part, the
 * reply of a get or allocspi, or the `struct xfrm_usersa_info` inside a
 * delete or expire event): the struct and its attributes. Keys are
 * copied out of the message. Unset parts are left out: no `mark` without
 * `XFRMA_MARK`, no `lifetime` when no limit is set, no algorithm the
 * state does not have.
 *
 * @param payload The message payload (after the netlink header).
 * @returns The state.
 * @throws {SyntaxError} When the payload is shorter than `struct
 *   xfrm_usersa_info`, or an attribute (algorithm, key, mark, encap, output
 *   mark) is shorter than its struct; the message names the attribute and
 *   the lengths, never key bytes.
 * @example Decoding what encodeStateRequest() wrote
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter } from "@dp/core";
 * import { decodeState, encodeStateRequest } from "@dp/ipsec";
 *
 * const w = new NetlinkWriter();
 * const key = new Uint8Array(20);
 * encodeStateRequest(w, {
 *   op: "add",
 *   seq: 1,
 *   spec: { src: "10.0.0.1", dst: "10.0.0.2", spi: 3, mode: "tunnel", aead: { name: "rfc4106(gcm(aes))", key, icvBits: 128 } },
 * });
 * const state = decodeState(w.view().subarray(16));
 * assert.equal(state.spi, 3);
 * assert.equal(state.mode, "tunnel");
 * assert.equal(state.aead?.icvBits, 128);
 * ```
 */
export function decodeState(payload: Uint8Array): XfrmState {
  if (payload.length < SIZEOF.usersa_info)
    throw new SyntaxError(
      `Invalid xfrm state message: ${payload.length} bytes, expected at least ${SIZEOF.usersa_info}`,
    );
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const af = dv.getUint16(SA_INFO.family, true);
  const family: IpFamily = ipFamilyOf(af) ?? 4;
  const daddr = payload.subarray(SA_INFO.id, SA_INFO.id + 16);
  const spi = dv.getUint32(SA_INFO.id + 16, false);
  const proto = protoName(dv.getUint8(SA_INFO.id + 20));
  const flagBits = dv.getUint8(SA_INFO.flags);
  const flags = FLAG_NAMES.filter(([, bit]) => (flagBits & bit) !== 0).map(([name]) => name);
  const headerWindow = dv.getUint8(SA_INFO.replay_window);
  const lifetime = decodeLifetime(dv, SA_INFO.lft);
  const out: {
    -readonly [K in keyof XfrmState]: XfrmState[K];
  } = {
    family,
    src: formatAddress(payload.subarray(SA_INFO.saddr, SA_INFO.saddr + 16), family),
    dst: formatAddress(daddr, family),
    proto,
    spi,
    reqid: dv.getUint32(SA_INFO.reqid, true),
    mode: modeName(dv.getUint8(SA_INFO.mode)),
    replayWindow: headerWindow,
    flags,
    selector: decodeSelector(dv, SA_INFO.sel, family),
    current: decodeLifetimeCurrent(dv, SA_INFO.curlft),
    stats: {
      replayWindow: dv.getUint32(SA_INFO.stats, true),
      replay: dv.getUint32(SA_INFO.stats + 4, true),
      integrityFailed: dv.getUint32(SA_INFO.stats + 8, true),
    },
    seq: dv.getUint32(SA_INFO.seq, true),
  };
  if ((flagBits & XFRM_STATE.esn) !== 0) out.esn = true;
  if (Object.keys(lifetime).length > 0) out.lifetime = lifetime;
  const attrs = parseNetlinkAttributes(payload.subarray((SIZEOF.usersa_info + 3) & ~3));
  let auth: XfrmAuthAlgorithm | undefined;
  let authTrunc: XfrmAuthAlgorithm | undefined;
  let setMark: number | undefined;
  let setMarkMask: number | undefined;
  for (const a of attrs) {
    const d = a.data;
    switch (a.type) {
      case XFRMA.ALG_AEAD: {
        const alg = decodeAlgorithm(d, true, "XFRMA_ALG_AEAD");
        out.aead = { name: alg.name, key: alg.key, icvBits: alg.bits ?? 0 } satisfies XfrmAeadAlgorithm;
        break;
      }
      case XFRMA.ALG_CRYPT: {
        const alg = decodeAlgorithm(d, false, "XFRMA_ALG_CRYPT");
        out.crypt = { name: alg.name, key: alg.key } satisfies XfrmCryptAlgorithm;
        break;
      }
      case XFRMA.ALG_AUTH_TRUNC: {
        const alg = decodeAlgorithm(d, true, "XFRMA_ALG_AUTH_TRUNC");
        authTrunc = { name: alg.name, key: alg.key, truncBits: alg.bits ?? 0 };
        break;
      }
      case XFRMA.ALG_AUTH: {
        const alg = decodeAlgorithm(d, false, "XFRMA_ALG_AUTH");
        auth = { name: alg.name, key: alg.key };
        break;
      }
      case XFRMA.ENCAP:
        checkAttributeLength(d, SIZEOF.encap_tmpl, "XFRMA_ENCAP");
        {
          const e = new DataView(d.buffer, d.byteOffset, d.byteLength);
          const t = e.getUint16(0, true);
          const type = (Object.entries(ENCAP_TYPES).find(([, n]) => n === t)?.[0] ?? "espinudp") as XfrmEncap["type"];
          const oa = d.subarray(8, 24);
          const encap: { -readonly [K in keyof XfrmEncap]: XfrmEncap[K] } = {
            type,
            sport: e.getUint16(2, false),
            dport: e.getUint16(4, false),
          };
          if (!isZeroAddress(oa)) encap.oa = formatAddress(oa, family);
          out.encap = encap;
        }
        break;
      case XFRMA.MARK: {
        const m = decodeMark(d);
        if (m !== undefined) out.mark = m;
        break;
      }
      case XFRMA.SET_MARK:
        checkAttributeLength(d, 4, "XFRMA_SET_MARK");
        setMark = u32At(d, 0);
        break;
      case XFRMA.SET_MARK_MASK:
        checkAttributeLength(d, 4, "XFRMA_SET_MARK_MASK");
        setMarkMask = u32At(d, 0);
        break;
      case XFRMA.IF_ID:
        if (d.length >= 4) out.ifId = u32At(d, 0);
        break;
      case XFRMA.SA_DIR:
        if (d.length >= 1) {
          if (d[0] === XFRM_SA_DIR.in) out.dir = "in";
          else if (d[0] === XFRM_SA_DIR.out) out.dir = "out";
        }
        break;
      case XFRMA.LASTUSED:
        if (d.length >= 8) out.lastUsed = new DataView(d.buffer, d.byteOffset, 8).getBigUint64(0, true);
        break;
      case XFRMA.REPLAY_VAL:
        // struct xfrm_replay_state: oseq, seq, bitmap.
        if (d.length >= SIZEOF.replay_state)
          out.replay = { oseq: u32At(d, 0), seq: u32At(d, 4), oseqHi: 0, seqHi: 0, window: headerWindow };
        break;
      case XFRMA.REPLAY_ESN_VAL:
        // struct xfrm_replay_state_esn: bmp_len, oseq, seq, oseq_hi, seq_hi, replay_window, bmp[].
        if (d.length >= SIZEOF.replay_state_esn) {
          const replay: XfrmReplayState = {
            oseq: u32At(d, 4),
            seq: u32At(d, 8),
            oseqHi: u32At(d, 12),
            seqHi: u32At(d, 16),
            window: u32At(d, 20),
          };
          out.replay = replay;
          out.replayWindow = replay.window;
        }
        break;
      default:
        break;
    }
  }
  const authAlg = authTrunc ?? auth;
  if (authAlg !== undefined) out.auth = authAlg;
  if (setMark !== undefined) out.outputMark = { value: setMark, mask: setMarkMask ?? 0xffff_ffff };
  return out;
}

// ---------------------------------------------------------------------------
// The handle's part

/** The kernel option a state of this protocol and family needs. */
function configOf(proto: number, family: IpFamily): string {
  const six = family === 6 ? "6" : "";
  if (proto === IPPROTO_XFRM.ah) return `CONFIG_INET${six}_AH`;
  if (proto === IPPROTO_XFRM.comp) return `CONFIG_INET${six}_IPCOMP`;
  return `CONFIG_INET${six}_ESP`;
}

/**
 * Turns the kernel's answer that it cannot build a state (ENOSYS: no such
 * algorithm, EPROTONOSUPPORT: no such protocol) into a
 * {@link NotSupportedError} naming the kernel option.
 */
function stateFailure(err: unknown, label: string, proto: number, family: IpFamily): unknown {
  if (!(err instanceof NetlinkError) || (err.errno !== ENOSYS && err.errno !== EPROTONOSUPPORT)) return err;
  const said = err.extAck === undefined ? err.code : `${err.code}: ${err.extAck}`;
  return new NotSupportedError(`${label} (needs ${configOf(proto, family)} and its crypto; the kernel said ${said})`, {
    cause: err,
  });
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The security associations of an {@link Xfrm} handle's namespace
 * (`ip xfrm state`). Every request equals what iproute2 sends for the same
 * command. Keys go to the kernel only: no message, log or error contains
 * them.
 *
 * @example Reserving an SPI (a larval state)
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openXfrm } from "@dp/ipsec";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using x = openXfrm({ netns: ns.ns });
 * const larval = x.states.allocSpi({ src: "10.0.0.1", dst: "10.0.0.2", min: 0x100, max: 0x1ff });
 * assert.ok(larval.spi >= 0x100 && larval.spi <= 0x1ff);
 * assert.equal(x.states.list().length, 1);
 * ```
 */
export class States {
  #ctx: XfrmContext;

  /**
   * Binds to a handle's context.
   *
   * @internal Reached through {@link Xfrm.states}.
   * @param ctx The handle's socket and namespace.
   */
  constructor(ctx: XfrmContext) {
    this.#ctx = ctx;
  }

  /**
   * Adds a state (`ip xfrm state add`, `XFRM_MSG_NEWSA`).
   *
   * @param spec The state.
   * @throws {TypeError} When a field has the wrong type, an algorithm is not supported, or algorithms are combined wrongly (aead with crypt or auth, ESP without encryption).
   * @throws {SyntaxError} When an address or prefix is malformed.
   * @throws {RangeError} When a number is out of range (SPI 0), a key or ICV length does not fit its algorithm, or ESN lacks a replay window.
   * @throws {NotSupportedError} When the kernel lacks the protocol or algorithm (ENOSYS, EPROTONOSUPPORT: `CONFIG_INET_ESP`, `CONFIG_INET6_ESP`).
   * @throws {NetlinkError} EEXIST when the state exists; another refusal, naming the state.
   * @kernel 2.6 ESN needs 3.2, output marks 4.19, interface ids 4.19, `dir` 6.10.
   * @capability CAP_NET_ADMIN
   * @example An AES-GCM tunnel state
   * ```ts no-run
   * import { openXfrm } from "@dp/ipsec";
   *
   * using x = openXfrm();
   * const key = crypto.getRandomValues(new Uint8Array(20)); // AES-128 and a 4-byte salt
   * x.states.add({
   *   src: "10.0.0.1",
   *   dst: "10.0.0.2",
   *   spi: 3,
   *   reqid: 1,
   *   mode: "tunnel",
   *   aead: { name: "rfc4106(gcm(aes))", key, icvBits: 128 },
   * });
   * ```
   */
  add(spec: XfrmStateSpec): void {
    this.#modify("add", spec);
  }

  /**
   * Replaces a state, or adds it (`ip xfrm state update`, `XFRM_MSG_UPDSA`).
   * The kernel only updates what may change on a live state (encapsulation,
   * care-of address, lifetimes, marks); a state whose keys differ must be
   * deleted and added.
   *
   * @param spec The state.
   * @throws {TypeError} As {@link States.add}.
   * @throws {SyntaxError} As {@link States.add}.
   * @throws {RangeError} As {@link States.add}.
   * @throws {NotSupportedError} As {@link States.add}.
   * @throws {NetlinkError} When the kernel refuses, naming the state.
   * @capability CAP_NET_ADMIN
   * @example Changing a state's limits
   * ```ts no-run
   * import { openXfrm } from "@dp/ipsec";
   *
   * using x = openXfrm();
   * const [state] = x.states.list({ spi: 3 });
   * if (state) x.states.update({ ...state, lifetime: { hardPackets: 1_000_000n } });
   * ```
   */
  update(spec: XfrmStateSpec): void {
    this.#modify("update", spec);
  }

  /**
   * Adds (or with `update`, replaces) many states with few system calls:
   * up to 256 requests per datagram, one acknowledgement for each
   * datagram. Every spec is checked before anything is sent; the kernel
   * applies the requests in order, and a refusal names the spec (by
   * index) and leaves those before it installed.
   *
   * @param specs The states.
   * @param options Whether to replace existing states.
   * @throws {TypeError} As {@link States.add}, naming `specs[i]`; also when `specs` is not an array.
   * @throws {SyntaxError} As {@link States.add}.
   * @throws {RangeError} As {@link States.add}.
   * @throws {NotSupportedError} As {@link States.add}.
   * @throws {NetlinkError} When the kernel refuses a spec, naming it and its index.
   * @capability CAP_NET_ADMIN
   * @example The two directions of a tunnel
   * ```ts no-run
   * import { openXfrm } from "@dp/ipsec";
   *
   * using x = openXfrm();
   * const aead = { name: "rfc4106(gcm(aes))", key: crypto.getRandomValues(new Uint8Array(20)), icvBits: 128 };
   * x.states.addMany([
   *   { src: "10.0.0.1", dst: "10.0.0.2", spi: 3, mode: "tunnel", aead },
   *   { src: "10.0.0.2", dst: "10.0.0.1", spi: 3, mode: "tunnel", aead },
   * ]);
   * ```
   */
  addMany(specs: readonly XfrmStateSpec[], options: AddStatesOptions = {}): void {
    if (!Array.isArray(specs)) throw new TypeError(`Invalid xfrm state specs: expected an array, got ${typeof specs}`);
    checkObject(options, "addMany options");
    checkKeys(options, new Set(["update"]), "addMany options");
    if (options.update !== undefined && typeof options.update !== "boolean")
      throw new TypeError(`Invalid addMany options.update: expected a boolean, got ${typeof options.update}`);
    const op = options.update === true ? "update" : "add";
    const parsed = (specs as readonly unknown[]).map((s, i) => parseStateSpec(s, `specs[${i}]`));
    const nl = this.#ctx.nl;
    const opName = op === "add" ? "XFRM_MSG_NEWSA" : "XFRM_MSG_UPDSA";
    for (let start = 0; start < parsed.length; start += STATE_BATCH) {
      const end = Math.min(start + STATE_BATCH, parsed.length);
      const w = nl.writer();
      const first = nl.nextSeq();
      for (let i = start; i < end; i++) {
        writeState(w, op, i === start ? first : nl.nextSeq(), parsed[i] as ParsedState, i === end - 1);
      }
      try {
        nl.request(w, `${op} xfrm states ${start}-${end - 1} of ${parsed.length}`, opName);
      } catch (err) {
        if (!(err instanceof NetlinkError) || err.seq === undefined) throw err;
        const i = start + ((err.seq - first) >>> 0);
        const s = parsed[i] as ParsedState;
        const named = new NetlinkError(`Cannot ${op} ${s.label} (specs[${i}] of ${parsed.length})`, {
          op: err.op,
          errno: err.errno,
          extAck: err.extAck,
          extAckOffset: err.extAckOffset,
          seq: err.seq,
          cause: err,
        });
        throw stateFailure(named, `${s.label} (specs[${i}] of ${parsed.length})`, s.proto, s.family);
      }
    }
  }

  #modify(op: "add" | "update", spec: XfrmStateSpec): void {
    const s = parseStateSpec(spec, "xfrm state");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeState(w, op, nl.nextSeq(), s);
    try {
      nl.request(w, `${op} ${s.label}`, op === "add" ? "XFRM_MSG_NEWSA" : "XFRM_MSG_UPDSA");
    } catch (err) {
      throw stateFailure(err, s.label, s.proto, s.family);
    }
  }

  /**
   * Deletes a state (`ip xfrm state delete`, `XFRM_MSG_DELSA`).
   *
   * The kernel finds the state to delete by destination, SPI and protocol,
   * then by mark: it takes the first state whose mark matches the request's
   * mark value under that state's own mask. A state without a mark (mask
   * 0) matches any request, so an unmarked state with the same destination
   * and SPI added after a marked one is found first and deleted instead;
   * the same happens with a state whose mask covers fewer bits than the one meant.
   * Check with {@link States.get} or {@link States.list} when unmarked
   * states of other software may share a destination and SPI.
   *
   * @param id The destination, SPI and protocol (and the mark, when states differ by it).
   * @returns Whether a state was deleted (false when there was none).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {SyntaxError} When an address is malformed.
   * @throws {RangeError} When a number is out of range (SPI 0).
   * @throws {NetlinkError} When the kernel refuses for another reason than ESRCH.
   * @capability CAP_NET_ADMIN
   * @example Deleting a reserved SPI
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * const { spi } = x.states.allocSpi({ src: "10.0.0.1", dst: "10.0.0.2" });
   * assert.equal(x.states.delete({ dst: "10.0.0.2", spi }), true);
   * assert.equal(x.states.delete({ dst: "10.0.0.2", spi }), false);
   * ```
   */
  delete(id: XfrmStateId): boolean {
    const p = parseStateId(id, "xfrm state id");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeStateId(w, "delete", nl.nextSeq(), p);
    try {
      nl.request(w, `delete ${p.label}`, "XFRM_MSG_DELSA");
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && (err.errno === ESRCH || err.errno === ENOENT)) return false;
      throw err;
    }
  }

  /**
   * Gets a state by destination, SPI and protocol (`ip xfrm state get`).
   *
   * @param id The state.
   * @returns The state with its counters and keys, or undefined when there is none.
   * @throws {TypeError} When a field has the wrong type.
   * @throws {SyntaxError} When an address is malformed.
   * @throws {RangeError} When a number is out of range.
   * @throws {NetlinkError} When the kernel refuses for another reason than ESRCH.
   * @capability CAP_NET_ADMIN
   * @example Reading a reserved SPI back
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * const { spi } = x.states.allocSpi({ src: "10.0.0.1", dst: "10.0.0.2", reqid: 7 });
   * assert.equal(x.states.get({ dst: "10.0.0.2", spi })?.reqid, 7);
   * assert.equal(x.states.get({ dst: "10.0.0.3", spi }), undefined);
   * ```
   */
  get(id: XfrmStateId): XfrmState | undefined {
    const p = parseStateId(id, "xfrm state id");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeStateId(w, "get", nl.nextSeq(), p);
    let replies;
    try {
      replies = nl.request(w, `get ${p.label}`, "XFRM_MSG_GETSA");
    } catch (err) {
      if (err instanceof NetlinkError && (err.errno === ESRCH || err.errno === ENOENT)) return undefined;
      throw err;
    }
    const m = replies.find((r) => r.type === XFRM_MSG.NEWSA);
    return m === undefined ? undefined : decodeState(m.payload);
  }

  /**
   * Lists the states (`ip xfrm state list`), filtered here by the options
   * as iproute2 filters them.
   *
   * @param options Filters.
   * @returns The states, in the kernel's order, with their counters and keys.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {SyntaxError} When an address is malformed, or the kernel's
   *   reply is truncated (a short message or attribute).
   * @throws {NetlinkError} When the dump fails.
   * @capability CAP_NET_ADMIN
   * @example Listing by request id
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.states.allocSpi({ src: "10.0.0.1", dst: "10.0.0.2", reqid: 1 });
   * x.states.allocSpi({ src: "10.0.0.1", dst: "10.0.0.3", reqid: 2 });
   * assert.deepEqual(x.states.list({ reqid: 2 }).map((s) => s.dst), ["10.0.0.3"]);
   * ```
   */
  list(options: ListStatesOptions = {}): XfrmState[] {
    const what = "xfrm state list options";
    checkObject(options, what);
    checkKeys(options, LIST_KEYS, what);
    const proto = options.proto === undefined ? undefined : protoName(protoNumber(options.proto, `${what}.proto`));
    const dst = options.dst === undefined ? undefined : parseAddress(options.dst, `${what}.dst`);
    const src = options.src === undefined ? undefined : parseAddress(options.src, `${what}.src`);
    const reqid = options.reqid === undefined ? undefined : checkU32(options.reqid, `${what}.reqid`);
    const spi = options.spi === undefined ? undefined : checkU32(options.spi, `${what}.spi`);
    const mark = parseMark(options.mark, `${what}.mark`);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeList(w, 0);
    const out: XfrmState[] = [];
    for (const m of nl.dump(w, "list xfrm states", "XFRM_MSG_GETSA")) {
      if (m.type !== XFRM_MSG.NEWSA) continue;
      const s = decodeState(m.payload);
      if (proto !== undefined && s.proto !== proto) continue;
      if (reqid !== undefined && s.reqid !== reqid) continue;
      if (spi !== undefined && s.spi !== spi) continue;
      if (dst !== undefined && (s.family !== dst.family || !sameBytes(parseAddress(s.dst, "dst").bytes, dst.bytes)))
        continue;
      if (src !== undefined && (s.family !== src.family || !sameBytes(parseAddress(s.src, "src").bytes, src.bytes)))
        continue;
      if (mark !== undefined && (s.mark?.value !== mark.value || s.mark.mask !== mark.mask)) continue;
      out.push(s);
    }
    return out;
  }

  /**
   * Deletes every state, or those of one protocol (`ip xfrm state flush`).
   *
   * @param proto Only states of this protocol.
   * @throws {TypeError} When `proto` is not a protocol name.
   * @throws {NetlinkError} When the kernel refuses.
   * @capability CAP_NET_ADMIN
   * @example Flushing
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.states.allocSpi({ src: "10.0.0.1", dst: "10.0.0.2" });
   * x.states.flush();
   * assert.equal(x.states.list().length, 0);
   * ```
   */
  flush(proto?: XfrmProto): void {
    const n = proto === undefined ? 0 : protoNumber(proto, "xfrm state flush proto");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeFlush(w, nl.nextSeq(), n);
    nl.request(w, proto === undefined ? "flush xfrm states" : `flush xfrm ${proto} states`, "XFRM_MSG_FLUSHSA");
  }

  /**
   * Reserves an SPI (`ip xfrm state allocspi`, `XFRM_MSG_ALLOCSPI`): the
   * kernel creates a larval state with a free SPI from `min` to `max`,
   * which a later {@link States.update} with that SPI completes (a key
   * manager's first step). A larval state expires after 30 seconds unless
   * it is updated.
   *
   * @param spec The addresses, protocol, request id, mode, mark and SPI range.
   * @returns The larval state, with its SPI.
   * @throws {TypeError} When a field has the wrong type.
   * @throws {SyntaxError} When an address is malformed.
   * @throws {RangeError} When a number is out of range or `min` is above `max`.
   * @throws {NetlinkError} ENOENT when no SPI in the range is free; another refusal.
   * @capability CAP_NET_ADMIN
   * @example Reserving an SPI in a range
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * const s = x.states.allocSpi({ src: "fd00::1", dst: "fd00::2", min: 0x200, max: 0x200 });
   * assert.equal(s.spi, 0x200);
   * assert.equal(s.family, 6);
   * ```
   */
  allocSpi(spec: AllocSpiSpec): XfrmState {
    const a = parseAllocSpi(spec, "xfrm allocspi");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeAllocSpi(w, nl.nextSeq(), a);
    let replies;
    try {
      replies = nl.request(w, `allocate ${a.label}`, "XFRM_MSG_ALLOCSPI");
    } catch (err) {
      throw stateFailure(err, a.label, a.proto, a.family);
    }
    const m = replies.find((r) => r.type === XFRM_MSG.NEWSA);
    if (m === undefined) throw new Error(`Cannot allocate ${a.label}: the kernel answered without a state`);
    return decodeState(m.payload);
  }
}
