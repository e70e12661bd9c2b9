import type { EndpointSelector } from "../labels/selector.ts";

/**
 * A protocol in a port rule, as CiliumNetworkPolicy writes it. `ANY` with a
 * port means TCP, UDP and SCTP on that port; `ANY` without one means every
 * protocol. For `ICMP`/`ICMPv6` the port is the ICMP type.
 *
 * @example ANY with a port
 * ```ts
 * import assert from "node:assert/strict";
 * import { createPolicyEngine, type PolicyProtocolName } from "@dp/datapath";
 *
 * const protocol: PolicyProtocolName = "ANY";
 * const engine = createPolicyEngine();
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * engine.setRules([{ endpointSelector: {}, ingress: [{ toPorts: [{ ports: [{ port: 53, protocol }] }] }] }]);
 * assert.deepEqual(engine.endpointPolicy(1)?.ingress.entries.map((e) => e.protocol), [6, 17, 132]);
 * ```
 */
export type PolicyProtocolName = "TCP" | "UDP" | "SCTP" | "ICMP" | "ICMPv6" | "ANY";

/**
 * A port, port range or ICMP type with its protocol. `port` 0 or absent
 * means every port of the protocol.
 *
 * @example Forms of ports
 * ```ts
 * import type { PortProtocol } from "@dp/datapath";
 *
 * const ports: PortProtocol[] = [
 *   { port: 80, protocol: "TCP" },
 *   { port: "53", protocol: "UDP" },
 *   { port: 8000, endPort: 8080, protocol: "TCP" },
 *   { port: 8, protocol: "ICMP" }, // echo request
 * ];
 * void ports;
 * ```
 */
export interface PortProtocol {
  /** The port (or first port of a range, or ICMP type), as a number or numeric string; 0 or absent for all. */
  readonly port?: number | string;
  /** The last port of a range (inclusive, at least `port`). */
  readonly endPort?: number;
  /**
   * The protocol.
   *
   * @default "ANY"
   */
  readonly protocol?: PolicyProtocolName;
}

/**
 * The `toPorts` item of a rule: traffic must match one of `ports` (and a
 * peer of the same rule). Without `ports`, every port and protocol.
 *
 * @example HTTP and HTTPS
 * ```ts
 * import type { PortRule } from "@dp/datapath";
 *
 * const web: PortRule = { ports: [{ port: 80, protocol: "TCP" }, { port: 443, protocol: "TCP" }] };
 * void web;
 * ```
 */
export interface PortRule {
  /** The ports; any of them matches. */
  readonly ports?: readonly PortProtocol[];
}

/**
 * A CIDR peer with exceptions (`fromCIDRSet`/`toCIDRSet`).
 *
 * @example A network except one subnet
 * ```ts
 * import type { CidrRule } from "@dp/datapath";
 *
 * const outside: CidrRule = { cidr: "10.0.0.0/8", except: ["10.96.0.0/12"] };
 * void outside;
 * ```
 */
export interface CidrRule {
  /** The prefix (host bits zero). */
  readonly cidr: string;
  /** Prefixes inside `cidr` that are not selected. */
  readonly except?: readonly string[];
}

/**
 * A policy entity, as Cilium names them: `host` (this node), `world`
 * (outside the cluster: the world identity and every CIDR identity),
 * `cluster` (every identity that is neither), `all` (any identity), and
 * the single reserved identities `remote-node`, `health`, `init`,
 * `unmanaged`, `kube-apiserver` and `ingress`.
 *
 * @example world covers CIDR identities
 * ```ts
 * import assert from "node:assert/strict";
 * import { createLocalIdentityAllocator, createPolicyEngine, type PolicyEntity } from "@dp/datapath";
 *
 * const allocator = createLocalIdentityAllocator();
 * const engine = createPolicyEngine({ allocator });
 * const dns = await allocator.allocateCidr("8.8.8.8/32");
 * engine.upsertEndpoint({ id: 1, identity: 300, labels: ["k8s:app=web"] });
 * const entity: PolicyEntity = "world";
 * engine.setRules([{ endpointSelector: {}, egress: [{ toEntities: [entity] }] }]);
 * assert.deepEqual(engine.endpointPolicy(1)?.egress.entries.map((e) => e.identity), [2, dns.id]);
 * ```
 */
export type PolicyEntity =
  "host" | "world" | "cluster" | "all" | "remote-node" | "health" | "init" | "unmanaged" | "kube-apiserver" | "ingress";

/**
 * One ingress (or ingressDeny) section of a rule: the traffic it matches
 * comes from any of the peers (`from*`) on any of the `toPorts`. Without
 * peers but with `toPorts`, it matches every peer; with neither, nothing
 * (the rule then only turns default deny on).
 *
 * @example Web clients on port 80
 * ```ts
 * import type { IngressRule } from "@dp/datapath";
 *
 * const fromClients: IngressRule = {
 *   fromEndpoints: [{ matchLabels: { "k8s:role": "client" } }],
 *   toPorts: [{ ports: [{ port: 80, protocol: "TCP" }] }],
 * };
 * void fromClients;
 * ```
 */
export interface IngressRule {
  /** Endpoints (identities) by labels; `{}` selects every identity. */
  readonly fromEndpoints?: readonly EndpointSelector[];
  /** Prefixes. */
  readonly fromCIDR?: readonly string[];
  /** Prefixes with exceptions. */
  readonly fromCIDRSet?: readonly CidrRule[];
  /** Entities. */
  readonly fromEntities?: readonly PolicyEntity[];
  /** Ports; every port and protocol when absent. */
  readonly toPorts?: readonly PortRule[];
}

/**
 * One egress (or egressDeny) section of a rule: the traffic it matches
 * goes to any of the peers (`to*`) on any of the `toPorts`; otherwise as
 * {@link IngressRule}.
 *
 * @example DNS to the world
 * ```ts
 * import type { EgressRule } from "@dp/datapath";
 *
 * const dns: EgressRule = { toEntities: ["world"], toPorts: [{ ports: [{ port: 53, protocol: "UDP" }] }] };
 * void dns;
 * ```
 */
export interface EgressRule {
  /** Endpoints (identities) by labels; `{}` selects every identity. */
  readonly toEndpoints?: readonly EndpointSelector[];
  /** Prefixes. */
  readonly toCIDR?: readonly string[];
  /** Prefixes with exceptions. */
  readonly toCIDRSet?: readonly CidrRule[];
  /** Entities. */
  readonly toEntities?: readonly PolicyEntity[];
  /** Ports; every port and protocol when absent. */
  readonly toPorts?: readonly PortRule[];
}

/**
 * A policy rule in the shape of a CiliumNetworkPolicy spec, as plain data
 * (parsed YAML or JSON). It applies to the endpoints `endpointSelector`
 * selects. An endpoint no rule selects in a direction allows everything
 * in that direction; once a rule with sections for that direction
 * (allow or deny) selects it, what no allow section matches is denied,
 * and deny sections beat allow sections.
 *
 * @example Allow web from clients, deny port 22 from anywhere
 * ```ts
 * import { validatePolicyRules, type PolicyRule } from "@dp/datapath";
 *
 * const rule: PolicyRule = {
 *   name: "web",
 *   endpointSelector: { matchLabels: { "k8s:app": "web" } },
 *   ingress: [{ fromEndpoints: [{ matchLabels: { "k8s:role": "client" } }] }],
 *   ingressDeny: [{ toPorts: [{ ports: [{ port: 22, protocol: "TCP" }] }] }],
 * };
 * validatePolicyRules([rule]);
 * ```
 */
export interface PolicyRule {
  /** The rule's name: unique within a rule set; names it in errors and explanations and lets it be replaced or deleted. */
  readonly name?: string;
  /** Free text. */
  readonly description?: string;
  /** The endpoints the rule applies to; `{}` selects all. */
  readonly endpointSelector: EndpointSelector;
  /** Allowed incoming traffic. */
  readonly ingress?: readonly IngressRule[];
  /** Allowed outgoing traffic. */
  readonly egress?: readonly EgressRule[];
  /** Denied incoming traffic. */
  readonly ingressDeny?: readonly IngressRule[];
  /** Denied outgoing traffic. */
  readonly egressDeny?: readonly EgressRule[];
}
