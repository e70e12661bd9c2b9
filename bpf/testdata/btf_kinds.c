// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* BTF kinds that older kernels lack, for testing BTF sanitisation.
 *
 * A loader that finds the running kernel without one of these kinds rewrites
 * the object's BTF before BPF_BTF_LOAD, as libbpf does: FLOAT becomes an
 * empty STRUCT of the same size, DECL_TAG an INT, TYPE_TAG a CONST, ENUM64 a
 * UNION, and a global FUNC a static one. This object has:
 *   FLOAT     (kernel 5.13)  `float` and `double` members of struct measures;
 *   DECL_TAG  (5.16)         on a struct member, a global variable and a
 *                            function;
 *   TYPE_TAG  (5.17)         on a pointer member;
 *   ENUM64    (6.0)          enum wide, whose values do not fit in 32 bits;
 *   FUNC with global linkage (5.6) and DATASEC/VAR (5.2).
 *
 * btf_kinds_tc (tc) stores skb->len in measures_map[0].count and returns
 * WIDE_HIGH >> 32 (1).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define __tag(x) __attribute__((btf_decl_tag(x)))

enum wide {
	WIDE_LOW = 1,
	WIDE_HIGH = 0x100000000ULL,
};

struct measures {
	float ratio;
	double mean;
	__u32 count __tag("dp_counter");
	int __attribute__((btf_type_tag("dp_tagged"))) * where;
	enum wide kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct measures);
} measures_map SEC(".maps");

__u64 runs __tag("dp_runs");

__noinline __tag("dp_helper") int btf_kinds_len(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("tc")
int btf_kinds_tc(struct __sk_buff *skb)
{
	__u32 key = 0;
	struct measures *m = bpf_map_lookup_elem(&measures_map, &key);

	runs++;
	if (m)
		m->count = btf_kinds_len(skb);
	return WIDE_HIGH >> 32;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
