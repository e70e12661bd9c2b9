// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel functions a loader cannot resolve, each used by one program:
 *
 *   fail_mismatch  bpf_cast_to_kern_ctx declared with two arguments; the
 *                  kernel's takes one pointer. The loader compares the
 *                  object's BTF prototype with the kernel's as libbpf does;
 *   fail_missing   bpf_dp_missing_kfunc, which no kernel has and which is not
 *                  __weak;
 *   fail_unguarded calls bpf_dp_weak_kfunc, __weak and missing, without a
 *                  bpf_ksym_exists() check: the verifier reaches the call;
 *   fail_sibling   uses none of them, loads and returns 3.
 *
 * libbpf (bpftool prog loadall) refuses the whole object; only the first three
 * programs can fail.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern void *bpf_cast_to_kern_ctx(void *obj, int extra) __ksym;
extern int bpf_dp_missing_kfunc(void) __ksym;
extern int bpf_dp_weak_kfunc(int x) __ksym __weak;

SEC("tc")
int fail_mismatch(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb, 1);

	return kskb->len;
}

SEC("tc")
int fail_missing(struct __sk_buff *skb)
{
	return bpf_dp_missing_kfunc();
}

SEC("tc")
int fail_unguarded(struct __sk_buff *skb)
{
	return bpf_dp_weak_kfunc(skb->len);
}

SEC("tc")
int fail_sibling(struct __sk_buff *skb)
{
	return 3;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
