/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The endpoint stage shared by from_container and to_container (Cilium's
 * bpf_lxc): conntrack in the endpoint's scope and, for new connections,
 * the endpoint's policy in that direction; a verdict event for each new
 * connection; a new conntrack entry when allowed.
 */
#ifndef DP_LXC_H
#define DP_LXC_H

#include "common.h"
#include "conntrack.h"
#include "endpoint.h"
#include "notify.h"
#include "parse.h"
#include "policy.h"

/* Runs conntrack and policy for endpoint `ep` in direction `dir` against
 * the identity `remote` (the destination for egress, the source for
 * ingress). n->src_identity must be the packet's source identity. Returns
 * 0 to go on, or TC_ACT_SHOT after reporting the drop. */
static __always_inline int dp_lxc_enforce(const struct dp_pkt *p, struct dp_notify *n,
					  const struct dp_endpoint_info *ep, __u8 dir, __u32 remote)
{
	__u8 scope = dir == DP_DIR_EGRESS ? DP_CT_SCOPE_EGRESS : DP_CT_SCOPE_INGRESS;
	struct dp_policy_result res;
	int ct, ret;

	n->direction = dir;
	n->endpoint_id = ep->id;
	n->verdict = DP_VERDICT_NONE;
	n->rule_cookie = 0;
	ct = dp_ct_lookup(p, scope);
	n->ct = ct;
	if (ct != DP_CT_NEW && ct != DP_CT_REOPENED)
		return 0;

	dp_policy_check(ep, dir, remote, p->t.nexthdr,
			dp_policy_port(p->t.nexthdr, p->t.dport, p->icmp_type), p->len, &res);
	n->verdict = res.verdict;
	n->rule_cookie = res.rule_cookie;
	dp_policy_verdict(p, n, res.reason);
	if (res.reason)
		return dp_drop(p, n, res.reason);
	ret = dp_ct_create(p, scope, n->src_identity, ct == DP_CT_REOPENED);
	if (ret)
		return dp_drop(p, n, ret);
	return 0;
}

/* Link-local control traffic that passes untouched: ARP, and IPv6
 * neighbour discovery and MLD (parse.h). */
static __always_inline int dp_lxc_is_control(const struct dp_pkt *p)
{
	return p->t.family == DP_FAMILY_IPV6 && p->t.nexthdr == DP_IPPROTO_ICMPV6 &&
	       p->frag == DP_FRAG_NONE && dp_icmpv6_is_control(p->icmp_type);
}

#endif /* DP_LXC_H */
