import type { Ec2Api, InstanceTypeLimits } from "./ec2_api.ts";
import { SHIPPED_LIMITS } from "./_limits_table.ts";

// DescribeInstanceTypes accepts at most 100 instance types per request.
const DESCRIBE_BATCH = 100;

/**
 * Looks up the ENI limits of an instance type in the table shipped with
 * the package: maximum ENIs, private IPv4 addresses per ENI (the primary
 * included) and IPv6 addresses per ENI. The table holds a representative
 * set of Nitro types (t3, t3a, m5, m5n, m6i, c5, c6i, r5, r6i), with the
 * values EC2 publishes; use {@link refreshInstanceLimits} for other types.
 *
 * @param type The instance type, such as `"m5.large"`.
 * @returns The limits, or `undefined` when the table does not know the type.
 *
 * @example m5.large takes 3 ENIs of 10 IPv4 addresses
 * ```ts
 * import assert from "node:assert/strict";
 * import { instanceLimits } from "@dp/eni";
 *
 * assert.deepEqual(instanceLimits("m5.large"), { type: "m5.large", maxEnis: 3, ipv4PerEni: 10, ipv6PerEni: 10 });
 * assert.equal(instanceLimits("x9.huge"), undefined);
 * ```
 */
export function instanceLimits(type: string): InstanceTypeLimits | undefined {
  return SHIPPED_LIMITS.get(type);
}

/**
 * The largest number of pods an instance type can run with ENI IPAM, as
 * amazon-vpc-cni-k8s computes it: every ENI gives all its IPv4 addresses
 * but the primary to pods, plus 2 host-network pods
 * (`maxEnis * (ipv4PerEni - 1) + 2`).
 *
 * @param limits The instance type's limits.
 * @returns The maximum number of pods.
 * @throws {RangeError} When `maxEnis` or `ipv4PerEni` is not a positive integer.
 *
 * @example m5.large runs at most 29 pods
 * ```ts
 * import assert from "node:assert/strict";
 * import { instanceLimits, maxPods } from "@dp/eni";
 *
 * assert.equal(maxPods(instanceLimits("m5.large")!), 29);
 * assert.equal(maxPods({ type: "t3.micro", maxEnis: 2, ipv4PerEni: 2, ipv6PerEni: 2 }), 4);
 * ```
 */
export function maxPods(limits: InstanceTypeLimits): number {
  checkPositive("maxEnis", limits.maxEnis);
  checkPositive("ipv4PerEni", limits.ipv4PerEni);
  return limits.maxEnis * (limits.ipv4PerEni - 1) + 2;
}

/** Options for {@link LimitsTable}. */
export interface LimitsTableOptions {
  /**
   * Whether types that were not set fall back to the table shipped with
   * the package ({@link instanceLimits}).
   *
   * @default true
   */
  readonly shipped?: boolean;
}

/**
 * ENI limits by instance type: values set here (by hand or by
 * {@link refreshInstanceLimits}) override the table shipped with the
 * package, which answers for the other types. It mirrors `Map`, keyed by
 * instance type; iteration lists the shipped types first, then the others,
 * each type once.
 *
 * @example A refreshed value overrides the shipped one
 * ```ts
 * import assert from "node:assert/strict";
 * import { LimitsTable } from "@dp/eni";
 *
 * const table = new LimitsTable();
 * assert.equal(table.get("m5.large")?.maxEnis, 3);
 * table.set("m5.large", { type: "m5.large", maxEnis: 4, ipv4PerEni: 10, ipv6PerEni: 10 });
 * assert.equal(table.get("m5.large")?.maxEnis, 4);
 * table.delete("m5.large");
 * assert.equal(table.get("m5.large")?.maxEnis, 3);
 * assert.equal(new LimitsTable([], { shipped: false }).get("m5.large"), undefined);
 * ```
 */
export class LimitsTable implements Iterable<[string, InstanceTypeLimits]> {
  readonly #set = new Map<string, InstanceTypeLimits>();
  readonly #shipped: boolean;

  /**
   * Creates a table.
   *
   * @param entries Limits to set first (each under its `type`).
   * @param options Whether to fall back to the shipped table.
   * @throws {TypeError} When an entry is not a limits object.
   * @throws {RangeError} When an entry holds a count that is not a positive integer.
   */
  constructor(entries: Iterable<InstanceTypeLimits> = [], options: LimitsTableOptions = {}) {
    this.#shipped = options.shipped ?? true;
    for (const limits of entries) this.set(limits?.type, limits);
  }

  /** The number of types the table answers for. */
  get size(): number {
    let n = this.#set.size;
    if (this.#shipped) for (const type of SHIPPED_LIMITS.keys()) if (!this.#set.has(type)) n++;
    return n;
  }

  /**
   * The limits of a type: the value set here, else the shipped one.
   *
   * @param type The instance type.
   * @returns The limits, or `undefined` for an unknown type.
   */
  get(type: string): InstanceTypeLimits | undefined {
    return this.#set.get(type) ?? (this.#shipped ? SHIPPED_LIMITS.get(type) : undefined);
  }

  /**
   * Whether the table knows a type.
   *
   * @param type The instance type.
   * @returns `true` when {@link LimitsTable.get} has an answer.
   */
  has(type: string): boolean {
    return this.get(type) !== undefined;
  }

  /**
   * Sets the limits of a type, overriding the shipped value.
   *
   * @param type The instance type.
   * @param limits Its limits; `limits.type` must be `type`.
   * @returns The table.
   * @throws {TypeError} When `limits` is not a limits object or names another type.
   * @throws {RangeError} When `maxEnis` or `ipv4PerEni` is not a positive integer, or `ipv6PerEni` a negative one.
   */
  set(type: string, limits: InstanceTypeLimits): this {
    if (typeof limits !== "object" || limits === null) {
      throw new TypeError(`Invalid limits for ${JSON.stringify(type)}: expected an object`);
    }
    if (typeof type !== "string" || limits.type !== type) {
      throw new TypeError(`Invalid limits for ${JSON.stringify(type)}: they name type ${JSON.stringify(limits.type)}`);
    }
    checkPositive("maxEnis", limits.maxEnis);
    checkPositive("ipv4PerEni", limits.ipv4PerEni);
    if (!Number.isInteger(limits.ipv6PerEni) || limits.ipv6PerEni < 0) {
      throw new RangeError(`Invalid ipv6PerEni ${String(limits.ipv6PerEni)}: expected an integer >= 0`);
    }
    this.#set.set(
      type,
      Object.freeze({ type, maxEnis: limits.maxEnis, ipv4PerEni: limits.ipv4PerEni, ipv6PerEni: limits.ipv6PerEni }),
    );
    return this;
  }

  /**
   * Forgets the value set for a type; the shipped value, if any, answers again.
   *
   * @param type The instance type.
   * @returns `true` when a value was set for the type.
   */
  delete(type: string): boolean {
    return this.#set.delete(type);
  }

  /**
   * The types the table knows.
   *
   * @returns An iterator of instance types.
   */
  *keys(): IterableIterator<string> {
    for (const [type] of this.entries()) yield type;
  }

  /**
   * The limits the table knows.
   *
   * @returns An iterator of limits.
   */
  *values(): IterableIterator<InstanceTypeLimits> {
    for (const [, limits] of this.entries()) yield limits;
  }

  /**
   * The `[type, limits]` pairs the table knows.
   *
   * @returns An iterator of pairs.
   */
  *entries(): IterableIterator<[string, InstanceTypeLimits]> {
    if (this.#shipped) {
      for (const [type, limits] of SHIPPED_LIMITS) yield [type, this.#set.get(type) ?? limits];
    }
    for (const [type, limits] of this.#set) {
      if (!this.#shipped || !SHIPPED_LIMITS.has(type)) yield [type, limits];
    }
  }

  /**
   * Same as {@link LimitsTable.entries}.
   *
   * @returns An iterator of `[type, limits]` pairs.
   */
  [Symbol.iterator](): IterableIterator<[string, InstanceTypeLimits]> {
    return this.entries();
  }
}

/** Options for {@link refreshInstanceLimits}. */
export interface RefreshInstanceLimitsOptions {
  /**
   * The table to merge the answers into.
   *
   * @default a new table that falls back to the shipped one
   */
  readonly table?: LimitsTable;
}

/**
 * Asks EC2 (DescribeInstanceTypes) for the ENI limits of instance types and
 * merges the answers into a table, where they override the shipped values.
 * Types EC2 does not know keep what the table had. One call per 100 types;
 * no call for an empty list.
 *
 * @param api The EC2 API.
 * @param types The instance types to refresh.
 * @param options The table to merge into.
 * @returns The table.
 * @throws {Ec2Error} When DescribeInstanceTypes fails.
 *
 * @example Refresh from an EC2 API
 * ```ts
 * import assert from "node:assert/strict";
 * import { type Ec2Api, type InstanceTypeLimits, refreshInstanceLimits } from "@dp/eni";
 *
 * // Only describeInstanceTypes is needed here.
 * const api = {
 *   async describeInstanceTypes(types: readonly string[]): Promise<InstanceTypeLimits[]> {
 *     return types.map((type) => ({ type, maxEnis: 8, ipv4PerEni: 30, ipv6PerEni: 30 }));
 *   },
 * } as Pick<Ec2Api, "describeInstanceTypes"> as Ec2Api;
 * const table = await refreshInstanceLimits(api, ["z9.large"]);
 * assert.equal(table.get("z9.large")?.maxEnis, 8);
 * assert.equal(table.get("m5.large")?.maxEnis, 3); // still shipped
 * ```
 */
export async function refreshInstanceLimits(
  api: Ec2Api,
  types: readonly string[],
  options: RefreshInstanceLimitsOptions = {},
): Promise<LimitsTable> {
  const table = options.table ?? new LimitsTable();
  const unique = [...new Set(types)];
  for (let i = 0; i < unique.length; i += DESCRIBE_BATCH) {
    for (const limits of await api.describeInstanceTypes(unique.slice(i, i + DESCRIBE_BATCH))) {
      table.set(limits.type, limits);
    }
  }
  return table;
}

function checkPositive(what: string, value: number): void {
  if (!Number.isInteger(value) || value < 1)
    throw new RangeError(`Invalid ${what} ${String(value)}: expected an integer >= 1`);
}
