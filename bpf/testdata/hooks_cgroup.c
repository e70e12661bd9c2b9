// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A sock_ops program for cgroup attach tests: counts the socket operations
 * of the TCP sockets in the cgroup it is attached to, one slot per op
 * (BPF_SOCK_OPS_*: 3 = TCP_CONNECT_CB, 4 = ACTIVE_ESTABLISHED_CB,
 * 5 = PASSIVE_ESTABLISHED_CB), so a client and a listener in the cgroup
 * show each connection in slots 4 and 5.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define OPS 16

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OPS);
	__type(key, __u32);
	__type(value, __u64);
} sockops_counts SEC(".maps");

SEC("sockops")
int count_sockops(struct bpf_sock_ops *skops)
{
	__u32 op = skops->op;
	__u64 *v;

	if (op >= OPS)
		return 1;
	v = bpf_map_lookup_elem(&sockops_counts, &op);
	if (v)
		__sync_fetch_and_add(v, 1);
	return 1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
