// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Kernel functions (kfuncs): extern functions declared __ksym, called with
 * BPF_PSEUDO_KFUNC_CALL and resolved by the loader against the kernel's BTF.
 *
 *   kfunc_ctx      bpf_cast_to_kern_ctx() (declared __weak, present) and
 *                  returns the kernel's skb->len (the test run's packet
 *                  length);
 *   kfunc_ct       bpf_skb_ct_lookup() of a TCP tuple no connection has and,
 *                  were there one, bpf_ct_release(); returns -opts.error
 *                  (ENOENT, 2);
 *   kfunc_weak     bpf_ksym_exists() of a kfunc the kernel has (bit 0) and of
 *                  a __weak one it lacks (bit 1), calling the missing one only
 *                  under its check: the loader turns that call into one the
 *                  verifier prunes; returns 1.
 *
 * Every kfunc here resolves (bpf_skb_ct_lookup needs CONFIG_NF_CONNTRACK=y);
 * kfunc_fail.c has the ones that cannot.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

/* libbpf 1.2's bpf_ksym_exists(); Debian's libbpf-dev predates it. */
#ifndef bpf_ksym_exists
#define bpf_ksym_exists(sym)                                                                       \
	({                                                                                         \
		_Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak");  \
		!!sym;                                                                             \
	})
#endif

extern void *bpf_cast_to_kern_ctx(void *obj) __ksym __weak;
extern struct nf_conn *bpf_skb_ct_lookup(struct __sk_buff *skb_ctx,
					 struct bpf_sock_tuple *bpf_tuple, u32 tuple__sz,
					 struct bpf_ct_opts *opts, u32 opts__sz) __ksym;
extern void bpf_ct_release(struct nf_conn *ct) __ksym;
extern int bpf_dp_no_such_kfunc(int x) __ksym __weak;

SEC("tc")
int kfunc_ctx(struct __sk_buff *skb)
{
	struct sk_buff *kskb = bpf_cast_to_kern_ctx(skb);

	return kskb->len;
}

SEC("tc")
int kfunc_ct(struct __sk_buff *skb)
{
	struct bpf_sock_tuple tuple = {};
	struct bpf_ct_opts opts = { .netns_id = -1, .l4proto = 6 };
	struct nf_conn *ct;

	tuple.ipv4.saddr = bpf_htonl(0x7f000001);
	tuple.ipv4.daddr = bpf_htonl(0x7f000001);
	tuple.ipv4.sport = bpf_htons(1);
	tuple.ipv4.dport = bpf_htons(1);
	ct = bpf_skb_ct_lookup(skb, &tuple, sizeof(tuple.ipv4), &opts, sizeof(opts));
	if (ct) {
		bpf_ct_release(ct);
		return 0;
	}
	return -opts.error;
}

SEC("tc")
int kfunc_weak(struct __sk_buff *skb)
{
	int ret = 0;

	if (bpf_ksym_exists(bpf_cast_to_kern_ctx))
		ret |= 1;
	if (bpf_ksym_exists(bpf_dp_no_such_kfunc))
		ret |= 2 + bpf_dp_no_such_kfunc(skb->len);
	return ret;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
