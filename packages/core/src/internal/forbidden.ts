import type { Sys } from "../_sys/sys.ts";

/**
 * A gateway that throws on any call: unit tests install it with `setSys()`
 * to prove that bad input is rejected before anything reaches the kernel.
 */
export function forbiddenSys(): Sys {
  return new Proxy({} as Sys, {
    get(_, name) {
      return () => {
        throw new Error(`unexpected system call ${String(name)}`);
      };
    },
  });
}
