import {
  type BpfMap,
  currentNetns,
  hasHelper,
  hasTcx,
  type Netns,
  openNetns,
  parseCidr,
  parseIp,
  parseMac,
  SyscallError,
  unpin,
} from "@dp/core";
import { attachTc, type Link, type Ledger, type LedgerEntry, netnsInode, openLedger, reconcile } from "@dp/hooks";
import { openRouting, type Routing } from "@dp/routing";
import type { SockmapPolicy } from "@dp/sockmap";
import type { DpPolicyKey, DpPolicyValue } from "./_gen/datapath.ts";
import { addr16 } from "./_addr.ts";
import { loadDatapath, type LoadedDatapath } from "./_load.ts";
import {
  checkNodeId,
  checkSpi,
  type EncryptionStatus,
  type NodeKey,
  readNodeKeys,
  xfrmErrors,
} from "./encryption/encryption.ts";
import { openStateStore, type StateStore } from "./_state_store.ts";
import type { ConntrackEntry } from "./conntrack/entry.ts";
import type { ConntrackFilter } from "./conntrack/filter.ts";
import { type ConntrackFlushResult, flushConntrack } from "./conntrack/flush.ts";
import type { ConntrackGcResult } from "./conntrack/gc.ts";
import { ConntrackGcScheduler, type ConntrackGcSchedulerOptions } from "./conntrack/gc_scheduler.ts";
import { listConntrack } from "./conntrack/list.ts";
import type { ConntrackMaps } from "./conntrack/maps.ts";
import { conntrackTimeoutConstants, type ConntrackTimeouts } from "./conntrack/timeouts.ts";
import type { MonitorEvent } from "./monitor/event.ts";
import { monitor, type MonitorOptions } from "./monitor/monitor.ts";
import { type Endpoint, EndpointError, type EndpointSpec } from "./endpoint/endpoint.ts";
import { findExisting, releaseExisting, unwireEndpoint, wireEndpoint } from "./endpoint/_wire.ts";
import type { IdentityAllocator } from "./identity/allocator.ts";
import { CLUSTER_IDENTITY_MIN } from "./identity/identity.ts";
import { createLocalIdentityAllocator } from "./identity/local_allocator.ts";
import { Ipcache } from "./ipcache/ipcache.ts";
import { type NodeCounter, type PolicyMapEntry, readPolicyMap, sumMetrics } from "./map_entries.ts";
import { LabelSet } from "./labels/label_set.ts";
import { type MapSizeOptions, type MapSizes, resolveMapSizes } from "./map_sizes.ts";
import { createPolicyEngine, type EndpointPolicyDiff, type PolicyEngine } from "./policy/engine.ts";
import type { PolicyEntry } from "./policy/entry.ts";
import type { PolicyRule } from "./policy/rule.ts";

const E2BIG = 7;
const ENOSPC = 28;
const DP_EP_F_INGRESS_ENFORCED = 1;
const DP_EP_F_EGRESS_ENFORCED = 2;
const HOST_IDENTITY = 1;
const WORLD_IDENTITY = 2;
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;

/**
 * Options of {@link openNode}.
 *
 * @example A node in a namespace, BPF host routing when the kernel can
 * ```ts no-run
 * import type { NodeOptions } from "@dp/datapath";
 * const options: NodeOptions = {
 *   stateDir: "/sys/fs/bpf/dp-node1",
 *   netns: "node1",
 *   router: { ipv4: "10.0.0.1", ipv6: "fd00::1" },
 *   uplink: "eth0",
 *   mapSizes: { "bpf-ct-global-tcp-max": 262144 },
 * };
 * ```
 */
export interface NodeOptions {
  /** A directory on bpffs (such as `/sys/fs/bpf/dp`): the maps, the attachment ledger and the endpoint records live there. */
  readonly stateDir: string;
  /**
   * The node's network namespace: a handle, a name under /run/netns or a path.
   *
   * @default the calling thread's
   */
  readonly netns?: Netns | string;
  /**
   * `"bpf"`: pod traffic is delivered by the programs (`bpf_redirect_peer`,
   * `bpf_redirect_neigh` after a FIB lookup); `"legacy"`: through the host
   * stack; `"auto"`: bpf when the kernel has both helpers.
   *
   * @default "auto"
   */
  readonly hostRouting?: "bpf" | "legacy" | "auto";
  /** The router addresses pods use as their gateway (on every host-side veth). */
  readonly router: {
    /** The IPv4 address pods route through, put on every host-side veth as a /32. */
    readonly ipv4: string;
    /** The IPv6 address pods route through (a /128 on every host-side veth); without it, endpoints get no IPv6 address. */
    readonly ipv6?: string;
  };
  /**
   * How programs are attached at tc: `"tcx"` links (Linux 6.6+, pinned in
   * the ledger), `"netlink"` cls_bpf filters on a clsact qdisc (recorded
   * in the ledger; what `tc filter show` and older `bpftool net` list),
   * or `"auto"`: tcx when the kernel has it.
   *
   * @default "auto"
   */
  readonly attachMode?: "tcx" | "netlink" | "auto";
  /** The uplink device; with BPF host routing, `from_netdev` is attached to its tc ingress. */
  readonly uplink?: string;
  /** Map sizes (Cilium's keys). */
  readonly mapSizes?: MapSizeOptions;
  /** Conntrack lifetimes in seconds. */
  readonly ctTimeouts?: ConntrackTimeouts;
  /**
   * The identity allocator.
   *
   * @default a new local allocator
   */
  readonly allocator?: IdentityAllocator;
  /**
   * Conntrack garbage collection: `false` to run none (call
   * {@link Node.gcConntrack} yourself), else the scheduler's interval
   * options; it adapts its interval to how much each pass deleted.
   *
   * @default {} (Cilium's intervals)
   */
  readonly ctGc?: false | Pick<ConntrackGcSchedulerOptions, "interval" | "minInterval" | "maxInterval">;
  /**
   * Trace events for forwarded packets.
   *
   * @default false
   */
  readonly trace?: boolean;
  /**
   * The directory holding the datapath objects (from_container.o, to_container.o, from_netdev.o).
   *
   * @default the repository's bpf/build/datapath
   */
  readonly objectDir?: string;
  /**
   * `"ipsec"`: what local pods send to a remote node's pods (ipcache
   * prefixes with a `nodeId`) is marked for encryption with the key set
   * for that node ({@link Node.setNodeKey}) and handed to the host stack,
   * whose xfrm states and policies (`@dp/ipsec`) encrypt it; a remote
   * node without a key gets nothing: its packets are dropped
   * (`encrypt-key-missing`). Decrypted packets are policed with the
   * identity of their inner source address, as any other.
   *
   * @default "disabled"
   */
  readonly encryption?: "ipsec" | "disabled";
}

/**
 * The fill level of a map.
 *
 * @example A nearly empty ipcache
 * ```ts no-run
 * import type { MapFill } from "@dp/datapath";
 * const fill: MapFill = { name: "dp_ipcache", entries: 6, maxEntries: 524288 };
 * ```
 */
export interface MapFill {
  /** The map (`dp_policy/<endpoint id>` for policy maps). */
  readonly name: string;
  /** Entries in it now. */
  readonly entries: number;
  /** Its capacity. */
  readonly maxEntries: number;
}

/**
 * What {@link Node.status} returns.
 *
 * @example Reading the mode
 * ```ts no-run
 * import type { Node } from "@dp/datapath";
 * declare const node: Node;
 * const { hostRouting } = node.status();
 * console.log(`${hostRouting.mode}: ${hostRouting.reason}`);
 * ```
 */
export interface NodeStatus {
  /** The host routing mode and why it was chosen. */
  readonly hostRouting: {
    /** The mode in use. */
    readonly mode: "bpf" | "legacy";
    /** Why: the option asked for it, or what the kernel probe found. */
    readonly reason: string;
  };
  /** Whether this process adopted the maps of a previous one (and how many endpoints). */
  readonly adopted: {
    /** The maps opened from the state directory instead of created. */
    readonly maps: readonly string[];
    /** The endpoints restored from the state directory. */
    readonly endpoints: number;
    /** The attachments taken over from the ledger. */
    readonly attachments: number;
  };
  /** The shared maps and each endpoint's policy map. */
  readonly maps: readonly MapFill[];
  /** The endpoints. */
  readonly endpoints: readonly Endpoint[];
  /** The identities in use by endpoints and CIDR rules. */
  readonly identities: readonly {
    /** The numeric identity. */
    readonly id: number;
    /** Its labels. */
    readonly labels: readonly string[];
  }[];
  /** The attachments in the ledger. */
  readonly attachments: readonly {
    /** Where: the interface and hook. */
    readonly name: string;
    /** How it is held: `"tcx"` or `"tc"` (netlink). */
    readonly kind: string;
    /** The attached program's kernel id. */
    readonly programId: number;
  }[];
  /** Counters. */
  readonly counters: {
    /** `dp_metrics`, by reason and direction. */
    readonly metrics: readonly NodeCounter[];
    /** Events the ring buffer had no room for. */
    readonly lostEvents: bigint;
    /** Policy entries a full policy map refused (each is also flagged on its endpoint). */
    readonly policyMapFull: number;
  };
  /** Encryption: the mode, the key per remote node and the xfrm error counters. */
  readonly encryption: EncryptionStatus;
  /** Conntrack garbage collection: whether it runs, its current interval (ms) and last pass. */
  readonly conntrackGc: {
    /** Whether the collector is scheduled. */
    readonly running: boolean;
    /** The current interval between passes, in milliseconds. */
    readonly interval: number;
    /** What the last pass did; `undefined` before the first. */
    readonly lastResult: ConntrackGcResult | undefined;
  };
}

interface EpState {
  readonly id: number;
  identity: number;
  readonly labels: string[];
  readonly netns: string;
  readonly ifname: string;
  readonly hostIfname: string;
  readonly hostIfindex: number;
  readonly ipv4: string;
  readonly ipv6: string | undefined;
  readonly mac: string;
  readonly hostMac: string;
  /** Chained mode: another plugin's veth (see {@link EndpointSpec.existing}). */
  readonly existing?: boolean;
  /** Chained mode: the sysctls the node turned on for the host side (turned off on removal). */
  readonly changed?: readonly string[];
  flags: number;
  policyMapFull: boolean;
  live: boolean;
}

type EpRecord = Omit<EpState, "flags" | "policyMapFull" | "live" | "identity">;

function isFull(err: unknown): boolean {
  return err instanceof SyscallError && (err.errno === E2BIG || err.errno === ENOSPC);
}

function policyKey(e: PolicyEntry): DpPolicyKey {
  return {
    prefixlen: e.prefixLength,
    identity: e.identity,
    egress: e.egress ? 1 : 0,
    protocol: e.protocol,
    dport: e.port,
  };
}

function policyValue(e: PolicyEntry): DpPolicyValue {
  return { flags: e.deny ? 1 : 0, pad0: 0, proxy_port: e.proxyPort, rule_cookie: e.ruleCookie, packets: 0n, bytes: 0n };
}

function keyText(k: DpPolicyKey): string {
  return `${k.prefixlen}/${k.identity}/${k.egress}/${k.protocol}/${k.dport}`;
}

function hostPrefix(ip: string): string {
  return `${ip}/${parseIp(ip).family === 4 ? 32 : 128}`;
}

function ledgerName(id: number | "uplink", direction: "ingress" | "egress"): string {
  return id === "uplink" ? `uplink-${direction}` : `ep${id}-${direction}`;
}

/** Chooses the mode: the option, or for "auto" what the kernel's helpers allow. */
function chooseMode(option: "bpf" | "legacy" | "auto"): { mode: "bpf" | "legacy"; reason: string } {
  if (option !== "auto") return { mode: option, reason: `hostRouting: "${option}" was asked for` };
  const peer = hasHelper("schedCls", "redirectPeer");
  const neigh = hasHelper("schedCls", "redirectNeigh");
  if (peer && neigh) return { mode: "bpf", reason: "auto: the kernel has bpf_redirect_peer and bpf_redirect_neigh" };
  const missing = [peer ? undefined : "bpf_redirect_peer", neigh ? undefined : "bpf_redirect_neigh"].filter(
    (x) => x !== undefined,
  );
  return { mode: "legacy", reason: `auto: the kernel lacks ${missing.join(" and ")}` };
}

/** What {@link openNode} hands over to a new node to finish opening it. */
interface StartOptions {
  readonly links: Map<string, Link>;
  readonly reused: readonly string[];
  readonly uplink: string | undefined;
  readonly gc: false | Pick<ConntrackGcSchedulerOptions, "interval" | "minInterval" | "maxInterval">;
}

/** Adopts what the state directory holds, seeds the ipcache, starts the collector (set in Node's static block). */
let startNode: (node: Node, options: StartOptions) => Promise<void>;

/**
 * A node of the datapath: the programs loaded over maps pinned in a state
 * directory, attached to the host-side veths of its endpoints (and in BPF
 * host routing mode to the uplink), the ipcache, the policy maps kept in
 * step with a {@link PolicyEngine}, the identities of an
 * {@link IdentityAllocator}. Made by {@link openNode}; a new process
 * calling `openNode` on the same state directory takes it over without
 * dropping established connections.
 *
 * @example Two pods and a rule
 * ```ts no-run
 * import { openNode } from "@dp/datapath";
 * await using node = await openNode({ stateDir: "/sys/fs/bpf/dp", router: { ipv4: "10.0.0.1" } });
 * const web = await node.addEndpoint({ netns: "web", ipv4: "10.0.1.1", labels: ["k8s:app=web"] });
 * await node.addEndpoint({ netns: "client", ipv4: "10.0.1.2", labels: ["k8s:app=client"] });
 * await node.setRules([{ name: "web", endpointSelector: { matchLabels: { app: "web" } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: "client" } }], toPorts: [{ ports: [{ port: "80", protocol: "TCP" }] }] }] }]);
 * console.log(node.status().endpoints.find((e) => e.id === web.id)?.enforcement); // { ingress: true, egress: false }
 * ```
 */
export class Node {
  /** The state directory. */
  readonly stateDir: string;
  /** The policy engine the maps follow (read it with `explain()`, `endpointPolicy()`; change rules through the node). */
  readonly engine: PolicyEngine;
  /** The identity allocator. */
  readonly allocator: IdentityAllocator;
  /** The ipcache. */
  readonly ipcache: Ipcache;
  /** The resolved map sizes of maps this node created (pinned maps keep theirs). */
  readonly mapSizes: MapSizes;
  readonly #netns: Netns;
  readonly #ownsNetns: boolean;
  readonly #rt: Routing;
  readonly #dp: LoadedDatapath;
  readonly #ledger: Ledger;
  readonly #store: StateStore;
  readonly #mode: { mode: "bpf" | "legacy"; reason: string };
  readonly #router: { ipv4: string; ipv6: string | undefined };
  readonly #endpoints = new Map<number, EpState>();
  readonly #links = new Map<string, Link>();
  readonly #cidrIdentities = new Map<string, number>();
  readonly #ownsAllocator: boolean;
  readonly #attachMode: "tcx" | "netlink";
  readonly #encryption: "ipsec" | "disabled";
  #policyMapFull = 0;
  #adopted: { maps: readonly string[]; endpoints: number; attachments: number } = {
    maps: [],
    endpoints: 0,
    attachments: 0,
  };
  #closed = false;
  #queue: Promise<unknown> = Promise.resolve();
  #gc: ConntrackGcScheduler | undefined;

  /**
   * Assembles a node.
   *
   * @internal Use {@link openNode}.
   * @param parts What openNode opened.
   */
  constructor(parts: {
    stateDir: string;
    netns: Netns;
    ownsNetns: boolean;
    rt: Routing;
    dp: LoadedDatapath;
    ledger: Ledger;
    store: StateStore;
    mode: { mode: "bpf" | "legacy"; reason: string };
    router: { ipv4: string; ipv6: string | undefined };
    allocator: IdentityAllocator;
    ownsAllocator: boolean;
    sizes: MapSizes;
    attachMode: "tcx" | "netlink";
    encryption: "ipsec" | "disabled";
  }) {
    this.#attachMode = parts.attachMode;
    this.#encryption = parts.encryption;
    this.stateDir = parts.stateDir;
    this.#netns = parts.netns;
    this.#ownsNetns = parts.ownsNetns;
    this.#rt = parts.rt;
    this.#dp = parts.dp;
    this.#ledger = parts.ledger;
    this.#store = parts.store;
    this.#mode = parts.mode;
    this.#router = parts.router;
    this.allocator = parts.allocator;
    this.#ownsAllocator = parts.ownsAllocator;
    this.mapSizes = parts.sizes;
    this.ipcache = new Ipcache(parts.dp.ipcache);
    this.engine = createPolicyEngine({ allocator: parts.allocator });
    this.engine.subscribe((diffs) => this.#applyDiffs(diffs));
  }

  /** How programs are attached at tc. */
  get attachMode(): "tcx" | "netlink" {
    return this.#attachMode;
  }

  /** The host routing mode in use. */
  get hostRouting(): "bpf" | "legacy" {
    return this.#mode.mode;
  }

  /** The encryption the programs were loaded with. */
  get encryption(): "ipsec" | "disabled" {
    return this.#encryption;
  }

  /** The node's network namespace (owned by the node: do not close it). */
  get netns(): Netns {
    return this.#netns;
  }

  /**
   * The maps and programs, for tools that read them directly (the monitor, conntrack garbage collection).
   *
   * @internal No semver promise.
   * @returns The loaded datapath.
   */
  datapath(): LoadedDatapath {
    return this.#dp;
  }

  /**
   * The node's maps that `@dp/sockmap` re-checks its policy with: passed
   * as `accelerate({ policy })`, a message between local sockets is
   * redirected only if this node's policy allows the connection (looked
   * up per message, so a rule change applies to the next one); otherwise
   * it takes the normal path through the node's tc programs. The handles
   * are the node's; the loaded sk_msg program holds its own references.
   *
   * @returns The node's `dp_endpoints`, `dp_ipcache` and `dp_policy`.
   * @throws {TypeError} When the node is closed.
   * @example Accelerating the pods' connections under the node's policy
   * ```ts no-run
   * import { openNode } from "@dp/datapath";
   * import { accelerate } from "@dp/sockmap";
   *
   * await using node = await openNode({ stateDir: "/sys/fs/bpf/dp", router: { ipv4: "10.0.0.1" } });
   * using acc = accelerate({ cgroup: "/sys/fs/cgroup/pods", local: ["10.0.1.0/24"], policy: node.sockmapPolicy() });
   * console.log(acc.stats().fallback.policy); // messages the policy sent down the normal path
   * ```
   */
  sockmapPolicy(): SockmapPolicy {
    this.#check("hand over the policy maps");
    const map = (name: string): BpfMap => {
      const m = this.#dp.maps.get(name);
      if (m === undefined) throw new TypeError(`Cannot hand over the policy maps: the datapath has no ${name}`);
      return m;
    };
    return { endpoints: map("dp_endpoints"), ipcache: map("dp_ipcache"), policy: map("dp_policy") };
  }

  // --- policy ---------------------------------------------------------------

  #applyDiffs(diffs: readonly EndpointPolicyDiff[]): void {
    for (const d of diffs) {
      const ep = this.#endpoints.get(d.endpointId);
      if (ep === undefined) continue;
      const map = this.#dp.policyMap(d.endpointId, true);
      if (map === undefined) continue;
      for (const e of d.added) {
        try {
          map.set(policyKey(e), policyValue(e));
        } catch (err) {
          if (!isFull(err)) throw err;
          this.#policyMapFull++;
          ep.policyMapFull = true;
        }
      }
      for (const e of d.removed) map.delete(policyKey(e));
      ep.flags =
        (d.enforcement.ingress ? DP_EP_F_INGRESS_ENFORCED : 0) | (d.enforcement.egress ? DP_EP_F_EGRESS_ENFORCED : 0);
      if (ep.live) this.#writeEndpoint(ep);
    }
  }

  /** Makes an endpoint's policy map exactly what the engine holds (after a restart). */
  #syncPolicyMap(ep: EpState): void {
    const policy = this.engine.endpointPolicy(ep.id);
    const map = this.#dp.policyMap(ep.id, true);
    if (policy === undefined || map === undefined) return;
    const want = new Map<string, PolicyEntry>();
    for (const e of [...policy.ingress.entries, ...policy.egress.entries]) want.set(keyText(policyKey(e)), e);
    const stale: DpPolicyKey[] = [];
    const have = new Set<string>();
    for (const [k, v] of map.entries()) {
      const text = keyText(k);
      const e = want.get(text);
      if (e === undefined) stale.push(k);
      else if ((v.flags & 1) !== (e.deny ? 1 : 0) || v.rule_cookie !== e.ruleCookie || v.proxy_port !== e.proxyPort)
        continue;
      else have.add(text);
    }
    for (const [text, e] of want) {
      if (have.has(text)) continue;
      try {
        map.set(policyKey(e), policyValue(e));
      } catch (err) {
        if (!isFull(err)) throw err;
        this.#policyMapFull++;
        ep.policyMapFull = true;
      }
    }
    for (const k of stale) map.delete(k);
    ep.flags =
      (policy.ingress.enforced ? DP_EP_F_INGRESS_ENFORCED : 0) | (policy.egress.enforced ? DP_EP_F_EGRESS_ENFORCED : 0);
  }

  /** Allocates CIDR identities and ipcache entries for the prefixes the rules use; releases the others. */
  async #syncCidrs(): Promise<void> {
    const want = new Set(this.engine.referencedCidrs().filter((c) => parseCidr(c).prefixLength > 0));
    for (const cidr of want) {
      if (this.#cidrIdentities.has(cidr)) continue;
      const identity = await this.allocator.allocateCidr(cidr);
      this.#cidrIdentities.set(cidr, identity.id);
      this.ipcache.set(cidr, identity.id);
    }
    for (const [cidr, id] of [...this.#cidrIdentities]) {
      if (want.has(cidr)) continue;
      this.#cidrIdentities.delete(cidr);
      // An endpoint or node address with the same prefix keeps its own entry.
      if (this.ipcache.get(cidr) === id) this.ipcache.delete(cidr);
      await this.allocator.release(id);
    }
  }

  /**
   * Replaces the policy rules. Invalid rules change nothing. The resolved
   * entries are written into the endpoints' policy maps (new entries
   * first, then the removed ones deleted), CIDR rules get CIDR identities
   * and ipcache entries, and the rules are recorded in the state
   * directory for a restarted process.
   *
   * @param rules The rules.
   * @returns Resolves when the maps are written.
   * @throws {PolicyValidationError} When a rule is invalid (naming the rule and field); nothing changed.
   */
  setRules(rules: readonly PolicyRule[]): Promise<void> {
    this.#check("set rules");
    return this.#serial(async () => {
      this.engine.setRules(rules);
      await this.#afterRules();
    });
  }

  /**
   * Adds a rule (or replaces the rule of the same name).
   *
   * @param rule The rule.
   * @returns Resolves when the maps are written.
   * @throws {PolicyValidationError} When the rule is invalid; nothing changed.
   */
  addRule(rule: PolicyRule): Promise<void> {
    this.#check("add rule");
    return this.#serial(async () => {
      this.engine.addRule(rule);
      await this.#afterRules();
    });
  }

  /**
   * Deletes a rule by name.
   *
   * @param name The rule's name.
   * @returns Resolves when the maps are written.
   * @throws {RangeError} When no rule has this name.
   */
  deleteRule(name: string): Promise<void> {
    this.#check("delete rule");
    return this.#serial(async () => {
      this.engine.deleteRule(name);
      await this.#afterRules();
    });
  }

  async #afterRules(): Promise<void> {
    this.#store.set("rules", this.engine.rules());
    await this.#syncCidrs();
  }

  // --- endpoints ------------------------------------------------------------

  #writeEndpoint(ep: EpState): void {
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (ip === undefined) continue;
      const { family, addr } = addr16(ip);
      this.#dp.endpoints.set(
        { addr, family, pad: new Uint8Array(3) },
        {
          ifindex: ep.hostIfindex,
          id: ep.id,
          flags: ep.flags,
          identity: ep.identity,
          mac: parseMac(ep.mac),
          node_mac: parseMac(ep.hostMac),
        },
      );
      this.ipcache.set(hostPrefix(ip), ep.identity);
    }
  }

  #unwriteEndpoint(ep: EpState): void {
    for (const ip of [ep.ipv4, ep.ipv6]) {
      if (ip === undefined) continue;
      const { family, addr } = addr16(ip);
      this.#dp.endpoints.delete({ addr, family, pad: new Uint8Array(3) });
      if (this.ipcache.get(hostPrefix(ip)) === ep.identity) this.ipcache.delete(hostPrefix(ip));
    }
  }

  #attach(id: number | "uplink", ifindex: number, direction: "ingress" | "egress"): void {
    const name = ledgerName(id, direction);
    const program =
      id === "uplink" ? this.#dp.fromNetdev : direction === "ingress" ? this.#dp.fromContainer : this.#dp.toContainer;
    const existing = this.#links.get(name);
    if (existing !== undefined && existing.attached) {
      if ((existing.kind === "tcx") === (this.#attachMode === "tcx")) {
        existing.update(program);
        return;
      }
      // Adopted in the other attach mode: attach anew, then remove the old one.
      this.#links.delete(name);
      this.#attach(id, ifindex, direction);
      existing.detach();
      return;
    }
    if (this.#attachMode === "netlink") {
      // The ledger records the filter (pending before the request, committed after).
      this.#links.set(
        name,
        attachTc(ifindex, program, { direction, mode: "netlink", netns: this.#netns, ledger: this.#ledger }),
      );
      return;
    }
    const link = attachTc(ifindex, program, { direction, mode: "tcx", netns: this.#netns });
    try {
      this.#ledger.recordLink(name, link);
    } catch (err) {
      link.detach();
      throw err;
    }
    this.#links.set(name, link);
  }

  #detach(name: string): void {
    const link = this.#links.get(name);
    this.#links.delete(name);
    if (link !== undefined) link.detach();
    // A link of a deleted interface is gone from the kernel already: drop its entry too.
    for (const e of this.#ledger.entries()) if (e.kind === "link" && e.name === name) this.#ledger.forget(e);
  }

  #nextId(): number {
    for (let id = 1; id <= 0xffff; id++) if (!this.#endpoints.has(id)) return id;
    throw new RangeError("Cannot add endpoint: all 65535 endpoint ids are in use");
  }

  /**
   * Adds an endpoint: the veth pair with the peer (named `ifname`) inside
   * the pod's namespace, its addresses and routes via the router address,
   * the host-side router address and endpoint route, forwarding on the
   * host side, an identity for its labels, its policy map (filled from
   * the engine), its entries in the endpoint map and the ipcache, and
   * `from_container` / `to_container` on the host side's tc ingress and
   * egress (tcx links pinned in the ledger). Nothing is attached before
   * the maps are written. On failure everything done is undone.
   *
   * With `existing: true` (chained after another CNI plugin, like
   * Cilium's generic-veth chaining) the pod's `ifname` must already be a
   * veth with its peer in the node's namespace and the given addresses:
   * the peer becomes the host side and gets everything above except the
   * link, addresses and routes, which stay the other plugin's (its bridge
   * or routes carry the traffic the programs pass to the stack).
   *
   * @param spec The endpoint.
   * @returns The endpoint.
   * @throws {EndpointError} For invalid labels or addresses, an address in use, an unknown namespace or an interface name taken in the pod; nothing changed.
   * @throws {NetlinkError} When the kernel refuses a link, address or route.
   */
  addEndpoint(spec: EndpointSpec): Promise<Endpoint> {
    this.#check("add endpoint");
    return this.#serial(() => this.#addEndpoint(spec));
  }

  async #addEndpoint(spec: EndpointSpec): Promise<Endpoint> {
    const who = typeof spec?.ipv4 === "string" ? spec.ipv4 : "?";
    const fail = (
      field: "netns" | "ifname" | "ipv4" | "ipv6" | "labels" | "existing",
      problem: string,
      cause?: unknown,
    ): never => {
      throw new EndpointError("add", who, field, problem, cause === undefined ? undefined : { cause });
    };
    const ip = (field: "ipv4" | "ipv6", value: unknown, family: 4 | 6): string => {
      if (typeof value !== "string") return fail(field, "must be an address");
      let parsed;
      try {
        parsed = parseIp(value);
      } catch (err) {
        return fail(field, `is not an address: ${JSON.stringify(value)}`, err);
      }
      if (parsed.family !== family) fail(field, `is not an IPv${family} address: ${JSON.stringify(value)}`);
      const taken = [...this.#endpoints.values()].find((e) => e.ipv4 === value || e.ipv6 === value);
      if (taken !== undefined) fail(field, `${value} is endpoint ${taken.id}'s address`);
      if (value === this.#router.ipv4 || value === this.#router.ipv6) fail(field, `${value} is the router address`);
      return value;
    };
    const ipv4 = ip("ipv4", spec.ipv4, 4);
    const ipv6 = spec.ipv6 === undefined ? undefined : ip("ipv6", spec.ipv6, 6);
    const existing = spec.existing ?? false;
    if (typeof existing !== "boolean") fail("existing", `must be a boolean, got ${JSON.stringify(existing)}`);
    if (ipv6 !== undefined && this.#router.ipv6 === undefined && !existing)
      fail("ipv6", "needs a node with an IPv6 router address");
    const ifname = spec.ifname ?? "eth0";
    if (typeof ifname !== "string" || !IFNAME.test(ifname))
      fail("ifname", `must be 1-15 characters of [A-Za-z0-9_.-], got ${JSON.stringify(ifname)}`);
    let labels: LabelSet;
    try {
      labels = LabelSet.from(spec.labels);
    } catch (err) {
      return fail("labels", `are invalid: ${err instanceof Error ? err.message : String(err)}`, err);
    }
    if (labels.size === 0) fail("labels", "are empty");
    let podNetns: Netns;
    let ownsPodNetns = false;
    if (typeof spec.netns === "string") {
      try {
        podNetns = openNetns(spec.netns);
        ownsPodNetns = true;
      } catch (err) {
        return fail(
          "netns",
          `${JSON.stringify(spec.netns)} cannot be opened: ${err instanceof Error ? err.message : String(err)}`,
          err,
        );
      }
    } else if (
      typeof spec.netns === "object" &&
      spec.netns !== null &&
      typeof spec.netns.path === "string" &&
      !spec.netns.closed
    ) {
      podNetns = spec.netns;
    } else {
      return fail("netns", "must be a namespace handle, name or path");
    }
    try {
      // Chained mode: the other plugin's veth, checked before anything changes.
      const found = existing ? findExisting({ node: this.#rt, podNetns, ifname, ipv4, ipv6 }, who) : undefined;
      if (found === undefined) {
        using pod = openRouting({ netns: podNetns });
        if (pod.links.has(ifname)) fail("ifname", `${JSON.stringify(ifname)} exists in the pod's namespace`);
      } else {
        const taken = [...this.#endpoints.values()].find((e) => e.hostIfindex === found.hostIfindex);
        if (taken !== undefined) {
          releaseExisting(this.#rt, found.hostIfindex, found.hostIfname, found.changed);
          fail("ifname", `${JSON.stringify(ifname)} is endpoint ${taken.id}'s interface already`);
        }
      }
      const id = this.#nextId();
      let identity;
      try {
        identity = await this.allocator.allocate(labels);
      } catch (err) {
        if (found !== undefined) releaseExisting(this.#rt, found.hostIfindex, found.hostIfname, found.changed);
        throw err;
      }
      const hostIfname = found?.hostIfname ?? `lxc${id}`;
      let state: EpState | undefined;
      try {
        const wired =
          found ?? wireEndpoint({ node: this.#rt, podNetns, ifname, hostIfname, ipv4, ipv6, router: this.#router });
        state = {
          id,
          identity: identity.id,
          labels: labels.toStrings(),
          netns: podNetns.path,
          ifname,
          hostIfname,
          hostIfindex: wired.hostIfindex,
          ipv4,
          ipv6,
          mac: wired.mac,
          hostMac: wired.hostMac,
          ...(found === undefined ? {} : { existing: true, changed: found.changed }),
          flags: 0,
          policyMapFull: false,
          live: false,
        };
        this.#finishEndpoint(state);
        return this.#view(state);
      } catch (err) {
        if (state !== undefined) this.#teardown(state);
        else if (found !== undefined) releaseExisting(this.#rt, found.hostIfindex, found.hostIfname, found.changed);
        else {
          const host = this.#rt.links.get(hostIfname);
          if (host !== undefined) this.#rt.links.delete(host.index);
        }
        await this.allocator.release(identity.id);
        throw err;
      }
    } finally {
      if (ownsPodNetns) podNetns.close();
    }
  }

  /** Record, maps, engine and attachments of a wired endpoint (also after adoption). */
  #finishEndpoint(state: EpState): void {
    // The record first: a process dying from here on leaves an endpoint the next one adopts.
    const record: EpRecord = {
      id: state.id,
      labels: state.labels,
      netns: state.netns,
      ifname: state.ifname,
      hostIfname: state.hostIfname,
      hostIfindex: state.hostIfindex,
      ipv4: state.ipv4,
      ipv6: state.ipv6,
      mac: state.mac,
      hostMac: state.hostMac,
      ...(state.existing === true ? { existing: true, changed: state.changed ?? [] } : {}),
    };
    this.#store.set(`ep/${state.id}`, record);
    this.#endpoints.set(state.id, state);
    this.#dp.policyMap(state.id, true);
    this.engine.upsertEndpoint({ id: state.id, identity: state.identity, labels: state.labels });
    this.#syncPolicyMap(state);
    state.live = true;
    this.#writeEndpoint(state);
    this.#attach(state.id, state.hostIfindex, "ingress");
    this.#attach(state.id, state.hostIfindex, "egress");
  }

  /** Undoes an endpoint: attachments, map entries, policy map, engine, veth, record. Identity not released. */
  #teardown(ep: EpState): void {
    this.#detach(ledgerName(ep.id, "ingress"));
    this.#detach(ledgerName(ep.id, "egress"));
    ep.live = false;
    this.#unwriteEndpoint(ep);
    this.#endpoints.delete(ep.id);
    this.engine.removeEndpoint(ep.id);
    this.#dp.dropPolicyMap(ep.id);
    if (ep.existing === true) releaseExisting(this.#rt, ep.hostIfindex, ep.hostIfname, ep.changed ?? []);
    else unwireEndpoint(this.#rt, ep.hostIfindex, ep.hostIfname);
    for (const ip of [ep.ipv4, ep.ipv6]) if (ip !== undefined) flushConntrack(this.conntrackMaps, { address: ip });
    this.#store.delete(`ep/${ep.id}`);
  }

  /**
   * Removes an endpoint and exactly what {@link Node.addEndpoint} made:
   * attachments and their ledger entries, endpoint map and ipcache
   * entries, the policy map, the veth pair (with its addresses and
   * routes), the record, the conntrack entries of its addresses; its
   * identity is released. An `existing` endpoint's veth, addresses and
   * routes stay as the other plugin made them.
   *
   * @param id The endpoint id.
   * @returns Resolves when done.
   * @throws {EndpointError} When there is no such endpoint.
   */
  removeEndpoint(id: number): Promise<void> {
    this.#check("remove endpoint");
    return this.#serial(() => this.#removeEndpoint(id));
  }

  async #removeEndpoint(id: number): Promise<void> {
    const ep = this.#endpoints.get(id);
    if (ep === undefined) throw new EndpointError("remove", String(id), "id", "is no endpoint of this node");
    this.#teardown(ep);
    await this.allocator.release(ep.identity);
  }

  #view(ep: EpState): Endpoint {
    return {
      id: ep.id,
      identity: ep.identity,
      labels: [...ep.labels],
      netns: ep.netns,
      ifname: ep.ifname,
      hostIfname: ep.hostIfname,
      hostIfindex: ep.hostIfindex,
      ipv4: ep.ipv4,
      ipv6: ep.ipv6,
      mac: ep.mac,
      hostMac: ep.hostMac,
      enforcement: {
        ingress: (ep.flags & DP_EP_F_INGRESS_ENFORCED) !== 0,
        egress: (ep.flags & DP_EP_F_EGRESS_ENFORCED) !== 0,
      },
      policyMapFull: ep.policyMapFull,
      existing: ep.existing === true,
    };
  }

  /**
   * The endpoints, by id.
   *
   * @returns The endpoints.
   */
  endpoints(): Endpoint[] {
    return [...this.#endpoints.values()].sort((a, b) => a.id - b.id).map((ep) => this.#view(ep));
  }

  // --- encryption -----------------------------------------------------------

  /**
   * Sets the key towards a remote node: packets from local pods to that
   * node's pods (ipcache prefixes with its `nodeId`) get the encrypt mark
   * of this key id and node (`encryptMark(spi, nodeId)` of `@dp/ipsec`),
   * which the node's xfrm out policy for the node and key matches. Set the
   * new key once both nodes have its states ("the most recent key both
   * nodes have", `@dp/ipsec`'s `KeyRotation`).
   *
   * @param nodeId The remote node id, 1-65535.
   * @param spi The key id, 1-15.
   * @throws {TypeError} When the node was opened without `encryption: "ipsec"`, or an argument is not a number.
   * @throws {RangeError} When an id is out of range.
   * @throws {SyscallError} When the map refuses the entry.
   * @example Key 3 towards node 2
   * ```ts no-run
   * import { openNode } from "@dp/datapath";
   * await using node = await openNode({ stateDir: "/sys/fs/bpf/dp", router: { ipv4: "10.0.0.1" }, encryption: "ipsec" });
   * node.ipcache.set("10.2.0.0/24", 2, { nodeId: 2, tunnelEndpoint: "192.168.0.2" });
   * node.setNodeKey(2, 3);
   * console.log(node.nodeKeys()); // [{ nodeId: 2, spi: 3 }]
   * ```
   */
  setNodeKey(nodeId: number, spi: number): void {
    const what = "Cannot set node key";
    this.#check("set node key");
    checkNodeId(what, nodeId);
    checkSpi(what, spi);
    if (this.#encryption !== "ipsec")
      throw new TypeError(`${what}: the node was opened without encryption (open it with encryption: "ipsec")`);
    this.#dp.encrypt.set(nodeId, { spi, pad: new Uint8Array(3) });
  }

  /**
   * Removes the key towards a remote node: from then on packets to its
   * pods are dropped (`encrypt-key-missing`), never sent in clear text.
   *
   * @param nodeId The remote node id, 1-65535.
   * @returns Whether the node had a key.
   * @throws {TypeError} When the id is not a number.
   * @throws {RangeError} When the id is out of range.
   */
  deleteNodeKey(nodeId: number): boolean {
    this.#check("delete node key");
    checkNodeId("Cannot delete node key", nodeId);
    return this.#dp.encrypt.delete(nodeId);
  }

  /**
   * The key per remote node, as the datapath holds it.
   *
   * @returns The keys, by node id.
   */
  nodeKeys(): NodeKey[] {
    this.#check("list node keys");
    return readNodeKeys(this.#dp.encrypt);
  }

  // --- monitor and conntrack -----------------------------------------------

  /**
   * The datapath's drop, trace and policy-verdict events as they happen
   * (see the free function `monitor`). Give the node one reader at a time:
   * records are consumed.
   *
   * @param options The stop signal and filters (`types`, `endpoint`).
   * @returns The events.
   * @throws {TypeError} When a filter has the wrong type.
   */
  monitor(options: MonitorOptions = {}): AsyncIterable<MonitorEvent> {
    this.#check("monitor");
    return monitor(this.#dp.events, options);
  }

  /** The conntrack maps, for the functions of `conntrack/`. */
  get conntrackMaps(): ConntrackMaps {
    return { tcp: this.#dp.ctTcp, any: this.#dp.ctAny };
  }

  /**
   * The entries of an endpoint's policy map as the kernel holds them, with
   * the counters of the packets each matched (what `dp bpf policy get`
   * shows).
   *
   * @param id The endpoint id.
   * @returns The entries sorted by direction, identity, protocol and port; `undefined` for an endpoint without a policy map.
   * @example The entries of endpoint 1
   * ```ts no-run
   * import type { Node } from "@dp/datapath";
   * declare const node: Node;
   * for (const e of node.policyMapEntries(1) ?? []) console.log(e.egress ? "egress" : "ingress", e.identity, e.port, e.packets);
   * ```
   */
  policyMapEntries(id: number): PolicyMapEntry[] | undefined {
    const map = this.#dp.policyMap(id, false);
    return map === undefined ? undefined : readPolicyMap(map.entries());
  }

  /**
   * The identities in use by the endpoints and the CIDR rules (what
   * {@link Node.status} lists, without reading the maps).
   *
   * @returns The identities, by number.
   * @example The label sets in use
   * ```ts no-run
   * import type { Node } from "@dp/datapath";
   * declare const node: Node;
   * for (const { id, labels } of node.identities()) console.log(id, labels.join(","));
   * ```
   */
  identities(): NodeStatus["identities"] {
    const identities = new Map<number, readonly string[]>();
    for (const ep of this.#endpoints.values()) identities.set(ep.identity, ep.labels);
    for (const [cidr, id] of this.#cidrIdentities) identities.set(id, [`cidr:${cidr}`]);
    return [...identities].sort((a, b) => a[0] - b[0]).map(([id, labels]) => ({ id, labels }));
  }

  /**
   * The counters of {@link Node.status} alone: `dp_metrics` summed over
   * the CPUs, the events the ring buffer had no room for, the refused
   * policy entries. Cheaper than `status()`, which also counts every map's
   * entries.
   *
   * @returns The counters.
   * @example Drops by reason
   * ```ts no-run
   * import type { Node } from "@dp/datapath";
   * declare const node: Node;
   * for (const c of node.counters().metrics) if (c.reason !== 0) console.log(c.reasonName, c.direction, c.packets);
   * ```
   */
  counters(): NodeStatus["counters"] {
    this.#check("read counters");
    return {
      metrics: sumMetrics(this.#dp.metrics.entries()),
      lostEvents: (this.#dp.eventsLost.get(0) ?? []).reduce((a, b) => a + b, 0n),
      policyMapFull: this.#policyMapFull,
    };
  }

  /**
   * Lists conntrack entries.
   *
   * @param filter Which entries.
   * @returns The entries.
   * @throws {SyntaxError} When an address in the filter is invalid.
   */
  listConntrack(filter: ConntrackFilter = {}): ConntrackEntry[] {
    this.#check("list conntrack");
    return listConntrack(this.conntrackMaps, filter);
  }

  /**
   * Deletes conntrack entries.
   *
   * @param filter Which entries (all when empty).
   * @returns What was deleted.
   * @throws {SyntaxError} When an address in the filter is invalid.
   */
  flushConntrack(filter: ConntrackFilter = {}): ConntrackFlushResult {
    this.#check("flush conntrack");
    return flushConntrack(this.conntrackMaps, filter);
  }

  /**
   * Runs a conntrack garbage collection pass now (through the scheduler when it runs, so its interval adapts).
   *
   * @returns What was removed and kept.
   */
  gcConntrack(): ConntrackGcResult {
    this.#check("collect conntrack");
    if (this.#gc?.running === true) return this.#gc.runNow();
    return new ConntrackGcScheduler(this.conntrackMaps).runNow();
  }

  /**
   * Starts the conntrack garbage collector.
   *
   * Called by {@link openNode}.
   * @param options The intervals.
   */
  #startGc(options: Pick<ConntrackGcSchedulerOptions, "interval" | "minInterval" | "maxInterval">): void {
    this.#gc = new ConntrackGcScheduler(this.conntrackMaps, options).start();
  }

  // --- status ---------------------------------------------------------------

  /**
   * The node's state: host routing mode and why, map fill levels against
   * their limits, endpoints, identities, attachments and counters.
   *
   * @returns The status.
   */
  status(): NodeStatus {
    this.#check("read status");
    const dp = this.#dp;
    const count = (it: Iterable<unknown>): number => {
      let n = 0;
      for (const _ of it) n++;
      return n;
    };
    const maps: MapFill[] = [];
    for (const [name, map] of dp.maps) {
      // Arrays and the ring buffer have no fill level.
      if (name === "dp_events" || name === "dp_layouts" || name === "dp_events_lost" || name === "dp_metrics") continue;
      maps.push({ name, entries: count(map.keys()), maxEntries: map.maxEntries });
    }
    for (const ep of [...this.#endpoints.values()].sort((a, b) => a.id - b.id)) {
      const m = dp.policyMap(ep.id, false);
      if (m !== undefined)
        maps.push({ name: `dp_policy/${ep.id}`, entries: count(m.keys()), maxEntries: m.map.maxEntries });
    }
    return {
      hostRouting: { ...this.#mode },
      adopted: this.#adopted,
      maps,
      endpoints: this.endpoints(),
      identities: this.identities(),
      attachments: [...this.#links]
        .filter(([, l]) => l.attached)
        .map(([name, l]) => ({ name, kind: l.kind, programId: l.programId }))
        .sort((a, b) => a.name.localeCompare(b.name)),
      counters: this.counters(),
      encryption: this.#encryptionStatus(),
      conntrackGc: {
        running: this.#gc?.running === true,
        interval: this.#gc?.interval ?? 0,
        lastResult: this.#gc?.lastResult,
      },
    };
  }

  #encryptionStatus(): EncryptionStatus {
    if (this.#encryption !== "ipsec") return { mode: "disabled", keys: this.nodeKeys() };
    const xfrmStat = xfrmErrors(this.#netns);
    return { mode: "ipsec", keys: this.nodeKeys(), ...(xfrmStat === undefined ? {} : { xfrmStat }) };
  }

  // --- lifecycle ------------------------------------------------------------

  /** Runs changes one at a time, in call order (they await the allocator between map writes). */
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn, fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  #check(what: string): void {
    if (this.#closed) throw new TypeError(`Cannot ${what}: the node is closed`);
  }

  /**
   * Adopts what a previous process left in the state directory.
   *
   * Called by {@link openNode}.
   * @param adopted The links reconcile() adopted, by ledger name.
   * @param reused The maps taken from pins.
   * @param uplink The uplink to attach from_netdev to (BPF mode).
   */
  async #restore(adopted: Map<string, Link>, reused: readonly string[], uplink: string | undefined): Promise<void> {
    for (const [name, link] of adopted) this.#links.set(name, link);
    const rules = this.#store.get("rules");
    if (Array.isArray(rules)) this.engine.setRules(rules as PolicyRule[]);
    // Identities first (endpoint labels, then the rules' CIDRs), so that no
    // policy map is synced while a peer's identity is still unknown.
    const states: EpState[] = [];
    for (const name of this.#store.names("ep/")) {
      const rec = this.#store.get(name) as EpRecord | undefined;
      if (rec === undefined) continue;
      const host = this.#rt.links.get(rec.hostIfindex);
      if (host === undefined || host.name !== rec.hostIfname) {
        // The pod (and with it the veth) is gone: drop what is left of the endpoint.
        this.#detach(ledgerName(rec.id, "ingress"));
        this.#detach(ledgerName(rec.id, "egress"));
        const ghost: EpState = { ...rec, identity: 0, flags: 0, policyMapFull: false, live: false };
        this.#unwriteEndpoint(ghost);
        this.#dp.dropPolicyMap(rec.id);
        this.#store.delete(name);
        continue;
      }
      const identity = await this.allocator.allocate(rec.labels);
      states.push({ ...rec, identity: identity.id, flags: 0, policyMapFull: false, live: false });
    }
    await this.#syncCidrs();
    for (const state of states) this.#finishEndpoint(state);
    const endpoints = states.length;
    // Policy maps of endpoints without a record (a crash between the two): remove.
    for (const id of [...this.#dp.policy.keys()]) if (!this.#endpoints.has(id)) this.#dp.dropPolicyMap(id);
    for (const [name, link] of [...this.#links]) {
      if (name === "uplink-ingress" || this.#endpoints.has(Number(/^ep(\d+)-/.exec(name)?.[1] ?? -1))) continue;
      link.detach();
      this.#detach(name);
    }
    await this.#afterRules();
    this.#attachUplink(uplink);
    this.#adopted = { maps: reused, endpoints, attachments: adopted.size };
  }

  #attachUplink(uplink: string | undefined): void {
    if (uplink !== undefined && this.#mode.mode === "bpf") {
      const link = this.#rt.links.get(uplink);
      if (link === undefined)
        throw new TypeError(
          `Cannot open node: uplink ${JSON.stringify(uplink)} does not exist in the node's namespace`,
        );
      this.#attach("uplink", link.index, "ingress");
    } else if (this.#links.has("uplink-ingress")) {
      this.#detach("uplink-ingress");
    }
  }

  /**
   * Marks the node's own addresses (every address in its namespace and the router addresses) as host, and the rest of the world as world.
   *
   * Called by {@link openNode}.
   */
  #seedIpcache(): void {
    this.ipcache.set("0.0.0.0/0", WORLD_IDENTITY);
    this.ipcache.set("::/0", WORLD_IDENTITY);
    const own = new Set<string>([this.#router.ipv4, ...(this.#router.ipv6 === undefined ? [] : [this.#router.ipv6])]);
    for (const a of this.#rt.addresses.list()) {
      const ip = a.address.split("/")[0] ?? "";
      if (a.scope !== 254 && ip !== "127.0.0.1" && ip !== "::1") own.add(ip);
    }
    const pods = new Set([...this.#endpoints.values()].flatMap((e) => [e.ipv4, e.ipv6]));
    for (const ip of own) if (!pods.has(ip) && !ip.startsWith("fe80:")) this.ipcache.set(hostPrefix(ip), HOST_IDENTITY);
    // Entries a previous process left that nothing accounts for any more: label or CIDR identities of no endpoint and no rule.
    const live = new Set<number>([
      ...[...this.#endpoints.values()].map((e) => e.identity),
      ...this.#cidrIdentities.values(),
    ]);
    // Remote nodes' pod prefixes (with a node id) are the caller's, not derived from endpoints or rules: they stay.
    for (const { prefix, identity, nodeId } of this.ipcache.entries()) {
      if (identity >= CLUSTER_IDENTITY_MIN && nodeId === undefined && !live.has(identity)) this.ipcache.delete(prefix);
    }
  }

  /**
   * Closes the node's handles. Everything in the kernel stays: maps
   * (pinned), attachments (pinned links), endpoints; a later
   * {@link openNode} on the same state directory takes them over.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#gc?.stop();
    for (const link of this.#links.values()) (link as { close?: () => void }).close?.();
    this.#links.clear();
    this.engine.close();
    this.#store.close();
    this.#ledger.close();
    this.#dp.close();
    this.#rt.close();
    if (this.#ownsNetns) this.#netns.close();
    if (this.#ownsAllocator) (this.allocator as { close?: () => void }).close?.();
  }

  /**
   * Removes the node from the kernel: every endpoint (as
   * {@link Node.removeEndpoint}), the uplink attachment, the pinned maps,
   * the record store and the ledger's pins; then closes it. The (empty)
   * state directories stay: the library removes no directories.
   *
   * @returns Resolves when done.
   */
  async destroy(): Promise<void> {
    this.#check("destroy node");
    await this.#queue;
    for (const id of [...this.#endpoints.keys()]) await this.#removeEndpoint(id);
    this.#detach("uplink-ingress");
    for (const e of this.#ledger.entries()) this.#ledger.forget(e);
    for (const name of this.#dp.maps.keys()) unpin(`${this.stateDir}/${name}`);
    unpin(`${this.stateDir}/node_state`);
    unpin(`${this.stateDir}/ledger/index`);
    this.close();
  }

  /** Same as {@link Node.close}. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** Same as {@link Node.close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await Promise.resolve();
  }

  static {
    startNode = async (node, o) => {
      await node.#restore(o.links, o.reused, o.uplink);
      node.#seedIpcache();
      if (o.gc !== false) node.#startGc(o.gc);
    };
  }
}

/**
 * Opens a node: chooses the host routing mode, loads the datapath
 * programs over the maps pinned in `stateDir` (creating and pinning them
 * on first use), seeds the ipcache (world, the node's addresses as host),
 * and takes over what a previous process left there: its attachments
 * (through the ledger, with the new programs swapped in atomically), its
 * endpoints (records kept in a pinned map) and its rules. Established
 * connections keep flowing: the conntrack and policy maps are the same.
 *
 * @param options The node's namespace, state directory, mode, router addresses, sizes, allocator.
 * @returns The node.
 * @throws {TypeError} When an option is invalid, the uplink does not exist, or the state directory is not on bpffs.
 * @throws {RangeError} When a map size is out of range.
 * @throws {SyscallError} When a map, program or attachment cannot be made.
 * @capability CAP_BPF
 * @capability CAP_NET_ADMIN
 * @capability CAP_SYS_ADMIN
 * @example Opening a node in a test namespace
 * ```ts kernel
 * import assert from "node:assert/strict";
 * import { openNode } from "@dp/datapath";
 * import { bpffsDir, netns } from "@dp/core/testing";
 *
 * using dir = bpffsDir();
 * using ns = netns();
 * const node = await openNode({ stateDir: dir.join("node"), netns: ns.ns, router: { ipv4: "10.0.0.1" }, mapSizes: { "bpf-ct-global-tcp-max": 65536 } });
 * assert.equal(node.status().endpoints.length, 0);
 * await node.destroy();
 * ```
 */
export async function openNode(options: NodeOptions): Promise<Node> {
  const what = "Cannot open node";
  if (typeof options !== "object" || options === null) throw new TypeError(`${what}: options must be an object`);
  const stateDir = options.stateDir;
  if (typeof stateDir !== "string" || !stateDir.startsWith("/"))
    throw new TypeError(`${what}: stateDir must be an absolute path on bpffs`);
  const routerV4 = options.router?.ipv4;
  const routerV6 = options.router?.ipv6;
  const checkIp = (v: unknown, family: 4 | 6, field: string): void => {
    let ok: boolean;
    try {
      ok = typeof v === "string" && parseIp(v).family === family;
    } catch {
      ok = false;
    }
    if (!ok) throw new TypeError(`${what}: ${field} must be an IPv${family} address, got ${JSON.stringify(v)}`);
  };
  checkIp(routerV4, 4, "router.ipv4");
  if (routerV6 !== undefined) checkIp(routerV6, 6, "router.ipv6");
  const hr = options.hostRouting ?? "auto";
  if (hr !== "bpf" && hr !== "legacy" && hr !== "auto")
    throw new TypeError(`${what}: hostRouting must be "bpf", "legacy" or "auto", got ${JSON.stringify(hr)}`);
  const sizes = resolveMapSizes(options.mapSizes ?? {});
  const t = conntrackTimeoutConstants(options.ctTimeouts ?? {});
  const mode = chooseMode(hr);
  const am = options.attachMode ?? "auto";
  if (am !== "tcx" && am !== "netlink" && am !== "auto")
    throw new TypeError(`${what}: attachMode must be "tcx", "netlink" or "auto", got ${JSON.stringify(am)}`);
  const attachMode = am === "auto" ? (hasTcx() ? "tcx" : "netlink") : am;
  const encryption = options.encryption ?? "disabled";
  if (encryption !== "ipsec" && encryption !== "disabled")
    throw new TypeError(`${what}: encryption must be "ipsec" or "disabled", got ${JSON.stringify(encryption)}`);

  const cleanup: (() => void)[] = [];
  const undo = (): void => {
    for (const f of cleanup.reverse()) f();
  };
  try {
    let netns: Netns;
    let ownsNetns = true;
    if (options.netns === undefined) netns = currentNetns();
    else if (typeof options.netns === "string") netns = openNetns(options.netns);
    else {
      netns = options.netns;
      ownsNetns = false;
    }
    if (ownsNetns) cleanup.push(() => netns.close());
    const rt = openRouting({ netns });
    cleanup.push(() => rt.close());
    rt.sysctl.set("net.ipv4.conf.all.forwarding", 1);
    if (routerV6 !== undefined) rt.sysctl.set("net.ipv6.conf.all.forwarding", 1);
    // The ledger first: it mounts bpffs under /sys/fs/bpf when needed and checks the directory.
    const ledger = openLedger(`${stateDir}/ledger`);
    cleanup.push(() => ledger.close());
    const dp = loadDatapath(
      {
        hostRouting: mode.mode,
        trace: options.trace === true,
        encryption,
        timeouts: {
          syn: t.dp_ct_timeout_syn,
          tcp: t.dp_ct_timeout_tcp,
          close: t.dp_ct_timeout_close,
          any: t.dp_ct_timeout_any,
        },
      },
      {
        maxEntries: {
          dp_endpoints: sizes.endpoints,
          dp_ipcache: sizes.ipcache,
          dp_policy: sizes.endpoints,
          dp_ct_tcp: sizes.ctTcp,
          dp_ct_any: sizes.ctAny,
        },
        policyMapSize: sizes.policy,
        pinDir: stateDir,
        ...(options.objectDir === undefined ? {} : { objectDir: options.objectDir }),
      },
    );
    cleanup.push(() => dp.close());
    const { store } = openStateStore(`${stateDir}/node_state`);
    cleanup.push(() => store.close());
    // What the ledger may hold of ours: tcx links by name, netlink filters by place.
    const names = new Set<string>();
    const places = new Map<string, string>();
    const inode = netnsInode(netns);
    for (const name of store.names("ep/")) {
      const rec = store.get(name) as { id: number; hostIfindex: number } | undefined;
      if (rec === undefined) continue;
      for (const d of ["ingress", "egress"] as const) {
        names.add(ledgerName(rec.id, d));
        places.set(`${inode}/${rec.hostIfindex}/${d}`, ledgerName(rec.id, d));
      }
    }
    if (options.uplink !== undefined) {
      names.add("uplink-ingress");
      const up = rt.links.get(options.uplink);
      if (up !== undefined) places.set(`${inode}/${up.index}/ingress`, "uplink-ingress");
    }
    const nameOf = (e: LedgerEntry): string | undefined =>
      e.kind === "link"
        ? names.has(e.name)
          ? e.name
          : undefined
        : e.kind === "tc"
          ? places.get(`${e.netnsInode}/${e.ifindex}/${e.direction}`)
          : undefined;
    const { adopted } = reconcile(ledger, { adopt: (e) => nameOf(e) !== undefined });
    const links = new Map<string, Link>();
    for (const link of adopted) {
      const entry = (link as { entry?: LedgerEntry }).entry;
      const name = entry === undefined ? undefined : nameOf(entry);
      if (name !== undefined) links.set(name, link);
    }
    cleanup.push(() => {
      for (const l of links.values()) (l as { close?: () => void }).close?.();
    });
    const allocator = options.allocator ?? createLocalIdentityAllocator();
    const node = new Node({
      stateDir,
      netns,
      ownsNetns,
      rt,
      dp,
      ledger,
      store,
      mode,
      router: { ipv4: routerV4, ipv6: routerV6 },
      allocator,
      ownsAllocator: options.allocator === undefined,
      sizes,
      attachMode,
      encryption,
    });
    cleanup.length = 0;
    try {
      store.set("node", {
        hostRouting: mode.mode,
        router: { ipv4: routerV4, ipv6: routerV6 ?? null },
        uplink: options.uplink ?? null,
        encryption,
      });
      await startNode(node, { links, reused: dp.reused, uplink: options.uplink, gc: options.ctGc ?? {} });
    } catch (err) {
      node.close();
      throw err;
    }
    return node;
  } catch (err) {
    undo();
    throw err;
  }
}
