import { LabelSet, type LabelsInput } from "../labels/label_set.ts";
import type {
  IdentityAllocator,
  IdentityEvent,
  IdentityListener,
  Subscription,
  SubscribeOptions,
} from "./allocator.ts";
import { parsePrefix } from "./_prefix.ts";
import { cidrLabels } from "./cidr.ts";
import {
  CIDR_IDENTITY_MAX,
  CIDR_IDENTITY_MIN,
  CLUSTER_IDENTITY_MAX,
  CLUSTER_IDENTITY_MIN,
  type Identity,
} from "./identity.ts";
import { RESERVED } from "./_reserved.ts";

/**
 * Options of {@link createLocalIdentityAllocator}.
 *
 * @example A narrow range
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, type LocalIdentityAllocatorOptions } from "@dp/datapath";
 *
 * const options: LocalIdentityAllocatorOptions = { minIdentity: 1000, maxIdentity: 1999 };
 * assert.equal((await createLocalIdentityAllocator(options).allocate(["k8s:app=web"])).id, 1000);
 * ```
 */
export interface LocalIdentityAllocatorOptions {
  /**
   * The first label-based identity to hand out.
   *
   * @default 256
   */
  readonly minIdentity?: number;
  /**
   * The last label-based identity to hand out.
   *
   * @default 65535
   */
  readonly maxIdentity?: number;
  /**
   * The number of CIDR identities available, from `1 << 24` up.
   *
   * @default 16777216
   */
  readonly maxCidrIdentities?: number;
}

/** A pool of numbers in [min, max]: lowest released number first, then fresh ones. */
class NumberPool {
  #next: number;
  #max: number;
  #free: number[] = [];
  readonly what: string;

  constructor(min: number, max: number, what: string) {
    this.#next = min;
    this.#max = max;
    this.what = what;
  }

  take(): number | undefined {
    if (this.#free.length > 0) {
      // Keep the free list sorted descending, so pop() gives the lowest.
      return this.#free.pop();
    }
    if (this.#next > this.#max) return undefined;
    return this.#next++;
  }

  give(n: number): void {
    const free = this.#free;
    let i = free.length;
    while (i > 0 && (free[i - 1] as number) < n) i--;
    free.splice(i, 0, n);
  }
}

/** Runs `fn` now and wraps its result or error in a promise (the state changes synchronously). */
function settle<T>(fn: () => T): Promise<T> {
  try {
    return Promise.resolve(fn());
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

interface Held {
  identity: Identity;
  refs: number;
}

function checkRange(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`Invalid option ${name}: must be an integer in ${min}-${max}, got ${String(value)}`);
  }
}

/**
 * The in-memory {@link IdentityAllocator} of one process: label-based
 * identities from 256 to 65535, CIDR identities from `1 << 24`, released
 * numbers reused lowest first. Use it for a single node; a cluster-wide
 * allocator implements the same interface.
 *
 * @example Allocation, exhaustion and reuse
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator } from "@dp/datapath";
 *
 * const alloc = createLocalIdentityAllocator({ minIdentity: 1000, maxIdentity: 1001 });
 * const web = await alloc.allocate(["k8s:app=web"]);
 * const db = await alloc.allocate(["k8s:app=db"]);
 * assert.deepEqual([web.id, db.id], [1000, 1001]);
 * await assert.rejects(alloc.allocate(["k8s:app=cache"]), RangeError);
 * await alloc.release(web.id);
 * assert.equal((await alloc.allocate(["k8s:app=cache"])).id, 1000);
 * const net = await alloc.allocateCidr("10.0.0.0/8");
 * assert.equal(net.id, 1 << 24);
 * assert.equal(net.cidr, "10.0.0.0/8");
 * ```
 */
export class LocalIdentityAllocator implements IdentityAllocator {
  #byId = new Map<number, Held>();
  #byKey = new Map<string, Held>();
  #reservedByKey = new Map<string, Identity>();
  #cluster: NumberPool;
  #cidr: NumberPool;
  #listeners = new Set<IdentityListener>();

  /**
   * Creates an allocator with only the reserved identities.
   *
   * @internal Use {@link createLocalIdentityAllocator}.
   * @param options Ranges.
   */
  constructor(options: LocalIdentityAllocatorOptions = {}) {
    const min = options.minIdentity ?? CLUSTER_IDENTITY_MIN;
    const max = options.maxIdentity ?? CLUSTER_IDENTITY_MAX;
    checkRange("minIdentity", min, CLUSTER_IDENTITY_MIN, CLUSTER_IDENTITY_MAX);
    checkRange("maxIdentity", max, min, CLUSTER_IDENTITY_MAX);
    const cidrs = options.maxCidrIdentities ?? CIDR_IDENTITY_MAX - CIDR_IDENTITY_MIN + 1;
    checkRange("maxCidrIdentities", cidrs, 1, CIDR_IDENTITY_MAX - CIDR_IDENTITY_MIN + 1);
    this.#cluster = new NumberPool(min, max, `label-based identities (${min}-${max})`);
    this.#cidr = new NumberPool(CIDR_IDENTITY_MIN, CIDR_IDENTITY_MIN + cidrs - 1, `CIDR identities (${cidrs})`);
    for (const identity of RESERVED.values()) this.#reservedByKey.set(identity.labels.key, identity);
  }

  /**
   * See {@link IdentityAllocator.allocate}.
   *
   * @param labels The labels.
   * @returns The identity.
   * @throws {InvalidLabelError} When a label is malformed.
   * @throws {TypeError} When the set is empty, mixes `reserved:` labels with others, or holds `cidr:` labels.
   * @throws {RangeError} When no identity number is free.
   */
  allocate(labels: LabelsInput): Promise<Identity> {
    return settle(() => this.#allocate(LabelSet.from(labels)));
  }

  #allocate(set: LabelSet): Identity {
    const reserved = this.#reservedByKey.get(set.key);
    if (reserved !== undefined) return reserved;
    const what = `Cannot allocate an identity for ${JSON.stringify(set.key)}`;
    if (set.size === 0) throw new TypeError("Cannot allocate an identity: the label set is empty");
    for (const l of set) {
      if (l.source === "reserved") throw new TypeError(`${what}: reserved labels cannot be combined with others`);
      if (l.source === "cidr") throw new TypeError(`${what}: cidr labels belong to CIDR identities (use allocateCidr)`);
    }
    return this.#take(set, undefined, this.#cluster, what);
  }

  #take(set: LabelSet, cidr: string | undefined, pool: NumberPool, what: string): Identity {
    const held = this.#byKey.get(set.key);
    if (held !== undefined) {
      held.refs++;
      return held.identity;
    }
    const id = pool.take();
    if (id === undefined) throw new RangeError(`${what}: all ${pool.what} are in use`);
    const identity: Identity = Object.freeze(cidr === undefined ? { id, labels: set } : { id, labels: set, cidr });
    const entry = { identity, refs: 1 };
    this.#byId.set(id, entry);
    this.#byKey.set(set.key, entry);
    this.#emit({ type: "add", identity });
    return identity;
  }

  /**
   * See {@link IdentityAllocator.allocateCidr}.
   *
   * @param cidr A v4 or v6 prefix with zero host bits.
   * @returns The identity.
   * @throws {SyntaxError} When `cidr` is not a prefix or has host bits set.
   * @throws {RangeError} When no CIDR identity number is free.
   */
  allocateCidr(cidr: string): Promise<Identity> {
    return settle(() => {
      const p = parsePrefix(cidr);
      return this.#take(
        cidrLabels(p.text),
        p.text,
        this.#cidr,
        `Cannot allocate an identity for CIDR ${JSON.stringify(p.text)}`,
      );
    });
  }

  /**
   * See {@link IdentityAllocator.release}.
   *
   * @param id The identity number.
   * @returns `true` when the identity was freed.
   * @throws {RangeError} When `id` is not allocated.
   */
  release(id: number): Promise<boolean> {
    if (RESERVED.has(id)) return Promise.resolve(false);
    const held = this.#byId.get(id);
    if (held === undefined)
      return Promise.reject(new RangeError(`Cannot release identity ${String(id)}: it is not allocated`));
    if (--held.refs > 0) return Promise.resolve(false);
    this.#byId.delete(id);
    this.#byKey.delete(held.identity.labels.key);
    (id >= CIDR_IDENTITY_MIN ? this.#cidr : this.#cluster).give(id);
    this.#emit({ type: "remove", identity: held.identity });
    return Promise.resolve(true);
  }

  /**
   * See {@link IdentityAllocator.lookup}.
   *
   * @param id The identity number.
   * @returns The identity, or `undefined`.
   */
  lookup(id: number): Promise<Identity | undefined> {
    return Promise.resolve(RESERVED.get(id) ?? this.#byId.get(id)?.identity);
  }

  /**
   * See {@link IdentityAllocator.lookupByLabels}.
   *
   * @param labels The labels.
   * @returns The identity, or `undefined`.
   * @throws {InvalidLabelError} When a label is malformed.
   */
  lookupByLabels(labels: LabelsInput): Promise<Identity | undefined> {
    return settle(() => {
      const key = LabelSet.from(labels).key;
      return this.#reservedByKey.get(key) ?? this.#byKey.get(key)?.identity;
    });
  }

  /**
   * See {@link IdentityAllocator.list}.
   *
   * @returns Every identity held, by number.
   */
  list(): Promise<Identity[]> {
    return Promise.resolve(this.#snapshot());
  }

  #snapshot(): Identity[] {
    const all = [...RESERVED.values(), ...[...this.#byId.values()].map((h) => h.identity)];
    return all.sort((a, b) => a.id - b.id);
  }

  /**
   * See {@link IdentityAllocator.subscribe}.
   *
   * @param listener Called synchronously for each change.
   * @param options Whether to replay the current identities first.
   * @returns The subscription.
   */
  subscribe(listener: IdentityListener, options: SubscribeOptions = {}): Subscription {
    if (options.replay ?? true) for (const identity of this.#snapshot()) listener({ type: "add", identity });
    this.#listeners.add(listener);
    const listeners = this.#listeners;
    return {
      unsubscribe(): void {
        listeners.delete(listener);
      },
      [Symbol.dispose](): void {
        listeners.delete(listener);
      },
    };
  }

  #emit(event: IdentityEvent): void {
    for (const l of [...this.#listeners]) l(event);
  }
}

/**
 * Creates an in-memory {@link IdentityAllocator} holding only the
 * reserved identities.
 *
 * @param options Ranges; the defaults are Cilium's.
 * @returns The allocator.
 * @throws {RangeError} When a range option is outside the identity ranges.
 * @example Reserved identities are always there
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator } from "@dp/datapath";
 *
 * const alloc = createLocalIdentityAllocator();
 * const world = await alloc.allocate(["reserved:world"]);
 * assert.equal(world.id, 2);
 * assert.equal((await alloc.list()).length, 8);
 * ```
 */
export function createLocalIdentityAllocator(options: LocalIdentityAllocatorOptions = {}): LocalIdentityAllocator {
  return new LocalIdentityAllocator(options);
}
