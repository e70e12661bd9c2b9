import type { KvstoreCondition } from "./condition.ts";
import { KVSTORE_PREFIXES } from "./keys.ts";
import { KvstoreError, type Kvstore } from "./kvstore.ts";
import { PrefixMirror } from "./_mirror.ts";
import type { ResyncStats } from "./resync_stats.ts";
import { canonicalIp, canonicalPrefix } from "./_net.ts";

/**
 * What the cluster knows about one IP prefix: the security identity of
 * the addresses, the node that hosts them and how to reach it.
 *
 * @example A pod on another node
 * ```ts
 * import type { IpcacheEntry } from "@dp/kvstore";
 *
 * const entry: IpcacheEntry = { identity: 256, hostIp: "192.168.1.11", nodeName: "node-b", nodeId: 2 };
 * ```
 */
export interface IpcacheEntry {
  /** The security identity. */
  readonly identity: number;
  /** The IP of the node hosting the prefix (the tunnel endpoint or next hop). */
  readonly hostIp?: string;
  /** The node that published the entry. */
  readonly nodeName: string;
  /** The datapath node ID of that node (1-65535). */
  readonly nodeId?: number;
  /** The IPsec key ID (SPI) traffic to the prefix is encrypted with (1-15). */
  readonly encryptKey?: number;
}

/**
 * What this node publishes for a prefix: an {@link IpcacheEntry} without
 * the node name, which the sync fills in.
 *
 * @example Publishing a local pod
 * ```ts no-run
 * import type { IpcacheSync, LocalIpcacheEntry } from "@dp/kvstore";
 *
 * declare const sync: IpcacheSync;
 * const entry: LocalIpcacheEntry = { identity: 256, hostIp: "192.168.1.10", nodeId: 1 };
 * await sync.publish("10.1.0.5", entry);
 * ```
 */
export type LocalIpcacheEntry = Omit<IpcacheEntry, "nodeName">;

/**
 * Where the remote entries go, one change at a time (the datapath's
 * ipcache map, or a test's `Map`). Called synchronously, in order; after a
 * resync only the differences are applied.
 *
 * @example A Map as a sink
 * ```ts
 * import assert from "node:assert/strict";
 * import type { IpcacheEntry, IpcacheSink } from "@dp/kvstore";
 *
 * const map = new Map<string, IpcacheEntry>();
 * const sink: IpcacheSink = { upsert: (p, e) => void map.set(p, e), delete: (p) => void map.delete(p) };
 * sink.upsert("10.1.0.5/32", { identity: 256, nodeName: "b" });
 * assert.equal(map.size, 1);
 * ```
 */
export interface IpcacheSink {
  /**
   * A prefix was added or changed.
   *
   * @param prefix The canonical prefix (`10.1.0.5/32`).
   * @param entry The entry.
   */
  upsert(prefix: string, entry: IpcacheEntry): void;
  /**
   * A prefix was removed.
   *
   * @param prefix The canonical prefix.
   */
  delete(prefix: string): void;
}

/**
 * Options of {@link openIpcacheSync}.
 *
 * @example Applying this node's own entries too
 * ```ts no-run
 * import type { IpcacheSyncOptions } from "@dp/kvstore";
 *
 * const options: IpcacheSyncOptions = { clusterName: "default", includeLocal: true };
 * ```
 */
export interface IpcacheSyncOptions {
  /**
   * The cluster whose entries are published and watched.
   *
   * @default "default"
   */
  readonly clusterName?: string;
  /**
   * Apply this node's own entries to the sink as well.
   *
   * @default false
   */
  readonly includeLocal?: boolean;
}

function checkLocal(prefix: string, e: LocalIpcacheEntry): void {
  const bad = (field: string, reason: string): never => {
    throw new RangeError(`Invalid ipcache entry for ${prefix} field "${field}": ${reason}`);
  };
  if (!Number.isInteger(e.identity) || e.identity < 1 || e.identity > 0xffffffff) {
    bad("identity", `must be an integer in 1-4294967295, got ${String(e.identity)}`);
  }
  if (e.nodeId !== undefined && (!Number.isInteger(e.nodeId) || e.nodeId < 1 || e.nodeId > 65535)) {
    bad("nodeId", `must be an integer in 1-65535, got ${String(e.nodeId)}`);
  }
  if (e.encryptKey !== undefined && (!Number.isInteger(e.encryptKey) || e.encryptKey < 1 || e.encryptKey > 15)) {
    bad("encryptKey", `must be an integer in 1-15, got ${String(e.encryptKey)}`);
  }
}

function parseEntry(value: string): IpcacheEntry {
  const v: unknown = JSON.parse(value);
  if (typeof v !== "object" || v === null) throw new TypeError("not an object");
  const o = v as Record<string, unknown>;
  if (typeof o.identity !== "number" || !Number.isInteger(o.identity))
    throw new TypeError("identity is not an integer");
  if (typeof o.nodeName !== "string" || o.nodeName === "") throw new TypeError("nodeName is missing");
  const out: { -readonly [K in keyof IpcacheEntry]: IpcacheEntry[K] } = { identity: o.identity, nodeName: o.nodeName };
  if (typeof o.hostIp === "string") out.hostIp = canonicalIp(o.hostIp);
  if (typeof o.nodeId === "number") out.nodeId = o.nodeId;
  if (typeof o.encryptKey === "number") out.encryptKey = o.encryptKey;
  return out;
}

/**
 * The cluster's ipcache in etcd: this node publishes its prefixes (pod
 * IPs, its own node IPs) under the store's lease, so they vanish with the
 * node; every other node's entries are watched and applied to an
 * {@link IpcacheSink} one change at a time, with a full resync (applying
 * only the difference) after a lost or compacted watch.
 *
 * @example Publishing and seeing a remote entry
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { type IpcacheEntry, openIpcacheSync, openKvstore } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kvA = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "node-a" });
 * await using kvB = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "node-b" });
 * const seen = new Map<string, IpcacheEntry>();
 * await using b = await openIpcacheSync(kvB, { upsert: (p, e) => void seen.set(p, e), delete: (p) => void seen.delete(p) });
 * await using a = await openIpcacheSync(kvA, { upsert: () => {}, delete: () => {} });
 * await a.publish("10.1.0.5", { identity: 256, hostIp: "192.168.1.10" });
 * await b.settled(() => seen.has("10.1.0.5/32"));
 * assert.equal(seen.get("10.1.0.5/32")?.nodeName, "node-a");
 * ```
 */
export class IpcacheSync {
  #kv: Kvstore;
  #node: string;
  #prefix: string;
  #sink: IpcacheSink;
  #includeLocal: boolean;
  #mirror: PrefixMirror;
  #applied = new Map<string, string>();
  #local = new Map<string, IpcacheEntry>();
  #invalid = new Map<string, KvstoreCondition>();
  #waiters = new Set<() => void>();

  /**
   * Creates the sync; it does not watch yet.
   *
   * @internal Use {@link openIpcacheSync}.
   * @param kv The store.
   * @param sink Where remote entries go.
   * @param options The cluster.
   */
  constructor(kv: Kvstore, sink: IpcacheSink, options: IpcacheSyncOptions = {}) {
    this.#kv = kv;
    this.#node = kv.nodeName;
    this.#sink = sink;
    this.#includeLocal = options.includeLocal ?? false;
    this.#prefix = `${KVSTORE_PREFIXES.ip}${options.clusterName ?? "default"}/`;
    this.#mirror = new PrefixMirror(kv, this.#prefix, {
      upsert: (key, value) => this.#upsert(key, value),
      delete: (key) => this.#delete(key),
      synced: () => this.#wake(),
    });
  }

  /** @internal The first sync. */
  async start(): Promise<void> {
    await this.#mirror.start();
  }

  /** Problems: entries that do not parse, naming the key. */
  get conditions(): readonly KvstoreCondition[] {
    return [...this.#invalid.values()];
  }

  /** How many full resyncs the watch ran, and why the last one ran. */
  get resyncs(): ResyncStats {
    const s = this.#mirror.stats;
    return { count: s.resyncs, lastReason: s.lastResyncReason };
  }

  /** The number of remote entries applied to the sink. */
  get size(): number {
    return this.#applied.size;
  }

  #upsert(key: string, value: string): void {
    this.#apply(key, value);
    this.#wake();
  }

  #apply(key: string, value: string): void {
    const prefix = key.slice(this.#prefix.length);
    let entry: IpcacheEntry;
    try {
      entry = parseEntry(value);
    } catch (err) {
      this.#invalid.set(key, {
        type: "InvalidIpcacheEntry",
        message: `ipcache entry ${JSON.stringify(key)} is invalid: ${err instanceof Error ? err.message : String(err)}`,
        nodes: [],
        keys: [key],
      });
      this.#remove(key, true);
      return;
    }
    this.#invalid.delete(key);
    if (entry.nodeName === this.#node && !this.#includeLocal) {
      this.#remove(key);
      return;
    }
    if (this.#applied.get(prefix) === value) return;
    this.#applied.set(prefix, value);
    this.#sink.upsert(prefix, entry);
  }

  #delete(key: string): void {
    this.#remove(key);
    this.#wake();
  }

  #remove(key: string, keepInvalid = false): void {
    if (!keepInvalid) this.#invalid.delete(key);
    const prefix = key.slice(this.#prefix.length);
    if (this.#applied.delete(prefix)) this.#sink.delete(prefix);
  }

  #wake(): void {
    for (const w of [...this.#waiters]) w();
  }

  /**
   * Publishes a local prefix under the store's lease (an address alone is
   * a /32 or /128).
   *
   * @param prefix The prefix or address.
   * @param entry Identity, host IP, node ID, key ID.
   * @returns The canonical prefix.
   * @throws {SyntaxError} When `prefix` or `entry.hostIp` is not valid.
   * @throws {RangeError} When a number in `entry` is out of range.
   * @throws {KvstoreError} When etcd cannot be written.
   */
  async publish(prefix: string, entry: LocalIpcacheEntry): Promise<string> {
    const p = canonicalPrefix(prefix).text;
    checkLocal(p, entry);
    const full: IpcacheEntry = {
      identity: entry.identity,
      nodeName: this.#node,
      ...(entry.hostIp !== undefined ? { hostIp: canonicalIp(entry.hostIp) } : {}),
      ...(entry.nodeId !== undefined ? { nodeId: entry.nodeId } : {}),
      ...(entry.encryptKey !== undefined ? { encryptKey: entry.encryptKey } : {}),
    };
    try {
      await this.#kv.putLeased(this.#prefix + p, JSON.stringify(full));
    } catch (err) {
      // The store forgot the key: forget it here too, so it does not come back.
      this.#local.delete(p);
      throw err;
    }
    this.#local.set(p, full);
    return p;
  }

  /**
   * Removes a prefix this node published.
   *
   * @param prefix The prefix or address.
   * @returns `true` when this node had published it.
   * @throws {SyntaxError} When `prefix` is not valid.
   * @throws {KvstoreError} When etcd cannot be written.
   */
  async unpublish(prefix: string): Promise<boolean> {
    const p = canonicalPrefix(prefix).text;
    const mine = this.#local.get(p);
    if (mine === undefined) return false;
    // Only this node's entry: another node may have published the prefix since.
    await this.#kv.deleteLeased(this.#prefix + p, JSON.stringify(mine));
    this.#local.delete(p);
    return true;
  }

  /**
   * The prefixes this node publishes.
   *
   * @returns Prefix to entry.
   */
  published(): ReadonlyMap<string, IpcacheEntry> {
    return new Map(this.#local);
  }

  /**
   * Waits until `predicate` holds, checking it after each change seen by
   * the watch (for tests and start-up ordering).
   *
   * @param predicate The condition.
   * @param timeout Milliseconds before giving up.
   * @returns When the predicate holds.
   * @throws {KvstoreError} When it does not hold within `timeout`.
   */
  settled(predicate: () => boolean, timeout = 10_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = (): void => {
        if (!predicate()) return;
        this.#waiters.delete(check);
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new KvstoreError("wait for the ipcache under", this.#prefix, `not settled after ${timeout} ms`));
      }, timeout);
      this.#waiters.add(check);
    });
  }

  /**
   * Lists the entries again and applies the difference (what a lost or
   * compacted watch does by itself).
   *
   * @returns When done.
   */
  resync(): Promise<void> {
    return this.#mirror.resync();
  }

  /**
   * Stops the watch; published entries stay until the store's lease goes;
   * idempotent.
   *
   * @returns When done.
   */
  async close(): Promise<void> {
    this.#waiters.clear();
    await this.#mirror.close();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Starts the ipcache sync of the store's node: the first list of the
 * cluster's entries is applied to `sink` before this resolves.
 *
 * @param kv The store (its lease holds the entries published here, its node name is recorded in them).
 * @param sink Where remote entries go.
 * @param options The cluster, whether to apply local entries.
 * @returns The sync.
 * @throws {KvstoreError} When etcd cannot be listed.
 * @example Starting with a Map
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openIpcacheSync, openKvstore } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kv = await openKvstore({ endpoints: etcd.endpoints }, { nodeName: "node-a" });
 * const map = new Map<string, number>();
 * await using sync = await openIpcacheSync(kv, { upsert: (p, e) => void map.set(p, e.identity), delete: (p) => void map.delete(p) });
 * assert.equal(sync.size, 0);
 * ```
 */
export async function openIpcacheSync(
  kv: Kvstore,
  sink: IpcacheSink,
  options: IpcacheSyncOptions = {},
): Promise<IpcacheSync> {
  const sync = new IpcacheSync(kv, sink, options);
  try {
    await sync.start();
  } catch (err) {
    await sync.close();
    throw new KvstoreError(
      "list the ipcache under",
      `${KVSTORE_PREFIXES.ip}${options.clusterName ?? "default"}/`,
      String(err),
      {
        cause: err,
      },
    );
  }
  return sync;
}
