// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* to_container: tc egress of an endpoint's host-side veth, i.e. every
 * packet the host stack sends to the pod: all traffic between pods in
 * legacy host routing mode, and traffic from the host and from outside
 * the node in both modes. (With BPF host routing, packets from local pods
 * arrive through bpf_redirect_peer, which skips this hook; from_container
 * ran their ingress policy.)
 *
 *  1. Parse. ARP and IPv6 neighbour discovery / MLD pass.
 *  2. Find the destination endpoint by destination IP; it must be the
 *     endpoint of this interface (skb->ifindex), else the packet is
 *     dropped (DP_DROP_UNKNOWN_DESTINATION).
 *  3. The source identity: a local source's from its endpoint entry,
 *     anything else's from the ipcache (world when it has none).
 *  4. Conntrack in the ingress scope and, for a new connection, the
 *     endpoint's ingress policy (lxc.h). Replies of the endpoint's own
 *     connections and related ICMP errors skip the policy.
 *  5. TC_ACT_OK: on to the pod.
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
int to_container(struct __sk_buff *skb)
{
	struct dp_notify n = { .ifindex = skb->ifindex, .direction = DP_DIR_INGRESS };
	struct dp_endpoint_info *dst, *src;
	__be16 proto = skb->protocol;
	struct dp_pkt p;
	int ret;

	if (proto == bpf_htons(ETH_P_ARP))
		return TC_ACT_OK;
	ret = dp_parse(skb, proto, &p);
	if (ret)
		return dp_drop(&p, &n, ret);
	if (dp_lxc_is_control(&p))
		return TC_ACT_OK;

	dst = dp_endpoint_lookup(p.t.daddr, p.t.family);
	if (!dst || dst->ifindex != skb->ifindex)
		return dp_drop(&p, &n, DP_DROP_UNKNOWN_DESTINATION);
	n.endpoint_id = dst->id;
	n.dst_identity = dst->identity;
	src = dp_endpoint_lookup(p.t.saddr, p.t.family);
	/* A local source's identity is in its endpoint entry (the ipcache holds the same). */
	n.src_identity = src ? src->identity : dp_ipcache_identity(p.t.saddr, p.t.family, 0);

	if (dp_lxc_enforce(&p, &n, dst, DP_DIR_INGRESS, n.src_identity))
		return TC_ACT_SHOT;
	return dp_forward(&p, &n, DP_TRACE_TO_ENDPOINT, n.ifindex, TC_ACT_OK);
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
