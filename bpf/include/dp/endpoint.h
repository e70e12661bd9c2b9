/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Local endpoints (pods): dp_endpoints maps each endpoint IP to its
 * interface, id, policy enforcement flags, identity and MACs. The
 * programs find the source endpoint of a packet leaving a pod and the
 * destination endpoint of a packet for a pod here.
 */
#ifndef DP_ENDPOINT_H
#define DP_ENDPOINT_H

#include "common.h"

/* dp_endpoint_info.flags: whether policy is enforced in a direction (set
 * when at least one rule selects the endpoint in that direction; when
 * clear, everything is allowed in that direction). */
#define DP_EP_F_INGRESS_ENFORCED 1
#define DP_EP_F_EGRESS_ENFORCED	 2

struct dp_endpoint_key {
	__u8 addr[16]; /* IPv4-mapped for IPv4 */
	__u8 family;   /* DP_FAMILY_IPV4 or DP_FAMILY_IPV6 */
	__u8 pad[3];
};

struct dp_endpoint_info {
	__u32 ifindex;	  /* the host-side veth */
	__u16 id;	  /* endpoint id: the key of its policy map in dp_policy */
	__u16 flags;	  /* DP_EP_F_* */
	__u32 identity;	  /* its security identity */
	__u8 mac[6];	  /* the pod's MAC (inside its namespace) */
	__u8 node_mac[6]; /* the host-side veth's MAC (the pod's next hop) */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024); /* the node default is 65535: set before load */
	__type(key, struct dp_endpoint_key);
	__type(value, struct dp_endpoint_info);
} dp_endpoints SEC(".maps");

static __always_inline struct dp_endpoint_info *dp_endpoint_lookup(const __u8 *addr, __u8 family)
{
	struct dp_endpoint_key key = { .family = family };

	dp_addr_copy(key.addr, addr);
	return bpf_map_lookup_elem(&dp_endpoints, &key);
}

#endif /* DP_ENDPOINT_H */
