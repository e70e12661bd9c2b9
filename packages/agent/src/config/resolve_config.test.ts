import { resolveMapSizes } from "@dp/datapath";
import { describe, expect, test } from "vitest";
import { ConfigError, loadConfig, resolveConfig, type AgentConfig, type KernelFeatures } from "../mod.ts";

const NEW_KERNEL: KernelFeatures = { redirectPeer: true, redirectNeigh: true, tcx: true };

function configOf(text: string): AgentConfig {
  return loadConfig({ text }).config;
}

describe("resolveConfig() host routing", () => {
  // [enable-host-legacy-routing, redirectPeer, redirectNeigh, mode, reason]
  const cases: readonly (readonly [string, boolean, boolean, "bpf" | "legacy", string])[] = [
    [
      "",
      true,
      true,
      "bpf",
      "enable-host-legacy-routing is unset and the kernel has bpf_redirect_peer and bpf_redirect_neigh",
    ],
    [
      "",
      false,
      true,
      "legacy",
      "BPF host routing needs the kernel's bpf_redirect_peer (Linux 5.10+), which this kernel lacks; falling back to legacy host routing",
    ],
    [
      "",
      true,
      false,
      "legacy",
      "BPF host routing needs the kernel's bpf_redirect_neigh (Linux 5.10+), which this kernel lacks; falling back to legacy host routing",
    ],
    [
      "",
      false,
      false,
      "legacy",
      "BPF host routing needs the kernel's bpf_redirect_peer and bpf_redirect_neigh (Linux 5.10+), which this kernel lacks; falling back to legacy host routing",
    ],
    [
      "False",
      true,
      true,
      "bpf",
      "enable-host-legacy-routing is false and the kernel has bpf_redirect_peer and bpf_redirect_neigh",
    ],
    [
      "False",
      false,
      true,
      "legacy",
      "BPF host routing needs the kernel's bpf_redirect_peer (Linux 5.10+), which this kernel lacks; falling back to legacy host routing (enable-host-legacy-routing is false)",
    ],
    [
      "False",
      true,
      false,
      "legacy",
      "BPF host routing needs the kernel's bpf_redirect_neigh (Linux 5.10+), which this kernel lacks; falling back to legacy host routing (enable-host-legacy-routing is false)",
    ],
    [
      "False",
      false,
      false,
      "legacy",
      "BPF host routing needs the kernel's bpf_redirect_peer and bpf_redirect_neigh (Linux 5.10+), which this kernel lacks; falling back to legacy host routing (enable-host-legacy-routing is false)",
    ],
    ["True", true, true, "legacy", "enable-host-legacy-routing is true"],
    ["True", false, true, "legacy", "enable-host-legacy-routing is true"],
    ["True", true, false, "legacy", "enable-host-legacy-routing is true"],
    ["True", false, false, "legacy", "enable-host-legacy-routing is true"],
  ];

  test.each(cases)(
    "resolveConfig() with enable-host-legacy-routing %j, redirectPeer %s, redirectNeigh %s chooses %s",
    (legacy, redirectPeer, redirectNeigh, mode, reason) => {
      const config = configOf(`enable-host-legacy-routing: "${legacy}"`);
      const resolved = resolveConfig(config, { redirectPeer, redirectNeigh, tcx: true });
      expect(resolved.hostRouting).toEqual({ mode, reason });
      expect(resolved.nodeOptions.hostRouting).toBe(mode);
    },
  );

  test("resolveConfig() falls back to legacy when masquerading is on without BPF masquerading", () => {
    const v4 = resolveConfig(configOf("enable-ipv4-masquerade: true"), NEW_KERNEL);
    expect(v4.hostRouting).toEqual({
      mode: "legacy",
      reason:
        "BPF host routing needs enable-bpf-masquerade when enable-ipv4-masquerade is on; falling back to legacy host routing",
    });
    const both = resolveConfig(
      configOf("enable-ipv4-masquerade: true\nenable-ipv6-masquerade: true\nenable-host-legacy-routing: false"),
      NEW_KERNEL,
    );
    expect(both.hostRouting.reason).toBe(
      "BPF host routing needs enable-bpf-masquerade when enable-ipv4-masquerade and enable-ipv6-masquerade is on; falling back to legacy host routing (enable-host-legacy-routing is false)",
    );
  });

  test("resolveConfig() keeps BPF host routing when masquerading is done in BPF", () => {
    const resolved = resolveConfig(configOf("enable-ipv4-masquerade: true\nenable-bpf-masquerade: true"), NEW_KERNEL);
    expect(resolved.hostRouting.mode).toBe("bpf");
  });

  test("resolveConfig() checks the masquerade rule before the kernel's helpers", () => {
    const resolved = resolveConfig(configOf("enable-ipv6-masquerade: true"), {
      redirectPeer: false,
      redirectNeigh: false,
      tcx: false,
    });
    expect(resolved.hostRouting.reason).toMatch(
      /^BPF host routing needs enable-bpf-masquerade when enable-ipv6-masquerade/,
    );
  });

  test("resolveConfig() falls back to legacy with endpoint routes or IPsec", () => {
    expect(resolveConfig(configOf("enable-endpoint-routes: true"), NEW_KERNEL).hostRouting).toEqual({
      mode: "legacy",
      reason: "BPF host routing is incompatible with enable-endpoint-routes; falling back to legacy host routing",
    });
    expect(resolveConfig(configOf("enable-ipsec: true\nipsec-key-file: /k"), NEW_KERNEL).hostRouting).toEqual({
      mode: "legacy",
      reason: "BPF host routing is not supported with enable-ipsec; falling back to legacy host routing",
    });
  });
});

describe("resolveConfig() attach mode", () => {
  const cases: readonly (readonly [string, boolean, "tcx" | "netlink", string])[] = [
    ["true", true, "tcx", "enable-tcx is true and the kernel has tcx links"],
    ["true", false, "netlink", "the kernel has no tcx links (Linux 6.6+); using netlink cls_bpf"],
    ["false", true, "netlink", "enable-tcx is false"],
    ["false", false, "netlink", "enable-tcx is false"],
  ];
  test.each(cases)("resolveConfig() with enable-tcx %s and tcx %s attaches with %s", (tcxKey, tcx, mode, reason) => {
    const resolved = resolveConfig(configOf(`enable-tcx: ${tcxKey}`), { ...NEW_KERNEL, tcx });
    expect(resolved.attachMode).toEqual({ mode, reason });
    expect(resolved.nodeOptions.attachMode).toBe(mode);
  });
});

describe("resolveConfig() not supported yet", () => {
  test("resolveConfig() reports nothing for the defaults", () => {
    const resolved = resolveConfig(configOf(""), NEW_KERNEL);
    expect(resolved.unsupported).toEqual([]);
    expect(resolved.masquerading).toEqual({ state: "disabled", message: "Disabled" });
    expect(resolved.kvstore).toEqual({ state: "disabled", message: "Disabled: identities are allocated on the node" });
  });

  // [config, key, message]
  const cases: readonly (readonly [string, string, string])[] = [
    [
      "enable-ipv4: false",
      "enable-ipv4",
      "enable-ipv4: false: IPv6-only nodes are not supported yet (the datapath keeps IPv4 on)",
    ],
    [
      "ipam: kubernetes",
      "ipam",
      'ipam: "kubernetes": this IPAM mode is not supported yet (addresses come from ipv4-range and ipv6-range, as with cluster-pool)',
    ],
    ["tunnel: vxlan", "tunnel", 'tunnel: "vxlan": tunnelling is not supported yet (dp routes natively)'],
    [
      "routing-mode: tunnel",
      "routing-mode",
      'routing-mode: "tunnel": tunnel routing is not supported yet (dp routes natively)',
    ],
    [
      "auto-direct-node-routes: true",
      "auto-direct-node-routes",
      "auto-direct-node-routes: true: routes to other nodes are not supported yet",
    ],
    [
      "bpf-nat-global-max: 524288",
      "bpf-nat-global-max",
      "bpf-nat-global-max: 524288: the NAT table is not supported yet",
    ],
    ["bpf-lb-algorithm: maglev", "bpf-lb-algorithm", 'bpf-lb-algorithm: "maglev": services are not supported yet'],
    ["bpf-lb-map-max: 65536", "bpf-lb-map-max", "bpf-lb-map-max: 65536: services are not supported yet"],
    [
      "enable-bpf-masquerade: true",
      "enable-bpf-masquerade",
      "enable-bpf-masquerade: true: masquerading is not supported yet",
    ],
    [
      "enable-ipv4-masquerade: true",
      "enable-ipv4-masquerade",
      "enable-ipv4-masquerade: true: masquerading is not supported yet",
    ],
    [
      "enable-ipv6-masquerade: true",
      "enable-ipv6-masquerade",
      "enable-ipv6-masquerade: true: masquerading is not supported yet",
    ],
    [
      "egress-masquerade-interfaces: eth0",
      "egress-masquerade-interfaces",
      'egress-masquerade-interfaces: ["eth0"]: masquerading is not supported yet',
    ],
    ["prefilter-device: eth0", "prefilter-device", 'prefilter-device: "eth0": the XDP prefilter is not supported yet'],
    [
      "enable-endpoint-routes: true",
      "enable-endpoint-routes",
      "enable-endpoint-routes: true: per-endpoint routes are not supported yet",
    ],
    ["enable-wireguard: true", "enable-wireguard", "enable-wireguard: true: WireGuard encryption is not supported yet"],
    [
      "kube-proxy-replacement: probe",
      "kube-proxy-replacement",
      'kube-proxy-replacement: "probe": services are not supported yet',
    ],
    [
      "kube-proxy-replacement: 'True'",
      "kube-proxy-replacement",
      'kube-proxy-replacement: "true": services are not supported yet',
    ],
    ["enable-l7-proxy: true", "enable-l7-proxy", "enable-l7-proxy: true: the L7 proxy is not supported yet"],
    ["sockops-enable: true", "sockops-enable", "sockops-enable: true: sockops acceleration is not supported yet"],
  ];

  test.each(cases)("resolveConfig() reports %j as not supported yet", (text, key, message) => {
    expect(resolveConfig(configOf(text), NEW_KERNEL).unsupported).toEqual([{ key, message }]);
  });

  test("resolveConfig() supports ipam eni, and says endpoints get no IPv6 address with it", () => {
    expect(resolveConfig(configOf("ipam: eni\nenable-ipv6: false"), NEW_KERNEL).unsupported).toEqual([]);
    expect(resolveConfig(configOf("ipam: eni"), NEW_KERNEL).unsupported).toEqual([
      {
        key: "enable-ipv6",
        message:
          "enable-ipv6: true: IPv6 addresses for endpoints with ipam eni are not supported yet (ENI mode is IPv4 only, as in Cilium)",
      },
    ]);
  });

  test("resolveConfig() does not report keys set to what dp does anyway", () => {
    const text =
      "tunnel: disabled\nrouting-mode: native\nkube-proxy-replacement: disabled\nbpf-lb-algorithm: random\nkvstore: ''";
    expect(resolveConfig(configOf(text), NEW_KERNEL).unsupported).toEqual([]);
  });

  test("resolveConfig() sums up masquerading and the kvstore for dp status", () => {
    const resolved = resolveConfig(
      configOf("enable-ipv4-masquerade: true\nkvstore: etcd\netcd-config: 'endpoints: [http://127.0.0.1:2379]'"),
      NEW_KERNEL,
    );
    expect(resolved.masquerading).toEqual({
      state: "unsupported",
      message: "enable-ipv4-masquerade: true: masquerading is not supported yet",
    });
    expect(resolved.kvstore).toEqual({
      state: "enabled",
      message: "etcd: node registry; identities are allocated on the node",
    });
    expect(resolved.unsupported.map((u) => u.key)).toEqual(["enable-ipv4-masquerade"]);
  });

  test("resolveConfig() supports kvstore etcd with kvstore identities", () => {
    const text =
      "kvstore: etcd\netcd-config-path: /etc/dp/etcd.yaml\nidentity-allocation-mode: kvstore\nnode-name: node-a";
    const resolved = resolveConfig(configOf(text), NEW_KERNEL);
    expect(resolved.unsupported).toEqual([]);
    expect(resolved.kvstore).toEqual({ state: "enabled", message: "etcd: node registry and identities" });
  });

  test.each([
    [
      "kvstore: etcd",
      'kvstore: "etcd" contradicts etcd-config: "" (expected etcd-config or etcd-config-path with kvstore etcd)',
    ],
    [
      "kvstore: etcd\netcd-config: 'endpoints: [http://127.0.0.1:2379]'\netcd-config-path: /etc/dp/etcd.yaml",
      'etcd-config-path: "/etc/dp/etcd.yaml" contradicts etcd-config: set (expected one of etcd-config and etcd-config-path)',
    ],
    [
      "identity-allocation-mode: kvstore",
      'identity-allocation-mode: "kvstore" contradicts kvstore: "" (expected kvstore "etcd" for identities in the kvstore, or identity-allocation-mode "crd")',
    ],
  ])("loadConfig() refuses %j", (text, message) => {
    let err: unknown;
    try {
      configOf(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(message);
  });
});

describe("resolveConfig() node options", () => {
  test("resolveConfig() derives the node's options from the defaults", () => {
    const resolved = resolveConfig(configOf(""), NEW_KERNEL);
    expect(resolved.nodeOptions).toEqual({
      stateDir: "/sys/fs/bpf/dp",
      hostRouting: "bpf",
      attachMode: "tcx",
      router: { ipv4: "10.200.0.1", ipv6: "fd10::1" },
      mapSizes: { "bpf-policy-map-max": 16384 },
      ctGc: {},
      trace: false,
      encryption: "disabled",
    });
    expect(resolved.ipv4).toEqual({ range: "10.200.0.0/16", router: "10.200.0.1" });
    expect(resolved.ipv6).toEqual({ range: "fd10::/112", router: "fd10::1" });
    expect(resolved.socketPath).toBe("/var/run/dp/dp.sock");
    expect(resolved.uplink).toBeUndefined();
  });

  test("resolveConfig() passes the keys on to the node", () => {
    const config = configOf(
      [
        "bpf-root: /sys/fs/bpf/lab1/",
        "netns: node1",
        "devices: uplink0,eth1",
        "ipv4-range: 10.1.255.0/24",
        "ipv6-range: fd00:1::ff00/120",
        "enable-ipv6: true",
        "bpf-ct-global-tcp-max: 131072",
        "bpf-ct-global-any-max: 65536",
        "bpf-policy-map-max: 1024",
        "bpf-map-dynamic-size-ratio: 0.01",
        "conntrack-gc-interval: 1m30s",
        "debug: true",
      ].join("\n"),
    );
    const resolved = resolveConfig(config, { redirectPeer: false, redirectNeigh: false, tcx: false });
    expect(resolved.nodeOptions).toEqual({
      stateDir: "/sys/fs/bpf/lab1/dp",
      netns: "node1",
      hostRouting: "legacy",
      attachMode: "netlink",
      router: { ipv4: "10.1.255.1", ipv6: "fd00:1::ff01" },
      uplink: "uplink0",
      mapSizes: {
        "bpf-ct-global-tcp-max": 131072,
        "bpf-ct-global-any-max": 65536,
        "bpf-policy-map-max": 1024,
        "bpf-map-dynamic-size-ratio": 0.01,
      },
      ctGc: { interval: 90_000 },
      trace: true,
      encryption: "disabled",
    });
    expect(resolved.uplink).toBe("uplink0");
  });

  test("resolveConfig() leaves IPv6 out when enable-ipv6 is false", () => {
    const resolved = resolveConfig(configOf("enable-ipv6: false"), NEW_KERNEL);
    expect(resolved.ipv6).toBeUndefined();
    expect(resolved.nodeOptions.router).toEqual({ ipv4: "10.200.0.1" });
  });

  test("resolveConfig() gives map sizes @dp/datapath's resolveMapSizes accepts", () => {
    const resolved = resolveConfig(
      configOf("bpf-ct-global-tcp-max: 1024\nbpf-map-dynamic-size-ratio: 0.0025"),
      NEW_KERNEL,
    );
    const sizes = resolveMapSizes(resolved.nodeOptions.mapSizes, 8 * 2 ** 30);
    expect(sizes.ctTcp).toBe(1024);
    expect(sizes.source).toEqual({ ctTcp: "option", ctAny: "dynamic" });
  });

  test("resolveConfig() is pure: same result for the same input, and the config is not changed", () => {
    const config = configOf("devices: eth0");
    const copy = structuredClone(config);
    expect(resolveConfig(config, NEW_KERNEL)).toEqual(resolveConfig(config, NEW_KERNEL));
    expect(config).toEqual(copy);
    expect(resolveConfig(config, NEW_KERNEL).config).toBe(config);
  });

  test("resolveConfig() throws ConfigError for contradictions in a config built by hand", () => {
    const config: AgentConfig = { ...configOf(""), "enable-ipv4": false, "enable-ipv6": false };
    expect(() => resolveConfig(config, NEW_KERNEL)).toThrow(ConfigError);
    expect(() => resolveConfig(config, NEW_KERNEL)).toThrow(
      "Invalid config: enable-ipv4: false contradicts enable-ipv6: false (expected at least one of enable-ipv4 and enable-ipv6 true)",
    );
  });
});
