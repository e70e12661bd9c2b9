import { attrString, formatIp, type IpFamily, NetlinkError, type NetlinkWriter, NLM_F } from "@dp/core";
import { FR_ACT, FRA, RT_TABLE, RTM } from "@dp/core/internal";
import type { RoutingContext } from "./_context.ts";
import { checkBoolean, checkInteger, checkObject, parsePrefix, protocolNumber, quote, tableNumber } from "./_check.ts";
import type { RouteProtocol, RouteTable } from "./routes.ts";

// include/linux/socket.h
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
// include/uapi/linux/fib_rules.h
const FIB_RULE_INVERT = 0x2;
// Size of struct fib_rule_hdr and the nlattr header.
const FIB_RULE_HDR_LEN = 12;
const NLA_HDRLEN = 4;
// include/uapi/asm-generic/errno-base.h
const ENOENT = 2;

/**
 * What a rule does when it matches (`FR_ACT_*`): `"toTable"` looks the
 * packet up in `table`, `"goto"` jumps to the rule with priority `goto`,
 * `"nop"` does nothing, `"blackhole"`, `"unreachable"` and `"prohibit"`
 * drop the packet (the last two with an ICMP error). `"unspec"` is an
 * action the kernel reported but dp does not know.
 */
export type RuleAction = "toTable" | "goto" | "nop" | "blackhole" | "unreachable" | "prohibit" | "unspec";

const ACTIONS: Readonly<Record<string, number>> = {
  toTable: FR_ACT.TO_TBL,
  goto: FR_ACT.GOTO,
  nop: FR_ACT.NOP,
  blackhole: FR_ACT.BLACKHOLE,
  unreachable: FR_ACT.UNREACHABLE,
  prohibit: FR_ACT.PROHIBIT,
};
const ACTION_NAMES = new Map<number, RuleAction>(Object.entries(ACTIONS).map(([k, v]) => [v, k as RuleAction]));

/** A FIB rule, decoded from the kernel's `RTM_NEWRULE` message. */
export interface Rule {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** The priority: rules are tried from the lowest. */
  readonly priority: number;
  /** What the rule does. */
  readonly action: RuleAction;
  /** The table looked up by a `"toTable"` rule (`FRA_TABLE` wins over the header); 0 for other actions. */
  readonly table: number;
  /** The source prefix matched, such as `"10.0.0.5/32"`; absent for any source. */
  readonly from?: string;
  /** The destination prefix matched; absent for any destination. */
  readonly to?: string;
  /** The input interface name matched. */
  readonly iif?: string;
  /** The output interface name matched. */
  readonly oif?: string;
  /** The firewall mark matched. */
  readonly fwmark?: number;
  /** The mask applied to the packet's mark before comparing (0xffffffff when a mark was given without one). */
  readonly fwmask?: number;
  /** The priority a `"goto"` rule jumps to. */
  readonly goto?: number;
  /** Whether the match is inverted (`not`, `FIB_RULE_INVERT`). */
  readonly invert: boolean;
  /** Who installed the rule (`RTPROT_*`; 0 unspec, 2 kernel). */
  readonly protocol: number;
}

/**
 * A rule to add or delete. The defaults are those of iproute2's
 * `ip rule`, so a spec and the matching `ip rule add` command send the
 * same request.
 */
export interface RuleSpec {
  /**
   * The address family.
   *
   * @default the family of `from` or `to`, else 4
   */
  readonly family?: IpFamily;
  /**
   * The priority (`pref`).
   *
   * @default the kernel picks one below the lowest existing non-zero priority (when deleting: any)
   */
  readonly priority?: number;
  /**
   * The source prefix to match (a bare address is a host prefix).
   *
   * @default any source
   */
  readonly from?: string;
  /**
   * The destination prefix to match.
   *
   * @default any destination
   */
  readonly to?: string;
  /**
   * The input interface name to match (the interface need not exist yet).
   *
   * @default any
   */
  readonly iif?: string;
  /**
   * The output interface name to match.
   *
   * @default any
   */
  readonly oif?: string;
  /**
   * The firewall mark to match.
   *
   * @default any
   */
  readonly fwmark?: number;
  /**
   * The mask applied to the mark before comparing.
   *
   * @default 0xffffffff when `fwmark` is given
   */
  readonly fwmask?: number;
  /**
   * The table a `"toTable"` rule looks up. A table needs no creating: it
   * comes into existence with its first route, and a lookup in an empty
   * one falls through to the next rule. Other actions take no table, or 0
   * (as {@link Rules.list} reports them), so a listed rule can be passed
   * back to {@link Rules.delete}.
   *
   * @default "main" (when deleting: any)
   */
  readonly table?: RouteTable;
  /**
   * What the rule does. `"unspec"` matches any action when deleting and
   * cannot be added.
   *
   * @default "goto" when `goto` is given, else "toTable" (when deleting: any)
   */
  readonly action?: RuleAction;
  /**
   * The priority a `"goto"` rule jumps to; it must be above the rule's own.
   *
   * @default none
   */
  readonly goto?: number;
  /**
   * Invert the match (`ip rule add not ...`).
   *
   * @default false
   */
  readonly invert?: boolean;
  /**
   * Who installs the rule (`FRA_PROTOCOL`).
   *
   * @default none sent: the kernel records "unspec" (when deleting: any)
   */
  readonly protocol?: RouteProtocol;
}

/** Options for {@link Rules.list}. */
export interface ListRulesOptions {
  /**
   * Only rules of this family.
   *
   * @default both
   */
  readonly family?: IpFamily;
}

/** A rule request for {@link encodeRuleRequest}. */
export interface RuleRequest {
  /** `"add"` (fail if an identical rule exists) or `"delete"`. */
  readonly op: "add" | "delete";
  /** The message's sequence number. */
  readonly seq: number;
  /** The rule. */
  readonly spec: RuleSpec;
}

interface ParsedRule {
  readonly family: IpFamily;
  readonly from: { readonly bytes: Uint8Array; readonly len: number } | undefined;
  readonly to: { readonly bytes: Uint8Array; readonly len: number } | undefined;
  readonly iif: string | undefined;
  readonly oif: string | undefined;
  readonly fwmark: number | undefined;
  readonly fwmask: number | undefined;
  readonly table: number | undefined;
  readonly action: number | undefined;
  readonly goto: number | undefined;
  readonly priority: number | undefined;
  readonly invert: boolean;
  readonly protocol: number | undefined;
  /** `rule 30 "from 10.0.0.5 lookup 100"`, for messages. */
  readonly label: string;
}

const SPEC_KEYS = new Set(["family", "priority", "from", "to", "iif", "oif", "fwmark", "fwmask", "table", "action", "goto", "invert", "protocol"]);

function interfaceName(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an interface name, got ${typeof v}`);
  if (v.length === 0 || v.length > 15 || /[\s/]/.test(v)) throw new RangeError(`Invalid ${what} ${quote(v)}: use 1-15 characters without spaces or "/"`);
  return v;
}

function parseRuleSpec(spec: RuleSpec, op: RuleRequest["op"]): ParsedRule {
  checkObject(spec, "rule spec");
  for (const key of Object.keys(spec)) {
    if (!SPEC_KEYS.has(key)) throw new TypeError(`Invalid rule ${key}: not a rule field`);
  }
  let family: IpFamily | undefined;
  if (spec.family !== undefined) {
    if (spec.family !== 4 && spec.family !== 6) throw new TypeError(`Invalid rule family ${quote(spec.family)}: use 4 or 6`);
    family = spec.family;
  }
  const prefix = (v: string | undefined, name: "from" | "to"): { bytes: Uint8Array; len: number } | undefined => {
    if (v === undefined) return undefined;
    const p = parsePrefix(v, `rule ${name}`);
    if (family !== undefined && p.family !== family) {
      throw new RangeError(`Invalid rule ${name} ${quote(v)}: the rule is IPv${family}`);
    }
    family = p.family;
    return { bytes: p.bytes, len: p.prefixLength };
  };
  const from = prefix(spec.from, "from");
  const to = prefix(spec.to, "to");
  family ??= 4;
  let action: number | undefined;
  if (spec.action === "unspec") {
    if (op === "add") throw new TypeError('Invalid rule action "unspec": a rule needs an action; "unspec" only matches any action when deleting');
  } else if (spec.action !== undefined) {
    const a = typeof spec.action === "string" && Object.hasOwn(ACTIONS, spec.action) ? ACTIONS[spec.action] : undefined;
    if (a === undefined) throw new TypeError(`Invalid rule action ${quote(spec.action)}: use one of ${Object.keys(ACTIONS).map(quote).join(", ")}`);
    action = a;
  }
  const goto = spec.goto === undefined ? undefined : checkInteger(spec.goto, "rule goto", 1, 0xffffffff);
  if (goto !== undefined) {
    action ??= FR_ACT.GOTO;
    if (action !== FR_ACT.GOTO) throw new TypeError(`Invalid rule goto: only a "goto" rule has a target, this one is ${quote(spec.action)}`);
  } else if (action === FR_ACT.GOTO) {
    throw new TypeError("Invalid rule: a \"goto\" rule needs goto, the priority to jump to");
  }
  if (op === "add") action ??= FR_ACT.TO_TBL;
  // A listed rule that does not look up a table reports table 0: accept it back as "no table".
  const noTable = spec.table === undefined || (spec.table === 0 && action !== undefined && action !== FR_ACT.TO_TBL);
  let table = noTable ? undefined : tableNumber(spec.table, "rule table");
  if (table !== undefined && action !== undefined && action !== FR_ACT.TO_TBL) {
    throw new TypeError(`Invalid rule table: only a "toTable" rule has a table, this one is ${quote(spec.action ?? "goto")}`);
  }
  if (op === "add" && action === FR_ACT.TO_TBL) table ??= RT_TABLE.MAIN;
  const fwmark = spec.fwmark === undefined ? undefined : checkInteger(spec.fwmark, "rule fwmark", 0, 0xffffffff);
  const fwmask = spec.fwmask === undefined ? undefined : checkInteger(spec.fwmask, "rule fwmask", 0, 0xffffffff);
  const priority = spec.priority === undefined ? undefined : checkInteger(spec.priority, "rule priority", 0, 0xffffffff);
  const iif = interfaceName(spec.iif, "rule iif");
  const oif = interfaceName(spec.oif, "rule oif");
  const invert = checkBoolean(spec.invert, "rule invert");
  const protocol = spec.protocol === undefined ? undefined : protocolNumber(spec.protocol, "rule protocol");

  // The label reads like `ip rule show`.
  const words: string[] = [];
  if (invert) words.push("not");
  words.push(`from ${spec.from ?? "all"}`);
  if (spec.to !== undefined) words.push(`to ${spec.to}`);
  if (iif !== undefined) words.push(`iif ${iif}`);
  if (oif !== undefined) words.push(`oif ${oif}`);
  if (fwmark !== undefined) words.push(`fwmark 0x${fwmark.toString(16)}${fwmask === undefined ? "" : `/0x${fwmask.toString(16)}`}`);
  if (action === FR_ACT.GOTO) words.push(`goto ${goto}`);
  else if (action !== undefined && action !== FR_ACT.TO_TBL) words.push(ACTION_NAMES.get(action) ?? String(action));
  if (table !== undefined) words.push(`lookup ${table === RT_TABLE.MAIN ? "main" : table}`);
  const label = `rule${priority === undefined ? "" : ` ${priority}`} ${quote(words.join(" "))}`;
  return { family, from, to, iif, oif, fwmark, fwmask, table, action, goto, priority, invert, protocol, label };
}

/** Writes one request the way iproute2's `ip rule add/del` builds it. */
function writeRule(w: NetlinkWriter, op: RuleRequest["op"], seq: number, r: ParsedRule): void {
  const table = r.table ?? RT_TABLE.UNSPEC;
  w.begin(op === "add" ? RTM.NEWRULE : RTM.DELRULE, op === "add" ? NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL : NLM_F.REQUEST | NLM_F.ACK, seq);
  // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags
  w.u8(r.family === 4 ? AF_INET : AF_INET6)
    .u8(r.to?.len ?? 0)
    .u8(r.from?.len ?? 0)
    .u8(0)
    .u8(table < 256 ? table : RT_TABLE.UNSPEC)
    .u8(0)
    .u8(0)
    .u8(r.action ?? FR_ACT.UNSPEC)
    .u32(r.invert ? FIB_RULE_INVERT : 0);
  if (r.from !== undefined && r.from.len > 0) w.attr(FRA.SRC, r.from.bytes);
  if (r.to !== undefined && r.to.len > 0) w.attr(FRA.DST, r.to.bytes);
  if (r.iif !== undefined) w.attrString(FRA.IIFNAME, r.iif);
  if (r.oif !== undefined) w.attrString(FRA.OIFNAME, r.oif);
  if (r.fwmark !== undefined) w.attrU32(FRA.FWMARK, r.fwmark);
  if (r.fwmask !== undefined) w.attrU32(FRA.FWMASK, r.fwmask);
  if (table >= 256) w.attrU32(FRA.TABLE, table);
  if (r.goto !== undefined) w.attrU32(FRA.GOTO, r.goto);
  if (r.priority !== undefined) w.attrU32(FRA.PRIORITY, r.priority);
  if (r.protocol !== undefined) w.attrU8(FRA.PROTOCOL, r.protocol);
  w.end();
}

/**
 * Encodes a rule request (`RTM_NEWRULE` or `RTM_DELRULE`, with `NLM_F_ACK`)
 * the way iproute2's `ip rule add` and `ip rule del` do: the same header
 * defaults (table main, action to-table) and, for fields given in the
 * order `from to iif oif fwmark table goto priority`, the same attribute
 * order. Pure: no system call.
 *
 * @param w The writer to append the message to.
 * @param request The operation, sequence number and rule.
 * @throws {SyntaxError} When a prefix is malformed.
 * @throws {TypeError} When a field has the wrong type or does not fit the action.
 * @throws {RangeError} When a number is out of range or families disagree.
 * @example Encoding a policy-routing rule
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 * import { decodeRule, encodeRuleRequest } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * encodeRuleRequest(w, { op: "add", seq: 1, spec: { priority: 30, from: "10.0.0.5", to: "10.1.0.0/16", table: 100 } });
 * const [msg] = parseNetlinkMessages(w.bytes());
 * assert.equal(msg?.type, 32); // RTM_NEWRULE
 * assert.equal(decodeRule(msg!.payload).from, "10.0.0.5/32");
 * ```
 */
export function encodeRuleRequest(w: NetlinkWriter, request: RuleRequest): void {
  checkObject(request, "rule request");
  if (request.op !== "add" && request.op !== "delete") throw new TypeError(`Invalid rule request op ${quote(request.op)}: use "add" or "delete"`);
  checkInteger(request.seq, "rule request seq", 0, 0xffffffff);
  writeRule(w, request.op, request.seq, parseRuleSpec(request.spec, request.op));
}

function u32(d: Uint8Array, off: number): number {
  return ((d[off] as number) | ((d[off + 1] as number) << 8) | ((d[off + 2] as number) << 16) | ((d[off + 3] as number) << 24)) >>> 0;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Decodes the payload of an `RTM_NEWRULE` (or `RTM_DELRULE`) message from
 * the kernel: `struct fib_rule_hdr` and its `FRA_*` attributes.
 * `FRA_TABLE` wins over the header's table; attributes it does not know
 * (ports, UID ranges, DSCP, ...) are skipped.
 *
 * @param payload The message payload after `struct nlmsghdr`.
 * @returns The rule.
 * @throws {SyntaxError} When the payload is truncated, an attribute overruns it, or the family is neither IPv4 nor IPv6 (multicast routing rules).
 * @example Decoding an encoded rule
 * ```ts
 * import assert from "node:assert/strict";
 * import { NetlinkWriter, parseNetlinkMessages } from "@dp/core";
 * import { decodeRule, encodeRuleRequest } from "@dp/routing";
 *
 * const w = new NetlinkWriter();
 * encodeRuleRequest(w, { op: "add", seq: 1, spec: { priority: 40, fwmark: 0x10, fwmask: 0xff, table: 1000 } });
 * const rule = decodeRule(parseNetlinkMessages(w.bytes())[0]!.payload);
 * assert.deepEqual([rule.priority, rule.fwmark, rule.fwmask, rule.table, rule.action], [40, 0x10, 0xff, 1000, "toTable"]);
 * ```
 */
export function decodeRule(payload: Uint8Array): Rule {
  if (payload.length < FIB_RULE_HDR_LEN) {
    throw new SyntaxError(`Invalid rule message: ${payload.length} bytes, struct fib_rule_hdr needs ${FIB_RULE_HDR_LEN}`);
  }
  const af = payload[0] as number;
  if (af !== AF_INET && af !== AF_INET6) throw new SyntaxError(`Invalid rule message: address family ${af} is neither IPv4 nor IPv6`);
  const family: IpFamily = af === AF_INET ? 4 : 6;
  const dstLen = payload[1] as number;
  const srcLen = payload[2] as number;
  const rule: Mutable<Rule> = {
    family,
    priority: 0,
    action: ACTION_NAMES.get(payload[7] as number) ?? "unspec",
    table: payload[4] as number,
    invert: (u32(payload, 8) & FIB_RULE_INVERT) !== 0,
    protocol: 0,
  };
  const addrLen = family === 4 ? 4 : 16;
  const prefix = (d: Uint8Array, len: number): string | undefined => {
    if (len === 0) return undefined;
    const bytes = new Uint8Array(addrLen);
    bytes.set(d.subarray(0, addrLen));
    return `${formatIp(bytes)}/${len}`;
  };
  for (let off = FIB_RULE_HDR_LEN; off + NLA_HDRLEN <= payload.length; ) {
    const len = (payload[off] as number) | ((payload[off + 1] as number) << 8);
    const type = ((payload[off + 2] as number) | ((payload[off + 3] as number) << 8)) & 0x3fff;
    if (len < NLA_HDRLEN || off + len > payload.length) {
      throw new SyntaxError(`Invalid rule attribute at offset ${off}: length ${len} with ${payload.length - off} bytes left`);
    }
    const d = payload.subarray(off + NLA_HDRLEN, off + len);
    const n = d.length >= 4 ? u32(d, 0) : undefined;
    switch (type) {
      case FRA.SRC: {
        const p = prefix(d, srcLen);
        if (p !== undefined) rule.from = p;
        break;
      }
      case FRA.DST: {
        const p = prefix(d, dstLen);
        if (p !== undefined) rule.to = p;
        break;
      }
      case FRA.IIFNAME:
        rule.iif = attrString(d);
        break;
      case FRA.OIFNAME:
        rule.oif = attrString(d);
        break;
      case FRA.PRIORITY:
        if (n !== undefined) rule.priority = n;
        break;
      case FRA.TABLE:
        if (n !== undefined) rule.table = n;
        break;
      case FRA.FWMARK:
        if (n !== undefined) rule.fwmark = n;
        break;
      case FRA.FWMASK:
        if (n !== undefined) rule.fwmask = n;
        break;
      case FRA.GOTO:
        if (n !== undefined) rule.goto = n;
        break;
      case FRA.PROTOCOL:
        rule.protocol = d[0] ?? 0;
        break;
      default:
        break;
    }
    off += (len + 3) & ~3;
  }
  return rule;
}

/**
 * The FIB rules (policy routing) of a {@link Routing} handle's namespace:
 * which table a packet is looked up in, by source, destination, interface
 * and mark.
 *
 * @example Steering a pod's traffic to its own table
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * rt.rules.add({ priority: 20, to: "10.0.0.5", table: "main" });
 * rt.rules.add({ priority: 30, from: "10.0.0.5", to: "10.1.0.0/16", table: 100 });
 * const mine = rt.rules.list({ family: 4 }).filter((r) => r.priority === 20 || r.priority === 30);
 * assert.deepEqual(mine.map((r) => [r.priority, r.from, r.to, r.table]), [
 *   [20, undefined, "10.0.0.5/32", 254],
 *   [30, "10.0.0.5/32", "10.1.0.0/16", 100],
 * ]);
 * ```
 */
export class Rules {
  #ctx: RoutingContext;

  /**
   * Binds to a handle's context.
   *
   * @internal Reached through {@link Routing}.
   * @param ctx The handle's socket and namespace.
   */
  constructor(ctx: RoutingContext) {
    this.#ctx = ctx;
  }

  /**
   * Adds a rule (`ip rule add`). The kernel accepts a lookup in a table
   * that has no routes yet (tables exist lazily) and a goto to a priority
   * with no rule yet (shown as unresolved); it refuses a goto backwards.
   *
   * @param spec The rule.
   * @throws {SyntaxError} When a prefix is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type or does not fit the action.
   * @throws {RangeError} When a number is out of range (a mark above 2³²−1, table 0) or the families disagree.
   * @throws {NetlinkError} EEXIST when an identical rule exists; EINVAL with the kernel's explanation (such as "Backward goto not supported").
   * @example Adding a mark rule for IPv6
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.rules.add({ family: 6, priority: 100, fwmark: 0x200, fwmask: 0xf00, table: 200 });
   * const rule = rt.rules.list({ family: 6 }).find((r) => r.priority === 100);
   * assert.equal(rule?.fwmark, 0x200);
   * assert.equal(rule?.table, 200);
   * ```
   */
  add(spec: RuleSpec): void {
    const r = parseRuleSpec(spec, "add");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeRule(w, "add", nl.nextSeq(), r);
    nl.request(w, `add ${r.label}`, "RTM_NEWRULE");
  }

  /**
   * Deletes the first rule that matches (`ip rule del`). Fields left out
   * match any value, so `{ priority: 30 }` deletes the first rule with
   * that priority.
   *
   * @param spec The rule to match.
   * @returns Whether a rule was deleted (false when none matched).
   * @throws {SyntaxError} When a prefix is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {RangeError} When a number is out of range.
   * @throws {NetlinkError} When the kernel refuses for another reason.
   * @example Deleting by priority
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.rules.add({ priority: 30, from: "10.0.0.5", table: 100 });
   * assert.equal(rt.rules.delete({ priority: 30 }), true);
   * assert.equal(rt.rules.delete({ priority: 30 }), false);
   * ```
   */
  delete(spec: RuleSpec): boolean {
    const r = parseRuleSpec(spec, "delete");
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeRule(w, "delete", nl.nextSeq(), r);
    try {
      nl.request(w, `delete ${r.label}`, "RTM_DELRULE");
      return true;
    } catch (err) {
      if (err instanceof NetlinkError && err.errno === ENOENT) return false;
      throw err;
    }
  }

  /**
   * Lists the rules in priority order, the kernel's defaults included
   * (0 local, 32766 main, 32767 default for IPv4).
   *
   * @param options The family.
   * @returns The rules.
   * @throws {TypeError} When the family is not 4 or 6.
   * @throws {NetlinkError} When the dump fails.
   * @example The default IPv6 rules
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * assert.deepEqual(rt.rules.list({ family: 6 }).map((r) => [r.priority, r.table]), [[0, 255], [32766, 254]]);
   * ```
   */
  list(options: ListRulesOptions = {}): Rule[] {
    checkObject(options, "rule list options");
    const family = options.family;
    if (family !== undefined && family !== 4 && family !== 6) throw new TypeError(`Invalid rule list family ${quote(family)}: use 4 or 6`);
    const nl = this.#ctx.nl;
    const w = nl.writer();
    // Strict checking refuses any filter in a rule dump: only the family.
    w.begin(RTM.GETRULE, NLM_F.REQUEST | NLM_F.DUMP, 0)
      .u8(family === undefined ? AF_UNSPEC : family === 4 ? AF_INET : AF_INET6)
      .zeros(FIB_RULE_HDR_LEN - 1);
    w.end();
    const out: Rule[] = [];
    for (const m of nl.dump(w, "list rules", "RTM_GETRULE")) {
      const af = m.payload[0];
      if (m.type !== RTM.NEWRULE || (af !== AF_INET && af !== AF_INET6)) continue;
      out.push(decodeRule(m.payload));
    }
    return out;
  }
}
