// testRun(): BPF_PROG_TEST_RUN on a built packet, with the verdict named
// for XDP and tc programs, the context given as an object, and the output
// packet parsed on demand.

import type { BpfProgram, ProgramType } from "@dp/core";
import type { ParsedPacket } from "./headers.ts";
import { parsePacket } from "./parse.ts";

/**
 * An XDP program's verdict (`enum xdp_action`).
 *
 * @useDeclaredType
 */
export type XdpVerdict = "XDP_ABORTED" | "XDP_DROP" | "XDP_PASS" | "XDP_TX" | "XDP_REDIRECT";

/**
 * A tc program's verdict (`TC_ACT_*` in `linux/pkt_cls.h`).
 *
 * @useDeclaredType
 */
export type TcVerdict =
  | "TC_ACT_UNSPEC"
  | "TC_ACT_OK"
  | "TC_ACT_RECLASSIFY"
  | "TC_ACT_SHOT"
  | "TC_ACT_PIPE"
  | "TC_ACT_STOLEN"
  | "TC_ACT_QUEUED"
  | "TC_ACT_REPEAT"
  | "TC_ACT_REDIRECT"
  | "TC_ACT_TRAP";

/** The context of an XDP test run (`struct xdp_md`): what the kernel lets a test set. */
export interface XdpContext {
  /**
   * The receiving interface's index, in the calling thread's network namespace.
   *
   * @default 0 (the loopback device of the test run)
   */
  readonly ingressIfindex?: number;
  /**
   * The receive queue; must exist on `ingressIfindex`.
   *
   * @default 0
   */
  readonly rxQueueIndex?: number;
}

/**
 * The context of a test run for programs that see a `struct __sk_buff`
 * (tc, socket filters, cgroup skb, lwt): the fields the kernel lets a test set.
 */
export interface SkbContext {
  /**
   * `skb->mark`.
   *
   * @default 0
   */
  readonly mark?: number;
  /**
   * `skb->priority`.
   *
   * @default 0
   */
  readonly priority?: number;
  /**
   * `skb->ingress_ifindex`.
   *
   * @default 0
   */
  readonly ingressIfindex?: number;
  /**
   * `skb->ifindex`: the device the packet is on, in the calling thread's network namespace.
   *
   * @default 0 (the loopback device)
   */
  readonly ifindex?: number;
  /**
   * `skb->cb`: up to five 32-bit words.
   *
   * @default [0, 0, 0, 0, 0]
   */
  readonly cb?: readonly number[];
  /**
   * `skb->tstamp` in nanoseconds.
   *
   * @default 0n
   */
  readonly tstamp?: bigint;
  /**
   * `skb->wire_len`: at least the packet's length.
   *
   * @default the packet's length
   */
  readonly wireLen?: number;
  /**
   * `skb->gso_segs`.
   *
   * @default 0
   */
  readonly gsoSegs?: number;
  /**
   * `skb->gso_size`.
   *
   * @default 0
   */
  readonly gsoSize?: number;
}

/** Options for {@link testRun}. */
export interface PacketTestRunOptions {
  /**
   * How many times to run the program; `duration` is the mean.
   *
   * @default 1
   */
  readonly repeat?: number;
  /**
   * The context: an object for XDP ({@link XdpContext}) and `__sk_buff`
   * programs ({@link SkbContext}), or raw bytes for any program type.
   *
   * @default none
   */
  readonly ctx?: XdpContext | SkbContext | Uint8Array;
  /**
   * Bytes reserved for the output packet.
   *
   * @default the packet's length + 4096
   */
  readonly dataOutSize?: number;
}

/** What {@link testRun} reports. */
export interface PacketTestRunResult {
  /** The verdict by name, for XDP and tc programs; `undefined` for other program types and unknown values. */
  readonly verdict: XdpVerdict | TcVerdict | undefined;
  /** The program's return value as the kernel reports it (a u32: `TC_ACT_UNSPEC` is 0xffffffff). */
  readonly retval: number;
  /** The packet as the program left it. */
  readonly packet: Uint8Array;
  /**
   * {@link PacketTestRunResult.packet} parsed (on first access).
   *
   * @throws {PacketParseError} When the output packet cannot be parsed.
   */
  readonly parsed: ParsedPacket;
  /** Mean run time in nanoseconds. */
  readonly duration: number;
  /** The context as the program left it, when a context was given. */
  readonly ctx: Uint8Array | undefined;
}

const XDP_VERDICTS: readonly XdpVerdict[] = ["XDP_ABORTED", "XDP_DROP", "XDP_PASS", "XDP_TX", "XDP_REDIRECT"];
const TC_VERDICTS: readonly TcVerdict[] = [
  "TC_ACT_OK",
  "TC_ACT_RECLASSIFY",
  "TC_ACT_SHOT",
  "TC_ACT_PIPE",
  "TC_ACT_STOLEN",
  "TC_ACT_QUEUED",
  "TC_ACT_REPEAT",
  "TC_ACT_REDIRECT",
  "TC_ACT_TRAP",
];
/** Program types that get a `struct __sk_buff` in a test run (bpf_prog_test_run_skb). */
const SKB_TYPES: ReadonlySet<ProgramType> = new Set<ProgramType>([
  "socketFilter",
  "schedCls",
  "schedAct",
  "cgroupSkb",
  "lwtIn",
  "lwtOut",
  "lwtXmit",
  "lwtSeg6local",
]);
const XDP_CTX_FIELDS = ["ingressIfindex", "rxQueueIndex"];
const SKB_CTX_FIELDS = [
  "mark",
  "priority",
  "ingressIfindex",
  "ifindex",
  "cb",
  "tstamp",
  "wireLen",
  "gsoSegs",
  "gsoSize",
];
/** Offsets in `struct __sk_buff` (192 bytes). */
const SKB = {
  mark: 8,
  priority: 32,
  ingressIfindex: 36,
  ifindex: 40,
  cb: 48,
  tstamp: 152,
  wireLen: 160,
  gsoSegs: 164,
  gsoSize: 176,
  size: 192,
};

function verdictOf(type: ProgramType, retval: number): XdpVerdict | TcVerdict | undefined {
  if (type === "xdp") return XDP_VERDICTS[retval];
  if (type === "schedCls" || type === "schedAct") return retval === 0xffffffff ? "TC_ACT_UNSPEC" : TC_VERDICTS[retval];
  return undefined;
}

function u32(what: string, value: unknown): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`Invalid test run ${what}: expected an integer from 0 to 4294967295, got ${String(value)}`);
  }
  return value;
}

function checkFields(ctx: object, allowed: readonly string[], type: ProgramType): void {
  for (const key of Object.keys(ctx)) {
    if (!allowed.includes(key)) {
      throw new TypeError(
        `Invalid test run ctx: "${key}" is not a context field of ${type} programs: expected ${allowed.map((k) => `"${k}"`).join(", ")}`,
      );
    }
  }
}

function encodeXdpContext(ctx: XdpContext, packetLength: number): Uint8Array {
  checkFields(ctx, XDP_CTX_FIELDS, "xdp");
  const bytes = new Uint8Array(24);
  const dv = new DataView(bytes.buffer);
  // data = 0 (no metadata), data_end = the packet's length, data_meta = 0.
  dv.setUint32(4, packetLength, true);
  dv.setUint32(12, u32("ctx.ingressIfindex", ctx.ingressIfindex ?? 0), true);
  dv.setUint32(16, u32("ctx.rxQueueIndex", ctx.rxQueueIndex ?? 0), true);
  return bytes;
}

function encodeSkbContext(ctx: SkbContext, type: ProgramType): Uint8Array {
  checkFields(ctx, SKB_CTX_FIELDS, type);
  const bytes = new Uint8Array(SKB.size);
  const dv = new DataView(bytes.buffer);
  dv.setUint32(SKB.mark, u32("ctx.mark", ctx.mark ?? 0), true);
  dv.setUint32(SKB.priority, u32("ctx.priority", ctx.priority ?? 0), true);
  dv.setUint32(SKB.ingressIfindex, u32("ctx.ingressIfindex", ctx.ingressIfindex ?? 0), true);
  dv.setUint32(SKB.ifindex, u32("ctx.ifindex", ctx.ifindex ?? 0), true);
  const cb = ctx.cb ?? [];
  if (!Array.isArray(cb) || cb.length > 5) throw new RangeError(`Invalid test run ctx.cb: expected at most 5 words`);
  cb.forEach((word, i) => dv.setUint32(SKB.cb + i * 4, u32(`ctx.cb[${i}]`, word), true));
  if (ctx.tstamp !== undefined) {
    if (typeof ctx.tstamp !== "bigint" || ctx.tstamp < 0n || ctx.tstamp >= 1n << 64n) {
      throw new RangeError("Invalid test run ctx.tstamp: expected a bigint from 0 to 2^64-1");
    }
    dv.setBigUint64(SKB.tstamp, ctx.tstamp, true);
  }
  dv.setUint32(SKB.wireLen, u32("ctx.wireLen", ctx.wireLen ?? 0), true);
  dv.setUint32(SKB.gsoSegs, u32("ctx.gsoSegs", ctx.gsoSegs ?? 0), true);
  dv.setUint32(SKB.gsoSize, u32("ctx.gsoSize", ctx.gsoSize ?? 0), true);
  return bytes;
}

function encodeContext(
  type: ProgramType,
  ctx: PacketTestRunOptions["ctx"],
  packetLength: number,
): Uint8Array | undefined {
  if (ctx === undefined || ctx instanceof Uint8Array) return ctx;
  if (typeof ctx !== "object" || ctx === null) throw new TypeError("Invalid test run ctx: expected an object or bytes");
  if (type === "xdp") return encodeXdpContext(ctx, packetLength);
  if (SKB_TYPES.has(type)) return encodeSkbContext(ctx, type);
  throw new TypeError(`Invalid test run ctx: ${type} programs take the context as bytes, not as an object`);
}

/**
 * Runs a program on a packet with `BPF_PROG_TEST_RUN`, without attaching
 * it anywhere, and names the verdict for XDP (`"XDP_PASS"`, ...) and tc
 * (`"TC_ACT_OK"`, ...) programs.
 *
 * The context, when given as an object, is encoded for the program type:
 * `struct xdp_md` for XDP, `struct __sk_buff` for tc, socket filter,
 * cgroup skb and lwt programs. Interface indexes in it are looked up in
 * the calling thread's network namespace (use `withNetns` from `@dp/core`).
 *
 * @param program A loaded program of a type the kernel can test-run.
 * @param packet The input frame, from the Ethernet header on (at least 14 bytes for XDP and `__sk_buff` programs).
 * @param options Repeat count, context and output buffer size.
 * @returns The verdict, the output packet (parsed on demand), the mean duration and the output context.
 * @throws {TypeError} When the packet is not bytes or the context does not suit the program type (before any system call).
 * @throws {RangeError} When the packet is shorter than an Ethernet header, or `repeat` or a context field is out of range.
 * @throws {SyscallError} When the kernel refuses the run (EINVAL for a context it does not accept, ENOTSUPP for a type it cannot run).
 * @kernel 4.12 BPF_PROG_TEST_RUN (a __sk_buff context 5.2, an xdp_md context 5.15)
 * @capability CAP_BPF
 * @example Running an XDP program that drops everything
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { loadProgram } from "@dp/core";
 * import { eth, ipv4, packet, testRun, udp } from "@dp/hooks";
 *
 * // r0 = 1 (XDP_DROP); exit
 * using prog = loadProgram({
 *   type: "xdp", license: "GPL",
 *   instructions: new Uint8Array([0xb7, 0, 0, 0, 1, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]),
 * });
 * const result = testRun(prog, packet(eth(), ipv4(), udp({ dport: 53 }), "query"), { repeat: 10 });
 * assert.equal(result.verdict, "XDP_DROP");
 * assert.equal(result.parsed.udp?.dport, 53);
 * ```
 */
export function testRun(
  program: BpfProgram,
  packet: Uint8Array,
  options: PacketTestRunOptions = {},
): PacketTestRunResult {
  if (!(packet instanceof Uint8Array)) throw new TypeError("Invalid test run packet: expected a Uint8Array");
  const type = program.type;
  if ((type === "xdp" || SKB_TYPES.has(type)) && packet.length < 14) {
    throw new RangeError(
      `Invalid test run packet: ${type} programs need at least an Ethernet header (14 bytes), got ${packet.length}`,
    );
  }
  const repeat = options.repeat ?? 1;
  if (!Number.isInteger(repeat) || repeat < 1 || repeat > 0xffffffff) {
    throw new RangeError(`Invalid test run repeat: expected an integer from 1 to 4294967295, got ${repeat}`);
  }
  const ctx = encodeContext(type, options.ctx, packet.length);
  const result = program.testRun({
    data: packet,
    repeat,
    ...(ctx === undefined ? {} : { ctx }),
    ...(options.dataOutSize === undefined ? {} : { dataOutSize: options.dataOutSize }),
  });
  let parsed: ParsedPacket | undefined;
  return {
    verdict: verdictOf(type, result.retval),
    retval: result.retval,
    packet: result.data,
    get parsed(): ParsedPacket {
      parsed ??= parsePacket(result.data);
      return parsed;
    },
    duration: result.duration,
    ctx: result.ctx,
  };
}
