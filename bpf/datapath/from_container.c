// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* from_container: tc ingress of an endpoint's host-side veth, i.e. every
 * packet the pod sends.
 *
 *  1. Parse. ARP and IPv6 neighbour discovery / MLD pass to the stack.
 *  2. Find the source endpoint by source IP in dp_endpoints; it must be
 *     the endpoint of this interface (skb->ingress_ifindex), else the
 *     packet is dropped (DP_DROP_INVALID_SOURCE): a pod cannot spoof
 *     another's address.
 *  3. The destination identity: a local endpoint's from its endpoint
 *     entry, anything else's from the ipcache.
 *  4. Conntrack in the egress scope and, for a new connection, the source
 *     endpoint's egress policy (lxc.h). Established, reply and related
 *     packets skip the policy.
 *  5. Delivery:
 *     - a local endpoint: with BPF host routing, its ingress policy (the
 *       same stage to_container runs), then MAC rewrite, TTL decrement and
 *       bpf_redirect_peer into its namespace; in legacy mode, the host
 *       stack routes the packet and to_container at the destination's veth
 *       runs the ingress policy;
 *     - the host (identity 1): the stack;
 *     - with IPsec (dp_enable_ipsec), a remote node's pod (the ipcache
 *       entry of the destination has a node id): the node's key from
 *       dp_encrypt goes into the mark and the stack's xfrm layer encrypts
 *       the packet; without a key it is dropped (encrypt.h);
 *     - anything else: bpf_fib_lookup + bpf_redirect(_neigh) with BPF host
 *       routing (routing.h), the stack in legacy mode.
 *
 * Settings: config.h. Maps: endpoint.h, ipcache.h, policy.h, conntrack.h,
 * encrypt.h, events.h, metrics.h, layouts.h.
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
int from_container(struct __sk_buff *skb)
{
	struct dp_notify n = { .ifindex = skb->ingress_ifindex, .direction = DP_DIR_EGRESS };
	struct dp_endpoint_info *src, *dst;
	struct dp_ipcache_info *remote;
	__be16 proto = skb->protocol;
	__u16 node_id = 0;
	struct dp_pkt p;
	int ret;

	if (proto == bpf_htons(ETH_P_ARP))
		return TC_ACT_OK;
	ret = dp_parse(skb, proto, &p);
	if (ret)
		return dp_drop(&p, &n, ret);
	if (dp_lxc_is_control(&p))
		return TC_ACT_OK;

	src = dp_endpoint_lookup(p.t.saddr, p.t.family);
	if (!src || src->ifindex != skb->ingress_ifindex)
		return dp_drop(&p, &n, DP_DROP_INVALID_SOURCE);
	n.endpoint_id = src->id;
	n.src_identity = src->identity;
	dst = dp_endpoint_lookup(p.t.daddr, p.t.family);
	/* A local endpoint's identity is in its endpoint entry (the ipcache
	 * holds the same); only other destinations need the LPM lookup. */
	if (dst) {
		n.dst_identity = dst->identity;
	} else {
		remote = dp_ipcache_lookup(p.t.daddr, p.t.family);
		n.dst_identity = remote ? remote->identity : DP_ID_WORLD;
		if (dp_enable_ipsec && remote)
			node_id = remote->node_id;
	}

	if (dp_lxc_enforce(&p, &n, src, DP_DIR_EGRESS, n.dst_identity))
		return TC_ACT_SHOT;

	if (dst) {
		if (!dp_host_routing_bpf)
			return dp_forward(&p, &n, DP_TRACE_TO_STACK, n.ifindex, TC_ACT_OK);
		/* Forwarded as the source's egress, as in legacy mode; the
		 * redirect counts it again as the destination's ingress. */
		dp_metrics_add(DP_FORWARDED, DP_DIR_EGRESS, p.len);
		if (dp_lxc_enforce(&p, &n, dst, DP_DIR_INGRESS, n.src_identity))
			return TC_ACT_SHOT;
		return dp_redirect_endpoint(skb, &p, &n, dst);
	}
	/* A remote node's pod: encrypted by the stack, never redirected past it. */
	if (dp_enable_ipsec && node_id)
		return dp_encrypt_to_stack(skb, &p, &n, node_id);
	if (n.dst_identity == DP_ID_HOST || !dp_host_routing_bpf)
		return dp_forward(&p, &n, DP_TRACE_TO_STACK, n.ifindex, TC_ACT_OK);
	return dp_redirect_fib(skb, &p, &n);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
