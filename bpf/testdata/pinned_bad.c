// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Pinning by name, incompatible object: dp_testdata_pinned has the same name,
 * type, key and max_entries as in pinned_a.c but a 4-byte value (u32 instead
 * of u64). Loading it while pinned_a's map is pinned must fail with an error
 * that names the mismatching field (the value size, 4 vs 8), not silently
 * create or reuse a map.
 *
 * pinned_put_u32 (tc) stores skb->len at key skb->mark; it returns 0.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_testdata_pinned SEC(".maps");

SEC("tc")
int pinned_put_u32(struct __sk_buff *skb)
{
	__u32 key = skb->mark;
	__u32 value = skb->len;

	bpf_map_update_elem(&dp_testdata_pinned, &key, &value, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
