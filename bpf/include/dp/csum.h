/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Checksum-preserving header rewrites. The IPv4 header checksum is fixed
 * incrementally with bpf_l3_csum_replace (RFC 1624). The rewrites here (MACs,
 * TTL, hop limit) touch no field an L4 checksum covers: IPv6 has no header
 * checksum and the hop limit is in no pseudo-header. Rewrites of addresses
 * and ports (services, NAT: later issues) will fix L4 checksums the same
 * way with bpf_l4_csum_replace and BPF_F_PSEUDO_HDR.
 */
#ifndef DP_CSUM_H
#define DP_CSUM_H

#include "common.h"
#include "parse.h"

#define DP_IPV4_TTL_OFF	     8 /* ttl, then protocol */
#define DP_IPV4_CSUM_OFF     10
#define DP_IPV6_HOPLIMIT_OFF 7

/* Decrements the IPv4 TTL or IPv6 hop limit and fixes the IPv4 header
 * checksum. The caller has checked that it is above 1. Returns 0 or a
 * negative error. */
static __always_inline int dp_dec_ttl(struct __sk_buff *skb, const struct dp_pkt *p)
{
	__u8 ttl = p->ttl - 1;

	if (p->t.family == DP_FAMILY_IPV4) {
		/* The checksum covers 16-bit words: replace {ttl, protocol}. */
		__u8 old[2] = { p->ttl, p->t.nexthdr }, new[2] = { ttl, p->t.nexthdr };
		int ret;

		ret = bpf_l3_csum_replace(skb, p->l3_off + DP_IPV4_CSUM_OFF, *(__u16 *)old,
					  *(__u16 *)new, 2);
		if (ret < 0)
			return ret;
		return bpf_skb_store_bytes(skb, p->l3_off + DP_IPV4_TTL_OFF, &ttl, 1, 0);
	}
	return bpf_skb_store_bytes(skb, p->l3_off + DP_IPV6_HOPLIMIT_OFF, &ttl, 1, 0);
}

/* Writes the Ethernet destination and source addresses. */
static __always_inline int dp_set_macs(struct __sk_buff *skb, const __u8 *dst, const __u8 *src)
{
	int ret = bpf_skb_store_bytes(skb, 0, dst, 6, 0);

	if (ret < 0)
		return ret;
	return bpf_skb_store_bytes(skb, 6, src, 6, 0);
}

#endif /* DP_CSUM_H */
