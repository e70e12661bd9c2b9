// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An object without a "license" section: libbpf loads it with an empty
 * license, and the kernel then refuses only GPL-only helpers. xdp_pass
 * counts packets with bpf_map_lookup_elem (not GPL-only) and returns
 * XDP_PASS (2).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&packets, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
	return XDP_PASS;
}
