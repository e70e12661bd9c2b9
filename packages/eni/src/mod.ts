/**
 * AWS ENI IP address management, as Cilium's `ipam: eni` does it, and the
 * ENI routing datapath: pod IPs are ENI secondary addresses, routed with
 * per-ENI tables and FIB rules.
 *
 * @module @dp/eni
 */
export { Ec2Error } from "./ec2_api.ts";
export type {
  CreateNetworkInterfaceInput,
  Ec2Api,
  Ec2CallStats,
  Ec2ErrorOptions,
  EniAttachment,
  Instance,
  InstanceTypeLimits,
  NetworkInterface,
  Subnet,
  Vpc,
} from "./ec2_api.ts";
