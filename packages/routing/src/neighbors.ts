import type { RoutingContext } from "./_context.ts";

/**
 * The neighbour (ARP and NDP) entries of a {@link Routing} handle's namespace.
 */
export class Neighbors {
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
