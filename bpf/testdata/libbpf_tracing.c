// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Tracing programs written the way libbpf users write them: vmlinux.h,
 * bpf_tracing.h's BPF_KSYSCALL and BPF_PROG, and a section name that needs
 * an attach target from the kernel's BTF (tp_btf/; fentry/ and fexit/ are in
 * libbpf_fentry.c).
 *
 * Note for loaders: BPF_KSYSCALL reads the `.kconfig` extern
 * LINUX_HAS_SYSCALL_WRAPPER, which is no CONFIG_ option: libbpf computes it
 * from a probe (is there a `__<arch>_sys_bpf` kernel function?). The tp_btf
 * program must be loaded with `attach_btf_id` set to the kernel's BTF
 * TYPEDEF `btf_trace_sched_switch`.
 *
 * Nothing here is attached by the tests: every program returns 0.
 */
/* bpf_tracing.h needs the target architecture; libbpf users pass
 * -D__TARGET_ARCH_x86 (bpf/build.sh passes none), so it is set here. */
#if !defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_arm64)
#define __TARGET_ARCH_x86
#endif
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *v = bpf_map_lookup_elem(&calls, &slot);

	if (v)
		__sync_fetch_and_add(v, 1);
}

SEC("ksyscall/unlinkat")
int BPF_KSYSCALL(ksys_unlinkat, int dfd, const char *pathname)
{
	char first = 0;

	bpf_probe_read_user(&first, 1, pathname);
	if (first == '/')
		count(0);
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(tp_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	if (BPF_CORE_READ(next, pid) == 0)
		count(1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
