// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* bpf-to-bpf calls into .text subprograms.
 *
 * The __noinline functions below land in ".text" (not in a program section).
 * Each program that calls them gets its own copy of the subprograms it
 * reaches, appended after its own instructions, with the call immediates
 * (R_BPF_64_32 relocations against .text or a function symbol) fixed up:
 *  - add(): a static subprogram (local FUNC symbol);
 *  - twice(): a static subprogram that calls another one (nested call);
 *  - count_call(): a static subprogram that references a map (a map
 *    relocation inside .text, R_BPF_64_64 in .rel.text);
 *  - global_scale(), global_len(): global functions (BTF linkage "global"),
 *    which the verifier checks on their own, once; global_len() takes the
 *    program context.
 * Two programs of different types (tc and xdp) share the subprograms.
 *
 * subprog_tc returns 5 * skb->len (twice(len) + global_scale(len));
 * subprog_xdp returns XDP_PASS when twice(n) == 2 * n, for n the packet
 * length. Each run adds 1 to subprog_calls[0].
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} subprog_calls SEC(".maps");

static __noinline __u64 count_call(void)
{
	__u32 key = 0;
	__u64 *v = bpf_map_lookup_elem(&subprog_calls, &key);

	if (!v)
		return 0;
	return __sync_add_and_fetch(v, 1);
}

static __noinline int add(int a, int b)
{
	return a + b;
}

static __noinline int twice(int x)
{
	return add(x, x);
}

__noinline int global_scale(int x)
{
	return x * 3;
}

__noinline int global_len(struct __sk_buff *skb)
{
	return skb->len;
}

SEC("tc")
int subprog_tc(struct __sk_buff *skb)
{
	int len = global_len(skb);

	count_call();
	return twice(len) + global_scale(len);
}

SEC("xdp")
int subprog_xdp(struct xdp_md *ctx)
{
	int n = ctx->data_end - ctx->data;

	count_call();
	return twice(n) == 2 * n ? XDP_PASS : XDP_DROP;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
