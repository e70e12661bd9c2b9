import type { Route, RouteSpec, Routing, Rule, RuleSpec } from "@dp/routing";
import {
  checkCommonOptions,
  checkIfName,
  checkSelector,
  checkState,
  DEFAULT_PROTOCOL,
  type EniPlan,
  formatIpv4,
  MAIN_TABLE,
  parseIpv4,
  parseIpv4Prefix,
  planEniDatapath,
  type PlannedRoute,
  type PlannedRule,
  prefixContains,
  routeText,
  ruleText,
  selectorMatches,
} from "./_datapath_plan.ts";
import type { EniDatapathOptions, EniDatapathState, ListEniPodIpsOptions } from "./datapath_state.ts";

/**
 * The route protocol (`RTPROT_*`, 0xdb) that marks the FIB rules and routes
 * of the ENI datapath: {@link reconcileEniDatapath} removes only entries
 * with this protocol, so rules and routes of anything else (the kernel,
 * iproute2's `boot`, a routing daemon) are never touched. 219 is not in
 * iproute2's `rt_protos`, so `ip rule` and `ip route` print it as
 * `proto 219`. Give other components their own value.
 */
export const ENI_ROUTE_PROTOCOL: number = DEFAULT_PROTOCOL;

/** What {@link reconcileEniDatapath} changed, as `ip`-style descriptions. */
export interface EniDatapathChanges {
  /** Rules and routes created. */
  readonly added: string[];
  /** Stale rules and routes of the datapath deleted (pods or ENIs gone). */
  readonly removed: string[];
  /** Rules and routes that existed but differed, put back as planned (with what was there). */
  readonly repaired: string[];
  /** Routes not installed because their interface does not exist (yet). */
  readonly skipped: string[];
}

function ruleSpecOf(r: Rule): RuleSpec {
  const spec: { -readonly [K in keyof RuleSpec]: RuleSpec[K] } = {
    family: r.family,
    priority: r.priority,
    invert: r.invert,
    protocol: r.protocol,
  };
  if (r.from !== undefined) spec.from = r.from;
  if (r.to !== undefined) spec.to = r.to;
  if (r.iif !== undefined) spec.iif = r.iif;
  if (r.oif !== undefined) spec.oif = r.oif;
  if (r.fwmark !== undefined) spec.fwmark = r.fwmark;
  if (r.fwmask !== undefined) spec.fwmask = r.fwmask;
  if (r.goto !== undefined) spec.goto = r.goto;
  spec.action = r.action;
  if (r.action === "toTable") spec.table = r.table;
  return spec;
}

function describeRule(r: Rule): string {
  if (r.action === "toTable" && r.iif === undefined && r.oif === undefined && r.fwmark === undefined && !r.invert) {
    return ruleText(r.priority, r.from, r.to, r.table);
  }
  const words: string[] = [];
  if (r.invert) words.push("not");
  words.push(`from ${r.from ?? "all"}`);
  if (r.to !== undefined) words.push(`to ${r.to}`);
  if (r.iif !== undefined) words.push(`iif ${r.iif}`);
  if (r.oif !== undefined) words.push(`oif ${r.oif}`);
  if (r.fwmark !== undefined) words.push(`fwmark 0x${r.fwmark.toString(16)}`);
  words.push(
    r.action === "toTable"
      ? `lookup ${r.table === MAIN_TABLE ? "main" : r.table}`
      : r.action === "goto"
        ? `goto ${r.goto}`
        : r.action,
  );
  return `rule ${r.priority}: ${words.join(" ")}`;
}

function ruleMatches(r: Rule, want: PlannedRule, protocol: number): boolean {
  return (
    r.protocol === protocol &&
    r.action === "toTable" &&
    r.table === want.table &&
    r.iif === undefined &&
    r.oif === undefined &&
    r.fwmark === undefined &&
    !r.invert
  );
}

function routeMatches(r: Route, want: PlannedRoute, dev: number, protocol: number): boolean {
  return (
    r.protocol === protocol &&
    r.type === "unicast" &&
    r.via === want.via &&
    r.dev === dev &&
    r.scope === want.scope &&
    !r.onlink &&
    r.src === undefined &&
    r.mtu === undefined &&
    r.nexthops === undefined
  );
}

/** Applies a plan: the body of {@link reconcileEniDatapath}. */
function apply(routing: Routing, plan: EniPlan): EniDatapathChanges {
  const { protocol } = plan;
  const changes: EniDatapathChanges = { added: [], removed: [], repaired: [], skipped: [] };
  const links = routing.links.list();
  const indexOf = new Map(links.map((l) => [l.name, l.index]));
  const nameOf = new Map(links.map((l) => [l.index, l.name]));
  const describeRoute = (r: Route): string =>
    routeText({
      ...r,
      dev: r.dev === undefined ? undefined : (nameOf.get(r.dev) ?? `if${r.dev}`),
      protocol: r.protocol === protocol ? undefined : r.protocol,
    });

  // Rules: the owned ones are ours to match, repair or delete.
  const wantRules = new Map(plan.rules.map((r) => [r.key, r]));
  const satisfied = new Set<string>();
  const ruleRepairs: { want: PlannedRule; was: Rule }[] = [];
  for (const r of routing.rules.list({ family: 4 })) {
    if (r.protocol !== protocol) continue;
    const key = `${r.priority}|${r.from ?? ""}|${r.to ?? ""}`;
    const want = wantRules.get(key);
    if (want !== undefined && !satisfied.has(key)) {
      satisfied.add(key);
      if (!ruleMatches(r, want, protocol)) ruleRepairs.push({ want, was: r });
      continue;
    }
    if (routing.rules.delete(ruleSpecOf(r))) changes.removed.push(describeRule(r));
  }

  // Routes: the kernel's identity of an IPv4 route is table, prefix, tos and metric.
  const existing = new Map<string, Route>();
  const owned: Route[] = [];
  for (const r of routing.routes.list({ table: "all", family: 4 })) {
    const key = `${r.table}|${r.dst}|${r.metric}`;
    if (!existing.has(key)) existing.set(key, r);
    if (r.protocol === protocol) owned.push(r);
  }
  const wantRoutes = new Set(plan.routes.map((r) => r.key));
  // Stale routes first, default routes before the host routes their gateways use.
  for (const r of owned
    .filter((o) => !wantRoutes.has(`${o.table}|${o.dst}|${o.metric}`))
    .sort((a, b) => (a.dst === "default" ? 0 : 1) - (b.dst === "default" ? 0 : 1))) {
    const spec: { -readonly [K in keyof RouteSpec]: RouteSpec[K] } = {
      family: r.family,
      dst: r.dst,
      table: r.table,
      type: r.type,
      protocol,
      metric: r.metric,
    };
    if (r.via !== undefined) spec.via = r.via;
    if (r.dev !== undefined && r.dev > 0) spec.dev = r.dev;
    if (routing.routes.delete(spec)) changes.removed.push(describeRoute(r));
  }
  for (const want of plan.routes) {
    const dev = indexOf.get(want.dev);
    if (dev === undefined) {
      changes.skipped.push(`${want.text}: no link "${want.dev}"`);
      continue;
    }
    const spec: RouteSpec = {
      dst: want.dst,
      family: 4,
      table: want.table,
      dev,
      scope: want.scope,
      protocol,
      type: "unicast",
      ...(want.via === undefined ? {} : { via: want.via }),
    };
    const was = existing.get(want.key);
    if (was === undefined) {
      routing.routes.add(spec);
      changes.added.push(want.text);
    } else if (!routeMatches(was, want, dev, protocol)) {
      routing.routes.replace(spec);
      changes.repaired.push(`${want.text} (was: ${describeRoute(was).slice("route ".length)})`);
    }
  }

  for (const { want, was } of ruleRepairs) {
    routing.rules.delete(ruleSpecOf(was));
    routing.rules.add({
      family: 4,
      priority: want.priority,
      ...(want.from === undefined ? {} : { from: want.from }),
      ...(want.to === undefined ? {} : { to: want.to }),
      table: want.table,
      protocol,
    });
    changes.repaired.push(`${want.text} (was: ${describeRule(was).replace(/^rule \d+: /, "")})`);
  }
  for (const want of plan.rules) {
    if (satisfied.has(want.key)) continue;
    routing.rules.add({
      family: 4,
      priority: want.priority,
      ...(want.from === undefined ? {} : { from: want.from }),
      ...(want.to === undefined ? {} : { to: want.to }),
      table: want.table,
      protocol,
    });
    changes.added.push(want.text);
  }
  return changes;
}

/**
 * Makes a namespace's FIB rules and routes match the ENI datapath of
 * Cilium's datapath.rst, and reports what it changed. For each pod: rule
 * `from all to POD_IP lookup main` (priority 20), rules
 * `from POD_IP to VPC_CIDR lookup TABLE` (priority 30, one per VPC CIDR,
 * the table of the pod's ENI) and, with `enableEndpointRoutes`, the route
 * `POD_IP dev lxc… scope link` in the main table. For each ENI, in its
 * table: `ROUTER_IP dev ethN scope link` and `default via ROUTER_IP dev ethN`.
 *
 * Everything it creates carries the route protocol `options.protocol`
 * ({@link ENI_ROUTE_PROTOCOL}); entries with that protocol that the state
 * does not call for (pods or ENIs gone) are deleted, entries that differ
 * are repaired, and nothing with another protocol is deleted. A planned
 * route whose slot (table, prefix, metric 0) another protocol occupies is
 * replaced, and counts as repaired. Calling it again with the same state
 * changes nothing. IPv4 only; IPv6 rules and routes are not looked at.
 *
 * The state is validated before any change. A route whose interface does
 * not exist is skipped and reported in `skipped`; the rest is applied.
 *
 * @param routing The handle on the node's namespace.
 * @param state The ENIs and the pod IPs in use.
 * @param options Endpoint routes, rule priorities, the protocol.
 * @returns The descriptions of the rules and routes added, removed, repaired and skipped.
 * @throws {TypeError} When the state or options have the wrong shape (before any change).
 * @throws {SyntaxError} When an address or prefix cannot be parsed (before any change).
 * @throws {RangeError} When values conflict: a pod IP outside its ENI's subnet, an unknown ENI, two ENIs with one table, duplicate pod IPs, toPod not below fromPod (before any change).
 * @throws {NetlinkError} When the kernel refuses a change; the changes before it stay, and a later call carries on.
 * @example Routing two pods of one ENI
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { reconcileEniDatapath } from "@dp/eni";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * ns.exec("ip", ["link", "add", "eth1", "type", "veth", "peer", "name", "vpc1"]);
 * ns.exec("ip", ["link", "set", "eth1", "up"]);
 * using rt = openRouting({ netns: ns.ns });
 * const state = {
 *   enis: [{ dev: "eth1", deviceIndex: 1, subnetCidr: "192.168.0.0/24", vpcCidrs: ["192.168.0.0/16"] }],
 *   pods: [{ ip: "192.168.0.20", eni: "eth1" }, { ip: "192.168.0.21", eni: "eth1" }],
 * };
 * const changes = reconcileEniDatapath(rt, state);
 * assert.deepEqual(changes.added, [
 *   "route 192.168.0.1 dev eth1 scope link table 11",
 *   "route default via 192.168.0.1 dev eth1 table 11",
 *   "rule 20: from all to 192.168.0.20 lookup main",
 *   "rule 30: from 192.168.0.20 to 192.168.0.0/16 lookup 11",
 *   "rule 20: from all to 192.168.0.21 lookup main",
 *   "rule 30: from 192.168.0.21 to 192.168.0.0/16 lookup 11",
 * ]);
 * const again = reconcileEniDatapath(rt, state);
 * assert.deepEqual([again.added, again.removed, again.repaired], [[], [], []]);
 * ```
 */
export function reconcileEniDatapath(
  routing: Routing,
  state: EniDatapathState,
  options: EniDatapathOptions = {},
): EniDatapathChanges {
  const plan = planEniDatapath(state, options);
  if (options.egressMasqueradeInterfaces !== undefined) {
    checkSelectors(options.egressMasqueradeInterfaces, "ENI datapath options.egressMasqueradeInterfaces");
  }
  return apply(routing, plan);
}

/**
 * Reads back the pod IPs the ENI datapath routes: the destinations of its
 * `from all to POD_IP lookup main` rules (priority `toPod`, protocol
 * `options.protocol`). After a restart, the IP pool takes the IPs in use
 * from here, from the kernel rather than from memory.
 *
 * @param routing The handle on the node's namespace.
 * @param options The rule priorities and protocol the datapath was reconciled with.
 * @returns The pod IPs, in numeric order.
 * @throws {TypeError} When an option has the wrong type.
 * @throws {RangeError} When an option is out of range.
 * @throws {NetlinkError} When the rules cannot be listed.
 * @example Recovering the IPs in use
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { listEniPodIps, reconcileEniDatapath } from "@dp/eni";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * ns.exec("ip", ["link", "add", "eth1", "type", "veth", "peer", "name", "vpc1"]);
 * ns.exec("ip", ["link", "set", "eth1", "up"]);
 * using rt = openRouting({ netns: ns.ns });
 * reconcileEniDatapath(rt, {
 *   enis: [{ dev: "eth1", deviceIndex: 1, subnetCidr: "192.168.0.0/24", vpcCidrs: ["192.168.0.0/16"] }],
 *   pods: [{ ip: "192.168.0.100", eni: "eth1" }, { ip: "192.168.0.9", eni: "eth1" }],
 * });
 * assert.deepEqual(listEniPodIps(rt), ["192.168.0.9", "192.168.0.100"]);
 * ```
 */
export function listEniPodIps(routing: Routing, options: ListEniPodIpsOptions = {}): string[] {
  const { toPod, protocol } = checkCommonOptions(options, "listEniPodIps options");
  const ips: { n: number; text: string }[] = [];
  for (const r of routing.rules.list({ family: 4 })) {
    if (
      r.priority !== toPod ||
      r.protocol !== protocol ||
      r.from !== undefined ||
      r.to === undefined ||
      !r.to.endsWith("/32")
    )
      continue;
    const text = r.to.slice(0, -3);
    ips.push({ n: parseIpv4(text, "rule destination"), text });
  }
  return ips.sort((a, b) => a.n - b.n).map((ip) => ip.text);
}

/**
 * Which pod traffic is masqueraded (source NAT to the outgoing interface's
 * address), as data. dp has no iptables; @dp/datapath's BPF NAT enforces
 * this policy. See {@link masqueradePolicy} and {@link shouldMasquerade}.
 */
export interface MasqueradePolicy {
  /** Interface selectors traffic is masqueraded out of (`"eth+"` style); empty: none. */
  readonly interfaces: readonly string[];
  /** The sources masqueraded: every pod IP, as /32 prefixes in numeric order. */
  readonly sources: readonly string[];
  /** Destinations never masqueraded: the VPC CIDRs, where pod IPs are routable as they are. */
  readonly excludeDestinations: readonly string[];
}

/** A packet's addresses and outgoing interface, for {@link shouldMasquerade}. */
export interface MasqueradeFlow {
  /** The source IPv4 address. */
  readonly src: string;
  /** The destination IPv4 address. */
  readonly dst: string;
  /** The name of the interface the packet leaves through. */
  readonly oif: string;
}

function checkSelectors(v: unknown, what: string): string[] {
  if (!Array.isArray(v))
    throw new TypeError(`Invalid ${what}: expected an array of interface selectors, got ${typeof v}`);
  return (v as readonly unknown[]).map((s, i) => checkSelector(s, `${what}[${i}]`));
}

/**
 * Computes the ENI datapath's masquerade policy (Cilium's
 * `egress-masquerade-interfaces`): traffic from pod IPs is masqueraded only
 * when it leaves through an interface that `egressMasqueradeInterfaces`
 * selects, and never when its destination is in a VPC CIDR. With no
 * selectors nothing is masqueraded. dp installs no iptables rules: the
 * policy is data for @dp/datapath's BPF NAT, which enforces it.
 *
 * @param state The ENIs (their VPC CIDRs) and the pod IPs.
 * @param options The masquerade interfaces; the other fields are ignored.
 * @returns The policy.
 * @throws {TypeError} When the state or a selector has the wrong shape.
 * @throws {SyntaxError} When an address or prefix cannot be parsed.
 * @throws {RangeError} When the state is inconsistent or a selector is not an interface name or `prefix+`.
 * @example Masquerading out of eth+, except to the VPC
 * ```ts
 * import assert from "node:assert/strict";
 * import { masqueradePolicy } from "@dp/eni";
 *
 * const policy = masqueradePolicy(
 *   {
 *     enis: [{ dev: "eth1", deviceIndex: 1, subnetCidr: "192.168.0.0/24", vpcCidrs: ["192.168.0.0/16"] }],
 *     pods: [{ ip: "192.168.0.20", eni: "eth1" }],
 *   },
 *   { egressMasqueradeInterfaces: ["eth+"] },
 * );
 * assert.deepEqual(policy, {
 *   interfaces: ["eth+"],
 *   sources: ["192.168.0.20/32"],
 *   excludeDestinations: ["192.168.0.0/16"],
 * });
 * ```
 */
export function masqueradePolicy(state: EniDatapathState, options: EniDatapathOptions = {}): MasqueradePolicy {
  if (typeof options !== "object" || options === null)
    throw new TypeError(
      `Invalid masquerade options: expected an object, got ${options === null ? "null" : typeof options}`,
    );
  const interfaces = [
    ...new Set(
      checkSelectors(options.egressMasqueradeInterfaces ?? [], "masquerade options.egressMasqueradeInterfaces"),
    ),
  ];
  const { enis, pods } = checkState(state);
  const exclude = new Map<string, true>();
  for (const eni of enis) for (const c of eni.vpcCidrs) exclude.set(c.text, true);
  const sources = pods
    .map((p) => p.ip)
    .sort((a, b) => a - b)
    .map((n) => `${formatIpv4(n)}/32`);
  return { interfaces, sources, excludeDestinations: [...exclude.keys()] };
}

/**
 * Decides whether a packet is masqueraded under a {@link MasqueradePolicy}:
 * its source is one of `sources`, its destination in none of
 * `excludeDestinations`, and its outgoing interface matches one of
 * `interfaces` (`"eth+"` matches every name that starts with `eth`).
 * The reference for what @dp/datapath's NAT must do.
 *
 * @param policy The policy from {@link masqueradePolicy}.
 * @param flow The packet's source, destination and outgoing interface.
 * @returns Whether the packet is masqueraded.
 * @throws {TypeError} When a field has the wrong type.
 * @throws {SyntaxError} When an address or prefix cannot be parsed.
 * @throws {RangeError} When an address is IPv6 or a selector or interface name is invalid.
 * @example The VPC is never masqueraded
 * ```ts
 * import assert from "node:assert/strict";
 * import { shouldMasquerade } from "@dp/eni";
 *
 * const policy = { interfaces: ["eth+"], sources: ["192.168.0.20/32"], excludeDestinations: ["192.168.0.0/16"] };
 * assert.equal(shouldMasquerade(policy, { src: "192.168.0.20", dst: "8.8.8.8", oif: "eth0" }), true);
 * assert.equal(shouldMasquerade(policy, { src: "192.168.0.20", dst: "192.168.7.7", oif: "eth0" }), false);
 * assert.equal(shouldMasquerade(policy, { src: "192.168.0.20", dst: "8.8.8.8", oif: "ens5" }), false);
 * ```
 */
export function shouldMasquerade(policy: MasqueradePolicy, flow: MasqueradeFlow): boolean {
  if (typeof policy !== "object" || policy === null)
    throw new TypeError("Invalid masquerade policy: expected an object");
  if (typeof flow !== "object" || flow === null) throw new TypeError("Invalid masquerade flow: expected an object");
  const src = parseIpv4(flow.src, "flow src");
  const dst = parseIpv4(flow.dst, "flow dst");
  const oif = checkIfName(flow.oif, "flow oif");
  const selectors = checkSelectors(policy.interfaces, "masquerade policy interfaces");
  if (!selectors.some((s) => selectorMatches(s, oif))) return false;
  const sources = checkArrayOf(policy.sources, "masquerade policy sources");
  if (!sources.some((s, i) => prefixContains(parseIpv4Prefix(s, `masquerade policy sources[${i}]`), src))) return false;
  const exclude = checkArrayOf(policy.excludeDestinations, "masquerade policy excludeDestinations");
  return !exclude.some((d, i) =>
    prefixContains(parseIpv4Prefix(d, `masquerade policy excludeDestinations[${i}]`), dst),
  );
}

function checkArrayOf(v: unknown, what: string): readonly unknown[] {
  if (!Array.isArray(v)) throw new TypeError(`Invalid ${what}: expected an array, got ${typeof v}`);
  return v;
}
