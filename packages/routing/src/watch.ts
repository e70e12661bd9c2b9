import { type Netns, type NetlinkMessage, type NetlinkSocket, openNetlink } from "@dp/core";
import { RTM, RTNLGRP } from "@dp/core/internal";
import { type Address, decodeAddress } from "./addresses.ts";
import { decodeLink, type Link } from "./links.ts";
import { decodeNeighbor, type Neighbor } from "./neighbors.ts";
import { decodeRoute, type Route } from "./routes.ts";
import { decodeRule, type Rule } from "./rules.ts";
import { openRouting, type Routing } from "./routing.ts";

/** The kinds of routing objects {@link watchRouting} reports. */
export type RoutingObjectKind = "link" | "address" | "route" | "rule" | "neighbor";

/** Whether an object appeared (or changed) or went away. */
export type RoutingAction = "new" | "delete";

/** What every {@link RoutingChange} has. */
export interface RoutingChangeBase {
  /** `"new"` for an object that appeared or changed, `"delete"` for one that went away. */
  readonly action: RoutingAction;
  /** Whether the object was listed (initially or after a `resync`) rather than reported as a change. */
  readonly existing: boolean;
}

/** A link appeared, changed or went away. */
export interface LinkChange extends RoutingChangeBase {
  /** Always `"link"`. */
  readonly type: "link";
  /** The link. */
  readonly link: Link;
}

/** An address appeared or went away. */
export interface AddressChange extends RoutingChangeBase {
  /** Always `"address"`. */
  readonly type: "address";
  /** The address. */
  readonly address: Address;
}

/** A route appeared, changed or went away. */
export interface RouteChange extends RoutingChangeBase {
  /** Always `"route"`. */
  readonly type: "route";
  /** The route. */
  readonly route: Route;
}

/** A FIB rule appeared or went away. */
export interface RuleChange extends RoutingChangeBase {
  /** Always `"rule"`. */
  readonly type: "rule";
  /** The rule. */
  readonly rule: Rule;
}

/** A neighbour entry appeared, changed or went away. */
export interface NeighborChange extends RoutingChangeBase {
  /** Always `"neighbor"`. */
  readonly type: "neighbor";
  /** The entry. */
  readonly neighbor: Neighbor;
}

/** A change to one routing object, or an object listed when the watch (re)synchronised. */
export type RoutingChange = LinkChange | AddressChange | RouteChange | RuleChange | NeighborChange;

/** Events were lost: the current state follows as `existing` changes, then {@link RoutingSynced}. */
export interface RoutingResync {
  /** Always `"resync"`. */
  readonly type: "resync";
}

/** The listing of the current state (initial or after a resync) is complete. */
export interface RoutingSynced {
  /** Always `"synced"`. */
  readonly type: "synced";
}

/**
 * What {@link watchRouting} yields: changes, plus markers. `resync` means
 * events were lost (the socket's receive buffer overflowed): the current
 * state follows as `existing` objects, then `synced`. `synced` also ends
 * the initial listing of `listExisting`.
 */
export type RoutingEvent = RoutingChange | RoutingResync | RoutingSynced;

/** Options for {@link watchRouting}. */
export interface WatchRoutingOptions {
  /**
   * The network namespace to watch.
   *
   * @default the calling thread's namespace
   */
  readonly netns?: Netns;
  /**
   * Which object kinds to report.
   *
   * @default all of them
   */
  readonly kinds?: readonly RoutingObjectKind[];
  /**
   * List the existing objects first (as `existing: true` changes), then yield `synced`.
   *
   * @default false
   */
  readonly listExisting?: boolean;
  /**
   * Stops the watch; the iteration then ends without an error.
   *
   * @default never
   */
  readonly signal?: AbortSignal;
  /**
   * Receive buffer size in bytes for the event socket.
   *
   * @default the system default
   */
  readonly receiveBufferSize?: number;
}

const ALL: readonly RoutingObjectKind[] = ["link", "address", "route", "rule", "neighbor"];

const GROUPS: Readonly<Record<RoutingObjectKind, readonly number[]>> = {
  link: [RTNLGRP.LINK],
  address: [RTNLGRP.IPV4_IFADDR, RTNLGRP.IPV6_IFADDR],
  route: [RTNLGRP.IPV4_ROUTE, RTNLGRP.IPV6_ROUTE],
  rule: [RTNLGRP.IPV4_RULE, RTNLGRP.IPV6_RULE],
  neighbor: [RTNLGRP.NEIGH],
};

const AF_INET = 2;
const AF_INET6 = 10;

/** Decodes one event message; undefined for types the watch does not report. */
function decodeEvent(m: NetlinkMessage, kinds: ReadonlySet<RoutingObjectKind>): RoutingChange | undefined {
  const existing = false;
  // The IP route, rule and address groups also carry other families
  // (multicast rules are families 128/129): only IPv4 and IPv6 are reported.
  const family = m.payload[0];
  const ipFamily = family === AF_INET || family === AF_INET6;
  switch (m.type) {
    case RTM.NEWLINK:
    case RTM.DELLINK:
      if (!kinds.has("link")) return undefined;
      return { type: "link", action: m.type === RTM.NEWLINK ? "new" : "delete", existing, link: decodeLink(m.payload) };
    case RTM.NEWADDR:
    case RTM.DELADDR:
      if (!ipFamily) return undefined;
      if (!kinds.has("address")) return undefined;
      return { type: "address", action: m.type === RTM.NEWADDR ? "new" : "delete", existing, address: decodeAddress(m.payload) };
    case RTM.NEWROUTE:
    case RTM.DELROUTE:
      if (!ipFamily) return undefined;
      if (!kinds.has("route")) return undefined;
      return { type: "route", action: m.type === RTM.NEWROUTE ? "new" : "delete", existing, route: decodeRoute(m.payload) };
    case RTM.NEWRULE:
    case RTM.DELRULE:
      if (!ipFamily) return undefined;
      if (!kinds.has("rule")) return undefined;
      return { type: "rule", action: m.type === RTM.NEWRULE ? "new" : "delete", existing, rule: decodeRule(m.payload) };
    case RTM.NEWNEIGH:
    case RTM.DELNEIGH:
      if (!kinds.has("neighbor")) return undefined;
      return { type: "neighbor", action: m.type === RTM.NEWNEIGH ? "new" : "delete", existing, neighbor: decodeNeighbor(m.payload) };
    default:
      return undefined;
  }
}

/** Lists the current state as `existing` changes; stops early once the handle was closed by an abort. */
function* listing(rt: Routing, kinds: ReadonlySet<RoutingObjectKind>): Generator<RoutingChange> {
  const base = { action: "new", existing: true } as const;
  if (kinds.has("link") && !rt.closed) for (const link of rt.links.list()) yield { type: "link", ...base, link };
  if (kinds.has("address") && !rt.closed) for (const address of rt.addresses.list()) yield { type: "address", ...base, address };
  if (kinds.has("route") && !rt.closed) for (const route of rt.routes.list({ table: "all" })) yield { type: "route", ...base, route };
  if (kinds.has("rule") && !rt.closed) for (const rule of rt.rules.list()) yield { type: "rule", ...base, rule };
  if (kinds.has("neighbor") && !rt.closed) for (const neighbor of rt.neighbors.list()) yield { type: "neighbor", ...base, neighbor };
}

/**
 * Watches a namespace's links, addresses, routes, rules and neighbours
 * change. Waiting happens on a libuv worker thread, so the event loop runs
 * on; the `signal` ends the iteration. When the kernel drops events
 * because the consumer fell behind, the watch yields `resync`, lists the
 * current state and yields `synced`: it never throws for that, and never
 * brings the process down.
 *
 * The event socket joins the multicast groups before anything is listed,
 * so no change between listing and watching is missed (some may be seen
 * twice).
 *
 * @param options Namespace, kinds, initial listing, signal.
 * @returns An async iterable of events.
 * @throws {SyscallError} When the sockets cannot be opened (at the first `next()`).
 * @example Seeing a link appear
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting, watchRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * const stop = new AbortController();
 * const events = watchRouting({ netns: ns.ns, kinds: ["link"], signal: stop.signal });
 * const first = events[Symbol.asyncIterator]().next();
 * using rt = openRouting({ netns: ns.ns });
 * rt.links.add({ kind: "bridge", name: "br-watch" });
 * const { value } = await first;
 * stop.abort();
 * assert.equal(value?.type === "link" && value.link.name, "br-watch");
 * ```
 */
export async function* watchRouting(options: WatchRoutingOptions = {}): AsyncGenerator<RoutingEvent, void, undefined> {
  const kinds = new Set(options.kinds ?? ALL);
  for (const k of kinds) {
    if (!ALL.includes(k)) throw new TypeError(`Invalid routing object kind ${JSON.stringify(k)}: use ${ALL.join(", ")}`);
  }
  const groups = [...kinds].flatMap((k) => GROUPS[k]);
  using events = openNetlink("route", {
    ...(options.netns === undefined ? {} : { netns: options.netns }),
    groups,
    ...(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize }),
  });
  using rt = openRouting(options.netns === undefined ? {} : { netns: options.netns });
  const signal = options.signal;
  // Aborting releases the sockets at once, even while the consumer holds the
  // generator suspended and never resumes it.
  const release = (): void => {
    events.close();
    rt.close();
  };
  signal?.addEventListener("abort", release, { once: true });
  try {
    yield* watchLoop(events, rt, kinds, options);
  } finally {
    signal?.removeEventListener("abort", release);
  }
}

async function* watchLoop(
  events: NetlinkSocket,
  rt: Routing,
  kinds: ReadonlySet<RoutingObjectKind>,
  options: WatchRoutingOptions,
): AsyncGenerator<RoutingEvent, void, undefined> {
  const signal = options.signal;
  if (options.listExisting) {
    yield* listing(rt, kinds);
    yield { type: "synced" };
  }
  for await (const received of events.receive(signal === undefined ? {} : { signal })) {
    if (received.kind === "overrun") {
      yield { type: "resync" };
      yield* listing(rt, kinds);
      yield { type: "synced" };
      continue;
    }
    for (const m of received.messages) {
      const change = decodeEvent(m, kinds);
      if (change !== undefined) yield change;
    }
  }
}
