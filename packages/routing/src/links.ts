import type { RoutingContext } from "./_context.ts";

/**
 * The links, their kinds (veth, vxlan, bridge, macvlan), state and statistics of a {@link Routing} handle's namespace.
 */
export class Links {
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
}
