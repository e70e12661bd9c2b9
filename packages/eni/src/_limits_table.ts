// ENI limits shipped with @dp/eni: maximum ENIs and private IPv4 addresses
// per ENI (the primary included), as EC2's DescribeInstanceTypes reports them
// and amazon-vpc-cni-k8s records them (pkg/vpc/vpc_ip_resource_limit.go; its
// misc/eni-max-pods.txt gives the same numbers as max pods). Every type here
// is Nitro-based, where IPv6 addresses per ENI equal IPv4 addresses per ENI.
// refreshInstanceLimits() (limits.ts) overrides these with live values.
import type { InstanceTypeLimits } from "./ec2_api.ts";

// [type, max ENIs, IPv4 addresses per ENI]
const ROWS: readonly (readonly [string, number, number])[] = [
  // t3: burstable, Intel
  ["t3.nano", 2, 2],
  ["t3.micro", 2, 2],
  ["t3.small", 3, 4],
  ["t3.medium", 3, 6],
  ["t3.large", 3, 12],
  ["t3.xlarge", 4, 15],
  ["t3.2xlarge", 4, 15],
  // t3a: burstable, AMD (t3a.small has one ENI fewer than t3.small)
  ["t3a.nano", 2, 2],
  ["t3a.micro", 2, 2],
  ["t3a.small", 2, 4],
  ["t3a.medium", 3, 6],
  ["t3a.large", 3, 12],
  ["t3a.xlarge", 4, 15],
  ["t3a.2xlarge", 4, 15],
  // m5
  ["m5.large", 3, 10],
  ["m5.xlarge", 4, 15],
  ["m5.2xlarge", 4, 15],
  ["m5.4xlarge", 8, 30],
  ["m5.8xlarge", 8, 30],
  ["m5.12xlarge", 8, 30],
  ["m5.16xlarge", 15, 50],
  ["m5.24xlarge", 15, 50],
  ["m5.metal", 15, 50],
  // m5n
  ["m5n.large", 3, 10],
  ["m5n.xlarge", 4, 15],
  ["m5n.2xlarge", 4, 15],
  ["m5n.4xlarge", 8, 30],
  ["m5n.8xlarge", 8, 30],
  ["m5n.12xlarge", 8, 30],
  ["m5n.16xlarge", 15, 50],
  ["m5n.24xlarge", 15, 50],
  ["m5n.metal", 15, 50],
  // m6i
  ["m6i.large", 3, 10],
  ["m6i.xlarge", 4, 15],
  ["m6i.2xlarge", 4, 15],
  ["m6i.4xlarge", 8, 30],
  ["m6i.8xlarge", 8, 30],
  ["m6i.12xlarge", 8, 30],
  ["m6i.16xlarge", 15, 50],
  ["m6i.24xlarge", 15, 50],
  ["m6i.32xlarge", 15, 50],
  ["m6i.metal", 15, 50],
  // c5
  ["c5.large", 3, 10],
  ["c5.xlarge", 4, 15],
  ["c5.2xlarge", 4, 15],
  ["c5.4xlarge", 8, 30],
  ["c5.9xlarge", 8, 30],
  ["c5.12xlarge", 8, 30],
  ["c5.18xlarge", 15, 50],
  ["c5.24xlarge", 15, 50],
  ["c5.metal", 15, 50],
  // c6i
  ["c6i.large", 3, 10],
  ["c6i.xlarge", 4, 15],
  ["c6i.2xlarge", 4, 15],
  ["c6i.4xlarge", 8, 30],
  ["c6i.8xlarge", 8, 30],
  ["c6i.12xlarge", 8, 30],
  ["c6i.16xlarge", 15, 50],
  ["c6i.24xlarge", 15, 50],
  ["c6i.32xlarge", 15, 50],
  ["c6i.metal", 15, 50],
  // r5
  ["r5.large", 3, 10],
  ["r5.xlarge", 4, 15],
  ["r5.2xlarge", 4, 15],
  ["r5.4xlarge", 8, 30],
  ["r5.8xlarge", 8, 30],
  ["r5.12xlarge", 8, 30],
  ["r5.16xlarge", 15, 50],
  ["r5.24xlarge", 15, 50],
  ["r5.metal", 15, 50],
  // r6i
  ["r6i.large", 3, 10],
  ["r6i.xlarge", 4, 15],
  ["r6i.2xlarge", 4, 15],
  ["r6i.4xlarge", 8, 30],
  ["r6i.8xlarge", 8, 30],
  ["r6i.12xlarge", 8, 30],
  ["r6i.16xlarge", 15, 50],
  ["r6i.24xlarge", 15, 50],
  ["r6i.32xlarge", 15, 50],
  ["r6i.metal", 15, 50],
];

/** The shipped limits by instance type. */
export const SHIPPED_LIMITS: ReadonlyMap<string, InstanceTypeLimits> = new Map(
  ROWS.map(([type, maxEnis, ipv4PerEni]) => [
    type,
    Object.freeze({ type, maxEnis, ipv4PerEni, ipv6PerEni: ipv4PerEni }),
  ]),
);
