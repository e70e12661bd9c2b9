// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* An LSM program (CONFIG_BPF_LSM, and "bpf" in the active LSMs): SEC("lsm/...")
 * needs `attach_btf_id` set to the kernel's `bpf_lsm_file_open`. It allows
 * every open (returns 0) and counts them. Not attached by the tests.
 */
/* bpf_tracing.h needs the target architecture; libbpf users pass
 * -D__TARGET_ARCH_x86 (bpf/build.sh passes none), so it is set here. */
#if !defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_arm64)
#define __TARGET_ARCH_x86
#endif
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

__u64 opens = 0;

SEC("lsm/file_open")
int BPF_PROG(lsm_file_open, struct file *file)
{
	__sync_fetch_and_add(&opens, 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
