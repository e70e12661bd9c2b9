import { formatIp, parseCidr } from "@dp/core";
import type { MapSizeOptions, NodeOptions } from "@dp/datapath";
import type { AgentConfig } from "./agent_config.ts";
import { ConfigError } from "./config_error.ts";
import { parseDuration } from "./_coerce.ts";
import { findContradictions, findUnsupported } from "./_rules.ts";

/**
 * What the running kernel offers, as far as the config's fallbacks care
 * (probe with `hasHelper("schedCls", "redirectPeer")`,
 * `hasHelper("schedCls", "redirectNeigh")` and `hasTcx()` from `@dp/core`).
 *
 * @example A 6.x kernel
 * ```ts no-run
 * import type { KernelFeatures } from "@dp/agent";
 * const kernel: KernelFeatures = { redirectPeer: true, redirectNeigh: true, tcx: true };
 * ```
 */
export interface KernelFeatures {
  /** The kernel has `bpf_redirect_peer` (Linux 5.10+). */
  readonly redirectPeer: boolean;
  /** The kernel has `bpf_redirect_neigh` (Linux 5.10+). */
  readonly redirectNeigh: boolean;
  /** The kernel has tcx links (Linux 6.6+). */
  readonly tcx: boolean;
}

/**
 * A feature's state for `dp status`: on, off, or asked for but not
 * supported yet (same shape as the API's `FeatureStatus`).
 *
 * @example Masquerading asked for
 * ```ts no-run
 * import type { ResolvedFeature } from "@dp/agent";
 * const s: ResolvedFeature = { state: "unsupported", message: "enable-ipv4-masquerade: masquerading is not supported yet" };
 * ```
 */
export interface ResolvedFeature {
  /** `enabled`, `disabled`, or `unsupported` (configured but not supported yet). */
  readonly state: "enabled" | "disabled" | "unsupported";
  /** A short explanation for humans. */
  readonly message: string;
}

/**
 * A config decided against a kernel by {@link resolveConfig}: the modes
 * with the reasons, what is not supported yet, and the options to open the
 * node with.
 *
 * @example Opening the node
 * ```ts no-run
 * import { loadConfig, resolveConfig } from "@dp/agent";
 * import { openNode } from "@dp/datapath";
 * import { hasHelper, hasTcx } from "@dp/core";
 * const { config } = loadConfig({ file: "/etc/dp/config.yaml" });
 * const resolved = resolveConfig(config, {
 *   redirectPeer: hasHelper("schedCls", "redirectPeer"),
 *   redirectNeigh: hasHelper("schedCls", "redirectNeigh"),
 *   tcx: hasTcx(),
 * });
 * const node = await openNode(resolved.nodeOptions);
 * ```
 */
export interface ResolvedConfig {
  /** The config this was resolved from. */
  readonly config: AgentConfig;
  /** The host routing mode and why (Cilium's fallback rules). */
  readonly hostRouting: {
    /** The mode chosen: `bpf` or `legacy`. */
    readonly mode: "bpf" | "legacy";
    /** Why: the config keys and kernel helpers that decided it. */
    readonly reason: string;
  };
  /** How programs are attached at tc and why. */
  readonly attachMode: {
    /** The mode chosen: `tcx` links or `netlink` (cls_bpf). */
    readonly mode: "tcx" | "netlink";
    /** Why: `enable-tcx`, or whether the kernel has tcx links. */
    readonly reason: string;
  };
  /** Masquerading (not supported yet when asked for). */
  readonly masquerading: ResolvedFeature;
  /** The key-value store: `enabled` with `kvstore: etcd` (the message says where identities are allocated). */
  readonly kvstore: ResolvedFeature;
  /** Every key that asks for something this version does not do, in key order. */
  readonly unsupported: readonly {
    /** The config key. */
    readonly key: string;
    /** What it asked for and why it is not done (`key: value: ... not supported yet`). */
    readonly message: string;
  }[];
  /** The IPv4 pod range and its router (the range's first address). */
  readonly ipv4: {
    /** The IPv4 pod range (`ipv4-range`). */
    readonly range: string;
    /** The router address: the range's first address. */
    readonly router: string;
  };
  /** The IPv6 pod range and its router, or `undefined` when `enable-ipv6` is false. */
  readonly ipv6:
    | {
        /** The IPv6 pod range (`ipv6-range`). */
        readonly range: string;
        /** The router address: the range's first address. */
        readonly router: string;
      }
    | undefined;
  /** The API socket. */
  readonly socketPath: string;
  /** The uplink (the first of `devices`), if any. */
  readonly uplink: string | undefined;
  /**
   * Options for `openNode` from `@dp/datapath`: `stateDir` (`<bpf-root>/dp`),
   * `netns`, `hostRouting`, `attachMode`, `router`, `uplink`, `mapSizes`,
   * `ctGc` and `trace` (from `debug`). Add an `allocator` or `objectDir`
   * as needed.
   */
  readonly nodeOptions: NodeOptions;
}

/**
 * Decides a config against what the kernel offers, with Cilium's fallback
 * rules instead of late failures. Pure: it reads nothing.
 *
 * @param config A config from {@link loadConfig}.
 * @param kernel What the kernel has.
 * @returns The modes with their reasons, the unsupported keys and the node options.
 * @throws {ConfigError} When keys contradict each other (also checked by {@link loadConfig}).
 * @example Falling back to legacy host routing on an old kernel
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadConfig, resolveConfig } from "@dp/agent";
 * const { config } = loadConfig({});
 * const resolved = resolveConfig(config, { redirectPeer: false, redirectNeigh: true, tcx: false });
 * assert.equal(resolved.hostRouting.mode, "legacy");
 * assert.match(resolved.hostRouting.reason, /bpf_redirect_peer/);
 * assert.equal(resolved.attachMode.mode, "netlink");
 * assert.equal(resolved.nodeOptions.stateDir, "/sys/fs/bpf/dp");
 * ```
 */
export function resolveConfig(config: AgentConfig, kernel: KernelFeatures): ResolvedConfig {
  const contradictions = findContradictions(config);
  if (contradictions.length > 0) throw new ConfigError(contradictions);
  const hostRouting = chooseHostRouting(config, kernel);
  const attachMode = chooseAttachMode(config, kernel);
  const ipv4 = { range: config["ipv4-range"], router: firstAddress(config["ipv4-range"]) };
  const ipv6 = config["enable-ipv6"]
    ? { range: config["ipv6-range"], router: firstAddress(config["ipv6-range"]) }
    : undefined;
  const uplink = config.devices[0];
  const mapSizes: MapSizeOptions = {
    ...(config["bpf-ct-global-tcp-max"] === undefined
      ? {}
      : { "bpf-ct-global-tcp-max": config["bpf-ct-global-tcp-max"] }),
    ...(config["bpf-ct-global-any-max"] === undefined
      ? {}
      : { "bpf-ct-global-any-max": config["bpf-ct-global-any-max"] }),
    "bpf-policy-map-max": config["bpf-policy-map-max"],
    ...(config["bpf-map-dynamic-size-ratio"] === 0
      ? {}
      : { "bpf-map-dynamic-size-ratio": config["bpf-map-dynamic-size-ratio"] }),
  };
  const gcInterval = parseDuration(config["conntrack-gc-interval"]) ?? 0;
  const nodeOptions: NodeOptions = {
    stateDir: `${config["bpf-root"].replace(/\/+$/, "")}/dp`,
    ...(config.netns === "" ? {} : { netns: config.netns }),
    hostRouting: hostRouting.mode,
    attachMode: attachMode.mode,
    router: ipv6 === undefined ? { ipv4: ipv4.router } : { ipv4: ipv4.router, ipv6: ipv6.router },
    ...(uplink === undefined ? {} : { uplink }),
    mapSizes,
    ctGc: gcInterval === 0 ? {} : { interval: gcInterval },
    trace: config.debug,
    encryption: config["enable-ipsec"] ? "ipsec" : "disabled",
  };
  const unsupported = findUnsupported(config);
  const masq = unsupported.filter((u) => /masquerade/.test(u.key));
  return {
    config,
    hostRouting,
    attachMode,
    masquerading:
      masq.length > 0
        ? { state: "unsupported", message: masq.map((u) => u.message).join("; ") }
        : { state: "disabled", message: "Disabled" },
    kvstore:
      config.kvstore === "etcd"
        ? {
            state: "enabled",
            message:
              config["identity-allocation-mode"] === "kvstore"
                ? "etcd: node registry and identities"
                : "etcd: node registry; identities are allocated on the node",
          }
        : { state: "disabled", message: "Disabled: identities are allocated on the node" },
    unsupported,
    ipv4,
    ipv6,
    socketPath: config["socket-path"],
    uplink,
    nodeOptions,
  };
}

/** The first address of a range (the router): the network address plus one. */
function firstAddress(range: string): string {
  const { bytes } = parseCidr(range);
  const out = bytes.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    out[i] = ((out[i] ?? 0) + 1) & 0xff;
    if (out[i] !== 0) break;
  }
  return formatIp(out);
}

/**
 * Cilium's rules (daemon/cmd/kube_proxy_replacement.go): legacy when asked;
 * else BPF host routing falls back to legacy, with the reason, when endpoint
 * routes are on, when masquerading is on without BPF masquerading, with
 * IPsec, or when the kernel lacks bpf_redirect_peer or bpf_redirect_neigh.
 */
function chooseHostRouting(
  config: AgentConfig,
  kernel: KernelFeatures,
): { readonly mode: "bpf" | "legacy"; readonly reason: string } {
  const asked = config["enable-host-legacy-routing"];
  if (asked === true) return { mode: "legacy", reason: "enable-host-legacy-routing is true" };
  const fallback = (why: string): { mode: "legacy"; reason: string } => ({
    mode: "legacy",
    reason: `${why}; falling back to legacy host routing${asked === false ? " (enable-host-legacy-routing is false)" : ""}`,
  });
  if (config["enable-endpoint-routes"]) return fallback("BPF host routing is incompatible with enable-endpoint-routes");
  const masquerading = [
    config["enable-ipv4-masquerade"] ? "enable-ipv4-masquerade" : undefined,
    config["enable-ipv6-masquerade"] ? "enable-ipv6-masquerade" : undefined,
  ].filter((k) => k !== undefined);
  if (masquerading.length > 0 && !config["enable-bpf-masquerade"]) {
    return fallback(`BPF host routing needs enable-bpf-masquerade when ${masquerading.join(" and ")} is on`);
  }
  if (config["enable-ipsec"]) return fallback("BPF host routing is not supported with enable-ipsec");
  const missing = [
    kernel.redirectPeer ? undefined : "bpf_redirect_peer",
    kernel.redirectNeigh ? undefined : "bpf_redirect_neigh",
  ].filter((h) => h !== undefined);
  if (missing.length > 0) {
    return fallback(
      `BPF host routing needs the kernel's ${missing.join(" and ")} (Linux 5.10+), which this kernel lacks`,
    );
  }
  const why = asked === false ? "enable-host-legacy-routing is false" : "enable-host-legacy-routing is unset";
  return { mode: "bpf", reason: `${why} and the kernel has bpf_redirect_peer and bpf_redirect_neigh` };
}

function chooseAttachMode(
  config: AgentConfig,
  kernel: KernelFeatures,
): { readonly mode: "tcx" | "netlink"; readonly reason: string } {
  if (!config["enable-tcx"]) return { mode: "netlink", reason: "enable-tcx is false" };
  if (!kernel.tcx)
    return { mode: "netlink", reason: "the kernel has no tcx links (Linux 6.6+); using netlink cls_bpf" };
  return { mode: "tcx", reason: "enable-tcx is true and the kernel has tcx links" };
}
