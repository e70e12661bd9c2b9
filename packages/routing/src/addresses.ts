import type { RoutingContext } from "./_context.ts";

/**
 * The IPv4 and IPv6 addresses of a {@link Routing} handle's namespace.
 */
export class Addresses {
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
