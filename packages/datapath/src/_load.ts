// Loads bpf/datapath's three objects over ONE set of maps: from_container
// creates them (or takes the ones pinned in a state directory), the other
// two objects get them through loadCollection's `maps` option, so a single
// generated binding (_gen/datapath.ts) types them all. Settings (.rodata)
// and map sizes are set before load; maps a previous process pinned keep
// their own sizes.
import {
  type BpfMap,
  type BpfProgram,
  type Collection,
  type CollectionSpec,
  createMap,
  loadCollection,
  mapById,
  type MapSpec,
  openPinnedMap,
  readCollectionSpec,
  SyscallError,
  unpin,
} from "@dp/core";
import { DeletableMap, HashMap, HashOfMaps, type LruHashMap, PerCpuArrayMap, RingBuffer, u32 } from "@dp/maps";
import {
  bind,
  type DpCtEntry,
  type DpEncryptInfo,
  type DpEndpointInfo,
  type DpEndpointKey,
  DpEvent,
  type DpFragKey,
  type DpFragPorts,
  DpIpcacheInfo,
  DpIpcacheKey,
  type DpMetricsValue,
  DpPolicyKey,
  DpPolicyValue,
  type DpTuple,
} from "./_gen/datapath.ts";

const ENOENT = 2;

/** Where `bpf/build.sh` puts the objects, relative to this file in the repository. */
export const DEFAULT_OBJECT_DIR: string = new URL("../../../bpf/build/datapath/", import.meta.url).pathname;

/** The `.rodata` settings every object gets (bpf/datapath/README.md "Settings"). */
export interface DatapathSettings {
  /** `dp_host_routing_bpf`. */
  readonly hostRouting: "bpf" | "legacy";
  /** `dp_trace_enabled`. */
  readonly trace: boolean;
  /** `dp_ct_timeout_*`, in seconds; absent ones keep the objects' defaults. */
  readonly timeouts: { readonly syn?: number; readonly tcp?: number; readonly close?: number; readonly any?: number };
  /** `dp_enable_ipsec`; absent: disabled. */
  readonly encryption?: "ipsec" | "disabled";
}

/** Where the maps live and how big new ones are. */
export interface DatapathLoadOptions {
  /** `max_entries` of maps this load creates, by map name. */
  readonly maxEntries?: Readonly<Record<string, number>>;
  /** `max_entries` of the per-endpoint policy maps. */
  readonly policyMapSize?: number;
  /** A bpffs directory: maps pinned there are reused, new ones are pinned there. Absent: nothing pinned. */
  readonly pinDir?: string;
  /** The directory holding from_container.o, to_container.o and from_netdev.o. */
  readonly objectDir?: string;
}

/** A policy map: one endpoint's LPM trie of `dp_policy_key` → `dp_policy_value`. */
export type PolicyMap = DeletableMap<DpPolicyKey, DpPolicyValue>;

function prepare(path: string, settings: DatapathSettings, sizes: Readonly<Record<string, number>>): CollectionSpec {
  const spec = readCollectionSpec(path);
  const t = settings.timeouts;
  spec.constants
    .set("dp_host_routing_bpf", settings.hostRouting === "bpf" ? 1 : 0)
    .set("dp_trace_enabled", settings.trace ? 1 : 0)
    .set("dp_enable_ipsec", settings.encryption === "ipsec" ? 1 : 0);
  if (t.syn !== undefined) spec.constants.set("dp_ct_timeout_syn", t.syn);
  if (t.tcp !== undefined) spec.constants.set("dp_ct_timeout_tcp", t.tcp);
  if (t.close !== undefined) spec.constants.set("dp_ct_timeout_close", t.close);
  if (t.any !== undefined) spec.constants.set("dp_ct_timeout_any", t.any);
  const maps = new Map(
    [...spec.maps].map(([name, m]) => {
      const size = sizes[name];
      return [name, size === undefined ? m : { ...m, spec: { ...m.spec, maxEntries: size } }] as const;
    }),
  );
  return { ...spec, maps };
}

/**
 * Maps that hold only counters: a pinned one whose type or sizes differ
 * from the objects' (left by a dp with another layout) is replaced by a
 * new one instead of failing the load. Every other map must fit.
 */
const REPLACEABLE: ReadonlySet<string> = new Set(["dp_metrics", "dp_events_lost"]);

function sameShape(
  m: BpfMap,
  spec: { readonly type: string; readonly keySize: number; readonly valueSize: number },
): boolean {
  return m.type === spec.type && m.keySize === spec.keySize && m.valueSize === spec.valueSize;
}

function openPinned(path: string): BpfMap | undefined {
  try {
    return openPinnedMap(path);
  } catch (err) {
    if (err instanceof SyscallError && err.errno === ENOENT) return undefined;
    throw err;
  }
}

/**
 * The loaded datapath: the three programs, typed views of the shared maps
 * and the policy maps of endpoints. `close()` closes the handles; pinned
 * maps, and whatever holds the programs (attachments), stay.
 */
export class LoadedDatapath {
  /** `from_container`. */
  readonly fromContainer: BpfProgram;
  /** `to_container`. */
  readonly toContainer: BpfProgram;
  /** `from_netdev`. */
  readonly fromNetdev: BpfProgram;
  /** `dp_endpoints`. */
  readonly endpoints: HashMap<DpEndpointKey, DpEndpointInfo>;
  /** `dp_ipcache`. */
  readonly ipcache: DeletableMap<DpIpcacheKey, DpIpcacheInfo>;
  /** `dp_encrypt`: remote node id → its key (SPI). */
  readonly encrypt: HashMap<number, DpEncryptInfo>;
  /** `dp_policy`: endpoint id → policy map id. */
  readonly policy: HashOfMaps<number>;
  /** `dp_ct_tcp`. */
  readonly ctTcp: HashMap<DpTuple, DpCtEntry>;
  /** `dp_ct_any`. */
  readonly ctAny: HashMap<DpTuple, DpCtEntry>;
  /** `dp_frag`. */
  readonly frag: LruHashMap<DpFragKey, DpFragPorts>;
  /** `dp_metrics`. */
  readonly metrics: PerCpuArrayMap<DpMetricsValue>;
  /** `dp_events_lost`. */
  readonly eventsLost: PerCpuArrayMap<bigint>;
  /** `dp_events`, decoded as `struct dp_event`. */
  readonly events: RingBuffer<DpEvent>;
  /** The raw shared maps by name (what the other objects were given). */
  readonly maps: ReadonlyMap<string, BpfMap>;
  /** Which maps were taken from the pin directory rather than created. */
  readonly reused: readonly string[];
  readonly #collections: Collection[];
  readonly #innerSpec: MapSpec;
  readonly #policySize: number;
  readonly #inner = new Map<number, PolicyMap>();
  readonly #owned: readonly BpfMap[];

  /**
   * Wraps loaded collections.
   *
   * @internal Made by {@link loadDatapath}.
   * @param collections from_container, to_container, from_netdev.
   * @param innerSpec The policy map template.
   * @param policySize The policy map size.
   * @param reused The maps taken from pins.
   * @param owned Handles of pinned maps the collections were given (closed with this).
   */
  constructor(
    collections: [Collection, Collection, Collection],
    innerSpec: MapSpec,
    policySize: number,
    reused: string[],
    owned: BpfMap[],
  ) {
    this.#owned = owned;
    const [from, to, netdev] = collections;
    this.#collections = collections;
    this.#innerSpec = innerSpec;
    this.#policySize = policySize;
    this.reused = reused;
    const b = bind(from);
    this.fromContainer = b.programs.from_container;
    this.toContainer = to.program("to_container");
    this.fromNetdev = netdev.program("from_netdev");
    this.endpoints = b.maps.dp_endpoints;
    this.ctTcp = b.maps.dp_ct_tcp;
    this.ctAny = b.maps.dp_ct_any;
    this.frag = b.maps.dp_frag;
    this.metrics = b.maps.dp_metrics;
    this.eventsLost = b.maps.dp_events_lost;
    this.ipcache = new DeletableMap(b.maps.dp_ipcache, DpIpcacheKey, DpIpcacheInfo, {
      kind: { className: "Ipcache", types: ["lpmTrie"] },
    });
    this.encrypt = b.maps.dp_encrypt;
    this.policy = new HashOfMaps(from.map("dp_policy"), u32);
    this.events = new RingBuffer(from.map("dp_events"), DpEvent);
    this.maps = new Map([...from.maps].filter(([name]) => name.startsWith("dp_")));
  }

  /** The `max_entries` of new policy maps. */
  get policyMapSize(): number {
    return this.#policySize;
  }

  /**
   * The policy map of an endpoint: the one `dp_policy` holds, else a new
   * one (stored into `dp_policy` when `create`).
   *
   * @param endpointId The endpoint id.
   * @param create Whether to create a missing map.
   * @returns The map, or undefined when missing and not created.
   */
  policyMap(endpointId: number, create: boolean): PolicyMap | undefined {
    let inner = this.#inner.get(endpointId);
    if (inner !== undefined) return inner;
    const id = this.policy.get(endpointId);
    let map: BpfMap;
    if (id !== undefined) map = mapById(id);
    else if (create)
      map = createMap({ ...this.#innerSpec, name: `dp_pol_${endpointId}`, maxEntries: this.#policySize });
    else return undefined;
    inner = new DeletableMap(map, DpPolicyKey, DpPolicyValue, { kind: { className: "PolicyMap", types: ["lpmTrie"] } });
    if (id === undefined) this.policy.set(endpointId, inner);
    this.#inner.set(endpointId, inner);
    return inner;
  }

  /**
   * Removes an endpoint's policy map from `dp_policy` and closes it.
   *
   * @param endpointId The endpoint id.
   */
  dropPolicyMap(endpointId: number): void {
    this.policy.delete(endpointId);
    this.#inner.get(endpointId)?.close();
    this.#inner.delete(endpointId);
  }

  /** Unmaps the ring buffer and closes every handle. */
  close(): void {
    this.events.close();
    for (const inner of this.#inner.values()) inner.close();
    this.#inner.clear();
    for (const c of [...this.#collections].reverse()) c.close();
    for (const m of this.#owned) m.close();
  }

  /** Same as {@link LoadedDatapath.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Loads the three datapath objects over one set of maps.
 *
 * @param settings The `.rodata` settings.
 * @param options Sizes, pin directory, object directory.
 * @returns The loaded datapath.
 * @throws {TypeError} When the objects lack the policy map template.
 * @throws {MapCompatibilityError} When a pinned map does not fit the objects.
 */
export function loadDatapath(settings: DatapathSettings, options: DatapathLoadOptions = {}): LoadedDatapath {
  const dir = options.objectDir ?? DEFAULT_OBJECT_DIR;
  const sizes: Record<string, number> = { ...options.maxEntries };
  const first = readCollectionSpec(`${dir}/from_container.o`);
  const pinned: Record<string, BpfMap> = {};
  const reused: string[] = [];
  if (options.pinDir !== undefined) {
    for (const name of first.maps.keys()) {
      if (!name.startsWith("dp_")) continue;
      const path = `${options.pinDir}/${name}`;
      const m = openPinned(path);
      if (m === undefined) continue;
      const want = first.maps.get(name)?.spec;
      if (REPLACEABLE.has(name) && want !== undefined && !sameShape(m, want)) {
        // Counters only, from another layout (an older dp): start them again.
        m.close();
        unpin(path);
        continue;
      }
      pinned[name] = m;
      reused.push(name);
      sizes[name] = m.maxEntries;
    }
  }
  const close = (): void => {
    for (const m of Object.values(pinned)) m.close();
  };
  const spec = prepare(`${dir}/from_container.o`, settings, sizes);
  const innerSpec = spec.maps.get("dp_policy")?.spec.innerMap;
  if (innerSpec === undefined) {
    close();
    throw new TypeError("Invalid datapath object: dp_policy has no inner map");
  }
  const loaded: Collection[] = [];
  try {
    const from = loadCollection(spec, { maps: pinned });
    loaded.push(from);
    const shared = Object.fromEntries([...from.maps].filter(([name]) => name.startsWith("dp_")));
    if (options.pinDir !== undefined) {
      for (const [name, map] of Object.entries(shared))
        if (pinned[name] === undefined) map.pin(`${options.pinDir}/${name}`);
    }
    loaded.push(loadCollection(prepare(`${dir}/to_container.o`, settings, sizes), { maps: shared }));
    loaded.push(loadCollection(prepare(`${dir}/from_netdev.o`, settings, sizes), { maps: shared }));
    // Collections do not own maps they were given: the datapath closes the pinned ones.
    return new LoadedDatapath(
      loaded as [Collection, Collection, Collection],
      innerSpec,
      options.policyMapSize ?? innerSpec.maxEntries,
      reused,
      Object.values(pinned),
    );
  } catch (err) {
    for (const c of loaded.reverse()) c.close();
    close();
    throw err;
  }
}
