// Values as they travel in the agent API's JSON: bigints become decimal strings.
import type { Wire } from "./types.ts";

/**
 * Converts a value to its wire form (bigints to decimal strings, deeply).
 *
 * @internal
 * @param value The value.
 * @returns The wire form.
 */
export function toWire<T>(value: T): Wire<T> {
  return convert(value) as Wire<T>;
}

function convert(value: unknown): unknown {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return value.map(convert);
  if (typeof value === "object" && value !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = convert(v);
    return out;
  }
  return value;
}
