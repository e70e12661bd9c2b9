/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Checksum-preserving header rewrites. The IPv4 header checksum is fixed
 * incrementally (RFC 1624). The rewrites here (MACs,
 * TTL, hop limit) touch no field an L4 checksum covers: IPv6 has no header
 * checksum and the hop limit is in no pseudo-header. Rewrites of addresses
 * and ports (services, NAT: later issues) will fix L4 checksums the same
 * way with bpf_l4_csum_replace and BPF_F_PSEUDO_HDR.
 */
#ifndef DP_CSUM_H
#define DP_CSUM_H

#include "common.h"
#include "parse.h"

/* One's complement update of a 16-bit checksum when a 16-bit word
 * changes from `old` to `new` (RFC 1624, eqn. 3). Words are as in memory. */
static __always_inline __u16 dp_csum_replace2(__u16 check, __u16 old, __u16 new)
{
	__u32 sum = (__u16)~check + (__u16)~old + (__u32) new;

	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* The rewrites of a packet forwarded by BPF host routing: the Ethernet
 * destination and source (when `dmac` is given) and the IPv4 TTL (with
 * its header checksum) or IPv6 hop limit, decremented; the caller has
 * checked that it is above 1. One helper call, bpf_skb_pull_data(), makes
 * the headers writable (un-sharing a cloned header, as any write would);
 * the fields are then written in place. Returns 0 or a negative error. */
static __always_inline int dp_forward_rewrite(struct __sk_buff *skb, const struct dp_pkt *p,
					      const __u8 *dmac, const __u8 *smac)
{
	void *data, *end;

	if (p->t.family == DP_FAMILY_IPV4) {
		struct dp_iphdr *ip;
		__u16 old, new;

		if (bpf_skb_pull_data(skb, DP_ETH_HLEN + sizeof(*ip)) < 0)
			return -1;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		ip = data + DP_ETH_HLEN;
		if ((void *)(ip + 1) > end)
			return -1;
		if (dmac) {
			__builtin_memcpy(data, dmac, 6);
			__builtin_memcpy(data + 6, smac, 6);
		}
		/* The checksum covers 16-bit words: {ttl, protocol} is one. */
		old = *(__u16 *)&ip->ttl;
		ip->ttl -= 1;
		new = *(__u16 *)&ip->ttl;
		ip->check = dp_csum_replace2(ip->check, old, new);
	} else {
		struct dp_ipv6hdr *ip6;

		if (bpf_skb_pull_data(skb, DP_ETH_HLEN + sizeof(*ip6)) < 0)
			return -1;
		data = (void *)(long)skb->data;
		end = (void *)(long)skb->data_end;
		ip6 = data + DP_ETH_HLEN;
		if ((void *)(ip6 + 1) > end)
			return -1;
		if (dmac) {
			__builtin_memcpy(data, dmac, 6);
			__builtin_memcpy(data + 6, smac, 6);
		}
		ip6->hop_limit -= 1;
	}
	return 0;
}

#endif /* DP_CSUM_H */
