// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* from_netdev: tc ingress of the node's uplink, for BPF host routing.
 *
 * A packet from outside the node for a local endpoint gets the endpoint's
 * ingress policy (with conntrack: replies of the endpoint's own
 * connections pass without it) and goes straight into the pod's namespace
 * with bpf_redirect_peer, skipping the host stack (routing.h). Everything
 * else, and everything in legacy mode, goes on to the host stack
 * untouched (TC_ACT_OK): traffic for the node itself, ARP, packets this
 * program cannot parse. In legacy mode to_container polices what the stack
 * then routes to a pod.
 */
#include "dp/common.h"
#include "dp/config.h"
#include "dp/parse.h"
#include "dp/endpoint.h"
#include "dp/identity.h"
#include "dp/ipcache.h"
#include "dp/conntrack.h"
#include "dp/policy.h"
#include "dp/notify.h"
#include "dp/routing.h"
#include "dp/encrypt.h"
#include "dp/lxc.h"
#include "dp/layouts.h"

SEC("tc")
int from_netdev(struct __sk_buff *skb)
{
	struct dp_notify n = { .ifindex = skb->ingress_ifindex, .direction = DP_DIR_INGRESS };
	struct dp_endpoint_info *dst;
	__be16 proto = skb->protocol;
	struct dp_pkt p;

	if (!dp_host_routing_bpf)
		return TC_ACT_OK;
	if (proto != bpf_htons(ETH_P_IP) && proto != bpf_htons(ETH_P_IPV6))
		return TC_ACT_OK;
	if (dp_parse(skb, proto, &p))
		return TC_ACT_OK;
	dst = dp_endpoint_lookup(p.t.daddr, p.t.family);
	if (!dst)
		return TC_ACT_OK;
	n.endpoint_id = dst->id;
	n.dst_identity = dst->identity;
	n.src_identity = dp_ipcache_identity(p.t.saddr, p.t.family, 0);

	if (dp_lxc_enforce(&p, &n, dst, DP_DIR_INGRESS, n.src_identity))
		return TC_ACT_SHOT;
	return dp_redirect_endpoint(skb, &p, &n, dst);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
