import type { Instance, InstanceTypeLimits, NetworkInterface, Subnet, Vpc } from "../ec2_api.ts";

/** A subnet to create in the fake's VPC. */
export interface FakeSubnetInit {
  /** Its IPv4 CIDR, inside one of the VPC's CIDRs. */
  readonly cidr: string;
  /**
   * Its availability zone.
   *
   * @default the region's zone "a", such as `"us-east-1a"`
   */
  readonly availabilityZone?: string;
  /**
   * Tags.
   *
   * @default none
   */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Its id.
   *
   * @default generated (`subnet-…`)
   */
  readonly id?: string;
}

/** An instance to create; it gets a primary ENI at device index 0 with one address. */
export interface FakeInstanceInit {
  /**
   * Its instance type; it must be in the fake's table of limits.
   *
   * @default "m5.large"
   */
  readonly type?: string;
  /**
   * The subnet of its primary ENI.
   *
   * @default the first subnet
   */
  readonly subnetId?: string;
  /**
   * Security groups of its primary ENI.
   *
   * @default the VPC's `default` group
   */
  readonly securityGroupIds?: readonly string[];
  /**
   * Its id.
   *
   * @default generated (`i-…`)
   */
  readonly id?: string;
}

/** A security group to create. */
export interface FakeSecurityGroupInit {
  /** Its name. */
  readonly name: string;
  /**
   * Its id.
   *
   * @default generated (`sg-…`)
   */
  readonly id?: string;
}

/** A security group of the fake's VPC. */
export interface FakeSecurityGroup {
  /** Its id (`sg-…`). */
  readonly id: string;
  /** Its name. */
  readonly name: string;
}

/**
 * The fake EC2 account's state: one VPC with subnets, security groups,
 * instances and ENIs. Reading returns snapshots (plain data, the same
 * shapes `Ec2Api` returns); the `add…` methods seed it directly, without
 * going through the API, the call log or failure injection.
 *
 * Addresses are accounted as EC2 does: each subnet reserves its first four
 * and its last address, and ENI addresses are taken from the lowest free
 * ones.
 */
export interface FakeEc2State {
  /** The region, such as `"us-east-1"`. */
  readonly region: string;
  /** The VPC. */
  vpc(): Vpc;
  /**
   * Adds a secondary IPv4 CIDR to the VPC.
   *
   * @param cidr The CIDR, such as `"100.64.0.0/16"`.
   * @throws {SyntaxError} When `cidr` is not an IPv4 CIDR.
   */
  addVpcCidr(cidr: string): void;
  /**
   * Creates a subnet.
   *
   * @param init Its CIDR, zone, tags and id.
   * @returns The subnet.
   * @throws {SyntaxError} When the CIDR is not an IPv4 CIDR.
   * @throws {RangeError} When it is outside the VPC, overlaps another subnet or the id is taken.
   */
  addSubnet(init: FakeSubnetInit): Subnet;
  /**
   * Creates a security group.
   *
   * @param init Its name and id.
   * @returns The group.
   * @throws {RangeError} When the id is taken.
   */
  addSecurityGroup(init: FakeSecurityGroupInit): FakeSecurityGroup;
  /**
   * Creates a running instance with its primary ENI (device index 0,
   * deleted on termination).
   *
   * @param init Its type, subnet, security groups and id.
   * @returns The instance.
   * @throws {RangeError} When the type has no limits in the table, the subnet or a group is unknown, the subnet is full or the id is taken.
   */
  addInstance(init?: FakeInstanceInit): Instance;
  /**
   * Adds or replaces the limits of an instance type.
   *
   * @param limits The type and its limits.
   */
  setInstanceType(limits: InstanceTypeLimits): void;
  /**
   * Takes addresses of a subnet away, as if other tenants used them.
   *
   * @param subnetId The subnet.
   * @param count How many addresses.
   * @returns The addresses taken.
   * @throws {RangeError} When the subnet is unknown or has fewer free addresses.
   */
  reserveIps(subnetId: string, count: number): string[];
  /** Every subnet, in creation order. */
  subnets(): Subnet[];
  /** Every security group, in creation order. */
  securityGroups(): FakeSecurityGroup[];
  /** Every instance, in creation order. */
  instances(): Instance[];
  /** The instance type table, sorted by type. */
  instanceTypes(): InstanceTypeLimits[];
  /** Every ENI, in creation order. */
  networkInterfaces(): NetworkInterface[];
  /**
   * One ENI.
   *
   * @param id The ENI id.
   * @returns Its snapshot, or `undefined` when there is none.
   */
  networkInterface(id: string): NetworkInterface | undefined;
}
