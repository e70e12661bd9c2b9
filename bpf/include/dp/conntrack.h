/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Connection tracking, Cilium-like: one entry per connection and policy
 * scope, keyed by the tuple of the connection's first packet (the
 * initiator is the source) plus the scope:
 *
 *   DP_CT_SCOPE_EGRESS  the entry the initiator's egress policy allowed
 *   DP_CT_SCOPE_INGRESS the entry the responder's ingress policy allowed
 *
 * A packet checked in scope S is
 *   ESTABLISHED  when {tuple, S} exists (same direction as the first packet);
 *   REPLY        when {reversed tuple, other scope} exists: the connection
 *                was allowed by the other side's policy of this packet's
 *                endpoint (the reply of an egress connection arrives as
 *                ingress, and the other way round);
 *   RELATED      for an ICMP(v6) error whose embedded tuple T (as sent)
 *                has {T, other scope} or {reversed T, S};
 *   NEW          otherwise (also a TCP SYN on a closing entry: reopened).
 * Policy runs only for NEW; dp_ct_create then records the connection.
 *
 * TCP goes into dp_ct_tcp, everything else into dp_ct_any. Both are plain
 * hashes, not LRU: when one is full the update fails, and the packet is
 * dropped with DP_DROP_CT_MAP_FULL (counted and reported) rather than an
 * entry being evicted silently. Entries are removed by the garbage
 * collector in user space.
 *
 * Lifetime: dp_ct_entry.expires is an absolute time in nanoseconds of
 * CLOCK_MONOTONIC (clock_gettime(CLOCK_MONOTONIC) in user space, which
 * Node's process.hrtime.bigint() reads on Linux). The programs read it with
 * bpf_ktime_get_coarse_ns(), the same clock as of the last tick (at most a
 * few milliseconds behind, nothing next to lifetimes in seconds), which is
 * a memory read where bpf_ktime_get_ns() reads the clock source on every
 * packet. Each packet sets it to now + the lifetime of the state: dp_ct_timeout_syn
 * until a TCP packet without SYN is seen, dp_ct_timeout_tcp then,
 * dp_ct_timeout_close after a FIN or RST, dp_ct_timeout_any for other
 * protocols (config.h).
 */
#ifndef DP_CONNTRACK_H
#define DP_CONNTRACK_H

#include "common.h"
#include "config.h"
#include "tuple.h"
#include "parse.h"
#include "events.h"

#define DP_CT_SCOPE_INGRESS 1
#define DP_CT_SCOPE_EGRESS  2

/* dp_ct_entry.state */
enum dp_ct_state {
	DP_CT_STATE_NONE = 0,
	DP_CT_STATE_SYN_SENT = 1,    /* TCP: only SYN (and SYN-ACK) seen */
	DP_CT_STATE_ESTABLISHED = 2, /* TCP: a packet without SYN seen; other protocols: open */
	DP_CT_STATE_CLOSING =
		3, /* TCP: FIN or RST seen (flags say which, and in which direction) */
};

/* dp_ct_entry.flags */
#define DP_CT_F_SEEN_NON_SYN 0x01
#define DP_CT_F_TX_CLOSING   0x02 /* FIN from the initiator */
#define DP_CT_F_RX_CLOSING   0x04 /* FIN from the responder */
#define DP_CT_F_RST	     0x08 /* RST seen (both directions closing) */

/* The result of a lookup. */
enum dp_ct_result {
	DP_CT_NEW = 0,
	DP_CT_ESTABLISHED = 1,
	DP_CT_REPLY = 2,
	DP_CT_RELATED = 3,
	DP_CT_REOPENED = 4, /* a new SYN on a closing entry: treated as NEW */
};

struct dp_ct_entry {
	__u64 expires;	  /* absolute, CLOCK_MONOTONIC ns (coarse) */
	__u64 created;	  /* CLOCK_MONOTONIC ns (coarse) */
	__u64 tx_packets; /* from the initiator */
	__u64 tx_bytes;
	__u64 rx_packets; /* from the responder */
	__u64 rx_bytes;
	__u32 src_identity;  /* the initiator's identity */
	__u16 rev_nat_index; /* reserved (services): 0 */
	__be16 proxy_port;   /* reserved (L7 redirect): 0 */
	__u8 state;	     /* enum dp_ct_state */
	__u8 flags;	     /* DP_CT_F_* */
	__u8 tx_flags_seen;  /* TCP flags seen from the initiator */
	__u8 rx_flags_seen;  /* TCP flags seen from the responder */
	__u32 pad;
};

/* Node defaults are 1M (TCP) and 256k (other): set before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dp_tuple);
	__type(value, struct dp_ct_entry);
} dp_ct_tcp SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dp_tuple);
	__type(value, struct dp_ct_entry);
} dp_ct_any SEC(".maps");

#define DP_NSEC_PER_SEC 1000000000ULL

static __always_inline void *dp_ct_map_for(__u8 nexthdr)
{
	return nexthdr == DP_IPPROTO_TCP ? (void *)&dp_ct_tcp : (void *)&dp_ct_any;
}

static __always_inline __u8 dp_ct_other_scope(__u8 scope)
{
	return scope == DP_CT_SCOPE_EGRESS ? DP_CT_SCOPE_INGRESS : DP_CT_SCOPE_EGRESS;
}

static __always_inline __u64 dp_ct_lifetime(const struct dp_ct_entry *e, __u8 nexthdr)
{
	__u32 s;

	if (nexthdr != DP_IPPROTO_TCP)
		s = dp_ct_timeout_any;
	else if (e->flags & (DP_CT_F_TX_CLOSING | DP_CT_F_RX_CLOSING))
		s = dp_ct_timeout_close;
	else if (e->flags & DP_CT_F_SEEN_NON_SYN)
		s = dp_ct_timeout_tcp;
	else
		s = dp_ct_timeout_syn;
	return (__u64)s * DP_NSEC_PER_SEC;
}

/* Applies a packet's TCP flags to an entry (reply: from the responder). */
static __always_inline void dp_ct_tcp_update(struct dp_ct_entry *e, __u8 flags, int reply)
{
	if (reply)
		e->rx_flags_seen |= flags;
	else
		e->tx_flags_seen |= flags;
	if (flags & DP_TCP_RST) {
		e->flags |= DP_CT_F_RST | DP_CT_F_TX_CLOSING | DP_CT_F_RX_CLOSING;
		e->state = DP_CT_STATE_CLOSING;
		return;
	}
	if (!(flags & DP_TCP_SYN))
		e->flags |= DP_CT_F_SEEN_NON_SYN;
	if (flags & DP_TCP_FIN) {
		e->flags |= reply ? DP_CT_F_RX_CLOSING : DP_CT_F_TX_CLOSING;
		e->state = DP_CT_STATE_CLOSING;
		return;
	}
	if (e->state != DP_CT_STATE_CLOSING)
		e->state = (e->flags & DP_CT_F_SEEN_NON_SYN) ? DP_CT_STATE_ESTABLISHED
							     : DP_CT_STATE_SYN_SENT;
}

/* Counts a packet on an entry and moves its state and expiry on. */
static __always_inline void dp_ct_touch(struct dp_ct_entry *e, const struct dp_pkt *p, int reply)
{
	if (reply) {
		__sync_fetch_and_add(&e->rx_packets, 1);
		__sync_fetch_and_add(&e->rx_bytes, p->len);
	} else {
		__sync_fetch_and_add(&e->tx_packets, 1);
		__sync_fetch_and_add(&e->tx_bytes, p->len);
	}
	if (p->t.nexthdr == DP_IPPROTO_TCP)
		dp_ct_tcp_update(e, p->tcp_flags, reply);
	e->expires = bpf_ktime_get_coarse_ns() + dp_ct_lifetime(e, p->t.nexthdr);
}

static __always_inline int dp_ct_closing(const struct dp_ct_entry *e)
{
	return e->flags & (DP_CT_F_TX_CLOSING | DP_CT_F_RX_CLOSING);
}

/* Whether an ICMP error carries a packet of a tracked connection. */
static __always_inline int dp_ct_related(const struct dp_pkt *p, __u8 scope)
{
	struct dp_tuple key;
	void *map;

	if (!p->is_icmp_error || !p->inner_ok)
		return 0;
	map = dp_ct_map_for(p->inner.nexthdr);
	key = p->inner;
	key.scope = dp_ct_other_scope(scope);
	if (bpf_map_lookup_elem(map, &key))
		return 1;
	dp_tuple_reverse(&key, &p->inner);
	key.scope = scope;
	return bpf_map_lookup_elem(map, &key) != 0;
}

/* Looks the packet up in scope `scope` and, for a tracked connection,
 * counts it and updates the entry. Returns an enum dp_ct_result. */
static __always_inline int dp_ct_lookup(const struct dp_pkt *p, __u8 scope)
{
	void *map = dp_ct_map_for(p->t.nexthdr);
	struct dp_ct_entry *e;
	struct dp_tuple key;

	key = p->t;
	key.scope = scope;
	e = bpf_map_lookup_elem(map, &key);
	if (e) {
		if (p->t.nexthdr == DP_IPPROTO_TCP && dp_ct_closing(e) &&
		    (p->tcp_flags & (DP_TCP_SYN | DP_TCP_ACK)) == DP_TCP_SYN)
			return DP_CT_REOPENED;
		dp_ct_touch(e, p, 0);
		return DP_CT_ESTABLISHED;
	}
	dp_tuple_reverse(&key, &p->t);
	key.scope = dp_ct_other_scope(scope);
	e = bpf_map_lookup_elem(map, &key);
	if (e) {
		dp_ct_touch(e, p, 1);
		return DP_CT_REPLY;
	}
	if (dp_ct_related(p, scope))
		return DP_CT_RELATED;
	return DP_CT_NEW;
}

/* Records a new (or reopened) connection in scope `scope`. Returns 0 or a
 * drop reason: DP_DROP_CT_MAP_FULL when the map is full. */
static __always_inline int dp_ct_create(const struct dp_pkt *p, __u8 scope, __u32 src_identity,
					int reopened)
{
	void *map = dp_ct_map_for(p->t.nexthdr);
	struct dp_ct_entry e = {};
	struct dp_tuple key;
	__u64 now = bpf_ktime_get_coarse_ns();
	long ret;

	key = p->t;
	key.scope = scope;
	e.created = now;
	e.src_identity = src_identity;
	e.tx_packets = 1;
	e.tx_bytes = p->len;
	if (p->t.nexthdr == DP_IPPROTO_TCP)
		dp_ct_tcp_update(&e, p->tcp_flags, 0);
	else
		e.state = DP_CT_STATE_ESTABLISHED;
	e.expires = now + dp_ct_lifetime(&e, p->t.nexthdr);
	ret = bpf_map_update_elem(map, &key, &e, reopened ? BPF_ANY : BPF_NOEXIST);
	if (ret == 0 || ret == -17 /* EEXIST: created by another CPU meanwhile */)
		return 0;
	if (ret == -7 /* E2BIG: the map is full */)
		return DP_DROP_CT_MAP_FULL;
	return DP_DROP_CT_CREATE_FAILED;
}

#endif /* DP_CONNTRACK_H */
