/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Common definitions of dp's datapath programs (bpf/datapath/): the
 * system headers they build on, the address families, protocol numbers and
 * TCP flags the other headers use, and the 16-byte address helpers.
 *
 * Addresses: everywhere in the datapath (tuples, map keys, events) an
 * address is 16 bytes in network order. IPv6 addresses are themselves; an
 * IPv4 address a.b.c.d is stored IPv4-mapped, ::ffff:a.b.c.d, next to a
 * family field (DP_FAMILY_IPV4 or DP_FAMILY_IPV6), so conntrack, the
 * ipcache and the endpoint map have one code path for both families.
 */
#ifndef DP_COMMON_H
#define DP_COMMON_H

/* A CO-RE program that includes vmlinux.h first (the sockmap's) has the
 * kernel's types from there: the UAPI headers would define them again. */
#ifndef __VMLINUX_H__
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#endif
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* Address families as the datapath stores them (same numbers as the IP version). */
#define DP_FAMILY_IPV4 4
#define DP_FAMILY_IPV6 6

/* The two directions, named from the endpoint's side. Policy keys
 * (dp_policy_key.egress), events and metrics use the same numbers. */
#define DP_DIR_INGRESS 0 /* towards the endpoint: the remote is the source */
#define DP_DIR_EGRESS  1 /* from the endpoint: the remote is the destination */

#define DP_IPPROTO_HOPOPTS  0
#define DP_IPPROTO_ICMP	    1
#define DP_IPPROTO_TCP	    6
#define DP_IPPROTO_UDP	    17
#define DP_IPPROTO_ROUTING  43
#define DP_IPPROTO_FRAGMENT 44
#define DP_IPPROTO_ESP	    50
#define DP_IPPROTO_AH	    51
#define DP_IPPROTO_ICMPV6   58
#define DP_IPPROTO_NONE	    59
#define DP_IPPROTO_DSTOPTS  60
#define DP_IPPROTO_SCTP	    132

#define DP_TCP_FIN 0x01
#define DP_TCP_SYN 0x02
#define DP_TCP_RST 0x04
#define DP_TCP_PSH 0x08
#define DP_TCP_ACK 0x10

#define DP_ETH_HLEN 14

/* Sets a 16-byte address to the IPv4-mapped form of `v4` (network order). */
static __always_inline void dp_addr_set_v4(__u8 *addr, __be32 v4)
{
	__u32 *w = (__u32 *)addr;

	w[0] = 0;
	w[1] = 0;
	w[2] = bpf_htonl(0x0000ffff);
	w[3] = v4;
}

/* The IPv4 address of an IPv4-mapped 16-byte address. */
static __always_inline __be32 dp_addr_v4(const __u8 *addr)
{
	return ((const __u32 *)addr)[3];
}

static __always_inline void dp_addr_copy(__u8 *dst, const __u8 *src)
{
	__u32 *d = (__u32 *)dst;
	const __u32 *s = (const __u32 *)src;

	d[0] = s[0];
	d[1] = s[1];
	d[2] = s[2];
	d[3] = s[3];
}

#endif /* DP_COMMON_H */
