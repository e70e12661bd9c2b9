import { type Netns, type NetlinkSocket, openNetlink } from "@dp/core";
import type { RoutingContext } from "./_context.ts";
import { Addresses } from "./addresses.ts";
import { Links } from "./links.ts";
import { Neighbors } from "./neighbors.ts";
import { Nexthops } from "./nexthops.ts";
import { Routes } from "./routes.ts";
import { Rules } from "./rules.ts";
import { Sysctl } from "./sysctl.ts";

/** Options for {@link openRouting}. */
export interface OpenRoutingOptions {
  /**
   * The network namespace to manage.
   *
   * @default the calling thread's namespace
   */
  readonly netns?: Netns;
}

/**
 * A handle on one network namespace's routing state: links, addresses,
 * routes, nexthop objects, FIB rules, neighbours and sysctls. It owns one rtnetlink socket
 * bound to the namespace; `close()` closes it (nothing it created is
 * removed).
 *
 * @example Listing links
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openRouting } from "@dp/routing";
 * import { netns } from "@dp/core/testing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * assert.ok(rt.links.list().some((l) => l.name === "lo"));
 * ```
 */
export class Routing {
  /** The managed namespace, or undefined for the caller's. */
  readonly netns: Netns | undefined;
  /** Links: list, create, change, delete. */
  readonly links: Links;
  /** Addresses. */
  readonly addresses: Addresses;
  /** Routes. */
  readonly routes: Routes;
  /** Nexthop objects (`ip nexthop`). */
  readonly nexthops: Nexthops;
  /** FIB rules. */
  readonly rules: Rules;
  /** Neighbour entries. */
  readonly neighbors: Neighbors;
  /** Sysctls under `net.*`. */
  readonly sysctl: Sysctl;
  #nl: NetlinkSocket;

  /**
   * Wraps an rtnetlink socket.
   *
   * @internal Opened by {@link openRouting}.
   * @param nl The socket, now owned by the handle.
   * @param netns Its namespace.
   */
  constructor(nl: NetlinkSocket, netns: Netns | undefined) {
    this.#nl = nl;
    this.netns = netns;
    const ctx: RoutingContext = { nl, netns };
    this.links = new Links(ctx);
    this.addresses = new Addresses(ctx);
    this.routes = new Routes(ctx);
    this.nexthops = new Nexthops(ctx);
    this.rules = new Rules(ctx);
    this.neighbors = new Neighbors(ctx);
    this.sysctl = new Sysctl(ctx);
  }

  /** Whether {@link Routing.close} was called. */
  get closed(): boolean {
    return this.#nl.closed;
  }

  /** Closes the handle's socket. Calling it again does nothing. */
  close(): void {
    this.#nl.close();
  }

  /** Closes the handle (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Opens a routing handle on a network namespace.
 *
 * @param options The namespace.
 * @returns The handle; close it with `close()` or `using`.
 * @throws {SyscallError} When the rtnetlink socket cannot be opened.
 * @example Links of a fresh namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { netns } from "@dp/core/testing";
 * import { openRouting } from "@dp/routing";
 *
 * using ns = netns();
 * using rt = openRouting({ netns: ns.ns });
 * assert.deepEqual(rt.links.list().map((l) => l.name), ["lo"]);
 * ```
 */
export function openRouting(options: OpenRoutingOptions = {}): Routing {
  return new Routing(openNetlink("route", options.netns === undefined ? {} : { netns: options.netns }), options.netns);
}
