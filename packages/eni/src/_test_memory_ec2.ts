// An in-memory Ec2Api for the pool's unit tests: one VPC, one instance,
// subnets that hand out addresses in order, ENIs with attachments, EC2's
// limit checks and error codes, failure injection and call counts. The
// real SDK client and the HTTP fake live in ec2.ts and testing/.
import { setImmediate } from "node:timers/promises";
import {
  type CreateNetworkInterfaceInput,
  type Ec2Api,
  type Ec2CallStats,
  Ec2Error,
  type Instance,
  type InstanceTypeLimits,
  type NetworkInterface,
  type Subnet,
  type Vpc,
} from "./ec2_api.ts";
import { SHIPPED_LIMITS } from "./_limits_table.ts";

/** A subnet to create in the memory EC2. */
export interface MemorySubnetSpec {
  readonly id: string;
  /** An IPv4 /16../28 CIDR. */
  readonly cidr: string;
  /** @default the instance's zone */
  readonly availabilityZone?: string;
  /** @default the VPC */
  readonly vpcId?: string;
  readonly tags?: Readonly<Record<string, string>>;
  /** Caps the free addresses below what the CIDR holds. */
  readonly availableIps?: number;
}

export interface MemoryEc2Options {
  /** @default "m5.large" */
  readonly instanceType?: string;
  /** Limits DescribeInstanceTypes answers with, over the shipped table. */
  readonly instanceTypes?: readonly InstanceTypeLimits[];
  /** @default one subnet "subnet-a" 10.0.1.0/24 */
  readonly subnets?: readonly MemorySubnetSpec[];
  /** The subnet of the primary ENI. @default the first subnet */
  readonly primarySubnetId?: string;
  /** @default ["sg-primary"] */
  readonly primarySecurityGroupIds?: readonly string[];
  /** Awaited at the start of every call. @default one macrotask */
  readonly latency?: () => Promise<void>;
}

interface MutableEni {
  id: string;
  subnetId: string;
  description: string;
  status: string;
  securityGroupIds: string[];
  ips: string[];
  tags: Record<string, string>;
  mac: string;
  attachment:
    | { id: string; instanceId: string; deviceIndex: number; status: "attached"; deleteOnTermination: boolean }
    | undefined;
}

interface MutableSubnet {
  spec: MemorySubnetSpec;
  hosts: number[]; // free host addresses as 32-bit numbers, in order
  cap: number; // extra cap from availableIps
}

interface Failure {
  code: string;
  times: number;
  retryable: boolean;
}

export const VPC_ID = "vpc-1";
export const AZ = "us-east-1a";
export const INSTANCE_ID = "i-0123456789abcdef0";

function ipv4ToInt(text: string): number {
  return text.split(".").reduce((n, b) => n * 256 + Number(b), 0);
}

function intToIpv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** The memory EC2. */
export class MemoryEc2 implements Ec2Api {
  readonly instance: Instance;
  readonly enis: Map<string, MutableEni> = new Map();
  readonly subnets: Map<string, MutableSubnet> = new Map();
  /** Every call, in order, by operation name. */
  readonly log: string[] = [];
  /** Every address UnassignPrivateIpAddresses released. */
  readonly unassigned: string[] = [];
  readonly #types = new Map<string, InstanceTypeLimits>(SHIPPED_LIMITS);
  readonly #failures = new Map<string, Failure[]>();
  readonly #latency: () => Promise<void>;
  #nextId = 1;

  constructor(options: MemoryEc2Options = {}) {
    for (const t of options.instanceTypes ?? []) this.#types.set(t.type, t);
    const specs = options.subnets ?? [{ id: "subnet-a", cidr: "10.0.1.0/24" }];
    for (const spec of specs) this.addSubnet(spec);
    const primarySubnet = options.primarySubnetId ?? specs[0]!.id;
    this.#latency = options.latency ?? (() => setImmediate());
    this.instance = {
      id: INSTANCE_ID,
      type: options.instanceType ?? "m5.large",
      subnetId: primarySubnet,
      vpcId: VPC_ID,
      availabilityZone: AZ,
    };
    const eni = this.#newEni(primarySubnet, [...(options.primarySecurityGroupIds ?? ["sg-primary"])], "primary", 0);
    eni.attachment = {
      id: `eni-attach-${this.#nextId++}`,
      instanceId: INSTANCE_ID,
      deviceIndex: 0,
      status: "attached",
      deleteOnTermination: true,
    };
    eni.status = "in-use";
  }

  addSubnet(spec: MemorySubnetSpec): void {
    const [base, len] = spec.cidr.split("/");
    const size = 2 ** (32 - Number(len));
    const network = ipv4ToInt(base!);
    const hosts: number[] = [];
    // AWS reserves the first four addresses and the last one.
    for (let i = 4; i < size - 1; i++) hosts.push(network + i);
    this.subnets.set(spec.id, { spec, hosts, cap: spec.availableIps ?? Infinity });
  }

  /** The limits the memory EC2 enforces for the instance. */
  get limits(): InstanceTypeLimits {
    const limits = this.#types.get(this.instance.type);
    if (limits === undefined) throw new Error(`no limits for ${this.instance.type}`);
    return limits;
  }

  /** Makes the next `times` calls of an operation fail with an EC2 error code. */
  fail(operation: string, code: string, options: { times?: number; retryable?: boolean } = {}): void {
    const list = this.#failures.get(operation) ?? [];
    list.push({ code, times: options.times ?? 1, retryable: options.retryable ?? false });
    this.#failures.set(operation, list);
  }

  /** ENIs attached to the instance, by device index. */
  attached(): MutableEni[] {
    return [...this.enis.values()]
      .filter((e) => e.attachment?.instanceId === INSTANCE_ID)
      .sort((a, b) => a.attachment!.deviceIndex - b.attachment!.deviceIndex);
  }

  /** Secondary addresses over all attached ENIs. */
  secondaryCount(): number {
    return this.attached().reduce((n, e) => n + e.ips.length - 1, 0);
  }

  /** Assigns secondary addresses directly (test setup, not counted). */
  seedSecondary(eniId: string, count: number): string[] {
    const eni = this.enis.get(eniId)!;
    const ips = this.#take(eni.subnetId, count);
    eni.ips.push(...ips);
    return ips;
  }

  /** Creates and attaches an ENI directly (test setup, not counted). */
  seedEni(
    deviceIndex: number,
    options: { subnetId?: string; secondary?: number; securityGroupIds?: string[] } = {},
  ): string {
    const eni = this.#newEni(
      options.subnetId ?? this.instance.subnetId,
      options.securityGroupIds ?? ["sg-primary"],
      "",
      options.secondary ?? 0,
    );
    eni.attachment = {
      id: `eni-attach-${this.#nextId++}`,
      instanceId: INSTANCE_ID,
      deviceIndex,
      status: "attached",
      deleteOnTermination: true,
    };
    eni.status = "in-use";
    return eni.id;
  }

  stats(): Ec2CallStats {
    const byOperation: Record<string, number> = {};
    for (const op of this.log) byOperation[op] = (byOperation[op] ?? 0) + 1;
    return { calls: this.log.length, throttled: 0, byOperation };
  }

  async describeInstance(instanceId: string): Promise<Instance> {
    await this.#call("DescribeInstances");
    if (instanceId !== INSTANCE_ID) throw this.#error("DescribeInstances", "InvalidInstanceID.NotFound", instanceId);
    return this.instance;
  }

  async describeNetworkInterfaces(filter: {
    readonly instanceId?: string;
    readonly ids?: readonly string[];
  }): Promise<NetworkInterface[]> {
    await this.#call("DescribeNetworkInterfaces");
    return [...this.enis.values()]
      .filter((e) => filter.instanceId === undefined || e.attachment?.instanceId === filter.instanceId)
      .filter((e) => filter.ids === undefined || filter.ids.includes(e.id))
      .map((e) => this.#snapshot(e));
  }

  async describeSubnets(filter: { readonly vpcId?: string; readonly ids?: readonly string[] }): Promise<Subnet[]> {
    await this.#call("DescribeSubnets");
    return [...this.subnets.values()]
      .filter((s) => filter.vpcId === undefined || (s.spec.vpcId ?? VPC_ID) === filter.vpcId)
      .filter((s) => filter.ids === undefined || filter.ids.includes(s.spec.id))
      .map((s) => ({
        id: s.spec.id,
        vpcId: s.spec.vpcId ?? VPC_ID,
        availabilityZone: s.spec.availabilityZone ?? AZ,
        cidr: s.spec.cidr,
        availableIps: Math.min(s.hosts.length, s.cap),
        tags: { ...s.spec.tags },
      }));
  }

  async describeVpc(vpcId: string): Promise<Vpc> {
    await this.#call("DescribeVpcs");
    if (vpcId !== VPC_ID) throw this.#error("DescribeVpcs", "InvalidVpcID.NotFound", vpcId);
    return { id: VPC_ID, cidrs: ["10.0.0.0/16"] };
  }

  async describeInstanceTypes(types: readonly string[]): Promise<InstanceTypeLimits[]> {
    await this.#call("DescribeInstanceTypes");
    return types.flatMap((t) => {
      const limits = this.#types.get(t);
      return limits === undefined ? [] : [limits];
    });
  }

  async assignPrivateIpAddresses(eniId: string, count: number): Promise<string[]> {
    const op = "AssignPrivateIpAddresses";
    await this.#call(op);
    const eni = this.#eni(op, eniId);
    if (!Number.isInteger(count) || count < 1) throw this.#error(op, "InvalidParameterValue", `count ${count}`);
    if (eni.attachment !== undefined && eni.ips.length + count > this.limits.ipv4PerEni) {
      throw this.#error(op, "PrivateIpAddressLimitExceeded", `${eniId} would have ${eni.ips.length + count} addresses`);
    }
    const ips = this.#take(eni.subnetId, count, op);
    eni.ips.push(...ips);
    return ips;
  }

  async unassignPrivateIpAddresses(eniId: string, ips: readonly string[]): Promise<void> {
    const op = "UnassignPrivateIpAddresses";
    await this.#call(op);
    const eni = this.#eni(op, eniId);
    for (const ip of ips) {
      if (ip === eni.ips[0] || !eni.ips.includes(ip))
        throw this.#error(op, "InvalidParameterValue", `${ip} is not a secondary address of ${eniId}`);
    }
    eni.ips = eni.ips.filter((ip) => !ips.includes(ip));
    this.unassigned.push(...ips);
    this.#give(eni.subnetId, ips);
  }

  async createNetworkInterface(input: CreateNetworkInterfaceInput): Promise<NetworkInterface> {
    const op = "CreateNetworkInterface";
    await this.#call(op);
    if (!this.subnets.has(input.subnetId)) throw this.#error(op, "InvalidSubnetID.NotFound", input.subnetId);
    const count = input.secondaryIpCount ?? 0;
    if (count > this.limits.ipv4PerEni - 1)
      throw this.#error(op, "PrivateIpAddressLimitExceeded", `${count} secondary addresses`);
    const sub = this.subnets.get(input.subnetId)!;
    if (Math.min(sub.hosts.length, sub.cap) < count + 1)
      throw this.#error(op, "InsufficientFreeAddressesInSubnet", input.subnetId);
    const eni = this.#newEni(input.subnetId, [...input.securityGroupIds], input.description ?? "", count);
    eni.tags = { ...input.tags };
    return this.#snapshot(eni);
  }

  async attachNetworkInterface(eniId: string, instanceId: string, deviceIndex: number): Promise<string> {
    const op = "AttachNetworkInterface";
    await this.#call(op);
    const eni = this.#eni(op, eniId);
    if (instanceId !== INSTANCE_ID) throw this.#error(op, "InvalidInstanceID.NotFound", instanceId);
    if (eni.attachment !== undefined) throw this.#error(op, "InvalidNetworkInterface.InUse", eniId);
    const attached = this.attached();
    if (attached.length >= this.limits.maxEnis)
      throw this.#error(op, "AttachmentLimitExceeded", `${this.limits.maxEnis} ENIs`);
    if (attached.some((e) => e.attachment!.deviceIndex === deviceIndex)) {
      throw this.#error(op, "InvalidParameterValue", `device index ${deviceIndex} is in use`);
    }
    eni.attachment = {
      id: `eni-attach-${this.#nextId++}`,
      instanceId,
      deviceIndex,
      status: "attached",
      deleteOnTermination: false,
    };
    eni.status = "in-use";
    return eni.attachment.id;
  }

  async setDeleteOnTermination(eniId: string, attachmentId: string, deleteOnTermination: boolean): Promise<void> {
    const op = "ModifyNetworkInterfaceAttribute";
    await this.#call(op);
    const eni = this.#eni(op, eniId);
    if (eni.attachment?.id !== attachmentId) throw this.#error(op, "InvalidAttachmentID.NotFound", attachmentId);
    eni.attachment.deleteOnTermination = deleteOnTermination;
  }

  async detachNetworkInterface(attachmentId: string, _force: boolean): Promise<void> {
    const op = "DetachNetworkInterface";
    await this.#call(op);
    const eni = [...this.enis.values()].find((e) => e.attachment?.id === attachmentId);
    if (eni === undefined) throw this.#error(op, "InvalidAttachmentID.NotFound", attachmentId);
    eni.attachment = undefined;
    eni.status = "available";
  }

  async deleteNetworkInterface(eniId: string): Promise<void> {
    const op = "DeleteNetworkInterface";
    await this.#call(op);
    const eni = this.#eni(op, eniId);
    if (eni.attachment !== undefined) throw this.#error(op, "InvalidNetworkInterface.InUse", eniId);
    this.enis.delete(eniId);
    this.#give(eni.subnetId, eni.ips);
  }

  async #call(operation: string): Promise<void> {
    this.log.push(operation);
    await this.#latency();
    const list = this.#failures.get(operation);
    const failure = list?.[0];
    if (failure !== undefined) {
      if (--failure.times <= 0) list!.shift();
      throw this.#error(operation, failure.code, "injected failure", failure.retryable);
    }
  }

  #error(operation: string, code: string, detail: string, retryable = false): Ec2Error {
    return new Ec2Error(detail, { operation, code, retryable });
  }

  #eni(operation: string, id: string): MutableEni {
    const eni = this.enis.get(id);
    if (eni === undefined) throw this.#error(operation, "InvalidNetworkInterfaceID.NotFound", id);
    return eni;
  }

  #newEni(subnetId: string, securityGroupIds: string[], description: string, secondary: number): MutableEni {
    const n = this.#nextId++;
    const eni: MutableEni = {
      id: `eni-${n.toString(16).padStart(8, "0")}`,
      subnetId,
      description,
      status: "available",
      securityGroupIds,
      ips: this.#take(subnetId, 1 + secondary),
      tags: {},
      mac: `02:00:00:00:${((n >> 8) & 255).toString(16).padStart(2, "0")}:${(n & 255).toString(16).padStart(2, "0")}`,
      attachment: undefined,
    };
    this.enis.set(eni.id, eni);
    return eni;
  }

  #take(subnetId: string, count: number, operation = "CreateNetworkInterface"): string[] {
    const sub = this.subnets.get(subnetId);
    if (sub === undefined) throw this.#error(operation, "InvalidSubnetID.NotFound", subnetId);
    if (Math.min(sub.hosts.length, sub.cap) < count)
      throw this.#error(operation, "InsufficientFreeAddressesInSubnet", subnetId);
    sub.cap -= count;
    return sub.hosts.splice(0, count).map(intToIpv4);
  }

  #give(subnetId: string, ips: readonly string[]): void {
    const sub = this.subnets.get(subnetId)!;
    sub.cap += ips.length;
    sub.hosts.push(...ips.map(ipv4ToInt));
    sub.hosts.sort((a, b) => a - b);
  }

  #snapshot(e: MutableEni): NetworkInterface {
    const sub = this.subnets.get(e.subnetId)!;
    return {
      id: e.id,
      subnetId: e.subnetId,
      vpcId: sub.spec.vpcId ?? VPC_ID,
      availabilityZone: sub.spec.availabilityZone ?? AZ,
      mac: e.mac,
      description: e.description,
      status: e.status,
      securityGroupIds: [...e.securityGroupIds],
      primaryIp: e.ips[0]!,
      ips: [...e.ips],
      ipv6: [],
      attachment: e.attachment === undefined ? undefined : { ...e.attachment },
      tags: { ...e.tags },
    };
  }
}
