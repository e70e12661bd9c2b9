// Security policies (the SPD) over NETLINK_XFRM: the requests of
// `ip xfrm policy add|update|delete|get|flush|list`, byte for byte.
import { type IpFamily, NetlinkError, type NetlinkWriter, NLM_F, parseNetlinkAttributes } from "@dp/core";
import type { XfrmContext } from "./_context.ts";
import {
  checkArray,
  checkEnum,
  checkFamily,
  checkInteger,
  checkKeys,
  checkObject,
  decodeLifetime,
  decodeLifetimeCurrent,
  decodeMark,
  decodeSelector,
  decodeTemplates,
  encodeLifetime,
  encodeSelector,
  encodeTemplate,
  INFINITE_LIFETIME,
  markText,
  optionalInteger,
  parseLifetime,
  parseMark,
  parseSelector,
  parseTemplate,
  type ParsedLifetime,
  type ParsedMark,
  type ParsedSelector,
  type ParsedTemplate,
  quote,
  selectorText,
} from "./_codec.ts";
import {
  POLICY_ID,
  POLICY_INFO,
  SIZEOF,
  XFRM_MODE,
  XFRM_MSG,
  XFRM_POLICY_BLOCK,
  XFRM_POLICY_DIR,
  XFRM_POLICY_ICMP,
  XFRM_POLICY_LOCALOK,
  XFRM_POLICY_TYPE,
  XFRMA,
} from "./_uapi.ts";
import type { XfrmDir, XfrmMark, XfrmPolicy, XfrmPolicyId, XfrmPolicySpec, XfrmTemplate } from "./types.ts";

// include/uapi/asm-generic/errno-base.h
const ENOENT = 2;

/**
 * How many requests {@link Policies.addMany} puts into one datagram, with
 * one acknowledgement for the datagram.
 */
const BATCH = 512;

const DIR_NAMES: readonly XfrmDir[] = ["in", "out", "fwd"];
const FLAGS = { localok: XFRM_POLICY_LOCALOK, icmp: XFRM_POLICY_ICMP } as const;
const TYPES = { main: XFRM_POLICY_TYPE.main, sub: XFRM_POLICY_TYPE.sub } as const;
const ACTIONS = { allow: 0, block: XFRM_POLICY_BLOCK } as const;

const SPEC_KEYS = new Set([
  "selector",
  "dir",
  "priority",
  "index",
  "action",
  "mark",
  "ifId",
  "templates",
  "lifetime",
  "flags",
  "type",
  // Reported by the kernel, accepted so a listed policy can be passed back: ignored.
  "current",
]);
// A listed policy names itself (SPEC_KEYS has "index" already): its other fields are accepted and ignored.
const ID_KEYS = SPEC_KEYS;
const LIST_KEYS = new Set(["dir", "family", "mark", "ifId", "type", "index"]);

/** A checked policy, ready to encode. */
class ParsedPolicy {
  readonly sel: ParsedSelector;
  readonly dir: number;
  readonly priority: number;
  readonly index: number;
  readonly action: number;
  readonly flags: number;
  readonly mark: ParsedMark | undefined;
  readonly ifId: number | undefined;
  /** The policy type; undefined: no `XFRMA_POLICY_TYPE` sent (the kernel takes "main"). */
  readonly type: number | undefined;
  readonly templates: readonly ParsedTemplate[];
  readonly lifetime: ParsedLifetime;

  constructor(
    sel: ParsedSelector,
    dir: number,
    priority: number,
    index: number,
    action: number,
    flags: number,
    mark: ParsedMark | undefined,
    ifId: number | undefined,
    type: number | undefined,
    templates: readonly ParsedTemplate[],
    lifetime: ParsedLifetime,
  ) {
    this.sel = sel;
    this.dir = dir;
    this.priority = priority;
    this.index = index;
    this.action = action;
    this.flags = flags;
    this.mark = mark;
    this.ifId = ifId;
    this.type = type;
    this.templates = templates;
    this.lifetime = lifetime;
  }

  /** `xfrm policy out 10.0.0.0/24 -> 10.1.0.0/24`, for messages (formatting costs more than checking: only then). */
  get label(): string {
    return label(this.dir, this.sel, this.index, this.mark);
  }
}

/** A checked policy id. */
interface ParsedPolicyId {
  readonly sel: ParsedSelector | undefined;
  readonly index: number;
  readonly dir: number;
  readonly mark: ParsedMark | undefined;
  readonly ifId: number | undefined;
  readonly type: number | undefined;
  readonly label: string;
}

function dirNumber(v: unknown, what: string): number {
  if (v === undefined) throw new TypeError(`Invalid ${what}: dir is required ("in", "out" or "fwd")`);
  return checkEnum(v, what, XFRM_POLICY_DIR);
}

function typeNumber(v: unknown, what: string): number | undefined {
  return v === undefined ? undefined : checkEnum(v, what, TYPES);
}

function ifIdNumber(v: unknown, what: string): number | undefined {
  return v === undefined ? undefined : optionalInteger(v, what, 0, 0xffff_ffff, 0);
}

function label(dir: number, sel: ParsedSelector | undefined, index: number, mark: ParsedMark | undefined): string {
  let t = `xfrm policy ${DIR_NAMES[dir] ?? dir}`;
  if (sel !== undefined) t += ` ${selectorText(sel)}`;
  if (index !== 0) t += ` index ${index}`;
  return t + markText(mark);
}

/**
 * Checks a policy spec: every field, before anything is sent.
 *
 * @param spec The spec.
 * @param what The name of the spec in messages (`"xfrm policy"`, `"specs[3]"`).
 * @returns The parsed policy.
 */
function parsePolicySpec(spec: unknown, what: string): ParsedPolicy {
  checkObject(spec, what);
  checkKeys(spec, SPEC_KEYS, what);
  const s = spec as unknown as XfrmPolicySpec;
  // Field names are only built for a field that is present: a batch of
  // 10k specs would otherwise spend its time on strings no error uses.
  if (s.selector === undefined) throw new TypeError(`Invalid ${what}: selector is required (use {} for any traffic)`);
  const sel = parseSelector(s.selector, `${what}.selector`);
  const dir = dirNumber(s.dir, `${what}.dir`);
  const priority = s.priority === undefined ? 0 : checkInteger(s.priority, `${what}.priority`, 0, 0xffff_ffff);
  const index = s.index === undefined ? 0 : checkInteger(s.index, `${what}.index`, 0, 0xffff_ffff);
  if (index !== 0 && (index & 7) !== dir) {
    throw new RangeError(
      `Invalid ${what}.index ${index}: the kernel keeps the direction in the low 3 bits (index % 8 must be ${dir} for dir ${quote(s.dir)})`,
    );
  }
  const action = s.action === undefined ? 0 : checkEnum(s.action, `${what}.action`, ACTIONS);
  let flags = 0;
  if (s.flags !== undefined) {
    for (const [i, f] of checkArray(s.flags, `${what}.flags`).entries())
      flags |= checkEnum(f, `${what}.flags[${i}]`, FLAGS);
  }
  const mark = s.mark === undefined ? undefined : parseMark(s.mark, `${what}.mark`);
  const ifId = s.ifId === undefined ? undefined : ifIdNumber(s.ifId, `${what}.ifId`);
  const type = s.type === undefined ? undefined : typeNumber(s.type, `${what}.type`);
  const templates: ParsedTemplate[] = [];
  if (s.templates !== undefined) {
    const list = checkArray(s.templates, `${what}.templates`);
    for (let i = 0; i < list.length; i++) {
      const p = parseTemplate(list[i], `${what}.templates[${i}]`, sel.family);
      if (p.optional && p.mode !== XFRM_MODE.transport && dir === XFRM_POLICY_DIR.out) {
        throw new TypeError(
          `Invalid ${what}.templates[${i}].level "use": an optional template of an outbound policy must be in transport mode (the kernel refuses it)`,
        );
      }
      templates.push(p);
    }
  }
  const lifetime = s.lifetime === undefined ? INFINITE_LIFETIME : parseLifetime(s.lifetime, `${what}.lifetime`);
  return new ParsedPolicy(sel, dir, priority, index, action, flags, mark, ifId, type, templates, lifetime);
}

function parsePolicyId(id: unknown, what: string): ParsedPolicyId {
  checkObject(id, what);
  checkKeys(id, ID_KEYS, what);
  const v = id;
  const dir = dirNumber(v["dir"], `${what}.dir`);
  const mark = parseMark(v["mark"], `${what}.mark`);
  const ifId = ifIdNumber(v["ifId"], `${what}.ifId`);
  const type = typeNumber(v["type"], `${what}.type`);
  if (v["index"] !== undefined && v["selector"] === undefined) {
    const index = optionalInteger(v["index"], `${what}.index`, 1, 0xffff_ffff, 0);
    return { sel: undefined, index, dir, mark, ifId, type, label: label(dir, undefined, index, mark) };
  }
  if (v["selector"] === undefined) throw new TypeError(`Invalid ${what}: selector or index is required`);
  const sel = parseSelector(v["selector"], `${what}.selector`);
  return { sel, index: 0, dir, mark, ifId, type, label: label(dir, sel, 0, mark) };
}

// One struct reused for every request: each write sets every field, and
// the padding is never written, so it stays zero.
const INFO = new Uint8Array(SIZEOF.userpolicy_info);
const INFO_VIEW = new DataView(INFO.buffer);
const TEMPLATE = new Uint8Array(SIZEOF.user_tmpl);
const TEMPLATE_VIEW = new DataView(TEMPLATE.buffer);

/** Writes the 168 bytes of `struct xfrm_userpolicy_info`. */
function writePolicyInfo(w: NetlinkWriter, p: ParsedPolicy): void {
  const dv = INFO_VIEW;
  encodeSelector(dv, POLICY_INFO.sel, p.sel, INFO);
  encodeLifetime(dv, POLICY_INFO.lft, p.lifetime);
  dv.setUint32(POLICY_INFO.priority, p.priority, true);
  dv.setUint32(POLICY_INFO.index, p.index, true);
  dv.setUint8(POLICY_INFO.dir, p.dir);
  dv.setUint8(POLICY_INFO.action, p.action);
  dv.setUint8(POLICY_INFO.flags, p.flags);
  w.raw(INFO);
}

function writeType(w: NetlinkWriter, type: number | undefined): void {
  if (type === undefined) return;
  // struct xfrm_userpolicy_type: u8 type, u16 reserved1, u8 reserved2 (6 bytes).
  const data = new Uint8Array(SIZEOF.userpolicy_type);
  data[0] = type;
  w.attr(XFRMA.POLICY_TYPE, data);
}

function writeMarkAttr(w: NetlinkWriter, m: ParsedMark | undefined): void {
  if (m === undefined || m.mask === 0) return;
  w.u16(4 + SIZEOF.mark)
    .u16(XFRMA.MARK)
    .u32(m.value)
    .u32(m.mask);
}

/** Writes an add or update request in iproute2's attribute order: type, templates, mark, interface id. */
function writePolicy(w: NetlinkWriter, op: "add" | "update", seq: number, p: ParsedPolicy, ack = true): void {
  w.begin(op === "add" ? XFRM_MSG.NEWPOLICY : XFRM_MSG.UPDPOLICY, NLM_F.REQUEST | (ack ? NLM_F.ACK : 0), seq);
  writePolicyInfo(w, p);
  writeType(w, p.type);
  const ts = p.templates;
  if (ts.length > 0) {
    // The attribute header, then the templates in place (the message is 4-byte aligned here).
    w.u16(4 + ts.length * SIZEOF.user_tmpl).u16(XFRMA.TMPL);
    for (const t of ts) {
      encodeTemplate(TEMPLATE_VIEW, 0, t, TEMPLATE);
      w.raw(TEMPLATE);
    }
  }
  writeMarkAttr(w, p.mark);
  if (p.ifId !== undefined) w.attrU32(XFRMA.IF_ID, p.ifId);
  w.end();
}

/** Writes a delete or get request (`struct xfrm_userpolicy_id`), attributes in iproute2's order: type, mark, interface id. */
function writePolicyId(w: NetlinkWriter, op: "delete" | "get", seq: number, id: ParsedPolicyId): void {
  w.begin(
    op === "delete" ? XFRM_MSG.DELPOLICY : XFRM_MSG.GETPOLICY,
    op === "delete" ? NLM_F.REQUEST | NLM_F.ACK : NLM_F.REQUEST,
    seq,
  );
  const buf = new Uint8Array(SIZEOF.userpolicy_id);
  const dv = new DataView(buf.buffer);
  if (id.sel !== undefined) encodeSelector(dv, POLICY_ID.sel, id.sel);
  else dv.setUint16(POLICY_ID.sel + 40, 2, true); // AF_INET, as iproute2 leaves a selector it was not given
  dv.setUint32(POLICY_ID.index, id.index, true);
  dv.setUint8(POLICY_ID.dir, id.dir);
  w.raw(buf);
  writeType(w, id.type);
  writeMarkAttr(w, id.mark);
  if (id.ifId !== undefined) w.attrU32(XFRMA.IF_ID, id.ifId);
  w.end();
}

/** A policy request for {@link encodePolicyRequest}. */
export type PolicyRequest =
  | {
      /** `"add"` (`XFRM_MSG_NEWPOLICY`, EEXIST when present) or `"update"` (`XFRM_MSG_UPDPOLICY`). */
      readonly op: "add" | "update";
      /** The message's sequence number. */
      readonly seq: number;
      /** The policy. */
      readonly spec: XfrmPolicySpec;
    }
  | {
      /** `"delete"` (`XFRM_MSG_DELPOLICY`) or `"get"` (`XFRM_MSG_GETPOLICY`). */
      readonly op: "delete" | "get";
      /** The message's sequence number. */
      readonly seq: number;
      /** The policy. */
      readonly id: XfrmPolicyId;
    }
  | {
      /** `"flush"` (`XFRM_MSG_FLUSHPOLICY`). */
      readonly op: "flush";
      /** The message's sequence number. */
      readonly seq: number;
      /**
       * Only policies of this type.
       *
       * @default no type sent: the kernel flushes "main"
       */
      readonly type?: "main" | "sub";
    };

/**
 * Encodes a policy request as `ip xfrm policy` sends it, after checking
 * it as the {@link Policies} methods do.
 *
 * @param w The writer to append the message to.
 * @param request The operation, sequence number and policy.
 * @throws {TypeError} When a field has the wrong type or name.
 * @throws {SyntaxError} When a prefix or address is malformed.
 * @throws {RangeError} When a number is out of range or families disagree.
 * @example The request of ip xfrm policy add for two subnets
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter } from "@dp/core";
 * import { encodePolicyRequest } from "@dp/ipsec";
 *
 * const w = new NetlinkWriter();
 * encodePolicyRequest(w, { op: "add", seq: 1, spec: { selector: { src: "10.0.0.0/24", dst: "10.1.0.0/24" }, dir: "out" } });
 * assert.equal(w.length, 184);
 * ```
 */
export function encodePolicyRequest(w: NetlinkWriter, request: PolicyRequest): void {
  checkObject(request, "policy request");
  switch (request.op) {
    case "add":
    case "update":
      writePolicy(w, request.op, request.seq, parsePolicySpec(request.spec, "xfrm policy"));
      return;
    case "delete":
    case "get":
      writePolicyId(w, request.op, request.seq, parsePolicyId(request.id, "xfrm policy id"));
      return;
    case "flush":
      writeFlush(w, request.seq, typeNumber(request.type, "xfrm policy flush type"));
      return;
    default:
      throw new TypeError(`Invalid policy request op ${quote((request as { op: unknown }).op)}`);
  }
}

function writeFlush(w: NetlinkWriter, seq: number, type: number | undefined): void {
  w.begin(XFRM_MSG.FLUSHPOLICY, NLM_F.REQUEST | NLM_F.ACK, seq);
  writeType(w, type);
  w.end();
}

/**
 * Decodes a policy message (`XFRM_MSG_NEWPOLICY`, `_UPDPOLICY`, a dump
 * part or the reply of a get): `struct xfrm_userpolicy_info` and its
 * attributes. Unset parts are left out: no `mark` without `XFRMA_MARK`, no
 * `lifetime` when every limit is infinite, no `flags` when none is set.
 *
 * @param payload The message payload (after the netlink header).
 * @returns The policy.
 * @throws {SyntaxError} When the payload is shorter than the struct, or an
 *   attribute (mark, templates) is shorter than its struct.
 * @example Decoding what encodePolicyRequest() wrote
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 * import { decodePolicy, encodePolicyRequest } from "@dp/ipsec";
 *
 * const w = new NetlinkWriter();
 * encodePolicyRequest(w, { op: "add", seq: 1, spec: { selector: { dst: "10.1.0.0/16" }, dir: "out", priority: 5 } });
 * const p = decodePolicy(parseNetlinkMessages(w.bytes())[0]!.payload);
 * assert.deepEqual([p.dir, p.priority, p.selector.dst], ["out", 5, "10.1.0.0/16"]);
 * ```
 */
export function decodePolicy(payload: Uint8Array): XfrmPolicy {
  if (payload.length < SIZEOF.userpolicy_info)
    throw new SyntaxError(
      `Invalid xfrm policy message: ${payload.length} bytes, expected at least ${SIZEOF.userpolicy_info}`,
    );
  const dv = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  return decodePolicyInfo(dv, 0, payload.subarray(SIZEOF.userpolicy_info));
}

/**
 * Decodes a `struct xfrm_userpolicy_info` at `off` and the attributes after it.
 *
 * @internal Shared with the event stream (expire and acquire messages embed the struct).
 * @param dv The buffer.
 * @param off Where the struct starts.
 * @param attrs The attributes that follow the message's fixed part.
 * @returns The policy.
 */
export function decodePolicyInfo(dv: DataView, off: number, attrs: Uint8Array): XfrmPolicy {
  const selector = decodeSelector(dv, off + POLICY_INFO.sel);
  const dirN = dv.getUint8(off + POLICY_INFO.dir);
  const flagsN = dv.getUint8(off + POLICY_INFO.flags);
  const flags: ("localok" | "icmp")[] = [];
  if (flagsN & XFRM_POLICY_LOCALOK) flags.push("localok");
  if (flagsN & XFRM_POLICY_ICMP) flags.push("icmp");
  let templates: XfrmTemplate[] = [];
  let mark: XfrmMark | undefined;
  let ifId: number | undefined;
  let type: "main" | "sub" = "main";
  for (const a of parseNetlinkAttributes(attrs)) {
    switch (a.type) {
      case XFRMA.TMPL:
        templates = decodeTemplates(a.data, selector.family);
        break;
      case XFRMA.MARK:
        mark = decodeMark(a.data);
        break;
      case XFRMA.IF_ID:
        if (a.data.length >= 4) ifId = new DataView(a.data.buffer, a.data.byteOffset, 4).getUint32(0, true);
        break;
      case XFRMA.POLICY_TYPE:
        type = a.data[0] === XFRM_POLICY_TYPE.sub ? "sub" : "main";
        break;
      default:
        break;
    }
  }
  const lifetime = decodeLifetime(dv, off + POLICY_INFO.lft);
  const out: {
    -readonly [K in keyof XfrmPolicy]: XfrmPolicy[K];
  } = {
    selector,
    dir: DIR_NAMES[dirN] ?? "in",
    priority: dv.getUint32(off + POLICY_INFO.priority, true),
    index: dv.getUint32(off + POLICY_INFO.index, true),
    action: dv.getUint8(off + POLICY_INFO.action) === XFRM_POLICY_BLOCK ? "block" : "allow",
    templates,
    current: decodeLifetimeCurrent(dv, off + POLICY_INFO.curlft),
    type,
  };
  if (mark !== undefined) out.mark = mark;
  if (ifId !== undefined) out.ifId = ifId;
  if (Object.keys(lifetime).length > 0) out.lifetime = lifetime;
  if (flags.length > 0) out.flags = flags;
  return out;
}

/** Options for {@link Policies.list}. */
export interface ListPoliciesOptions {
  /**
   * Only policies of this direction.
   *
   * @default every direction
   */
  readonly dir?: XfrmDir;
  /**
   * Only policies whose selector has this family.
   *
   * @default both
   */
  readonly family?: IpFamily;
  /**
   * Only policies with exactly this mark (value and mask).
   *
   * @default any mark or none
   */
  readonly mark?: XfrmMark;
  /**
   * Only policies with this xfrm interface id.
   *
   * @default any
   */
  readonly ifId?: number;
  /**
   * Only policies of this type.
   *
   * @default both
   */
  readonly type?: "main" | "sub";
  /**
   * Only the policy with this index.
   *
   * @default any
   */
  readonly index?: number;
}

/** Options for {@link Policies.addMany}. */
export interface AddPoliciesOptions {
  /**
   * Replace policies that exist (`XFRM_MSG_UPDPOLICY`, `ip xfrm policy update`).
   *
   * @default false: an existing policy fails the batch with EEXIST
   */
  readonly update?: boolean;
}

/**
 * Two specs of one {@link Policies.addMany} call match the same packets with
 * the same direction, mark, interface id, priority and type: the kernel
 * would use whichever it lists first, so one of them never applies.
 *
 * @example Telling the overlapping specs apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { PolicyOverlapError } from "@dp/ipsec";
 *
 * const err = new PolicyOverlapError("Invalid xfrm policies: specs[0] and specs[2] overlap", 0, 2);
 * assert.equal(err.name, "PolicyOverlapError");
 * assert.deepEqual([err.first, err.second], [0, 2]);
 * assert.ok(err instanceof RangeError);
 * ```
 */
export class PolicyOverlapError extends RangeError {
  /** The index of the first spec. */
  readonly first: number;
  /** The index of the second spec. */
  readonly second: number;

  /**
   * Makes the error.
   *
   * @param message What overlaps.
   * @param first The index of the first spec.
   * @param second The index of the second spec.
   */
  constructor(message: string, first: number, second: number) {
    super(message);
    this.name = "PolicyOverlapError";
    this.first = first;
    this.second = second;
  }
}

/** The first `len` bits of an address as a map key (IPv4 as a number, IPv6 as a string). */
function prefixKey(family: IpFamily, bytes: Uint8Array, len: number): number | string {
  if (family === 4) {
    if (len === 0) return 0;
    const a =
      (((bytes[0] as number) << 24) |
        ((bytes[1] as number) << 16) |
        ((bytes[2] as number) << 8) |
        (bytes[3] as number)) >>>
      0;
    return a >>> (32 - len);
  }
  let s = "";
  const full = len >> 3;
  for (let i = 0; i < full; i++) s += String.fromCharCode(bytes[i] as number);
  if (len & 7) s += String.fromCharCode((bytes[full] as number) & ((0xff00 >> (len & 7)) & 0xff));
  return s;
}

function prefixesOverlap(family: IpFamily, a: Uint8Array, alen: number, b: Uint8Array, blen: number): boolean {
  const len = Math.min(alen, blen);
  return prefixKey(family, a, len) === prefixKey(family, b, len);
}

function portsOverlap(am: number, a: number, bm: number, b: number): boolean {
  return am === 0 || bm === 0 || a === b;
}

/** Whether two selectors of one family can match the same packet. */
function selectorsOverlap(a: ParsedSelector, b: ParsedSelector): boolean {
  return (
    (a.proto === 0 || b.proto === 0 || a.proto === b.proto) &&
    portsOverlap(a.sportMask, a.sport, b.sportMask, b.sport) &&
    portsOverlap(a.dportMask, a.dport, b.dportMask, b.dport) &&
    (a.ifindex === 0 || b.ifindex === 0 || a.ifindex === b.ifindex) &&
    prefixesOverlap(a.family, a.src, a.srcLen, b.src, b.srcLen) &&
    prefixesOverlap(a.family, a.dst, a.dstLen, b.dst, b.dstLen)
  );
}

/**
 * Refuses two specs that match the same packets with the same direction,
 * mark, interface id, priority and type. Specs are grouped by those, then
 * by destination prefix: a pair overlaps only if one destination prefix
 * contains the other, so each spec looks up its own prefix cut to every
 * length present in its group (linear in the specs, not quadratic).
 */
function sameGroup(a: ParsedPolicy, b: ParsedPolicy): boolean {
  return (
    a.dir === b.dir &&
    a.sel.family === b.sel.family &&
    a.priority === b.priority &&
    a.ifId === b.ifId &&
    a.type === b.type &&
    a.mark?.value === b.mark?.value &&
    a.mark?.mask === b.mark?.mask
  );
}

function overlapError(parsed: readonly ParsedPolicy[], i: number, j: number): PolicyOverlapError {
  const [a, b] = j < i ? [j, i] : [i, j];
  const pa = parsed[a] as ParsedPolicy;
  const pb = parsed[b] as ParsedPolicy;
  return new PolicyOverlapError(
    `Invalid xfrm policies: specs[${a}] (${selectorText(pa.sel)}) and specs[${b}] (${selectorText(pb.sel)}) match the same packets with the same dir, mark, ifId, priority and type; give them different priorities or disjoint selectors`,
    a,
    b,
  );
}

/** Specs of one group by destination prefix length, then by destination prefix. */
interface OverlapGroup {
  readonly lengths: number[];
  readonly byLength: Map<number, Map<number | string, number | number[]>>;
}

function checkOverlaps(parsed: readonly ParsedPolicy[]): void {
  const groupIds = new Map<string, number>();
  const groups: OverlapGroup[] = [];
  const groupOf = new Int32Array(parsed.length);
  let last: ParsedPolicy | undefined;
  let g = -1;
  // Specs with the same destination prefix length: they can only overlap
  // within the same destination prefix, checked as each one is added.
  for (let i = 0; i < parsed.length; i++) {
    const p = parsed[i] as ParsedPolicy;
    // Specs of a batch mostly share their group: only a change builds its name.
    if (last === undefined || !sameGroup(last, p)) {
      const name = `${p.dir}|${p.sel.family}|${p.mark === undefined ? "" : `${p.mark.value}/${p.mark.mask}`}|${p.ifId ?? ""}|${p.priority}|${p.type ?? 0}`;
      const known = groupIds.get(name);
      if (known === undefined) {
        g = groups.length;
        groupIds.set(name, g);
        groups.push({ lengths: [], byLength: new Map() });
      } else {
        g = known;
      }
      last = p;
    }
    groupOf[i] = g;
    const group = groups[g] as OverlapGroup;
    let byPrefix = group.byLength.get(p.sel.dstLen);
    if (byPrefix === undefined) {
      byPrefix = new Map<number | string, number | number[]>();
      group.byLength.set(p.sel.dstLen, byPrefix);
      group.lengths.push(p.sel.dstLen);
    }
    const key = prefixKey(p.sel.family, p.sel.dst, p.sel.dstLen);
    const had = byPrefix.get(key);
    if (had === undefined) {
      byPrefix.set(key, i);
      continue;
    }
    const list = typeof had === "number" ? [had] : had;
    for (const j of list)
      if (selectorsOverlap((parsed[j] as ParsedPolicy).sel, p.sel)) throw overlapError(parsed, i, j);
    list.push(i);
    if (typeof had === "number") byPrefix.set(key, list);
  }
  // Specs with different lengths: a spec can only overlap one whose
  // shorter destination prefix contains its own.
  for (let i = 0; i < parsed.length; i++) {
    const group = groups[groupOf[i] as number] as OverlapGroup;
    if (group.lengths.length < 2) continue;
    const p = parsed[i] as ParsedPolicy;
    for (const len of group.lengths) {
      if (len >= p.sel.dstLen) continue;
      const hit = group.byLength.get(len)?.get(prefixKey(p.sel.family, p.sel.dst, len));
      if (hit === undefined) continue;
      for (const j of typeof hit === "number" ? [hit] : hit) {
        if (selectorsOverlap((parsed[j] as ParsedPolicy).sel, p.sel)) throw overlapError(parsed, i, j);
      }
    }
  }
}

/**
 * The security policies (SPD) of an {@link Xfrm} handle's namespace: which
 * traffic is sent through which states (templates), allowed in clear text
 * or blocked. Requests are those of `ip xfrm policy`.
 *
 * @example Requiring ESP in tunnel mode between two subnets
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openXfrm } from "@dp/ipsec";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using x = openXfrm({ netns: ns.ns });
 * x.policies.add({
 *   selector: { src: "10.0.0.0/24", dst: "10.1.0.0/24" },
 *   dir: "out",
 *   templates: [{ src: "192.168.0.1", dst: "192.168.0.2", mode: "tunnel", reqid: 1 }],
 * });
 * const [p] = x.policies.list();
 * assert.equal(p?.templates[0]?.dst, "192.168.0.2");
 * ```
 */
export class Policies {
  #ctx: XfrmContext;

  /**
   * Binds to a handle's context.
   *
   * @internal Reached through {@link Xfrm}.
   * @param ctx The handle's socket and namespace.
   */
  constructor(ctx: XfrmContext) {
    this.#ctx = ctx;
  }

  /**
   * Adds a policy (`ip xfrm policy add`, `XFRM_MSG_NEWPOLICY`).
   *
   * @param spec The policy.
   * @throws {TypeError} When a field has the wrong type, is unknown, or a template is invalid for the direction.
   * @throws {SyntaxError} When a prefix or address is malformed.
   * @throws {RangeError} When a number is out of range or families disagree (all before any system call).
   * @throws {NetlinkError} EEXIST when a policy with the same selector, direction, mark and type exists.
   * @example Blocking a subnet
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.policies.add({ selector: { dst: "10.9.0.0/16" }, dir: "out", action: "block" });
   * assert.equal(x.policies.list()[0]?.action, "block");
   * ```
   */
  add(spec: XfrmPolicySpec): void {
    this.#modify("add", spec);
  }

  /**
   * Adds a policy or replaces the one with the same selector, direction,
   * mark and type (`ip xfrm policy update`, `XFRM_MSG_UPDPOLICY`).
   *
   * @param spec The policy.
   * @throws {TypeError} When a field has the wrong type or is unknown.
   * @throws {SyntaxError} When a prefix or address is malformed.
   * @throws {RangeError} When a number is out of range.
   * @throws {NetlinkError} When the kernel refuses the policy.
   * @example Changing a policy's action
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.policies.add({ selector: { dst: "10.9.0.0/16" }, dir: "out" });
   * x.policies.update({ selector: { dst: "10.9.0.0/16" }, dir: "out", action: "block" });
   * assert.deepEqual(x.policies.list().map((p) => p.action), ["block"]);
   * ```
   */
  update(spec: XfrmPolicySpec): void {
    this.#modify("update", spec);
  }

  /**
   * Adds many policies, 512 to a datagram with one acknowledgement each.
   * Every spec is checked first, and two specs that would match the same
   * packets with the same direction, mark, interface id, priority and type
   * are refused, so nothing is sent for a bad batch. Policies of datagrams
   * sent before a refused one stay installed.
   *
   * @param specs The policies.
   * @param options Whether to replace existing policies.
   * @throws {TypeError} When a spec has a field of the wrong type (the message names `specs[i]`).
   * @throws {SyntaxError} When a prefix or address is malformed.
   * @throws {RangeError} When a number is out of range.
   * @throws {PolicyOverlapError} When two specs overlap (naming both indexes).
   * @throws {NetlinkError} For the first policy the kernel refused, naming `specs[i]`.
   * @example Installing a policy per peer subnet
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * const specs = Array.from({ length: 300 }, (_, i) => ({ selector: { dst: `10.${i >> 8}.${i & 255}.0/24` }, dir: "out" as const }));
   * x.policies.addMany(specs);
   * assert.equal(x.policies.list().length, 300);
   * ```
   */
  addMany(specs: readonly XfrmPolicySpec[], options: AddPoliciesOptions = {}): void {
    if (!Array.isArray(specs)) throw new TypeError(`Invalid xfrm policy specs: expected an array, got ${typeof specs}`);
    checkObject(options, "addMany options");
    checkKeys(options, new Set(["update"]), "addMany options");
    if (options.update !== undefined && typeof options.update !== "boolean")
      throw new TypeError(`Invalid addMany options.update: expected a boolean, got ${typeof options.update}`);
    const op = options.update === true ? "update" : "add";
    const parsed = (specs as readonly unknown[]).map((s, i) => parsePolicySpec(s, `specs[${i}]`));
    checkOverlaps(parsed);
    const nl = this.#ctx.nl;
    const opName = op === "add" ? "XFRM_MSG_NEWPOLICY" : "XFRM_MSG_UPDPOLICY";
    for (let start = 0; start < parsed.length; start += BATCH) {
      const end = Math.min(start + BATCH, parsed.length);
      const w = nl.writer();
      const first = nl.nextSeq();
      for (let i = start; i < end; i++) {
        writePolicy(w, op, i === start ? first : nl.nextSeq(), parsed[i] as ParsedPolicy, i === end - 1);
      }
      try {
        nl.request(w, `${op} xfrm policies ${start}-${end - 1} of ${parsed.length}`, opName);
      } catch (err) {
        if (!(err instanceof NetlinkError) || err.seq === undefined) throw err;
        const i = start + ((err.seq - first) >>> 0);
        throw new NetlinkError(`Cannot ${op} ${(parsed[i] as ParsedPolicy).label} (specs[${i}] of ${parsed.length})`, {
          op: err.op,
          errno: err.errno,
          extAck: err.extAck,
          extAckOffset: err.extAckOffset,
          seq: err.seq,
          cause: err,
        });
      }
    }
  }

  /**
   * Deletes a policy by selector and direction, or by index
   * (`ip xfrm policy delete`, `XFRM_MSG_DELPOLICY`). The mark, interface id
   * and type must be those of the policy. A policy from
   * {@link Policies.list} names itself: its selector is used (not its
   * index) and its other fields are ignored.
   *
   * @param id The policy.
   * @returns Whether a policy was deleted (false when none matched).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {SyntaxError} When a prefix is malformed.
   * @throws {RangeError} When a number is out of range.
   * @throws {NetlinkError} When the kernel refuses for another reason than ENOENT.
   * @example Deleting by index
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.policies.add({ selector: { dst: "10.9.0.0/16" }, dir: "out" });
   * const [p] = x.policies.list();
   * assert.equal(x.policies.delete({ index: p!.index, dir: "out" }), true);
   * assert.equal(x.policies.delete({ index: p!.index, dir: "out" }), false);
   * ```
   */
  delete(id: XfrmPolicyId): boolean {
    const p = parsePolicyId(id, "xfrm policy id");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writePolicyId(w, "delete", nl.nextSeq(), p);
    try {
      nl.request(w, `delete ${p.label}`, "XFRM_MSG_DELPOLICY");
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  /**
   * Gets a policy by selector and direction, or by index (`ip xfrm policy get`).
   *
   * @param id The policy.
   * @returns The policy, or undefined when there is none.
   * @throws {TypeError} When a field has the wrong type.
   * @throws {SyntaxError} When a prefix is malformed.
   * @throws {RangeError} When a number is out of range.
   * @throws {NetlinkError} When the kernel refuses for another reason than ENOENT.
   * @example Reading a policy back
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.policies.add({ selector: { src: "10.0.0.0/24", dst: "10.1.0.0/24" }, dir: "in", priority: 9 });
   * assert.equal(x.policies.get({ selector: { src: "10.0.0.0/24", dst: "10.1.0.0/24" }, dir: "in" })?.priority, 9);
   * assert.equal(x.policies.get({ selector: { dst: "10.2.0.0/24" }, dir: "in" }), undefined);
   * ```
   */
  get(id: XfrmPolicyId): XfrmPolicy | undefined {
    const p = parsePolicyId(id, "xfrm policy id");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writePolicyId(w, "get", nl.nextSeq(), p);
    let replies;
    try {
      replies = nl.request(w, `get ${p.label}`, "XFRM_MSG_GETPOLICY");
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENOENT) return undefined;
      throw err;
    }
    const m = replies.find((r) => r.type === XFRM_MSG.NEWPOLICY);
    return m === undefined ? undefined : decodePolicy(m.payload);
  }

  /**
   * Lists the policies (`ip xfrm policy list`), main and sub, filtered
   * here by the options (the kernel's dump takes no filter). Per-socket
   * policies are not listed.
   *
   * @param options Filters.
   * @returns The policies, in the kernel's order.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {NetlinkError} When the dump fails.
   * @throws {SyntaxError} When the kernel's reply is truncated (a short
   *   message or attribute), rather than leaving a policy out.
   * @example Listing the outbound policies
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.policies.add({ selector: { dst: "10.1.0.0/16" }, dir: "out" });
   * x.policies.add({ selector: { src: "10.1.0.0/16" }, dir: "in" });
   * assert.deepEqual(x.policies.list({ dir: "out" }).map((p) => p.selector.dst), ["10.1.0.0/16"]);
   * ```
   */
  list(options: ListPoliciesOptions = {}): XfrmPolicy[] {
    checkObject(options, "xfrm policy list options");
    checkKeys(options, LIST_KEYS, "xfrm policy list options");
    if (options.dir !== undefined) checkEnum(options.dir, "xfrm policy list options.dir", XFRM_POLICY_DIR);
    const family = checkFamily(options.family, "xfrm policy list options.family");
    const mark = parseMark(options.mark, "xfrm policy list options.mark");
    const ifId = ifIdNumber(options.ifId, "xfrm policy list options.ifId");
    if (options.type !== undefined) typeNumber(options.type, "xfrm policy list options.type");
    const index =
      options.index === undefined
        ? undefined
        : optionalInteger(options.index, "xfrm policy list options.index", 0, 0xffff_ffff, 0);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    w.begin(XFRM_MSG.GETPOLICY, NLM_F.REQUEST | NLM_F.DUMP, 0);
    w.end();
    const out: XfrmPolicy[] = [];
    for (const m of nl.dump(w, "list xfrm policies", "XFRM_MSG_GETPOLICY")) {
      if (m.type !== XFRM_MSG.NEWPOLICY) continue;
      const p = decodePolicy(m.payload);
      if (options.dir !== undefined && p.dir !== options.dir) continue;
      if (family !== undefined && p.selector.family !== family) continue;
      if (mark !== undefined && (p.mark?.value !== mark.value || p.mark.mask !== mark.mask)) continue;
      if (ifId !== undefined && (p.ifId ?? 0) !== ifId) continue;
      if (options.type !== undefined && p.type !== options.type) continue;
      if (index !== undefined && p.index !== index) continue;
      out.push(p);
    }
    return out;
  }

  /**
   * Deletes every policy of a type (`ip xfrm policy flush`,
   * `XFRM_MSG_FLUSHPOLICY`).
   *
   * @param type The type to flush.
   * @throws {TypeError} When `type` is neither "main" nor "sub".
   * @throws {NetlinkError} When the kernel refuses.
   * @example Removing every policy
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openXfrm } from "@dp/ipsec";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using x = openXfrm({ netns: ns.ns });
   * x.policies.add({ selector: { dst: "10.1.0.0/16" }, dir: "out" });
   * x.policies.flush();
   * assert.deepEqual(x.policies.list(), []);
   * ```
   */
  flush(type?: "main" | "sub"): void {
    const t = typeNumber(type, "xfrm policy flush type");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeFlush(w, nl.nextSeq(), t);
    nl.request(w, `flush xfrm policies${type === undefined ? "" : ` of type ${type}`}`, "XFRM_MSG_FLUSHPOLICY");
  }

  #modify(op: "add" | "update", spec: XfrmPolicySpec): void {
    const p = parsePolicySpec(spec, "xfrm policy");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writePolicy(w, op, nl.nextSeq(), p);
    nl.request(w, `${op} ${p.label}`, op === "add" ? "XFRM_MSG_NEWPOLICY" : "XFRM_MSG_UPDPOLICY");
  }
}
