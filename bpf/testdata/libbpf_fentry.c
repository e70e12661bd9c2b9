// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* fentry/ and fexit/ programs as libbpf users write them (BPF_PROG): both
 * need `attach_btf_id` set to the kernel's BTF FUNC `do_unlinkat`. Loading
 * them also needs BPF trampolines (CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS
 * and a kernel that allows them); where libbpf cannot load them, neither
 * can dp. Not attached by the tests: every program returns 0.
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

SEC("fentry/do_unlinkat")
int BPF_PROG(fentry_unlinkat, int dfd, struct filename *name)
{
	count(1);
	return 0;
}

SEC("fexit/do_unlinkat")
int BPF_PROG(fexit_unlinkat, int dfd, struct filename *name, long ret)
{
	if (ret == 0)
		count(0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
