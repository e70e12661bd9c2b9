// The connectivity test's pods: a namespace per pod, an endpoint for it
// through the agent's API, and a probe process in it that serves HTTP and
// UDP echo and runs probes. Plus the world (the lab's outside namespace,
// or an external address) and the host (the node's uplink address).
import { randomBytes } from "node:crypto";
import { createNetns, deleteNetns, openNetns } from "@dp/core";
import { openRouting } from "@dp/routing";
import type { ApiClient } from "../api/client.ts";
import type { ApiEndpoint } from "../api/types.ts";
import { ProbeWorker } from "../lab/_probe_worker.ts";
import type { Lab } from "../lab/lab.ts";
import { CONNECTIVITY_HTTP_PORT, CONNECTIVITY_PODS, type ConnectivityPod } from "./scenario.ts";

/** A deployed pod. */
export interface DeployedPod {
  /** Its namespace's name. */
  readonly netns: string;
  /** Its endpoint. */
  readonly endpoint: ApiEndpoint;
  /** @internal The probe process in it. */
  readonly worker: ProbeWorker;
}

/** Options for {@link deployConnectivityPods}. */
export interface DeployOptions {
  /** The agent. */
  readonly client: ApiClient;
  /** A lab: pods become its namespaces, its outside namespace is the world, its node the host. */
  readonly lab?: Lab;
  /** Without a lab: an external address to use as the world target (HTTP on port 8080, ping). */
  readonly externalTarget?: string;
  /** Labels every pod gets on top of its own (`k8s:app=dp-demo`). */
  readonly extraLabels?: readonly string[];
  /** Progress for humans. */
  readonly onProgress?: (message: string) => void;
  /** Aborting stops the deployment and removes what was made. */
  readonly signal?: AbortSignal;
}

/**
 * The pods, world and host of a connectivity test; `remove()` deletes
 * the endpoints, probe processes and namespaces.
 */
export class ConnectivityDeployment {
  /** The pods by name. */
  readonly pods: Partial<Record<ConnectivityPod, DeployedPod>> = {};
  /** The world target, if any. */
  world:
    | {
        /** The world's IPv4 address, if it has one. */
        readonly ipv4?: string;
        /** The world's IPv6 address, if it has one. */
        readonly ipv6?: string;
      }
    | undefined;
  /** @internal The probe process in the world's namespace (a lab's outside). */
  worldWorker: ProbeWorker | undefined;
  /** The node's addresses, if known. */
  host:
    | {
        /** The node's IPv4 address, if known. */
        readonly ipv4?: string;
        /** The node's IPv6 address, if known. */
        readonly ipv6?: string;
      }
    | undefined;
  readonly #client: ApiClient;
  readonly #namespaces: string[] = [];
  readonly #workers: ProbeWorker[] = [];
  #removed: Promise<void> | undefined;

  /** @internal */
  constructor(client: ApiClient) {
    this.#client = client;
  }

  /** @internal */
  addNetns(name: string): void {
    this.#namespaces.push(name);
  }

  /** @internal */
  addWorker(worker: ProbeWorker): void {
    this.#workers.push(worker);
  }

  /**
   * Stops the probe processes without touching endpoints or namespaces
   * (a kept demo lab).
   */
  stopProbes(): void {
    for (const w of this.#workers) w.close();
  }

  /**
   * Deletes the endpoints, stops the probe processes and deletes the
   * namespaces. Safe to call more than once.
   *
   * @returns Resolves when done.
   */
  remove(): Promise<void> {
    this.#removed ??= this.#remove();
    return this.#removed;
  }

  async #remove(): Promise<void> {
    this.stopProbes();
    for (const pod of Object.values(this.pods)) {
      try {
        await this.#client.deleteEndpoint(pod.endpoint.id);
      } catch {
        // The agent may be gone; deleting the namespace removes the pod's side anyway.
      }
    }
    for (const ns of this.#namespaces) deleteNetns(ns);
  }
}

function hostAddresses(netns: string, device: string | undefined): { ipv4?: string; ipv6?: string } | undefined {
  if (device === undefined) return undefined;
  try {
    using ns = netns === "" ? undefined : openNetns(netns);
    using rt = openRouting(ns === undefined ? {} : { netns: ns });
    const addrs = rt.addresses.list({ dev: device }).filter((a) => a.scope === 0);
    // Addresses are listed as "ADDRESS/LENGTH".
    const v4 = addrs.find((a) => a.family === 4)?.address.split("/")[0];
    const v6 = addrs.find((a) => a.family === 6)?.address.split("/")[0];
    return { ...(v4 === undefined ? {} : { ipv4: v4 }), ...(v6 === undefined ? {} : { ipv6: v6 }) };
  } catch {
    return undefined;
  }
}

/**
 * Deploys the connectivity test's pods (client, client2, echo-same-node)
 * as endpoints of the agent, each with a probe process serving HTTP on
 * 8080 and UDP echo on 8081, and the world's server when a lab is given.
 *
 * @param options The agent, the lab, progress.
 * @returns The deployment; `remove()` it.
 * @throws {ApiError} When the agent refuses an endpoint; what was made is removed first.
 * @example Pods against the agent of a lab
 * ```ts no-run
 * import { createLab, deployConnectivityPods } from "@dp/agent";
 * const lab = await createLab();
 * const pods = await deployConnectivityPods({ client: lab.client, lab });
 * console.log(pods.pods.client?.endpoint.ipv4);
 * await pods.remove();
 * await lab.destroy();
 * ```
 */
export async function deployConnectivityPods(options: DeployOptions): Promise<ConnectivityDeployment> {
  const { client, lab, signal } = options;
  const progress = options.onProgress ?? ((): void => {});
  const dep = new ConnectivityDeployment(client);
  lab?.onDestroy(() => dep.remove());
  const prefix = `dpct-${process.pid}-${randomBytes(2).toString("hex")}`;
  try {
    for (const [pod, labels] of Object.entries(CONNECTIVITY_PODS) as [ConnectivityPod, readonly string[]][]) {
      signal?.throwIfAborted();
      let netns: string;
      if (lab !== undefined) {
        netns = lab.createNetns(pod);
        dep.addNetns(netns);
      } else {
        netns = `${prefix}-${pod}`;
        dep.addNetns(netns);
        using ns = createNetns(netns);
        using rt = openRouting({ netns: ns });
        rt.sysctl.set("net.ipv6.conf.all.accept_dad", 0);
        rt.sysctl.set("net.ipv6.conf.default.accept_dad", 0);
        rt.links.set("lo", { up: true });
      }
      const endpoint = await client.createEndpoint({
        netns,
        labels: [...labels, ...(options.extraLabels ?? [])],
        containerId: `connectivity-${pod}`,
      });
      const worker = await ProbeWorker.start(netns, CONNECTIVITY_HTTP_PORT);
      dep.addWorker(worker);
      dep.pods[pod] = { netns, endpoint, worker };
      progress(
        `pod ${pod}: endpoint ${endpoint.id}, identity ${endpoint.identity}, ${endpoint.ipv4}${endpoint.ipv6 === undefined ? "" : ` ${endpoint.ipv6}`}`,
      );
    }
    if (lab !== undefined) {
      const worker = await ProbeWorker.start(lab.outsideNetns, CONNECTIVITY_HTTP_PORT);
      dep.addWorker(worker);
      dep.world = lab.world;
      dep.worldWorker = worker;
      dep.host = lab.host;
    } else {
      if (options.externalTarget !== undefined) {
        const t = options.externalTarget;
        dep.world = t.includes(":") ? { ipv6: t } : { ipv4: t };
      }
      const status = await client.status();
      dep.host = hostAddresses(status.node.netns, status.node.devices[0]);
    }
    return dep;
  } catch (err) {
    await dep.remove();
    throw err;
  }
}
