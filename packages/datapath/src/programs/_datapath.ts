// Loads bpf/datapath's objects for BPF_PROG_TEST_RUN tests with the Node's
// loader (../_load.ts): every program over one set of maps, map sizes
// and settings chosen before load, the maps wrapped in the codecs dp-gen
// generated from the objects, and small writers for endpoints, ipcache
// prefixes and policy entries in the layouts of bpf/include/dp/.
import { type BpfProgram, parseIp, parseMac } from "@dp/core";
import type { DeletableMap, HashMap, HashOfMaps, LruHashMap, PerCpuArrayMap, RingBuffer } from "@dp/maps";
import type {
  DpCtEntry,
  DpEncryptInfo,
  DpEndpointInfo,
  DpEndpointKey,
  DpEvent,
  DpFragKey,
  DpFragPorts,
  DpIpcacheInfo,
  DpIpcacheKey,
  DpPolicyKey,
  DpMetricsValue,
  DpTuple,
} from "../_gen/datapath.ts";
import { DEFAULT_OBJECT_DIR, loadDatapath, type LoadedDatapath, type PolicyMap } from "../_load.ts";

const BUILD: string = DEFAULT_OBJECT_DIR;

/** The object files, for oracles such as `bpftool prog loadall`. */
export const OBJECTS: { readonly from_container: string; readonly to_container: string; readonly from_netdev: string } =
  {
    from_container: `${BUILD}from_container.o`,
    to_container: `${BUILD}to_container.o`,
    from_netdev: `${BUILD}from_netdev.o`,
  };

/** `enum dp_drop_reason` (bpf/include/dp/events.h). */
export const DROP = {
  forwarded: 0,
  policyDeny: 1,
  policyDefault: 2,
  invalidSource: 3,
  ctMapFull: 4,
  unsupportedL3: 5,
  invalidPacket: 6,
  fibFail: 7,
  ctCreateFailed: 8,
  unknownDestination: 9,
  rewriteFailed: 10,
  encryptKeyMissing: 11,
} as const;

/** `enum dp_event_type`. */
export const EVENT = { drop: 1, trace: 2, policyVerdict: 3 } as const;
/** `enum dp_trace_point`. */
export const TRACE = { toStack: 1, toEndpoint: 2, toNetdev: 3 } as const;
/** `enum dp_verdict`. */
export const VERDICT = { none: 0, allow: 1, deny: 2, defaultAllow: 3, defaultDeny: 4 } as const;
/** `enum dp_ct_result`. */
export const CT = { new: 0, established: 1, reply: 2, related: 3, reopened: 4 } as const;
/** `enum dp_ct_state`. */
export const CT_STATE = { none: 0, synSent: 1, established: 2, closing: 3 } as const;
/** The `DP_CT_F_*` flags of `dp_ct_entry.flags`. */
export const CT_FLAG = { seenNonSyn: 1, txClosing: 2, rxClosing: 4, rst: 8 } as const;
/** `DP_CT_SCOPE_*`. */
export const SCOPE = { ingress: 1, egress: 2 } as const;
/** `DP_DIR_*`. */
export const DIR = { ingress: 0, egress: 1 } as const;
/** `DP_EP_F_*`. */
export const EP_FLAG = { ingressEnforced: 1, egressEnforced: 2 } as const;
/** Reserved identities. */
export const ID = { any: 0, host: 1, world: 2 } as const;
/** IP protocol numbers. */
export const PROTO = { icmp: 1, tcp: 6, udp: 17, icmpv6: 58 } as const;

/** Map sizes and settings chosen before load. */
export interface TestDatapathOptions {
  /** `dp_host_routing_bpf`. */
  readonly hostRouting?: "bpf" | "legacy";
  /** `dp_trace_enabled`. */
  readonly trace?: boolean;
  /** `max_entries` by map name. */
  readonly maxEntries?: Readonly<Record<string, number>>;
  /** `dp_ct_timeout_*` in seconds. */
  readonly timeouts?: { readonly syn?: number; readonly tcp?: number; readonly close?: number; readonly any?: number };
  /** `dp_enable_ipsec`. */
  readonly encryption?: "ipsec" | "disabled";
}

/** An endpoint for {@link TestDatapath.addEndpoint}. */
export interface TestEndpoint {
  /** Its address (one family per entry). */
  readonly ip: string;
  /** Its host-side veth. */
  readonly ifindex: number;
  /** The endpoint id (the key of its policy map). */
  readonly id: number;
  /** Its security identity. */
  readonly identity: number;
  /** `DP_EP_F_*` enforcement flags; default 0 (nothing enforced). */
  readonly flags?: number;
  /** The pod's MAC. */
  readonly mac?: string;
  /** The host-side veth's MAC. */
  readonly nodeMac?: string;
}

/** A policy entry for {@link TestDatapath.policyEntry}. */
export interface TestPolicyEntry {
  /** The remote identity; 0 = any. */
  readonly identity: number;
  /** Which direction of the endpoint it applies to. */
  readonly direction: "ingress" | "egress";
  /** Absent: any protocol (prefixlen 40). */
  readonly protocol?: number;
  /** Absent: any port (prefixlen 48). */
  readonly port?: number;
  /** Port bits that count (16 = one port); a range block of 2^(16 - bits) ports. */
  readonly portBits?: number;
  /** A deny entry (`DP_POLICY_DENY`). */
  readonly deny?: boolean;
  /** The rule cookie. */
  readonly cookie?: number;
}

/** A 16-byte datapath address: IPv6 as is, IPv4 mapped (::ffff:a.b.c.d). */
export function addr16(ip: string): Uint8Array {
  const { family, bytes } = parseIp(ip);
  if (family === 6) return bytes;
  const out = new Uint8Array(16);
  out[10] = 0xff;
  out[11] = 0xff;
  out.set(bytes, 12);
  return out;
}

/** The family byte of an address (`DP_FAMILY_IPV4` = 4, `DP_FAMILY_IPV6` = 6). */
export function familyOf(ip: string): 4 | 6 {
  return parseIp(ip).family;
}

/** The datapath programs over one set of maps, with typed views of the maps. */
export class TestDatapath {
  /** `from_container` (from_container.o). */
  readonly fromContainer: BpfProgram;
  /** `to_container` (to_container.o). */
  readonly toContainer: BpfProgram;
  /** `from_netdev` (from_netdev.o). */
  readonly fromNetdev: BpfProgram;
  /** `dp_endpoints`. */
  readonly endpoints: HashMap<DpEndpointKey, DpEndpointInfo>;
  /** `dp_ipcache`, typed with the generated key and value codecs. */
  readonly ipcache: DeletableMap<DpIpcacheKey, DpIpcacheInfo>;
  /** `dp_policy`: endpoint id → policy map. */
  readonly policy: HashOfMaps<number>;
  /** `dp_encrypt`: remote node id → key. */
  readonly encrypt: HashMap<number, DpEncryptInfo>;
  /** `dp_ct_tcp`. */
  readonly ctTcp: HashMap<DpTuple, DpCtEntry>;
  /** `dp_ct_any`. */
  readonly ctAny: HashMap<DpTuple, DpCtEntry>;
  /** `dp_frag`: ports of fragmented datagrams. */
  readonly frag: LruHashMap<DpFragKey, DpFragPorts>;
  /** `dp_metrics`. */
  readonly metrics: PerCpuArrayMap<DpMetricsValue>;
  /** `dp_events_lost`. */
  readonly eventsLost: PerCpuArrayMap<bigint>;
  /** `dp_events`, records decoded as `struct dp_event`. */
  readonly events: RingBuffer<DpEvent>;
  #dp: LoadedDatapath;

  /**
   * Loads the three objects over one set of maps (the Node's loader).
   *
   * @param options Map sizes and settings.
   */
  constructor(options: TestDatapathOptions = {}) {
    const dp = loadDatapath(
      {
        hostRouting: options.hostRouting ?? "legacy",
        trace: options.trace === true,
        timeouts: options.timeouts ?? {},
        encryption: options.encryption ?? "disabled",
      },
      { maxEntries: options.maxEntries ?? {}, policyMapSize: 16384 },
    );
    this.#dp = dp;
    this.fromContainer = dp.fromContainer;
    this.toContainer = dp.toContainer;
    this.fromNetdev = dp.fromNetdev;
    this.endpoints = dp.endpoints;
    this.ctTcp = dp.ctTcp;
    this.ctAny = dp.ctAny;
    this.metrics = dp.metrics;
    this.frag = dp.frag;
    this.eventsLost = dp.eventsLost;
    this.ipcache = dp.ipcache;
    this.policy = dp.policy;
    this.encrypt = dp.encrypt;
    this.events = dp.events;
  }

  /** Writes an endpoint and its /32 or /128 into the ipcache. */
  addEndpoint(ep: TestEndpoint): void {
    const family = familyOf(ep.ip);
    this.endpoints.set(
      { addr: addr16(ep.ip), family, pad: new Uint8Array(3) },
      {
        ifindex: ep.ifindex,
        id: ep.id,
        flags: ep.flags ?? 0,
        identity: ep.identity,
        mac: parseMac(ep.mac ?? "02:00:00:00:00:aa"),
        node_mac: parseMac(ep.nodeMac ?? "02:00:00:00:00:bb"),
      },
    );
    this.setIpcache(`${ep.ip}/${family === 4 ? 32 : 128}`, ep.identity);
  }

  /** Maps a prefix to an identity in the ipcache (and to a remote node: `nodeId`). */
  setIpcache(cidr: string, identity: number, nodeId = 0): void {
    const [ip = "", bits = ""] = cidr.split("/");
    const family = familyOf(ip);
    const prefix = Number(bits);
    this.ipcache.set(
      { prefixlen: 32 + (family === 4 ? 96 + prefix : prefix), cluster_id: 0, pad: 0, family, addr: addr16(ip) },
      { identity, flags: 0, encrypt_key: 0, node_id: nodeId, tunnel_endpoint: new Uint8Array(16) },
    );
  }

  /** The policy map of an endpoint, created (and put into dp_policy) on first use. */
  policyMap(endpointId: number): PolicyMap {
    const inner = this.#dp.policyMap(endpointId, true);
    if (inner === undefined) throw new Error(`no policy map for endpoint ${endpointId}`);
    return inner;
  }

  /** The key of a policy entry, as the contract lays it out. */
  static policyKey(e: TestPolicyEntry): DpPolicyKey {
    const prefixlen = e.protocol === undefined ? 40 : e.port === undefined ? 48 : 48 + (e.portBits ?? 16);
    return {
      prefixlen,
      identity: e.identity,
      egress: e.direction === "egress" ? 1 : 0,
      protocol: e.protocol ?? 0,
      dport: e.port ?? 0,
    };
  }

  /** Writes one policy entry for an endpoint. */
  policyEntry(endpointId: number, e: TestPolicyEntry): void {
    this.policyMap(endpointId).set(TestDatapath.policyKey(e), {
      flags: e.deny === true ? 1 : 0,
      pad0: 0,
      proxy_port: 0,
      rule_cookie: e.cookie ?? 0,
      packets: 0n,
      bytes: 0n,
    });
  }

  /** The counters of one policy entry. */
  policyCounters(endpointId: number, e: TestPolicyEntry): { packets: bigint; bytes: bigint } | undefined {
    const v = this.policyMap(endpointId).get(TestDatapath.policyKey(e));
    return v === undefined ? undefined : { packets: v.packets, bytes: v.bytes };
  }

  /** The metrics of {reason, direction}, summed over the CPUs. */
  metric(reason: number, direction: number): { packets: bigint; bytes: bigint } {
    const perCpu = this.metrics.get(reason + 256 * direction) ?? [];
    let packets = 0n;
    let bytes = 0n;
    for (const v of perCpu) {
      packets += v.packets;
      bytes += v.bytes;
    }
    return { packets, bytes };
  }

  /** Events lost because the ring buffer was full, summed over the CPUs. */
  lostEvents(): bigint {
    return (this.eventsLost.get(0) ?? []).reduce((a, b) => a + b, 0n);
  }

  /** Every conntrack entry of a map, with its key. */
  ctEntries(map: "tcp" | "any"): [DpTuple, DpCtEntry][] {
    return [...(map === "tcp" ? this.ctTcp : this.ctAny).entries()];
  }

  /** The conntrack entry of a tuple and scope. */
  ctEntry(
    t: { saddr: string; daddr: string; sport: number; dport: number; nexthdr: number },
    scope: number,
  ): DpCtEntry | undefined {
    const map = t.nexthdr === PROTO.tcp ? this.ctTcp : this.ctAny;
    return map.get({
      saddr: addr16(t.saddr),
      daddr: addr16(t.daddr),
      sport: t.sport,
      dport: t.dport,
      nexthdr: t.nexthdr,
      family: familyOf(t.saddr),
      scope,
      pad: 0,
    });
  }

  /** Unmaps the ring buffer, closes the policy maps it made and the collections. */
  close(): void {
    this.#dp.close();
  }

  /** Same as {@link TestDatapath.close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
