// The EC2 operations ENI IPAM needs, as plain data. createEc2Api() (ec2.ts)
// implements them over @aws-sdk/client-ec2; tests can implement them in
// memory.

/** An ENI attachment to an instance. */
export interface EniAttachment {
  /** The attachment id (`eni-attach-…`). */
  readonly id: string;
  /** The instance it is attached to. */
  readonly instanceId: string;
  /** The device index: 0 is the primary ENI (`eth0`). */
  readonly deviceIndex: number;
  /** The attachment state. */
  readonly status: "attaching" | "attached" | "detaching" | "detached";
  /** Whether EC2 deletes the ENI when the instance terminates. */
  readonly deleteOnTermination: boolean;
}

/** An elastic network interface. */
export interface NetworkInterface {
  /** The ENI id (`eni-…`). */
  readonly id: string;
  /** Its subnet. */
  readonly subnetId: string;
  /** Its VPC. */
  readonly vpcId: string;
  /** Its availability zone. */
  readonly availabilityZone: string;
  /** Its MAC address, lower case. */
  readonly mac: string;
  /** Its description. */
  readonly description: string;
  /** `"available"` (not attached), `"in-use"`, `"attaching"`, `"detaching"`. */
  readonly status: string;
  /** Security groups. */
  readonly securityGroupIds: readonly string[];
  /** The primary private IPv4 address. */
  readonly primaryIp: string;
  /** Every private IPv4 address, the primary first. */
  readonly ips: readonly string[];
  /** IPv6 addresses. */
  readonly ipv6: readonly string[];
  /** The attachment, when attached. */
  readonly attachment: EniAttachment | undefined;
  /** Tags. */
  readonly tags: Readonly<Record<string, string>>;
}

/** A subnet. */
export interface Subnet {
  /** The subnet id (`subnet-…`). */
  readonly id: string;
  /** Its VPC. */
  readonly vpcId: string;
  /** Its availability zone. */
  readonly availabilityZone: string;
  /** Its IPv4 CIDR. */
  readonly cidr: string;
  /** How many addresses are free. */
  readonly availableIps: number;
  /** Tags. */
  readonly tags: Readonly<Record<string, string>>;
}

/** A VPC. */
export interface Vpc {
  /** The VPC id (`vpc-…`). */
  readonly id: string;
  /** Its IPv4 CIDRs, the primary first. */
  readonly cidrs: readonly string[];
}

/** An EC2 instance, as ENI IPAM needs it. */
export interface Instance {
  /** The instance id (`i-…`). */
  readonly id: string;
  /** The instance type, such as `"m5.large"`. */
  readonly type: string;
  /** The primary ENI's subnet. */
  readonly subnetId: string;
  /** The VPC. */
  readonly vpcId: string;
  /** The availability zone. */
  readonly availabilityZone: string;
}

/** ENI limits of an instance type. */
export interface InstanceTypeLimits {
  /** The instance type. */
  readonly type: string;
  /** How many ENIs it can have attached. */
  readonly maxEnis: number;
  /** Private IPv4 addresses per ENI (the primary included). */
  readonly ipv4PerEni: number;
  /** IPv6 addresses per ENI. */
  readonly ipv6PerEni: number;
}

/** What {@link Ec2Api.createNetworkInterface} takes. */
export interface CreateNetworkInterfaceInput {
  /** The subnet. */
  readonly subnetId: string;
  /** Security groups. */
  readonly securityGroupIds: readonly string[];
  /**
   * A description.
   *
   * @default ""
   */
  readonly description?: string;
  /**
   * Tags.
   *
   * @default none
   */
  readonly tags?: Readonly<Record<string, string>>;
  /**
   * Secondary private IPv4 addresses to assign at creation.
   *
   * @default 0
   */
  readonly secondaryIpCount?: number;
}

/** Counts of the EC2 calls an {@link Ec2Api} made. */
export interface Ec2CallStats {
  /** Calls that reached the endpoint (retries included). */
  readonly calls: number;
  /** Calls refused for throttling and retried. */
  readonly throttled: number;
  /** Calls per operation name (`"AssignPrivateIpAddresses"`, …). */
  readonly byOperation: Readonly<Record<string, number>>;
}

/** The EC2 operations ENI IPAM uses. Every method is one EC2 API call (plus retries). */
export interface Ec2Api {
  /** DescribeInstances for one instance. */
  describeInstance(instanceId: string): Promise<Instance>;
  /** DescribeNetworkInterfaces attached to an instance, or by id. */
  describeNetworkInterfaces(filter: {
    readonly instanceId?: string;
    readonly ids?: readonly string[];
  }): Promise<NetworkInterface[]>;
  /** DescribeSubnets of a VPC, or by id. */
  describeSubnets(filter: { readonly vpcId?: string; readonly ids?: readonly string[] }): Promise<Subnet[]>;
  /** DescribeVpcs for one VPC. */
  describeVpc(vpcId: string): Promise<Vpc>;
  /** DescribeInstanceTypes. */
  describeInstanceTypes(types: readonly string[]): Promise<InstanceTypeLimits[]>;
  /** AssignPrivateIpAddresses: `count` new secondary addresses; returns them. */
  assignPrivateIpAddresses(eniId: string, count: number): Promise<string[]>;
  /** UnassignPrivateIpAddresses. */
  unassignPrivateIpAddresses(eniId: string, ips: readonly string[]): Promise<void>;
  /** CreateNetworkInterface. */
  createNetworkInterface(input: CreateNetworkInterfaceInput): Promise<NetworkInterface>;
  /** AttachNetworkInterface; returns the attachment id. */
  attachNetworkInterface(eniId: string, instanceId: string, deviceIndex: number): Promise<string>;
  /** ModifyNetworkInterfaceAttribute: the attachment's delete-on-termination flag. */
  setDeleteOnTermination(eniId: string, attachmentId: string, deleteOnTermination: boolean): Promise<void>;
  /** DetachNetworkInterface. */
  detachNetworkInterface(attachmentId: string, force: boolean): Promise<void>;
  /** DeleteNetworkInterface. */
  deleteNetworkInterface(eniId: string): Promise<void>;
  /** Counts of the calls made so far. */
  stats(): Ec2CallStats;
}

/** Options for {@link Ec2Error}. */
export interface Ec2ErrorOptions {
  /** The EC2 operation, such as `"AssignPrivateIpAddresses"`. */
  readonly operation: string;
  /** The EC2 error code, such as `"InsufficientFreeAddressesInSubnet"`. */
  readonly code: string;
  /** Whether retrying later can succeed (throttling, server errors). */
  readonly retryable: boolean;
  /** The error that caused this one. */
  readonly cause?: unknown;
}

/**
 * An EC2 API call failed. `code` is EC2's error code.
 *
 * @example The message shape
 * ```ts
 * import assert from "node:assert/strict";
 * import { Ec2Error } from "@dp/eni";
 *
 * const err = new Ec2Error("subnet is full", { operation: "AssignPrivateIpAddresses", code: "InsufficientFreeAddressesInSubnet", retryable: false });
 * assert.equal(err.message, "EC2 AssignPrivateIpAddresses failed: InsufficientFreeAddressesInSubnet: subnet is full");
 * ```
 */
export class Ec2Error extends Error {
  /** Always `"Ec2Error"`, the class name. */
  override readonly name: string = "Ec2Error";
  /** The EC2 operation. */
  readonly operation: string;
  /** EC2's error code. */
  readonly code: string;
  /** Whether retrying later can succeed. */
  readonly retryable: boolean;

  /**
   * Creates an error for a failed call.
   *
   * @param detail EC2's message.
   * @param options The operation, code and retryability.
   */
  constructor(detail: string, options: Ec2ErrorOptions) {
    super(
      `EC2 ${options.operation} failed: ${options.code}${detail ? `: ${detail}` : ""}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.operation = options.operation;
    this.code = options.code;
    this.retryable = options.retryable;
  }
}
