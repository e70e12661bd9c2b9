// The agent's choice of IPAM behind one small interface: cluster-pool
// (addresses from the pod ranges, _ipam.ts) or eni (secondary addresses of
// the instance's ENIs, _eni_ipam.ts); _open_ipam.ts picks one. agent.ts
// only speaks to EndpointIpam.
import type { Endpoint } from "@dp/datapath";
import type { ResolvedConfig } from "../config/resolve_config.ts";
import { Ipam } from "./_ipam.ts";

/**
 * Addresses for endpoints created without ones, and what the mode installs
 * for them on the node.
 *
 * @internal
 */
export interface EndpointIpam {
  /** The IPAM mode. */
  readonly mode: "cluster-pool" | "eni";
  /** Whether endpoints get an IPv6 address from this IPAM (never with eni). */
  readonly ipv6: boolean;
  /**
   * Allocates an address.
   *
   * @param family 4 or 6.
   * @param owner Who it is for (for logs and the pool's records).
   * @returns The address.
   */
  allocate(family: 4 | 6, owner: string): Promise<string>;
  /**
   * Marks an address as in use (an address given in a request); addresses the IPAM does not manage are ignored.
   *
   * @param ip The address.
   */
  claim(ip: string): void;
  /**
   * Frees an address.
   *
   * @param ip The address.
   */
  release(ip: string): void;
  /**
   * Brings what the mode installs per endpoint in line with the endpoints (eni: the FIB rules and ENI tables).
   *
   * @param endpoints Every endpoint of the node.
   */
  sync(endpoints: readonly Endpoint[]): void;
  /**
   * Closes the IPAM's handles.
   *
   * @param teardown Also remove what it installed on the node.
   */
  close(teardown: boolean): void;
}

/**
 * cluster-pool: the pod ranges; nothing to install per endpoint.
 *
 * @internal
 */
export class ClusterPoolIpam implements EndpointIpam {
  readonly mode = "cluster-pool";
  readonly ipv6: boolean;
  readonly #pool: Ipam;

  constructor(resolved: ResolvedConfig, endpoints: readonly Endpoint[]) {
    const { ipv4, ipv6 } = resolved;
    this.ipv6 = ipv6 !== undefined;
    this.#pool = new Ipam({ ipv4: ipv4.range, ipv6: ipv6?.range }, [
      ipv4.router,
      ...(ipv6 === undefined ? [] : [ipv6.router]),
    ]);
    for (const ep of endpoints) {
      this.#pool.claim(ep.ipv4);
      if (ep.ipv6 !== undefined) this.#pool.claim(ep.ipv6);
    }
  }

  allocate(family: 4 | 6): Promise<string> {
    return Promise.resolve(this.#pool.allocate(family));
  }

  claim(ip: string): void {
    this.#pool.claim(ip);
  }

  release(ip: string): void {
    this.#pool.release(ip);
  }

  sync(): void {
    // Nothing per endpoint: the node's own routes reach the pods.
  }

  close(): void {
    // No handles.
  }
}
