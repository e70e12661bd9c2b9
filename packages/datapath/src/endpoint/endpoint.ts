import type { Netns } from "@dp/core";
import type { LabelsInput } from "../labels/label_set.ts";

/**
 * What {@link Node.addEndpoint} creates: a pod's interface in its network
 * namespace, wired to the node.
 *
 * @example A dual-stack pod
 * ```ts no-run
 * import type { EndpointSpec } from "@dp/datapath";
 * const spec: EndpointSpec = { netns: "/run/netns/pod1", ipv4: "10.0.1.5", ipv6: "fd00::1:5", labels: ["k8s:app=web"] };
 * ```
 */
export interface EndpointSpec {
  /** The pod's network namespace: a handle, a name under /run/netns, or a path (`/proc/PID/ns/net`). */
  readonly netns: Netns | string;
  /**
   * The interface name inside the pod.
   *
   * @default "eth0"
   */
  readonly ifname?: string;
  /** The pod's IPv4 address (no prefix length: the pod gets it as a /32). */
  readonly ipv4: string;
  /** The pod's IPv6 address (a /128), when the node has an IPv6 router address. */
  readonly ipv6?: string;
  /** The pod's labels (`k8s:app=web`); they select its security identity. */
  readonly labels: LabelsInput;
  /**
   * Chained mode (Cilium's generic-veth chaining): another CNI plugin made
   * the interface. `ifname` already exists in the pod's namespace, a veth
   * whose peer is in the node's namespace, and already has `ipv4` (and
   * `ipv6`). The node takes the peer as the host side and adds identity,
   * maps and programs, but creates, deletes and changes no link, address
   * or route: the other plugin owns them and the connectivity between the
   * pod and the node (its bridge or routes). No router address is needed
   * for `ipv6`. {@link Node.removeEndpoint} leaves the veth as it was.
   *
   * @default false
   */
  readonly existing?: boolean;
}

/**
 * An endpoint of a node, as {@link Node.endpoints} lists it.
 *
 * @example Finding a pod's identity
 * ```ts no-run
 * import type { Endpoint, Node } from "@dp/datapath";
 * declare const node: Node;
 * const web: Endpoint | undefined = node.endpoints().find((e) => e.labels.includes("k8s:app=web"));
 * console.log(web?.identity);
 * ```
 */
export interface Endpoint {
  /** The endpoint id (1-65535): the key of its policy map. */
  readonly id: number;
  /** Its security identity. */
  readonly identity: number;
  /** Its labels, formatted (`k8s:app=web`), sorted. */
  readonly labels: readonly string[];
  /** The path of the pod's network namespace. */
  readonly netns: string;
  /** The interface inside the pod. */
  readonly ifname: string;
  /** The host-side veth in the node's namespace. */
  readonly hostIfname: string;
  /** Its interface index. */
  readonly hostIfindex: number;
  /** The pod's IPv4 address. */
  readonly ipv4: string;
  /** The pod's IPv6 address, if any. */
  readonly ipv6: string | undefined;
  /** The pod interface's MAC. */
  readonly mac: string;
  /** The host-side veth's MAC. */
  readonly hostMac: string;
  /** Whether its ingress and egress policy are enforced (some rule selects it in that direction). */
  readonly enforcement: {
    /** Whether a rule selects the endpoint for ingress (then anything not allowed is dropped). */
    readonly ingress: boolean;
    /** Whether a rule selects the endpoint for egress. */
    readonly egress: boolean;
  };
  /** Whether its policy map refused an entry because it was full (see `NodeStatus.counters.policyMapFull`). */
  readonly policyMapFull: boolean;
  /**
   * Whether another plugin made its interface ({@link EndpointSpec.existing}):
   * the node leaves the veth, addresses and routes alone. {@link Node}
   * always sets it; optional so that views made elsewhere stay valid.
   */
  readonly existing?: boolean;
}

/**
 * The field of an {@link EndpointSpec} an {@link EndpointError} is about
 * (`"id"` for {@link Node.removeEndpoint} of an unknown endpoint).
 *
 * @example Reacting to the field
 * ```ts no-run
 * import type { EndpointError, EndpointField } from "@dp/datapath";
 * declare const err: EndpointError;
 * const field: EndpointField = err.field;
 * if (field === "netns") console.log("no such pod namespace");
 * ```
 */
export type EndpointField = "netns" | "ifname" | "ipv4" | "ipv6" | "labels" | "existing" | "id";

/**
 * An endpoint that cannot be added or removed as asked: invalid labels or
 * addresses, an address another endpoint (or the router) has, an unknown
 * network namespace or endpoint id. Nothing was changed.
 *
 * @example Catching a duplicate address
 * ```ts no-run
 * import { EndpointError, type Node } from "@dp/datapath";
 * declare const node: Node;
 * try {
 *   await node.addEndpoint({ netns: "pod2", ipv4: "10.0.1.5", labels: ["k8s:app=db"] });
 * } catch (err) {
 *   if (err instanceof EndpointError) console.log(err.field); // "ipv4"
 * }
 * ```
 */
export class EndpointError extends TypeError {
  /** Always `"EndpointError"`. */
  override readonly name: string = "EndpointError";
  /** The endpoint: its id, or the address it was to have. */
  readonly endpoint: string;
  /** The field that is wrong. */
  readonly field: EndpointField;

  /**
   * Creates the error.
   *
   * @param action `add` or `remove`.
   * @param endpoint The endpoint: its id, or the address it was to have.
   * @param field The field that is wrong.
   * @param problem What is wrong.
   * @param options The cause.
   */
  constructor(
    action: "add" | "remove",
    endpoint: string,
    field: EndpointField,
    problem: string,
    options?: ErrorOptions,
  ) {
    super(`Cannot ${action} endpoint ${JSON.stringify(endpoint)}: ${field} ${problem}`, options);
    this.endpoint = endpoint;
    this.field = field;
  }
}
