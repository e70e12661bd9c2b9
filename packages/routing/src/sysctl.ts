import type { RoutingContext } from "./_context.ts";

/**
 * The per-namespace net.* sysctls of a {@link Routing} handle's namespace.
 */
export class Sysctl {
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
