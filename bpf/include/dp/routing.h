/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* BPF host routing (dp_host_routing_bpf = 1): delivering a packet without
 * the host stack.
 *
 *  - to a local endpoint: rewrite the MACs (destination = the pod's,
 *    source = its host-side veth's), decrement the TTL / hop limit and
 *    bpf_redirect_peer() to the endpoint's host-side veth, which hands the
 *    packet straight to the peer inside the pod's namespace;
 *  - elsewhere: bpf_fib_lookup() in the node's tables, then bpf_redirect()
 *    with the FIB's MACs, or bpf_redirect_neigh() when the neighbour is not
 *    resolved yet; what the FIB does not forward (local, no route, ...)
 *    goes to the host stack, which answers with its own ICMP errors.
 *
 * A packet whose TTL / hop limit would expire goes to the stack too, which
 * sends the ICMP time-exceeded.
 */
#ifndef DP_ROUTING_H
#define DP_ROUTING_H

#include "common.h"
#include "csum.h"
#include "endpoint.h"
#include "notify.h"

#define DP_AF_INET  2
#define DP_AF_INET6 10

/* Redirects a packet into local endpoint `ep`. */
static __always_inline int dp_redirect_endpoint(struct __sk_buff *skb, const struct dp_pkt *p,
						const struct dp_notify *n,
						const struct dp_endpoint_info *ep)
{
	__u32 ifindex = ep->ifindex;

	if (p->ttl <= 1)
		return dp_forward(p, n, DP_TRACE_TO_STACK, n->ifindex, TC_ACT_OK);
	if (dp_forward_rewrite(skb, p, ep->mac, ep->node_mac) < 0)
		return dp_drop(p, n, DP_DROP_REWRITE_FAILED);
	return dp_forward(p, n, DP_TRACE_TO_ENDPOINT, ifindex, bpf_redirect_peer(ifindex, 0));
}

/* Routes a packet by the FIB (see above). */
static __always_inline int dp_redirect_fib(struct __sk_buff *skb, const struct dp_pkt *p,
					   const struct dp_notify *n)
{
	struct bpf_fib_lookup fib = {};
	long ret;

	fib.ifindex = n->ifindex;
	fib.l4_protocol = p->t.nexthdr;
	fib.sport = p->t.sport;
	fib.dport = p->t.dport;
	fib.tot_len = p->len - p->l3_off;
	if (p->t.family == DP_FAMILY_IPV4) {
		fib.family = DP_AF_INET;
		fib.ipv4_src = dp_addr_v4(p->t.saddr);
		fib.ipv4_dst = dp_addr_v4(p->t.daddr);
	} else {
		fib.family = DP_AF_INET6;
		dp_addr_copy((__u8 *)fib.ipv6_src, p->t.saddr);
		dp_addr_copy((__u8 *)fib.ipv6_dst, p->t.daddr);
	}
	ret = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	if (ret < 0)
		return dp_drop(p, n, DP_DROP_FIB_FAIL);
	if (ret != BPF_FIB_LKUP_RET_SUCCESS && ret != BPF_FIB_LKUP_RET_NO_NEIGH)
		return dp_forward(p, n, DP_TRACE_TO_STACK, n->ifindex, TC_ACT_OK);
	if (p->ttl <= 1)
		return dp_forward(p, n, DP_TRACE_TO_STACK, n->ifindex, TC_ACT_OK);
	if (dp_forward_rewrite(skb, p, ret == BPF_FIB_LKUP_RET_SUCCESS ? fib.dmac : 0, fib.smac) <
	    0)
		return dp_drop(p, n, DP_DROP_REWRITE_FAILED);
	if (ret == BPF_FIB_LKUP_RET_SUCCESS) {
		return dp_forward(p, n, DP_TRACE_TO_NETDEV, fib.ifindex,
				  bpf_redirect(fib.ifindex, 0));
	} else {
		/* The FIB wrote the next hop (gateway or destination) into ipv4_dst/ipv6_dst. */
		struct bpf_redir_neigh nh = {};

		if (p->t.family == DP_FAMILY_IPV4) {
			nh.nh_family = DP_AF_INET;
			nh.ipv4_nh = fib.ipv4_dst;
		} else {
			nh.nh_family = DP_AF_INET6;
			dp_addr_copy((__u8 *)nh.ipv6_nh, (__u8 *)fib.ipv6_dst);
		}
		return dp_forward(p, n, DP_TRACE_TO_NETDEV, fib.ifindex,
				  bpf_redirect_neigh(fib.ifindex, &nh, sizeof(nh), 0));
	}
}

#endif /* DP_ROUTING_H */
