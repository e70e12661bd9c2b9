/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Packet parsing: Ethernet, IPv4 (options, fragments), IPv6 (a bounded
 * walk of extension headers), TCP, UDP, SCTP ports, ICMP and ICMPv6, and
 * the header an ICMP error carries.
 *
 * Headers are copied into the stack by dp_load(): straight from the packet
 * when they are in its linear part (the common case: a load per field, no
 * helper call), else with bpf_skb_load_bytes(), which also reads paged
 * data. Either way the parser works on stack copies, so variable offsets
 * (IPv4 options, extension headers) need no packet-pointer bookkeeping.
 * Every loop is bounded.
 *
 * Fragments: the first fragment has the L4 header and is parsed like any
 * packet; its ports are recorded in dp_frag (frag.h) and later fragments
 * (dp_pkt.frag = DP_FRAG_LATER) get them from there, or ports 0 when the
 * first fragment was not seen.
 */
#ifndef DP_PARSE_H
#define DP_PARSE_H

#include "common.h"
#include "tuple.h"
#include "events.h"
#include "frag.h"

/* Extension headers walked before giving up (Cilium's IPV6_MAX_HEADERS). */
#define DP_IPV6_MAX_EXT 4

#define DP_FRAG_NONE  0
#define DP_FRAG_FIRST 1 /* offset 0, more fragments: has the L4 header */
#define DP_FRAG_LATER 2 /* offset > 0: no L4 header */

/* What the parser found. */
struct dp_pkt {
	struct dp_tuple t;
	__u32 len;	/* skb->len */
	__u16 l3_off;	/* the IP header */
	__u16 l4_off;	/* the L4 header; 0 when there is none (later fragment) */
	__u8 tcp_flags; /* DP_TCP_* of a TCP packet */
	__u8 icmp_type; /* ICMP/ICMPv6 type */
	__u8 icmp_code;
	__u8 frag;	    /* DP_FRAG_* */
	__u8 ttl;	    /* IPv4 TTL or IPv6 hop limit */
	__u8 is_icmp_error; /* ICMP(v6) error: inner holds the tuple it carries */
	__u8 inner_ok;	    /* inner was parsed */
	__u8 pad;
	__be32 frag_id;	       /* fragments: the datagram's identification */
	struct dp_tuple inner; /* the offending packet's tuple, as it was sent */
};

/* The IPv4 header (without options). */
struct dp_iphdr {
	__u8 ver_ihl;
	__u8 tos;
	__be16 tot_len;
	__be16 id;
	__be16 frag_off;
	__u8 ttl;
	__u8 protocol;
	__u16 check;
	__be32 saddr;
	__be32 daddr;
};

struct dp_ipv6hdr {
	__be32 ver_tc_flow;
	__be16 payload_len;
	__u8 nexthdr;
	__u8 hop_limit;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* The first 8 bytes of an ICMP(v6) header. */
struct dp_icmphdr {
	__u8 type;
	__u8 code;
	__u16 checksum;
	__be16 id;
	__be16 seq;
};

#define DP_IPV4_MF     0x2000
#define DP_IPV4_OFFSET 0x1fff

#define DP_ICMP_ECHOREPLY     0
#define DP_ICMP_DEST_UNREACH  3
#define DP_ICMP_SOURCE_QUENCH 4
#define DP_ICMP_ECHO	      8
#define DP_ICMP_TIME_EXCEEDED 11
#define DP_ICMP_PARAMETERPROB 12

#define DP_ICMPV6_DEST_UNREACH 1
#define DP_ICMPV6_PKT_TOOBIG   2
#define DP_ICMPV6_TIME_EXCEED  3
#define DP_ICMPV6_PARAMPROB    4
#define DP_ICMPV6_ECHO_REQUEST 128
#define DP_ICMPV6_ECHO_REPLY   129
#define DP_ICMPV6_MLD_QUERY    130
#define DP_ICMPV6_MLD_DONE     132
#define DP_ICMPV6_RS	       133
#define DP_ICMPV6_REDIRECT     137
#define DP_ICMPV6_MLD2_REPORT  143

static __always_inline int dp_icmp_is_error(__u8 family, __u8 type)
{
	if (family == DP_FAMILY_IPV4)
		return type == DP_ICMP_DEST_UNREACH || type == DP_ICMP_SOURCE_QUENCH ||
		       type == DP_ICMP_TIME_EXCEEDED || type == DP_ICMP_PARAMETERPROB;
	return type >= DP_ICMPV6_DEST_UNREACH && type <= DP_ICMPV6_PARAMPROB;
}

/* Neighbour discovery and MLD: link-local control traffic the host stack
 * answers; it passes without endpoint checks or policy. */
static __always_inline int dp_icmpv6_is_control(__u8 type)
{
	return (type >= DP_ICMPV6_MLD_QUERY && type <= DP_ICMPV6_REDIRECT) ||
	       type == DP_ICMPV6_MLD2_REPORT;
}

/* Headers end within this many bytes of the frame's start (Ethernet, IPv4
 * with options or IPv6 with DP_IPV6_MAX_EXT extension headers, then L4 or
 * the packet inside an ICMP error); beyond it dp_load() uses the helper. */
#define DP_DIRECT_MAX 512

/* Copies `len` bytes at `off` into `to`: directly when they are in the
 * linear data, else with bpf_skb_load_bytes(). Returns 0 or < 0. */
static __always_inline int dp_load(struct __sk_buff *skb, __u32 off, void *to, const __u32 len)
{
	void *data = (void *)(long)skb->data;
	void *end = (void *)(long)skb->data_end;

	if (off < DP_DIRECT_MAX) {
		void *from = data + off;

		if (from + len <= end) {
			__builtin_memcpy(to, from, len);
			return 0;
		}
	}
	return bpf_skb_load_bytes(skb, off, to, len);
}

/* The ports (or ICMP echo id) of the L4 header at `off` into `t`; fills
 * flags and the ICMP type for the outer packet when `p` is given. */
static __always_inline int dp_parse_l4(struct __sk_buff *skb, __u32 off, struct dp_tuple *t,
				       struct dp_pkt *p)
{
	switch (t->nexthdr) {
	case DP_IPPROTO_TCP: {
		__u8 h[14];

		if ((p ? dp_load(skb, off, h, sizeof(h)) : dp_load(skb, off, h, 4)) < 0)
			return DP_DROP_INVALID_PACKET;
		t->sport = *(__be16 *)&h[0];
		t->dport = *(__be16 *)&h[2];
		if (p)
			p->tcp_flags = h[13];
		return 0;
	}
	case DP_IPPROTO_UDP:
	case DP_IPPROTO_SCTP: {
		__be16 ports[2];

		if (dp_load(skb, off, ports, sizeof(ports)) < 0)
			return DP_DROP_INVALID_PACKET;
		t->sport = ports[0];
		t->dport = ports[1];
		return 0;
	}
	case DP_IPPROTO_ICMP:
	case DP_IPPROTO_ICMPV6: {
		struct dp_icmphdr icmp;
		__u8 request, reply;

		if (dp_load(skb, off, &icmp, sizeof(icmp)) < 0)
			return DP_DROP_INVALID_PACKET;
		request = t->nexthdr == DP_IPPROTO_ICMP ? DP_ICMP_ECHO : DP_ICMPV6_ECHO_REQUEST;
		reply = t->nexthdr == DP_IPPROTO_ICMP ? DP_ICMP_ECHOREPLY : DP_ICMPV6_ECHO_REPLY;
		if (icmp.type == request) {
			t->sport = 0;
			t->dport = icmp.id;
		} else if (icmp.type == reply) {
			t->sport = icmp.id;
			t->dport = 0;
		} else {
			t->sport = 0;
			t->dport = 0;
		}
		if (p) {
			p->icmp_type = icmp.type;
			p->icmp_code = icmp.code;
		}
		return 0;
	}
	default:
		t->sport = 0;
		t->dport = 0;
		return 0;
	}
}

/* The packet inside an ICMP(v6) error at `off`: its IP header (without
 * walking IPv6 extension headers) and the first 8 bytes after it, which
 * RFC 792/4443 guarantee. The tuple is the one of the packet as it was
 * sent (its source is the receiver of the error). */
static __always_inline int dp_parse_inner(struct __sk_buff *skb, __u32 off, __u8 family,
					  struct dp_tuple *t)
{
	__u32 l4;

	t->family = family;
	t->scope = 0;
	t->pad = 0;
	if (family == DP_FAMILY_IPV4) {
		struct dp_iphdr ip;
		__u8 ihl;

		if (dp_load(skb, off, &ip, sizeof(ip)) < 0)
			return DP_DROP_INVALID_PACKET;
		ihl = ip.ver_ihl & 0x0f;
		if ((ip.ver_ihl >> 4) != 4 || ihl < 5)
			return DP_DROP_INVALID_PACKET;
		dp_addr_set_v4(t->saddr, ip.saddr);
		dp_addr_set_v4(t->daddr, ip.daddr);
		t->nexthdr = ip.protocol;
		l4 = off + ihl * 4;
	} else {
		struct dp_ipv6hdr ip6;

		if (dp_load(skb, off, &ip6, sizeof(ip6)) < 0)
			return DP_DROP_INVALID_PACKET;
		dp_addr_copy(t->saddr, ip6.saddr);
		dp_addr_copy(t->daddr, ip6.daddr);
		t->nexthdr = ip6.nexthdr;
		l4 = off + sizeof(ip6);
	}
	return dp_parse_l4(skb, l4, t, 0);
}

/* Walks IPv6 extension headers from `*off` (the first one's type in
 * `*nexthdr`) until an upper-layer header; sets `*frag`. */
static __always_inline int dp_ipv6_skip_ext(struct __sk_buff *skb, __u32 *off, __u8 *nexthdr,
					    __u8 *frag, __be32 *frag_id)
{
	int i;

#pragma unroll
	for (i = 0; i < DP_IPV6_MAX_EXT; i++) {
		__u8 h[4];

		switch (*nexthdr) {
		case DP_IPPROTO_HOPOPTS:
		case DP_IPPROTO_ROUTING:
		case DP_IPPROTO_DSTOPTS:
			if (dp_load(skb, *off, h, 2) < 0)
				return DP_DROP_INVALID_PACKET;
			*nexthdr = h[0];
			*off += ((__u32)h[1] + 1) * 8;
			break;
		case DP_IPPROTO_AH:
			if (dp_load(skb, *off, h, 2) < 0)
				return DP_DROP_INVALID_PACKET;
			*nexthdr = h[0];
			*off += ((__u32)h[1] + 2) * 4;
			break;
		case DP_IPPROTO_FRAGMENT: {
			__u8 fh[8];
			__be16 frag_off;

			if (dp_load(skb, *off, fh, sizeof(fh)) < 0)
				return DP_DROP_INVALID_PACKET;
			*nexthdr = fh[0];
			*frag_id = *(__be32 *)&fh[4];
			frag_off = bpf_ntohs(*(__be16 *)&fh[2]);
			/* offset in the high 13 bits, M flag in bit 0 */
			if (frag_off & 0xfff8)
				*frag = DP_FRAG_LATER;
			else if (frag_off & 1)
				*frag = DP_FRAG_FIRST;
			*off += 8;
			break;
		}
		default:
			return 0;
		}
	}
	/* Still an extension header after DP_IPV6_MAX_EXT of them. */
	switch (*nexthdr) {
	case DP_IPPROTO_HOPOPTS:
	case DP_IPPROTO_ROUTING:
	case DP_IPPROTO_DSTOPTS:
	case DP_IPPROTO_AH:
	case DP_IPPROTO_FRAGMENT:
		return DP_DROP_INVALID_PACKET;
	}
	return 0;
}

static __always_inline void dp_frag_key_of(const struct dp_pkt *p, struct dp_frag_key *key)
{
	dp_addr_copy(key->saddr, p->t.saddr);
	dp_addr_copy(key->daddr, p->t.daddr);
	key->id = p->frag_id;
	key->nexthdr = p->t.nexthdr;
	key->family = p->t.family;
	key->pad[0] = 0;
	key->pad[1] = 0;
}

/* A first fragment: remembers its ports for the later ones. */
static __always_inline void dp_frag_record(const struct dp_pkt *p)
{
	struct dp_frag_ports ports = { .sport = p->t.sport,
				       .dport = p->t.dport,
				       .icmp_type = p->icmp_type };
	struct dp_frag_key key;

	dp_frag_key_of(p, &key);
	bpf_map_update_elem(&dp_frag, &key, &ports, BPF_ANY);
}

/* A later fragment: the ports of its first fragment, if it was seen. */
static __always_inline void dp_frag_lookup(struct dp_pkt *p)
{
	struct dp_frag_ports *ports;
	struct dp_frag_key key;

	dp_frag_key_of(p, &key);
	ports = bpf_map_lookup_elem(&dp_frag, &key);
	if (!ports)
		return;
	p->t.sport = ports->sport;
	p->t.dport = ports->dport;
	p->icmp_type = ports->icmp_type;
}

/* Parses an IPv4 or IPv6 packet (the caller has checked the EtherType).
 * Returns 0 or a drop reason. */
static __always_inline int dp_parse(struct __sk_buff *skb, __be16 proto, struct dp_pkt *p)
{
	__u32 l4 = 0;
	int ret;

	__builtin_memset(p, 0, sizeof(*p));
	p->len = skb->len;
	p->l3_off = DP_ETH_HLEN;
	if (proto == bpf_htons(ETH_P_IP)) {
		struct dp_iphdr ip;
		__u16 frag_off;
		__u8 ihl;

		if (dp_load(skb, DP_ETH_HLEN, &ip, sizeof(ip)) < 0)
			return DP_DROP_INVALID_PACKET;
		ihl = ip.ver_ihl & 0x0f;
		if ((ip.ver_ihl >> 4) != 4 || ihl < 5)
			return DP_DROP_INVALID_PACKET;
		p->t.family = DP_FAMILY_IPV4;
		p->t.nexthdr = ip.protocol;
		p->ttl = ip.ttl;
		dp_addr_set_v4(p->t.saddr, ip.saddr);
		dp_addr_set_v4(p->t.daddr, ip.daddr);
		frag_off = bpf_ntohs(ip.frag_off);
		if (frag_off & DP_IPV4_OFFSET)
			p->frag = DP_FRAG_LATER;
		else if (frag_off & DP_IPV4_MF)
			p->frag = DP_FRAG_FIRST;
		p->frag_id = bpf_htonl(bpf_ntohs(ip.id));
		l4 = DP_ETH_HLEN + ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct dp_ipv6hdr ip6;
		__u8 nexthdr;

		if (dp_load(skb, DP_ETH_HLEN, &ip6, sizeof(ip6)) < 0)
			return DP_DROP_INVALID_PACKET;
		if ((bpf_ntohl(ip6.ver_tc_flow) >> 28) != 6)
			return DP_DROP_INVALID_PACKET;
		p->t.family = DP_FAMILY_IPV6;
		p->ttl = ip6.hop_limit;
		dp_addr_copy(p->t.saddr, ip6.saddr);
		dp_addr_copy(p->t.daddr, ip6.daddr);
		l4 = DP_ETH_HLEN + sizeof(ip6);
		nexthdr = ip6.nexthdr;
		ret = dp_ipv6_skip_ext(skb, &l4, &nexthdr, &p->frag, &p->frag_id);
		if (ret)
			return ret;
		p->t.nexthdr = nexthdr;
	} else {
		return DP_DROP_UNSUPPORTED_L3;
	}
	if (p->frag == DP_FRAG_LATER) {
		dp_frag_lookup(p);
		return 0;
	}
	p->l4_off = l4;
	ret = dp_parse_l4(skb, l4, &p->t, p);
	if (ret)
		return ret;
	if (p->frag == DP_FRAG_FIRST)
		dp_frag_record(p);
	if ((p->t.nexthdr == DP_IPPROTO_ICMP && p->t.family == DP_FAMILY_IPV4) ||
	    (p->t.nexthdr == DP_IPPROTO_ICMPV6 && p->t.family == DP_FAMILY_IPV6)) {
		if (dp_icmp_is_error(p->t.family, p->icmp_type)) {
			p->is_icmp_error = 1;
			/* An inner header we cannot read only means "not related". */
			if (dp_parse_inner(skb, l4 + 8, p->t.family, &p->inner) == 0)
				p->inner_ok = 1;
		}
	}
	return 0;
}

#endif /* DP_PARSE_H */
