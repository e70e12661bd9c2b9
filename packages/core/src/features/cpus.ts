import { readText } from "../_sys/fs.ts";

let possible: number | undefined;

/**
 * Parses a kernel CPU list such as `"0-3,5,7-8"` into the number of CPUs.
 *
 * @param list The list, as in `/sys/devices/system/cpu/possible`.
 * @returns How many CPUs the list names.
 * @throws {SyntaxError} When the list is malformed.
 * @example Counting CPUs
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseCpuList } from "@dp/core";
 *
 * assert.equal(parseCpuList("0-3,5,7-8\n"), 7);
 * ```
 */
export function parseCpuList(list: string): number {
  let n = 0;
  for (const part of list.trim().split(",")) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new SyntaxError(`Invalid CPU list ${JSON.stringify(list)}: bad range "${part}"`);
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo) throw new SyntaxError(`Invalid CPU list ${JSON.stringify(list)}: range "${part}" is reversed`);
    n += hi - lo + 1;
  }
  return n;
}

/**
 * The number of possible CPUs: the number of values a per-CPU map holds
 * per key.
 *
 * @returns The count from `/sys/devices/system/cpu/possible`.
 * @throws {Error} When the file cannot be read.
 * @example Sizing a per-CPU value buffer
 * ```ts
 * import assert from "node:assert/strict";
 * import { possibleCpus } from "@dp/core";
 *
 * assert.ok(possibleCpus() >= 1);
 * ```
 */
export function possibleCpus(): number {
  if (possible === undefined) {
    const text = readText("/sys/devices/system/cpu/possible");
    if (text === undefined) throw new Error("Cannot count possible CPUs: /sys/devices/system/cpu/possible is missing");
    possible = parseCpuList(text);
  }
  return possible;
}
