import {
  CIDR_IDENTITY_MIN,
  CLUSTER_IDENTITY_MAX,
  CLUSTER_IDENTITY_MIN,
  createLocalIdentityAllocator,
  type Identity,
  type IdentityAllocator,
  type IdentityEvent,
  type IdentityListener,
  LabelSet,
  type LabelsInput,
  type LocalIdentityAllocator,
  type Subscription,
  type SubscribeOptions,
} from "@dp/datapath";
import type { KvstoreCondition } from "./condition.ts";
import { KVSTORE_PREFIXES } from "./keys.ts";
import { KvstoreError, type Kvstore } from "./kvstore.ts";
import { PrefixMirror } from "./_mirror.ts";
import type { ResyncStats } from "./resync_stats.ts";

const P = KVSTORE_PREFIXES.identities;
const ID = `${P}id/`;
const VALUE = `${P}value/`;
const REFS = `${P}refs/`;

/**
 * Options of {@link createKvstoreIdentityAllocator}.
 *
 * @example Cluster 3, with a fast garbage collector
 * ```ts
 * import assert from "node:assert/strict";
 * import type { KvstoreIdentityAllocatorOptions } from "@dp/kvstore";
 *
 * const options: KvstoreIdentityAllocatorOptions = { clusterId: 3, gcInterval: 10_000, gcGracePeriod: 30_000 };
 * assert.equal((options.clusterId ?? 0) << 16, 196608); // identities 196864-262143
 * ```
 */
export interface KvstoreIdentityAllocatorOptions {
  /**
   * The cluster ID (0-255), encoded in bits 16-23 of every identity as
   * Cilium does: cluster `c` allocates `(c << 16) | n` for `n` in
   * `minIdentity`-`maxIdentity`.
   *
   * @default 0
   */
  readonly clusterId?: number;
  /**
   * The lowest per-cluster identity number.
   *
   * @default 256
   */
  readonly minIdentity?: number;
  /**
   * The highest per-cluster identity number.
   *
   * @default 65535
   */
  readonly maxIdentity?: number;
  /**
   * How often this allocator collects unreferenced identities, in
   * milliseconds; 0 turns the periodic run off (call
   * {@link KvstoreIdentityAllocator.runGc} yourself).
   *
   * @default 60000
   */
  readonly gcInterval?: number;
  /**
   * How long an identity must have had no reference before it is
   * deleted, in milliseconds, so a node that is restarting can take its
   * references again.
   *
   * @default 60000
   */
  readonly gcGracePeriod?: number;
  /**
   * How many conflicting transactions one allocation tolerates.
   *
   * @default 32
   */
  readonly maxRetries?: number;
}

function freezeIdentity(id: number, labels: LabelSet): Identity {
  return Object.freeze({ id, labels });
}

function parseLabels(value: string): LabelSet | undefined {
  try {
    const arr: unknown = JSON.parse(value);
    if (!Array.isArray(arr) || !arr.every((s) => typeof s === "string")) return undefined;
    return LabelSet.from(arr);
  } catch {
    return undefined;
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function checkInt(name: string, v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`Invalid option ${name}: must be an integer in ${min}-${max}, got ${String(v)}`);
  }
}

/**
 * The cluster-wide `IdentityAllocator` of `@dp/datapath` over etcd, Cilium's
 * `identity-allocation-mode: kvstore`. A label set gets its number in one
 * transaction that creates `id/<id>` and `value/<labels>` only if both
 * are absent (a conflict retries with the winner's number or the next free
 * one), so two nodes allocating the same labels at once get one identity.
 * Each node that uses an identity holds `refs/<id>/<node>` under its lease;
 * a node that dies loses its references with its lease, and
 * {@link KvstoreIdentityAllocator.runGc} deletes identities no node has
 * referenced for the grace period.
 *
 * The allocator mirrors every identity of the cluster through a watch, so
 * `lookup`, `list` and the events cover identities allocated by other
 * nodes; `"add"` when an identity appears in etcd, `"remove"` when it is
 * garbage-collected (not when this node releases it). After a lost or
 * compacted watch it lists the identities again and reports only the
 * difference. CIDR identities stay node-local, as in Cilium.
 *
 * @example Two nodes, one identity
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createKvstoreIdentityAllocator, openKvstore } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kv1 = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "node-a" });
 * await using kv2 = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "node-b" });
 * await using a = await createKvstoreIdentityAllocator(kv1);
 * await using b = await createKvstoreIdentityAllocator(kv2);
 * const [x, y] = await Promise.all([a.allocate(["k8s:app=web"]), b.allocate(["k8s:app=web"])]);
 * assert.equal(x.id, y.id);
 * ```
 */
export class KvstoreIdentityAllocator implements IdentityAllocator {
  #kv: Kvstore;
  #node: string;
  #base: number;
  #min: number;
  #max: number;
  #grace: number;
  #retries: number;
  #byId = new Map<number, Identity>();
  #byKey = new Map<string, Identity>();
  #refs = new Map<number, number>();
  /** The identities this node holds (has references to), kept apart from the watch's copy. */
  #held = new Map<number, Identity>();
  #taken = new Set<number>();
  #hint: number;
  #unrefSince = new Map<number, number>();
  #local: LocalIdentityAllocator;
  #localSub: Subscription;
  #listeners = new Set<IdentityListener>();
  #mirror: PrefixMirror;
  #queue: Promise<unknown> = Promise.resolve();
  #gcTimer: ReturnType<typeof setInterval> | undefined;
  #offRenew: () => void;
  #conditions: KvstoreCondition[] = [];
  #closed = false;

  /**
   * Creates the allocator; it does not sync yet.
   *
   * @internal Use {@link createKvstoreIdentityAllocator}.
   * @param kv The store.
   * @param options Ranges and garbage collection.
   */
  constructor(kv: Kvstore, options: KvstoreIdentityAllocatorOptions = {}) {
    this.#kv = kv;
    this.#node = kv.nodeName;
    const cluster = options.clusterId ?? 0;
    this.#base = cluster << 16;
    this.#min = options.minIdentity ?? CLUSTER_IDENTITY_MIN;
    this.#max = options.maxIdentity ?? CLUSTER_IDENTITY_MAX;
    this.#hint = this.#min;
    this.#grace = options.gcGracePeriod ?? 60_000;
    this.#retries = options.maxRetries ?? 32;
    this.#local = createLocalIdentityAllocator();
    this.#localSub = this.#local.subscribe(
      (ev) => {
        if (ev.identity.id >= CIDR_IDENTITY_MIN) this.#emit(ev);
      },
      { replay: false },
    );
    this.#mirror = new PrefixMirror(kv, ID, {
      upsert: (key, value) => this.#upsertFromStore(key, value),
      delete: (key) => this.#deleteFromStore(Number(key.slice(ID.length))),
      synced: () => this.#taken.clear(),
    });
    this.#offRenew = kv.onLeaseRenewed(() => this.#serial(() => this.#retake()));
    const gc = options.gcInterval ?? 60_000;
    if (gc > 0) {
      this.#gcTimer = setInterval(() => {
        if (kv.closed) clearInterval(this.#gcTimer);
        else void this.runGc().catch(() => undefined);
      }, gc);
    }
  }

  /** @internal The first sync. */
  async start(): Promise<void> {
    await this.#mirror.start();
  }

  /** This node's name, as in its reference keys. */
  get nodeName(): string {
    return this.#node;
  }

  /** Problems found (an identity this node held was taken over while etcd was unreachable). */
  get conditions(): readonly KvstoreCondition[] {
    return [...this.#conditions];
  }

  /** How many full resyncs the identity watch ran, and why the last one ran. */
  get resyncs(): ResyncStats {
    const s = this.#mirror.stats;
    return { count: s.resyncs, lastReason: s.lastResyncReason };
  }

  #upsertFromStore(key: string, value: string): void {
    const id = Number(key.slice(ID.length));
    const labels = parseLabels(value);
    if (!Number.isInteger(id) || labels === undefined) return;
    const known = this.#byId.get(id);
    if (known !== undefined && known.labels.key === labels.key) return;
    if (known !== undefined) this.#deleteFromStore(id, true);
    this.#add(freezeIdentity(id, labels));
  }

  #add(identity: Identity): Identity {
    const known = this.#byId.get(identity.id);
    if (known !== undefined && known.labels.key === identity.labels.key) return known;
    if (known !== undefined) this.#deleteFromStore(identity.id, true);
    this.#byId.set(identity.id, identity);
    this.#byKey.set(identity.labels.key, identity);
    this.#emit({ type: "add", identity });
    return identity;
  }

  #deleteFromStore(id: number, force = false): void {
    this.#taken.delete(id);
    // An identity this node still holds stays: the lease renewal puts it back
    // (or reports IdentityLost and drops it).
    if (!force && this.#held.has(id)) return;
    const known = this.#byId.get(id);
    if (known === undefined) return;
    this.#byId.delete(id);
    if (this.#byKey.get(known.labels.key) === known) this.#byKey.delete(known.labels.key);
    this.#emit({ type: "remove", identity: known });
  }

  #emit(event: IdentityEvent): void {
    for (const l of [...this.#listeners]) l(event);
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #pickFree(): number | undefined {
    const span = this.#max - this.#min + 1;
    for (let i = 0; i < span; i++) {
      const n = this.#min + ((this.#hint - this.#min + i) % span);
      const id = this.#base | n;
      if (!this.#byId.has(id) && !this.#taken.has(id)) {
        this.#hint = n;
        return id;
      }
    }
    return undefined;
  }

  /**
   * See `IdentityAllocator.allocate` (`@dp/datapath`): finds or creates the label
   * set's identity in etcd and puts this node's reference under its lease
   * (the first local use only; later uses count locally).
   *
   * @param labels The labels.
   * @returns The identity.
   * @throws {InvalidLabelError} When a label is malformed.
   * @throws {TypeError} When the set is empty, mixes `reserved:` labels with others, or holds `cidr:` labels.
   * @throws {RangeError} When no identity number of the cluster's range is free.
   * @throws {KvstoreError} When etcd cannot be reached or the allocation kept conflicting.
   */
  async allocate(labels: LabelsInput): Promise<Identity> {
    const set = LabelSet.from(labels);
    const reserved = await this.#local.lookupByLabels(set);
    if (reserved !== undefined && reserved.id < CLUSTER_IDENTITY_MIN) return reserved;
    const what = `Cannot allocate an identity for ${JSON.stringify(set.key)}`;
    if (set.size === 0) throw new TypeError("Cannot allocate an identity: the label set is empty");
    for (const l of set) {
      if (l.source === "reserved") throw new TypeError(`${what}: reserved labels cannot be combined with others`);
      if (l.source === "cidr") throw new TypeError(`${what}: cidr labels belong to CIDR identities (use allocateCidr)`);
    }
    return this.#serial(() => this.#allocate(set));
  }

  async #allocate(set: LabelSet): Promise<Identity> {
    if (this.#closed) throw new KvstoreError("allocate an identity", undefined, "the allocator is closed");
    const cached = this.#byKey.get(set.key);
    if (cached !== undefined) {
      const n = this.#refs.get(cached.id);
      if (n !== undefined) {
        this.#refs.set(cached.id, n + 1);
        return cached;
      }
    }
    const valueKey = VALUE + set.key;
    try {
      const client = this.#kv.client();
      for (let attempt = 0; attempt < this.#retries; attempt++) {
        const lease = await this.#kv.leaseId();
        const current = await client.get(valueKey).string();
        if (current !== null) {
          const id = Number(current);
          const res = await client
            .if(valueKey, "Value", "==", current)
            .then(
              client.put(valueKey).value(current),
              client.put(`${REFS}${id}/${this.#node}`).value(this.#node).lease(lease),
            )
            .commit();
          if (!res.succeeded) continue;
          const known = this.#byId.get(id);
          // The number's labels come from etcd's value key: build the identity from `set`.
          const identity = known !== undefined && known.labels.key === set.key ? known : freezeIdentity(id, set);
          this.#refs.set(id, 1);
          this.#held.set(id, identity);
          return this.#add(identity);
        }
        const id = this.#pickFree();
        if (id === undefined) {
          throw new RangeError(
            `Cannot allocate an identity for ${JSON.stringify(set.key)}: all identities ${this.#base | this.#min}-${this.#base | this.#max} are in use`,
          );
        }
        const idKey = `${ID}${id}`;
        const res = await client
          .if(valueKey, "Create", "==", 0)
          .and(idKey, "Create", "==", 0)
          .then(
            client.put(idKey).value(JSON.stringify(set.toStrings())),
            client.put(valueKey).value(String(id)),
            client.put(`${REFS}${id}/${this.#node}`).value(this.#node).lease(lease),
          )
          .else(client.get(idKey))
          .commit();
        if (res.succeeded) {
          const identity = freezeIdentity(id, set);
          this.#refs.set(id, 1);
          this.#held.set(id, identity);
          return this.#add(identity);
        }
        const taken = res.responses[0]?.response_range.kvs.length ?? 0;
        if (taken > 0) this.#taken.add(id);
      }
    } catch (err) {
      if (err instanceof RangeError || (err instanceof KvstoreError && err.key !== undefined)) throw err;
      throw new KvstoreError("allocate an identity for", valueKey, errorText(err), { cause: err });
    }
    throw new KvstoreError("allocate an identity for", valueKey, `${this.#retries} transactions conflicted`);
  }

  /**
   * See `IdentityAllocator.allocateCidr` (`@dp/datapath`): CIDR identities are
   * node-local and never stored in etcd.
   *
   * @param cidr A v4 or v6 prefix with zero host bits.
   * @returns The identity.
   * @throws {SyntaxError} When `cidr` is not a prefix or has host bits set.
   * @throws {RangeError} When no CIDR identity number is free.
   */
  allocateCidr(cidr: string): Promise<Identity> {
    return this.#local.allocateCidr(cidr);
  }

  /**
   * See `IdentityAllocator.release` (`@dp/datapath`): drops one local use; the last
   * one deletes this node's reference key. The identity itself stays in
   * etcd until the garbage collector finds it unreferenced.
   *
   * @param id The identity number.
   * @returns `true` when this node no longer uses the identity, `false` when it still does or it is reserved.
   * @throws {RangeError} When this node does not hold `id`.
   * @throws {KvstoreError} When the reference key cannot be deleted.
   */
  release(id: number): Promise<boolean> {
    if (id < CLUSTER_IDENTITY_MIN || id >= CIDR_IDENTITY_MIN) return this.#local.release(id);
    return this.#serial(async () => {
      const n = this.#refs.get(id);
      if (n === undefined) throw new RangeError(`Cannot release identity ${String(id)}: this node does not hold it`);
      if (n > 1) {
        this.#refs.set(id, n - 1);
        return false;
      }
      const held = this.#held.get(id);
      this.#refs.delete(id);
      this.#held.delete(id);
      const key = `${REFS}${id}/${this.#node}`;
      try {
        await this.#kv.client().delete().key(key).exec();
      } catch (err) {
        this.#refs.set(id, 1);
        if (held !== undefined) this.#held.set(id, held);
        throw new KvstoreError("delete", key, errorText(err), { cause: err });
      }
      return true;
    });
  }

  /**
   * See `IdentityAllocator.lookup` (`@dp/datapath`); an identity not yet in the local
   * copy is read from etcd.
   *
   * @param id The identity number.
   * @returns The identity, or `undefined` when it is not allocated.
   * @throws {KvstoreError} When the local copy misses it and etcd cannot be reached.
   */
  async lookup(id: number): Promise<Identity | undefined> {
    if (id < CLUSTER_IDENTITY_MIN || id >= CIDR_IDENTITY_MIN) return this.#local.lookup(id);
    const known = this.#byId.get(id);
    if (known !== undefined) return known;
    const key = `${ID}${id}`;
    let value: string | null;
    try {
      value = await this.#kv.client().get(key).string();
    } catch (err) {
      throw new KvstoreError("read", key, errorText(err), { cause: err });
    }
    const labels = value === null ? undefined : parseLabels(value);
    return labels === undefined ? undefined : freezeIdentity(id, labels);
  }

  /**
   * See `IdentityAllocator.lookupByLabels` (`@dp/datapath`); a label set not yet in
   * the local copy is read from etcd.
   *
   * @param labels The labels.
   * @returns The identity, or `undefined`.
   * @throws {InvalidLabelError} When a label is malformed.
   * @throws {KvstoreError} When the local copy misses it and etcd cannot be reached.
   */
  async lookupByLabels(labels: LabelsInput): Promise<Identity | undefined> {
    const set = LabelSet.from(labels);
    const local = await this.#local.lookupByLabels(set);
    if (local !== undefined) return local;
    const known = this.#byKey.get(set.key);
    if (known !== undefined) return known;
    const key = VALUE + set.key;
    let value: string | null;
    try {
      value = await this.#kv.client().get(key).string();
    } catch (err) {
      throw new KvstoreError("read", key, errorText(err), { cause: err });
    }
    return value === null ? undefined : freezeIdentity(Number(value), set);
  }

  /**
   * See `IdentityAllocator.list` (`@dp/datapath`): the reserved identities, every
   * identity of the cluster and this node's CIDR identities.
   *
   * @returns The identities, by number.
   */
  async list(): Promise<Identity[]> {
    return this.#snapshot(await this.#local.list());
  }

  #snapshot(local: Identity[]): Identity[] {
    return [...local, ...this.#byId.values()].sort((a, b) => a.id - b.id);
  }

  /**
   * See `IdentityAllocator.subscribe` (`@dp/datapath`).
   *
   * @param listener Called synchronously for each change.
   * @param options Whether to replay the current identities first.
   * @returns The subscription.
   */
  subscribe(listener: IdentityListener, options: SubscribeOptions = {}): Subscription {
    if (options.replay ?? true) {
      const local: Identity[] = [];
      this.#local.subscribe((ev) => local.push(ev.identity)).unsubscribe();
      for (const identity of this.#snapshot(local)) listener({ type: "add", identity });
    }
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

  /**
   * Deletes the identities of this cluster that no node has referenced
   * for the grace period. Each deletion is a transaction conditioned on
   * the `value/<labels>` key not having changed since the references were
   * read (every new reference rewrites it), so an identity that a node
   * takes at the same moment is never deleted.
   *
   * @returns The identity numbers deleted.
   * @throws {KvstoreError} When etcd cannot be reached.
   */
  async runGc(): Promise<number[]> {
    const client = this.#kv.client();
    let kvs;
    try {
      kvs = (await client.getAll().prefix(P).exec()).kvs;
    } catch (err) {
      throw new KvstoreError("list", P, errorText(err), { cause: err });
    }
    const ids = new Map<number, { key: string; mod: string; labels: string }>();
    const values = new Map<string, string>();
    const referenced = new Set<number>();
    for (const kv of kvs) {
      const key = kv.key.toString();
      if (key.startsWith(ID))
        ids.set(Number(key.slice(ID.length)), { key, mod: kv.mod_revision, labels: kv.value.toString() });
      else if (key.startsWith(VALUE)) values.set(key, kv.mod_revision);
      else if (key.startsWith(REFS)) referenced.add(Number(key.slice(REFS.length, key.indexOf("/", REFS.length))));
    }
    const now = Date.now();
    const freed: number[] = [];
    for (const [id, entry] of ids) {
      if ((id & ~0xffff) !== this.#base) continue;
      if (referenced.has(id)) {
        this.#unrefSince.delete(id);
        continue;
      }
      const since = this.#unrefSince.get(id) ?? now;
      this.#unrefSince.set(id, since);
      if (now - since < this.#grace) continue;
      const labels = parseLabels(entry.labels);
      const valueKey = labels === undefined ? undefined : VALUE + labels.key;
      let txn = client.if(entry.key, "Mod", "==", entry.mod);
      const valueMod = valueKey === undefined ? undefined : values.get(valueKey);
      if (valueKey !== undefined && valueMod !== undefined) txn = txn.and(valueKey, "Mod", "==", valueMod);
      const ops = [client.delete().key(entry.key)];
      if (valueKey !== undefined && valueMod !== undefined) ops.push(client.delete().key(valueKey));
      try {
        const res = await txn.then(...ops).commit();
        if (!res.succeeded) continue;
      } catch (err) {
        throw new KvstoreError("delete identity", entry.key, errorText(err), { cause: err });
      }
      this.#unrefSince.delete(id);
      freed.push(id);
      this.#deleteFromStore(id);
    }
    return freed;
  }

  async #retake(): Promise<void> {
    // After a new lease: put this node's references again; an identity
    // collected meanwhile is created again under the same number if free.
    const client = this.#kv.client();
    const lease = await this.#kv.leaseId();
    for (const [id, identity] of [...this.#held]) {
      if (!this.#refs.has(id)) continue;
      const valueKey = VALUE + identity.labels.key;
      const idKey = `${ID}${id}`;
      const refKey = `${REFS}${id}/${this.#node}`;
      let again: { succeeded: boolean };
      try {
        const ref = client.put(refKey).value(this.#node).lease(lease);
        const res = await client
          .if(valueKey, "Value", "==", String(id))
          .then(client.put(valueKey).value(String(id)), ref)
          .commit();
        if (res.succeeded) continue;
        again = await client
          .if(valueKey, "Create", "==", 0)
          .and(idKey, "Create", "==", 0)
          .then(
            client.put(idKey).value(JSON.stringify(identity.labels.toStrings())),
            client.put(valueKey).value(String(id)),
            client.put(refKey).value(this.#node).lease(lease),
          )
          .commit();
      } catch (err) {
        throw new KvstoreError("put", refKey, errorText(err), { cause: err });
      }
      if (!again.succeeded) {
        // This node no longer holds it: the next allocate() goes to etcd.
        this.#refs.delete(id);
        this.#held.delete(id);
        if (this.#byId.get(id) === identity && !this.#mirror.cache.has(idKey)) this.#deleteFromStore(id, true);
        this.#conditions.push({
          type: "IdentityLost",
          message: `Identity ${id} (${JSON.stringify(identity.labels.key)}) of node "${this.#node}" was collected while etcd was unreachable and its number or labels were taken: allocate it again`,
          nodes: [this.#node],
          keys: [idKey, valueKey],
        });
      }
    }
  }

  /**
   * Stops the garbage collector and the watch; this node's references
   * stay until the store's lease goes (close the {@link Kvstore} to revoke
   * it); idempotent.
   *
   * @returns When done.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#gcTimer);
    this.#offRenew();
    this.#localSub.unsubscribe();
    this.#listeners.clear();
    await this.#mirror.close();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Creates the cluster-wide identity allocator of the store's node and
 * waits for its first copy of the cluster's identities.
 *
 * @param kv The store (its lease holds this node's references, its node name names them).
 * @param options Cluster ID, ranges, garbage collection.
 * @returns The allocator.
 * @throws {RangeError} When an option is out of range.
 * @throws {KvstoreError} When etcd cannot be listed.
 * @example Allocating and looking up
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { createKvstoreIdentityAllocator, openKvstore } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kv = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "node-a" });
 * await using alloc = await createKvstoreIdentityAllocator(kv);
 * const web = await alloc.allocate({ "k8s:app": "web" });
 * assert.equal(web.id, 256);
 * assert.equal((await alloc.lookup(256))?.labels.key, "k8s:app=web");
 * ```
 */
export async function createKvstoreIdentityAllocator(
  kv: Kvstore,
  options: KvstoreIdentityAllocatorOptions = {},
): Promise<KvstoreIdentityAllocator> {
  checkInt("clusterId", options.clusterId ?? 0, 0, 255);
  const min = options.minIdentity ?? CLUSTER_IDENTITY_MIN;
  checkInt("minIdentity", min, CLUSTER_IDENTITY_MIN, CLUSTER_IDENTITY_MAX);
  checkInt("maxIdentity", options.maxIdentity ?? CLUSTER_IDENTITY_MAX, min, CLUSTER_IDENTITY_MAX);
  checkInt("gcInterval", options.gcInterval ?? 0, 0, 2 ** 31 - 1);
  checkInt("gcGracePeriod", options.gcGracePeriod ?? 0, 0, 2 ** 31 - 1);
  checkInt("maxRetries", options.maxRetries ?? 1, 1, 1000);
  const alloc = new KvstoreIdentityAllocator(kv, options);
  try {
    await alloc.start();
  } catch (err) {
    await alloc.close();
    throw new KvstoreError("list identities under", ID, errorText(err), { cause: err });
  }
  return alloc;
}
