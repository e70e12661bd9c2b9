// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Programs for the packet test kit's kernel tests (@dp/hooks testRun and
 * expectRewrite): an IPv4 destination rewrite in XDP (checksums updated by
 * hand, RFC 1624) and in tc (checksums updated by the kernel's helpers), a
 * rewrite that forgets the checksums, and programs whose verdict comes from
 * the context so the tests can check that contexts arrive. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* The address every rewrite writes: 10.0.0.9. */
#define NEW_DST bpf_htonl(0x0a000009)

static __always_inline __u16 csum_fold32(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

/* RFC 1624 eqn. 3, HC' = ~(~HC + ~m + m'), over both 16-bit halves of a
 * 32-bit field. Byte order does not matter as long as it is the same for
 * the checksum and the field. */
static __always_inline __u16 csum_replace4(__u16 check, __u32 from, __u32 to)
{
	__u32 sum = (__u16)~check;

	sum += (~from & 0xffff) + (~from >> 16);
	sum += (to & 0xffff) + (to >> 16);
	return csum_fold32(sum);
}

/* Finds the IPv4 header of an untagged Ethernet frame; NULL otherwise. */
static __always_inline struct iphdr *ipv4_header(void *data, void *data_end)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return NULL;
	return ip;
}

static __always_inline int rewrite_xdp(struct xdp_md *ctx, int fix_checksums)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u32 old;
	void *l4;

	if (!ip)
		return XDP_PASS;
	old = ip->daddr;
	ip->daddr = NEW_DST;
	if (!fix_checksums)
		return XDP_PASS;
	ip->check = csum_replace4(ip->check, old, NEW_DST);
	l4 = (void *)ip + (ip->ihl & 0xf) * 4;
	if (ip->protocol == IPPROTO_TCP) {
		struct tcphdr *tcp = l4;

		if ((void *)(tcp + 1) > data_end)
			return XDP_ABORTED;
		tcp->check = csum_replace4(tcp->check, old, NEW_DST);
	} else if (ip->protocol == IPPROTO_UDP) {
		struct udphdr *udp = l4;

		if ((void *)(udp + 1) > data_end)
			return XDP_ABORTED;
		/* 0 means "no checksum"; a computed 0 is sent as 0xffff. */
		if (udp->check) {
			udp->check = csum_replace4(udp->check, old, NEW_DST);
			if (!udp->check)
				udp->check = 0xffff;
		}
	}
	return XDP_PASS;
}

SEC("xdp")
int xdp_rewrite_dst(struct xdp_md *ctx)
{
	return rewrite_xdp(ctx, 1);
}

SEC("xdp")
int xdp_rewrite_dst_nocsum(struct xdp_md *ctx)
{
	return rewrite_xdp(ctx, 0);
}

/* XDP_DROP for packets that arrive on ifindex 1 (lo), XDP_PASS otherwise. */
SEC("xdp")
int xdp_drop_lo(struct xdp_md *ctx)
{
	return ctx->ingress_ifindex == 1 ? XDP_DROP : XDP_PASS;
}

SEC("tc")
int tc_rewrite_dst(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct iphdr *ip = ipv4_header(data, data_end);
	__u32 ip_off = ETH_HLEN;
	__u32 new_dst = NEW_DST;
	__u32 l4_off, old;
	__u8 proto;

	if (!ip)
		return TC_ACT_OK;
	old = ip->daddr;
	proto = ip->protocol;
	l4_off = ip_off + (ip->ihl & 0xf) * 4;
	if (proto == IPPROTO_TCP)
		bpf_l4_csum_replace(skb, l4_off + offsetof(struct tcphdr, check), old, new_dst,
				    BPF_F_PSEUDO_HDR | sizeof(new_dst));
	else if (proto == IPPROTO_UDP)
		bpf_l4_csum_replace(skb, l4_off + offsetof(struct udphdr, check), old, new_dst,
				    BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | sizeof(new_dst));
	bpf_l3_csum_replace(skb, ip_off + offsetof(struct iphdr, check), old, new_dst,
			    sizeof(new_dst));
	bpf_skb_store_bytes(skb, ip_off + offsetof(struct iphdr, daddr), &new_dst, sizeof(new_dst),
			    0);
	return TC_ACT_OK;
}

/* Returns skb->mark as the verdict and sets skb->priority to 7. */
SEC("tc")
int tc_verdict_from_mark(struct __sk_buff *skb)
{
	skb->priority = 7;
	return skb->mark;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
