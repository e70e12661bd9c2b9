import type { CniDns, CniResult } from "./result.ts";

/**
 * Labels as a network config gives them: a list of `source:key=value`
 * strings (`k8s:app=web`, `app=web`) or an object of key to value.
 *
 * @example Both forms
 * ```ts no-run
 * import type { CniLabels } from "@dp/cni";
 * const list: CniLabels = ["k8s:app=web"];
 * const object: CniLabels = { app: "web" };
 * ```
 */
export type CniLabels = readonly string[] | Readonly<Record<string, string>>;

/**
 * The `ipam` section of a network config: absent for the agent's own IPAM,
 * or a standard IPAM plugin (`host-local`, ...) and its own keys.
 *
 * @example host-local
 * ```ts no-run
 * import type { IpamConf } from "@dp/cni";
 * const ipam: IpamConf = { type: "host-local", ranges: [[{ subnet: "10.22.0.0/16" }]] };
 * ```
 */
export interface IpamConf {
  /** The IPAM plugin's binary name, looked up in `CNI_PATH`. */
  readonly type: string;
  /** The plugin's own keys. */
  readonly [key: string]: unknown;
}

/**
 * One still valid attachment in the `cni.dev/valid-attachments` of a GC
 * request (CNI 1.1).
 *
 * @example An attachment
 * ```ts no-run
 * import type { CniAttachment } from "@dp/cni";
 * const a: CniAttachment = { containerID: "c1", ifname: "eth0" };
 * ```
 */
export interface CniAttachment {
  /** The container id. */
  readonly containerID: string;
  /** The interface name in the container. */
  readonly ifname: string;
}

/**
 * A dp-cni network config as it arrives on stdin (after the runtime
 * injected `runtimeConfig`, `args`, `prevResult`): the keys dp-cni reads,
 * typed, and every other key kept as it came so the config can be handed on
 * unchanged to a delegated IPAM plugin.
 *
 * @example The smallest config
 * ```ts no-run
 * import type { NetConf } from "@dp/cni";
 * const conf: NetConf = { cniVersion: "1.1.0", name: "dp", type: "dp-cni" };
 * ```
 */
export interface NetConf {
  /** The version of the CNI spec the config follows (`1.1.0`, `1.0.0`, `0.4.0`). */
  readonly cniVersion: string;
  /** The network's name. */
  readonly name: string;
  /** The plugin: `dp-cni`. */
  readonly type: string;
  /**
   * The agent's API socket.
   *
   * @default "/var/run/dp/dp.sock"
   */
  readonly socketPath?: string;
  /** Labels every container on this network gets. */
  readonly labels?: CniLabels;
  /** A standard IPAM plugin; absent: the agent's IPAM allocates. */
  readonly ipam?: IpamConf;
  /** DNS settings copied into the result. */
  readonly dns?: CniDns;
  /** Per-container arguments from the runtime (`args.cni.labels` gives labels). */
  readonly args?: {
    /** The CNI-scoped arguments. */
    readonly cni?: {
      /** Labels of this container. */
      readonly labels?: CniLabels;
      /** Other arguments. */
      readonly [key: string]: unknown;
    };
    /** Other scopes. */
    readonly [key: string]: unknown;
  };
  /** Capabilities the runtime filled in (`runtimeConfig.labels` gives labels). */
  readonly runtimeConfig?: {
    /** Labels of this container. */
    readonly labels?: CniLabels;
    /** Other capabilities (`portMappings`, ...). */
    readonly [key: string]: unknown;
  };
  /** The result of the previous plugin in a chain (chained mode when it has a container interface). */
  readonly prevResult?: CniResult;
  /** GC (CNI 1.1): the attachments that are still valid on this network. */
  readonly "cni.dev/valid-attachments"?: readonly CniAttachment[];
  /** Any other key, kept as it came. */
  readonly [key: string]: unknown;
}
