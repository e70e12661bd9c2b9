import type { CniEnv } from "./spec/env.ts";
import type { CniLabels, NetConf } from "./spec/netconf.ts";

/** The `CNI_ARGS` keys that become labels, and the label keys they become (Cilium's). */
const ARG_LABELS: Readonly<Record<string, string>> = {
  K8S_POD_NAME: "k8s:io.kubernetes.pod.name",
  K8S_POD_NAMESPACE: "k8s:io.kubernetes.pod.namespace",
};

/** The label every container of a network gets: `cni:network=NAME`. */
const NETWORK_LABEL = "cni:network";
/** What a label value may be (so a network name that is not one gives no network label). */
const LABEL_VALUE = /^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$/;

/**
 * The label that marks a container as attached to a network,
 * `cni:network=NAME`, when the name can be a label value (up to 63
 * letters, digits, `.`, `_`, `-`).
 *
 * @param name The network's name (`name` of the network config).
 * @returns The label, or undefined when the name cannot be a label value.
 * @example The label of network "dpnet"
 * ```ts
 * import assert from "node:assert/strict";
 * import { networkLabel } from "@dp/cni";
 * assert.equal(networkLabel("dpnet"), "cni:network=dpnet");
 * ```
 */
export function networkLabel(name: string): string | undefined {
  return LABEL_VALUE.test(name) ? `${NETWORK_LABEL}=${name}` : undefined;
}

function listOf(labels: CniLabels | undefined): string[] {
  if (labels === undefined) return [];
  if (Array.isArray(labels)) return [...(labels as readonly string[])];
  return Object.entries(labels as Readonly<Record<string, string>>).map(([k, v]) => (v === "" ? k : `${k}=${v}`));
}

/**
 * The labels of a container: `cni:network=NAME` (see {@link networkLabel}:
 * every container has a label, and GC tells the network's containers
 * apart), those of the network config (`labels`), of
 * the runtime's per-container arguments (`args.cni.labels`,
 * `runtimeConfig.labels`), and `K8S_POD_NAME` / `K8S_POD_NAMESPACE` of
 * `CNI_ARGS` as `k8s:io.kubernetes.pod.name=` /
 * `k8s:io.kubernetes.pod.namespace=` (as Cilium names them). Object forms
 * become `key=value`; duplicates are dropped, the order kept.
 *
 * @param netconf The network config.
 * @param env The CNI environment.
 * @returns The labels, as the agent API takes them.
 * @example Labels from the config and the pod's arguments
 * ```ts
 * import assert from "node:assert/strict";
 * import { cniLabels, parseCniEnv, parseNetConf } from "@dp/cni";
 * const conf = parseNetConf('{"cniVersion":"1.1.0","name":"dp","type":"dp-cni","labels":["k8s:app=web"]}');
 * const env = parseCniEnv({ CNI_COMMAND: "ADD", CNI_CONTAINERID: "c1", CNI_NETNS: "/run/netns/c1", CNI_IFNAME: "eth0", CNI_ARGS: "K8S_POD_NAMESPACE=shop" });
 * assert.deepEqual(cniLabels(conf, env), ["cni:network=dp", "k8s:app=web", "k8s:io.kubernetes.pod.namespace=shop"]);
 * ```
 */
export function cniLabels(netconf: NetConf, env: CniEnv): string[] {
  const network = networkLabel(netconf.name);
  const out = [
    ...(network === undefined ? [] : [network]),
    ...listOf(netconf.labels),
    ...listOf(netconf.args?.cni?.labels),
    ...listOf(netconf.runtimeConfig?.labels),
  ];
  for (const [key, value] of env.args) {
    const label = ARG_LABELS[key];
    if (label !== undefined && value !== "") out.push(`${label}=${value}`);
  }
  return [...new Set(out)];
}
