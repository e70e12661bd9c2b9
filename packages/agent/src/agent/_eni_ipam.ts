// ipam: eni — endpoint IPv4 addresses are secondary addresses of the
// instance's ENIs (@dp/eni's pool, EC2 through the AWS SDK), and each
// endpoint gets the ENI datapath's FIB rules (to the pod: main table; from
// the pod to the VPC: its ENI's table) in the node's namespace. Nothing is
// kept in memory across restarts: the pool is rebuilt from EC2, the
// kernel's rules (listEniPodIps) and the node's endpoints.
import { type Netns, openNetns } from "@dp/core";
import type { Endpoint } from "@dp/datapath";
import {
  createEc2Api,
  type Ec2ApiClient,
  type EniDatapathState,
  type EniPool,
  listEniPodIps,
  openEniPool,
  readInstanceMetadata,
  reconcileEniDatapath,
} from "@dp/eni";
import { openRouting, type Routing } from "@dp/routing";
import type { AgentConfig } from "../config/agent_config.ts";
import type { EndpointIpam } from "./_endpoint_ipam.ts";

/** The ENI pool and the node's routing handle. */
class EniIpam implements EndpointIpam {
  readonly mode = "eni";
  readonly ipv6 = false;
  readonly #pool: EniPool;
  readonly #ec2: Ec2ApiClient;
  readonly #rt: Routing;
  readonly #netns: Netns | undefined;
  readonly #vpcCidrs: readonly string[];

  constructor(parts: {
    pool: EniPool;
    ec2: Ec2ApiClient;
    rt: Routing;
    netns: Netns | undefined;
    vpcCidrs: readonly string[];
  }) {
    this.#pool = parts.pool;
    this.#ec2 = parts.ec2;
    this.#rt = parts.rt;
    this.#netns = parts.netns;
    this.#vpcCidrs = parts.vpcCidrs;
  }

  async allocate(family: 4 | 6, owner: string): Promise<string> {
    if (family === 6) throw new RangeError("Cannot allocate an IPv6 address: ipam eni is IPv4 only");
    return (await this.#pool.allocate(owner)).ip;
  }

  claim(): void {
    // Addresses given in a request are not the pool's: they get no ENI rules.
  }

  release(ip: string): void {
    this.#pool.release(ip);
  }

  sync(endpoints: readonly Endpoint[]): void {
    reconcileEniDatapath(this.#rt, this.#state(endpoints));
  }

  #state(endpoints: readonly Endpoint[]): EniDatapathState {
    const enis = this.#pool
      .status()
      .enis.filter((e) => e.usable && e.subnetCidr !== undefined)
      .map((e) => ({
        dev: `eth${e.deviceIndex}`,
        deviceIndex: e.deviceIndex,
        subnetCidr: e.subnetCidr ?? "",
        vpcCidrs: this.#vpcCidrs,
      }));
    const pods = [];
    for (const ep of endpoints) {
      const a = this.#pool.get(ep.ipv4);
      if (a !== undefined) pods.push({ ip: ep.ipv4, eni: `eth${a.deviceIndex}` });
    }
    return { enis, pods };
  }

  close(teardown: boolean): void {
    try {
      if (teardown) reconcileEniDatapath(this.#rt, { enis: [], pods: [] });
    } finally {
      this.#rt.close();
      this.#ec2.close();
      this.#netns?.close();
    }
  }
}

/**
 * Opens the ENI IPAM: reads the instance from IMDS, opens the pool through
 * EC2 with the addresses in use (the kernel's ENI rules and the node's
 * endpoints), reconciles the rules with the endpoints, and gives back
 * addresses only stale rules held.
 *
 * @internal
 * @param config The config (`eni-*` keys, `ec2-api-endpoint`, `netns`).
 * @param endpoints The node's endpoints.
 * @returns The IPAM.
 */
export async function openEniIpam(config: AgentConfig, endpoints: readonly Endpoint[]): Promise<EndpointIpam> {
  const md = await readInstanceMetadata(
    config["eni-imds-endpoint"] === "" ? {} : { endpoint: config["eni-imds-endpoint"] },
  );
  const ec2 = createEc2Api({
    region: md.region,
    ...(config["ec2-api-endpoint"] === "" ? {} : { endpoint: config["ec2-api-endpoint"] }),
  });
  const netns = config.netns === "" ? undefined : openNetns(config.netns);
  let rt: Routing | undefined;
  try {
    rt = openRouting(netns === undefined ? {} : { netns });
    const fromRules = listEniPodIps(rt);
    const live = new Set(endpoints.map((e) => e.ipv4));
    const pool = await openEniPool(ec2, {
      instance: md.instanceId,
      preAllocate: config["eni-pre-allocate"],
      minAllocate: config["eni-min-allocate"],
      maxAboveWatermark: config["eni-max-above-watermark"],
      inUse: new Set([...fromRules, ...live]),
    });
    const ipam = new EniIpam({ pool, ec2, rt, netns, vpcCidrs: md.interfaces[0]?.vpcCidrs ?? [] });
    ipam.sync(endpoints);
    // Rules of endpoints that are gone (an agent killed mid-delete): their rules are removed, their addresses free.
    for (const ip of fromRules) if (!live.has(ip)) pool.release(ip);
    await pool.resync();
    return ipam;
  } catch (err) {
    rt?.close();
    ec2.close();
    netns?.close();
    throw err;
  }
}
