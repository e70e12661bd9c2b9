// The config keys: per key its schema (zod, after Cilium's string forms are
// coerced), default, and the text the docs and error messages show. The
// zod issue messages are phrases ("is out of range") that the parser puts
// between the value and the expected form.
import { parseCidr, parseIp } from "@dp/core";
import { DEFAULT_MAP_SIZES, resolveMapSizes, type MapSizeOptions } from "@dp/datapath";
import { z } from "zod";
import type { AgentConfig } from "./agent_config.ts";
import { coerceBoolean, coerceList, coerceNumber, formatDuration, parseDuration } from "./_coerce.ts";

/** A config key's name. */
export type FieldKey = keyof AgentConfig;

/** The shape of a key's value, for docs, flags and completion. */
export type FieldKind = "boolean" | "integer" | "number" | "string" | "list" | "duration" | "choice";

/** Everything known about one key. */
export interface FieldSpec<T> {
  /** The shape of the value. */
  readonly kind: FieldKind;
  /** The allowed values of a `choice`. */
  readonly choices?: readonly string[];
  /** The form the value must have, for messages and docs: `an integer from 0 to 255`. */
  readonly expected: string;
  /** The value when the key is not given (or given as `""`/null, for keys that are not strings). */
  readonly default: T;
  /** The default as the docs show it. */
  readonly defaultText: string;
  /** One or two sentences for the docs. */
  readonly description: string;
  /** Whether dp does what the key asks for. */
  readonly status: "supported" | "not-supported-yet";
  /** Validates the coerced value. */
  readonly schema: z.ZodType<Exclude<T, undefined>>;
}

const IS_BOOLEAN = "is not a boolean";
const OUT_OF_RANGE = "is out of range";
const BOOLEAN_EXPECTED = 'true or false, also "True", "false", "1", "0"';
const IFNAME = /^[A-Za-z0-9_.-]{1,15}$/;
const IFNAME_OR_PATTERN = /^[A-Za-z0-9_.-]{1,15}\+?$/;
/** sun_path holds 108 bytes with the terminating NUL. */
const SOCKET_PATH_MAX = 107;

function booleanSchema(): z.ZodType<boolean> {
  return z.preprocess(coerceBoolean, z.boolean({ error: IS_BOOLEAN }));
}

function integerSchema(min: number, max: number): z.ZodType<number> {
  return z.preprocess(
    coerceNumber,
    z
      .number({ error: "is not an integer" })
      .int({ error: "is not an integer" })
      .min(min, { error: OUT_OF_RANGE })
      .max(max, { error: OUT_OF_RANGE }),
  );
}

function choiceSchema<const C extends readonly [string, ...string[]]>(choices: C): z.ZodType<C[number]> {
  return z.enum(choices, { error: "is not one of the choices" });
}

function choiceExpected(choices: readonly string[]): string {
  const quoted = choices.map((c) => JSON.stringify(c));
  return `one of ${quoted.join(", ")}`;
}

function stringSchema(check: (value: string) => string | undefined): z.ZodType<string> {
  return z.string({ error: "is not a string" }).superRefine((value, ctx) => {
    const problem = check(value);
    if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
  });
}

function listSchema(item: RegExp, what: string): z.ZodType<readonly string[]> {
  return z.preprocess(
    coerceList,
    z.array(z.string(), { error: "is not a list" }).superRefine((list, ctx) => {
      const bad = list.find((s) => !item.test(s));
      if (bad !== undefined) ctx.addIssue({ code: "custom", message: `has a bad ${what} ${JSON.stringify(bad)}` });
      const dup = list.find((s, i) => list.indexOf(s) !== i);
      if (dup !== undefined) ctx.addIssue({ code: "custom", message: `names ${JSON.stringify(dup)} twice` });
    }),
  );
}

function absolutePath(value: string): string | undefined {
  if (!value.startsWith("/")) return "is not an absolute path";
  if (value.includes("\0")) return "contains a NUL character";
  return undefined;
}

/** The map-size keys @dp/datapath's `resolveMapSizes` checks. */
type MapSizeKey =
  "bpf-ct-global-tcp-max" | "bpf-ct-global-any-max" | "bpf-policy-map-max" | "bpf-map-dynamic-size-ratio";

/** Checks one map-size option with `resolveMapSizes` (pure: the memory size is given). */
function mapSizeProblem(key: MapSizeKey, value: number): string | undefined {
  const options: MapSizeOptions = { [key]: value };
  try {
    resolveMapSizes(options, 2 ** 30);
    return undefined;
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    return key !== "bpf-map-dynamic-size-ratio" && !Number.isInteger(value) ? "is not an integer" : OUT_OF_RANGE;
  }
}

/** The form `resolveMapSizes` expects for a key, taken from its own message so the two cannot differ. */
function mapSizeExpected(key: MapSizeKey): string {
  const options: MapSizeOptions = { [key]: Number.NaN };
  let message = "";
  try {
    resolveMapSizes(options, 2 ** 30);
  } catch (e) {
    if (e instanceof RangeError) message = e.message;
  }
  const expected = /expected (.+), got /.exec(message)?.[1];
  if (expected === undefined) return "a size @dp/datapath accepts";
  const range = /^an integer in (\d+)-(\d+)$/.exec(expected);
  return range === null ? expected : `an integer from ${range[1]} to ${range[2]}`;
}

function mapSizeSchema(key: MapSizeKey): z.ZodType<number> {
  return z.preprocess(
    coerceNumber,
    z.number({ error: "is not a number" }).superRefine((value, ctx) => {
      const problem = key === "bpf-map-dynamic-size-ratio" && value === 0 ? undefined : mapSizeProblem(key, value);
      if (problem !== undefined) ctx.addIssue({ code: "custom", message: problem });
    }),
  );
}

function cidrSchema(family: 4 | 6): z.ZodType<string> {
  const bits = family === 4 ? 32 : 128;
  return stringSchema((value) => {
    let prefix;
    try {
      prefix = parseCidr(value);
    } catch {
      return `is not an IPv${family} CIDR`;
    }
    if (prefix.family !== family || !value.includes("/")) return `is not an IPv${family} CIDR`;
    if (prefix.prefixLength > bits - 2) return "is too small for a pod range";
    for (let bit = prefix.prefixLength; bit < bits; bit++) {
      if (((prefix.bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) return "has host bits set";
    }
    return undefined;
  });
}

function httpUrl(value: string): string | undefined {
  if (value === "") return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "is not a URL";
  }
  return url.protocol === "http:" || url.protocol === "https:" ? undefined : "is not an http(s) URL";
}

function serveAddress(value: string): string | undefined {
  if (value === "") return undefined;
  const m = /^(?:\[([^\]]*)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  if (m === null || Number(m[3]) > 65535) return "is not a listen address";
  const host = m[1] ?? m[2] ?? "";
  if (m[1] !== undefined) {
    try {
      if (parseIp(host).family !== 6) return "is not a listen address";
    } catch {
      return "is not a listen address";
    }
  } else if (host !== "" && !/^[A-Za-z0-9.-]+$/.test(host)) return "is not a listen address";
  return undefined;
}

const DURATION_MAX_MS = 86_400_000;

function durationSchema(): z.ZodType<string> {
  return z.preprocess(
    (value) => (value === 0 ? "0s" : value),
    z.string({ error: "is not a duration" }).transform((text, ctx) => {
      const ms = parseDuration(text.trim());
      if (ms === undefined) {
        ctx.addIssue({ code: "custom", message: "is not a duration" });
        return z.NEVER;
      }
      if (ms !== 0 && (ms < 1000 || ms > DURATION_MAX_MS)) {
        ctx.addIssue({ code: "custom", message: OUT_OF_RANGE });
        return z.NEVER;
      }
      return formatDuration(ms);
    }),
  );
}

function bool(def: boolean, description: string, status: FieldSpec<boolean>["status"]): FieldSpec<boolean> {
  return {
    kind: "boolean",
    expected: BOOLEAN_EXPECTED,
    default: def,
    defaultText: String(def),
    description,
    status,
    schema: booleanSchema(),
  };
}

const TUNNEL = ["disabled", "vxlan", "geneve"] as const;
const ROUTING_MODE = ["native", "tunnel"] as const;
const LOG_FORMAT = ["text", "json"] as const;
const LB_ALGORITHM = ["random", "maglev"] as const;
const KVSTORE = ["", "etcd"] as const;
const IDENTITY_ALLOCATION_MODE = ["crd", "kvstore"] as const;
const IPAM = [
  "cluster-pool",
  "kubernetes",
  "multi-pool",
  "crd",
  "eni",
  "azure",
  "alibabacloud",
  "delegated-plugin",
] as const;
const KUBE_PROXY_REPLACEMENT = ["true", "false", "strict", "probe", "partial", "disabled"] as const;

/** Every key, in the order the docs list them. */
export const FIELDS: { readonly [K in FieldKey]: FieldSpec<AgentConfig[K]> } = {
  "cluster-name": {
    kind: "string",
    expected: "lowercase letters, digits and '-', at most 32, starting and ending with a letter or digit",
    default: "default",
    defaultText: "default",
    description: "The cluster's name, as in Cilium.",
    status: "supported",
    schema: stringSchema((v) =>
      v.length <= 32 && /^[a-z0-9](?:[-a-z0-9]*[a-z0-9])?$/.test(v) ? undefined : "is not a cluster name",
    ),
  },
  "cluster-id": {
    kind: "integer",
    expected: "an integer from 0 to 255",
    default: 0,
    defaultText: "0",
    description: 'The cluster\'s id; not 0 only with a `cluster-name` other than "default".',
    status: "supported",
    schema: integerSchema(0, 255),
  },
  "state-dir": {
    kind: "string",
    expected: "an absolute path",
    default: "/var/run/dp",
    defaultText: "/var/run/dp",
    description: "Where the agent keeps its files: the API socket (by default) and its records.",
    status: "supported",
    schema: stringSchema(absolutePath),
  },
  "socket-path": {
    kind: "string",
    expected: `an absolute path of at most ${SOCKET_PATH_MAX} bytes`,
    // Filled in from state-dir by the parser.
    default: "",
    defaultText: "<state-dir>/dp.sock",
    description: "The unix socket of the agent's API (mode 0600, root only).",
    status: "supported",
    schema: stringSchema(
      (v) => absolutePath(v) ?? (new TextEncoder().encode(v).length > SOCKET_PATH_MAX ? "is too long" : undefined),
    ),
  },
  "bpf-root": {
    kind: "string",
    expected: "an absolute path",
    default: "/sys/fs/bpf",
    defaultText: "/sys/fs/bpf",
    description: "The bpffs mount; the node's maps, links and records are pinned in `<bpf-root>/dp`.",
    status: "supported",
    schema: stringSchema(absolutePath),
  },
  netns: {
    kind: "string",
    expected: '"" (the agent\'s own), a name under /run/netns, or an absolute path',
    default: "",
    defaultText: '"" (the agent\'s)',
    description: "The node's network namespace (dp's key): where the pods' veths, the uplink and the routes are.",
    status: "supported",
    schema: stringSchema((v) =>
      v === "" || (!v.includes("\0") && (v.startsWith("/") || !v.includes("/")))
        ? undefined
        : "is not a namespace name or path",
    ),
  },
  devices: {
    kind: "list",
    expected: "a list of network device names (a YAML list, or a string such as eth0,eth1)",
    default: [],
    defaultText: "[]",
    description:
      "Network devices of the node; the first is the uplink (with BPF host routing, traffic from it is handled at its tc ingress). May be empty. The agent checks they exist before changing anything.",
    status: "supported",
    schema: listSchema(IFNAME, "device name"),
  },
  "ipv4-range": {
    kind: "string",
    expected: "an IPv4 CIDR with host bits zero and at most /30, such as 10.200.0.0/16",
    default: "10.200.0.0/16",
    defaultText: "10.200.0.0/16",
    description:
      "The IPv4 pod range (cluster-pool IPAM); its first address is the router, pods get the next ones. With `ipam: eni` it only gives the router address.",
    status: "supported",
    schema: cidrSchema(4),
  },
  "ipv6-range": {
    kind: "string",
    expected: "an IPv6 CIDR with host bits zero and at most /126, such as fd10::/112",
    default: "fd10::/112",
    defaultText: "fd10::/112",
    description: "The IPv6 pod range; its first address is the router. Ignored when `enable-ipv6` is false.",
    status: "supported",
    schema: cidrSchema(6),
  },
  "enable-ipv4": bool(
    true,
    "IPv4 for pods. The datapath needs IPv4: false (IPv6 only) is not supported yet.",
    "supported",
  ),
  "enable-ipv6": bool(true, "IPv6 for pods (addresses from `ipv6-range`).", "supported"),
  "enable-host-legacy-routing": {
    kind: "boolean",
    expected: BOOLEAN_EXPECTED,
    default: undefined,
    defaultText: "unset (BPF when possible)",
    description:
      "true: route pod traffic through the host stack (legacy). false or unset: BPF host routing (`bpf_redirect_peer`, `bpf_redirect_neigh`) when the kernel and the other keys allow it, else legacy with the reason in `dp status`.",
    status: "supported",
    schema: booleanSchema(),
  },
  "enable-tcx": bool(
    true,
    "Attach programs with tcx links when the kernel has them (Linux 6.6+); false: netlink cls_bpf filters on a clsact qdisc.",
    "supported",
  ),
  "bpf-ct-global-tcp-max": {
    kind: "integer",
    expected: mapSizeExpected("bpf-ct-global-tcp-max"),
    default: undefined,
    defaultText: `${DEFAULT_MAP_SIZES.ctTcp}, or sized from memory (bpf-map-dynamic-size-ratio)`,
    description: "Entries of the TCP conntrack table.",
    status: "supported",
    schema: mapSizeSchema("bpf-ct-global-tcp-max"),
  },
  "bpf-ct-global-any-max": {
    kind: "integer",
    expected: mapSizeExpected("bpf-ct-global-any-max"),
    default: undefined,
    defaultText: `${DEFAULT_MAP_SIZES.ctAny}, or sized from memory (bpf-map-dynamic-size-ratio)`,
    description: "Entries of the non-TCP conntrack table.",
    status: "supported",
    schema: mapSizeSchema("bpf-ct-global-any-max"),
  },
  "bpf-policy-map-max": {
    kind: "integer",
    expected: mapSizeExpected("bpf-policy-map-max"),
    default: DEFAULT_MAP_SIZES.policy,
    defaultText: String(DEFAULT_MAP_SIZES.policy),
    description: "Entries of each endpoint's policy map.",
    status: "supported",
    schema: mapSizeSchema("bpf-policy-map-max"),
  },
  "bpf-map-dynamic-size-ratio": {
    kind: "number",
    expected: `0 (off) or ${mapSizeExpected("bpf-map-dynamic-size-ratio")}`,
    default: 0,
    defaultText: "0 (off)",
    description:
      "Share of the machine's memory for the conntrack tables whose size is not set, with Cilium's formula and bounds (Cilium's Helm default is 0.0025).",
    status: "supported",
    schema: mapSizeSchema("bpf-map-dynamic-size-ratio"),
  },
  "conntrack-gc-interval": {
    kind: "duration",
    expected: 'a duration such as "5m" or "1m30s": "0s" (adaptive) or from 1s to 24h',
    default: "0s",
    defaultText: "0s (adaptive)",
    description:
      "How often conntrack garbage collection runs; 0s adapts the interval to how much each pass deletes, as Cilium does.",
    status: "supported",
    schema: durationSchema(),
  },
  ipam: {
    kind: "choice",
    choices: IPAM,
    expected: choiceExpected(IPAM),
    default: "cluster-pool",
    defaultText: "cluster-pool",
    description:
      "The IPAM mode. cluster-pool: addresses from `ipv4-range`/`ipv6-range`. eni: IPv4 addresses from the AWS instance's ENIs with their routing rules (docs/eni.md); no IPv6 for endpoints, as in Cilium. Cilium's other modes are accepted and reported as not supported yet.",
    status: "supported",
    schema: choiceSchema(IPAM),
  },
  "ec2-api-endpoint": {
    kind: "string",
    expected: '"" or an http(s) URL, such as "https://ec2.us-east-1.amazonaws.com"',
    default: "",
    defaultText: '"" (the region\'s AWS endpoint)',
    description:
      "With `ipam: eni`: the EC2 API endpoint (Cilium's operator flag). Credentials come from the AWS SDK's default chain (environment, profile, instance role).",
    status: "supported",
    schema: stringSchema(httpUrl),
  },
  "eni-imds-endpoint": {
    kind: "string",
    expected: '"" or an http(s) URL, such as "http://169.254.169.254"',
    default: "",
    defaultText: '"" (AWS_EC2_METADATA_SERVICE_ENDPOINT, else http://169.254.169.254)',
    description:
      "dp's key. With `ipam: eni`: the instance metadata service (IMDSv2) the agent reads its instance, region, ENIs and VPC CIDRs from; for tests and non-AWS setups.",
    status: "supported",
    schema: stringSchema(httpUrl),
  },
  "eni-pre-allocate": {
    kind: "integer",
    expected: "an integer from 0 to 65535",
    default: 8,
    defaultText: "8",
    description: "With `ipam: eni`: addresses to keep free beyond those in use (CiliumNode `spec.ipam.pre-allocate`).",
    status: "supported",
    schema: integerSchema(0, 65535),
  },
  "eni-min-allocate": {
    kind: "integer",
    expected: "an integer from 0 to 65535",
    default: 0,
    defaultText: "0 (no minimum)",
    description: "With `ipam: eni`: addresses to hold at least, used or not (CiliumNode `spec.ipam.min-allocate`).",
    status: "supported",
    schema: integerSchema(0, 65535),
  },
  "eni-max-above-watermark": {
    kind: "integer",
    expected: "an integer from 0 to 65535",
    default: 0,
    defaultText: "0",
    description:
      "With `ipam: eni`: addresses to allocate beyond the pre-allocate watermark in one go (CiliumNode `spec.ipam.max-above-watermark`).",
    status: "supported",
    schema: integerSchema(0, 65535),
  },
  debug: bool(false, "Debug logs, and trace events for forwarded packets in `dp monitor`.", "supported"),
  "log-format": {
    kind: "choice",
    choices: LOG_FORMAT,
    expected: choiceExpected(LOG_FORMAT),
    default: "text",
    defaultText: "text",
    description: "Log lines as text or as JSON objects (`time`, `level`, `msg` and fields).",
    status: "supported",
    schema: choiceSchema(LOG_FORMAT),
  },
  "prometheus-serve-addr": {
    kind: "string",
    expected: '"" (off) or [host]:port, such as ":9962" or "127.0.0.1:9962"',
    default: "",
    defaultText: '"" (off)',
    description: "Where the agent serves Prometheus metrics (`/metrics`).",
    status: "supported",
    schema: stringSchema(serveAddress),
  },
  "agent-teardown-on-stop": bool(
    false,
    "dp's key. On SIGTERM/SIGINT, true removes the datapath (programs, maps, pins); false leaves it forwarding for the next agent to adopt.",
    "supported",
  ),
  tunnel: {
    kind: "choice",
    choices: TUNNEL,
    expected: choiceExpected(TUNNEL),
    default: undefined,
    defaultText: "unset (follows routing-mode)",
    description: "Cilium's older tunnel key: vxlan or geneve mean tunnel routing, disabled means native routing.",
    status: "not-supported-yet",
    schema: choiceSchema(TUNNEL),
  },
  "routing-mode": {
    kind: "choice",
    choices: ROUTING_MODE,
    expected: choiceExpected(ROUTING_MODE),
    default: undefined,
    defaultText: "unset (native, or tunnel when `tunnel` asks for it)",
    description: "native: pod traffic is routed by the node's routes; tunnel: encapsulated between nodes.",
    status: "not-supported-yet",
    schema: choiceSchema(ROUTING_MODE),
  },
  "auto-direct-node-routes": bool(false, "Install routes to the other nodes' pod ranges.", "not-supported-yet"),
  "bpf-nat-global-max": {
    kind: "integer",
    expected: "an integer from 1024 to 16777216",
    default: undefined,
    defaultText: "unset",
    description: "Entries of the NAT table.",
    status: "not-supported-yet",
    schema: integerSchema(1024, 16_777_216),
  },
  "bpf-lb-algorithm": {
    kind: "choice",
    choices: LB_ALGORITHM,
    expected: choiceExpected(LB_ALGORITHM),
    default: "random",
    defaultText: "random",
    description: "How services pick a backend.",
    status: "not-supported-yet",
    schema: choiceSchema(LB_ALGORITHM),
  },
  "bpf-lb-map-max": {
    kind: "integer",
    expected: "an integer from 1 to 16777216",
    default: undefined,
    defaultText: "unset",
    description: "Entries of the service maps.",
    status: "not-supported-yet",
    schema: integerSchema(1, 16_777_216),
  },
  "enable-bpf-masquerade": bool(false, "Masquerade in BPF instead of iptables.", "not-supported-yet"),
  "enable-ipv4-masquerade": bool(
    false,
    "Masquerade IPv4 traffic leaving the node (Cilium's default is true; dp has no masquerading yet).",
    "not-supported-yet",
  ),
  "enable-ipv6-masquerade": bool(false, "Masquerade IPv6 traffic leaving the node.", "not-supported-yet"),
  "egress-masquerade-interfaces": {
    kind: "list",
    expected: "a list of device names or patterns such as eth+",
    default: [],
    defaultText: "[]",
    description: "Devices to masquerade on.",
    status: "not-supported-yet",
    schema: listSchema(IFNAME_OR_PATTERN, "device name"),
  },
  "prefilter-device": {
    kind: "string",
    expected: '"" or a network device name',
    default: "",
    defaultText: '""',
    description: "A device for the XDP prefilter.",
    status: "not-supported-yet",
    schema: stringSchema((v) => (v === "" || IFNAME.test(v) ? undefined : "is not a device name")),
  },
  kvstore: {
    kind: "choice",
    choices: KVSTORE,
    expected: choiceExpected(KVSTORE),
    default: "",
    defaultText: '"" (none)',
    description:
      "The key-value store: etcd registers the node (name, node IPs, pod ranges, cluster) under a lease and, with `identity-allocation-mode: kvstore`, allocates identities cluster-wide (docs/kvstore.md). Needs `etcd-config` or `etcd-config-path`; the agent does not start while etcd does not answer.",
    status: "supported",
    schema: choiceSchema(KVSTORE),
  },
  "etcd-config": {
    kind: "string",
    expected: "a string (etcd's client configuration)",
    default: "",
    defaultText: '""',
    description:
      "The etcd client configuration as inline YAML, in the format of Cilium's etcd-config file (`endpoints`, `trusted-ca-file`, `cert-file`, `key-file`, `username`, `password`); or use `etcd-config-path`.",
    status: "supported",
    schema: z.string({ error: "is not a string" }),
  },
  "etcd-config-path": {
    kind: "string",
    expected: "an absolute path",
    default: "",
    defaultText: '""',
    description:
      "The etcd client configuration file (Cilium's etcd-config YAML), read at start; or inline with `etcd-config`.",
    status: "supported",
    schema: stringSchema((v) => (v === "" ? undefined : absolutePath(v))),
  },
  "identity-allocation-mode": {
    kind: "choice",
    choices: IDENTITY_ALLOCATION_MODE,
    expected: choiceExpected(IDENTITY_ALLOCATION_MODE),
    default: "crd",
    defaultText: "crd",
    description:
      "Where identities are allocated. kvstore: cluster-wide in etcd (needs `kvstore: etcd`), the same number for the same labels on every node. crd (Cilium's default name, kept for its configs): on the node, dp has no Kubernetes CRDs.",
    status: "supported",
    schema: choiceSchema(IDENTITY_ALLOCATION_MODE),
  },
  "node-name": {
    kind: "string",
    expected: '"" or a node name (lowercase letters, digits, "-" and ".")',
    default: "",
    defaultText: '"" (the host name)',
    description:
      "The node's name in the kvstore's node registry and identity references; `\"\"` = the kernel's host name.",
    status: "supported",
    schema: stringSchema((v) =>
      v === "" || (v.length <= 253 && /^[a-z0-9](?:[-a-z0-9.]*[a-z0-9])?$/.test(v)) ? undefined : "is not a node name",
    ),
  },
  "enable-endpoint-routes": bool(false, "A route per endpoint instead of one for the pod range.", "not-supported-yet"),
  "enable-ipsec": bool(
    false,
    "IPsec encryption between nodes: pod traffic to another node's pods carries the key chosen for that node in its mark, and the xfrm layer encrypts it (needs `ipsec-key-file`).",
    "supported",
  ),
  "ipsec-key-file": {
    kind: "string",
    expected: "an absolute path",
    default: "",
    defaultText: '""',
    description:
      "The IPsec keys, in the format of Cilium's `cilium-ipsec-keys` secret (`KEYID ALGO KEY BITS`, or `KEYID AUTH-ALGO AUTH-KEY CRYPT-ALGO CRYPT-KEY`, one key per line, the last one current); read at start.",
    status: "supported",
    schema: stringSchema((v) => (v === "" ? undefined : absolutePath(v))),
  },
  "enable-wireguard": bool(false, "WireGuard encryption between nodes.", "not-supported-yet"),
  "kube-proxy-replacement": {
    kind: "choice",
    choices: KUBE_PROXY_REPLACEMENT,
    expected: `${choiceExpected(KUBE_PROXY_REPLACEMENT)} (or a boolean)`,
    default: "false",
    defaultText: "false",
    description:
      "Services in BPF instead of kube-proxy; Cilium's older strict, probe, partial and disabled are accepted.",
    status: "not-supported-yet",
    schema: z.preprocess((v) => {
      const b = coerceBoolean(v);
      return typeof b === "boolean" ? String(b) : b;
    }, choiceSchema(KUBE_PROXY_REPLACEMENT)),
  },
  "enable-l7-proxy": bool(
    false,
    "The L7 (HTTP) proxy (Cilium's default is true; dp has none yet).",
    "not-supported-yet",
  ),
  "sockops-enable": bool(false, "Socket-level acceleration with sockops.", "not-supported-yet"),
};

/** The keys, in docs order. */
export const FIELD_KEYS: readonly FieldKey[] = Object.keys(FIELDS) as FieldKey[];
