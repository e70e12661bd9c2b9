// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* tc programs for attach tests: one counts, one drops.
 *
 * tc_count (section "tc") counts every packet it sees in tc_counters[0],
 * IPv4 ICMP echo requests in [1] and echo replies in [2], and returns
 * TC_ACT_UNSPEC (-1, which is also TCX_NEXT) so later filters and tcx
 * programs still run: a ping from the peer shows requests on ingress and
 * replies on egress, never the other way round.
 *
 * tc_drop (section "classifier") drops IPv4 ICMP (TC_ACT_SHOT) and counts
 * the drops in tc_counters[3]; anything else (ARP) goes on with
 * TC_ACT_UNSPEC, so neighbours still resolve and only ping fails.
 *
 * The sections differ so that `tc filter add ... bpf obj hooks_tc.o sec X`
 * can pick either program.
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define IPPROTO_ICMP   1
#define ICMP_ECHOREPLY 0
#define ICMP_ECHO      8
#define TC_ACT_UNSPEC  (-1)
#define TC_ACT_SHOT    2

/* The start of an ICMP header (linux/icmp.h pulls in libc headers). */
struct icmp_head {
	__u8 type;
	__u8 code;
	__u16 checksum;
};

enum { SEEN = 0, ECHO_REQUESTS = 1, ECHO_REPLIES = 2, DROPPED = 3, SLOTS = 4 };

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, SLOTS);
	__type(key, __u32);
	__type(value, __u64);
} tc_counters SEC(".maps");

static __always_inline void bump(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&tc_counters, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* The ICMP type of an IPv4 ICMP packet, or -1. */
static __always_inline int icmp_type(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct icmp_head *icmp;

	if ((void *)(ip + 1) > data_end)
		return -1;
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_ICMP)
		return -1;
	icmp = (void *)ip + ip->ihl * 4;
	if ((void *)(icmp + 1) > data_end)
		return -1;
	return icmp->type;
}

SEC("tc")
int tc_count(struct __sk_buff *skb)
{
	int type = icmp_type(skb);

	bump(SEEN);
	if (type == ICMP_ECHO)
		bump(ECHO_REQUESTS);
	else if (type == ICMP_ECHOREPLY)
		bump(ECHO_REPLIES);
	return TC_ACT_UNSPEC;
}

SEC("classifier")
int tc_drop(struct __sk_buff *skb)
{
	if (icmp_type(skb) < 0)
		return TC_ACT_UNSPEC;
	bump(DROPPED);
	return TC_ACT_SHOT;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
