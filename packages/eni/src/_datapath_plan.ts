// The ENI datapath's desired state, computed from the ENIs and pods
// without touching the kernel (datapath.ts applies it), plus the pure
// masquerade decision. IPv4 only, as Cilium's ENI datapath.
import { parseCidr, parseIp } from "@dp/core";
import type { EniDatapathEni, EniDatapathOptions, EniDatapathPod, EniDatapathState } from "./datapath_state.ts";

/** The main table's number. */
export const MAIN_TABLE = 254;

// The plan takes the public input types (datapath.ts documents them).
type PlanEni = EniDatapathEni;
type PlanPod = EniDatapathPod;
type PlanState = EniDatapathState;
type PlanOptions = EniDatapathOptions;

/** A FIB rule dp wants: a `"toTable"` rule with only priority, from, to and table. */
export interface PlannedRule {
  /** `priority|from|to`: what identifies the rule for reconciliation. */
  readonly key: string;
  readonly priority: number;
  /** A canonical prefix such as `"192.168.0.20/32"`, or undefined for any source. */
  readonly from: string | undefined;
  /** A canonical prefix, or undefined for any destination. */
  readonly to: string | undefined;
  readonly table: number;
  /** `rule 30: from 192.168.0.20 to 192.168.0.0/16 lookup 11`. */
  readonly text: string;
}

/** A unicast route dp wants (metric 0). */
export interface PlannedRoute {
  /** `table|dst|metric`: the kernel's identity of an IPv4 route (tos is always 0 here). */
  readonly key: string;
  readonly table: number;
  /** `"default"` or a canonical prefix such as `"192.168.0.1/32"`. */
  readonly dst: string;
  readonly via: string | undefined;
  readonly dev: string;
  /** 253 (link) for direct routes, 0 (universe) for routes with a gateway. */
  readonly scope: number;
  /** `route default via 192.168.0.1 dev eth1 table 11`. */
  readonly text: string;
}

/** The planned rules and routes, in the order to create them. */
export interface EniPlan {
  /** Per ENI: the router's host route, then the default route; then the endpoint routes. */
  readonly routes: readonly PlannedRoute[];
  /** Per pod: the to-pod rule, then one from-pod rule per VPC CIDR. */
  readonly rules: readonly PlannedRule[];
  readonly protocol: number;
  readonly toPod: number;
  readonly fromPod: number;
}

/** The default route protocol of the ENI datapath's entries (0xdb; see datapath.ts). */
export const DEFAULT_PROTOCOL = 219;
/** Cilium's `RouteTableInterfacesOffset`: an ENI's table is its device index plus this. */
export const TABLE_OFFSET = 10;
const SCOPE_LINK = 253;
const SCOPE_UNIVERSE = 0;
const RESERVED_TABLES = new Set([253, 254, 255]);

function quote(v: unknown): string {
  return typeof v === "string" ? JSON.stringify(v) : String(v);
}

function checkObject(v: unknown, what: string): void {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new TypeError(
      `Invalid ${what}: expected an object, got ${v === null ? "null" : Array.isArray(v) ? "an array" : typeof v}`,
    );
  }
}

function checkArray(v: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(v)) throw new TypeError(`Invalid ${what}: expected an array, got ${typeof v}`);
  return v;
}

function checkInteger(v: unknown, what: string, min: number, max: number): number {
  if (typeof v !== "number") throw new TypeError(`Invalid ${what}: expected a number, got ${typeof v}`);
  if (!Number.isInteger(v) || v < min || v > max)
    throw new RangeError(`Invalid ${what} ${v}: use an integer from ${min} to ${max}`);
  return v;
}

/** An interface name: 1-15 characters without spaces, "/" or ":". */
export function checkIfName(v: unknown, what: string): string {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an interface name, got ${typeof v}`);
  if (v.length === 0 || v.length > 15 || /[\s/:]/.test(v)) {
    throw new RangeError(`Invalid ${what} ${quote(v)}: use 1-15 characters without spaces, "/" or ":"`);
  }
  return v;
}

/** An IPv4 prefix: its network number, length and canonical text. */
export interface Ipv4Prefix {
  readonly net: number;
  readonly len: number;
  readonly text: string;
}

function u32(b: Uint8Array): number {
  return (((b[0] as number) << 24) | ((b[1] as number) << 16) | ((b[2] as number) << 8) | (b[3] as number)) >>> 0;
}

function dotted(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

function mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Parses an IPv4 address to a number. */
export function parseIpv4(v: unknown, what: string): number {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an IPv4 address string, got ${typeof v}`);
  let ip;
  try {
    ip = parseIp(v);
  } catch (err) {
    throw new SyntaxError(`Invalid ${what} ${quote(v)}: not an IP address`, { cause: err });
  }
  if (ip.family !== 4) throw new RangeError(`Invalid ${what} ${quote(v)}: the ENI datapath is IPv4 only`);
  return u32(ip.bytes);
}

/** Parses an IPv4 prefix without host bits (a bare address is a /32). */
export function parseIpv4Prefix(v: unknown, what: string): Ipv4Prefix {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an IPv4 prefix string, got ${typeof v}`);
  let p;
  try {
    p = parseCidr(v);
  } catch (err) {
    throw new SyntaxError(`Invalid ${what} ${quote(v)}: not a CIDR prefix`, { cause: err });
  }
  if (p.family !== 4) throw new RangeError(`Invalid ${what} ${quote(v)}: the ENI datapath is IPv4 only`);
  const n = u32(p.bytes);
  const net = (n & mask(p.prefixLength)) >>> 0;
  if (net !== n)
    throw new RangeError(
      `Invalid ${what} ${quote(v)}: host bits are set (the prefix is ${dotted(net)}/${p.prefixLength})`,
    );
  return { net, len: p.prefixLength, text: `${dotted(net)}/${p.prefixLength}` };
}

/** Whether an IPv4 address (as a number) lies in a prefix. */
export function prefixContains(p: Ipv4Prefix, ip: number): boolean {
  return (ip & mask(p.len)) >>> 0 === p.net;
}

/** Formats an IPv4 number. */
export function formatIpv4(n: number): string {
  return dotted(n);
}

/** `"a.b.c.d/32"` → `"a.b.c.d"` for host prefixes, as `ip` prints them. */
function short(prefix: string): string {
  return prefix.endsWith("/32") ? prefix.slice(0, -3) : prefix;
}

/** Describes a rule the way `ip rule` prints it. */
export function ruleText(priority: number, from: string | undefined, to: string | undefined, table: number): string {
  const words = [`from ${from === undefined ? "all" : short(from)}`];
  if (to !== undefined) words.push(`to ${short(to)}`);
  words.push(`lookup ${table === MAIN_TABLE ? "main" : table}`);
  return `rule ${priority}: ${words.join(" ")}`;
}

/** Describes a route the way `ip route` prints it, plus its table unless main. */
export function routeText(r: {
  readonly dst: string;
  readonly via?: string | undefined;
  readonly dev?: string | undefined;
  readonly scope: number;
  readonly table: number;
  readonly type?: string;
  readonly metric?: number;
  readonly protocol?: number | undefined;
}): string {
  let s = `route ${r.type === undefined || r.type === "unicast" ? "" : `${r.type} `}${short(r.dst)}`;
  if (r.via !== undefined) s += ` via ${r.via}`;
  if (r.dev !== undefined) s += ` dev ${r.dev}`;
  if (r.protocol !== undefined) s += ` proto ${r.protocol}`;
  if (r.scope === SCOPE_LINK) s += " scope link";
  else if (r.scope !== SCOPE_UNIVERSE) s += ` scope ${r.scope}`;
  if (r.metric !== undefined && r.metric !== 0) s += ` metric ${r.metric}`;
  if (r.table !== MAIN_TABLE) s += ` table ${r.table}`;
  return s;
}

/** The rule priorities and protocol, validated. */
export function checkCommonOptions(
  options: PlanOptions,
  what: string,
): { toPod: number; fromPod: number; protocol: number } {
  checkObject(options, what);
  const prios = options.rulePriorities ?? {};
  checkObject(prios, `${what}.rulePriorities`);
  const toPod = prios.toPod === undefined ? 20 : checkInteger(prios.toPod, `${what}.rulePriorities.toPod`, 1, 32765);
  const fromPod =
    prios.fromPod === undefined ? 30 : checkInteger(prios.fromPod, `${what}.rulePriorities.fromPod`, 1, 32765);
  if (toPod >= fromPod) {
    throw new RangeError(
      `Invalid ${what}.rulePriorities: toPod (${toPod}) must come before fromPod (${fromPod}), or pod-to-pod traffic would leave through the ENI`,
    );
  }
  const protocol =
    options.protocol === undefined ? DEFAULT_PROTOCOL : checkInteger(options.protocol, `${what}.protocol`, 4, 255);
  return { toPod, fromPod, protocol };
}

/** A validated ENI. */
interface CheckedEni {
  readonly dev: string;
  readonly table: number;
  readonly router: number;
  readonly subnet: Ipv4Prefix;
  readonly vpcCidrs: readonly Ipv4Prefix[];
}

/** A validated pod. */
interface CheckedPod {
  readonly ip: number;
  readonly eni: CheckedEni;
  readonly hostDev: string | undefined;
}

const ENI_KEYS = new Set(["dev", "deviceIndex", "table", "routerIp", "subnetCidr", "vpcCidrs"]);
const POD_KEYS = new Set(["ip", "eni", "hostDev"]);

/** Validates the state: every error is thrown before anything touches the kernel. */
export function checkState(state: PlanState, what = "ENI datapath state"): { enis: CheckedEni[]; pods: CheckedPod[] } {
  checkObject(state, what);
  const enis: CheckedEni[] = [];
  const byDev = new Map<string, CheckedEni>();
  const tables = new Map<number, string>();
  checkArray(state.enis, `${what}.enis`).forEach((e, i) => {
    const at = `${what}.enis[${i}]`;
    checkObject(e, at);
    const eni = e as PlanEni;
    for (const key of Object.keys(eni))
      if (!ENI_KEYS.has(key)) throw new TypeError(`Invalid ${at}.${key}: not an ENI field`);
    const dev = checkIfName(eni.dev, `${at}.dev`);
    if (byDev.has(dev)) throw new RangeError(`Invalid ${at}.dev ${quote(dev)}: another ENI has the same interface`);
    const deviceIndex = checkInteger(eni.deviceIndex, `${at}.deviceIndex`, 0, 0xffff);
    const table =
      eni.table === undefined ? deviceIndex + TABLE_OFFSET : checkInteger(eni.table, `${at}.table`, 1, 0xffffffff);
    if (RESERVED_TABLES.has(table))
      throw new RangeError(`Invalid ${at}.table ${table}: 253, 254 and 255 are the default, main and local tables`);
    const other = tables.get(table);
    if (other !== undefined)
      throw new RangeError(`Invalid ${at}.table ${table}: ENI ${quote(other)} uses the same table`);
    const subnet = parseIpv4Prefix(eni.subnetCidr, `${at}.subnetCidr`);
    if (subnet.len > 30)
      throw new RangeError(
        `Invalid ${at}.subnetCidr ${quote(eni.subnetCidr)}: a subnet needs room for a router and hosts (at most /30)`,
      );
    const router = eni.routerIp === undefined ? subnet.net + 1 : parseIpv4(eni.routerIp, `${at}.routerIp`);
    if (!prefixContains(subnet, router))
      throw new RangeError(`Invalid ${at}.routerIp ${quote(eni.routerIp)}: not in subnet ${subnet.text}`);
    const cidrs = checkArray(eni.vpcCidrs, `${at}.vpcCidrs`).map((c, j) => parseIpv4Prefix(c, `${at}.vpcCidrs[${j}]`));
    if (cidrs.length === 0) throw new RangeError(`Invalid ${at}.vpcCidrs: give at least one VPC CIDR`);
    const vpcCidrs = [...new Map(cidrs.map((c) => [c.text, c])).values()];
    const checked: CheckedEni = { dev, table, router, subnet, vpcCidrs };
    enis.push(checked);
    byDev.set(dev, checked);
    tables.set(table, dev);
  });
  const pods: CheckedPod[] = [];
  const ips = new Set<number>();
  checkArray(state.pods, `${what}.pods`).forEach((p, i) => {
    const at = `${what}.pods[${i}]`;
    checkObject(p, at);
    const pod = p as PlanPod;
    for (const key of Object.keys(pod))
      if (!POD_KEYS.has(key)) throw new TypeError(`Invalid ${at}.${key}: not a pod field`);
    const ip = parseIpv4(pod.ip, `${at}.ip`);
    if (ips.has(ip)) throw new RangeError(`Invalid ${at}.ip ${quote(pod.ip)}: another pod has the same IP`);
    const eniDev = checkIfName(pod.eni, `${at}.eni`);
    const eni = byDev.get(eniDev);
    if (eni === undefined) throw new RangeError(`Invalid ${at}.eni ${quote(eniDev)}: no such ENI in the state`);
    if (!prefixContains(eni.subnet, ip))
      throw new RangeError(
        `Invalid ${at}.ip ${quote(pod.ip)}: not in ENI ${quote(eniDev)}'s subnet ${eni.subnet.text}`,
      );
    if (ip === eni.router)
      throw new RangeError(`Invalid ${at}.ip ${quote(pod.ip)}: it is ENI ${quote(eniDev)}'s router IP`);
    const hostDev = pod.hostDev === undefined ? undefined : checkIfName(pod.hostDev, `${at}.hostDev`);
    ips.add(ip);
    pods.push({ ip, eni, hostDev });
  });
  return { enis, pods };
}

/**
 * Computes the rules and routes of the ENI datapath, as Cilium's
 * datapath.rst shows them.
 *
 * @throws {TypeError} When the state or options have the wrong shape.
 * @throws {SyntaxError} When an address or prefix cannot be parsed.
 * @throws {RangeError} When values conflict or are out of range.
 */
export function planEniDatapath(state: PlanState, options: PlanOptions = {}): EniPlan {
  const { toPod, fromPod, protocol } = checkCommonOptions(options, "ENI datapath options");
  if (options.enableEndpointRoutes !== undefined && typeof options.enableEndpointRoutes !== "boolean") {
    throw new TypeError(
      `Invalid ENI datapath options.enableEndpointRoutes: expected a boolean, got ${typeof options.enableEndpointRoutes}`,
    );
  }
  const { enis, pods } = checkState(state);
  const routes: PlannedRoute[] = [];
  const route = (table: number, dst: string, via: string | undefined, dev: string, scope: number): void => {
    routes.push({
      key: `${table}|${dst}|0`,
      table,
      dst,
      via,
      dev,
      scope,
      text: routeText({ dst, via, dev, scope, table }),
    });
  };
  for (const eni of enis) {
    const router = formatIpv4(eni.router);
    // The host route first: the kernel checks the gateway of the default route against the table.
    route(eni.table, `${router}/32`, undefined, eni.dev, SCOPE_LINK);
    route(eni.table, "default", router, eni.dev, SCOPE_UNIVERSE);
  }
  if (options.enableEndpointRoutes === true) {
    for (const pod of pods) {
      if (pod.hostDev !== undefined) route(MAIN_TABLE, `${formatIpv4(pod.ip)}/32`, undefined, pod.hostDev, SCOPE_LINK);
    }
  }
  const rules: PlannedRule[] = [];
  const rule = (priority: number, from: string | undefined, to: string | undefined, table: number): void => {
    rules.push({
      key: `${priority}|${from ?? ""}|${to ?? ""}`,
      priority,
      from,
      to,
      table,
      text: ruleText(priority, from, to, table),
    });
  };
  for (const pod of pods) {
    const host = `${formatIpv4(pod.ip)}/32`;
    rule(toPod, undefined, host, MAIN_TABLE);
    for (const cidr of pod.eni.vpcCidrs) rule(fromPod, host, cidr.text, pod.eni.table);
  }
  return { routes, rules, protocol, toPod, fromPod };
}

/** Checks an iptables-style interface selector: a name, or a prefix followed by "+". */
export function checkSelector(v: unknown, what: string): string {
  if (typeof v !== "string") throw new TypeError(`Invalid ${what}: expected an interface selector, got ${typeof v}`);
  const base = v.endsWith("+") ? v.slice(0, -1) : v;
  if (v === "+") return v;
  if (v.length > 15 || base.length === 0 || /[\s/:+]/.test(base)) {
    throw new RangeError(
      `Invalid ${what} ${quote(v)}: use an interface name, or a prefix followed by "+" (such as "eth+")`,
    );
  }
  return v;
}

/** Whether an interface name matches an iptables-style selector ("eth+" is every name starting with "eth"). */
export function selectorMatches(selector: string, name: string): boolean {
  return selector.endsWith("+") ? name.startsWith(selector.slice(0, -1)) : name === selector;
}
