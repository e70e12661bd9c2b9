import type { IpPrefix } from "@dp/core";
import type { KvstoreCondition } from "./condition.ts";
import { KVSTORE_PREFIXES } from "./keys.ts";
import { KvstoreError, type Kvstore } from "./kvstore.ts";
import { PrefixMirror } from "./_mirror.ts";
import type { ResyncStats } from "./resync_stats.ts";
import { canonicalIp, canonicalPrefix, prefixesOverlap } from "./_net.ts";

/**
 * A node's record in the registry: its addresses, pod CIDRs, cluster,
 * health and encryption state. Free-form parts (`labels`) are strings;
 * everything else is checked by {@link validateNode}.
 *
 * @example A dual-stack node with IPsec
 * ```ts
 * import type { KvstoreNode } from "@dp/kvstore";
 *
 * const node: KvstoreNode = {
 *   name: "node-a",
 *   cluster: { name: "default", id: 0 },
 *   ipv4: "192.168.1.10",
 *   ipv6: "fd00::10",
 *   podCidrs: ["10.1.0.0/24", "fd01::/64"],
 *   nodeId: 1,
 *   health: { ipv4: "10.1.0.2", healthy: true },
 *   encryption: { ipsecKeyIds: [3] },
 * };
 * ```
 */
export interface KvstoreNode {
  /** The node name (a DNS label or subdomain). */
  readonly name: string;
  /**
   * The cluster the node belongs to.
   *
   * @default { name: "default", id: 0 }
   */
  readonly cluster?: {
    /** The cluster name (`cluster-name`). */
    readonly name: string;
    /** The cluster ID (`cluster-id`, 0-255). */
    readonly id: number;
  };
  /** The node's IPv4 address (the tunnel endpoint and native-routing next hop). */
  readonly ipv4?: string;
  /** The node's IPv6 address. */
  readonly ipv6?: string;
  /**
   * The pod CIDRs the node allocates from.
   *
   * @default []
   */
  readonly podCidrs?: readonly string[];
  /** The datapath node ID (1-65535), as the ipcache and IPsec marks carry it. */
  readonly nodeId?: number;
  /** Health-check endpoint and state. */
  readonly health?: {
    /** The health endpoint's IPv4 address. */
    readonly ipv4?: string;
    /** The health endpoint's IPv6 address. */
    readonly ipv6?: string;
    /** Whether the node reports itself healthy. */
    readonly healthy?: boolean;
  };
  /** Transparent encryption state. */
  readonly encryption?: {
    /** The IPsec key IDs (SPIs, 1-15) the node holds, current first. */
    readonly ipsecKeyIds?: readonly number[];
    /** The WireGuard public key (base64). */
    readonly wireguardPublicKey?: string;
  };
  /** Free-form labels. */
  readonly labels?: Readonly<Record<string, string>>;
}

/**
 * A node record that does not validate; `field` names the field
 * (`podCidrs[1]`, `cluster.id`).
 *
 * @example A bad pod CIDR
 * ```ts
 * import assert from "node:assert/strict";
 * import { InvalidNodeError, validateNode } from "@dp/kvstore";
 *
 * assert.throws(
 *   () => validateNode({ name: "a", podCidrs: ["10.1.0.1/24"] }),
 *   (e) => e instanceof InvalidNodeError && e.field === "podCidrs[0]",
 * );
 * ```
 */
export class InvalidNodeError extends TypeError {
  /** The node name as given. */
  readonly node: string;
  /** The field. */
  readonly field: string;

  /**
   * Creates the error.
   *
   * @param node The node name.
   * @param field The field.
   * @param reason What is wrong.
   * @param options The cause.
   */
  constructor(node: string, field: string, reason: string, options?: ErrorOptions) {
    super(`Invalid node ${JSON.stringify(node)} field "${field}": ${reason}`, options);
    this.name = "InvalidNodeError";
    this.node = node;
    this.field = field;
  }
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Checks a node record and returns it in canonical form (addresses and
 * prefixes normalised, the default cluster filled in).
 *
 * @param input The candidate record (from code or parsed JSON).
 * @returns The record.
 * @throws {InvalidNodeError} When a field is missing, malformed or out of range.
 * @example Canonical addresses
 * ```ts
 * import assert from "node:assert/strict";
 * import { validateNode } from "@dp/kvstore";
 *
 * const node = validateNode({ name: "a", ipv6: "fd00:0::1", podCidrs: ["10.1.0.0/24"] });
 * assert.equal(node.ipv6, "fd00::1");
 * assert.deepEqual(node.cluster, { name: "default", id: 0 });
 * ```
 */
export function validateNode(input: unknown): KvstoreNode {
  if (!isRecord(input)) throw new InvalidNodeError("?", "(root)", "expected an object");
  const name = input.name;
  if (typeof name !== "string" || name.length > 253 || !NAME_RE.test(name)) {
    throw new InvalidNodeError(String(name), "name", "must be a lowercase DNS name (a-z, 0-9, '-', '.')");
  }
  const bad = (field: string, reason: string, cause?: unknown): never => {
    throw new InvalidNodeError(name, field, reason, cause === undefined ? undefined : { cause });
  };
  const ip = (v: unknown, field: string, family: 4 | 6): string | undefined => {
    if (v === undefined) return undefined;
    if (typeof v !== "string") return bad(field, `expected a string, got ${typeof v}`);
    try {
      return canonicalIp(v, family);
    } catch (err) {
      return bad(field, `${JSON.stringify(v)} is not an IPv${family} address`, err);
    }
  };
  const out: Record<string, unknown> = { name };
  const cluster = input.cluster ?? { name: "default", id: 0 };
  if (!isRecord(cluster)) bad("cluster", "expected { name, id }");
  const c = cluster as Record<string, unknown>;
  if (typeof c.name !== "string" || !NAME_RE.test(c.name) || c.name.length > 32) {
    bad("cluster.name", "must be a lowercase DNS label of at most 32 characters");
  }
  if (typeof c.id !== "number" || !Number.isInteger(c.id) || c.id < 0 || c.id > 255) {
    bad("cluster.id", `must be an integer in 0-255, got ${JSON.stringify(c.id)}`);
  }
  out.cluster = { name: c.name, id: c.id };
  const v4 = ip(input.ipv4, "ipv4", 4);
  if (v4 !== undefined) out.ipv4 = v4;
  const v6 = ip(input.ipv6, "ipv6", 6);
  if (v6 !== undefined) out.ipv6 = v6;
  const cidrs = input.podCidrs ?? [];
  if (!Array.isArray(cidrs)) bad("podCidrs", "expected a list of prefixes");
  out.podCidrs = (cidrs as unknown[]).map((p, i) => {
    if (typeof p !== "string") return bad(`podCidrs[${i}]`, `expected a string, got ${typeof p}`);
    try {
      return canonicalPrefix(p).text;
    } catch (err) {
      return bad(`podCidrs[${i}]`, err instanceof Error ? err.message : String(err), err);
    }
  });
  if (input.nodeId !== undefined) {
    const id = input.nodeId;
    if (typeof id !== "number" || !Number.isInteger(id) || id < 1 || id > 65535) {
      bad("nodeId", `must be an integer in 1-65535, got ${JSON.stringify(id)}`);
    }
    out.nodeId = id;
  }
  if (input.health !== undefined) {
    if (!isRecord(input.health)) bad("health", "expected an object");
    const h = input.health as Record<string, unknown>;
    const health: Record<string, unknown> = {};
    const h4 = ip(h.ipv4, "health.ipv4", 4);
    if (h4 !== undefined) health.ipv4 = h4;
    const h6 = ip(h.ipv6, "health.ipv6", 6);
    if (h6 !== undefined) health.ipv6 = h6;
    if (h.healthy !== undefined) {
      if (typeof h.healthy !== "boolean") bad("health.healthy", "expected a boolean");
      health.healthy = h.healthy;
    }
    out.health = health;
  }
  if (input.encryption !== undefined) {
    if (!isRecord(input.encryption)) bad("encryption", "expected an object");
    const e = input.encryption as Record<string, unknown>;
    const enc: Record<string, unknown> = {};
    if (e.ipsecKeyIds !== undefined) {
      if (!Array.isArray(e.ipsecKeyIds)) bad("encryption.ipsecKeyIds", "expected a list of key IDs");
      enc.ipsecKeyIds = (e.ipsecKeyIds as unknown[]).map((k, i) => {
        if (typeof k !== "number" || !Number.isInteger(k) || k < 1 || k > 15) {
          return bad(`encryption.ipsecKeyIds[${i}]`, `must be an integer in 1-15, got ${JSON.stringify(k)}`);
        }
        return k;
      });
    }
    if (e.wireguardPublicKey !== undefined) {
      if (
        typeof e.wireguardPublicKey !== "string" ||
        !/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(e.wireguardPublicKey)
      ) {
        bad("encryption.wireguardPublicKey", "expected a base64 Curve25519 public key");
      }
      enc.wireguardPublicKey = e.wireguardPublicKey;
    }
    out.encryption = enc;
  }
  if (input.labels !== undefined) {
    if (!isRecord(input.labels)) bad("labels", "expected a record of strings");
    for (const [k, v] of Object.entries(input.labels as Record<string, unknown>)) {
      if (typeof v !== "string") bad(`labels.${k}`, `expected a string, got ${typeof v}`);
    }
    out.labels = { ...(input.labels as Record<string, string>) };
  }
  for (const [key, value] of Object.entries(input)) {
    // An optional field set to undefined is the same as an absent one.
    if (value === undefined) continue;
    if (!Object.hasOwn(out, key) && key !== "cluster") bad(key, "unknown field");
  }
  return out as unknown as KvstoreNode;
}

/**
 * A change in the registry: `"join"` when a node's record appears,
 * `"update"` when it changes, `"leave"` when it is deleted (deregistered,
 * or its lease expired).
 *
 * @example Reacting to a leave
 * ```ts no-run
 * import type { NodeEvent } from "@dp/kvstore";
 *
 * function onNode(ev: NodeEvent): void {
 *   if (ev.type === "leave") console.log(`node ${ev.node.name} left`);
 * }
 * ```
 */
export interface NodeEvent {
  /** What happened. */
  readonly type: "join" | "update" | "leave";
  /** The record (for `"leave"`, the last one seen). */
  readonly node: KvstoreNode;
  /** For `"update"`, the record before. */
  readonly previous?: KvstoreNode;
}

/**
 * Receives {@link NodeEvent}s, synchronously, in order.
 *
 * @example A listener
 * ```ts no-run
 * import type { NodeListener } from "@dp/kvstore";
 *
 * const names = new Set<string>();
 * const listener: NodeListener = (ev) => (ev.type === "leave" ? names.delete(ev.node.name) : names.add(ev.node.name));
 * ```
 *
 * @param event The change.
 */
export type NodeListener = (event: NodeEvent) => void;

/**
 * Options of {@link openNodeRegistry}.
 *
 * @example Another cluster's name
 * ```ts no-run
 * import type { NodeRegistryOptions } from "@dp/kvstore";
 *
 * const options: NodeRegistryOptions = { clusterName: "east" };
 * ```
 */
export interface NodeRegistryOptions {
  /**
   * The cluster whose nodes are watched (and that `register` accepts).
   *
   * @default "default"
   */
  readonly clusterName?: string;
}

/**
 * The nodes of one cluster in etcd: this node's record, kept under the
 * store's lease (so it disappears when the node dies), and a watched copy
 * of every node's record with join/update/leave events and a full resync
 * after a lost or compacted watch. Overlapping pod CIDRs between nodes
 * are reported in {@link NodeRegistry.conditions}.
 *
 * @example A node joins and leaves
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openKvstore, openNodeRegistry } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kv = await openKvstore({ endpoints: etcd.endpoints });
 * await using nodes = await openNodeRegistry(kv);
 * await nodes.register({ name: "node-a", ipv4: "192.168.1.10", podCidrs: ["10.1.0.0/24"] });
 * assert.equal(nodes.get("node-a")?.ipv4, "192.168.1.10");
 * await nodes.deregister("node-a");
 * assert.equal(nodes.get("node-a"), undefined);
 * ```
 */
export class NodeRegistry {
  #kv: Kvstore;
  #cluster: string;
  #prefix: string;
  #nodes = new Map<string, KvstoreNode>();
  #listeners = new Set<NodeListener>();
  #mirror: PrefixMirror;
  #invalid = new Map<string, KvstoreCondition>();
  #overlaps: KvstoreCondition[] = [];

  /**
   * Creates the registry; it does not sync yet.
   *
   * @internal Use {@link openNodeRegistry}.
   * @param kv The store.
   * @param options The cluster.
   */
  constructor(kv: Kvstore, options: NodeRegistryOptions = {}) {
    this.#kv = kv;
    this.#cluster = options.clusterName ?? "default";
    this.#prefix = `${KVSTORE_PREFIXES.nodes}${this.#cluster}/`;
    this.#mirror = new PrefixMirror(kv, this.#prefix, {
      upsert: (key, value) => this.#upsert(key, value),
      delete: (key) => this.#delete(key),
    });
  }

  /** @internal The first sync. */
  async start(): Promise<void> {
    await this.#mirror.start();
  }

  /** The cluster name. */
  get clusterName(): string {
    return this.#cluster;
  }

  /** Problems: overlapping pod CIDRs (naming both nodes) and records that do not parse (naming the key). */
  get conditions(): readonly KvstoreCondition[] {
    return [...this.#overlaps, ...this.#invalid.values()];
  }

  /** How many full resyncs the watch ran, and why the last one ran. */
  get resyncs(): ResyncStats {
    const s = this.#mirror.stats;
    return { count: s.resyncs, lastReason: s.lastResyncReason };
  }

  #upsert(key: string, value: string): void {
    const name = key.slice(this.#prefix.length);
    let node: KvstoreNode;
    try {
      node = validateNode(JSON.parse(value));
      if (node.name !== name) throw new InvalidNodeError(node.name, "name", `does not match the key's node "${name}"`);
    } catch (err) {
      this.#invalid.set(key, {
        type: "InvalidNodeRecord",
        message: `Node record ${JSON.stringify(key)} is invalid: ${err instanceof Error ? err.message : String(err)}`,
        nodes: [name],
        keys: [key],
      });
      this.#delete(key, true);
      return;
    }
    this.#invalid.delete(key);
    const previous = this.#nodes.get(name);
    this.#nodes.set(name, node);
    this.#recheck();
    this.#emit(previous === undefined ? { type: "join", node } : { type: "update", node, previous });
  }

  #delete(key: string, keepInvalid = false): void {
    const name = key.slice(this.#prefix.length);
    if (!keepInvalid) this.#invalid.delete(key);
    const node = this.#nodes.get(name);
    if (node === undefined) return;
    this.#nodes.delete(name);
    this.#recheck();
    this.#emit({ type: "leave", node });
  }

  #recheck(): void {
    const all: Array<{ node: string; text: string; prefix: IpPrefix }> = [];
    for (const n of this.#nodes.values()) {
      for (const c of n.podCidrs ?? []) all.push({ node: n.name, ...canonicalPrefix(c) });
    }
    const out: KvstoreCondition[] = [];
    for (let i = 0; i < all.length; i++) {
      for (let j = i + 1; j < all.length; j++) {
        const a = all[i] as (typeof all)[number];
        const b = all[j] as (typeof all)[number];
        if (a.node === b.node || !prefixesOverlap(a.prefix, b.prefix)) continue;
        const [x, y] = a.node < b.node ? [a, b] : [b, a];
        out.push({
          type: "PodCidrOverlap",
          message: `Pod CIDR ${x.text} of node ${JSON.stringify(x.node)} overlaps ${y.text} of node ${JSON.stringify(y.node)}`,
          nodes: [x.node, y.node],
          keys: [`${this.#prefix}${x.node}`, `${this.#prefix}${y.node}`],
        });
      }
    }
    this.#overlaps = out;
  }

  #emit(event: NodeEvent): void {
    for (const l of [...this.#listeners]) l(event);
  }

  /**
   * Publishes (or updates) a node's record under the store's lease; the
   * local copy and the listeners see it before this resolves.
   *
   * @param node The record.
   * @returns The canonical record stored.
   * @throws {InvalidNodeError} When the record does not validate, or belongs to another cluster.
   * @throws {KvstoreError} When etcd cannot be written.
   */
  async register(node: KvstoreNode): Promise<KvstoreNode> {
    const valid = validateNode(node);
    if (valid.cluster?.name !== this.#cluster) {
      throw new InvalidNodeError(valid.name, "cluster.name", `the registry is for cluster "${this.#cluster}"`);
    }
    const key = this.#prefix + valid.name;
    const value = JSON.stringify(valid);
    const rev = await this.#kv.putLeased(key, value);
    // Applied unless the copy already holds a newer state of the key;
    // watch events older than this write are stale.
    if (this.#mirror.noteLocalWrite(key, rev) && this.#mirror.cache.get(key) !== value) {
      this.#mirror.cache.set(key, value);
      this.#upsert(key, value);
    }
    return valid;
  }

  /**
   * Deletes a node's record now (a clean leave); the listeners see the
   * leave before this resolves.
   *
   * @param name The node name.
   * @returns When etcd has deleted it.
   * @throws {KvstoreError} When etcd cannot be written.
   */
  async deregister(name: string): Promise<void> {
    const key = this.#prefix + name;
    const rev = await this.#kv.deleteLeased(key);
    if (this.#mirror.noteLocalWrite(key, rev) && this.#mirror.cache.delete(key)) this.#delete(key);
  }

  /**
   * A node's record.
   *
   * @param name The node name.
   * @returns The record, or `undefined`.
   */
  get(name: string): KvstoreNode | undefined {
    return this.#nodes.get(name);
  }

  /**
   * Every node's record, by name.
   *
   * @returns The records.
   */
  list(): KvstoreNode[] {
    return [...this.#nodes.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  /**
   * Delivers changes to `listener` until the returned function is called.
   *
   * @param listener Called synchronously for each change.
   * @param options `replay` (default `true`): deliver a `"join"` for every known node first.
   * @returns A function that stops delivery.
   */
  subscribe(listener: NodeListener, options: { readonly replay?: boolean } = {}): () => void {
    if (options.replay ?? true) for (const node of this.list()) listener({ type: "join", node });
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /**
   * Lists the nodes again and reports the difference (what a lost or
   * compacted watch does by itself).
   *
   * @returns When done.
   */
  resync(): Promise<void> {
    return this.#mirror.resync();
  }

  /**
   * Stops the watch; records this node registered stay until the store's
   * lease goes; idempotent.
   *
   * @returns When done.
   */
  async close(): Promise<void> {
    this.#listeners.clear();
    await this.#mirror.close();
  }

  /** Same as `close()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/**
 * Opens the node registry of a cluster and waits for the first copy of
 * its nodes.
 *
 * @param kv The store (its lease holds the records registered here).
 * @param options The cluster.
 * @returns The registry.
 * @throws {KvstoreError} When etcd cannot be listed.
 * @example Watching joins
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openKvstore, openNodeRegistry } from "@dp/kvstore";
 * import { startEtcd } from "@dp/kvstore/testing";
 *
 * await using etcd = await startEtcd();
 * await using kv = await openKvstore({ endpoints: etcd.endpoints });
 * await using nodes = await openNodeRegistry(kv);
 * const seen: string[] = [];
 * nodes.subscribe((ev) => seen.push(`${ev.type} ${ev.node.name}`));
 * await nodes.register({ name: "node-a" });
 * assert.deepEqual(seen, ["join node-a"]);
 * ```
 */
export async function openNodeRegistry(kv: Kvstore, options: NodeRegistryOptions = {}): Promise<NodeRegistry> {
  const reg = new NodeRegistry(kv, options);
  try {
    await reg.start();
  } catch (err) {
    await reg.close();
    throw new KvstoreError("list nodes under", `${KVSTORE_PREFIXES.nodes}${reg.clusterName}/`, String(err), {
      cause: err,
    });
  }
  return reg;
}
