// The result JSON of the CNI specification 1.0/1.1 (0.4.0 results have the
// same shape plus `ips[].version`, accepted and ignored).

/**
 * An interface of a CNI result: the host side of a veth (no `sandbox`) or
 * the container's interface (`sandbox` = its network namespace).
 *
 * @example The container's interface
 * ```ts no-run
 * import type { CniInterface } from "@dp/cni";
 * const eth0: CniInterface = { name: "eth0", mac: "0a:58:0a:00:00:05", sandbox: "/run/netns/c1" };
 * ```
 */
export interface CniInterface {
  /** The interface name. */
  readonly name: string;
  /** Its MAC address (`aa:bb:cc:dd:ee:ff`). */
  readonly mac?: string;
  /** Its MTU. */
  readonly mtu?: number;
  /** The network namespace it lives in, for a container interface; absent on the host side. */
  readonly sandbox?: string;
  /** A vhost-user or similar socket path (not used by dp-cni). */
  readonly socketPath?: string;
  /** A PCI id (not used by dp-cni). */
  readonly pciID?: string;
}

/**
 * An address of a CNI result: a CIDR, the gateway, and the index of its
 * interface in `interfaces`.
 *
 * @example The container's IPv4
 * ```ts no-run
 * import type { CniIpConfig } from "@dp/cni";
 * const ip: CniIpConfig = { address: "10.0.0.5/32", gateway: "169.254.1.1", interface: 1 };
 * ```
 */
export interface CniIpConfig {
  /** The address with its prefix length (`10.0.0.5/24`, `fd00::5/128`). */
  readonly address: string;
  /** The default gateway of this address, if any. */
  readonly gateway?: string;
  /** The index in `interfaces` of the interface that has the address. */
  readonly interface?: number;
  /** CNI 0.4.0 only: `"4"` or `"6"` (ignored). */
  readonly version?: string;
}

/**
 * A route of a CNI result (inside the container).
 *
 * @example The default route
 * ```ts no-run
 * import type { CniRoute } from "@dp/cni";
 * const r: CniRoute = { dst: "0.0.0.0/0", gw: "169.254.1.1" };
 * ```
 */
export interface CniRoute {
  /** The destination prefix. */
  readonly dst: string;
  /** The next hop, if any (else the default gateway of the address family). */
  readonly gw?: string;
  /** The route's MTU (CNI 1.1). */
  readonly mtu?: number;
  /** The route's advertised MSS (CNI 1.1). */
  readonly advmss?: number;
  /** The route's priority (CNI 1.1). */
  readonly priority?: number;
  /** The routing table (CNI 1.1). */
  readonly table?: number;
  /** The route's scope (CNI 1.1). */
  readonly scope?: number;
}

/**
 * DNS settings of a CNI result or network config.
 *
 * @example A resolver
 * ```ts no-run
 * import type { CniDns } from "@dp/cni";
 * const dns: CniDns = { nameservers: ["10.96.0.10"], search: ["default.svc.cluster.local"] };
 * ```
 */
export interface CniDns {
  /** Name servers, in order of preference. */
  readonly nameservers?: readonly string[];
  /** The local domain. */
  readonly domain?: string;
  /** Search domains. */
  readonly search?: readonly string[];
  /** Resolver options. */
  readonly options?: readonly string[];
}

/**
 * The result of a CNI ADD (and the `prevResult` of a chained plugin).
 *
 * @example A container on dp
 * ```ts no-run
 * import type { CniResult } from "@dp/cni";
 * const r: CniResult = {
 *   cniVersion: "1.1.0",
 *   interfaces: [{ name: "lxc1a2b3c4d5e6" }, { name: "eth0", sandbox: "/run/netns/c1" }],
 *   ips: [{ address: "10.0.0.5/32", gateway: "169.254.1.1", interface: 1 }],
 *   routes: [{ dst: "0.0.0.0/0", gw: "169.254.1.1" }],
 *   dns: {},
 * };
 * ```
 */
export interface CniResult {
  /** The version of the spec the result follows. */
  readonly cniVersion: string;
  /** The interfaces created (host side first, then the container's). */
  readonly interfaces?: readonly CniInterface[];
  /** The addresses assigned. */
  readonly ips?: readonly CniIpConfig[];
  /** The routes installed in the container. */
  readonly routes?: readonly CniRoute[];
  /** DNS settings. */
  readonly dns?: CniDns;
}

/**
 * What an IPAM plugin answers to ADD: addresses, routes and DNS, no
 * interfaces (a `interface` index, when present, is ignored).
 *
 * @example From host-local
 * ```ts no-run
 * import type { IpamResult } from "@dp/cni";
 * const r: IpamResult = { cniVersion: "1.0.0", ips: [{ address: "10.22.0.2/16", gateway: "10.22.0.1" }], routes: [{ dst: "0.0.0.0/0" }] };
 * ```
 */
export interface IpamResult {
  /** The version of the spec the result follows. */
  readonly cniVersion?: string;
  /** The addresses allocated. */
  readonly ips: readonly CniIpConfig[];
  /** Routes the IPAM config asks for. */
  readonly routes?: readonly CniRoute[];
  /** DNS settings. */
  readonly dns?: CniDns;
}
