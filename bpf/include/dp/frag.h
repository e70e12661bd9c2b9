/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Ports of fragmented datagrams. Only the first fragment of an IPv4 or
 * IPv6 datagram carries the L4 header; the parser (parse.h) records its
 * ports here under {addresses, fragment id, protocol} and gives them to the
 * later fragments, so conntrack and policy see the whole datagram as one
 * flow (Cilium's fragment map). A later fragment seen before its first
 * fragment, or after its entry was evicted, has ports 0.
 *
 * An LRU hash: entries are only useful while a datagram is reassembled, so
 * evicting the oldest is the right thing when it is full.
 */
#ifndef DP_FRAG_H
#define DP_FRAG_H

#include "common.h"

struct dp_frag_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__be32 id; /* IPv4: the 16-bit identification (zero-extended); IPv6: the fragment header's */
	__u8 nexthdr;
	__u8 family;
	__u8 pad[2];
};

struct dp_frag_ports {
	__be16 sport;
	__be16 dport;
	__u8 icmp_type; /* ICMP/ICMPv6: the type policy looks at */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, struct dp_frag_key);
	__type(value, struct dp_frag_ports);
} dp_frag SEC(".maps");

#endif /* DP_FRAG_H */
