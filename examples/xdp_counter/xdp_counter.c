// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Counts IPv4 packets per source address at XDP, as cilium/ebpf's xdp
 * example does. pkt_count is an LRU hash keyed by the source address (in
 * network order), so the least recently seen sources make room for new ones.
 * Every packet passes. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800 /* macros are not in vmlinux.h */

// #region map
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __be32);  /* source IPv4 address */
	__type(value, __u64); /* packets */
} pkt_count SEC(".maps");
// #endregion map

SEC("xdp")
int count_sources(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);

	if ((void *)(ip + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP))
		return XDP_PASS;

	__be32 saddr = ip->saddr;
	__u64 *count = bpf_map_lookup_elem(&pkt_count, &saddr);
	if (count) {
		__sync_fetch_and_add(count, 1);
	} else {
		__u64 one = 1;
		bpf_map_update_elem(&pkt_count, &saddr, &one, BPF_NOEXIST);
	}
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
