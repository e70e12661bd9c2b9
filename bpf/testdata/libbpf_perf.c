// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Perf buffers and hidden global subprograms, as libbpf users write them.
 *
 * Note for loaders:
 * - `events` is a BPF_MAP_TYPE_PERF_EVENT_ARRAY without max_entries: libbpf
 *   sizes it to the number of possible CPUs.
 * - `first_byte` (__hidden) and `add_len` (__weak __hidden) are global
 *   functions with hidden visibility. libbpf turns their BTF FUNC linkage
 *   into static, so the verifier checks them in the context of their
 *   caller; checked on their own (global linkage), `first_byte` is
 *   rejected: it dereferences a pointer argument without a NULL check.
 *
 * perf_events (tc) sends skb->len to `events` and returns TC_ACT_OK (0).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#define TC_ACT_OK 0

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

__hidden __noinline int first_byte(const __u32 *len)
{
	return *len & 0xff;
}

__weak __hidden __noinline int add_len(struct __sk_buff *skb, __u32 *out)
{
	*out = skb->len + first_byte(out);
	return 0;
}

SEC("tc")
int perf_events(struct __sk_buff *skb)
{
	__u32 len = 0;

	add_len(skb, &len);
	bpf_perf_event_output(skb, &events, BPF_F_CURRENT_CPU, &len, sizeof(len));
	return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
