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
export {
  ENI_ROUTE_PROTOCOL,
  listEniPodIps,
  masqueradePolicy,
  reconcileEniDatapath,
  shouldMasquerade,
} from "./datapath.ts";
export type { EniDatapathChanges, MasqueradeFlow, MasqueradePolicy } from "./datapath.ts";
export type {
  EniDatapathEni,
  EniDatapathOptions,
  EniDatapathPod,
  EniDatapathState,
  EniRulePriorities,
  ListEniPodIpsOptions,
} from "./datapath_state.ts";
export { instanceLimits, LimitsTable, maxPods, refreshInstanceLimits } from "./limits.ts";
export type { LimitsTableOptions, RefreshInstanceLimitsOptions } from "./limits.ts";
export { EniPool, EniPoolError, NoSubnetError, openEniPool, PoolExhaustedError } from "./pool.ts";
export type {
  EniAllocation,
  EniPoolErrorOptions,
  EniPoolStatus,
  EniStatus,
  NoSubnetErrorOptions,
  OpenEniPoolOptions,
  PoolExhaustedErrorOptions,
  PoolExhaustedReason,
} from "./pool.ts";
export { createEc2Api } from "./ec2.ts";
export type { Ec2ApiClient, Ec2ApiOptions, Ec2Clock, Ec2Credentials, Ec2RetryOptions } from "./ec2.ts";
export { MetadataError, readInstanceMetadata } from "./imds.ts";
export type { InstanceMetadata, InterfaceMetadata, MetadataErrorOptions, ReadInstanceMetadataOptions } from "./imds.ts";
