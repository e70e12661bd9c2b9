/**
 * The agent's configuration after {@link loadConfig}: a plain object with
 * Cilium's kebab-case key names (`config["enable-ipv4"]`), every key
 * present and defaulted. Values keep the shape of the config file, so
 * `JSON.stringify(config)` loads back into the same object. Map sizes the
 * user did not set stay `undefined` (the node then takes its defaults or
 * sizes conntrack from memory); `undefined` in `enable-host-legacy-routing`,
 * `tunnel` and `routing-mode` means "decide from the rest"
 * ({@link resolveConfig}). See docs/config.md for every key.
 *
 * @example Reading keys
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, type AgentConfig } from "@dp/agent";
 * const config: AgentConfig = loadConfig({ text: "enable-ipv6: \"false\"" }).config;
 * assert.equal(config["enable-ipv6"], false);
 * assert.equal(config["socket-path"], "/var/run/dp/dp.sock");
 * ```
 */
export interface AgentConfig {
  // --- supported ---
  /** The cluster's name (lowercase letters, digits and `-`, at most 32). */
  readonly "cluster-name": string;
  /** The cluster's id, 0–255. */
  readonly "cluster-id": number;
  /** Where the agent keeps its files (the API socket by default). */
  readonly "state-dir": string;
  /** The API's unix socket; defaults to `<state-dir>/dp.sock`. */
  readonly "socket-path": string;
  /** The bpffs mount; the node's maps and links are pinned in `<bpf-root>/dp`. */
  readonly "bpf-root": string;
  /** The node's network namespace (a name under /run/netns or a path); `""` = the agent's own. */
  readonly netns: string;
  /** Network devices; the first is the uplink. May be empty. */
  readonly devices: readonly string[];
  /** The IPv4 pod range (CIDR); its first address is the router. */
  readonly "ipv4-range": string;
  /** The IPv6 pod range (CIDR); its first address is the router. */
  readonly "ipv6-range": string;
  /** IPv4 on. */
  readonly "enable-ipv4": boolean;
  /** IPv6 on. */
  readonly "enable-ipv6": boolean;
  /** `true`: legacy host routing; `false`: BPF host routing when possible; `undefined`: decide from the kernel. */
  readonly "enable-host-legacy-routing": boolean | undefined;
  /** `true`: attach with tcx links when the kernel has them; `false`: netlink cls_bpf filters. */
  readonly "enable-tcx": boolean;
  /** TCP conntrack entries; `undefined` = the default or sized from memory. */
  readonly "bpf-ct-global-tcp-max": number | undefined;
  /** Non-TCP conntrack entries; `undefined` = the default or sized from memory. */
  readonly "bpf-ct-global-any-max": number | undefined;
  /** Policy map entries per endpoint. */
  readonly "bpf-policy-map-max": number;
  /** Share of memory for the conntrack tables not set explicitly; 0 = off. */
  readonly "bpf-map-dynamic-size-ratio": number;
  /** Conntrack GC interval as a duration (`"5m"`); `"0s"` = adaptive. */
  readonly "conntrack-gc-interval": string;
  /** The IPAM mode: `cluster-pool` (from `ipv4-range`/`ipv6-range`) or `eni` (AWS ENI secondary addresses, IPv4 only); others are not supported yet. */
  readonly ipam: string;
  /** With `ipam: eni`: the EC2 API endpoint; `""` = the region's AWS endpoint. */
  readonly "ec2-api-endpoint": string;
  /** With `ipam: eni`: the instance metadata (IMDSv2) endpoint (dp's key); `""` = `AWS_EC2_METADATA_SERVICE_ENDPOINT`, else AWS's 169.254.169.254. */
  readonly "eni-imds-endpoint": string;
  /** With `ipam: eni`: addresses to keep free beyond those in use (CiliumNode `spec.ipam.pre-allocate`). */
  readonly "eni-pre-allocate": number;
  /** With `ipam: eni`: addresses to hold at least (`spec.ipam.min-allocate`). */
  readonly "eni-min-allocate": number;
  /** With `ipam: eni`: addresses to allocate beyond the watermark in one go (`spec.ipam.max-above-watermark`). */
  readonly "eni-max-above-watermark": number;
  /** Debug logs and trace events. */
  readonly debug: boolean;
  /** Log lines as `text` or `json`. */
  readonly "log-format": "text" | "json";
  /** Prometheus metrics address (`":9962"`, `"127.0.0.1:9962"`); `""` = off. */
  readonly "prometheus-serve-addr": string;
  /** On SIGTERM: `true` removes the datapath, `false` leaves it running for the next agent. */
  readonly "agent-teardown-on-stop": boolean;
  /** The key-value store: `""` (none) or `etcd` (node registry, and identities with `identity-allocation-mode: kvstore`). */
  readonly kvstore: "" | "etcd";
  /** The etcd client configuration as inline YAML (Cilium's etcd-config format); `""` = none. */
  readonly "etcd-config": string;
  /** The etcd client configuration file; `""` = none. */
  readonly "etcd-config-path": string;
  /** `kvstore`: identities allocated in etcd; `crd` (the default): on the node. */
  readonly "identity-allocation-mode": "crd" | "kvstore";
  /** The node's name in the kvstore; `""` = the kernel's host name. */
  readonly "node-name": string;
  // --- accepted, not supported yet ---
  /** Cilium's older tunnel key: `disabled`, `vxlan` or `geneve`; `undefined` = follow `routing-mode`. */
  readonly tunnel: "disabled" | "vxlan" | "geneve" | undefined;
  /** `native` or `tunnel`; `undefined` = follow `tunnel` (native when neither is set). */
  readonly "routing-mode": "native" | "tunnel" | undefined;
  /** Install routes to other nodes' pod ranges. */
  readonly "auto-direct-node-routes": boolean;
  /** NAT table entries; `undefined` = not set. */
  readonly "bpf-nat-global-max": number | undefined;
  /** Service backend selection: `random` or `maglev`. */
  readonly "bpf-lb-algorithm": "random" | "maglev";
  /** Service map entries; `undefined` = not set. */
  readonly "bpf-lb-map-max": number | undefined;
  /** Masquerade in BPF instead of iptables. */
  readonly "enable-bpf-masquerade": boolean;
  /** Masquerade IPv4 traffic leaving the node. */
  readonly "enable-ipv4-masquerade": boolean;
  /** Masquerade IPv6 traffic leaving the node. */
  readonly "enable-ipv6-masquerade": boolean;
  /** Devices to masquerade on. */
  readonly "egress-masquerade-interfaces": readonly string[];
  /** An XDP prefilter device; `""` = none. */
  readonly "prefilter-device": string;
  /** Per-endpoint routes instead of one route for the pod range. */
  readonly "enable-endpoint-routes": boolean;
  /** IPsec encryption. */
  readonly "enable-ipsec": boolean;
  /** The IPsec key file (`cilium-ipsec-keys` format). */
  readonly "ipsec-key-file": string;
  /** WireGuard encryption. */
  readonly "enable-wireguard": boolean;
  /** kube-proxy replacement: `true`/`false`, or Cilium's older `strict`, `probe`, `partial`, `disabled`. */
  readonly "kube-proxy-replacement": "true" | "false" | "strict" | "probe" | "partial" | "disabled";
  /** The L7 proxy. */
  readonly "enable-l7-proxy": boolean;
  /** Socket-level acceleration with sockops. */
  readonly "sockops-enable": boolean;
}
