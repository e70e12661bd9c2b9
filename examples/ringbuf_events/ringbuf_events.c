// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Emits one record per IPv4 ICMP packet into a ring buffer from tc
 * ingress: addresses, ICMP type and length. Records that do not fit (the
 * reader is too slow) are counted in lost instead of silently dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP      0x0800
#define TC_ACT_UNSPEC (-1)

struct icmp_event {
	__be32 saddr;
	__be32 daddr;
	__u32 len; /* the packet's length */
	__u8 icmp_type;
	__u8 ttl;
	__u16 pad;
};

/* No __type(value, ...): the kernel wants a ring buffer's key and value
 * sizes 0, and dp's loader does not drop a value type as libbpf does. The
 * reader decodes records with its own codec of struct icmp_event. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

__u64 lost = 0;

SEC("tc")
int icmp_events(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	__u8 *icmp_type = (void *)(ip + 1);

	if ((void *)(icmp_type + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_ICMP)
		return TC_ACT_UNSPEC;

	struct icmp_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&lost, 1);
		return TC_ACT_UNSPEC;
	}
	e->saddr = ip->saddr;
	e->daddr = ip->daddr;
	e->len = skb->len;
	e->icmp_type = *icmp_type;
	e->ttl = ip->ttl;
	e->pad = 0;
	bpf_ringbuf_submit(e, 0);
	return TC_ACT_UNSPEC;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
