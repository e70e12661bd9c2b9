import { type BpfMap, mapById, openPinnedMap, SyscallError } from "@dp/core";
import { DeletableMap, HashMap, HashOfMaps, PerCpuArrayMap, u32, u64 } from "@dp/maps";
import {
  DpEncryptInfo,
  DpEndpointInfo,
  DpEndpointKey,
  DpIpcacheInfo,
  DpIpcacheKey,
  DpMetricsValue,
  DpPolicyKey,
  DpPolicyValue,
} from "../_gen/datapath.ts";
import { addr16 } from "../_addr.ts";
import { StateStore } from "../_state_store.ts";
import { countConntrack } from "../conntrack/count.ts";
import type { ConntrackEntry } from "../conntrack/entry.ts";
import type { ConntrackFilter } from "../conntrack/filter.ts";
import { type ConntrackFlushResult, flushConntrack } from "../conntrack/flush.ts";
import { listConntrack } from "../conntrack/list.ts";
import type { ConntrackMaps } from "../conntrack/maps.ts";
import { type EncryptionStatus, readNodeKeys } from "../encryption/encryption.ts";
import type { Endpoint } from "../endpoint/endpoint.ts";
import { Ipcache, type IpcacheEntry } from "../ipcache/ipcache.ts";
import type { MapFill } from "../node.ts";
import { type NodeCounter, type PolicyMapEntry, readPolicyMap, sumMetrics } from "../map_entries.ts";
import type { PolicyRule } from "../policy/rule.ts";

const ENOENT = 2;
const DP_EP_F_INGRESS_ENFORCED = 1;
const DP_EP_F_EGRESS_ENFORCED = 2;
/** The shared maps whose fill levels a node reports (as `Node.status().maps`). */
const FILL_MAPS = ["dp_ct_any", "dp_ct_tcp", "dp_encrypt", "dp_endpoints", "dp_frag", "dp_ipcache", "dp_policy"];

/**
 * What a node recorded about itself in its state directory.
 *
 * @example The mode of a stopped node
 * ```ts no-run
 * import type { PinnedNodeInfo } from "@dp/datapath";
 * declare const info: PinnedNodeInfo;
 * console.log(info.hostRouting, info.router.ipv4, info.uplink ?? "(none)");
 * ```
 */
export interface PinnedNodeInfo {
  /** The host routing mode the programs were loaded with. */
  readonly hostRouting: "bpf" | "legacy";
  /** The router addresses. */
  readonly router: {
    /** The IPv4 router address. */
    readonly ipv4: string;
    /** The IPv6 router address, if any. */
    readonly ipv6: string | undefined;
  };
  /** The uplink device, if any. */
  readonly uplink: string | undefined;
}

/** The endpoint record a node keeps in its state directory (see node.ts `EpRecord`). */
interface EndpointRecord {
  readonly id: number;
  readonly labels: string[];
  readonly netns: string;
  readonly ifname: string;
  readonly hostIfname: string;
  readonly hostIfindex: number;
  readonly ipv4: string;
  readonly ipv6?: string | null;
  readonly mac: string;
  readonly hostMac: string;
  readonly existing?: boolean;
}

function isMissing(err: unknown): boolean {
  return err instanceof SyscallError && err.errno === ENOENT;
}

/**
 * A read-only view of the state a node pinned in its state directory: for
 * tools that run while no process holds the node (a stopped agent, a
 * crashed one), such as `dp bpf ct list`. It reads the same maps the
 * datapath uses, so what it shows is what the kernel does; the only write
 * it offers is {@link PinnedNode.flushConntrack}. Made by
 * {@link openPinnedNode}; `close()` closes the handles, the pins stay.
 *
 * @example The endpoints of a stopped node
 * ```ts no-run
 * import { openPinnedNode } from "@dp/datapath";
 * using pinned = openPinnedNode("/sys/fs/bpf/dp");
 * for (const ep of pinned.endpoints()) console.log(ep.id, ep.ipv4, ep.labels.join(","));
 * ```
 */
export class PinnedNode {
  /** The state directory. */
  readonly stateDir: string;
  readonly #maps: Map<string, BpfMap>;
  readonly #store: StateStore | undefined;
  readonly #ctTcp: BpfMap;
  readonly #ctAny: BpfMap;
  #closed = false;

  /**
   * Wraps the opened pins.
   *
   * @internal Made by {@link openPinnedNode}.
   * @param stateDir The state directory.
   * @param maps The pinned maps by name.
   * @param store The record store, if pinned.
   */
  constructor(stateDir: string, maps: Map<string, BpfMap>, store: StateStore | undefined) {
    this.stateDir = stateDir;
    this.#maps = maps;
    this.#store = store;
    this.#ctTcp = this.#map("dp_ct_tcp");
    this.#ctAny = this.#map("dp_ct_any");
  }

  #map(name: string): BpfMap {
    if (this.#closed) throw new TypeError(`Cannot read pinned map "${name}": the pinned node is closed`);
    const map = this.#maps.get(name);
    if (map === undefined)
      throw new TypeError(`Cannot read pinned map "${name}": it is not pinned in "${this.stateDir}"`);
    return map;
  }

  /** The conntrack maps, for the functions of `conntrack/` (`gcConntrack`, `countConntrack`). */
  get conntrackMaps(): ConntrackMaps {
    return { tcp: this.#ctTcp, any: this.#ctAny };
  }

  /**
   * What the node recorded about itself (mode, router, uplink).
   *
   * @returns The record, or undefined when the node wrote none.
   */
  info(): PinnedNodeInfo | undefined {
    const rec = this.#store?.get("node") as
      { hostRouting?: string; router?: { ipv4?: string; ipv6?: string | null }; uplink?: string | null } | undefined;
    if (rec === undefined || typeof rec !== "object" || typeof rec.router?.ipv4 !== "string") return undefined;
    return {
      hostRouting: rec.hostRouting === "bpf" ? "bpf" : "legacy",
      router: { ipv4: rec.router.ipv4, ipv6: rec.router.ipv6 ?? undefined },
      uplink: rec.uplink ?? undefined,
    };
  }

  /**
   * The encryption the node's programs were loaded with and the key per
   * remote node (`Node.status().encryption` without the xfrm counters,
   * which belong to the node's namespace).
   *
   * @returns The mode and keys; mode `"disabled"` for a node that recorded none.
   */
  encryption(): EncryptionStatus {
    const rec = this.#store?.get("node") as { encryption?: string } | undefined;
    const mode = rec?.encryption === "ipsec" ? "ipsec" : "disabled";
    const map = this.#maps.get("dp_encrypt");
    if (this.#closed) throw new TypeError(`Cannot read pinned map "dp_encrypt": the pinned node is closed`);
    return { mode, keys: map === undefined ? [] : readNodeKeys(new HashMap(map, u32, DpEncryptInfo)) };
  }

  /**
   * Lists conntrack entries (see the free function `listConntrack`).
   *
   * @param filter Which entries; `{}` lists all.
   * @returns The entries, TCP first.
   * @throws {SyntaxError} When an address in the filter is invalid.
   * @throws {RangeError} When a port or protocol in the filter is out of range.
   */
  listConntrack(filter: ConntrackFilter = {}): ConntrackEntry[] {
    return listConntrack(this.conntrackMaps, filter);
  }

  /**
   * Deletes conntrack entries (see the free function `flushConntrack`):
   * the connections' next packets meet policy again.
   *
   * @param filter Which entries; `{}` deletes all.
   * @returns How many were deleted per map.
   * @throws {SyntaxError} When an address in the filter is invalid.
   * @throws {RangeError} When a port or protocol in the filter is out of range.
   */
  flushConntrack(filter: ConntrackFilter = {}): ConntrackFlushResult {
    return flushConntrack(this.conntrackMaps, filter);
  }

  /**
   * The ipcache's entries.
   *
   * @returns Prefix and identity of each entry, in the map's order.
   */
  ipcache(): IpcacheEntry[] {
    const map = new DeletableMap(this.#map("dp_ipcache"), DpIpcacheKey, DpIpcacheInfo, {
      kind: { className: "Ipcache", types: ["lpmTrie"] },
    });
    return new Ipcache(map).entries();
  }

  /**
   * The endpoints: the node's records joined with the endpoint map (their
   * identity and enforcement flags as the datapath sees them). A full
   * policy map is reported when its fill level reached its capacity (the
   * node process counts refused entries; the pins cannot).
   *
   * @returns The endpoints, by id.
   */
  endpoints(): Endpoint[] {
    if (this.#store === undefined) return [];
    const epMap = new HashMap(this.#map("dp_endpoints"), DpEndpointKey, DpEndpointInfo);
    const out: Endpoint[] = [];
    for (const name of this.#store.names("ep/")) {
      const rec = this.#store.get(name) as EndpointRecord | undefined;
      if (rec === undefined || typeof rec.id !== "number") continue;
      const { family, addr } = addr16(rec.ipv4);
      const info = epMap.get({ addr, family, pad: new Uint8Array(3) });
      const flags = info?.flags ?? 0;
      const fill = this.#policyFill(rec.id);
      out.push({
        id: rec.id,
        identity: info?.identity ?? 0,
        labels: [...rec.labels],
        netns: rec.netns,
        ifname: rec.ifname,
        hostIfname: rec.hostIfname,
        hostIfindex: rec.hostIfindex,
        ipv4: rec.ipv4,
        ipv6: rec.ipv6 ?? undefined,
        mac: rec.mac,
        hostMac: rec.hostMac,
        enforcement: {
          ingress: (flags & DP_EP_F_INGRESS_ENFORCED) !== 0,
          egress: (flags & DP_EP_F_EGRESS_ENFORCED) !== 0,
        },
        policyMapFull: fill !== undefined && fill.entries >= fill.maxEntries,
        existing: rec.existing === true,
      });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  #withPolicyMap<T>(endpointId: number, fn: (map: DeletableMap<DpPolicyKey, DpPolicyValue>) => T): T | undefined {
    const outer = new HashOfMaps(this.#map("dp_policy"), u32);
    const id = outer.get(endpointId);
    if (id === undefined) return undefined;
    let inner: BpfMap;
    try {
      inner = mapById(id);
    } catch (err) {
      // Removed between the two reads.
      if (isMissing(err)) return undefined;
      throw err;
    }
    using map = new DeletableMap(inner, DpPolicyKey, DpPolicyValue, {
      kind: { className: "PolicyMap", types: ["lpmTrie"] },
    });
    return fn(map);
  }

  #policyFill(endpointId: number): MapFill | undefined {
    return this.#withPolicyMap(endpointId, (m) => ({
      name: `dp_policy/${endpointId}`,
      entries: count(m.map.keys()),
      maxEntries: m.map.maxEntries,
    }));
  }

  /**
   * The entries of an endpoint's policy map (the inner map `dp_policy`
   * holds for the endpoint id), with their counters.
   *
   * @param endpointId The endpoint id.
   * @returns The entries sorted by direction, identity, protocol and port; undefined when the endpoint has no policy map.
   * @throws {RangeError} When the id is not an integer from 1 to 65535.
   */
  policyMap(endpointId: number): PolicyMapEntry[] | undefined {
    if (!Number.isInteger(endpointId) || endpointId < 1 || endpointId > 0xffff)
      throw new RangeError(`Cannot read policy map of endpoint ${endpointId}: ids are integers from 1 to 65535`);
    return this.#withPolicyMap(endpointId, (m) => readPolicyMap(m.entries()));
  }

  /**
   * The policy rules the node recorded.
   *
   * @returns The rules, in the order they were added; empty when none were recorded.
   */
  rules(): PolicyRule[] {
    const rules = this.#store?.get("rules");
    return Array.isArray(rules) ? (rules as PolicyRule[]) : [];
  }

  /**
   * The `dp_metrics` counters summed over the CPUs, and the events the
   * ring buffer had no room for.
   *
   * @returns The counters by reason and direction, and the lost events.
   */
  counters(): {
    /** The `dp_metrics` counters, by reason and direction. */
    readonly metrics: NodeCounter[];
    /** Events the ring buffer had no room for. */
    readonly lostEvents: bigint;
  } {
    const metrics = sumMetrics(new PerCpuArrayMap(this.#map("dp_metrics"), DpMetricsValue).entries());
    const lost = this.#maps.get("dp_events_lost");
    const lostEvents =
      lost === undefined ? 0n : (new PerCpuArrayMap(lost, u64).get(0) ?? []).reduce((a, b) => a + b, 0n);
    return { metrics, lostEvents };
  }

  /**
   * Fill levels of the shared maps and of each endpoint's policy map (the
   * entries of `Node.status().maps`): the shared maps by name, then the
   * policy maps (`dp_policy/<id>`) by endpoint id.
   *
   * @returns Entries and capacity per map.
   */
  maps(): MapFill[] {
    const ct = countConntrack(this.conntrackMaps);
    const out: MapFill[] = [];
    for (const name of FILL_MAPS) {
      const map = this.#maps.get(name);
      if (map === undefined) continue;
      const entries = name === "dp_ct_tcp" ? ct.tcp.entries : name === "dp_ct_any" ? ct.any.entries : count(map.keys());
      out.push({ name, entries, maxEntries: map.maxEntries });
    }
    const ids = [...new HashOfMaps(this.#map("dp_policy"), u32).keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const fill = this.#policyFill(id);
      if (fill !== undefined) out.push(fill);
    }
    return out;
  }

  /** Closes the handles; the pinned state stays. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const m of this.#maps.values()) m.close();
    this.#store?.close();
  }

  /** Same as {@link PinnedNode.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function count(it: Iterable<unknown>): number {
  let n = 0;
  for (const _ of it) n++;
  return n;
}

/**
 * Opens a read-only view of the state a node pinned in `stateDir` (the
 * `stateDir` of `openNode`): its maps and records, without loading
 * programs or changing anything. Works while a process holds the node
 * and while none does.
 *
 * @param stateDir The node's state directory on bpffs.
 * @returns The view; close it when done.
 * @throws {TypeError} When no node is pinned there (the `cause` is the `SyscallError` ENOENT) or `stateDir` is not an absolute path.
 * @throws {SyscallError} When a pin cannot be opened (EACCES/EPERM without privileges).
 * @capability CAP_BPF
 * @example Listing the conntrack entries of a stopped node
 * ```ts no-run
 * import { openPinnedNode } from "@dp/datapath";
 * using pinned = openPinnedNode("/sys/fs/bpf/dp");
 * for (const e of pinned.listConntrack({ protocol: "TCP" })) console.log(`${e.saddr}:${e.sport} -> ${e.daddr}:${e.dport} ${e.state}`);
 * ```
 */
export function openPinnedNode(stateDir: string): PinnedNode {
  if (typeof stateDir !== "string" || !stateDir.startsWith("/"))
    throw new TypeError(`Cannot open pinned node: stateDir must be an absolute path, got ${JSON.stringify(stateDir)}`);
  const maps = new Map<string, BpfMap>();
  let store: StateStore | undefined;
  try {
    for (const name of [...FILL_MAPS, "dp_metrics", "dp_events_lost"]) {
      try {
        maps.set(name, openPinnedMap(`${stateDir}/${name}`));
      } catch (err) {
        if (!isMissing(err)) throw err;
        if (name === "dp_ct_tcp" || name === "dp_ct_any" || name === "dp_policy")
          throw new TypeError(`Cannot open pinned node "${stateDir}": no datapath is pinned there (no ${name})`, {
            cause: err,
          });
      }
    }
    try {
      store = new StateStore(openPinnedMap(`${stateDir}/node_state`));
    } catch (err) {
      if (!isMissing(err)) throw err;
    }
    return new PinnedNode(stateDir, maps, store);
  } catch (err) {
    for (const m of maps.values()) m.close();
    store?.close();
    throw err;
  }
}
