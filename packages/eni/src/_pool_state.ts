// The bookkeeping EniPool keeps between EC2 calls. It is rebuilt from EC2
// every time a pool is opened; nothing here outlives the process.
import type { Ec2Api, Instance, InstanceTypeLimits, Subnet } from "./ec2_api.ts";

/** An ENI attached to the instance. */
export interface PoolEni {
  readonly id: string;
  readonly deviceIndex: number;
  readonly subnetId: string;
  readonly mac: string;
  readonly primaryIp: string;
  readonly description: string;
  /** Whether the pool hands out its addresses (first-interface-index, excludeInterfaceIndexes). */
  readonly usable: boolean;
  /** Secondary private IPv4 addresses, in the order EC2 assigned them. */
  secondary: string[];
  /** EC2 refused more addresses on it (PrivateIpAddressLimitExceeded). */
  full: boolean;
}

/** A subnet of the instance's VPC, with the free addresses the pool believes it has. */
export interface PoolSubnet {
  readonly subnet: Subnet;
  available: number;
}

/** The settled options of a pool. */
export interface PoolKnobs {
  readonly preAllocate: number;
  readonly minAllocate: number;
  readonly maxAllocate: number;
  readonly maxAboveWatermark: number;
  readonly firstInterfaceIndex: number;
  readonly excludeInterfaceIndexes: ReadonlySet<number>;
  readonly subnetTags: Readonly<Record<string, string>>;
  readonly securityGroupIds: readonly string[];
  readonly deleteOnTermination: boolean;
  readonly description: string;
  readonly sleep: (ms: number) => Promise<void>;
}

/** What an EniPool is made of. */
export interface PoolContext {
  readonly api: Ec2Api;
  readonly instance: Instance;
  readonly limits: InstanceTypeLimits;
  readonly knobs: PoolKnobs;
  /** Every ENI attached to the instance, by id. */
  readonly enis: Map<string, PoolEni>;
  /** Subnets of the instance's VPC, by id. */
  readonly subnets: Map<string, PoolSubnet>;
  /** Addresses handed out (or in use at open), with their owner. */
  readonly used: Map<string, string | undefined>;
}
