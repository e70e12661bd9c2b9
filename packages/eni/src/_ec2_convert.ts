// From @aws-sdk/client-ec2's output shapes to the plain data of ec2_api.ts.

import type {
  Instance as SdkInstance,
  InstanceTypeInfo,
  NetworkInterface as SdkNetworkInterface,
  Subnet as SdkSubnet,
  Tag,
  Vpc as SdkVpc,
} from "@aws-sdk/client-ec2";
import type { EniAttachment, Instance, InstanceTypeLimits, NetworkInterface, Subnet, Vpc } from "./ec2_api.ts";

function tagsOf(list: readonly Tag[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const t of list ?? []) if (t.Key !== undefined) out[t.Key] = t.Value ?? "";
  return out;
}

function attachmentOf(eni: SdkNetworkInterface): EniAttachment | undefined {
  const a = eni.Attachment;
  if (a?.AttachmentId === undefined) return undefined;
  return {
    id: a.AttachmentId,
    instanceId: a.InstanceId ?? "",
    deviceIndex: a.DeviceIndex ?? 0,
    status: a.Status ?? "attached",
    deleteOnTermination: a.DeleteOnTermination ?? false,
  };
}

/** An SDK ENI as a {@link NetworkInterface}. */
export function toNetworkInterface(eni: SdkNetworkInterface): NetworkInterface {
  const primary =
    eni.PrivateIpAddress ?? eni.PrivateIpAddresses?.find((p) => p.Primary === true)?.PrivateIpAddress ?? "";
  const ips = [primary];
  for (const p of eni.PrivateIpAddresses ?? []) {
    if (p.PrivateIpAddress !== undefined && p.PrivateIpAddress !== primary) ips.push(p.PrivateIpAddress);
  }
  return {
    id: eni.NetworkInterfaceId ?? "",
    subnetId: eni.SubnetId ?? "",
    vpcId: eni.VpcId ?? "",
    availabilityZone: eni.AvailabilityZone ?? "",
    mac: (eni.MacAddress ?? "").toLowerCase(),
    description: eni.Description ?? "",
    status: eni.Status ?? "",
    securityGroupIds: (eni.Groups ?? []).flatMap((g) => (g.GroupId === undefined ? [] : [g.GroupId])),
    primaryIp: primary,
    ips: primary === "" ? ips.slice(1) : ips,
    ipv6: (eni.Ipv6Addresses ?? []).flatMap((a) => (a.Ipv6Address === undefined ? [] : [a.Ipv6Address])),
    attachment: attachmentOf(eni),
    tags: tagsOf(eni.TagSet),
  };
}

/** An SDK subnet as a {@link Subnet}. */
export function toSubnet(s: SdkSubnet): Subnet {
  return {
    id: s.SubnetId ?? "",
    vpcId: s.VpcId ?? "",
    availabilityZone: s.AvailabilityZone ?? "",
    cidr: s.CidrBlock ?? "",
    availableIps: s.AvailableIpAddressCount ?? 0,
    tags: tagsOf(s.Tags),
  };
}

/** An SDK VPC as a {@link Vpc}: the primary CIDR first, then the other associated ones. */
export function toVpc(v: SdkVpc): Vpc {
  const cidrs: string[] = v.CidrBlock === undefined ? [] : [v.CidrBlock];
  for (const a of v.CidrBlockAssociationSet ?? []) {
    const state = a.CidrBlockState?.State;
    if (a.CidrBlock === undefined || cidrs.includes(a.CidrBlock)) continue;
    if (state !== undefined && state !== "associated") continue;
    cidrs.push(a.CidrBlock);
  }
  return { id: v.VpcId ?? "", cidrs };
}

/** An SDK instance as an {@link Instance}. */
export function toInstance(i: SdkInstance): Instance {
  return {
    id: i.InstanceId ?? "",
    type: i.InstanceType ?? "",
    subnetId: i.SubnetId ?? "",
    vpcId: i.VpcId ?? "",
    availabilityZone: i.Placement?.AvailabilityZone ?? "",
  };
}

/** An SDK instance type as {@link InstanceTypeLimits}. */
export function toInstanceTypeLimits(t: InstanceTypeInfo): InstanceTypeLimits {
  return {
    type: t.InstanceType ?? "",
    maxEnis: t.NetworkInfo?.MaximumNetworkInterfaces ?? 0,
    ipv4PerEni: t.NetworkInfo?.Ipv4AddressesPerInterface ?? 0,
    ipv6PerEni: t.NetworkInfo?.Ipv6AddressesPerInterface ?? 0,
  };
}
