// The connectivity test's scenarios: each is policy rules plus actions
// (a probe from one peer to another) with the verdict the rules imply.
// The registry (registry.ts) holds them; later features append theirs with
// registerScenario().
import type { PolicyRule } from "@dp/datapath";

/** The pods the connectivity test deploys, named as in Cilium's test. */
export type ConnectivityPod = "client" | "client2" | "echo-same-node";

/** The labels of each pod (Cilium's `kind`, `name` and `other`). */
export const CONNECTIVITY_PODS: Readonly<Record<ConnectivityPod, readonly string[]>> = {
  client: ["k8s:kind=client", "k8s:name=client"],
  client2: ["k8s:kind=client", "k8s:name=client2", "k8s:other=client"],
  "echo-same-node": ["k8s:kind=echo", "k8s:name=echo-same-node"],
};

/** The HTTP port every server of the test listens on (UDP echo on the next port). */
export const CONNECTIVITY_HTTP_PORT = 8080;

/** One probe of a scenario and the verdict its rules imply. */
export interface ConnectivityActionSpec {
  /** Cilium's action name: `pod-to-pod`, `pod-to-host`, `pod-to-world`, `client-to-client`, `world-to-pod`, ... */
  readonly name: string;
  /** Where the probe runs: a pod, or the outside namespace. */
  readonly from: ConnectivityPod | "world";
  /** The destination: a pod, the node (host) or the outside (world). */
  readonly to: ConnectivityPod | "host" | "world";
  /** HTTP over TCP (port 8080), a UDP echo (port 8081) or an ICMP echo. */
  readonly protocol: "http" | "udp" | "icmp";
  /**
   * The address family.
   *
   * @default "ipv4"
   */
  readonly family?: "ipv4" | "ipv6";
  /** What the scenario's rules imply. */
  readonly expect: "allow" | "drop";
}

/** What scenarios know about the targets when they build their rules. */
export interface ScenarioContext {
  /** The outside ("world") addresses, when there is a world target. */
  readonly world:
    | {
        /** The world's IPv4 address, if it has one. */
        readonly ipv4?: string;
        /** The world's IPv6 address, if it has one. */
        readonly ipv6?: string;
      }
    | undefined;
  /** The node's addresses, when known. */
  readonly host:
    | {
        /** The node's IPv4 address, if known. */
        readonly ipv4?: string;
        /** The node's IPv6 address, if known. */
        readonly ipv6?: string;
      }
    | undefined;
}

/**
 * A connectivity-test scenario: rules (named by the test when imported)
 * and the actions that check them.
 *
 * @example A scenario of a later feature
 * ```ts no-run
 * import { registerScenario, type ConnectivityScenario } from "@dp/agent";
 *
 * const scenario: ConnectivityScenario = {
 *   name: "echo-ingress-udp",
 *   description: "echo admits UDP from clients only",
 *   rules: () => [{ endpointSelector: { matchLabels: { kind: "echo" } }, ingress: [{ fromEndpoints: [{ matchLabels: { kind: "client" } }], toPorts: [{ ports: [{ port: 8081, protocol: "UDP" }] }] }] }],
 *   actions: [{ name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "udp", expect: "allow" }],
 * };
 * registerScenario(scenario);
 * ```
 */
export interface ConnectivityScenario {
  /** The name (Cilium's where one corresponds). */
  readonly name: string;
  /** One line for humans. */
  readonly description: string;
  /** The rules; the test names them `connectivity-<scenario>[-<n>]`. */
  readonly rules: (context: ScenarioContext) => readonly PolicyRule[];
  /** The probes and the verdict the rules imply for each. */
  readonly actions: readonly ConnectivityActionSpec[];
}
