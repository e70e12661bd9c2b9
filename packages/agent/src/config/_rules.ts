// Rules across keys: contradictions (errors), and what asks for something
// dp does not do yet (reported, not errors).
import type { AgentConfig } from "./agent_config.ts";
import type { ConfigProblem } from "./config_error.ts";
import { formatValue } from "./_coerce.ts";
import { FIELDS } from "./_fields.ts";

/** The keys only `ipam: eni` reads. */
const ENI_KEYS = [
  "ec2-api-endpoint",
  "eni-imds-endpoint",
  "eni-pre-allocate",
  "eni-min-allocate",
  "eni-max-above-watermark",
] as const;

/** `routing-mode` as it takes effect: the key, else what `tunnel` implies, else native. */
export function effectiveRoutingMode(config: AgentConfig): "native" | "tunnel" {
  if (config["routing-mode"] !== undefined) return config["routing-mode"];
  return config.tunnel === "vxlan" || config.tunnel === "geneve" ? "tunnel" : "native";
}

function contradiction(
  key: keyof AgentConfig,
  value: unknown,
  other: keyof AgentConfig,
  otherValue: unknown,
  expected: string,
): ConfigProblem {
  return {
    key,
    value,
    expected,
    message: `${key}: ${formatValue(value)} contradicts ${other}: ${formatValue(otherValue)} (expected ${expected})`,
  };
}

/** Keys that cannot hold together (Cilium refuses to start on these too). */
export function findContradictions(config: AgentConfig): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  if (!config["enable-ipv4"] && !config["enable-ipv6"]) {
    problems.push(
      contradiction("enable-ipv4", false, "enable-ipv6", false, "at least one of enable-ipv4 and enable-ipv6 true"),
    );
  }
  const tunnel = config.tunnel;
  const mode = config["routing-mode"];
  if (mode === "native" && (tunnel === "vxlan" || tunnel === "geneve")) {
    problems.push(contradiction("routing-mode", mode, "tunnel", tunnel, 'routing-mode "tunnel", or tunnel "disabled"'));
  }
  if (mode === "tunnel" && tunnel === "disabled") {
    problems.push(contradiction("routing-mode", mode, "tunnel", tunnel, 'routing-mode "native", or tunnel "vxlan"'));
  }
  if (config["auto-direct-node-routes"] && effectiveRoutingMode(config) === "tunnel") {
    problems.push(
      contradiction(
        "auto-direct-node-routes",
        true,
        mode !== undefined ? "routing-mode" : "tunnel",
        mode ?? tunnel,
        "auto-direct-node-routes only with native routing",
      ),
    );
  }
  if (config["enable-ipsec"] && config["enable-wireguard"]) {
    problems.push(contradiction("enable-wireguard", true, "enable-ipsec", true, "at most one encryption"));
  }
  if (config["enable-ipsec"] && config["ipsec-key-file"] === "") {
    problems.push(contradiction("ipsec-key-file", "", "enable-ipsec", true, "the path of the IPsec key file"));
  }
  if (config.ipam === "eni" && !config["enable-ipv4"]) {
    problems.push(
      contradiction(
        "enable-ipv4",
        false,
        "ipam",
        "eni",
        "enable-ipv4 true: ENI addresses are IPv4 (Cilium's ENI mode is IPv4 only)",
      ),
    );
  }
  if (config.ipam !== "eni") {
    for (const key of ENI_KEYS) {
      if (config[key] !== FIELDS[key].default)
        problems.push(
          contradiction(key, config[key], "ipam", config.ipam, `ipam "eni" for the ENI keys, or ${key} unset`),
        );
    }
  }
  if (config["cluster-id"] !== 0 && config["cluster-name"] === "default") {
    problems.push(
      contradiction(
        "cluster-id",
        config["cluster-id"],
        "cluster-name",
        "default",
        'cluster-id 0 with the cluster name "default", or a cluster-name of its own',
      ),
    );
  }
  const etcdConfig = config["etcd-config"] !== "";
  const etcdPath = config["etcd-config-path"] !== "";
  if (config.kvstore === "etcd" && !etcdConfig && !etcdPath) {
    problems.push(
      contradiction("kvstore", "etcd", "etcd-config", "", "etcd-config or etcd-config-path with kvstore etcd"),
    );
  }
  if (etcdConfig && etcdPath) {
    // etcd-config holds a whole YAML document: name it, do not print it.
    problems.push({
      key: "etcd-config-path",
      value: config["etcd-config-path"],
      expected: "one of etcd-config and etcd-config-path",
      message: `etcd-config-path: ${formatValue(config["etcd-config-path"])} contradicts etcd-config: set (expected one of etcd-config and etcd-config-path)`,
    });
  }
  if (config["identity-allocation-mode"] === "kvstore" && config.kvstore !== "etcd") {
    problems.push(
      contradiction(
        "identity-allocation-mode",
        "kvstore",
        "kvstore",
        config.kvstore,
        'kvstore "etcd" for identities in the kvstore, or identity-allocation-mode "crd"',
      ),
    );
  }
  return problems;
}

/** A key that asks for something this version does not do, and what. */
export interface Unsupported {
  readonly key: string;
  readonly message: string;
}

/** Every key asking for something not supported yet, in key order. */
export function findUnsupported(config: AgentConfig): Unsupported[] {
  const out: Unsupported[] = [];
  const add = (key: keyof AgentConfig, what: string, note?: string): void => {
    const why = note === undefined ? "" : ` (${note})`;
    const value = formatValue(config[key]);
    out.push({ key, message: `${key}: ${value}: ${what} not supported yet${why}` });
  };
  if (!config["enable-ipv4"]) add("enable-ipv4", "IPv6-only nodes are", "the datapath keeps IPv4 on");
  if (config.ipam !== "cluster-pool" && config.ipam !== "eni") {
    add("ipam", "this IPAM mode is", "addresses come from ipv4-range and ipv6-range, as with cluster-pool");
  }
  if (config.ipam === "eni" && config["enable-ipv4"] && config["enable-ipv6"]) {
    add("enable-ipv6", "IPv6 addresses for endpoints with ipam eni are", "ENI mode is IPv4 only, as in Cilium");
  }
  if (config.tunnel === "vxlan" || config.tunnel === "geneve") add("tunnel", "tunnelling is", "dp routes natively");
  if (config["routing-mode"] === "tunnel") add("routing-mode", "tunnel routing is", "dp routes natively");
  if (config["auto-direct-node-routes"]) add("auto-direct-node-routes", "routes to other nodes are");
  if (config["bpf-nat-global-max"] !== undefined) add("bpf-nat-global-max", "the NAT table is");
  if (config["bpf-lb-algorithm"] !== "random") add("bpf-lb-algorithm", "services are");
  if (config["bpf-lb-map-max"] !== undefined) add("bpf-lb-map-max", "services are");
  for (const key of ["enable-bpf-masquerade", "enable-ipv4-masquerade", "enable-ipv6-masquerade"] as const) {
    if (config[key]) add(key, "masquerading is");
  }
  if (config["egress-masquerade-interfaces"].length > 0) add("egress-masquerade-interfaces", "masquerading is");
  if (config["prefilter-device"] !== "") add("prefilter-device", "the XDP prefilter is");
  if (config["enable-endpoint-routes"]) add("enable-endpoint-routes", "per-endpoint routes are");
  if (config["enable-wireguard"]) add("enable-wireguard", "WireGuard encryption is");
  const kpr = config["kube-proxy-replacement"];
  if (kpr !== "false" && kpr !== "disabled") add("kube-proxy-replacement", "services are");
  if (config["enable-l7-proxy"]) add("enable-l7-proxy", "the L7 proxy is");
  if (config["sockops-enable"]) add("sockops-enable", "sockops acceleration is");
  return out;
}
