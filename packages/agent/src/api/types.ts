// The agent API: HTTP/1.1 with JSON bodies over a unix socket (mode 0600,
// owned by root). These types are the wire contract between the agent's
// server and the `dp` command's client; bigints travel as decimal strings
// (see {@link Wire}).
import type {
  ConntrackEntry,
  ConntrackFlushResult,
  Endpoint,
  MapFill,
  MonitorEvent,
  NodeCounter,
  PolicyExplanation,
  PolicyRule,
} from "@dp/datapath";

/**
 * A value as it travels in the agent API's JSON: bigints become decimal
 * strings, everything else keeps its shape.
 *
 * @example A counter on the wire
 * ```ts no-run
 * import type { Wire } from "@dp/agent";
 * import type { NodeCounter } from "@dp/datapath";
 * declare const c: Wire<NodeCounter>;
 * const packets: bigint = BigInt(c.packets);
 * ```
 */
export type Wire<T> = T extends bigint
  ? string
  : T extends readonly (infer E)[]
    ? Wire<E>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/**
 * The body of every error response: a stable code, a message naming the
 * thing and the cause, and what the request got wrong when it was the
 * request.
 *
 * @example An unknown endpoint
 * ```ts no-run
 * import type { ApiErrorBody } from "@dp/agent";
 * const body: ApiErrorBody = { code: "not-found", message: "Cannot get endpoint 7: no such endpoint" };
 * ```
 */
export interface ApiErrorBody {
  /** `bad-request` (400), `not-found` (404), `conflict` (409), `unavailable` (503), `internal` (500). */
  readonly code: "bad-request" | "not-found" | "conflict" | "unavailable" | "internal";
  /** What failed and why. */
  readonly message: string;
  /** The request field at fault, when one is (`labels`, `rules[0].ingress[1]`). */
  readonly field?: string;
}

/**
 * A feature's state in `dp status`: on, off, or asked for but not built
 * into this version yet (the config key that asked and why).
 *
 * @example Masquerading not supported yet
 * ```ts no-run
 * import type { FeatureStatus } from "@dp/agent";
 * const s: FeatureStatus = { state: "unsupported", message: "enable-bpf-masquerade: not supported yet" };
 * ```
 */
export interface FeatureStatus {
  /** `enabled`, `disabled`, or `unsupported` (configured but not supported yet). */
  readonly state: "enabled" | "disabled" | "unsupported";
  /** A short explanation for humans. */
  readonly message: string;
}

/**
 * The kvstore in `dp status`: `disabled` without `kvstore: etcd`, else the
 * etcd connection's state (`connected`, or `unhealthy` with the reason
 * while etcd does not answer), the endpoints, this node's name and how
 * many nodes the registry holds.
 *
 * @example Connected to one etcd
 * ```ts no-run
 * import type { ApiKvstoreStatus } from "@dp/agent";
 * const s: ApiKvstoreStatus = {
 *   state: "connected",
 *   message: "etcd: 1/1 connected (endpoints http://127.0.0.1:2379); 2 nodes; identities in the kvstore",
 *   endpoints: ["http://127.0.0.1:2379"],
 *   node: "node-a",
 *   nodes: 2,
 *   identityAllocation: "kvstore",
 * };
 * ```
 */
export interface ApiKvstoreStatus {
  /** `disabled` (no kvstore), or the etcd connection's state. */
  readonly state: "disabled" | "connecting" | "connected" | "unhealthy" | "closed";
  /** A short explanation for humans: the endpoints and node count when connected, else the reason. */
  readonly message: string;
  /** The etcd endpoints, with a kvstore. */
  readonly endpoints?: readonly string[];
  /** This node's name in the registry, with a kvstore. */
  readonly node?: string;
  /** The nodes the registry holds (this one included), with a kvstore. */
  readonly nodes?: number;
  /** Where identities are allocated, with a kvstore: `kvstore` (etcd) or `node`. */
  readonly identityAllocation?: "kvstore" | "node";
}

/**
 * A background task of the agent (conntrack GC, endpoint sync, ...) and
 * its health, like Cilium's controllers.
 *
 * @example A healthy controller
 * ```ts no-run
 * import type { ControllerStatus } from "@dp/agent";
 * const c: ControllerStatus = { name: "ct-gc", runs: 3, failures: 0, lastSuccess: "2026-12-07T10:00:00.000Z", lastError: undefined };
 * ```
 */
export interface ControllerStatus {
  /** The controller's name. */
  readonly name: string;
  /** How many times it ran. */
  readonly runs: number;
  /** Consecutive failures (0 when the last run succeeded). */
  readonly failures: number;
  /** When it last succeeded (ISO 8601), if ever. */
  readonly lastSuccess: string | undefined;
  /** The last failure's message, if the last run failed. */
  readonly lastError: string | undefined;
}

/**
 * `GET /v1/status`: what `dp status` shows.
 *
 * @example Reading the mode
 * ```ts no-run
 * import type { AgentStatus } from "@dp/agent";
 * declare const s: AgentStatus;
 * console.log(`Host Routing: ${s.hostRouting.mode === "bpf" ? "BPF" : "Legacy"} (${s.hostRouting.reason})`);
 * ```
 */
export interface AgentStatus {
  /** The dp version. */
  readonly version: string;
  /** The agent's process id. */
  readonly pid: number;
  /** When the agent started (ISO 8601). */
  readonly startedAt: string;
  /** The cluster name and id from the config. */
  readonly cluster: {
    /** The cluster name (`cluster-name`). */
    readonly name: string;
    /** The cluster id (`cluster-id`). */
    readonly id: number;
  };
  /** The node's network namespace (path) and state directory (bpffs). */
  readonly node: {
    /** The node's network namespace, as a path. */
    readonly netns: string;
    /** The state directory on the bpffs, where the maps are pinned. */
    readonly stateDir: string;
    /** The configured network devices; the first is the uplink. */
    readonly devices: readonly string[];
  };
  /** The host routing mode and why. */
  readonly hostRouting: {
    /** The mode in use: `bpf` or `legacy`. */
    readonly mode: "bpf" | "legacy";
    /** Why: the config keys and kernel helpers that decided it. */
    readonly reason: string;
  };
  /** How programs are attached (`tcx` or `netlink`). */
  readonly attachMode: "tcx" | "netlink";
  /** Masquerading. */
  readonly masquerading: FeatureStatus;
  /** The key-value store and its connection. */
  readonly kvstore: ApiKvstoreStatus;
  /** Every config key that asked for something this version does not do, with why. */
  readonly unsupported: readonly {
    /** The config key. */
    readonly key: string;
    /** What it asked for and why it is not done (`key: value: ... not supported yet`). */
    readonly message: string;
  }[];
  /** Config keys the agent did not know (warned at start). */
  readonly unknownKeys: readonly string[];
  /** Whether the datapath was adopted from a previous process. */
  readonly adopted: {
    /** How many maps were opened from the state directory instead of created. */
    readonly maps: number;
    /** How many endpoints were restored from the state directory. */
    readonly endpoints: number;
    /** How many attachments were taken over from the ledger. */
    readonly attachments: number;
  };
  /** Map fill levels. */
  readonly maps: readonly MapFill[];
  /** Endpoint count and how many are ready. */
  readonly endpoints: {
    /** The number of endpoints. */
    readonly total: number;
    /** How many of them have a policy map that refused an entry because it was full. */
    readonly policyMapFull: number;
  };
  /** Identities in use. */
  readonly identities: number;
  /** Policy rules loaded and the policy revision. */
  readonly policy: {
    /** The number of policy rules loaded. */
    readonly rules: number;
    /** The policy revision (increases with every change). */
    readonly revision: number;
  };
  /** Background tasks. */
  readonly controllers: readonly ControllerStatus[];
  /** Drop and forward counters. */
  readonly counters: Wire<{
    /** The `dp_metrics` counters, by reason and direction. */
    readonly metrics: readonly NodeCounter[];
    /** Events the ring buffer had no room for. */
    readonly lostEvents: bigint;
    /** Policy entries a full policy map refused. */
    readonly policyMapFull: number;
  }>;
  /** Encryption between nodes (`enable-ipsec`). */
  readonly encryption: Wire<{
    /** `"ipsec"` or `"disabled"`. */
    readonly mode: "ipsec" | "disabled";
    /** The key ids of `ipsec-key-file`, oldest first; the last is the current key. */
    readonly keyIds: readonly number[];
    /** The key each remote node's traffic is encrypted with (`dp_encrypt`). */
    readonly nodeKeys: readonly {
      /** The remote node's id. */
      readonly nodeId: number;
      /** The key id (SPI). */
      readonly spi: number;
    }[];
    /** The node namespace's xfrm error counters that are not zero (`/proc/net/xfrm_stat`, camelCase names). */
    readonly xfrmErrors: Readonly<Record<string, bigint>>;
  }>;
}

/**
 * `PUT /v1/endpoint`: a new endpoint. Without addresses, the agent's IPAM
 * picks them from the configured ranges.
 *
 * @example A pod
 * ```ts no-run
 * import type { EndpointRequest } from "@dp/agent";
 * const req: EndpointRequest = { netns: "/run/netns/web", labels: ["k8s:app=web"] };
 * ```
 */
export interface EndpointRequest {
  /** The pod's network namespace: a name under /run/netns or a path. */
  readonly netns: string;
  /** The interface inside the pod (default `eth0`). */
  readonly ifname?: string;
  /** The pod's IPv4 address; allocated when absent. */
  readonly ipv4?: string;
  /** The pod's IPv6 address; allocated when absent and IPv6 is enabled. */
  readonly ipv6?: string;
  /** The labels (`k8s:app=web`). */
  readonly labels: readonly string[];
  /** An opaque owner reference kept with the endpoint (the CNI container id). */
  readonly containerId?: string;
  /**
   * Chained mode: another plugin made the interface. `ifname` already
   * exists in `netns`, a veth whose peer is in the node's namespace, with
   * its addresses, which must be given (`ipv4`, and `ipv6` if it has one):
   * the agent allocates nothing and leaves the link, addresses and routes
   * alone (see the datapath's `EndpointSpec.existing`).
   *
   * @default false
   */
  readonly existing?: boolean;
}

/**
 * Which endpoints `GET /v1/endpoint` lists, and which `DELETE
 * /v1/endpoint` removes (sent as query parameters of the same names).
 *
 * @example The endpoint of a CNI container
 * ```ts no-run
 * import type { EndpointQuery } from "@dp/agent";
 * const q: EndpointQuery = { containerId: "4f1c0a" };
 * ```
 */
export interface EndpointQuery {
  /**
   * Only the endpoint created with this owner reference (the CNI container id).
   *
   * @default any
   */
  readonly containerId?: string;
}

/**
 * An endpoint as the API returns it.
 *
 * @example Its identity
 * ```ts no-run
 * import type { ApiEndpoint } from "@dp/agent";
 * declare const ep: ApiEndpoint;
 * console.log(ep.id, ep.identity, ep.labels.join(","));
 * ```
 */
export type ApiEndpoint = Wire<Endpoint> & {
  /** The owner reference given when it was created (the CNI container id), if any. */
  readonly containerId: string | undefined;
  /**
   * The router addresses the pod's default routes go through, which a CNI
   * result names as gateways; absent for an endpoint another plugin made
   * (`existing`), whose routes are that plugin's.
   */
  readonly router?: {
    /** The IPv4 router address. */
    readonly ipv4: string;
    /** The IPv6 router address, when the endpoint has an IPv6 address. */
    readonly ipv6: string | undefined;
  };
};

/**
 * An identity as the API returns it.
 *
 * @example The host identity
 * ```ts no-run
 * import type { ApiIdentity } from "@dp/agent";
 * const host: ApiIdentity = { id: 1, labels: ["reserved:host"], kind: "reserved", endpoints: 0 };
 * ```
 */
export interface ApiIdentity {
  /** The numeric identity. */
  readonly id: number;
  /** Its labels. */
  readonly labels: readonly string[];
  /** `reserved`, `cluster` (label-based) or `cidr`. */
  readonly kind: string;
  /** How many local endpoints have it. */
  readonly endpoints: number;
}

/**
 * `GET /v1/policy`, and the answer to `PUT`/`DELETE /v1/policy`.
 *
 * @example The rule names
 * ```ts no-run
 * import type { ApiPolicy } from "@dp/agent";
 * declare const p: ApiPolicy;
 * console.log(p.revision, p.rules.map((r) => r.name));
 * ```
 */
export interface ApiPolicy {
  /** Increases with every change. */
  readonly revision: number;
  /** The rules, in the order they were added. */
  readonly rules: readonly PolicyRule[];
}

/**
 * `PUT /v1/policy`: rules to add (a rule with the name of an existing one
 * replaces it), or with `replace` the whole rule set.
 *
 * @example Import
 * ```ts no-run
 * import type { PolicyImportRequest } from "@dp/agent";
 * const req: PolicyImportRequest = { rules: [{ name: "web", endpointSelector: { matchLabels: { app: "web" } }, ingress: [] }] };
 * ```
 */
export interface PolicyImportRequest {
  /** The rules. */
  readonly rules: readonly PolicyRule[];
  /** Replace every rule instead of adding. */
  readonly replace?: boolean;
}

/**
 * One side of a {@link PolicyTraceRequest}: a local endpoint, a numeric
 * identity or a label set.
 *
 * @example The client pods
 * ```ts no-run
 * import type { PolicyTracePeer } from "@dp/agent";
 * const client: PolicyTracePeer = { labels: ["k8s:app=client"] };
 * ```
 */
export type PolicyTracePeer =
  | {
      /** A local endpoint's id. */
      readonly endpoint: number;
    }
  | {
      /** A numeric identity. */
      readonly identity: number;
    }
  | {
      /** A label set (`k8s:app=web`). */
      readonly labels: readonly string[];
    };

/**
 * `POST /v1/policy/trace`: would traffic from one side to the other be
 * allowed? Each side is an endpoint id, an identity or a label set.
 *
 * @example From a label set to an endpoint
 * ```ts no-run
 * import type { PolicyTraceRequest } from "@dp/agent";
 * const req: PolicyTraceRequest = { from: { labels: ["k8s:app=client"] }, to: { endpoint: 12 }, protocol: "TCP", port: 80 };
 * ```
 */
export interface PolicyTraceRequest {
  /** The source. */
  readonly from: PolicyTracePeer;
  /** The destination. */
  readonly to: PolicyTracePeer;
  /** `TCP`, `UDP`, `SCTP`, `ICMP`, `ICMPv6` or `ANY`. */
  readonly protocol?: string;
  /** The destination port (or ICMP type). */
  readonly port?: number;
}

/**
 * The answer to a policy trace: the engine's explanation.
 *
 * @example The verdict
 * ```ts no-run
 * import type { PolicyTraceResponse } from "@dp/agent";
 * declare const t: PolicyTraceResponse;
 * console.log(t.verdict);
 * ```
 */
export type PolicyTraceResponse = Wire<PolicyExplanation>;

/**
 * A conntrack entry on the wire (`GET /v1/ct`).
 *
 * @example Its counters
 * ```ts no-run
 * import type { ApiConntrackEntry } from "@dp/agent";
 * declare const e: ApiConntrackEntry;
 * console.log(BigInt(e.txBytes) + BigInt(e.rxBytes));
 * ```
 */
export type ApiConntrackEntry = Wire<ConntrackEntry>;

/**
 * The answer to `DELETE /v1/ct`.
 *
 * @example How many went
 * ```ts no-run
 * import type { ApiConntrackFlush } from "@dp/agent";
 * declare const r: ApiConntrackFlush;
 * console.log(r);
 * ```
 */
export type ApiConntrackFlush = Wire<ConntrackFlushResult>;

/**
 * A policy map entry of an endpoint (`GET /v1/bpf/policy/:id`), decoded.
 *
 * @example An allow entry
 * ```ts no-run
 * import type { ApiPolicyMapEntry } from "@dp/agent";
 * const e: ApiPolicyMapEntry = { direction: "ingress", identity: 256, protocol: 6, port: 80, prefixLength: 64, deny: false, proxyPort: 0, ruleCookie: 1, packets: "3", bytes: "180" };
 * ```
 */
export interface ApiPolicyMapEntry {
  /** `ingress` or `egress`. */
  readonly direction: "ingress" | "egress";
  /** The remote identity (0: any). */
  readonly identity: number;
  /** The IP protocol number (0: any). */
  readonly protocol: number;
  /** The first destination port of the block (host order; ICMP: the type). */
  readonly port: number;
  /** The LPM prefix length (40 any protocol, 48 any port, up to 64). */
  readonly prefixLength: number;
  /** Whether it is a deny entry. */
  readonly deny: boolean;
  /** The L7 proxy port (0: none). */
  readonly proxyPort: number;
  /** Which rule made it (see `dp policy get`). */
  readonly ruleCookie: number;
  /** Packets that matched. */
  readonly packets: string;
  /** Bytes that matched. */
  readonly bytes: string;
}

/**
 * One line of `GET /v1/monitor` (newline-delimited JSON): an event, or a
 * notice that events were lost because the reader was slow or the ring
 * buffer full.
 *
 * @example Printing drops
 * ```ts no-run
 * import type { MonitorLine } from "@dp/agent";
 * declare const line: MonitorLine;
 * if (line.kind === "event" && line.event.type === "drop") console.log(line.event.reason);
 * ```
 */
export type MonitorLine =
  | {
      /** `event`: the line carries an event. */
      readonly kind: "event";
      /** The event. */
      readonly event: Wire<MonitorEvent>;
    }
  | {
      /** `lost`: events were lost since the previous line. */
      readonly kind: "lost";
      /** How many events were lost. */
      readonly count: number;
      /** `slow-reader` (this client's queue was full) or `ring-buffer` (the datapath's ring buffer was full). */
      readonly why: "slow-reader" | "ring-buffer";
    };
