// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Maps defined the way libbpf before 1.0 took them: `struct bpf_map_def`
 * (type, key_size, value_size, max_entries, map_flags) in SEC("maps").
 *
 * map_def_count (tc) adds 1 to map_def_counts[0] and returns 0.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct legacy_bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

struct legacy_bpf_map_def SEC("maps") map_def_counts = {
	.type = BPF_MAP_TYPE_ARRAY,
	.key_size = sizeof(__u32),
	.value_size = sizeof(__u64),
	.max_entries = 1,
};

SEC("tc")
int map_def_count(struct __sk_buff *skb)
{
	__u32 key = 0;
	__u64 *count = bpf_map_lookup_elem(&map_def_counts, &key);

	if (count)
		__sync_fetch_and_add(count, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
