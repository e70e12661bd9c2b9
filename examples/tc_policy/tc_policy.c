// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A tc ingress program that applies a policy map to IPv4 TCP and UDP
 * packets: the key is the destination address, port and protocol, the
 * value says what to do. ACTION_DROP drops the packet; ACTION_REDIRECT_PORT
 * rewrites the destination port to to_port (fixing the L4 checksum), so a
 * service answers on another port. Every match counts into the value's
 * packets. Packets without a policy entry pass. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* Macros are not in vmlinux.h. */
#define ETH_P_IP      0x0800
#define TC_ACT_OK     0
#define TC_ACT_SHOT   2
/* Offsets in the TCP and UDP headers: plain numbers, as offsetof() on a
 * vmlinux.h type (preserve_access_index) would become a CO-RE relocation. */
#define TCP_CHECK_OFF 16
#define UDP_CHECK_OFF 6
#define L4_DPORT_OFF  2

struct policy_key {
	__be32 daddr;
	__be16 dport;
	__u8 proto; /* IPPROTO_TCP or IPPROTO_UDP */
	__u8 pad;
};

enum policy_action {
	ACTION_ALLOW = 0,
	ACTION_DROP = 1,
	ACTION_REDIRECT_PORT = 2,
};

struct policy_value {
	__u32 action;	/* enum policy_action */
	__be16 to_port; /* ACTION_REDIRECT_PORT: the new destination port */
	__u16 pad;
	__u64 packets; /* packets that matched */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct policy_key);
	__type(value, struct policy_value);
} policy SEC(".maps");

SEC("tc")
int apply_policy(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) || ip->ihl != 5)
		return TC_ACT_OK;
	if (ip->protocol != IPPROTO_TCP && ip->protocol != IPPROTO_UDP)
		return TC_ACT_OK;
	/* The ports are the first four bytes of both the TCP and the UDP header. */
	__be16 *ports = (void *)(ip + 1);
	if ((void *)(ports + 2) > data_end)
		return TC_ACT_OK;

	struct policy_key key = { .daddr = ip->daddr, .dport = ports[1], .proto = ip->protocol };
	struct policy_value *v = bpf_map_lookup_elem(&policy, &key);
	if (!v)
		return TC_ACT_OK;
	__sync_fetch_and_add(&v->packets, 1);

	if (v->action == ACTION_DROP)
		return TC_ACT_SHOT;
	// #region rewrite
	if (v->action == ACTION_REDIRECT_PORT) {
		__u32 l4 = sizeof(struct ethhdr) + sizeof(struct iphdr);
		__u32 csum = key.proto == IPPROTO_TCP ? TCP_CHECK_OFF : UDP_CHECK_OFF;
		__u64 flags =
			sizeof(__be16) | (key.proto == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0);
		__be16 to = v->to_port;

		bpf_l4_csum_replace(skb, l4 + csum, key.dport, to, flags);
		bpf_skb_store_bytes(skb, l4 + L4_DPORT_OFF, &to, sizeof(to), 0);
	}
	// #endregion rewrite
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
