import { attrString, type IpFamily, NetlinkError, type NetlinkWriter, NLM_F } from "@dp/core";
import { FR_ACT, FRA, RT_TABLE, RTM } from "@dp/core/internal";
import type { RoutingContext } from "./_context.ts";
import {
  checkBoolean,
  checkInteger,
  checkLinkName,
  checkObject,
  parsePrefix,
  protocolNumber,
  quote,
  type RawAttribute,
  rawAttributes,
  type Realms,
  tableNumber,
} from "./_check.ts";
import type { RouteProtocol, RouteTable } from "./routes.ts";
import { formatAddress } from "./_text.ts";

// include/linux/socket.h
const AF_UNSPEC = 0;
const AF_INET = 2;
const AF_INET6 = 10;
// include/uapi/linux/fib_rules.h
const FIB_RULE_INVERT = 0x2;
const FIB_RULE_UNRESOLVED = 0x4;
const FIB_RULE_IIF_DETACHED = 0x8;
const FIB_RULE_OIF_DETACHED = 0x10;
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

/** A range of ports, both ends included (`struct fib_rule_port_range`). */
export interface PortRange {
  /** The first port, 1-65535. */
  readonly start: number;
  /** The last port, at least `start`. */
  readonly end: number;
}

/** A range of user ids, both ends included (`struct fib_rule_uid_range`). */
export interface UidRange {
  /** The first uid. */
  readonly start: number;
  /** The last uid, at least `start`. */
  readonly end: number;
}

/**
 * A FIB rule, decoded from the kernel's `RTM_NEWRULE` message. Selectors
 * the rule does not have are absent; a listed rule can be passed back to
 * {@link Rules.delete} and {@link Rules.add} as a {@link RuleSpec}.
 */
export interface Rule {
  /** 4 or 6. */
  readonly family: IpFamily;
  /** The priority: rules are tried from the lowest. */
  readonly priority: number;
  /** What the rule does. */
  readonly action: RuleAction;
  /** The table looked up by a `"toTable"` rule (`FRA_TABLE` wins over the header); 0 for other actions and for an `l3mdev` rule. */
  readonly table: number;
  /** The source prefix matched, such as `"10.0.0.5/32"`; absent for any source. */
  readonly from?: string;
  /** The destination prefix matched; absent for any destination. */
  readonly to?: string;
  /** The input interface name matched. */
  readonly iif?: string;
  /** The output interface name matched. */
  readonly oif?: string;
  /** The firewall mark matched (0 when only a mask was set: `fwmark 0/0xff00` matches marks with those bits clear). */
  readonly fwmark?: number;
  /** The mask applied to the packet's mark before comparing (0xffffffff when a mark was given without one). */
  readonly fwmask?: number;
  /** The priority a `"goto"` rule jumps to. */
  readonly goto?: number;
  /** Whether the match is inverted (`not`, `FIB_RULE_INVERT`). */
  readonly invert: boolean;
  /** Who installed the rule (`RTPROT_*`; 0 unspec, 2 kernel). */
  readonly protocol: number;
  /** The TOS byte matched (`ip rule ... tos`, the header's `tos`). */
  readonly tos?: number;
  /** The DSCP value matched (`FRA_DSCP`, 0-63). */
  readonly dscp?: number;
  /** The mask applied to the DSCP before comparing (`FRA_DSCP_MASK`); absent when all six bits count. */
  readonly dscpMask?: number;
  /** The IP protocol matched (`ipproto`, `FRA_IP_PROTO`), such as 6 for TCP. */
  readonly ipProto?: number;
  /** The source ports matched (`sport`, `FRA_SPORT_RANGE`). */
  readonly sport?: PortRange;
  /** The mask applied to the source port (`FRA_SPORT_MASK`); absent when every bit counts. */
  readonly sportMask?: number;
  /** The destination ports matched (`dport`, `FRA_DPORT_RANGE`). */
  readonly dport?: PortRange;
  /** The mask applied to the destination port (`FRA_DPORT_MASK`); absent when every bit counts. */
  readonly dportMask?: number;
  /** The user ids matched (`uidrange`, `FRA_UID_RANGE`). */
  readonly uidRange?: UidRange;
  /** Whether the table is that of the packet's L3 master device, such as a VRF (`l3mdev`). */
  readonly l3mdev?: boolean;
  /** Reject a lookup result whose prefix is this long or shorter (`suppress_prefixlength`). */
  readonly suppressPrefixLength?: number;
  /** Reject a lookup result whose device is in this group (`suppress_ifgroup`). */
  readonly suppressIfgroup?: number;
  /** The realms set on a match (`realms`, `FRA_FLOW`). */
  readonly realms?: Realms;
  /** The tunnel id matched (`FRA_TUN_ID`, metadata of a collect_md tunnel). */
  readonly tunId?: bigint;
  /** The IPv6 flow label matched (`FRA_FLOWLABEL`). */
  readonly flowlabel?: number;
  /** The mask applied to the flow label (`FRA_FLOWLABEL_MASK`). */
  readonly flowlabelMask?: number;
  /** Attributes dp does not decode, as the kernel sent them: kept, never dropped. */
  readonly unknown?: readonly RawAttribute[];
  /** Set when a `"goto"` rule's target priority has no rule (`[unresolved]`). */
  readonly unresolved?: boolean;
  /** Set when no link has the `iif` name yet (`[detached]`). */
  readonly iifDetached?: boolean;
  /** Set when no link has the `oif` name yet (`[detached]`). */
  readonly oifDetached?: boolean;
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
   * The firewall mark to match; with a `fwmask`, 0 is a value too (marks
   * whose masked bits are clear).
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
   * @default "main", none for an `l3mdev` rule (when deleting: any)
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
  /**
   * The TOS byte to match (`tos`); excludes `dscp`.
   *
   * @default any
   */
  readonly tos?: number;
  /**
   * The DSCP value to match, 0-63 (`FRA_DSCP`, kernel 6.12+); excludes `tos`.
   *
   * @default any
   */
  readonly dscp?: number;
  /**
   * The mask applied to the DSCP (`FRA_DSCP_MASK`, kernel 6.16+).
   *
   * @default none sent (all six bits)
   */
  readonly dscpMask?: number;
  /**
   * The IP protocol to match: a number or `"tcp"`, `"udp"`, `"icmp"`,
   * `"ipv6-icmp"`, `"sctp"`, `"gre"`, `"esp"`, `"ah"`, `"udplite"`.
   *
   * @default any
   */
  readonly ipProto?: number | IpProtoName;
  /**
   * The source port or ports to match.
   *
   * @default any
   */
  readonly sport?: number | PortRange;
  /**
   * The mask applied to the source port (`FRA_SPORT_MASK`, kernel 6.15+; `sport` must be one port).
   *
   * @default none sent
   */
  readonly sportMask?: number;
  /**
   * The destination port or ports to match.
   *
   * @default any
   */
  readonly dport?: number | PortRange;
  /**
   * The mask applied to the destination port (`FRA_DPORT_MASK`, kernel 6.15+; `dport` must be one port).
   *
   * @default none sent
   */
  readonly dportMask?: number;
  /**
   * The user ids to match (`uidrange`).
   *
   * @default any
   */
  readonly uidRange?: UidRange;
  /**
   * Look up the table of the packet's L3 master device (`l3mdev`); such a rule has no table.
   *
   * @default false
   */
  readonly l3mdev?: boolean;
  /**
   * Reject a lookup result whose prefix is this long or shorter (`suppress_prefixlength`).
   *
   * @default none
   */
  readonly suppressPrefixLength?: number;
  /**
   * Reject a lookup result whose device is in this group (`suppress_ifgroup`).
   *
   * @default none
   */
  readonly suppressIfgroup?: number;
  /**
   * The realms to set on a match (`realms FROM/TO`).
   *
   * @default none
   */
  readonly realms?: Realms;
  /**
   * The tunnel id to match (`FRA_TUN_ID`).
   *
   * @default any
   */
  readonly tunId?: bigint;
  /**
   * The IPv6 flow label to match (`FRA_FLOWLABEL`, kernel 6.15+).
   *
   * @default any
   */
  readonly flowlabel?: number;
  /**
   * The mask applied to the flow label.
   *
   * @default 0xfffff when `flowlabel` is given
   */
  readonly flowlabelMask?: number;
  /**
   * Attributes to send as they are, after the others (what {@link Rule.unknown} kept).
   *
   * @default none
   */
  readonly unknown?: readonly RawAttribute[];
  /** State the kernel reports ({@link Rule.unresolved}), accepted so that a listed rule can be passed back: ignored. */
  readonly unresolved?: boolean;
  /** Reported state ({@link Rule.iifDetached}): ignored. */
  readonly iifDetached?: boolean;
  /** Reported state ({@link Rule.oifDetached}): ignored. */
  readonly oifDetached?: boolean;
}

/** IP protocol names {@link RuleSpec.ipProto} accepts (the names of `/etc/protocols`). */
export type IpProtoName = "icmp" | "igmp" | "tcp" | "udp" | "gre" | "esp" | "ah" | "ipv6-icmp" | "sctp" | "udplite";

const IP_PROTOS: Readonly<Record<IpProtoName, number>> = {
  icmp: 1,
  igmp: 2,
  tcp: 6,
  udp: 17,
  gre: 47,
  esp: 50,
  ah: 51,
  "ipv6-icmp": 58,
  sctp: 132,
  udplite: 136,
};

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

interface ParsedPrefix {
  readonly bytes: Uint8Array;
  readonly len: number;
}

interface ParsedRule {
  readonly family: IpFamily;
  readonly from: ParsedPrefix | undefined;
  readonly to: ParsedPrefix | undefined;
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
  readonly tos: number | undefined;
  readonly dscp: number | undefined;
  readonly dscpMask: number | undefined;
  readonly ipProto: number | undefined;
  readonly sport: PortRange | undefined;
  readonly sportMask: number | undefined;
  readonly dport: PortRange | undefined;
  readonly dportMask: number | undefined;
  readonly uidRange: UidRange | undefined;
  readonly l3mdev: boolean;
  readonly suppressPrefixLength: number | undefined;
  readonly suppressIfgroup: number | undefined;
  readonly realms: number | undefined;
  readonly tunId: bigint | undefined;
  readonly flowlabel: number | undefined;
  readonly flowlabelMask: number | undefined;
  readonly unknown: readonly RawAttribute[] | undefined;
  /** `rule 30 "from 10.0.0.5 lookup 100"`, for messages. */
  readonly label: string;
}

const SPEC_KEYS = new Set([
  "family",
  "priority",
  "from",
  "to",
  "iif",
  "oif",
  "fwmark",
  "fwmask",
  "table",
  "action",
  "goto",
  "invert",
  "protocol",
  "tos",
  "dscp",
  "dscpMask",
  "ipProto",
  "sport",
  "sportMask",
  "dport",
  "dportMask",
  "uidRange",
  "l3mdev",
  "suppressPrefixLength",
  "suppressIfgroup",
  "realms",
  "tunId",
  "flowlabel",
  "flowlabelMask",
  "unknown",
  "unresolved",
  "iifDetached",
  "oifDetached",
]);

function interfaceName(v: unknown, what: string): string | undefined {
  if (v === undefined) return undefined;
  return checkLinkName(v, what, "match");
}

function optionalInteger(v: unknown, what: string, min: number, max: number): number | undefined {
  return v === undefined ? undefined : checkInteger(v, what, min, max);
}

function portRange(v: unknown, what: string): PortRange | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "number") {
    const port = checkInteger(v, what, 1, 0xffff);
    return { start: port, end: port };
  }
  checkObject(v, what);
  const r = v as PortRange;
  const start = checkInteger(r.start, `${what}.start`, 1, 0xffff);
  const end = checkInteger(r.end, `${what}.end`, start, 0xffff);
  return { start, end };
}

function uidRange(v: unknown, what: string): UidRange | undefined {
  if (v === undefined) return undefined;
  checkObject(v, what);
  const r = v as UidRange;
  const start = checkInteger(r.start, `${what}.start`, 0, 0xffffffff);
  const end = checkInteger(r.end, `${what}.end`, start, 0xffffffff);
  return { start, end };
}

function ipProtoNumber(v: unknown, what: string): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "string") {
    if (!Object.hasOwn(IP_PROTOS, v))
      throw new TypeError(
        `Invalid ${what} ${quote(v)}: use a number or one of ${Object.keys(IP_PROTOS).map(quote).join(", ")}`,
      );
    return IP_PROTOS[v as IpProtoName];
  }
  return checkInteger(v, what, 0, 255);
}

function parseRuleSpec(spec: RuleSpec, op: RuleRequest["op"]): ParsedRule {
  checkObject(spec, "rule spec");
  for (const key of Object.keys(spec)) {
    if (!SPEC_KEYS.has(key)) throw new TypeError(`Invalid rule ${key}: not a rule field`);
  }
  let family: IpFamily | undefined;
  if (spec.family !== undefined) {
    if (spec.family !== 4 && spec.family !== 6)
      throw new TypeError(`Invalid rule family ${quote(spec.family)}: use 4 or 6`);
    family = spec.family;
  }
  const prefix = (v: string | undefined, name: "from" | "to"): ParsedPrefix | undefined => {
    if (v === undefined) return undefined;
    const p = parsePrefix(v, `rule ${name}`);
    if (family !== undefined && p.family !== family) {
      throw new RangeError(`Invalid rule ${name} ${quote(v)}: the rule is IPv${family}`);
    }
    family = p.family;
    return p.prefixLength === 0 ? undefined : { bytes: p.bytes, len: p.prefixLength };
  };
  const from = prefix(spec.from, "from");
  const to = prefix(spec.to, "to");
  family ??= 4;
  const l3mdev = checkBoolean(spec.l3mdev, "rule l3mdev");
  let action: number | undefined;
  if (spec.action === "unspec") {
    if (op === "add")
      throw new TypeError(
        'Invalid rule action "unspec": a rule needs an action; "unspec" only matches any action when deleting',
      );
  } else if (spec.action !== undefined) {
    const a = typeof spec.action === "string" && Object.hasOwn(ACTIONS, spec.action) ? ACTIONS[spec.action] : undefined;
    if (a === undefined)
      throw new TypeError(
        `Invalid rule action ${quote(spec.action)}: use one of ${Object.keys(ACTIONS).map(quote).join(", ")}`,
      );
    action = a;
  }
  const goto = spec.goto === undefined ? undefined : checkInteger(spec.goto, "rule goto", 1, 0xffffffff);
  if (goto !== undefined) {
    action ??= FR_ACT.GOTO;
    if (action !== FR_ACT.GOTO)
      throw new TypeError(`Invalid rule goto: only a "goto" rule has a target, this one is ${quote(spec.action)}`);
  } else if (action === FR_ACT.GOTO) {
    throw new TypeError('Invalid rule: a "goto" rule needs goto, the priority to jump to');
  }
  if (op === "add") action ??= FR_ACT.TO_TBL;
  // A listed rule that does not look up a table (or an l3mdev rule) reports table 0: accept it back as "no table".
  const noTable =
    spec.table === undefined || (spec.table === 0 && ((action !== undefined && action !== FR_ACT.TO_TBL) || l3mdev));
  let table = noTable ? undefined : tableNumber(spec.table, "rule table");
  if (table !== undefined && action !== undefined && action !== FR_ACT.TO_TBL) {
    throw new TypeError(
      `Invalid rule table: only a "toTable" rule has a table, this one is ${quote(spec.action ?? "goto")}`,
    );
  }
  if (table !== undefined && l3mdev)
    throw new TypeError("Invalid rule table: an l3mdev rule looks up its device's table and takes none");
  if (op === "add" && action === FR_ACT.TO_TBL && !l3mdev) table ??= RT_TABLE.MAIN;
  const fwmark = optionalInteger(spec.fwmark, "rule fwmark", 0, 0xffffffff);
  const fwmask = optionalInteger(spec.fwmask, "rule fwmask", 0, 0xffffffff);
  const priority = optionalInteger(spec.priority, "rule priority", 0, 0xffffffff);
  const iif = interfaceName(spec.iif, "rule iif");
  const oif = interfaceName(spec.oif, "rule oif");
  const invert = checkBoolean(spec.invert, "rule invert");
  const protocol = spec.protocol === undefined ? undefined : protocolNumber(spec.protocol, "rule protocol");
  const tos = optionalInteger(spec.tos, "rule tos", 0, 255);
  const dscp = optionalInteger(spec.dscp, "rule dscp", 0, 63);
  if (tos !== undefined && tos !== 0 && dscp !== undefined)
    throw new TypeError("Invalid rule dscp: a rule matches tos or dscp, not both");
  const dscpMask = optionalInteger(spec.dscpMask, "rule dscpMask", 0, 63);
  const ipProto = ipProtoNumber(spec.ipProto, "rule ipProto");
  const sport = portRange(spec.sport, "rule sport");
  const dport = portRange(spec.dport, "rule dport");
  const sportMask = optionalInteger(spec.sportMask, "rule sportMask", 0, 0xffff);
  const dportMask = optionalInteger(spec.dportMask, "rule dportMask", 0, 0xffff);
  const uids = uidRange(spec.uidRange, "rule uidRange");
  const suppressPrefixLength = optionalInteger(
    spec.suppressPrefixLength,
    "rule suppressPrefixLength",
    0,
    family === 4 ? 32 : 128,
  );
  const suppressIfgroup = optionalInteger(spec.suppressIfgroup, "rule suppressIfgroup", 0, 0x7fffffff);
  let realms: number | undefined;
  if (spec.realms !== undefined) {
    checkObject(spec.realms, "rule realms");
    const rfrom = checkInteger(spec.realms.from, "rule realms.from", 0, 0xffff);
    const rto = checkInteger(spec.realms.to, "rule realms.to", 0, 0xffff);
    realms = ((rfrom << 16) | rto) >>> 0;
  }
  let tunId: bigint | undefined;
  if (spec.tunId !== undefined) {
    if (typeof spec.tunId !== "bigint")
      throw new TypeError(`Invalid rule tunId: expected a bigint, got ${typeof spec.tunId}`);
    if (spec.tunId < 0n || spec.tunId > 0xffff_ffff_ffff_ffffn)
      throw new RangeError(`Invalid rule tunId ${spec.tunId}: must be from 0 to 2⁶⁴−1`);
    tunId = spec.tunId;
  }
  const flowlabel = optionalInteger(spec.flowlabel, "rule flowlabel", 0, 0xfffff);
  let flowlabelMask = optionalInteger(spec.flowlabelMask, "rule flowlabelMask", 0, 0xfffff);
  if (flowlabel !== undefined) flowlabelMask ??= 0xfffff;
  const unknown = rawAttributes(spec.unknown, "rule unknown");

  const parsed = {
    family,
    from,
    to,
    iif,
    oif,
    fwmark,
    fwmask,
    table,
    action,
    goto,
    priority,
    invert,
    protocol,
    tos,
    dscp,
    dscpMask,
    ipProto,
    sport,
    sportMask,
    dport,
    dportMask,
    uidRange: uids,
    l3mdev,
    suppressPrefixLength,
    suppressIfgroup,
    realms,
    tunId,
    flowlabel,
    flowlabelMask,
    unknown,
  };
  return { ...parsed, label: ruleLabel(parsed) };
}

/** A prefix as `ip rule` writes it: a host prefix without its length. */
function prefixText(p: ParsedPrefix): string {
  return p.len === p.bytes.length * 8 ? formatAddress(p.bytes) : `${formatAddress(p.bytes)}/${p.len}`;
}

function rangeText(r: PortRange | UidRange): string {
  return r.start === r.end ? String(r.start) : `${r.start}-${r.end}`;
}

/** The rule as `ip rule show` writes it, for messages: `rule 30 "from 10.0.0.5 lookup 100"`. */
function ruleLabel(r: Omit<ParsedRule, "label">): string {
  const words: string[] = [];
  const hex = (n: number): string => `0x${n.toString(16)}`;
  if (r.invert) words.push("not");
  words.push(`from ${r.from === undefined ? "all" : prefixText(r.from)}`);
  if (r.to !== undefined) words.push(`to ${prefixText(r.to)}`);
  if (r.tos !== undefined && r.tos !== 0) words.push(`tos ${hex(r.tos)}`);
  if (r.dscp !== undefined) words.push(`dscp ${r.dscp}${r.dscpMask === undefined ? "" : `/${hex(r.dscpMask)}`}`);
  if (r.fwmark !== undefined || r.fwmask !== undefined)
    words.push(`fwmark ${hex(r.fwmark ?? 0)}${r.fwmask === undefined ? "" : `/${hex(r.fwmask)}`}`);
  if (r.iif !== undefined) words.push(`iif ${r.iif}`);
  if (r.oif !== undefined) words.push(`oif ${r.oif}`);
  if (r.l3mdev) words.push("l3mdev");
  if (r.uidRange !== undefined) words.push(`uidrange ${r.uidRange.start}-${r.uidRange.end}`);
  if (r.ipProto !== undefined) words.push(`ipproto ${r.ipProto}`);
  if (r.sport !== undefined)
    words.push(`sport ${rangeText(r.sport)}${r.sportMask === undefined ? "" : `/${hex(r.sportMask)}`}`);
  if (r.dport !== undefined)
    words.push(`dport ${rangeText(r.dport)}${r.dportMask === undefined ? "" : `/${hex(r.dportMask)}`}`);
  if (r.flowlabel !== undefined) words.push(`flowlabel ${hex(r.flowlabel)}/${hex(r.flowlabelMask ?? 0xfffff)}`);
  if (r.tunId !== undefined) words.push(`tun_id ${r.tunId}`);
  if (r.action === FR_ACT.GOTO) words.push(`goto ${r.goto}`);
  else if (r.action !== undefined && r.action !== FR_ACT.TO_TBL)
    words.push(ACTION_NAMES.get(r.action) ?? String(r.action));
  if (r.table !== undefined)
    words.push(
      `lookup ${r.table === RT_TABLE.MAIN ? "main" : r.table === RT_TABLE.LOCAL ? "local" : r.table === RT_TABLE.DEFAULT ? "default" : r.table}`,
    );
  if (r.suppressPrefixLength !== undefined) words.push(`suppress_prefixlength ${r.suppressPrefixLength}`);
  if (r.suppressIfgroup !== undefined) words.push(`suppress_ifgroup ${r.suppressIfgroup}`);
  if (r.realms !== undefined) words.push(`realms ${r.realms >>> 16}/${r.realms & 0xffff}`);
  if (r.unknown !== undefined && r.unknown.length > 0) words.push(`unknown ${r.unknown.map((a) => a.type).join(",")}`);
  return `rule${r.priority === undefined ? "" : ` ${r.priority}`} ${quote(words.join(" "))}`;
}

/** Writes one request the way iproute2's `ip rule add/del` builds it. */
function writeRule(w: NetlinkWriter, op: RuleRequest["op"], seq: number, r: ParsedRule): void {
  const table = r.table ?? RT_TABLE.UNSPEC;
  w.begin(
    op === "add" ? RTM.NEWRULE : RTM.DELRULE,
    op === "add" ? NLM_F.REQUEST | NLM_F.ACK | NLM_F.CREATE | NLM_F.EXCL : NLM_F.REQUEST | NLM_F.ACK,
    seq,
  );
  // struct fib_rule_hdr: family, dst_len, src_len, tos, table, res1, res2, action, flags
  w.u8(r.family === 4 ? AF_INET : AF_INET6)
    .u8(r.to?.len ?? 0)
    .u8(r.from?.len ?? 0)
    .u8(r.tos ?? 0)
    .u8(table < 256 ? table : RT_TABLE.UNSPEC)
    .u8(0)
    .u8(0)
    .u8(r.action ?? FR_ACT.UNSPEC)
    .u32(r.invert ? FIB_RULE_INVERT : 0);
  if (r.from !== undefined) w.attr(FRA.SRC, r.from.bytes);
  if (r.to !== undefined) w.attr(FRA.DST, r.to.bytes);
  if (r.iif !== undefined) w.attrString(FRA.IIFNAME, r.iif);
  if (r.oif !== undefined) w.attrString(FRA.OIFNAME, r.oif);
  if (r.fwmark !== undefined) w.attrU32(FRA.FWMARK, r.fwmark);
  if (r.fwmask !== undefined) w.attrU32(FRA.FWMASK, r.fwmask);
  if (table >= 256) w.attrU32(FRA.TABLE, table);
  if (r.goto !== undefined) w.attrU32(FRA.GOTO, r.goto);
  if (r.priority !== undefined) w.attrU32(FRA.PRIORITY, r.priority);
  if (r.protocol !== undefined) w.attrU8(FRA.PROTOCOL, r.protocol);
  if (r.realms !== undefined) w.attrU32(FRA.FLOW, r.realms);
  if (r.suppressPrefixLength !== undefined) w.attrU32(FRA.SUPPRESS_PREFIXLEN, r.suppressPrefixLength);
  if (r.suppressIfgroup !== undefined) w.attrU32(FRA.SUPPRESS_IFGROUP, r.suppressIfgroup);
  if (r.l3mdev) w.attrU8(FRA.L3MDEV, 1);
  if (r.uidRange !== undefined) w.attr(FRA.UID_RANGE, range32(r.uidRange));
  if (r.ipProto !== undefined) w.attrU8(FRA.IP_PROTO, r.ipProto);
  if (r.sport !== undefined) w.attr(FRA.SPORT_RANGE, range16(r.sport));
  if (r.sportMask !== undefined) w.attrU16(FRA.SPORT_MASK, r.sportMask);
  if (r.dport !== undefined) w.attr(FRA.DPORT_RANGE, range16(r.dport));
  if (r.dportMask !== undefined) w.attrU16(FRA.DPORT_MASK, r.dportMask);
  if (r.dscp !== undefined) w.attrU8(FRA.DSCP, r.dscp);
  if (r.dscpMask !== undefined) w.attrU8(FRA.DSCP_MASK, r.dscpMask);
  if (r.flowlabel !== undefined) w.attrBe32(FRA.FLOWLABEL, r.flowlabel);
  if (r.flowlabelMask !== undefined) w.attrBe32(FRA.FLOWLABEL_MASK, r.flowlabelMask);
  if (r.tunId !== undefined) {
    const id = new Uint8Array(8);
    new DataView(id.buffer).setBigUint64(0, r.tunId, false);
    w.attr(FRA.TUN_ID, id);
  }
  for (const a of r.unknown ?? []) w.attr(a.type, a.data);
  w.end();
}

/** `struct fib_rule_port_range`: two u16 in host order. */
function range16(r: PortRange): Uint8Array {
  const b = new Uint8Array(4);
  const dv = new DataView(b.buffer);
  dv.setUint16(0, r.start, true);
  dv.setUint16(2, r.end, true);
  return b;
}

/** `struct fib_rule_uid_range`: two u32 in host order. */
function range32(r: UidRange): Uint8Array {
  const b = new Uint8Array(8);
  const dv = new DataView(b.buffer);
  dv.setUint32(0, r.start, true);
  dv.setUint32(4, r.end, true);
  return b;
}

/**
 * Encodes a rule request (`RTM_NEWRULE` or `RTM_DELRULE`, with `NLM_F_ACK`)
 * the way iproute2's `ip rule add` and `ip rule del` do: the same header
 * defaults (table main, action to-table; `tos` in the header) and, for
 * words given in the order `from to iif oif fwmark table goto pref
 * protocol realms suppress_prefixlength suppress_ifgroup l3mdev uidrange
 * ipproto sport dport`, the same attribute order. Selectors iproute2 6.1
 * has no words for follow: `FRA_DSCP`, `FRA_DSCP_MASK`, `FRA_FLOWLABEL`,
 * `FRA_FLOWLABEL_MASK` and `FRA_TUN_ID`, then {@link RuleSpec.unknown}.
 * Pure: no system call.
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
  if (request.op !== "add" && request.op !== "delete")
    throw new TypeError(`Invalid rule request op ${quote(request.op)}: use "add" or "delete"`);
  checkInteger(request.seq, "rule request seq", 0, 0xffffffff);
  writeRule(w, request.op, request.seq, parseRuleSpec(request.spec, request.op));
}

function u32(d: Uint8Array, off: number): number {
  return (
    ((d[off] as number) |
      ((d[off + 1] as number) << 8) |
      ((d[off + 2] as number) << 16) |
      ((d[off + 3] as number) << 24)) >>>
    0
  );
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/**
 * Decodes the payload of an `RTM_NEWRULE` (or `RTM_DELRULE`) message from
 * the kernel: `struct fib_rule_hdr` and its `FRA_*` attributes.
 * `FRA_TABLE` wins over the header's table. Every `FRA_*` attribute of
 * the kernel's uapi is decoded; any other is kept in {@link Rule.unknown},
 * never dropped.
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
    throw new SyntaxError(
      `Invalid rule message: ${payload.length} bytes, struct fib_rule_hdr needs ${FIB_RULE_HDR_LEN}`,
    );
  }
  const af = payload[0] as number;
  if (af !== AF_INET && af !== AF_INET6)
    throw new SyntaxError(`Invalid rule message: address family ${af} is neither IPv4 nor IPv6`);
  const family: IpFamily = af === AF_INET ? 4 : 6;
  const dstLen = payload[1] as number;
  const srcLen = payload[2] as number;
  const tos = payload[3] as number;
  const rule: Mutable<Rule> = {
    family,
    priority: 0,
    action: ACTION_NAMES.get(payload[7] as number) ?? "unspec",
    table: payload[4] as number,
    invert: (u32(payload, 8) & FIB_RULE_INVERT) !== 0,
    protocol: 0,
  };
  if (tos !== 0) rule.tos = tos;
  const flags = u32(payload, 8);
  if ((flags & FIB_RULE_UNRESOLVED) !== 0) rule.unresolved = true;
  if ((flags & FIB_RULE_IIF_DETACHED) !== 0) rule.iifDetached = true;
  if ((flags & FIB_RULE_OIF_DETACHED) !== 0) rule.oifDetached = true;
  const addrLen = family === 4 ? 4 : 16;
  const prefix = (d: Uint8Array, len: number): string | undefined => {
    if (len === 0) return undefined;
    const bytes = new Uint8Array(addrLen);
    bytes.set(d.subarray(0, addrLen));
    return `${formatAddress(bytes)}/${len}`;
  };
  const unknown: RawAttribute[] = [];
  for (let off = FIB_RULE_HDR_LEN; off + NLA_HDRLEN <= payload.length;) {
    const len = (payload[off] as number) | ((payload[off + 1] as number) << 8);
    const rawType = (payload[off + 2] as number) | ((payload[off + 3] as number) << 8);
    const type = rawType & 0x3fff;
    if (len < NLA_HDRLEN || off + len > payload.length) {
      throw new SyntaxError(
        `Invalid rule attribute at offset ${off}: length ${len} with ${payload.length - off} bytes left`,
      );
    }
    const d = payload.subarray(off + NLA_HDRLEN, off + len);
    const n = d.length >= 4 ? u32(d, 0) : undefined;
    const dv = new DataView(d.buffer, d.byteOffset, d.byteLength);
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
      case FRA.FLOW:
        if (n !== undefined) rule.realms = { from: n >>> 16, to: n & 0xffff };
        break;
      case FRA.SUPPRESS_PREFIXLEN:
        // The kernel keeps -1 for "none" and sends only other values.
        if (n !== undefined && n !== 0xffffffff) rule.suppressPrefixLength = n;
        break;
      case FRA.SUPPRESS_IFGROUP:
        if (n !== undefined && n !== 0xffffffff) rule.suppressIfgroup = n;
        break;
      case FRA.L3MDEV:
        if ((d[0] ?? 0) !== 0) rule.l3mdev = true;
        break;
      case FRA.UID_RANGE:
        if (d.length >= 8) rule.uidRange = { start: dv.getUint32(0, true), end: dv.getUint32(4, true) };
        break;
      case FRA.IP_PROTO:
        if (d.length >= 1) rule.ipProto = d[0] as number;
        break;
      case FRA.SPORT_RANGE:
        if (d.length >= 4) rule.sport = { start: dv.getUint16(0, true), end: dv.getUint16(2, true) };
        break;
      case FRA.DPORT_RANGE:
        if (d.length >= 4) rule.dport = { start: dv.getUint16(0, true), end: dv.getUint16(2, true) };
        break;
      // A full mask is what the kernel (6.15+) reports for a single port or DSCP value given without one: left out.
      case FRA.SPORT_MASK:
        if (d.length >= 2 && dv.getUint16(0, true) !== 0xffff) rule.sportMask = dv.getUint16(0, true);
        break;
      case FRA.DPORT_MASK:
        if (d.length >= 2 && dv.getUint16(0, true) !== 0xffff) rule.dportMask = dv.getUint16(0, true);
        break;
      case FRA.DSCP:
        if (d.length >= 1) rule.dscp = d[0] as number;
        break;
      case FRA.DSCP_MASK:
        if (d.length >= 1 && d[0] !== 0x3f) rule.dscpMask = d[0] as number;
        break;
      case FRA.FLOWLABEL:
        if (d.length >= 4) rule.flowlabel = dv.getUint32(0, false);
        break;
      case FRA.FLOWLABEL_MASK:
        if (d.length >= 4) rule.flowlabelMask = dv.getUint32(0, false);
        break;
      case FRA.TUN_ID:
        if (d.length >= 8) rule.tunId = dv.getBigUint64(0, false);
        break;
      case FRA.PAD:
        break;
      default:
        unknown.push({ type: rawType, data: d.slice() });
        break;
    }
    off += (len + 3) & ~3;
  }
  // The kernel leaves a zero mark out when a mask is set: "fwmark 0/0xff00" is mark 0, not any mark.
  if (rule.fwmask !== undefined && rule.fwmark === undefined) rule.fwmark = 0;
  if (unknown.length > 0) rule.unknown = unknown;
  return rule;
}

/**
 * Thrown by {@link Rules.delete} instead of sending a request that the
 * kernel would apply to another rule than the one the spec describes: the
 * kernel deletes the first rule that agrees with the attributes a request
 * specifies, and {@link RuleShadowedError.rule} comes first.
 *
 * @example Telling a shadowed rule apart
 * ```ts
 * import assert from "node:assert/strict";
 * import { RuleShadowedError } from "@dp/routing";
 *
 * const first = { family: 4, priority: 100, action: "toTable", table: 100, invert: false, protocol: 0, ipProto: 6 } as const;
 * const err = new RuleShadowedError("Cannot delete rule 100", first, { priority: 100, table: 100 });
 * assert.equal(err.name, "RuleShadowedError");
 * assert.equal(err.rule.ipProto, 6);
 * ```
 */
export class RuleShadowedError extends Error {
  /** The rule the kernel would have deleted. */
  readonly rule: Rule;
  /** The spec that was to be deleted. */
  readonly spec: RuleSpec;

  /**
   * Makes the error.
   *
   * @param message What happened.
   * @param rule The rule the kernel would have deleted.
   * @param spec The spec that was to be deleted.
   */
  constructor(message: string, rule: Rule, spec: RuleSpec) {
    super(message);
    this.name = "RuleShadowedError";
    this.rule = rule;
    this.spec = spec;
  }
}

/** Selector fields: what a packet must have for the rule to apply. */
const SELECTORS = [
  "from",
  "to",
  "iif",
  "oif",
  "fwmark",
  "fwmask",
  "invert",
  "tos",
  "dscp",
  "dscpMask",
  "ipProto",
  "sport",
  "sportMask",
  "dport",
  "dportMask",
  "uidRange",
  "l3mdev",
  "suppressPrefixLength",
  "suppressIfgroup",
  "realms",
  "tunId",
  "flowlabel",
  "flowlabelMask",
  "unknown",
] as const;
type Selector = (typeof SELECTORS)[number];
type Field = Selector | "priority" | "table" | "action" | "goto" | "protocol";

/** The fields a spec gives (a mark given alone gives its implied full mask too). */
function givenKeys(spec: RuleSpec): ReadonlySet<Field> {
  const keys = new Set<Field>();
  for (const [k, v] of Object.entries(spec)) {
    if (v === undefined || k === "family" || k === "unresolved" || k === "iifDetached" || k === "oifDetached") continue;
    if (k === "action" && v === "unspec") continue;
    keys.add(k as Field);
  }
  if (keys.has("fwmark")) keys.add("fwmask");
  if (keys.has("flowlabel")) keys.add("flowlabelMask");
  return keys;
}

/** A field of a parsed rule as comparable text; undefined when the rule does not have it. */
function canon(r: ParsedRule, key: Field): string | undefined {
  switch (key) {
    case "from":
    case "to": {
      const p = r[key];
      return p === undefined ? undefined : prefixText(p);
    }
    case "fwmask": {
      const m = r.fwmask ?? (r.fwmark !== undefined && r.fwmark !== 0 ? 0xffffffff : undefined);
      return m === undefined ? undefined : String(m);
    }
    case "invert":
    case "l3mdev":
      return r[key] ? "true" : undefined;
    case "sport":
    case "dport":
    case "uidRange": {
      const v = r[key];
      return v === undefined ? undefined : `${v.start}-${v.end}`;
    }
    case "tos":
      return r.tos === undefined || r.tos === 0 ? undefined : String(r.tos);
    case "sportMask":
    case "dportMask":
      return r[key] === undefined || r[key] === 0xffff ? undefined : String(r[key]);
    case "dscpMask":
      return r.dscpMask === undefined || r.dscpMask === 0x3f ? undefined : String(r.dscpMask);
    case "unknown":
      return r.unknown === undefined || r.unknown.length === 0
        ? undefined
        : r.unknown
            .map((a) => `${a.type}:${Array.from(a.data, (b) => b.toString(16).padStart(2, "0")).join("")}`)
            .join(",");
    default: {
      const v = r[key];
      return v === undefined ? undefined : String(v);
    }
  }
}

/** Whether a listed rule has every field the spec gives. */
function satisfies(want: ParsedRule, given: ReadonlySet<Field>, r: ParsedRule): boolean {
  for (const key of given) if (canon(want, key) !== canon(r, key)) return false;
  return true;
}

/** Whether a listed rule is exactly the spec: it has the given fields and no selector the spec lacks. */
function isExact(want: ParsedRule, given: ReadonlySet<Field>, r: ParsedRule): boolean {
  if (!satisfies(want, given, r)) return false;
  for (const key of SELECTORS) if (!given.has(key) && canon(r, key) !== undefined) return false;
  return true;
}

/**
 * Whether the kernel could pick listed rule `r` for delete request `q`
 * (`rule_find()` in net/core/fib_rules.c and the families' `compare()`):
 * a field rules `r` out only when the request specifies it and the kernel
 * is known to compare it. Any other field is taken as a wildcard, so the
 * answer errs towards "could".
 */
function kernelMayMatch(q: ParsedRule, r: ParsedRule): boolean {
  const same = (key: Field): boolean => canon(q, key) === canon(r, key);
  if (q.priority !== undefined && q.priority !== r.priority) return false;
  if (q.action !== undefined && q.action !== 0 && q.action !== r.action) return false;
  if (q.table !== undefined && q.table !== 0 && q.table !== (r.table ?? 0)) return false;
  if (q.protocol !== undefined && q.protocol !== 0 && q.protocol !== (r.protocol ?? 0)) return false;
  if (q.iif !== undefined && !same("iif")) return false;
  if (q.oif !== undefined && !same("oif")) return false;
  if (q.fwmark !== undefined && q.fwmark !== 0 && q.fwmark !== (r.fwmark ?? 0)) return false;
  const qmask = canon(q, "fwmask");
  if (qmask !== undefined && qmask !== "0" && qmask !== (canon(r, "fwmask") ?? "0")) return false;
  if (q.suppressPrefixLength !== undefined && !same("suppressPrefixLength")) return false;
  if (q.suppressIfgroup !== undefined && !same("suppressIfgroup")) return false;
  if (q.tunId !== undefined && q.tunId !== 0n && q.tunId !== (r.tunId ?? 0n)) return false;
  if (q.l3mdev && !r.l3mdev) return false;
  if (q.uidRange !== undefined && !same("uidRange")) return false;
  if (q.ipProto !== undefined && q.ipProto !== 0 && q.ipProto !== (r.ipProto ?? 0)) return false;
  if (q.sport !== undefined && !same("sport")) return false;
  if (q.dport !== undefined && !same("dport")) return false;
  if (q.from !== undefined && !same("from")) return false;
  if (q.to !== undefined && !same("to")) return false;
  if (q.tos !== undefined && q.tos !== 0 && q.tos !== (r.tos ?? 0)) return false;
  if (q.realms !== undefined && q.realms !== (r.realms ?? 0)) return false;
  return true;
}

/** A listed rule as a parsed spec; undefined when dp cannot express it (it is then treated as matching anything). */
function parseListed(r: Rule): ParsedRule | undefined {
  const { table, ...rest } = r;
  try {
    return parseRuleSpec(table === 0 ? rest : r, "delete");
  } catch {
    return undefined;
  }
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
   * Deletes one rule (`ip rule del`), and never another one than the spec
   * describes. Fields left out match any value, so `{ priority: 30 }`
   * deletes the first rule with that priority; a rule returned by
   * {@link Rules.list} describes exactly that rule.
   *
   * The kernel deletes the first rule that agrees with every attribute the
   * request specifies: unspecified ones (and some it never compares, such
   * as `not`) act as wildcards, so `ip rule del priority 100 lookup 100`
   * removes `100: ipproto tcp dport 80 lookup 100` when that one is listed
   * first. So `delete` sends every attribute of the spec, and first lists
   * the rules to work out which one the kernel would take: when that rule
   * does not match the spec, or another rule listed later matches it
   * exactly (no selector the spec lacks) while the first does not, it
   * refuses with a {@link RuleShadowedError} naming the rule that would go.
   * Delete that one first (or re-add it after) to reach the shadowed rule.
   * The listing and the deletion are two requests: a rule another process
   * inserts in between is not seen.
   *
   * @param spec The rule to match.
   * @returns Whether a rule was deleted (false when none matched).
   * @throws {SyntaxError} When a prefix is malformed (before any system call).
   * @throws {TypeError} When a field has the wrong type.
   * @throws {RangeError} When a number is out of range.
   * @throws {RuleShadowedError} When the kernel would delete another rule than the one the spec describes.
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
   * @example A rule shadowed by a more specific one listed first
   * ```ts kernel
   * import assert from "node:assert/strict";
   * import { openRouting, RuleShadowedError } from "@dp/routing";
   * import { netns } from "@dp/core/testing";
   *
   * using ns = netns();
   * using rt = openRouting({ netns: ns.ns });
   * rt.rules.add({ priority: 100, ipProto: "tcp", dport: 80, table: 100 });
   * rt.rules.add({ priority: 100, table: 100 });
   * const plain = rt.rules.list({ family: 4 }).find((r) => r.priority === 100 && r.ipProto === undefined)!;
   * assert.throws(() => rt.rules.delete(plain), (e) => e instanceof RuleShadowedError && e.rule.ipProto === 6);
   * assert.equal(rt.rules.list({ family: 4 }).filter((r) => r.priority === 100).length, 2);
   * ```
   */
  delete(spec: RuleSpec): boolean {
    const want = parseRuleSpec(spec, "delete");
    const given = givenKeys(spec);
    const listed = this.list({ family: want.family });
    const parsed = listed.map((r) => parseListed(r));
    const matches: number[] = [];
    parsed.forEach((r, i) => {
      if (r === undefined || kernelMayMatch(want, r)) matches.push(i);
    });
    const first = matches[0];
    if (first === undefined) return false;
    const head = parsed[first];
    const exactLater = matches.some((i) => parsed[i] !== undefined && isExact(want, given, parsed[i]));
    if (head === undefined || !satisfies(want, given, head) || (exactLater && !isExact(want, given, head))) {
      throw new RuleShadowedError(
        `Cannot delete ${want.label}: the kernel would delete ${head?.label ?? "an earlier rule"} instead, which comes first and matches the request${
          head !== undefined && !satisfies(want, given, head) ? " but not the spec" : ""
        }`,
        listed[first] as Rule,
        spec,
      );
    }
    const nl = this.#ctx.nl;
    const w = nl.writer();
    writeRule(w, "delete", nl.nextSeq(), want);
    try {
      nl.request(w, `delete ${want.label}`, "RTM_DELRULE");
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
    if (family !== undefined && family !== 4 && family !== 6)
      throw new TypeError(`Invalid rule list family ${quote(family)}: use 4 or 6`);
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
