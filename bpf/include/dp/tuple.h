/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The flow tuple: one representation for IPv4 and IPv6 (16-byte
 * addresses, IPv4-mapped for IPv4, and a family), used by the parser, as
 * the conntrack key and in events.
 *
 * Ports are in network order. Protocols without ports have 0 in both. ICMP
 * and ICMPv6 echo carry the identifier as a port, the way Cilium does it:
 * an echo request has sport 0 and dport = id, an echo reply sport = id and
 * dport 0, so a request's reversed tuple is its reply's tuple.
 */
#ifndef DP_TUPLE_H
#define DP_TUPLE_H

#include "common.h"

struct dp_tuple {
	__u8 saddr[16];
	__u8 daddr[16];
	__be16 sport;
	__be16 dport;
	__u8 nexthdr; /* L4 protocol */
	__u8 family;  /* DP_FAMILY_IPV4 or DP_FAMILY_IPV6 */
	__u8 scope;   /* conntrack keys: DP_CT_SCOPE_*; 0 elsewhere */
	__u8 pad;
} __attribute__((aligned(8)));

/* dst = src with source and destination swapped (scope and pad cleared). */
static __always_inline void dp_tuple_reverse(struct dp_tuple *dst, const struct dp_tuple *src)
{
	dp_addr_copy(dst->saddr, src->daddr);
	dp_addr_copy(dst->daddr, src->saddr);
	dst->sport = src->dport;
	dst->dport = src->sport;
	dst->nexthdr = src->nexthdr;
	dst->family = src->family;
	dst->scope = 0;
	dst->pad = 0;
}

#endif /* DP_TUPLE_H */
