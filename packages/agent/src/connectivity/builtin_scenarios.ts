// The built-in scenarios, named after Cilium's connectivity test. Pods:
// client (kind=client, name=client), client2 (kind=client, name=client2,
// other=client), echo-same-node (kind=echo). Every expectation follows
// from the rules: an endpoint no rule selects in a direction allows all
// in that direction; once selected, only what a rule allows passes;
// replies of allowed connections pass; deny beats allow.
import type { ConnectivityScenario } from "./scenario.ts";

function kind(k: string): { matchLabels: Record<string, string> } {
  return { matchLabels: { kind: k } };
}
const tcp8080 = [{ ports: [{ port: 8080, protocol: "TCP" as const }] }];

/**
 * The scenarios every connectivity test runs (before registered ones).
 *
 * @example Their names
 * ```ts no-run
 * import { BUILTIN_SCENARIOS } from "@dp/agent";
 * console.log(BUILTIN_SCENARIOS.map((s) => s.name).join(" "));
 * ```
 */
export const BUILTIN_SCENARIOS: readonly ConnectivityScenario[] = [
  {
    name: "no-policies",
    description: "no rule selects any pod: everything flows",
    rules: () => [],
    actions: [
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "allow" },
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", family: "ipv6", expect: "allow" },
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "udp", expect: "allow" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "icmp", expect: "allow" },
      { name: "client-to-client", from: "client", to: "client2", protocol: "icmp", expect: "allow" },
      { name: "pod-to-host", from: "client", to: "host", protocol: "icmp", expect: "allow" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "http", expect: "allow" },
      { name: "pod-to-world", from: "client2", to: "world", protocol: "icmp", family: "ipv6", expect: "allow" },
      { name: "world-to-pod", from: "world", to: "echo-same-node", protocol: "http", expect: "allow" },
    ],
  },
  {
    name: "client-egress",
    description: "clients may send only to echo on TCP 8080",
    rules: () => [{ endpointSelector: kind("client"), egress: [{ toEndpoints: [kind("echo")], toPorts: tcp8080 }] }],
    actions: [
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "allow" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "http", family: "ipv6", expect: "allow" },
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "udp", expect: "drop" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "icmp", expect: "drop" },
      { name: "client-to-client", from: "client", to: "client2", protocol: "icmp", expect: "drop" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "http", expect: "drop" },
    ],
  },
  {
    name: "client-ingress",
    description: "clients admit only pods labelled other=client",
    rules: () => [
      { endpointSelector: kind("client"), ingress: [{ fromEndpoints: [{ matchLabels: { other: "client" } }] }] },
    ],
    actions: [
      { name: "client-to-client", from: "client2", to: "client", protocol: "icmp", expect: "allow" },
      { name: "client-to-client", from: "client", to: "client2", protocol: "icmp", expect: "drop" },
      { name: "client-to-client", from: "client", to: "client2", protocol: "http", family: "ipv6", expect: "drop" },
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "allow" },
      { name: "world-to-pod", from: "world", to: "client", protocol: "http", expect: "drop" },
    ],
  },
  {
    name: "echo-ingress-l4",
    description: "echo admits clients on TCP 8080 only",
    rules: () => [{ endpointSelector: kind("echo"), ingress: [{ fromEndpoints: [kind("client")], toPorts: tcp8080 }] }],
    actions: [
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "allow" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "http", family: "ipv6", expect: "allow" },
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "udp", expect: "drop" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "icmp", expect: "drop" },
      { name: "world-to-pod", from: "world", to: "echo-same-node", protocol: "http", expect: "drop" },
    ],
  },
  {
    name: "all-ingress-deny",
    description: "every pod is selected for ingress and nothing is allowed in",
    rules: () => [{ endpointSelector: {}, ingress: [{}] }],
    actions: [
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "drop" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "udp", family: "ipv6", expect: "drop" },
      { name: "client-to-client", from: "client", to: "client2", protocol: "icmp", expect: "drop" },
      { name: "world-to-pod", from: "world", to: "echo-same-node", protocol: "http", expect: "drop" },
      { name: "pod-to-host", from: "client", to: "host", protocol: "icmp", expect: "allow" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "http", expect: "allow" },
    ],
  },
  {
    name: "all-egress-deny",
    description: "every pod is selected for egress and nothing is allowed out",
    rules: () => [{ endpointSelector: {}, egress: [{}] }],
    actions: [
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "drop" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "icmp", family: "ipv6", expect: "drop" },
      { name: "pod-to-host", from: "client", to: "host", protocol: "icmp", expect: "drop" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "http", expect: "drop" },
      { name: "world-to-pod", from: "world", to: "echo-same-node", protocol: "http", expect: "allow" },
    ],
  },
  {
    name: "to-cidr-external",
    description: "client may send only to the world's address (toCIDR)",
    rules: (ctx) => [
      {
        endpointSelector: { matchLabels: { name: "client" } },
        egress: [{ toCIDR: [ctx.world?.ipv4 === undefined ? "192.0.2.1/32" : `${ctx.world.ipv4}/32`] }],
      },
    ],
    actions: [
      { name: "pod-to-world", from: "client", to: "world", protocol: "http", expect: "allow" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "icmp", expect: "allow" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "http", family: "ipv6", expect: "drop" },
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "drop" },
      { name: "pod-to-world", from: "client2", to: "world", protocol: "http", expect: "allow" },
    ],
  },
  {
    name: "client-egress-to-echo-deny",
    description: "clients may send anywhere except to echo (egressDeny beats the allow)",
    rules: () => [
      {
        endpointSelector: kind("client"),
        egress: [{ toEntities: ["all"] }],
        egressDeny: [{ toEndpoints: [kind("echo")] }],
      },
    ],
    actions: [
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "drop" },
      { name: "pod-to-pod", from: "client2", to: "echo-same-node", protocol: "icmp", family: "ipv6", expect: "drop" },
      { name: "client-to-client", from: "client", to: "client2", protocol: "icmp", expect: "allow" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "http", expect: "allow" },
    ],
  },
  {
    name: "host-entity-egress",
    description: "client may send only to the host (toEntities host)",
    rules: () => [{ endpointSelector: { matchLabels: { name: "client" } }, egress: [{ toEntities: ["host"] }] }],
    actions: [
      { name: "pod-to-host", from: "client", to: "host", protocol: "icmp", expect: "allow" },
      { name: "pod-to-host", from: "client", to: "host", protocol: "icmp", family: "ipv6", expect: "allow" },
      { name: "pod-to-pod", from: "client", to: "echo-same-node", protocol: "http", expect: "drop" },
      { name: "pod-to-world", from: "client", to: "world", protocol: "icmp", expect: "drop" },
    ],
  },
];
