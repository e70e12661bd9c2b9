import type { RoutingContext } from "./_context.ts";

/**
 * The FIB rules (policy routing) of a {@link Routing} handle's namespace.
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
}
