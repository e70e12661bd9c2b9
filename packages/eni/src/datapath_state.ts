// The input of the ENI datapath: the ENIs and pod IPs it routes and the
// options of reconciling them. Both the plan (_datapath_plan.ts) and the
// kernel side (datapath.ts) import these types from here.

/** One ENI attached to the instance, as the datapath routes it. */
export interface EniDatapathEni {
  /** The ENI's interface on the node, such as `"eth1"`. */
  readonly dev: string;
  /** The attachment's device index (0 is the primary ENI, `eth0`). */
  readonly deviceIndex: number;
  /**
   * The ENI's routing table. One table per ENI.
   *
   * @default deviceIndex + 10 (Cilium's `RouteTableInterfacesOffset`)
   */
  readonly table?: number;
  /**
   * The VPC router of the ENI's subnet: the target of the table's default route.
   *
   * @default the subnet's first host (192.168.0.1 for 192.168.0.0/24), where AWS puts the router
   */
  readonly routerIp?: string;
  /** The ENI's subnet, such as `"192.168.0.0/24"`: every pod IP of the ENI lies in it. */
  readonly subnetCidr: string;
  /** The VPC's IPv4 CIDRs: pod traffic to them leaves through this ENI. At least one. */
  readonly vpcCidrs: readonly string[];
}

/** One pod IP: a secondary IP of an ENI in use by a pod. */
export interface EniDatapathPod {
  /** The pod's IPv4 address. */
  readonly ip: string;
  /** The `dev` of the ENI the IP belongs to. */
  readonly eni: string;
  /**
   * The host side of the pod's veth pair (`lxc…`), for the endpoint route.
   *
   * @default none: no endpoint route for this pod
   */
  readonly hostDev?: string;
}

/** What the ENI datapath routes: the instance's ENIs and the pod IPs in use. */
export interface EniDatapathState {
  /** The ENIs that carry pod IPs. */
  readonly enis: readonly EniDatapathEni[];
  /** The pod IPs in use. */
  readonly pods: readonly EniDatapathPod[];
}

/** The priorities of the two rules per pod. */
export interface EniRulePriorities {
  /**
   * The rule "from all to POD_IP lookup main" (ingress); it must come before `fromPod`.
   *
   * @default 20
   */
  readonly toPod?: number;
  /**
   * The rules "from POD_IP to VPC_CIDR lookup TABLE" (egress).
   *
   * @default 30
   */
  readonly fromPod?: number;
}

/** Options for {@link listEniPodIps}. */
export interface ListEniPodIpsOptions {
  /**
   * The rule priorities the datapath was reconciled with.
   *
   * @default { toPod: 20, fromPod: 30 }
   */
  readonly rulePriorities?: EniRulePriorities;
  /**
   * The route protocol that marks the datapath's rules and routes (4-255).
   *
   * @default ENI_ROUTE_PROTOCOL (219)
   */
  readonly protocol?: number;
}

/** Options for {@link reconcileEniDatapath} and {@link masqueradePolicy}. */
export interface EniDatapathOptions extends ListEniPodIpsOptions {
  /**
   * Install an exact route "POD_IP dev lxc…" in the main table for each pod
   * with a `hostDev` (Cilium's `enable-endpoint-routes`).
   *
   * @default false
   */
  readonly enableEndpointRoutes?: boolean;
  /**
   * Interface selectors that pod traffic is masqueraded out of
   * (Cilium's `egress-masquerade-interfaces`), iptables style: `"eth+"`
   * is every interface whose name starts with `eth`. Empty: no masquerading.
   * Used by {@link masqueradePolicy}; reconciling ignores it.
   *
   * @default []
   */
  readonly egressMasqueradeInterfaces?: readonly string[];
}
