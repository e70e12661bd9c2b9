// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A prog array with initial values (libbpf style) and programs that
 * tail-call into it.
 *
 * jump_table's `.values` initialiser does not end up in the map's bytes: it
 * becomes R_BPF_64_ABS64 relocations in ".rel.maps", one per filled slot,
 * against the target program's FUNC symbol. The slot is
 * (r_offset - offset of jump_table - offset of `values`) / 8, where `values`
 * is the last member of the map's BTF struct. The value size of a prog array
 * is 4 (a program fd); BTF only says `values` is an array of pointers to
 * functions. The loader fills slots 0 and 2 after loading the targets.
 *
 * tail_entry tail-calls jump_table[skb->mark]: it returns 10 for mark 0,
 * 20 for mark 2 and 99 (the fall-through) for an empty slot such as 1.
 * tail_entry_static calls slot 2 through bpf_tail_call_static() (a constant
 * index in r3) and returns 20.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int tail_target_a(struct __sk_buff *skb)
{
	return 10;
}

SEC("tc")
int tail_target_b(struct __sk_buff *skb)
{
	return 20;
}

struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__array(values, int(struct __sk_buff *));
} jump_table SEC(".maps") = {
	.values = {
		[0] = (void *)&tail_target_a,
		[2] = (void *)&tail_target_b,
	},
};

SEC("tc")
int tail_entry(struct __sk_buff *skb)
{
	bpf_tail_call(skb, &jump_table, skb->mark);
	return 99;
}

SEC("tc")
int tail_entry_static(struct __sk_buff *skb)
{
	bpf_tail_call_static(skb, &jump_table, 2);
	return 99;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
