import type { LabelsInput } from "../labels/label_set.ts";
import type { Identity } from "./identity.ts";

/**
 * A change of the identities an allocator holds: `"add"` when an
 * identity comes into use, `"remove"` when its last user released it.
 *
 * @example Seeing allocations
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, type IdentityEvent } from "@dp/datapath";
 *
 * const alloc = createLocalIdentityAllocator();
 * const seen: IdentityEvent[] = [];
 * alloc.subscribe((ev) => seen.push(ev), { replay: false });
 * const web = await alloc.allocate(["k8s:app=web"]);
 * await alloc.release(web.id);
 * assert.deepEqual(seen.map((ev) => `${ev.type} ${ev.identity.id}`), ["add 256", "remove 256"]);
 * ```
 */
export interface IdentityEvent {
  /** What happened. */
  readonly type: "add" | "remove";
  /** The identity. */
  readonly identity: Identity;
}

/**
 * Receives {@link IdentityEvent}s, synchronously, in order.
 *
 * @example A listener
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, type IdentityListener } from "@dp/datapath";
 *
 * const ids: number[] = [];
 * const listener: IdentityListener = (ev) => ids.push(ev.identity.id);
 * createLocalIdentityAllocator().subscribe(listener);
 * assert.deepEqual(ids, [1, 2, 3, 4, 5, 6, 7, 8]); // the replayed reserved identities
 * ```
 *
 * @param event The change.
 */
export type IdentityListener = (event: IdentityEvent) => void;

/**
 * Options of {@link IdentityAllocator.subscribe}.
 *
 * @example Changes only
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, type SubscribeOptions } from "@dp/datapath";
 *
 * const options: SubscribeOptions = { replay: false };
 * let count = 0;
 * createLocalIdentityAllocator().subscribe(() => count++, options);
 * assert.equal(count, 0);
 * ```
 */
export interface SubscribeOptions {
  /**
   * Deliver an `"add"` event for every identity held now (reserved ones
   * included) before returning, so a subscriber starts complete.
   *
   * @default true
   */
  readonly replay?: boolean;
}

/**
 * A subscription to changes (of identities, or of an engine's policy);
 * `unsubscribe()` (or disposing it) stops delivery.
 *
 * @example Stopping delivery
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator } from "@dp/datapath";
 *
 * const alloc = createLocalIdentityAllocator();
 * let count = 0;
 * const sub = alloc.subscribe(() => count++, { replay: false });
 * sub.unsubscribe();
 * await alloc.allocate(["k8s:app=web"]);
 * assert.equal(count, 0);
 * ```
 */
export interface Subscription {
  /** Stops delivery; idempotent. */
  unsubscribe(): void;
  /** Same as `unsubscribe()`. */
  [Symbol.dispose](): void;
}

/**
 * Hands out security identities for label sets: the same set gets the
 * same identity while anyone holds it (reference counted), and it is
 * freed when the last holder releases it. Reserved identities (1-255)
 * always exist and are never counted; CIDR identities are node-local.
 *
 * Methods are asynchronous because a cluster-wide allocator (over a
 * key-value store) has to wait for it; {@link createLocalIdentityAllocator}
 * is the in-memory one. Changes are delivered to subscribers synchronously
 * before the call that made them resolves.
 *
 * @example Same labels, same identity
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, type IdentityAllocator } from "@dp/datapath";
 *
 * const alloc: IdentityAllocator = createLocalIdentityAllocator();
 * const a = await alloc.allocate(["k8s:app=web", "k8s:tier=front"]);
 * const b = await alloc.allocate({ "k8s:tier": "front", "k8s:app": "web" });
 * assert.equal(a.id, b.id);
 * assert.equal(await alloc.release(a.id), false); // still held once
 * assert.equal(await alloc.release(b.id), true); // freed
 * assert.equal(await alloc.lookup(a.id), undefined);
 * ```
 */
export interface IdentityAllocator {
  /**
   * Returns the identity of a label set, allocating it on first use, and
   * takes a reference on it. A set that is exactly one reserved
   * identity's labels (`reserved:host`) returns that identity without a
   * reference.
   *
   * @param labels The labels.
   * @returns The identity.
   * @throws {InvalidLabelError} When a label is malformed.
   * @throws {TypeError} When the set is empty, mixes `reserved:` labels with others, or holds `cidr:` labels (use `allocateCidr`).
   * @throws {RangeError} When no identity number is free.
   */
  allocate(labels: LabelsInput): Promise<Identity>;
  /**
   * Returns the node-local identity of a CIDR prefix, allocating it on
   * first use, and takes a reference on it. Its labels are those of
   * {@link cidrLabels}.
   *
   * @param cidr A v4 or v6 prefix with zero host bits.
   * @returns The identity, with `cidr` set to the canonical prefix.
   * @throws {SyntaxError} When `cidr` is not a prefix or has host bits set.
   * @throws {RangeError} When no CIDR identity number is free.
   */
  allocateCidr(cidr: string): Promise<Identity>;
  /**
   * Drops one reference; the identity is freed (and a `"remove"` event
   * sent) when none is left.
   *
   * @param id The identity number.
   * @returns `true` when the identity was freed, `false` when it is still held or reserved.
   * @throws {RangeError} When `id` is not allocated.
   */
  release(id: number): Promise<boolean>;
  /**
   * Finds an identity by number.
   *
   * @param id The identity number.
   * @returns The identity, or `undefined` when it is not allocated.
   */
  lookup(id: number): Promise<Identity | undefined>;
  /**
   * Finds the identity of a label set without allocating.
   *
   * @param labels The labels.
   * @returns The identity, or `undefined` when none has these labels.
   * @throws {InvalidLabelError} When a label is malformed.
   */
  lookupByLabels(labels: LabelsInput): Promise<Identity | undefined>;
  /**
   * Lists every identity held now, reserved ones included, by number.
   *
   * @returns The identities.
   */
  list(): Promise<Identity[]>;
  /**
   * Delivers changes to `listener` until the subscription ends.
   *
   * @param listener Called synchronously for each change.
   * @param options Whether to replay the current identities first.
   * @returns The subscription.
   */
  subscribe(listener: IdentityListener, options?: SubscribeOptions): Subscription;
}
