// The fake EC2 account: one VPC, subnets with EC2's address accounting,
// security groups, instances with per-type limits and ENIs with their
// addresses and attachments. The operations enforce EC2's checks and
// throw FakeEc2Fault with EC2's error codes.

import type { EniAttachment, Instance, InstanceTypeLimits, NetworkInterface, Subnet, Vpc } from "../ec2_api.ts";
import { FakeEc2Fault } from "./_fault.ts";
import { type Cidr4, cidrContains, intToIpv4, ipv4ToInt, parseCidr4 } from "./_ipv4.ts";
import type {
  FakeEc2State,
  FakeInstanceInit,
  FakeSecurityGroup,
  FakeSecurityGroupInit,
  FakeSubnetInit,
} from "./fake_ec2_state.ts";

/** The account id the fake's resources belong to. */
export const OWNER_ID = "123456789012";

/**
 * Limits of common instance types (from DescribeInstanceTypes): max ENIs,
 * IPv4 and IPv6 addresses per ENI.
 */
const DEFAULT_INSTANCE_TYPES: readonly (readonly [string, number, number, number])[] = [
  ["t3.micro", 2, 2, 2],
  ["t3.small", 3, 4, 4],
  ["t3.medium", 3, 6, 6],
  ["t3.large", 3, 12, 12],
  ["m5.large", 3, 10, 10],
  ["m5.xlarge", 4, 15, 15],
  ["m5.2xlarge", 4, 15, 15],
  ["m5.4xlarge", 8, 30, 30],
  ["c5.large", 3, 10, 10],
  ["c5.xlarge", 4, 15, 15],
  ["r5.large", 3, 10, 10],
];

/** Addresses an unattached ENI may hold (EC2's largest per-ENI limit). */
const UNATTACHED_IPV4_LIMIT = 50;

/** A mutable subnet. */
export interface SubnetRecord {
  readonly id: string;
  readonly cidr: string;
  readonly net: Cidr4;
  readonly availabilityZone: string;
  readonly tags: Record<string, string>;
  /** Addresses in use (ENIs and reservations), as numbers. */
  readonly used: Set<number>;
}

/** A mutable attachment. */
export interface AttachmentRecord {
  readonly id: string;
  readonly instanceId: string;
  readonly deviceIndex: number;
  readonly attachTime: Date;
  status: EniAttachment["status"];
  deleteOnTermination: boolean;
}

/** A mutable ENI. */
export interface EniRecord {
  readonly id: string;
  readonly subnetId: string;
  readonly availabilityZone: string;
  readonly mac: string;
  description: string;
  groups: string[];
  /** The primary first. */
  readonly ips: string[];
  readonly tags: Record<string, string>;
  sourceDestCheck: boolean;
  attachment: AttachmentRecord | undefined;
}

/** A mutable instance. */
export interface InstanceRecord {
  readonly id: string;
  readonly type: string;
  readonly subnetId: string;
  readonly availabilityZone: string;
  readonly launchTime: Date;
}

/** What {@link Ec2Model.createNetworkInterface} takes. */
export interface CreateEniInput {
  readonly subnetId: string;
  readonly groups: readonly string[];
  readonly description: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly secondaryCount: number;
  readonly clientToken: string | undefined;
}

function notFound(kind: string, code: string, id: string): FakeEc2Fault {
  return new FakeEc2Fault(code, `The ${kind} ID '${id}' does not exist`);
}

function hexId(prefix: string, n: number): string {
  return `${prefix}-${n.toString(16).padStart(17, "0")}`;
}

function macOf(n: number): string {
  const hex = n.toString(16).padStart(8, "0");
  return `02:00:${hex.slice(0, 2)}:${hex.slice(2, 4)}:${hex.slice(4, 6)}:${hex.slice(6, 8)}`;
}

function checkCidr(cidr: string): Cidr4 {
  const net = parseCidr4(cidr);
  if (net === undefined)
    throw new SyntaxError(`Invalid CIDR ${JSON.stringify(cidr)}: expected an IPv4 network such as "10.0.0.0/24"`);
  return net;
}

/** The fake's account; implements the public {@link FakeEc2State}. */
export class Ec2Model implements FakeEc2State {
  readonly region: string;
  readonly vpcId: string;
  readonly #vpcCidrs: { cidr: string; net: Cidr4; associationId: string }[] = [];
  readonly #subnets = new Map<string, SubnetRecord>();
  readonly #groups = new Map<string, FakeSecurityGroup>();
  readonly #instances = new Map<string, InstanceRecord>();
  readonly #enis = new Map<string, EniRecord>();
  readonly #types = new Map<string, InstanceTypeLimits>();
  readonly #clientTokens = new Map<string, string>();
  readonly #defaultGroupId: string;
  #next = 0;

  constructor(region: string, vpcCidrs: readonly string[]) {
    this.region = region;
    this.vpcId = this.#id("vpc");
    if (vpcCidrs.length === 0) throw new RangeError("Invalid VPC: it needs at least one CIDR");
    for (const cidr of vpcCidrs) this.addVpcCidr(cidr);
    for (const [type, maxEnis, ipv4PerEni, ipv6PerEni] of DEFAULT_INSTANCE_TYPES) {
      this.#types.set(type, { type, maxEnis, ipv4PerEni, ipv6PerEni });
    }
    this.#defaultGroupId = this.addSecurityGroup({ name: "default" }).id;
  }

  #id(prefix: string): string {
    return hexId(prefix, ++this.#next);
  }

  #free(id: string | undefined, taken: ReadonlyMap<string, unknown>, prefix: string): string {
    if (id === undefined) return this.#id(prefix);
    if (taken.has(id)) throw new RangeError(`Invalid id ${JSON.stringify(id)}: it is already in use`);
    return id;
  }

  // --- FakeEc2State -----------------------------------------------------

  vpc(): Vpc {
    return { id: this.vpcId, cidrs: this.#vpcCidrs.map((c) => c.cidr) };
  }

  vpcCidrAssociations(): readonly { readonly cidr: string; readonly associationId: string }[] {
    return this.#vpcCidrs;
  }

  addVpcCidr(cidr: string): void {
    const net = checkCidr(cidr);
    this.#vpcCidrs.push({ cidr, net, associationId: this.#id("vpc-cidr-assoc") });
  }

  addSubnet(init: FakeSubnetInit): Subnet {
    const net = checkCidr(init.cidr);
    if (!this.#vpcCidrs.some((c) => cidrContains(c.net, net))) {
      throw new RangeError(`Invalid subnet ${JSON.stringify(init.cidr)}: it is outside the VPC's CIDRs`);
    }
    if (net.size < 16)
      throw new RangeError(`Invalid subnet ${JSON.stringify(init.cidr)}: EC2 subnets are /28 or larger`);
    for (const s of this.#subnets.values()) {
      if (cidrContains(s.net, net) || cidrContains(net, s.net)) {
        throw new RangeError(`Invalid subnet ${JSON.stringify(init.cidr)}: it overlaps ${s.id} (${s.cidr})`);
      }
    }
    const id = this.#free(init.id, this.#subnets, "subnet");
    const rec: SubnetRecord = {
      id,
      cidr: init.cidr,
      net,
      availabilityZone: init.availabilityZone ?? `${this.region}a`,
      tags: { ...init.tags },
      used: new Set(),
    };
    this.#subnets.set(id, rec);
    return this.subnetSnapshot(rec);
  }

  addSecurityGroup(init: FakeSecurityGroupInit): FakeSecurityGroup {
    const group = { id: this.#free(init.id, this.#groups, "sg"), name: init.name };
    this.#groups.set(group.id, group);
    return { ...group };
  }

  addInstance(init: FakeInstanceInit = {}): Instance {
    const type = init.type ?? "m5.large";
    if (!this.#types.has(type))
      throw new RangeError(`Invalid instance type ${JSON.stringify(type)}: it has no limits in the fake's table`);
    const subnetId = init.subnetId ?? this.#subnets.keys().next().value;
    if (subnetId === undefined) throw new RangeError("Cannot add an instance: the VPC has no subnet");
    const subnet = this.#subnets.get(subnetId);
    if (subnet === undefined)
      throw new RangeError(`Invalid subnet ${JSON.stringify(subnetId)}: there is no such subnet`);
    const id = this.#free(init.id, this.#instances, "i");
    let eni: EniRecord;
    try {
      eni = this.createNetworkInterface({
        subnetId,
        groups: init.securityGroupIds ?? [this.#defaultGroupId],
        description: "Primary network interface",
        tags: {},
        secondaryCount: 0,
        clientToken: undefined,
      });
    } catch (e) {
      if (e instanceof FakeEc2Fault) throw new RangeError(`Cannot add instance: ${e.message}`, { cause: e });
      throw e;
    }
    const rec: InstanceRecord = {
      id,
      type,
      subnetId,
      availabilityZone: subnet.availabilityZone,
      launchTime: new Date(),
    };
    this.#instances.set(id, rec);
    eni.attachment = {
      id: this.#id("eni-attach"),
      instanceId: id,
      deviceIndex: 0,
      attachTime: rec.launchTime,
      status: "attached",
      deleteOnTermination: true,
    };
    return this.instanceSnapshot(rec);
  }

  setInstanceType(limits: InstanceTypeLimits): void {
    this.#types.set(limits.type, { ...limits });
  }

  reserveIps(subnetId: string, count: number): string[] {
    const subnet = this.#subnets.get(subnetId);
    if (subnet === undefined)
      throw new RangeError(`Invalid subnet ${JSON.stringify(subnetId)}: there is no such subnet`);
    if (this.#availableIps(subnet) < count) {
      throw new RangeError(
        `Cannot reserve ${count} addresses of ${subnetId}: only ${this.#availableIps(subnet)} are free`,
      );
    }
    return this.#allocate(subnet, count);
  }

  subnets(): Subnet[] {
    return [...this.#subnets.values()].map((s) => this.subnetSnapshot(s));
  }

  securityGroups(): FakeSecurityGroup[] {
    return [...this.#groups.values()].map((g) => ({ ...g }));
  }

  instances(): Instance[] {
    return [...this.#instances.values()].map((i) => this.instanceSnapshot(i));
  }

  instanceTypes(): InstanceTypeLimits[] {
    return [...this.#types.values()]
      .sort((a, b) => (a.type < b.type ? -1 : a.type > b.type ? 1 : 0))
      .map((t) => ({ ...t }));
  }

  networkInterfaces(): NetworkInterface[] {
    return [...this.#enis.values()].map((e) => this.eniSnapshot(e));
  }

  networkInterface(id: string): NetworkInterface | undefined {
    const eni = this.#enis.get(id);
    return eni === undefined ? undefined : this.eniSnapshot(eni);
  }

  // --- snapshots and lookups for the API --------------------------------

  subnetSnapshot(s: SubnetRecord): Subnet {
    return {
      id: s.id,
      vpcId: this.vpcId,
      availabilityZone: s.availabilityZone,
      cidr: s.cidr,
      availableIps: this.#availableIps(s),
      tags: { ...s.tags },
    };
  }

  instanceSnapshot(i: InstanceRecord): Instance {
    return { id: i.id, type: i.type, subnetId: i.subnetId, vpcId: this.vpcId, availabilityZone: i.availabilityZone };
  }

  eniSnapshot(e: EniRecord): NetworkInterface {
    const a = e.attachment;
    return {
      id: e.id,
      subnetId: e.subnetId,
      vpcId: this.vpcId,
      availabilityZone: e.availabilityZone,
      mac: e.mac,
      description: e.description,
      status: a === undefined ? "available" : "in-use",
      securityGroupIds: [...e.groups],
      primaryIp: e.ips[0] ?? "",
      ips: [...e.ips],
      ipv6: [],
      attachment:
        a === undefined
          ? undefined
          : {
              id: a.id,
              instanceId: a.instanceId,
              deviceIndex: a.deviceIndex,
              status: a.status,
              deleteOnTermination: a.deleteOnTermination,
            },
      tags: { ...e.tags },
    };
  }

  subnetRecords(): SubnetRecord[] {
    return [...this.#subnets.values()];
  }

  subnetRecord(id: string): SubnetRecord {
    const s = this.#subnets.get(id);
    if (s === undefined) throw notFound("subnet", "InvalidSubnetID.NotFound", id);
    return s;
  }

  instanceRecords(): InstanceRecord[] {
    return [...this.#instances.values()];
  }

  instanceRecord(id: string): InstanceRecord {
    const i = this.#instances.get(id);
    if (i === undefined) throw new FakeEc2Fault("InvalidInstanceID.NotFound", `The instance ID '${id}' does not exist`);
    return i;
  }

  eniRecords(): EniRecord[] {
    return [...this.#enis.values()];
  }

  eniRecord(id: string): EniRecord {
    const e = this.#enis.get(id);
    if (e === undefined) throw notFound("networkInterface", "InvalidNetworkInterfaceID.NotFound", id);
    return e;
  }

  groupName(id: string): string {
    return this.#groups.get(id)?.name ?? "";
  }

  limits(type: string): InstanceTypeLimits | undefined {
    return this.#types.get(type);
  }

  routerIp(subnet: SubnetRecord): string {
    return intToIpv4(subnet.net.base + 1);
  }

  availableIps(subnet: SubnetRecord): number {
    return this.#availableIps(subnet);
  }

  /** ENIs attached to an instance, by device index. */
  attachedTo(instanceId: string): EniRecord[] {
    return [...this.#enis.values()]
      .filter((e) => e.attachment?.instanceId === instanceId)
      .sort((a, b) => (a.attachment?.deviceIndex ?? 0) - (b.attachment?.deviceIndex ?? 0));
  }

  // --- operations ---------------------------------------------------------

  #availableIps(s: SubnetRecord): number {
    // EC2 reserves the network address, the router, DNS, one for future
    // use and the broadcast address.
    return s.net.size - 5 - s.used.size;
  }

  #allocate(s: SubnetRecord, count: number): string[] {
    const out: string[] = [];
    const last = s.net.base + s.net.size - 2;
    for (let n = s.net.base + 4; n <= last && out.length < count; n++) {
      if (s.used.has(n)) continue;
      s.used.add(n);
      out.push(intToIpv4(n));
    }
    return out;
  }

  #release(s: SubnetRecord, ips: readonly string[]): void {
    for (const ip of ips) {
      const n = ipv4ToInt(ip);
      if (n !== undefined) s.used.delete(n);
    }
  }

  #ipv4Limit(eni: EniRecord): number {
    const a = eni.attachment;
    if (a === undefined) return UNATTACHED_IPV4_LIMIT;
    const type = this.#instances.get(a.instanceId)?.type;
    return (type === undefined ? undefined : this.#types.get(type)?.ipv4PerEni) ?? UNATTACHED_IPV4_LIMIT;
  }

  #checkGroups(groups: readonly string[]): void {
    for (const g of groups) {
      if (!this.#groups.has(g))
        throw new FakeEc2Fault(
          "InvalidGroup.NotFound",
          `The security group '${g}' does not exist in VPC '${this.vpcId}'`,
        );
    }
  }

  /** CreateNetworkInterface, idempotent per client token. */
  createNetworkInterface(input: CreateEniInput): EniRecord {
    if (input.clientToken !== undefined) {
      const known = this.#clientTokens.get(input.clientToken);
      const eni = known === undefined ? undefined : this.#enis.get(known);
      if (eni !== undefined) return eni;
    }
    const subnet = this.subnetRecord(input.subnetId);
    this.#checkGroups(input.groups);
    const count = 1 + input.secondaryCount;
    if (count > UNATTACHED_IPV4_LIMIT) {
      throw new FakeEc2Fault("PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.");
    }
    if (this.#availableIps(subnet) < count) {
      throw new FakeEc2Fault(
        "InsufficientFreeAddressesInSubnet",
        "The specified subnet does not have enough free addresses to satisfy the request.",
      );
    }
    const n = ++this.#next;
    const eni: EniRecord = {
      id: hexId("eni", n),
      subnetId: subnet.id,
      availabilityZone: subnet.availabilityZone,
      mac: macOf(n),
      description: input.description,
      groups: [...new Set(input.groups.length > 0 ? input.groups : [this.#defaultGroupId])],
      ips: this.#allocate(subnet, count),
      tags: { ...input.tags },
      sourceDestCheck: true,
      attachment: undefined,
    };
    this.#enis.set(eni.id, eni);
    if (input.clientToken !== undefined) this.#clientTokens.set(input.clientToken, eni.id);
    return eni;
  }

  /** AssignPrivateIpAddresses: a count of new addresses, or given ones. */
  assignPrivateIpAddresses(eniId: string, count: number, wanted: readonly string[]): string[] {
    const eni = this.eniRecord(eniId);
    const subnet = this.subnetRecord(eni.subnetId);
    const n = count + wanted.length;
    if (n === 0) {
      throw new FakeEc2Fault(
        "MissingParameter",
        "Either 'secondaryPrivateIpAddressCount' or 'privateIpAddress' must be specified.",
      );
    }
    if (eni.ips.length + n > this.#ipv4Limit(eni)) {
      throw new FakeEc2Fault("PrivateIpAddressLimitExceeded", "Number of private addresses will exceed limit.");
    }
    const wantedInts: number[] = [];
    for (const ip of wanted) {
      const v = ipv4ToInt(ip);
      if (v === undefined || v < subnet.net.base + 4 || v > subnet.net.base + subnet.net.size - 2) {
        throw new FakeEc2Fault(
          "InvalidParameterValue",
          `Address ${ip} does not fall within the subnet's address range`,
        );
      }
      if (subnet.used.has(v) || wantedInts.includes(v)) {
        throw new FakeEc2Fault("PrivateIpAddressInUse", `Address ${ip} is in use.`);
      }
      wantedInts.push(v);
    }
    if (this.#availableIps(subnet) < n) {
      throw new FakeEc2Fault(
        "InsufficientFreeAddressesInSubnet",
        "The specified subnet does not have enough free addresses to satisfy the request.",
      );
    }
    for (const v of wantedInts) subnet.used.add(v);
    const added = [...wanted, ...this.#allocate(subnet, count)];
    eni.ips.push(...added);
    return added;
  }

  /** UnassignPrivateIpAddresses: secondary addresses only. */
  unassignPrivateIpAddresses(eniId: string, ips: readonly string[]): void {
    const eni = this.eniRecord(eniId);
    if (ips.length === 0)
      throw new FakeEc2Fault("MissingParameter", "The request must contain the parameter privateIpAddress");
    for (const ip of ips) {
      if (ip === eni.ips[0]) {
        throw new FakeEc2Fault(
          "InvalidParameterValue",
          `The primary private IP address ${ip} of ${eniId} cannot be unassigned`,
        );
      }
      if (!eni.ips.includes(ip)) {
        throw new FakeEc2Fault(
          "InvalidParameterValue",
          `Some of the specified addresses are not assigned to interface ${eniId}`,
        );
      }
    }
    for (const ip of ips) eni.ips.splice(eni.ips.indexOf(ip), 1);
    this.#release(this.subnetRecord(eni.subnetId), ips);
  }

  /** AttachNetworkInterface; returns the attachment. */
  attachNetworkInterface(eniId: string, instanceId: string, deviceIndex: number): AttachmentRecord {
    const eni = this.eniRecord(eniId);
    const instance = this.instanceRecord(instanceId);
    if (eni.attachment !== undefined) throw new FakeEc2Fault("InvalidParameterValue", `Interface: [${eniId}] in use.`);
    if (eni.availabilityZone !== instance.availabilityZone) {
      throw new FakeEc2Fault(
        "InvalidParameterCombination",
        `You may not attach a network interface to an instance if they are not in the same availability zone`,
      );
    }
    const attached = this.attachedTo(instanceId);
    if (attached.some((e) => e.attachment?.deviceIndex === deviceIndex)) {
      throw new FakeEc2Fault(
        "InvalidParameterValue",
        `Instance '${instanceId}' already has an interface attached at device index '${deviceIndex}'.`,
      );
    }
    const limits = this.#types.get(instance.type);
    if (limits !== undefined && attached.length >= limits.maxEnis) {
      throw new FakeEc2Fault(
        "AttachmentLimitExceeded",
        `Interface count ${attached.length + 1} exceeds the limit for ${instance.type}`,
      );
    }
    if (limits !== undefined && deviceIndex >= limits.maxEnis) {
      throw new FakeEc2Fault(
        "InvalidParameterValue",
        `Device index ${deviceIndex} exceeds the limit for ${instance.type}`,
      );
    }
    eni.attachment = {
      id: this.#id("eni-attach"),
      instanceId,
      deviceIndex,
      attachTime: new Date(),
      status: "attached",
      deleteOnTermination: false,
    };
    return eni.attachment;
  }

  /** ModifyNetworkInterfaceAttribute. */
  modifyNetworkInterface(
    eniId: string,
    change: {
      readonly attachmentId: string | undefined;
      readonly deleteOnTermination: boolean | undefined;
      readonly description: string | undefined;
      readonly groups: readonly string[];
      readonly sourceDestCheck: boolean | undefined;
    },
  ): void {
    const eni = this.eniRecord(eniId);
    if (change.attachmentId !== undefined) {
      if (eni.attachment?.id !== change.attachmentId)
        throw notFound("attachment", "InvalidAttachmentID.NotFound", change.attachmentId);
      if (change.deleteOnTermination === undefined) {
        throw new FakeEc2Fault(
          "MissingParameter",
          "The request must contain the parameter attachment.deleteOnTermination",
        );
      }
    }
    this.#checkGroups(change.groups);
    const given = [change.attachmentId, change.description, change.sourceDestCheck].filter(
      (v) => v !== undefined,
    ).length;
    if (given + (change.groups.length > 0 ? 1 : 0) !== 1) {
      throw new FakeEc2Fault("InvalidParameterCombination", "Exactly one attribute must be specified");
    }
    if (eni.attachment !== undefined && change.deleteOnTermination !== undefined) {
      eni.attachment.deleteOnTermination = change.deleteOnTermination;
    }
    if (change.description !== undefined) eni.description = change.description;
    if (change.groups.length > 0) eni.groups = [...new Set(change.groups)];
    if (change.sourceDestCheck !== undefined) eni.sourceDestCheck = change.sourceDestCheck;
  }

  /** DetachNetworkInterface. */
  detachNetworkInterface(attachmentId: string): void {
    const eni = [...this.#enis.values()].find((e) => e.attachment?.id === attachmentId);
    if (eni?.attachment === undefined) throw notFound("attachment", "InvalidAttachmentID.NotFound", attachmentId);
    if (eni.attachment.deviceIndex === 0) {
      throw new FakeEc2Fault(
        "OperationNotPermitted",
        "The network interface at device index 0 and networkCard index 0 cannot be detached.",
      );
    }
    eni.attachment = undefined;
  }

  /** DeleteNetworkInterface: only when detached. */
  deleteNetworkInterface(eniId: string): void {
    const eni = this.eniRecord(eniId);
    if (eni.attachment !== undefined)
      throw new FakeEc2Fault("InvalidParameterValue", `Network interface '${eniId}' is currently in use.`);
    this.#enis.delete(eniId);
    this.#release(this.subnetRecord(eni.subnetId), eni.ips);
  }
}
