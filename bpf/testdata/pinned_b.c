// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Pinning by name, second object: the same map definition as pinned_a.c
 * (hash, u32 key, u64 value, 16 entries, pinned by name), so loading it after
 * pinned_a.c reuses the pinned map and sees pinned_a's writes.
 *
 * pinned_get (tc) returns the value at key skb->mark, or -1 when it is absent.
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
int pinned_get(struct __sk_buff *skb)
{
	__u32 key = skb->mark;
	__u64 *value = bpf_map_lookup_elem(&dp_testdata_pinned, &key);

	return value ? *value : -1;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
