// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* A USDT probe through libbpf's <bpf/usdt.bpf.h>, as libbpf users write it.
 *
 * Note for loaders: usdt.bpf.h reads the `.kconfig` extern
 * LINUX_HAS_BPF_COOKIE (no CONFIG_ option: libbpf probes for
 * bpf_get_attach_cookie) and declares the hash maps __bpf_usdt_specs and
 * __bpf_usdt_ip_to_spec_id. Not attached by the tests.
 */
/* bpf_tracing.h needs the target architecture; libbpf users pass
 * -D__TARGET_ARCH_x86 (bpf/build.sh passes none), so it is set here. */
#if !defined(__TARGET_ARCH_x86) && !defined(__TARGET_ARCH_arm64)
#define __TARGET_ARCH_x86
#endif
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/usdt.bpf.h>

__u64 sum = 0;

SEC("usdt")
int BPF_USDT(usdt_probe, int a, long b)
{
	__sync_fetch_and_add(&sum, a + b);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
