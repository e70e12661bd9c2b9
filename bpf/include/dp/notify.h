/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Reporting what happened to a packet: drop, trace and policy-verdict
 * events into dp_events (events.h) plus the per-CPU metrics (metrics.h).
 * Drops are always reported; traces only with dp_trace_enabled; policy
 * verdicts for new connections.
 */
#ifndef DP_NOTIFY_H
#define DP_NOTIFY_H

#include "common.h"
#include "config.h"
#include "events.h"
#include "metrics.h"
#include "parse.h"

/* What the program knows about the packet beyond its headers. */
struct dp_notify {
	__u32 ifindex; /* the interface the packet is on */
	__u32 src_identity;
	__u32 dst_identity;
	__u32 rule_cookie;
	__u16 endpoint_id;
	__u8 direction; /* DP_DIR_* */
	__u8 verdict;	/* enum dp_verdict */
	__u8 ct;	/* enum dp_ct_result */
};

static __always_inline void dp_emit(const struct dp_pkt *p, const struct dp_notify *n, __u8 type,
				    __u8 reason, __u32 ifindex)
{
	struct dp_event *e = bpf_ringbuf_reserve(&dp_events, sizeof(*e), 0);

	if (!e) {
		__u32 zero = 0;
		__u64 *lost = bpf_map_lookup_elem(&dp_events_lost, &zero);

		if (lost)
			*lost += 1;
		return;
	}
	e->timestamp = bpf_ktime_get_ns();
	e->type = type;
	e->reason = reason;
	e->direction = n->direction;
	e->verdict = n->verdict;
	e->family = p->t.family;
	e->protocol = p->t.nexthdr;
	e->endpoint_id = n->endpoint_id;
	e->ifindex = ifindex;
	e->src_identity = n->src_identity;
	e->dst_identity = n->dst_identity;
	e->len = p->len;
	dp_addr_copy(e->saddr, p->t.saddr);
	dp_addr_copy(e->daddr, p->t.daddr);
	e->sport = p->t.sport;
	e->dport = p->t.dport;
	e->rule_cookie = n->rule_cookie;
	e->ct = n->ct;
	__builtin_memset(e->pad, 0, sizeof(e->pad));
	bpf_ringbuf_submit(e, 0);
}

/* Reports a drop (event + metric) and returns TC_ACT_SHOT. */
static __always_inline int dp_drop(const struct dp_pkt *p, const struct dp_notify *n, __u8 reason)
{
	dp_emit(p, n, DP_EVENT_DROP, reason, n->ifindex);
	dp_metrics_add(reason, n->direction, p->len);
	return TC_ACT_SHOT;
}

/* Counts a forwarded packet, traces where it goes (if enabled) and
 * returns `verdict`. */
static __always_inline int dp_forward(const struct dp_pkt *p, const struct dp_notify *n, __u8 point,
				      __u32 ifindex, int verdict)
{
	if (dp_trace_enabled)
		dp_emit(p, n, DP_EVENT_TRACE, point, ifindex);
	dp_metrics_add(DP_FORWARDED, n->direction, p->len);
	return verdict;
}

/* Reports the policy verdict of a new connection. */
static __always_inline void dp_policy_verdict(const struct dp_pkt *p, const struct dp_notify *n,
					      __u8 reason)
{
	dp_emit(p, n, DP_EVENT_POLICY_VERDICT, reason, n->ifindex);
}

#endif /* DP_NOTIFY_H */
