import { createLibcSys } from "./libc.ts";
import type { Sys } from "./types.ts";

export type { Sys } from "./types.ts";

let current: Sys | undefined;

/** Returns the gateway in use, creating the real one on first use. */
export function sys(): Sys {
  return (current ??= createLibcSys());
}

/** Replaces the gateway (unit tests); returns the previous one. */
export function setSys(next: Sys | undefined): Sys | undefined {
  const prev = current;
  current = next;
  return prev;
}
