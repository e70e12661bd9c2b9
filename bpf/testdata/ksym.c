// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* __ksym externs: kernel variables a program reads.
 *
 *   bpf_prog_active  typed (a per-CPU int in vmlinux BTF): ld_imm64 with
 *                    BPF_PSEUDO_BTF_ID of its VAR, read through
 *                    bpf_this_cpu_ptr() in ksym_typed, which returns 1 (the
 *                    kernel also needs the variable in kallsyms, that is
 *                    CONFIG_KALLSYMS_ALL, and otherwise refuses the load with
 *                    ENOENT naming it);
 *   _text            untyped (`void`): the address from /proc/kallsyms;
 *   dp_no_such_var   typed, __weak and absent: its address reads as 0;
 *   dp_no_such_sym   untyped, __weak and absent: its address reads as 0;
 *   runqueues        declared with a type the kernel's (struct rq) does
 *                    not match: only ksym_mismatch fails, naming it.
 *
 * ksym_values (tc) writes the addresses it sees into `ksym_out` and returns 1.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

extern const int bpf_prog_active __ksym;
extern const void _text __ksym;
extern const int dp_no_such_var __ksym __weak;
extern const void dp_no_such_sym __ksym __weak;
extern const __u64 runqueues __ksym;

struct ksym_result {
	__u64 text;	   /* &_text */
	__u64 missing_var; /* &dp_no_such_var */
	__u64 missing_sym; /* &dp_no_such_sym */
};

struct ksym_result ksym_out;

SEC("tc")
int ksym_values(struct __sk_buff *skb)
{
	ksym_out.text = (__u64)&_text;
	ksym_out.missing_var = (__u64)&dp_no_such_var;
	ksym_out.missing_sym = (__u64)&dp_no_such_sym;
	return 1;
}

SEC("tc")
int ksym_typed(struct __sk_buff *skb)
{
	const int *active = bpf_this_cpu_ptr(&bpf_prog_active);

	return *active >= 0;
}

SEC("tc")
int ksym_mismatch(struct __sk_buff *skb)
{
	const __u64 *rq = bpf_this_cpu_ptr(&runqueues);

	return *rq != 0;
}

char LICENSE[] SEC("license") = "Dual BSD/GPL";
