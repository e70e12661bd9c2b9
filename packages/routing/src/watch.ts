import { type Netns, type NetlinkMessage, type NetlinkSocket, openNetlink } from "@dp/core";
import { abortableGenerator, RTM, RTNLGRP } from "@dp/core/internal";
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
 * the initial listing of `listExisting`. `error` reports a message from the
 * kernel that could not be decoded; the watch goes on after it.
 */
export type RoutingEvent =
  | RoutingChange
  | RoutingResync
  | RoutingSynced
  | {
      /** Always `"error"`: a message could not be decoded and was skipped. */
      readonly type: "error";
      /** Why, naming the message type (a `SyntaxError` for malformed messages). */
      readonly error: Error;
    };

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
   * Stops the watch; the iteration then ends without an error (at once,
   * even in the middle of a listing). A signal that is already aborted
   * yields nothing and opens no socket.
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
      return {
        type: "address",
        action: m.type === RTM.NEWADDR ? "new" : "delete",
        existing,
        address: decodeAddress(m.payload),
      };
    case RTM.NEWROUTE:
    case RTM.DELROUTE:
      if (!ipFamily) return undefined;
      if (!kinds.has("route")) return undefined;
      return {
        type: "route",
        action: m.type === RTM.NEWROUTE ? "new" : "delete",
        existing,
        route: decodeRoute(m.payload),
      };
    case RTM.NEWRULE:
    case RTM.DELRULE:
      if (!ipFamily) return undefined;
      if (!kinds.has("rule")) return undefined;
      return { type: "rule", action: m.type === RTM.NEWRULE ? "new" : "delete", existing, rule: decodeRule(m.payload) };
    case RTM.NEWNEIGH:
    case RTM.DELNEIGH:
      if (!kinds.has("neighbor")) return undefined;
      return {
        type: "neighbor",
        action: m.type === RTM.NEWNEIGH ? "new" : "delete",
        existing,
        neighbor: decodeNeighbor(m.payload),
      };
    default:
      return undefined;
  }
}

/** Lists the current state as `existing` changes; stops as soon as the signal aborted (which closes the handle). */
function* listing(rt: Routing, kinds: ReadonlySet<RoutingObjectKind>, signal: AbortSignal): Generator<RoutingChange> {
  const base = { action: "new", existing: true } as const;
  const lists: (() => RoutingChange[])[] = [];
  if (kinds.has("link")) lists.push(() => rt.links.list().map((link) => ({ type: "link", ...base, link })));
  if (kinds.has("address"))
    lists.push(() => rt.addresses.list().map((address) => ({ type: "address", ...base, address })));
  if (kinds.has("route"))
    lists.push(() => rt.routes.list({ table: "all" }).map((route) => ({ type: "route", ...base, route })));
  if (kinds.has("rule")) lists.push(() => rt.rules.list().map((rule) => ({ type: "rule", ...base, rule })));
  if (kinds.has("neighbor"))
    lists.push(() => rt.neighbors.list().map((neighbor) => ({ type: "neighbor", ...base, neighbor })));
  for (const list of lists) {
    if (signal.aborted) return;
    for (const change of list()) {
      if (signal.aborted) return;
      yield change;
    }
  }
}

/** Names a message type for errors. */
function messageName(type: number): string {
  for (const [name, value] of Object.entries(RTM)) if (value === type && name !== "BASE") return `RTM_${name}`;
  return `message type ${type}`;
}

/**
 * Watches a namespace's links, addresses, routes, rules and neighbours
 * change. Waiting happens through the process's reactor (one epoll set and
 * at most one libuv worker thread for every waiting reader), so the event
 * loop runs on and any number of watches can wait at once; the `signal`
 * ends the iteration. When the kernel drops events because the consumer
 * fell behind, the watch yields `resync`, lists the current state and
 * yields `synced`: it never throws for that, and never brings the process
 * down. A message that cannot be decoded is yielded as an `error` item and
 * the watch goes on; messages not sent by the kernel are ignored.
 *
 * The event socket joins the multicast groups before anything is listed,
 * so no change between listing and watching is missed (some may be seen
 * twice). Aborting the signal, `return()` (also with a `next()` pending:
 * that one then completes as done) and `break` release both sockets at
 * once.
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
export function watchRouting(options: WatchRoutingOptions = {}): AsyncGenerator<RoutingEvent, void, undefined> {
  return abortableGenerator(options.signal, (signal) => watch(options, signal));
}

async function* watch(
  options: WatchRoutingOptions,
  signal: AbortSignal,
): AsyncGenerator<RoutingEvent, void, undefined> {
  const kinds = new Set(options.kinds ?? ALL);
  for (const k of kinds) {
    if (!ALL.includes(k))
      throw new TypeError(`Invalid routing object kind ${JSON.stringify(k)}: use ${ALL.join(", ")}`);
  }
  if (signal.aborted) return;
  const groups = [...kinds].flatMap((k) => GROUPS[k]);
  using events = openNetlink("route", {
    ...(options.netns === undefined ? {} : { netns: options.netns }),
    groups,
    ...(options.receiveBufferSize === undefined ? {} : { receiveBufferSize: options.receiveBufferSize }),
  });
  using rt = openRouting(options.netns === undefined ? {} : { netns: options.netns });
  // Aborting releases the sockets at once, even while the consumer holds the
  // generator suspended and never resumes it.
  const release = (): void => {
    events.close();
    rt.close();
  };
  signal.addEventListener("abort", release, { once: true });
  try {
    yield* watchLoop(events, rt, kinds, options.listExisting ?? false, signal);
  } finally {
    signal.removeEventListener("abort", release);
  }
}

async function* watchLoop(
  events: NetlinkSocket,
  rt: Routing,
  kinds: ReadonlySet<RoutingObjectKind>,
  listExisting: boolean,
  signal: AbortSignal,
): AsyncGenerator<RoutingEvent, void, undefined> {
  if (listExisting) {
    yield* listing(rt, kinds, signal);
    if (signal.aborted) return;
    yield { type: "synced" };
  }
  while (!signal.aborted) {
    try {
      for await (const received of events.receive({ signal })) {
        if (signal.aborted) return;
        if (received.kind === "overrun") {
          yield { type: "resync" };
          yield* listing(rt, kinds, signal);
          if (signal.aborted) return;
          yield { type: "synced" };
          continue;
        }
        for (const m of received.messages) {
          if (signal.aborted) return;
          let change: RoutingChange | undefined;
          try {
            change = decodeEvent(m, kinds);
          } catch (err) {
            const why = err instanceof Error ? err.message : String(err);
            yield {
              type: "error",
              error: new SyntaxError(`Cannot decode ${messageName(m.type)} event: ${why}`, { cause: err }),
            };
            continue;
          }
          if (change !== undefined) yield change;
        }
      }
      return;
    } catch (err) {
      // A datagram that does not parse ends that receive() iteration; the
      // socket is fine and the next datagram is read by a new one.
      if (!(err instanceof SyntaxError) || signal.aborted) throw err;
      yield { type: "error", error: err };
    }
  }
}
