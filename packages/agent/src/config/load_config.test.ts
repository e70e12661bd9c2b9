import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { CONFIG_KEYS, ConfigError, loadConfig, type AgentConfig, type ConfigProblem } from "../mod.ts";

function problemsOf(fn: () => unknown): readonly ConfigProblem[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e.problems;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("expected a ConfigError");
}

/** Loads `{ key: value }` (a cluster id other than 0 needs a cluster name of its own). */
function valueOf(key: string, value: unknown): unknown {
  // cluster-id needs a cluster name of its own, the ENI keys ipam eni, enable-ipsec a key file.
  const doc =
    key === "cluster-id"
      ? { "cluster-name": "c1", [key]: value }
      : /^(eni-|ec2-)/.test(key)
        ? { ipam: "eni", [key]: value }
        : key === "enable-ipsec"
          ? { "ipsec-key-file": "/etc/dp/ipsec-keys", [key]: value }
          : key === "kvstore" || key === "identity-allocation-mode"
            ? { kvstore: "etcd", "etcd-config-path": "/etc/dp/etcd.yaml", [key]: value }
            : { [key]: value };
  const { config } = loadConfig({ text: JSON.stringify(doc), format: "json" });
  return (config as unknown as Record<string, unknown>)[key];
}

const tmp = mkdtempSync(join(tmpdir(), "dp-config-test-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("loadConfig() defaults", () => {
  test("loadConfig() defaults every key when given nothing", () => {
    const { config, warnings } = loadConfig({});
    expect(warnings).toEqual([]);
    expect(config).toEqual({
      "cluster-name": "default",
      "cluster-id": 0,
      "state-dir": "/var/run/dp",
      "socket-path": "/var/run/dp/dp.sock",
      "bpf-root": "/sys/fs/bpf",
      netns: "",
      devices: [],
      "ipv4-range": "10.200.0.0/16",
      "ipv6-range": "fd10::/112",
      "enable-ipv4": true,
      "enable-ipv6": true,
      "enable-host-legacy-routing": undefined,
      "enable-tcx": true,
      "bpf-ct-global-tcp-max": undefined,
      "bpf-ct-global-any-max": undefined,
      "bpf-policy-map-max": 16384,
      "bpf-map-dynamic-size-ratio": 0,
      "conntrack-gc-interval": "0s",
      ipam: "cluster-pool",
      "ec2-api-endpoint": "",
      "eni-imds-endpoint": "",
      "eni-pre-allocate": 8,
      "eni-min-allocate": 0,
      "eni-max-above-watermark": 0,
      debug: false,
      "log-format": "text",
      "prometheus-serve-addr": "",
      "agent-teardown-on-stop": false,
      tunnel: undefined,
      "routing-mode": undefined,
      "auto-direct-node-routes": false,
      "bpf-nat-global-max": undefined,
      "bpf-lb-algorithm": "random",
      "bpf-lb-map-max": undefined,
      "enable-bpf-masquerade": false,
      "enable-ipv4-masquerade": false,
      "enable-ipv6-masquerade": false,
      "egress-masquerade-interfaces": [],
      "prefilter-device": "",
      kvstore: "",
      "etcd-config": "",
      "etcd-config-path": "",
      "identity-allocation-mode": "crd",
      "node-name": "",
      "enable-endpoint-routes": false,
      "enable-ipsec": false,
      "ipsec-key-file": "",
      "enable-wireguard": false,
      "kube-proxy-replacement": "false",
      "enable-l7-proxy": false,
      "sockops-enable": false,
    } satisfies Record<keyof AgentConfig, unknown>);
    expect(Object.keys(config).sort()).toEqual(CONFIG_KEYS.map((k) => k.key).sort());
  });

  test("loadConfig() puts the socket in state-dir unless socket-path is given", () => {
    expect(loadConfig({ text: "state-dir: /run/dp2/" }).config["socket-path"]).toBe("/run/dp2/dp.sock");
    expect(loadConfig({ text: "state-dir: /run/dp2\nsocket-path: /tmp/x.sock" }).config["socket-path"]).toBe(
      "/tmp/x.sock",
    );
  });

  test("loadConfig() rejects a state-dir whose default socket path is too long for a unix socket", () => {
    const dir = `/${"d".repeat(110)}`;
    const [p] = problemsOf(() => loadConfig({ flags: { "state-dir": dir } }));
    expect(p?.key).toBe("socket-path");
    expect(p?.value).toBe(`${dir}/dp.sock`);
    expect(p?.message).toMatch(
      /^socket-path: ".*\/dp\.sock" \(from state-dir\) is too long \(expected an absolute path of at most 107 bytes\)$/,
    );
  });

  test("loadConfig() takes an empty or null value of a non-string key as its default", () => {
    const { config } = loadConfig({
      text: 'debug: ""\ncluster-id: ""\nenable-ipv6:\ntunnel: ""\nbpf-ct-global-tcp-max: ""\ndevices: ""',
    });
    expect([config.debug, config["cluster-id"], config["enable-ipv6"], config.tunnel]).toEqual([
      false,
      0,
      true,
      undefined,
    ]);
    expect(config["bpf-ct-global-tcp-max"]).toBeUndefined();
    expect(config.devices).toEqual([]);
  });
});

describe("loadConfig() values of every key", () => {
  // [key, value as given, value in the config]
  const good: readonly (readonly [string, unknown, unknown])[] = [
    ["cluster-name", "prod-1", "prod-1"],
    ["cluster-id", "7", 7],
    ["cluster-id", 255, 255],
    ["state-dir", "/run/dp", "/run/dp"],
    ["socket-path", "/run/dp/api.sock", "/run/dp/api.sock"],
    ["bpf-root", "/sys/fs/bpf/x", "/sys/fs/bpf/x"],
    ["netns", "node1", "node1"],
    ["netns", "/proc/1/ns/net", "/proc/1/ns/net"],
    ["devices", "eth0,eth1", ["eth0", "eth1"]],
    ["devices", "eth0 eth1", ["eth0", "eth1"]],
    ["devices", ["enp0s2"], ["enp0s2"]],
    ["ipv4-range", "10.233.64.0/24", "10.233.64.0/24"],
    ["ipv6-range", "fd00:10::/64", "fd00:10::/64"],
    ["enable-ipv4", "True", true],
    ["enable-ipv6", "False", false],
    ["enable-host-legacy-routing", "false", false],
    ["enable-host-legacy-routing", true, true],
    ["enable-tcx", "0", false],
    ["bpf-ct-global-tcp-max", "524288", 524288],
    ["bpf-ct-global-any-max", 262144, 262144],
    ["bpf-policy-map-max", "4096", 4096],
    ["bpf-map-dynamic-size-ratio", "0.0025", 0.0025],
    ["bpf-map-dynamic-size-ratio", 1, 1],
    ["bpf-map-dynamic-size-ratio", "0", 0],
    ["conntrack-gc-interval", "90s", "1m30s"],
    ["conntrack-gc-interval", "1h30m", "1h30m0s"],
    ["conntrack-gc-interval", "1.5s", "1.5s"],
    ["conntrack-gc-interval", "0", "0s"],
    ["conntrack-gc-interval", 0, "0s"],
    ["ipam", "kubernetes", "kubernetes"],
    ["ipam", "eni", "eni"],
    ["ec2-api-endpoint", "https://ec2.us-east-1.amazonaws.com", "https://ec2.us-east-1.amazonaws.com"],
    ["eni-imds-endpoint", "http://127.0.0.1:8080", "http://127.0.0.1:8080"],
    ["eni-pre-allocate", "16", 16],
    ["eni-min-allocate", 10, 10],
    ["eni-max-above-watermark", "2", 2],
    ["debug", "True", true],
    ["log-format", "json", "json"],
    ["prometheus-serve-addr", ":9962", ":9962"],
    ["prometheus-serve-addr", "127.0.0.1:9962", "127.0.0.1:9962"],
    ["prometheus-serve-addr", "[::1]:0", "[::1]:0"],
    ["prometheus-serve-addr", "localhost:9962", "localhost:9962"],
    ["agent-teardown-on-stop", "true", true],
    ["tunnel", "vxlan", "vxlan"],
    ["routing-mode", "tunnel", "tunnel"],
    ["auto-direct-node-routes", "False", false],
    ["bpf-nat-global-max", "524288", 524288],
    ["bpf-lb-algorithm", "maglev", "maglev"],
    ["bpf-lb-map-max", "65536", 65536],
    ["enable-bpf-masquerade", "True", true],
    ["enable-ipv4-masquerade", "True", true],
    ["enable-ipv6-masquerade", "t", true],
    ["egress-masquerade-interfaces", "eth+ ens1", ["eth+", "ens1"]],
    ["prefilter-device", "eth0", "eth0"],
    ["kvstore", "etcd", "etcd"],
    ["etcd-config", "endpoints:\n- https://192.168.64.8:2379\n", "endpoints:\n- https://192.168.64.8:2379\n"],
    ["etcd-config-path", "/etc/dp/etcd.yaml", "/etc/dp/etcd.yaml"],
    ["identity-allocation-mode", "kvstore", "kvstore"],
    ["identity-allocation-mode", "crd", "crd"],
    ["node-name", "node-a.example", "node-a.example"],
    ["enable-endpoint-routes", "TRUE", true],
    ["enable-ipsec", "1", true],
    ["ipsec-key-file", "/etc/dp/ipsec-keys", "/etc/dp/ipsec-keys"],
    ["enable-wireguard", 1, true],
    ["kube-proxy-replacement", "probe", "probe"],
    ["kube-proxy-replacement", "True", "true"],
    ["kube-proxy-replacement", false, "false"],
    ["enable-l7-proxy", "f", false],
    ["sockops-enable", "T", true],
  ];

  test.each(good)("loadConfig() reads %s: %j as %j", (key, given, expected) => {
    expect(valueOf(key, given)).toEqual(expected);
  });

  test("every key has a good value in the table above", () => {
    const covered = new Set(good.map(([k]) => k));
    expect(CONFIG_KEYS.map((k) => k.key).filter((k) => !covered.has(k))).toEqual([]);
  });

  test.each(["1", "t", "T", "TRUE", "true", "True", true, 1])("loadConfig() reads the boolean %j as true", (v) => {
    expect(valueOf("debug", v)).toBe(true);
  });

  test.each(["0", "f", "F", "FALSE", "false", "False", false, 0])("loadConfig() reads the boolean %j as false", (v) => {
    expect(valueOf("debug", v)).toBe(false);
  });

  test("loadConfig() reads YAML's own booleans and numbers", () => {
    const { config } = loadConfig({ text: "debug: True\nenable-ipv6: false\ncluster-id: 3\ncluster-name: c3" });
    expect([config.debug, config["enable-ipv6"], config["cluster-id"]]).toEqual([true, false, 3]);
  });

  // [key, bad value, phrase, expected]
  const bad: readonly (readonly [string, unknown, string, string])[] = [
    ["debug", "yes", "is not a boolean", 'true or false, also "True", "false", "1", "0"'],
    ["debug", 2, "is not a boolean", 'true or false, also "True", "false", "1", "0"'],
    ["enable-ipv4", "maybe", "is not a boolean", 'true or false, also "True", "false", "1", "0"'],
    ["enable-host-legacy-routing", "auto", "is not a boolean", 'true or false, also "True", "false", "1", "0"'],
    [
      "cluster-name",
      5,
      "is not a string",
      "lowercase letters, digits and '-', at most 32, starting and ending with a letter or digit",
    ],
    [
      "cluster-name",
      "Prod_1",
      "is not a cluster name",
      "lowercase letters, digits and '-', at most 32, starting and ending with a letter or digit",
    ],
    [
      "cluster-name",
      "a".repeat(33),
      "is not a cluster name",
      "lowercase letters, digits and '-', at most 32, starting and ending with a letter or digit",
    ],
    ["cluster-id", 256, "is out of range", "an integer from 0 to 255"],
    ["cluster-id", "-1", "is out of range", "an integer from 0 to 255"],
    ["cluster-id", "1.5", "is not an integer", "an integer from 0 to 255"],
    ["cluster-id", "one", "is not an integer", "an integer from 0 to 255"],
    ["state-dir", "run/dp", "is not an absolute path", "an absolute path"],
    ["bpf-root", 1, "is not a string", "an absolute path"],
    ["socket-path", `/${"s".repeat(107)}`, "is too long", "an absolute path of at most 107 bytes"],
    [
      "netns",
      "a/b",
      "is not a namespace name or path",
      '"" (the agent\'s own), a name under /run/netns, or an absolute path',
    ],
    [
      "devices",
      { eth0: true },
      "is not a list",
      "a list of network device names (a YAML list, or a string such as eth0,eth1)",
    ],
    [
      "devices",
      "eth0,this-name-is-too-long",
      'has a bad device name "this-name-is-too-long"',
      "a list of network device names (a YAML list, or a string such as eth0,eth1)",
    ],
    [
      "devices",
      "eth0,eth0",
      'names "eth0" twice',
      "a list of network device names (a YAML list, or a string such as eth0,eth1)",
    ],
    [
      "ipv4-range",
      "fd00::/64",
      "is not an IPv4 CIDR",
      "an IPv4 CIDR with host bits zero and at most /30, such as 10.200.0.0/16",
    ],
    [
      "ipv4-range",
      "10.0.0.0",
      "is not an IPv4 CIDR",
      "an IPv4 CIDR with host bits zero and at most /30, such as 10.200.0.0/16",
    ],
    [
      "ipv4-range",
      "10.0.0.1/16",
      "has host bits set",
      "an IPv4 CIDR with host bits zero and at most /30, such as 10.200.0.0/16",
    ],
    [
      "ipv4-range",
      "10.0.0.0/31",
      "is too small for a pod range",
      "an IPv4 CIDR with host bits zero and at most /30, such as 10.200.0.0/16",
    ],
    [
      "ipv6-range",
      "10.0.0.0/8",
      "is not an IPv6 CIDR",
      "an IPv6 CIDR with host bits zero and at most /126, such as fd10::/112",
    ],
    [
      "ipv6-range",
      "fd10::1/112",
      "has host bits set",
      "an IPv6 CIDR with host bits zero and at most /126, such as fd10::/112",
    ],
    ["bpf-ct-global-tcp-max", 12, "is out of range", "an integer from 1024 to 16777216"],
    ["bpf-ct-global-tcp-max", "16777217", "is out of range", "an integer from 1024 to 16777216"],
    ["bpf-ct-global-tcp-max", "2000.5", "is not an integer", "an integer from 1024 to 16777216"],
    ["bpf-ct-global-any-max", "lots", "is not a number", "an integer from 1024 to 16777216"],
    ["bpf-policy-map-max", 8, "is out of range", "an integer from 16 to 65536"],
    ["bpf-policy-map-max", 65537, "is out of range", "an integer from 16 to 65536"],
    ["bpf-map-dynamic-size-ratio", 1.5, "is out of range", "0 (off) or a number in (0, 1]"],
    ["bpf-map-dynamic-size-ratio", "-0.1", "is out of range", "0 (off) or a number in (0, 1]"],
    [
      "conntrack-gc-interval",
      "5x",
      "is not a duration",
      'a duration such as "5m" or "1m30s": "0s" (adaptive) or from 1s to 24h',
    ],
    [
      "conntrack-gc-interval",
      "5",
      "is not a duration",
      'a duration such as "5m" or "1m30s": "0s" (adaptive) or from 1s to 24h',
    ],
    [
      "conntrack-gc-interval",
      300,
      "is not a duration",
      'a duration such as "5m" or "1m30s": "0s" (adaptive) or from 1s to 24h',
    ],
    [
      "conntrack-gc-interval",
      "500ms",
      "is out of range",
      'a duration such as "5m" or "1m30s": "0s" (adaptive) or from 1s to 24h',
    ],
    [
      "conntrack-gc-interval",
      "25h",
      "is out of range",
      'a duration such as "5m" or "1m30s": "0s" (adaptive) or from 1s to 24h',
    ],
    [
      "ipam",
      "magic",
      "is not one of the choices",
      'one of "cluster-pool", "kubernetes", "multi-pool", "crd", "eni", "azure", "alibabacloud", "delegated-plugin"',
    ],
    ["log-format", "xml", "is not one of the choices", 'one of "text", "json"'],
    [
      "ec2-api-endpoint",
      "ftp://example.com",
      "is not an http(s) URL",
      '"" or an http(s) URL, such as "https://ec2.us-east-1.amazonaws.com"',
    ],
    ["eni-imds-endpoint", "not a url", "is not a URL", '"" or an http(s) URL, such as "http://169.254.169.254"'],
    ["eni-pre-allocate", "-1", "is out of range", "an integer from 0 to 65535"],
    ["eni-max-above-watermark", "1.5", "is not an integer", "an integer from 0 to 65535"],
    [
      "prometheus-serve-addr",
      "9962",
      "is not a listen address",
      '"" (off) or [host]:port, such as ":9962" or "127.0.0.1:9962"',
    ],
    [
      "prometheus-serve-addr",
      ":99999",
      "is not a listen address",
      '"" (off) or [host]:port, such as ":9962" or "127.0.0.1:9962"',
    ],
    [
      "prometheus-serve-addr",
      "[10.0.0.1]:80",
      "is not a listen address",
      '"" (off) or [host]:port, such as ":9962" or "127.0.0.1:9962"',
    ],
    ["tunnel", "gre", "is not one of the choices", 'one of "disabled", "vxlan", "geneve"'],
    ["routing-mode", "direct", "is not one of the choices", 'one of "native", "tunnel"'],
    ["bpf-nat-global-max", 10, "is out of range", "an integer from 1024 to 16777216"],
    ["bpf-lb-map-max", 0, "is out of range", "an integer from 1 to 16777216"],
    ["bpf-lb-algorithm", "round-robin", "is not one of the choices", 'one of "random", "maglev"'],
    [
      "egress-masquerade-interfaces",
      "eth*",
      'has a bad device name "eth*"',
      "a list of device names or patterns such as eth+",
    ],
    ["prefilter-device", "eth 0", "is not a device name", '"" or a network device name'],
    ["kvstore", "consul", "is not one of the choices", 'one of "", "etcd"'],
    ["etcd-config", ["x"], "is not a string", "a string (etcd's client configuration)"],
    ["etcd-config-path", "etcd.yaml", "is not an absolute path", "an absolute path"],
    ["identity-allocation-mode", "operator", "is not one of the choices", 'one of "crd", "kvstore"'],
    ["node-name", "Node_A", "is not a node name", '"" or a node name (lowercase letters, digits, "-" and ".")'],
    [
      "kube-proxy-replacement",
      "maybe",
      "is not one of the choices",
      'one of "true", "false", "strict", "probe", "partial", "disabled" (or a boolean)',
    ],
    ["sockops-enable", "on", "is not a boolean", 'true or false, also "True", "false", "1", "0"'],
  ];

  test.each(bad)(
    "loadConfig() rejects %s: %j, naming the key, the value and the expected form",
    (key, value, phrase, expected) => {
      const error = errorOf(() => loadConfig({ text: JSON.stringify({ [key]: value }), format: "json" }));
      const shown = typeof value === "number" ? String(value) : JSON.stringify(value);
      const message = `${key}: ${shown} ${phrase} (expected ${expected})`;
      expect(error.problems).toEqual([{ key, value, expected, message }]);
      expect(error.message).toBe(`Invalid config: ${message}`);
      expect(error.name).toBe("ConfigError");
      expect(error).toBeInstanceOf(TypeError);
      // The form CONFIG_KEYS shows is the one the error names.
      expect(CONFIG_KEYS.find((k) => k.key === key)?.expected).toBe(expected);
    },
  );

  test("loadConfig() lists every problem, in key order, in one error", () => {
    const error = errorOf(() =>
      loadConfig({ text: "enable-ipv4: maybe\ncluster-id: 300\nbpf-ct-global-tcp-max: 12\nfoo: 1" }),
    );
    expect(error.problems.map((p) => p.key)).toEqual(["cluster-id", "enable-ipv4", "bpf-ct-global-tcp-max"]);
    expect(error.message).toBe(
      "Invalid config: cluster-id: 300 is out of range (expected an integer from 0 to 255); " +
        'enable-ipv4: "maybe" is not a boolean (expected true or false, also "True", "false", "1", "0"); ' +
        "bpf-ct-global-tcp-max: 12 is out of range (expected an integer from 1024 to 16777216)",
    );
  });
});

describe("loadConfig() unknown keys", () => {
  test("loadConfig() warns about unknown keys and keeps going", () => {
    const { config, warnings } = loadConfig({ text: "foo: 1\ncgroup-root: /run/cilium/cgroupv2\ndebug: true" });
    expect(config.debug).toBe(true);
    expect(warnings).toEqual([
      { key: "foo", message: 'unknown key "foo"' },
      { key: "cgroup-root", message: 'unknown key "cgroup-root"' },
    ]);
  });

  test("loadConfig() suggests the closest key for a near miss, from the file or a flag", () => {
    const { warnings } = loadConfig({ text: "enable-ipv6-masquerad: true", flags: { "--debg": true } });
    expect(warnings).toEqual([
      {
        key: "enable-ipv6-masquerad",
        message: 'unknown key "enable-ipv6-masquerad" (did you mean "enable-ipv6-masquerade"?)',
      },
      { key: "debg", message: 'unknown key "debg" (did you mean "debug"?)' },
    ]);
  });

  test("loadConfig() reads the data of a Cilium ConfigMap manifest (seed 004's keys)", () => {
    const text = [
      "apiVersion: v1",
      "kind: ConfigMap",
      "metadata:",
      "  name: cilium-config",
      "  namespace: kube-system",
      "data:",
      '  agent-health-port: "9879"',
      '  auto-direct-node-routes: "False"',
      '  bpf-ct-global-any-max: "262144"',
      '  bpf-ct-global-tcp-max: "524288"',
      '  bpf-map-dynamic-size-ratio: "0.0025"',
      "  cluster-name: default",
      '  debug: "True"',
      '  enable-bpf-masquerade: "True"',
      '  enable-host-legacy-routing: "False"',
      '  enable-ipv4: "True"',
      '  enable-ipv4-masquerade: "True"',
      '  enable-ipv6: "False"',
      '  enable-ipv6-masquerade: "True"',
      "  etcd-config: |-",
      "    ---",
      "    endpoints:",
      "    - https://192.168.64.8:2379",
      "  ipam: kubernetes",
      "  kube-proxy-replacement: probe",
      "  kvstore: etcd",
      "  tunnel: vxlan",
    ].join("\n");
    const { config, warnings } = loadConfig({ text });
    expect(warnings.map((w) => w.key)).toEqual(["agent-health-port"]);
    expect(config["bpf-ct-global-tcp-max"]).toBe(524288);
    expect(config["bpf-map-dynamic-size-ratio"]).toBe(0.0025);
    expect(config["enable-host-legacy-routing"]).toBe(false);
    expect(config["enable-ipv6"]).toBe(false);
    expect(config.tunnel).toBe("vxlan");
    expect(config["routing-mode"]).toBeUndefined();
    expect(config["etcd-config"]).toBe("---\nendpoints:\n- https://192.168.64.8:2379");
  });
});

describe("loadConfig() files and flags", () => {
  test("loadConfig() reads a YAML file and lets flags override it", () => {
    const file = join(tmp, "config.yaml");
    writeFileSync(file, 'debug: "True"\ncluster-id: 2\ncluster-name: two\ndevices: [eth0]\n');
    const { config } = loadConfig({
      file,
      flags: { "--debug": "false", "cluster-id": "3", devices: "eth1,eth2", "enable-ipv6": true },
    });
    expect(config.debug).toBe(false);
    expect(config["cluster-id"]).toBe(3);
    expect(config["cluster-name"]).toBe("two");
    expect(config.devices).toEqual(["eth1", "eth2"]);
    expect(config["enable-ipv6"]).toBe(true);
  });

  test("loadConfig() reads a .json file as JSON", () => {
    const file = join(tmp, "config.json");
    writeFileSync(file, JSON.stringify({ "enable-ipv6": "false", "bpf-policy-map-max": 1024 }));
    const { config } = loadConfig({ file });
    expect([config["enable-ipv6"], config["bpf-policy-map-max"]]).toEqual([false, 1024]);
    writeFileSync(file, "enable-ipv6: false\n");
    const error = errorOf(() => loadConfig({ file }));
    expect(error.file).toBe(file);
    expect(error.problems[0]?.expected).toBe("valid JSON");
    expect(error.message).toMatch(new RegExp(`^Invalid config in "${file}": cannot parse JSON: `));
  });

  test("loadConfig() names the file it cannot read", () => {
    const file = join(tmp, "missing.yaml");
    const error = errorOf(() => loadConfig({ file }));
    expect(error.message).toBe(`Invalid config in "${file}": cannot read the file: ENOENT: no such file or directory`);
    expect(error.problems).toEqual([
      {
        key: "",
        value: file,
        expected: "a readable YAML or JSON file",
        message: "cannot read the file: ENOENT: no such file or directory",
      },
    ]);
    expect(error.cause).toBeInstanceOf(Error);
  });

  test("loadConfig() names the file in value errors too", () => {
    const file = join(tmp, "bad.yaml");
    writeFileSync(file, "cluster-id: 300\n");
    const error = errorOf(() => loadConfig({ file }));
    expect(error.file).toBe(file);
    expect(error.message).toBe(
      `Invalid config in "${file}": cluster-id: 300 is out of range (expected an integer from 0 to 255)`,
    );
  });

  test("loadConfig() rejects YAML that does not parse or is not a mapping", () => {
    expect(errorOf(() => loadConfig({ text: "a: [" })).message).toMatch(/^Invalid config: cannot parse YAML: /);
    expect(errorOf(() => loadConfig({ text: "a: 1\na: 2" })).message).toMatch(
      /^Invalid config: cannot parse YAML: .*unique/,
    );
    expect(errorOf(() => loadConfig({ text: "- debug" })).message).toBe(
      "Invalid config: the document is a list (expected a mapping of keys to values)",
    );
    expect(errorOf(() => loadConfig({ text: "just text" })).message).toBe(
      'Invalid config: the document is "just text" (expected a mapping of keys to values)',
    );
  });

  test("loadConfig() reads an empty document as all defaults", () => {
    expect(loadConfig({ text: "" }).config).toEqual(loadConfig({}).config);
    expect(loadConfig({ text: "# only a comment\n" }).config).toEqual(loadConfig({}).config);
  });

  test("loadConfig() refuses both a file and text", () => {
    expect(() => loadConfig({ file: "/x", text: "" })).toThrow(TypeError);
  });

  test("loadConfig() flags alone make a config", () => {
    const { config } = loadConfig({ flags: { "--netns": "node1", "--devices": "veth0", "--debug": true } });
    expect([config.netns, config.devices, config.debug]).toEqual(["node1", ["veth0"], true]);
  });

  test("loadConfig() rejects a bare flag for a key that needs a value", () => {
    const [p] = problemsOf(() => loadConfig({ flags: { "--cluster-id": true } }));
    expect(p?.message).toBe("cluster-id: true is not an integer (expected an integer from 0 to 255)");
  });

  test("loadConfig() gives back the same config from its JSON", () => {
    const { config } = loadConfig({
      text: 'conntrack-gc-interval: 90s\ndevices: eth0\nenable-host-legacy-routing: "true"\nbpf-ct-global-tcp-max: "524288"',
    });
    expect(loadConfig({ text: JSON.stringify(config), format: "json" }).config).toEqual(config);
  });
});

describe("loadConfig() contradictions", () => {
  const cases: readonly (readonly [string, string, string])[] = [
    [
      "enable-ipv4: false\nenable-ipv6: false",
      "enable-ipv4",
      "enable-ipv4: false contradicts enable-ipv6: false (expected at least one of enable-ipv4 and enable-ipv6 true)",
    ],
    [
      "tunnel: vxlan\nrouting-mode: native",
      "routing-mode",
      'routing-mode: "native" contradicts tunnel: "vxlan" (expected routing-mode "tunnel", or tunnel "disabled")',
    ],
    [
      "tunnel: disabled\nrouting-mode: tunnel",
      "routing-mode",
      'routing-mode: "tunnel" contradicts tunnel: "disabled" (expected routing-mode "native", or tunnel "vxlan")',
    ],
    [
      "tunnel: geneve\nauto-direct-node-routes: true",
      "auto-direct-node-routes",
      'auto-direct-node-routes: true contradicts tunnel: "geneve" (expected auto-direct-node-routes only with native routing)',
    ],
    [
      "routing-mode: tunnel\nauto-direct-node-routes: true",
      "auto-direct-node-routes",
      'auto-direct-node-routes: true contradicts routing-mode: "tunnel" (expected auto-direct-node-routes only with native routing)',
    ],
    [
      "enable-ipsec: true\nipsec-key-file: /etc/dp/ipsec-keys\nenable-wireguard: true",
      "enable-wireguard",
      "enable-wireguard: true contradicts enable-ipsec: true (expected at most one encryption)",
    ],
    [
      "cluster-id: 5",
      "cluster-id",
      'cluster-id: 5 contradicts cluster-name: "default" (expected cluster-id 0 with the cluster name "default", or a cluster-name of its own)',
    ],
    [
      "ipam: eni\nenable-ipv4: false",
      "enable-ipv4",
      'enable-ipv4: false contradicts ipam: "eni" (expected enable-ipv4 true: ENI addresses are IPv4 (Cilium\'s ENI mode is IPv4 only))',
    ],
    [
      "eni-pre-allocate: 16",
      "eni-pre-allocate",
      'eni-pre-allocate: 16 contradicts ipam: "cluster-pool" (expected ipam "eni" for the ENI keys, or eni-pre-allocate unset)',
    ],
    [
      "ipam: kubernetes\nec2-api-endpoint: http://127.0.0.1:9",
      "ec2-api-endpoint",
      'ec2-api-endpoint: "http://127.0.0.1:9" contradicts ipam: "kubernetes" (expected ipam "eni" for the ENI keys, or ec2-api-endpoint unset)',
    ],
  ];

  test.each(cases)("loadConfig() rejects %j naming %s", (text, key, message) => {
    const error = errorOf(() => loadConfig({ text }));
    expect(error.problems.map((p) => p.key)).toEqual([key]);
    expect(error.message).toBe(`Invalid config: ${message}`);
  });

  test("loadConfig() accepts combinations that only look contradictory", () => {
    expect(loadConfig({ text: "enable-ipv6: false\nipv6-range: fd99::/120" }).config["ipv6-range"]).toBe("fd99::/120");
    expect(loadConfig({ text: "tunnel: vxlan\nrouting-mode: tunnel" }).config.tunnel).toBe("vxlan");
    expect(loadConfig({ text: "tunnel: disabled\nauto-direct-node-routes: true" }).config.tunnel).toBe("disabled");
    expect(loadConfig({ text: "cluster-id: 5\ncluster-name: five" }).config["cluster-id"]).toBe(5);
    // ipam eni keeps ipv4-range: it gives the router address (the pods' gateway), not the pods' addresses.
    const eni = loadConfig({
      text: "ipam: eni\nipv4-range: 10.99.0.0/24\neni-pre-allocate: 2\neni-min-allocate: 4\neni-max-above-watermark: 1\nec2-api-endpoint: http://127.0.0.1:4566\neni-imds-endpoint: http://127.0.0.1:4567",
    }).config;
    expect([eni.ipam, eni["ipv4-range"], eni["eni-pre-allocate"], eni["eni-min-allocate"]]).toEqual([
      "eni",
      "10.99.0.0/24",
      2,
      4,
    ]);
    expect([eni["eni-max-above-watermark"], eni["ec2-api-endpoint"], eni["eni-imds-endpoint"]]).toEqual([
      1,
      "http://127.0.0.1:4566",
      "http://127.0.0.1:4567",
    ]);
  });

  test("loadConfig() lists all contradictions at once", () => {
    const error = errorOf(() => loadConfig({ text: "enable-ipv4: false\nenable-ipv6: false\ncluster-id: 1" }));
    expect(error.problems.map((p) => p.key)).toEqual(["enable-ipv4", "cluster-id"]);
  });
});
