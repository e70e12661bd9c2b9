/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Endpoint policy: per endpoint an LPM trie of {identity, direction,
 * protocol, port} → allow/deny, found in dp_policy (a hash of maps keyed
 * by the endpoint id).
 *
 * Key (host order except dport): prefixlen counts the bits from
 * `identity` on: 32 + 8 + 8 + port bits (0..16). An entry for any
 * protocol has prefixlen 40; for a protocol and any port 48; a port range
 * is split into power-of-two aligned blocks, each 48 + (16 - log2(size)).
 * For ICMP/ICMPv6 the "port" is the ICMP type: dport = htons(type).
 *
 * Lookup for a packet of endpoint E, direction D, remote identity R,
 * protocol P, port: A = {64, R, D, P, port}, B = {64, 0, D, P, port}
 * (identity 0 = any). DENY if A or B is a deny entry; else ALLOW if A or B
 * exists (A preferred); else DEFAULT_DENY if E enforces direction D, else
 * DEFAULT_ALLOW. The matching entry's counters are incremented.
 */
#ifndef DP_POLICY_H
#define DP_POLICY_H

#include "common.h"
#include "endpoint.h"
#include "events.h"

#define DP_POLICY_DENY	      1 /* dp_policy_value.flags */
#define DP_POLICY_FULL_PREFIX 64

struct dp_policy_key {
	__u32 prefixlen;
	__u32 identity; /* remote identity; 0 = any */
	__u8 egress;	/* DP_DIR_INGRESS (0) or DP_DIR_EGRESS (1) */
	__u8 protocol;	/* IP protocol; ignored by entries of prefixlen 40 */
	__be16 dport;	/* network order; ICMP: htons(type) */
};

struct dp_policy_value {
	__u8 flags; /* DP_POLICY_DENY; other bits reserved */
	__u8 pad0;
	__be16 proxy_port; /* reserved (L7 redirect): 0 */
	__u32 rule_cookie; /* which rule made the entry, for explanations; 0 = none */
	__u64 packets;
	__u64 bytes;
};

/* An endpoint's policy map: the inner map of dp_policy. */
struct dp_policy_inner {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, 16384);
	__type(key, struct dp_policy_key);
	__type(value, struct dp_policy_value);
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 1024); /* endpoints; the node sets it to the endpoint map's size */
	__type(key, __u32);	   /* endpoint id */
	__array(values, struct dp_policy_inner);
} dp_policy SEC(".maps");

/* What dp_policy_check decided. */
struct dp_policy_result {
	__u8 verdict;	   /* enum dp_verdict */
	__u8 reason;	   /* the drop reason when denied, else 0 */
	__be16 proxy_port; /* of the matching allow entry (reserved) */
	__u32 rule_cookie; /* of the matching entry */
};

static __always_inline void dp_policy_count(struct dp_policy_value *v, __u32 len)
{
	__sync_fetch_and_add(&v->packets, 1);
	__sync_fetch_and_add(&v->bytes, len);
}

/* The policy of endpoint `ep` in direction `dir` for traffic to or from
 * `remote` with protocol `proto` and port (ICMP: type) `dport`: fills
 * `res` and returns the matching entry (NULL when the default applied)
 * without counting; dp_policy_check counts. */
static __always_inline struct dp_policy_value *dp_policy_lookup(const struct dp_endpoint_info *ep,
								__u8 dir, __u32 remote, __u8 proto,
								__be16 dport,
								struct dp_policy_result *res)
{
	struct dp_policy_key key = {
		.prefixlen = DP_POLICY_FULL_PREFIX,
		.identity = remote,
		.egress = dir,
		.protocol = proto,
		.dport = dport,
	};
	struct dp_policy_value *a = 0, *b = 0, *match;
	__u32 id = ep->id;
	void *inner;
	__u16 enforced = dir == DP_DIR_EGRESS ? DP_EP_F_EGRESS_ENFORCED : DP_EP_F_INGRESS_ENFORCED;

	res->proxy_port = 0;
	res->rule_cookie = 0;
	inner = bpf_map_lookup_elem(&dp_policy, &id);
	if (inner) {
		a = bpf_map_lookup_elem(inner, &key);
		if (remote != 0) {
			key.identity = 0;
			b = bpf_map_lookup_elem(inner, &key);
		}
	}
	if (a && (a->flags & DP_POLICY_DENY))
		match = a;
	else if (b && (b->flags & DP_POLICY_DENY))
		match = b;
	else
		match = a ? a : b;
	if (match) {
		res->rule_cookie = match->rule_cookie;
		if (match->flags & DP_POLICY_DENY) {
			res->verdict = DP_VERDICT_DENY;
			res->reason = DP_DROP_POLICY_DENY;
		} else {
			res->verdict = DP_VERDICT_ALLOW;
			res->reason = 0;
			res->proxy_port = match->proxy_port;
		}
		return match;
	}
	if (ep->flags & enforced) {
		res->verdict = DP_VERDICT_DEFAULT_DENY;
		res->reason = DP_DROP_POLICY_DEFAULT;
	} else {
		res->verdict = DP_VERDICT_DEFAULT_ALLOW;
		res->reason = 0;
	}
	return 0;
}

/* dp_policy_lookup for a packet of `len` bytes, counted in the matching
 * entry. */
static __always_inline void dp_policy_check(const struct dp_endpoint_info *ep, __u8 dir,
					    __u32 remote, __u8 proto, __be16 dport, __u32 len,
					    struct dp_policy_result *res)
{
	struct dp_policy_value *match = dp_policy_lookup(ep, dir, remote, proto, dport, res);

	if (match)
		dp_policy_count(match, len);
}

/* The port a policy lookup uses: the destination port, or for ICMP and
 * ICMPv6 the type as htons(type). */
static __always_inline __be16 dp_policy_port(__u8 proto, __be16 dport, __u8 icmp_type)
{
	if (proto == DP_IPPROTO_ICMP || proto == DP_IPPROTO_ICMPV6)
		return bpf_htons(icmp_type);
	return dport;
}

#endif /* DP_POLICY_H */
