// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Maps of maps with BTF-defined inner maps and initial values.
 *
 * The outer map's `__array(values, <inner definition>)` member gives the
 * inner map's spec (type, key, value, max_entries), which the kernel needs
 * as a template (inner_map_fd) when creating the outer map. The value size
 * of a map of maps is 4 (a map fd). Initial values (`.values = { ... }`)
 * are R_BPF_64_ABS64 relocations in ".rel.maps" against the inner map's
 * OBJECT symbol in ".maps"; the key is the slot index
 * (r_offset - offset of the outer map - offset of `values`) / 8, for hashes
 * of maps too.
 *
 *  - outer_array: ARRAY_OF_MAPS of `struct inner_array`, slots 0 and 1
 *    hold inner_a and inner_b;
 *  - outer_hash:  HASH_OF_MAPS of `struct inner_hash`, key 1 holds inner_h;
 *  - outer_empty: HASH_OF_MAPS whose inner map is an anonymous struct
 *    defined inside __array() and has no initial values.
 *
 * lookup_inner (tc) adds 1 to outer_array[skb->mark & 1][0] and returns the
 * new count, and sets outer_hash[1][skb->mark] = skb->len.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct inner_array {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
};

struct inner_array inner_a SEC(".maps");
struct inner_array inner_b SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, 2);
	__type(key, __u32);
	__array(values, struct inner_array);
} outer_array SEC(".maps") = {
	.values = { &inner_a, &inner_b },
};

struct inner_hash {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8);
	__type(key, __u32);
	__type(value, __u32);
} inner_h SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, struct inner_hash);
} outer_hash SEC(".maps") = {
	.values = { [1] = &inner_h },
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(
		values, struct {
			__uint(type, BPF_MAP_TYPE_ARRAY);
			__uint(max_entries, 16);
			__type(key, __u32);
			__type(value, __u32);
		});
} outer_empty SEC(".maps");

SEC("tc")
int lookup_inner(struct __sk_buff *skb)
{
	__u32 slot = skb->mark & 1, zero = 0, one = 1, mark = skb->mark, len = skb->len;
	__u64 *count;
	void *inner;

	inner = bpf_map_lookup_elem(&outer_hash, &one);
	if (inner)
		bpf_map_update_elem(inner, &mark, &len, BPF_ANY);

	inner = bpf_map_lookup_elem(&outer_array, &slot);
	if (!inner)
		return -1;
	count = bpf_map_lookup_elem(inner, &zero);
	if (!count)
		return -2;
	return __sync_add_and_fetch(count, 1);
}

/* Keeps outer_empty referenced by a program, as users' objects do. */
SEC("tc")
int lookup_empty(struct __sk_buff *skb)
{
	__u32 key = skb->mark;

	return bpf_map_lookup_elem(&outer_empty, &key) ? 1 : 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
