// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Pinning by name, first object: dp_testdata_pinned carries
 * `pinning = LIBBPF_PIN_BY_NAME` (1) in its BTF map definition, so a loader
 * pins it as <pin root>/dp_testdata_pinned (libbpf's default root is
 * /sys/fs/bpf) or, when that pin exists, reuses the pinned map after checking
 * that type, key size, value size, max_entries and flags match.
 *
 * pinned_b.c declares the same map (compatible: reused), pinned_bad.c
 * declares it with a 4-byte value (incompatible: the check must name the
 * value size).
 *
 * pinned_put (tc) stores skb->len at key skb->mark; it returns 0.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} dp_testdata_pinned SEC(".maps");

SEC("tc")
int pinned_put(struct __sk_buff *skb)
{
	__u32 key = skb->mark;
	__u64 value = skb->len;

	bpf_map_update_elem(&dp_testdata_pinned, &key, &value, BPF_ANY);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
