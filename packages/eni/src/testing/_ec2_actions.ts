// The EC2 Query API actions the fake serves: each reads its parameters,
// runs the model's operation and returns the response's fields, with the
// element names of EC2's XML (as @aws-sdk/client-ec2's schemas read them).

import {
  type AttachmentRecord,
  type Ec2Model,
  type EniRecord,
  type InstanceRecord,
  OWNER_ID,
  type SubnetRecord,
} from "./_ec2_model.ts";
import { FakeEc2Fault } from "./_fault.ts";
import type { QueryParams } from "./_query.ts";
import type { XmlFields, XmlValue } from "./_xml.ts";

type Action = (model: Ec2Model, params: QueryParams) => XmlFields;

/** Reads a resource's values for a filter name; `undefined` for unknown names. */
type FilterFields<T> = (item: T, name: string) => readonly string[] | undefined;

function tagFilter(tags: Readonly<Record<string, string>>, name: string): readonly string[] | undefined {
  if (name === "tag-key") return Object.keys(tags);
  if (name === "tag-value") return Object.values(tags);
  if (name.startsWith("tag:")) {
    const v = tags[name.slice(4)];
    return v === undefined ? [] : [v];
  }
  return undefined;
}

/** Glob match as EC2 filters do (`*` and `?`). */
function matches(pattern: string, value: string): boolean {
  if (!pattern.includes("*") && !pattern.includes("?")) return pattern === value;
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${re}$`).test(value);
}

function applyFilters<T>(items: readonly T[], params: QueryParams, fields: FilterFields<T>): T[] {
  const filters = params.filters();
  return items.filter((item) => {
    for (const [name, wanted] of filters) {
      const have = fields(item, name);
      if (have === undefined) throw new FakeEc2Fault("InvalidParameterValue", `The filter '${name}' is invalid`);
      if (!wanted.some((w) => have.some((h) => matches(w, h)))) return false;
    }
    return true;
  });
}

/** `MaxResults` / `NextToken` paging; EC2 refuses `MaxResults` together with explicit ids. */
function page<T>(
  items: readonly T[],
  params: QueryParams,
  limits: { readonly min: number; readonly max: number },
  idsGiven: boolean,
): { items: T[]; nextToken: string | undefined } {
  const max = params.int("MaxResults");
  const token = params.get("NextToken");
  let start = 0;
  if (token !== undefined) {
    const m = /^fake-page-(\d+)$/.exec(token);
    if (m === null) throw new FakeEc2Fault("InvalidPaginationToken", `Invalid pagination token: ${token}`);
    start = Number(m[1]);
  }
  if (max === undefined) return { items: items.slice(start), nextToken: undefined };
  if (idsGiven) {
    throw new FakeEc2Fault(
      "InvalidParameterCombination",
      "The parameter MaxResults cannot be used with the parameter specifying ids",
    );
  }
  if (max < limits.min || max > limits.max) {
    throw new FakeEc2Fault(
      "InvalidParameterValue",
      `Value (${max}) for parameter maxResults is invalid. Expecting a value between ${limits.min} and ${limits.max}.`,
    );
  }
  const end = start + max;
  return { items: items.slice(start, end), nextToken: end < items.length ? `fake-page-${end}` : undefined };
}

/** Resources named by id: every id must exist (EC2's `…NotFound`). */
function byIds<T extends { readonly id: string }>(
  all: readonly T[],
  ids: readonly string[],
  lookup: (id: string) => T,
): T[] {
  if (ids.length === 0) return [...all];
  for (const id of ids) lookup(id);
  return all.filter((x) => ids.includes(x.id));
}

function tagSet(tags: Readonly<Record<string, string>>): XmlValue {
  return Object.entries(tags).map(([key, value]) => ({ key, value }));
}

function attachmentXml(a: AttachmentRecord): XmlFields {
  return {
    attachTime: a.attachTime,
    attachmentId: a.id,
    deleteOnTermination: a.deleteOnTermination,
    deviceIndex: a.deviceIndex,
    networkCardIndex: 0,
    instanceId: a.instanceId,
    instanceOwnerId: OWNER_ID,
    status: a.status,
  };
}

function eniXml(model: Ec2Model, e: EniRecord): XmlFields {
  return {
    networkInterfaceId: e.id,
    subnetId: e.subnetId,
    vpcId: model.vpcId,
    availabilityZone: e.availabilityZone,
    description: e.description,
    ownerId: OWNER_ID,
    requesterManaged: false,
    status: e.attachment === undefined ? "available" : "in-use",
    macAddress: e.mac,
    privateIpAddress: e.ips[0],
    privateDnsName: e.ips[0] === undefined ? undefined : `ip-${e.ips[0].replaceAll(".", "-")}.ec2.internal`,
    sourceDestCheck: e.sourceDestCheck,
    groupSet: e.groups.map((groupId) => ({ groupId, groupName: model.groupName(groupId) })),
    attachment: e.attachment === undefined ? undefined : attachmentXml(e.attachment),
    tagSet: tagSet(e.tags),
    privateIpAddressesSet: e.ips.map((ip, i) => ({
      privateIpAddress: ip,
      privateDnsName: `ip-${ip.replaceAll(".", "-")}.ec2.internal`,
      primary: i === 0,
    })),
    ipv6AddressesSet: [],
    interfaceType: "interface",
  };
}

function eniFilter(model: Ec2Model): FilterFields<EniRecord> {
  return (e, name) => {
    switch (name) {
      case "network-interface-id":
        return [e.id];
      case "attachment.instance-id":
        return e.attachment === undefined ? [] : [e.attachment.instanceId];
      case "attachment.attachment-id":
        return e.attachment === undefined ? [] : [e.attachment.id];
      case "attachment.device-index":
        return e.attachment === undefined ? [] : [String(e.attachment.deviceIndex)];
      case "attachment.status":
        return e.attachment === undefined ? [] : [e.attachment.status];
      case "subnet-id":
        return [e.subnetId];
      case "vpc-id":
        return [model.vpcId];
      case "availability-zone":
        return [e.availabilityZone];
      case "status":
        return [e.attachment === undefined ? "available" : "in-use"];
      case "description":
        return [e.description];
      case "group-id":
        return e.groups;
      case "mac-address":
        return [e.mac];
      case "private-ip-address":
      case "addresses.private-ip-address":
        return e.ips;
      default:
        return tagFilter(e.tags, name);
    }
  };
}

function subnetXml(model: Ec2Model, s: SubnetRecord): XmlFields {
  return {
    subnetId: s.id,
    subnetArn: `arn:aws:ec2:${model.region}:${OWNER_ID}:subnet/${s.id}`,
    state: "available",
    vpcId: model.vpcId,
    ownerId: OWNER_ID,
    cidrBlock: s.cidr,
    ipv6CidrBlockAssociationSet: [],
    availableIpAddressCount: model.availableIps(s),
    availabilityZone: s.availabilityZone,
    defaultForAz: false,
    mapPublicIpOnLaunch: false,
    assignIpv6AddressOnCreation: false,
    tagSet: tagSet(s.tags),
  };
}

function subnetFilter(model: Ec2Model): FilterFields<SubnetRecord> {
  return (s, name) => {
    switch (name) {
      case "subnet-id":
        return [s.id];
      case "vpc-id":
        return [model.vpcId];
      case "availability-zone":
        return [s.availabilityZone];
      case "cidr-block":
      case "cidrBlock":
        return [s.cidr];
      case "state":
        return ["available"];
      default:
        return tagFilter(s.tags, name);
    }
  };
}

function instanceXml(model: Ec2Model, i: InstanceRecord): XmlFields {
  const enis = model.attachedTo(i.id);
  const primary = enis.find((e) => e.attachment?.deviceIndex === 0);
  return {
    instanceId: i.id,
    imageId: "ami-00000000000000001",
    instanceState: { code: 16, name: "running" },
    privateDnsName:
      primary?.ips[0] === undefined ? undefined : `ip-${primary.ips[0].replaceAll(".", "-")}.ec2.internal`,
    instanceType: i.type,
    launchTime: i.launchTime,
    placement: { availabilityZone: i.availabilityZone, tenancy: "default" },
    subnetId: i.subnetId,
    vpcId: model.vpcId,
    privateIpAddress: primary?.ips[0],
    groupSet: (primary?.groups ?? []).map((groupId) => ({ groupId, groupName: model.groupName(groupId) })),
    architecture: "x86_64",
    networkInterfaceSet: enis.map((e) => ({
      attachment: e.attachment === undefined ? undefined : attachmentXml(e.attachment),
      description: e.description,
      groupSet: e.groups.map((groupId) => ({ groupId, groupName: model.groupName(groupId) })),
      macAddress: e.mac,
      networkInterfaceId: e.id,
      ownerId: OWNER_ID,
      privateIpAddress: e.ips[0],
      privateIpAddressesSet: e.ips.map((ip, n) => ({ privateIpAddress: ip, primary: n === 0 })),
      sourceDestCheck: e.sourceDestCheck,
      status: "in-use",
      subnetId: e.subnetId,
      vpcId: model.vpcId,
      interfaceType: "interface",
    })),
  };
}

function instanceFilter(model: Ec2Model): FilterFields<InstanceRecord> {
  return (i, name) => {
    switch (name) {
      case "instance-id":
        return [i.id];
      case "instance-type":
        return [i.type];
      case "subnet-id":
        return [i.subnetId];
      case "vpc-id":
        return [model.vpcId];
      case "availability-zone":
        return [i.availabilityZone];
      case "instance-state-name":
        return ["running"];
      default:
        return undefined;
    }
  };
}

const ACTIONS: Readonly<Record<string, Action>> = {
  DescribeInstances(model, params) {
    const ids = params.list("InstanceId");
    const all = byIds(
      model.instanceRecords().map((r) => ({ id: r.id, r })),
      ids,
      (id) => ({ id, r: model.instanceRecord(id) }),
    ).map((x) => x.r);
    const { items, nextToken } = page(
      applyFilters(all, params, instanceFilter(model)),
      params,
      { min: 5, max: 1000 },
      ids.length > 0,
    );
    return {
      reservationSet: items.map((i) => ({
        reservationId: `r-${i.id.slice(2)}`,
        ownerId: OWNER_ID,
        groupSet: [],
        instancesSet: [instanceXml(model, i)],
      })),
      nextToken,
    };
  },

  DescribeNetworkInterfaces(model, params) {
    const ids = params.list("NetworkInterfaceId");
    const all = byIds(model.eniRecords(), ids, (id) => model.eniRecord(id));
    const { items, nextToken } = page(
      applyFilters(all, params, eniFilter(model)),
      params,
      { min: 5, max: 1000 },
      ids.length > 0,
    );
    return { networkInterfaceSet: items.map((e) => eniXml(model, e)), nextToken };
  },

  DescribeSubnets(model, params) {
    const ids = params.list("SubnetId");
    const all = byIds(model.subnetRecords(), ids, (id) => model.subnetRecord(id));
    const { items, nextToken } = page(
      applyFilters(all, params, subnetFilter(model)),
      params,
      { min: 5, max: 1000 },
      false,
    );
    return { subnetSet: items.map((s) => subnetXml(model, s)), nextToken };
  },

  DescribeVpcs(model, params) {
    const ids = params.list("VpcId");
    for (const id of ids) {
      if (id !== model.vpcId) throw new FakeEc2Fault("InvalidVpcID.NotFound", `The vpc ID '${id}' does not exist`);
    }
    const vpc = model.vpc();
    const all = applyFilters([vpc], params, (v, name) =>
      name === "vpc-id"
        ? [v.id]
        : name === "cidr" || name === "cidr-block-association.cidr-block"
          ? v.cidrs
          : undefined,
    );
    return {
      vpcSet: all.map((v) => ({
        vpcId: v.id,
        ownerId: OWNER_ID,
        state: "available",
        cidrBlock: v.cidrs[0],
        cidrBlockAssociationSet: model.vpcCidrAssociations().map((c) => ({
          associationId: c.associationId,
          cidrBlock: c.cidr,
          cidrBlockState: { state: "associated" },
        })),
        dhcpOptionsId: "dopt-00000000000000001",
        instanceTenancy: "default",
        isDefault: false,
        tagSet: [],
      })),
    };
  },

  DescribeInstanceTypes(model, params) {
    const types = params.list("InstanceType");
    for (const t of types) {
      if (model.limits(t) === undefined) {
        throw new FakeEc2Fault("InvalidInstanceType", `The following supplied instance types do not exist: [${t}]`);
      }
    }
    const all = model.instanceTypes().filter((t) => types.length === 0 || types.includes(t.type));
    const filtered = applyFilters(all, params, (t, name) => (name === "instance-type" ? [t.type] : undefined));
    const { items, nextToken } = page(filtered, params, { min: 5, max: 100 }, false);
    return {
      instanceTypeSet: items.map((t) => ({
        instanceType: t.type,
        currentGeneration: true,
        networkInfo: {
          networkPerformance: "Up to 10 Gigabit",
          maximumNetworkInterfaces: t.maxEnis,
          maximumNetworkCards: 1,
          defaultNetworkCardIndex: 0,
          networkCards: [
            { networkCardIndex: 0, networkPerformance: "Up to 10 Gigabit", maximumNetworkInterfaces: t.maxEnis },
          ],
          ipv4AddressesPerInterface: t.ipv4PerEni,
          ipv6AddressesPerInterface: t.ipv6PerEni,
          ipv6Supported: t.ipv6PerEni > 0,
          enaSupport: "required",
        },
      })),
      nextToken,
    };
  },

  AssignPrivateIpAddresses(model, params) {
    const eniId = params.required("NetworkInterfaceId");
    const added = model.assignPrivateIpAddresses(
      eniId,
      params.int("SecondaryPrivateIpAddressCount") ?? 0,
      params.list("PrivateIpAddress"),
    );
    return {
      networkInterfaceId: eniId,
      assignedPrivateIpAddressesSet: added.map((privateIpAddress) => ({ privateIpAddress })),
      return: true,
    };
  },

  UnassignPrivateIpAddresses(model, params) {
    model.unassignPrivateIpAddresses(params.required("NetworkInterfaceId"), params.list("PrivateIpAddress"));
    return { return: true };
  },

  CreateNetworkInterface(model, params) {
    const clientToken = params.get("ClientToken");
    const eni = model.createNetworkInterface({
      subnetId: params.required("SubnetId"),
      groups: params.list("SecurityGroupId"),
      description: params.get("Description") ?? "",
      tags: params.tagSpecifications("network-interface"),
      secondaryCount: params.int("SecondaryPrivateIpAddressCount") ?? 0,
      clientToken,
    });
    return { networkInterface: eniXml(model, eni), clientToken };
  },

  AttachNetworkInterface(model, params) {
    const deviceIndex = params.int("DeviceIndex");
    if (deviceIndex === undefined)
      throw new FakeEc2Fault("MissingParameter", "The request must contain the parameter deviceIndex");
    const a = model.attachNetworkInterface(
      params.required("NetworkInterfaceId"),
      params.required("InstanceId"),
      deviceIndex,
    );
    return { attachmentId: a.id, networkCardIndex: 0 };
  },

  ModifyNetworkInterfaceAttribute(model, params) {
    model.modifyNetworkInterface(params.required("NetworkInterfaceId"), {
      attachmentId: params.get("Attachment.AttachmentId"),
      deleteOnTermination: params.bool("Attachment.DeleteOnTermination"),
      description: params.get("Description.Value"),
      groups: params.list("SecurityGroupId"),
      sourceDestCheck: params.bool("SourceDestCheck.Value"),
    });
    return { return: true };
  },

  DetachNetworkInterface(model, params) {
    model.detachNetworkInterface(params.required("AttachmentId"));
    return { return: true };
  },

  DeleteNetworkInterface(model, params) {
    model.deleteNetworkInterface(params.required("NetworkInterfaceId"));
    return { return: true };
  },
};

/** The actions the fake serves. */
export const FAKE_EC2_ACTIONS: readonly string[] = Object.keys(ACTIONS);

/**
 * Runs one action.
 *
 * @throws {FakeEc2Fault} EC2's error for the request (InvalidAction for unknown actions).
 */
export function runAction(model: Ec2Model, action: string, params: QueryParams): XmlFields {
  const run = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
  if (run === undefined)
    throw new FakeEc2Fault("InvalidAction", `The action ${action} is not valid for this web service.`);
  return run(model, params);
}
